"""The Faust application: builds topics from the config and wires the agents to Kafka I/O."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from typing import Any

import faust

from agents.host import HostLimits
from agents.pipeline import Wiring, register
from streamsvc.checkpoints import CheckpointStore, ensure_topics, read_range
from streamsvc.config import Settings

log = logging.getLogger("streamsvc.app")

#: topic role -> (partitions: "n" = configured count, 1 = single), compacted?
TOPIC_LAYOUT: dict[str, tuple[str | int, bool]] = {
    "events": ("n", False), "labels": ("n", False), "predictions": ("n", False),
    "drift_alerts": (1, False), "dead_letters": (1, False), "model_status": (1, True),
    "records": ("n", False), "checkpoints": (1, True),
    "edges": ("n", False), "node_labels": ("n", False), "node_predictions": ("n", False),
    "transitions": ("n", False), "actions": ("n", False), "values": ("n", False),
}


def topic_specs(settings: Settings) -> dict[str, dict[str, Any]]:
    out = {}
    for role, (parts, compacted) in TOPIC_LAYOUT.items():
        cfg = {"cleanup.policy": "compact", "min.cleanable.dirty.ratio": "0.1",
               "segment.ms": "600000"} if compacted else {}
        out[settings.topic(role)] = {
            "partitions": settings.partitions if parts == "n" else parts, "config": cfg,
        }
    return out


def worker_id() -> str:
    return os.environ.get("STREAMSVC_WORKER_ID") or f"{socket.gethostname()}-{os.getpid()}"


def create_app(settings: Settings) -> faust.App:
    """A Faust app with the streamsvc agents registered; run it with `faust.Worker`."""
    ensure_topics(settings.bootstrap, topic_specs(settings))
    app = faust.App(
        settings.app_id,
        broker=settings.broker,
        value_serializer="raw",
        key_serializer="raw",
        web_enabled=False,  # the FastAPI sidecar is the HTTP face; several workers per host
        topic_partitions=settings.partitions,
        topic_allow_declare=False,
        consumer_auto_offset_reset="earliest",
        broker_commit_every=1000,
        broker_commit_interval=2.0,
        stream_wait_empty=True,
        broker_session_timeout=settings.worker["session_timeout"],
        broker_heartbeat_interval=min(3.0, settings.worker["session_timeout"] / 4),
    )
    json_topics = {"predictions", "drift_alerts", "dead_letters", "model_status",
                   "node_predictions", "actions", "values"}
    topics = {
        role: app.topic(settings.topic(role), key_type=bytes,
                        value_serializer="json" if role in json_topics else "raw",
                        key_serializer="raw", partitions=None)
        for role in TOPIC_LAYOUT
    }
    store = CheckpointStore(settings.bootstrap, settings.topic("checkpoints"))
    prefix = f"{settings.app_id}/records-"
    loop_exec = asyncio.get_event_loop

    async def load_snapshots() -> dict[int, bytes]:
        found = await loop_exec().run_in_executor(None, store.load_all, prefix)
        return {int(k[len(prefix):]): blob for k, (blob, _) in found.items()}

    async def save_snapshot(partition: int, blob: bytes, meta: dict[str, Any]) -> None:
        await loop_exec().run_in_executor(None, store.save, f"{prefix}{partition}", blob, meta)

    async def replay(partition: int, start: int, end: int
                     ) -> list[tuple[int, bytes | None, float]]:
        return await loop_exec().run_in_executor(
            None, read_range, settings.bootstrap, settings.topic("records"), partition, start, end)

    wk = settings.worker
    wiring = Wiring(
        topics=topics,
        specs=settings.models,
        limits=HostLimits(
            pending_max=wk["pending_max"], pending_ttl=wk["pending_ttl"],
            orphan_max=wk["orphan_max"], orphan_ttl=wk["orphan_ttl"],
            rolling_window=wk["rolling_window"],
        ),
        worker_id=worker_id(),
        load_snapshots=load_snapshots,
        save_snapshot=save_snapshot,
        read_range=replay,
        checkpoint_every=wk["checkpoint_every"],
        checkpoint_interval=wk["checkpoint_interval"],
        status_interval=wk["status_interval"],
    )
    register(app, wiring)
    app.streamsvc_wiring = wiring  # type: ignore[attr-defined]
    return app


def run_worker(settings: Settings, loglevel: str = "info") -> None:
    """Run one worker until SIGTERM/SIGINT (a clean stop snapshots every model first)."""
    app = create_app(settings)
    log.info("streamsvc worker %s: broker=%s models=%s", app.streamsvc_wiring.worker_id,
             settings.broker, ", ".join(f"{n}({m.kind})" for n, m in settings.models.items()))
    worker = faust.Worker(app, loglevel=loglevel, quiet=True)
    worker.execute_from_commandline()
