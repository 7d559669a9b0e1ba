"""Wire shapes of the input topics and their decoding.

Every input record is bytes from an untrusted producer. `decode_*` either returns a validated
object or raises `BadRecord` with a human-readable reason that goes to `dead-letters`.
"""

from __future__ import annotations

import base64
import json
import math
from types import SimpleNamespace
from typing import Annotated, Any

import orjson
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    ValidationError,
    field_validator,
)

MAX_RECORD_BYTES = 1_000_000
MAX_ID_LEN = 512
MAX_DEAD_LETTER_RAW = 256 * 1024
#: what one record may weigh on the internal topic: the largest input record as sent, and a
#: header (the worker's producer and Kafka's default topic limit take 1 MiB)
MAX_FORWARD_BYTES = MAX_RECORD_BYTES + 40_000

Label = StrictBool | StrictInt | Annotated[str, Field(min_length=1, max_length=MAX_ID_LEN)]
Feature = StrictInt | float | Annotated[str, Field(max_length=4096)]


class BadRecord(ValueError):
    """A record that cannot be processed; `str(exc)` is the reason shown in dead-letters."""


def _coerce_id(v: Any) -> str:
    if isinstance(v, bool) or not isinstance(v, str | int):
        raise ValueError("must be text or an integer")
    s = str(v)
    if not s or len(s) > MAX_ID_LEN:
        raise ValueError(f"must have 1 to {MAX_ID_LEN} characters")
    return s


def _finite(v: float, what: str) -> float:
    if isinstance(v, float) and not math.isfinite(v):
        raise ValueError(f"{what} must be finite, got {v}")
    if isinstance(v, int) and not isinstance(v, bool) and abs(v) > 2**53:
        raise ValueError(f"{what} is an integer too large to be a number ({str(v)[:20]}...)")
    return v


class EventIn(BaseModel):
    """`events`: one example to predict (and learn from at once when `y` is present)."""

    model_config = ConfigDict(extra="ignore", strict=False)
    id: str
    model: str = "default"
    x: dict[str, Feature] = Field(min_length=0, max_length=10_000)
    y: Label | None = None
    ts: float | None = None

    _id = field_validator("id", mode="before")(classmethod(lambda cls, v: _coerce_id(v)))

    @field_validator("x")
    @classmethod
    def _features(cls, x: dict[str, Any]) -> dict[str, Any]:
        for k, v in x.items():
            _finite(v, f"feature {k!r}")
        return x

    @field_validator("ts")
    @classmethod
    def _ts(cls, v: float | None) -> float | None:
        return None if v is None else _finite(v, "ts")


class LabelIn(BaseModel):
    """`labels`: the true label of an earlier event, joined by `id`."""

    model_config = ConfigDict(extra="ignore")
    id: str
    model: str = "default"
    y: Label
    ts: float | None = None

    _id = field_validator("id", mode="before")(classmethod(lambda cls, v: _coerce_id(v)))

    @field_validator("ts")
    @classmethod
    def _ts(cls, v: float | None) -> float | None:
        return None if v is None else _finite(v, "ts")


_IDS = "text or an integer"
#: field -> (how the reason names it, what it must be); the shape's name picks x's variant
_FIELDS: dict[str, tuple[str, str]] = {
    "id": ("'id'", _IDS), "agent": ("'agent'", _IDS), "episode": ("'episode'", _IDS),
    "src": ("'src'", _IDS), "dst": ("'dst'", _IDS), "node": ("'node'", _IDS),
    "model": ("'model'", "text (a model name)"),
    "x": ("'x' (the features)", "an object of feature names to numbers or text"),
    "EdgeIn.x": ("'x' (the edge features)", "a list of numbers or an object of names to "
                 "numbers"),
    "y": ("'y' (the label)", "an integer, true/false or non-empty text"),
    "ts": ("'ts' (the time)", "a number (epoch seconds)"),
    "w": ("'w' (the weight)", "a number"), "reward": ("'reward'", "a number"),
    "obs": ("'obs' (the observation)", "a non-empty list of numbers"),
    "done": ("'done'", "true or false"), "seq": ("'seq'", "an integer"),
}
_UNION_TAGS = ("constrained-", "function-", "list[", "dict[", "lax-", "json-or-python")


