"""Model snapshots in a compacted Kafka topic, in chunks, so that models may outgrow Kafka's
~1 MB message limit and state lives where the partitions live (any worker can restore it).

Layout, per snapshot key K (e.g. `streamsvc/records-3`):
  `K@<gen>#<i>`  chunk i of generation gen (raw bytes, ≤ CHUNK bytes)
  `K`            manifest JSON {gen, chunks, size, sha256, meta}: written last, so a crash
                 mid-snapshot leaves the previous manifest (and its chunks) in force.
Chunks of the previous generation are tombstoned after the new manifest is written.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import uuid
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import TopicAlreadyExistsError

log = logging.getLogger(__name__)
CHUNK = 512 * 1024


def ensure_topics(bootstrap: str, topics: dict[str, dict[str, Any]]) -> None:
    """Create topics that do not exist yet: {name: {"partitions": n, "config": {...}}}."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="streamsvc-admin")
    try:
        existing = set(admin.list_topics())
        new = [
            NewTopic(name, num_partitions=spec.get("partitions", 1), replication_factor=1,
                     topic_configs=spec.get("config", {}))
            for name, spec in topics.items() if name not in existing
        ]
        if new:
            try:
                admin.create_topics(new)
            except TopicAlreadyExistsError:
                pass  # another worker won the race
            log.info("created topics: %s", ", ".join(t.name for t in new))
    finally:
        admin.close()


class CheckpointStore:
    """Synchronous (kafka-python) reader/writer of chunked snapshots."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self._producer: KafkaProducer | None = None
        self._gens: dict[str, str] = {}
        self._old_chunks: dict[str, int] = {}

    @property
    def producer(self) -> KafkaProducer:
        if self._producer is None:
            self._producer = KafkaProducer(
                bootstrap_servers=self.bootstrap, acks="all", linger_ms=5,
                max_request_size=CHUNK * 2 + 4096, compression_type=None,
            )
        return self._producer

    def save(self, key: str, blob: bytes, meta: dict[str, Any] | None = None) -> dict[str, Any]:
        gen = uuid.uuid4().hex[:12]
        chunks = [blob[i:i + CHUNK] for i in range(0, len(blob), CHUNK)] or [b""]
        for i, chunk in enumerate(chunks):
            self.producer.send(self.topic, key=f"{key}@{gen}#{i}".encode(), value=chunk)
        self.producer.flush()
        manifest = {"gen": gen, "chunks": len(chunks), "size": len(blob),
                    "sha256": hashlib.sha256(blob).hexdigest(), "saved_at": time.time(),
                    "meta": meta or {}}
        self.producer.send(self.topic, key=key.encode(), value=json.dumps(manifest).encode())
        self.producer.flush()
        old = self._gens.get(key)
        self._gens[key] = gen
        if old and old != gen:
            for i in range(self._old_chunks.get(key, 0)):
                self.producer.send(self.topic, key=f"{key}@{old}#{i}".encode(), value=None)
            self.producer.flush()
        self._old_chunks[key] = len(chunks)
        return manifest

    def load_all(self, prefix: str = "", timeout: float = 30.0) -> dict[str, tuple[bytes, dict]]:
        """Read the whole (compacted) topic and return {key: (blob, manifest)} for complete,
        checksum-valid snapshots whose key starts with `prefix`."""
        consumer = KafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False,
                                 group_id=None, max_partition_fetch_bytes=CHUNK * 2 + 4096,
                                 fetch_max_bytes=64 * 1024 * 1024)
        try:
            parts = consumer.partitions_for_topic(self.topic) or set()
            tps = [TopicPartition(self.topic, p) for p in parts]
            if not tps:
                return {}
            consumer.assign(tps)
            consumer.seek_to_beginning(*tps)
            end = consumer.end_offsets(tps)
            manifests: dict[str, dict] = {}
            chunks: dict[str, bytes | None] = {}
            deadline = time.monotonic() + timeout
            while any(consumer.position(tp) < end[tp] for tp in tps):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"reading checkpoints from {self.topic!r} timed out")
                for batch in consumer.poll(timeout_ms=500).values():
                    for m in batch:
                        k = m.key.decode() if m.key else ""
                        if not k.startswith(prefix):
                            continue
                        if "@" in k:
                            chunks[k] = m.value
                        elif m.value is None:
                            manifests.pop(k, None)
                        else:
                            manifests[k] = json.loads(m.value)
        finally:
            consumer.close()
        out: dict[str, tuple[bytes, dict]] = {}
        for k, man in manifests.items():
            parts_ = [chunks.get(f"{k}@{man['gen']}#{i}") for i in range(man["chunks"])]
            if any(p is None for p in parts_):
                log.error("checkpoint %s generation %s is incomplete; ignoring it", k, man["gen"])
                continue
            blob = b"".join(parts_)  # type: ignore[arg-type]
            if hashlib.sha256(blob).hexdigest() != man["sha256"]:
                log.error("checkpoint %s generation %s fails its checksum; ignoring it", k,
                          man["gen"])
                continue
            self._gens[k] = man["gen"]
            self._old_chunks[k] = man["chunks"]
            out[k] = (blob, man)
        return out

    def close(self) -> None:
        if self._producer is not None:
            self._producer.close(timeout=10)
            self._producer = None


def read_range(bootstrap: str, topic: str, partition: int, start: int, end: int,
               timeout: float = 60.0) -> list[tuple[int, bytes | None, float]]:
    """Messages of one partition with start <= offset < end (used to replay the gap between a
    snapshot and the consumer group's committed offset after a crash)."""
    if end <= start:
        return []
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None)
    tp = TopicPartition(topic, partition)
    out: list[tuple[int, bytes | None, float]] = []
    try:
        consumer.assign([tp])
        consumer.seek(tp, start)
        deadline = time.monotonic() + timeout
        while consumer.position(tp) < end:
            if time.monotonic() > deadline:
                raise TimeoutError(f"replaying {topic}[{partition}] {start}..{end} timed out")
            for batch in consumer.poll(timeout_ms=500).values():
                out += [(m.offset, m.value, m.timestamp / 1000.0) for m in batch
                        if start <= m.offset < end]
    finally:
        consumer.close()
    if out and out[0][0] != start:
        log.error("replay of %s[%d] wanted offsets from %d but the log starts at %d "
                  "(retention deleted them): those records cannot be re-learned", topic,
                  partition, start, out[0][0])
    return out
