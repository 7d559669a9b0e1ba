"""DriftMoEClassifier: learning, routing, state, river conventions."""

from __future__ import annotations

import json
import pickle
import random

import numpy as np
import pytest

from models.drift_moe import DriftMoEClassifier
from tests.river_checks import check_estimator

SMALL = {"hidden": (32, 16), "batch_size": 32, "grace_period": 30}


def _quadrants(n: int, seed: int = 0):
    """4 classes by quadrant of (a, b), plus two noise features."""
    rng = random.Random(seed)
    for _ in range(n):
        a, b = rng.uniform(-1, 1), rng.uniform(-1, 1)
        x = {"a": a, "b": b, "n1": rng.random(), "n2": rng.random()}
        yield x, int(a > 0) * 2 + int(b > 0)


def _prequential(model, stream) -> float:
    hits = n = 0
    for x, y in stream:
        hits += model.predict_one(x) == y
        model.learn_one(x, y)
        n += 1
    return hits / n


@pytest.mark.parametrize("variant", ["data", "task"])
def test_both_variants_learn_well_above_chance(variant):
    model = DriftMoEClassifier(variant=variant, n_experts=6, **SMALL)
    acc = _prequential(model, _quadrants(3000))
    assert acc > 0.8  # chance is 0.25
    assert model.n_router_updates == 3000 // 32
    info = model.inspect()
    assert info["router"]["loss"] is not None and np.isfinite(info["router"]["loss"])
    json.dumps(info)  # JSON-serialisable as is


def test_invalid_params_are_rejected():
    with pytest.raises(ValueError):
        DriftMoEClassifier(variant="nope")
    with pytest.raises(ValueError):
        DriftMoEClassifier(task_train="some")


def test_predict_before_learning_and_with_expert():
    model = DriftMoEClassifier(**SMALL)
    assert model.predict_one({"a": 1.0}) is None
    assert model.predict_proba_one({"a": 1.0}) == {}
    for x, y in _quadrants(300):
        model.learn_one(x, y)
    x = {"a": 0.5, "b": -0.5, "n1": 0.1, "n2": 0.2}
    label, expert = model.predict_one_with_expert(x)
    assert label == model.predict_one(x)
    assert expert == model.last_expert and 0 <= expert < 12
    proba = model.predict_proba_one(x)
    assert set(proba) == {0, 1, 2, 3}  # every seen label, even those the expert never saw
    assert sum(proba.values()) == pytest.approx(1.0)
    assert max(proba, key=proba.get) == label


def test_inspect_contents():
    model = DriftMoEClassifier(n_experts=5, **SMALL)
    _prequential(model, _quadrants(500))
    info = model.inspect()
    assert info["n_experts"] == 5 and len(info["experts"]) == 5
    assert info["n_learned"] == 500 and info["n_predicted"] == 500
    assert sum(e["share"] for e in info["experts"]) == pytest.approx(1.0)
    assert sum(e["n_learned"] for e in info["experts"]) == 500 * info["top_k"]
    assert any(e["n_nodes"] >= 1 for e in info["experts"])
    for e in info["experts"]:
        assert 0.0 <= e["rolling_accuracy"] <= 1.0
        assert set(e) >= {"share", "recent_share", "n_leaves", "depth", "n_nodes"}
    assert info["router"]["n_inputs"] == 4
    # task variant: one expert per class, with its class and the mixer weights
    task = DriftMoEClassifier(variant="task", **SMALL)
    _prequential(task, _quadrants(300))
    ti = task.inspect()
    assert sorted(e["class"] for e in ti["experts"]) == [0, 1, 2, 3]
    assert ti["mixer"]["router_weight"] + ti["mixer"]["experts_weight"] == pytest.approx(1.0)
    json.dumps(ti)


@pytest.mark.parametrize("variant", ["data", "task"])
def test_pickle_roundtrip_keeps_predictions_and_learning(variant):
    model = DriftMoEClassifier(variant=variant, n_experts=4, **SMALL)
    data = list(_quadrants(700, seed=1))
    for x, y in data[:500]:
        model.predict_one(x)
        model.learn_one(x, y)
    copy = pickle.loads(pickle.dumps(model))
    for x, y in data[500:]:
        assert copy.predict_proba_one(x) == model.predict_proba_one(x)
        assert copy.last_expert == model.last_expert
        model.learn_one(x, y)
        copy.learn_one(x, y)
    assert copy.inspect() == model.inspect()


