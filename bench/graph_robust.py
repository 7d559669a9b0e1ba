"""Robustness benchmark: the node-property learner with its shipped defaults on SBM edge
streams it was never developed on (``bench/graph_sbm.py``), several seeds and shift schedules.

    python -m bench.graph_robust [--edges 24000] [--seeds 100 101 102] [--tune-seeds 0 1 2]

Protocol (transductive, as a service would be used): only some nodes ever get their label
revealed (``node-labels`` messages); every edge is folded into each model, and whenever its
``src`` is one of the never-labelled nodes, each model predicts src's community, scored
against the truth the models never see. Reported: micro-F1 (accuracy) per window — before
the shifts, the first 10% of the stream after each shift, and from each shift to the next —
for the learner, the neighbour vote, the two-hop vote and the majority class
(``bench/graph_baselines.py``), and, for reference, the learner with the old absolute
``half_life=600``. Defaults were chosen on ``--tune-seeds``; the tables are on ``--seeds``.
Writes docs/bench-graph-robust.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable

import numpy as np
import river
from tqdm import tqdm

from bench.graph_baselines import SimpleBaselines
from bench.graph_sbm import SBMStream
from models.graph import NodePropertyClassifier

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LEARNER = "learner (defaults)"
OLD = "learner, half_life=600 (old default)"
PREV = "learner, propagate=False"
#: reference, not a baseline: what a vote over the same 20 neighbours gets when it knows their
#: true communities (hidden from every model); its gap to the two-hop vote is the room any
#: neighbour-label method has in a window
ORACLE = "oracle: neighbours' true communities"
#: how the propagated vote was chosen (issue 11); figures from the offline replay on the tune
#: seeds are in the commit message that introduced it, not repeated here as measured figures
CHOICE_NOTE = (
    "How the default was chosen (issue 11): on the tune seeds only (this benchmark's seeds "
    "0 1, PubMed label subsets 0 1), every member's probabilities were logged at each node's "
    "first label and at each scored prediction, and mixing rules were replayed on the log: "
    "Hedge with other rates and discounts, AdaHedge, Hedge on 0-1 or Brier loss, "
    "follow-the-leader and a weighted majority of the members' answers. None closed the "
    "gaps: the learner's two-hop vote member is the same rule as the baseline's (to its "
    "Laplace smoothing), and no member was more accurate on these streams, so any mixing "
    "rule could only tie it, within noise. Errors sat on young nodes whose few neighbours "
    "are unlabelled too. The fix was a better member: the *propagated vote* (each unlabelled "
    "node keeps its two-hop label histogram as of its last edge; a node's vote counts "
    "labelled neighbours by their label and unlabelled ones by that estimate, i.e. labels up "
    "to three hops away). On the tune seeds it was at or above the two-hop baseline in "
    "nearly every window, with the mixture unchanged (same Hedge rate and discount). A "
    "recursive variant (estimates built from the neighbours' estimates) was worse after "
    "the mixing drops and was not kept; longer neighbour rings (40, 80) helped some windows "
    "and hurt others. The column `propagate=False` is the learner without the propagated "
    "vote, in the same run (as in the default, its fitted vote learns on a node's first "
    "label only; the previous default learned it on every label). Later (seeds 0-4, all "
    "schedules; PubMed subsets 0 1): the propagated vote counts each unlabelled neighbour's "
    "estimate raised to a power the learner picks among 1, 2, 4 and 8 by that vote's "
    "discounted log-loss on first labels. A neighbour's surroundings are a flatter mix than "
    "its likely class; summed raw, an unlabelled neighbour counted too little. In an offline "
    "replay a fixed power 4 gained as much, but the right power depends on the homophily; a "
    "calibration of each node's own estimate picked ~1-1.5 and gained little; a naive-Bayes "
    "product over the neighbours was worse than the two-hop vote. Faster or slower Hedge "
    "rates (0.1-2) moved PubMed at 50% labels by at most 0.003 and were left. Then the "
    "propagated vote weights its neighbours by age rank, with a decay (1, 0.9, 0.8 or 0.7) "
    "chosen by the same log-loss but on every label, first or not: after a community switch "
    "a node's newest links say where it is, and only re-announced labels show it. A fixed "
    "0.8 gained after switches but lost after mixing drops in the offline replay. "
    "Session 17: an independent check (its own degree-corrected SBM streams, 5-8 communities "
    "of very uneven size, timestamps in ms or s, labels so rare that fewer first labels came "
    "than the selection window holds; ad-hoc scripts outside the repository) found that the "
    "drift detector never acted (a drift counted only once the first selection window had "
    "closed) and that the mixture, whose memory is ~100 first labels, stayed on the feature "
    "heads for thousands of edges after 30% of nodes switched community. Now a drift counts "
    "at any time and the mixture keeps a tenth of its past losses (`DRIFT_KEEP`). Post-shift "
    "windows under the best baseline (micro-F1) on the check's four schedules (a switch with "
    "informative edge features, homophily decaying from 0.85 to 0.4, a new community, 5% "
    "positives with a second ring): 13 of 110 before, 10 of 110 after, worst -6.6 and -2.1 "
    "points (seeds 3000-3004; chosen on its seeds 3100-3102: 12 of 51 before, 9 of 51 after). "
    "Still under: the rare-positive task, one seed 0.7-2.1 points under the neighbour vote in "
    "every post-shift window; the mixture ranks positives well (AUC 0.96-0.997) but gives "
    "too few of them a probability above 0.5. Only a rise of the error counts as a drift "
    "(ADWIN also fires on the fall while the learner warms up). The cost, on `bench.graph`'s "
    "anomaly task (AUC), in the first 5000 edges after its switch: 0.952 to 0.942 on seeds "
    "0-2 (one seed now 0.011 under the structural-only head) and 0.932 to 0.926 on seeds 7-9, "
    "as after a drift the mixture gives the neighbour votes, which rank nothing there, more "
    "weight for a while; every other window of `bench.graph` and of this page moved by 0.004 "
    "or less. Session 18: a second independent check (preferential-attachment growth, bursty "
    "ms timestamps, 10% of nodes labelled, 30% of two classes switching with their labels "
    "re-sent; seeds 4000-4004) found the re-sent labels answered with the old class (0.23 "
    "right against 0.29 for the best vote): a labelled node's own label came back to it "
    "through its unlabelled neighbours' stored estimates, and the mixture, scored on first "
    "labels only, could not learn that its positional head was right on such nodes. Now a "
    "label change refreshes the neighbours' estimates and a node's own share is taken out "
    "of them, and labelled nodes are answered by a second Hedge mixture scored on later "
    "labels (the drift detector still watches the first-label one). Chosen on its seeds "
    "4100-4102 (re-sent labels 0.30 -> 0.60); on 4000-4004 0.23 -> 0.57 and post-shift "
    "windows under the best baseline 7 -> 5 of 115; the session-17 check's streams 10 -> 9 "
    "of 110 (worst -2.1 as before). Session 19: a third independent check (heterophilous "
    "buyer/seller markets, a heterophily-to-homophily turn, a delayed contagion, eight uneven "
    "regions, followers copying leaders; timestamps in seconds with long silences; labels "
    "re-sent; seeds 5000-5009) found the learner under \"the node's label last time\" on "
    "re-sent labels (by up to 6.6 points in 500-label windows), and slow to move after a "
    "shift no drift was detected for (150-200 labels). The labelled nodes' mixture now has "
    "the node's own last label as a member (its confidence: how often later labels repeated "
    "on the stream), and each mixture runs at ~100- and ~20-label memories, mixed by a Hedge "
    "on their own log-loss. Chosen on its seeds 5100-5104 (500-label post-shift windows "
    "under the best of its seven baselines 10 -> 0 of 120); on 5000-5009 17 -> 3 of 240, "
    "worst -0.066 -> -0.006 (100-label windows 61 -> 49)."
)
BASELINES = SimpleBaselines.NAMES

#: name -> (shifts, variant, unit); positions and kinds differ from the product's generator
SCHEDULES: dict[str, tuple[tuple[tuple[str, float], ...], str, str]] = {
    "switch then mixing drop (s)": ((("switch", 0.35), ("mixing", 0.65)), "sbm", "s"),
    "switch then mixing drop (ms)": ((("switch", 0.35), ("mixing", 0.65)), "sbm", "ms"),
    "early mixing drop, degree-corrected": ((("mixing", 0.25),), "dcsbm", "s"),
    "label-rate drop then switch": ((("label_rate", 0.4), ("switch", 0.7)), "dcsbm", "s"),
    "new-node burst then mixing drop (ms)": ((("burst", 0.3), ("mixing", 0.6)), "sbm", "ms"),
    "late switch, degree-corrected (ms)": ((("switch", 0.8),), "dcsbm", "ms"),
}


def run_stream(
    msgs: Iterable[dict],
    learners: dict[str, Callable[[], NodePropertyClassifier]],
    neighbours: int = 20,
    desc: str = "",
    total: int | None = None,
) -> dict:
    """One pass: every model folds every edge in and learns every node label; on edges whose
    src is to be scored (``eval_src``), each predicts src. Returns, per model, the boolean
    hits, plus the edge index of each scored prediction and the seconds each model took.
    With ``truth_dst`` on the edges (both ends' truth), also the :data:`ORACLE` reference."""
    ls = {name: make() for name, make in learners.items()}
    base = SimpleBaselines(neighbours)
    hits: dict[str, list[bool]] = {n: [] for n in (*ls, *BASELINES, ORACLE)}
    comm: dict = {}  # every node's community as of its last edge, where the stream says
    secs = dict.fromkeys(hits, 0.0)
    idx: list[int] = []
    n_edge = 0
    clock = time.perf_counter
    for m in tqdm(msgs, desc=desc, unit="msg", mininterval=1.0, leave=False, total=total):
        if m["kind"] == "node":
            for name, L in ls.items():
                t0 = clock()
                L.learn_node(m["node"], m["y"], m["ts"])
                secs[name] += clock() - t0
            base.label(m["node"], m["y"])
            continue
        src, ts = m["src"], m["ts"]
        if "truth_dst" in m:
            comm[src], comm[m["dst"]] = m["truth_src"], m["truth_dst"]
        t0 = clock()
        base.edge(src, m["dst"])
        secs["neighbour vote"] += clock() - t0
        for name, L in ls.items():
            t0 = clock()
            L.learn_edge(src, m["dst"], ts)
            secs[name] += clock() - t0
        n_edge += 1
        if not m.get("eval_src"):
            continue
        truth = m["truth_src"]
        idx.append(n_edge)
        for name, L in ls.items():
            t0 = clock()
            hits[name].append(L.predict_node(src, ts) == truth)
            secs[name] += clock() - t0
        for name, y in base.predict(src).items():
            hits[name].append(y == truth)
        if comm:
            known = Counter(comm[n] for n in base.nbrs[src])
            hits[ORACLE].append(known.most_common(1)[0][0] == truth)
    if not hits[ORACLE]:  # the stream does not say every node's truth
        del hits[ORACLE]
    return {
        "hits": {k: np.array(v, bool) for k, v in hits.items()},
        "idx": np.array(idx),
        "secs": secs,
        "edges": n_edge,
        "learners": ls,
    }


def windows(events: list[dict], n_edges: int) -> list[tuple[str, int, int]]:
    """(name, start, end) edge-index windows: before shifts, then per shift its first 10%
    of the stream and the span up to the next shift (or the end)."""
    cuts = [e["edge_index"] for e in events]
    out = [("before shifts", 0, cuts[0] if cuts else n_edges)]
    for i, e in enumerate(events):
        end = cuts[i + 1] if i + 1 < len(cuts) else n_edges
        first = min(e["edge_index"] + n_edges // 10, end)
        out.append((f"first 10% after {e['kind']}", e["edge_index"], first))
        out.append((f"{e['kind']} to {'next shift' if i + 1 < len(cuts) else 'end'}",
                    e["edge_index"], end))
    return out


def window_scores(res: dict, wins: list[tuple[str, int, int]]) -> dict[str, dict[str, float]]:
    """micro-F1 (accuracy on the scored single-label predictions) per model and window."""
    out: dict[str, dict[str, float]] = {}
    for name, h in res["hits"].items():
        out[name] = {}
        for wname, a, b in wins:
            m = (res["idx"] > a) & (res["idx"] <= b)
            out[name][wname] = float(h[m].mean()) if m.any() else float("nan")
    return out


def gap_errors(res: dict, wins: list[tuple[str, int, int]]) -> dict[str, float]:
    """Per window, the standard error of (learner − best baseline) over its scored
    predictions, paired (both answer the same nodes): a gap within one or two of these is
    a tie, not a ranking."""
    out: dict[str, float] = {}
    h = res["hits"]
    for wname, a, b in wins:
        m = (res["idx"] > a) & (res["idx"] <= b)
        if m.sum() < 2:
            out[wname] = float("nan")
            continue
        best = max(BASELINES, key=lambda n: h[n][m].mean())
        d = h[LEARNER][m].astype(float) - h[best][m]
        out[wname] = float(d.std(ddof=1) / np.sqrt(m.sum()))
    return out


def learner_factories(
    seed: int, old: bool, prev: bool = False
) -> dict[str, Callable[[], NodePropertyClassifier]]:
    f: dict[str, Callable[[], NodePropertyClassifier]] = {
        LEARNER: lambda: NodePropertyClassifier(seed=seed)
    }
    if prev:
        f[PREV] = lambda: NodePropertyClassifier(seed=seed, propagate=False)
    if old:
        f[OLD] = lambda: NodePropertyClassifier(seed=seed, half_life=600.0)
    return f


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(
        prog="python -m bench.graph_robust",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--edges", type=int, default=24_000, help="edges per stream")
    ap.add_argument("--seeds", type=int, nargs="+", default=[100, 101, 102],
                    help="report seeds (never used while choosing defaults)")
    ap.add_argument("--tune-seeds", type=int, nargs="*", default=[0, 1, 2],
                    help="seeds the defaults were chosen on (listed in the doc, not rerun)")
    ap.add_argument("--schedules", nargs="+", default=list(SCHEDULES), choices=list(SCHEDULES),
                    metavar="NAME", help=f"among: {'; '.join(SCHEDULES)}")
    ap.add_argument("--no-old", action="store_true", help="skip the half_life=600 reference")
    ap.add_argument("--no-prev", action="store_true",
                    help="skip the previous default (propagate=False)")
    ap.add_argument("--out", default=os.path.join(ROOT, "docs", "bench-graph-robust.md"))
    args = ap.parse_args(argv)
    if args.edges < 1000:
        ap.error("--edges must be at least 1000")

    cmd = "python -m bench.graph_robust " + " ".join(sys.argv[1:] if argv is None else argv)
    results: dict[str, list[dict]] = {}
    runs = [(s, seed) for s in args.schedules for seed in args.seeds]
    for sname, seed in tqdm(runs, desc="streams", unit="stream"):
        shifts, variant, unit = SCHEDULES[sname]
        gen = SBMStream(args.edges, seed, shifts=shifts, variant=variant, unit=unit)
        msgs = list(gen.messages())
        res = run_stream(msgs, learner_factories(seed, not args.no_old, not args.no_prev),
                         desc=f"{sname} seed {seed}")
        wins = windows(gen.events, res["edges"])
        results.setdefault(sname, []).append(
            {"seed": seed, "scores": window_scores(res, wins), "se": gap_errors(res, wins),
             "secs": res["secs"],
             "edges": res["edges"], "n_scored": len(res["idx"]),
             "weights": res["learners"][LEARNER].mixture_weights()}
        )
    lines = report(results, args, cmd.strip())
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


def report(results: dict[str, list[dict]], args: argparse.Namespace, cmd: str) -> list[str]:
    extra = ([] if args.no_prev else [PREV]) + ([] if args.no_old else [OLD])
    models = [LEARNER, *BASELINES, *extra, ORACLE]
    lines = [
        "# Node-property learner on SBM streams it was not developed on",
        "",
        f"Command: `{cmd}`  ",
        f"Report seeds: {args.seeds} (defaults chosen on seeds {args.tune_seeds}, not shown); "
        f"{args.edges} edges per stream.  ",
        f"Machine: {platform.platform()}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}, numpy {np.__version__}, river {river.__version__}.",
        "",
        "Data: `bench/graph_sbm.py`, a stochastic-block-model generator written for this "
        "benchmark apart from the product's `streamsvc/graphgen.py`: 6 communities of uneven "
        "size, nodes arriving, 30% of nodes with their label revealed by `node-labels` "
        "messages, within-community linking 0.9; variants `sbm` (uniform) and `dcsbm` "
        "(log-normal activity, preferential attachment); timestamps in seconds or "
        "milliseconds. Shifts: `switch` (20% of nodes change community), `mixing` "
        "(within-community linking 0.9 → 0.6), `label_rate` (labels six times rarer), "
        "`burst` (new nodes six times as frequent for 10% of the stream).",
        "",
        "Protocol: every edge goes to every model; when its `src` is a never-labelled node, "
        "each model predicts its community (scored against the hidden truth). micro-F1 per "
        "window. Baselines (`bench/graph_baselines.py`, their own store of the last 20 "
        "neighbours): neighbour vote, two-hop vote, majority. The learner runs with its "
        "shipped defaults (`NodePropertyClassifier(seed=...)`): no time decay, the "
        "neighbour, two-hop and propagated votes and the majority as members of its Hedge "
        "mixture. The old default `half_life=600` (absolute time units) is shown for "
        "reference, in the same run. The last column is a reference no model can reach: "
        "the plurality of the true communities (as of their last edge) of the same 20 "
        "neighbours the baselines use; its distance to the best baseline is the room a "
        "neighbour-label method has in that window.",
        "",
        CHOICE_NOTE,
        "",
    ]
    n_cells = n_ok = 0
    n_prev = 0
    worst: list[tuple[float, str, str, int, float]] = []
    room: list[float] = []  # oracle − best baseline per post-shift window and seed
    for sname, runs in results.items():
        shifts, variant, unit = SCHEDULES[sname]
        wnames = list(runs[0]["scores"][LEARNER])
        lines += [
            f"## {sname}",
            "",
            f"Shifts {[tuple(s) for s in shifts]}, variant `{variant}`, timestamps in {unit}; "
            f"{int(np.mean([r['n_scored'] for r in runs]))} scored predictions per stream.",
            "",
            "| window | " + " | ".join(models) + " | learner − best baseline, per seed |",
            "|---" * (len(models) + 2) + "|",
        ]
        for w in wnames:
            cells = []
            for mname in models:
                v = np.array([r["scores"][mname][w] for r in runs])
                cells.append(f"{np.nanmean(v):.3f}")
            diffs = []
            for r in runs:
                best = max(r["scores"][b][w] for b in BASELINES)
                d = r["scores"][LEARNER][w] - best
                diffs.append(d)
                if w != "before shifts":
                    n_cells += 1
                    n_ok += d >= 0
                    if not args.no_prev:
                        n_prev += r["scores"][PREV][w] >= best
                    worst.append((d, sname, w, r["seed"], r["se"][w]))
                    room.append(r["scores"][ORACLE][w] - best)
            lines.append(f"| {w} | " + " | ".join(cells) + " | "
                         + ", ".join(f"{d:+.3f}" for d in diffs) + " |")
        wts = runs[0]["weights"]
        top = sorted(wts.items(), key=lambda kv: -kv[1])[:3]
        lines += [
            "",
            f"Learner's Hedge weights at the end (seed {runs[0]['seed']}): "
            + ", ".join(f"{k} {v:.2f}" for k, v in top) + ".",
            "",
        ]
    worst.sort()
    lines += [
        "## Summary",
        "",
        f"Post-shift windows × report seeds where the learner ≥ the best simple baseline: "
        f"**{n_ok} / {n_cells}**"
        + ("" if args.no_prev else f" (without the propagated vote, `propagate=False`: {n_prev} / {n_cells})")
        + f"; worst gap {worst[0][0]:+.3f}." if worst else "",
        "",
    ]
    if room:
        gaps = [w[0] for w in worst]
        lines += [
            f"Room above the best simple baseline, as the oracle column measures it (a vote over "
            f"the same 20 neighbours that knows their true communities): median "
            f"{np.median(room):+.3f}, smallest {min(room):+.3f} per post-shift window and seed; "
            f"the learner's gap to the best baseline: median {np.median(gaps):+.3f}.",
            "",
        ]
    short = [w for w in worst if w[0] < 0]
    if short:
        lines += ["Where it is below (learner − best baseline):", ""]
        lines += [f"- {s} / {w} / seed {seed}: {d:+.3f} (paired standard error {se:.3f})"
                  for d, s, w, seed, se in short]
        lines.append("")
    tot = {m: sum(r["secs"][m] for rs in results.values() for r in rs)
           for m in (LEARNER, *extra)}
    edges = sum(r["edges"] for rs in results.values() for r in rs)
    lines += [
        f"Learner time over all streams ({edges:,} edges, every edge folded in, "
        f"predictions on scored edges, labels learned): "
        + ", ".join(f"{m} {v:.1f} s" for m, v in tot.items()) + ".",
        "",
    ]
    return lines


if __name__ == "__main__":
    main()
