"""The sidecar's `/metrics` (prometheus-client) and `/workers` over synthetic worker statuses.

No Kafka: a `StatusView` is fed directly, the FastAPI app is called in-process.
"""

from __future__ import annotations

import math
import time
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.parser import text_string_to_metric_families

from streamsvc.api import create_api
from streamsvc.status import StatusView, histogram_quantile

BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]
# 40 records in (0.005, 0.01], 40 in (0.01, 0.025], 20 in (0.1, 0.25]
COUNTS = [0, 0, 0, 40, 40, 0, 0, 20, 0, 0, 0, 0, 0, 0]
P50 = 0.01 + (0.025 - 0.01) * 10 / 40      # rank 50: 10 into the second populated bucket
P99 = 0.1 + (0.25 - 0.1) * 19 / 20         # rank 99: 19 into the last populated bucket
REASONS = {"not valid UTF-8 JSON": 3, 'x: Field "required"\nagain': 2}


def new_status(worker: str, t: float, *, events: int = 1000, outputs: int = 990,
               in_rate: float = 250.0, out_rate: float = 240.5,
               lag: dict[str, dict[str, int]] | None = None) -> dict[str, Any]:
    return {
        "worker": worker, "updated": t, "partitions": [0, 1],
        "counters": {"events_in": events, "labels_in": 200, "transitions_in": 30,
                     "edges_in": 40, "node_labels_in": 5, "records": 1275,
                     "outputs": outputs, "predictions": 980, "drift_alerts": 2,
                     "dead_letters": 5, "snapshots_saved": 7, "replayed": 11, "skipped": 3,
                     "replay_errors": 2, "send_errors": 1, "send_retries": 4, "batches": 60,
                     "packs": 9},
        "dead_letters_by_reason": dict(REASONS),
        "lag": lag if lag is not None else {"streamsvc-records": {"0": 12, "1": 30},
                                            "events": {"0": 5}},
        "rates": {"in_per_s": in_rate, "out_per_s": out_rate},
        "latency": {"buckets": BUCKETS, "counts": COUNTS, "sum": 4.75, "count": 100},
    }


def old_status(worker: str, t: float, events: int = 70, labels: int = 10) -> dict[str, Any]:
    return {"worker": worker, "updated": t, "partitions": [2],
            "counters": {"events_in": events, "labels_in": labels, "records": 80,
                         "dead_letters": 2, "snapshots_saved": 1}}


@pytest.fixture()
def view() -> StatusView:
    now = time.time()
    v = StatusView({"default": {"kind": "hoeffding_tree", "family": "classifier",
                                "shards_configured": 1, "drift_detector": "adwin"}})
    v.on_status("default", {"model": "default", "shard": "default", "kind": "hoeffding_tree",
                            "examples_seen": 25, "examples_learned": 20,
                            "examples_evaluated": 20, "correct": 15, "updated": now})
    v.on_status("worker:w1", new_status("w1", now - 4, events=600, outputs=590,
                                        in_rate=100.0, out_rate=90.0,
                                        lag={"streamsvc-records": {"0": 50, "1": 70}}))
    v.on_status("worker:w1", new_status("w1", now - 2, events=800, outputs=780,
                                        in_rate=200.0, out_rate=190.0,
                                        lag={"streamsvc-records": {"0": 20, "1": 40}}))
    v.on_status("worker:w1", new_status("w1", now))
    v.on_status("worker:w2", old_status("w2", now - 2))
    v.on_status("worker:w2", old_status("w2", now, events=90, labels=14))
    v.on_status("worker:gone", new_status("gone", now - 3600))   # stale: not reported
    return v


def scrape(client: TestClient) -> tuple[str, dict[tuple[str, frozenset], float]]:
    r = client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"] == CONTENT_TYPE_LATEST
    samples = {}
    for fam in text_string_to_metric_families(r.text):
        for s in fam.samples:
            key = (s.name, frozenset(s.labels.items()))
            assert key not in samples, f"duplicate sample {key}"
            samples[key] = s.value
    return r.text, samples


