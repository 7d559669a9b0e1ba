"""The published message shapes (docs/schemas/, /schemas, /asyncapi.json) are the models the
service validates with, and what the hosts really publish fits them; the OpenAPI document
describes every response; /docs and /redoc work without internet."""

from __future__ import annotations

import json
import random
import re
import time
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from fastapi.testclient import TestClient

from agents.host import HostLimits
from agents.messages import BadRecord, dead_letter
from agents.processor import Processor, route
from streamsvc import schemas
from streamsvc.api import create_api
from streamsvc.cli import main
from streamsvc.config import load_settings
from streamsvc.status import StatusView

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "schemas"


def _doc_schema(topic: str) -> dict[str, Any]:
    return json.loads((DOCS / f"{topic}.json").read_text())


def _check(topic: str, msg: dict[str, Any]) -> None:
    """`msg` fits the topic's model (pydantic) and its published JSON Schema file."""
    _, model, _ = schemas.TOPICS[topic]
    model.model_validate(msg)
    jsonschema.validate(msg, _doc_schema(topic),
                        cls=jsonschema.Draft202012Validator)


# -- docs/schemas never drift from the models ----------------------------------------------------
def test_docs_schemas_are_generated_from_the_models() -> None:
    expected = schemas.expected_files()
    on_disk = {p.name for p in DOCS.glob("*.json")}
    assert on_disk == set(expected), "run `streamsvc schemas` to regenerate docs/schemas"
    for name, text in expected.items():
        assert (DOCS / name).read_text() == text, \
            f"docs/schemas/{name} is out of date: run `streamsvc schemas`"


def test_schemas_command_writes_the_same_files(tmp_path: Path, capsys) -> None:
    assert main(["schemas", "--out", str(tmp_path / "s")]) == 0
    assert "wrote 12 files" in capsys.readouterr().out
    for name, text in schemas.expected_files().items():
        assert (tmp_path / "s" / name).read_text() == text
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main(["schemas", "--out", str(blocker / "sub")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("streamsvc schemas: cannot write to") and "Traceback" not in err


def test_every_schema_is_a_valid_json_schema_and_covers_every_topic() -> None:
    roles = set(load_settings(None, {}).topics)
    for topic, (role, _, direction) in schemas.TOPICS.items():
        s = _doc_schema(topic)
        jsonschema.Draft202012Validator.check_schema(s)
        assert s["x-direction"] == direction and role in roles
    internal = {"model_status", "records", "checkpoints"}
    assert {r for r, _, _ in schemas.TOPICS.values()} == roles - internal


# -- inputs: the JSON Schema says what the validators say ----------------------------------------
GOOD_EVENTS = [
    {"id": "a", "x": {"f": 1.5, "c": "red"}},
    {"id": 7, "x": {"f": 1}, "y": True, "model": "m", "ts": 1.0},
    {"id": "b", "x": {}, "y": "spam"},
]
BAD_EVENTS = [
    {"x": {"f": 1}},                      # no id
    {"id": "a"},                          # no features
    {"id": "a", "x": {"f": [1, 2]}},      # a list is not a feature
    {"id": "a", "x": {"f": 1}, "y": 1.5},  # a float label
    {"id": "", "x": {"f": 1}},            # empty id
    {"id": "a", "x": {"f": 1}, "y": ""},  # empty label
]


@pytest.mark.parametrize("msg", GOOD_EVENTS)
def test_event_accepted_by_both(msg: dict) -> None:
    route("events", json.dumps(msg).encode(), {"default": _SPECS["default"],
                                               "m": _SPECS["default"]}, {})
    jsonschema.validate(msg, _doc_schema("events"))


@pytest.mark.parametrize("msg", BAD_EVENTS)
def test_event_refused_by_both(msg: dict) -> None:
    with pytest.raises(BadRecord):
        route("events", json.dumps(msg).encode(), _SPECS, {})
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(msg, _doc_schema("events"))


def test_other_inputs_examples_fit() -> None:
    _check("labels", {"id": "e1", "y": 1})
    _check("edges", {"src": "u", "dst": 2, "ts": 3.0, "w": 0.5, "x": [1.0, 2.0]})
    _check("node-labels", {"node": "u", "y": "bot", "ts": 4.0})
    _check("transitions", {"agent": "a", "episode": "1", "obs": [0.1], "reward": 0,
                           "done": False, "seq": 3})
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"agent": "a", "episode": "1", "obs": [0.1], "done": "no"},
                            _doc_schema("transitions"))


