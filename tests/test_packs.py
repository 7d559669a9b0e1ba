"""Packs of forwarded records (`RECORD_PACK`): one records-topic message per model shard and
input batch. Order, exactly-once and dead letters hold as for one record per message."""

from __future__ import annotations

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.host import HostLimits
from agents.pipeline import Forward, Packer, Pipeline
from agents.processor import RECORD_PACK, records_in, unpack
from streamsvc.config import load_settings

SPECS = load_settings(None, {"STREAMSVC_MODELS__DEFAULT__KIND": "hoeffding_tree",
                             "STREAMSVC_MODELS__DEFAULT__SHARDS": "2"}).models
ONE_SHARD = load_settings(None, {"STREAMSVC_MODELS__DEFAULT__KIND": "hoeffding_tree"}).models


def _event(i: int, **extra) -> bytes:
    return orjson.dumps({"id": f"e{i}", "x": {"a": float(i % 7), "b": i % 3}, "y": i % 2,
                         **extra})


def _packs(pipe: Pipeline, raws: list[bytes], limit: int = 512_000, first: int = 0) -> list:
    """Ingest `raws` (offsets `first`.., input partition 0) as one batch; the packs it sends."""
    packer, out = Packer(limit), []
    for off, raw in enumerate(raws, first):
        fwd = pipe.ingest("events", "events", 0, off, raw)
        assert isinstance(fwd, Forward), fwd
        full = packer.add(fwd, 1000 + off, ("events", 0, off, raw))
        if full is not None:
            out.append(full)
    return out + packer.drain()


def _learned(pipe: Pipeline) -> int:
    return sum(h.learned for st in pipe.proc.partitions.values() for h in st.hosts.values())


def test_a_batch_becomes_one_pack_per_shard_in_input_order() -> None:
    pipe = Pipeline(SPECS, HostLimits())
    raws = [_event(i) for i in range(200)]
    packs = _packs(pipe, raws)
    assert sorted(p.key for p in packs) == ["default#0", "default#1"]
    got = []
    for p in packs:
        assert p.value[:1] == RECORD_PACK
        heads = [h for h, _ in records_in(p.value)]
        offs = [h["src"]["offset"] for h in heads]
        assert offs == sorted(offs) and all(h["rk"] == p.key for h in heads)
        assert [o[2] for o in p.origins] == offs
        assert [raw for _, raw in records_in(p.value)] == [raws[o] for o in offs]
        got += offs
    assert sorted(got) == list(range(200))


def test_a_full_pack_closes_and_a_large_record_travels_alone() -> None:
    pipe = Pipeline(SPECS, HostLimits())
    raws = [_event(i, pad="x" * 300) for i in range(40)]
    packs = _packs(pipe, raws, limit=2_000)
    assert len(packs) > 2
    assert all(len(p.value) <= 2_000 for p in packs)
    big = _event(0, pad="y" * 5_000)
    (alone,) = _packs(Pipeline(SPECS, HostLimits()), [big], limit=2_000)
    assert [raw for _, raw in records_in(alone.value)] == [big]


def test_two_shards_in_one_records_partition_learn_every_record_once() -> None:
    """Both shards' packs land in one records partition, their source offsets interleaved:
    nothing is taken for a duplicate; a pack forwarded again is skipped whole."""
    pipe = Pipeline(SPECS, HostLimits())
    pipe.assign(0, None, None)
    packs = _packs(pipe, [_event(i) for i in range(300)])
    preds = 0
    for off, p in enumerate(packs):
        for _, outs, _ in pipe.learn_message(0, off, p.value, p.ts_ms):
            preds += sum(role == "predictions" for role, _, _ in outs)
    assert preds == 300 and _learned(pipe) == 300
    # the ingest stage forwarded the same batch again (a crash before its commit)
    again = _packs(pipe, [_event(i) for i in range(300)])
    for off, p in enumerate(again, start=len(packs)):
        assert pipe.learn_message(0, off, p.value, p.ts_ms) == []
    assert _learned(pipe) == 300
    assert pipe.proc.partitions[0].duplicates == 300


