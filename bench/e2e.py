"""End-to-end speed of the service, each figure a ratio to a reference measured in the same run.

    python -m bench.e2e                         # in-process: service path vs the bare learner
    python -m bench.e2e --kafka                 # + through a real broker and worker process
    python -m bench.e2e --kafka --latency --rl 10 --scale   # + latency, RL round trip, 2 workers

References (same run, same machine):
* in-process (the demo's path, and the worker's two stages back to back without Kafka): the
  learner alone (`predict_proba_one` + `learn_one` on the same examples);
* Kafka throughput: the same learner in a plain loop, and a raw confluent-kafka (librdkafka)
  produce → consume of the same records with no worker in between;
* latency: events produced at 25 / 50 / 90 % of the rate the worker sustained, produce →
  prediction consumed, matched by id;
* RL: CartPole steps through the worker vs a bare ping-pong through an echo process that uses
  the worker's client library (client → topic → echo → topic → client).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import signal
import subprocess
import sys
import threading
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tqdm import tqdm

from agents.host import HostLimits
from agents.pipeline import Forward, Packer, Pipeline
from streamsvc.config import load_settings
from streamsvc.demo import BATCH
from streamsvc.heap import tune_collector
from streamsvc.streams import make_stream

ROLES = {"events": "events", "labels": "labels", "predictions": "predictions",
         "drift_alerts": "drift-alerts", "dead_letters": "dead-letters",
         "model_status": "model-status", "records": "records", "checkpoints": "checkpoints",
         "edges": "edges", "node_labels": "node-labels", "node_predictions": "node-predictions",
         "transitions": "transitions", "actions": "actions", "values": "value-predictions"}


def _kind_env(kind: str) -> dict[str, str]:
    return {} if kind == "default" else {"STREAMSVC_MODELS__DEFAULT__KIND": kind}


def events(n: int, seed: int, prefix: str = "e") -> list[bytes]:
    """`sea-abrupt` with labels (test-then-train at once), as JSON the way users send it."""
    return [json.dumps({"id": f"{prefix}{i}", "x": {str(k): float(v) for k, v in x.items()},
                        "y": int(y)}).encode()
            for i, (x, y) in enumerate(make_stream("sea-abrupt", n, seed))]


def _river_tree() -> Any:
    from river.tree import HoeffdingTreeClassifier

    from models.factory import TREE_DEFAULTS

    return HoeffdingTreeClassifier(**TREE_DEFAULTS)


#: kind -> (name, constructor) of the peer a user would otherwise run in a plain loop: the
#: service's `hoeffding_tree` is river's algorithm with faster leaves (same trees, same
#: predictions), so its figures are also given against river's own tree
PEERS = {"hoeffding_tree": ("river's HoeffdingTreeClassifier", _river_tree)}


# -- in-process ---------------------------------------------------------------------------------
def bare_rate(kind: str, raws: list[bytes], model: Any = None) -> float:
    """The learner alone on the same examples (already decoded); `model` instead of the
    kind's own build (e.g. river's tree for `hoeffding_tree`)."""
    if model is None:
        model = load_settings(None, _kind_env(kind)).models["default"].build()
    data = [(d["x"], d["y"]) for d in map(json.loads, raws)]
    t0 = time.perf_counter()
    for x, y in tqdm(data, desc=f"bare {kind}", unit="ex", leave=False):
        model.predict_proba_one(x)
        model.learn_one(x, y)
    return len(data) / (time.perf_counter() - t0)


def inprocess_rate(kind: str, raws: list[bytes], stages: int = 1
                   ) -> tuple[float, dict[str, float]]:
    """The service's own code without Kafka, in batches of `BATCH` records: `stages=1` is the
    in-process path (the demo's: decode, validate, route, host, outputs in one step);
    `stages=2` is the worker's two stages back to back (a batch's records packed into a
    records-topic message per shard and read back in between). Also what a
    snapshot of the resulting state costs the hot path (the pickling; the write to Kafka
    happens on another thread)."""
    settings = load_settings(None, _kind_env(kind))
    pipe = Pipeline(settings.models, HostLimits())
    pipe.assign(0, None, None)
    desc = f"service path {kind}" + (" (two stages)" if stages == 2 else "")
    t0 = time.perf_counter()
    roff = 0
    for start in tqdm(range(0, len(raws), BATCH), desc=desc, unit="batch", leave=False):
        chunk = list(enumerate(raws[start:start + BATCH], start))
        if stages == 1:
            pipe.process_many("events", "events", 0, [(off, raw, 1) for off, raw in chunk])
            continue
        packer = Packer()
        for off, raw in chunk:
            fwd = pipe.ingest("events", "events", 0, off, raw)
            assert isinstance(fwd, Forward)
            assert packer.add(fwd, 1, ("events", 0, off, raw)) is None
        for pack in packer.drain():
            pipe.learn_message(0, roff, pack.value, pack.ts_ms)
            roff += 1
    rate = len(raws) / (time.perf_counter() - t0)
    assert pipe.counters["records"] == len(raws), pipe.counters
    t1 = time.perf_counter()
    blob, _ = pipe.snapshot(0)
    return rate, {"pickle_ms": 1000 * (time.perf_counter() - t1), "kb": len(blob) / 1024}


_D = "STREAMSVC_MODELS__DEFAULT__"
NO_DETECTORS = {f"{_D}DATA_DRIFT": "false", f"{_D}REFERENCE_DRIFT": "false"}
BREAKDOWN = [  # (row, settings on top of the kind's)
    ("service path, no drift detectors", NO_DETECTORS),
    ("+ label-free detector", {f"{_D}REFERENCE_DRIFT": "false"}),
    ("+ frozen reference (the shipped setting)", {}),
]


class _Instant:
    """A model that answers at once (two classes) and learns nothing: what the service path
    costs by itself."""

    def predict_proba_one(self, x: dict) -> dict:
        return {0: 0.3, 1: 0.7}

    def learn_one(self, x: dict, y: Any) -> None:
        pass


class _Clocked:
    """Wraps a model and adds up this thread's CPU time inside its calls."""

    def __init__(self, model: Any) -> None:
        self.model, self.seconds = model, 0.0

    def predict_proba_one(self, x: dict) -> dict:
        t0 = time.thread_time()
        out = self.model.predict_proba_one(x)
        self.seconds += time.thread_time() - t0
        return out

    def learn_one(self, x: dict, y: Any) -> None:
        t0 = time.thread_time()
        self.model.learn_one(x, y)
        self.seconds += time.thread_time() - t0


