"""End to end through a real Kafka broker, the real `streamsvc worker` and `streamsvc api`
processes, and plain kafka-python clients standing in for users."""

from __future__ import annotations

import json
import random
import signal
import time

import httpx
import pytest
from kafka import KafkaProducer

from streamsvc.devbroker import free_port
from tests.conftest import ServiceProcs, TopicReader, wait_for

pytestmark = pytest.mark.kafka

DRIFT_AT = 3000


def drifting_events(n: int, seed: int, prefix: str, start: int = 0) -> list[dict]:
    """Concept A (y = x1 > 0.5) until DRIFT_AT, then concept B (y = x2 > 0.5)."""
    rng = random.Random(seed)
    out = []
    for i in range(start, start + n):
        x1, x2 = rng.random(), rng.random()
        y = int((x1 if i < DRIFT_AT else x2) > 0.5)
        out.append({"id": f"{prefix}{i}", "x": {"x1": x1, "x2": x2,
                                                "colour": rng.choice(["red", "blue"])}, "y": y})
    return out


MALFORMED: list[bytes] = [
    b"not json at all",
    b"\xff\xfe\x00binary",
    b"[1, 2, 3]",
    b'{"id": "m1"}',                                   # no features
    b'{"id": "m2", "x": {"a": NaN}}',                  # NaN is not JSON
    b'{"id": "m3", "x": {"a": [1, 2]}}',               # wrong feature type
    b'{"id": "m4", "x": {"a": 1}, "model": "nope"}',   # unknown model
    b'{"id": "m5", "x": {"a": 1}, "y": 0.5}',          # float label
    b'{"id": "", "x": {"a": 1}}',                      # empty id
    b"",
]


def _producer(svc: ServiceProcs) -> KafkaProducer:
    return KafkaProducer(bootstrap_servers=svc.broker.bootstrap, linger_ms=10)


def _send_all(prod: KafkaProducer, topic: str, msgs: list[dict], key: bytes | None = None
              ) -> None:
    for m in msgs:
        prod.send(topic, json.dumps(m).encode(), key=key)  # no key: the service routes by itself
    prod.flush()


def _model(api: str) -> dict:
    return httpx.get(f"{api}/models/default", timeout=5).json()


def _status(url: str) -> int | None:
    try:
        return httpx.get(url, timeout=2).status_code
    except httpx.HTTPError:
        return None


