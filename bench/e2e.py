"""End-to-end throughput of the service path, as ratios against references in the same run.

    python -m bench.e2e                 # in-process: service path vs the bare learner loop
    python -m bench.e2e --kafka         # also through a real broker + worker process

In-process, the reference is the learner alone (predict_proba_one + learn_one on the same
examples); the service path adds decoding, validation, routing, the model host (metrics,
drift detection, label bookkeeping). Through Kafka, the reference is a kafka-python
produce→consume round trip of the same records with no worker in between.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

from tqdm import tqdm

from agents.host import HostLimits
from agents.processor import Processor, route
from streamsvc.config import load_settings
from streamsvc.streams import make_stream


def _examples(n: int, seed: int) -> list[tuple[str, dict, int]]:
    return [(f"e{i}", {str(k): float(v) for k, v in x.items()}, int(y))
            for i, (x, y) in enumerate(make_stream("sea-abrupt", n, seed))]


def bench_inprocess(n: int, seed: int, kind: str) -> dict[str, float]:
    env = {"STREAMSVC_MODELS__DEFAULT__KIND": kind}
    if kind != "hoeffding_tree":
        env["STREAMSVC_MODELS__DEFAULT__PARAMS"] = "{}"
    settings = load_settings(None, env)
    data = _examples(n, seed)
    model = settings.models["default"].build()
    t0 = time.perf_counter()
    for _, x, y in tqdm(data, desc=f"reference: bare {kind}", unit="ex", leave=False):
        model.predict_proba_one(x)
        model.learn_one(x, y)
    ref = time.perf_counter() - t0
    proc = Processor(settings.models, HostLimits())
    raws = [json.dumps({"id": i, "x": x, "y": y}).encode() for i, x, y in data]
    t0 = time.perf_counter()
    for off, raw in enumerate(tqdm(raws, desc=f"service path: {kind}", unit="ex", leave=False)):
        _, value = route("events", raw, proc.specs, {"topic": "b", "partition": 0, "offset": off})
        proc.handle(0, off, value, 0.0)
    svc = time.perf_counter() - t0
    return {"n": n, "reference_eps": n / ref, "service_eps": n / svc, "ratio": ref / svc}


def bench_kafka(n: int, seed: int) -> dict[str, float]:
    from kafka import KafkaConsumer, KafkaProducer

    from streamsvc.devbroker import KafkaBroker

    data = _examples(n, seed)
    raws = [json.dumps({"id": i, "x": x, "y": y}).encode() for i, x, y in data]
    with KafkaBroker(partitions=4) as broker:
        # reference: produce n records and consume them back, no worker in between
        topic = f"ref-{uuid.uuid4().hex[:6]}"
        prod = KafkaProducer(bootstrap_servers=broker.bootstrap, linger_ms=5)
        cons = KafkaConsumer(topic, bootstrap_servers=broker.bootstrap, group_id=None,
                             auto_offset_reset="earliest")
        t0 = time.perf_counter()
        for r in raws:
            prod.send(topic, r)
        prod.flush()
        got = 0
        while got < n:
            got += sum(len(b) for b in cons.poll(timeout_ms=200).values())
        ref = time.perf_counter() - t0
        cons.close()
        # service: the same records through a real worker, until every prediction is out
        env = {**os.environ, "STREAMSVC_BROKER": broker.url, "STREAMSVC_LOG_LEVEL": "warning"}
        worker = subprocess.Popen([sys.executable, "-m", "streamsvc.cli", "worker"], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                  start_new_session=True)
        try:
            preds = KafkaConsumer("predictions", bootstrap_servers=broker.bootstrap,
                                  group_id=None, auto_offset_reset="earliest")
            # warm-up: wait until the worker answers one event
            prod.send("events", json.dumps({"id": "warm", "x": {"a": 1.0}}).encode())
            prod.flush()
            seen = 0
            while seen < 1:
                seen += sum(len(b) for b in preds.poll(timeout_ms=500).values())
            t0 = time.perf_counter()
            for r in raws:
                prod.send("events", r)
            prod.flush()
            bar = tqdm(total=n, desc="through Kafka + worker", unit="ev", leave=False)
            got = 0
            while got < n:
                k = sum(len(b) for b in preds.poll(timeout_ms=500).values())
                got += k
                bar.update(k)
            bar.close()
            svc = time.perf_counter() - t0
            preds.close()
        finally:
            os.killpg(worker.pid, signal.SIGTERM)
            worker.wait(60)
        prod.close()
    return {"n": n, "reference_eps": n / ref, "service_eps": n / svc, "ratio": ref / svc}


def bench_rl_latency(episodes: int, seed: int) -> dict[str, dict[str, float]]:
    """CartPole played through Kafka (env here, stream Q(λ) in a worker) vs a bare
    kafka-python ping-pong through one topic (no worker) in the same run."""
    import sys as _sys

    from kafka import KafkaConsumer, KafkaProducer

    from streamsvc.devbroker import KafkaBroker

    _sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
    from cartpole_kafka import play

    with KafkaBroker(partitions=4) as broker:
        topic = f"ping-{uuid.uuid4().hex[:6]}"
        prod = KafkaProducer(bootstrap_servers=broker.bootstrap, linger_ms=0, acks=1)
        prod.send(topic, b"warm").get(30)
        cons = KafkaConsumer(topic, bootstrap_servers=broker.bootstrap, group_id=None,
                             auto_offset_reset="latest", fetch_max_wait_ms=10)
        while not cons.assignment():
            cons.poll(timeout_ms=100)
        for tp in cons.assignment():
            cons.position(tp)
        lat = []
        for _ in tqdm(range(500), desc="reference ping-pong", leave=False):
            t0 = time.perf_counter()
            prod.send(topic, b"x")
            prod.flush()
            got = 0
            while not got:
                got = sum(len(b) for b in cons.poll(timeout_ms=50).values())
            lat.append(time.perf_counter() - t0)
        cons.close()
        prod.close()
        lat.sort()
        ref = {"n": len(lat), "p50": round(1000 * lat[len(lat) // 2], 2),
               "p99": round(1000 * lat[int(0.99 * len(lat))], 2)}
        env = {**os.environ, "STREAMSVC_BROKER": broker.url,
               "STREAMSVC_MODELS__CART__KIND": "stream_q",
               "STREAMSVC_MODELS__CART__PARAMS__N_ACTIONS": "2"}
        worker = subprocess.Popen([sys.executable, "-m", "streamsvc.cli", "worker"], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                  start_new_session=True)
        try:
            time.sleep(8)  # let the worker join its group before the first step
            _, svc = play(broker.bootstrap, episodes, "cart", seed)
        finally:
            os.killpg(worker.pid, signal.SIGTERM)
            worker.wait(60)
    return {"reference": ref, "service": svc}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=20000, help="events (default 20000)")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--kinds", nargs="+", default=["hoeffding_tree", "arf"])
    p.add_argument("--kafka", action="store_true", help="also measure through a real broker")
    p.add_argument("--rl", type=int, default=0, metavar="EPISODES",
                   help="also play CartPole through Kafka for this many episodes (latency)")
    p.add_argument("--out", default="docs/bench-e2e.md")
    args = p.parse_args()
    rows = []
    for kind in args.kinds:
        r = bench_inprocess(args.n, args.seed, kind)
        rows.append((f"in-process, {kind}", f"bare {kind} predict+learn", r))
        print(f"{kind:16s} service {r['service_eps']:8.0f} ev/s  bare {r['reference_eps']:8.0f}"
              f" ev/s  ratio {r['ratio']:.2f}")
    if args.kafka:
        r = bench_kafka(args.n, args.seed)
        rows.append(("Kafka broker + 1 worker, hoeffding_tree",
                     "kafka-python produce→consume, no worker", r))
        print(f"kafka            service {r['service_eps']:8.0f} ev/s  raw {r['reference_eps']:8.0f}"
              f" ev/s  ratio {r['ratio']:.2f}")
    import numpy
    import river

    cmd = "python -m bench.e2e " + " ".join(sys.argv[1:])
    lines = [
        "## End-to-end path (`bench/e2e.py`)", "",
        f"Command: `{cmd.strip()}` — seed {args.seed}, {args.n} events of `sea-abrupt` with "
        f"labels (test-then-train). Machine: {platform.platform()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, river {river.__version__}, numpy "
        f"{numpy.__version__}.", "",
        "| path | reference (same run) | events/s | reference events/s | ratio |",
        "|---|---|---:|---:|---:|",
    ]
    for name, ref, r in rows:
        lines.append(f"| {name} | {ref} | {r['service_eps']:,.0f} | {r['reference_eps']:,.0f} | "
                     f"{r['ratio']:.2f} |")
    lines.append("")
    if args.rl:
        lat = bench_rl_latency(args.rl, args.seed)
        s, r = lat["service"], lat["reference"]
        print(f"rl latency: service {s}  reference {r}")
        lines += [
            f"**Round trip per CartPole step through Kafka** ({args.rl} episodes, {s['n']} "
            "steps; environment in this process, stream Q(λ) in a worker; transition → "
            "ingest → records → learn → action):", "",
            "| | p50 ms | p99 ms | p50 ratio to reference |", "|---|---:|---:|---:|",
            f"| service step | {s['p50']} | {s['p99']} | {s['p50'] / r['p50']:.1f}× |",
            f"| reference: kafka-python ping-pong, one topic, no worker | {r['p50']} | "
            f"{r['p99']} | 1.0× |", ""]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
