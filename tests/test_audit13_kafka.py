"""Audit of issue 13 ("what the README promises under failure, proven"): the points that had
no test of their own, each driven from outside through a real broker where it matters.

* a partition left idle across a restart: its waiting orphan label expires to dead-letters
  (bytes as sent) without any new record, under a config changed between the restarts
  (orphan_ttl shortened, model kind changed: the learned model is kept and says so);
* a lagging records partition's waiting label is not expired on another partition's clock;
* failures during gap replay are counted *and* logged;
* dead letters of learner refusals carry the bytes as sent also for JSON that is not UTF-8
  and for records near the size limit, and an expired UTF-16 orphan label too.
"""

from __future__ import annotations

import json
import logging
import signal
import time

import pytest
from kafka import KafkaProducer

from agents.host import HostLimits
from agents.pipeline import Forward, Pipeline
from streamsvc.config import load_settings
from streamsvc.engine import records_partition
from tests.conftest import ServiceProcs, TopicReader, wait_for

HT = {"STREAMSVC_MODELS__DEFAULT__KIND": "hoeffding_tree"}
SPECS = load_settings(None, HT).models


def _records_partition(key: str, partitions: int = 4) -> int:
    """The records partition of a model shard (where the engine sends its packs)."""
    return records_partition(key, partitions)


def _latest(status: TopicReader) -> tuple[dict, dict]:
    workers, shards = {}, {}
    for s in status.poll():
        if s and "counters" in s:
            workers[s["worker"]] = s
        elif s and "model" in s:
            shards[s["model"]] = s
    return workers, shards


# -- (b) + config changed between restarts, through Kafka --------------------------------------
@pytest.mark.kafka
def test_idle_partition_orphan_expires_after_restart_under_changed_config(
        service: ServiceProcs) -> None:
    """Worker A (orphan_ttl 600 s, hoeffding_tree) learns 20 events and holds a label for an
    event that never comes; it stops cleanly (final snapshot). Worker B starts with
    orphan_ttl 3 s and kind arf; no record is sent to that partition again. B must restore
    the partition on assignment, keep the learned tree (config_changed says so), and expire
    the orphan to dead-letters with the bytes as sent, having processed no record."""
    t = service.topics
    base = {"STREAMSVC_WORKER__STATUS_INTERVAL": "1.0",
            "STREAMSVC_WORKER__SESSION_TIMEOUT": "6.0"}
    env_a = {**base, **HT, "STREAMSVC_WORKER__ORPHAN_TTL": "600", "STREAMSVC_WORKER_ID": "wa"}
    env_b = {**base, "STREAMSVC_MODELS__DEFAULT__KIND": "arf",
             "STREAMSVC_WORKER__ORPHAN_TTL": "3", "STREAMSVC_WORKER_ID": "wb"}
    a = service.start_worker(env=env_a)
    status = TopicReader(service.broker.bootstrap, t["model_status"])
    dead = TopicReader(service.broker.bootstrap, t["dead_letters"])
    prod = KafkaProducer(bootstrap_servers=service.broker.bootstrap, linger_ms=0)
    orphan = b'{ "y": 1,   "id": "never-comes" }'  # spacing no encoder would write
    try:
        for i in range(20):
            prod.send(t["events"], json.dumps({"id": f"e{i}", "x": {"a": i % 3},
                                               "y": i % 2}).encode())
        prod.send(t["labels"], orphan)
        prod.flush()

        def held() -> bool:
            s = _latest(status)[1].get("default", {})
            return s.get("worker") == "wa" and s.get("examples_learned") == 20 \
                and s.get("waiting_orphan_labels") == 1

        wait_for(held, 90, "worker A holding 20 learned examples and one orphan label")
        assert service.stop(a, signal.SIGTERM) == 0, service.log_of(a)
        assert not [d for d in dead.poll() if d["topic"] == t["labels"]], \
            "the orphan expired before the restart: nothing to test"

        b = service.start_worker(env=env_b)
        got = wait_for(lambda: [d for d in dead.poll() if d["topic"] == t["labels"]]
                       if b.poll() is None else pytest.fail(service.log_of(b)), 60,
                       "the idle partition's orphan label dead-lettered after the restart")
        assert len(got) == 1 and got[0]["raw"] == orphan.decode(), got
        assert "never-comes" in got[0]["error"]

        def settled() -> tuple[dict, dict] | None:
            w, s = _latest(status)
            d = s.get("default", {})
            ok = d.get("worker") == "wb" and d.get("labels_unknown") == 1 and "wb" in w
            return (w, s) if ok else None

        workers, shards = wait_for(settled, 30, "worker B's status of the restored shard")
        d = shards["default"]
        assert d["waiting_orphan_labels"] == 0
        assert d["examples_learned"] == 20 and d["kind"] == "hoeffding_tree"
        assert d["config_changed"] == {"kind": {"learned_with": "hoeffding_tree",
                                                "config": "arf"}, "action": "kept"}
        c = workers["wb"]["counters"]
        assert c["records"] == 0 and c["replayed"] == 0, f"the partition was not idle: {c}"
        log_b = service.log_of(b)
        assert "Keeping what it learned" in log_b
        # one line format before and after Faust starts, and no terminal codes in a log file
        assert "\x1b" not in log_b and not [ln for ln in log_b.splitlines()
                                             if ln.startswith("[20")], log_b
    finally:
        prod.close()
        status.close()
        dead.close()


