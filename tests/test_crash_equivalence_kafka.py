"""Crash-equivalence: a model that lived through SIGKILLs and recoveries is *the same model* as
one that learned the same records without interruption.

The same seeded stream (labelled events, events whose label comes later on `labels`) for a
DriftMoE model and a Hoeffding tree goes once through one uninterrupted worker and once
through workers killed with SIGKILL at random points (snapshots every few hundred records and
frequent commits, so that restores from a snapshot and replays of the committed gap both
happen). Both final models are read back from their checkpoints topic after a clean stop and
must answer a probe set identically (predictions and probabilities), with equal counts; every
prediction published by the crashed run must equal the uninterrupted run's for that id.

Order is what makes two runs comparable: records of one input partition reach a model shard in
order, records of different topics do not. So every record goes to partition 0 of its topic,
and a batch of labels is sent only once the events it labels have been forwarded (read back
from the records topic).
"""

from __future__ import annotations

import copy
import json
import random
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from typing import Any

import pytest
from kafka import KafkaProducer

from agents.processor import records_in
from tests.conftest import ServiceProcs, TopicReader, load_partition_states

pytestmark = pytest.mark.kafka

MODELS = {"default": "drift_moe", "ht": "hoeffding_tree"}
PER_MODEL = 4000  # events per model (all labelled: at once or later)
PHASES = 2
DELAYED = 0.25  # share of events whose label comes later on `labels`
ENV = {
    "STREAMSVC_MODELS__HT__KIND": "hoeffding_tree",
    "STREAMSVC_WORKER__CHECKPOINT_EVERY": "600",
    "STREAMSVC_WORKER__CHECKPOINT_INTERVAL": "2.0",
    "STREAMSVC_WORKER__COMMIT_INTERVAL": "0.05",
    "STREAMSVC_WORKER__SESSION_TIMEOUT": "6.0",
    "STREAMSVC_WORKER__STATUS_INTERVAL": "1.0",
    "STREAMSVC_WORKER__MAX_BATCH": "200",
}


