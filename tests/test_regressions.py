"""Regression tests for bugs found in code review (each failed before its fix).

Fast, no Kafka. The pipeline tests drive `agents.pipeline.register` through a tiny fake Faust
app (agents/timers captured, topics recorded), so they exercise the real agent code.
"""

from __future__ import annotations

import csv
import json
import os
import time
from argparse import Namespace
from pathlib import Path
from typing import Any

import pytest

from agents.host import HostLimits
from agents.messages import MAX_RECORD_BYTES, BadRecord, dead_letter
from agents.pipeline import Pipeline
from agents.processor import Processor, route
from streamsvc.config import ConfigError, load_settings

SPECS = load_settings(None, {}).models
FAUST_MAX_REQUEST = 1_000_000  # faust's producer_max_request_size default


def _rec(role: str, msg: dict, src_offset: int) -> bytes:
    _, value = route(role, json.dumps(msg).encode(), SPECS,
                     {"topic": role, "partition": 0, "offset": src_offset})
    return value


# -- 1. loss of a joined label when the gap is replayed with wall-clock time ----------------------
def test_replay_of_gap_learns_what_the_original_run_learned() -> None:
    """Replaying the gap between a snapshot and the committed offset with now=time.time()
    expired orphan labels from the snapshot during the replay (their dead letters dropped with
    the replay's outputs), so an event of the gap that joined its label was never learned."""
    limits = HostLimits(orphan_ttl=0.3)
    t0 = int(time.time() * 1000)
    recs = [
        (0, _rec("labels", {"id": "x", "y": 1}, 0), t0),             # label first (orphan)
        (1, _rec("events", {"id": "other", "x": {"a": 1}}, 0), t0 + 10),  # any record
        (2, _rec("events", {"id": "x", "x": {"a": 1}}, 1), t0 + 20),  # its event: joins
    ]
    pipe = Pipeline(SPECS, limits)
    assert pipe.assign(0, None, None) == 0
    pipe.learn(0, *recs[0])
    blob, meta = pipe.snapshot(0)                 # the snapshot includes offset 0 (the orphan)
    assert meta["offset"] == 0
    for r in recs[1:]:
        pipe.learn(0, *r)                          # within orphan_ttl: x joins its label
    learned_original = pipe.statuses()[0]["examples_learned"]
    assert learned_original == 1
    time.sleep(0.5)  # the worker was down longer than orphan_ttl (SIGKILL + restart)

    # restart: the group committed offset 3 (records 0..2 were done), the snapshot is at 0
    pipe2 = Pipeline(SPECS, limits)
    assert pipe2.assign(0, blob, committed=3) == 1     # resume right after the snapshot
    replayed_outputs = [o for r in recs[1:] for o in pipe2.learn(0, *r)]
    assert replayed_outputs == [], "a replay must not publish again"
    assert pipe2.counters["replayed"] == 2
    assert pipe2.statuses()[0]["examples_learned"] == learned_original, \
        "the gap replay did not learn what the original run learned"
    outs = pipe2.learn(0, 3, _rec("events", {"id": "later", "x": {"a": 1}}, 2), t0 + 30)
    assert [o[0] for o in outs] == ["predictions"]   # past the commit: published again
    assert pipe2.counters["records"] == 1


def test_records_at_or_below_the_snapshot_are_never_learned_twice() -> None:
    pipe = Pipeline(SPECS, HostLimits())
    pipe.assign(0, None, None)
    for off in range(5):
        pipe.learn(0, off, _rec("events", {"id": f"e{off}", "x": {"a": off}, "y": 1}, off), 0)
    blob, _ = pipe.snapshot(0)
    pipe2 = Pipeline(SPECS, HostLimits())
    assert pipe2.assign(0, blob, committed=2) == 5   # snapshot ahead of the commit
    assert pipe2.learn(0, 3, _rec("events", {"id": "e3", "x": {"a": 3}, "y": 1}, 3), 0) == []
    assert pipe2.counters["skipped"] == 1
    assert pipe2.statuses()[0]["examples_learned"] == 5


# -- 2. lone surrogates: accepted at ingest, then crash the learn agent ----------------------------
def test_lone_surrogate_id_is_refused_at_ingest() -> None:
    raw = b'{"id": "\\ud800", "x": {"a": 1}}'
    with pytest.raises(BadRecord):
        route("events", raw, SPECS, {"topic": "events", "partition": 0, "offset": 0})
    out = Pipeline(SPECS, HostLimits()).ingest("events", "events", 0, 7, raw)
    assert out[0] == "dead_letters" and out[2]["offset"] == 7 and out[2]["raw"] == raw.decode()


