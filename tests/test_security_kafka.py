"""The service on a secured Kafka (a real broker with only SASL_SSL/SCRAM and mTLS listeners,
certificates made by openssl at test time): worker, sidecar and CLI end to end, clear errors
for a wrong password or an untrusted CA, and a forged snapshot that must not run."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import re
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from streamsvc.devbroker import free_port
from tests.conftest import ServiceProcs, TopicReader, wait_for

pytestmark = pytest.mark.kafka
TOKEN = "test-token-0123456789abcdef"
SNAPSHOT_KEY = "snapshot-key-0123456789abcdef"


def cli(*args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "streamsvc.cli", *args], env=env,
                          capture_output=True, text=True, timeout=timeout)


def _get(url: str, **kw: Any) -> httpx.Response | None:
    try:
        return httpx.get(url, timeout=3, **kw)
    except httpx.HTTPError:
        return None


def _code(url: str) -> int | None:
    r = _get(url)
    return None if r is None else r.status_code


def _full_log(svc: ServiceProcs, proc: subprocess.Popen) -> str:
    """The whole log of a process (`log_of` keeps only its tail)."""
    return next(log for p, log in svc.procs if p is proc).read_text(errors="replace")


#: a log line at error level or above, in any of the formats in play (ours, Faust's, uvicorn's)
_ERROR_LINE = re.compile(r"^.*\b(ERROR|CRITICAL|FATAL)\b.*$", re.MULTILINE)


def _assert_clean(log: str, what: str) -> None:
    """A normal run: no traceback and no line at error level."""
    assert "Traceback" not in log, f"{what}: traceback in the log:\n{log[-4000:]}"
    assert not _ERROR_LINE.findall(log), \
        f"{what}: error-level lines: {[m.group(0) for m in _ERROR_LINE.finditer(log)][:5]}"


def _learned(api: str) -> int:
    r = _get(f"{api}/models/default", headers={"Authorization": f"Bearer {TOKEN}"})
    return (r.json().get("examples_learned") or 0) if r is not None and r.status_code == 200 \
        else 0


def _worker_and_sidecar(svc: ServiceProcs, env: dict[str, str]) -> tuple[Any, Any, str]:
    """Start a worker and a sidecar with `env`; wait until the sidecar answers /health."""
    worker = svc.start_worker(env=env)
    port = free_port()
    api_url = f"http://127.0.0.1:{port}"
    api = svc.start("api", "--port", str(port), env=env, name="api")
    wait_for(lambda: _code(f"{api_url}/health") == 200
             if api.poll() is None else pytest.fail(svc.log_of(api)), 60, "sidecar up")
    return worker, api, api_url


@pytest.mark.parametrize("listener", ["sasl", "tls"])
def test_worker_sidecar_and_cli_through_a_secured_listener(secure_service: Any,
                                                           listener: str) -> None:
    svc: ServiceProcs = secure_service(listener)
    env = {"STREAMSVC_WORKER__STATUS_INTERVAL": "1.0",
           "STREAMSVC_WORKER__SNAPSHOT_KEY": SNAPSHOT_KEY, "STREAMSVC_API__TOKEN": TOKEN}
    worker, api, api_url = _worker_and_sidecar(svc, env)

    cli_env = {**svc.env, **env}
    r = cli("produce", "--synthetic", "sea-abrupt", "--count", "400", env=cli_env)
    assert r.returncode == 0, r.stderr
    assert "sent 400 records" in r.stderr
    r = cli("tail", svc.topics["predictions"], "--from-beginning", "--max", "400",
            "--timeout", "60", env=cli_env)
    assert r.returncode == 0, r.stderr
    preds = [json.loads(line) for line in r.stdout.splitlines()]
    run = preds[0]["id"].rsplit("-", 2)[1]  # this produce run's tag (see synthetic_examples)
    assert len(preds) == 400 and {p["id"] for p in preds} == \
        {f"sea-abrupt-42-{run}-{i}" for i in range(400)}

    # the sidecar read the workers' status through the same secured listener
    wait_for(lambda: _learned(api_url) >= 400 or (worker.poll() is not None
             and pytest.fail(svc.log_of(worker))), 60, "/models/default: 400 learned")
    ready = _get(f"{api_url}/ready")
    assert ready is not None and ready.status_code == 200, ready and ready.text

    # the token: required everywhere but /health, /ready and the dashboard page
    for path in ("/models", "/models/default", "/metrics", "/alerts", "/workers"):
        r0 = _get(f"{api_url}{path}")
        assert r0 is not None and r0.status_code == 401, (path, r0)
        assert r0.headers["www-authenticate"].startswith("Bearer")
        assert "Authorization: Bearer" in r0.json()["detail"]
        bad = _get(f"{api_url}{path}", headers={"Authorization": "Bearer wrong-token"})
        assert bad is not None and bad.status_code == 401 and "wrong" in bad.json()["detail"]
    metrics = _get(f"{api_url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert metrics is not None and "streamsvc_snapshots_refused" in metrics.text

    # Faust's own control group came in through the secured listener too
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": svc.bootstrap,
                         **svc.broker.client_security(listener).librdkafka()})
    groups = {g.group_id for g in admin.list_consumer_groups().result(timeout=20).valid}
    assert f"streamsvc-{svc.ns}-control" in groups and f"streamsvc-{svc.ns}" in groups, groups

    password = svc.broker.client_security().password
    for proc, what in ((worker, "worker"), (api, "sidecar")):
        assert svc.stop(proc) in (0, -15), svc.log_of(proc)
        log = _full_log(svc, proc)
        assert password not in log and TOKEN not in log and SNAPSHOT_KEY not in log
        # a normal run (start, 400 records, 401s to token-less clients, clean stop) logs
        # no traceback and nothing at error level
        _assert_clean(log, what)
        assert "is not set" not in log, log  # key and token given: nothing to warn about


def test_without_key_or_token_each_warns_once_at_start(secure_service: Any) -> None:
    """No snapshot key: the worker says so once, at start (not per snapshot written or
    restored), and restores its own unsigned snapshots; no API token: the sidecar says once
    that it is open. Nothing else in their logs is an error."""
    svc: ServiceProcs = secure_service("sasl")
    env = {"STREAMSVC_WORKER__STATUS_INTERVAL": "1.0"}
    assert not any(k in svc.env for k in ("STREAMSVC_WORKER__SNAPSHOT_KEY",
                                          "STREAMSVC_API__TOKEN"))
    worker, api, api_url = _worker_and_sidecar(svc, env)
    r = cli("produce", "--synthetic", "sea-abrupt", "--count", "200", env={**svc.env, **env})
    assert r.returncode == 0, r.stderr
    wait_for(lambda: _learned(api_url) >= 200, 60, "/models/default: 200 learned")
    assert _code(f"{api_url}/models") == 200  # no token: open, as the warning said
    assert svc.stop(worker) in (0, -15)  # a clean stop writes (unsigned) snapshots
    again = svc.start_worker(env=env)
    wait_for(lambda: "restored records[" in _full_log(svc, again), 60, "snapshots restored")
    assert svc.stop(again) in (0, -15)
    assert svc.stop(api) in (0, -15)

    warning = "worker.snapshot_key is not set"
    for proc in (worker, again):
        log = _full_log(svc, proc)
        assert log.count(warning) == 1, log
        line = next(ln for ln in log.splitlines() if warning in ln)
        assert "WARNING" in line and "STREAMSVC_WORKER__SNAPSHOT_KEY" in line, line
        assert "refusing checkpoint" not in log
        _assert_clean(log, "worker without a snapshot key")
    log = _full_log(svc, again)
    assert log.index(warning) < log.index("restored records[")  # at start, before any restore
    log = _full_log(svc, api)
    assert log.count("api.token is not set") == 1, log
    _assert_clean(log, "sidecar without a token")


def _fails_fast(args: list[str], env: dict[str, str], words: list[str], broker: str
                ) -> str:
    t0 = time.monotonic()
    r = cli(*args, env=env, timeout=60)
    took = time.monotonic() - t0
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    assert took < 25, took
    assert "Traceback" not in r.stderr, r.stderr
    last = r.stderr.strip().splitlines()[-1]
    assert broker in last, last
    for w in words:
        assert w in last, (w, last)
    return last


def _every_command() -> list[list[str]]:
    """Every command that connects to Kafka: worker, produce, tail and the sidecar."""
    return [["worker"], ["produce", "--synthetic", "sea-abrupt", "--count", "10"],
            ["tail", "predictions", "--max", "1"], ["api", "--port", str(free_port())]]


def test_wrong_password_is_a_clear_error_at_start(secure_service: Any) -> None:
    svc: ServiceProcs = secure_service("sasl")
    env = {**svc.env, "STREAMSVC_KAFKA__SASL_PASSWORD_FILE": "",
           "STREAMSVC_KAFKA__SASL_PASSWORD": "not-the-password"}
    words = ["refused the SCRAM-SHA-512 login", "wrong username or password"]
    for args in _every_command():
        last = _fails_fast(args, env, words, svc.bootstrap)
        assert "not-the-password" not in last


def test_untrusted_broker_certificate_is_a_clear_error(secure_service: Any) -> None:
    svc: ServiceProcs = secure_service("sasl")
    rogue = str(svc.broker.pki["rogue_ca"])
    env = {**svc.env, "STREAMSVC_KAFKA__SSL_CAFILE": rogue}
    for args in _every_command():
        _fails_fast(args, env, ["is not trusted", rogue], svc.bootstrap)


def test_mtls_without_a_client_certificate_is_a_clear_error(secure_service: Any) -> None:
    svc: ServiceProcs = secure_service("tls")
    env = {k: v for k, v in svc.env.items()
           if k not in ("STREAMSVC_KAFKA__SSL_CERTFILE", "STREAMSVC_KAFKA__SSL_KEYFILE")}
    for args in _every_command():
        _fails_fast(args, env, ["client certificate"], svc.bootstrap)


def test_plaintext_client_on_a_tls_listener_names_the_protocol(secure_service: Any) -> None:
    svc: ServiceProcs = secure_service("sasl")
    env = {k: v for k, v in svc.env.items() if not k.startswith("STREAMSVC_KAFKA__")}
    _fails_fast(["worker"], env, ["security_protocol (PLAINTEXT)"], svc.bootstrap)


# -- signed snapshots ---------------------------------------------------------------------------
class _Payload:
    """Unpickling this creates the marker file: proof that a snapshot was executed."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (str(self.marker), "w"))


