"""Node-property learner defaults that must hold off its development stream: unit-free time,
the votes in its mixture, no self-evidence through two hops, the propagated vote, docstring
example."""

from __future__ import annotations

import doctest
import pickle

import numpy as np
import pytest

import models.graph.features as features
import models.graph.learner
from bench.graph_baselines import SimpleBaselines
from bench.graph_sbm import SBMStream
from models.graph import EdgeStreamState, NodePropertyClassifier
from models.graph.features import age_weights, context, propagated, refresh_estimate
from streamsvc.graphgen import make_edge_stream


def _msgs(n_edges: int, seed: int, shifts=(), unit: str = "s") -> list[dict]:
    return list(SBMStream(n_edges, seed, shifts=shifts, unit=unit).messages())


def _run(model: NodePropertyClassifier, msgs: list[dict], start: int = 0) -> np.ndarray:
    """Hits of ``model`` on the never-labelled src nodes, edges after ``start``."""
    hits, n = [], 0
    for m in msgs:
        if m["kind"] == "node":
            model.learn_node(m["node"], m["y"], m["ts"])
            continue
        model.learn_edge(m["src"], m["dst"], m["ts"])
        n += 1
        if m["eval_src"] and n > start:
            hits.append(model.predict_node(m["src"], m["ts"]) == m["truth_src"])
    return np.array(hits)


def test_docstring_example_runs() -> None:
    res = doctest.testmod(models.graph.learner)
    assert res.attempted >= 5 and res.failed == 0


def test_time_scale_follows_the_nodes_own_gaps() -> None:
    st = EdgeStreamState(max_nodes=10)
    for i in range(200):
        st.learn_edge("a", "b", 7.0 * i)  # both ends link every 7 time units
    assert st.time_scale == pytest.approx(7.0, rel=1e-6)


def test_defaults_give_the_same_predictions_in_seconds_and_milliseconds() -> None:
    sec = _msgs(3000, 5, shifts=[("switch", 0.5)])
    ms = [dict(m, ts=m["ts"] * 1000.0) for m in sec]

    def probas(msgs: list[dict], **kw: object) -> list[dict]:
        m = NodePropertyClassifier(seed=2, **kw)  # type: ignore[arg-type]
        out = []
        for msg in msgs:
            if msg["kind"] == "node":
                m.learn_node(msg["node"], msg["y"], msg["ts"])
            else:
                m.learn_edge(msg["src"], msg["dst"], msg["ts"])
                out.append(m.predict_proba_node(msg["src"], msg["ts"]))
        return out

    a, b = probas(sec), probas(ms)
    worst = max(abs(p[c] - q[c]) for p, q in zip(a, b, strict=True) for c in p)
    assert worst < 1e-6
    # an absolute half-life is not unit-free: the same check fails with one
    a, b = probas(sec[:1500], half_life=600.0), probas(ms[:1500], half_life=600.0)
    assert max(abs(p[c] - q[c]) for p, q in zip(a, b, strict=True) for c in p) > 1e-3


def test_mixture_moves_to_the_votes_when_the_heads_cannot_learn() -> None:
    msgs = _msgs(5000, 11)
    frozen = NodePropertyClassifier(seed=3, lr=1e-9)  # heads stay at the class prior
    hits = _run(frozen, msgs, start=2500)
    w = frozen.mixture_weights()
    votes = w["vote"] + w["two-hop vote"] + w["propagated vote"] + w["fitted vote"]
    assert votes > 0.9, w
    assert hits.mean() > 0.75  # far above the majority class (~0.35 on this stream)
    # without the votes the mixture's probabilities stay near uniform: log-loss ~ log(6)
    no_votes = NodePropertyClassifier(seed=3, lr=1e-9, votes=False)
    _run(no_votes, msgs, start=2500)
    assert "vote" not in no_votes.mixture_weights()
    with_votes = frozen.inspect()["rolling"]["logloss"]
    assert with_votes < no_votes.inspect()["rolling"]["logloss"] - 0.8


