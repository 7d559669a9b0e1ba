"""Property-based: arbitrary bytes and JSON on every input topic of a real worker. Every record
the ingest stage must reject ends in `dead-letters` at its exact topic/partition/offset with a
reason, and the worker keeps serving valid records."""

from __future__ import annotations

import json
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kafka import KafkaProducer

from agents.messages import BadRecord
from agents.processor import route
from streamsvc.config import load_settings
from tests.conftest import ServiceProcs, TopicReader, wait_for

pytestmark = pytest.mark.kafka

ENV = {"STREAMSVC_MODELS__CART__KIND": "stream_q",
       "STREAMSVC_MODELS__CART__PARAMS__N_ACTIONS": "2",
       "STREAMSVC_MODELS__GRAPH__KIND": "node_property"}
ROLES = ["events", "labels", "transitions", "edges", "node_labels"]

scalars = st.none() | st.booleans() | st.integers(-5, 5) | st.floats(allow_nan=False) | \
    st.text(max_size=4)
values = st.recursive(scalars, lambda c: st.lists(c, max_size=4) |
                      st.dictionaries(st.text(max_size=3), c, max_size=3), max_leaves=8)
keys = st.sampled_from(["id", "x", "y", "model", "ts", "agent", "episode", "obs", "reward",
                        "done", "src", "dst", "w", "node"])
records = st.one_of(
    st.binary(max_size=64),
    st.dictionaries(keys, values, max_size=6).map(lambda d: json.dumps(d).encode()),
    st.just(b'{"id": "x", "x": {"a": NaN}}'),
)


@pytest.fixture
def worker(service: ServiceProcs):
    proc = service.start_worker(ENV)
    return service, proc


@settings(max_examples=3, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(batch=st.lists(st.tuples(st.sampled_from(ROLES), records), min_size=40, max_size=60))
def test_arbitrary_input_is_dead_lettered_or_served(worker, batch) -> None:
    service, proc = worker
    t = service.topics
    specs = load_settings(None, {**ENV}).models
    prod = KafkaProducer(bootstrap_servers=service.broker.bootstrap)
    rejected = set()
    for role, raw in batch:
        meta = prod.send(t[role], raw).get(timeout=30)
        try:
            route(role, raw, specs, {})
        except BadRecord:
            rejected.add((t[role], meta.partition, meta.offset))
    # a valid event afterwards is still served
    probe = f"probe-{time.monotonic_ns()}"
    prod.send(t["events"], json.dumps({"id": probe, "x": {"a": 1.0}}).encode()).get(timeout=30)
    prod.close()
    dead = TopicReader(service.broker.bootstrap, t["dead_letters"])
    preds = TopicReader(service.broker.bootstrap, t["predictions"])
    try:
        def all_dead() -> bool:
            got = {(d["topic"], d["partition"], d["offset"]) for d in dead.poll()}
            return rejected <= got

        wait_for(all_dead, 90, f"{len(rejected)} rejected records in dead-letters")
        assert all(d["error"] for d in dead.messages)
        wait_for(lambda: any(p["id"] == probe for p in preds.poll()), 60, "probe prediction")
        assert proc.poll() is None, "the worker died"
    finally:
        dead.close()
        preds.close()
