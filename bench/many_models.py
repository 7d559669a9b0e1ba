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
from pathlib import Path

from bench.e2e import events, service, service_rate
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
        ""]
    Path(args.out).write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
