"""Routing of validated records to model shards, and per-partition processing.

Two stages, as in Kafka Streams' repartitioning: the ingest stage validates raw records from
any partition of `events`/`labels` and forwards them keyed by model shard to the records
topic; the learn stage owns partitions of that topic, so one process holds each model shard
and an event and its late label always meet in the same place, whatever key the producer used.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Mapping
from typing import Any

import orjson
from pydantic import BaseModel, ValidationError

from agents.alerts import build_data_detector, build_reference_detector
from agents.catalog import ModelCatalog, catalog, is_template
from agents.host import HostLimits, Out, PartitionState, make_detector, routing_key
from agents.messages import (
    MAX_FORWARD_BYTES,
    BadRecord,
    EdgeIn,
    EventIn,
    LabelIn,
    NodeLabelIn,
    Record,
    TransitionIn,
    _reason,
    fast_body,
    load_json,
)

#: input role -> (record kind, wire shape, model family, field whose value picks the shard)
INPUTS: dict[str, tuple[str, type[BaseModel], str, str | None]] = {
    "events": ("event", EventIn, "classifier", "id"),
    "labels": ("label", LabelIn, "classifier", "id"),
    "transitions": ("transition", TransitionIn, "rl", "agent"),
    "edges": ("edge", EdgeIn, "graph", None),  # one graph = one shard: neighbours span nodes
    "node_labels": ("node_label", NodeLabelIn, "graph", None),
}
SHAPES = {kind: shape for kind, shape, _, _ in INPUTS.values()}
ROLE_OF = {kind: role for role, (kind, _, _, _) in INPUTS.items()}
_PLAIN = {"event", "label"}
log = logging.getLogger("streamsvc.agents")  # learn-stage bodies carried as `Record`s
#: family -> "module:Class" of its host (imported on first use)
HOSTS = {"classifier": "agents.host:ClassifierHost", "rl": "agents.rl:RLHost",
         "graph": "agents.graph:GraphHost"}
FAMILY_NAMES = {"classifier": "classification", "rl": "reinforcement-learning",
                "graph": "graph"}


def _model_for(role: str, family: str, requested: str | None, specs: ModelCatalog) -> Any:
    if requested is None:
        if family == "classifier":
            requested = "default"
        else:
            of_family = [n for n, s in specs.models.items()
                         if s.family == family and not s.challenger_of]
            if len(of_family) != 1:
                raise BadRecord(
                    f"'model' is required on {role}: configured {FAMILY_NAMES[family]} models "
                    f"are {of_family or 'none'}")
            requested = of_family[0]
    # a configured model in one plain-dict lookup (the hot path), else a made one
    spec = specs.models.get(requested) or specs.get(requested)
    if spec is None:
        raise BadRecord(_unknown_model(requested, specs))
    if spec.family != family:
        raise BadRecord(f"model {requested!r} is a {spec.kind} model and takes no {role}")
    if spec.challenger_of:
        # a record naming a challenger goes to its champion (and so, copied, to it): a
        # challenger is promoted by swapping `challenger_of` in the config, and the producers
        # that name the old champion (or no model) are answered by the new one. (Its champion
        # is not configured where one model runs alone, e.g. `streamsvc demo --model`.)
        return specs.models.get(spec.challenger_of, spec)
    return spec


def template_refusal(name: str) -> str:
    """Why a template's own name names no model (the name after the ':', so that dead
    letters are counted under one reason whatever the name)."""
    return (f"a template's name names no model; name one it makes (e.g. "
            f"{name.replace('*', '1', 1)!r}): {name!r}")


def _unknown_model(name: str, specs: ModelCatalog) -> str:
    """Why `name` names no model, in words."""
    if is_template(name):
        return template_refusal(name)
    template = specs.template_for(name)
    if template is not None:
        return (f"model name not allowed by template {template.name!r} (letters, digits, '.', "
                f"'_' and '-', at most 100 characters): {name!r}")
    return f"unknown model; configured models are {', '.join(sorted(specs))}: {name!r}"


#: first byte of a records-topic message in the current format: a JSON header, a newline,
#: then the record exactly as the user sent it (older workers wrote one JSON object)
RECORD_V2 = b"\x01"


def validate(role: str, raw: bytes | None) -> tuple[dict[str, Any], bool]:
    """The validated body of one raw input record, and whether it took the fast path
    (`BadRecord` with the reason if it is not one). Plain events and labels take the fast
    path; the rest pydantic (and its words)."""
    kind, shape, _, _ = INPUTS[role]
    obj = load_json(raw)
    body = fast_body(kind, obj)
    if body is not None:
        return body, True
    try:
        return shape.model_validate(obj).model_dump(mode="json"), False
    except ValidationError as exc:
        raise BadRecord(_reason(exc)) from None


def resolve(role: str, raw: bytes | None, specs: Mapping[str, Any]
            ) -> tuple[str, str, dict[str, Any], bool]:
    """Validate one raw input record and find its model shard: (kind, routing key, body with
    its `model` filled in, whether it took the fast path). Raises `BadRecord` for anything
    that cannot be processed, including an unknown model or a model of another family (e.g.
    an event sent to a reinforcement-learning model)."""
    kind, _, family, shard_by = INPUTS[role]
    body, plain = validate(role, raw)
    if type(specs) is not ModelCatalog:  # noqa: E721 - the hot path: no call when it is
        specs = ModelCatalog(specs)
    spec = _model_for(role, family, body.get("model"), specs)
    rk = routing_key(spec.name, spec.shards if shard_by else 1,
                     str(body[shard_by]) if shard_by else "")
    body["model"] = spec.name
    return kind, rk, body, plain


def challenger_copies(role: str, body: dict[str, Any], src: dict[str, Any],
                      specs: ModelCatalog) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(routing key, body, source) of the copy of one resolved record that each challenger of
    its model gets: the challenger's own shard of the same id, the body under its name, the
    source marked `copy` (a copy publishes nothing, whatever the learning worker's config)."""
    if not specs.challenged:
        return []
    challengers = specs.challengers(body["model"])
    if not challengers:
        return []
    shard_by = INPUTS[role][3]
    copy_src = {**src, "copy": True}
    return [(routing_key(c.name, c.shards if shard_by else 1,
                         str(body[shard_by]) if shard_by else ""), {**body, "model": c.name},
             copy_src) for c in challengers]


