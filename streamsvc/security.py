"""Kafka security settings in one place, translated for each client library the service uses.

The worker talks to Kafka through three libraries (librdkafka for the hot path and the
snapshots, kafka-python for admin, the sidecar's feed and the CLI, aiokafka under Faust's
control group), each with its own spelling of the same settings. `KafkaSecurity` holds them
once, checked at load time, and hands each library its own dict, so no client can be left on
an open connection by mistake. `check_kafka` turns librdkafka's precise connection errors
(wrong password, untrusted certificate) into one plain sentence before any client hangs on
them: kafka-python only reports a timeout for both.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


class KafkaAccessError(ConnectionError):
    """Kafka cannot be used with these settings; the message says why in plain words."""


class KafkaRefused(KafkaAccessError):
    """Kafka answered but refused us (login, certificate, protocol): retrying cannot help."""


class KafkaUnreachable(KafkaAccessError):
    """No answer from Kafka in time: it may be down or still starting."""


@dataclass(frozen=True)
class KafkaSecurity:
    """How to authenticate to Kafka and encrypt the connection (PLAINTEXT: neither)."""

    protocol: str = "PLAINTEXT"
    sasl_mechanism: str = "PLAIN"
    username: str = ""
    password: str = field(default="", repr=False)  # never in a repr, log or status
    ssl_cafile: str = ""
    ssl_certfile: str = ""
    ssl_keyfile: str = ""
    ssl_check_hostname: bool = True

    @property
    def uses_ssl(self) -> bool:
        return self.protocol in ("SSL", "SASL_SSL")

    @property
    def uses_sasl(self) -> bool:
        return self.protocol.startswith("SASL_")

    def describe(self) -> str:
        """A log-safe summary (no password)."""
        parts = [self.protocol]
        if self.uses_sasl:
            parts.append(f"{self.sasl_mechanism} user {self.username!r}")
        if self.ssl_certfile:
            parts.append("client certificate")
        return ", ".join(parts)

    def librdkafka(self) -> dict[str, Any]:
        """confluent-kafka / librdkafka properties."""
        out: dict[str, Any] = {"security.protocol": self.protocol.lower()}
        if self.uses_sasl:
            out.update({"sasl.mechanisms": self.sasl_mechanism, "sasl.username": self.username,
                        "sasl.password": self.password})
        if self.uses_ssl:
            if self.ssl_cafile:
                out["ssl.ca.location"] = self.ssl_cafile
            if self.ssl_certfile:
                out["ssl.certificate.location"] = self.ssl_certfile
                out["ssl.key.location"] = self.ssl_keyfile or self.ssl_certfile
            out["ssl.endpoint.identification.algorithm"] = \
                "https" if self.ssl_check_hostname else "none"
        return out

    def kafka_python(self) -> dict[str, Any]:
        """kafka-python client keyword arguments."""
        out: dict[str, Any] = {"security_protocol": self.protocol}
        if self.uses_sasl:
            out.update({"sasl_mechanism": self.sasl_mechanism,
                        "sasl_plain_username": self.username,
                        "sasl_plain_password": self.password})
        if self.uses_ssl:
            out["ssl_check_hostname"] = self.ssl_check_hostname
            if self.ssl_cafile:
                out["ssl_cafile"] = self.ssl_cafile
            if self.ssl_certfile:
                out["ssl_certfile"] = self.ssl_certfile
                out["ssl_keyfile"] = self.ssl_keyfile or self.ssl_certfile
        return out

    def ssl_context(self) -> Any:
        """An `ssl.SSLContext` for aiokafka (Faust); None without TLS."""
        import ssl

        if not self.uses_ssl:
            return None
        ctx = ssl.create_default_context(cafile=self.ssl_cafile or None)
        ctx.check_hostname = self.ssl_check_hostname
        if self.ssl_certfile:
            ctx.load_cert_chain(self.ssl_certfile, self.ssl_keyfile or None)
        return ctx

    def faust_credentials(self) -> Any:
        """`broker_credentials` for the Faust app (its control group connects too)."""
        import faust

        if self.uses_sasl:
            return faust.SASLCredentials(username=self.username, password=self.password,
                                         mechanism=self.sasl_mechanism,
                                         ssl_context=self.ssl_context())
        if self.uses_ssl:
            return faust.SSLCredentials(self.ssl_context())
        return None


def security_from_config(kafka: dict[str, Any], error: type[Exception]) -> KafkaSecurity:
    """Build and check the `[kafka]` security keys; `error(message naming the key)` if wrong."""
    protocol = kafka["security_protocol"].upper()
    if protocol not in PROTOCOLS:
        raise error(f"config key 'kafka.security_protocol' must be one of "
                    f"{', '.join(PROTOCOLS)}, got {kafka['security_protocol']!r}")
    mechanism = kafka["sasl_mechanism"].upper()
    if mechanism not in MECHANISMS:
        raise error(f"config key 'kafka.sasl_mechanism' must be one of {', '.join(MECHANISMS)}"
                    f", got {kafka['sasl_mechanism']!r}")
    password = kafka["sasl_password"]
    if kafka["sasl_password_file"]:
        if password:
            raise error("config keys 'kafka.sasl_password' and 'kafka.sasl_password_file' are "
                        "both set; keep one")
        password = read_secret_file(kafka["sasl_password_file"], "kafka.sasl_password_file",
                                    error)
    sec = KafkaSecurity(
        protocol=protocol, sasl_mechanism=mechanism, username=kafka["sasl_username"],
        password=password, ssl_cafile=kafka["ssl_cafile"], ssl_certfile=kafka["ssl_certfile"],
        ssl_keyfile=kafka["ssl_keyfile"], ssl_check_hostname=kafka["ssl_check_hostname"])
    if sec.uses_sasl and not (sec.username and sec.password):
        raise error(f"kafka.security_protocol = {protocol} needs 'kafka.sasl_username' and a "
                    "password ('kafka.sasl_password_file' or STREAMSVC_KAFKA__SASL_PASSWORD)")
    if not sec.uses_sasl and (sec.username or sec.password):
        raise error(f"'kafka.sasl_username'/password are set but kafka.security_protocol is "
                    f"{protocol}: set it to SASL_SSL (or SASL_PLAINTEXT) to use them")
    for key in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
        path = getattr(sec, key)
        if not path:
            continue
        if not sec.uses_ssl:
            raise error(f"config key 'kafka.{key}' is set but kafka.security_protocol is "
                        f"{protocol}: TLS is only used with SSL or SASL_SSL")
        if not Path(path).is_file():
            raise error(f"config key 'kafka.{key}': no such file {path!r}")
    if sec.ssl_keyfile and not sec.ssl_certfile:
        raise error("config key 'kafka.ssl_keyfile' needs 'kafka.ssl_certfile' (the client "
                    "certificate) too")
    return sec


def read_secret_file(path: str, key: str, error: type[Exception]) -> str:
    """The secret in a file (Docker/Kubernetes secrets), without its trailing newline."""
    try:
        value = Path(path).read_text().rstrip("\r\n")
    except OSError as exc:
        raise error(f"config key '{key}': cannot read {path!r} ({exc.strerror})") from None
    if not value:
        raise error(f"config key '{key}': the file {path!r} is empty")
    return value


# -- start-up check --------------------------------------------------------------------------
class _Lines(logging.Handler):
    """Keeps the check's librdkafka log lines: its verdict says what matters, once."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def check_kafka(bootstrap: str, security: KafkaSecurity, timeout: float = 15.0) -> None:
    """Fetch cluster metadata once; raise `KafkaAccessError` with the likely cause if Kafka
    refuses the login or the TLS handshake (at once), or cannot be reached (after `timeout`)."""
    quiet = logging.getLogger("streamsvc.kafka.check")
    quiet.propagate = False
    quiet.setLevel(logging.DEBUG)
    lines = _Lines()
    quiet.addHandler(lines)
    try:
        _check(bootstrap, security, timeout, quiet, lines.lines)
    finally:
        quiet.removeHandler(lines)


