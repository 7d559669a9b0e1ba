"""Shared context columns: outgoing-edge profile and two-hop neighbour labels."""

from __future__ import annotations

import numpy as np
import pytest

from models.graph import EdgeStreamState, NodePropertyClassifier
from models.graph.features import _T, context, context_width, label_columns


def test_outgoing_profile_separates_sent_from_received_edges() -> None:
    st = EdgeStreamState(neighbours=8, max_nodes=100, half_life=None)
    for i in range(3):  # a sends heavy edges with x = +1, receives light ones with x = -1
        st.learn_edge("a", f"out{i}", ts=float(i), w=4.0, x=[1.0, 1.0])
        st.learn_edge(f"in{i}", "a", ts=float(i), w=0.5, x=[-1.0, -1.0])
    s = st.slot("a")
    plain, *_ = context(st, s, 3.0, 0)
    prof, *_ = context(st, s, 3.0, 0, profile=True)
    assert len(plain) == context_width(st) == 4 + _T + 2
    assert len(prof) == context_width(st, profile=True) == 4 + _T + 2 + 2 * 2
    off = 4 + _T
    np.testing.assert_allclose(plain[off : off + 2], [0.0, 0.0], atol=1e-9)  # mixed mean
    assert prof[off] == pytest.approx(0.5)  # share of sent edges (equal recency weights)
    assert prof[off + 1] == pytest.approx(np.log1p(4.0))  # signed-log weight of sent edges
    np.testing.assert_allclose(prof[off + 2 : off + 4], [0.0, 0.0], atol=1e-9)  # mixed mean
    np.testing.assert_allclose(prof[off + 4 : off + 6], [1.0, 1.0])  # sent edges only
    # the fixed part of the context is the same with and without the profile
    np.testing.assert_allclose(prof[: 4 + _T], plain[: 4 + _T])


def test_two_hop_labels_reach_through_unlabelled_neighbours() -> None:
    st = EdgeStreamState(neighbours=8, max_nodes=100, half_life=None)
    st.learn_edge("x", "mid", ts=0.0)  # x -- mid (unlabelled) -- three nodes labelled class 1
    for i in range(3):
        st.learn_edge("mid", f"l{i}", ts=1.0 + i)
        st.set_label(st.slot(f"l{i}"), 1, ts=1.0)
    st.learn_edge("x", "known", ts=5.0)  # and a labelled direct neighbour of class 0
    st.set_label(st.slot("known"), 0, ts=5.0)
    n_classes = 2
    one, *_ = context(st, st.slot("x"), 6.0, n_classes)
    two, *_ = context(st, st.slot("x"), 6.0, n_classes, two_hop=True)
    w = context_width(st)
    assert label_columns(False) == 1 and label_columns(True) == 2
    assert len(one) == w + n_classes and len(two) == w + 2 * n_classes
    np.testing.assert_allclose(one[w:], [1.0, 0.0])  # only "known" has a label
    # interleaved per class: [hist c0, two-hop c0, hist c1, two-hop c1]
    np.testing.assert_allclose(two[w::2], [1.0, 0.0])
    np.testing.assert_allclose(two[w + 1 :: 2], [0.5, 0.5])  # mid counts as class 1


def test_two_hop_ignores_evicted_second_hop_neighbours() -> None:
    st = EdgeStreamState(neighbours=4, max_nodes=4, half_life=None, evict_fraction=0.5)
    st.learn_edge("mid", "gone", ts=0.0)
    st.set_label(st.slot("gone"), 1, ts=0.0)
    st.learn_edge("x", "mid", ts=1.0)
    for i in range(3):  # "gone" is the coldest node: evicted, its slot reused
        st.learn_edge("x", f"new{i}", ts=2.0 + i)
    assert st.slot("gone") < 0
    ctx, *_ = context(st, st.slot("x"), 10.0, 2, two_hop=True)
    w = context_width(st)
    np.testing.assert_allclose(ctx[w:], 0.0)  # no label evidence left anywhere


def test_learner_context_options_shape_and_pickle() -> None:
    import pickle

    msgs = [
        {
            "src": f"n{i % 7}",
            "dst": f"n{(i * 3) % 11}",
            "ts": float(i),
            "x": [i % 2, 1.0],
            "y": f"c{i % 3}" if i % 4 == 0 else None,
        }
        for i in range(300)
    ]
    for prof in (False, True):
        for hop in (False, True):
            m = NodePropertyClassifier(edge_profile=prof, two_hop=hop, dim=4, seed=1)
            for msg in msgs:
                p = m.learn_predict(msg)
            assert set(p) == {"c0", "c1", "c2"}
            n_in = m._layout.ctx_start + context_width(m.state, prof) + 3 * label_columns(hop)
            assert m._model.n_features == n_in
            m2 = pickle.loads(pickle.dumps(m))
            assert m2.predict_proba_node("n1") == m.predict_proba_node("n1")
