"""Regression test through a real broker for oversized outputs (found in code review)."""

from __future__ import annotations

import json
import time

import pytest
from kafka import KafkaProducer

from tests.conftest import ServiceProcs, TopicReader, wait_for

pytestmark = pytest.mark.kafka


def test_oversized_outputs_go_to_dead_letters_and_ingest_goes_on(service: ServiceProcs) -> None:
    """A valid 640 KB event with non-ASCII text becomes a 1.9 MB records message (ensure_ascii),
    and a 900 KB non-UTF-8 record a 1.2 MB dead letter (base64): both exceed Faust's
    producer_max_request_size (1,000,000) -> MessageSizeTooLargeError escapes the ingest agent
    (`send` is outside its try). Neither record gets a prediction or a dead letter."""
    worker = service.start_worker()
    t = service.topics
    prod = KafkaProducer(bootstrap_servers=service.broker.bootstrap, linger_ms=0,
                         max_request_size=2_000_000)
    big = {"id": "big", "x": {f"f{i}": "é" * 4000 for i in range(80)}}
    prod.send(t["events"], json.dumps(big, ensure_ascii=False).encode(), partition=0)
    prod.send(t["events"], b"\xff" * 900_000, partition=0)
    prod.send(t["events"], json.dumps({"id": "after", "x": {"a": 1}}).encode(), partition=0)
    prod.flush()
    prod.close()
    preds = TopicReader(service.broker.bootstrap, t["predictions"])
    dead = TopicReader(service.broker.bootstrap, t["dead_letters"])
    try:
        wait_for(lambda: any(p.get("id") == "after" for p in preds.poll()), 60,
                 "prediction for the event after the big ones")
        time.sleep(3)
        dead.poll()
        accounted = {p.get("id") for p in preds.messages} | {
            d.get("offset") for d in dead.messages if d.get("topic") == t["events"]}
        log = service.log_of(worker)
        assert "big" in accounted or 0 in accounted, "the 640 KB event vanished\n" + log[-1500:]
        assert 1 in accounted, "the 900 KB undecodable record vanished"
    finally:
        preds.close()
        dead.close()