def test_worker_and_api_end_to_end_with_restart(service: ServiceProcs) -> None:
    env = {"STREAMSVC_WORKER__ORPHAN_TTL": "20.0", "STREAMSVC_WORKER__STATUS_INTERVAL": "1.0",
           "STREAMSVC_WORKER__SESSION_TIMEOUT": "10.0"}
    port = free_port()
    api_url = f"http://127.0.0.1:{port}"
    worker = service.start("worker", env=env, name="worker")
    api = service.start("api", "--port", str(port), env=env, name="api")
    t = service.topics
    wait_for(lambda: _status(f"{api_url}/health") == 200
             if api.poll() is None else pytest.fail(service.log_of(api)), 60, "api up")
    assert _status(f"{api_url}/ready") == 503  # no worker has reported yet
    wait_for(lambda: _status(f"{api_url}/ready") == 200
             if worker.poll() is None else pytest.fail(service.log_of(worker)),
             90, "ready (worker reporting)")
    preds = TopicReader(service.broker.bootstrap, t["predictions"])
    dead = TopicReader(service.broker.bootstrap, t["dead_letters"])
    alerts = TopicReader(service.broker.bootstrap, t["drift_alerts"])
    try:

        events = drifting_events(4500, seed=1, prefix="e")
        delayed = [{"id": f"d{i}", "x": {"x1": x1, "x2": 0.3, "colour": "red"}}
                   for i, x1 in enumerate(random.Random(2).random() for _ in range(300))]
        labels = [{"id": d["id"], "y": int(d["x"]["x1"] > 0.5)} for d in delayed]
        prod = _producer(service)
        # one key: one input partition, so the worker learns them in the order sent and the
        # drift comes at example DRIFT_AT (spread over four partitions, concept B would reach
        # the model from the faster partitions well before it, and the alert with it)
        _send_all(prod, t["events"], events[:2000], key=b"in-order")
        for raw in MALFORMED:
            prod.send(t["events"], raw)
        _send_all(prod, t["events"], events[2000:], key=b"in-order")
        _send_all(prod, t["events"], delayed)
        time.sleep(1.0)  # labels come late
        _send_all(prod, t["labels"], labels + [{"id": "ghost", "y": 1}])
        prod.send(t["labels"], b'{"id": "d0"}')  # a label without y
        prod.flush()

        want = {e["id"] for e in events} | {d["id"] for d in delayed}

        def all_predicted():
            got = {p["id"] for p in preds.poll()}
            if worker.poll() is not None:
                pytest.fail("worker died:\n" + service.log_of(worker))
            return want <= got

        wait_for(all_predicted, 180, "a prediction for every event id")
        by_id = {p["id"]: p for p in preds.messages}
        acc_before = sum(by_id[e["id"]]["y_pred"] == e["y"] for e in events[500:DRIFT_AT]) / (
            DRIFT_AT - 500)
        acc_all = sum(by_id[e["id"]]["y_pred"] == e["y"] for e in events) / len(events)
        assert acc_before > 0.9, acc_before
        assert acc_all > 0.75, acc_all
        assert set(by_id["e10"]["proba"]) <= {"0", "1"}

        # every malformed record is in dead-letters with a reason, and the worker went on
        wait_for(lambda: len(dead.poll()) >= len(MALFORMED) + 1 and any(
            "ghost" in d["error"] for d in dead.messages), 90,
            "dead letters, including the label for an unknown id after orphan_ttl")
        raws = {d["raw"] for d in dead.messages if d["topic"] == t["events"]}
        assert {m.decode("utf-8", "replace") for m in MALFORMED if _utf8(m)} <= raws
        assert any(d.get("raw_encoding") == "base64" for d in dead.messages)
        assert all(d["error"] for d in dead.messages)
        assert any("unknown model; configured models are" in d["error"] and d["error"].endswith("'nope'") for d in dead.messages)
        assert any("ghost" in d["error"] and d["topic"] == t["labels"] for d in dead.messages)

        # drift detected after the drift point
        wait_for(lambda: any(a["position"] >= DRIFT_AT and a["kind"] == "concept"
                             for a in alerts.poll()), 60, "a drift alert after the drift point")
        a = next(a for a in alerts.messages if a["position"] >= DRIFT_AT
                 and a["kind"] == "concept")
        # whichever of the shipped detectors saw it first: Page-Hinkley on the model's own
        # errors, or the frozen reference model
        assert a["model"] == "default" and a["detector"] in ("page_hinkley", "reference")
        assert a["direction"] == "degradation"
        assert a["error_rate_after"] is not None

        learned = 4500 + 300
        try:
            m = wait_for(lambda: (m := _model(api_url))["examples_learned"] == learned and m,
                         60, "examples learned in GET /models/default")
        except AssertionError:
            m = {k: v for k, v in _model(api_url).items() if k != "inspect"}
            raise AssertionError(f"GET /models/default: {m}") from None
        assert m["examples_seen"] == learned
        assert m["labels_joined"] == 300
        assert m["kind"] == "drift_moe"  # the shipped default
        moe = m["inspect"]["default"]  # per shard
        assert moe["n_experts"] == 8 and moe["router"]["n_updates"] > 0
        assert by_id["e4000"]["expert"] in range(8)  # predictions name the expert
        assert 0.75 < m["accuracy"] <= 1.0
        assert m["drift_alerts"] >= 1 and m["recent_alerts"]
        assert httpx.get(f"{api_url}/models/nope", timeout=5).status_code == 404
        metrics = httpx.get(f"{api_url}/metrics", timeout=5).text
        assert f'streamsvc_examples_learned{{model="default"}} {float(learned)}' in metrics

        # lag, rates, latency and dead letters by reason, from the worker through the sidecar
        from prometheus_client.parser import text_string_to_metric_families

        fams = {f.name: f for f in text_string_to_metric_families(metrics)}
        lag = [s for s in fams["streamsvc_consumer_lag"].samples
               if s.labels["topic"] == t["events"]]
        assert len(lag) == 4 and all(s.value == 0 for s in lag), lag  # all consumed
        hist = {s.name: s.value for s in fams["streamsvc_processing_latency_seconds"].samples
                if s.labels.get("le") in (None, "+Inf")}
        assert hist["streamsvc_processing_latency_seconds_count"] >= learned
        assert 0 < hist["streamsvc_processing_latency_seconds_sum"]
        dl = sum(s.value for s in fams["streamsvc_dead_letters"].samples
                 if s.name == "streamsvc_dead_letters_total")
        assert dl >= len(MALFORMED)
        ins = {s.labels["topic_role"]: s.value for s in fams["streamsvc_records_in"].samples}
        assert ins["events"] >= len(events) + len(delayed) + len(MALFORMED)
        w = httpx.get(f"{api_url}/workers", timeout=5).json()
        assert len(w) == 1 and w[0]["lag_total"] == 0 and w[0]["latency"]["p99"] is not None
        # the imports and the app were frozen out of the collector's way at start
        assert w[0]["counters"]["gc_frozen_objects"] > 10_000, w[0]["counters"]
        gcs = {s.labels["worker"]: s.value for s in fams["streamsvc_gc_full_collections"].samples}
        assert set(gcs) == {w[0]["worker"]}

        # a clean restart keeps what was learned
        assert service.stop(worker, signal.SIGTERM) == 0, service.log_of(worker)
        worker2 = service.start("worker", env=env, name="worker")
        more = drifting_events(200, seed=3, prefix="r", start=5000)
        _send_all(prod, t["events"], more)
        wait_for(lambda: {e["id"] for e in more} <= {p["id"] for p in preds.poll()}
                 if worker2.poll() is None else pytest.fail(service.log_of(worker2)),
                 120, "predictions after restart")
        after = [p for p in preds.messages if p["id"].startswith("r")]
        assert min(p["examples_learned"] for p in after) >= learned  # did not start from zero
        wait_for(lambda: _model(api_url)["examples_learned"] == learned + 200, 60,
                 "examples learned continue after restart")
        prod.close()
    finally:
        for r in (preds, dead, alerts):
            r.close()


