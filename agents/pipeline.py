"""The worker's record pipeline as one object with named steps, Kafka-free.

The Kafka engine (`streamsvc.engine`) feeds it batches and publishes what it returns; the
tests drive the same methods directly. Two stages, as in Kafka Streams' repartitioning:

* `ingest`: a raw record from any partition of an input topic is decoded, validated and
  routed to its model shard; it becomes a records-topic message keyed by that shard (or a
  dead letter with the reason and the bytes as sent);
* `learn`: a records-topic message is applied to its model shard (predict, join labels,
  learn, evaluate, detect drift) and yields the outputs to publish.

Exactly-once learning across crashes and rebalances (see README, "Nothing learned is lost"):
* a snapshot of a records partition stores the offset it includes; a worker that is assigned
  that partition restores it and resumes reading at `offset + 1` (`assign`), so records it
  includes are never learned twice;
* records between the snapshot and the group's committed offset were processed and their
  outputs published before the crash: they are learned again without publishing (`replay`),
  so nothing learned is lost;
* the ingest stage is at-least-once (a crash can forward a record twice): each partition state
  keeps the highest source offset it applied per input partition and skips the rest.
"""

from __future__ import annotations

import json
import logging
import pickle
import time
from typing import Any, NamedTuple

from agents.host import HostLimits, Out, PartitionState
from agents.messages import BadRecord, dead_letter
from agents.processor import (
    INPUTS,
    PACK_BODY_BYTES,
    RECORD_PACK,
    Processor,
    challenger_copies,
    encode_pack,
    encode_record,
    forward_head,
    record_header,
    unpack,
)

log = logging.getLogger("streamsvc.pipeline")


class StreamClock:
    """The time label-join expiry runs on in one records partition: the clock of the latest
    record processed there, advancing with the wall clock only while no record arrives.

    Why: a worker working through a backlog must not expire a waiting label by wall time
    while the event it waits for is still queued behind it; an idle partition must still
    expire labels whose event never comes. One clock per partition: a partition that lags
    behind another must not have its labels expired on the other one's clock.
    """

    def __init__(self) -> None:
        self.record = 0.0  # clock of the latest record processed
        self.wall = 0.0  # wall time when it was processed

    def saw(self, record_clock: float) -> None:
        if record_clock > self.record:
            self.record = record_clock
        self.wall = time.time()

    def now(self) -> float:
        if not self.wall:
            return time.time()
        return self.record + max(0.0, time.time() - self.wall)


def record_clock(ts_ms: int | None) -> float:
    """A record's time in seconds: its Kafka timestamp (so that a replay sees the clock of the
    original run), else the wall clock."""
    if not ts_ms or ts_ms <= 0:
        return time.time()
    return ts_ms / 1000.0


class Forward(NamedTuple):
    """An input record validated and routed to the model shard `key`: `head` (what the learn
    stage needs) and `raw` (the bytes as sent) travel to the records topic keyed `key`, alone
    (`value`) or packed with the batch's other records for that shard (`agents.processor.
    encode_pack`)."""

    key: str
    head: dict[str, Any]
    raw: bytes
    #: the same record for each challenger of its model (`challenger_copies`)
    copies: tuple[Forward, ...] = ()

    @property
    def value(self) -> bytes:
        """This record alone as one records-topic message."""
        return encode_record(self.head, self.raw)


#: a pack closes before its size would pass about this (the topic's limit is ~1 MB; a record
#: larger than this travels alone)
PACK_BYTES = 512_000
#: what a record adds to a pack beyond its bytes: its header entry (kind, source, timestamp,
#: length), and its validated body unless that is left out (`PACK_BODY_BYTES`), counted as
#: twice the bytes as sent — a generous bound (pydantic may add absent fields as null)
_ENTRY_BYTES = 256


class Pack(NamedTuple):
    """One records-topic message holding some of a batch's records for the shard `key`;
    `origins` are the user's (topic, partition, offset, bytes) of each, for dead letters."""

    key: str
    value: bytes
    origins: list[tuple[str, int, int, bytes]]
    ts_ms: int