def test_clone_is_fresh_and_same_params():
    model = DriftMoEClassifier(variant="task", top_k=2, **SMALL)
    _prequential(model, _quadrants(200))
    clone = model.clone()
    assert clone._get_params() == model._get_params()
    assert clone.n_learned == 0 and clone.inspect()["n_experts"] == 0
    changed = model.clone({"n_experts": 3})
    assert changed.n_experts == 3 and changed.variant == "task"


@pytest.mark.parametrize("variant", ["data", "task"])
def test_reproducible_with_seed(variant):
    def run(seed):
        m = DriftMoEClassifier(variant=variant, seed=seed, n_experts=6, **SMALL)
        preds = []
        for x, y in _quadrants(600, seed=3):
            preds.append(m.predict_one_with_expert(x))
            m.learn_one(x, y)
        return preds, m

    p1, m1 = run(7)
    p2, m2 = run(7)
    assert p1 == p2
    assert np.array_equal(m1._router.W[0], m2._router.W[0])
    _, m3 = run(8)
    assert not np.array_equal(m1._router.W[1], m3._router.W[1])


def test_predict_then_learn_equals_learn_only():
    """The prediction cache reused by learn_one must not change what is learned."""
    a = DriftMoEClassifier(n_experts=4, **SMALL)
    b = DriftMoEClassifier(n_experts=4, **SMALL)
    data = list(_quadrants(800, seed=5))
    for i, (x, y) in enumerate(data[:700]):
        a.predict_one(x)
        if i % 3 == 0:
            a.predict_proba_one(dict(x))  # equal dict, different object: cache hit
        a.learn_one(x, y)
        b.learn_one(x, y)
    for x, _ in data[700:]:
        assert a.predict_proba_one(x) == b.predict_proba_one(x)
    np.testing.assert_array_equal(a._router.W[0], b._router.W[0])


def test_two_regimes_route_to_different_experts():
    """Two regimes (told apart by ``w``) with opposite concepts, alternating in blocks.

    The experts are naive-Bayes leaves that never split, so no single expert can represent
    both regimes (it would sit at chance); high accuracy in both regimes requires the router
    to send them to different experts. Shares are compared per label so that the difference
    cannot come from the label alone.
    """
    rng = random.Random(0)

    def example(regime):
        u, v = rng.random(), rng.random()
        return {"u": u, "v": v, "w": rng.uniform(0, 1) + 4 * regime}, int((u > v) != regime)

    model = DriftMoEClassifier(
        n_experts=6,
        top_k=2,
        hidden=(32, 16),
        batch_size=32,
        grace_period=10**9,
        leaf_prediction="nb",
        drift_reset=False,
        seed=0,
    )
    hits = {0: [], 1: []}
    for block in range(12):
        regime = block % 2
        for _ in range(400):
            x, y = example(regime)
            hits[regime].append(model.predict_one(x) == y)
            model.learn_one(x, y)
    for regime in (0, 1):
        assert np.mean(hits[regime][-800:]) > 0.8
    shares = {}
    for regime in (0, 1):
        counts = np.zeros(6)
        while counts.sum() < 200:
            x, y = example(regime)
            if y == 1:
                counts[model.predict_one_with_expert(x)[1]] += 1
        shares[regime] = counts / counts.sum()
    tv = 0.5 * np.abs(shares[0] - shares[1]).sum()
    assert tv > 0.5, shares