def forward_head(role: str, raw: bytes | None, specs: Mapping[str, Any], src: dict[str, Any]
                 ) -> tuple[str, dict[str, Any], bytes]:
    """Validate one raw input record and find its shard: (routing key, the header the learn
    stage needs: kind, shard, model, where it came from, and the validated body, so it is not
    validated twice; the bytes as sent)."""
    kind, rk, body, _ = resolve(role, raw, specs)
    assert raw is not None  # validate() refuses None
    return rk, {"kind": kind, "rk": rk, "model": body["model"], "src": src, "body": body}, raw


def encode_record(head: dict[str, Any], raw: bytes) -> bytes:
    """One records-topic message (`RECORD_V2`): the header and the record's bytes as sent.
    A body too large to travel twice is left out (the learn stage validates the bytes again)."""
    value = RECORD_V2 + orjson.dumps(head) + b"\n" + raw
    if len(value) > MAX_FORWARD_BYTES and "body" in head:
        head = {k: v for k, v in head.items() if k != "body"}
        value = RECORD_V2 + orjson.dumps(head) + b"\n" + raw
    if len(value) > MAX_FORWARD_BYTES:
        raise BadRecord(f"record too large to forward ({len(value)} bytes > "
                        f"{MAX_FORWARD_BYTES})")
    return value


def route(role: str, raw: bytes | None, specs: Mapping[str, Any], src: dict[str, Any]
          ) -> tuple[str, bytes]:
    """Validate one raw input record and return (routing key, records-topic value).

    The value is a JSON header (kind, shard, model, where the record came from, and the
    validated body when it fits, so it is not validated twice) and the record's bytes exactly
    as sent, so a refusal on the learn stage dead-letters what the user sent whatever its
    encoding or size. (The worker sends packs, `encode_pack`; this is one record alone.)
    """
    rk, head, raw = forward_head(role, raw, specs, src)
    return rk, encode_record(head, raw)


