"""Model snapshots in a compacted Kafka topic, in chunks, so that models may outgrow Kafka's
~1 MB message limit and state lives where the partitions live (any worker can restore it).

Layout, per snapshot key K (e.g. `streamsvc/records-3`):
  `K@<gen>#<i>`  chunk i of generation gen (raw bytes, ≤ CHUNK bytes)
  `K`            manifest JSON {gen, chunks, size, sha256, hmac, meta}: written last, so a
                 crash mid-snapshot leaves the previous manifest (and its chunks) in force.
Chunks of the previous generation are tombstoned after the new manifest is written.

Snapshots are pickles: whoever can write to the topic could make a worker run code. With a
signing key, `hmac` is HMAC-SHA256(key, K + NUL + snapshot bytes) and a snapshot whose MAC is
missing or wrong is refused before anything unpickles it (the caller then replays instead).
The MAC binds the bytes to their key, so a signed snapshot of one partition cannot stand in
for another; it does not stop an old signed snapshot from being written back (a rollback).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import TopicAlreadyExistsError

log = logging.getLogger(__name__)
CHUNK = 512 * 1024


def ensure_topics(bootstrap: str, topics: dict[str, dict[str, Any]],
                  client_kwargs: dict[str, Any] | None = None) -> None:
    """Create topics that do not exist yet: {name: {"partitions": n, "config": {...}}}.
    `client_kwargs`: kafka-python security settings (`KafkaSecurity.kafka_python()`)."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="streamsvc-admin",
                             **(client_kwargs or {}))
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

    def __init__(self, bootstrap: str, topic: str, client_config: dict[str, Any] | None = None,
                 signing_key: bytes = b"",
                 on_refused: Callable[[str, str], None] | None = None) -> None:
        self.topic = topic
        self.config = {"bootstrap.servers": bootstrap, **(client_config or {})}
        self._key = signing_key
        self._on_refused = on_refused
        self.refused = 0
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
        if self._key:
            manifest["hmac"] = self.mac(key, blob)
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
                    k = m.key().decode(errors="replace") if m.key() else ""
                    if not k.startswith(prefix):
                        continue
                    if "@" in k:
                        chunks[k] = m.value()
                    elif m.value() is None:
                        manifests.pop(k, None)
                    else:
                        try:
                            manifests[k] = json.loads(m.value())
                        except ValueError:
                            manifests[k] = None  # refused below: never fails the restore
        finally:
            consumer.close()
        out: dict[str, tuple[bytes, dict]] = {}
        for k, man in manifests.items():
            if not (isinstance(man, dict) and isinstance(man.get("gen"), str)
                    and isinstance(man.get("chunks"), int) and 0 <= man["chunks"] < 100_000
                    and isinstance(man.get("sha256"), str)):
                self._refuse(k, "its manifest is malformed")
                continue
            parts_ = [chunks.get(f"{k}@{man['gen']}#{i}") for i in range(man["chunks"])]
            if any(p is None for p in parts_):
                log.error("checkpoint %s generation %s is incomplete; ignoring it", k, man["gen"])
                continue
            blob = b"".join(parts_)  # type: ignore[arg-type]
            if hashlib.sha256(blob).hexdigest() != man["sha256"]:
                log.error("checkpoint %s generation %s fails its checksum; ignoring it", k,
                          man["gen"])
                continue
            self._gens[k] = man["gen"]  # (a refused one's chunks go at our next save too)
            self._old_chunks[k] = man["chunks"]
            problem = self.unverified(k, blob, man)
            if problem:
                self._refuse(k, problem)
                continue
            out[k] = (blob, man)
        return out

    def _refuse(self, key: str, problem: str) -> None:
        self.refused += 1
        log.error("refusing checkpoint %s: %s; its partition is rebuilt by replaying the "
                  "records topic instead", key, problem)
        if self._on_refused is not None:
            self._on_refused(key, problem)

    def mac(self, key: str, blob: bytes) -> str:
        return hmac.new(self._key, key.encode() + b"\0" + blob, hashlib.sha256).hexdigest()

    def unverified(self, key: str, blob: bytes, manifest: dict[str, Any]) -> str | None:
        """Why this snapshot must not be unpickled, or None (also None without a key)."""
        if not self._key:
            return None
        given = manifest.get("hmac")
        if not isinstance(given, str):
            return "it is not signed (written without worker.snapshot_key, or forged)"
        if not hmac.compare_digest(given, self.mac(key, blob)):
            return "its signature does not match (another snapshot_key, or forged)"
        return None

    def close(self) -> None:
        if self._producer is not None:
            self._producer.flush(10)
            self._producer = None