@pytest.mark.parametrize("variant", ["data", "task"])
def test_categorical_and_late_features(variant):
    rng = random.Random(2)
    colours = ["red", "green", "blue"]
    model = DriftMoEClassifier(variant=variant, n_experts=4, **SMALL)
    hits_cat = []
    for _ in range(1500):  # label = colour is "red", categorical only + a noise numeric
        c = rng.choice(colours)
        x, y = {"colour": c, "noise": rng.random()}, c == "red"
        hits_cat.append(model.predict_one(x) == y)
        model.learn_one(x, y)
    assert np.mean(hits_cat[-500:]) > 0.9
    n_in = model.inspect()["router"]["n_inputs"]
    assert n_in == 4  # 3 colour values + 1 numeric
    hits_late = []
    for _ in range(2500):  # a feature appears late and now decides the label alone
        late = rng.uniform(-1, 1)
        x = {"colour": rng.choice(colours), "noise": rng.random(), "late": late}
        y = late > 0
        hits_late.append(model.predict_one(x) == y)
        model.learn_one(x, y)
    assert model.inspect()["router"]["n_inputs"] == n_in + 1
    assert np.mean(hits_late[-500:]) > 0.85
    # a new categorical value and a disappearing feature are fine at predict time
    assert model.predict_one({"colour": "purple"}) in (True, False)


def test_task_variant_prediction_uses_its_experts():
    model = DriftMoEClassifier(variant="task", **SMALL)
    _prequential(model, _quadrants(600))
    x = {"a": 0.5, "b": 0.5, "n1": 0.5, "n2": 0.5}
    before = model.predict_proba_one(x)
    model._cache = None
    k = model._class_idx[0]
    model._experts[k].predict_proba_one = lambda x: {True: 1.0, False: 0.0}  # type: ignore
    after = model.predict_proba_one(x)
    assert after[0] > before[0] + 0.01
    assert model.inspect()["mixer"]["experts_weight"] > 0.0


@pytest.mark.parametrize("params", list(DriftMoEClassifier._unit_test_params()))
def test_river_check_estimator(params):
    check_estimator(DriftMoEClassifier(**params))


def test_drift_reset_recovers_after_abrupt_flip():
    """After the concept flips, ADWIN-triggered expert resets recover faster than none."""

    def run(reset):
        m = DriftMoEClassifier(n_experts=4, drift_reset=reset, **SMALL)
        hits = []
        for i, (x, y) in enumerate(_quadrants(3000, seed=4)):
            y = y if i < 1500 else 3 - y  # abrupt relabelling at 1500
            hits.append(m.predict_one(x) == y)
            m.learn_one(x, y)
        return float(np.mean(hits[1500:2400])), m

    with_reset, m = run(True)
    without, _ = run(False)
    assert m.inspect()["n_expert_resets"] >= 1
    assert with_reset > without + 0.05


def test_predict_top_one_answers_with_one_expert_and_more_vote():
    data = list(_quadrants(1500, seed=3))
    # slow unit-weight trees: their naive-Bayes leaves stay uncertain, so a blend shows (the
    # default's fast-growing trees may all answer 1.0 for the same class here)
    slow = {"train_lambda": 0.0, "delta": 1e-7, **SMALL}
    one = DriftMoEClassifier(predict_top=1, **slow)
    three = DriftMoEClassifier(predict_top=3, **slow)
    for x, y in data:
        one.learn_one(x, y)
        three.learn_one(x, y)
    x = {"a": 0.4, "b": 0.3, "n1": 0.5, "n2": 0.5}
    _, e = one.predict_one_with_expert(x)
    assert one.predict_proba_one(x) == pytest.approx(
        {c: one._experts[e].predict_proba_one(x).get(c, 0.0) for c in one._seen}
    )
    # the vote blends several experts: not equal to any single expert's distribution
    p3 = three.predict_proba_one(x)
    singles = [three._experts[i].predict_proba_one(x) for i in range(three.n_experts)]
    assert all(p3 != pytest.approx({c: s.get(c, 0.0) for c in p3}) for s in singles if s)
    with pytest.raises(ValueError):
        DriftMoEClassifier(predict_top=0)
    with pytest.raises(ValueError):
        DriftMoEClassifier(train_lambda=-1.0)


