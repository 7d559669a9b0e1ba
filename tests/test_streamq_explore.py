"""StreamQ's opt-in held exploration (`explore_repeat`, εz-greedy)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from models.streamx import StreamQ


def _run_lengths(actions: list[int]) -> list[int]:
    runs, n = [], 1
    for a, b in zip(actions, actions[1:], strict=False):
        if a == b:
            n += 1
        else:
            runs.append(n)
            n = 1
    return runs + [n]


def _actions(q: StreamQ, agent: str, n: int, seed: int = 0) -> list[int]:
    rng = np.random.default_rng(seed)
    return [q.step(agent, "ep", rng.normal(size=3).tolist(), 0.0, False)["action"]
            for _ in range(n)]


def test_default_is_plain_epsilon_greedy() -> None:
    # ε = 1 throughout: with 4 actions, independent draws repeat 1/4 of the time
    q = StreamQ(n_actions=4, exploration_steps=10**9, seed=1)
    runs = _run_lengths(_actions(q, "a", 4000))
    assert q.explore_repeat == 0
    assert 1.2 < np.mean(runs) < 1.5


def test_held_actions_run_longer_and_are_capped_per_hold() -> None:
    q = StreamQ(n_actions=4, exploration_steps=10**9, explore_repeat=20, seed=1)
    acts = _actions(q, "a", 4000)
    runs = _run_lengths(acts)
    assert np.mean(runs) > 2.5  # zeta(2) holds: mean ~3 decisions each, plus chance repeats
    assert max(runs) >= 20  # the heavy tail reaches the cap in 4,000 decisions
    assert set(acts) == {0, 1, 2, 3}


def test_holds_are_per_agent_and_end_with_the_episode() -> None:
    q = StreamQ(n_actions=3, exploration_steps=10**9, explore_repeat=50, seed=2)
    rng = np.random.default_rng(0)
    a, b = [], []
    for _ in range(600):  # two agents interleaved: each keeps its own hold
        a.append(q.step("a", "ep", rng.normal(size=3).tolist(), 0.0, False)["action"])
        b.append(q.step("b", "ep", rng.normal(size=3).tolist(), 0.0, False)["action"])
    assert np.mean(_run_lengths(a)) > 2.0 and np.mean(_run_lengths(b)) > 2.0
    # one hold shared by both would make them agree most of the time; apart, about 1/3
    assert np.mean(np.array(a) == np.array(b)) < 0.5
    q.step("a", "ep", [0.0, 0.0, 0.0], 0.0, True)  # episode over: its hold is gone
    assert all(st is not q._agents.get("a") for st in q._holds())


def test_pickle_round_trip_and_models_pickled_before_the_option() -> None:
    q = StreamQ(n_actions=2, exploration_steps=10**9, explore_repeat=10, seed=3)
    _actions(q, "a", 50)
    clone = pickle.loads(pickle.dumps(q))
    assert _actions(clone, "a", 200, seed=9) == _actions(q, "a", 200, seed=9)
    old = StreamQ(n_actions=2, seed=3)
    del old.__dict__["explore_repeat"]  # as unpickled from before the option existed
    old = pickle.loads(pickle.dumps(old))
    assert old.explore_repeat == 0
    assert len(_actions(old, "a", 20)) == 20


def test_wrong_value_says_so() -> None:
    with pytest.raises(ValueError, match="explore_repeat must be >= 0"):
        StreamQ(n_actions=2, explore_repeat=-1)
