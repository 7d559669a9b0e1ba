"""Routing of validated records to model shards, and per-partition processing.

Two stages, as in Kafka Streams' repartitioning: the ingest stage validates raw records from
any partition of `events`/`labels` and forwards them keyed by model shard to the records
topic; the learn stage owns partitions of that topic, so one process holds each model shard
and an event and its late label always meet in the same place, whatever key the producer used.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from agents.host import ClassifierHost, HostLimits, Out, PartitionState, routing_key
from agents.messages import BadRecord, EventIn, LabelIn, decode

INPUT_SHAPES = {"events": ("event", EventIn), "labels": ("label", LabelIn)}


def route(role: str, raw: bytes | None, specs: Mapping[str, Any], src: dict[str, Any]) -> tuple[str, bytes]:
    """Validate one raw input record and return (routing key, records-topic value).

    Raises `BadRecord` for anything that cannot be processed, including an unknown model or a
    model of another family (e.g. an event sent to a reinforcement-learning model).
    """
    kind, shape = INPUT_SHAPES[role]
    msg = decode(raw, shape)
    spec = specs.get(msg.model)
    if spec is None:
        raise BadRecord(
            f"unknown model {msg.model!r}; configured models: {', '.join(sorted(specs))}"
        )
    if spec.family != "classifier":
        raise BadRecord(f"model {msg.model!r} is a {spec.kind} model and takes no {role}")
    rk = routing_key(msg.model, spec.shards, msg.id)
    value = {"kind": kind, "rk": rk, "body": msg.model_dump(mode="json"), "src": src}
    return rk, json.dumps(value, separators=(",", ":")).encode()


class Processor:
    """Holds the partitions a worker owns and applies records to their model shards."""

    def __init__(self, specs: Mapping[str, Any], limits: HostLimits) -> None:
        self.specs = dict(specs)
        self.limits = limits
        self.partitions: dict[int, PartitionState] = {}

    def adopt(self, state: PartitionState) -> None:
        """Install a restored partition state (model specs may have changed: keep the models)."""
        self.partitions[state.partition] = state

    def state(self, partition: int) -> PartitionState:
        st = self.partitions.get(partition)
        if st is None:
            st = self.partitions[partition] = PartitionState(partition)
        return st

    def host(self, st: PartitionState, rk: str) -> ClassifierHost:
        h = st.hosts.get(rk)
        if h is None:
            name = rk.split("#", 1)[0]
            spec = self.specs.get(name)
            if spec is None:
                raise BadRecord(f"unknown model {name!r}")
            h = st.hosts[rk] = ClassifierHost(spec, rk, self.limits)
        return h

    def handle(self, partition: int, offset: int, value: bytes, now: float) -> list[Out]:
        """Apply one records-topic message; returns what to publish. Offsets at or below the
        partition's checkpointed offset were applied already and are skipped (no double
        learning after a restart)."""
        st = self.state(partition)
        if offset <= st.offset:
            return []
        st.offset = offset
        st.dirty += 1
        rec = json.loads(value)
        host = self.host(st, rec["rk"])
        if rec["kind"] == "event":
            return host.on_event(EventIn.model_validate(rec["body"]), now)
        if rec["kind"] == "label":
            return host.on_label(LabelIn.model_validate(rec["body"]), now, rec.get("src", {}))
        raise BadRecord(f"unknown record kind {rec['kind']!r}")

    def tick(self, now: float) -> list[Out]:
        out: list[Out] = []
        for st in self.partitions.values():
            for h in st.hosts.values():
                out += h.tick(now)
        return out

    def statuses(self) -> list[dict[str, Any]]:
        return [
            {**h.status(), "partition": st.partition, "offset": st.offset}
            for st in self.partitions.values() for h in st.hosts.values()
        ]