class Packer:
    """Gathers the records one input batch forwards, per model shard, so each shard's go to
    the records topic as one message (`RECORD_PACK`) in the order they came."""

    def __init__(self, limit: int = PACK_BYTES) -> None:
        self.limit = limit
        # shard -> (members: (head, ts, raw), origins, [size so far, a bound])
        self._open: dict[str, tuple[list, list, list[int]]] = {}

    def add(self, fwd: Forward, ts_ms: int, origin: tuple[str, int, int, bytes]
            ) -> Pack | None:
        """Add one record; returns the shard's pack if it had to close first (full)."""
        n = len(fwd.raw)
        size = _ENTRY_BYTES + (3 * n if n < PACK_BODY_BYTES else n)
        cur = self._open.get(fwd.key)
        closed = None
        if cur is not None and cur[2][0] + size > self.limit:
            closed = self._close(fwd.key)
            cur = None
        if cur is None:
            cur = self._open[fwd.key] = ([], [], [0])
        cur[0].append((fwd.head, ts_ms, fwd.raw))
        cur[1].append(origin)
        cur[2][0] += size
        return closed

    def drain(self) -> list[Pack]:
        """Every open pack, closed (end of the batch)."""
        return [self._close(k) for k in list(self._open)]

    def _close(self, key: str) -> Pack:
        members, origins, _ = self._open.pop(key)
        head = members[0][0]
        return Pack(key, encode_pack(key, head["model"], members), origins,
                    max(ts for _, ts, _ in members))


REASON_CLASS_MAX = 80


def reason_class(reason: str) -> str:
    """What dead letters are counted under (and the `reason` label of the metrics): the words
    before the first ':', which the messages keep free of the record's values (labels, feature
    values; names of models, features and columns stay, so a cause is still named), cut at a
    word boundary beyond ``REASON_CLASS_MAX`` characters (a cut mid-word split one cause in two).

    >>> reason_class("unknown model; configured models are default, graph: 'grph'")
    'unknown model; configured models are default, graph'
    """
    head = reason.split(":", 1)[0].strip()
    if len(head) <= REASON_CLASS_MAX:
        return head
    return head[:REASON_CLASS_MAX].rsplit(" ", 1)[0] + " …"


def _reason(exc: Exception) -> str:
    return str(exc) if isinstance(exc, BadRecord) else f"processing error: {exc!r}"


def _where(src: Any, records_topic: str, partition: int, offset: int) -> tuple[str, int, int]:
    """The user's (topic, partition, offset) of a packed record (its records-topic message's
    when its source is unreadable)."""
    try:
        return str(src["topic"]), int(src["partition"]), int(src["offset"])
    except (KeyError, TypeError, ValueError):
        return records_topic, partition, offset


def source_of(value: bytes | None, partition: int, offset: int, records_topic: str
              ) -> tuple[str, int, int, bytes | None]:
    """Where a records-topic message came from (the user's topic, partition and offset) and
    the bytes the user sent (from a message of an older worker without them: the validated
    body; else the message itself)."""
    # the standard library's parser: this runs when a record failed, perhaps because orjson
    # refused it (e.g. a lone surrogate written by an older worker or by hand)
    try:
        rec, raw = record_header(value or b"", json.loads)
        src = rec["src"]
        where = str(src["topic"]), int(src["partition"]), int(src["offset"])
    except (ValueError, KeyError, TypeError, AttributeError):
        return records_topic, partition, offset, value
    if raw is None:
        try:
            raw = json.dumps(rec["body"], ensure_ascii=False).encode("utf-8", "surrogatepass")
        except (KeyError, TypeError, ValueError):
            raw = value
    return (*where, raw)


