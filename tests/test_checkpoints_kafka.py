"""Chunked snapshots in a compacted topic, against the real broker."""

from __future__ import annotations

import json
import os
import uuid

import pytest
from kafka import KafkaProducer

from streamsvc.checkpoints import CHUNK, CheckpointStore, ensure_topics

pytestmark = pytest.mark.kafka


def test_snapshots_larger_than_a_kafka_message_round_trip(kafka_broker) -> None:
    topic = f"ckpt-{uuid.uuid4().hex[:6]}"
    ensure_topics(kafka_broker.bootstrap, {topic: {"partitions": 1,
                                                   "config": {"cleanup.policy": "compact"}}})
    store = CheckpointStore(kafka_broker.bootstrap, topic)
    big = os.urandom(3 * 1024 * 1024 + 17)  # 3 MB: far above the 1 MB message limit
    man = store.save("app/records-0", big, {"offset": 41})
    assert man["chunks"] == -(-len(big) // CHUNK)
    store.save("app/records-1", b"small", {"offset": 7})
    fresh = CheckpointStore(kafka_broker.bootstrap, topic)  # another worker
    got = fresh.load_all("app/records-")
    assert got["app/records-0"][0] == big and got["app/records-0"][1]["meta"]["offset"] == 41
    assert got["app/records-1"][0] == b"small"

    # a newer, smaller generation replaces the old one
    fresh.save("app/records-0", b"v2", {"offset": 99})
    again = CheckpointStore(kafka_broker.bootstrap, topic).load_all("app/")
    assert again["app/records-0"][0] == b"v2"

    # a manifest whose chunks never arrived (crash mid-write) is ignored, not half-loaded
    prod = KafkaProducer(bootstrap_servers=kafka_broker.bootstrap)
    prod.send(topic, key=b"app/records-2", value=json.dumps(
        {"gen": "dead", "chunks": 2, "size": 10, "sha256": "0", "meta": {}}).encode())
    prod.flush()
    prod.close()
    last = CheckpointStore(kafka_broker.bootstrap, topic).load_all("app/")
    assert "app/records-2" not in last and last["app/records-0"][0] == b"v2"
    store.close()
    fresh.close()
