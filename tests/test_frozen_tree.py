"""The frozen tree and the frozen linear model of the reference drift detector
(`models.frozen_tree`, `models.frozen_linear`)."""

from __future__ import annotations

import math
import pickle
import random

import pytest

from models.frozen_linear import FrozenLinear
from models.frozen_tree import FrozenTree


def _fit(model, rule, n=1000, seed=1, noise=0.0):
    rng = random.Random(seed)
    for _ in range(n):
        x = {"a": rng.random(), "b": rng.random(), "shop": rng.choice(["web", "store", "app"])}
        y = rule(x)
        model.learn_one(x, (not y) if rng.random() < noise else y)
    model.freeze()
    return model


def _accuracy(model, rule, n=2000, seed=2) -> float:
    rng = random.Random(seed)
    hits = 0
    for _ in range(n):
        x = {"a": rng.random(), "b": rng.random(), "shop": rng.choice(["web", "store", "app"])}
        hits += model.predict_one(x) == rule(x)
    return hits / n


def interaction(x) -> bool:  # what naive Bayes cannot express
    return (x["a"] < 0.5 and x["b"] > 0.3) or (x["shop"] == "web" and x["a"] > 0.8)


def linear(x) -> bool:
    return x["a"] + x["b"] <= 0.9


def test_the_tree_learns_an_interaction() -> None:
    assert _accuracy(_fit(FrozenTree(), interaction, noise=0.1), interaction) > 0.93


def test_the_linear_model_learns_a_linear_boundary_closely() -> None:
    assert _accuracy(_fit(FrozenLinear(), linear, noise=0.1), linear) > 0.96


def test_the_linear_model_with_several_classes() -> None:
    def rule(x):
        return "low" if x["a"] + x["b"] < 0.7 else "mid" if x["a"] + x["b"] < 1.3 else "high"

    assert _accuracy(_fit(FrozenLinear(), rule), rule) > 0.9


@pytest.mark.parametrize("cls", [FrozenTree, FrozenLinear])
def test_odd_values_are_answered_not_raised(cls) -> None:
    m = _fit(cls(), interaction)
    answers = {m.predict_one(x) for x in (
        {}, {"a": None, "b": "x"}, {"a": math.nan, "b": math.inf}, {"a": -math.inf},
        {"a": True, "shop": ["unhashable"]}, {"a": [1.0], "b": {"x": 1}}, {"new": 3.0}, {"shop": "never seen"})}
    assert answers <= {True, False}


@pytest.mark.parametrize("cls", [FrozenTree, FrozenLinear])
def test_frozen_is_frozen_and_pickles(cls) -> None:
    m = cls()
    with pytest.raises(RuntimeError):
        m.predict_one({"a": 1.0})
    _fit(m, interaction)
    with pytest.raises(RuntimeError):
        m.learn_one({"a": 1.0}, True)
    again = pickle.loads(pickle.dumps(m))
    rng = random.Random(3)
    xs = [{"a": rng.random(), "b": rng.random()} for _ in range(200)]
    assert [again.predict_one(x) for x in xs] == [m.predict_one(x) for x in xs]


def test_one_class_only() -> None:
    for cls in (FrozenTree, FrozenLinear):
        m = cls()
        for i in range(60):
            m.learn_one({"a": i / 60}, "only")
        m.freeze()
        assert m.predict_one({"a": 0.3}) == "only"


def _three_classes(n=1000, seed=4):
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        x = {f"f{i}": float(rng.random() < 0.5) for i in range(8)} | {"g": rng.gauss(0, 1)}
        s = x["f0"] + x["f1"] + x["g"]
        out.append((x, "low" if s < 0.5 else "mid" if s < 1.8 else "high"))
    return out


def test_array_paths_for_several_classes_answer_as_the_loops() -> None:
    # naive Bayes and the linear model score several classes with numpy when every value is
    # a number; the loops they replace are kept for text and odd values
    import copy

    from models.frozen_nb import FrozenNaiveBayes

    data = _three_classes()
    nb, lin = FrozenNaiveBayes(), FrozenLinear()
    for x, y in data:
        nb.learn_one(x, y)
        lin.learn_one(x, y)
    nb.freeze()
    lin.freeze()
    looped = copy.deepcopy(nb)
    looped.cat_terms = {"(absent)": ({}, [0.0, 0.0, 0.0])}  # forces the loop
    test = _three_classes(3000, 5)
    assert [nb.predict_one(x) for x, _ in test] == [looped.predict_one(x) for x, _ in test]
    assert [lin.predict_one(x) for x, _ in test] == [lin._predict_slow(x) for x, _ in test]
    odd = {"f0": None, "f1": "x", "g": math.nan}
    assert nb.predict_one(odd) in {"low", "mid", "high"}
    assert lin.predict_one(odd) == lin._predict_slow(odd)


def test_detector_modules_docstring_examples_run() -> None:
    import doctest

    import models.data_drift
    import models.frozen_linear
    import models.frozen_nb
    import models.frozen_tree
    import models.frozen_window
    import models.reference_drift

    for mod in (models.frozen_window, models.frozen_tree, models.frozen_linear,
                models.frozen_nb, models.reference_drift, models.data_drift):
        res = doctest.testmod(mod)
        assert res.attempted > 0 and res.failed == 0, mod.__name__