# -- outputs: what the hosts publish fits the published shapes -----------------------------------
_SPECS = load_settings(None, {}).models


def _run(specs: dict, role: str, msgs: list[bytes]) -> dict[str, list[dict]]:
    proc = Processor(specs, HostLimits())
    out: dict[str, list[dict]] = {}
    for i, raw in enumerate(msgs):
        try:
            _, value = route(role, raw, proc.specs, {"topic": role, "partition": 0, "offset": i})
            outs = proc.handle(0, i, value, 1000.0 + i)
        except BadRecord as exc:
            outs = [("dead_letters", None, dead_letter(role, 0, i, str(exc), raw))]
        for r, _, v in outs:
            out.setdefault(r, []).append(v)
    return out


def test_classifier_outputs_fit_their_schemas() -> None:
    rng = random.Random(1)
    msgs = []
    for i in range(3000):  # the label's rule flips at 2000 (the shipped frozen reference
        x = {"a": rng.random(), "b": rng.random()}  # watches from 1,500): a concept drift
        msgs.append(json.dumps({"id": f"e{i}", "x": x,
                                "y": int(x["a" if i < 2000 else "b"] > 0.5)}).encode())
    msgs[100:100] = [b"not json", b"\xff\xfe", b'{"id": "q", "x": {"a": NaN}}']
    out = _run(_SPECS, "events", msgs)
    assert len(out["predictions"]) == 3000 and len(out["dead_letters"]) == 3
    assert out.get("drift_alerts"), "the stream has drifts: expected at least one alert"
    for role, topic in (("predictions", "predictions"), ("drift_alerts", "drift-alerts"),
                        ("dead_letters", "dead-letters")):
        for msg in out[role][:300] + out[role][-300:]:
            _check(topic, msg)
    assert any(m.get("raw_encoding") == "base64" for m in out["dead_letters"])


@pytest.mark.parametrize("kind,topic", [("stream_q", "actions"),
                                        ("stream_td", "value-predictions")])
