"""The vectorised naive-Bayes tree must be river's Hoeffding tree, only faster."""

from __future__ import annotations

import pickle
import random

import pytest
from river import datasets, tree

from models.hoeffding import FastHoeffdingTreeClassifier
from streamsvc.streams import make_stream
from tests.river_checks import check_estimator

PARAMS = {"grace_period": 50, "delta": 1e-7, "leaf_prediction": "nba"}


def _side_by_side(data, **params):
    ref, fast = tree.HoeffdingTreeClassifier(**params), FastHoeffdingTreeClassifier(**params)
    worst, disagreements = 0.0, 0
    for x, y in data:
        pr, pf = ref.predict_proba_one(x), fast.predict_proba_one(x)
        assert pr.keys() == pf.keys()
        worst = max([worst] + [abs(pr[k] - pf[k]) for k in pr])
        if pr and max(pr, key=pr.get) != max(pf, key=pf.get):
            disagreements += 1
        ref.learn_one(x, y)
        fast.learn_one(x, y)
    return ref, fast, worst, disagreements


@pytest.mark.parametrize("stream", ["led-abrupt", "rbf-fast", "sea-gradual"])
def test_same_predictions_and_tree_as_river(stream):
    params = {**PARAMS, "delta": 0.1}  # splits early enough to compare grown trees
    ref, fast, worst, disagreements = _side_by_side(make_stream(stream, 4000, 5), **params)
    assert disagreements == 0
    assert worst < 1e-9
    assert ref.n_nodes == fast.n_nodes > 1  # the trees split, and identically
    assert ref.height == fast.height


def test_missing_and_late_features_match_river():
    rng = random.Random(0)
    data = []
    for i in range(3000):
        x = {f"f{j}": rng.gauss(j % 3, 1) for j in range(6) if rng.random() > 0.2}
        if i > 1500:
            x["late"] = rng.random()
        y = int(x.get("f0", 0) + x.get("f1", 0) > 1.5)
        data.append((x, y))
    _, _, worst, disagreements = _side_by_side(data, **PARAMS)
    assert disagreements == 0 and worst < 1e-9


def test_nominal_features_fall_back_to_river():
    data = list(datasets.Bananas().take(1500))
    mixed = [({**x, "colour": "red" if y else "blue"}, y) for x, y in data]
    ref, fast, worst, disagreements = _side_by_side(mixed, **PARAMS)
    assert disagreements == 0 and worst < 1e-9


def test_other_leaf_kinds_are_rivers():
    for kind in ("mc", "nb"):
        _, fast, _, disagreements = _side_by_side(
            make_stream("sea-abrupt", 1500, 1), grace_period=50, leaf_prediction=kind
        )
        assert disagreements == 0


def _assert_pickle_round_trip(model: FastHoeffdingTreeClassifier, stream: str) -> None:
    """A pickled copy of a trained tree predicts and learns exactly as the original."""
    data = list(make_stream(stream, 2000, 2))
    for x, y in data[:1500]:
        model.learn_one(x, y)
    copy = pickle.loads(pickle.dumps(model))
    for x, y in data[1500:]:
        assert copy.predict_proba_one(x) == model.predict_proba_one(x)
        copy.learn_one(x, y)
        model.learn_one(x, y)


def test_pickle_round_trip_keeps_predicting_the_same():
    _assert_pickle_round_trip(FastHoeffdingTreeClassifier(**PARAMS), "led-abrupt")


def test_river_check_estimator():
    check_estimator(FastHoeffdingTreeClassifier(**PARAMS))


@pytest.mark.parametrize("stream", ["rbf-fast", "led-abrupt"])
def test_weighted_learning_and_fast_split_search_match_river(stream):
    """Poisson-weighted learning (as DriftMoE's experts get it) grows river's very tree.

    The split search is the inlined Gaussian-splitter/information-gain one: every candidate
    merit must be river's, so the trees split at the same points at the same times.
    """
    rng = random.Random(3)
    params = {"grace_period": 50, "delta": 0.01, "leaf_prediction": "nba"}
    ref, fast = tree.HoeffdingTreeClassifier(**params), FastHoeffdingTreeClassifier(**params)
    for x, y in make_stream(stream, 3000, 11):
        assert ref.predict_one(x) == fast.predict_one(x)
        k = 1 + int(rng.random() * 6)
        ref.learn_one(x, y, w=k)
        fast.learn_one(x, y, w=k)
    assert ref.n_nodes == fast.n_nodes > 5
    leaf_r, leaf_f = ref._root, fast._root
    while hasattr(leaf_r, "children"):  # same split features and thresholds down one path
        assert leaf_r.feature == leaf_f.feature and leaf_r.threshold == leaf_f.threshold
        leaf_r, leaf_f = leaf_r.children[0], leaf_f.children[0]
    crit = fast._new_split_criterion()
    for a, b in zip(
        leaf_r.best_split_suggestions(crit, ref),
        leaf_f.best_split_suggestions(crit, fast),
        strict=True,
    ):
        assert (a.merit, a.feature, a.split_info) == (b.merit, b.feature, b.split_info)


def _leaves(node):
    if hasattr(node, "children"):
        for c in node.children:
            yield from _leaves(c)
    else:
        yield node