def _topics(svc: ServiceProcs) -> set[str]:
    from kafka import KafkaConsumer

    c = KafkaConsumer(bootstrap_servers=svc.broker.bootstrap)
    try:
        return set(c.topics())
    finally:
        c.close()


def _utf8(b: bytes) -> bool:
    try:
        b.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def test_sigkill_mid_stream_loses_nothing(service: ServiceProcs) -> None:
    """Kill -9 a worker mid-stream: after a restart every event has a prediction and every
    labelled example was learned exactly once."""
    env = {"STREAMSVC_WORKER__CHECKPOINT_EVERY": "700", "STREAMSVC_WORKER__CHECKPOINT_INTERVAL":
           "3.0", "STREAMSVC_WORKER__SESSION_TIMEOUT": "10.0",
           "STREAMSVC_WORKER__STATUS_INTERVAL": "1.0"}
    t = service.topics
    worker = service.start("worker", env=env, name="worker")
    wait_for(lambda: set(t.values()) <= _topics(service), 60, "topics created by the worker")
    preds = TopicReader(service.broker.bootstrap, t["predictions"])
    status = TopicReader(service.broker.bootstrap, t["model_status"])
    try:
        events = drifting_events(15000, seed=7, prefix="k")  # enough to kill it mid-stream
        prod = _producer(service)
        _send_all(prod, t["events"], events)
        # mid-stream, once a snapshot is written: the restart restores it and replays the rest
        # (a pack of forwarded records is learned at once, so predictions come in thousands)
        wait_for(lambda: len(preds.poll()) >= 1500 and "checkpoint records[" in service.log_of(
                 worker) if worker.poll() is None else pytest.fail(service.log_of(worker)), 120,
                 "worker mid-stream, a snapshot written")
        service.stop(worker, signal.SIGKILL)
        seen_before = len({p["id"] for p in preds.messages})
        assert seen_before < len(events), "the kill came too late to test anything"
        worker2 = service.start("worker", env=env, name="worker")
        want = {e["id"] for e in events}
        wait_for(lambda: want <= {p["id"] for p in preds.poll()} if worker2.poll() is None
                 else pytest.fail(service.log_of(worker2)), 180, "all predictions after SIGKILL")

        def learned_exactly():
            shards = {}
            for s in status.poll():
                if s and s.get("model") == "default":
                    shards[s["shard"]] = s
            return shards.get("default", {}).get("examples_learned")

        wait_for(lambda: learned_exactly() == len(events), 60,
                 "examples_learned == events sent (exactly once)")
        time.sleep(3.0)  # nothing is learned twice later either
        assert learned_exactly() == len(events)
        assert "restored records[" in service.log_of(worker2)  # state came from the snapshot
        assert not list(service.tmp.glob("*-data")), "the worker left a folder in its cwd"
        prod.close()
    finally:
        preds.close()
        status.close()


