"""Label-free drift detection on a stream's inputs (and, optionally, its predictions).

Why: real labels come late or never, and then an error-rate detector sees nothing. What can
always be watched is the distribution of what comes in (and of what the model answers).

How, with bounded memory and a cheap per-event cost:

* the first ``reference`` events give each feature its bins — quantile cut points for a
  numeric feature (so the reference is spread evenly over them; repeated values collapse
  into one bin), the most frequent values for a categorical one (the rest share an "other"
  bin); a missing value has its own bin;
* after that, each event costs one ``bisect`` (numeric) or one dict lookup (categorical) and
  one counter increment per feature;
* every ``check_every`` events the last ``window`` events' bin counts are compared with the
  reference counts by a two-sample chi-square test (Bonferroni-corrected over the features)
  and the population stability index (PSI) — a feature "moved" when the test rejects at
  ``alpha`` *and* its PSI is at least ``min_psi`` (a shift too small to matter is not news,
  and a slight dependence between events cannot raise an alarm on its own);
* after a drift, the reference is rebuilt from the events that follow.

The prediction, passed as ``update(x, y_pred)``, is watched like one more categorical
feature named ``PREDICTION``.

>>> import random
>>> rng = random.Random(1)
>>> det = DataDriftDetector(reference=1000, window=500, check_every=100)
>>> for t in range(6000):
...     shift = 1.0 if t >= 3000 else 0.0       # one standard deviation, in feature "a"
...     x = {"a": rng.gauss(shift, 1.0), "b": rng.gauss(0.0, 1.0), "c": rng.choice("xyz")}
...     if det.update(x):
...         print(t, det.drifted_features)
3199 ['a']
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections import Counter
from statistics import NormalDist
from typing import Any

import numpy as np

__all__ = ["PREDICTION", "DataDriftDetector"]

#: name under which the prediction distribution is reported
PREDICTION = "(prediction)"


class _Missing:
    """The categorical key of a missing value: one object, also after a pickle round trip (a
    plain ``object()`` came back from a checkpoint as another object, and a restored
    detector then counted missing values as "other")."""

    def __reduce__(self) -> str:
        return "_MISSING"

    def __repr__(self) -> str:
        return "_MISSING"


_MISSING = _Missing()


def chi2_critical(p: float, df: int) -> float:
    """Upper ``p`` quantile of a chi-square with ``df`` degrees of freedom (Wilson–Hilferty).

    Accurate to a few percent in the far tail, which is all a detection threshold needs, and
    it keeps scipy out of the dependencies.
    """
    z = NormalDist().inv_cdf(1.0 - p)
    k = 2.0 / (9.0 * df)
    return df * (1.0 - k + z * math.sqrt(k)) ** 3


class _Feature:
    """Bins, reference counts and the recent block counts of one watched feature."""

    __slots__ = ("name", "numeric", "edges", "cats", "n_bins", "ref", "blocks", "cur", "labels",
                 "buf")

    def __init__(self, name: str, values: list[Any], bins: int, max_categories: int,
                 n_blocks: int, categorical: bool = False) -> None:
        self.name = name
        present = [v for v in values if v is not None]
        self.numeric = not categorical and bool(present) and all(
            isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
            for v in present)
        if self.numeric:
            qs = np.quantile(np.asarray(present, dtype=float), np.linspace(0, 1, bins + 1)[1:-1])
            self.edges = sorted(set(float(q) for q in qs))
            self.cats: dict[Any, int] = {}
            self.n_bins = len(self.edges) + 2  # bins between edges, then "missing"
            self.labels = None
        else:
            common = Counter(v if v is not None else _MISSING for v in values)
            keep = [v for v, c in common.most_common(max_categories)
                    if c >= 0.01 * len(values) and v is not _MISSING]
            self.edges = []
            self.cats = {v: i for i, v in enumerate(keep)}
            self.cats[_MISSING] = len(keep) + 1
            self.n_bins = len(keep) + 2  # kept categories, "other", "missing"
            self.labels = [str(v) for v in keep] + ["(other)", "(missing)"]
        self.ref = np.zeros(self.n_bins)
        for v in values:
            self.ref[self.index(v)] += 1
        self.blocks = np.zeros((n_blocks, self.n_bins))
        self.cur = [0] * self.n_bins
        self.buf: list[Any] = []  # a numeric feature's raw values of the current block

    def block_counts(self) -> np.ndarray:
        """The current block's counts: ``cur``, plus the buffered values of a numeric feature
        binned at once (`searchsorted` on the edges is `bisect_right` value by value: the same
        bins for floats, NaN and infinities included, and for integers a float represents
        exactly; any other value, e.g. missing, goes through `index` one by one)."""
        buf, counts = self.buf, np.array(self.cur, dtype=float)
        if not buf:
            return counts
        kinds = set(map(type, buf))
        if kinds <= {float, int}:
            arr = np.array(buf, dtype=float)
            if int not in kinds or float(np.abs(np.nan_to_num(arr, posinf=0.0, neginf=0.0)).max()) < 2.0 ** 53:
                idx = np.searchsorted(np.array(self.edges, dtype=float), arr, side="right")
                return counts + np.bincount(idx, minlength=self.n_bins)
        for v in buf:
            counts[self.index(v)] += 1
        return counts

    def index(self, v: Any) -> int:
        if self.numeric:
            try:
                return bisect_right(self.edges, v)
            except TypeError:  # missing or not a number
                return self.n_bins - 1
        try:
            return self.cats.get(_MISSING if v is None else v, self.n_bins - 2)
        except TypeError:  # unhashable: counts as "other"
            return self.n_bins - 2


class DataDriftDetector:
    """Per-feature distribution-shift detector that needs no labels (river-style API).

    Parameters
    ----------
    reference
        Events that form the reference distribution (also: after each drift).
    window
        Events in the current window compared with the reference; a multiple of
        ``check_every``.
    check_every
        Events between two tests; the per-event cost does not depend on it.
    bins
        Quantile bins per numeric feature.
    max_categories
        Most frequent values kept per categorical feature (values under 1% share "other").
    alpha
        Probability of a false alarm per test, shared by all features (Bonferroni).
    min_psi
        Smallest population stability index that counts as a move (0.1 is the usual
        "moderate shift" mark).
    max_features
        Features watched at most (the first ones seen); bounds memory and cost.
    """

    def __init__(self, reference: int = 2000, window: int = 1000, check_every: int = 250,
                 bins: int = 10, max_categories: int = 20, alpha: float = 1e-6,
                 min_psi: float = 0.1, max_features: int = 200) -> None:
        if window % check_every or window < check_every:
            raise ValueError("window must be a positive multiple of check_every")
        if reference < 2 * bins:
            raise ValueError("reference must hold at least two events per bin")
        self.reference = reference
        self.window = window
        self.check_every = check_every
        self.bins = bins
        self.max_categories = max_categories
        self.alpha = alpha
        self.min_psi = min_psi
        self.max_features = max_features
        self._n_blocks = window // check_every
        self._crit: dict[int, float] = {}
        self.drift_detected = False
        self.drifted_features: list[str] = []
        self.evidence: dict[str, dict[str, Any]] = {}
        self.n_detections = 0
        self.n_seen = 0
        self._reset()

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        for f in self._feats + ([self._pred] if self._pred is not None else []):
            if not hasattr(f, "buf"):  # pickled before numbers were binned a block at a time
                f.buf = []
        if "_raw" not in state:  # pickled before the per-event tuples existed
            self._fast, self._raw, self._fast_pred = [], [], None
            if self._collect is None:
                self._bind()

    def _reset(self) -> None:
        self._collect: dict[str, list[Any]] | None = {}
        self._feats: list[_Feature] = []
        self._pred: _Feature | None = None
        self._fast: list[tuple] = []
        self._raw: list[tuple[str, list[Any]]] = []
        self._fast_pred: tuple | None = None
        self._since = 0  # events since the reference started
        self._filled = 0  # blocks filled since the reference was built

    # -- per event ---------------------------------------------------------------------------
    def update(self, x: dict[str, Any], y_pred: Any = None) -> bool:
        """Account for one event (and the model's prediction for it); True on a drift."""
        self.n_seen += 1
        self.drift_detected = False
        if self._collect is not None:
            self._gather(x, y_pred)
            return False
        get = x.get
        for name, buf in self._raw:  # numbers: binned a block at a time (`block_counts`)
            buf.append(get(name))
        for name, cats, other, cur in self._fast:  # categories: `_Feature.index`, inlined
            v = get(name)
            try:
                cur[cats.get(_MISSING if v is None else v, other)] += 1
            except TypeError:  # unhashable: counts as "other"
                cur[other] += 1
        p = self._fast_pred
        if p is not None:  # the prediction: a categorical feature
            cats, other, cur = p
            try:
                cur[cats.get(_MISSING if y_pred is None else y_pred, other)] += 1
            except TypeError:
                cur[other] += 1
        since = self._since = self._since + 1
        if not since % self.check_every:
            self._close_block()
        return self.drift_detected

    def _bind(self) -> None:
        """Per feature, what the per-event loop needs, in one tuple (its current counts
        list is replaced at every block, so this is rebuilt then)."""
        self._raw = [(f.name, f.buf) for f in self._feats if f.numeric]
        self._fast = [(f.name, f.cats, f.n_bins - 2, f.cur) for f in self._feats
                      if not f.numeric]
        p = self._pred
        self._fast_pred = None if p is None else (p.cats, p.n_bins - 2, p.cur)

    def _gather(self, x: dict[str, Any], y_pred: Any) -> None:
        col = self._collect
        assert col is not None
        i = self._since
        if y_pred is not None or PREDICTION in col:
            col.setdefault(PREDICTION, [None] * i).append(y_pred)
        for k, v in x.items():
            vals = col.get(k)
            if vals is None:
                if len(col) >= self.max_features:
                    continue
                vals = col[k] = [None] * i  # emerging feature: missing before
            vals.append(v)
        for vals in col.values():
            if len(vals) <= i:
                vals.append(None)  # disappearing feature
        self._since = i + 1
        if self._since >= self.reference:
            self._build()

    def _build(self) -> None:
        col = self._collect
        assert col is not None
        pred = col.pop(PREDICTION, None)
        self._feats = [_Feature(k, v, self.bins, self.max_categories, self._n_blocks)
                       for k, v in col.items()]
        if pred is not None and any(p is not None for p in pred):
            # predictions are categories even when labels are numbers
            self._pred = _Feature(PREDICTION, pred, self.bins, self.max_categories,
                                  self._n_blocks, categorical=True)
        self._collect = None
        self._since = 0
        self._filled = 0
        self._bind()

    # -- every check_every events ----------------------------------------------------------
    def _close_block(self) -> None:
        slot = (self._since // self.check_every - 1) % self._n_blocks
        watched = self._feats + ([self._pred] if self._pred is not None else [])
        for f in watched:
            f.blocks[slot] = f.block_counts()
            f.cur = [0] * f.n_bins
            f.buf = []
        self._bind()
        self._filled += 1
        if self._filled < self._n_blocks:
            return
        moved: dict[str, dict[str, Any]] = {}
        p = self.alpha / max(1, len(watched))
        for f in watched:
            cur = f.blocks.sum(axis=0)
            ev = self._test(f, cur, p)
            if ev is not None:
                moved[f.name] = ev
        if moved:
            self.drift_detected = True
            self.n_detections += 1
            self.drifted_features = sorted(moved, key=lambda k: -moved[k]["psi"])
            self.evidence = moved
            self._reset()

    def _test(self, f: _Feature, cur: np.ndarray, p: float) -> dict[str, Any] | None:
        ref = f.ref
        used = (ref + cur) > 0
        df = int(used.sum()) - 1
        if df < 1:
            return None
        r, c = ref[used], cur[used]
        nr, nc = r.sum(), c.sum()
        tot = r + c
        er, ec = tot * (nr / (nr + nc)), tot * (nc / (nr + nc))
        stat = float(((r - er) ** 2 / er).sum() + ((c - ec) ** 2 / ec).sum())
        crit = self._crit.get(df)
        if crit is None:
            crit = self._crit[df] = chi2_critical(p, df)
        if stat <= crit:
            return None
        pr, pc = (r + 0.5) / (nr + 0.5 * len(r)), (c + 0.5) / (nc + 0.5 * len(c))
        psi = float(((pc - pr) * np.log(pc / pr)).sum())
        if psi < self.min_psi:
            return None
        ev: dict[str, Any] = {"psi": round(psi, 4), "chi2": round(stat, 1), "df": df,
                              "type": "numeric" if f.numeric else "categorical"}
        if f.numeric:
            ev["bin_edges"] = [round(float(e), 6) for e in f.edges]
        else:
            ev["categories"] = f.labels
        # plain floats: numpy scalars are not JSON for every encoder (the worker's orjson
        # refused them, and the alert was dead-lettered with its event)
        ev["reference_share"] = [round(float(v / nr), 4) for v in ref]
        ev["current_share"] = [round(float(v / nc), 4) for v in cur]
        return ev

    # -- inspection -------------------------------------------------------------------------
    @property
    def ready(self) -> bool:
        """True once a reference is in place (tests are running)."""
        return self._collect is None

    def summary(self) -> dict[str, Any]:
        """Small JSON-able state for a status record."""
        return {"watching": len(self._feats) + (self._pred is not None), "ready": self.ready,
                "detections": self.n_detections, "events": self.n_seen}