def _forge(svc: ServiceProcs, marker: Path, settings: Any) -> int:
    """Write a forged snapshot (sound manifest and checksum, no or a wrong signature) for
    every records partition straight into the checkpoints topic; return how many."""
    from kafka import KafkaProducer

    from streamsvc.app import topic_specs
    from streamsvc.checkpoints import ensure_topics

    ensure_topics(svc.bootstrap, topic_specs(settings), svc.client_kwargs)
    blob = pickle.dumps(_Payload(marker))
    prod = KafkaProducer(bootstrap_servers=svc.bootstrap, **svc.client_kwargs)
    n = settings.partitions
    for p in range(n):
        key = f"{settings.app_id}/records-{p}"
        manifest = {"gen": "forged", "chunks": 1, "size": len(blob),
                    "sha256": hashlib.sha256(blob).hexdigest(), "meta": {}}
        if p % 2:
            manifest["hmac"] = "0" * 64  # signed, but not with our key
        prod.send(svc.topics["checkpoints"], key=f"{key}@forged#0".encode(), value=blob)
        prod.send(svc.topics["checkpoints"], key=key.encode(),
                  value=json.dumps(manifest).encode())
    prod.flush()
    prod.close()
    return n


def _worker_status(svc: ServiceProcs, proc: subprocess.Popen) -> dict[str, Any]:
    """The latest status record of the worker process `proc` (worker id: host-pid)."""
    wid = f"{socket.gethostname()}-{proc.pid}"
    reader = TopicReader(svc.bootstrap, svc.topics["model_status"], **svc.client_kwargs)

    def mine() -> list[dict[str, Any]]:
        return [m for m in reader.poll() if isinstance(m, dict) and m.get("worker") == wid
                and "counters" in m]
    try:
        return wait_for(mine, 30, f"status of worker {wid}")[-1]
    finally:
        reader.close()