def _service_loop(kind: str, raws: list[bytes], env: dict[str, str],
                  wrap: Any = None) -> tuple[float, Any]:
    """CPU seconds of the one-step service path over `raws` (the first record creates the
    model's host; `wrap` may then replace its model)."""
    pipe = Pipeline(load_settings(None, {**_kind_env(kind), **env}).models, HostLimits())
    pipe.assign(0, None, None)
    pipe.process("events", "events", 0, 0, raws[0], 1)
    host = next(iter(pipe.proc.partitions[0].hosts.values()))
    if wrap is not None:
        host.model = wrap(host.model)
    t0 = time.thread_time()
    for start in range(1, len(raws), BATCH):
        pipe.process_many("events", "events", 0,
                          [(off, raw, 1) for off, raw in enumerate(raws[start:start + BATCH],
                                                                   start)])
    return time.thread_time() - t0, host.model


def inprocess_breakdown(kind: str, raws: list[bytes], rounds: int = 5) -> list[tuple[str, float]]:
    """CPU µs per event (this thread's CPU time, so other processes' load does not count;
    median of `rounds` alternating runs) of the bare learner, then of the one-step service path
    with the shipped drift detectors added one by one: what the host adds to the learner and
    what each detector costs. Two more rows split the host's share (no detectors): the path
    with a model that answers at once (the host's own work), and the time spent inside the
    learner's own calls on the service path (against the bare loop's, with the same clock
    around each call): the learner's calls get slower when the host's work runs between
    them."""
    data = [(d["x"], d["y"]) for d in map(json.loads, raws)]
    times: dict[str, list[float]] = {"bare learner": []}
    peer = PEERS.get(kind)
    if peer is not None:
        times[peer[0]] = []
    for _ in range(rounds):
        models = [("bare learner", load_settings(None, _kind_env(kind)).models["default"].build())]
        if peer is not None:
            models.append((peer[0], peer[1]()))
        for row, model in models:
            t0 = time.thread_time()
            for x, y in data:
                model.predict_proba_one(x)
                model.learn_one(x, y)
            times[row].append(time.thread_time() - t0)
        for row, env in BREAKDOWN:
            times.setdefault(row, []).append(_service_loop(kind, raws, env)[0])
        times.setdefault("host alone: no detectors, a model that answers at once", []).append(
            _service_loop(kind, raws, NO_DETECTORS, lambda m: _Instant())[0])
        clocked = _Clocked(load_settings(None, _kind_env(kind)).models["default"].build())
        for x, y in data:
            clocked.predict_proba_one(x)
            clocked.learn_one(x, y)
        times.setdefault("inside the learner's calls, bare loop (clocked per call)", []).append(
            clocked.seconds)
        _, inside = _service_loop(kind, raws, NO_DETECTORS, _Clocked)
        times.setdefault("inside the learner's calls, service path without detectors "
                         "(clocked per call)", []).append(inside.seconds)
    return [(row, 1e6 * sorted(t)[len(t) // 2] / len(raws)) for row, t in times.items()]


# -- through Kafka ------------------------------------------------------------------------------
def _producer(bootstrap: str, **extra: Any) -> Any:
    from confluent_kafka import Producer

    return Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, **extra})


def _produce_all(p: Any, topic: str, raws: list[bytes]) -> None:
    for r in raws:
        while True:
            try:
                p.produce(topic, r)
                break
            except BufferError:
                p.poll(0.005)
    p.flush()


def _consumer(bootstrap: str, topics: list[str]) -> Any:
    from confluent_kafka import Consumer

    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"bench-{uuid.uuid4().hex[:8]}",
                  "auto.offset.reset": "earliest", "enable.auto.commit": False,
                  "fetch.wait.max.ms": 10})
    c.subscribe(topics)
    return c


