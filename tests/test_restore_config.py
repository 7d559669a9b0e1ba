"""A restored partition runs under today's config: changed limits take effect, a changed
model kind keeps what was learned and says so (issue 13's restart semantics)."""

from __future__ import annotations

import json
import logging

import pytest

from agents.host import HostLimits
from agents.pipeline import Pipeline
from streamsvc.config import load_settings

HT = {"STREAMSVC_MODELS__DEFAULT__KIND": "hoeffding_tree"}


def _feed(pipe: Pipeline, start: int, n: int, labelled: bool) -> None:
    for off in range(start, start + n):
        msg = {"id": f"e{off}", "x": {"a": off % 5}}
        if labelled:
            msg["y"] = off % 2
        fwd = pipe.ingest("events", "events", 0, off, json.dumps(msg).encode())
        pipe.learn(0, off, fwd.value, 1_000)


def _snapshot(env: dict, limits: HostLimits) -> bytes:
    pipe = Pipeline(load_settings(None, env).models, limits)
    pipe.assign(0, None, None)
    _feed(pipe, 0, 50, labelled=True)
    _feed(pipe, 50, 20, labelled=False)  # 20 events wait for their labels
    blob, _ = pipe.snapshot(0)
    return blob


def test_changed_limits_apply_after_a_restore() -> None:
    blob = _snapshot(HT, HostLimits(pending_max=1000))
    pipe = Pipeline(load_settings(None, HT).models, HostLimits(pending_max=5))
    pipe.assign(0, blob, None)
    _feed(pipe, 70, 1, labelled=False)
    s = pipe.statuses()[0]
    assert s["pending_labels"] == 5, "the restored shard kept its old pending_max"
    assert s["labels_missing"] == 16
    assert s["config_changed"] is None


def test_a_changed_kind_keeps_the_learned_model_and_says_so(caplog: pytest.LogCaptureFixture
                                                            ) -> None:
    blob = _snapshot(HT, HostLimits())
    arf = {"STREAMSVC_MODELS__DEFAULT__KIND": "arf", "STREAMSVC_MODELS__DEFAULT__DRIFT_DETECTOR":
           "page_hinkley"}
    pipe = Pipeline(load_settings(None, arf).models, HostLimits())
    with caplog.at_level(logging.WARNING, logger="streamsvc.agents"):
        pipe.assign(0, blob, None)
    s = pipe.statuses()[0]
    assert s["examples_learned"] == 50 and s["kind"] == "hoeffding_tree"
    assert s["config_changed"]["kind"] == {"learned_with": "hoeffding_tree", "config": "arf"}
    assert s["config_changed"]["action"] == "kept"
    assert "Keeping what it learned" in caplog.text and 'on_config_change = "reset"' in caplog.text
    host = next(iter(pipe.proc.partitions[0].hosts.values()))
    assert host.detector_name == "page_hinkley"   # the detector follows the config
    _feed(pipe, 70, 5, labelled=True)             # and the shard goes on learning
    assert pipe.statuses()[0]["examples_learned"] == 55


def test_alerting_settings_follow_the_config_after_a_restore() -> None:
    blob = _snapshot(HT, HostLimits())
    env = {**HT, "STREAMSVC_MODELS__DEFAULT__DRIFT_DETECTOR": "adwin",
           "STREAMSVC_MODELS__DEFAULT__DRIFT_DELTA": "0.01",
           "STREAMSVC_MODELS__DEFAULT__ALERT_ON": "both",
           "STREAMSVC_MODELS__DEFAULT__DATA_DRIFT": "false",
           "STREAMSVC_MODELS__DEFAULT__REFERENCE_DRIFT": "false"}
    pipe = Pipeline(load_settings(None, env).models, HostLimits())
    pipe.assign(0, blob, None)
    host = next(iter(pipe.proc.partitions[0].hosts.values()))
    assert host.detector_name == "adwin" and host.detector.delta == 0.01
    assert host.alert_on == "both"
    assert host.data_detector is None and host.reference is None
    _feed(pipe, 70, 5, labelled=True)
    blob2, _ = pipe.snapshot(0)
    # and back on: the label-free detector is built again for the restored shard
    again = Pipeline(load_settings(None, {**env, "STREAMSVC_MODELS__DEFAULT__DATA_DRIFT":
                                          "true", "STREAMSVC_MODELS__DEFAULT__REFERENCE_DRIFT":
                                          "true"}).models, HostLimits())
    again.assign(0, blob2, None)
    h2 = next(iter(again.proc.partitions[0].hosts.values()))
    assert h2.data_detector is not None and h2.detector_name == "adwin"
    assert h2.reference is not None and h2.reference.trained == 0  # learns from now on


def test_on_config_change_reset_starts_the_changed_model_fresh_and_says_so(
        caplog: pytest.LogCaptureFixture) -> None:
    blob = _snapshot(HT, HostLimits())
    arf = {"STREAMSVC_MODELS__DEFAULT__KIND": "arf",
           "STREAMSVC_MODELS__DEFAULT__ON_CONFIG_CHANGE": "reset"}
    pipe = Pipeline(load_settings(None, arf).models, HostLimits())
    with caplog.at_level(logging.WARNING, logger="streamsvc.agents"):
        start = pipe.assign(0, blob, None)
    assert start == 70, "records already applied must not be learned again"
    s = pipe.statuses()[0]
    assert s["kind"] == "arf" and s["examples_learned"] == 0 and s["pending_labels"] == 0
    assert s["config_changed"]["kind"] == {"learned_with": "hoeffding_tree", "config": "arf"}
    assert s["config_changed"]["action"] == "reset"
    assert "starting it fresh (50 examples learned before are dropped)" in caplog.text
    _feed(pipe, 70, 5, labelled=True)
    assert pipe.statuses()[0]["examples_learned"] == 5
    # restored again under the same config: nothing changed, nothing reset
    blob2, _ = pipe.snapshot(0)
    again = Pipeline(load_settings(None, arf).models, HostLimits())
    again.assign(0, blob2, None)
    s2 = again.statuses()[0]
    assert s2["examples_learned"] == 5 and s2["config_changed"] is None


def test_on_config_change_takes_keep_or_reset_only() -> None:
    from streamsvc.config import ConfigError

    with pytest.raises(ConfigError, match="on_config_change' must be \"keep\""):
        load_settings(None, {"STREAMSVC_MODELS__DEFAULT__ON_CONFIG_CHANGE": "drop"})