# -- (d) one label-join clock per records partition, through Kafka ----------------------------
@pytest.mark.kafka
def test_a_lagging_partitions_label_does_not_expire_on_another_partitions_clock(
        service: ServiceProcs) -> None:
    """Model `lag` and model `fast` live on different records partitions. A label for `lag`
    (record time T0) waits for its event; `fast` receives events stamped T0 + 1000..1100 s,
    far beyond orphan_ttl (60 s). Then `lag`'s event arrives, stamped T0 + 10 s (a backlog).
    The label must join it: no dead letter, labels_joined == 1, labels_unknown == 0."""
    assert _records_partition("lag") != _records_partition("fast")
    t = service.topics
    env = {"STREAMSVC_MODELS__LAG__KIND": "hoeffding_tree",
           "STREAMSVC_MODELS__FAST__KIND": "hoeffding_tree",
           "STREAMSVC_WORKER__ORPHAN_TTL": "60", "STREAMSVC_WORKER__STATUS_INTERVAL": "1.0"}
    service.start_worker(env=env)
    status = TopicReader(service.broker.bootstrap, t["model_status"])
    dead = TopicReader(service.broker.bootstrap, t["dead_letters"])
    preds = TopicReader(service.broker.bootstrap, t["predictions"])
    prod = KafkaProducer(bootstrap_servers=service.broker.bootstrap, linger_ms=0)
    t0 = int(time.time() * 1000) - 3_600_000  # an hour behind: a partition catching up
    try:
        prod.send(t["labels"], json.dumps({"id": "late", "model": "lag", "y": 1}).encode(),
                  timestamp_ms=t0)
        prod.flush()
        wait_for(lambda: _latest(status)[1].get("lag", {}).get("waiting_orphan_labels") == 1,
                 60, "the label waiting on partition of `lag`")
        for i in range(100):
            prod.send(t["events"], json.dumps({"id": f"f{i}", "model": "fast", "x": {"a": i},
                                               "y": i % 2}).encode(),
                      timestamp_ms=t0 + 1_000_000 + i * 1000)
        prod.flush()
        wait_for(lambda: _latest(status)[1].get("fast", {}).get("examples_learned") == 100,
                 60, "`fast` far ahead")
        time.sleep(2.5)  # a couple of status ticks: each partition expires on its own clock
        assert _latest(status)[1]["lag"]["waiting_orphan_labels"] == 1, \
            "the lagging partition's label expired on the other partition's clock"
        prod.send(t["events"], json.dumps({"id": "late", "model": "lag",
                                           "x": {"a": 1}}).encode(), timestamp_ms=t0 + 10_000)
        prod.flush()
        wait_for(lambda: any(p["id"] == "late" for p in preds.poll()), 60, "late predicted")
        s = wait_for(lambda: (x := _latest(status)[1].get("lag", {})).get("labels_joined") == 1
                     and x, 30, "the label joined")
        assert s["labels_unknown"] == 0 and s["examples_learned"] == 1
        assert not [d for d in dead.poll() if "late" in d.get("error", "")]
    finally:
        prod.close()
        for r in (status, dead, preds):
            r.close()