def _drain(c: Any, timeout: float = 0.1) -> list[Any]:
    """What the consumer has now: wait for one message, then take what is queued without
    waiting (`consume(n, t)` alone waits for n messages or t seconds: +t/2 latency)."""
    first = c.poll(timeout)
    if first is None:
        return []
    return [m for m in (first, *c.consume(10000, 0)) if not m.error()]


def _create(bootstrap: str, topics: list[str], partitions: int = 4) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    for f in admin.create_topics([NewTopic(t, partitions, 1) for t in topics]).values():
        f.result()


def raw_roundtrip_rate(bootstrap: str, raws: list[bytes], at_least: int = 300_000) -> float:
    """confluent-kafka produce → consume of the same records (repeated to `at_least`, so that
    start-up does not dominate), no worker in between."""
    raws = raws * max(1, -(-at_least // len(raws)))
    topic = f"ref-{uuid.uuid4().hex[:6]}"
    _create(bootstrap, [topic])
    c = _consumer(bootstrap, [topic])
    c.consume(1, 2.0)  # join and get the assignment before the clock starts
    p = _producer(bootstrap)
    t0 = time.perf_counter()
    threading.Thread(target=_produce_all, args=(p, topic, raws), daemon=True).start()
    got = 0
    while got < len(raws):
        got += len(_drain(c))
    dt = time.perf_counter() - t0
    c.close()
    return len(raws) / dt


class Service:
    """Worker processes of one isolated deployment (own app id and topic names)."""

    def __init__(self, broker: Any, kind: str, extra_env: dict[str, str] | None = None) -> None:
        self.broker = broker
        ns = uuid.uuid4().hex[:6]
        self.topics = {r: f"{ns}-{t}" for r, t in ROLES.items()}
        self.env = {**os.environ, "STREAMSVC_BROKER": broker.url,
                    "STREAMSVC_APP_ID": f"bench-{ns}", **_kind_env(kind), **(extra_env or {}),
                    **{f"STREAMSVC_TOPICS__{r.upper()}": t for r, t in self.topics.items()}}
        self.procs: list[subprocess.Popen] = []

    def start(self, n: int = 1) -> None:
        for i in range(n):
            self.procs.append(subprocess.Popen(
                [sys.executable, "-m", "streamsvc.cli", "worker", "--log-level", "warning"],
                env={**self.env, "STREAMSVC_WORKER_ID": f"bench-w{i}"},
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True))
        # ready: every worker answers; a warm-up event per partition
        c = _consumer(self.broker.bootstrap, [self.topics["predictions"]])
        p = _producer(self.broker.bootstrap)
        want = {f"warm{i}" for i in range(16)}
        deadline = time.monotonic() + 120
        while want and time.monotonic() < deadline:
            for i in range(16):
                p.produce(self.topics["events"], json.dumps(
                    {"id": f"warm{i}", "x": {"0": 1.0, "1": 2.0, "2": 3.0}}).encode())
            p.flush()
            for m in c.consume(1000, 2.0):
                if not m.error():
                    want.discard(json.loads(m.value()).get("id"))
        c.close()
        if want:
            raise RuntimeError("the worker did not answer within 120 s")
        time.sleep(2.0)  # let the first rebalance settle

    def stop(self) -> None:
        for w in self.procs:
            if w.poll() is None:
                os.killpg(w.pid, signal.SIGTERM)
        for w in self.procs:
            try:
                w.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(w.pid, signal.SIGKILL)


@contextmanager
def service(broker: Any, kind: str, workers: int = 1, env: dict[str, str] | None = None):
    s = Service(broker, kind, {"STREAMSVC_WORKER__CHECKPOINT_INTERVAL": "5", **(env or {})})
    try:
        s.start(workers)
        yield s
    finally:
        s.stop()


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far (Linux /proc; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """CPU used per event by each process of a run: where the machine's cores go."""

    def __init__(self, procs: dict[str, int]) -> None:
        self.procs = {k: v for k, v in procs.items() if v}
        self.t0 = {k: cpu_seconds(p) for k, p in self.procs.items()}

    def per_event_us(self, n: int) -> dict[str, float]:
        return {k: 1e6 * (cpu_seconds(p) - self.t0[k]) / n for k, p in self.procs.items()}


def service_rate(svc: Service, raws: list[bytes], cpu: dict[str, float] | None = None
                 ) -> float:
    """Events produced as fast as the client can; rate until the last prediction is out."""
    c = _consumer(svc.broker.bootstrap, [svc.topics["predictions"]])
    c.consume(1, 2.0)
    want = {json.loads(r)["id"] for r in raws}
    p = _producer(svc.broker.bootstrap)
    broker_proc = getattr(svc.broker, "proc", None)
    meter = CpuMeter({"worker": svc.procs[0].pid if len(svc.procs) == 1 else 0,
                      "broker": broker_proc.pid if broker_proc is not None else 0,
                      "load client": os.getpid()})
    t0 = time.perf_counter()
    threading.Thread(target=_produce_all, args=(p, svc.topics["events"], raws),
                     daemon=True).start()
    bar = tqdm(total=len(want), desc="through Kafka + worker", unit="ev", leave=False)
    while want:
        for m in _drain(c):
            rid = json.loads(m.value()).get("id")
            if rid in want:
                want.discard(rid)
                bar.update(1)
    bar.close()
    dt = time.perf_counter() - t0
    if cpu is not None:
        cpu.update(meter.per_event_us(len(raws)))
    c.close()
    return len(raws) / dt


#: the load client's producer linger in the latency runs: librdkafka's own default. With 0 (a
#: request per event) the client alone overloaded the broker for seconds after each start
#: (raw produce → consume at 7,000 events/s, no worker: p99 920 ms with 0, 12 ms with 5)
CLIENT_LINGER_MS = 5.0


def _latency(bootstrap: str, produce_to: str, read_from: str, raws: list[bytes], rate: float,
             warmup: float) -> dict[str, float]:
    """Produce at a fixed rate; produce() call → matching record (same id) consumed."""
    c = _consumer(bootstrap, [read_from])
    c.consume(1, 2.0)
    while _drain(c, 0.5):
        pass  # what is already in the topic (earlier runs) is read before the clock starts
    p = _producer(bootstrap, **{"linger.ms": CLIENT_LINGER_MS})
    ids = [json.loads(r)["id"] for r in raws]
    sent: dict[str, float] = {}
    lat: list[tuple[float, float]] = []  # (sent at, seconds from the start; latency)
    done = threading.Event()
    done_at = [0.0]

    def consume() -> None:
        while not done.is_set() or len(lat) < len(ids):
            for m in _drain(c):
                t = time.perf_counter()
                rid = json.loads(m.value()).get("id")
                if rid in sent:
                    at = sent.pop(rid)
                    lat.append((at - t0, t - at))
            if done.is_set() and time.perf_counter() - done_at[0] > 30:
                return

    # the measuring client's own full collections would show as latency: its heap (imports,
    # the broker handle, the events) is frozen first, as the worker's is
    gc.collect()
    gc.freeze()
    th = threading.Thread(target=consume, daemon=True)
    t0 = time.perf_counter()
    th.start()
    try:
        for i, (rid, r) in enumerate(zip(ids, raws, strict=True)):
            due = t0 + i / rate
            while (now := time.perf_counter()) < due:
                time.sleep(min(0.0005, due - now))
            sent[rid] = time.perf_counter()
            p.produce(produce_to, r)
            p.poll(0)
        p.flush()
        done_at[0] = time.perf_counter()
        done.set()
        th.join(60)
    finally:
        gc.unfreeze()
    c.close()
    steady = sorted(d for at, d in lat if at >= warmup)

    def q(x: float) -> float:
        if not steady:
            return float("nan")
        return round(1000 * steady[min(len(steady) - 1, int(x * len(steady)))], 2)

    return {"rate": rate, "n": len(steady), "lost": len(ids) - len(lat), "p50": q(0.5),
            "p99": q(0.99), "p999": q(0.999)}


def latency_at(svc: Service, raws: list[bytes], rate: float, warmup: float = 2.0
               ) -> dict[str, float]:
    """Produce at a fixed rate; produce → prediction consumed per event, matched by id. The
    first `warmup` seconds (client connections, first fetch sessions) are not counted."""
    return _latency(svc.broker.bootstrap, svc.topics["events"], svc.topics["predictions"],
                    raws, rate, warmup)


def raw_latency_at(bootstrap: str, raws: list[bytes], rate: float, warmup: float = 2.0
                   ) -> dict[str, float]:
    """The reference: the same client and rate, the events read straight back (one hop, no
    worker)."""
    topic = f"rawlat-{uuid.uuid4().hex[:6]}"
    _create(bootstrap, [topic])
    return _latency(bootstrap, topic, topic, raws, rate, warmup)


# -- RL round trip ------------------------------------------------------------------------------
ECHO = """
import sys
from confluent_kafka import Consumer, Producer
bootstrap, src, dst = sys.argv[1:4]
c = Consumer({"bootstrap.servers": bootstrap, "group.id": "echo-" + src,
              "auto.offset.reset": "latest", "fetch.wait.max.ms": 100})
p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 2})
c.subscribe([src])
while True:
    m = c.poll(0.2)
    if m is None or m.error():
        continue
    p.produce(dst, m.value(), m.key())
    p.flush()
    c.commit(asynchronous=True)
"""


def rl_latency(broker: Any, episodes: int, seed: int) -> dict[str, dict[str, float]]:
    """CartPole through the worker vs the same client through a bare echo process."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
    from cartpole_kafka import play

    a, b = f"ping-{uuid.uuid4().hex[:6]}", f"pong-{uuid.uuid4().hex[:6]}"
    _create(broker.bootstrap, [a, b])
    echo = subprocess.Popen([sys.executable, "-c", ECHO, broker.bootstrap, a, b],
                            start_new_session=True)
    try:
        time.sleep(6)
        _, ref = play(broker.bootstrap, episodes, None, seed, transitions=a, actions=b,
                      policy=lambda ans: 0)
    finally:
        os.killpg(echo.pid, signal.SIGKILL)
    env = {"STREAMSVC_MODELS__CART__KIND": "stream_q",
           "STREAMSVC_MODELS__CART__PARAMS__N_ACTIONS": "2"}
    s = Service(broker, "hoeffding_tree", env)
    s.procs.append(subprocess.Popen(
        [sys.executable, "-m", "streamsvc.cli", "worker", "--log-level", "warning"],
        env=s.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True))
    try:
        time.sleep(10)
        _, svc = play(broker.bootstrap, episodes, "cart", seed,
                      transitions=s.topics["transitions"], actions=s.topics["actions"])
    finally:
        s.stop()
    return {"reference": ref, "service": svc}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=30000, help="events per throughput run")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--kinds", nargs="+", default=["hoeffding_tree", "default"],
                    help="models to run ('default' = the shipped default model)")
    ap.add_argument("--kafka", action="store_true", help="also through a real broker")
    ap.add_argument("--latency", action="store_true",
                    help="produce→prediction latency at 25/50/90%% of the sustained rate")
    ap.add_argument("--rl", type=int, default=0, metavar="EPISODES",
                    help="CartPole through Kafka for this many episodes (step latency)")
    ap.add_argument("--scale", action="store_true", help="2 workers vs 1 (model shards = 2)")
    ap.add_argument("--breakdown", action="store_true",
                    help="CPU per event of the in-process path, drift detectors added one by one")
    ap.add_argument("--out", default="docs/bench-e2e.md")
    args = ap.parse_args()
    n = args.n  # every model runs on the same events
    raws = events(n, args.seed)
    # the collector as the demo and the worker set it (`streamsvc.heap`), for the in-process
    # rows and their references alike
    tune_collector()
    lines = []
    cmd = "python -m bench.e2e " + " ".join(sys.argv[1:])
    import numpy
    import river

    lines += [
        "## End-to-end path (`bench/e2e.py`)", "",
        f"Command: `{cmd.strip()}` — {args.n} events of `sea-abrupt` (seed {args.seed}) with "
        f"labels (test-then-train). Machine: {platform.platform()}, {os.cpu_count()} CPUs "
        "shared by the broker, the worker and the load client; Python "
        f"{platform.python_version()}, river {river.__version__}, numpy {numpy.__version__}.",
        "In-process rows run in this process with the collector set as the demo and the worker "
        "set it (`streamsvc.heap.tune_collector`), references included.",
        "", "| path | events/s | reference (same run) | reference events/s | ratio |",
        "|---|---:|---|---:|---:|"]
    bare: dict[str, float] = {}
    peer: dict[str, tuple[str, float]] = {}  # kind -> (peer's name, its bare rate)

    def peer_row(path: str, kind: str, rate: float) -> None:
        if kind in peer:
            name, ref = peer[kind]
            lines.append(f"| {path} | {rate:,.0f} | {name} predict+learn | {ref:,.0f} | "
                         f"{rate / ref:.2f} |")

    snaps: list[str] = []
    for kind in args.kinds:
        bare[kind] = bare_rate(kind, raws[:n])
        if kind in PEERS:
            name, make = PEERS[kind]
            peer[kind] = name, bare_rate(kind, raws[:n], make())
        svc, snap = inprocess_rate(kind, raws[:n])
        two, _ = inprocess_rate(kind, raws[:n], stages=2)
        lines.append(f"| in-process service path, {kind} | {svc:,.0f} | bare {kind} "
                     f"predict+learn | {bare[kind]:,.0f} | {svc / bare[kind]:.2f} |")
        peer_row(f"in-process service path, {kind}", kind, svc)
        lines.append(f"| the worker's two stages without Kafka, {kind} | {two:,.0f} | bare "
                     f"{kind} predict+learn | {bare[kind]:,.0f} | {two / bare[kind]:.2f} |")
        snaps.append(f"{kind} after {n:,} examples: {snap['kb']:,.0f} KB pickled in "
                     f"{snap['pickle_ms']:.1f} ms")
        print("\n".join(lines[-2:]), snaps[-1], flush=True)
    lat_rows: list[str] = []
    extra: list[str] = []
    cpu_rows: list[tuple[str, float, dict[str, float]]] = []
    if args.kafka or args.latency or args.rl or args.scale:
        from streamsvc.devbroker import KafkaBroker

        with KafkaBroker(partitions=4) as broker:
            raw_rate = raw_roundtrip_rate(broker.bootstrap, raws)
            lines.append(f"| raw broker round trip | {raw_rate:,.0f} | (reference for the "
                         "rows below) | | |")
            for kind in args.kinds if (args.kafka or args.latency) else []:
                with service(broker, kind) as s:
                    cpu: dict[str, float] = {}
                    rate = service_rate(s, [r.replace(b'"e', b'"k', 1) for r in raws[:n]], cpu)
                    cpu_rows.append((kind, rate, cpu))
                    lines.append(f"| Kafka broker + 1 worker, {kind} | {rate:,.0f} | bare {kind}"
                                 f" predict+learn | {bare[kind]:,.0f} | "
                                 f"{rate / bare[kind]:.2f} |")
                    peer_row(f"Kafka broker + 1 worker, {kind}", kind, rate)
                    lines.append(f"| Kafka broker + 1 worker, {kind} | {rate:,.0f} | raw "
                                 f"confluent-kafka produce→consume | {raw_rate:,.0f} | "
                                 f"{rate / raw_rate:.2f} |")
                    print("\n".join(lines[-3:]), flush=True)
                    # the same again on topics the broker has now served once (their first
                    # pass costs the broker up to twice the CPU per event); the model has
                    # learned the first pass, so it is the larger one here
                    cpu2: dict[str, float] = {}
                    again = service_rate(s, [r.replace(b'"e', b'"m', 1) for r in raws[:n]],
                                         cpu2)
                    cpu_rows.append((f"{kind}, second pass", again, cpu2))
                    lines.append(f"| Kafka broker + 1 worker, {kind}, second pass (topics "
                                 f"served once; model learned the first) | {again:,.0f} | bare "
                                 f"{kind} predict+learn | {bare[kind]:,.0f} | "
                                 f"{again / bare[kind]:.2f} |")
                    peer_row(f"Kafka broker + 1 worker, {kind}, second pass", kind, again)
                    print(lines[-1], flush=True)
                if args.latency:
                    # the sustainable rate: the second pass's, while the model held 1-2x n
                    # examples (a model that has learned more may be slower: DriftMoE's trees
                    # grow). Each level starts a fresh worker and model, which learn no more
                    # during the level than n or so at these rates, so a level does not run
                    # a model grown bigger (and slower) than the one the rate was measured on.
                    sustained = min(rate, again)
                    for frac in (0.25, 0.5, 0.9):
                        time.sleep(5)  # the broker settles after the previous run
                        k = max(500, int(sustained * frac * 20))  # ~20 s at this rate
                        src = raws if k <= len(raws) else events(k, args.seed)
                        with service(broker, kind) as fresh:
                            r = latency_at(fresh, [x.replace(b'"e', f'"l{frac}-'.encode(), 1)
                                                   for x in src[:k]], sustained * frac)
                        ref = raw_latency_at(broker.bootstrap, [
                            x.replace(b'"e', f'"q{frac}-'.encode(), 1) for x in src[:k]],
                            rate * frac)
                        lat_rows.append(
                            f"| {kind} | {int(frac * 100)}% ({r['rate']:,.0f}/s) | {r['n']} "
                            f"| {r['p50']} | {r['p99']} | {r['p999']} | {r['lost']} | "
                            f"{ref['p50']} | {ref['p99']} |")
                        print(lat_rows[-1], flush=True)
            if args.scale:
                env = {"STREAMSVC_MODELS__DEFAULT__SHARDS": "2"}
                kind = args.kinds[-1]
                rates = {}
                for w in (1, 2):
                    with service(broker, kind, w, env) as s:
                        rates[w] = service_rate(s, [r.replace(b'"e', f'"s{w}'.encode(), 1)
                                                    for r in raws[:n]])
                extra += ["", f"**Scale-out** ({kind}, `shards = 2`, {n} events): 1 worker "
                          f"{rates[1]:,.0f} events/s, 2 workers {rates[2]:,.0f} events/s "
                          f"(ratio {rates[2] / rates[1]:.2f}); both workers, the broker and the "
                          f"load client share {os.cpu_count()} cores.", ""]
                print(extra[-2], flush=True)
            if args.rl:
                r = rl_latency(broker, args.rl, args.seed)
                s, ref = r["service"], r["reference"]
                extra += [
                    "", f"**Round trip per CartPole step through Kafka** ({args.rl} episodes, "
                    f"{s['n']} steps; environment here, stream Q(λ) in a worker: transition → "
                    "ingest → records → learn → action):", "",
                    "| | p50 ms | p99 ms | p99 ratio to reference |", "|---|---:|---:|---:|",
                    f"| service step | {s['p50']} | {s['p99']} | {s['p99'] / ref['p99']:.2f} |",
                    f"| reference: same client, bare echo process (confluent-kafka) | "
                    f"{ref['p50']} | {ref['p99']} | 1.00 |", ""]
                print("\n".join(extra[-4:]), flush=True)
    lines += ["", "Checkpoints: a snapshot is taken at a batch boundary; pickling it in the "
              "loop would pause the stream (" + "; ".join(snaps) + "), so the worker forks and "
              "a child pickles it (`snapshot_fork`: the loop pauses for the fork, a few ms), "
              "and a writer thread stores it in Kafka while the stream goes on. The worker runs below snapshot "
              "every 5 s (`STREAMSVC_WORKER__CHECKPOINT_INTERVAL=5`), so the throughput and "
              "latency figures include them.", ""]
    if cpu_rows:
        cores = os.cpu_count() or 1
        lines += ["**Where the cores go** (CPU time per event of each process during the Kafka "
                  "runs above, from /proc; each event is produced once by the client, forwarded "
                  "once by the worker to the records topic and answered once, so the broker "
                  "takes in and hands out three messages per event):", "",
                  "| model | worker µs/event | broker µs/event | load client µs/event | sum "
                  "| ceiling on this machine if every core were busy | measured |",
                  "|---|---:|---:|---:|---:|---:|---:|"]
        for kind, rate, cpu in cpu_rows:
            total = sum(cpu.values())
            ceiling = cores * 1e6 / total if total else float("nan")
            lines.append(f"| {kind} | {cpu.get('worker', 0):.1f} | {cpu.get('broker', 0):.1f} | "
                         f"{cpu.get('load client', 0):.1f} | {total:.1f} | {ceiling:,.0f}/s | "
                         f"{rate:,.0f}/s |")
        lines.append("")
    if lat_rows:
        lines += ["**Latency, produce → prediction consumed** (fixed rate as a share of the "
                  "rate the worker sustained above, the slower of its two passes; each level "
                  "starts a fresh worker, model and topics, so no level runs a model bigger, "
                  "and slower, than the passes did; about 20 s per level, the first 2 s not "
                  "counted: the load client's connections and first fetches; the client's "
                  f"producer lingers {CLIENT_LINGER_MS:g} ms, librdkafka's default, and its "
                  "heap is frozen during the run). Reference in the same run: the same client "
                  "at the same rate reading its events straight back (one hop, no worker):", "",
                  "| model | rate | events counted | p50 ms | p99 ms | p99.9 ms | not answered "
                  "| raw p50 ms | raw p99 ms |",
                  "|---|---|---:|---:|---:|---:|---:|---:|---:|", *lat_rows, ""]
    lines += extra
    if args.breakdown:
        kind = args.kinds[0]
        rows = inprocess_breakdown(kind, raws[:n])
        base = rows[0][1]
        has_peer = kind in PEERS
        head = rows[:len(BREAKDOWN) + 1 + has_peer]
        peer_us = rows[1][1] if has_peer else None
        cols = "| path | µs/event | ratio bare / path |" + (
            f" ratio {PEERS[kind][0]} / path |" if has_peer else "")
        lines += ["", f"**Where the in-process time goes** ({kind}, {n:,} events; CPU µs per "
                  "event of this thread, median of 5 alternating runs):", "",
                  cols, "|---|---:|---:|" + ("---:|" if has_peer else ""),
                  *[f"| {row} | {us:.1f} | {base / us:.2f} |"
                    + (f" {peer_us / us:.2f} |" if peer_us else "") for row, us in head], "",
                  "What the host's share is made of (no detectors; same runs):", "",
                  "| measured | µs/event |", "|---|---:|",
                  *[f"| {row} | {us:.1f} |" for row, us in rows[len(head):]], ""]
        print("\n".join(lines[-len(rows) - 6:]), flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
