"""The record pipeline alone (no Kafka): dead letters carry the bytes as sent, each records
partition expires waiting labels on its own clock, replay failures are counted."""

from __future__ import annotations

import time

from agents.host import HostLimits
from agents.pipeline import Forward, Pipeline
from streamsvc.config import load_settings

SPECS = load_settings(None, {"STREAMSVC_MODELS__DEFAULT__KIND": "hoeffding_tree"}).models


def _pipe(**limits) -> Pipeline:
    pipe = Pipeline(SPECS, HostLimits(**limits))
    for p in (0, 1):
        pipe.assign(p, None, None)
    return pipe


def _through(pipe: Pipeline, role: str, raw: bytes, partition: int, offset: int,
             ts_ms: int) -> list:
    fwd = pipe.ingest(role, role, 0, offset, raw)
    assert isinstance(fwd, Forward), fwd
    return pipe.learn(partition, offset, fwd.value, ts_ms)


def test_a_learner_refusal_dead_letters_the_bytes_as_sent() -> None:
    pipe = _pipe()
    _through(pipe, "events", b'{"id": "a", "x": {"f": 1.0}, "y": 1}', 0, 0, 1000)
    sent = b'{ "id":"b",   "x": {"f": 2.5}, "y": "cat" }'  # spacing no encoder would write
    outs = _through(pipe, "events", sent, 0, 1, 1000)
    dead = [v for role, _, v in outs if role == "dead_letters"]
    assert len(dead) == 1
    assert dead[0]["raw"] == sent.decode()
    assert dead[0]["error"] == (
        "model 'default' learns integers, not text labels: label 'cat' (a model learns the "
        "type of its first label); send labels of that type, or use another model")
    assert (dead[0]["topic"], dead[0]["offset"]) == ("events", 1)


def test_an_expired_orphan_label_dead_letters_the_bytes_as_sent() -> None:
    pipe = _pipe(orphan_ttl=60.0)
    sent = b'{"y": 1,  "id": "never-seen"}'
    assert _through(pipe, "labels", sent, 0, 0, 1_000_000) == []
    outs = _through(pipe, "events", b'{"id": "later", "x": {"f": 1.0}}', 0, 1, 1_100_000)
    dead = [v for role, _, v in outs if role == "dead_letters"]
    assert [d["raw"] for d in dead] == [sent.decode()]
    # counted where every dead letter is (/workers, /metrics), under a class without the id
    assert pipe.counters["dead_letters"] == 1
    [(cls, n)] = pipe.dead_by_reason.items()
    assert n == 1 and "never-seen" not in cls and cls.startswith("label for an event id")
    assert "does it name the model its event was sent to?" in dead[0]["error"]


def test_each_partition_expires_labels_on_its_own_clock() -> None:
    pipe = _pipe(orphan_ttl=60.0)
    # partition 1 lags: its label was sent at t=100 s; partition 0 is already at t=1000 s
    assert _through(pipe, "labels", b'{"id": "late-event", "y": 1}', 1, 0, 100_000) == []
    _through(pipe, "events", b'{"id": "x0", "x": {"f": 1.0}, "y": 0}', 0, 1, 1_000_000)
    assert pipe.tick() == []  # partition 1's clock is still near 100 s
    # its event arrives (backlog): the label joins instead of being dead-lettered
    outs = _through(pipe, "events", b'{"id": "late-event", "x": {"f": 1.0}}', 1, 2, 101_000)
    assert [r for r, _, _ in outs] == ["predictions"]
    status = {s["shard"]: s for s in pipe.statuses() if s["partition"] == 1}
    assert status["default"]["labels_joined"] == 1


def test_the_label_clock_goes_on_from_the_snapshot() -> None:
    pipe = _pipe()
    _through(pipe, "events", b'{"id": "a", "x": {"f": 1.0}}', 0, 0, 5_000_000)
    blob, _ = pipe.snapshot(0)
    again = Pipeline(SPECS, HostLimits())
    again.assign(0, blob, None)
    assert abs(again.clocks[0].now() - 5000.0) < 5.0  # not the wall clock (years later)
    assert time.time() - again.clocks[0].now() > 1e6


def test_failures_while_replaying_are_counted_not_published() -> None:
    pipe = Pipeline(SPECS, HostLimits())
    pipe.assign(0, None, committed=10)  # offsets below 10 were processed before a crash
    _through(pipe, "events", b'{"id": "a", "x": {"f": 1.0}, "y": 1}', 0, 0, 1000)
    assert _through(pipe, "events", b'{"id": "b", "x": {"f": 1.0}, "y": "s"}', 0, 1,
                    1000) == []
    assert pipe.counters["replay_errors"] == 1
    assert pipe.counters["replayed"] == 2
    assert pipe.counters["dead_letters"] == 0