def test_two_workers_share_partitions_and_hand_over_state(service: ServiceProcs) -> None:
    """Scale out: two workers in one group split the model's shards; when one leaves, the
    other restores its shards from Kafka and nothing learned is lost."""
    env = {"STREAMSVC_MODELS__DEFAULT__SHARDS": "4", "STREAMSVC_WORKER__SESSION_TIMEOUT": "10.0",
           "STREAMSVC_WORKER__STATUS_INTERVAL": "1.0"}
    t = service.topics
    a = service.start("worker", env={**env, "STREAMSVC_WORKER_ID": "worker-a"}, name="wa")
    wait_for(lambda: set(t.values()) <= _topics(service), 60, "topics created by the worker")
    status = TopicReader(service.broker.bootstrap, t["model_status"])
    preds = TopicReader(service.broker.bootstrap, t["predictions"])

    def latest() -> tuple[dict, dict]:
        workers, shards = {}, {}
        for s in status.poll():
            if not s:
                continue
            if "counters" in s:
                workers[s["worker"]] = s
            elif s.get("model") == "default":
                shards[s["shard"]] = s
        return workers, shards

    try:
        wait_for(lambda: "worker-a" in latest()[0], 90, "worker a reporting")
        b = service.start("worker", env={**env, "STREAMSVC_WORKER_ID": "worker-b"}, name="wb")
        wait_for(lambda: all(latest()[0].get(w, {}).get("partitions") is not None
                             for w in ("worker-a", "worker-b")), 90, "both workers reporting")
        prod = _producer(service)
        first = drifting_events(3000, seed=11, prefix="s")
        _send_all(prod, t["events"], first)
        wait_for(lambda: {e["id"] for e in first} <= {p["id"] for p in preds.poll()}, 120,
                 "predictions with two workers")
        workers, _ = wait_for(lambda: (ws := latest()) and all(
            ws[0][w]["counters"]["records"] > 0 for w in ("worker-a", "worker-b")) and ws, 60,
            "both workers processing records")
        owned = [set(workers[w]["partitions"]) for w in ("worker-a", "worker-b")]
        assert owned[0] and owned[1] and not owned[0] & owned[1]
        _, shards = wait_for(lambda: (ws := latest()) and sum(
            s["examples_learned"] for s in ws[1].values()) == 3000 and ws, 60, "3000 learned")
        before = {k: s["examples_learned"] for k, s in shards.items()}
        assert len(before) == 4
        # the model's 4 shards sit on the 4 records partitions, 2 with each worker
        assert sorted(s["partition"] for s in shards.values()) == [0, 1, 2, 3], shards
        assert sorted(s["worker"] for s in shards.values()) == ["worker-a"] * 2 + ["worker-b"] * 2

        assert service.stop(a, signal.SIGTERM) == 0, service.log_of(a)
        second = drifting_events(1000, seed=12, prefix="s", start=3000)
        _send_all(prod, t["events"], second)
        wait_for(lambda: {e["id"] for e in second} <= {p["id"] for p in preds.poll()}
                 if b.poll() is None else pytest.fail(service.log_of(b)), 120,
                 "predictions after worker a left")
        try:
            _, shards = wait_for(lambda: (ws := latest()) and sum(
                s["examples_learned"] for s in ws[1].values()) == 4000 and ws, 60,
                "4000 learned after the hand-over")
        except AssertionError:
            summary = {k: (s["examples_learned"], s["worker"], s.get("partition"),
                           s.get("offset")) for k, s in latest()[1].items()}
            raise AssertionError(f"shards after hand-over: {summary}, before: {before}\n"
                                 + service.log_of(b)[-3000:]) from None
        assert all(shards[k]["examples_learned"] >= n for k, n in before.items())
        assert all(s["worker"] == "worker-b" for s in shards.values())
        prod.close()
    finally:
        status.close()
        preds.close()


