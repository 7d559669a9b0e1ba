"""docker-compose.yml and the Kubernetes manifests cannot silently rot: there is no Docker
engine here, so we run each of *our* services' commands with their environment against the
test broker, and check that every manifest's command line parses."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import yaml

from streamsvc.cli import build_parser
from streamsvc.config import load_settings
from streamsvc.devbroker import free_port
from tests.conftest import ROOT, ServiceProcs, wait_for

COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
OURS = {name: s for name, s in COMPOSE["services"].items() if "build" in s}


def _env(service: dict) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(e.split("=", 1) for e in env)
    return {k: str(v) for k, v in env.items()}


def test_compose_declares_kafka_39_and_our_services() -> None:
    kafka = COMPOSE["services"]["kafka"]
    assert kafka["image"].startswith("apache/kafka:3.9")
    assert kafka["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"  # KRaft
    assert set(OURS) == {"worker", "api"}
    for name, s in OURS.items():
        dockerfile = ROOT / s["build"]["context"] / s["build"]["dockerfile"]
        assert dockerfile.is_file(), f"{name}: {dockerfile} missing"
        assert 'ENTRYPOINT ["streamsvc"]' in dockerfile.read_text()
        assert "container_name" not in s or name != "worker", "worker must stay scalable"
    assert "ports" not in OURS["worker"], "fixed host ports would break --scale worker=N"


@pytest.mark.parametrize("name", sorted(OURS))
def test_compose_commands_parse_and_config_loads(name: str) -> None:
    s = OURS[name]
    args = build_parser().parse_args(s["command"])
    assert args.command in {"worker", "api"}
    settings = load_settings(None, _env(s))
    assert settings.bootstrap == "kafka:19092"
    internal = COMPOSE["services"]["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"]
    assert f"//{settings.bootstrap}" in internal, "our services must use Kafka's internal listener"


def test_k8s_manifests_parse_and_commands_are_valid(tmp_path: Path) -> None:
    docs = list(yaml.safe_load_all((ROOT / "deploy/k8s/streamsvc.yaml").read_text()))
    config = next(d for d in docs if d["kind"] == "ConfigMap")["data"]["streamsvc.toml"]
    (tmp_path / "streamsvc.toml").write_text(config)
    deployments = [d for d in docs if d["kind"] == "Deployment"]
    assert {d["metadata"]["name"] for d in deployments} == {"streamsvc-worker", "streamsvc-api"}
    for d in deployments:
        c = d["spec"]["template"]["spec"]["containers"][0]
        args = [a.replace("/etc/streamsvc", str(tmp_path)) for a in c["args"]]
        parsed = build_parser().parse_args(args)
        settings = load_settings(parsed.config, {})
        assert "default" in settings.models


@pytest.mark.kafka
def test_compose_services_run_against_a_real_broker(service: ServiceProcs) -> None:
    """Run the worker and api exactly as compose would (command + environment), with only
    the broker address and the host port rewritten to this test's broker."""
    port = free_port()
    procs = {}
    for name, s in OURS.items():
        env = _env(s)
        env["STREAMSVC_BROKER"] = service.broker.url
        env = {k: v for k, v in env.items() if k != "STREAMSVC_LOG_LEVEL"}
        cmd = [str(port) if a == "8000" else a for a in s["command"]]
        if "--host" in cmd:
            cmd[cmd.index("--host") + 1] = "127.0.0.1"
        procs[name] = service.start(*cmd, env=env, name=f"compose-{name}")
    api = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        for name, p in procs.items():
            if p.poll() is not None:
                pytest.fail(f"compose service {name} exited:\n{service.log_of(p)}")
        try:
            return httpx.get(f"{api}/ready", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(ready, 120, "compose api ready with the compose worker reporting")
    body = httpx.get(f"{api}/ready", timeout=5).json()
    assert body["ready"] and body["workers"]
    models = httpx.get(f"{api}/models", timeout=5).json()
    assert [m["name"] for m in models] == ["default"]
    # the compose environment asked for 6 partitions: the worker created topics that way
    from kafka import KafkaConsumer

    c = KafkaConsumer(bootstrap_servers=service.broker.bootstrap)
    try:
        parts = c.partitions_for_topic(service.topics["events"])
    finally:
        c.close()
    assert parts is not None and len(parts) == int(_env(OURS["worker"])["STREAMSVC_PARTITIONS"])


def test_worker_liveness_probes_run_our_probe_command(tmp_path: Path) -> None:
    """The compose healthcheck and the k8s livenessProbe of the worker call `streamsvc
    worker-alive` with valid arguments (the image-wide `python -c "import sys"` could not fail)."""
    test = COMPOSE["services"]["worker"]["healthcheck"]["test"]
    assert test[:3] == ["CMD", "streamsvc", "worker-alive"]
    assert build_parser().parse_args(test[2:]).command == "worker-alive"
    docs = list(yaml.safe_load_all((ROOT / "deploy/k8s/streamsvc.yaml").read_text()))
    worker = next(d for d in docs if d.get("metadata", {}).get("name") == "streamsvc-worker")
    cmd = worker["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["exec"]["command"]
    assert cmd[:2] == ["streamsvc", "worker-alive"]
    assert build_parser().parse_args(cmd[1:]).command == "worker-alive"
    assert "import sys" not in (ROOT / "deploy/Dockerfile").read_text()


# the Kafka client libraries: pinned to the series the test suite runs against
PINNED = ("kafka-python", "faust-streaming", "aiokafka", "confluent-kafka")


def test_kafka_clients_are_pinned_and_installed_inside_their_ranges() -> None:
    """Every Kafka client library has a bounded range in pyproject.toml, and the versions this
    suite runs with (the Kafka tests exercise them) are inside those ranges: the declared
    range is the tested one, and a release outside it is not picked up unnoticed."""
    import tomllib
    from importlib.metadata import version

    from packaging.requirements import Requirement

    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    reqs = {r.name: r for r in map(Requirement, deps)}
    for name in PINNED:
        assert name in reqs, f"{name} is not declared in pyproject.toml"
        spec = reqs[name].specifier
        assert any(s.operator == "<" for s in spec) and any(s.operator == ">=" for s in spec), \
            f"{name}: {spec} is not a bounded range"
        installed = version(name)
        assert spec.contains(installed, prereleases=True), \
            f"{name} {installed} is installed but pyproject.toml declares {spec}"
    # the series, not just any bound: a new major (minor, before 1.0) is a new test run
    for name, below in (("kafka-python", "3.1"), ("faust-streaming", "0.16"),
                        ("aiokafka", "0.15")):
        assert not reqs[name].specifier.contains(below), (name, reqs[name].specifier)
