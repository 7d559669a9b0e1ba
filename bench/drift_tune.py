"""DriftMoE tuning runs: candidate settings vs ARF(10) on chosen (tuning) seeds, one process.

    python -m bench.drift_tune --streams rbf-fast,bananas --seeds 1,2,3 --n 10000 \
        --cand 'default={}' --cand 'lam6={"train_lambda": 6}'

Prints prequential accuracy (%) and examples/s per (stream, seed, candidate), the gap to
ARF(10) and the mean over seeds. ARF(10) results are cached in ``--cache`` (JSON) so that
trying candidates does not re-run the forest. Real sets (``bananas`` ...) use the seed only
for the models. Used to choose the defaults; the report runs are ``bench.drift`` on other seeds.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import importlib  # noqa: E402
import json  # noqa: E402
import shlex  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from river import forest  # noqa: E402

from bench.drift import load_stream, machine  # noqa: E402
from models.drift_moe import DriftMoEClassifier  # noqa: E402


def prequential(model, data) -> tuple[float, float]:
    hits = 0
    predict, learn = model.predict_one, model.learn_one
    t0 = time.process_time()  # CPU time: less sensitive to a busy shared machine
    for x, y in data:
        hits += predict(x) == y
        learn(x, y)
    dt = time.process_time() - t0
    return 100.0 * hits / len(data), len(data) / dt


def load_prev(rev: str):
    """``DriftMoEClassifier`` as committed in ``rev`` (its ``models/`` package, imported as
    ``models_prev``), so that old and new code are timed in the same process."""
    root = Path(tempfile.mkdtemp(prefix="drift_prev_"))
    pkg = root / "models_prev"
    pkg.mkdir()
    repo = Path(__file__).resolve().parent.parent
    names = subprocess.run(
        ["git", "ls-tree", "--name-only", rev, "models/"],
        cwd=repo,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    for name in names:
        if name.endswith(".py"):
            src = subprocess.run(
                ["git", "show", f"{rev}:{name}"],
                cwd=repo,
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            (pkg / Path(name).name).write_text(src)
    sys.path.insert(0, str(root))
    return importlib.import_module("models_prev.drift_moe").DriftMoEClassifier


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.drift_tune")
    ap.add_argument("--streams", default="rbf-fast,bananas")
    ap.add_argument("--seeds", default="1,2,3")
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--cand", action="append", default=[], help="name=JSON kwargs")
    ap.add_argument("--cache", default="/tmp/drift_tune_arf.json")
    ap.add_argument("--no-arf", action="store_true")
    ap.add_argument(
        "--prev",
        default="",
        help="git revision: add candidate 'prev' = that revision's default DriftMoE "
        "(timed in the same process as the others)",
    )
    ap.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="run the candidates this many times, interleaved, and report the median "
        "throughput (timing on a shared machine)",
    )
    ap.add_argument("--out", default="", help="also write the printed lines to this file")
    args = ap.parse_args(argv)
    cands = {}
    if args.prev:
        cands["prev"] = (load_prev(args.prev), {})
    for c in args.cand or ["default={}"]:
        name, _, kw = c.partition("=")
        cands[name] = (DriftMoEClassifier, json.loads(kw or "{}"))
    cmd = shlex.join(argv if argv is not None else sys.argv[1:])
    lines: list[str] = [f"python -m bench.drift_tune {cmd}", ""]

    def say(text: str) -> None:
        print(text, flush=True)
        lines.append(text)

    cache_path = Path(args.cache)
    cache = json.loads(cache_path.read_text()) if cache_path.exists() else {}
    seeds = [int(s) for s in args.seeds.split(",")]
    summary: dict = {}
    for sname in args.streams.split(","):
        for seed in seeds:
            data = load_stream(sname, args.n, seed)
            key = f"{sname}/{seed}/{len(data)}"
            if not args.no_arf and key not in cache:
                cache[key] = prequential(forest.ARFClassifier(n_models=10, seed=seed), data)
                cache_path.write_text(json.dumps(cache, indent=1))
            arf = cache.get(key, (float("nan"), float("nan")))
            line = [f"{sname:>14} s{seed}: ARF {arf[0]:6.2f} ({arf[1]:5.0f}/s)"]
            runs: dict = {name: [] for name in cands}
            for _ in range(args.repeat):
                for name, (cls, kw) in cands.items():
                    runs[name].append(prequential(cls(seed=seed, **kw), data))
            for name, rr in runs.items():
                acc = rr[0][0]
                tp = sorted(t for _, t in rr)[len(rr) // 2]
                summary.setdefault((sname, name), []).append((acc - arf[0], acc, tp / arf[1], tp))
                line.append(f"{name} {acc:6.2f} ({acc - arf[0]:+5.2f}, {tp:5.0f}/s)")
            say(" | ".join(line))
    say("")
    say("mean over seeds: accuracy, gap to ARF(10), throughput ratio to ARF(10)")
    for (sname, name), v in summary.items():
        g = sum(a[0] for a in v) / len(v)
        acc = sum(a[1] for a in v) / len(v)
        r = sum(a[2] for a in v) / len(v)
        tp = sum(a[3] for a in v) / len(v)
        say(f"{sname:>14} {name:>12}: {acc:6.2f} gap {g:+6.2f}  {tp:6.0f}/s  ({r:4.2f}x ARF)")
    if args.out:
        head = [
            "# DriftMoE tuning runs (issue 11)",
            "",
            f"Command: `{lines[0]}`  ",
            f"Machine: {machine()}.",
            "",
            "Prequential accuracy (%) of DriftMoE candidates (keyword arguments of "
            "`DriftMoEClassifier`, on top of its defaults) and, when not `--no-arf`, "
            "river's ARF(10) on the same examples; `prev` is the default DriftMoE of the "
            f"git revision `{args.prev}` (its own code, timed in the same process). "
            "Throughput: examples/s of predict+learn in CPU time of this process (median of "
            f"{args.repeat} interleaved runs); ARF(10)'s comes from the cache "
            f"(`{args.cache}`, filled by this script on first use, wall time), so the "
            "ratios to it are rough. Seeds are tuning seeds: reported results are "
            "`python -m bench.drift` on other seeds.",
            "",
            "```",
            *lines[2:],
            "```",
        ]
        Path(args.out).write_text("\n".join(head) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
