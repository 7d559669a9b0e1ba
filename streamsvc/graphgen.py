"""Synthetic temporal graph with node labels and planted distribution shifts.

Why synthetic: no real temporal graph with node labels ships inside a registry package that
can be installed offline here (the TGB ``py-tgb`` wheel has only download scripts; its
``tgbn-*`` data come from a web server at run time), so the benchmark plants the shifts it
wants to measure.

Used by ``streamsvc produce --synthetic graph-community|graph-anomaly`` and by ``bench/graph.py``.

Model: nodes belong to communities (the labels). Each community has its own activity level
(so degree carries a little signal), edge-weight scale and edge-feature centroid; an edge's
``src`` is drawn by activity (with a bias towards recently arrived nodes), its ``dst`` in the
same community with probability ``homophily``, else anywhere. Nodes keep arriving.

Messages (``kind`` key says which):

* edge ``{"kind": "edge", "src": str, "dst": str, "ts": float, "w": float, "x": [float]*x_dim
  (absent when x_dim=0), "y": label of src (only on a ``label_rate`` fraction)}``
* node label ``{"kind": "node", "node": str, "y": label, "ts": float}`` (``node_label_rate``
  per edge, emitted just before that edge, same ts).

Labels are community names ``"c0", "c1", ...`` (``task="community"``) or ``bool`` "is this node
anomalous" (``task="anomaly"``: anomalous nodes ignore communities, are more active and use
heavier edge weights).

Shift kinds (``shifts=[(kind, fraction_of_edges), ...]``):

* ``"switch"``: a quarter of existing nodes move to another community (label changes; in the
  anomaly task, some normal nodes turn anomalous and some anomalous ones stop);
* ``"new_communities"``: two new communities appear and attract half of the (now more
  frequent) new nodes;
* ``"mixing"``: homophily drops by a half (neighbourhoods become less telling).

``ts`` increases by 1/``rate`` per edge (plus jitter), so a shift's ts is known up front:
``stream.shifts`` lists ``{"kind", "edge_index", "ts"}``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import numpy as np

SHIFT_KINDS = ("switch", "new_communities", "mixing")
DEFAULT_SHIFTS: tuple[tuple[str, float], ...] = (("switch", 0.4), ("new_communities", 0.7))


class EdgeStream(Iterator[dict]):
    """Iterator of message dicts; ``shifts`` tells where the planted shifts are."""

    def __init__(
        self,
        n_edges: int,
        seed: int = 0,
        shifts: Sequence[tuple[str, float] | str] | None = DEFAULT_SHIFTS,
        n_communities: int = 5,
        n_nodes: int = 3000,
        homophily: float = 0.8,
        label_rate: float = 0.1,
        node_label_rate: float = 0.01,
        rate: float = 5.0,
        x_dim: int = 4,
        task: str = "community",
        anomaly_frac: float = 0.05,
    ) -> None:
        if n_edges < 1:
            raise ValueError(f"n_edges must be >= 1, got {n_edges}")
        if task not in ("community", "anomaly"):
            raise ValueError(f"task must be 'community' or 'anomaly', got {task!r}")
        self.n_edges = int(n_edges)
        self.seed = seed
        self.task = task
        self.rate = float(rate)
        self.shifts: list[dict] = []
        parsed = _parse_shifts(shifts)
        for kind, frac in parsed:
            i = int(frac * self.n_edges)
            self.shifts.append({"kind": kind, "edge_index": i, "ts": i / self.rate})
        self._gen = self._run(
            n_communities, n_nodes, homophily, label_rate, node_label_rate, x_dim, anomaly_frac
        )

    def __iter__(self) -> EdgeStream:
        return self

    def __next__(self) -> dict:
        return next(self._gen)

    def _run(
        self,
        n_comm: int,
        n_nodes: int,
        homophily: float,
        label_rate: float,
        node_label_rate: float,
        x_dim: int,
        anomaly_frac: float,
    ) -> Iterator[dict]:
        rng = np.random.default_rng(self.seed)
        anomaly_task = self.task == "anomaly"
        comm_act: list[float] = []
        comm_w: list[float] = []
        comm_x: list[np.ndarray] = []

        def new_comm() -> int:
            comm_act.append(float(2.0 ** rng.integers(-1, 3)))
            comm_w.append(float(rng.uniform(0.5, 2.0)))
            comm_x.append(rng.normal(0, 1, x_dim))
            members.append([])
            return len(comm_act) - 1

        members: list[list[int]] = []
        for _ in range(n_comm):
            new_comm()
        comm: list[int] = []
        pos_in: list[int] = []  # index of node in members[comm[node]]
        act: list[float] = []
        anom: list[bool] = []
        new_comm_ids: list[int] = []

        def move(n: int, c: int) -> None:
            old = members[comm[n]]
            j = pos_in[n]
            last = old.pop()
            if last != n:
                old[j] = last
                pos_in[last] = j
            comm[n] = c
            pos_in[n] = len(members[c])
            members[c].append(n)

        def add_node() -> int:
            if new_comm_ids and rng.random() < 0.5:
                c = int(rng.choice(new_comm_ids))
            else:
                c = int(rng.integers(0, len(comm_act)))
            n = len(comm)
            comm.append(c)
            pos_in.append(len(members[c]))
            members[c].append(n)
            a = anomaly_task and rng.random() < anomaly_frac
            anom.append(bool(a))
            act.append(comm_act[c] * float(rng.lognormal(0, 0.5)) * (3.0 if a else 1.0))
            return n

        n0 = max(n_comm * 4, n_nodes // 4)
        for _ in range(n0):
            add_node()
        p_new = max(0.0, (n_nodes - n0) / self.n_edges)
        shift_at = {s["edge_index"]: s["kind"] for s in self.shifts}
        max_act = max(act)

        def label(n: int) -> str | bool:
            return anom[n] if anomaly_task else f"c{comm[n]}"

        for i in range(self.n_edges):
            kind = shift_at.get(i)
            if kind == "switch":
                k = len(comm) // 4
                for n in rng.choice(len(comm), size=k, replace=False).tolist():
                    if anomaly_task:
                        anom[n] = not anom[n] if (anom[n] or rng.random() < 0.2) else anom[n]
                    else:
                        others = [c for c in range(len(comm_act)) if c != comm[n]]
                        move(n, int(rng.choice(others)))
            elif kind == "new_communities":
                new_comm_ids.extend([new_comm(), new_comm()])
                p_new *= 3.0
            elif kind == "mixing":
                homophily *= 0.5
            ts = (i + 0.5 * float(rng.random())) / self.rate

            if rng.random() < node_label_rate:
                n = int(rng.integers(0, len(comm)))
                yield {"kind": "node", "node": f"n{n}", "y": label(n), "ts": ts}

            if rng.random() < p_new:
                u = add_node()
                max_act = max(max_act, act[u])
            elif rng.random() < 0.2:
                u = len(comm) - 1 - int(rng.integers(0, min(100, len(comm))))
            else:
                while True:
                    u = int(rng.integers(0, len(comm)))
                    if rng.random() * max_act < act[u]:
                        break
            c = comm[u]
            if not anom[u] and rng.random() < homophily and len(members[c]) > 1:
                v = members[c][int(rng.integers(0, len(members[c])))]
            else:
                v = int(rng.integers(0, len(comm)))
            w = comm_w[c] * float(rng.lognormal(0, 0.3)) * (4.0 if anom[u] else 1.0)
            msg: dict = {"kind": "edge", "src": f"n{u}", "dst": f"n{v}", "ts": ts, "w": round(w, 4)}
            if x_dim:
                x = comm_x[c] + rng.normal(0, 1.5, x_dim)
                msg["x"] = [round(float(a), 4) for a in x]
            if rng.random() < label_rate:
                msg["y"] = label(u)
            yield msg


def _parse_shifts(shifts: Sequence[tuple[str, float] | str] | None) -> list[tuple[str, float]]:
    if not shifts:
        return []
    out: list[tuple[str, float]] = []
    for j, s in enumerate(shifts):
        if isinstance(s, str):  # bare kinds: spread evenly
            kind, frac = s, (j + 1) / (len(shifts) + 1)
        else:
            kind, frac = s
        if kind not in SHIFT_KINDS:
            raise ValueError(f"unknown shift kind {kind!r}; expected one of {SHIFT_KINDS}")
        if not (0.0 < float(frac) < 1.0) or math.isnan(float(frac)):
            raise ValueError(f"shift fraction must be in (0, 1), got {frac!r}")
        out.append((kind, float(frac)))
    return sorted(out, key=lambda t: t[1])


def make_edge_stream(
    n_edges: int,
    seed: int = 0,
    shifts: Sequence[tuple[str, float] | str] | None = DEFAULT_SHIFTS,
    **kwargs: object,
) -> EdgeStream:
    """Synthetic edge stream (see module doc); ``.shifts`` has the shift edge indices/ts."""
    return EdgeStream(n_edges, seed=seed, shifts=shifts, **kwargs)  # type: ignore[arg-type]
