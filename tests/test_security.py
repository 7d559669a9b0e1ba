"""Security settings without a broker: config checks, what each Kafka client library gets,
secrets kept out of reprs, the API token, snapshot signatures."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from streamsvc.api import create_api
from streamsvc.checkpoints import CheckpointStore
from streamsvc.config import ConfigError, load_settings
from streamsvc.security import KafkaSecurity, explain
from streamsvc.status import StatusView

TOKEN = "0123456789abcdef-token"


def _sasl_env(**more: str) -> dict[str, str]:
    return {"STREAMSVC_KAFKA__SECURITY_PROTOCOL": "SASL_SSL",
            "STREAMSVC_KAFKA__SASL_MECHANISM": "SCRAM-SHA-512",
            "STREAMSVC_KAFKA__SASL_USERNAME": "alice",
            "STREAMSVC_KAFKA__SASL_PASSWORD": "pw-from-env", **more}


def test_defaults_are_plaintext_and_open() -> None:
    s = load_settings(None, {})
    assert s.security == KafkaSecurity()
    assert s.security.librdkafka() == {"security.protocol": "plaintext"}
    assert s.security.kafka_python() == {"security_protocol": "PLAINTEXT"}
    assert s.security.faust_credentials() is None
    assert s.api_token == "" and s.snapshot_key == b""
    assert "token" not in s.api and "snapshot_key" not in s.worker


def test_sasl_ssl_translates_for_every_client(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    s = load_settings(None, _sasl_env(STREAMSVC_KAFKA__SSL_CAFILE=str(ca)))
    assert s.security.librdkafka() == {
        "security.protocol": "sasl_ssl", "sasl.mechanisms": "SCRAM-SHA-512",
        "sasl.username": "alice", "sasl.password": "pw-from-env", "ssl.ca.location": str(ca),
        "ssl.endpoint.identification.algorithm": "https"}
    assert s.security.kafka_python() == {
        "security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "alice", "sasl_plain_password": "pw-from-env",
        "ssl_check_hostname": True, "ssl_cafile": str(ca)}


def test_mtls_keys_from_a_toml_file(tmp_path: Path) -> None:
    for f in ("ca.pem", "client.pem", "client.key"):
        (tmp_path / f).write_text("x")
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[kafka]\nsecurity_protocol = "SSL"\nssl_cafile = "{tmp_path}/ca.pem"\n'
                   f'ssl_certfile = "{tmp_path}/client.pem"\n'
                   f'ssl_keyfile = "{tmp_path}/client.key"\nssl_check_hostname = false\n')
    sec = load_settings(cfg, {}).security
    assert sec.librdkafka()["ssl.certificate.location"] == f"{tmp_path}/client.pem"
    assert sec.librdkafka()["ssl.key.location"] == f"{tmp_path}/client.key"
    assert sec.librdkafka()["ssl.endpoint.identification.algorithm"] == "none"
    assert sec.kafka_python()["ssl_keyfile"] == f"{tmp_path}/client.key"
    assert sec.kafka_python()["ssl_check_hostname"] is False


def test_password_file_and_secrets_never_in_repr(tmp_path: Path) -> None:
    pw = tmp_path / "pw"
    pw.write_text("pw-from-file\n")
    key = tmp_path / "key"
    key.write_text("k" * 40)
    env = _sasl_env(STREAMSVC_KAFKA__SASL_PASSWORD="",
                    STREAMSVC_KAFKA__SASL_PASSWORD_FILE=str(pw),
                    STREAMSVC_API__TOKEN=TOKEN, STREAMSVC_WORKER__SNAPSHOT_KEY_FILE=str(key))
    s = load_settings(None, env)
    assert s.security.password == "pw-from-file"  # the file's trailing newline is not in it
    assert s.snapshot_key == b"k" * 40 and s.api_token == TOKEN
    text = repr(s) + str(s) + repr(s.security) + s.security.describe() + json.dumps(s.api) \
        + json.dumps(s.worker)
    for secret in ("pw-from-file", TOKEN, "k" * 40):
        assert secret not in text
    assert "alice" in s.security.describe()


@pytest.mark.parametrize("env, words", [
    ({"STREAMSVC_KAFKA__SECURITY_PROTOCOL": "TLS"}, "kafka.security_protocol"),
    (_sasl_env(STREAMSVC_KAFKA__SASL_MECHANISM="GSSAPI"), "kafka.sasl_mechanism"),
    (_sasl_env(STREAMSVC_KAFKA__SASL_PASSWORD=""), "needs 'kafka.sasl_username' and a password"),
    ({"STREAMSVC_KAFKA__SASL_USERNAME": "bob"}, "set it to SASL_SSL"),
    (_sasl_env(STREAMSVC_KAFKA__SSL_CAFILE="/nope/ca.pem"), "kafka.ssl_cafile': no such file"),
    ({"STREAMSVC_KAFKA__SSL_CAFILE": "/etc/hostname"}, "TLS is only used with SSL"),
    (_sasl_env(STREAMSVC_KAFKA__SASL_PASSWORD_FILE="/nope/pw"), "both set"),
    (_sasl_env(STREAMSVC_KAFKA__SASL_PASSWORD="", STREAMSVC_KAFKA__SASL_PASSWORD_FILE="/no/pw"),
     "kafka.sasl_password_file': cannot read"),
    ({"STREAMSVC_API__TOKEN": "short"}, "'api.token' is too short"),
    ({"STREAMSVC_WORKER__SNAPSHOT_KEY": "short"}, "'worker.snapshot_key' is too short"),
    ({"STREAMSVC_WORKER__SNAPSHOT_KEY": "k" * 20, "STREAMSVC_WORKER__SNAPSHOT_KEY_FILE": "/x"},
     "both set"),
])
def test_wrong_security_config_names_the_key(env: dict[str, str], words: str) -> None:
    with pytest.raises(ConfigError, match=None) as err:
        load_settings(None, env)
    assert words in str(err.value)


def test_explain_names_broker_and_cause() -> None:
    sec = KafkaSecurity(protocol="SASL_SSL", sasl_mechanism="SCRAM-SHA-256", username="u",
                        password="p", ssl_cafile="/ca.pem")
    msg = explain("h:9093", sec, "SASL authentication error: Authentication failed during "
                  "authentication due to invalid credentials with SASL mechanism SCRAM-SHA-256")
    assert msg.startswith("Kafka at h:9093 refused the SCRAM-SHA-256 login of user 'u'")
    msg = explain("h:9093", sec, "SSL handshake failed: certificate verify failed")
    assert "not trusted" in msg and "/ca.pem" in msg
    assert "cannot reach Kafka at h:9093" in explain("h:9093", sec, "", reachable=False)


# -- API token ----------------------------------------------------------------------------------
def test_api_token_required_except_probes_and_page() -> None:
    view = StatusView({})
    view.embedded = True  # /ready answers 200 without Kafka
    client = TestClient(create_api(view, token=TOKEN))
    for path in ("/health", "/ready", "/"):
        assert client.get(path).status_code == 200, path
    for path in ("/models", "/models/x", "/alerts", "/workers", "/metrics", "/openapi.json",
                 "/docs", "/nope"):
        r = client.get(path)
        assert r.status_code == 401, path
        assert r.headers["www-authenticate"] == 'Bearer realm="streamsvc"'
        assert "needs the API token" in r.json()["detail"]
        r = client.get(path, headers={"Authorization": "Bearer " + TOKEN[:-1] + "X"})
        assert r.status_code == 401 and "invalid_token" in r.headers["www-authenticate"]
        assert "wrong API token" in r.json()["detail"]
        assert client.get(path, headers={"Authorization": "Basic " + TOKEN}).status_code == 401
    ok = {"Authorization": f"Bearer {TOKEN}"}
    assert client.get("/models", headers=ok).json() == []
    assert client.get("/models/x", headers=ok).status_code == 404
    assert client.get("/metrics", headers=ok).status_code == 200
    assert client.get("/models", headers={"authorization": f"bearer {TOKEN}"}).status_code == 200


def test_api_without_token_stays_open() -> None:
    client = TestClient(create_api(StatusView({})))
    assert client.get("/models").status_code == 200


def test_dashboard_sends_the_token() -> None:
    page = (Path(__file__).parents[1] / "streamsvc/static/dashboard.html").read_text()
    assert "sessionStorage" in page and '"Bearer " + t' in page and "#token=" in page


# -- snapshot signatures ------------------------------------------------------------------------
def test_snapshot_signature_binds_key_and_bytes() -> None:
    signed = CheckpointStore("127.0.0.1:1", "t", signing_key=b"s" * 32)
    blob = b"state"
    man = {"gen": "g", "chunks": 1, "sha256": hashlib.sha256(blob).hexdigest(),
           "hmac": signed.mac("app/records-0", blob)}
    assert signed.unverified("app/records-0", blob, man) is None
    assert "does not match" in signed.unverified("app/records-1", blob, man)  # other partition
    assert "does not match" in signed.unverified("app/records-0", blob + b"!", man)
    assert "not signed" in signed.unverified("app/records-0", blob, {**man, "hmac": None})
    other = CheckpointStore("127.0.0.1:1", "t", signing_key=b"o" * 32)
    assert "does not match" in other.unverified("app/records-0", blob, man)
    unsigned = CheckpointStore("127.0.0.1:1", "t")  # no key: accepted as before (warned)
    assert unsigned.unverified("app/records-0", blob, {}) is None


# -- deployment files ---------------------------------------------------------------------------
def test_compose_kafka_keeps_its_data_in_the_volume() -> None:
    import yaml

    root = Path(__file__).parents[1]
    kafka = yaml.safe_load((root / "docker-compose.yml").read_text())["services"]["kafka"]
    mounts = {v.split(":")[1]: v.split(":")[0] for v in kafka["volumes"]}
    # apache/kafka maps KAFKA_LOG_DIRS to log.dirs; without it Kafka writes to /tmp/kafka-logs
    assert kafka["environment"]["KAFKA_LOG_DIRS"] in mounts
    assert kafka["environment"]["CLUSTER_ID"]  # the formatted volume needs the same id again


@pytest.mark.parametrize("service", ["worker", "api"])
def test_compose_secure_override_gives_a_secured_service(service: str, tmp_path: Path) -> None:
    """deploy/compose.secure.yml, with its ${...} filled and its secret files in place, gives a
    worker/sidecar on SASL_SSL with signed snapshots (and the sidecar a token)."""
    import re

    import yaml

    root = Path(__file__).parents[1]
    doc = yaml.safe_load((root / "deploy/compose.secure.yml").read_text())
    env = {k: str(v) for k, v in doc["services"][service]["environment"].items()}
    values = {"STREAMSVC_BROKER": "kafka://kafka.example:9093", "STREAMSVC_KAFKA_USER": "svc"}
    env = {k: re.sub(r"\$\{(\w+):\?[^}]*\}", lambda m: values[m.group(1)], v)
           for k, v in env.items()}
    for name in doc["services"][service]["secrets"]:
        assert name in doc["secrets"] and doc["secrets"][name]["file"].startswith("./secrets/")
        (tmp_path / name).write_text("x" * 40 + "\n")
    env = {k: v.replace("/run/secrets/", f"{tmp_path}/") for k, v in env.items()}
    s = load_settings(None, env)
    assert s.bootstrap == "kafka.example:9093"
    assert s.security.protocol == "SASL_SSL" and s.security.password == "x" * 40
    assert s.snapshot_key == b"x" * 40
    assert bool(s.api_token) == (service == "api")


def test_unusable_tls_file_names_the_key(tmp_path: Path) -> None:
    """A CA or certificate file that is not PEM fails before any connection, naming the key."""
    from streamsvc.security import KafkaRefused, check_kafka

    bad = tmp_path / "bad.pem"
    bad.write_text("not a certificate\n")
    for sec, key in ((KafkaSecurity(protocol="SSL", ssl_cafile=str(bad)), "kafka.ssl_cafile"),
                     (KafkaSecurity(protocol="SSL", ssl_certfile=str(bad)),
                      "kafka.ssl_certfile")):
        with pytest.raises(KafkaRefused, match=f"cannot use {key} to connect to Kafka at h:1"):
            check_kafka("h:1", sec, timeout=2)


def test_readme_security_section_names_real_settings() -> None:
    """Every `STREAMSVC_*` variable and `[kafka]` key the README's Security section tells a
    user to set is one the service reads (a typo there is a setting silently ignored)."""
    import re
    import tomllib

    root = Path(__file__).parents[1]
    readme = (root / "README.md").read_text()
    section = readme[readme.index("\n## Security\n"):]
    section = section[:section.index("\n## ", 1)]
    defaults = tomllib.loads((root / "streamsvc/default.toml").read_text())
    names = set(re.findall(r"STREAMSVC_[A-Z0-9_]*[A-Z0-9](?![A-Z0-9_*])", section))
    assert {"STREAMSVC_KAFKA__SASL_PASSWORD_FILE", "STREAMSVC_API__TOKEN",
            "STREAMSVC_WORKER__SNAPSHOT_KEY", "STREAMSVC_WORKER__HEARTBEAT_FILE"} <= names
    aliases = {"STREAMSVC_BROKER", "STREAMSVC_APP_ID", "STREAMSVC_PARTITIONS"}
    for var in sorted(names - aliases):
        section_name, _, key = var[len("STREAMSVC_"):].lower().partition("__")
        assert key in defaults.get(section_name, {}), f"README names {var}: no such setting"
        assert var.isupper()
    # the table's `[kafka]` keys, and the keys named in the text
    table_keys = re.findall(r"^\| `(\w+)`(?:, `(\w+)`)? \| `STREAMSVC_KAFKA__", section, re.M)
    assert len(table_keys) >= 7
    for pair in table_keys:
        for key in filter(None, pair):
            assert key in defaults["kafka"], key
    for sec, key in (("api", "token"), ("api", "token_file"), ("worker", "snapshot_key"),
                     ("worker", "snapshot_key_file"), ("worker", "heartbeat_file")):
        assert key in defaults[sec] and f"{key}`" in section, (sec, key)
