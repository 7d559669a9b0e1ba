"""A pack's labelled events go through the model host in passes (`ClassifierHost.
run_labelled`: checks, then the learner alone, then outputs and detectors): every output must
be what the host gives one record at a time, alerts and dead letters included."""

from __future__ import annotations

import random

import orjson
import pytest

from agents.host import HostLimits
from agents.pipeline import Forward, Packer, Pipeline
from streamsvc.config import load_settings
from streamsvc.streams import make_stream


def _records(n: int, seed: int) -> list[tuple[str, bytes]]:
    """Events with their label, events labelled later on `labels`, events never labelled,
    the same labelled event twice, a label of the wrong type, a label for no event."""
    rng = random.Random(seed)
    out: list[tuple[str, bytes]] = []
    later: list[tuple[int, bytes]] = []
    for i, (x, y) in enumerate(make_stream("sea-abrupt", n, seed)):
        ev = {"id": f"e{i}", "x": {str(k): float(v) for k, v in x.items()}}
        r = rng.random()
        if r < 0.75:
            ev["y"] = int(y)
        elif r < 0.9:
            later.append((i + rng.randrange(1, 40), orjson.dumps({"id": f"e{i}", "y": int(y)})))
        out.append(("events", orjson.dumps(ev)))
        if r < 0.01:
            out.append(("events", orjson.dumps(ev)))  # sent twice
        if rng.random() < 0.005:
            out.append(("events", orjson.dumps({**ev, "id": f"bad{i}", "y": "text"})))
        if rng.random() < 0.003:
            out.append(("labels", orjson.dumps({"id": f"nobody{i}", "y": 1})))
        while later and later[0][0] <= i:
            out.append(("labels", later.pop(0)[1]))
        later.sort()
    return out


def _by_role(outs: list) -> dict[str, list]:
    got: dict[str, list] = {}
    for role, key, value in outs:
        got.setdefault(role, []).append((key, value))
    got["dead_letters"] = sorted(got.get("dead_letters", []),
                                 key=lambda kv: (kv[1]["topic"], kv[1]["offset"]))
    return got


@pytest.mark.parametrize("kind,n", [("hoeffding_tree", 6000), ("default", 6000)])
def test_packs_give_the_outputs_of_one_record_at_a_time(kind: str, n: int) -> None:
    env = {} if kind == "default" else {"STREAMSVC_MODELS__DEFAULT__KIND": kind}
    specs = load_settings(None, {**env, "STREAMSVC_MODELS__DEFAULT__ALERT_COOLDOWN": "200"}
                          ).models
    recs = _records(n, seed=5)
    one, packed = Pipeline(specs, HostLimits()), Pipeline(specs, HostLimits())
    for p in (one, packed):
        p.assign(0, None, None)
    singles: list = []
    for off, (role, raw) in enumerate(recs):
        fwd = one.ingest(role, role, 0, off, raw)
        singles += one.learn(0, off, fwd.value, 1000 + off) if isinstance(fwd, Forward) \
            else [fwd]
    batched: list = []
    roff = 0
    for start in range(0, len(recs), 150):  # input batches of 150 records
        packer = Packer()
        for off in range(start, min(start + 150, len(recs))):
            role, raw = recs[off]
            fwd = packed.ingest(role, role, 0, off, raw)
            if isinstance(fwd, Forward):
                assert packer.add(fwd, 1000 + off, (role, 0, off, raw)) is None
            else:
                batched.append(fwd)
        for pack in packer.drain():
            for _, outs, _ in packed.learn_message(0, roff, pack.value, pack.ts_ms):
                batched += outs
            roff += 1
    a, b = _by_role(singles), _by_role(batched)
    assert a.keys() == b.keys()
    for role in a:
        assert a[role] == b[role], role
    assert len(a["predictions"]) > 0.95 * n and a["dead_letters"] and a.get("drift_alerts")
    ha, hb = (next(iter(p.proc.partitions[0].hosts.values())) for p in (one, packed))
    assert (ha.seen, ha.learned, ha.counters) == (hb.seen, hb.learned, hb.counters)
    assert ha.status()["accuracy"] == hb.status()["accuracy"]


def test_the_in_process_path_in_batches_gives_the_outputs_of_one_record_at_a_time() -> None:
    """The demo hands the learner batches (`Pipeline.process_many`): the same outputs as
    `Pipeline.process` one record at a time, dead letters included."""
    specs = load_settings(None, {"STREAMSVC_MODELS__DEFAULT__KIND": "hoeffding_tree",
                                 "STREAMSVC_MODELS__DEFAULT__ALERT_COOLDOWN": "200"}).models
    recs = _records(6000, seed=5)
    one, many = Pipeline(specs, HostLimits()), Pipeline(specs, HostLimits())
    singles = [o for off, (role, raw) in enumerate(recs)
               for o in one.process(role, role, 0, off, raw, 1000 + off)]
    batched: list = []
    i = 0
    while i < len(recs):  # runs of one role, at most 97 records
        j = i
        while j < len(recs) and j - i < 97 and recs[j][0] == recs[i][0]:
            j += 1
        got = many.process_many(recs[i][0], recs[i][0], 0,
                                [(off, recs[off][1], 1000 + off) for off in range(i, j)])
        batched += [o for outs in got for o in outs]
        i = j
    a, b = _by_role(singles), _by_role(batched)
    assert a == b
    assert a["dead_letters"] and a.get("drift_alerts") and one.counters == many.counters