def said(v: Any, text: str = "the text ") -> str:
    """A JSON value as a person would name it in a reason (`text` goes before a string)."""
    if isinstance(v, str):
        return f"{text}{v[:40]!r}" if v else "empty text"
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return f"the number {v}"
    if isinstance(v, list):
        return "a list" if v else "an empty list"
    return "an object" if v else "an empty object"


def _tag(p: Any) -> bool:
    """A union branch's name in an error's location (`y.bool`, `x.list[float]`)."""
    return isinstance(p, str) and (p in ("bool", "int", "float", "str")
                                   or p.startswith(_UNION_TAGS))


def _where(shape: str, loc: tuple[Any, ...]) -> tuple[str, str]:
    """(name, what it must be) of the field an error is about; union branches dropped."""
    if not loc:
        return "the record", "a JSON object"
    top = str(loc[0])
    rest = [p for p in loc[1:] if not _tag(p)]
    if top == "x" and shape == "EventIn" and len(loc) > 1:
        return f"feature {str(loc[1])!r}", "a number or text"
    if rest and top in ("x", "obs"):
        item = f"feature {rest[0]!r}" if isinstance(rest[0], str) else f"item {rest[0]} of '{top}'"
        return item, "a number"
    name, must = _FIELDS.get(f"{shape}.{top}") or _FIELDS.get(top) or (f"'{top}'", "")
    return name, must


def _reason(exc: ValidationError) -> str:
    """Validation errors in plain words, one clause per field: "missing 'x' (the features)",
    "invalid 'y' (the label): must be an integer, true/false or non-empty text, not the
    number 1.5 (labels are classes: send 1, not 1.0)". The words before the first colon
    name the kind of fault (dead letters are counted by them)."""
    groups: dict[str, tuple[str, list[dict[str, Any]]]] = {}
    for err in exc.errors():
        name, must = _where(exc.title, tuple(err["loc"]))
        groups.setdefault(name, (must, []))[1].append(err)
    deeper = {str(e["loc"][0]) for _, es in groups.values() for e in es
              if len([p for p in e["loc"][1:] if not _tag(p)]) > 0}
    parts = []
    for name, (must, errs) in list(groups.items())[:5]:
        types = {e["type"] for e in errs}
        given = errs[0].get("input")
        if "missing" in types:
            parts.append(f"missing {name}" + (f": {must}" if must else ""))
            continue
        if all(len(e["loc"]) == 2 and _tag(e["loc"][1]) and str(e["loc"][0]) in deeper
               for e in errs):
            continue  # a union's other branch (x: list or object): the deeper error says why
        custom = [e["msg"].removeprefix("Value error, ") for e in errs
                  if e["type"] == "value_error"]
        long = [e for e in errs if e["type"] in ("string_too_long", "too_long")]
        if custom:
            msg, at = custom[0], custom[0].find(" must ")
            if at > 0:  # "feature 'a' must be finite": the validator named what it checked
                if "'" in msg[:at] or "[" in msg[:at]:
                    name = msg[:at]
                msg = msg[at + 1:]
        elif long:
            unit = "characters" if long[0]["type"] == "string_too_long" else "items"
            msg = f"longer than {long[0].get('ctx', {}).get('max_length', '?')} {unit}"
        elif must:
            msg = f"must be {must}, not {said(given)}"
            if name.startswith("'y'") and isinstance(given, float):
                msg += (f" (labels are classes: send {int(given)}, not {given})"
                        if given.is_integer() else " (labels are classes, not measurements)")
        else:
            msg = errs[0]["msg"].replace("Input should be", "must be").lower()
        parts.append(f"invalid {name}: {msg}")
    return "; ".join(parts) or "invalid record"


