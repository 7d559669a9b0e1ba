"""A small decision tree grown once on a window of examples, then frozen.

Why: the frozen-reference drift detector (`models.reference_drift`) needs a model of the
current concept whose errors rise when the concept moves. Naive Bayes cannot express a
concept made of interactions (Agrawal's functions: "age < 40 and salary in a band, or ..."):
its error sits near the majority rate, and a change between two such concepts does not move
it. A tree grown on the same window does express them, and a frozen tree is cheap to ask: a
few comparisons from the root to a leaf.

Growing: CART with the Gini impurity, on the stored window (numbers: a threshold between two
consecutive distinct values; text: one value against the rest; a missing or odd value goes
right), a leaf at ``max_depth`` or when no split leaves ``min_leaf`` examples on each side
and lowers the impurity. Leaves answer their majority class.

>>> from models.frozen_tree import FrozenTree
>>> t = FrozenTree()
>>> for i in range(400):
...     a, b = i % 20, i // 20
...     t.learn_one({"a": a, "b": b, "shop": "web" if i % 2 else "store"}, a < 10 and b >= 10)
>>> t.freeze()
>>> t.predict_one({"a": 3, "b": 15, "shop": "web"}), t.predict_one({"a": 3, "b": 2})
(True, False)
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from models.frozen_window import FrozenWindow


class FrozenTree(FrozenWindow):
    """Learns with `learn_one` (stores the example) until `freeze` grows the tree; then only
    `predict_one`."""

    def __init__(self, max_depth: int = 6, min_leaf: int = 10, max_features: int = 200) -> None:
        super().__init__()
        self.max_depth = max_depth
        self.min_leaf = min_leaf
        self.max_features = max_features
        self.root: tuple = (None, None)
        self.n_leaves = 0

    def freeze(self) -> None:
        ys = self.ys
        classes, index = self.class_index()
        n = len(ys)
        self.classes = classes
        onehot = np.zeros((n, len(classes)))
        onehot[np.arange(n), [index[y] for y in ys]] = 1.0
        names: dict[str, None] = {}
        for x in self.xs:
            for k in x:
                if k not in names and len(names) < self.max_features:
                    names[k] = None
        # one column per number, one 0/1 column per text value (split: that value or not)
        cols: list[np.ndarray] = []
        self._splits: list[tuple[str, Any]] = []  # column -> (feature, text value or None)
        for k in names:
            vals = [x.get(k) for x in self.xs]
            if all(v is None or isinstance(v, str) for v in vals):
                for v in dict.fromkeys(v for v in vals if v is not None):
                    cols.append(np.fromiter((w == v for w in vals), dtype=float, count=n))
                    self._splits.append((k, v))
            else:
                cols.append(number_column(vals))
                self._splits.append((k, None))
        self.n_leaves = 0
        if cols:
            self.root = self._grow(np.column_stack(cols), onehot, 0)
        else:
            self.root = self._leaf(onehot.sum(axis=0))
        self.xs, self.ys, self._splits = [], [], []
        self.frozen = True

    def _leaf(self, counts: np.ndarray) -> tuple:
        self.n_leaves += 1
        return (None, self.classes[int(np.argmax(counts))])

    def _grow(self, X: np.ndarray, oh: np.ndarray, depth: int) -> tuple:
        """All features at once: sort each column, cumulate the class counts down it, and
        score every threshold between two distinct values by Σ c² / n over both sides (the
        Gini impurity's complement; higher is purer). A missing value (NaN) sorts last and
        so always goes right."""
        total = oh.sum(axis=0)
        n, m = len(oh), self.min_leaf
        if depth >= self.max_depth or n < 2 * m or (total > 0).sum() < 2:
            return self._leaf(total)
        order = np.argsort(X, axis=0, kind="stable")
        vs = np.take_along_axis(X, order, axis=0)
        cl = np.cumsum(oh[order], axis=0)[:-1]  # (n - 1, features, classes): left counts
        nl = np.arange(1, n, dtype=float)[:, None]
        cr = total - cl
        with np.errstate(invalid="ignore", divide="ignore"):
            s = (cl * cl).sum(axis=2) / nl + (cr * cr).sum(axis=2) / (n - nl)
        valid = vs[:-1] < vs[1:]
        valid[:m - 1] = False
        valid[n - m:] = False
        s = np.where(valid, s, -1.0)
        i, j = np.unravel_index(int(np.argmax(s)), s.shape)
        if not s[i, j] > float((total * total).sum()) / n + 1e-9:
            return self._leaf(total)
        thr = float((vs[i, j] + vs[i + 1, j]) / 2)
        left = X[:, j] <= thr
        feature, text = self._splits[j]
        a = self._grow(X[left], oh[left], depth + 1)
        b = self._grow(X[~left], oh[~left], depth + 1)
        if text is None:
            return (feature, False, thr, a, b)
        return (feature, True, text, b, a)  # left of the 0/1 column: not that value

    def predict_one(self, x: dict[str, Any]) -> Any:
        if not self.frozen:
            raise RuntimeError("freeze() first")
        node = self.root
        while node[0] is not None:
            v = x.get(node[0])
            if node[1]:
                node = node[3] if v == node[2] else node[4]
            else:
                try:
                    node = node[3] if v <= node[2] else node[4]
                except TypeError:  # missing or not a number: right, as when grown
                    node = node[4]
        return node[1]


def number_column(vals: list[Any]) -> np.ndarray:
    """A feature's values as floats, NaN for a missing, odd or non-finite one."""
    if not any(type(v) is str for v in vals):
        try:
            col = np.array(vals, dtype=float)  # None becomes NaN
        except (TypeError, ValueError):
            col = None
        if col is not None and col.ndim == 1:
            col[~np.isfinite(col)] = np.nan
            return col
    return np.fromiter((_number(v) for v in vals), dtype=float, count=len(vals))


def _number(v: Any) -> float:
    if isinstance(v, bool):
        return float(v)
    if isinstance(v, int | float) and math.isfinite(v):
        return float(v)
    return math.nan
