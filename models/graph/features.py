"""Feature families read from :class:`EdgeStreamState` for one node at one time.

A node's input vector is ``[family block, context block, neighbour-label histogram]``:

* family block: the node's own family features and the recency-weighted mean of its recent
  neighbours' (from the ring buffer) — "structural" (encoded degree), "random" (seeded or
  propagated random features), "positional" (decayed random-projection walks), or
  "combined" (all three);
* context: how full the ring buffer is, time-gap encodings (mean of e^{-Δt/τ} over a few
  scales τ), recent edge weights and edge features;
* neighbour labels: recency-weighted histogram of the last known labels of recent neighbours
  (kept last so that a new class only appends a column).
"""

from __future__ import annotations

import math

import numpy as np

from .state import EdgeStreamState

BASE_FAMILIES = ("structural", "random", "positional")
FAMILIES = (*BASE_FAMILIES, "combined")
N_BUCKETS = 12  # degree buckets: floor(log2(1 + degree)), capped
N_STRUCT = N_BUCKETS + 4
TIME_SCALES = (1 / 64, 1 / 8, 1.0, 8.0)  # multiples of the half-life


def family_width(state: EdgeStreamState, family: str) -> int:
    """Width of the own+neighbour block of a family."""
    if family == "structural":
        return 2 * N_STRUCT
    if family == "random":
        return 2 * state.dim
    if family == "positional":
        return 2 * state.hops * state.dim
    if family == "combined":
        return sum(family_width(state, f) for f in BASE_FAMILIES)
    raise ValueError(f"unknown feature family {family!r}; expected one of {FAMILIES}")


def context_width(state: EdgeStreamState) -> int:
    return 4 + len(TIME_SCALES) + (state.n_x or 0)


def _structural_rows(st: EdgeStreamState, slots: np.ndarray, ts: float) -> np.ndarray:
    do = st.deg_out[slots]
    di = st.deg_in[slots]
    out = np.zeros((len(slots), N_STRUCT), np.float64)
    b = np.minimum(np.log2(1.0 + do + di).astype(np.int64), N_BUCKETS - 1)
    out[np.arange(len(slots)), b] = 1.0
    out[:, N_BUCKETS] = np.log1p(do)
    out[:, N_BUCKETS + 1] = np.log1p(di)
    dt = np.maximum(ts - st.last_ts[slots], 0.0)
    out[:, N_BUCKETS + 2] = np.log1p(st.act[slots] * np.exp(-st.lam * dt))
    out[:, N_BUCKETS + 3] = np.log1p(np.maximum(ts - st.first_ts[slots], 0.0))
    return out


def _positional_rows(st: EdgeStreamState, slots: np.ndarray) -> np.ndarray:
    p = st.pos[slots, 1:].astype(np.float64)
    n = np.sqrt((p * p).sum(axis=2, keepdims=True))
    return (p / np.maximum(n, 1e-12)).reshape(len(slots), -1)


def _rows(st: EdgeStreamState, family: str, slots: np.ndarray, ts: float) -> np.ndarray:
    if family == "structural":
        return _structural_rows(st, slots, ts)
    if family == "random":
        return st.rand[slots].astype(np.float64)
    if family == "positional":
        return _positional_rows(st, slots)
    raise ValueError(f"unknown feature family {family!r}")


def node_features(
    st: EdgeStreamState,
    s: int,
    ts: float,
    families: tuple[str, ...],
    n_classes: int,
) -> dict[str, np.ndarray]:
    """Input vectors of slot ``s`` at ``ts`` for each requested family (shared gathers)."""
    nbs, nts, nw, idx = st.neighbours_of(s)
    k = len(nbs)
    scale = st.half_life if st.half_life is not None else 600.0
    ctx = np.zeros(context_width(st) + n_classes, np.float64)
    ctx[0] = k / st.neighbours
    if k:
        gaps = np.maximum(ts - nts, 0.0)
        wts = np.exp(-st.lam * gaps) if st.lam > 0 else np.ones(k)
        wts = wts / wts.sum()
        for j, m in enumerate(TIME_SCALES):
            ctx[2 + j] = float(np.exp(-gaps / (m * scale)).mean())
        ctx[2 + len(TIME_SCALES)] = float(np.mean(np.sign(nw) * np.log1p(np.abs(nw))))
        off = 4 + len(TIME_SCALES)
        if st.n_x:
            ctx[off : off + st.n_x] = wts @ st.nbr_x[s, idx]
            off += st.n_x
        if n_classes:
            lab = st.label[nbs]
            known = lab >= 0
            if known.any():
                hist = np.bincount(lab[known], weights=wts[known], minlength=n_classes)
                tot = hist.sum()
                ctx[1] = float(known.mean())
                ctx[off : off + n_classes] = hist[:n_classes] / tot
    own_gap = ts - float(st.last_ts[s])
    ctx[3 + len(TIME_SCALES)] = math.exp(-own_gap / scale) if own_gap > 0 else 1.0

    need = set()
    for f in families:
        need.update(BASE_FAMILIES if f == "combined" else (f,))
    slots = np.concatenate(([s], nbs)).astype(np.int64)
    blocks: dict[str, np.ndarray] = {}
    for f in BASE_FAMILIES:
        if f not in need:
            continue
        r = _rows(st, f, slots, ts)
        agg = wts @ r[1:] if k else np.zeros(r.shape[1])
        blocks[f] = np.concatenate((r[0], agg))
    out = {}
    for f in families:
        if f == "combined":
            out[f] = np.concatenate([blocks[b] for b in BASE_FAMILIES] + [ctx])
        else:
            out[f] = np.concatenate((blocks[f], ctx))
    return out
