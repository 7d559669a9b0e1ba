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
    n = len(slots)
    out = np.zeros((n, N_STRUCT), np.float64)
    b = np.minimum(np.log2(1.0 + do + di).astype(np.int64), N_BUCKETS - 1)
    out[np.arange(n), b] = 1.0
    out[:, N_BUCKETS] = do
    out[:, N_BUCKETS + 1] = di
    last = st.last_ts[slots]
    out[:, N_BUCKETS + 2] = st.act[slots] * np.exp(-st.lam * np.maximum(ts - last, 0.0))
    out[:, N_BUCKETS + 3] = np.maximum(ts - st.first_ts[slots], 0.0)
    np.log1p(out[:, N_BUCKETS:], out=out[:, N_BUCKETS:])
    return out


def _positional_rows(st: EdgeStreamState, slots: np.ndarray) -> np.ndarray:
    p = st.pos[slots, 1:].astype(np.float64)
    n = np.sqrt(np.einsum("ijk,ijk->ij", p, p))
    p /= np.maximum(n, 1e-12)[:, :, None]
    return p.reshape(len(slots), -1)


def _rows(st: EdgeStreamState, family: str, slots: np.ndarray, ts: float) -> np.ndarray:
    if family == "structural":
        return _structural_rows(st, slots, ts)
    if family == "random":
        return st.rand[slots].astype(np.float64)
    if family == "positional":
        return _positional_rows(st, slots)
    raise ValueError(f"unknown feature family {family!r}")


_T = len(TIME_SCALES)
_NEG_INV_SCALES = -1.0 / np.array(TIME_SCALES)


def context(st: EdgeStreamState, s: int, ts: float, n_classes: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Context block of slot ``s`` plus (neighbour slots, recency weights) for aggregation."""
    nbs, nts, nw, idx = st.neighbours_of(s)
    k = len(nbs)
    scale = st.half_life if st.half_life is not None else 600.0
    ctx = np.zeros(4 + _T + (st.n_x or 0) + n_classes)
    own_gap = ts - float(st.last_ts[s])
    ctx[3 + _T] = math.exp(-own_gap / scale) if own_gap > 0 else 1.0
    if not k:
        return ctx, nbs, np.empty(0)
    ctx[0] = k / st.neighbours
    gaps = ts - nts
    np.maximum(gaps, 0.0, out=gaps)
    if st.lam > 0:
        wts = np.exp(gaps * -st.lam)
        wts /= wts.sum()
    else:
        wts = np.full(k, 1.0 / k)
    ctx[2 : 2 + _T] = np.exp(np.multiply.outer(gaps, _NEG_INV_SCALES / scale)).sum(axis=0) / k
    ctx[2 + _T] = float(np.log1p(np.abs(nw)) @ np.sign(nw)) / k
    off = 4 + _T
    if st.n_x:
        ctx[off : off + st.n_x] = wts @ st.nbr_x[s, idx]
        off += st.n_x
    if n_classes:
        lab = st.label[nbs]
        known = lab >= 0
        nk = int(np.count_nonzero(known))
        if nk:
            hist = np.bincount(lab[known], weights=wts[known], minlength=n_classes)
            ctx[1] = nk / k
            ctx[off : off + n_classes] = hist[:n_classes] / hist.sum()
    return ctx, nbs, wts


def node_features(
    st: EdgeStreamState,
    s: int,
    ts: float,
    families: tuple[str, ...],
    n_classes: int,
) -> dict[str, np.ndarray]:
    """Input vectors of slot ``s`` at ``ts`` for each requested family (shared gathers)."""
    ctx, nbs, wts = context(st, s, ts, n_classes)
    need = set()
    for f in families:
        need.update(BASE_FAMILIES if f == "combined" else (f,))
    slots = np.empty(len(nbs) + 1, np.int64)
    slots[0] = s
    slots[1:] = nbs
    blocks: list[np.ndarray] = []
    for f in BASE_FAMILIES:
        if f in need:
            r = _rows(st, f, slots, ts)
            blocks.append(r[0])
            blocks.append(wts @ r[1:] if len(nbs) else np.zeros(r.shape[1]))
        else:
            blocks += [None, None]  # type: ignore[list-item]
    out = {}
    for f in families:
        if f == "combined":
            out[f] = np.concatenate([*blocks, ctx])
        else:
            j = 2 * BASE_FAMILIES.index(f)
            out[f] = np.concatenate((blocks[j], blocks[j + 1], ctx))
    return out