def test_learner_at_least_the_vote_after_shifts_on_an_unseen_stream() -> None:
    n = 12_000
    gen = SBMStream(n, 21, shifts=[("switch", 0.4), ("mixing", 0.7)], unit="ms")
    msgs = list(gen.messages())
    cut = gen.events[0]["edge_index"]
    learner = _run(NodePropertyClassifier(seed=4), msgs, start=cut).mean()
    no_prop = _run(NodePropertyClassifier(seed=4, propagate=False), msgs, start=cut).mean()
    old = _run(NodePropertyClassifier(seed=4, half_life=600.0), msgs, start=cut).mean()
    base = SimpleBaselines()
    vote, two, k = [], [], 0
    for m in msgs:
        if m["kind"] == "node":
            base.label(m["node"], m["y"])
            continue
        base.edge(m["src"], m["dst"])
        k += 1
        if m["eval_src"] and k > cut:
            vote.append(base.vote(m["src"]) == m["truth_src"])
            two.append(base.two_hop(m["src"]) == m["truth_src"])
    assert learner >= np.mean(vote) + 0.05
    # 0.849 vs 0.844: the propagated vote lifts it above the two-hop vote (0.837 without)
    assert learner >= np.mean(two)
    assert learner > no_prop
    assert learner > old  # the old absolute half-life, in ms, forgets almost at once


def test_two_hop_evidence_leaves_the_asking_node_out() -> None:
    st = EdgeStreamState(neighbours=8, max_nodes=10)
    st.learn_edge("a", "b", 1.0)  # b unlabelled; b's neighbours: a (red) and c (blue)
    st.learn_edge("b", "c", 2.0)
    st.set_label(st.slot("a"), 0, 1.0)
    st.set_label(st.slot("c"), 1, 2.0)
    ctx, *_ = context(st, st.slot("a"), 3.0, 2, two_hop=True)
    two = ctx[-4:][1::2]  # per class: [one-hop, two-hop]
    assert two.tolist() == [0.0, 1.0]  # only c speaks through b, not a itself


def test_propagated_vote_reaches_labels_three_hops_away() -> None:
    """n - a - b - c(red): n's two-hop evidence is empty (a's only other neighbour, b, is
    unlabelled), but a's stored estimate (its own two-hop histogram) says red."""
    st = EdgeStreamState(neighbours=8, max_nodes=16)
    st.add_estimate_class()
    st.add_estimate_class()
    st.learn_edge("b", "c", 1.0)
    st.set_label(st.slot("c"), 0, 1.0)  # red
    st.learn_edge("a", "b", 2.0)
    refresh_estimate(st, st.slot("a"), 2.0)
    st.learn_edge("n", "a", 3.0)
    for node in ("n", "a"):
        refresh_estimate(st, st.slot(node), 3.0)
    n = st.slot("n")
    ctx, *_ = context(st, n, 3.0, 2, two_hop=True)
    assert ctx[-4:].tolist() == [0.0, 0.0, 0.0, 0.0]  # no one- or two-hop label evidence
    assert propagated(st, n, 3.0, 2)[0].tolist() == [1.0, 0.0]
    refresh_estimate(st, st.slot("c"), 3.0)  # a labelled node keeps no estimate
    assert st.est[st.slot("c")].tolist() == [0.0, 0.0]


def test_a_labelled_nodes_own_label_does_not_come_back_through_its_neighbours() -> None:
    """s (red) links to u and v, unlabelled, whose other neighbours are blue: their estimates
    hold s's red, but s's propagated vote must be all blue (the echo kept a re-labelled
    node's old class). A state pickled before the weights were kept still loads."""
    st = EdgeStreamState(neighbours=8, max_nodes=16)
    st.add_estimate_class()
    st.add_estimate_class()
    for i, mid in enumerate(("u", "v")):
        for j in range(3):
            st.learn_edge(mid, f"b{i}{j}", 1.0)
            st.set_label(st.slot(f"b{i}{j}"), 1, 1.0)  # blue
    for mid in ("u", "v"):
        st.learn_edge("s", mid, 2.0)
    st.set_label(st.slot("s"), 0, 2.0)  # red
    for mid in ("u", "v"):
        refresh_estimate(st, st.slot(mid), 2.0)
        assert st.est[st.slot(mid)].tolist() == [0.25, 0.75]  # s is one of four
    s = st.slot("s")
    assert propagated(st, s, 2.0, 2)[0].tolist() == [0.0, 1.0]
    old = dict(st.__dict__)
    del old["est_tot"]
    restored = EdgeStreamState.__new__(EdgeStreamState)
    restored.__setstate__(old)  # weights unknown: the estimates are read as stored
    assert np.isnan(restored.est_tot).all()
    assert propagated(restored, s, 2.0, 2)[0].tolist() == [0.25, 0.75]