def test_sigkill_of_one_of_two_workers_loses_nothing(service: ServiceProcs) -> None:
    """One of two workers is killed with SIGKILL mid-stream: after the session timeout the
    survivor is assigned its partitions and replays the records the dead worker had committed
    but not snapshotted (counted as `replayed`, learned without publishing again); every event
    is predicted and learned exactly once."""
    env = {"STREAMSVC_MODELS__DEFAULT__SHARDS": "4", "STREAMSVC_MODELS__DEFAULT__KIND":
           "hoeffding_tree", "STREAMSVC_WORKER__SESSION_TIMEOUT": "6.0",
           "STREAMSVC_WORKER__STATUS_INTERVAL": "1.0",
           # worker a never snapshots before it is killed: what it learned exists only in the
           # committed records, so the survivor must replay them (deterministically > 0)
           "STREAMSVC_WORKER__CHECKPOINT_EVERY": "1000000",
           "STREAMSVC_WORKER__CHECKPOINT_INTERVAL": "3600.0",
           "STREAMSVC_WORKER__COMMIT_INTERVAL": "0.05"}
    t = service.topics
    a = service.start_worker(env={**env, "STREAMSVC_WORKER_ID": "worker-a"})
    status = TopicReader(service.broker.bootstrap, t["model_status"])
    preds = TopicReader(service.broker.bootstrap, t["predictions"])

    def latest() -> tuple[dict, dict]:
        workers, shards = {}, {}
        for s in status.poll():
            if s and "counters" in s:
                workers[s["worker"]] = s
            elif s and s.get("model") == "default":
                shards[s["shard"]] = s
        return workers, shards

    try:
        b = service.start_worker(env={**env, "STREAMSVC_WORKER_ID": "worker-b"})
        wait_for(lambda: (w := latest()[0]) and all(w.get(x, {}).get("partitions")
                                                     for x in ("worker-a", "worker-b")),
                 90, "both workers own records partitions")
        prod = _producer(service)
        events = drifting_events(30000, seed=21, prefix="q")
        _send_all(prod, t["events"], events)
        wait_for(lambda: len(preds.poll()) >= 3000, 120, "both workers mid-stream")
        service.stop(a, signal.SIGKILL)
        assert len({p["id"] for p in preds.poll()}) < len(events), "killed too late"
        want = {e["id"] for e in events}
        wait_for(lambda: want <= {p["id"] for p in preds.poll()} if b.poll() is None
                 else pytest.fail(service.log_of(b)), 180, "all predictions after the kill")
        wait_for(lambda: sum(s["examples_learned"] for s in latest()[1].values()) == len(events)
                 and all(s["worker"] == "worker-b" for s in latest()[1].values()), 90,
                 "every example learned once, all shards on worker b")
        time.sleep(2.0)  # and nothing learned twice later
        workers, shards = latest()
        assert sum(s["examples_learned"] for s in shards.values()) == len(events)
        assert workers["worker-b"]["counters"]["replayed"] > 0, "no gap was replayed"
        assert "restored records[" in service.log_of(b)
        prod.close()
    finally:
        status.close()
        preds.close()


def test_worker_liveness_probe_fails_when_the_loop_hangs(service: ServiceProcs) -> None:
    """`streamsvc worker-alive` passes while the worker's loop turns, fails (exit 1, a reason)
    when it is frozen (SIGSTOP stands in for a hung loop), and passes again once it runs."""
    import subprocess
    import sys

    hb = service.tmp / "worker.alive"
    env = {"STREAMSVC_WORKER__HEARTBEAT_FILE": str(hb)}
    worker = service.start_worker(env=env)

    def probe() -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "streamsvc.cli", "worker-alive",
                               "--max-age", "3"], env={**service.env, **env},
                              capture_output=True, text=True, timeout=60)

    assert probe().returncode == 0
    os_kill = __import__("os").killpg
    os_kill(worker.pid, signal.SIGSTOP)
    try:
        time.sleep(4.5)
        hung = probe()
        assert hung.returncode == 1 and "stuck or stopped" in hung.stderr, hung
    finally:
        os_kill(worker.pid, signal.SIGCONT)
    wait_for(lambda: probe().returncode == 0, 30, "the probe passing again")
    assert service.stop(worker) == 0
