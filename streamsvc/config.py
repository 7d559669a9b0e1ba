"""Configuration: shipped defaults ← a TOML file ← `STREAMSVC_*` environment variables.

A wrong config must fail at start with a message that names the bad key, so every section
is checked against the known keys and every model is built once at load time.
"""

from __future__ import annotations

import copy
import functools
import os
import re
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agents.alerts import DEFAULT_DETECTOR, DETECTORS, NO_DELTA, build_detector
from agents.catalog import MODEL_NAME, TEMPLATE_NAME, ModelCatalog, is_template
from models.data_drift import DataDriftDetector
from models.factory import ModelSpecError, build_model, kind_family, wrong_types
from models.reference_drift import ReferenceDriftDetector
from streamsvc.security import KafkaSecurity, read_secret_file, security_from_config
from streamsvc.words import did_you_mean

DEFAULT_CONFIG = Path(__file__).with_name("default.toml")


class ConfigError(ValueError):
    """Invalid configuration; the message names the offending key."""


@dataclass(frozen=True)
class ModelSpec:
    name: str
    kind: str
    family: str
    params: dict[str, Any] = field(default_factory=dict)
    shards: int = 1
    drift_detector: str = DEFAULT_DETECTOR
    drift_delta: float = 0.002
    alert_cooldown: int = 500
    alert_on: str = "degradation"  # or "both": also publish improvements
    drift_params: dict[str, Any] = field(default_factory=dict)  # the river detector's own
    data_drift: bool = True  # label-free detector on the inputs and predictions
    data_drift_params: dict[str, Any] = field(default_factory=dict)
    reference_drift: bool = True  # a frozen reference model's errors (sees adapted drifts)
    reference_drift_params: dict[str, Any] = field(default_factory=dict)
    # a restored model whose kind or params differ from this config: "keep" what it learned
    # (and say so), or "reset" it (start fresh under this config, and say so)
    on_config_change: str = "keep"
    # a challenger: the model whose records it also gets (it publishes nothing; README "Many
    # models")
    challenger_of: str = ""
    # a template (name with `*`): models it may make per records partition; a model it made:
    # the template's name
    max_models: int = 1000
    template: str = ""

    def build(self) -> Any:
        return build_model(self.kind, copy.deepcopy(self.params))


@dataclass(frozen=True)
class Settings:
    broker: str
    app_id: str
    partitions: int
    topics: dict[str, str]
    worker: dict[str, Any]
    api: dict[str, Any]
    models: dict[str, ModelSpec]
    source: str = "defaults"
    # secrets live outside the `api`/`worker` dicts so that no repr or status can show them
    security: KafkaSecurity = field(default_factory=KafkaSecurity)
    api_token: str = field(default="", repr=False)
    snapshot_key: bytes = field(default=b"", repr=False)

    @property
    def bootstrap(self) -> str:
        """`host:port,...` for kafka-python, from Faust's `kafka://host:port;host2:port` form."""
        return broker_to_bootstrap(self.broker)

    def topic(self, role: str) -> str:
        return self.topics[role]

    @property
    def heartbeat_file(self) -> str:
        """Where the worker's loop leaves its heartbeat (for `streamsvc worker-alive`)."""
        import tempfile

        return self.worker["heartbeat_file"] or os.path.join(
            tempfile.gettempdir(), f"streamsvc-{self.app_id}.alive")

    @functools.cached_property
    def catalog(self) -> ModelCatalog:
        """The models by name, including those a template makes (`tenant-7` of
        `[models."tenant-*"]`)."""
        return ModelCatalog(self.models)

    def models_of(self, family: str) -> dict[str, ModelSpec]:
        return {n: m for n, m in self.models.items() if m.family == family}


KAFKA_PORT = 9092  # a broker address without a port means Kafka's own default


def _broker_hosts(broker: str) -> list[str]:
    hosts = []
    for part in broker.replace(";", ",").split(","):
        part = part.strip()
        if "://" in part:
            part = part.split("://", 1)[1]
        part = part.rstrip("/")
        if part:
            hosts.append(part if _port_text(part) is not None else f"{part}:{KAFKA_PORT}")
    return hosts


def _port_text(host: str) -> str | None:
    """The text after the host's port colon (None: no port given; `[::1]:9092` style too)."""
    if host.startswith("["):
        return host.rsplit("]:", 1)[1] if "]:" in host else None
    return host.rsplit(":", 1)[1] if ":" in host else None


def broker_to_bootstrap(broker: str) -> str:
    """`host:port,...` for the clients, from Faust's `kafka://host:port;host2:port` form."""
    return ",".join(_broker_hosts(broker))


