"""The Faust agents: thin adapters between topics and the Kafka-free processor.

Agents run with concurrency 1 (faust-streaming can commit offsets past events still being
processed otherwise). Faust flushes its producer before it commits offsets, so everything an
agent sends for a record is in Kafka before that record counts as consumed.

Restart and rebalance safety of learned state (see `Wiring`):
* a snapshot of a records partition stores the offset it includes; records at or below it are
  skipped (never learned twice);
* when the first record Faust delivers after an assignment lies beyond that offset (Faust
  committed past the snapshot, e.g. after a crash), the gap is replayed from Kafka first
  (learning only, outputs were published already), so nothing learned is lost.
"""

from __future__ import annotations

import asyncio
import json
import logging
import pickle
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from agents.host import HostLimits, Out, PartitionState
from agents.messages import BadRecord, dead_letter
from agents.processor import INPUTS, Processor, route

log = logging.getLogger("streamsvc.agents")


@dataclass
class Wiring:
    """What the service gives the agents: topics by role, model specs and I/O callables."""

    topics: Mapping[str, Any]  # role -> faust topic
    specs: Mapping[str, Any]
    limits: HostLimits
    worker_id: str
    load_snapshots: Callable[[], Awaitable[dict[int, bytes]]]
    save_snapshot: Callable[[int, bytes, dict[str, Any]], Awaitable[None]]
    read_range: Callable[[int, int, int], Awaitable[list[tuple]]]  # (offset, value[, ts])
    checkpoint_every: int = 5000
    checkpoint_interval: float = 30.0
    status_interval: float = 2.0
    counters: dict[str, int] = field(default_factory=dict)


def _origin(m: Any, value: bytes | None) -> tuple[str, int, int]:
    """Where a records-topic message came from (the user's topic, partition and offset)."""
    try:
        src = json.loads(value or b"")["src"]
        return src["topic"], int(src["partition"]), int(src["offset"])
    except (ValueError, KeyError, TypeError):
        return m.topic, m.partition, m.offset


def _clock(m: Any) -> float:
    """A record's time: its Kafka timestamp (so that a replay sees the same clock as the
    original run), else the wall clock."""
    ts = getattr(m, "timestamp", None)  # faust: seconds (float); kafka-python: milliseconds
    if not isinstance(ts, int | float) or ts <= 0:
        return time.time()
    return ts / 1000.0 if ts > 1e11 else float(ts)


class StreamClock:
    """The time label-join expiry runs on: the processed records' own clock, advancing with
    the wall clock only while the worker is idle.

    Why: a worker working through a backlog must not expire a waiting label by wall time
    while the event it waits for is still queued behind it; an idle worker must still expire
    labels whose event never comes.
    """

    def __init__(self) -> None:
        self.record = 0.0  # clock of the latest record processed
        self.wall = 0.0  # wall time when it was processed

    def saw(self, record_clock: float) -> None:
        self.record = max(self.record, record_clock)
        self.wall = time.time()

    def now(self) -> float:
        if not self.wall:
            return time.time()
        return self.record + max(0.0, time.time() - self.wall)


def _reason(exc: Exception) -> str:
    return str(exc) if isinstance(exc, BadRecord) else f"processing error: {exc!r}"


def _body(value: bytes | None) -> bytes | None:
    try:
        return json.dumps(json.loads(value or b"")["body"]).encode()
    except (ValueError, KeyError, TypeError):
        return value


