"""Drift alerts: direction and severity, what gets published, label-free detection, the API
order and the demo's summary. Real learners and real detectors, fixed seeds."""

from __future__ import annotations

import dataclasses
import math
import pickle
import random
import subprocess
import sys
import time

import orjson
import pytest
from fastapi.testclient import TestClient

from agents.alerts import concept_evidence, concept_severity, match_drifts
from agents.host import ClassifierHost, HostLimits
from agents.messages import Record
from models.data_drift import PREDICTION, DataDriftDetector
from models.reference_drift import ReferenceDriftDetector
from streamsvc.api import create_api
from streamsvc.config import ConfigError, ModelSpec, load_settings
from streamsvc.status import StatusView


def spec(**over) -> ModelSpec:
    # a river detector on the model's own errors (the shipped default has none: the frozen
    # reference watches instead); these tests exercise that path
    base = ModelSpec(name="m", kind="hoeffding_tree", family="classifier", params={},
                     drift_detector="page_hinkley")
    return dataclasses.replace(base, **over)


def flip_stream(n: int, at: int, seed: int):
    """y = [x0 + x1 > 1], inverted from `at` on: the error jumps, then the tree relearns."""
    rng = random.Random(seed)
    for t in range(n):
        x = {"a": rng.random(), "b": rng.random()}
        y = (x["a"] + x["b"] > 1.0) != (t >= at)
        yield x, y


def feed(host: ClassifierHost, data, labels: bool = True) -> list[dict]:
    alerts = []
    for i, (x, y) in enumerate(data):
        outs = host.on_event(Record(id=str(i), model="m", x=x, y=y if labels else None,
                                    ts=None), 1.0)
        alerts += [v for role, _, v in outs if role == "drift_alerts"]
    return alerts


# -- direction and severity -----------------------------------------------------------------
def test_evidence_reads_a_rise_as_degradation_with_both_windows() -> None:
    rng = random.Random(3)
    ring = bytearray(4096)
    errs = [int(rng.random() < 0.1) for _ in range(1500)] + \
           [int(rng.random() < 0.4) for _ in range(500)]
    for i, e in enumerate(errs):
        ring[i & 4095] = e
    ev = concept_evidence(ring, len(errs), since_last=len(errs))
    assert ev["direction"] == "degradation"
    assert abs(ev["window_before"] - 1500) < 150 and ev["window_before"] + ev["window_after"] \
        == len(errs)
    assert 0.07 < ev["error_rate_before"] < 0.13 and 0.33 < ev["error_rate_after"] < 0.47
    assert ev["severity"] == "high"
    down = concept_evidence(bytearray(reversed(ring[:2000])) + bytearray(2096), 2000, 2000)
    assert down["direction"] == "improvement"


@pytest.mark.parametrize(("before", "after", "level"), [
    (0.10, 0.12, "low"), (0.10, 0.17, "medium"), (0.10, 0.30, "high"), (0.02, 0.08, "high"),
    (0.30, 0.10, "high")])
def test_severity_levels(before: float, after: float, level: str) -> None:
    assert concept_severity(before, after) == level


def test_degradations_published_improvements_only_counted_by_default() -> None:
    data = list(flip_stream(12_000, 5000, seed=1))
    host = ClassifierHost(spec(data_drift=False), "m", HostLimits())
    alerts = feed(host, data)
    assert alerts, "the inverted concept must raise an alert"
    assert all(a["kind"] == "concept" and a["direction"] == "degradation" for a in alerts)
    near = [a for a in alerts if 5000 <= a["position"] <= 7000]
    assert near, [a["position"] for a in alerts]
    first = near[0]
    assert first["error_rate_after"] > first["error_rate_before"] + 0.2
    assert first["window_before"] > 0 and first["window_after"] > 0
    assert host.counters["improvements"] >= 1, "the relearned tree's recovery is detected"
    st = host.status()
    assert st["improvements"] == host.counters["improvements"]
    assert st["drift"]["last_improvement"]["direction"] == "improvement"

    both = ClassifierHost(spec(data_drift=False, alert_on="both"), "m", HostLimits())
    published = feed(both, data)
    assert {a["direction"] for a in published} == {"degradation", "improvement"}