def broker_problem(broker: str) -> str | None:
    """What is wrong with a broker URL in words (None: nothing)."""
    hosts = _broker_hosts(broker)
    if not hosts:
        return f"has no host: {broker!r}"
    for host in hosts:
        port = _port_text(host)
        if not (port or "").isdigit() or not 1 <= int(port) <= 65535:
            return (f"has a bad port in {host!r}: give host:port with a port from 1 to 65535, "
                    f"e.g. kafka://localhost:{KAFKA_PORT}")
        if host.rsplit(":", 1)[0] in ("", "[]"):
            return f"has no host in {host!r}"
    return None


def _env_overrides(env: dict[str, str], defaults: dict[str, Any] | None = None
                   ) -> dict[str, Any]:
    """`STREAMSVC_BROKER`, `STREAMSVC_APP_ID`, `STREAMSVC_PARTITIONS` and the generic
    `STREAMSVC_<SECTION>__<KEY>` (e.g. `STREAMSVC_TOPICS__EVENTS=my-events`,
    `STREAMSVC_MODELS__DEFAULT__KIND=arf`)."""
    out: dict[str, Any] = {}
    aliases = {"STREAMSVC_BROKER": ("kafka", "broker"), "STREAMSVC_APP_ID": ("kafka", "app_id"),
               "STREAMSVC_PARTITIONS": ("kafka", "partitions")}
    for var, value in env.items():
        if var in aliases:
            path = aliases[var]
        elif var.startswith("STREAMSVC_") and "__" in var:
            path = tuple(p.lower() for p in var[len("STREAMSVC_"):].split("__"))
        else:
            if var.startswith("STREAMSVC_") and var not in OTHER_VARIABLES:
                _warn_unknown_variable(var, [*aliases, *OTHER_VARIABLES])
            continue
        node = out
        for p in path[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ConfigError(f"environment variable {var} conflicts with another one")
        default = _lookup(defaults or {}, path)
        # a key whose default is text stays text ("2024" is an app id, not a number)
        node[path[-1]] = value if isinstance(default, str) else _parse_scalar(value)
    return out


# variables read elsewhere (CLI, worker, test tooling, deploy files): not settings, not typos
OTHER_VARIABLES = ("STREAMSVC_CONFIG", "STREAMSVC_LOG_LEVEL", "STREAMSVC_WORKER_ID",
                   "STREAMSVC_KAFKA_HOME", "STREAMSVC_KAFKA_USER", "STREAMSVC_REQUIRE_KAFKA",
                   "STREAMSVC_REQUIRE_BROWSER", "STREAMSVC_DASHBOARD_PNG", "STREAMSVC_CHROMIUM")
_warned: set[str] = set()


def _warn_unknown_variable(var: str, known: list[str]) -> None:
    """Once per process: a misspelt top-level variable (STREAMSVC_BROKERS) was ignored without
    a word, so the command went to the default broker."""
    if var in _warned:
        return
    _warned.add(var)
    close = did_you_mean(var, known, cutoff=0.85, quote=False)
    hint = f" ({close})" if close else (
        "; settings are STREAMSVC_<SECTION>__<KEY>, e.g. STREAMSVC_TOPICS__EVENTS")
    print(f"streamsvc: warning: environment variable {var} is not a streamsvc setting and is "
          f"ignored{hint}", file=sys.stderr)


def _lookup(tree: dict[str, Any], path: tuple[str, ...]) -> Any:
    for p in path:
        if not isinstance(tree, dict) or p not in tree:
            return None
        tree = tree[p]
    return tree


def _parse_scalar(value: str) -> Any:
    try:
        return tomllib.loads(f"v = {value}")["v"]
    except tomllib.TOMLDecodeError:
        return value


def _drop_replaced_params(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """`base` without the `params` of every model whose `kind` the override `over` changes.

    Parameters belong to a kind: `STREAMSVC_MODELS__DEFAULT__KIND=arf` must not keep the shipped
    DriftMoE parameters (n_experts, top_k, ...), which ARF would reject. The new kind starts from
    its own defaults plus whatever `params` the same override gives.
    """
    base_models, over_models = base.get("models"), over.get("models")
    if not isinstance(base_models, dict) or not isinstance(over_models, dict):
        return base
    models = dict(base_models)
    for name, m in over_models.items():
        old = base_models.get(name)
        if isinstance(m, dict) and isinstance(old, dict) and "kind" in m \
                and m["kind"] != old.get("kind"):
            models[name] = {k: v for k, v in old.items() if k != "params"}
    return {**base, "models": models}


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


_SECTIONS = {"kafka", "topics", "worker", "api", "models"}
_MODEL_KEYS = {"kind", "params", "shards", "drift_detector", "drift_delta", "alert_cooldown",
               "alert_on", "drift_params", "data_drift", "data_drift_params",
               "reference_drift", "reference_drift_params", "on_config_change",
               "challenger_of", "max_models"}
_COMPRESSION = {"none", "gzip", "snappy", "lz4", "zstd"}
_DETECTORS = set(DETECTORS)


def _check_keys(section: str, given: dict[str, Any], allowed: dict[str, Any] | set[str]) -> None:
    for key in given:
        if key not in allowed:
            raise ConfigError(
                f"unknown config key '{section}.{key}'; allowed: {', '.join(sorted(allowed))}"
            )


def _typed(section: str, given: Any, defaults: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(given, dict):
        raise ConfigError(f"config key '{section}' must be a table, got {given!r}")
    _check_keys(section, given, defaults)
    out = dict(defaults)
    for key, value in given.items():
        want = type(defaults[key])
        if want is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, want) or (want is int and isinstance(value, bool)):
            raise ConfigError(
                f"config key '{section}.{key}' must be {want.__name__}, got {value!r}"
            )
        out[key] = value
    return out


def load_settings(path: str | Path | None = None, env: dict[str, str] | None = None) -> Settings:
    """Load the shipped defaults, then `path` (or `$STREAMSVC_CONFIG`), then the environment."""
    env = dict(os.environ if env is None else env)
    defaults = tomllib.loads(DEFAULT_CONFIG.read_text())
    raw = copy.deepcopy(defaults)
    source = "defaults"
    path = path or env.get("STREAMSVC_CONFIG")
    if path:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"config file {str(p)!r} does not exist")
        try:
            user = tomllib.loads(p.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {str(p)!r} is not valid TOML: {exc}") from exc
        _check_keys("<root>", user, _SECTIONS)
        if "models" in user:  # a user's model table replaces the shipped one entirely
            raw["models"] = {}
        raw = _merge(_drop_replaced_params(raw, user), user)
        source = str(p)
    over = _env_overrides(env, defaults)
    _check_keys("<env STREAMSVC_*>", over, _SECTIONS)
    raw = _merge(_drop_replaced_params(raw, over), over)
    return _validate(raw, defaults, source)


def _validate(raw: dict[str, Any], defaults: dict[str, Any], source: str) -> Settings:
    kafka = _typed("kafka", raw.get("kafka", {}), defaults["kafka"])
    topics = _typed("topics", raw.get("topics", {}), defaults["topics"])
    worker = _typed("worker", raw.get("worker", {}), defaults["worker"])
    api = _typed("api", raw.get("api", {}), defaults["api"])
    security = security_from_config(kafka, ConfigError)
    api_token = _secret(api, "api", "token", min_len=16)
    snapshot_key = _secret(worker, "worker", "snapshot_key", min_len=16)
    if kafka["partitions"] < 1:
        raise ConfigError("config key 'kafka.partitions' must be >= 1")
    for key, value in worker.items():
        if key in ("linger_ms", "busy_linger_ms", "fetch_max_wait_ms") and value < 0:
            raise ConfigError(f"config key 'worker.{key}' must be >= 0, got {value}")
        if key not in ("linger_ms", "busy_linger_ms", "fetch_max_wait_ms") \
                and isinstance(value, int | float) \
                and not isinstance(value, bool) and value <= 0:
            raise ConfigError(f"config key 'worker.{key}' must be > 0, got {value}")
    if worker["shard_placement"] not in ("spread", "hash"):
        raise ConfigError("config key 'worker.shard_placement' must be \"spread\" or \"hash\", "
                          f"got {worker['shard_placement']!r}")
    if worker["compression"] not in _COMPRESSION:
        raise ConfigError(f"config key 'worker.compression' must be one of "
                          f"{', '.join(sorted(_COMPRESSION))}, got {worker['compression']!r}")
    seen_topics: dict[str, str] = {}
    for role, name in topics.items():
        if not name or name in seen_topics:
            raise ConfigError(f"config key 'topics.{role}' must be a distinct, non-empty topic "
                              f"name ({name!r} is also topics.{seen_topics.get(name)})")
        seen_topics[name] = role
    if not re.fullmatch(r"[A-Za-z0-9._-]{1,200}", kafka["app_id"]) or "@" in kafka["app_id"]:
        raise ConfigError("config key 'kafka.app_id' may only contain letters, digits, "
                          "'.', '_' and '-'")
    if bad := broker_problem(kafka["broker"]):
        raise ConfigError(f"config key 'kafka.broker' {bad}")
    models: dict[str, ModelSpec] = {}
    if not raw.get("models"):
        raise ConfigError("no models configured: add at least one [models.<name>] table")
    if not isinstance(raw["models"], dict):
        raise ConfigError("config key 'models' must be a table of [models.<name>] tables")
    for name, m in raw["models"].items():
        sec = f"models.{name}"
        if not (TEMPLATE_NAME if is_template(name) else MODEL_NAME).fullmatch(name):
            raise ConfigError(f"config key '{sec}': a model name may only contain letters, "
                              "digits, '.', '_' and '-' (it appears in keys and URLs), and "
                              "'*' in a template's name (at most 100 characters)")
        if not isinstance(m, dict):
            raise ConfigError(f"config key '{sec}' must be a table")
        _check_keys(sec, m, _MODEL_KEYS)
        if "kind" not in m:
            raise ConfigError(f"config key '{sec}.kind' is missing")
        try:
            family = kind_family(m["kind"])
        except ModelSpecError as exc:
            raise ConfigError(f"config key '{sec}.kind': {exc}") from exc
        detector = m.get("drift_detector", DEFAULT_DETECTOR)
        if detector not in _DETECTORS:
            raise ConfigError(
                f"config key '{sec}.drift_detector' must be one of {sorted(_DETECTORS)}"
            )
        shards = m.get("shards", 1)
        if not isinstance(shards, int) or shards < 1:
            raise ConfigError(f"config key '{sec}.shards' must be an integer >= 1")
        params = m.get("params", {})
        if not isinstance(params, dict):
            raise ConfigError(f"config key '{sec}.params' must be a table")
        delta = m.get("drift_delta", 0.002)
        if isinstance(delta, bool) or not isinstance(delta, int | float) or not 0 < delta < 1:
            raise ConfigError(f"config key '{sec}.drift_delta' must be a number in (0, 1)")
        cooldown = m.get("alert_cooldown", 500)
        if isinstance(cooldown, bool) or not isinstance(cooldown, int) or cooldown < 0:
            raise ConfigError(f"config key '{sec}.alert_cooldown' must be an integer >= 0")
        on_change = m.get("on_config_change", "keep")
        if on_change not in ("keep", "reset"):
            raise ConfigError(f"config key '{sec}.on_config_change' must be \"keep\" (a restored "
                              "model whose kind or params changed keeps what it learned) or "
                              "\"reset\" (it starts fresh under the new config)")
        spec = ModelSpec(
            name=name, kind=m["kind"], family=family, params=params, shards=shards,
            drift_detector=detector, drift_delta=float(delta), alert_cooldown=cooldown,
            on_config_change=on_change, max_models=_max_models(sec, name, m),
            challenger_of=_challenger_of(sec, name, m, family, raw["models"]),
            **_drift_keys(sec, m, detector, float(delta)),
        )
        try:
            model = spec.build()
            if family == "classifier":  # smoke test: bad parameter values fail now, not later
                model.learn_one({"f": 0.0}, 0)
                model.predict_proba_one({"f": 0.0})
        except ModelSpecError as exc:
            raise ConfigError(f"config key '{sec}.params': {exc}") from exc
        except Exception as exc:  # noqa: BLE001 - any failure here is a bad parameter value
            raise ConfigError(f"config key '{sec}.params' {params}: the model fails with these "
                              f"values: {exc!r}") from exc
        models[name] = spec
    return Settings(
        broker=kafka["broker"], app_id=kafka["app_id"], partitions=kafka["partitions"],
        topics=topics, worker=worker, api=api, models=models, source=source,
        security=security, api_token=api_token, snapshot_key=snapshot_key.encode(),
    )


def _max_models(sec: str, name: str, m: dict[str, Any]) -> int:
    if "max_models" not in m:
        return ModelSpec.max_models
    if not is_template(name):
        raise ConfigError(f"config key '{sec}.max_models' applies only to a template (a model "
                          "name with '*', e.g. [models.\"tenant-*\"])")
    n = m["max_models"]
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ConfigError(f"config key '{sec}.max_models' must be an integer >= 1 (models the "
                          f"template may make per records partition), got {n!r}")
    return n


def _challenger_of(sec: str, name: str, m: dict[str, Any], family: str,
                   models: dict[str, Any]) -> str:
    """Check `challenger_of`: another configured model (not a template, not itself a
    challenger) of the same family; reinforcement-learning agents have none."""
    champion = m.get("challenger_of", "")
    if champion == "":
        return ""
    where = f"config key '{sec}.challenger_of'"
    if champion == name:
        raise ConfigError(f"{where}: a model cannot challenge itself; name the model it "
                          "challenges")
    if not isinstance(champion, str) or champion not in models:
        close = did_you_mean(str(champion), [n for n in models if n != name])
        hint = f" ({close})" if close else ""
        others = ", ".join(n for n in models if n != name) or "none"
        raise ConfigError(f"{where} must name another configured model{hint}; configured: "
                          f"{others}")
    other = models[champion] if isinstance(models[champion], dict) else {}
    if is_template(name) or is_template(champion):
        raise ConfigError(f"{where}: templates take no challengers and are none (a challenger "
                          "of each model a template makes is not supported)")
    if other.get("challenger_of"):
        raise ConfigError(f"{where}: {champion!r} is itself a challenger (of "
                          f"{other['challenger_of']!r}); name the model it challenges")
    if family == "rl":
        raise ConfigError(f"{where}: a reinforcement-learning agent cannot be a challenger "
                          "(a stream Q agent learns from the actions it chose, and a "
                          "challenger's actions are never taken)")
    try:
        same = kind_family(other.get("kind", "")) == family
    except ModelSpecError:
        same = True  # the champion's own table reports its bad kind
    if not same:
        raise ConfigError(f"{where}: {champion!r} is a {other.get('kind')} model; a "
                          f"{m['kind']} model cannot see its records")
    return champion


def _secret(section: dict[str, Any], name: str, key: str, min_len: int) -> str:
    """Pop `key` and `key_file` out of a section dict and return the secret ("" if unset)."""
    value, path = section.pop(key), section.pop(f"{key}_file")
    if value and path:
        raise ConfigError(f"config keys '{name}.{key}' and '{name}.{key}_file' are both set; "
                          "keep one")
    if path:
        value = read_secret_file(path, f"{name}.{key}_file", ConfigError)
    if value and len(value) < min_len:
        raise ConfigError(f"config key '{name}.{key}' is too short to be a secret: use at "
                          f"least {min_len} characters (e.g. `openssl rand -hex 32`)")
    return value


def _drift_keys(sec: str, m: dict[str, Any], detector: str, delta: float) -> dict[str, Any]:
    """Check a model's drift-alert keys; the detectors are built once so bad values fail now."""
    if detector == "none":
        for key in ("drift_delta", "drift_params"):
            if m.get(key) not in (None, {}):
                raise ConfigError(f"config key '{sec}.{key}' does not apply: drift_detector is "
                                  f"\"none\" (the shipped default; the frozen reference of "
                                  f"reference_drift watches). Name a detector, e.g. "
                                  f"drift_detector = \"page_hinkley\"")
    if detector in NO_DELTA and "drift_delta" in m:
        raise ConfigError(f"config key '{sec}.drift_delta' does not apply to {detector} "
                          f"({DETECTORS[detector]})")
    alert_on = m.get("alert_on", "degradation")
    if alert_on not in ("degradation", "both"):
        raise ConfigError(f"config key '{sec}.alert_on' must be \"degradation\" (publish only "
                          "drifts that make the model worse) or \"both\"")
    data_drift = m.get("data_drift", True)
    if not isinstance(data_drift, bool):
        raise ConfigError(f"config key '{sec}.data_drift' must be true or false")
    reference = m.get("reference_drift", True)
    if not isinstance(reference, bool):
        raise ConfigError(f"config key '{sec}.reference_drift' must be true or false")
    out: dict[str, Any] = {"alert_on": alert_on, "data_drift": data_drift,
                           "reference_drift": reference}
    for key, build, cls in (("drift_params", lambda p: build_detector(detector, delta, p), None),
                            ("data_drift_params", lambda p: DataDriftDetector(**p),
                             DataDriftDetector),
                            ("reference_drift_params", lambda p: ReferenceDriftDetector(**p),
                             ReferenceDriftDetector)):
        params = m.get(key, {})
        if not isinstance(params, dict):
            raise ConfigError(f"config key '{sec}.{key}' must be a table")
        if cls is not None and (problem := wrong_types(cls, params)):
            raise ConfigError(f"config key '{sec}.{key}': {problem}")
        try:
            build(params)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"config key '{sec}.{key}' {params}: {exc}") from None
        out[key] = dict(params)
    return out
