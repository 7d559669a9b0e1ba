"""The topics' message shapes as pydantic models, and the JSON Schema / AsyncAPI documents made
from them.

Input shapes are the very models the service validates records with (`agents.messages`);
output shapes are declared here and checked against what the hosts publish
(`tests/test_api_schemas.py`), so the published documents cannot drift from the code.
Outputs allow extra fields: the contract names the keys a consumer can rely on, the service
may add evidence next to them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from agents.messages import EdgeIn, EventIn, LabelIn, NodeLabelIn, TransitionIn
from streamsvc import __version__

Label = bool | int | str


class _Out(BaseModel):
    model_config = ConfigDict(extra="allow")


class Prediction(_Out):
    """`predictions`: the answer to one event, published before the event is learned from."""

    id: str = Field(description="The event's id")
    model: str
    y_pred: Label | None = Field(description="Predicted class (null before the first label)")
    proba: dict[str, float] = Field(description="Class (as text) -> probability")
    ts: float = Field(description="The event's ts, else the time it was processed (epoch s)")
    shard: str = Field(description="Model shard that answered (`<model>#<n>`)")
    examples_learned: int = Field(description="Examples the shard had learned when answering")
    expert: int | None = Field(None, description="DriftMoE: the expert whose answer was given")


class DriftAlert(_Out):
    """`drift-alerts`: a model's error rate (`kind` concept) or its inputs/predictions
    (`kind` data) changed. Only degradations and data shifts are published by default."""

    model: str
    shard: str
    kind: Literal["concept", "data"]
    detector: str = Field(description="Detector that fired (e.g. page_hinkley, adwin, "
                          "reference, data_drift)")
    position: int = Field(description="Examples the shard had seen (data) or learned "
                          "(concept) when it fired")
    ts: float = Field(description="Time of the alert, epoch seconds")
    direction: Literal["degradation", "improvement", "shift"]
    severity: Literal["low", "medium", "high"]
    examples_seen: int
    examples_learned: int
    window_before: int | None = Field(None, description="Examples in the window before the "
                                      "change (concept: before the estimated change point)")
    window_after: int | None = None
    error_rate_before: float | None = Field(None, description="concept: error rate before")
    error_rate_after: float | None = Field(None, description="concept: error rate after")
    accuracy_before: float | None = None
    accuracy_after: float | None = None
    rolling_accuracy: float | None = None
    examples_since_last_alert: int | None = None
    learner: dict[str, Any] | None = Field(None, description="What the learner did, e.g. "
                                           "DriftMoE expert resets")
    evidence_from: str | None = Field(None, description="detector reference: the error rates "
                                      "are those of a frozen reference model")
    live_model: dict[str, Any] | None = Field(None, description="detector reference: the live "
                                              "model's own error rates over the same windows")
    learner_adapted: bool | None = Field(None, description="detector reference: the live "
                                         "model's error did not rise (it has adapted already)"
                                         "; null when its errors from before are not kept")
    inputs_moved: list[str] | None = Field(None, description="detector reference: input "
                                           "features of the data detector's latest input "
                                           "alert, if it came after the reference began "
                                           "learning (the rule may be unchanged)")
    reference_kind: Literal["tree", "linear", "naive_bayes"] | None = Field(
        None, description="detector reference: the frozen model kept (the kind with the fewest "
        "errors on the 500 examples after training)")
    features: list[str] | None = Field(None, description="data: features that moved, "
                                       "strongest first")
    predictions_moved: bool | None = Field(None, description="data: the predictions' "
                                           "distribution moved")
    max_psi: float | None = Field(None, description="data: largest population stability index")
    evidence: dict[str, Any] | None = Field(None, description="data: per-feature statistics")


class DeadLetter(_Out):
    """`dead-letters`: a record the service could not use, with where it came from and why."""

    topic: str = Field(description="Source topic (the demo: the file's name)")
    partition: int
    offset: int = Field(description="Offset in the source partition (the demo: line number)")
    error: str = Field(description="Why, in plain words; the words before the first ':' are "
                       "the reason it is counted under")
    raw: str | None = Field(description="The record as sent: UTF-8 text, or base64 when "
                            "`raw_encoding` says so; null for a null record")
    raw_encoding: Literal["base64"] | None = None
    raw_truncated: bool | None = Field(None, description="Only the first 256 KiB are kept")
    raw_size: int | None = Field(None, description="Size of the record when truncated, bytes")


class NodePrediction(_Out):
    """`node-predictions`: a node-property model's answer for an edge's source node."""

    node: str
    model: str
    y_pred: Label | None
    proba: dict[str, float]
    ts: float


class _Step(_Out):
    model: str
    agent: str
    episode: str
    ts: float
    step: int = Field(description="Step within the episode")
    done: bool
    seq: int | None = Field(None, description="The transition's `seq`, echoed")


class Action(_Step):
    """`actions`: a stream Q(λ) agent's answer to a transition."""

    action: int
    greedy: bool = Field(description="False when the action was exploratory (ε-greedy)")
    epsilon: float
    q: list[float] = Field(description="Action values")


class ValuePrediction(_Step):
    """`value-predictions`: a stream TD(λ) learner's value of the transition's state."""

    value: float = Field(description="Expected discounted future signal")