def test_taking_a_label_out_keeps_rows_normalised_after_evictions_and_late_edges() -> None:
    """Rings change under a stored estimate (an evicted neighbour) and edges arrive out of
    order with time decay on: every propagated row still sums to 1 (or 0), and a neighbour
    whose other evidence is all blue counts all blue."""
    m = NodePropertyClassifier(seed=4, max_nodes=2000, half_life=50.0)
    rng = np.random.default_rng(4)
    for i, msg in enumerate(make_edge_stream(6000, 4)):
        if "src" in msg and i % 7 == 0:
            msg = {**msg, "ts": msg["ts"] - float(rng.uniform(0, 20))}  # late edges
        m.learn_predict(msg)
    st, c = m.state, len(m.classes_)
    assert st.evictions > 0
    sums = []
    for s in st.slot_of.values():
        nbs = st.neighbours_of(s)[0]
        vs = nbs[st.label[nbs] < 0]
        if st.label[s] >= 0 and len(vs):
            sums += features._without(st, s, vs, st.est[vs, :c]).sum(axis=1).tolist()
    sums = np.array(sums)
    assert (sums > 0).sum() > 50 and np.all((np.abs(sums - 1) < 1e-5) | (sums == 0))


def test_taking_a_nodes_label_out_matches_estimates_computed_without_it() -> None:
    """On a seeded stream (time decay on, so ring weights differ): for every labelled node,
    the propagated vote equals the one from its neighbours' estimates recomputed from scratch
    with the node left out of their rings (estimates refreshed first, so both see the same
    labels)."""
    m = NodePropertyClassifier(seed=3, half_life=40.0)
    for msg in make_edge_stream(1500, 3):
        m.learn_predict(msg)
    st, c, t = m.state, len(m.classes_), m.state.latest_ts
    unlabelled = [s for s in st.slot_of.values() if st.label[s] < 0]
    for v in unlabelled:
        refresh_estimate(st, v, t)

    def without(v: int, s: int) -> np.ndarray:
        nbs, nts, _, _ = st.neighbours_of(v)
        w = np.exp((nts - nts.max()) * st.lam)
        w /= w.sum()
        two = np.zeros(c)
        for n, wn in zip(nbs.tolist(), w.tolist(), strict=True):
            if n == s:
                continue
            if st.label[n] >= 0:
                two[st.label[n]] += wn
            else:
                two += wn * features._soft_labels(st, np.array([n]), t, c, exclude=v)[0]
        return two / two.sum() if two.sum() > 0 else two

    checked = 0
    for s in st.slot_of.values():
        nbs, nts, _, _ = st.neighbours_of(s)
        if st.label[s] < 0 or not len(nbs) or (st.label[nbs] >= 0).all():
            continue
        w = np.exp((nts - nts.max()) * st.lam)
        w /= w.sum()
        want = np.zeros(c)
        for n, wn in zip(nbs.tolist(), w.tolist(), strict=True):
            want += wn * (np.eye(c)[st.label[n]] if st.label[n] >= 0 else without(n, s))
        want /= max(want.sum(), 1e-300)  # zeros: no evidence
        np.testing.assert_allclose(propagated(st, s, t, c)[0], want, atol=1e-5)
        checked += 1
    assert checked > 30


def test_a_relabelled_nodes_neighbours_hold_its_new_label_at_once() -> None:
    m = NodePropertyClassifier(seed=0)
    m.learn_node("x", "blue", 0.0)
    m.learn_node("s", "red", 0.0)
    m.learn_edge("s", "u", 1.0)  # u: unlabelled, its estimate is s's label
    u = m.state.slot("u")
    assert m.state.est[u].tolist() == [0.0, 1.0]  # classes: blue, red
    m.learn_node("s", "blue", 2.0)  # no edge of u since: refreshed by the label itself
    assert m.state.est[u].tolist() == [1.0, 0.0]


