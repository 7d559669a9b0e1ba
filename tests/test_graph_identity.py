"""The node-property learner's faster per-edge path gives the same predictions, bit for bit,
as the path it replaced (the propagated vote as first written, commit dc0b320).

The faster path refreshes both edge ends' two-hop estimates in one gather
(:func:`models.graph.features.refresh_estimates`), lets the prediction right after the edge
read the source's two-hop column from that refresh instead of recomputing it, and gives the
propagated vote the neighbours and recency weights the input vector already computed. The
reference path below is the former code, kept here verbatim: one refresh per edge end, the
two-hop column recomputed at prediction time, the propagated vote reading the ring again,
``_soft_labels`` through ``np.exp`` even without time decay. Both run side by side on seeded
streams (community and anomaly labels, time decay on and off, evictions, a short ring) and
every returned probability must be equal (``==`` on floats, not approximately). When git and
the former commit are at hand, the former package itself is also run against the current one.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import models.graph.features as features
import models.graph.learner as learner_mod
from models.graph import EdgeStreamState, NodePropertyClassifier
from streamsvc.graphgen import make_edge_stream

ROOT = Path(__file__).resolve().parents[1]
FORMER = "4bdfc9b"  # last commit before the faster path (propagated vote as in dc0b320)


# --------------------------------------------------------------- the former code, verbatim
def _ref_soft_labels(
    st: EdgeStreamState, nbs: np.ndarray, ts: float, n_classes: int, exclude: int = -1
) -> np.ndarray:
    k = len(nbs)
    nb2 = st.nbr[nbs]
    lab2 = st.label[nb2]
    ok = (nb2 >= 0) & (lab2 >= 0) & (st.gen[nb2] == st.nbr_gen[nbs]) & (nb2 != exclude)
    w2 = st.nbr_ts[nbs] - ts
    np.minimum(w2, 0.0, out=w2)
    w2 *= st.lam
    np.exp(w2, out=w2)
    rows = np.arange(0, k * n_classes, n_classes)[:, None] + lab2
    soft = np.bincount(rows[ok], weights=w2[ok], minlength=k * n_classes)
    soft = soft.reshape(k, n_classes).astype(np.float64, copy=False)
    tot = np.add.reduce(soft, axis=1, keepdims=True)
    np.divide(soft, tot, out=soft, where=tot > 0)
    return soft


def _ref_recency(st: EdgeStreamState, nts: np.ndarray, ts: float) -> np.ndarray:
    k = len(nts)
    if st.lam > 0:
        gaps = np.maximum(ts - nts, 0.0)
        w = np.exp((gaps.min() - gaps) * st.lam)
        return w / np.add.reduce(w)
    return np.full(k, 1.0 / k)


def _ref_refresh_estimate(st: EdgeStreamState, s: int, ts: float) -> None:
    c = st.n_est
    if not c or st.label[s] >= 0:
        return
    nbs, nts, _, _ = st.neighbours_of(s)
    if not len(nbs):
        return
    wts = _ref_recency(st, nts, ts)
    lab = st.label[nbs]
    known = lab >= 0
    two = np.bincount(lab[known], weights=wts[known], minlength=c)[:c].astype(np.float64)
    if not known.all():
        unk = np.nonzero(~known)[0]
        two += wts[unk] @ _ref_soft_labels(st, nbs[unk], ts, c, exclude=s)
    tot = np.add.reduce(two)
    st.est[s] = two / tot if tot > 0 else 0.0
    st.est_tot[s] = tot  # added with the echo fix (features._without reads it)


def _ref_propagated(
    st: EdgeStreamState,
    s: int,
    ts: float,
    n_classes: int,
    _nbs: object = None,
    _wts: object = None,
    sharpness: tuple[float, ...] = (1.0,),
    age: np.ndarray | None = None,
) -> np.ndarray:
    """The product's rule on neighbours and weights read again, whatever the caller knows."""
    nbs, nts, _, _ = st.neighbours_of(s)
    wts = _ref_recency(st, nts, ts) if len(nbs) else None
    return features.propagated(st, s, ts, n_classes, nbs, wts, sharpness, age)


