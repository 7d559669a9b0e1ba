"""Bounded per-node state for an edge stream.

Everything lives in preallocated numpy arrays indexed by a *slot*; a dict maps node ids to
slots. Arrays grow by doubling up to ``max_nodes``; past that the coldest nodes (oldest last
activity) are evicted in small batches, so both memory per node and in total are bounded and
the per-edge cost stays O(K·d) whatever the number of distinct nodes.

Neighbour references in ring buffers carry the neighbour slot's *generation*: evicting a node
bumps its slot's generation, so stale references to a reused slot are ignored without having
to scrub every other node's ring buffer.

Positional features are streaming random projections of time-decayed temporal walks
(FastRP's projection idea with TPNet's per-edge update): with ``P[u, 0] = R_u`` a fixed random
vector and, per edge (u, v, t, w), for every hop k ≥ 1 (using pre-edge values, all decayed to t)

    P[u, k] ← e^{-λ(t - t_u)} P[u, k] + w · P[v, k-1]
    P[v, k] ← e^{-λ(t - t_v)} P[v, k] + w · P[u, k-1]

``P[u, k]`` is then the sum over time-respecting walks of length k starting at u (each edge
older than the previous one) of the product of weights times e^{-λ(now - oldest edge)} times
R at the walk's end. Decay is applied lazily from each node's last update time.

Time decay is off by default (``half_life=None``): timestamps may be seconds or milliseconds
and nodes may link every few seconds or every few days, so no absolute half-life is a safe
default; recency comes from the ring buffer (the K most recent neighbours) instead. Where a
time *scale* is needed (the time-gap encodings, a node's age), the state uses
:attr:`EdgeStreamState.time_scale`, a running mean of the nodes' own inter-arrival gaps, so
multiplying every timestamp by 1000 changes nothing.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Hashable
from typing import Any

import numpy as np

#: ring-buffer entry / neighbour slot that is empty
EMPTY = -1
_GAP_DISCOUNT = 1.0 - 1.0 / 5000  # memory of the inter-arrival gap estimate (in gaps)
_all = np.logical_and.reduce  # ndarray.all without its Python-level wrapper (hot path)
ACT_GAPS = 8.0  # activity half-life in typical inter-arrival gaps (without a half_life)


class EdgeStreamState:
    """Streaming per-node state: ring buffer of recent neighbours, degrees, feature families.

    Parameters
    ----------
    max_nodes
        Cap on tracked nodes; beyond it the coldest nodes are evicted.
    neighbours
        Ring-buffer length K (most recent neighbours kept per node).
    dim
        Dimension of random and positional features.
    hops
        Walk lengths kept for positional features (O(hops·dim) per edge).
    half_life
        Time-decay half-life in ``ts`` units (``None``, the default: no time decay; the
        ring buffer alone makes recent neighbours count).
    random_seeded
        The first ``random_seeded`` distinct nodes get their own Gaussian random feature;
        every later node gets the running mean of its neighbours' random features (SPLASH's
        propagation), so a feature learned on early nodes still means something for new ones.
    random_window
        The running mean becomes an exponential one after this many neighbours, so a node
        that changes neighbourhood (e.g. switches community) gets features that follow it.
    evict_fraction
        Fraction of ``max_nodes`` evicted at once when full (amortises the O(n) selection).
    seed
        Seed of the random vectors.
    """

    def __init__(
        self,
        max_nodes: int = 100_000,
        neighbours: int = 20,
        dim: int = 32,
        hops: int = 2,
        half_life: float | None = None,
        random_seeded: int = 1000,
        random_window: int = 50,
        evict_fraction: float = 0.01,
        seed: int = 0,
    ) -> None:
        if int(max_nodes) < 2:
            raise ValueError(f"max_nodes must be >= 2, got {max_nodes!r}")
        if int(neighbours) < 1:
            raise ValueError(f"neighbours must be >= 1, got {neighbours!r}")
        if int(dim) < 1 or int(hops) < 1:
            raise ValueError(f"dim and hops must be >= 1, got dim={dim!r}, hops={hops!r}")
        if half_life is not None and not (math.isfinite(half_life) and half_life > 0):
            raise ValueError(
                f"half_life must be a positive finite number or None, got {half_life!r}"
            )
        if not 0 < evict_fraction <= 0.5:
            raise ValueError(f"evict_fraction must be in (0, 0.5], got {evict_fraction!r}")
        self.max_nodes = int(max_nodes)
        self.neighbours = int(neighbours)
        self.dim = int(dim)
        self.hops = int(hops)
        self.half_life = half_life
        self.random_seeded = int(random_seeded)
        if int(random_window) < 1:
            raise ValueError(f"random_window must be >= 1, got {random_window!r}")
        self.random_window = int(random_window)
        self.evict_fraction = float(evict_fraction)
        self.seed = int(seed)

        self.lam = 0.0 if half_life is None else math.log(2.0) / float(half_life)
        self._rng = np.random.default_rng(seed)
        self._gauss: np.ndarray = np.empty((0, self.dim), np.float32)
        self._gauss_i = 0
        self.slot_of: dict[Hashable, int] = {}
        self.ids: list[Hashable | None] = []
        self._free: list[int] = []
        self.n_x: int | None = None  # edge-feature length, fixed on first x seen
        self.edges_seen = 0
        self.nodes_created = 0
        self.evictions = 0
        self.latest_ts = -math.inf
        self._gap_sum = 0.0  # decayed sum / count of positive per-node inter-arrival gaps
        self._gap_n = 0.0
        self._cap = 0
        self.n_est = 0  # classes in ``est`` (grown by add_estimate_class)
        # (ts, [(slot, two-hop histogram)]) of the last edge's ends, kept by
        # features.refresh_estimates for the prediction that follows; any change clears it
        self.two_hop_cache: tuple | None = None
        self._alloc(min(1024, self.max_nodes))

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        if "est" not in state:  # pickled before the propagated vote's estimates existed
            self.n_est = 0
            self.est = np.zeros((self._cap, 0), np.float32)
        if "est_tot" not in state:  # before the weights were kept: unknown until refreshed
            self.est_tot = np.full(self._cap, np.nan)
        self.two_hop_cache = None

    # ------------------------------------------------------------------ storage
    def _alloc(self, cap: int) -> None:
        """(Re)allocate every per-slot array to ``cap`` rows, keeping existing rows."""
        K, d, H = self.neighbours, self.dim, self.hops
        old = self._cap

        def grow(name: str, shape: tuple[int, ...], dtype: Any, fill: float = 0) -> None:
            new = np.full((cap, *shape), fill, dtype=dtype)
            if old:
                new[:old] = getattr(self, name)
            setattr(self, name, new)

        grow("gen", (), np.int32)
        grow("last_ts", (), np.float64, -np.inf)
        grow("first_ts", (), np.float64)
        grow("deg_out", (), np.int64)
        grow("deg_in", (), np.int64)
        grow("act", (), np.float64)  # decayed weighted degree (see act_lam), as of last_ts
        grow("nbr", (K,), np.int32, EMPTY)
        grow("nbr_gen", (K,), np.int32)
        grow("nbr_ts", (K,), np.float64)
        grow("nbr_w", (K,), np.float32)
        grow("nbr_out", (K,), np.bool_)  # True: the node was the edge's src
        grow("ring_n", (), np.int64)
        grow("rand", (d,), np.float32)
        grow("rand_n", (), np.int32)  # -1: seeded (fixed); n >= 0: running mean of n
        grow("pos", (H + 1, d), np.float32)  # pos[:, 0] is the node's projection R
        grow("label", (), np.int32, EMPTY)
        grow("label_ts", (), np.float64)
        # two-hop label estimate of each unlabelled node as of its last edge or neighbour's
        # label change (see
        # features.refresh_estimate): what its neighbours read for their propagated vote
        grow("est", (self.n_est,), np.float32)
        # the ring weight behind each estimate (before it was normalised), so a neighbour's
        # own share can be taken out again (features.propagated)
        grow("est_tot", (), np.float64)
        if self.n_x:
            grow("nbr_x", (K, self.n_x), np.float32)
        self._cap = cap
        self.ids.extend([None] * (cap - old))

    def _next_gauss(self) -> np.ndarray:
        if self._gauss_i >= len(self._gauss):
            self._gauss = self._rng.standard_normal((4096, self.dim)).astype(np.float32)
            self._gauss_i = 0
        g = self._gauss[self._gauss_i]
        self._gauss_i += 1
        return g

    def _evict_coldest(self, protect: int) -> None:
        """Free the coldest ``evict_fraction`` of slots (never ``protect``)."""
        n = max(1, int(self.evict_fraction * self.max_nodes))
        last = self.last_ts.copy()
        for s in self._free:
            last[s] = np.inf
        if protect >= 0:
            last[protect] = np.inf
        idx = np.argpartition(last, n - 1)[:n]
        for s in idx.tolist():
            node = self.ids[s]
            if node is None:
                continue
            del self.slot_of[node]
            self.ids[s] = None
            self.gen[s] += 1
            self._free.append(s)
            self.evictions += 1

    def _new_slot(self, node: Hashable, ts: float, protect: int = -1) -> int:
        self.two_hop_cache = None
        if not self._free:
            used = len(self.slot_of)
            if used >= self._cap:
                if self._cap < self.max_nodes:
                    self._alloc(min(2 * self._cap, self.max_nodes))
                    self._free.extend(range(self._cap - 1, used - 1, -1))
                else:
                    self._evict_coldest(protect)
            else:  # first allocation: hand out slots in order
                self._free.extend(range(self._cap - 1, used - 1, -1))
        s = self._free.pop()
        self.slot_of[node] = s
        self.ids[s] = node
        self.last_ts[s] = ts
        self.first_ts[s] = ts
        self.deg_out[s] = 0
        self.deg_in[s] = 0
        self.act[s] = 0.0
        self.nbr[s] = EMPTY
        self.ring_n[s] = 0
        self.pos[s] = 0.0
        self.pos[s, 0] = self._next_gauss() / math.sqrt(self.dim)
        if self.nodes_created < self.random_seeded:
            self.rand[s] = self._next_gauss()
            self.rand_n[s] = -1
        else:
            self.rand[s] = 0.0
            self.rand_n[s] = 0
        self.label[s] = EMPTY
        self.est[s] = 0.0
        self.est_tot[s] = 0.0
        self.nodes_created += 1
        return s

    def slot(self, node: Hashable, ts: float | None = None, create: bool = False) -> int:
        """Slot of ``node`` (``-1`` when untracked and ``create`` is false)."""
        s = self.slot_of.get(node, EMPTY)
        if s == EMPTY and create:
            s = self._new_slot(node, self.latest_ts if ts is None else ts)
        return s

    # ------------------------------------------------------------------ updates
    def learn_edge(
        self,
        src: Hashable,
        dst: Hashable,
        ts: float,
        w: float = 1.0,
        x: Any = None,
    ) -> tuple[int, int]:
        """Fold one edge into the state; returns the (src, dst) slots. O(K + hops·dim)."""
        if src is None or dst is None:
            raise ValueError("edge needs both 'src' and 'dst' node ids")
        ts = float(ts)
        w = float(w)
        if not math.isfinite(ts):
            raise ValueError(f"edge ts must be finite, got {ts!r}")
        if not math.isfinite(w):
            raise ValueError(f"edge weight w must be finite, got {w!r}")
        xv = None if x is None else self._check_x(x)
        self.two_hop_cache = None

        slot_of = self.slot_of
        u = slot_of.get(src, EMPTY)
        if u == EMPTY:
            u = self._new_slot(src, ts)
        v = slot_of.get(dst, EMPTY)
        if v == EMPTY:
            v = self._new_slot(dst, ts, protect=u)
        if ts > self.latest_ts:
            self.latest_ts = ts
        self.edges_seen += 1

        # lazy time decay (out-of-order edges are folded in at the node's latest time)
        last_ts = self.last_ts
        tu, tv = last_ts[u], last_ts[v]
        self._note_gap(ts - tu)
        if v != u:
            self._note_gap(ts - tv)
        lam = self.lam
        du = math.exp(-lam * (ts - tu)) if ts > tu else 1.0
        dv = math.exp(-lam * (ts - tv)) if ts > tv else 1.0
        la = self.act_lam
        au = math.exp(-la * (ts - tu)) if ts > tu else 1.0
        av = math.exp(-la * (ts - tv)) if ts > tv else 1.0
        pos = self.pos
        pu = pos[u]
        act = self.act
        if u == v:
            if du != 1.0:
                pu[1:] *= du
            pu[1:] += w * pu[:-1]
            act[u] = act[u] * au + 2.0 * w
        else:
            pv = pos[v]
            if du != 1.0:
                pu[1:] *= du
            if dv != 1.0:
                pv[1:] *= dv
            add_u = w * pv[:-1]
            pv[1:] += w * pu[:-1]
            pu[1:] += add_u
            act[u] = act[u] * au + w
            act[v] = act[v] * av + w
        if ts > tu:
            last_ts[u] = ts
        if ts > tv:
            last_ts[v] = ts
        self.deg_out[u] += 1
        self.deg_in[v] += 1

        # random features: non-seeded nodes keep the running mean of their neighbours'
        rand_n = self.rand_n
        nu, nv = int(rand_n[u]), int(rand_n[v])
        if u != v and (nu >= 0 or nv >= 0):
            rand = self.rand
            ru_old = rand[u].copy() if nv >= 0 and nu != 0 else None
            win = self.random_window
            if nu >= 0 and nv != 0:
                rand[u] += (rand[v] - rand[u]) / min(nu + 1, win)
                rand_n[u] = nu + 1
            if ru_old is not None:
                rand[v] += (ru_old - rand[v]) / min(nv + 1, win)
                rand_n[v] = nv + 1

        # ring buffers, both directions
        gen = self.gen
        K = self.neighbours
        iu = int(self.ring_n[u]) % K
        self.nbr[u, iu] = v
        self.nbr_gen[u, iu] = gen[v]
        self.nbr_ts[u, iu] = ts
        self.nbr_w[u, iu] = w
        self.nbr_out[u, iu] = True
        self.ring_n[u] += 1
        iv = int(self.ring_n[v]) % K
        self.nbr[v, iv] = u
        self.nbr_gen[v, iv] = gen[u]
        self.nbr_ts[v, iv] = ts
        self.nbr_w[v, iv] = w
        self.nbr_out[v, iv] = u == v
        self.ring_n[v] += 1
        if self.n_x:
            nx = self.nbr_x
            if xv is None:
                nx[u, iu] = 0.0
                nx[v, iv] = 0.0
            else:
                nx[u, iu] = xv
                nx[v, iv] = xv
        return u, v

    def _note_gap(self, gap: float) -> None:
        # new nodes start at ts (gap 0) and simultaneous edges add nothing: only positive gaps
        if gap > 0 and math.isfinite(gap):
            self._gap_sum = self._gap_sum * _GAP_DISCOUNT + gap
            self._gap_n = self._gap_n * _GAP_DISCOUNT + 1.0

    @property
    def time_scale(self) -> float:
        """Typical time between two edges of the same node (running mean over the last few
        thousand gaps, in ``ts`` units; 1.0 before any). Scales with the timestamps' unit."""
        return self._gap_sum / self._gap_n if self._gap_n > 0 else 1.0

    @property
    def act_lam(self) -> float:
        """Decay rate of the activity (weighted degree): the half-life's, else one of
        ``ACT_GAPS`` typical inter-arrival gaps, so that "recently busy" keeps its meaning
        in any time unit (a node that turns busy after a shift shows it within a few gaps)."""
        if self.half_life is not None:
            return self.lam
        return math.log(2.0) / (ACT_GAPS * self.time_scale)

    def _check_x(self, x: Any) -> np.ndarray:
        try:
            xv = np.asarray(x, dtype=np.float64).ravel()
        except (TypeError, ValueError) as e:
            raise ValueError(f"edge features x must be a list of numbers: {e}") from None
        if not np.isfinite(xv).all():
            raise ValueError("edge features x must be finite numbers")
        if self.n_x is None:
            if len(xv) == 0:
                return xv
            self.n_x = len(xv)
            cap = self._cap
            self.nbr_x = np.zeros((cap, self.neighbours, self.n_x), np.float32)
        elif len(xv) != self.n_x:
            raise ValueError(
                f"edge features x has length {len(xv)}, but the first x seen had length {self.n_x}"
            )
        return xv

    def set_label(self, s: int, label: int, ts: float) -> None:
        self.two_hop_cache = None
        self.label[s] = label
        self.label_ts[s] = ts

    def add_estimate_class(self) -> None:
        """One more class column in ``est`` (zero for every node)."""
        self.two_hop_cache = None
        self.est = np.concatenate((self.est, np.zeros((self._cap, 1), np.float32)), axis=1)
        self.n_est += 1

    # ------------------------------------------------------------------ reads
    def neighbours_of(self, s: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, Any]:
        """Live ring entries of slot ``s``: (neighbour slots, ts, w, ring positions)."""
        nb = self.nbr[s]
        # nb == -1 reads gen[-1]: harmless, masked by nb >= 0
        ok = (nb >= 0) & (self.gen[nb] == self.nbr_gen[s])
        if _all(ok):  # the common case: full ring, no evicted neighbour
            return nb, self.nbr_ts[s], self.nbr_w[s], slice(None)
        idx = np.nonzero(ok)[0]
        return nb[idx], self.nbr_ts[s, idx], self.nbr_w[s, idx], idx

    def activity(self, s: int, ts: float) -> float:
        """Time-decayed weighted degree of slot ``s`` at ``ts``."""
        dt = ts - self.last_ts[s]
        return float(self.act[s] * math.exp(-self.act_lam * dt)) if dt > 0 else float(self.act[s])

    def positional(self, s: int) -> np.ndarray:
        """Hop blocks P[s, 1:], each L2-normalised (scale-free: decay and degree cancel)."""
        p = self.pos[s, 1:]
        n = np.sqrt((p * p).sum(axis=1, keepdims=True))
        return (p / np.maximum(n, 1e-12)).ravel()

    @property
    def nodes_tracked(self) -> int:
        return len(self.slot_of)

    def bytes_total(self) -> int:
        """Bytes held: arrays (allocated capacity) + the id dict and id objects."""
        b = sum(a.nbytes for a in vars(self).values() if isinstance(a, np.ndarray))
        b += sys.getsizeof(self.slot_of) + sys.getsizeof(self.ids)
        b += sum(sys.getsizeof(k) for k in self.slot_of)
        return int(b)

    def inspect(self) -> dict:
        n = self.nodes_tracked
        b = self.bytes_total()
        return {
            "nodes_tracked": n,
            "max_nodes": self.max_nodes,
            "capacity": self._cap,
            "bytes_total": b,
            "bytes_per_node": round(b / max(1, n), 1),
            "edges_seen": self.edges_seen,
            "evictions": self.evictions,
            "edge_feature_len": self.n_x or 0,
        }
