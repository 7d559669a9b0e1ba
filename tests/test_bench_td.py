"""bench.td's random-walk references: the transitions and the maximum-likelihood model."""

import numpy as np

from bench.td import model_values, true_values, walk


def test_walk_yields_the_asked_transitions_from_the_middle():
    steps = list(walk(5, -1.0, seed=3, steps=500))
    assert len(steps) == 500
    assert steps[0][0] == 2  # episodes start in the middle state
    for (s, r, nxt, done), following in zip(steps, steps[1:], strict=False):
        assert abs(nxt - s) <= 1 and 0 <= nxt < 5
        if done:
            assert r in (-1.0, 1.0) and following[0] == 2  # a new episode starts
        else:
            assert r == 0.0 and following[0] == nxt


def test_model_values_solve_the_counted_model_exactly():
    # state 0: two moves to 1, one exit worth -1; state 1: one move to 0, one exit worth +1
    seen = [(0, 0.0, 1, False), (0, 0.0, 1, False), (0, -1.0, 0, True), (1, 0.0, 0, False), (1, 1.0, 1, True)]
    v = model_values(2, 1.0, seen)
    # v0 = (2/3) v1 - 1/3 and v1 = (1/2) v0 + 1/2
    assert np.allclose(v, [0.0, 0.5])


def test_model_values_converge_to_the_true_values():
    err = model_values(5, 1.0, walk(5, -1.0, seed=0, steps=100_000)) - true_values(5, 1.0, -1.0)
    assert np.sqrt(np.mean(err**2)) < 0.03


def test_the_worst_case_is_told_from_its_own_episodes():
    from bench.td import worst_case

    text = worst_case(5, 1.0, -1.0, seed=0, steps=2000)
    ends = [nxt for _, _, nxt, done in walk(5, -1.0, seed=0, steps=2000) if done]
    assert f"{len(ends)} episodes, {sum(e == 0 for e in ends)} ending left" in text