# -- (c) gap-replay failures: counted and logged -----------------------------------------------
def _through(pipe: Pipeline, role: str, raw: bytes, offset: int, ts_ms: int = 1000) -> list:
    fwd = pipe.ingest(role, role, 0, offset, raw)
    assert isinstance(fwd, Forward), fwd
    return pipe.learn(0, offset, fwd.value, ts_ms)


def test_failures_while_replaying_are_counted_and_logged(caplog: pytest.LogCaptureFixture
                                                         ) -> None:
    pipe = Pipeline(SPECS, HostLimits())
    pipe.assign(0, None, committed=10)
    _through(pipe, "events", b'{"id": "a", "x": {"f": 1.0}, "y": 1}', 0)
    with caplog.at_level(logging.INFO, logger="streamsvc.pipeline"):
        assert _through(pipe, "events", b'{"id": "b", "x": {"f": 1.0}, "y": "s"}', 1) == []
    assert pipe.counters["replay_errors"] == 1 and pipe.counters["dead_letters"] == 0
    assert "records[0]@1 failed again while replaying" in caplog.text
    assert "learns integers, not text labels: label 's'" in caplog.text


# -- item 1: the bytes as sent on every refusal path ----------------------------------------
def _refusal_raw(sent: bytes) -> dict:
    pipe = Pipeline(SPECS, HostLimits())
    pipe.assign(0, None, None)
    _through(pipe, "events", b'{"id": "a", "x": {"f": 1.0}, "y": 1}', 0)
    outs = _through(pipe, "events", sent, 1)
    dead = [v for role, _, v in outs if role == "dead_letters"]
    assert len(dead) == 1, outs
    assert dead[0]["error"].startswith("model 'default' learns integers, not text labels: "
                                       "label 'cat'"), dead[0]["error"]
    return dead[0]


def _as_sent(d: dict, sent: bytes) -> bool:
    import base64

    if d.get("raw_encoding") == "base64":
        got = base64.b64decode(d["raw"])
    else:
        got = d["raw"].encode("utf-8")
    return got == sent[:len(got)] and (d.get("raw_truncated") or got == sent) \
        and d.get("raw_size", len(sent)) == len(sent)


def test_a_learner_refusal_of_utf16le_json_carries_the_bytes_as_sent() -> None:
    sent = '{"id": "b", "x": {"f": 2.0}, "y": "cat"}'.encode("utf-16-le")
    assert _as_sent(_refusal_raw(sent), sent)


def test_a_learner_refusal_of_utf16_json_with_bom_carries_the_bytes_as_sent() -> None:
    sent = '{"id": "b", "x": {"f": 2.0}, "y": "cat"}'.encode("utf-16")
    assert _as_sent(_refusal_raw(sent), sent)


def test_a_learner_refusal_of_a_large_record_carries_the_bytes_as_sent() -> None:
    sent = ('{ "id" : "b",  "y" : "cat", "x": {' + ", ".join(
        f'"k{i}" : "{"a" * 4000}"' for i in range(120)) + "}}").encode()
    assert 450_000 < len(sent) < 1_000_000
    assert _as_sent(_refusal_raw(sent), sent)


def test_an_expired_utf16_orphan_label_carries_the_bytes_as_sent() -> None:
    pipe = Pipeline(SPECS, HostLimits(orphan_ttl=1.0))
    pipe.assign(0, None, None)
    sent = '{"id": "nope", "y": 1}'.encode("utf-16")
    assert _through(pipe, "labels", sent, 0, 1000) == []
    outs = _through(pipe, "events", b'{"id": "z", "x": {"f": 1.0}}', 1, 100_000)
    dead = [v for role, _, v in outs if role == "dead_letters"]
    assert len(dead) == 1 and _as_sent(dead[0], sent), dead
