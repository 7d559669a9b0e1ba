"""The worker's hot path: batches from Kafka through the pipeline and back, on librdkafka.

Why not Faust's per-event streams: measured here (`python -m bench.kafka_clients --faust`),
a Faust agent that forwards each event moves ~6k events/s, aiokafka's batch API ~80k and
confluent-kafka (librdkafka) ~200k on the same broker. The worker passes every record through
two hops, so the hot path runs on confluent-kafka in a thread of its own; Faust keeps the
application (lifecycle, signals, logging).

One loop, one consumer (input topics + the records topic, one consumer group), one producer
in use at a time (lingering `linger_ms`, or `busy_linger_ms` through a backlog):

    poll → ingest input records (dead-letter the bad ones; the batch's records for each model
           shard forwarded as one records-topic message, a pack: `agents.pipeline.Packer`)
         → learn records-topic messages (outputs)          ─ all produced without waiting
    (a batch is worked through ~`max_batch` records at a time: a pack holds many)
    every commit_interval (0.2 s), once the producer has nothing in flight (or, on a stream
    too busy for that, after a flush at most every 5 intervals):
         → commit the offsets processed → snapshot due partitions (written by another thread)

A batch closes on size or when nothing more is queued locally, so a lone record is not held
back. Rebalance callbacks run inside `poll`, i.e. between batches: a revoked records partition
is flushed, committed and snapshotted before another worker can take it.
"""

from __future__ import annotations

import bisect
import logging
import os
import pickle
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

import orjson
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from kafka.partitioner.default import murmur2

from agents.host import Out
from agents.pipeline import Forward, Pack, Packer, Pipeline, source_of
from agents.processor import INPUTS
from streamsvc.forksnap import pickle_in_child
from streamsvc.heap import GcWatch

log = logging.getLogger("streamsvc.engine")

#: processing latency buckets (seconds): record produced → its outputs handed to Kafka
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                   10.0)


#: batches of fewer records than this are sent at once instead of after `linger_ms` (a quiet
#: stream)
SMALL_BATCH = 4
#: commit intervals a commit may wait for the producer to run dry before the loop flushes
MAX_COMMIT_DELAY = 5
#: at a commit point, how long the loop may wait for the outputs in flight (sent at once,
#: bypassing the linger) before it goes on and tries again at the next commit point
COMMIT_WAIT = 0.003
#: seconds without a mark from Faust's event loop after which the heartbeat is withheld
CONTROL_STALE = 15.0


#: seconds between statuses of every model shard; in between, only the shards that were given
#: records or timers are reported (a template may have made thousands of models, most idle)
STATUS_FULL_EVERY = 30.0

#: the origin of a challenger's copy of a record: if it can never be forwarded, nothing is
#: dead-lettered (the champion's own forward names the record if it fails too)
COPIED = "(challenger copy)"
#: the origin of a pack of forwarded records (its members' origins follow)
PACKED = "(pack)"


def records_partition(rk: str, partitions: int, spread: bool = True) -> int:
    """The records partition of the model shard `rk` ("model", or "model#k" for shard k).

    A model's partition is its name hashed as Kafka's Java client hashes keys (murmur2); with
    `spread`, shard k goes k partitions further, so a model's shards (up to the partition
    count) sit on distinct partitions, i.e. with distinct workers once there are enough.
    Why not hash each shard's key: with 4 partitions, "default#0" and "default#1" both hash
    to partition 2, and two workers could not share a 2-shard model (measured: 1.02x one
    worker). Without `spread`, each shard's key is hashed (workers before `shard_placement`)."""
    model, sep, k = rk.rpartition("#")
    if spread and sep and k.isdigit():
        return ((murmur2(model.encode()) & 0x7FFFFFFF) + int(k)) % partitions
    return (murmur2(rk.encode()) & 0x7FFFFFFF) % partitions


class FatalEngineError(RuntimeError):
    """The worker cannot go on without losing an output: stop without committing; a restart
    processes the batch again."""