#: default topic name -> (config role, model, direction seen from the service)
TOPICS: dict[str, tuple[str, type[BaseModel], str]] = {
    "events": ("events", EventIn, "in"),
    "labels": ("labels", LabelIn, "in"),
    "edges": ("edges", EdgeIn, "in"),
    "node-labels": ("node_labels", NodeLabelIn, "in"),
    "transitions": ("transitions", TransitionIn, "in"),
    "predictions": ("predictions", Prediction, "out"),
    "drift-alerts": ("drift_alerts", DriftAlert, "out"),
    "dead-letters": ("dead_letters", DeadLetter, "out"),
    "node-predictions": ("node_predictions", NodePrediction, "out"),
    "actions": ("actions", Action, "out"),
    "value-predictions": ("values", ValuePrediction, "out"),
}


def topic_name(name: str) -> str | None:
    """The default topic name for a topic or config role name ('drift_alerts' too)."""
    if name in TOPICS:
        return name
    return next((t for t, (role, _, _) in TOPICS.items() if role == name), None)


#: input fields that take text or an integer (the validators turn integers into text)
_ID_FIELDS = ("id", "agent", "episode", "src", "dst", "node")
#: what the input fields mean (the input models live in `agents.messages`, without prose)
_INPUT_FIELDS = {
    "id": "Event id; a label for the event is joined by it (text or integer)",
    "model": "Model name (config `[models.<name>]`); events and labels: `default` if absent",
    "x": "Features: name -> number or text (events); numbers as a list or by name (edges)",
    "y": "Label: an integer, true/false or non-empty text (one type per model; 1.0 is "
         "refused: labels are classes)",
    "ts": "Epoch seconds",
    "agent": "Who acts (one environment instance)", "episode": "Episode id",
    "obs": "Observation (finite numbers)", "reward": "Reward of the previous action "
    "(0 on an episode's first transition)", "done": "The episode ended with this step",
    "truncated": "The episode was cut (a time limit), not ended in a terminal state: it "
                 "ends, but its last value still bootstraps from obs",
    "seq": "Correlation id, echoed on the answer", "src": "Source node", "dst": "Target node",
    "w": "Edge weight", "node": "Node id",
}


def json_schema(topic: str) -> dict[str, Any]:
    """The JSON Schema (2020-12) of one topic's messages: inputs as validated, outputs as
    published."""
    _, model, direction = TOPICS[topic]
    schema = model.model_json_schema(mode="validation" if direction == "in" else
                                     "serialization")
    if direction == "in":
        for name, prop in schema.get("properties", {}).items():
            if name in _ID_FIELDS and prop.get("type") == "string":
                title = prop.pop("title", None)
                prop.clear()
                prop.update({"anyOf": [{"type": "string", "minLength": 1, "maxLength": 512},
                                       {"type": "integer"}], "title": title})
            if name in _INPUT_FIELDS:
                prop.setdefault("description", _INPUT_FIELDS[name])
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": f"urn:streamsvc:schema:{topic}", **schema,
            "x-topic": topic, "x-direction": direction}


def all_schemas() -> dict[str, dict[str, Any]]:
    return {t: json_schema(t) for t in TOPICS}


def asyncapi() -> dict[str, Any]:
    """An AsyncAPI 3.0 document of the topics, with the same JSON Schemas as payloads."""
    channels, operations, messages = {}, {}, {}
    for topic, (role, model, direction) in TOPICS.items():
        name = model.__name__
        schema = {k: v for k, v in json_schema(topic).items()
                  if k not in ("$schema", "$id", "x-topic", "x-direction")}
        messages[name] = {"name": name, "title": name, "contentType": "application/json",
                          "summary": (model.__doc__ or "").strip().split("\n")[0],
                          "payload": schema}
        channels[topic] = {
            "address": topic,
            "description": f"Kafka topic (config key `topics.{role}`)",
            "messages": {name: {"$ref": f"#/components/messages/{name}"}}}
        op = ("send" if direction == "in" else "receive")  # as the user's application sees it
        operations[f"{op}{name}"] = {
            "action": op, "channel": {"$ref": f"#/channels/{topic}"},
            "messages": [{"$ref": f"#/channels/{topic}/messages/{name}"}]}
    return {
        "asyncapi": "3.0.0",
        "info": {"title": "streamsvc topics", "version": __version__,
                 "description": "Messages a user's application sends to and receives from "
                 "streamsvc through Kafka (JSON, UTF-8; any key). Generated by `streamsvc "
                 "schemas` from the models the service validates with."},
        "defaultContentType": "application/json",
        "servers": {"kafka": {"host": "localhost:9092", "protocol": "kafka",
                              "description": "`broker` in the config"}},
        "channels": channels, "operations": operations,
        "components": {"messages": messages},
    }


def dumps(doc: dict[str, Any]) -> str:
    """Stable text of a document, as written to docs/ (compared byte for byte by the tests)."""
    return json.dumps(doc, indent=2, ensure_ascii=False, sort_keys=False) + "\n"


def expected_files() -> dict[str, str]:
    """File name -> content of everything `streamsvc schemas` writes."""
    out = {f"{t}.json": dumps(s) for t, s in all_schemas().items()}
    out["asyncapi.json"] = dumps(asyncapi())
    return out


def write(out_dir: Path) -> list[Path]:
    """Write the JSON Schemas and the AsyncAPI document to `out_dir`; returns the paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in expected_files().items():
        p = out_dir / name
        p.write_text(text, encoding="utf-8")
        written.append(p)
    return written