#: first byte of a records-topic message that packs the records one input batch routed to
#: one model shard: a JSON header (`rk`, `model`, and per record its kind, source, timestamp,
#: length and, if it carries one, validated body), a newline, the records' bytes one after
#: the other. Why: one Kafka message per record costs the worker a produce and a consume and
#: the broker a message per record; a pack of a batch's records costs them once.
RECORD_PACK = b"\x02"
#: a record whose validated body is this long or longer travels without it in a pack (the
#: learn stage validates its bytes again) so packs stay small
PACK_BODY_BYTES = 16_384


def encode_pack(rk: str, model: str, members: list[tuple[dict[str, Any], int, bytes]]
                ) -> bytes:
    """One `RECORD_PACK` message from (header as `forward_head` gives it, Kafka timestamp in
    ms, bytes as sent) of records that share the shard `rk`, in the order they are learned."""
    recs = [[h["kind"], h["src"], ts, len(raw),
             h.get("body") if len(raw) < PACK_BODY_BYTES else None]
            for h, ts, raw in members]
    return (RECORD_PACK + orjson.dumps({"rk": rk, "model": model, "recs": recs}) + b"\n"
            + b"".join(raw for _, _, raw in members))


def unpack(value: bytes, loads: Callable[[bytes], Any] = orjson.loads
           ) -> tuple[str, str, list[tuple[str, dict[str, Any], int, bytes, Any]]]:
    """A `RECORD_PACK` message as (shard, model, [(kind, source, timestamp ms, bytes as sent,
    validated body or None)]); `ValueError` when it is not a well-formed pack."""
    try:
        nl = value.index(b"\n")
        head = loads(value[1:nl])
        rk, model, recs = head["rk"], head["model"], head["recs"]
        pos, items = nl + 1, []
        for kind, src, ts, n, body in recs:
            if type(kind) is not str or type(src) is not dict or type(n) is not int or n < 0 \
                    or (ts is not None and type(ts) is not int) \
                    or (body is not None and type(body) is not dict):
                raise ValueError(f"record {len(items)} has fields of the wrong types")
            items.append((kind, src, ts, value[pos:pos + n], body))
            pos += n
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"not a well-formed pack of records: {exc}") from None
    if pos != len(value) or type(rk) is not str or type(model) is not str:
        raise ValueError("not a well-formed pack of records: lengths or shard do not match")
    return rk, model, items


def records_in(value: bytes, loads: Callable[[bytes], Any] = orjson.loads
               ) -> list[tuple[dict[str, Any], bytes | None]]:
    """Every record in one records-topic message, whatever its format, as `record_header`
    gives them (header with `kind`, `rk`, `model`, `src`; the bytes as sent)."""
    if value[:1] != RECORD_PACK:
        return [record_header(value, loads)]
    rk, model, items = unpack(value, loads)
    return [({"kind": kind, "rk": rk, "model": model, "src": src,
              **({"body": body} if body is not None else {})}, raw)
            for kind, src, _, raw, body in items]


def record_header(value: bytes, loads: Callable[[bytes], Any] = orjson.loads
                  ) -> tuple[dict[str, Any], bytes | None]:
    """A records-topic message as (its header: `kind`, `rk`, `src`, and `body` when it
    carries one; the bytes as sent, or None), without validating anything. Reads both
    formats: the current one (`RECORD_V2`) and the single JSON object older workers wrote
    (body included; `raw` as text when it was UTF-8)."""
    if value[:1] == RECORD_V2:
        nl = value.index(b"\n")
        return loads(value[1:nl]), value[nl + 1:]
    rec = loads(value)
    old = rec.get("raw")
    return rec, old.encode("utf-8", "surrogatepass") if isinstance(old, str) else None


def refusal_words(exc: Exception, body: Any, host: Any) -> str:
    """Why a learner refused a record, in words a user can act on. Learners fail with Python's
    own messages ("unsupported operand type(s) for -: 'str' and 'float'"); the usual cause is
    text in a feature the model has learned as a number, so name those features."""
    x = body.get("x") if isinstance(body, dict) else None
    texts = {k: v for k, v in x.items() if isinstance(v, str)} if isinstance(x, dict) else {}
    model = f"model {getattr(host, 'name', '?')!r} ({getattr(host, 'kind', '?')})"
    if isinstance(exc, TypeError) and texts:
        named = ", ".join(f"{k!r} = {v[:40]!r}" for k, v in list(texts.items())[:3])
        return (f"refused by the learner: text in feature {named}, but {model} uses numbers "
                "there; send numbers, or give text features to a model that takes them "
                "(hoeffding_tree, arf)")
    words = str(exc) or type(exc).__name__
    return f"refused by the learner: {model} could not use this record ({words})"