def test_propagated_vote_changes_the_learners_answer_and_estimates_die_with_the_slot() -> None:
    def answer(**kw: object) -> tuple[float, NodePropertyClassifier]:
        m = NodePropertyClassifier(seed=1, max_nodes=8, **kw)  # type: ignore[arg-type]
        for i in range(3):  # blue is the majority class
            m.learn_node(f"x{i}", "blue", 0.0)
        m.learn_edge("b", "c", 1.0)
        m.learn_node("c", "red", 1.0)
        m.learn_edge("a", "b", 2.0)
        m.learn_edge("n", "a", 3.0)
        return m.predict_proba_node("n", 3.0)["red"], m

    without = answer(propagate=False)[0]  # no label evidence: 0.44 (heads and prior)
    got, m = answer()
    assert got > without + 0.03  # 0.49: one member of nine, at equal weight, says red
    st = m.state
    a = st.slot("a")
    assert st.est[a].tolist() == [0.0, 1.0]  # classes: blue, red
    for i in range(8):  # fill the 8 slots with newer nodes: "a" is evicted, its slot reused
        m.learn_edge(f"y{i}", f"z{i}", 10.0 + i)
    assert st.slot("a") < 0
    assert not st.est[[st.slot(f"y{i}") for i in range(8) if st.slot(f"y{i}") >= 0]].any()


def test_a_learner_pickled_before_the_propagated_vote_still_loads_and_predicts() -> None:
    m = NodePropertyClassifier(seed=1, propagate=False)
    _run(m, _msgs(1500, 3))
    copy = pickle.loads(pickle.dumps(m))
    old = dict(copy.__dict__)
    del old["_prop"], old["propagate"]
    st = dict(copy.state.__dict__)
    del st["est"], st["n_est"]
    restored = NodePropertyClassifier.__new__(NodePropertyClassifier)
    restored.__setstate__(old)
    restored.state = EdgeStreamState.__new__(EdgeStreamState)
    restored.state.__setstate__(st)
    assert "propagated vote" not in restored.mixture_weights()
    after = _msgs(3000, 3)[-300:]
    assert (_run(restored, after) == _run(m, after)).all()
    restored.learn_node("new-class-node", "c-new", None)  # a new class needs no estimates
    assert restored.state.est.shape[1] == 0


def test_sharpened_estimates_count_an_unlabelled_neighbour_closer_to_its_likely_class() -> None:
    """n links to a (labelled blue) and u (unlabelled, 70% of its surroundings red): the raw
    mix leaves n's vote level-ish; a higher power counts u nearer to red."""
    st = EdgeStreamState(neighbours=8, max_nodes=32)
    st.add_estimate_class()
    st.add_estimate_class()  # classes 0 blue, 1 red
    st.learn_edge("n", "a", 1.0)
    st.set_label(st.slot("a"), 0, 1.0)
    st.learn_edge("n", "u", 2.0)
    st.est[st.slot("u")] = [0.3, 0.7]
    rows = propagated(st, st.slot("n"), 2.0, 2, sharpness=(1.0, 4.0))
    assert rows[0].tolist() == pytest.approx([0.65, 0.35])
    red4 = 0.7**4 / (0.7**4 + 0.3**4)
    assert rows[1].tolist() == pytest.approx([(1 + 1 - red4) / 2, red4 / 2])
    st.est[st.slot("u")] = 0.0  # no evidence: u does not count at any power
    assert propagated(st, st.slot("n"), 2.0, 2, sharpness=(1.0, 8.0)).tolist() == [[1.0, 0.0]] * 2


def test_the_learner_picks_a_sharper_power_on_a_homophilous_stream_and_keeps_it() -> None:
    m = NodePropertyClassifier(seed=4)
    assert m.sharpness == 1.0  # no labels yet: the raw estimates
    _run(m, _msgs(6000, 21))
    assert m.sharpness > 1.0  # 0.9 within-community linking: estimates under-state
    assert m.inspect()["propagation_sharpness"] == m.sharpness
    assert pickle.loads(pickle.dumps(m)).sharpness == m.sharpness
    old = dict(m.__dict__)
    del old["_sharp_loss"]  # a model pickled before the power was learned
    restored = NodePropertyClassifier.__new__(NodePropertyClassifier)
    restored.__setstate__(old)
    assert restored.sharpness == 1.0