class Pipeline:
    """Validates, routes and learns records; owns the partition states of one worker."""

    COUNTERS = ("events_in", "labels_in", "transitions_in", "edges_in", "node_labels_in",
                "dead_letters", "records", "outputs", "predictions", "drift_alerts",
                "snapshots_saved", "replayed", "replay_errors", "skipped", "send_errors",
                "send_retries", "batches", "backlog_switches", "commit_flushes", "packs")

    def __init__(self, specs: Any, limits: HostLimits, records_topic: str = "records",
                 checkpoint_every: int = 5000, checkpoint_interval: float = 30.0) -> None:
        self.proc = Processor(specs, limits)
        self.specs = self.proc.specs
        self.records_topic = records_topic
        self.checkpoint_every = checkpoint_every
        self.checkpoint_interval = checkpoint_interval
        self.clocks: dict[int, StreamClock] = {}  # records partition -> its clock
        self.counters: dict[str, int] = dict.fromkeys(self.COUNTERS, 0)
        self.dead_by_reason: dict[str, int] = {}
        self.replay_until: dict[int, int] = {}  # records partition -> first offset to publish

    # -- stage 1: input records ---------------------------------------------------------------
    def ingest(self, role: str, topic: str, partition: int, offset: int,
               raw: bytes | None) -> Forward | Out:
        """Validate and route one raw input record: a `Forward`, or a dead-letter output."""
        self.counters[f"{role}_in"] += 1
        src = {"topic": topic, "partition": partition, "offset": offset}
        try:
            rk, head, raw = forward_head(role, raw, self.specs, src)
            # (most configs have no challengers: no copies to look for)
            copies = self.specs.challenged and challenger_copies(role, head["body"], src,
                                                                 self.specs)
            if not copies:
                return Forward(rk, head, raw)
            return Forward(rk, head, raw, tuple(
                Forward(crk, {**head, "rk": crk, "model": body["model"], "src": csrc,
                              "body": body}, raw)
                for crk, body, csrc in copies))
        except BadRecord as exc:
            return self.dead_letter(topic, partition, offset, str(exc), raw)
        except Exception as exc:  # noqa: BLE001 - bad input must never kill the worker
            return self.dead_letter(topic, partition, offset, f"internal error: {exc!r}", raw)

    def dead_letter(self, topic: str, partition: int, offset: int, reason: str,
                    raw: bytes | None) -> Out:
        self._count_dead(reason)
        return ("dead_letters", None, dead_letter(topic, partition, offset, reason, raw))

    def _counted(self, outs: list[Out]) -> list[Out]:
        """A host's outputs, its dead letters (labels that waited in vain) counted as every
        dead letter is."""
        for role, _, value in outs:
            if role == "dead_letters":
                self._count_dead(value.get("error", ""))
        return outs

    def _count_dead(self, reason: str) -> None:
        self.counters["dead_letters"] += 1
        cls = reason_class(reason)
        self.dead_by_reason[cls] = self.dead_by_reason.get(cls, 0) + 1

    # -- stage 2: records partitions ----------------------------------------------------------
    def assign(self, partition: int, snapshot: bytes | None, committed: int | None) -> int:
        """Take over a records partition: install its snapshot (if any) and return the offset
        to read from. Records from there up to `committed` are replayed without output."""
        if snapshot is not None:
            state: PartitionState = pickle.loads(snapshot)
            self.proc.adopt(state)
        st = self.proc.state(partition)
        if st.clock:  # go on from the snapshot's clock (wall time of the restart excluded)
            clock = self.clocks[partition] = StreamClock()
            clock.record, clock.wall = st.clock, time.time()
        start = st.offset + 1
        if committed is not None and committed > start:
            self.replay_until[partition] = committed
        return start

    def release(self, partition: int) -> None:
        """Forget a records partition (revoked or lost: another worker owns it now)."""
        self.proc.release(partition)
        self.replay_until.pop(partition, None)
        self.clocks.pop(partition, None)

    def learn(self, partition: int, offset: int, value: bytes | None,
              ts_ms: int | None) -> list[Out]:
        """Apply one records-topic message; return what to publish (nothing when replaying)."""
        return [o for _, outs, _ in self.learn_message(partition, offset, value, ts_ms)
                for o in outs]

    def learn_message(self, partition: int, offset: int, value: bytes | None,
                      ts_ms: int | None) -> list[tuple[tuple, list[Out], int | None]]:
        """Apply one records-topic message (one record, or a pack of them) and return, per
        record that has something to publish: (where it came from, its outputs, its Kafka
        timestamp). "Where it came from" is what a dead letter names if an output can never be
        published: (records topic, partition, offset, message) for a single-record message
        (`source_of` finds the user's record in it), the user's (topic, partition, offset,
        bytes) for a packed record. Nothing is returned while replaying."""
        st = self.proc.state(partition)
        if offset <= st.offset:
            self.counters["skipped"] += 1
            return []
        replay = offset < self.replay_until.get(partition, -1)
        if not replay:
            self.replay_until.pop(partition, None)
        value = value or b""
        if value[:1] != RECORD_PACK:
            origin = (self.records_topic, partition, offset, value)
            outs = self._learn_one(partition, offset, value, ts_ms, replay)
            return [(origin, outs, ts_ms)] if outs else []
        st.offset = offset
        try:
            rk, model, items = unpack(value)
        except ValueError as exc:
            st.dirty += 1
            self.counters["replayed" if replay else "records"] += 1
            if replay:
                return []
            return [((self.records_topic, partition, offset, value), [self.dead_letter(
                self.records_topic, partition, offset, str(exc), value)], ts_ms)]
        done: list[tuple[tuple, list[Out], int | None]] = []
        proc, counters = self.proc, self.counters
        ready: list[tuple] = []  # validated records for the shard's host, in order
        kept: list[tuple] = []  # (source, bytes as sent, timestamp) of each
        for kind, src, ts, raw, body in items:
            now = record_clock(ts)
            self._saw(partition, now)
            st.dirty += 1
            counters["replayed" if replay else "records"] += 1
            where = _where(src, self.records_topic, partition, offset)
            try:
                body = proc.prepare(st, kind, rk, model, src, raw, body)
            except Exception as exc:  # noqa: BLE001 - the worker must go on
                if not self._replay_error(replay, partition, offset, exc):
                    done.append(((*where, raw), [self.dead_letter(*where, _reason(exc), raw)],
                                 ts))
                continue
            if body is not None:
                ready.append((kind, body, now, src, raw))
                kept.append((where, raw, ts))
        if not ready:
            return done
        for (where, raw, ts), res in zip(kept, proc.apply_many(st, rk, ready), strict=True):
            if isinstance(res, Exception):
                if not self._replay_error(replay, partition, offset, res):
                    done.append(((*where, raw), [self.dead_letter(*where, _reason(res), raw)],
                                 ts))
            elif res and not replay:
                done.append(((*where, raw), self._counted(res), ts))
        return done

    def _learn_one(self, partition: int, offset: int, value: bytes, ts_ms: int | None,
                   replay: bool) -> list[Out]:
        """`learn_message` for a message that holds one record."""
        st = self.proc.state(partition)
        now = record_clock(ts_ms)
        self._saw(partition, now)
        self.counters["replayed" if replay else "records"] += 1
        try:
            outs = self.proc.handle(partition, offset, value, now)
        except Exception as exc:  # noqa: BLE001 - the worker must go on
            st.offset = max(st.offset, offset)
            if self._replay_error(replay, partition, offset, exc):
                return []
            topic, p, o, body = source_of(value, partition, offset, self.records_topic)
            return [self.dead_letter(topic, p, o, _reason(exc), body)]
        return [] if replay else self._counted(outs)

    def _replay_error(self, replay: bool, partition: int, offset: int, exc: Exception) -> bool:
        """A record failed while replaying: its dead letter was published the first time, so
        count it (say so a few times) and publish nothing. False when not replaying."""
        if not replay:
            return False
        self.counters["replay_errors"] += 1
        if self.counters["replay_errors"] <= 3:
            log.info("records[%d]@%d failed again while replaying (its dead letter was "
                     "published the first time): %s", partition, offset, _reason(exc))
        return True

    def _saw(self, partition: int, now: float) -> None:
        """A record with clock `now` was processed in `partition`: advance its label clock."""
        clock = self.clocks.get(partition)
        if clock is None:
            clock = self.clocks[partition] = StreamClock()
        clock.saw(now)

    def process(self, role: str, topic: str, partition: int, offset: int, raw: bytes | None,
                ts_ms: int | None = None) -> list[Out]:
        """Both stages in one step for in-process use (the demo, a notebook, a benchmark):
        every model shard lives here, so there is no records topic to route through. What to
        publish: the outputs, or a dead letter with the reason and the bytes as sent."""
        self.counters[f"{role}_in"] += 1
        now = record_clock(ts_ms)
        self._saw(partition, now)
        src = {"topic": topic, "partition": partition, "offset": offset}
        try:
            outs = self.proc.process(partition, offset, role, raw, now, src)
        except Exception as exc:  # noqa: BLE001 - bad input must never kill the worker
            return [self.dead_letter(topic, partition, offset, _reason(exc), raw)]
        self.counters["records"] += 1
        return self._counted(outs)

    def process_many(self, role: str, topic: str, partition: int,
                     recs: list[tuple[int, bytes | None, int | None]]) -> list[list[Out]]:
        """`process` for records (offset, bytes, Kafka timestamp in ms) in order: per record
        what to publish. A shard's runs of labelled events take the host's passes."""
        self.counters[f"{role}_in"] += len(recs)
        items = []
        for offset, raw, ts_ms in recs:
            now = record_clock(ts_ms)
            self._saw(partition, now)
            items.append((offset, role, raw, now,
                          {"topic": topic, "partition": partition, "offset": offset}))
        out: list[list[Out]] = []
        for (offset, raw, _), res in zip(recs, self.proc.process_many(partition, items),
                                         strict=True):
            if isinstance(res, Exception):
                out.append([self.dead_letter(topic, partition, offset, _reason(res), raw)])
            else:
                self.counters["records"] += 1
                out.append(self._counted(res))
        return out

    def tick(self) -> list[Out]:
        """Time passes with no record: expire waiting labels that are due, each partition on
        its own clock."""
        out: list[Out] = []
        for p in list(self.proc.partitions):
            clock = self.clocks.get(p)
            out += self.proc.tick(clock.now() if clock else time.time(), p)
        return self._counted(out)

    # -- checkpoints --------------------------------------------------------------------------
    def due(self, now: float | None = None) -> list[int]:
        """Partitions whose state changed enough (records or time) to snapshot now."""
        now = time.time() if now is None else now
        return [p for p, st in self.proc.partitions.items()
                if st.dirty and (st.dirty >= self.checkpoint_every
                                 or now - st.saved_at >= self.checkpoint_interval)]

    def snapshot(self, partition: int) -> tuple[bytes, dict[str, Any]] | None:
        """Pickle one partition's state (an immutable copy the caller may write at leisure);
        None when nothing changed since the last snapshot."""
        taken = self.take_snapshot(partition)
        if taken is None:
            return None
        st, meta = taken
        return pickle.dumps(st, protocol=pickle.HIGHEST_PROTOCOL), meta

    def take_snapshot(self, partition: int) -> tuple[PartitionState, dict[str, Any]] | None:
        """Mark one partition's state as saved now and return it with its metadata; the
        caller serialises it before the next record changes it (or in a forked child)."""
        st = self.proc.partitions.get(partition)
        if st is None or st.dirty == 0:
            return None
        dirty = st.dirty
        st.dirty, st.saved_at = 0, time.time()
        clock = self.clocks.get(partition)
        if clock is not None:
            st.clock = clock.now()
        return st, {"offset": st.offset, "records": dirty}

    def mark_unsaved(self, partition: int, records: int) -> None:
        """A snapshot write failed: keep the partition due so the next boundary retries."""
        st = self.proc.partitions.get(partition)
        if st is not None:
            st.dirty += records
            st.saved_at = 0.0

    @property
    def partitions(self) -> list[int]:
        return sorted(self.proc.partitions)

    def statuses(self, changed: bool = False) -> list[dict[str, Any]]:
        return self.proc.statuses(changed)


__all__ = ["INPUTS", "PACK_BYTES", "Forward", "Pack", "Packer", "Pipeline", "StreamClock",
           "record_clock", "source_of"]