def _refused(exc: Exception, body: Any, host: Any) -> Exception:
    """A learner's refusal (ValueError, TypeError, ArithmeticError) as a `BadRecord` in words a
    user can act on (`refusal_words`); any other exception as it is."""
    if isinstance(exc, (ValueError, TypeError, ArithmeticError)) \
            and not isinstance(exc, BadRecord):
        return BadRecord(refusal_words(exc, body, host))
    return exc


def _message(kind: str | None, body: dict[str, Any], src: dict[str, Any], raw: bytes | None
             ) -> tuple[str, Any, dict[str, Any]] | BadRecord:
    """(kind, the record for its host, its source) of a validated body, built without
    validating again; a `BadRecord` for a kind no host takes."""
    shape = SHAPES.get(kind)  # type: ignore[arg-type]
    if shape is None:
        return BadRecord(f"unknown record kind {kind!r}")
    msg = Record(**body) if kind in _PLAIN else shape.model_construct(**body)
    if kind == "label" and raw is not None:  # a label may wait, then be dead-lettered
        src = {**src, "raw": raw}
    return kind, msg, src  # type: ignore[return-value]


def _call(fn: Callable[..., list[Out]], *args: Any) -> list[Out] | Exception:
    try:
        return fn(*args)
    except Exception as exc:  # noqa: BLE001 - reported per record by the caller
        return exc


def _waiting(host: Any) -> int:
    """Events and labels a host holds for a join (its timers change these)."""
    return len(getattr(host, "pending", ())) + len(getattr(host, "orphans", ()))


def host_class(family: str) -> type:
    module, name = HOSTS[family].split(":")
    return getattr(importlib.import_module(module), name)


