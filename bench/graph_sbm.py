"""Stochastic-block-model edge streams for the robustness benchmark, written apart from
``streamsvc/graphgen.py`` (which the learner's defaults were developed on).

Nodes belong to communities of uneven sizes (Dirichlet shares) and keep arriving; each edge
starts at an existing node (by activity, with a lean towards newcomers) and ends in the same
community with probability ``p_in``, else in another one. Two variants:

* ``"sbm"``: every node equally active, the far end uniform within its community;
* ``"dcsbm"``: degree-corrected: log-normal activities, the far end by preferential
  attachment within its community (the endpoint of a random earlier edge there).

Only a ``label_frac`` share of nodes ever has its label revealed (``node-labels`` messages,
sent on some of their edges); the benchmark scores predictions on the other nodes, whose
labels never reach the learners. Timestamps advance by exponential gaps and are in seconds
or milliseconds (``unit``).

Shift kinds (``(kind, fraction of the stream)``):

* ``switch``: ``switch_frac`` of the existing nodes move to another community;
* ``mixing``: ``p_in`` drops to ``p_in_after``;
* ``label_rate``: revealed labels become rare (new nodes labelled at a sixth of the share,
  label messages six times rarer);
* ``burst``: for 10% of the stream, new nodes arrive six times as often.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

SHIFT_KINDS = ("switch", "mixing", "label_rate", "burst")


@dataclass
class SBMStream:
    """Parameters of one stream; iterate :meth:`messages` for the messages."""

    n_edges: int
    seed: int
    shifts: Sequence[tuple[str, float]] = ()
    variant: str = "sbm"
    unit: str = "s"
    n_communities: int = 6
    n_start: int = 300
    new_node_rate: float = 0.09  # new nodes per edge
    p_in: float = 0.9
    p_in_after: float = 0.6
    switch_frac: float = 0.2
    label_frac: float = 0.3
    label_msg_rate: float = 0.12  # per edge end of a labelled node
    edge_gap: float = 0.5  # mean seconds between edges
    events: list[dict] = field(default_factory=list)  # filled while iterating: shift positions

    def __post_init__(self) -> None:
        if self.variant not in ("sbm", "dcsbm"):
            raise ValueError(f"variant must be 'sbm' or 'dcsbm', got {self.variant!r}")
        if self.unit not in ("s", "ms"):
            raise ValueError(f"unit must be 's' or 'ms', got {self.unit!r}")
        for kind, frac in self.shifts:
            if kind not in SHIFT_KINDS or not 0 < frac < 1:
                raise ValueError(f"bad shift {(kind, frac)!r}; kinds {SHIFT_KINDS}")

    def messages(self) -> Iterator[dict]:
        """Edges ``{"kind": "edge", "src", "dst", "ts", "truth_src", "truth_dst", "eval_src"}``
        and node labels ``{"kind": "node", "node", "y", "ts"}``. ``truth_src``/``truth_dst``
        are the ends' communities and ``eval_src`` says whether src is one of the
        never-labelled nodes to score on: all three are for the benchmark only, never shown to
        a learner."""
        rng = np.random.default_rng(self.seed)
        C = self.n_communities
        share = np.sort(rng.dirichlet(np.full(C, 1.5)))[::-1]
        share = np.maximum(share, 0.04)
        share /= share.sum()
        comm: list[int] = []
        act: list[float] = []
        labelled: list[bool] = []
        members: list[list[int]] = [[] for _ in range(C)]
        ends: list[list[int]] = [[] for _ in range(C)]  # preferential attachment pool
        dc = self.variant == "dcsbm"
        label_frac, label_msg, new_rate = self.label_frac, self.label_msg_rate, self.new_node_rate
        p_in = self.p_in
        scale = 1000.0 if self.unit == "ms" else 1.0

        def add_node() -> int:
            i = len(comm)
            c = int(rng.choice(C, p=share))
            comm.append(c)
            act.append(float(rng.lognormal(0.0, 1.0)) if dc else 1.0)
            labelled.append(bool(rng.random() < label_frac))
            members[c].append(i)
            return i

        for _ in range(self.n_start):
            add_node()
        cum = np.cumsum(act)
        cum_n = len(act)
        todo = sorted(((int(f * self.n_edges), k) for k, f in self.shifts), reverse=True)
        burst_end = -1
        t = 0.0
        n_out = 0  # edges yielded (self-loops are skipped)
        self.events = []
        for e in range(self.n_edges):
            while todo and todo[-1][0] == e:
                _, kind = todo.pop()
                self.events.append({"kind": kind, "edge_index": n_out, "ts": t * scale})
                if kind == "switch":
                    n = len(comm)
                    for i in rng.choice(n, size=int(self.switch_frac * n), replace=False):
                        i = int(i)
                        old = comm[i]
                        new = int(rng.choice([c for c in range(C) if c != old]))
                        members[old].remove(i)
                        members[new].append(i)
                        comm[i] = new
                    ends = [[j for j in pool if comm[j] == c] for c, pool in enumerate(ends)]
                elif kind == "mixing":
                    p_in = self.p_in_after
                elif kind == "label_rate":
                    label_frac /= 6.0
                    label_msg /= 6.0
                elif kind == "burst":
                    burst_end = e + self.n_edges // 10
            rate = new_rate * (6.0 if e < burst_end else 1.0)
            t += float(rng.exponential(self.edge_gap))
            if rng.random() < rate:
                u = add_node()
            else:
                if e % 200 == 0 or cum_n != len(act):
                    cum = np.cumsum(act)
                    cum_n = len(act)
                if rng.random() < 0.2:  # newcomers are busy at first
                    u = len(comm) - 1 - int(rng.integers(0, min(100, len(comm))))
                else:
                    u = int(np.searchsorted(cum, rng.random() * cum[-1], side="right"))
                    u = min(u, len(comm) - 1)
            cu = comm[u]
            if rng.random() < p_in:
                c = cu
            else:
                c = int(rng.choice([k for k in range(C) if k != cu]))
            pool = ends[c]
            if dc and pool and rng.random() < 0.7:
                v = pool[int(rng.integers(len(pool)))]
            else:
                m = members[c] or members[cu]
                v = m[int(rng.integers(len(m)))]
            if v == u:
                continue
            ends[cu].append(u)
            ends[comm[v]].append(v)
            ts = round(t * scale, 3)
            n_out += 1
            yield {
                "kind": "edge",
                "src": f"n{u}",
                "dst": f"n{v}",
                "ts": ts,
                "truth_src": f"c{cu}",
                "truth_dst": f"c{comm[v]}",
                "eval_src": not labelled[u],
            }
            for node in (u, v):
                if labelled[node] and rng.random() < label_msg:
                    yield {"kind": "node", "node": f"n{node}", "y": f"c{comm[node]}", "ts": ts}
