"""Many models without Kafka: templates make a model per name on first use, challengers get a
copy of their champion's records and publish nothing, and the config says what is wrong with
either in words."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest

from agents.host import HostLimits
from agents.pipeline import Forward, Pipeline
from streamsvc.config import ConfigError, load_settings

CONFIG = """
[models.default]
kind = "hoeffding_tree"

[models.candidate]
kind = "hoeffding_tree"
challenger_of = "default"
shards = 2
params = { grace_period = 20 }

[models."tenant-*"]
kind = "hoeffding_tree"
max_models = 2
"""


def _settings(tmp_path: Path, text: str = CONFIG):
    path = tmp_path / "streamsvc.toml"
    path.write_text(text)
    return load_settings(path, {})


def _pipe(tmp_path: Path) -> Pipeline:
    return Pipeline(_settings(tmp_path).models, HostLimits())


def _event(i: int, model: str | None = None, y: bool = True) -> bytes:
    body = {"id": f"e{i}", "x": {"f": float(i % 7)}, "y": y}
    if model is not None:
        body["model"] = model
    return json.dumps(body).encode()


def _through_kafka_path(pipe: Pipeline, raws: list[bytes], offsets: dict[str, int]
                        ) -> list:
    """Both stages as the worker runs them: ingest, one records message per forwarded record
    (copies included), learn. Returns the outputs; `offsets`: the last one of each shard."""
    outs: list = []
    first = sum(offsets.values()) + len(offsets)
    for i, raw in enumerate(raws, first):
        res = pipe.ingest("events", "events", 0, i, raw)
        if not isinstance(res, Forward):
            outs.append(res)
            continue
        for fwd in (res, *res.copies):
            n = offsets[fwd.key] = offsets.get(fwd.key, -1) + 1
            part = abs(hash(fwd.key)) % 1000  # a partition per shard: offsets of its own
            pipe.assign(part, None, None) if part not in pipe.proc.partitions else None
            outs += pipe.learn(part, n, fwd.value, 1000 + i)
    return outs


def _status(pipe: Pipeline, model: str) -> list[dict]:
    return [s for s in pipe.statuses() if s["model"] == model]


def test_a_challenger_learns_every_record_of_its_champion_and_publishes_nothing(
        tmp_path: Path) -> None:
    pipe = _pipe(tmp_path)
    raws = [_event(i, y=i % 3 == 0) for i in range(200)]
    shards: dict[str, int] = {}
    outs = _through_kafka_path(pipe, raws, shards)
    assert set(shards) == {"default", "candidate#0", "candidate#1"}
    preds = [v for role, _, v in outs if role == "predictions"]
    assert len(preds) == 200 and {p["model"] for p in preds} == {"default"}
    champ, chall = _status(pipe, "default"), _status(pipe, "candidate")
    assert sum(s["examples_learned"] for s in chall) == 200 == champ[0]["examples_learned"]
    assert len(chall) == 2 and all(s["challenger_of"] == "default" for s in chall)
    assert all(s["refused"] == 0 for s in chall) and "challenger_of" not in champ[0]
    # a record the learner refuses is dead-lettered once (by the champion), counted by both
    bad = json.dumps({"id": "bad", "x": {"f": 1.0}, "y": "text"}).encode()
    outs = _through_kafka_path(pipe, [bad], shards)
    assert [role for role, _, _ in outs] == ["dead_letters"]
    assert sum(s["refused"] for s in _status(pipe, "candidate")) == 1


def test_a_challenger_is_fed_in_process_too(tmp_path: Path) -> None:
    pipe = _pipe(tmp_path)
    for i in range(50):
        outs = pipe.process("events", "events", 0, i, _event(i))
        assert [o[0] for o in outs] == ["predictions"]
    res = pipe.process_many("events", "events", 0,
                            [(50 + i, _event(50 + i), None) for i in range(50)])
    assert all([o[0] for o in r] == ["predictions"] for r in res)
    assert sum(s["examples_learned"] for s in _status(pipe, "candidate")) == 100


def test_a_challenger_is_promoted_by_swapping_challenger_of(tmp_path: Path) -> None:
    """A record naming a challenger goes to its champion. So after a swap in the config, the
    producers that name the old champion (or no model) are answered by the new one, and each
    model goes on from what it learned (its checkpoint)."""
    pipe = _pipe(tmp_path)
    for i in range(100):
        pipe.process("events", "events", 0, i, _event(i, y=i % 2 == 0))
    outs = pipe.process("events", "events", 0, 100, _event(100, "candidate"))
    assert [p["model"] for _, _, p in outs] == ["default"]  # named the challenger
    blob, _ = pipe.snapshot(0)
    swapped = CONFIG.replace('challenger_of = "default"\n', "").replace(
        'kind = "hoeffding_tree"\n', 'kind = "hoeffding_tree"\nchallenger_of = "candidate"\n', 1)
    after = Pipeline(_settings(tmp_path, swapped).models, HostLimits())
    after.assign(0, blob, None)
    outs = after.process("events", "events", 0, 101, _event(101))  # no model named
    assert [p["model"] for _, _, p in outs] == ["candidate"]
    assert sum(s["examples_learned"] for s in _status(after, "candidate")) == 102
    [default] = _status(after, "default")
    assert default["examples_learned"] == 102 and default["challenger_of"] == "candidate"


def test_a_template_makes_one_model_per_name_and_stops_at_max_models(tmp_path: Path) -> None:
    pipe = _pipe(tmp_path)
    pipe.assign(0, None, None)
    for i in range(30):
        for tenant in ("tenant-a", "tenant-b"):
            outs = pipe.process("events", "events", 0, 2 * i + (tenant == "tenant-b"),
                                _event(i, tenant, y=tenant == "tenant-a"))
            assert [p["model"] for _, _, p in outs] == [tenant]
    a, b = _status(pipe, "tenant-a"), _status(pipe, "tenant-b")
    assert a[0]["template"] == b[0]["template"] == "tenant-*"
    assert a[0]["examples_learned"] == b[0]["examples_learned"] == 30
    # each learned its own stream: a answers True, b answers False
    assert pipe.process("events", "events", 0, 100, _event(0, "tenant-a"))[0][2]["y_pred"]
    assert not pipe.process("events", "events", 0, 101, _event(0, "tenant-b"))[0][2]["y_pred"]
    # a third name in this partition passes max_models = 2: dead-lettered, the worker goes on
    dead = pipe.process("events", "events", 0, 102, _event(0, "tenant-c"))
    assert dead[0][0] == "dead_letters"
    assert "max_models = 2" in dead[0][2]["error"] and "'tenant-c'" in dead[0][2]["error"]
    # the made models survive a checkpoint: a restored worker goes on with them
    blob, _ = pipe.snapshot(0)
    again = _pipe(tmp_path)
    again.assign(0, blob, None)
    assert again.process("events", "events", 0, 103, _event(0, "tenant-a"))[0][2]["y_pred"]
    assert again.process("events", "events", 0, 104, _event(0, "tenant-c"))[0][0] \
        == "dead_letters"
    assert pickle.loads(blob).hosts["tenant-a"].template == "tenant-*"


@pytest.mark.parametrize(("model", "said"), [
    ("tenant-*", "a template's name names no model; name one it makes (e.g. 'tenant-1')"),
    ("tenant-a b", "model name not allowed by template 'tenant-*' (letters, digits"),
    ("tenat-a", "unknown model; configured models are candidate, default, tenant-*: 'tenat-a'"),
])
def test_names_no_model_can_have_are_refused_in_words(tmp_path: Path, model: str,
                                                       said: str) -> None:
    pipe = _pipe(tmp_path)
    out = pipe.ingest("events", "events", 0, 0, _event(0, model))
    assert not isinstance(out, Forward)
    assert said in out[2]["error"]
    assert model not in list(pipe.dead_by_reason)[0]  # the name is no part of the class


def test_the_settings_catalog_knows_the_names_templates_make(tmp_path: Path) -> None:
    s = _settings(tmp_path)
    assert "tenant-42" in s.catalog and "tenant-*" not in s.catalog
    assert s.catalog["tenant-42"].template == "tenant-*" and "other" not in s.catalog
    assert [c.name for c in s.catalog.challengers("default")] == ["candidate"]


@pytest.mark.parametrize(("extra", "said"), [
    ('[models.c]\nkind = "arf"\nchallenger_of = "defualt"',
     "'models.c.challenger_of' must name another configured model (did you mean 'default'?)"),
    ('[models.c]\nkind = "arf"\nchallenger_of = "c"', "a model cannot challenge itself"),
    ('[models.c]\nkind = "arf"\nchallenger_of = "candidate"',
     "'candidate' is itself a challenger (of 'default')"),
    ('[models.c]\nkind = "arf"\nchallenger_of = "tenant-*"', "templates take no challengers"),
    ('[models.c]\nkind = "node_property"\nchallenger_of = "default"',
     "a node_property model cannot see its records"),
    ('[models.q]\nkind = "stream_q"\nparams = { n_actions = 2 }\n[models.c]\n'
     'kind = "stream_q"\nparams = { n_actions = 2 }\nchallenger_of = "q"',
     "a reinforcement-learning agent cannot be a challenger"),
    ('[models.c]\nkind = "arf"\nmax_models = 3', "'models.c.max_models' applies only to a "
     "template"),
    ('[models."t-*"]\nkind = "arf"\nmax_models = 0', "must be an integer >= 1"),
    ('[models."t/*"]\nkind = "arf"', "'*' in a template's name"),
])
def test_wrong_challengers_and_templates_fail_at_start_naming_the_key(
        tmp_path: Path, extra: str, said: str) -> None:
    with pytest.raises(ConfigError) as err:
        _settings(tmp_path, CONFIG + extra)
    assert said in str(err.value)


@pytest.mark.parametrize("module", ["agents.catalog", "streamsvc.words"])
def test_the_docstring_examples_run(module: str) -> None:
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(module))
    assert result.attempted >= 2 and result.failed == 0


def test_the_sidecar_sets_a_challenger_beside_its_champion_and_lists_made_models(
        tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from streamsvc.api import configured_models, create_api
    from streamsvc.status import StatusView

    settings = _settings(tmp_path)
    pipe = Pipeline(settings.models, HostLimits())
    for i in range(300):
        pipe.process("events", "events", 0, i, _event(i, y=i % 2 == 0))
    pipe.process("events", "events", 0, 300, _event(0, "tenant-a"))
    view = StatusView(configured_models(settings))
    for s in pipe.statuses():
        view.on_status(s["shard"], s)
    api = TestClient(create_api(view, configured=settings.catalog))
    names = [m["name"] for m in api.get("/models").json()]
    assert names == ["candidate", "default", "tenant-a"]  # no "tenant-*": it is no model
    champ = api.get("/models/default").json()
    [ch] = champ["challengers"]
    # the same 300 events, less the first of each shard (nothing learned yet: not scored)
    assert ch["name"] == "candidate" and ch["examples_evaluated"] == 298
    assert champ["examples_evaluated"] == 299
    assert ch["vs_champion"]["accuracy"] == pytest.approx(ch["accuracy"] - champ["accuracy"])
    cand = api.get("/models/candidate").json()
    assert cand["challenger_of"] == "default" and cand["refused"] == 0
    assert cand["vs_champion"] == ch["vs_champion"]
    assert api.get("/models/tenant-a").json()["template"] == "tenant-*"
    r = api.get("/models/tenant-b")
    assert r.status_code == 404 and "template 'tenant-*' makes it when a record" in r.text
    r = api.get("/models/tenant-*")
    assert r.status_code == 404 and "is a model template" in r.text
    assert api.get("/models/other").status_code == 404


def test_a_graph_model_can_have_a_challenger(tmp_path: Path) -> None:
    settings = _settings(tmp_path, '[models.g]\nkind = "node_property"\n'
                                   '[models.g2]\nkind = "node_property"\nchallenger_of = "g"\n')
    pipe = Pipeline(settings.models, HostLimits())
    off = 0
    for i in range(60):
        outs = pipe.process("node_labels", "node-labels", 0, off,
                            json.dumps({"node": f"n{i}", "y": i % 2, "ts": i}).encode())
        outs += pipe.process("edges", "edges", 0, off + 1, json.dumps(
            {"src": f"n{i}", "dst": f"n{(i + 2) % 60}", "ts": i}).encode())
        off += 2
        assert all(o[2].get("model") in (None, "g") for o in outs)
    g, g2 = _status(pipe, "g")[0], _status(pipe, "g2")[0]
    assert g2["challenger_of"] == "g" and g2["examples_seen"] == g["examples_seen"] > 0


def test_the_readme_many_models_configs_load(tmp_path: Path) -> None:
    import re

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split("### Many models", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```toml\n(.*?)```", section, re.S)
    assert len(blocks) == 2
    made = _settings(tmp_path, blocks[0])
    assert made.catalog["tenant-42"].template == "tenant-*"
    champ = _settings(tmp_path, blocks[1])
    assert [c.name for c in champ.catalog.challengers("default")] == ["candidate"]


def test_only_the_models_given_records_report_between_full_statuses(tmp_path: Path) -> None:
    pipe = _pipe(tmp_path)
    for i, tenant in enumerate(["tenant-a", "tenant-b"]):
        pipe.process("events", "events", 0, i, _event(i, tenant))
    assert {s["model"] for s in pipe.statuses(changed=True)} == {"tenant-a", "tenant-b"}
    assert pipe.statuses(changed=True) == []  # nothing since
    pipe.process("events", "events", 0, 2, _event(2, "tenant-b"))
    assert [s["model"] for s in pipe.statuses(changed=True)] == ["tenant-b"]
    assert {s["model"] for s in pipe.statuses()} == {"tenant-a", "tenant-b"}
    # a restored partition reports all its models (a new worker holds them now)
    blob, _ = pipe.snapshot(0)
    again = _pipe(tmp_path)
    again.assign(0, blob, None)
    assert {s["model"] for s in again.statuses(changed=True)} == {"tenant-a", "tenant-b"}


def test_a_label_given_up_on_is_reported_before_the_next_full_status(tmp_path: Path) -> None:
    pipe = Pipeline(_settings(tmp_path).models, HostLimits(pending_ttl=10.0))
    pipe.process("events", "events", 0, 0, json.dumps({"id": "a", "x": {"f": 1.0}}).encode(),
                 ts_ms=1_000)
    pipe.statuses(changed=True)
    pipe.process("events", "events", 1, 0, _event(1, "tenant-a"), ts_ms=100_000)
    pipe.proc.tick(100.0)  # the event waited 99 s > pending_ttl: its label is given up on
    changed = {s["model"]: s for s in pipe.statuses(changed=True)}
    assert changed["default"]["labels_missing"] == 1


def test_the_status_view_answers_for_all_models_as_for_each(tmp_path: Path) -> None:
    from streamsvc.api import configured_models
    from streamsvc.status import HISTORY_KEPT_MADE, StatusView

    settings = _settings(tmp_path)
    view = StatusView(configured_models(settings))
    for i in range(200):  # 200 statuses of 3 made models, 2 shards of a challenger
        model = f"tenant-{i % 3}"
        view.on_status(model, {"model": model, "template": "tenant-*", "examples_learned": i,
                               "examples_evaluated": i, "correct": i // 2, "alerts": 0})
    for k in (0, 1):
        view.on_status(f"candidate#{k}", {"model": "candidate", "challenger_of": "default",
                                          "examples_evaluated": 10, "correct": 7 + k,
                                          "alerts": 0})
    view.on_alert({"model": "tenant-1", "position": 5})
    every = view.models()
    assert [m["name"] for m in every] == ["candidate", "default", "tenant-0", "tenant-1",
                                          "tenant-2"]
    for m in every:
        one = view.model(m["name"])
        one.pop("challengers", None), one.pop("vs_champion", None)
        assert m == one
    assert every[3]["drift_alerts"] == 1 and every[0]["accuracy"] == 0.75
    assert len(view.model_history("tenant-0")) == HISTORY_KEPT_MADE
    view.on_status("candidate#1", None)  # a shard's status deleted (compaction tombstone)
    assert view.model("candidate")["examples_evaluated"] == 10


def test_graph_records_without_a_model_find_it_when_a_template_is_configured(
        tmp_path: Path) -> None:
    settings = _settings(tmp_path, CONFIG + '[models.g]\nkind = "node_property"\n')
    out = Pipeline(settings.models, HostLimits()).ingest(
        "edges", "edges", 0, 0, b'{"src": "a", "dst": "b", "ts": 1.0}')
    assert isinstance(out, Forward) and out.key == "g"


def test_a_copy_publishes_nothing_whatever_the_learning_worker_config(tmp_path: Path) -> None:
    """Copies are marked when they are made: during a rolling restart (workers on two
    configurations) every event still gets exactly one prediction, and a copy for a model the
    learning worker does not know is dropped, not dead-lettered."""
    ingest = _pipe(tmp_path)  # candidate challenges default
    swapped = CONFIG.replace('challenger_of = "default"\n', "").replace(
        'kind = "hoeffding_tree"\n', 'kind = "hoeffding_tree"\nchallenger_of = "candidate"\n', 1)
    for learner_config in (swapped, '[models.default]\nkind = "hoeffding_tree"\n'):
        learn = Pipeline(_settings(tmp_path, learner_config).models, HostLimits())
        outs = []
        for i in range(20):
            fwd = ingest.ingest("events", "events", 0, i, _event(i))
            for n, f in enumerate((fwd, *fwd.copies)):
                learn.assign(n, None, None) if n not in learn.proc.partitions else None
                outs += learn.learn(n, i, f.value, 1000 + i)
        assert [o[0] for o in outs] == ["predictions"] * 20
        assert {o[2]["model"] for o in outs} == {"default"}


def test_made_models_keep_their_template_and_cap_through_a_reset_restore(
        tmp_path: Path) -> None:
    pipe = _pipe(tmp_path)
    for i, tenant in enumerate(["tenant-a", "tenant-b"]):
        pipe.process("events", "events", 0, i, _event(i, tenant))
    blob, _ = pipe.snapshot(0)
    reset = CONFIG.replace('max_models = 2\n', 'max_models = 2\non_config_change = "reset"\n'
                           'params = { grace_period = 10 }\n')
    again = Pipeline(_settings(tmp_path, reset).models, HostLimits())
    again.assign(0, blob, None)
    assert {s.get("template") for s in again.statuses()} == {"tenant-*"}
    dead = again.process("events", "events", 0, 2, _event(2, "tenant-c"))
    assert dead[0][0] == "dead_letters" and "max_models" in dead[0][2]["error"]


def test_a_challenger_run_alone_answers_for_itself(tmp_path: Path) -> None:
    """`streamsvc demo --model candidate` runs that model alone: no champion to go to."""
    spec = _settings(tmp_path).models["candidate"]
    pipe = Pipeline({"candidate": spec}, HostLimits())
    outs = pipe.process("events", "events", 0, 0, _event(0, "candidate"))
    assert [o[2]["model"] for o in outs] == ["candidate"]


def test_a_record_forwarded_twice_changes_the_status(tmp_path: Path) -> None:
    pipe = _pipe(tmp_path)
    pipe.assign(0, None, None)
    fwd = pipe.ingest("events", "events", 0, 0, _event(0))
    pipe.learn(0, 0, fwd.value, 1000)
    pipe.statuses(changed=True)
    pipe.learn(0, 1, fwd.value, 1000)  # the same record again (the ingest stage retried)
    [s] = pipe.statuses(changed=True)
    assert s["duplicates_skipped"] == 1


def test_metrics_sum_a_templates_models_instead_of_a_series_each(tmp_path: Path) -> None:
    from streamsvc.api import configured_models, prometheus_text
    from streamsvc.status import StatusView

    view = StatusView(configured_models(_settings(tmp_path)))
    for i, (ev, ok, roll) in enumerate([(10, 9, 0.9), (20, 10, 0.4), (0, 0, None)]):
        view.on_status(f"tenant-{i}", {"model": f"tenant-{i}", "template": "tenant-*",
                                       "examples_learned": ev, "examples_evaluated": ev,
                                       "correct": ok, "rolling_accuracy": roll, "alerts": 0})
    view.on_status("default", {"model": "default", "examples_learned": 5,
                               "examples_evaluated": 5, "correct": 4, "alerts": 0})
    text = prometheus_text(view)
    assert 'model="tenant-' not in text and 'streamsvc_examples_learned{model="default"} 5.0' \
        in text
    for line in ('streamsvc_template_models{template="tenant-*"} 3.0',
                 'streamsvc_template_examples_learned{template="tenant-*"} 30.0',
                 'streamsvc_template_accuracy{template="tenant-*"} 0.6333333333333333',
                 'streamsvc_template_worst_rolling_accuracy{template="tenant-*"} 0.4'):
        assert line in text, text


def test_after_a_promotion_the_sidecar_believes_the_workers_not_its_older_config(
        tmp_path: Path) -> None:
    from streamsvc.api import configured_models
    from streamsvc.status import StatusView

    view = StatusView(configured_models(_settings(tmp_path)))  # candidate challenges default
    # the workers restarted on the swapped config: default now challenges candidate
    view.on_status("default", {"model": "default", "challenger_of": "candidate",
                               "examples_evaluated": 10, "correct": 6})
    view.on_status("candidate#0", {"model": "candidate", "examples_evaluated": 10,
                                   "correct": 8})
    cand, default = view.model("candidate"), view.model("default")
    assert "challenger_of" not in cand and [c["name"] for c in cand["challengers"]] == ["default"]
    assert default["challenger_of"] == "candidate" and "challengers" not in default
    assert default["vs_champion"]["accuracy"] == pytest.approx(-0.2)


def test_a_label_for_no_event_is_dead_lettered_once_not_once_per_challenger(
        tmp_path: Path) -> None:
    pipe = Pipeline(_settings(tmp_path).models, HostLimits(orphan_ttl=10.0))
    assert pipe.process("labels", "labels", 0, 0, b'{"id": "nobody", "y": true}',
                        ts_ms=1_000) == []
    outs = pipe.process("events", "events", 0, 1, _event(1), ts_ms=60_000)
    dead = [v for role, _, v in outs if role == "dead_letters"]
    assert len(dead) == 1 and dead[0]["raw"] == '{"id": "nobody", "y": true}'
    assert pipe.counters["dead_letters"] == 1
    assert sum(s["labels_unknown"] for s in _status(pipe, "candidate")) == 1
