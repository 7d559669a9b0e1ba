"""Kafka-free parts of the batch engine: the latency histogram and the snapshot writer."""

from __future__ import annotations

import threading
import time

from streamsvc.engine import LATENCY_BUCKETS, LatencyHistogram, SnapshotWriter


def test_latency_histogram_buckets_and_totals() -> None:
    h = LatencyHistogram()
    for s in (0.0005, 0.001, 0.003, 0.2, 99.0):
        h.observe(s)
    d = h.as_dict()
    assert d["buckets"] == list(LATENCY_BUCKETS)
    assert len(d["counts"]) == len(LATENCY_BUCKETS) + 1
    assert d["counts"][0] == 2          # <= 1 ms (upper bounds are inclusive, as Prometheus')
    assert d["counts"][2] == 1          # (2.5 ms, 5 ms]
    assert d["counts"][-1] == 1         # above the last bound
    assert d["count"] == 5 and abs(d["sum"] - 99.2045) < 1e-6


def test_snapshot_writer_keeps_order_and_drain_waits() -> None:
    saved: list[tuple[int, bytes]] = []
    gate = threading.Event()

    def save(p: int, blob: bytes, meta: dict) -> None:
        gate.wait(5)
        saved.append((p, blob))

    w = SnapshotWriter(save, lambda p, n: None)
    for i in range(5):
        w.put(i % 2, bytes([i]), {"offset": i, "records": 1})
    time.sleep(0.05)
    assert saved == []                  # the hot path did not wait for the writes
    gate.set()
    w.drain()
    assert saved == [(i % 2, bytes([i])) for i in range(5)]
    w.close()


def test_snapshot_writer_reports_failures_so_the_state_stays_due() -> None:
    failed: list[tuple[int, int]] = []

    def save(p: int, blob: bytes, meta: dict) -> None:
        raise TimeoutError("kafka down")

    w = SnapshotWriter(save, lambda p, n: failed.append((p, n)))
    w.put(3, b"x", {"offset": 10, "records": 42})
    w.drain()
    assert failed == [(3, 42)] and w.saved == 0
    w.close()


def test_pipeline_marks_a_failed_snapshot_due_again() -> None:
    import json

    from agents.host import HostLimits
    from agents.pipeline import Pipeline
    from streamsvc.config import load_settings

    specs = load_settings(None, {"STREAMSVC_MODELS__DEFAULT__KIND": "hoeffding_tree"}).models
    pipe = Pipeline(specs, HostLimits(), checkpoint_every=10, checkpoint_interval=3600)
    pipe.assign(0, None, None)
    for off in range(10):
        fwd = pipe.ingest("events", "events", 0, off,
                          json.dumps({"id": f"e{off}", "x": {"a": off}, "y": 1}).encode())
        pipe.learn(0, off, fwd.value, 1)
    assert pipe.due() == [0]
    _, meta = pipe.snapshot(0)
    assert pipe.due() == [] and meta["records"] == 10
    pipe.mark_unsaved(0, meta["records"])   # the write failed
    assert pipe.due() == [0]


def _engine(**kw):
    """A BatchEngine that never reaches a broker (its clients connect lazily)."""
    from agents.host import HostLimits
    from agents.pipeline import Pipeline
    from streamsvc import engine as eng
    from streamsvc.config import load_settings

    roles = ("events", "labels", "transitions", "edges", "node_labels", "records",
             "predictions", "drift_alerts", "dead_letters", "model_status")
    return eng.BatchEngine(pipeline=Pipeline(load_settings(None, {}).models, HostLimits()),
                           topics={r: r for r in roles},
                           # log_level 0: no "connection refused" lines on the test output
                           client_config={"bootstrap.servers": "127.0.0.1:9", "log_level": 0},
                           group_id="g",
                           worker_id="w", load_snapshots=dict, save_snapshot=lambda *a: None,
                           **kw)


def test_a_backlog_switches_to_the_lingering_producer_and_back() -> None:
    """Full batches twice in a row: outputs go through the producer that lingers
    `busy_linger_ms` (fuller requests); a batch that empties the queue: back to the one
    that lingers `linger_ms`. Counted in the worker status."""
    e = _engine(max_batch=100, linger_ms=5.0, busy_linger_ms=20.0)
    try:
        light = e.producer
        e._pick_producer(100)
        assert e.producer is light, "one full batch is not a backlog"
        e._pick_producer(100)
        assert e.producer is not light and e.pipe.counters["backlog_switches"] == 1
        e._pick_producer(100)
        assert e.pipe.counters["backlog_switches"] == 1
        e._pick_producer(37)
        assert e.producer is light
        same = _engine(max_batch=100, linger_ms=5.0, busy_linger_ms=5.0)
        try:
            assert same._busy is same._light  # nothing to gain: one producer
        finally:
            same.writer.close()
    finally:
        e.writer.close()


def test_the_heartbeat_is_withheld_while_fausts_event_loop_does_not_turn(tmp_path) -> None:
    """The liveness file proves both loops turn: the engine's (it touches the file) and
    Faust's (it marks itself every second); a stale mark stops the touches."""
    import os
    import time

    from streamsvc import engine as eng

    hb = tmp_path / "alive"
    e = _engine(heartbeat_file=str(hb))
    try:
        e._beat()  # no mark yet (a bare engine): the engine's own loop is enough
        assert hb.exists()
        os.utime(hb, (0, 0))
        e._control_mark = time.monotonic() - eng.CONTROL_STALE - 1  # Faust's loop stuck
        e._last_beat = 0.0
        e._beat()
        assert hb.stat().st_mtime == 0, "touched although Faust's loop is stuck"
        e.mark_control_loop()  # it turns again
        e._last_beat = 0.0
        e._beat()
        assert hb.stat().st_mtime > time.time() - 5
    finally:
        e.writer.close()


def test_outputs_in_flight_postpone_commits_and_snapshots_without_stalling() -> None:
    """While outputs are in flight the loop neither commits nor snapshots, and it does not
    stop for a full flush either (that stall, once a second at half load, was the latency
    tail): it waits `COMMIT_WAIT` and goes on; only after `MAX_COMMIT_DELAY` commit
    intervals would it flush. Here the broker is unreachable, so nothing ever lands."""
    import json

    from streamsvc import engine as eng

    e = _engine(commit_interval=0.2)
    try:
        e._n_records = 4  # what `run()` reads from the broker's metadata before it starts
        e.pipe.assign(0, None, None)
        fwd = e.pipe.ingest("events", "events", 0, 0,
                            json.dumps({"id": "a", "x": {"f": 1.0}, "y": 1}).encode())
        e._produce("records", fwd.key.encode(), fwd.value, ("events", 0, 0, b""))
        e._offsets[("events", 0)] = 1
        e.pipe.proc.state(0).dirty = 1
        e.pipe.proc.state(0).saved_at = 0.0  # a snapshot is due
        e._last_commit = time.monotonic() - 0.3  # a commit is due, not yet overdue
        t0 = time.monotonic()
        e._maybe_commit()
        e._maybe_checkpoint()  # keeping up (the light producer): left to the commit points
        took = time.monotonic() - t0
        assert took < 0.5, f"the loop stalled {took:.2f} s"
        assert took >= eng.COMMIT_WAIT  # it did give the outputs a moment
        assert e._offsets == {("events", 0): 1}, "committed although an output is in flight"
        assert e.pipe.counters["snapshots_saved"] == 0
        assert e.pipe.counters["commit_flushes"] == 0
        assert e.pipe.due() == [0]  # still due: the next commit point tries again
    finally:
        e.writer.close()
        e._light.purge()