class Processor:
    """Holds the partitions a worker owns and applies records to their model shards."""

    def __init__(self, specs: Mapping[str, Any], limits: HostLimits) -> None:
        self.specs = catalog(specs)
        self.limits = limits
        self.partitions: dict[int, PartitionState] = {}
        #: (partition, shard) of the hosts given records or timers since `statuses(True)`
        self.touched: set[tuple[int, str]] = set()
        #: per partition, per template: the names of the models it made there
        self._made: dict[int, dict[str, set[str]]] = {}
        self._dropped_copies: set[str] = set()  # challengers whose copies were dropped (said)

    def adopt(self, state: PartitionState) -> None:
        """Install a restored partition state under today's config.

        Limits (`pending_max`, `orphan_ttl`, ...), the alert cooldown and the drift detector
        come from the config now in force, so changing them and restarting takes effect. A
        model whose `kind` or `params` changed keeps what it learned (learning is never thrown
        away silently) unless its config says `on_config_change = "reset"`; either way its
        status says `config_changed` (old and new values, and the `action` taken) and the log
        says what happened.
        """
        for rk, h in list(state.hosts.items()):
            spec = self.specs.get(getattr(h, "name", None))
            if spec is None:
                continue  # a model no longer configured: its records go to dead-letters
            h.template = spec.template  # its template now (or none: configured by name)
            if hasattr(h, "limits"):
                h.limits = self.limits
            if hasattr(h, "alert_cooldown"):
                h.alert_cooldown = spec.alert_cooldown
            if hasattr(h, "alert_on"):
                h.alert_on = spec.alert_on
            params = dict(spec.drift_params)
            if hasattr(h, "detector_name") and (
                    h.detector_name, getattr(h, "detector_config", None)) != (
                    spec.drift_detector, (spec.drift_delta, params)):
                h.detector_name = spec.drift_detector  # a changed detector starts afresh
                h.detector = make_detector(spec.drift_detector, spec.drift_delta, params)
                h.detector_config = (spec.drift_delta, params)
            if hasattr(h, "data_detector") and (h.data_detector is None) == spec.data_drift:
                h.data_detector = build_data_detector(spec)  # switched on or off
            if hasattr(h, "reference") and (h.reference is None) == spec.reference_drift:
                h.reference = build_reference_detector(spec)
            changed = {k: {"learned_with": old, "config": new} for k, old, new in (
                ("kind", h.kind, spec.kind),
                ("params", getattr(h, "params", dict(spec.params)), dict(spec.params)))
                if old != new}
            if not changed:
                h.config_changed = None
                continue
            was = {k: v["learned_with"] for k, v in changed.items()}
            now = {k: v["config"] for k, v in changed.items()}
            shard = getattr(h, "shard", "?")
            if spec.on_config_change == "reset":
                fresh = state.hosts[rk] = host_class(spec.family)(spec, rk, self.limits)
                fresh.template = spec.template
                fresh.config_changed = {**changed, "action": "reset"}
                log.warning("model %r (shard %s): the restored model was built with %s; the "
                            "config now says %s and on_config_change = \"reset\": starting it "
                            "fresh (%d examples learned before are dropped).", h.name, shard,
                            was, now, getattr(h, "learned", 0))
            else:
                h.config_changed = {**changed, "action": "kept"}
                log.warning("model %r (shard %s): the restored model was built with %s; the "
                            "config now says %s. Keeping what it learned; to start it fresh, "
                            "set on_config_change = \"reset\" for this model (or give it a "
                            "new name).", h.name, shard, was, now)
        self.partitions[state.partition] = state
        self._made.pop(state.partition, None)
        self.touched.update((state.partition, rk) for rk in state.hosts)

    def release(self, partition: int) -> None:
        """Forget a partition (another worker owns it now)."""
        self.partitions.pop(partition, None)
        self._made.pop(partition, None)

    def state(self, partition: int) -> PartitionState:
        st = self.partitions.get(partition)
        if st is None:
            st = self.partitions[partition] = PartitionState(partition)
        return st

    def host(self, st: PartitionState, rk: str, name: str | None = None) -> Any:
        h = st.hosts.get(rk)
        if h is None:
            name = name or rk.split("#", 1)[0]
            spec = self.specs.get(name)
            if spec is None:
                raise BadRecord(_unknown_model(name, self.specs))
            if spec.template:
                made = self._made_in(st).setdefault(spec.template, set())
                if name not in made and len(made) >= spec.max_models:
                    raise BadRecord(
                        f"template {spec.template!r} has made its max_models = "
                        f"{spec.max_models} models in records partition {st.partition}, and "
                        f"this record names one more (raise max_models): {name!r}")
                made.add(name)
            h = st.hosts[rk] = host_class(spec.family)(spec, rk, self.limits)
            h.template = spec.template
        self.touched.add((st.partition, rk))
        return h

    def _made_in(self, st: PartitionState) -> dict[str, set[str]]:
        """Per template, the models it made in partition `st` (counted once, then kept)."""
        made = self._made.get(st.partition)
        if made is None:
            made = self._made[st.partition] = {}
            for h in st.hosts.values():
                if getattr(h, "template", ""):
                    made.setdefault(h.template, set()).add(h.name)
        return made

    def handle(self, partition: int, offset: int, value: bytes, now: float) -> list[Out]:
        """Apply one single-record records-topic message; returns what to publish. Offsets at
        or below the partition's checkpointed offset were applied already and are skipped (no
        double learning after a restart)."""
        st = self.state(partition)
        if offset <= st.offset:
            return []
        st.offset = offset
        st.dirty += 1
        rec, raw = record_header(value)
        return self.forwarded(st, rec.get("kind"), rec["rk"], rec.get("model"),
                              rec.get("src") or {}, raw, rec.get("body"), now)

    def forwarded(self, st: PartitionState, kind: str | None, rk: str, model: str | None,
                  src: dict[str, Any], raw: bytes | None, body: dict[str, Any] | None,
                  now: float) -> list[Out]:
        """Apply one record the ingest stage forwarded: `prepare`, then `apply`."""
        body = self.prepare(st, kind, rk, model, src, raw, body)
        if body is None:
            return []
        return self.apply(st, kind, rk, body, now, src, raw)

    def prepare(self, st: PartitionState, kind: str | None, rk: str, model: str | None,
                src: dict[str, Any], raw: bytes | None, body: dict[str, Any] | None
                ) -> dict[str, Any] | None:
        """A forwarded record's validated body (its bytes validated again unless the body
        came with it), or None if the ingest stage forwarded it twice (applied already)."""
        if body is None:
            role = ROLE_OF.get(kind)  # type: ignore[arg-type]
            if role is None:
                raise BadRecord(f"unknown record kind {kind!r}")
            body = validate(role, raw)[0]
        if model is not None:
            body["model"] = model
        if "topic" in src and "offset" in src:
            # per input partition *and shard*: one shard's records from one input partition
            # arrive in offset order (packs of several shards sharing a records partition
            # interleave); a key without the shard is a snapshot of an older worker's
            where = (str(src["topic"]), int(src.get("partition", 0)))
            key = (*where, rk)
            high = st.src_high.get(key)
            if high is None:
                high = st.src_high.get(where, -1)
            if int(src["offset"]) <= high:
                st.duplicates += 1  # forwarded twice by the ingest stage: already applied
                self.touched.add((st.partition, rk))  # its status counts them
                return None
            st.src_high[key] = int(src["offset"])
        return body

    def process(self, partition: int, offset: int, role: str, raw: bytes | None, now: float,
                src: dict[str, Any]) -> list[Out]:
        """Validate, route and apply one raw input record in one step (`route` + `handle`
        without the records-topic message between them): for in-process use, where every
        model shard lives in this process (the demo, a notebook). Same checks, same host
        code, same outputs."""
        kind, rk, body, _ = resolve(role, raw, self.specs)
        st = self.state(partition)
        if offset <= st.offset:
            return []
        st.offset = offset
        st.dirty += 1
        for crk, cbody, csrc in challenger_copies(role, body, src, self.specs):
            self.apply(st, kind, crk, cbody, now, csrc, raw)
        return self.apply(st, kind, rk, body, now, src, raw)

    def process_many(self, partition: int,
                     recs: list[tuple[int, str, bytes | None, float, dict[str, Any]]]
                     ) -> list[list[Out] | Exception]:
        """`process` for records (offset, role, bytes, time, source) in order, as the demo
        reads them from a file: per record its outputs, or the exception it raised.
        Consecutive records of one model shard go to its host together (`apply_many`), so
        runs of labelled events take the host's passes, as in the worker."""
        st = self.state(partition)
        results: list[list[Out] | Exception] = [[] for _ in recs]
        group: list[tuple] = []
        where: list[int] = []
        shard = None
        copies: dict[str, list[tuple]] = {}  # challenger shard -> its records, in order
        for i, (offset, role, raw, now, src) in enumerate(recs):
            try:
                kind, rk, body, _ = resolve(role, raw, self.specs)
            except Exception as exc:  # noqa: BLE001 - reported per record by the caller
                results[i] = exc
                continue
            if offset <= st.offset:
                continue
            st.offset = offset
            st.dirty += 1
            for crk, cbody, csrc in challenger_copies(role, body, src, self.specs):
                copies.setdefault(crk, []).append((kind, cbody, now, csrc, raw))
            if rk != shard and group:
                self._apply_group(st, shard, group, where, results)  # type: ignore[arg-type]
                group, where = [], []
            shard = rk
            group.append((kind, body, now, src, raw))
            where.append(i)
        if group:
            self._apply_group(st, shard, group, where, results)  # type: ignore[arg-type]
        for crk, crecs in copies.items():  # a challenger publishes nothing
            self.apply_many(st, crk, crecs)
        return results

    def _apply_group(self, st: PartitionState, rk: str, group: list[tuple], where: list[int],
                     results: list[list[Out] | Exception]) -> None:
        for i, res in zip(where, self.apply_many(st, rk, group), strict=True):
            results[i] = res

    def apply(self, st: PartitionState, kind: str | None, rk: str, body: dict[str, Any],
              now: float, src: dict[str, Any], raw: bytes | None) -> list[Out]:
        """Give one validated record to the host of its model shard (created on first use)."""
        if src.get("copy"):  # a challenger's copy: it publishes nothing, its refusals counted
            self.apply_many(st, rk, [(kind, body, now, src, raw)])
            return []
        host = self.host(st, rk, body.get("model"))
        msg = _message(kind, body, src, raw)
        if isinstance(msg, Exception):
            raise msg
        try:
            return host.handle(*msg[:2], now, msg[2])
        except Exception as exc:  # noqa: BLE001 - re-raised, in words if the learner refused
            raise _refused(exc, body, host) from None

    def apply_many(self, st: PartitionState, rk: str,
                   recs: list[tuple[str | None, dict[str, Any], float, dict[str, Any],
                                    bytes | None]]) -> list[list[Out] | Exception]:
        """Give validated records of one model shard, in order, to its host (all at once
        when it takes them so: `handle_many`): per record its outputs, or the `BadRecord`
        (a learner's refusal in words a user can act on) or other exception it raised; when
        the shard has no host (e.g. its model is no longer configured), that for each."""
        try:
            host = self.host(st, rk, recs[0][1].get("model"))
        except Exception as exc:  # noqa: BLE001 - reported per record by the caller
            return [self._dropped(recs[0][1].get("model"), exc) if r[3].get("copy") else exc
                    for r in recs]
        msgs: list[Any] = []
        for kind, body, now, src, raw in recs:
            try:
                msg = _message(kind, body, src, raw)
            except Exception as exc:  # noqa: BLE001 - e.g. a body a hand-written pack spoiled
                msg = exc
            msgs.append(msg if isinstance(msg, Exception) else (msg[0], msg[1], now, msg[2]))
        todo = [m for m in msgs if not isinstance(m, Exception)]
        many = getattr(host, "handle_many", None)
        if many is not None:
            got = iter(many(todo))
        else:
            got = iter([_call(host.handle, *m) for m in todo])
        out: list[list[Out] | Exception] = []
        for m, (_, body, _, _, _) in zip(msgs, recs, strict=True):
            res = m if isinstance(m, Exception) else next(got)
            out.append(_refused(res, body, host) if isinstance(res, Exception) else res)
        for i, (_, _, _, src, _) in enumerate(recs):
            if src.get("copy"):  # a challenger's copy: nothing published, a refusal counted
                if isinstance(out[i], Exception):
                    host.refused = getattr(host, "refused", 0) + 1
                out[i] = []
        return out

    def _dropped(self, model: Any, exc: Exception) -> list[Out]:
        """A challenger's copy that no host here takes (its model is not in this worker's
        config): dropped, and said once per model; its champion had the record."""
        if model not in self._dropped_copies:
            self._dropped_copies.add(model)
            log.warning("copies of records for challenger %r are dropped: %s (are the workers "
                        "on different configurations?)", model, exc)
        return []

    def tick(self, now: float, partition: int | None = None) -> list[Out]:
        """Expire what is due at `now` (in every partition, or only in `partition`)."""
        out: list[Out] = []
        for p, st in self.partitions.items():
            if partition is None or p == partition:
                for rk, h in st.hosts.items():
                    waiting = _waiting(h)
                    due = h.tick(now)
                    if due or _waiting(h) != waiting:  # e.g. a label given up on: a count
                        self.touched.add((p, rk))
                        out += due
        return out

    def statuses(self, changed: bool = False) -> list[dict[str, Any]]:
        """Every model shard's status; with `changed`, only those given records or timers
        since the last such call (a template may have made thousands of models, most of them
        idle at any time: their unchanged statuses are not worth computing and sending)."""
        out = []
        touched, self.touched = self.touched, set()
        for st in self.partitions.values():
            for rk, h in st.hosts.items():
                if changed and (st.partition, rk) not in touched:
                    continue
                s = {**h.status(), "partition": st.partition, "offset": st.offset,
                     "duplicates_skipped": st.duplicates,
                     "config_changed": getattr(h, "config_changed", None)}
                spec = self.specs.get(h.name)
                if getattr(h, "template", ""):
                    s["template"] = h.template
                if spec is not None and spec.challenger_of:
                    s["challenger_of"] = spec.challenger_of
                    s["refused"] = getattr(h, "refused", 0)
                out.append(s)
        return out