class SnapshotWriter:
    """Writes snapshots on a thread of its own, in order, so the hot path only pickles."""

    def __init__(self, save: Callable[[int, bytes, dict[str, Any]], None],
                 on_failure: Callable[[int, int], None]) -> None:
        self._save = save
        self._on_failure = on_failure
        self._q: queue.Queue[tuple[int, Any, dict[str, Any]] | None] = queue.Queue()
        self.saved = 0
        self._t = threading.Thread(target=self._run, name="streamsvc-snapshots", daemon=True)
        self._t.start()

    def put(self, partition: int, blob: bytes | Callable[[], bytes],
            meta: dict[str, Any]) -> None:
        self._q.put((partition, blob, meta))

    def drain(self) -> None:
        """Block until every queued snapshot is written (before a partition is handed over)."""
        self._q.join()

    def close(self) -> None:
        self.drain()
        self._q.put(None)
        self._t.join(30)

    def _run(self) -> None:
        while True:
            item = self._q.get()
            try:
                if item is None:
                    return
                p, blob, meta = item
                try:
                    if callable(blob):  # being pickled by a forked child: wait for its bytes
                        blob = blob()
                    self._save(p, blob, meta)
                    self.saved += 1
                    log.info("checkpoint records[%d] offset=%d bytes=%d (%s, %d new records)",
                             p, meta["offset"], len(blob), meta.get("reason"), meta["records"])
                except Exception:  # noqa: BLE001 - keep the state due; the next boundary retries
                    log.exception("checkpoint of records[%d] failed; will retry", p)
                    self._on_failure(p, meta["records"])
            finally:
                self._q.task_done()


class LatencyHistogram:
    """Cumulative-since-start histogram of seconds, in the shape model-status publishes."""

    def __init__(self, buckets: tuple[float, ...] = LATENCY_BUCKETS) -> None:
        self.buckets = buckets
        self.counts = [0] * (len(buckets) + 1)
        self.sum = 0.0
        self.count = 0

    def observe(self, seconds: float) -> None:
        self.counts[bisect.bisect_left(self.buckets, seconds)] += 1
        self.sum += seconds
        self.count += 1

    def as_dict(self) -> dict[str, Any]:
        return {"buckets": list(self.buckets), "counts": list(self.counts),
                "sum": round(self.sum, 6), "count": self.count}


