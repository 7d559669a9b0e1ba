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


def _worker_counters(status: TopicReader) -> dict:
    latest: dict = {}
    for s in status.poll():
        if s and "counters" in s:
            latest = s["counters"]
    return latest


def test_an_output_kafka_refuses_sends_its_record_to_dead_letters(service: ServiceProcs) -> None:
    """An output must never vanish: the operator capped the predictions topic at 1,000 bytes a
    message; Kafka refuses the predictions of events with 500-character ids. Each such event
    goes to dead-letters with the reason, the refusal is counted, and the other events are
    predicted. Before: the send error was logged and swallowed (the counter said 'sent')."""
    from kafka.admin import KafkaAdminClient, NewTopic

    t = service.topics
    admin = KafkaAdminClient(bootstrap_servers=service.broker.bootstrap)
    admin.create_topics([NewTopic(t["predictions"], 4, 1,
                                  topic_configs={"max.message.bytes": "1000"})])
    admin.close()
    status = TopicReader(service.broker.bootstrap, t["model_status"])
    service.start_worker(env={"STREAMSVC_MODELS__DEFAULT__KIND": "hoeffding_tree",
                              "STREAMSVC_WORKER__STATUS_INTERVAL": "1.0"})
    prod = KafkaProducer(bootstrap_servers=service.broker.bootstrap, linger_ms=0)
    short = [f"short{i}" for i in range(10)]
    long_ = [f"long{i}-" + "x" * 490 for i in range(10)]
    preds = TopicReader(service.broker.bootstrap, t["predictions"])
    dead = TopicReader(service.broker.bootstrap, t["dead_letters"])
    try:
        # the short ones first, one at a time (a Kafka request may carry several outputs,
        # and one refused prediction in it refuses them all)
        for rid in short:
            prod.send(t["events"], json.dumps({"id": rid, "x": {"a": 1}, "y": 1}).encode(),
                      partition=0)
            prod.flush()
            wait_for(lambda rid=rid: rid in {p["id"] for p in preds.poll()}, 60,
                     f"prediction of {rid}")
        for rid in long_:
            prod.send(t["events"], json.dumps({"id": rid, "x": {"a": 1}, "y": 1}).encode(),
                      partition=0)
        prod.flush()
        wait_for(lambda: len(dead.poll()) >= len(long_), 90, "dead letters of the long ones")
        time.sleep(2)
        assert sorted(p["id"] for p in preds.poll()) == sorted(short)
        refused = dead.poll()
        assert len(refused) == 10, refused
        for d in refused:
            assert d["topic"] == t["events"] and d["partition"] == 0
            assert "could not publish" in d["error"] and "too large" in d["error"].lower()
            assert json.loads(d["raw"])["id"].startswith("long")
        wait_for(lambda: _worker_counters(status).get("send_errors", 0) >= 10, 30,
                 "send errors counted in the worker status")
        # the predictions counter counts what is in Kafka, not what was attempted
        wait_for(lambda: _worker_counters(status).get("predictions") == len(short), 30,
                 "predictions counted once delivered")
    finally:
        prod.close()
        for r in (preds, dead, status):
            r.close()


def test_a_records_message_that_cannot_be_read_back_is_dead_lettered(service: ServiceProcs
                                                                     ) -> None:
    """A message on the internal records topic with a lone surrogate in its id (written by
    an old worker or by hand): no prediction can be encoded for it; it must end in
    dead-letters with a reason, never vanish, and the next record must still be predicted."""
    service.start_worker(env={"STREAMSVC_MODELS__DEFAULT__KIND": "hoeffding_tree"})
    t = service.topics
    prod = KafkaProducer(bootstrap_servers=service.broker.bootstrap, linger_ms=0)
    bad = json.dumps({"kind": "event", "rk": "default",
                      "body": {"id": "\ud800", "model": "default", "x": {"a": 1}},
                      "src": {"topic": t["events"], "partition": 3, "offset": 99}}).encode()
    prod.send(t["records"], bad, key=b"default")
    prod.flush()
    prod.send(t["events"], json.dumps({"id": "next", "x": {"a": 1}}).encode())
    prod.flush()
    prod.close()
    preds = TopicReader(service.broker.bootstrap, t["predictions"])
    dead = TopicReader(service.broker.bootstrap, t["dead_letters"])
    try:
        wait_for(lambda: any(p.get("id") == "next" for p in preds.poll()), 60, "next predicted")
        d = wait_for(lambda: [d for d in dead.poll() if d.get("offset") == 99], 30,
                     "dead letter for the unreadable records message")
        assert d[0]["topic"] == t["events"] and d[0]["partition"] == 3 and d[0]["error"]
    finally:
        preds.close()
        dead.close()