def test_age_weights_rank_by_recency_in_any_time_unit() -> None:
    nts = np.array([5.0, 9.0, 7.0, 9.0])  # ring order is not time order
    w = age_weights(nts, 0.5)
    assert w.tolist() == [0.125, 1.0, 0.25, 0.5]  # newest 1, then 0.5, ... (ties: ring order)
    assert age_weights(nts * 1000.0, 0.5).tolist() == w.tolist()
    assert age_weights(nts, 1.0).tolist() == [1.0] * 4


def test_the_learner_weights_newer_neighbours_after_nodes_move_community() -> None:
    """Relabelled nodes show that newer neighbours say more after a switch of 40% of nodes;
    a model pickled before recency existed starts undecayed, as it predicted then."""
    for seed in (21, 22):
        m = NodePropertyClassifier(seed=4)
        assert m.recency == 1.0
        late, n = [], 0
        for msg in SBMStream(6000, seed, shifts=[("switch", 0.4)], switch_frac=0.4).messages():
            if msg["kind"] == "node":
                m.learn_node(msg["node"], msg["y"], msg["ts"])
                continue
            m.learn_edge(msg["src"], msg["dst"], msg["ts"])
            n += 1
            if n >= 3500 and n % 250 == 0:
                late.append(m.recency)
        assert max(late) < 1.0, late
        assert m.inspect()["propagation_recency"] == m.recency
    old = dict(m.__dict__)
    del old["_recency_loss"]
    restored = NodePropertyClassifier.__new__(NodePropertyClassifier)
    restored.__setstate__(old)
    assert restored.recency == 1.0