def test_old_snapshots_gain_the_new_fields() -> None:
    host = ClassifierHost(spec(), "m", HostLimits())
    feed(host, list(flip_stream(300, 10_000, seed=2)))
    state = host.__dict__.copy()
    for k in ("alert_on", "data_detector", "_ring", "_n_err", "last_improvement"):
        state.pop(k)
    old = ClassifierHost.__new__(ClassifierHost)
    old.__setstate__(state)
    feed(old, list(flip_stream(300, 10_000, seed=3)))
    assert old.alert_on == "degradation" and old.data_detector is None
    clone = pickle.loads(pickle.dumps(host))
    assert clone.data_detector.n_seen == host.data_detector.n_seen == 300


# -- label-free detection ------------------------------------------------------------------
def shifted(n: int, at: int, seed: int, shift: float):
    rng = random.Random(seed)
    for t in range(n):
        yield {"a": rng.gauss(shift if t >= at else 0.0, 1.0), "b": rng.gauss(5.0, 2.0),
               "c": rng.choice(("x", "y", "z")), "k": rng.randint(0, 3)}


@pytest.mark.parametrize("seed", [11, 12, 13, 14, 15])
def test_data_detector_finds_a_one_std_shift_within_2000(seed: int) -> None:
    det = DataDriftDetector()
    hits = [t for t, x in enumerate(shifted(9000, 5000, seed, 1.0)) if det.update(x)]
    assert hits and 5000 <= hits[0] <= 7000, hits
    assert hits[0] == min(hits)


@pytest.mark.parametrize("seed", [21, 22, 23])
def test_data_detector_is_quiet_on_stationary_data(seed: int) -> None:
    det = DataDriftDetector()
    rng = random.Random(seed)
    hits = [t for t, x in enumerate(shifted(60_000, 10**9, seed, 0.0))
            if det.update(x, rng.choice((0, 1, 1)))]
    assert hits == []


@pytest.mark.parametrize("moving", ["ch", PREDICTION])
def test_data_detector_sees_a_categorical_mix_and_the_predictions(moving: str) -> None:
    rng = random.Random(5)
    det = DataDriftDetector()
    found = []
    for t in range(8000):
        late = t >= 4000
        mix = (0.2, 0.3, 0.5) if late and moving == "ch" else (0.6, 0.3, 0.1)
        x = {"v": rng.random(), "ch": rng.choices("abc", mix)[0]}
        p_yes = 0.8 if late and moving == PREDICTION else 0.3
        if det.update(x, "yes" if rng.random() < p_yes else "no"):
            found.append((t, list(det.drifted_features)))
    assert found and 4000 <= found[0][0] <= 6000
    assert found[0][1] == [moving]


def test_host_raises_data_alerts_with_no_label_at_all() -> None:
    host = ClassifierHost(spec(), "m", HostLimits())
    data = [(x, None) for x in shifted(9000, 5000, 31, 1.5)]
    alerts = feed(host, data, labels=False)
    assert host.learned == 0
    assert alerts and all(a["kind"] == "data" for a in alerts)
    a = alerts[0]
    assert 5000 <= a["position"] <= 7000 and a["features"] == ["a"]
    assert a["severity"] == "high" and a["evidence"]["a"]["type"] == "numeric"
    # plain JSON for any encoder: numpy floats in the evidence were refused by the worker's
    # orjson, and the alert went to dead-letters with its event
    orjson.dumps(a)
    assert all(type(v) is float for v in a["evidence"]["a"]["current_share"])


def _lognormal_rule(n: int, seed: int):
    """Stationary: heavy-tailed `a`, normal `b`, a category; y a noisy rule of all three."""
    rng = random.Random(seed)
    for _ in range(n):
        a, b, c = rng.lognormvariate(0, 1), rng.gauss(0, 1), rng.choice("pqrs")
        y = (math.log(a) + b + (c in "pq") * 0.5 > 0.3) != (rng.random() < 0.1)
        yield {"a": a, "b": b, "c": c}, y