def test_poisson_training_weights_are_seeded_and_learn():
    runs = []
    for _ in range(2):
        m = DriftMoEClassifier(train_lambda=6.0, seed=5, **SMALL)
        runs.append(_prequential(m, _quadrants(2000, seed=4)))
    assert runs[0] == runs[1]  # reproducible with the seed
    assert runs[0] > 0.8
    ref = DriftMoEClassifier(seed=5, train_lambda=0.0, **SMALL)
    _prequential(ref, _quadrants(2000, seed=4))
    # weights > 1 grow the trees faster than unit weights on the same examples
    assert sum(t["n_leaves"] for t in m.expert_tree_sizes()) > sum(
        t["n_leaves"] for t in ref.expert_tree_sizes()
    )


def test_expert_settings_default_per_variant_and_cycle_over_experts():
    data = DriftMoEClassifier(n_experts=4)
    deltas = [ex.delta for ex in data._experts]
    assert deltas == [1e-7, 0.01, 0.01, 1e-7]  # a third cautious, two thirds fast-growing
    assert {ex.grace_period for ex in data._experts} == {100}
    assert data._lams == [6.0] * 4
    assert {ex.split_features for ex in data._experts} == {"sqrt"}  # random subspaces
    assert len({ex.seed for ex in data._experts}) == 4  # each expert its own draws
    default = DriftMoEClassifier()
    assert (len(default._experts), default._k, default._pt) == (8, 6, 6)
    assert DriftMoEClassifier(top_k=2)._pt == 2  # the experts that learn are the voters
    assert default.inspect()["top_k"] == 6
    task = DriftMoEClassifier(variant="task")
    for x, y in _quadrants(50):
        task.learn_one(x, y)
    assert {(ex.delta, ex.grace_period) for ex in task._experts} == {(1e-7, 50)}
    assert {ex.split_features for ex in task._experts} == {None}
    assert task._lams == [0.0] * 4
    assert task._k == 3
    cyc = DriftMoEClassifier(n_experts=3, split_features=["all", 2])
    assert [ex.split_features for ex in cyc._experts] == [None, 2, None]
    # lists (as TOML gives them) are tuples; explicit values win over the variant's default
    m = DriftMoEClassifier(n_experts=3, delta=[0.1, 0.2], train_lambda=[0, 2], grace_period=7)
    assert m.delta == (0.1, 0.2)
    assert [ex.delta for ex in m._experts] == [0.1, 0.2, 0.1]
    assert m._lams == [0.0, 2.0, 0.0]
    assert {ex.grace_period for ex in m._experts} == {7}
    assert m.clone()._lams == m._lams
    bad_values = (
        {"delta": 0.0},
        {"delta": (0.1, 1.5)},
        {"train_lambda": -1},
        {"grace_period": 0},
        {"split_features": 0},
        {"top_k": 0},
    )
    for bad in bad_values:
        with pytest.raises(ValueError):
            DriftMoEClassifier(**bad)


def test_docstring_examples_run():
    import doctest

    import models.drift_moe
    import models.hoeffding

    for mod in (models.drift_moe, models.hoeffding):
        res = doctest.testmod(mod)
        assert res.attempted > 0 and res.failed == 0


def test_split_subspaces_diversify_the_experts():
    """With random split subspaces, experts learning the same examples grow other trees."""
    data = list(_quadrants(3000, seed=7))
    sub = DriftMoEClassifier(n_experts=4, top_k=4, predict_top=4, seed=3, **SMALL)
    full = DriftMoEClassifier(
        n_experts=4, top_k=4, predict_top=4, seed=3, split_features="all", **SMALL
    )
    assert _prequential(sub, data) > 0.8
    _prequential(full, data)

    def leaves(m):
        for ex in m._experts:
            stack = [ex._root]
            while stack:
                node = stack.pop()
                if hasattr(node, "children"):
                    stack.extend(node.children)
                elif node.is_active() and node.splitters:  # leaves that learned
                    yield node

    assert all(leaf._subspace is None and len(leaf.splitters) == 4 for leaf in leaves(full))
    watched = set()
    for leaf in leaves(sub):
        assert len(leaf._subspace) == 2  # round(sqrt(4)) of a, b and the two noise features
        assert set(leaf.splitters) <= set(leaf._subspace)
        watched.add(leaf._subspace)
    assert len(watched) > 1  # leaves (and experts) watch different features