def test_forged_snapshot_is_refused_not_executed(secure_service: Any, tmp_path: Path) -> None:
    from streamsvc.api import prometheus_text
    from streamsvc.config import load_settings
    from streamsvc.status import StatusView

    svc: ServiceProcs = secure_service("sasl")
    settings = load_settings(None, svc.env)
    marker = tmp_path / "forged-snapshot-ran"
    n = _forge(svc, marker, settings)
    assert not marker.exists()

    env = {"STREAMSVC_WORKER__STATUS_INTERVAL": "1.0",
           "STREAMSVC_WORKER__SNAPSHOT_KEY": SNAPSHOT_KEY}
    worker = svc.start_worker(env=env)
    status = _worker_status(svc, worker)
    assert not marker.exists(), "the worker unpickled a forged snapshot"
    assert status["counters"]["snapshots_refused"] == n, status["counters"]
    log = svc.log_of(worker)
    assert log.count("refusing checkpoint") == n, log
    assert "is not signed" in log and "signature does not match" in log
    # the refusal reaches /metrics through the sidecar's collector
    view = StatusView({})
    view.on_status(f"worker:{status['worker']}", status)
    assert f'streamsvc_snapshots_refused_total{{worker="{status["worker"]}"}} {n}.0' \
        in prometheus_text(view)

    # the worker goes on: learns from scratch, writes signed snapshots on a clean stop...
    r = cli("produce", "--synthetic", "sea-abrupt", "--count", "300",
            env={**svc.env, **env})
    assert r.returncode == 0, r.stderr
    preds = TopicReader(svc.bootstrap, svc.topics["predictions"], **svc.client_kwargs)
    try:
        wait_for(lambda: len({p["id"] for p in preds.poll()}) >= 300, 90, "300 predictions")
    finally:
        preds.close()
    assert svc.stop(worker) in (0, -15)
    # ...which a worker with the same key restores, and one with another key refuses
    worker = svc.start_worker(env=env)
    again = _worker_status(svc, worker)
    restored = svc.log_of(worker).count("restored records[")
    svc.stop(worker)
    # partitions that got records now hold our signed snapshot; the others still hold the
    # forgery (nothing to snapshot there), refused again, never run
    assert 1 <= restored < n
    assert again["counters"]["snapshots_refused"] == n - restored, again["counters"]
    other = svc.start_worker(env={**env, "STREAMSVC_WORKER__SNAPSHOT_KEY": "x" * 32})
    wait_for(lambda: "signature does not match" in svc.log_of(other), 30, "refusal logged")
    assert "restored records[" not in svc.log_of(other)
    svc.stop(other)
    assert not marker.exists()
    assert os.environ.get("STREAMSVC_WORKER__SNAPSHOT_KEY") is None  # no leak into this process