def test_predictions_that_move_while_the_model_learns_are_no_data_alert() -> None:
    """Issue 11, an independent check: a young Hoeffding tree's answers made the label-free
    detector's reference, and a third of stationary streams raised a data alert in their
    first 14k events as the tree grew (seeds 0-2 here: at 9250, 13000, 12500)."""
    moves = 0
    for seed in (0, 1, 2):
        host = ClassifierHost(spec(drift_detector="none"), "m", HostLimits())
        assert feed(host, _lognormal_rule(15_000, seed)) == []
        moves += host.counters["data_alerts_model_learning"]
    assert moves >= 2  # the detections happened: put down to the learning, not published
    # a model that no longer learns (labels stopped): a move of its answers alone is news
    host = ClassifierHost(spec(drift_detector="none"), "m", HostLimits())
    feed(host, _lognormal_rule(3000, 0))
    host.data_detector, host._data_ref_learned = DataDriftDetector(), host.learned
    answer, n = host._predict, [0]

    def moved_answers(x: dict) -> tuple:
        n[0] += 1
        y, proba, expert = answer(x)
        return (not y if n[0] > 4000 else y), proba, expert

    host._predict = moved_answers
    later = [(x, None) for x, _ in _lognormal_rule(8000, 5)]
    alerts = feed(host, later, labels=False)
    assert [(a["features"], a["predictions_moved"]) for a in alerts] == [([], True)], alerts


def test_a_reference_alert_after_the_inputs_moved_says_so() -> None:
    host = ClassifierHost(spec(drift_detector="none"), "m", HostLimits())
    feed(host, _lognormal_rule(3000, 1))
    host._inputs_moved = (host.learned - 100, ["a"])
    host.reference.evidence = {"window_before": 1000, "window_after": 500,
                               "reference_error_before": 0.1, "reference_error_after": 0.2,
                               "reference_trained_on": 1000, "reference_kind": "linear"}
    (_, _, alert), = host._reference_alert(1.0)
    assert alert["inputs_moved"] == ["a"]
    from agents.alerts import describe
    assert "the inputs moved too (a)" in describe(alert)
    # while the reference was learning (its 1,000 examples before the 1,500 it scored): the
    # inputs it is judged on are not those it learned from (a later check, inputs sweeping
    # slowly: tagged 43% of such alerts with the scored windows alone, 72% with this)
    host._inputs_moved = (host.learned - 2000, ["a"])
    host._last_alert_at = -(10**9)  # past the cooldown
    (_, _, alert), = host._reference_alert(1.0)
    assert alert["inputs_moved"] == ["a"]
    host._inputs_moved = (host.learned - 5000, ["a"])  # before the reference began learning
    host._last_alert_at = -(10**9)
    (_, _, alert), = host._reference_alert(1.0)
    assert "inputs_moved" not in alert


# -- the frozen reference ------------------------------------------------------------------
def _noisy(n: int, seed: int, flip_at: int | None = None, noise: float = 0.2):
    """y = (a + b > 1) with `noise` of the labels flipped; from `flip_at` the rule is
    y = (a > b) instead."""
    rng = random.Random(seed)
    for i in range(n):
        a, b = rng.random(), rng.random()
        y = (a + b > 1) if flip_at is None or i < flip_at else (a > b)
        yield {"a": a, "b": b, "c": rng.choice("xyz")}, (not y) if rng.random() < noise else y


def test_reference_quiet_on_noisy_stationary_streams() -> None:
    for seed in (11, 12, 13):
        det = ReferenceDriftDetector()
        assert not any(det.update(x, y) for x, y in _noisy(40_000, seed))
        assert det.summary()["phase"] == "testing" and det.n_references == 1


def test_reference_finds_a_partial_relabelling_and_retrains() -> None:
    det = ReferenceDriftDetector()
    hits = [i for i, (x, y) in enumerate(_noisy(12_000, 3, flip_at=5000)) if det.update(x, y)]
    assert len(hits) == 1 and 5000 < hits[0] < 7000, hits
    ev = det.evidence
    assert ev["reference_error_after"] > ev["reference_error_before"]
    assert det.n_references == 2  # a new reference learns the new concept


def test_a_value_the_reference_cannot_use_never_undoes_the_record() -> None:
    class Tolerant:  # a live model that takes anything (the subject is the detector)
        def predict_proba_one(self, x):
            return {0: 0.5, 1: 0.5}

        def learn_one(self, x, y):
            pass

    host = ClassifierHost(spec(reference_drift_params={"window": 50, "calibrate": 50}), "m",
                          HostLimits())
    host.model = Tolerant()
    rng = random.Random(0)
    for i in range(400):  # huge values overflow the reference tree's Gaussians
        v = 1e300 * (rng.random() - 0.5) if i % 3 else rng.random()
        host.on_event(Record(id=str(i), model="m", x={"a": v}, y=i % 2, ts=None), 0.0)
    assert host.learned == 400
    assert host.counters["reference_errors"] >= 1
    assert host.status()["reference_errors"] == host.counters["reference_errors"]


