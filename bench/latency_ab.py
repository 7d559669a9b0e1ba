"""Latency of two worker setups in alternating runs against one broker (A/B, same machine).

    python -m bench.latency_ab --rate 7000 --seconds 25 --runs 3 \\
        --a "STREAMSVC_WORKER__CHECKPOINT_INTERVAL=5" --b "STREAMSVC_WORKER__CHECKPOINT_INTERVAL=3600"
    python -m bench.latency_ab --a-dir /path/to/checkout-A --b-dir /path/to/checkout-B

Why: on a shared machine the p99 of one run says little (the same code swings several-fold
between runs), so a change is judged by alternating A and B several times in one session.
Each run starts the worker afresh (`hoeffding_tree`), warms it with 30,000 events at full
speed, then produces `--rate` events/s for `--seconds` and reports produce → prediction
p50/p99/p99.9 (`bench.e2e.latency_at`) and the worker's `commit_flushes`. `--a-dir/--b-dir`
run the worker from another checkout (its `streamsvc` package is imported from that folder).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from typing import Any

from bench.e2e import Service, _consumer, events, latency_at, service_rate


def _env(pairs: list[str]) -> dict[str, str]:
    out = {}
    for p in pairs:
        key, sep, value = p.partition("=")
        if not sep:
            raise SystemExit(f"--a/--b take NAME=VALUE settings, got {p!r}")
        out[key] = value
    return out


def _commit_flushes(svc: Service) -> int | None:
    """The worker's `commit_flushes` counter from its latest status record."""
    c = _consumer(svc.broker.bootstrap, [svc.topics["model_status"]])
    last = None
    for _ in range(5):
        for m in c.consume(1000, 1.0):
            if not m.error():
                v = json.loads(m.value())
                if "counters" in v:
                    last = v["counters"].get("commit_flushes")
    c.close()
    return last


def run(broker: Any, env: dict[str, str], cwd: str | None, raws: list[bytes], rate: float,
        tag: str) -> dict[str, Any]:
    here = os.getcwd()
    if cwd:
        os.chdir(cwd)  # the worker process imports `streamsvc` from its working directory
    svc = Service(broker, "hoeffding_tree", env)
    try:
        svc.start(1)
        service_rate(svc, [x.replace(b'"e', f'"w{tag}-'.encode(), 1) for x in events(30000, 7)])
        time.sleep(3)
        r = latency_at(svc, [x.replace(b'"e', f'"r{tag}-'.encode(), 1) for x in raws], rate)
        r["commit_flushes"] = _commit_flushes(svc)
        return r
    finally:
        svc.stop()
        os.chdir(here)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rate", type=float, default=7000.0, help="events/s during the measurement")
    ap.add_argument("--seconds", type=float, default=25.0)
    ap.add_argument("--runs", type=int, default=3, help="runs of each setup (alternating)")
    ap.add_argument("--a", nargs="*", default=[], metavar="NAME=VALUE", help="settings of A")
    ap.add_argument("--b", nargs="*", default=[], metavar="NAME=VALUE", help="settings of B")
    ap.add_argument("--a-dir", default=None, help="run A's worker from this checkout")
    ap.add_argument("--b-dir", default=None, help="run B's worker from this checkout")
    args = ap.parse_args()
    setups = {"A": (_env(args.a), args.a_dir), "B": (_env(args.b), args.b_dir)}
    raws = events(int(args.rate * args.seconds), 43)
    from streamsvc.devbroker import KafkaBroker

    with KafkaBroker(partitions=4) as broker:
        for i in range(args.runs):
            for name, (env, cwd) in setups.items():
                r = run(broker, env, cwd, raws, args.rate, f"{name}{i}")
                print(f"{name} run {i + 1}: p50 {r['p50']} ms, p99 {r['p99']} ms, p99.9 "
                      f"{r['p999']} ms, lost {r['lost']}, commit_flushes {r['commit_flushes']}",
                      flush=True)


if __name__ == "__main__":
    main()