# -- 3. one record of another label type poisons the model for good -------------------------------
def test_a_string_label_after_int_labels_does_not_break_the_model() -> None:
    proc = Processor(SPECS, HostLimits())
    off = 0

    def feed(msg: dict) -> Any:
        nonlocal off
        off += 1
        return proc.handle(0, off, _rec("events", msg, off), 0.0)

    for i in range(100):
        feed({"id": f"e{i}", "x": {"a": i % 7}, "y": i % 2})
    try:
        feed({"id": "p", "x": {"a": 1}, "y": "one"})   # one bad producer record
    except BadRecord:
        pass  # refusing it is fine
    # every later, perfectly valid event must still be predicted
    for i in range(100, 110):
        outs = feed({"id": f"e{i}", "x": {"a": i % 7}, "y": i % 2})  # today: TypeError
        assert outs and outs[0][0] == "predictions"


# -- 4. learner errors other than ValueError are not BadRecords (the demo dies) --------------------
def test_learner_overflow_is_a_bad_record() -> None:
    proc = Processor(SPECS, HostLimits())
    with pytest.raises(BadRecord):   # refused at ingest or by the learner, never a crash
        value = _rec("events", {"id": "e", "x": {"a": 10 ** 400}, "y": 1}, 0)
        proc.handle(0, 0, value, 0.0)


def test_demo_survives_a_csv_with_NA_in_a_numeric_column(tmp_path: Path) -> None:
    from streamsvc.demo import demo_command

    path = tmp_path / "d.csv"
    with path.open("w", newline="") as fh:
        wr = csv.writer(fh)
        wr.writerow(["a", "b", "label"])
        for i in range(200):
            wr.writerow([i % 10, (i * 7) % 13, i % 2])
        wr.writerow(["NA", 3, 1])        # a missing value, as real CSVs have
        for i in range(50):
            wr.writerow([i % 10, (i * 7) % 13, i % 2])
    args = Namespace(model="default", file=str(path), target="label", stream=None, count=0,
                     seed=0, out=str(tmp_path / "out"), serve=False, port=0)
    assert demo_command(args, load_settings(None, {})) == 0   # today: TypeError traceback


# -- 5. outputs larger than Kafka's / Faust's request limit ---------------------------------------
def test_records_value_of_a_valid_event_fits_the_producer_limit() -> None:
    """ingest re-encodes with ensure_ascii: 2-byte UTF-8 text grows 3x; a valid event of
    ~640 KB becomes a ~1.9 MB records message -> MessageSizeTooLargeError in the ingest agent
    (outside its try), the agent restarts and the source offset is never acked."""
    x = {f"f{i}": "é" * 4000 for i in range(80)}
    raw = json.dumps({"id": "big", "x": x}, ensure_ascii=False).encode()
    assert len(raw) < MAX_RECORD_BYTES
    try:
        _, value = route("events", raw, SPECS, {"topic": "events", "partition": 0, "offset": 0})
    except BadRecord:
        return
    assert len(value) <= FAUST_MAX_REQUEST, f"records value is {len(value)} bytes"


def test_dead_letter_of_an_undecodable_record_fits_the_producer_limit() -> None:
    raw = b"\xff" * 900_000      # not UTF-8: base64 in the dead letter, +33 %
    msg = json.dumps(dead_letter("events", 0, 0, "not valid UTF-8 JSON", raw)).encode()
    assert len(msg) <= FAUST_MAX_REQUEST, f"dead letter is {len(msg)} bytes"


# -- 6. model names that collide with the routing-key syntax --------------------------------------
def test_model_name_with_hash_is_refused_or_works(tmp_path: Path) -> None:
    p = tmp_path / "c.toml"
    p.write_text("[models.'fraud#v2']\nkind = 'hoeffding_tree'\n")
    try:
        specs = load_settings(p, {}).models
    except ConfigError:
        return  # refusing the name at start is the right fix
    proc = Processor(specs, HostLimits())
    _, value = route("events", b'{"id": "a", "model": "fraud#v2", "x": {"f": 1}}', specs,
                     {"topic": "events", "partition": 0, "offset": 0})
    outs = proc.handle(0, 0, value, 0.0)   # today: BadRecord "unknown model 'fraud'"
    assert outs[0][0] == "predictions"


# -- 7. config errors that escape as tracebacks or are not caught at all --------------------------
@pytest.mark.parametrize("text, key", [
    ("[models.m]\nkind='hoeffding_tree'\ndrift_delta='x'\n", "models.m.drift_delta"),
    ("kafka = 5\n", "kafka"),
    ("models = 5\n", "models"),
    ("[models.m]\nkind='hoeffding_tree'\nparams={grace_period='x'}\n", "grace_period"),
    ("[worker]\ncheckpoint_every=0\n", "worker.checkpoint_every"),
    ("[worker]\nstatus_interval=0.0\n", "worker.status_interval"),
    ("[worker]\npending_max=0\n", "worker.pending_max"),
    ("[topics]\npredictions='events'\n", "topics.predictions"),
])
def test_bad_config_fails_with_a_config_error_naming_the_key(tmp_path: Path, text: str,
                                                               key: str) -> None:
    p = tmp_path / "c.toml"
    p.write_text(text)
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_settings(p, {})


def test_env_string_values_that_look_like_toml_stay_strings() -> None:
    s = load_settings(None, {"STREAMSVC_APP_ID": "2024", "STREAMSVC_TOPICS__EVENTS": "2024-01-01"})
    assert s.app_id == "2024" and s.topic("events") == "2024-01-01"


