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


def _unavailable(msg: str) -> None:
    """Skip on a developer's machine; fail when the run requires Kafka (CI)."""
    if _require_kafka():
        pytest.fail(msg + " (STREAMSVC_REQUIRE_KAFKA is set)")
    pytest.skip(msg)


def _started(broker: Any, what: str) -> Any:
    from streamsvc.devbroker import BrokerError

    try:
        broker.start()
    except BrokerError as exc:
        _unavailable(f"{what} unavailable: {exc}")
    return broker


@pytest.fixture(scope="session")
def kafka_broker() -> Iterator[Any]:
    """A single-node KRaft Apache Kafka 3.9 broker on a free loopback port."""
    from streamsvc.devbroker import KafkaBroker

    if shutil.which("java") is None or shutil.which("mvn") is None:
        _unavailable("Java and Maven are needed to run the Kafka broker")
    broker = _started(KafkaBroker(partitions=4), "Kafka broker")
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
        # how the test's own kafka-python clients connect (a secured broker changes both)
        self.bootstrap: str = broker.bootstrap
        self.client_kwargs: dict[str, Any] = {}

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
        return stop_group(proc, sig, timeout)

    def start_worker(self, env: dict[str, str] | None = None, timeout: float = 90
                     ) -> subprocess.Popen:
        """Start `streamsvc worker` and wait for its first heartbeat in model-status."""
        proc = self.start("worker", env=env, name="worker")
        status = TopicReader(self.bootstrap, self.topics["model_status"], **self.client_kwargs)

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


@pytest.fixture(scope="module")
def secure_kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A second broker with only secured listeners: SASL_SSL (SCRAM-SHA-512, user `streamsvc`)
    on `.bootstrap` and TLS with required client certificates on `.tls_bootstrap`; CA and
    certificates made by openssl at start (`.pki`). One per test module."""
    import secrets

    from streamsvc.devbroker import KafkaBroker

    if shutil.which("java") is None or shutil.which("mvn") is None \
            or shutil.which("openssl") is None:
        _unavailable("Java, Maven and openssl are needed to run the secured Kafka broker")
    broker = _started(KafkaBroker(partitions=2, data_dir=tmp_path_factory.mktemp("secure-kafka"),
                                  scram_users={"streamsvc": secrets.token_urlsafe(18)}),
                      "secured Kafka broker")
    yield broker
    broker.stop()


def secure_env(broker: Any, listener: str, tmp: Path) -> tuple[str, dict[str, str]]:
    """(bootstrap, STREAMSVC_* variables) for a streamsvc process on `secure_kafka_broker`:
    "sasl" (password in a file, as a mounted secret would be) or "tls" (client certificate)."""
    sec = broker.client_security(listener)
    if listener == "tls":
        return broker.tls_bootstrap, {
            "STREAMSVC_BROKER": f"kafka://{broker.tls_bootstrap}",
            "STREAMSVC_KAFKA__SECURITY_PROTOCOL": "SSL",
            "STREAMSVC_KAFKA__SSL_CAFILE": sec.ssl_cafile,
            "STREAMSVC_KAFKA__SSL_CERTFILE": sec.ssl_certfile,
            "STREAMSVC_KAFKA__SSL_KEYFILE": sec.ssl_keyfile}
    pw = tmp / "kafka-password"
    pw.write_text(sec.password + "\n")
    return broker.bootstrap, {
        "STREAMSVC_BROKER": broker.url, "STREAMSVC_KAFKA__SECURITY_PROTOCOL": "SASL_SSL",
        "STREAMSVC_KAFKA__SASL_MECHANISM": "SCRAM-SHA-512",
        "STREAMSVC_KAFKA__SASL_USERNAME": sec.username,
        "STREAMSVC_KAFKA__SASL_PASSWORD_FILE": str(pw),
        "STREAMSVC_KAFKA__SSL_CAFILE": sec.ssl_cafile}


@pytest.fixture
def secure_service(secure_kafka_broker: Any, tmp_path: Path
                   ) -> Iterator[Callable[[str], ServiceProcs]]:
    """`secure_service("sasl" | "tls")`: a `ServiceProcs` whose processes and test clients
    reach `secure_kafka_broker` through that listener."""
    made: list[ServiceProcs] = []

    def make(listener: str) -> ServiceProcs:
        d = tmp_path / listener
        d.mkdir()
        procs = ServiceProcs(secure_kafka_broker, d)
        procs.bootstrap, env = secure_env(secure_kafka_broker, listener, d)
        procs.env.update(env)
        procs.client_kwargs = secure_kafka_broker.client_security(listener).kafka_python()
        made.append(procs)
        return procs

    yield make
    for procs in made:
        procs.close()


@pytest.fixture
def service(kafka_broker: Any, tmp_path: Path) -> Iterator[ServiceProcs]:
    procs = ServiceProcs(kafka_broker, tmp_path)
    yield procs
    procs.close()


def stop_group(proc: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
    """Send `sig` to a process started in a session of its own; SIGKILL if it outlives
    `timeout`. Returns its exit code."""
    if proc.poll() is None:
        os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return proc.returncode


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

    def __init__(self, bootstrap: str, topic: str,
                 decode: Callable[[bytes], Any] = json.loads, **client_kwargs: Any) -> None:
        from kafka import KafkaConsumer

        self.consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None,
                                      auto_offset_reset="earliest", enable_auto_commit=False,
                                      **client_kwargs)
        self.decode = decode
        self.messages: list[dict[str, Any]] = []

    def poll(self) -> list[dict[str, Any]]:
        for batch in self.consumer.poll(timeout_ms=300).values():
            for m in batch:
                self.messages.append(self.decode(m.value))
        return self.messages

    def close(self) -> None:
        self.consumer.close()


@pytest.fixture
def service_factory(kafka_broker: Any, tmp_path: Path) -> Iterator[Callable[[str], ServiceProcs]]:
    """Several isolated service namespaces in one test (e.g. the same stream run twice, once
    with crashes): each call gives a fresh `ServiceProcs`; all are closed at the end."""
    made: list[ServiceProcs] = []

    def make(name: str) -> ServiceProcs:
        d = tmp_path / name
        d.mkdir()
        made.append(ServiceProcs(kafka_broker, d))
        return made[-1]

    yield make
    for procs in made:
        procs.close()


def load_partition_states(svc: ServiceProcs, timeout: float = 30.0) -> dict[int, Any]:
    """The latest snapshot of every records partition of `svc`, read back from its checkpoints
    topic and unpickled (`agents.host.PartitionState`) — the model a restarted worker gets."""
    import pickle

    from streamsvc.checkpoints import CheckpointStore

    prefix = f"streamsvc-{svc.ns}/records-"
    store = CheckpointStore(svc.broker.bootstrap, svc.topics["checkpoints"])
    try:
        found = store.load_all(prefix, timeout=timeout)
    finally:
        store.close()
    states = {}
    for k, (blob, manifest) in found.items():
        st = states[int(k[len(prefix):])] = pickle.loads(blob)
        st.manifest = manifest  # which snapshot this is (offset, writer, reason), for messages
    return states