def load_json(raw: bytes | None) -> dict[str, Any]:
    """Parse one JSON object; anything else raises `BadRecord`.

    orjson first (it also refuses NaN/Infinity and lone UTF-16 surrogates, which could not
    become UTF-8 again); what it refuses is parsed again by the standard library only to
    give the reason in the same words whichever parser saw it first."""
    if raw is None:
        raise BadRecord("empty record (null value)")
    if len(raw) > MAX_RECORD_BYTES:
        raise BadRecord(f"record too large ({len(raw)} bytes > {MAX_RECORD_BYTES})")
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError:
        obj = _load_json_slow(raw)
    if not isinstance(obj, dict):
        raise BadRecord(f"expected a JSON object ({{...}}), got {said(obj)}")
    return obj


def _load_json_slow(raw: bytes) -> Any:
    try:
        obj = json.loads(raw, parse_constant=_reject_constant)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise BadRecord(f"not valid UTF-8 JSON: {_json_words(exc, raw)}") from None
    except ValueError as exc:
        raise BadRecord(str(exc)) from None
    try:  # JSON escapes may smuggle in lone surrogates, which cannot become UTF-8 again
        json.dumps(obj, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise BadRecord("invalid string: lone UTF-16 surrogate escape") from None
    except (ValueError, RecursionError) as exc:  # e.g. too deeply nested for the encoder
        raise BadRecord(f"not valid UTF-8 JSON: {exc}") from None
    return obj


def _json_words(exc: Exception, raw: bytes) -> str:
    """The parser's complaint without Python's wording ('codec can't decode', 'char 1')."""
    if isinstance(exc, UnicodeDecodeError):
        return f"byte 0x{raw[exc.start]:02x} at position {exc.start} is not UTF-8 text"
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg.lower()} at line {exc.lineno}, column {exc.colno}"
    return "nested too deeply"


def _reject_constant(name: str) -> float:
    raise ValueError(f"not valid JSON: {name} is not a JSON number")


def decode(raw: bytes | None, shape: type[BaseModel]) -> Any:
    obj = load_json(raw)
    try:
        return shape.model_validate(obj)
    except ValidationError as exc:
        raise BadRecord(_reason(exc)) from None


class Record(SimpleNamespace):
    """A validated event or label on the learn stage, with `EventIn`/`LabelIn`'s fields.

    Why not `EventIn.model_construct`: the ingest stage validated the body already, and
    building a pydantic object per record costs more than the host's own bookkeeping."""

    def model_dump_json(self) -> str:
        return orjson.dumps(self.__dict__).decode()


def _plain_id(v: Any) -> str | None:
    if type(v) is str:
        return v if 0 < len(v) <= MAX_ID_LEN else None
    if type(v) is int:
        s = str(v)
        return s if len(s) <= MAX_ID_LEN else None
    return None


def _plain_label(v: Any) -> bool:
    t = type(v)
    return t is bool or t is int or (t is str and 0 < len(v) <= MAX_ID_LEN)


def _plain_ts(v: Any) -> tuple[bool, float | None]:
    if v is None:
        return True, None
    t = type(v)
    if t is float:
        return math.isfinite(v), v
    if t is int:
        return True, float(v)
    return False, None


def fast_body(kind: str, obj: dict[str, Any]) -> dict[str, Any] | None:
    """The validated body of a plain event or label (exact JSON types, nothing to coerce or
    refuse), as `EventIn`/`LabelIn(...).model_dump(mode="json")` would give it; None for
    anything else, which then takes the full pydantic path (and its error messages).

    Why: pydantic per record costs more than a Hoeffding tree's update; the common record
    needs a few type checks. `tests/test_messages_fast.py` checks both paths agree."""
    rid = _plain_id(obj.get("id"))
    model = obj.get("model", "default")
    if rid is None or type(model) is not str:
        return None
    ok, ts = _plain_ts(obj.get("ts"))
    if not ok:
        return None
    y = obj.get("y")
    if kind == "event":
        x = obj.get("x")
        if type(x) is not dict or len(x) > 10_000:
            return None
        for v in x.values():
            t = type(v)
            if t is float:
                if v - v != 0.0:  # inf or nan
                    return None
            elif t is int:
                if v > 2**53 or v < -(2**53):
                    return None
            elif t is not str or len(v) > 4096:
                return None
        if y is not None and not _plain_label(y):
            return None
        return {"id": rid, "model": model, "x": x, "y": y, "ts": ts}
    if kind == "label":
        if y is None or not _plain_label(y):
            return None
        return {"id": rid, "model": model, "y": y, "ts": ts}
    return None