# -- configuration ---------------------------------------------------------------------------
def test_config_keys_for_alerts(tmp_path) -> None:
    def load(body: str):
        p = tmp_path / "c.toml"
        p.write_text("[models.default]\nkind = \"hoeffding_tree\"\n" + body)
        return load_settings(p).models["default"]

    assert load('alert_on = "both"').alert_on == "both"
    assert load("data_drift = false").data_drift is False
    off = load("reference_drift = false")
    assert off.reference_drift is False and ClassifierHost(off, "d", HostLimits()).reference is None
    on = ClassifierHost(load("reference_drift_params = { window = 300 }"), "d", HostLimits())
    assert on.reference.window == 300
    old = ClassifierHost(load("reference_drift_params = { rearm_check = false }"), "d",
                         HostLimits())
    assert old.reference.rearm_check is False and on.reference.rearm_check is True
    s = load('drift_detector = "page_hinkley"\ndrift_params = { threshold = 20.0 }')
    host = ClassifierHost(s, "default", HostLimits())
    assert host.detector.threshold == 20.0
    k = ClassifierHost(load('drift_detector = "kswin"\ndrift_delta = 0.0001'), "d", HostLimits())
    assert k.detector.alpha == 0.0001
    for bad, key in (('alert_on = "all"', "alert_on"),
                     ('drift_detector = "page_hinkley"\ndrift_delta = 0.01', "drift_delta"),
                     ('drift_detector = "page_hinkley"\ndrift_params = { nope = 1 }',
                      "drift_params"),
                     ("drift_params = { threshold = 5.0 }", "does not apply"),  # no detector
                     ("drift_delta = 0.01", "does not apply"),
                     ("data_drift_params = { window = 333 }", "data_drift_params"),
                     ('reference_drift = "yes"', "reference_drift"),
                     ("reference_drift_params = { window = 10 }", "reference_drift_params"),
                     ("reference_drift_params = { alpha = 1 }", "reference_drift_params"),
                     ("reference_drift_params = { rearm_margin = -1 }",
                      "reference_drift_params"),
                     ('drift_detector = "magic"', "drift_detector")):
        with pytest.raises(ConfigError, match=key):
            load(bad)


# -- what the user sees ----------------------------------------------------------------------
def test_alerts_endpoint_lists_newest_first() -> None:
    view = StatusView({"m": {"kind": "hoeffding_tree", "family": "classifier"}})
    now = time.time()
    for i in range(5):
        view.on_alert({"model": "m", "position": 1000 * (i + 1), "ts": now + i, "kind": "concept"})
    got = TestClient(create_api(view)).get("/alerts").json()
    assert [a["position"] for a in got] == [5000, 4000, 3000, 2000, 1000]


def test_a_reference_alert_line_says_whose_error_is_whose() -> None:
    from agents.alerts import describe

    line = describe({"kind": "concept", "detector": "reference", "position": 1797,
                     "severity": "high", "error_rate_before": 0.3851, "window_before": 509,
                     "error_rate_after": 0.5556, "window_after": 288, "learner_adapted": True,
                     "live_model": {"error_rate_before": 0.3556, "error_rate_after": 0.3681}})
    assert "the reference's error 0.3851 over 509 → 0.5556 over 288 examples" in line
    assert line.endswith("the live model has adapted already (its error 0.3556 → 0.3681)")