def _check(bootstrap: str, security: KafkaSecurity, timeout: float, quiet: logging.Logger,
           lines: list[str]) -> None:
    from confluent_kafka import KafkaError, KafkaException
    from confluent_kafka.admin import AdminClient

    errors: list[Any] = []
    try:
        admin = AdminClient({"bootstrap.servers": bootstrap, **security.librdkafka(),
                             "error_cb": errors.append, "logger": quiet,
                             "socket.connection.setup.timeout.ms": int(timeout * 1000)})
    except KafkaException as exc:  # a file librdkafka cannot use (not PEM, key mismatch...)
        detail = exc.args[0].str() if exc.args else str(exc)
        keys = {"ssl.ca.location": "kafka.ssl_cafile",
                "ssl.certificate.location": "kafka.ssl_certfile",
                "ssl.key.location": "kafka.ssl_keyfile"}
        key = next((k for prop, k in keys.items() if prop in detail), "the [kafka] settings")
        raise KafkaRefused(f"cannot use {key} to connect to Kafka at {bootstrap} "
                           f"(is it a PEM file of the right kind?) [{detail}]") from None
    fatal = {KafkaError._AUTHENTICATION, KafkaError._SSL, KafkaError.SASL_AUTHENTICATION_FAILED}
    deadline = time.monotonic() + timeout
    last = ""
    while True:
        try:
            admin.list_topics(timeout=1.0)
            return
        except KafkaException as exc:
            last = str(exc.args[0].str() if exc.args else exc)
        admin.poll(0)  # serves error_cb
        for e in errors:
            if e.code() in fatal or "SSL" in e.str() or "certificate" in e.str():
                raise KafkaRefused(explain(bootstrap, security, e.str()))
        if time.monotonic() > deadline:
            seen_all = lines + [e.str() for e in errors]
            hint = [x for x in seen_all if "security.protocol" in x
                    or ("Disconnected" in x and "APIVERSION_QUERY" in x)]
            if hint:
                raise KafkaRefused(explain(bootstrap, security, hint[-1]))
            from streamsvc.client import check_reachable

            check_reachable(bootstrap)  # nothing listens: the same sentence as `produce`'s
            seen = errors[-1].str() if errors else last
            raise KafkaUnreachable(explain(bootstrap, security, seen, reachable=False))