def stream(seed: int) -> list[tuple[list[dict], list[dict]]]:
    """PHASES x (events, delayed labels for some of them); a concept drift half-way."""
    rng = random.Random(seed)
    n = PER_MODEL * len(MODELS)
    phases = []
    for ph in range(PHASES):
        events, labels = [], []
        for i in range(ph * n // PHASES, (ph + 1) * n // PHASES):
            model = list(MODELS)[i % len(MODELS)]
            f = [round(rng.random(), 6) for _ in range(4)]
            c = rng.choice(["a", "b", "c"])
            if i < n // 2:
                y = int(f[0] + f[1] > 1.0) + (c == "c")
            else:
                y = int(f[2] > 0.5) + (c == "a")
            ev = {"id": f"{model}-{i}", "model": model, "ts": 1.7e9 + i,
                  "x": {"f0": f[0], "f1": f[1], "f2": f[2], "f3": f[3], "c": c}}
            if rng.random() < DELAYED:
                labels.append({"id": ev["id"], "model": model, "y": y})
            else:
                ev["y"] = y
            events.append(ev)
        phases.append((events, labels))
    return phases


def probe_set(seed: int, n: int = 600) -> list[dict]:
    rng = random.Random(seed)
    return [{"f0": rng.random(), "f1": rng.random(), "f2": rng.random(), "f3": rng.random(),
             "c": rng.choice(["a", "b", "c", "d"])} for _ in range(n)]


class Run:
    """Drives one service namespace through the stream; optionally kills its worker."""

    def __init__(self, svc: ServiceProcs, rng: random.Random) -> None:
        self.svc = svc
        self.rng = rng
        self.kills = 0
        t = svc.topics
        self.worker = svc.start_worker(ENV)
        self.prod = KafkaProducer(bootstrap_servers=svc.broker.bootstrap, linger_ms=20)
        self.preds = TopicReader(svc.broker.bootstrap, t["predictions"])
        self.records = TopicReader(svc.broker.bootstrap, t["records"],
                                   decode=lambda v: [h for h, _ in records_in(v)])
        self.status = TopicReader(svc.broker.bootstrap, t["model_status"])

    def close(self) -> None:
        for r in (self.preds, self.records, self.status):
            r.close()
        self.prod.close()

    def kill(self) -> None:
        self.svc.stop(self.worker, signal.SIGKILL)
        self.kills += 1
        self.worker = self.svc.start("worker", env=ENV, name="worker")

    def _mine(self) -> list[dict]:
        wid = f"{socket.gethostname()}-{self.worker.pid}"
        return [s for s in self.status.poll()
                if s and s.get("worker") == wid and s.get("partitions")]

    def working(self) -> bool:
        """The current worker owns partitions and learned records since it started, so a kill
        now lands mid-stream, not during start-up."""
        return any(s["counters"]["records"] + s["counters"]["replayed"] > 0
                   for s in self._mine())

    def predicted(self) -> set[str]:
        return {p["id"] for p in self.preds.poll()}

    def forwarded(self, topic: str) -> set[int]:
        return {r["src"]["offset"] for msg in self.records.poll() for r in msg
                if r["src"]["topic"] == topic}

    def learned(self) -> dict[str, int]:
        """Examples learned per model as the *current* worker reports them: an earlier
        (killed) worker's last status may be ahead of what the current one has replayed."""
        wid = f"{socket.gethostname()}-{self.worker.pid}"
        shards: dict[str, int] = {}
        for s in self.status.poll():
            if s and s.get("model") in MODELS and s.get("worker") == wid:
                shards[s["model"]] = s["examples_learned"]
        return shards

    def until(self, cond: Callable[[], Any], timeout: float, what: str) -> None:
        """Wait for `cond` while the worker lives (a worker that dies by itself fails)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if isinstance(self.worker, subprocess.Popen) and self.worker.poll() is not None:
                pytest.fail(f"worker exited by itself:\n{self.svc.log_of(self.worker)}")
            if cond():
                return
            time.sleep(0.2)
        raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}; "
                             f"log:\n{self.svc.log_of(self.worker)}")

    def send(self, role: str, msgs: list[dict]) -> set[int]:
        futs = [self.prod.send(self.svc.topics[role], json.dumps(m).encode(), partition=0)
                for m in msgs]
        self.prod.flush()
        return {f.get(timeout=30).offset for f in futs}

    def play(self, phases: list[tuple[list[dict], list[dict]]], crash: bool) -> None:
        """Send each phase; with `crash`, SIGKILL the worker once at a random point while the
        phase's events are learned and once while its labels are joined, restarting it."""
        t = self.svc.topics
        done = 0
        for events, labels in phases:
            offs = self.send("events", events)
            if crash:
                target = done + int(len(events) * self.rng.uniform(0.2, 0.8))
                self.until(lambda n=target: len(self.predicted()) >= n and self.working(), 120,
                           f"{target} events predicted")
                self.kill()
            done += len(events)
            self.until(lambda o=offs: o <= self.forwarded(t["events"]), 120, "events forwarded")
            if labels:
                offs = self.send("labels", labels)
                if crash:
                    self.until(self.working, 90, "the worker at work")
                    time.sleep(self.rng.uniform(0.0, 0.5))
                    self.kill()
                self.until(lambda o=offs: o <= self.forwarded(t["labels"]), 120,
                           "labels forwarded")
        ids = {e["id"] for ev, _ in phases for e in ev}
        self.until(lambda: ids <= self.predicted(), 180, "every event predicted")
        self.until(lambda: self.learned() == dict.fromkeys(MODELS, PER_MODEL), 120,
                   f"examples_learned == {PER_MODEL} for each model")

    def stop(self) -> dict[str, Any]:
        """Stop cleanly (a final snapshot of every partition) and return the hosts by model."""
        self.until(self._mine, 90, "the last worker owning its partitions")
        assert self.svc.stop(self.worker, signal.SIGTERM) == 0, self.svc.log_of(self.worker)
        hosts = {}
        for st in load_partition_states(self.svc).values():
            for h in st.hosts.values():
                hosts[h.name] = h
                h.snapshot_meta = st.manifest["meta"]  # shown when the models differ
        return hosts


def _answers(model: Any, probes: list[dict]) -> list[tuple[Any, dict]]:
    out = []
    for x in probes:
        proba = model.predict_proba_one(dict(x))
        out.append((model.predict_one(dict(x)), dict(sorted(proba.items()))))
    return out


def test_killed_and_recovered_models_equal_uninterrupted(service_factory) -> None:
    phases = stream(seed=5)
    rng = random.Random(13)

    clean = Run(service_factory("clean"), rng)
    try:
        clean.play(phases, crash=False)
        clean_preds = {p["id"]: p for p in clean.preds.poll()}
        a = clean.stop()
    finally:
        clean.close()

    crash = Run(service_factory("crash"), rng)
    try:
        crash.play(phases, crash=True)
        crash_preds = list(crash.preds.poll())
        b = crash.stop()
        replayed = [s["counters"]["replayed"] for s in crash.status.poll()
                    if s and "counters" in s]
        log = "\n".join(f.read_text(errors="replace") for _, f in crash.svc.procs)
    finally:
        crash.close()

    assert crash.kills == 2 * PHASES
    assert log.count("restored records[") >= 2 * PHASES, "no restore from a snapshot"
    assert sum(replayed) > 0 or "replaying" in log, "no committed gap was replayed"
    assert set(a) == set(b) == set(MODELS)

    # every prediction the crashed run published is the one the uninterrupted run made
    fields = ("y_pred", "proba", "examples_learned", "expert")
    differ = [(p["id"], {k: p.get(k) for k in fields},
               {k: clean_preds[p["id"]].get(k) for k in fields})
              for p in crash_preds if {k: p.get(k) for k in fields}
              != {k: clean_preds[p["id"]].get(k) for k in fields}]
    problems = [f"{len(differ)} of {len(crash_preds)} published predictions differ, first: "
                f"{differ[:2]}"] if differ else []

    probes = probe_set(seed=99)
    for name in MODELS:
        ha, hb = a[name], b[name]
        for what, u, v in (
                ("seen/learned", (ha.seen, ha.learned), (hb.seen, hb.learned)),
                ("counters", ha.counters, hb.counters),
                ("metrics", (ha.metrics.n, ha.metrics.correct),
                 (hb.metrics.n, hb.metrics.correct))):
            if u != v:
                problems.append(f"{name} {what}: {u} (uninterrupted) != {v} (killed; "
                                f"snapshot {hb.snapshot_meta})")
        one_more = copy.deepcopy(ha.model)  # the probe set tells models one example apart
        one_more.learn_one(dict(probes[0]), 1)
        ans_a, ans_b = _answers(ha.model, probes), _answers(hb.model, probes)
        assert len({y for y, _ in ans_a}) > 1, f"{name} answers one class: a useless probe"
        assert _answers(one_more, probes) != ans_a, f"{name}: the probe set is blind"
        bad = [i for i, (u, v) in enumerate(zip(ans_a, ans_b, strict=True)) if u != v]
        if bad:
            problems.append(f"{name}: {len(bad)} of {len(probes)} probe answers differ, first: "
                            f"{ans_a[bad[0]]} vs {ans_b[bad[0]]}")
    assert (a["default"].seen, a["ht"].learned) == (PER_MODEL, PER_MODEL)
    assert not problems, "\n".join(problems)
