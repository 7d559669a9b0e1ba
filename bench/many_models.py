"""What many models cost through Kafka: a challenger beside a model, and the same events spread
over the models a template makes, each a ratio to one model on the same events in the same run.

    python -m bench.many_models                  # 30,000 events, tenants 10 and 100
    python -m bench.many_models --n 20000 --tenants 10 100 1000

Every run is a fresh worker (its own topics and consumer group) on one broker. The reference
(`hoeffding_tree` alone, every event to `default`) runs just before and just after each run,
and the run's ratio is to the mean of those two (a broker serves its first topics slower: a
warm-up run comes first and is not counted).
A challenger doubles the learning per event: a ratio near 0.5 means it costs what a second
model costs and nothing more. Tenants split the same events into per-tenant streams: each
batch becomes one pack per tenant on the records topic, and each tree learns from fewer
events.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

from tqdm import tqdm

from agents.host import HostLimits
from agents.pipeline import Packer, Pipeline
from bench.e2e import events, service, service_rate
from streamsvc.config import load_settings
from streamsvc.heap import tune_collector

OUT = Path(__file__).resolve().parents[1] / "docs" / "bench-many-models.md"
ONE = '[models.default]\nkind = "hoeffding_tree"\n'
CHALLENGER = ONE + '[models.candidate]\nkind = "hoeffding_tree"\nchallenger_of = "default"\n'
TEMPLATE = ONE + '[models."tenant-*"]\nkind = "hoeffding_tree"\nmax_models = 100000\n'


def _config(text: str) -> str:
    fd, path = tempfile.mkstemp(suffix=".toml", prefix="bench-many-")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    return path


def _tenanted(raws: list[bytes], tenants: int) -> list[bytes]:
    """The same events, event i for model tenant-(i mod `tenants`)."""
    out = []
    for i, raw in enumerate(raws):
        body = json.loads(raw)
        body["model"] = f"tenant-{i % tenants}"
        out.append(json.dumps(body).encode())
    return out


def _rate(broker, config: str, raws: list[bytes]) -> float:
    path = _config(config)
    try:
        with service(broker, "hoeffding_tree", env={"STREAMSVC_CONFIG": path}) as svc:
            return service_rate(svc, raws)
    finally:
        os.unlink(path)


def _inprocess_rate(config: str, raws: list[bytes]) -> float:
    """The worker's two stages back to back without Kafka (ingest, a pack per shard and
    batch, challenger copies included, learn), in batches of 2,000 records."""
    path = _config(config)
    try:
        pipe = Pipeline(load_settings(path, {}).models, HostLimits())
    finally:
        os.unlink(path)
    pipe.assign(0, None, None)
    roff = 0
    t0 = time.perf_counter()
    for start in range(0, len(raws), 2000):
        packer, packs = Packer(), []
        for off in range(start, min(start + 2000, len(raws))):
            fwd = pipe.ingest("events", "events", 0, off, raws[off])
            for f in (fwd, *fwd.copies):
                full = packer.add(f, 1, ("events", 0, off, raws[off]))
                packs += [full] if full is not None else []
        for pack in packs + packer.drain():
            pipe.learn_message(0, roff, pack.value, pack.ts_ms)
            roff += 1
    return len(raws) / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=30000, help="events per run")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--tenants", type=int, nargs="+", default=[10, 100],
                    help="numbers of tenant models to spread the events over")
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args()
    from streamsvc.devbroker import KafkaBroker

    tune_collector()
    raws = events(args.n, args.seed)
    cases = [("a model and a challenger (both hoeffding_tree)", CHALLENGER, raws)]
    cases += [(f"{t} tenant models made by a template (events spread evenly)", TEMPLATE,
               _tenanted(raws, t)) for t in args.tenants]
    rows: list[tuple[str, float, float]] = []  # (run, its rate, the mean of its references)
    # in-process first (stable: no broker, no other process): the best of three runs of each
    best = {name: 0.0 for name, _, _ in [("one", ONE, raws), *cases]}
    for _ in tqdm(range(3), desc="in-process rounds", leave=False):
        for name, config, case_raws in [("one", ONE, raws), *cases]:
            best[name] = max(best[name], _inprocess_rate(config, case_raws))
    with KafkaBroker(partitions=4) as broker:
        _rate(broker, ONE, raws)  # warm-up: a broker's first topics cost it more
        before = _rate(broker, ONE, raws)
        for name, config, case_raws in cases:
            rate = _rate(broker, config, case_raws)
            after = _rate(broker, ONE, raws)
            rows.append((name, rate, (before + after) / 2))
            before = after
    cmd = "python -m bench.many_models " + " ".join(sys.argv[1:])
    refs = [ref for _, _, ref in rows]
    lines = [
        "## Many models through Kafka (`bench/many_models.py`)", "",
        f"Command: `{cmd.strip()}` — {args.n} labelled events of `sea-abrupt` (seed "
        f"{args.seed}), a broker and one worker on {platform.platform()}, {os.cpu_count()} "
        "CPUs shared by the broker, the worker and the load client. Reference: the same events "
        "to one `hoeffding_tree`, run just before and just after each run (after a warm-up "
        f"run); ratios are to the mean of those two ({min(refs):,.0f}–{max(refs):,.0f} "
        "events/s).", "",
        "| run | events/s | reference events/s | ratio to one model |", "|---|---:|---:|---:|",
        *[f"| {name} | {rate:,.0f} | {ref:,.0f} | {rate / ref:.2f} |" for name, rate, ref in rows],
        "", "The same without Kafka, in this process (the worker's two stages back to back: "
        "ingest, a pack per shard and batch, learn; best of three rounds, one model "
        f"{best['one']:,.0f} events/s), where no broker or other process adds noise:", "",
        "| run | events/s | ratio to one model |", "|---|---:|---:|",
        *[f"| {name} | {best[name]:,.0f} | {best[name] / best['one']:.2f} |"
          for name, _, _ in cases],
        ""]
    Path(args.out).write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
