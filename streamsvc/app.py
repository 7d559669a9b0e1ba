"""The worker process: a Faust application that runs the batch engine (`streamsvc.engine`)."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import tempfile
import threading
from typing import Any

import faust

from agents.host import HostLimits
from agents.pipeline import Pipeline
from streamsvc.checkpoints import CheckpointStore, ensure_topics
from streamsvc.config import Settings
from streamsvc.engine import BatchEngine, FatalEngineError
from streamsvc.security import check_kafka

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


def build_engine(settings: Settings, wid: str | None = None) -> BatchEngine:
    """The hot path: the pipeline over the configured models, on confluent-kafka."""
    wk = settings.worker
    pipeline = Pipeline(
        settings.models,
        HostLimits(pending_max=wk["pending_max"], pending_ttl=wk["pending_ttl"],
                   orphan_max=wk["orphan_max"], orphan_ttl=wk["orphan_ttl"],
                   rolling_window=wk["rolling_window"]),
        records_topic=settings.topic("records"),
        checkpoint_every=wk["checkpoint_every"], checkpoint_interval=wk["checkpoint_interval"],
    )
    kafka_log = logging.getLogger("streamsvc.kafka")  # librdkafka's own log lines
    secured = {**settings.security.librdkafka(), "logger": kafka_log}
    # a snapshot that fails its signature is not unpickled: the partition replays instead,
    # and the refusal shows in the worker's status counters and /metrics
    pipeline.counters.setdefault("snapshots_refused", 0)

    def refused(key: str, problem: str) -> None:
        pipeline.counters["snapshots_refused"] += 1

    store = CheckpointStore(settings.bootstrap, settings.topic("checkpoints"),
                            client_config=secured, signing_key=settings.snapshot_key,
                            on_refused=refused)
    prefix = f"{settings.app_id}/records-"

    def load_snapshots() -> dict[int, bytes]:
        found = store.load_all(prefix)
        return {int(k[len(prefix):]): blob for k, (blob, _) in found.items()}

    def save_snapshot(partition: int, blob: bytes, meta: dict[str, Any]) -> None:
        store.save(f"{prefix}{partition}", blob, meta)

    return BatchEngine(
        pipeline=pipeline, topics=dict(settings.topics),
        client_config={"bootstrap.servers": settings.bootstrap, **secured},
        group_id=settings.app_id, worker_id=wid or worker_id(),
        load_snapshots=load_snapshots, save_snapshot=save_snapshot,
        status_interval=wk["status_interval"], max_batch=wk["max_batch"],
        session_timeout=wk["session_timeout"], linger_ms=wk["linger_ms"],
        busy_linger_ms=wk["busy_linger_ms"],
        compression=wk["compression"], commit_interval=wk["commit_interval"],
        fetch_min_bytes=wk["fetch_min_bytes"], fetch_max_wait_ms=wk["fetch_max_wait_ms"],
        snapshot_fork=wk["snapshot_fork"], spread_shards=wk["shard_placement"] == "spread",
        heartbeat_file=settings.heartbeat_file,
    )


def create_app(settings: Settings) -> faust.App:
    """The Faust application around the batch engine: Faust runs the process (signals,
    logging, lifecycle); the engine's own thread runs the Kafka hot path."""
    ensure_topics(settings.bootstrap, topic_specs(settings), settings.security.kafka_python())
    app = faust.App(
        f"{settings.app_id}-control",  # Faust's own group; the engine's group is app_id
        broker=settings.broker,
        broker_credentials=settings.security.faust_credentials(),  # its control group too
        web_enabled=False,  # the FastAPI sidecar is the HTTP face; several workers per host
        topic_allow_declare=True,  # only Faust's own assignor topic; ours: ensure_topics
        # Faust keeps table state on disk; this app has none: keep its folder out of the cwd
        datadir=os.path.join(tempfile.gettempdir(), f"streamsvc-{settings.app_id}-faust"),
        broker_session_timeout=settings.worker["session_timeout"],
        broker_heartbeat_interval=min(3.0, settings.worker["session_timeout"] / 4),
    )
    engine = build_engine(settings)
    app.streamsvc_engine = engine  # type: ignore[attr-defined]
    thread = threading.Thread(target=_run_engine, args=(engine,), name="streamsvc-engine",
                              daemon=True)

    @app.task
    async def start_engine() -> None:
        thread.start()

    @app.timer(1.0)
    async def control_loop_turns() -> None:
        """Faust's event loop says it still turns: the engine touches the liveness file only
        while this mark is fresh, so a stuck control loop fails the probe too."""
        engine.mark_control_loop()

    async def stop_engine(sender: Any, **_: Any) -> None:
        engine.stop()
        await asyncio.get_running_loop().run_in_executor(None, thread.join, 120)

    app.on_before_shutdown.connect(stop_engine)
    return app


def _run_engine(engine: BatchEngine) -> None:
    """The engine thread. If it cannot go on, the process exits with an error (the container
    or supervisor restarts it; nothing was committed past what is in Kafka)."""
    try:
        # everything built so far lives as long as the process: out of the collector's way
        frozen = engine.heap.settle()
        log.debug("froze %d objects (streamsvc.heap)", frozen)
        engine.run()
    except Exception as exc:  # noqa: BLE001 - report in plain words, then stop the process
        log.critical("worker stopped: %s", exc, exc_info=not isinstance(exc, FatalEngineError))
        logging.shutdown()
        os._exit(70)


def run_worker(settings: Settings, loglevel: str = "info") -> None:
    """Run one worker until SIGTERM/SIGINT (a clean stop snapshots every model first).
    Raises `KafkaAccessError` at once when Kafka refuses the login or the certificate."""
    check_kafka(settings.bootstrap, settings.security)
    if not settings.snapshot_key:
        log.warning("worker.snapshot_key is not set: model snapshots in %r are not "
                    "authenticated, and anyone who can write to that topic can run code in "
                    "this worker; set STREAMSVC_WORKER__SNAPSHOT_KEY (README: Security)",
                    settings.topic("checkpoints"))
    app = create_app(settings)
    log.info("streamsvc worker %s: broker=%s (%s) models=%s", app.streamsvc_engine.worker_id,
             settings.broker, settings.security.describe(),
             ", ".join(f"{n}({m.kind}{', challenger of ' + m.challenger_of if m.challenger_of else ''})"
                       for n, m in settings.models.items()))
    # the command line's logging setup stays (one line format for every logger, before and
    # after Faust starts); Faust would otherwise install its own format on the root logger
    worker = faust.Worker(app, loglevel=loglevel, quiet=True, override_logging=False)
    worker.spinner = None  # its start-up spinner writes terminal codes even into a log file
    worker.execute_from_commandline()