def test_labelled_nodes_are_answered_by_a_mixture_scored_on_later_labels(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 11, an independent check (30% of nodes changed class, labels re-sent): the
    first-label mixture answered a re-labelled node's old class. Labelled nodes now get a
    mixture scored on later labels; on this generator's switches it is right more often on
    re-sent labels than the first-label mixture (measured: 0.893 against 0.879, seeds 21-23;
    0.299 -> 0.604 on seeds 4100-4102 of the check's own stream)."""

    def relabel_hits(seed: int) -> list[bool]:
        m = NodePropertyClassifier(seed=4)
        hits = []
        for msg in SBMStream(6000, seed, shifts=[("switch", 0.4)], switch_frac=0.4).messages():
            if msg["kind"] == "node":
                s = m.state.slot(msg["node"])
                if s >= 0 and m.state.label[s] >= 0:
                    hits.append(m.predict_node(msg["node"], msg["ts"]) == msg["y"])
                m.learn_node(msg["node"], msg["y"], msg["ts"])
            else:
                m.learn_edge(msg["src"], msg["dst"], msg["ts"])
        if models.graph.learner.RELABELS < 10**9:
            assert m.mixture_weights(labelled=True) != m.mixture_weights()
        return hits

    own = [h for seed in (21, 22, 23) for h in relabel_hits(seed)]
    monkeypatch.setattr(models.graph.learner, "RELABELS", 10**9)  # the first-label mixture
    first = [h for seed in (21, 22, 23) for h in relabel_hits(seed)]
    assert len(own) == len(first) > 600
    assert sum(own) > sum(first)


def test_a_labelled_node_is_answered_by_its_own_last_label_where_labels_repeat() -> None:
    """Issue 11, an independent check whose labels were re-sent: "same as last time" beat
    the learner by up to 7 points, as no member could say it (a node's own label is kept
    out of its neighbours' votes). Here links are random and say nothing, each node's label
    is fixed and sent again and again: the labelled nodes' mixture has a "last label"
    member, which comes to carry it, and the re-sent labels are answered right."""
    rng = np.random.default_rng(5)
    m = NodePropertyClassifier(seed=0)
    label = {f"n{i}": str(rng.integers(3)) for i in range(200)}
    hits = []
    for t in range(6000):
        m.learn_edge(f"n{rng.integers(200)}", f"n{rng.integers(200)}", float(t))
        if t % 5 == 0:
            node = f"n{rng.integers(200)}"
            if m.state.slot(node) >= 0 and m.state.label[m.state.slot(node)] >= 0:
                hits.append(m.predict_node(node, float(t)) == label[node])
            m.learn_node(node, label[node], float(t))
    w = m.mixture_weights(labelled=True)
    assert max(w, key=w.__getitem__) == "last label", w
    assert "last label" not in m.mixture_weights()  # unlabelled nodes have none
    assert len(hits) > 800 and np.mean(hits[-300:]) > 0.95


def test_the_mixture_follows_a_new_best_member_within_a_few_dozen_labels() -> None:
    """Issue 11, an independent check (a heterophilous graph turning homophilous, no drift
    detected): with ~100 labels of memory the mixture took 150-200 labels to move to the
    member that had become right. Each mixture now also runs at ~20 labels of memory and a
    Hedge over the two memories picks: after 300 labels of member 0 right and member 1
    wrong, then the reverse, member 1 has most of the weight within 40 labels (measured: 14;
    67 with the slow memory alone)."""
    m = NodePropertyClassifier(seed=0)
    k = len(m._members)
    right, wrong = np.tile([0.9, 0.1], (k, 1)), np.tile([0.1, 0.9], (k, 1))
    for _ in range(300):  # class 0 is the answer; member 0 says so, the others do not
        m._charge(m._head_loss, m._speed_loss[0], np.vstack((right[:1], wrong[1:])), 0)
    assert m._weights(False)[0] > 0.99
    n = 0
    while m._weights(False)[1] <= 0.5 and n < 200:  # now member 1 is the one that is right
        m._charge(m._head_loss, m._speed_loss[0],
                  np.vstack((wrong[:1], right[1:2], wrong[2:])), 0)
        n += 1
    assert n <= 40, n


@pytest.mark.parametrize("before", ["labelled mixture", "last label"])
def test_a_learner_pickled_with_one_memory_and_no_last_label_member_restores(before: str) -> None:
    """Snapshots from before the labelled nodes' mixture, or from before its "last label"
    member and the two memories: the long memory starts from the old losses, the short one
    from them scaled to its length, the new member from the worst loss (it earns its
    weight), and the learner answers and learns on."""
    m = NodePropertyClassifier(seed=0)
    for i, msg in enumerate(SBMStream(3000, 3, shifts=[]).messages()):
        if msg["kind"] == "node":
            m.learn_node(msg["node"], msg["y"], msg["ts"])
            if i % 3 == 0:  # re-sent labels: the labelled mixture has losses too
                m.learn_node(msg["node"], msg["y"], msg["ts"])
        else:
            m.learn_edge(msg["src"], msg["dst"], msg["ts"])
    state = dict(m.__dict__)
    state["_head_loss"] = m._head_loss[0].copy()
    state["_relabel_loss"] = m._relabel_loss[0, :-1].copy()
    del state["_repeats"], state["_speed_loss"]
    if before == "labelled mixture":
        del state["_relabel_loss"], state["_relabels"]
    old = NodePropertyClassifier.__new__(NodePropertyClassifier)
    old.__dict__.update(state)
    restored = pickle.loads(pickle.dumps(old))
    assert restored._head_loss.shape == m._head_loss.shape
    assert restored._relabel_loss.shape == m._relabel_loss.shape
    np.testing.assert_allclose(restored._head_loss[0], state["_head_loss"])
    np.testing.assert_allclose(restored._head_loss[1], state["_head_loss"] * 0.2)
    if before == "last label":
        assert restored._relabel_loss[0, -1] == state["_relabel_loss"].max()
        assert "last label" in restored.mixture_weights(labelled=True)
    else:  # no later label scored yet: labelled nodes get the first-label weights
        assert not restored._relabel_loss.any() and restored._relabels == 0
        assert restored.mixture_weights(labelled=True) == restored.mixture_weights()
    node = next(iter(m.state.slot_of))
    p = restored.predict_proba_node(node)
    assert sum(p.values()) == pytest.approx(1.0)
    restored.learn_node(node, m.classes_[0])


def test_one_class_so_far_answers_it_with_probability_one() -> None:
    """With a single class seen, a labelled node's answer is that class, surely (the "last
    label" member is no exception)."""
    m = NodePropertyClassifier(seed=0)
    for t in range(400):
        m.learn_edge(f"n{t % 37}", f"n{(t * 7) % 41}", float(t))
        if t % 4 == 0:
            m.learn_node(f"n{t % 37}", "ok", float(t))
    assert m._relabels >= 20
    assert m.predict_proba_node("n0") == {"ok": pytest.approx(1.0)}