def get(samples: dict, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def test_metrics_keep_the_existing_series(view: StatusView) -> None:
    text, samples = scrape(TestClient(create_api(view)))
    lines = text.splitlines()
    for line in ['streamsvc_examples_learned{model="default"} 20.0',
                 'streamsvc_examples_seen{model="default"} 25.0',
                 'streamsvc_accuracy{model="default"} 0.75',
                 'streamsvc_workers_live 2.0',
                 'streamsvc_dead_letters{worker="w1"} 5.0',
                 'streamsvc_dead_letters{worker="w2"} 2.0',
                 'streamsvc_events_in{worker="w2"} 90.0',
                 'streamsvc_labels_in{worker="w1"} 200.0',
                 'streamsvc_snapshots_saved{worker="w1"} 7.0',
                 'streamsvc_up 1.0']:
        assert line in lines, line
    for name in ("examples_seen", "examples_learned", "accuracy", "rolling_accuracy",
                 "drift_alerts", "pending_labels", "labels_missing", "labels_unknown",
                 "workers_live", "dead_letters", "events_in", "labels_in", "snapshots_saved",
                 "up"):
        assert f"# TYPE streamsvc_{name} gauge" in lines, name
    assert not any('worker="gone"' in ln for ln in lines)


def test_metrics_worker_counters_lag_and_rates(view: StatusView) -> None:
    _, s = scrape(TestClient(create_api(view)))
    roles = {"events": 1000, "labels": 200, "transitions": 30, "edges": 40, "node_labels": 5}
    for role, n in roles.items():
        assert get(s, "streamsvc_records_in_total", worker="w1", topic_role=role) == n
    assert get(s, "streamsvc_records_in_total", worker="w2", topic_role="events") == 90
    assert get(s, "streamsvc_records_in_total", worker="w2", topic_role="labels") == 14
    assert get(s, "streamsvc_records_in_total", worker="w2", topic_role="edges") is None
    assert get(s, "streamsvc_outputs_total", worker="w1") == 990
    assert get(s, "streamsvc_outputs_total", worker="w2") is None
    for reason, n in REASONS.items():
        assert get(s, "streamsvc_dead_letters_total", worker="w1", reason=reason) == n
    for name, n in [("send_errors", 1), ("send_retries", 4), ("replayed", 11),
                    ("replay_errors", 2), ("snapshots_saved", 7), ("packs", 9)]:
        assert get(s, f"streamsvc_{name}_total", worker="w1") == n
    assert get(s, "streamsvc_snapshots_saved_total", worker="w2") == 1
    assert get(s, "streamsvc_send_errors_total", worker="w2") is None

    lag = {(dict(k[1])["topic"], dict(k[1])["partition"]): v for k, v in s.items()
           if k[0] == "streamsvc_consumer_lag" and dict(k[1])["worker"] == "w1"}
    assert lag == {("streamsvc-records", "0"): 12, ("streamsvc-records", "1"): 30,
                   ("events", "0"): 5}
    assert not any(k[0] == "streamsvc_consumer_lag" and ("worker", "w2") in k[1] for k in s)
    assert get(s, "streamsvc_records_per_second", worker="w1", direction="in") == 250.0
    assert get(s, "streamsvc_records_per_second", worker="w1", direction="out") == 240.5
    # the old worker publishes no rates; the sidecar derives them from its counters
    assert get(s, "streamsvc_records_per_second", worker="w2", direction="in") == \
        pytest.approx((104 - 80) / 2, rel=1e-6)
    assert get(s, "streamsvc_records_per_second", worker="w2", direction="out") is None


def test_metrics_latency_histogram(view: StatusView) -> None:
    _, s = scrape(TestClient(create_api(view)))
    name = "streamsvc_processing_latency_seconds"
    buckets = {dict(k[1])["le"]: v for k, v in s.items()
               if k[0] == name + "_bucket" and ("worker", "w1") in k[1]}
    assert len(buckets) == len(BUCKETS) + 1 and "+Inf" in buckets
    bounds = sorted(buckets, key=float)
    values = [buckets[b] for b in bounds]
    assert values == sorted(values), "buckets are cumulative"
    expected, cum = [], 0
    for c in COUNTS:
        cum += c
        expected.append(cum)
    assert values == expected
    assert [float(b) for b in bounds[:-1]] == BUCKETS and math.isinf(float(bounds[-1]))
    assert buckets["+Inf"] == get(s, name + "_count", worker="w1") == 100
    assert get(s, name + "_sum", worker="w1") == 4.75
    assert not any(k[0].startswith(name) and ("worker", "w2") in k[1] for k in s)


def test_workers_endpoint(view: StatusView) -> None:
    client = TestClient(create_api(view))
    r = client.get("/workers")
    assert r.status_code == 200
    ws = {w["worker"]: w for w in r.json()}
    assert set(ws) == {"w1", "w2"}
    w1 = ws["w1"]
    assert w1["partitions"] == [0, 1]
    assert w1["lag_total"] == 47
    assert w1["lag"] == {"streamsvc-records": {"0": 12, "1": 30}, "events": {"0": 5}}
    assert w1["rates"] == {"in_per_s": 250.0, "out_per_s": 240.5}
    assert w1["counters"]["outputs"] == 990 and w1["counters"]["send_retries"] == 4
    assert w1["dead_letters_by_reason"] == REASONS
    lat = w1["latency"]
    assert lat["p50"] == pytest.approx(P50) and lat["p99"] == pytest.approx(P99)
    assert lat["count"] == 100 and lat["sum"] == 4.75 and lat["mean"] == pytest.approx(0.0475)
    assert lat["counts"] == COUNTS and lat["buckets"] == BUCKETS
    assert [(p["in_per_s"], p["out_per_s"], p["lag"]) for p in w1["history"]] == [
        (100.0, 90.0, 120), (200.0, 190.0, 60), (250.0, 240.5, 47)]
    assert [p["t"] for p in w1["history"]] == sorted(p["t"] for p in w1["history"])

    w2 = ws["w2"]   # an old-style status: no lag, rates, latency or reasons
    assert w2["latency"] is None and w2["lag_total"] is None and w2["lag"] == {}
    assert w2["dead_letters_by_reason"] == {} and w2["counters"]["events_in"] == 90
    assert w2["rates"]["in_per_s"] == pytest.approx(12.0) and w2["rates"]["out_per_s"] is None
    assert [p["lag"] for p in w2["history"]] == [None, None]

    assert [len(w["history"]) for w in client.get("/workers?history=1").json()] == [1, 1]
    assert all(w["history"] == [] for w in client.get("/workers?history=0").json())
    assert client.get("/workers?history=-1").status_code == 422
    assert "/workers" in client.get("/openapi.json").json()["paths"]


def test_history_is_bounded_ordered_and_dropped_with_the_worker() -> None:
    v = StatusView({}, worker_history_kept=5)
    now = time.time()
    for i in range(8):
        v.on_status("worker:w", new_status("w", now - 8 + i, in_rate=float(i)))
    v.on_status("worker:w", new_status("w", now - 100, in_rate=99.0))  # replayed, older
    v.on_status("worker:w", new_status("w", now - 1, in_rate=98.0))    # same time again
    hist = v.worker_summaries()[0]["history"]
    assert [p["in_per_s"] for p in hist] == [3.0, 4.0, 5.0, 6.0, 7.0]
    v.on_status("worker:w", None)   # tombstone
    assert v.worker_summaries() == [] and "w" not in v.worker_history


def test_quantile_estimates() -> None:
    assert histogram_quantile(0.5, BUCKETS, COUNTS) == pytest.approx(P50)
    assert histogram_quantile(0.5, [1.0, 2.0], [0, 0, 0]) is None
    assert histogram_quantile(0.5, [1.0, 2.0], [0, 0, 5]) == 2.0   # overflow: top bound
    assert histogram_quantile(0.5, [1.0, 2.0], [4, 0, 0]) == pytest.approx(0.5)


def test_malformed_worker_status_never_fails_a_scrape() -> None:
    now = time.time()
    v = StatusView({})
    v.on_status("worker:bad", {
        "updated": now, "partitions": "all", "counters": {"events_in": "many", "outputs": True,
                                                          "records": float("nan"), "x": -3},
        "dead_letters_by_reason": ["a"], "lag": {"t": {"0": "far", "1": -4}, "u": 3},
        "rates": {"in_per_s": "fast", "out_per_s": float("inf")},
        "latency": {"buckets": [1.0, 0.5], "counts": [1, 2, 3], "sum": 1.0}})
    v.on_status("worker:bad2", {"updated": now, "latency": {"buckets": [0.1], "counts": [1]}})
    v.on_status("worker:nosum", {"updated": now,
                                 "latency": {"buckets": [0.1], "counts": [1, 2], "count": 3}})
    client = TestClient(create_api(v))
    _, s = scrape(client)
    assert get(s, "streamsvc_workers_live") == 3
    assert get(s, "streamsvc_consumer_lag", worker="bad", topic="t", partition="1") == 0
    assert not any(k[0].startswith("streamsvc_processing_latency_seconds")
                   and ("worker", "nosum") not in k[1] for k in s)
    assert get(s, "streamsvc_processing_latency_seconds_bucket", worker="nosum", le="+Inf") == 3
    r = client.get("/workers")
    assert r.status_code == 200
    bad = {w["worker"]: w for w in r.json()}["bad"]
    assert bad["counters"] == {} and bad["partitions"] == [] and bad["latency"] is None
    assert bad["rates"] == {"in_per_s": None, "out_per_s": None}
    assert bad["lag"] == {"t": {"1": 0}} and bad["dead_letters_by_reason"] == {}


def test_dashboard_has_the_throughput_panel(view: StatusView) -> None:
    html = TestClient(create_api(view)).get("/").text
    assert "Throughput and lag" in html and 'getJSON("/workers' in html


def test_a_status_whose_model_is_not_text_is_ignored_not_a_500() -> None:
    """Anyone who can write to model-status could send `"model": 5` or null: /models must
    go on answering (it sorted mixed types and failed)."""
    v = StatusView({})
    v.on_status("x", {"model": 5, "examples_learned": 1})
    v.on_status("y", {"model": None})
    v.on_status("ok", {"model": "ok", "examples_learned": 3})
    r = TestClient(create_api(v)).get("/models")
    assert r.status_code == 200
    assert [m["name"] for m in r.json()] == ["ok"]


def test_a_configured_model_no_worker_has_reported_is_not_called_unknown() -> None:
    # /models/cartpole answered "unknown model 'cartpole'" while the worker ran it (a worker
    # reports a model once it has had a record for it)
    client = TestClient(create_api(StatusView({}), configured=["cartpole"]))
    r = client.get("/models/cartpole")
    assert r.status_code == 404
    assert "model 'cartpole' is configured, but no worker has reported it yet" in r.text
    r = client.get("/models/cartpol")
    assert r.status_code == 404 and "unknown model 'cartpol'" in r.text
