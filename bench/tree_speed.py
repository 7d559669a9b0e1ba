"""The service's Hoeffding tree against river's own: same trees, how much faster.

    python -m bench.tree_speed                      # 20,000 examples of each stream
    python -m bench.tree_speed --n 5000 --rounds 1  # a quick look

`hoeffding_tree` (and every DriftMoE expert) is `models.hoeffding.FastHoeffdingTreeClassifier`,
river's algorithm with cheaper leaves. Per stream, both trees do predict + learn on the same
examples, alternating for `--rounds` rounds (CPU time of this thread, the best round of each:
other processes' load does not count); the table also says whether the two grew the same
tree and how many predictions differ (the target is none).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

from river.tree import HoeffdingTreeClassifier
from tqdm import tqdm

from models.factory import TREE_DEFAULTS, build_model
from streamsvc.streams import make_stream

STREAMS = ["sea-abrupt", "rbf-fast", "led-abrupt"]


def _run(model: Any, data: list) -> tuple[float, list]:
    answers = []
    t0 = time.thread_time()
    for x, y in data:
        answers.append(model.predict_one(x))
        model.learn_one(x, y)
    return time.thread_time() - t0, answers


def compare(stream: str, n: int, seed: int, rounds: int) -> dict[str, Any]:
    data = list(make_stream(stream, n, seed))
    best = {"river": float("inf"), "service": float("inf")}
    for _ in range(rounds):
        river_tree = HoeffdingTreeClassifier(**TREE_DEFAULTS)
        ours = build_model("hoeffding_tree")
        t_river, a_river = _run(river_tree, data)
        t_ours, a_ours = _run(ours, data)
        best["river"] = min(best["river"], t_river)
        best["service"] = min(best["service"], t_ours)
    return {
        "stream": stream, "features": len(data[0][0]),
        "river_us": 1e6 * best["river"] / n, "service_us": 1e6 * best["service"] / n,
        "same_tree": (river_tree.n_nodes, river_tree.height) == (ours.n_nodes, ours.height),
        "nodes": ours.n_nodes,
        "differ": sum(a != b for a, b in zip(a_river, a_ours, strict=True)),
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=20000, help="examples per stream")
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds (best kept)")
    ap.add_argument("--streams", nargs="+", default=STREAMS)
    ap.add_argument("--out", default=str(Path(__file__).resolve().parents[1]
                                         / "docs" / "bench-tree.md"))
    args = ap.parse_args(argv)
    if args.n < 100 or args.rounds < 1:
        ap.error("--n must be at least 100 and --rounds at least 1")
    rows = [compare(s, args.n, args.seed, args.rounds)
            for s in tqdm(args.streams, desc="streams", unit="stream")]
    import numpy
    import river

    cmd = "python -m bench.tree_speed " + " ".join(sys.argv[1:] if argv is None else argv)
    lines = [
        "## The service's Hoeffding tree vs river's (`bench/tree_speed.py`)", "",
        f"Command: `{cmd.strip()}` — {args.n:,} examples per stream (seed {args.seed}), "
        f"predict + learn, best of {args.rounds} alternating rounds in CPU time of one thread. "
        f"Machine: {platform.platform()}, {os.cpu_count()} CPUs; Python "
        f"{platform.python_version()}, river {river.__version__}, numpy {numpy.__version__}. "
        f"Both with the shipped tree settings {TREE_DEFAULTS}.", "",
        "| stream | features | river µs/example | service µs/example | ratio river / service "
        "| same tree | tree nodes | predictions that differ |",
        "|---|---:|---:|---:|---:|---|---:|---:|",
        *[f"| {r['stream']} | {r['features']} | {r['river_us']:.1f} | {r['service_us']:.1f} | "
          f"{r['river_us'] / r['service_us']:.2f}× | {'yes' if r['same_tree'] else 'NO'} | "
          f"{r['nodes']} | {r['differ']} |" for r in rows], ""]
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