class BatchEngine:
    """Runs the pipeline against Kafka until `stop()`; see the module docstring."""

    def __init__(self, *, pipeline: Pipeline, topics: dict[str, str], client_config: dict,
                 group_id: str, worker_id: str, load_snapshots: Callable[[], dict[int, bytes]],
                 save_snapshot: Callable[[int, bytes, dict[str, Any]], None],
                 status_interval: float = 2.0, max_batch: int = 2000,
                 session_timeout: float = 30.0, linger_ms: float = 5.0,
                 busy_linger_ms: float = 20.0, compression: str = "none",
                 commit_interval: float = 0.2,
                 heartbeat_file: str | None = None, fetch_min_bytes: int = 65536,
                 fetch_max_wait_ms: float = 2.0, snapshot_fork: bool = True,
                 spread_shards: bool = True) -> None:
        self.pipe = pipeline
        self.topics = topics  # role -> topic name
        self.worker_id = worker_id
        self.status_interval = status_interval
        self.max_batch = max_batch
        self.commit_interval = commit_interval
        self.snapshot_fork = snapshot_fork
        self.spread_shards = spread_shards
        self._n_records = 0  # partitions of the records topic (from metadata, at start)
        self._placed: dict[bytes, int] = {}  # shard key -> its records partition
        self._last_commit = 0.0
        self.heartbeat_file = heartbeat_file
        self._last_beat = 0.0
        # the process's other loop (Faust's event loop: lifecycle, signals, timers) marks
        # itself here every second; None until it first does (a bare engine in tests)
        self._control_mark: float | None = None
        self._load_snapshots = load_snapshots
        self._roles = {topics[r]: r for r in INPUTS}
        self._records = topics["records"]
        self._counted = ("predictions", "drift_alerts")  # counted when handed to Kafka
        self._counted_topics = {topics[r]: r for r in self._counted}
        self.consumer = Consumer({
            **client_config, "group.id": group_id, "enable.auto.commit": False,
            "auto.offset.reset": "earliest", "enable.partition.eof": False,
            # range: partition p of every topic goes to the same worker, and each worker gets
            # its share of the records topic (the model shards) whatever the input topics
            "partition.assignment.strategy": "range",
            "session.timeout.ms": int(session_timeout * 1000),
            "heartbeat.interval.ms": int(min(3.0, session_timeout / 4) * 1000),
            # fuller fetches: the broker answers once it has fetch_min_bytes or after
            # fetch_max_wait_ms, instead of once per tiny producer batch (broker CPU)
            "fetch.min.bytes": fetch_min_bytes, "fetch.wait.max.ms": int(fetch_max_wait_ms),
            "client.id": f"streamsvc-{worker_id}",
        })
        def producer(linger: float, name: str) -> Producer:
            return Producer({
                **client_config, "enable.idempotence": True, "linger.ms": linger,
                "compression.type": compression, "batch.size": 1_000_000,
                "message.max.bytes": 1_048_576, "delivery.report.only.error": True,
                # Java-compatible key hashing: the records partition of a model shard is the
                # one the Faust-era worker and any Java client compute
                "partitioner": "murmur2_random", "client.id": f"streamsvc-{worker_id}{name}",
                # one callback for the producer, not one per message: a per-message callback
                # costs ~3 µs per produce in the Python client (two produces per record); the
                # origin of a failed output is found in `_inflight` instead
                "on_delivery": self._on_delivery,
            })

        # Two producers, one in use at a time: while the worker keeps up with its input,
        # outputs wait at most `linger_ms` to share a request (latency); while it works
        # through a backlog (full batches), `busy_linger_ms` (fewer, fuller requests: the
        # broker's CPU per record falls by a third here, and the worker gets more of the
        # machine). A switch flushes the producer in use first, so order is kept.
        self._light = producer(linger_ms, "")
        self._busy = producer(busy_linger_ms, "-busy") if busy_linger_ms > linger_ms \
            else self._light
        self.producer = self._light
        # While the worker keeps up, packs of forwarded records go out at once on a producer
        # of their own: a pack is a batch already, and lingering added `linger_ms` to every
        # event's way (`bench.e2e`, tree at ~13,600 events/s: p50 14 vs 20 ms, p99 31 vs 46
        # ms). It may cost some throughput (`hoeffding_tree` at saturation, 4 alternating
        # ad-hoc runs: 27.2k vs 29.3k events/s; `bench.e2e`: 27.3k either way), which sending
        # packs with the busy producer through a backlog did not win back. A switch flushes
        # both, so order is kept.
        self._packs = producer(0.0, "-packs")
        self._packer = Packer()
        self._full_batches = 0  # consecutive full batches (a backlog)
        self.writer = SnapshotWriter(save_snapshot, self.pipe.mark_unsaved)
        self.latency = LatencyHistogram()
        self.heap = GcWatch()  # settled by the process that runs the loop (streamsvc.app)
        self._failed: list[tuple[Any, str, bytes | None, bytes, tuple]] = []
        # output bytes -> the record it came from, for every output not yet known to be in
        # Kafka (emptied once the producer has nothing in flight)
        self._inflight: dict[bytes, tuple] = {}
        self._offsets: dict[tuple[str, int], int] = {}  # next offset to commit
        self._stop = threading.Event()
        self._last_status = 0.0
        self._last_full_status = 0.0
        self._rate_mark = (time.monotonic(), 0, 0)
        self._rates = {"in_per_s": 0.0, "out_per_s": 0.0}
        self.ready = threading.Event()

    # -- lifecycle ----------------------------------------------------------------------------
    def stop(self) -> None:
        self._stop.set()

    def run(self) -> None:
        """The loop; returns after `stop()` with every partition snapshotted and committed."""
        subscribed = [self.topics[r] for r in INPUTS] + [self._records]
        while not self._learn_records_partitions():
            if self._stop.wait(1.0):
                return
        self.consumer.subscribe(subscribed, on_assign=self._on_assign,
                                on_revoke=self._on_revoke, on_lost=self._on_lost)
        try:
            while not self._stop.is_set():
                msgs = self._poll_batch()
                if msgs:
                    self.process(msgs)
                self._maybe_commit()
                self._maybe_checkpoint()
                self._maybe_status()
                self._beat()
            log.info("stopping: sending the outputs, committing the offsets and writing "
                     "snapshots of %d records partition(s) before leaving the group",
                     len(self.pipe.partitions))
            self._finish("shutdown")
            log.info("stopped")
        finally:
            self.writer.close()
            self.consumer.close()  # leaves the group: partitions move at once
            for p in {self._light, self._busy, self._packs}:  # (switches flush the other one)
                p.flush(10)

    def _learn_records_partitions(self) -> bool:
        """Read the records topic's partition count (the shards' placement depends on it);
        False, with a warning, while the metadata cannot be had."""
        try:
            meta = self.consumer.list_topics(self._records, timeout=10)
            n = len(meta.topics[self._records].partitions)
        except (KafkaException, KeyError) as exc:
            log.warning("cannot read the partitions of %s yet: %s", self._records, exc)
            return False
        if n < 1:
            log.warning("topic %s has no partitions yet", self._records)
            return False
        if n != self._n_records:
            self._n_records, self._placed = n, {}
        return True

    def _place(self, key: bytes) -> int:
        """The records partition of a shard (`records_partition`)."""
        p = self._placed.get(key)
        if p is None:
            if not self._n_records and not self._learn_records_partitions():
                raise KafkaException(f"the partitions of {self._records} are not known yet")
            p = self._placed[key] = records_partition(
                key.decode("utf-8", "surrogatepass"), self._n_records, self.spread_shards)
        return p

    def _poll_batch(self) -> list[Any]:
        first = self.consumer.poll(0.2)
        if first is None:
            return []
        rest = self.consumer.consume(self.max_batch - 1, 0) if self.max_batch > 1 else []
        return [first, *rest]

    # -- one batch ----------------------------------------------------------------------------
    def _pick_producer(self, n: int) -> None:
        """Busy after two full batches in a row, light again after any batch that emptied
        the local queue; a switch flushes the producer in use (a few ms, rare)."""
        self._full_batches = self._full_batches + 1 if n >= self.max_batch else 0
        want = self._busy if self._full_batches >= 2 else self._light
        if want is not self.producer:
            self._flush()
            self.producer = want
            if want is self._busy:
                self.pipe.counters["backlog_switches"] += 1

    def process(self, msgs: list[Any]) -> None:
        """One polled batch. A records-topic message may pack thousands of records, so the
        batch is worked through in slices of about `max_batch` records; between slices the
        loop commits, snapshots and reports as it does between batches."""
        self._pick_producer(len(msgs))
        i = self._process_slice(msgs, 0)
        while i < len(msgs):
            self._maybe_commit()
            self._maybe_checkpoint()
            self._maybe_status()
            self._beat()
            i = self._process_slice(msgs, i)

    def _process_slice(self, msgs: list[Any], start: int) -> int:
        """Process messages from `start` until about `max_batch` records are done; forward the
        slice's input records (one pack per model shard) and return where it stopped."""
        pipe = self.pipe
        records = self._records
        roles = self._roles
        packer = self._packer
        budget = self.max_batch
        outs_n = done_n = 0
        stamps: list[int] = []
        i = start
        while i < len(msgs) and done_n < budget:
            m = msgs[i]
            i += 1
            err = m.error()
            if err is not None:
                if err.code() != KafkaError._PARTITION_EOF:
                    log.warning("consumer: %s", err)
                continue
            topic, part, off, value = m.topic(), m.partition(), m.offset(), m.value()
            ts = m.timestamp()[1]
            if topic == records:
                before = pipe.counters["records"] + pipe.counters["replayed"]
                for origin, outs, rts in pipe.learn_message(part, off, value, ts):
                    for out in outs:
                        self._send(out, origin)
                    outs_n += len(outs)
                    stamps.append(rts or 0)
                done_n += pipe.counters["records"] + pipe.counters["replayed"] - before
            else:
                done_n += 1
                res = pipe.ingest(roles[topic], topic, part, off, value)
                if isinstance(res, Forward):
                    full = packer.add(res, ts if ts > 0 else 0, (topic, part, off, value))
                    if full is not None:
                        self._forward(full)
                    for fwd in res.copies:  # the same record for the model's challengers
                        full = packer.add(fwd, ts if ts > 0 else 0, (COPIED, part, off, None))
                        if full is not None:
                            self._forward(full)
                else:
                    self._send(res, (topic, part, off, value))
            self._offsets[(topic, part)] = off + 1
        for pack in packer.drain():  # the slice's records, one message per model shard
            self._forward(pack)
        pipe.counters["outputs"] += outs_n
        pipe.counters["batches"] += 1
        if done_n < SMALL_BATCH:
            # a quiet stream: nothing else will come to share a request, so do not let the
            # outputs wait `linger_ms` (a flush with a timeout sends at once, bypassing the
            # linger; it returns when they are acknowledged, or after 1 ms at most)
            self.producer.flush(0.001)
        else:
            self.producer.poll(0)  # serve delivery reports (failures only)
        self._packs.poll(0)
        now = time.time()
        for ts in stamps:  # produced by the user → outputs handed to the producer
            if ts > 0:
                self.latency.observe(max(0.0, now - ts / 1000.0))
        return i

    def _forward(self, pack: Pack) -> None:
        """Send one pack of forwarded records to the records topic, keyed by its shard."""
        self.pipe.counters["packs"] += 1
        self._produce(self._records, pack.key.encode(), pack.value,
                      (PACKED, -1, -1, pack.origins), timestamp=pack.ts_ms)

    def _maybe_commit(self) -> None:
        """Every `commit_interval` seconds (not per batch): commit what was processed and
        snapshot the partitions that are due, once the outputs of those records are in Kafka.

        Hardly waiting: when the producer has nothing in flight (every output acknowledged,
        every delivery report served) that is at once; else what is queued is sent at once
        and the loop waits up to `COMMIT_WAIT` for it, and goes on if it all landed. Only if
        that does not happen within `MAX_COMMIT_DELAY` commit intervals (the broker is slow)
        does the loop stop for a full flush: at half load, a full flush every second was the
        main cause of the latency tail.
        """
        now = time.monotonic()
        since = now - self._last_commit
        if since < self.commit_interval:
            return
        due = self.pipe.due()
        if not self._offsets and not due:  # idle: forget what is known delivered (status)
            if self._inflight and not self._failed and not self._queued():
                self._inflight.clear()
            return
        if not self._outputs_landed():
            if since < self.commit_interval * MAX_COMMIT_DELAY:
                return  # try again at the next commit point
            self.pipe.counters["commit_flushes"] += 1
            self._flush()  # retries and dead-letters what failed; returns when all is in Kafka
        self._commit(asynchronous=True)
        self._last_commit = now
        for p in due:  # the outputs of every record these snapshots include are in Kafka
            self._checkpoint(p, "due")

    def _outputs_landed(self) -> bool:
        """True when every output handed to the producer is in Kafka (delivery reports
        served, nothing failed); what is queued is sent at once and given `COMMIT_WAIT`."""
        self.producer.poll(0)  # serve delivery reports: failures land in _failed
        self._packs.poll(0)
        if self._queued() and not self._failed and self.producer is self._light:
            # a stream that never pauses never finds the producer empty by itself: send what
            # is queued now and wait a few ms for it (a miss costs `COMMIT_WAIT`; the next
            # commit point tries again). Not through a backlog: there the busy producer's
            # fuller requests matter more than when the commit comes.
            self.producer.flush(COMMIT_WAIT)
            if len(self._packs):
                self._packs.flush(COMMIT_WAIT)
        if self._queued() or self._failed:
            return False
        self._inflight.clear()
        return True

    def _send(self, out: Out, origin: tuple) -> None:
        role, key, value = out
        try:  # numpy scalars/arrays in a learner's output are numbers, not an error
            body = orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY)
        except (TypeError, orjson.JSONEncodeError) as exc:
            self._undeliverable(origin, f"output could not be encoded: {exc}")
            return
        if role in self._counted:  # taken back in _flush if Kafka refuses it for good
            self.pipe.counters[role] += 1
        self._produce(self.topics[role], key.encode("utf-8", "surrogatepass")
                      if key is not None else None, body, origin)

    def _queued(self) -> int:
        """Messages handed to a producer and not yet known to be in Kafka."""
        return len(self.producer) + len(self._packs)

    def _produce(self, topic: str, key: bytes | None, value: bytes, origin: tuple,
                 timestamp: int = 0) -> None:
        self._inflight[value] = origin
        producer = self.producer
        partition = -1  # -1: the producer's partitioner (outputs: by key, as Java clients)
        if topic == self._records:
            partition = self._place(key or b"")  # a pack goes to its shard's partition
            if producer is self._light:
                producer = self._packs  # keeping up: at once (through a backlog: the busy one)
        while True:
            try:
                producer.produce(topic, value, key, partition=partition, timestamp=timestamp)
                return
            except BufferError:  # local queue full: let deliveries drain
                producer.poll(0.05)
            except KafkaException as exc:  # refused locally (e.g. too large): permanent
                self._undeliverable(origin, f"could not publish to {topic}: {exc.args[0]}")
                return

    def _on_delivery(self, err: Any, msg: Any) -> None:
        if err is not None:  # only failures are reported (delivery.report.only.error)
            value = msg.value()
            origin = self._inflight.get(value, ("(unknown)", -1, -1, None))
            self._failed.append((err, msg.topic(), msg.key(), value, origin))

    def _flush(self) -> None:
        """Wait until every output of the batch is in Kafka. What failed transiently (e.g. the
        broker restarting) is sent again until it lands; what Kafka refuses for good sends its
        source record to dead-letters with the reason. Offsets are committed only after this
        returns, so an output never vanishes: at worst it is sent twice."""
        attempt = 0
        while True:
            while self._packs.flush(30) + self.producer.flush(30):
                log.warning("waiting for Kafka to accept %d outputs", self._queued())
                self._beat()  # waiting for Kafka is not hanging: a restart would not help
            if not self._failed:
                self._inflight.clear()  # everything produced so far is in Kafka
                return
            failed, self._failed = self._failed, []
            attempt += 1
            for err, topic, key, value, origin in failed:
                if err.fatal():
                    raise FatalEngineError(f"the Kafka producer failed for good: {err.str()}")
                if err.retriable() or err.code() == KafkaError._MSG_TIMED_OUT:
                    self.pipe.counters["send_retries"] += 1
                    if attempt % 10 == 1:
                        log.warning("retrying an output to %s: %s", topic, err.str())
                    self._produce(topic, key, value, origin)
                elif topic == self.topics["dead_letters"]:
                    raise FatalEngineError(f"cannot write dead letters: {err.str()}")
                else:
                    role = self._counted_topics.get(topic)
                    if role is not None:
                        self.pipe.counters[role] -= 1
                    self._undeliverable(origin, f"could not publish to {topic}: {err.str()}")
            time.sleep(min(5.0, 0.05 * attempt))

    def _undeliverable(self, origin: tuple, reason: str) -> None:
        """An output that can never be published: its source record goes to dead-letters
        (every record of a pack that could not be forwarded)."""
        if origin[0] == PACKED:
            for member in origin[3]:
                self._undeliverable(member, reason)
            return
        self.pipe.counters["send_errors"] += 1
        log.error("%s (source %s[%d]@%d)", reason, origin[0], origin[1], origin[2])
        if origin[0] == COPIED:
            return
        topic, part, off, raw = origin
        if topic == self._records:  # name the user's record, not the internal message
            topic, part, off, raw = source_of(raw, part, off, topic)
        out = self.pipe.dead_letter(topic, part, off, reason, raw)
        self._produce(self.topics["dead_letters"], None, orjson.dumps(out[2]), origin)

    def _commit(self, asynchronous: bool, only: set[tuple[str, int]] | None = None) -> None:
        if not self._offsets:
            return
        tps = [TopicPartition(t, p, o) for (t, p), o in self._offsets.items()
               if only is None or (t, p) in only]
        if not tps:
            return
        try:
            self.consumer.commit(offsets=tps, asynchronous=asynchronous)
        except KafkaException as exc:  # e.g. rebalance in progress: the next commit covers it
            log.warning("offset commit failed (will be retried with the next batch): %s", exc)
            return
        for tp in tps:
            if self._offsets.get((tp.topic, tp.partition)) == tp.offset:
                del self._offsets[(tp.topic, tp.partition)]

    # -- checkpoints --------------------------------------------------------------------------
    def _checkpoint(self, partition: int, reason: str) -> None:
        """Snapshot one partition at this batch boundary. Pickled by a forked child when
        `snapshot_fork` is on (the loop pauses for the fork, a few ms, not for the pickling),
        else here; written to Kafka by the writer thread either way."""
        taken = self.pipe.take_snapshot(partition)
        if taken is None:
            return
        st, meta = taken
        blob: bytes | Callable[[], bytes] | None = None
        if self.snapshot_fork:
            blob = pickle_in_child(st)
        if blob is None:
            blob = pickle.dumps(st, protocol=pickle.HIGHEST_PROTOCOL)
        self.writer.put(partition, blob, {**meta, "reason": reason, "worker": self.worker_id})
        self.pipe.counters["snapshots_saved"] += 1

    def _maybe_checkpoint(self) -> None:
        """Through a backlog (the busy producer in use) a due snapshot is taken at once, after
        a full flush, as soon as it is due: the events wait anyway, and a prompt snapshot
        bounds what a crash replays. While the stream keeps up, the commit points take them
        without a stall (`_maybe_commit`)."""
        if self.producer is self._light:
            return
        due = self.pipe.due()
        if due:
            self._flush()  # the outputs of every record a snapshot includes are in Kafka
            for p in due:
                self._checkpoint(p, "due")

    def _finish(self, reason: str) -> None:
        self._flush()
        self._commit(asynchronous=False)
        for p in self.pipe.partitions:
            self._checkpoint(p, reason)
        self.writer.drain()

    # -- rebalance (eager; called inside poll, i.e. between batches) ---------------------------------
    def _on_assign(self, consumer: Any, partitions: list[Any]) -> None:
        # a rebalance follows a partition increase; every worker places packs (ingest stage),
        # also one that owns no records partition
        self._learn_records_partitions()
        records = [tp for tp in partitions if tp.topic == self._records]
        if records:
            self.writer.drain()  # our own last snapshot of a partition we get back
            snaps = self._load_snapshots()
            committed = {tp.partition: tp.offset for tp in consumer.committed(
                [TopicPartition(self._records, tp.partition) for tp in records], timeout=30)}
            for tp in records:
                blob = snaps.get(tp.partition)
                c = committed.get(tp.partition)
                start = self.pipe.assign(tp.partition, blob, c if c is not None and c >= 0
                                         else None)
                if blob is not None:
                    log.info("restored records[%d] at offset %d (%d model shards)",
                             tp.partition, start - 1,
                             len(self.pipe.proc.partitions[tp.partition].hosts))
                if c is not None and c > start:
                    log.info("records[%d]: replaying %d records between snapshot and commit",
                             tp.partition, c - start)
                self._warn_misplaced(tp.partition)
                tp.offset = start if start > 0 else -2  # -2: OFFSET_BEGINNING
        consumer.assign(partitions)
        self.ready.set()

    def _warn_misplaced(self, partition: int) -> None:
        """Say so when a restored partition holds shards whose records now go elsewhere (a
        snapshot of workers with the other `shard_placement`, or a changed partition count):
        what those shards learned stays here, unused, and they start afresh there."""
        st = self.pipe.proc.partitions.get(partition)
        away = sorted(rk for rk in (st.hosts if st is not None else ())
                      if self._place(rk.encode("utf-8", "surrogatepass")) != partition)
        if away:
            log.warning(
                "records[%d] holds model shards %s whose records now go to other partitions "
                "(worker.shard_placement = %r, %d partitions): they start afresh there. To keep "
                "what they learned, run every worker with the placement they were made under "
                "(\"hash\" before that key existed)", partition, ", ".join(away),
                "spread" if self.spread_shards else "hash", self._n_records)

    def _on_revoke(self, consumer: Any, partitions: list[Any]) -> None:
        self._flush()
        revoked = {(tp.topic, tp.partition) for tp in partitions}
        self._commit(asynchronous=False, only=revoked)
        for tp in partitions:
            self._offsets.pop((tp.topic, tp.partition), None)
            if tp.topic == self._records:
                self._checkpoint(tp.partition, "revoked")
        self.writer.drain()  # the next owner restores what we learned
        for tp in partitions:
            if tp.topic == self._records:
                self.pipe.release(tp.partition)
        consumer.unassign()

    def _on_lost(self, consumer: Any, partitions: list[Any]) -> None:
        """Partitions taken away without a clean revoke (e.g. session timeout): another worker
        already owns them, so our state is dropped without a snapshot or commit."""
        log.warning("lost partitions %s", [f"{tp.topic}[{tp.partition}]" for tp in partitions])
        for tp in partitions:
            self._offsets.pop((tp.topic, tp.partition), None)
            if tp.topic == self._records:
                self.pipe.release(tp.partition)
        consumer.unassign()

    def mark_control_loop(self) -> None:
        """Called from Faust's event loop every second (see `streamsvc.app`)."""
        self._control_mark = time.monotonic()

    def _beat(self) -> None:
        """Touch the heartbeat file (at most once a second): the liveness probe's evidence
        that this loop still turns — and Faust's event loop too, if it marks itself: a mark
        older than `CONTROL_STALE` seconds stops the heartbeat, so the probe fails."""
        now = time.monotonic()
        if self.heartbeat_file is None or now - self._last_beat < 1.0:
            return
        mark = self._control_mark
        if mark is not None and now - mark > CONTROL_STALE:
            if now - self._last_beat > CONTROL_STALE:  # say it once per stale stretch
                log.warning("Faust's event loop has not turned for %.0f s: liveness heartbeat "
                            "withheld", now - mark)
                self._last_beat = now
            return
        self._last_beat = now
        try:
            with open(self.heartbeat_file, "a"):
                os.utime(self.heartbeat_file)
        except OSError as exc:
            log.warning("cannot touch the heartbeat file %s: %s", self.heartbeat_file, exc)
            self.heartbeat_file = None

    # -- status -------------------------------------------------------------------------------
    def _maybe_status(self) -> None:
        now = time.monotonic()
        if not self.ready.is_set() or now - self._last_status < self.status_interval:
            return  # a worker reports once it is in the group with its partitions
        self._last_status = now
        for out in self.pipe.tick():
            self._send(out, ("(label-join timer)", -1, -1, None))
        wall = time.time()
        full = now - self._last_full_status >= STATUS_FULL_EVERY
        if full:
            self._last_full_status = now
        for s in self.pipe.statuses(changed=not full):
            self._produce_status(s["shard"], {**s, "worker": self.worker_id, "updated": wall})
        self._produce_status(f"worker:{self.worker_id}", self.worker_status(wall))
        self.producer.poll(0)

    def _produce_status(self, key: str, value: dict[str, Any]) -> None:
        try:
            body = orjson.dumps(value, default=str)
        except (TypeError, orjson.JSONEncodeError) as exc:
            log.error("status of %s could not be encoded: %s", key, exc)
            return
        self._produce(self.topics["model_status"], key.encode("utf-8", "surrogatepass"), body,
                      ("(status)", -1, -1, None))

    def worker_status(self, wall: float) -> dict[str, Any]:
        c = self.pipe.counters
        t0, in0, out0 = self._rate_mark
        now = time.monotonic()
        n_in = sum(c[f"{r}_in"] for r in INPUTS)
        if now - t0 > 0:
            self._rates = {"in_per_s": round((n_in - in0) / (now - t0), 1),
                           "out_per_s": round((c["outputs"] - out0) / (now - t0), 1)}
        self._rate_mark = (now, n_in, c["outputs"])
        return {"worker": self.worker_id, "updated": wall,
                "counters": {**c, **self.heap.counters()},
                "partitions": self.pipe.partitions, "lag": self.lag(),
                "dead_letters_by_reason": dict(self.pipe.dead_by_reason),
                "rates": self._rates, "latency": self.latency.as_dict()}

    def lag(self) -> dict[str, dict[str, int]]:
        """Messages behind the log end per assigned partition (from fetch metadata)."""
        out: dict[str, dict[str, int]] = {}
        try:
            positions = self.consumer.position(self.consumer.assignment())
        except KafkaException:
            return out
        for tp in positions:
            try:
                _, high = self.consumer.get_watermark_offsets(tp, cached=True)
            except KafkaException:
                continue
            if high is None or high < 0:
                continue
            pos = tp.offset if tp.offset >= 0 else high
            out.setdefault(tp.topic, {})[str(tp.partition)] = max(0, high - pos)
        return out
