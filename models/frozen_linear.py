"""A linear (softmax) classifier fitted once on a window of examples, then frozen.

Why: the frozen-reference drift detector (`models.reference_drift`) is only as sensitive as
its reference is good: a concept change shows as the reference's error rising above its
noise, and a reference that already errs where the concept is clear hides part of the rise.
Naive Bayes puts a curved boundary through a linear concept (SEA: x1 + x2 ≤ θ; a hyperplane)
and axis-aligned trees a staircase; a linear model fitted on the same window sits close to
the true boundary, so a moved boundary shows in full.

Fitting: numbers standardised on the window (a missing or odd value counts as the mean),
text one-hot (values seen on the window, ``max_categories`` at most per feature), one
logistic regression per class against the others (a single one for two classes) with a small
L2 penalty, fitted by a few Newton steps; the standardisation is folded into the frozen
weights, so a prediction is one multiply-add per feature and class. The first
``max_features`` features only (the fit solves one system of that size per class and step).

>>> from models.frozen_linear import FrozenLinear
>>> m = FrozenLinear()
>>> for i in range(400):
...     a, b = i % 20 / 2, i // 20 / 2
...     m.learn_one({"a": a, "b": b, "shop": "web" if i % 3 else "store"}, a + b <= 9)
>>> m.freeze()
>>> m.predict_one({"a": 2.0, "b": 3.0}), m.predict_one({"a": 8.0, "b": 7.5, "shop": "web"})
(True, False)
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from models.frozen_tree import number_column
from models.frozen_window import FrozenWindow


class FrozenLinear(FrozenWindow):
    """Learns with `learn_one` (stores the example) until `freeze` fits the weights; then
    only `predict_one`."""

    def __init__(self, l2: float = 1e-3, iters: int = 10, max_features: int = 60,
                 max_categories: int = 20) -> None:
        super().__init__()
        self.l2 = l2
        self.iters = iters
        self.max_features = max_features
        self.max_categories = max_categories

    def freeze(self) -> None:
        xs, ys = self.xs, self.ys
        classes, index = self.class_index()
        n, k = len(ys), len(classes)
        names: dict[str, None] = {}
        for x in xs:
            for f in x:
                if f not in names and len(names) < self.max_features:
                    names[f] = None
        cols: list[np.ndarray] = []
        num: list[tuple[str, float, float, int]] = []  # feature, mean, std, column
        cat: list[tuple[str, Any, int]] = []  # feature, value, column
        for f in names:
            vals = [x.get(f) for x in xs]
            if any(isinstance(v, str) for v in vals):
                counts: dict[Any, int] = {}
                for v in vals:
                    if isinstance(v, str):
                        counts[v] = counts.get(v, 0) + 1
                for v, _ in sorted(counts.items(), key=lambda t: -t[1])[:self.max_categories]:
                    cat.append((f, v, len(cols)))
                    cols.append(np.fromiter((w == v for w in vals), dtype=float, count=n))
                continue
            col = number_column(vals)
            ok = ~np.isnan(col)
            if ok.sum() < 2:
                continue
            mean, std = float(col[ok].mean()), float(col[ok].std())
            if std <= 1e-12 * max(1.0, abs(mean)):
                continue
            col = np.where(ok, (col - mean) / std, 0.0)
            num.append((f, mean, std, len(cols)))
            cols.append(col)
        X = np.column_stack(cols + [np.ones(n)]) if cols else np.ones((n, 1))
        yi = np.array([index[y] for y in ys])
        # one logistic regression per class against the rest (one for two classes), by
        # Newton's method: a handful of steps, each one solve per class
        T = (yi[:, None] == np.arange(k)[None, :]).astype(float)[:, 1:] if k == 2 else \
            (yi[:, None] == np.arange(k)[None, :]).astype(float)
        d, c = X.shape[1], T.shape[1]
        reg = np.full(d, self.l2)
        reg[-1] = 1e-9  # (almost) no penalty on the intercepts
        W = np.zeros((d, c))
        for _ in range(self.iters):
            z = np.clip(X @ W, -30.0, 30.0)
            p = 1.0 / (1.0 + np.exp(-z))
            g = X.T @ (p - T) / n + reg[:, None] * W  # (d, c)
            s = p * (1.0 - p)  # (n, c)
            H = (X.T[None, :, :] * s.T[:, None, :]) @ X / n + np.eye(d) * reg  # (c, d, d)
            try:
                step = np.linalg.solve(H, g.T[:, :, None])[:, :, 0].T
            except np.linalg.LinAlgError:
                break
            W -= step
            if float(np.abs(step).max()) < 1e-6:
                break
        if k == 2:  # score of the first class 0, of the second the log-odds
            W = np.column_stack([np.zeros(d), W[:, 0]])
        # fold the standardisation in: w·(v - mean)/std = (w/std)·v - w·mean/std
        bias = W[-1].copy()
        self.num_w: dict[str, tuple[float, list[float]]] = {}
        for f, mean, std, j in num:
            w = W[j] / std
            bias -= w * mean
            self.num_w[f] = (mean, w.tolist())
        self.cat_w: dict[str, dict[Any, list[float]]] = {}
        for f, v, j in cat:
            self.cat_w.setdefault(f, {})[v] = W[j].tolist()
        self.bias = bias.tolist()
        self.classes = classes
        # two classes: one score (the second class's log-odds against the first)
        self.binary = k == 2
        self.b = self.bias[1] - self.bias[0] if k == 2 else 0.0
        self.w1 = {f: w[1] - w[0] for f, (_, w) in self.num_w.items()} if k == 2 else {}
        self.c1 = ({f: {v: w[1] - w[0] for v, w in d.items()} for f, d in self.cat_w.items()}
                   if k == 2 else {})
        self.mean = {f: m for f, (m, _) in self.num_w.items()}
        # several classes: the numeric weights as one matrix, a feature per row
        self.names = list(self.num_w)
        self.wmat = np.array([w for _, w in self.num_w.values()]).reshape(-1, k)
        self.bvec = np.array(self.bias)
        self.xs, self.ys = [], []
        self.frozen = True

    def predict_one(self, x: dict[str, Any]) -> Any:
        if not self.frozen:
            raise RuntimeError("freeze() first")
        if not self.binary:
            return self._predict_many(x)
        z = self.b
        num, cat = self.w1, self.c1
        for f, v in x.items():
            w = num.get(f)
            if w is not None:
                try:
                    z += w * v
                except TypeError:  # missing or text: as the mean, as when fitted
                    z += w * self.mean[f]
                continue
            c = cat.get(f)
            if c is not None and type(v) is str:
                w = c.get(v)
                if w is not None:
                    z += w
        if not -math.inf < z < math.inf:  # a value was inf or nan: as the mean
            return self._predict_slow(x)
        return self.classes[1] if z > 0.0 else self.classes[0]

    def _predict_many(self, x: dict[str, Any]) -> Any:
        """Several classes: the numbers' scores in one matrix product (a missing, text or
        non-finite value: the slow path below, which counts it as the mean)."""
        get = x.get
        try:
            v = np.array([get(f) for f in self.names], dtype=float)
        except (TypeError, ValueError):
            return self._predict_slow(x)
        if not np.isfinite(v).all() or len(x) > len(v) and self.cat_w:
            return self._predict_slow(x)
        scores = self.bvec + v @ self.wmat
        return self.classes[int(np.argmax(scores))]

    def _predict_slow(self, x: dict[str, Any]) -> Any:
        scores = list(self.bias)
        n = len(scores)
        for f, v in x.items():
            t = self.num_w.get(f)
            if t is not None:
                if type(v) is str or v is None or not -math.inf < v < math.inf:
                    v = t[0]  # as the mean, as when fitted
                w = t[1]
                for i in range(n):
                    scores[i] += w[i] * v
                continue
            c = self.cat_w.get(f)
            if c is not None and type(v) is str:
                w = c.get(v)
                if w is not None:
                    for i in range(n):
                        scores[i] += w[i]
        return self.classes[max(range(n), key=scores.__getitem__)]
