"""The frozen naive Bayes behind the reference drift detector."""

from __future__ import annotations

import random

import pytest
from river import naive_bayes

from models.frozen_nb import FrozenNaiveBayes


def _numeric(n: int, seed: int):
    rng = random.Random(seed)
    for _ in range(n):
        y = rng.randrange(3)
        yield {"a": rng.gauss(y, 1.0), "b": rng.gauss(-y, 2.0), "c": rng.random()}, y


def test_agrees_with_rivers_gaussian_naive_bayes() -> None:
    ours, theirs = FrozenNaiveBayes(), naive_bayes.GaussianNB()
    for x, y in _numeric(1000, 1):
        ours.learn_one(x, y)
        theirs.learn_one(x, y)
    ours.freeze()
    test = [x for x, _ in _numeric(3000, 2)]
    same = sum(ours.predict_one(x) == theirs.predict_one(x) for x in test)
    assert same >= 0.99 * len(test), same


def test_text_unseen_values_missing_and_constant_features() -> None:
    nb = FrozenNaiveBayes()
    rng = random.Random(3)
    for _ in range(500):
        y = rng.random() < 0.5
        nb.learn_one({"shop": "web" if y else "store", "k": 1.0, "v": rng.gauss(2 * y, 1)}, y)
    nb.freeze()
    assert nb.predict_one({"shop": "web", "k": 1.0, "v": 2.0}) is True
    assert nb.predict_one({"shop": "store", "k": 1.0, "v": 0.0}) is False
    assert nb.predict_one({"shop": "phone", "v": 2.5}) is True  # unseen value, missing feature
    assert nb.predict_one({"other": 1.0}) in (True, False)  # nothing known: the prior decides
    assert nb.predict_one({"k": 1e9, "v": 0.1}) is False  # a constant feature stays finite


def test_learns_only_before_and_predicts_only_after_freeze() -> None:
    nb = FrozenNaiveBayes()
    nb.learn_one({"a": 1.0}, 0)
    with pytest.raises(RuntimeError, match="freeze"):
        nb.predict_one({"a": 1.0})
    nb.freeze()
    with pytest.raises(RuntimeError, match="frozen"):
        nb.learn_one({"a": 1.0}, 0)