def dead_letter(topic: str, partition: int, offset: int, error: str, raw: bytes | None) -> dict:
    """The `dead-letters` message: where the record came from, why it failed, its raw bytes
    (UTF-8 text when it is text, else base64 with `raw_encoding` saying so)."""
    msg: dict[str, Any] = {"topic": topic, "partition": partition, "offset": offset,
                           "error": error}
    if raw is not None and len(raw) > MAX_DEAD_LETTER_RAW:  # stay below Kafka's 1 MB limit
        msg["raw_truncated"], msg["raw_size"] = True, len(raw)
        raw = raw[:MAX_DEAD_LETTER_RAW]
    if raw is None:
        msg["raw"] = None
    else:
        try:
            msg["raw"] = raw.decode("utf-8")
        except UnicodeDecodeError:
            msg["raw"] = base64.b64encode(raw).decode("ascii")
            msg["raw_encoding"] = "base64"
    return msg


def _finite_list(values: list[float], what: str) -> list[float]:
    for i, v in enumerate(values):
        _finite(v, f"{what}[{i}]")
    return values


class TransitionIn(BaseModel):
    """`transitions`: one step of an environment, for a stream TD/Q model. The first
    transition of an episode carries reward 0; later ones the reward of the previous action."""

    model_config = ConfigDict(extra="ignore")
    agent: str
    episode: str
    obs: list[float] = Field(min_length=1, max_length=100_000)
    reward: float = 0.0
    done: StrictBool = False
    # gymnasium's truncated: the episode was cut (a time limit), not ended in a terminal
    # state, so the last value still bootstraps from obs; it also ends the episode
    truncated: StrictBool | None = None
    model: str | None = None
    ts: float | None = None
    seq: StrictInt | None = None  # client's correlation id, echoed on the answer

    _agent = field_validator("agent", "episode", mode="before")(
        classmethod(lambda cls, v: _coerce_id(v)))

    @field_validator("obs")
    @classmethod
    def _obs(cls, v: list[float]) -> list[float]:
        return _finite_list(v, "obs")

    @field_validator("reward", "ts")
    @classmethod
    def _num(cls, v: float | None) -> float | None:
        return None if v is None else _finite(v, "value")


class EdgeIn(BaseModel):
    """`edges`: a timestamped (optionally weighted, featured, labelled) edge src → dst."""

    model_config = ConfigDict(extra="ignore")
    src: str
    dst: str
    ts: float
    w: float = 1.0
    x: list[float] | dict[str, float] | None = None
    y: Label | None = None
    model: str | None = None

    _ids = field_validator("src", "dst", mode="before")(classmethod(lambda cls, v: _coerce_id(v)))

    @field_validator("ts", "w")
    @classmethod
    def _num(cls, v: float) -> float:
        return _finite(v, "value")

    @field_validator("x")
    @classmethod
    def _x(cls, v: Any) -> Any:
        if isinstance(v, dict):
            _finite_list(list(v.values()), "x")
        elif isinstance(v, list):
            _finite_list(v, "x")
        return v


class NodeLabelIn(BaseModel):
    """`node-labels`: the label of a node at time ts."""

    model_config = ConfigDict(extra="ignore")
    node: str
    y: Label
    ts: float
    model: str | None = None

    _node = field_validator("node", mode="before")(classmethod(lambda cls, v: _coerce_id(v)))

    @field_validator("ts")
    @classmethod
    def _num(cls, v: float) -> float:
        return _finite(v, "ts")