# -- 8. REST aggregates ----------------------------------------------------------------------------
def test_prometheus_label_values_are_escaped() -> None:
    from streamsvc.api import prometheus_text
    from streamsvc.status import StatusView

    view = StatusView({'a\\b': {"kind": "hoeffding_tree", "family": "classifier"},
                       'c"d': {"kind": "hoeffding_tree", "family": "classifier"},
                       'cd': {"kind": "hoeffding_tree", "family": "classifier"}})
    text = prometheus_text(view)
    seen = [ln for ln in text.splitlines() if ln.startswith("streamsvc_examples_seen{")]
    # text format: label values escape \\, \" and \n; distinct models stay distinct
    assert 'streamsvc_examples_seen{model="a\\\\b"} 0.0' in seen
    assert len(set(seen)) == 3, seen


def test_drift_alert_count_is_not_capped_by_the_sidecar_buffer() -> None:
    from streamsvc.status import StatusView

    view = StatusView({"m": {"kind": "hoeffding_tree", "family": "classifier"}}, alerts_kept=3)
    view.on_status("m", {"model": "m", "shard": "m", "alerts": 5, "updated": time.time()})
    for i in range(5):
        view.on_alert({"model": "m", "position": i})
    assert view.model("m")["drift_alerts"] == 5   # today: 3 (len of the bounded deque)
    view.on_alert({"model": "other", "position": 9})
    assert view.model("m")["drift_alerts"] >= 5   # a Prometheus counter must not go down


def test_status_feed_survives_a_non_object_status_value() -> None:
    from streamsvc.status import StatusView

    view = StatusView({})
    view.on_status("m", [1, 2])   # today: AttributeError -> feed reconnects, seeks to the
    view.on_status("worker:w", {"updated": "soon"})  # beginning, hits it again, forever
    view.readiness()


# -- 9. an event carrying y, delivered twice by the producer, is learned twice --------------------
def test_event_with_label_sent_twice_is_learned_once() -> None:
    proc = Processor(SPECS, HostLimits())
    msg = {"id": "e1", "x": {"a": 1}, "y": 1}
    proc.handle(0, 0, _rec("events", msg, 0), 0.0)
    proc.handle(0, 1, _rec("events", msg, 1), 0.0)   # producer retry: a new source offset
    s = proc.statuses()[0]
    assert s["examples_learned"] == 1, "labels are deduplicated by id, labelled events are not"


# -- 10. `streamsvc produce --file labels.jsonl --topic labels` (the CLI's own example) -------------
def test_produce_sends_jsonl_lines_as_they_are(tmp_path: Path, monkeypatch) -> None:
    import kafka

    from streamsvc.client import produce_command

    sent: list[dict] = []

    class FakeProducer:
        def __init__(self, **kw: Any) -> None: ...
        def send(self, topic: str, key: bytes | None = None, value: bytes = b"") -> None:
            sent.append(json.loads(value))
        def flush(self) -> None: ...
        def close(self) -> None: ...

    monkeypatch.setattr(kafka, "KafkaProducer", FakeProducer)
    p = tmp_path / "labels.jsonl"
    p.write_text('{"id": "e1", "y": 1}\n{"id": "e2", "y": 0, "model": "fraud"}\n')
    args = Namespace(list=False, topic="labels", file=str(p), target=None, id_column=None,
                     synthetic=None, count=None, seed=0, rate=0.0, labels_to=None,
                     label_delay=0, model=None)
    produce_command(args, load_settings(None, {}))
    # documented: "JSONL lines are sent as they are unless --target is given"
    assert sent == [{"id": "e1", "y": 1}, {"id": "e2", "y": 0, "model": "fraud"}], sent


def test_label_join_clock_does_not_run_on_wall_time_while_a_backlog_is_processed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A slow model behind a backlog: labels waiting for queued events must not expire by wall
    time (they did: every orphan went to dead-letters when DriftMoE became the default)."""
    from agents.pipeline import StreamClock

    wall = [1000.0]
    monkeypatch.setattr("agents.pipeline.time.time", lambda: wall[0])
    clock = StreamClock()
    assert clock.now() == 1000.0  # nothing processed yet: wall time
    clock.saw(500.0)  # busy on records produced long ago
    wall[0] += 120.0
    clock.saw(501.0)
    assert clock.now() == 501.0  # the records' clock, not wall time
    clock.saw(400.0)  # an older record (another partition) does not move the clock back
    assert clock.now() == 501.0
    wall[0] += 30.0  # idle: the clock advances with the wall
    assert clock.now() == 531.0


def test_service_limits_blas_threads_unless_the_user_chose() -> None:
    import subprocess
    import sys

    code = "import streamsvc, numpy, os; print(os.environ['OPENBLAS_NUM_THREADS'])"
    env = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.strip() == "1", out.stderr
    env["OPENBLAS_NUM_THREADS"] = "2"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.strip() == "2", out.stderr