def explain(bootstrap: str, sec: KafkaSecurity, detail: str, reachable: bool = True) -> str:
    """One sentence: which broker, what failed, the likely cause, librdkafka's own words."""
    d = detail.lower()
    if "sasl" in d and ("authentication" in d or "credentials" in d):
        why = (f"Kafka at {bootstrap} refused the {sec.sasl_mechanism} login of user "
               f"{sec.username!r}: wrong username or password, or no {sec.sasl_mechanism} "
               "credentials for this user on the broker")
    elif "certificate verify failed" in d or "unable to get local issuer" in d \
            or "self-signed" in d or "self signed" in d:
        why = (f"the TLS certificate of Kafka at {bootstrap} is not trusted: it is not signed "
               f"by the CA in kafka.ssl_cafile ({sec.ssl_cafile or 'system CAs'})"
               + (", or it names another host" if sec.ssl_check_hostname else ""))
    elif "ssl" in d and ("handshake" in d or "alert" in d):
        why = (f"the TLS handshake with Kafka at {bootstrap} failed: the broker may require a "
               "client certificate (kafka.ssl_certfile/ssl_keyfile) signed by a CA it trusts, "
               "or speak another protocol")
    elif "security.protocol" in d or "apiversion" in d:
        why = (f"Kafka at {bootstrap} closed the connection at once: kafka.security_protocol "
               f"({sec.protocol}) is likely not what this listener speaks")
    elif not reachable:
        why = (f"cannot reach Kafka at {bootstrap} ({sec.protocol}): is the broker running and "
               "the address right? (try `streamsvc dev-broker`, or set STREAMSVC_BROKER)")
    else:
        why = f"Kafka at {bootstrap} cannot be used ({sec.protocol})"
    return f"{why} [{detail.strip()}]" if detail else why
