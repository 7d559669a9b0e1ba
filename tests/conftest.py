"""Shared fixtures: a real Kafka broker for the session, and real streamsvc processes.

Set STREAMSVC_REQUIRE_KAFKA=1 (CI does) to turn "broker unavailable" into a failure instead
of a skip.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _require_kafka() -> bool:
    return os.environ.get("STREAMSVC_REQUIRE_KAFKA", "") not in ("", "0", "false")


@pytest.fixture(scope="session")
def kafka_broker() -> Iterator[Any]:
    """A single-node KRaft Apache Kafka 3.9 broker on a free loopback port."""
    from streamsvc.devbroker import BrokerError, KafkaBroker

    if shutil.which("java") is None or shutil.which("mvn") is None:
        msg = "Java and Maven are needed to run the Kafka broker"
        if _require_kafka():
            pytest.fail(msg + " (STREAMSVC_REQUIRE_KAFKA is set)")
        pytest.skip(msg)
    broker = KafkaBroker(partitions=4)
    try:
        broker.start()
    except BrokerError as exc:
        if _require_kafka():
            pytest.fail(f"Kafka broker unavailable: {exc}")
        pytest.skip(f"Kafka broker unavailable: {exc}")
    yield broker
    broker.stop()


class ServiceProcs:
    """Starts `streamsvc` sub-commands as real processes with an isolated topic namespace."""

    def __init__(self, broker: Any, tmp: Path) -> None:
        self.broker = broker
        self.tmp = tmp
        ns = uuid.uuid4().hex[:6]
        self.ns = ns
        self.topics = {
            role: f"{ns}-{name}" for role, name in [
                ("events", "events"), ("labels", "labels"), ("predictions", "predictions"),
                ("drift_alerts", "drift-alerts"), ("dead_letters", "dead-letters"),
                ("model_status", "model-status"), ("records", "records"),
                ("checkpoints", "checkpoints"), ("edges", "edges"),
                ("node_labels", "node-labels"), ("node_predictions", "node-predictions"),
                ("transitions", "transitions"), ("actions", "actions"),
                ("values", "value-predictions")]
        }
        self.env = {
            **os.environ, "STREAMSVC_BROKER": broker.url, "STREAMSVC_APP_ID": f"streamsvc-{ns}",
            "STREAMSVC_PARTITIONS": "4", "PYTHONUNBUFFERED": "1",
            **{f"STREAMSVC_TOPICS__{r.upper()}": t for r, t in self.topics.items()},
        }
        self.procs: list[tuple[subprocess.Popen, Path]] = []

    def start(self, *args: str, env: dict[str, str] | None = None, name: str = "proc"
              ) -> subprocess.Popen:
        log = self.tmp / f"{name}-{len(self.procs)}.log"
        fh = open(log, "wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamsvc.cli", *args], env={**self.env, **(env or {})},
            stdout=fh, stderr=subprocess.STDOUT, cwd=self.tmp, start_new_session=True,
        )
        fh.close()
        self.procs.append((proc, log))
        return proc

    def log_of(self, proc: subprocess.Popen) -> str:
        for p, log in self.procs:
            if p is proc:
                return log.read_text(errors="replace")[-5000:]
        return ""

    def stop(self, proc: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        if proc.poll() is None:
            os.killpg(proc.pid, sig)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        return proc.returncode

    def start_worker(self, env: dict[str, str] | None = None, timeout: float = 90
                     ) -> subprocess.Popen:
        """Start `streamsvc worker` and wait for its first heartbeat in model-status."""
        proc = self.start("worker", env=env, name="worker")
        status = TopicReader(self.broker.bootstrap, self.topics["model_status"])

        def up() -> bool:
            if proc.poll() is not None:
                pytest.fail("worker exited:\n" + self.log_of(proc))
            try:
                return any(m and "counters" in m for m in status.poll())
            except Exception:  # noqa: BLE001 - the topic may not exist yet
                return False

        try:
            wait_for(up, timeout, "worker heartbeat")
        finally:
            status.close()
        return proc

    def close(self) -> None:
        for proc, _ in self.procs:
            if proc.poll() is None:
                self.stop(proc, signal.SIGKILL, timeout=10)


@pytest.fixture
def service(kafka_broker: Any, tmp_path: Path) -> Iterator[ServiceProcs]:
    procs = ServiceProcs(kafka_broker, tmp_path)
    yield procs
    procs.close()


def wait_for(cond: Callable[[], Any], timeout: float, what: str, interval: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = cond()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r})")


class TopicReader:
    """Accumulates every message of one topic from the beginning (kafka-python, no group)."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        from kafka import KafkaConsumer

        self.consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None,
                                      auto_offset_reset="earliest", enable_auto_commit=False)
        self.messages: list[dict[str, Any]] = []

    def poll(self) -> list[dict[str, Any]]:
        for batch in self.consumer.poll(timeout_ms=300).values():
            for m in batch:
                self.messages.append(json.loads(m.value))
        return self.messages

    def close(self) -> None:
        self.consumer.close()