def test_sidecar_serves_https_with_the_token(secure_service: Any) -> None:
    """`streamsvc api --ssl-certfile/--ssl-keyfile`: uvicorn serves TLS; the token still holds."""
    svc: ServiceProcs = secure_service("sasl")
    pki = svc.broker.pki
    port = free_port()
    api = svc.start("api", "--port", str(port), "--ssl-certfile", str(pki["ca"].parent /
                    "broker.pem"), "--ssl-keyfile", str(pki["ca"].parent / "broker.key"),
                    env={"STREAMSVC_API__TOKEN": TOKEN}, name="api-https")
    url = f"https://127.0.0.1:{port}"
    trust, rogue = (ssl.create_default_context(cafile=str(pki[k])) for k in ("ca", "rogue_ca"))

    def up() -> bool:
        if api.poll() is not None:
            pytest.fail(svc.log_of(api))
        try:
            return httpx.get(f"{url}/health", verify=trust, timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(up, 60, "https sidecar up")
    assert httpx.get(f"{url}/models", verify=trust, timeout=5).status_code == 401
    assert httpx.get(f"{url}/models", verify=trust, timeout=5,
                     headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    with pytest.raises(httpx.HTTPError):  # a client that does not trust the CA is refused
        httpx.get(f"{url}/health", verify=rogue, timeout=5)
    svc.stop(api)
