"""A Hoeffding tree whose naive-Bayes leaves predict with numpy instead of per-feature calls.

Why: in DriftMoE every expert predicts on every example (the router's correctness mask needs
all of them), and river's naive-Bayes-adaptive leaf computes its prediction with one Python
call chain per (class, feature) — profiling put ~65 % of DriftMoE's time there. This tree is
river's ``HoeffdingTreeClassifier`` (same splits, same split criterion, same leaves) except
that each ``nba`` leaf also keeps its per-class Gaussian statistics (weighted Welford: count,
mean, sum of squares) as arrays and computes the naive-Bayes log-likelihoods in a few vector
operations. The result is river's ``do_naive_bayes_prediction`` up to floating-point rounding
(tested side by side), including its conventions: a (class, feature) pair with fewer than two
observations or zero variance contributes nothing, and a class with zero weight gets a
log-vote of 0. Leaves that see nominal (non-numeric) features fall back to river's code.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np
from river import tree
from river.tree.nodes.htc_nodes import LeafNaiveBayesAdaptive
from river.tree.utils import do_naive_bayes_prediction

__all__ = ["FastHoeffdingTreeClassifier"]

_HALF_LOG_TAU = 0.5 * math.log(2.0 * math.pi)


class _GaussianTable:
    """Per-(class, feature) weighted Welford statistics, rows = classes, columns = features.

    The running statistics are Python floats (one update touches a handful of them, where
    numpy's per-call overhead would dominate); the two derived arrays the prediction needs are
    numpy: ``log N(v; mu, var) = (v - mu)^2 * inv + c0`` where valid, ``inv = c0 = 0`` where
    river would skip the term (fewer than two observations or zero variance).
    """

    __slots__ = ("cols", "rows", "stats", "mean", "inv", "c0")

    def __init__(self) -> None:
        self.cols: dict[Any, int] = {}
        self.rows: dict[Any, int] = {}
        self.stats: list[list[list[float]]] = []  # row -> col -> [n, mean, S]
        self.mean = np.zeros((2, 4))
        self.inv = np.zeros((2, 4))
        self.c0 = np.zeros((2, 4))

    def _grow(self, rows: int, cols: int) -> None:
        r, c = self.mean.shape
        if rows <= r and cols <= c:
            return
        r2, c2 = max(rows, r if rows <= r else 2 * r), max(cols, c if cols <= c else 2 * c)
        for name in ("mean", "inv", "c0"):
            old = getattr(self, name)
            new = np.zeros((r2, c2))
            new[:r, :c] = old
            setattr(self, name, new)

    def update(self, idx: list[int], vals: list[float], y: Any, w: float) -> None:
        row = self.rows.get(y)
        if row is None:
            row = self.rows[y] = len(self.rows)
            self.stats.append([])
        st = self.stats[row]
        F = len(self.cols)
        while len(st) < F:
            st.append([0.0, 0.0, 0.0])
        self._grow(len(self.rows), F)
        mean, inv, c0 = self.mean[row], self.inv[row], self.c0[row]
        log = math.log
        for c, v in zip(idx, vals, strict=True):
            e = st[c]
            n = e[0] + w
            m_old = e[1]
            m = m_old + (w / n) * (v - m_old)
            S = e[2] + w * (v - m_old) * (v - m)
            e[0], e[1], e[2] = n, m, S
            mean[c] = m
            var = S / (n - 1.0) if n > 1.0 else 0.0
            if var > 0.0:
                inv[c] = -0.5 / var
                c0[c] = -_HALF_LOG_TAU - 0.5 * log(var)
            else:
                inv[c] = c0[c] = 0.0

    def loglik(self, x: dict) -> np.ndarray | None:
        """Sum over the features of ``x`` of each class row's log-density (``None``: not numeric)."""
        F, R = len(self.cols), len(self.rows)
        get = x.get
        try:
            v = np.fromiter((get(f, math.nan) for f in self.cols), dtype=float, count=F)
        except (TypeError, ValueError):
            return None
        present = v == v  # NaN marks a feature missing from x
        if not present.all():
            v = np.where(present, v, 0.0)
            inv, c0 = self.inv[:R, :F] * present, self.c0[:R, :F] * present
        else:
            inv, c0 = self.inv[:R, :F], self.c0[:R, :F]
        d = v - self.mean[:R, :F]
        return (d * d * inv + c0).sum(axis=1)


class _VectorNBALeaf(LeafNaiveBayesAdaptive):
    """river's naive-Bayes-adaptive leaf with the Gaussian statistics mirrored in arrays."""

    def __init__(self, stats, depth, splitter, **kwargs) -> None:
        super().__init__(stats, depth, splitter, **kwargs)
        self._table: _GaussianTable | None = _GaussianTable()

    def _nb_proba(self, x: dict) -> dict:
        stats = self.stats
        total = sum(stats.values())
        if not stats or total == 0:
            return {}
        table = self._table
        ll = None
        if table is not None:
            ll = table.loglik(x) if table.cols else ()
        if ll is None:  # nominal features (or odd values): river's own computation
            return do_naive_bayes_prediction(x, stats, self.splitters)
        rows = table.rows if len(ll) else {}
        votes: dict[Any, float] = {}
        for c, cw in stats.items():
            if cw > 0:
                r = rows.get(c)
                votes[c] = math.log(cw / total) + (float(ll[r]) if r is not None else 0.0)
            else:
                votes[c] = 0.0
        top = max(votes.values())
        lse = top + math.log(sum(math.exp(v - top) for v in votes.values()))
        return {c: math.exp(v - lse) for c, v in votes.items()}

    def learn_one(self, x, y, *, w=1.0, tree=None):
        active = self.is_active()
        if active:
            stats = self.stats
            if len(stats) == 0 or max(stats, key=stats.get) == y:
                self._mc_correct_weight += w
            nb = self._nb_proba(x)
            if nb and max(nb, key=nb.get) == y:
                self._nb_correct_weight += w
        # the majority-class leaf's learn_one: class counts, then river's splitters
        super(LeafNaiveBayesAdaptive, self).learn_one(x, y, w=w, tree=tree)
        if active and self._table is not None:
            nominal = tree.nominal_attributes if tree is not None else None
            cols = self._table.cols
            idx, vals = [], []
            for f, v in x.items():
                if v is None:
                    continue
                if (nominal is not None and f in nominal) or not isinstance(v, numbers.Number):
                    self._table = None  # river's NB from now on (handles nominal splitters)
                    return
                c = cols.get(f)
                if c is None:
                    c = cols[f] = len(cols)
                idx.append(c)
                vals.append(v)
            self._table.update(idx, vals, y, w)

    def prediction(self, x, *, tree=None):
        if self.is_active() and self._nb_correct_weight >= self._mc_correct_weight:
            return self._nb_proba(x)
        stats = self.stats  # river's normalize_values_in_dict, without its deep copy
        total = sum(stats.values())
        return {c: v / total for c, v in stats.items()} if total else dict(stats)

    def activate(self):
        if not self.is_active():
            self._table = _GaussianTable()  # river restarts the splitters empty too
        super().activate()

    def deactivate(self):
        super().deactivate()
        self._table = None


class FastHoeffdingTreeClassifier(tree.HoeffdingTreeClassifier):
    """``river.tree.HoeffdingTreeClassifier`` with vectorised naive-Bayes-adaptive leaves.

    Same parameters and same learned trees as river's; only ``leaf_prediction="nba"`` (the
    default) leaves are replaced, the other leaf kinds are river's own.

    Examples
    --------
    >>> from river import datasets
    >>> from models.hoeffding import FastHoeffdingTreeClassifier
    >>> model = FastHoeffdingTreeClassifier(grace_period=50)
    >>> for x, y in datasets.Phishing().take(300):
    ...     model.learn_one(x, y)
    >>> model.predict_one(x) in (True, False)
    True
    """

    def _new_leaf(self, initial_stats=None, parent=None):
        if self._leaf_prediction != self._NAIVE_BAYES_ADAPTIVE:
            return super()._new_leaf(initial_stats, parent)
        depth = 0 if parent is None else parent.depth + 1
        return _VectorNBALeaf(initial_stats or {}, depth, self.splitter)