def test_a_reference_alert_whose_live_errors_are_gone_does_not_guess() -> None:
    """An independent check: with the 'after' window longer than the errors kept, the alert
    said 'the live model is affected' with no numbers, while its accuracy had risen."""
    from agents.alerts import RING, describe, reference_evidence

    det = ReferenceDriftDetector()
    det.evidence = {"window_before": 3000, "window_after": RING,
                    "reference_error_before": 0.1, "reference_error_after": 0.2,
                    "reference_trained_on": 1000, "reference_kind": "linear"}
    ev = reference_evidence(det, bytearray(RING), RING * 3)
    assert ev["learner_adapted"] is None
    assert ev["live_model"] == {"error_rate_before": None, "error_rate_after": None}
    line = describe({"kind": "concept", "detector": "reference", **ev})
    assert line.endswith("the live model's errors from before are no longer kept")
    from agents.alerts import recent_errors

    host = ClassifierHost(spec(), "m", HostLimits())
    feed(host, flip_stream(6000, 10**6, 0))
    state = pickle.loads(pickle.dumps(host)).__dict__
    n, small = state["_n_err"], bytearray(4096)  # as a snapshot from before the longer ring
    for i in range(n - 4096, n):
        small[i & 4095] = host._ring[i & (RING - 1)]
    old = ClassifierHost.__new__(ClassifierHost)
    gone = ("_data_ref_learned", "_inputs_moved")  # fields this version added
    old.__setstate__({**{k: v for k, v in state.items() if k not in gone}, "_ring": small})
    assert len(old._ring) == RING
    assert old._data_ref_learned == old.learned  # not 0: its learning is no news
    assert (recent_errors(old._ring, n, 4096) == recent_errors(host._ring, n, 4096)).all()
    for i, (x, y) in enumerate(flip_stream(100, 10**6, 1)):  # and it keeps writing
        old.on_event(Record(id=f"new-{i}", model="m", x=x, y=y, ts=None), 1.0)
    assert old._n_err == n + 100


def test_match_drifts() -> None:
    delays, false = match_drifts([900, 1100, 2500, 7600], [(1000, 1000), (5000, 5000),
                                                            (6000, 6500)])
    assert delays == [100, None, 1600] and false == [900]
    # one alert is credited to one drift: the latest that started before it (led-gradual's
    # demo once said "3 of 3" from two alerts, the second credited to two drifts)
    delays, false = match_drifts([1797, 3925], [(1125, 1375), (2375, 2625), (3625, 3875)])
    assert delays == [672, None, 300] and false == []


def test_demo_prints_which_true_drifts_were_found(tmp_path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('[models.fast]\nkind = "hoeffding_tree"\n')
    r = subprocess.run([sys.executable, "-m", "streamsvc.cli", "demo", "--config", str(cfg),
                        "--model", "fast", "--count", "8000", "--stream", "sea-abrupt",
                        "--out", str(tmp_path / "o")], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "true drifts at  2000, 4000, 6000" in out
    lines = [ln for ln in out.splitlines() if ln.strip().startswith("drift at ")]
    assert [ln.split()[2] for ln in lines] == ["2000", "4000", "6000"]
    assert all("detected, delay" in ln or ln.rstrip().endswith("missed") for ln in lines)
    n_found = sum("detected" in ln for ln in lines)
    assert f"detected        {n_found} of 3 within 2,000" in out
    assert "false alarms    " in out


def test_the_label_free_detector_keeps_missing_values_apart_after_a_pickle() -> None:
    # the bin of a missing value (and of "no prediction") is keyed by a sentinel object; a
    # checkpoint restore once brought back another object, and the restored detector counted
    # every missing value as "other": a drift alarm on unchanged data
    rng = random.Random(5)
    det = DataDriftDetector(reference=1000, window=500, check_every=100)
    alarms = []
    for t in range(8000):
        x = {"a": rng.gauss(0, 1), "kind": rng.choice(["p", "q", None])}
        if t == 3000:
            det = pickle.loads(pickle.dumps(det))
        if det.update(x, None if t % 3 else "yes"):
            alarms.append(t)
    assert alarms == []


def test_numbers_binned_a_block_at_a_time_land_where_one_by_one_would() -> None:
    # the label-free detector bins a numeric feature's values when a block closes
    # (`searchsorted`); every value must land in the bin `index` (bisect) gives it
    import math

    from models.data_drift import _Feature

    rng = random.Random(3)
    f = _Feature("a", [rng.gauss(0, 1) for _ in range(2000)], 10, 20, 4)
    odd = [None, math.nan, math.inf, -math.inf, "text", True, 2**60 + 1, -(2**61), 0, 3]
    for buf in ([rng.gauss(0, 2) for _ in range(250)],
                [rng.randint(-3, 3) for _ in range(250)],
                [rng.choice(odd + [rng.gauss(0, 1)]) for _ in range(250)],
                [math.nan, math.inf, -math.inf, 0.5, float(f.edges[2])]):
        f.buf, f.cur = list(buf), [0] * f.n_bins
        one_by_one = [0] * f.n_bins
        for v in buf:
            one_by_one[f.index(v)] += 1
        assert list(f.block_counts()) == one_by_one