def _branch_features(node):
    if hasattr(node, "children"):
        yield node.feature
        for c in node.children:
            yield from _branch_features(c)


def test_split_features_give_each_leaf_a_random_subspace():
    data = list(make_stream("rbf-fast", 4000, 3))  # 10 numeric features
    params = {"grace_period": 50, "delta": 0.1, "leaf_prediction": "nba"}
    a = FastHoeffdingTreeClassifier(**params, split_features="sqrt", seed=1)
    b = FastHoeffdingTreeClassifier(**params, split_features="sqrt", seed=1)
    c = FastHoeffdingTreeClassifier(**params, split_features="sqrt", seed=2)
    full = FastHoeffdingTreeClassifier(**params)
    same = differ = 0
    for x, y in data:
        pa, pb, pc = a.predict_proba_one(x), b.predict_proba_one(x), c.predict_proba_one(x)
        same += pa == pb
        differ += pa != pc
        for m in (a, b, c, full):
            m.learn_one(x, y, w=4)
    assert same == len(data)  # reproducible with the seed
    assert differ > len(data) // 4  # another seed grows another tree
    assert a.n_leaves > 3
    subspaces = set()
    for leaf in _leaves(a._root):
        if not leaf.is_active() or leaf._subspace is None:
            continue
        assert len(leaf._subspace) == 3  # round(sqrt(10))
        assert set(leaf.splitters) <= set(leaf._subspace)  # splits watch only the subspace
        assert len(leaf._table.cols) == 10  # the naive-Bayes model keeps every feature
        subspaces.add(leaf._subspace)
    assert len(subspaces) > 1
    # without subspaces a leaf watches every feature (river's tree)
    assert all(len(leaf.splitters) == 10 for leaf in _leaves(full._root) if leaf.is_active())
    # a subspace restricts the split search: a 1-feature leaf can only split on its feature
    one = FastHoeffdingTreeClassifier(**params, split_features=1, seed=0)
    one.learn_one(*data[0])
    (watched,) = one._root._subspace
    for x, y in data[1:1500]:
        one.learn_one(x, y, w=4)
    assert one._root.feature == watched  # it split, on the feature it watched
    for bad in (0, 1.5, "log", -2):
        with pytest.raises(ValueError):
            FastHoeffdingTreeClassifier(split_features=bad)


def test_split_features_tree_passes_river_checks_and_pickles():
    model = FastHoeffdingTreeClassifier(**PARAMS, split_features=0.5, seed=3)
    check_estimator(model)
    _assert_pickle_round_trip(model, "sea-abrupt")


def test_service_kind_grows_rivers_tree():
    """`hoeffding_tree` in a config builds the fast tree; on the e2e benchmark's stream it
    grows river's tree and answers as river's does (what `bench.tree_speed` reports)."""
    from bench.tree_speed import compare
    from models.factory import build_model

    assert type(build_model("hoeffding_tree")) is FastHoeffdingTreeClassifier
    r = compare("sea-abrupt", 4000, 1, 1)
    assert r["same_tree"] and r["nodes"] > 1
    assert r["differ"] == 0


def test_small_and_large_tables_give_the_same_likelihoods():
    """A leaf's naive-Bayes table is summed in Python while small, with numpy once large:
    both give river's terms (to the last bits) for the same statistics."""
    from models.hoeffding import _GaussianTable

    rng = random.Random(4)
    table = _GaussianTable()
    for f in range(16):
        table.cols[f"f{f}"] = f
    for i in range(300):
        x = [rng.gauss(f % 3, 1 + f % 2) for f in range(16)]
        table.update(list(range(16)), x, i % 6, 1.0)
    for _ in range(50):
        x = {f"f{f}": rng.gauss(0, 2) for f in range(16) if rng.random() > 0.1}
        x["f3"] = float("nan") if rng.random() < 0.2 else x.get("f3", 0.0)
        small = table._loglik_py(x)
        table._arrays()
        R, F = len(table.rows), len(table.cols)
        assert R * F > table.PY_CELLS  # loglik takes the numpy path here
        large = table.loglik(x)
        assert small == pytest.approx(list(large), rel=1e-12, abs=1e-12)
    assert table._loglik_py({"f0": "text"}) is None


def test_table_pickled_before_the_python_mirrors_still_predicts():
    """A checkpoint from before the small-table path holds numpy arrays and no `py` rows:
    unpickling rebuilds them, and the table answers as before."""
    from models.hoeffding import _GaussianTable

    rng = random.Random(5)
    table = _GaussianTable()
    for f in range(3):
        table.cols[f"f{f}"] = f
    for i in range(100):
        table.update([0, 1, 2], [rng.gauss(i % 2, 1) for _ in range(3)], i % 2, 1.0)
    table._arrays()
    old_state = {k: getattr(table, k) for k in _GaussianTable.__slots__ if k != "py"}
    old = _GaussianTable.__new__(_GaussianTable)
    old.__setstate__((None, old_state))
    x = {"f0": 0.3, "f1": -1.2, "f2": 2.0}
    assert old.loglik(x) == pytest.approx(table.loglik(x), rel=1e-12)
    restored = pickle.loads(pickle.dumps(old))
    assert restored.loglik(x) == pytest.approx(table.loglik(x), rel=1e-12)
