"""The stream-x host refuses a transition it cannot learn from BEFORE the model learns from it."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest

from agents.host import HostLimits
from agents.messages import BadRecord
from agents.processor import Processor, route
from streamsvc.config import load_settings


def _proc(kind: str) -> Processor:
    params = "{n_actions = 2}" if kind == "stream_q" else "{}"
    specs = load_settings(None, {"STREAMSVC_MODELS__DEFAULT__KIND": kind,
                                 "STREAMSVC_MODELS__DEFAULT__PARAMS": params}).models
    return Processor(specs, HostLimits())


def _send(proc: Processor, offset: int, obs: list[float], reward: float, done: bool = False,
          **extra: object):
    raw = json.dumps({"agent": "a", "episode": "1", "obs": obs, "reward": reward,
                      "done": done, **extra}).encode()
    _, value = route("transitions", raw, proc.specs, {"topic": "transitions", "partition": 0,
                                                       "offset": offset})
    return proc.handle(0, offset, value, 0.0)


@pytest.mark.parametrize("kind", ["stream_q", "stream_td"])
@pytest.mark.parametrize("bad", [
    ([0.5, 0.1], 1e200, "reward = 1e\\+200 is beyond"),
    ([1e300, 0.1], 1.0, "obs\\[0\\] = 1e\\+300 is beyond"),
])
def test_oversized_transition_is_refused_before_learning(kind, bad) -> None:
    proc = _proc(kind)
    rng = np.random.default_rng(0)
    for i in range(20):
        _send(proc, i, rng.normal(size=2).tolist(), 1.0)
    (host,) = [h for st in proc.partitions.values() for h in st.hosts.values()]
    before = pickle.dumps(host.model)
    obs, reward, reason = bad
    with pytest.raises(BadRecord, match=reason) as exc:
        _send(proc, 20, obs, reward)
    assert "nothing was learned" in str(exc.value)
    # nothing about the model changed: weights, statistics, traces, counters
    assert pickle.dumps(host.model) == before
    out = _send(proc, 21, [0.2, -0.3], 1.0)
    body = out[0][2]
    assert all(np.isfinite(body.get("q", [body.get("value")])))
    assert host.model.inspect()["steps_learned"] == 20


@pytest.mark.parametrize("kind", ["stream_q", "stream_td"])
def test_learner_itself_refuses_oversized_values_without_side_effects(kind) -> None:
    from models.streamx import StreamQ, StreamTD

    m = StreamQ(n_actions=2, seed=0) if kind == "stream_q" else StreamTD(seed=0)
    m.step("a", "e", [0.0, 1.0], 0.0, False)
    m.step("a", "e", [1.0, 0.0], 1.0, False)
    before = pickle.dumps(m)
    with pytest.raises(ValueError, match="too large to learn from"):
        m.step("a", "e", [0.5, 0.5], 1e200, False)
    with pytest.raises(ValueError, match="too large to learn from"):
        m.step("a", "e", [0.5, -1e150], 1.0, False)
    assert pickle.dumps(m) == before


@pytest.mark.parametrize("kind", ["stream_q", "stream_td"])
def test_a_truncated_episode_ends_but_still_bootstraps(kind) -> None:
    """`truncated` (gymnasium's time limit) ends the episode like `done`, but its last
    target bootstraps from the observation: the weights differ from a terminal `done`, and
    a stream TD answer gives the observation's value instead of 0."""
    outs, weights = [], []
    for extra in ({}, {"truncated": True}):
        proc = _proc(kind)
        rng = np.random.default_rng(0)
        for i in range(30):
            _send(proc, i, rng.normal(size=2).tolist(), 1.0)
        outs.append(_send(proc, 30, [0.3, 0.4], 1.0, done=not extra, **extra)[0][2])
        (host,) = [h for st in proc.partitions.values() for h in st.hosts.values()]
        weights.append(host.model.net.theta.copy())
        assert host.episodes_done == 1
        assert _send(proc, 31, [0.1, 0.1], 0.0)[0][2]["step"] == 0  # a new episode began
    assert outs[0]["done"] and outs[1]["done"]
    assert not np.array_equal(weights[0], weights[1])
    if kind == "stream_td":
        assert outs[0]["value"] == 0.0 and outs[1]["value"] != 0.0
