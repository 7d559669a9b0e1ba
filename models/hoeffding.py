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

Also river's results, cheaper (issue 11: DriftMoE's experts learn with Poisson weights, which
makes them attempt splits ~6x as often): the split search of a leaf (Gaussian splitters,
information gain) is inlined with the same floating-point operations in the same order (same
merits to the last bit, ~1/3 of river's cost), the splitters' statistics are updated inline,
a (feature, class) Gaussian is created without seeding a random generator, the root-to-leaf
walk is a loop, and the naive-Bayes answer a prediction computed is reused by the
``learn_one`` that follows on the same ``x``.
"""

from __future__ import annotations

import math
import numbers
import random
from typing import Any

import numpy as np
from river import stats, tree
from river.proba import Gaussian
from river.tree.nodes.branch import DTBranch, NumericBinaryBranch
from river.tree.nodes.htc_nodes import LeafNaiveBayesAdaptive
from river.tree.nodes.leaf import HTLeaf
from river.tree.split_criterion import InfoGainSplitCriterion
from river.tree.splitter import GaussianSplitter
from river.tree.utils import BranchFactory, do_naive_bayes_prediction

__all__ = ["FastHoeffdingTreeClassifier"]

_HALF_LOG_TAU = 0.5 * math.log(2.0 * math.pi)
_SQRT2 = math.sqrt(2.0)


def _entropy(dist: dict) -> float:
    """river's ``InfoGainSplitCriterion._compute_entropy_dict``, same operations."""
    return _entropy_of(dist.values())


def _entropy_of(values) -> float:
    log2 = math.log2
    entropy = 0.0
    dis_sums = 0.0
    for d in values:
        if d > 0.0:
            entropy -= d * log2(d)
            dis_sums += d
    return (entropy + dis_sums * log2(dis_sums)) / dis_sums if dis_sums > 0.0 else 0.0


def _gaussian_best_split(
    sp: GaussianSplitter, min_frac: float, pre_entropy: float, att_idx: Any
) -> BranchFactory:
    """``GaussianSplitter.best_evaluated_split_suggestion`` under information gain, inlined.

    Same candidate points, same class distributions, same merits (the same floating-point
    operations in the same order as river's splitter, ``Gaussian.cdf`` and
    ``InfoGainSplitCriterion``: the class weights of a side are summed and their entropy
    taken in the splitter's class order), without river's per-candidate dictionaries and
    method calls; a split attempt costs about a quarter. ``pre_entropy`` is the entropy of
    the leaf's class counts.
    """
    mins, maxs = sp._min_per_class, sp._max_per_class
    min_value, max_value = math.inf, -math.inf
    classes = []
    for k, est in sp._att_dist_per_class.items():
        lo, hi = mins[k], maxs[k]
        if lo < min_value:
            min_value = lo
        if hi > max_value:
            max_value = hi
        var = est._var
        n = var.mean.n
        v = var._S / (n - var.ddof) if n > var.ddof else 0.0
        classes.append((k, n, var.mean._mean, v**0.5, lo, hi))
    if min_value == math.inf:
        return BranchFactory()
    bin_size = (max_value - min_value) / (sp.n_splits + 1.0)
    erf = math.erf
    best_merit, best_value = -math.inf, None
    for i in range(sp.n_splits):
        split_value = min_value + (bin_size * (i + 1))
        if not min_value < split_value < max_value:
            continue
        lv: list = []
        rv: list = []
        for _, n, mu, sigma, lo, hi in classes:
            if split_value < lo:
                rv.append(n)
            elif split_value >= hi:
                lv.append(n)
            else:
                c = 0.5 * (1.0 + erf(((split_value - mu) / sigma) / _SQRT2)) if sigma else 0.0
                left = c * n
                lv.append(left)
                rv.append(n - left)
        wl, wr = sum(lv), sum(rv)
        total = 0.0 + wl + wr
        if total > 0 and (wl / total > min_frac) + (wr / total > min_frac) >= 2:
            merit = pre_entropy - (wl * _entropy_of(lv) + wr * _entropy_of(rv)) / total
            if merit > best_merit:
                best_merit, best_value = merit, split_value
    if best_value is None:
        return BranchFactory()
    return BranchFactory(
        best_merit, att_idx, best_value, sp._class_dists_from_binary_split(best_value)
    )


def _new_gaussian() -> Gaussian:
    """``river.proba.Gaussian()`` without seeding a ``random.Random`` per estimator (only its
    ``sample`` uses it; a tree never samples): a leaf creates one per (feature, class)."""
    g = Gaussian.__new__(Gaussian)
    g.seed = None
    g._rng = _SHARED_RNG
    g._var = stats.Var(ddof=1)
    return g


_SHARED_RNG = random.Random(0)
_BRANCH_TYPES: dict[type, bool] = {}


def _is_branch(t: type) -> bool:
    """``issubclass(t, DTBranch)``, cached (``isinstance`` on river's abstract node classes
    goes through ``abc`` and showed up in profiles of the root-to-leaf walk)."""
    b = _BRANCH_TYPES.get(t)
    if b is None:
        b = _BRANCH_TYPES[t] = issubclass(t, DTBranch)
    return b


def _child(node: Any, x: dict) -> Any:
    """The child a branch sends ``x`` to (``KeyError`` when it cannot route it: its feature
    is missing or the category unseen), or None at a leaf. River's ``branch_no`` inlined for
    numeric splits, the common case of the root-to-leaf walk."""
    t = type(node)
    if t is NumericBinaryBranch:
        return node.children[0 if x[node.feature] <= node.threshold else 1]
    if _is_branch(t):
        return node.next(x)
    return None


class _GaussianTable:
    """Per-(class, feature) weighted Welford statistics, rows = classes, columns = features.

    The running statistics are Python floats (one update touches a handful of them, where
    numpy's per-call overhead would dominate), and so are the two derived values a prediction
    needs per cell, kept per row in ``py`` (mean, inv, c0):
    ``log N(v; mu, var) = (v - mu)^2 * inv + c0`` where valid, ``inv = c0 = 0`` where river
    would skip the term (fewer than two observations or zero variance).

    A small table (at most ``PY_CELLS`` class × feature cells) is evaluated in plain Python:
    numpy's per-call cost is ~4 µs whatever the size, more than the arithmetic of, say,
    2 classes × 3 features. A larger one is evaluated in a few numpy operations over arrays
    (``mean``, ``inv``, ``c0``) that mirror ``py`` from the moment the table first needs
    them. Same terms either way; the additions may associate differently (the last bit).
    """

    __slots__ = ("cols", "rows", "stats", "mean", "inv", "c0", "py")
    PY_CELLS = 60

    def __init__(self) -> None:
        self.cols: dict[Any, int] = {}
        self.rows: dict[Any, int] = {}
        self.stats: list[list[list[float]]] = []  # row -> col -> [n, mean, S]
        self.py: list[tuple[list[float], list[float], list[float]]] = []  # row: mean, inv, c0
        self.mean: np.ndarray | None = None  # numpy mirrors of `py`, once the table is large
        self.inv: np.ndarray | None = None
        self.c0: np.ndarray | None = None

    def __setstate__(self, state: Any) -> None:
        for k, v in (state[1] if isinstance(state, tuple) else state).items():
            setattr(self, k, v)
        if not hasattr(self, "py"):  # pickled before the Python mirrors existed
            F = len(self.cols)
            self.py = [tuple(a[r, :F].tolist() for a in (self.mean, self.inv, self.c0))
                       for r in range(len(self.rows))]

    def _arrays(self) -> None:
        """Build (or grow) the numpy mirrors so that they hold every row and column."""
        rows, cols = len(self.rows), len(self.cols)
        if self.mean is not None:
            r, c = self.mean.shape
            if rows <= r and cols <= c:
                return
            rows, cols = max(rows, r if rows <= r else 2 * r), max(cols, c if cols <= c else 2 * c)
        else:
            rows, cols = max(rows, 2), max(cols, 4)
        for k, name in enumerate(("mean", "inv", "c0")):
            new = np.zeros((rows, cols))
            for r, row in enumerate(self.py):
                new[r, :len(row[k])] = row[k]
            setattr(self, name, new)

    def row_of(self, y: Any) -> int:
        """The row of class ``y`` (created empty on first use)."""
        row = self.rows.get(y)
        if row is None:
            row = self.rows[y] = len(self.rows)
            self.stats.append([])
            self.py.append(([], [], []))
        return row

    def put(self, row: int, cells: list[tuple[int, float, float, float]]) -> None:
        """Store cells' weighted Welford statistics ``(column, n, mean, S)`` in ``row`` and
        derive their log-density terms (in the numpy mirrors too, once a table has them)."""
        st = self.stats[row]
        pm, pi, pc = self.py[row]
        F = len(self.cols)
        while len(st) < F:
            st.append([0.0, 0.0, 0.0])
        while len(pm) < F:
            pm.append(0.0)
            pi.append(0.0)
            pc.append(0.0)
        arrays = self.mean is not None
        if arrays:  # a large table: its arrays are kept in step
            self._arrays()
            am, ai, ac = self.mean[row], self.inv[row], self.c0[row]
        log = math.log
        for c, n, m, S in cells:
            e = st[c]
            e[0], e[1], e[2] = n, m, S
            pm[c] = m
            var = S / (n - 1.0) if n > 1.0 else 0.0
            if var > 0.0:
                pi[c] = -0.5 / var
                pc[c] = -_HALF_LOG_TAU - 0.5 * log(var)
            else:
                pi[c] = pc[c] = 0.0
            if arrays:
                am[c], ai[c], ac[c] = m, pi[c], pc[c]

    def update(self, idx: list[int], vals: list[float], y: Any, w: float) -> None:
        """One weighted example of class ``y``: values ``vals`` in columns ``idx``."""
        row = self.row_of(y)
        st = self.stats[row]
        while len(st) < len(self.cols):
            st.append([0.0, 0.0, 0.0])
        cells = []
        for c, v in zip(idx, vals, strict=True):
            n, m_old, S = st[c]
            n += w
            m = m_old + (w / n) * (v - m_old)
            cells.append((c, n, m, S + w * (v - m_old) * (v - m)))
        self.put(row, cells)

    def loglik(self, x: dict) -> Any:
        """Sum over the features of ``x`` of each class row's log-density, one per row
        (``None``: a value is not numeric)."""
        F, R = len(self.cols), len(self.rows)
        if F * R <= self.PY_CELLS:
            return self._loglik_py(x)
        if self.mean is None:
            self._arrays()
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

    def _loglik_py(self, x: dict) -> list[float] | None:
        """`loglik` of a small table in plain Python: a missing or NaN value adds nothing
        (numpy adds 0.0), a non-numeric one gives None (river's own computation)."""
        vals = [(c, v) for c, v in enumerate(map(x.get, self.cols)) if v is not None and v == v]
        out = []
        try:
            for pm, pi, pc in self.py:
                s = 0.0
                for c, v in vals:
                    if c < len(pm):
                        d = v - pm[c]
                        s += d * d * pi[c] + pc[c]
                out.append(s)
        except TypeError:
            return None
        return out


def _subspace_size(spec: int | float | str, n: int) -> int:
    """How many of ``n`` features a leaf watches for splits (``spec``: see the tree)."""
    if spec == "sqrt":
        k = round(math.sqrt(n))
    elif isinstance(spec, float):
        k = int(spec * n)
    else:
        k = int(spec)
    return min(n, max(1, k))


class _VectorNBALeaf(LeafNaiveBayesAdaptive):
    """river's naive-Bayes-adaptive leaf with the Gaussian statistics mirrored in arrays.

    With a split subspace (``_sub_spec`` set by the tree), the leaf's splitters watch only a
    random subset of the features, drawn when it first learns (ARF's random leaves); its
    naive-Bayes model keeps using every feature.
    """

    _sub_spec: int | float | str | None = None  # split subspace size (None: every feature)
    _sub_rng: random.Random | None = None

    def __init__(self, stats, depth, splitter, **kwargs) -> None:
        super().__init__(stats, depth, splitter, **kwargs)
        self._table: _GaussianTable | None = _GaussianTable()
        self._subspace: tuple | None = None

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
            last = getattr(tree, "_nb_last", None)
            if last is not None and last[0] is self and last[1] == x:
                nb = last[2]  # computed by the prediction on this x, stats unchanged since
            else:
                nb = self._nb_proba(x)
            if nb and max(nb, key=nb.get) == y:
                self._nb_correct_weight += w
        # the majority-class leaf's learn_one: class counts, then river's splitters (and the
        # naive-Bayes table with them, when `update_splitters` sees every feature)
        self._table_done = False
        super(LeafNaiveBayesAdaptive, self).learn_one(x, y, w=w, tree=tree)
        if active and self._table is not None and not self._table_done:
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

    def update_splitters(self, x, y, w, nominal_attributes):
        # river's, with the Gaussian splitters' update (min, max, weighted Welford) inlined:
        # the same operations in the same order, ~1/3 of the cost per feature
        if type(self)._iter_features is not HTLeaf._iter_features:
            return super().update_splitters(x, y, w, nominal_attributes)
        splitters = self.splitters
        disabled = self._disabled_attrs
        items = x.items()
        if self._sub_spec is not None:
            sub = self._subspace
            if sub is None:
                keys = sorted(x, key=repr)  # not x's order: the same draw for any order
                k = _subspace_size(self._sub_spec, len(keys))
                if k < len(keys):
                    keys = self._sub_rng.sample(keys, k)
                sub = self._subspace = tuple(keys)
            items = [(f, x[f]) for f in sub if f in x]
        # Every feature goes through a splitter here (no subspace, none disabled): the
        # naive-Bayes table's statistics for (class, feature) are the Gaussian splitter's own
        # (the same weighted Welford, the same operations from the same zero start), so the
        # table takes them from it instead of computing them a second time.
        table = self._table
        merge = table is not None and self._sub_spec is None and not disabled
        if merge:
            t_cols = table.cols
            row = table.row_of(y)
            cells: list[tuple[int, float, float, float]] = []
        for att_id, att_val in items:
            if att_id in disabled:
                continue
            sp = splitters.get(att_id)
            if sp is None:
                if (
                    nominal_attributes is not None and att_id in nominal_attributes
                ) or not isinstance(att_val, numbers.Number):
                    sp = self.new_nominal_splitter()
                else:
                    sp = self.splitter.clone()
                splitters[att_id] = sp
            if type(sp) is not GaussianSplitter or att_val is None:
                if merge and att_val is not None:  # a category: river's NB from now on
                    self._table = table = None
                    merge = False
                sp.update(att_val, y, w)
                continue
            est = sp._att_dist_per_class.get(y)
            if est is None:
                est = sp._att_dist_per_class[y] = _new_gaussian()
                sp._min_per_class[y] = att_val
                sp._max_per_class[y] = att_val
            if att_val < sp._min_per_class[y]:
                sp._min_per_class[y] = att_val
            if att_val > sp._max_per_class[y]:
                sp._max_per_class[y] = att_val
            var = est._var
            mean = var.mean
            m_old = mean._mean
            mean.n += w
            mean._mean += (w / mean.n) * (att_val - mean._mean)
            var._S += w * (att_val - m_old) * (att_val - mean._mean)
            if merge:
                c = t_cols.get(att_id)
                if c is None:
                    c = t_cols[att_id] = len(t_cols)
                cells.append((c, mean.n, mean._mean, var._S))
        if merge:
            table.put(row, cells)
            self._table_done = True

    def best_split_suggestions(self, criterion, tree):
        if type(criterion) is not InfoGainSplitCriterion:
            return super().best_split_suggestions(criterion, tree)
        pre = self.stats
        maj_class = max(pre.values())  # river's LeafMajorityClass check, first
        if maj_class and maj_class / self.total_weight > tree.max_share_to_split:
            return [BranchFactory()]
        out = [BranchFactory()] if tree.merit_preprune else []
        pre_entropy = _entropy(pre)
        frac = criterion.min_branch_fraction
        for att_id, sp in self.splitters.items():
            if type(sp) is GaussianSplitter:
                out.append(_gaussian_best_split(sp, frac, pre_entropy, att_id))
            else:
                out.append(
                    sp.best_evaluated_split_suggestion(criterion, pre, att_id, tree.binary_split)
                )
        return out

    def prediction(self, x, *, tree=None):
        if self.is_active() and self._nb_correct_weight >= self._mc_correct_weight:
            nb = self._nb_proba(x)
            if tree is not None:  # test-then-train: the next learn_one on x reuses it
                tree._nb_last = (self, dict(x), nb)
            return nb
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

    One addition, off by default: ``split_features`` (``"sqrt"``, a count, or a fraction of
    the features) makes each ``nba`` leaf consider only a random subset of the features for
    its split, drawn when the leaf first learns — the random subspaces of ARF's trees
    (``max_features``). Trees grown from the same data then differ, and a split attempt
    costs a fraction of a full one; the leaves' naive-Bayes models still use every feature.
    ``seed`` seeds the draws.

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

    _nb_last: tuple | None = None  # (leaf, x, its naive-Bayes answer) of the last prediction

    def __init__(
        self,
        grace_period: int = 200,
        max_depth: int | None = None,
        split_criterion: str = "info_gain",
        delta: float = 1e-7,
        tau: float = 0.05,
        leaf_prediction: str = "nba",
        nb_threshold: int = 0,
        nominal_attributes: list | None = None,
        splitter=None,
        binary_split: bool = False,
        min_branch_fraction: float = 0.01,
        max_share_to_split: float = 0.99,
        max_size: float = 100.0,
        memory_estimate_period: int = 1000000,
        stop_mem_management: bool = False,
        remove_poor_attrs: bool = False,
        merit_preprune: bool = True,
        split_features: int | float | str | None = None,
        seed: int | None = None,
    ) -> None:
        super().__init__(
            grace_period=grace_period,
            max_depth=max_depth,
            split_criterion=split_criterion,
            delta=delta,
            tau=tau,
            leaf_prediction=leaf_prediction,
            nb_threshold=nb_threshold,
            nominal_attributes=nominal_attributes,
            splitter=splitter,
            binary_split=binary_split,
            min_branch_fraction=min_branch_fraction,
            max_share_to_split=max_share_to_split,
            max_size=max_size,
            memory_estimate_period=memory_estimate_period,
            stop_mem_management=stop_mem_management,
            remove_poor_attrs=remove_poor_attrs,
            merit_preprune=merit_preprune,
        )
        if split_features is not None and not (
            split_features == "sqrt"
            or (isinstance(split_features, float) and 0.0 < split_features <= 1.0)
            or (isinstance(split_features, int) and split_features >= 1)
        ):
            raise ValueError(
                f"split_features must be 'sqrt', an int >= 1 or a float in (0, 1], "
                f"got {split_features!r}"
            )
        self.split_features = split_features
        self.seed = seed
        self._sub_rng = random.Random(seed)

    def learn_one(self, x, y, *, w=1.0):
        # river's, with the root-to-leaf walk as a loop; an example that stops at a branch
        # (its split feature missing, or an unseen category) takes river's own code
        root = self._root
        p_node, node = None, root
        while True:
            try:
                child = _child(node, x)
            except KeyError:
                break
            if child is None:
                break
            p_node, node = node, child
        if root is None or not isinstance(node, HTLeaf):
            super().learn_one(x, y, w=w)
            self._nb_last = None
            return
        self.classes.add(y)
        self._train_weight_seen_by_model += w
        node.learn_one(x, y, w=w, tree=self)
        self._nb_last = None  # the leaf's statistics (and maybe the tree) changed
        if self._growth_allowed and node.is_active():
            if node.depth >= self.max_depth:
                node.deactivate()
                self._n_active_leaves -= 1
                self._n_inactive_leaves += 1
            else:
                weight_seen = node.total_weight
                if weight_seen - node.last_split_attempt_at >= self.grace_period:
                    p_branch = p_node.branch_no(x) if isinstance(p_node, DTBranch) else None
                    self._attempt_to_split(node, p_node, p_branch)
                    node.last_split_attempt_at = weight_seen
        if self._train_weight_seen_by_model % self.memory_estimate_period == 0:
            self._estimate_model_size()

    def predict_proba_one(self, x):
        # river's, with the root-to-leaf walk as a loop instead of nested generators (the
        # same path: a branch that cannot route x continues down its most common path)
        proba = {c: 0.0 for c in sorted(self.classes)}
        node = self._root
        if node is not None:
            while True:
                try:
                    child = _child(node, x)
                except KeyError:
                    child = node.most_common_path()[1]
                if child is None:
                    break
                node = child
            proba.update(node.prediction(x, tree=self))
        return proba

    def _new_leaf(self, initial_stats=None, parent=None):
        if self._leaf_prediction != self._NAIVE_BAYES_ADAPTIVE:
            return super()._new_leaf(initial_stats, parent)
        depth = 0 if parent is None else parent.depth + 1
        leaf = _VectorNBALeaf(initial_stats or {}, depth, self.splitter)
        if self.split_features is not None:
            leaf._sub_spec, leaf._sub_rng = self.split_features, self._sub_rng
        return leaf