def test_a_feature_that_changes_kind_is_refused_in_words_and_the_model_goes_on() -> None:
    pipe = _pipe()  # a Hoeffding tree: one number among texts would break it for good
    for i in range(50):
        _through(pipe, "events", b'{"id": "a%d", "x": {"f": 1.0, "c": "%s"}, "y": %d}'
                 % (i, b"red" if i % 2 else b"blue", i % 2), 0, i, 1000)
    outs = _through(pipe, "events", b'{"id": "b", "x": {"f": 1.0, "c": 7.0}, "y": 1}', 0, 50,
                    1000)
    dead = [v for role, _, v in outs if role == "dead_letters"]
    assert len(dead) == 1, outs
    assert dead[0]["error"] == (
        "model 'default' learns feature 'c' as text, not a number: got 7.0 (a model learns the "
        "kind of a feature's first value); send text there, or give the feature another name")
    outs = _through(pipe, "events", b'{"id": "c", "x": {"f": "x", "c": "red"}, "y": 1}', 0, 51,
                    1000)
    assert "model 'default' learns feature 'f' as a number, not text: got 'x'" in \
        outs[0][2]["error"]
    for i in range(52, 80):  # and valid records are still served and learned
        outs = _through(pipe, "events", b'{"id": "d%d", "x": {"f": 2.0, "c": "red"}, "y": 1}'
                        % i, 0, i, 1000)
        assert [r for r, _, _ in outs] == ["predictions"]


def test_a_graph_model_refuses_a_label_of_another_type() -> None:
    specs = load_settings(None, {"STREAMSVC_MODELS__G__KIND": "node_property"}).models
    pipe = Pipeline(specs, HostLimits())
    pipe.assign(0, None, None)
    _through(pipe, "node_labels", b'{"node": "a", "y": 1, "ts": 1.0, "model": "g"}', 0, 0, 1000)
    outs = _through(pipe, "node_labels", b'{"node": "b", "y": true, "ts": 2.0, "model": "g"}',
                    0, 1, 1000)
    assert outs and outs[0][0] == "dead_letters"
    assert outs[0][2]["error"].startswith("model 'g' learns integers, not booleans (true/false): "
                                          "label True")
    _through(pipe, "node_labels", b'{"node": "c", "y": false, "ts": 3.0, "model": "g"}', 0, 2,
             1000)
    # one cause, one count: True and False were two reasons, each cut mid-word
    assert pipe.dead_by_reason == {"model 'g' learns integers, not booleans (true/false)": 2}


def test_the_one_step_path_gives_what_the_two_stages_give() -> None:
    """`Pipeline.process` (in-process: the demo) skips only the records-topic message: the
    same predictions, learning, label joins and dead letters as ingest → learn."""
    sent = [
        ("events", b'{"id": "a", "x": {"f": 1.0, "g": "u"}, "y": 1}'),
        ("events", b'{"id": "b", "x": {"f": 2.0, "g": "v"}}'),
        ("labels", b'{"id": "b", "y": 0}'),
        ("labels", b'{"id": "nobody",  "y": 1}'),
        ("events", b'{"id": "c", "x": {"f": "text now"}, "y": 1}'),  # refused: dead letter
        ("events", b'not json'),
        ("transitions", b'{"agent": "a", "episode": "e", "obs": [1], "reward": 0, '
                        b'"done": false}'),  # no RL model configured: dead letter
        *[("events", f'{{"id": "e{i}", "x": {{"f": {i % 7}.5, "g": "u"}}, "y": {i % 2}}}'
           .encode()) for i in range(300)],
        ("events", b'{"id": "late", "x": {"f": 1.0, "g": "v"}}'),
    ]
    one, two = _pipe(orphan_ttl=60.0), _pipe(orphan_ttl=60.0)
    got_one, got_two = [], []
    for off, (role, raw) in enumerate(sent):
        ts = 1_000_000 + 1000 * off
        got_one += one.process(role, role, 0, off, raw, ts)
        fwd = two.ingest(role, role, 0, off, raw)
        got_two += (two.learn(0, off, fwd.value, ts) if isinstance(fwd, Forward) else [fwd])
    assert got_one == got_two
    roles = [r for r, _, _ in got_one]
    assert roles.count("predictions") == 303 and roles.count("dead_letters") == 4
    dead = [v for r, _, v in got_one if r == "dead_letters"]
    assert [d["raw"] for d in dead[:3]] == [
        '{"id": "c", "x": {"f": "text now"}, "y": 1}', "not json",
        '{"agent": "a", "episode": "e", "obs": [1], "reward": 0, "done": false}']
    assert dead[3]["raw"] == '{"id": "nobody",  "y": 1}'  # the orphan label, expired
    h1, h2 = (p.proc.partitions[0].hosts["default"] for p in (one, two))
    assert h1.learned == h2.learned == 302
    assert h1.counters == h2.counters and h1.counters["labels_joined"] == 1
    # every dead letter counted, the expired orphan label too (it was not, before)
    assert one.counters["dead_letters"] == 4 and one.counters["events_in"] == 305