def test_rl_outputs_fit_their_schemas(kind: str, topic: str) -> None:
    params = "{n_actions = 2}" if kind == "stream_q" else "{}"
    specs = load_settings(None, {"STREAMSVC_MODELS__DEFAULT__KIND": kind,
                                 "STREAMSVC_MODELS__DEFAULT__PARAMS": params}).models
    msgs = [json.dumps({"agent": "a", "episode": str(i // 10), "obs": [i % 10 / 10, 0.5],
                        "reward": 1.0, "done": i % 10 == 9, "seq": i}).encode()
            for i in range(40)]
    out = _run(specs, "transitions", msgs)
    assert len(out[schemas.TOPICS[topic][0]]) == 40
    for msg in out[schemas.TOPICS[topic][0]]:
        _check(topic, msg)


def test_graph_outputs_fit_their_schema() -> None:
    specs = load_settings(None, {"STREAMSVC_MODELS__DEFAULT__KIND": "node_property",
                                 "STREAMSVC_MODELS__DEFAULT__PARAMS": "{}"}).models
    msgs = [json.dumps({"src": f"n{i % 7}", "dst": f"n{(i * 3) % 11}", "ts": float(i),
                        "y": i % 7 % 2}).encode() for i in range(60)]
    out = _run(specs, "edges", msgs)
    assert len(out["node_predictions"]) == 60
    for msg in out["node_predictions"]:
        _check("node-predictions", msg)


# -- the sidecar serves them -----------------------------------------------------------------
def _client() -> TestClient:
    view = StatusView({"default": {"kind": "drift_moe", "family": "classifier"}})
    view.embedded = True
    return TestClient(create_api(view))


def test_schemas_endpoints() -> None:
    c = _client()
    index = c.get("/schemas").json()
    assert [t["topic"] for t in index] == list(schemas.TOPICS)
    for t in index:
        assert c.get(t["url"]).json() == _doc_schema(t["topic"])
    assert c.get("/schemas/drift_alerts").json()["title"] == "DriftAlert"  # the config key too
    r = c.get("/schemas/nope")
    assert r.status_code == 404 and "unknown topic 'nope'; topics: events" in r.json()["detail"]
    doc = c.get("/asyncapi.json").json()
    assert doc == json.loads((DOCS / "asyncapi.json").read_text())
    assert doc["asyncapi"].startswith("3.") and set(doc["channels"]) == set(schemas.TOPICS)
    for op in doc["operations"].values():  # every reference resolves
        ch = op["channel"]["$ref"].split("/")[-1]
        msg = op["messages"][0]["$ref"].split("/")[-1]
        ref = doc["channels"][ch]["messages"][msg]["$ref"].split("/")[-1]
        assert ref in doc["components"]["messages"]


def test_openapi_describes_every_response() -> None:
    spec = _client().get("/openapi.json").json()
    comps = spec["components"]["schemas"]
    for path, item in spec["paths"].items():
        for op in item.values():
            ok = op["responses"]["200"]["content"]
            if path == "/metrics":
                assert "text/plain" in next(iter(ok))
                continue
            s = ok["application/json"]["schema"]
            assert s.get("$ref") or s.get("items") or s.get("type") == "object", path
            if path not in ("/health", "/ready"):
                assert op["responses"]["401"]["content"]["application/json"]["schema"][
                    "$ref"].endswith("/Problem"), path
    ready = spec["paths"]["/ready"]["get"]["responses"]
    assert ready["503"]["content"]["application/json"]["schema"]["$ref"].endswith("/Readiness")
    nf = spec["paths"]["/models/{name}"]["get"]["responses"]["404"]
    assert nf["content"]["application/json"]["schema"]["$ref"].endswith("/Problem")
    detail = comps["ModelDetail"]["properties"]
    assert "drift_alerts" in detail and "alerts" not in detail and "recent_alerts" in detail
    assert {"ready", "reasons", "workers", "mode"} <= set(comps["Readiness"]["properties"])


def test_responses_keep_their_shape_and_survive_bad_relayed_fields() -> None:
    view = StatusView({"m": {"kind": "hoeffding_tree", "family": "classifier"}})
    view.embedded = True
    view.on_status("m#0", {"model": "m", "shard": "m#0", "examples_learned": 9,
                           "examples_evaluated": 4, "correct": 3, "alerts": 2,
                           "rolling_accuracy": 0.75, "updated": time.time()})
    view.on_alert({"model": "m", "kind": "concept", "position": "soon", "ts": 5.0})
    view.on_alert({"model": "m", "kind": "data", "position": 40, "ts": 6.0, "custom": [1]})
    c = TestClient(create_api(view))
    m = c.get("/models/m").json()
    assert m["drift_alerts"] == 2 and "alerts" not in m and m["accuracy"] == 0.75
    assert m["examples_learned"] == 9 and m["shards"][0]["shard"] == "m#0"
    alerts = c.get("/alerts").json()
    assert alerts[0] == {"model": "m", "kind": "data", "position": 40, "ts": 6.0,
                         "custom": [1]}              # as published, extra fields kept
    assert alerts[1] == {"model": "m", "kind": "concept", "ts": 5.0}  # the bad field left out
    assert c.get("/models").json()[0]["drift_alerts"] == 2
    assert c.get("/models/nope").json() == {
        "detail": "unknown model 'nope'; known models: m"}
    h = c.get("/health").json()
    assert h["status"] == "ok" and set(h) == {"status", "version", "uptime_s"}


# -- /docs offline ----------------------------------------------------------------------------
@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_load_their_assets_from_the_sidecar(page: str) -> None:
    c = _client()
    html = c.get(page).text
    assert "/openapi.json" in html
    urls = re.findall(r'(?:src|href)\s*=\s*["\']([^"\']+)["\']', html)
    urls += re.findall(r'url:\s*["\']([^"\']+\.(?:js|css))["\']', html)
    assert urls, html
    assert not [u for u in urls if u.startswith(("http:", "https:", "//"))], urls
    assert "cdn" not in html.lower() and "fonts.googleapis" not in html
    js = [u for u in urls if u.endswith(".js")]
    assert js
    for u in urls:
        r = c.get(u)
        assert r.status_code == 200, u
        if u.endswith(".js"):
            assert len(r.content) > 100_000, u  # the real bundle, not a stub