def register(app: Any, w: Wiring) -> Processor:
    """Attach the classifier pipeline's agents and timers to a Faust app."""
    proc = Processor(w.specs, w.limits)
    restored: set[int] = set()
    snapshots: dict[int, bytes] | None = None
    lock = asyncio.Lock()
    clock = StreamClock()
    for k in ("events_in", "labels_in", "dead_letters", "records", "predictions",
              "drift_alerts", "snapshots_saved", "replayed", "skipped"):
        w.counters.setdefault(k, 0)

    async def publish(outs: list[Out]) -> None:
        for role, key, value in outs:
            w.counters[role] = w.counters.get(role, 0) + 1
            try:
                await w.topics[role].send(key=key, value=value)
            except Exception as exc:  # noqa: BLE001 - one unsendable output must not stall us
                w.counters["send_errors"] = w.counters.get("send_errors", 0) + 1
                log.error("could not publish to %s (key %r): %r", role, key, exc)

    async def to_dead_letters(topic: str, partition: int, offset: int, err: str,
                              raw: bytes | None) -> None:
        w.counters["dead_letters"] += 1
        log.warning("dead letter %s[%d]@%d: %s", topic, partition, offset, err)
        try:
            await w.topics["dead_letters"].send(
                key=None, value=dead_letter(topic, partition, offset, err, raw))
        except Exception as exc:  # noqa: BLE001 - log it: the record's reason is in the log
            w.counters["send_errors"] = w.counters.get("send_errors", 0) + 1
            log.error("could not write dead letter for %s[%d]@%d: %r", topic, partition,
                      offset, exc)

    def ingest(role: str) -> Callable[[Any], Awaitable[None]]:
        async def agent(stream: Any) -> None:
            async for event in stream.events():
                m = event.message
                src = {"topic": m.topic, "partition": m.partition, "offset": m.offset}
                w.counters[f"{role}_in"] += 1
                try:
                    rk, value = route(role, event.value, w.specs, src)
                except BadRecord as exc:
                    await to_dead_letters(m.topic, m.partition, m.offset, str(exc), event.value)
                    continue
                except Exception as exc:  # noqa: BLE001 - bad input must never kill the worker
                    log.exception("unexpected error on %s[%d]@%d", m.topic, m.partition, m.offset)
                    await to_dead_letters(m.topic, m.partition, m.offset,
                                          f"internal error: {exc!r}", event.value)
                    continue
                try:
                    # the source record's time travels with it: label-join timeouts run on
                    # when events and labels were produced, not on when they were forwarded
                    await w.topics["records"].send(key=rk.encode(), value=value,
                                                   timestamp=_clock(m))
                except Exception as exc:  # noqa: BLE001 - e.g. a message over the size limit
                    await to_dead_letters(m.topic, m.partition, m.offset,
                                          f"could not forward: {exc!r}", event.value)

        agent.__name__ = f"ingest_{role}"
        agent.__qualname__ = agent.__name__
        return agent

    for role in INPUTS:
        w.counters.setdefault(f"{role}_in", 0)
        app.agent(w.topics[role], name=f"streamsvc.ingest-{role}")(ingest(role))

    async def restore(partition: int, first_offset: int) -> None:
        nonlocal snapshots
        if snapshots is None:
            snapshots = await w.load_snapshots()
        blob = snapshots.pop(partition, None)
        if blob is not None:
            state: PartitionState = pickle.loads(blob)
            proc.adopt(state)
            log.info("restored records[%d] at offset %d (%d model shards)", partition,
                     state.offset, len(state.hosts))
        st = proc.state(partition)
        if first_offset > st.offset + 1:
            gap = await w.read_range(partition, st.offset + 1, first_offset)
            for item in gap:
                off, value = item[0], item[1]
                # the record's own timestamp, as in the original run, so that label-join
                # timeouts expire exactly as they did then (never on wall-clock time)
                now = item[2] if len(item) > 2 and item[2] else st.saved_at
                try:
                    proc.handle(partition, off, value or b"", now)
                except Exception:  # noqa: BLE001 - a replayed record failed the first time too
                    st.offset = off
            w.counters["replayed"] += len(gap)
            log.info("replayed %d records of records[%d] between snapshot and commit",
                     len(gap), partition)
        restored.add(partition)

    async def checkpoint(partition: int, reason: str) -> None:
        st = proc.partitions.get(partition)
        if st is None or st.dirty == 0:
            return
        await app.producer.flush()  # outputs of included records are durable before the state
        dirty, saved_at = st.dirty, st.saved_at
        st.dirty, st.saved_at = 0, time.time()
        blob = pickle.dumps(st, protocol=pickle.HIGHEST_PROTOCOL)
        try:
            await w.save_snapshot(partition, blob, {"offset": st.offset, "reason": reason,
                                                    "worker": w.worker_id})
        except Exception:
            st.dirty, st.saved_at = st.dirty + dirty, saved_at  # try again next time
            raise
        w.counters["snapshots_saved"] += 1
        log.info("checkpoint records[%d] offset=%d bytes=%d (%s, %d new records)", partition,
                 st.offset, len(blob), reason, dirty)

    @app.agent(w.topics["records"], name="streamsvc.learn")
    async def learn(stream: Any) -> None:
        async for event in stream.events():
            m = event.message
            async with lock:
                if m.partition not in restored:
                    await restore(m.partition, m.offset)
                st = proc.state(m.partition)
                if m.offset <= st.offset:
                    w.counters["skipped"] += 1
                    continue
                w.counters["records"] += 1
                t = _clock(m)
                clock.saw(t)
                try:
                    outs = proc.handle(m.partition, m.offset, event.value, t)
                except Exception as exc:  # noqa: BLE001 - the worker must go on
                    if not isinstance(exc, BadRecord):
                        log.exception("failed on records[%d]@%d", m.partition, m.offset)
                    await to_dead_letters(*_origin(m, event.value), _reason(exc),
                                          _body(event.value))
                    continue
                await publish(outs)
                if st.dirty >= w.checkpoint_every:
                    await checkpoint(m.partition, "every")

    @app.timer(interval=w.status_interval)
    async def publish_status() -> None:
        now = time.time()
        async with lock:
            await publish(proc.tick(clock.now()))
            for s in proc.statuses():
                await w.topics["model_status"].send(
                    key=s["shard"], value={**s, "worker": w.worker_id, "updated": now})
        await w.topics["model_status"].send(
            key=f"worker:{w.worker_id}",
            value={"worker": w.worker_id, "updated": now, "counters": dict(w.counters),
                   "partitions": sorted(proc.partitions)})

    @app.timer(interval=w.checkpoint_interval)
    async def periodic_checkpoint() -> None:
        async with lock:
            for p in list(proc.partitions):
                try:
                    await checkpoint(p, "interval")
                except Exception:  # noqa: BLE001 - keep the state; the next tick retries
                    log.exception("checkpoint of records[%d] failed; will retry", p)

    async def on_revoked(sender: Any, revoked: set[Any], **_: Any) -> None:
        async with lock:
            nonlocal snapshots
            for tp in revoked:
                if tp.topic == w.topics["records"].get_topic_name():
                    await checkpoint(tp.partition, "revoked")
                    proc.partitions.pop(tp.partition, None)
                    restored.discard(tp.partition)
            snapshots = None  # whatever we get next may have been written by another worker

    async def on_shutdown(sender: Any, **_: Any) -> None:
        async with lock:
            for p in list(proc.partitions):
                await checkpoint(p, "shutdown")

    app.on_partitions_revoked.connect(on_revoked)
    app.on_before_shutdown.connect(on_shutdown)
    return proc
