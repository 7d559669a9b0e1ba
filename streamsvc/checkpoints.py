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
    """Reader/writer of chunked snapshots, on confluent-kafka (librdkafka).

    Why not kafka-python here: without the optional `crc32c` C extension it checksums record
    batches in pure Python, ~1 s per MB with the GIL held, and the snapshot writer runs in the
    worker's process beside the hot path."""

    def __init__(self, bootstrap: str, topic: str, client_config: dict[str, Any] | None = None
                 ) -> None:
        self.topic = topic
        self.config = {"bootstrap.servers": bootstrap, **(client_config or {})}
        self._producer: Any = None
        self._gens: dict[str, str] = {}
        self._old_chunks: dict[str, int] = {}

    @property
    def producer(self) -> Any:
        if self._producer is None:
            from confluent_kafka import Producer

            self._producer = Producer({**self.config, "enable.idempotence": True,
                                       "linger.ms": 5, "message.max.bytes": CHUNK * 2 + 4096,
                                       # pickled state compresses well (ids, counts): less
                                       # for the broker to take in while the stream runs
                                       "compression.type": "lz4"})
        return self._producer

    def _send_all(self, messages: list[tuple[str, bytes | None]], timeout: float = 60.0) -> None:
        """Produce and wait for every message; raise if Kafka refused any of them."""
        errors: list[Any] = []

        def done(err: Any, msg: Any) -> None:
            if err is not None:
                errors.append(err)

        for key, value in messages:
            self.producer.produce(self.topic, value, key.encode(), on_delivery=done)
        if self.producer.flush(timeout):
            raise TimeoutError(f"writing a checkpoint to {self.topic!r} timed out")
        if errors:
            raise RuntimeError(f"writing a checkpoint to {self.topic!r} failed: {errors[0]}")

    def save(self, key: str, blob: bytes, meta: dict[str, Any] | None = None) -> dict[str, Any]:
        gen = uuid.uuid4().hex[:12]
        chunks = [blob[i:i + CHUNK] for i in range(0, len(blob), CHUNK)] or [b""]
        self._send_all([(f"{key}@{gen}#{i}", chunk) for i, chunk in enumerate(chunks)])
        manifest = {"gen": gen, "chunks": len(chunks), "size": len(blob),
                    "sha256": hashlib.sha256(blob).hexdigest(), "saved_at": time.time(),
                    "meta": meta or {}}
        self._send_all([(key, json.dumps(manifest).encode())])  # last: the new one is whole
        old = self._gens.get(key)
        self._gens[key] = gen
        if old and old != gen:
            self._send_all([(f"{key}@{old}#{i}", None)
                            for i in range(self._old_chunks.get(key, 0))])
        self._old_chunks[key] = len(chunks)
        return manifest

    def load_all(self, prefix: str = "", timeout: float = 30.0) -> dict[str, tuple[bytes, dict]]:
        """Read the whole (compacted) topic and return {key: (blob, manifest)} for complete,
        checksum-valid snapshots whose key starts with `prefix`."""
        from confluent_kafka import Consumer, TopicPartition

        consumer = Consumer({**self.config, "group.id": f"streamsvc-restore-{uuid.uuid4().hex}",
                             "enable.auto.commit": False, "auto.offset.reset": "earliest",
                             "fetch.message.max.bytes": CHUNK * 2 + 4096})
        manifests: dict[str, dict] = {}
        chunks: dict[str, bytes | None] = {}
        try:
            meta = consumer.list_topics(self.topic, timeout=timeout).topics.get(self.topic)
            if meta is None or meta.error is not None or not meta.partitions:
                return {}
            tps, end = [], {}
            for p in meta.partitions:
                low, high = consumer.get_watermark_offsets(TopicPartition(self.topic, p),
                                                           timeout=timeout)
                if high > low:
                    tps.append(TopicPartition(self.topic, p, low))
                    end[p] = high
            if not tps:
                return {}
            consumer.assign(tps)
            deadline = time.monotonic() + timeout
            # position = next offset to read (past compaction gaps), as the log end is
            while any(tp.offset < end[tp.partition] for tp in consumer.position(tps)):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"reading checkpoints from {self.topic!r} timed out")
                for m in consumer.consume(1000, 0.2):
                    if m.error():
                        continue
                    k = m.key().decode() if m.key() else ""
                    if not k.startswith(prefix):
                        continue
                    if "@" in k:
                        chunks[k] = m.value()
                    elif m.value() is None:
                        manifests.pop(k, None)
                    else:
                        manifests[k] = json.loads(m.value())
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
            self._producer.flush(10)
            self._producer = None