def test_a_bad_record_in_a_pack_is_dead_lettered_alone_with_its_own_source() -> None:
    pipe = Pipeline(ONE_SHARD, HostLimits())
    pipe.assign(0, None, None)
    raws = [_event(0), orjson.dumps({"id": "t", "x": {"a": 1.0}, "y": "text"}), _event(2)]
    (p,) = _packs(pipe, raws)
    outs = pipe.learn_message(0, 0, p.value, 5)
    dead = [(origin, v) for origin, vs, _ in outs for role, _, v in vs if role == "dead_letters"]
    assert len(dead) == 1
    origin, letter = dead[0]
    assert origin == ("events", 0, 1, raws[1])
    assert (letter["topic"], letter["offset"], letter["raw"]) == ("events", 1, raws[1].decode())
    assert "not text labels: label 'text'" in letter["error"]
    assert _learned(pipe) == 2  # the records before and after it


def test_a_malformed_pack_goes_to_dead_letters_and_the_partition_goes_on() -> None:
    pipe = Pipeline(SPECS, HostLimits())
    pipe.assign(0, None, None)
    bad = (RECORD_PACK + b'{"rk": "default#0", "model": "default", "recs": '
           b'[["event", {}, 0, 99, null]]}\nab')
    try:
        unpack(bad)
    except ValueError as exc:
        assert "not a well-formed pack" in str(exc)
    else:
        raise AssertionError("a pack whose lengths do not add up was accepted")
    (res,) = pipe.learn_message(0, 0, bad, 5)
    (role, _, letter), = res[1]
    assert role == "dead_letters" and "not a well-formed pack" in letter["error"]
    (p,) = _packs(pipe, [_event(1)])
    assert [r for r in pipe.learn_message(0, 1, p.value, 5)]
    assert _learned(pipe) == 1


def test_a_replayed_pack_learns_without_publishing() -> None:
    pipe = Pipeline(SPECS, HostLimits())
    pipe.assign(0, None, committed=2)
    packs = _packs(pipe, [_event(i) for i in range(50)])
    assert all(pipe.learn_message(0, off, p.value, 5) == [] for off, p in enumerate(packs))
    assert pipe.counters["replayed"] == 50 and _learned(pipe) == 50


def test_a_pack_kafka_refuses_for_good_dead_letters_each_of_its_records() -> None:
    """An output never vanishes: if a pack cannot be forwarded, every record in it goes to
    dead-letters with the reason, its own source and its bytes as sent."""
    from streamsvc.engine import PACKED
    from tests.test_engine_units import _engine

    e = _engine()
    try:
        raws = [_event(i) for i in range(3)]
        (p,) = _packs(Pipeline(ONE_SHARD, HostLimits()), raws)
        e._undeliverable((PACKED, -1, -1, p.origins), "could not publish to records: denied")
        assert e.pipe.counters["send_errors"] == 3 and e.pipe.counters["dead_letters"] == 3
        letters = [orjson.loads(v) for v in e._inflight]
        assert [(d["topic"], d["offset"], d["raw"]) for d in letters] == [
            ("events", i, raws[i].decode()) for i in range(3)]
        assert all(d["error"] == "could not publish to records: denied" for d in letters)
        # a challenger's copies that cannot be forwarded: counted, nothing dead-lettered
        # (the champion's own pack names the records if it fails too)
        from streamsvc.engine import COPIED

        e._inflight.clear()
        e._undeliverable((PACKED, -1, -1, [(COPIED, 0, i, None) for i in range(3)]),
                         "could not publish to records: denied")
        assert e.pipe.counters["send_errors"] == 6 and e.pipe.counters["dead_letters"] == 3
        assert not e._inflight
    finally:
        e.writer.close()
        e._light.purge()


def test_a_pack_stays_under_its_limit_whatever_the_records() -> None:
    """Tiny records (the header and the validated bodies outweigh their bytes) and records
    with pydantic-path bodies: every pack stays within its limit."""
    pipe = Pipeline(ONE_SHARD, HostLimits())
    tiny = [orjson.dumps({"id": i, "x": {"a": 1}}) for i in range(3000)]  # int id: pydantic
    packs = _packs(pipe, tiny, limit=64_000)
    assert len(packs) > 1 and all(len(p.value) <= 64_000 for p in packs)
    assert sum(len(records_in(p.value)) for p in packs) == 3000


