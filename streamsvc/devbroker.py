"""A real single-node Apache Kafka (KRaft) broker for development and tests, without Docker.

Why not Docker or a fake: the machines this project is developed and tested on have Java and
Maven but no container engine, and the service must be tested against the real broker. Maven
fetches the broker jars once into a git-ignored cache; each broker gets fresh KRaft storage
(formatted before the first start, as KRaft requires) on free loopback ports.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import logging
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

KAFKA_VERSION = "3.9.1"
_HERE = Path(__file__).resolve().parent
_POM = _HERE / "kafka" / "pom.xml"
_LOG4J = _HERE / "kafka" / "log4j.properties"


class BrokerError(RuntimeError):
    """The development broker could not be fetched, started or reached."""


def default_cache_dir() -> Path:
    """Where the broker jars live: `$STREAMSVC_KAFKA_HOME`, else `.kafka/` in a source checkout,
    else the user cache."""
    env = os.environ.get("STREAMSVC_KAFKA_HOME")
    if env:
        return Path(env).expanduser().resolve()
    root = _HERE.parent
    if (root / "pyproject.toml").exists() and os.access(root, os.W_OK):
        return root / ".kafka"
    return Path.home() / ".cache" / "streamsvc" / "kafka"


def jars_ready(cache_dir: Path | None = None) -> bool:
    """Whether the broker jars are already fetched (starting needs no Maven run)."""
    return ((cache_dir or default_cache_dir()) / f"libs-{KAFKA_VERSION}" / ".complete").exists()


def ensure_jars(cache_dir: Path | None = None, quiet: bool = True) -> Path:
    """Fetch the broker jars with Maven (once) and return the folder that holds them."""
    cache_dir = cache_dir or default_cache_dir()
    libs = cache_dir / f"libs-{KAFKA_VERSION}"
    marker = libs / ".complete"
    if marker.exists():
        return libs
    cache_dir.mkdir(parents=True, exist_ok=True)
    mvn = shutil.which("mvn")
    if mvn is None:
        raise BrokerError(
            "Maven ('mvn') is not on PATH; it is needed once to fetch the Kafka broker jars. "
            "Install Maven and Java 17+, or point STREAMSVC_KAFKA_HOME at a folder that already "
            f"holds libs-{KAFKA_VERSION}/ with the jars."
        )
    if shutil.which("java") is None:
        raise BrokerError("Java ('java') is not on PATH; the Kafka broker needs Java 17+.")
    with open(cache_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two test sessions must not fetch into one folder
        if marker.exists():
            return libs
        tmp = Path(tempfile.mkdtemp(prefix="libs-", dir=cache_dir))
        log.info("fetching Apache Kafka %s jars with Maven into %s", KAFKA_VERSION, libs)
        cmd = [
            mvn, "-B", "-f", str(_POM), "dependency:copy-dependencies",
            f"-DoutputDirectory={tmp}", f"-Dkafka.version={KAFKA_VERSION}",
        ]
        if quiet:
            cmd.insert(2, "-q")
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0 or not any(tmp.glob("kafka_2.13-*.jar")):
            shutil.rmtree(tmp, ignore_errors=True)
            raise BrokerError(
                "Maven could not fetch the Kafka jars (is Maven Central reachable?):\n"
                + (proc.stdout + proc.stderr)[-3000:]
            )
        shutil.rmtree(libs, ignore_errors=True)
        tmp.rename(libs)
        marker.touch()
    return libs


def free_port() -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# what both brokers share: one node, small test topics, no waiting for a group
_COMMON_PROPERTIES = """\
log.dirs={logdir}
num.partitions={partitions}
auto.create.topics.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
log.cleaner.min.compaction.lag.ms=0
log.retention.hours=168
"""

_PROPERTIES = """\
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:{cport}
listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{cport}
advertised.listeners=PLAINTEXT://127.0.0.1:{port}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
""" + _COMMON_PROPERTIES

# A broker with only secured listeners: SASL_SSL (SCRAM-SHA-512) for clients with a password,
# TLS with required client certificates (mTLS) for clients with a certificate and for the
# broker's own connections; the controller listener is TLS too. No PLAINTEXT anywhere.
_SECURE_PROPERTIES = """\
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:{cport}
listeners=SASL://127.0.0.1:{port},TLS://127.0.0.1:{tls_port},CONTROLLER://127.0.0.1:{cport}
advertised.listeners=SASL://127.0.0.1:{port},TLS://127.0.0.1:{tls_port}
controller.listener.names=CONTROLLER
inter.broker.listener.name=TLS
listener.security.protocol.map=CONTROLLER:SSL,SASL:SASL_SSL,TLS:SSL
sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.sasl.scram-sha-512.sasl.jaas.config=\
org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.tls.ssl.client.auth=required
ssl.keystore.type=PKCS12
ssl.keystore.location={keystore}
ssl.keystore.password={store_password}
ssl.truststore.type=PEM
ssl.truststore.location={truststore}
""" + _COMMON_PROPERTIES


def _openssl(*args: str, cwd: Path) -> None:
    proc = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise BrokerError(f"openssl {args[0]} failed: {proc.stderr.strip()[-2000:]}")


def make_pki(folder: Path | str, store_password: str = "streamsvc-test") -> dict[str, Path]:
    """A throw-away PKI made with openssl: a CA, a broker certificate for 127.0.0.1/localhost
    (PEM and a PKCS12 keystore for Java), a client certificate for mTLS and a second, unrelated
    CA (a client that trusts only it must refuse the broker).

    Returns paths by name: ca, rogue_ca, broker_p12, client_cert, client_key."""
    if shutil.which("openssl") is None:
        raise BrokerError("'openssl' is not on PATH; it makes the test certificates")
    d = Path(folder)
    d.mkdir(parents=True, exist_ok=True)
    for ca in ("ca", "rogue-ca"):
        _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{ca}.key",
                 "-out", f"{ca}.pem", "-days", "3", "-subj", f"/CN=streamsvc {ca}",
                 "-addext", "basicConstraints=critical,CA:TRUE",
                 "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)
    leaves = {"broker": ("localhost", "serverAuth,clientAuth"),
              "client": ("streamsvc-client", "clientAuth")}
    for name, (cn, usage) in leaves.items():
        (d / f"{name}.ext").write_text(
            "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n"
            f"extendedKeyUsage={usage}\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n")
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key",
                 "-out", f"{name}.csr", "-subj", f"/CN={cn}", cwd=d)
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                 "-CAcreateserial", "-out", f"{name}.pem", "-days", "3",
                 "-extfile", f"{name}.ext", cwd=d)
    _openssl("pkcs12", "-export", "-in", "broker.pem", "-inkey", "broker.key", "-certfile",
             "ca.pem", "-name", "broker", "-out", "broker.p12",
             "-passout", f"pass:{store_password}", cwd=d)
    return {"ca": d / "ca.pem", "rogue_ca": d / "rogue-ca.pem", "broker_p12": d / "broker.p12",
            "client_cert": d / "client.pem", "client_key": d / "client.key"}


class KafkaBroker:
    """One KRaft broker+controller process on loopback.

    >>> with KafkaBroker() as broker:          # doctest: +SKIP
    ...     print(broker.bootstrap)            # 127.0.0.1:PORT
    """

    def __init__(
        self,
        port: int | None = None,
        data_dir: Path | str | None = None,
        partitions: int = 1,
        cache_dir: Path | None = None,
        heap: str = "768m",
        startup_timeout: float = 90.0,
        scram_users: dict[str, str] | None = None,
    ) -> None:
        """`scram_users` ({name: password}) makes a secured broker: `port` speaks SASL_SSL
        (SCRAM-SHA-512, these users), `tls_port` TLS with required client certificates, with
        certificates made by `make_pki` in `data_dir/pki` (`self.pki`)."""
        self.port = port or free_port()
        self.scram_users = dict(scram_users or {})
        self.tls_port = free_port() if self.scram_users else None
        self.pki: dict[str, Path] = {}
        self.controller_port = free_port()
        self._own_dir = data_dir is None
        self.data_dir = Path(data_dir) if data_dir else Path(tempfile.mkdtemp(prefix="kafka-"))
        self.partitions = partitions
        self.cache_dir = cache_dir
        self.heap = heap
        self.startup_timeout = startup_timeout
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """The broker URL in Faust's form."""
        return f"kafka://{self.bootstrap}"

    def client_security(self, listener: str = "sasl") -> Any:
        """`KafkaSecurity` for a client of a secured broker: "sasl" (the first SCRAM user) or
        "tls" (the client certificate)."""
        from streamsvc.security import KafkaSecurity

        if not self.scram_users:
            return KafkaSecurity()
        if listener == "tls":
            return KafkaSecurity(protocol="SSL", ssl_cafile=str(self.pki["ca"]),
                                 ssl_certfile=str(self.pki["client_cert"]),
                                 ssl_keyfile=str(self.pki["client_key"]))
        user, password = next(iter(self.scram_users.items()))
        return KafkaSecurity(protocol="SASL_SSL", sasl_mechanism="SCRAM-SHA-512", username=user,
                             password=password, ssl_cafile=str(self.pki["ca"]))

    @property
    def tls_bootstrap(self) -> str:
        return f"127.0.0.1:{self.tls_port}"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "broker.log"

    def _java(self, libs: Path, main: str, *args: str) -> list[str]:
        return [
            # the JVM settings Kafka's own start scripts use (kafka-server-start.sh and
            # kafka-run-class.sh): a fixed heap and G1 aiming at 20 ms pauses. With a heap
            # growing from 128 MB and G1's default 200 ms goal, young collections of 15-40 ms
            # under load showed in every produce -> prediction latency measured here
            "java", f"-Xmx{self.heap}", f"-Xms{self.heap}", "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20", "-XX:InitiatingHeapOccupancyPercent=35",
            "-XX:+ExplicitGCInvokesConcurrent",
            f"-Dlog4j.configuration=file:{_LOG4J}",
            "-cp", f"{libs}/*", main, *args,
        ]

    def start(self) -> KafkaBroker:
        libs = ensure_jars(self.cache_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        logdir = self.data_dir / "data"
        props = self.data_dir / "server.properties"
        scram: list[str] = []
        if self.scram_users:
            store_password = "streamsvc-test"
            pki_dir = self.data_dir / "pki"
            self.pki = make_pki(pki_dir, store_password) if not (pki_dir / "ca.pem").exists() \
                else {"ca": pki_dir / "ca.pem", "rogue_ca": pki_dir / "rogue-ca.pem",
                      "broker_p12": pki_dir / "broker.p12", "client_cert": pki_dir / "client.pem",
                      "client_key": pki_dir / "client.key"}
            props.write_text(_SECURE_PROPERTIES.format(
                port=self.port, tls_port=self.tls_port, cport=self.controller_port,
                logdir=logdir, partitions=self.partitions, keystore=self.pki["broker_p12"],
                store_password=store_password, truststore=self.pki["ca"]))
            for user, password in self.scram_users.items():  # users exist from the first start
                scram += ["--add-scram", f"SCRAM-SHA-512=[name={user},password={password}]"]
        else:
            props.write_text(
                _PROPERTIES.format(
                    port=self.port, cport=self.controller_port, logdir=logdir,
                    partitions=self.partitions,
                )
            )
        if not (logdir / "meta.properties").exists():
            # `--cluster-id=<id>`: a random id may start with '-' and read as an option
            cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
            fmt = subprocess.run(
                self._java(libs, "kafka.tools.StorageTool", "format", f"--cluster-id={cluster_id}",
                           "-c", str(props), "--ignore-formatted", *scram),
                capture_output=True, text=True,
            )
            if fmt.returncode != 0:
                raise BrokerError(f"formatting KRaft storage failed:\n{fmt.stdout}{fmt.stderr}")
        out = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            self._java(libs, "kafka.Kafka", str(props)),
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
        out.close()
        try:
            self.wait_ready(self.startup_timeout)
        except BaseException:
            self.stop()
            raise
        log.info("Kafka %s ready at %s (data in %s)", KAFKA_VERSION, self.bootstrap, self.data_dir)
        return self

    def wait_ready(self, timeout: float) -> None:
        """Block until a client can fetch cluster metadata from the broker."""
        from kafka import KafkaAdminClient

        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise BrokerError(
                    f"Kafka exited with code {self.proc.returncode}; last log lines:\n"
                    + self.tail_log()
                )
            try:
                # cheap TCP probe first: kafka-python backs off for long on refused connections
                with socket.create_connection(("127.0.0.1", self.port), timeout=1.0):
                    pass
            except OSError as exc:
                last = exc
                time.sleep(0.3)
                continue
            try:
                admin = KafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=3000,
                                         **self.client_security().kafka_python())
                try:
                    admin.describe_cluster()
                finally:
                    admin.close()
                return
            except Exception as exc:  # noqa: BLE001 - any failure means "not yet"
                last = exc
                time.sleep(0.5)
        raise BrokerError(f"Kafka not ready after {timeout:.0f}s ({last!r}):\n{self.tail_log()}")

    def tail_log(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no broker log)"

    def stop(self, timeout: float = 20.0) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        if self._own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> KafkaBroker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