class _Former(NodePropertyClassifier):
    """The learner with the former per-edge path: one refresh per edge end, no kept two-hop
    histogram (so the prediction recomputes it)."""

    def learn_edge(self, src, dst, ts, w=1.0, x=None) -> None:  # type: ignore[override]
        w = 1.0 if w is None else float(w)
        t = self._check_ts(ts)
        u, v = self.state.learn_edge(src, dst, t, w, x)
        assert self.state.two_hop_cache is None  # nothing kept: context recomputes
        if self._prop and self.classes_:
            _ref_refresh_estimate(self.state, u, t)
            if v != u:
                _ref_refresh_estimate(self.state, v, t)


CASES = [
    ("community", 0, {}),
    ("anomaly", 1, {}),
    ("community", 2, {"half_life": 50.0}),  # time decay: recency weights are not uniform
    ("community", 3, {"max_nodes": 300}),  # evictions: stale ring entries, reused slots
    ("community", 4, {"neighbours": 5, "max_nodes": 200, "half_life": 5.0}),
]


def _outputs(model: NodePropertyClassifier, msgs: list[dict]) -> list[dict]:
    return [model.learn_predict(m) for m in msgs]


@pytest.mark.parametrize(("task", "seed", "kw"), CASES)
def test_faster_path_gives_the_former_predictions_bit_for_bit(
    task: str, seed: int, kw: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    msgs = list(make_edge_stream(2500, seed, task=task))
    hits = []
    kept = features._cached_two_hop

    def counted(*a: object) -> object:
        two = kept(*a)
        hits.append(two is not None)
        return two

    with monkeypatch.context() as m:
        m.setattr(features, "_cached_two_hop", counted)
        new = NodePropertyClassifier(seed=seed, **kw)
        got = _outputs(new, msgs)
    # the faster path was taken: predictions for unlabelled sources read the kept histogram
    assert sum(hits) > 50, (sum(hits), len(hits))
    with monkeypatch.context() as m:
        m.setattr(features, "_soft_labels", _ref_soft_labels)
        m.setattr(learner_mod, "propagated", _ref_propagated)
        former = _Former(seed=seed, **kw)
        want = _outputs(former, msgs)
    assert len(got) == len(want) == len(msgs)
    assert sum(1 for p in got if p) > 0.9 * len(msgs)
    diff = [i for i, (a, b) in enumerate(zip(got, want, strict=True)) if a != b]
    assert not diff, f"{len(diff)} differing predictions, first at message {diff[0]}"
    np.testing.assert_array_equal(new.state.est, former.state.est)
    assert new.mixture_weights() == former.mixture_weights()


def test_kept_two_hop_histogram_is_dropped_on_any_state_change() -> None:
    L = NodePropertyClassifier(seed=0)
    L.learn_node("a", "red", ts=0.0)
    for t, (u, v) in enumerate([("a", "b"), ("b", "c"), ("c", "d"), ("d", "b")], start=1):
        L.learn_edge(u, v, ts=float(t))
    st = L.state
    kept = st.two_hop_cache
    assert kept is not None and kept[0] == 4.0
    assert {s for s, _ in kept[1]} == {st.slot("d"), st.slot("b")}
    L.learn_node("c", "blue", ts=4.0)  # a label changes what b's neighbours vote
    assert st.two_hop_cache is None
    L.learn_edge("d", "b", ts=5.0)
    assert st.two_hop_cache is not None
    assert features._cached_two_hop(st, st.slot("b"), 6.0, 2) is None  # another time
    st.slot("zz", 5.0, create=True)  # a new node (may evict): dropped too
    assert st.two_hop_cache is None