@settings(max_examples=600, deadline=None)
@given(cut=st.integers(0, 400), junk=st.binary(max_size=40), where=st.integers(0, 400))
def test_any_damaged_pack_is_dead_lettered_or_learned_never_a_crash(cut: int, junk: bytes,
                                                                    where: int) -> None:
    """Bytes on the internal records topic written by hand or damaged: whatever they are, the
    learn stage gives outputs or dead letters and goes on with the next message."""
    pipe = Pipeline(ONE_SHARD, HostLimits())
    pipe.assign(0, None, None)
    (p,) = _packs(pipe, [_event(i) for i in range(3)])
    value = p.value[:cut] + junk + p.value[cut:][where:]
    for _, outs, _ in pipe.learn_message(0, 0, value, 5):
        for role, _, v in outs:
            assert role in ("predictions", "dead_letters", "drift_alerts")
            if role == "dead_letters":
                assert v["error"] and "raw" in v
    (q,) = _packs(pipe, [_event(7)], first=100)
    assert any(role == "predictions" for _, outs, _ in pipe.learn_message(0, 1, q.value, 5)
               for role, _, _ in outs)


def test_a_pack_for_a_model_no_longer_configured_dead_letters_each_record() -> None:
    """The config lost a model while its packs were on the records topic: every record in
    them goes to dead-letters saying so, and the partition goes on."""
    before = load_settings(None, {"STREAMSVC_MODELS__OLD__KIND": "hoeffding_tree"}).models
    raws = [orjson.dumps({"id": f"o{i}", "model": "old", "x": {"a": 1.0}, "y": 1})
            for i in range(3)]
    (p,) = _packs(Pipeline(before, HostLimits()), raws)
    now = Pipeline(ONE_SHARD, HostLimits())
    now.assign(0, None, None)
    got = now.learn_message(0, 0, p.value, 5)
    assert [origin[2] for origin, _, _ in got] == [0, 1, 2]
    for _, outs, _ in got:
        ((role, _, letter),) = outs
        assert role == "dead_letters" and letter["error"].startswith("unknown model;") and "'old'" in letter["error"]
    (q,) = _packs(now, [_event(1)], first=10)
    assert any(role == "predictions" for _, outs, _ in now.learn_message(0, 1, q.value, 5)
               for role, _, _ in outs)


def test_malformed_bodies_in_a_pack_are_dead_lettered_and_the_rest_learned() -> None:
    """A pack written by hand (or damaged) can carry bodies the ingest stage would never have
    passed: no `id`, `x` not an object, a learner that chokes. Each such record is
    dead-lettered; the others in the same pack are learned."""
    from agents.processor import encode_pack

    pipe = Pipeline(ONE_SHARD, HostLimits())
    pipe.assign(0, None, None)

    def head(i: int, body: dict) -> tuple[dict, int, bytes]:
        src = {"topic": "events", "partition": 0, "offset": i}
        return ({"kind": "event", "src": src, "body": {"model": "default", "ts": None, **body}},
                5, orjson.dumps(body))

    good = {"x": {"a": 1.0}, "y": 1}
    members = [head(0, {"id": "a", **good}), head(1, {"x": {"a": 2.0}, "y": 1}),
               head(2, {"id": "c", "x": [1, 2], "y": 1}), head(3, {"id": "d", **good})]
    members.append(({"kind": "gossip", "src": {"topic": "events", "partition": 0, "offset": 4},
                     "body": {"model": "default", "id": "e", "x": {"a": 1.0}, "y": 1,
                              "ts": None}}, 5, b"{}"))
    members.append(head(5, {"id": "f", **good}))
    value = encode_pack("default", "default", members)
    got = {origin[2]: outs for origin, outs, _ in pipe.learn_message(0, 0, value, 5)}
    assert [role for role, _, _ in got[0]] == ["predictions"]
    assert [role for role, _, _ in got[3]] == ["predictions"]
    assert [role for role, _, _ in got[5]] == ["predictions"]
    for off in (1, 2, 4):
        ((role, _, letter),) = got[off]
        assert role == "dead_letters" and letter["offset"] == off and letter["error"]
    assert _learned(pipe) == 3
    # fields of the wrong types in the header: the pack is refused whole, the partition goes on
    bad = encode_pack("default", "default", [({**members[0][0], "kind": ["event"]}, 5, b"{}")])
    ((role, _, letter),) = pipe.learn_message(0, 1, bad, 5)[0][1]
    assert role == "dead_letters" and "wrong types" in letter["error"]
    late = encode_pack("default", "default", [({**members[0][0], "src": {
        "topic": "events", "partition": 0, "offset": 9}}, "soon", b"{}")])  # type: ignore
    ((role, _, letter),) = pipe.learn_message(0, 2, late, 5)[0][1]
    assert role == "dead_letters" and "wrong types" in letter["error"]
    assert _learned(pipe) == 3
