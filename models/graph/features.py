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
from typing import Any

import numpy as np

from .state import EdgeStreamState

BASE_FAMILIES = ("structural", "random", "positional")
FAMILIES = (*BASE_FAMILIES, "combined")
N_BUCKETS = 12  # degree buckets: floor(log2(1 + degree)), capped
N_STRUCT = N_BUCKETS + 4
TIME_SCALES = (1 / 64, 1 / 8, 1.0, 8.0)  # multiples of the half-life (or typical gap)


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


def context_width(state: EdgeStreamState, profile: bool = False) -> int:
    """Fixed part of the context (the label columns come after it)."""
    return 4 + len(TIME_SCALES) + (2 + 2 * (state.n_x or 0) if profile else (state.n_x or 0))


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
    out[:, N_BUCKETS + 2] = st.act[slots] * np.exp(-st.act_lam * np.maximum(ts - last, 0.0))
    # age in typical inter-arrival gaps: the same whatever the timestamps' unit
    out[:, N_BUCKETS + 3] = np.maximum(ts - st.first_ts[slots], 0.0) / st.time_scale
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
        return st.rand[slots].astype(np.float64)  # float64 @ float32 skips BLAS: slower
    if family == "positional":
        return _positional_rows(st, slots)
    raise ValueError(f"unknown feature family {family!r}")


_T = len(TIME_SCALES)
_sum = np.add.reduce  # ndarray.sum without its Python-level wrapper (hot path)
_all = np.logical_and.reduce  # ndarray.all, likewise
_NEG_INV_SCALES = -1.0 / np.array(TIME_SCALES)


def label_columns(two_hop: bool = False) -> int:
    """Label columns per class: the neighbour-label histogram (+ its two-hop version)."""
    return 2 if two_hop else 1


def context(
    st: EdgeStreamState,
    s: int,
    ts: float,
    n_classes: int,
    profile: bool = False,
    two_hop: bool = False,
    out: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Context block of slot ``s`` plus (neighbour slots, recency weights, their ring
    timestamps) for aggregation.

    The label columns come last, interleaved per class so that a new class appends its own:
    the recency-weighted histogram of the neighbours' last known labels and, with
    ``two_hop``, the same with each unlabelled neighbour counted by its own neighbours'
    label histogram (so a node whose neighbours are new still gets label evidence). With
    ``profile``, the node's *outgoing* edges (where it was ``src``) get their own
    recency-weighted share, signed-log weight and edge-feature mean: what a node emits says
    more about it than what it receives. ``out``: zeroed array to fill (else allocated).
    """
    nbs, nts, nw, idx = st.neighbours_of(s)
    k = len(nbs)
    # an explicit half-life sets the scale of the gap encodings; else the nodes' own
    # typical inter-arrival gap does (invariant to the timestamps' unit)
    scale = st.half_life if st.half_life is not None else st.time_scale
    per = label_columns(two_hop)
    n_x = st.n_x or 0
    lab_off = context_width(st, profile)
    ctx = np.zeros(lab_off + per * n_classes) if out is None else out
    own_gap = ts - float(st.last_ts[s])
    ctx[3 + _T] = math.exp(-own_gap / scale) if own_gap > 0 else 1.0
    if not k:
        return ctx, nbs, np.empty(0), nts
    ctx[0] = k / st.neighbours
    gaps = ts - nts
    np.maximum(gaps, 0.0, out=gaps)
    if st.lam > 0:  # relative to the newest neighbour: a long pause cannot underflow all
        wts = np.exp((gaps.min() - gaps) * st.lam)
        wts /= _sum(wts)
    else:
        wts = np.full(k, 1.0 / k)
    ctx[2 : 2 + _T] = _sum(np.exp(np.multiply.outer(gaps, _NEG_INV_SCALES / scale)), axis=0)
    ctx[2 : 2 + _T] /= k
    lw = np.log1p(np.abs(nw))
    lw *= np.sign(nw)
    ctx[2 + _T] = _sum(lw) / k
    off = 4 + _T
    nx = st.nbr_x[s, idx] if n_x else None
    if profile:
        wo = wts * st.nbr_out[s, idx]
        so = _sum(wo)
        ctx[off] = so
        if so > 0:
            wo /= so
            ctx[off + 1] = wo @ lw
            if n_x:
                ctx[off + 2 + n_x : off + 2 + 2 * n_x] = wo @ nx
        off += 2
    if n_x:
        ctx[off : off + n_x] = wts @ nx
    if n_classes:
        lab = st.label[nbs]
        known = lab >= 0
        nk = int(np.count_nonzero(known))
        hist = None
        if nk:
            hist = np.bincount(lab[known], weights=wts[known], minlength=n_classes)[:n_classes]
            ctx[1] = nk / k
            hs = _sum(hist)
            if hs > 0:
                ctx[lab_off : lab_off + per * n_classes : per] = hist / hs
            else:  # every labelled neighbour decayed to nothing
                hist = None
        kept = _cached_two_hop(st, s, ts, n_classes) if two_hop else None
        if kept is not None:  # the edge just refreshed this node's estimate: the same numbers
            ctx[lab_off + 1 : lab_off + per * n_classes : per] = kept
        elif two_hop:
            if nk < k:  # unlabelled neighbours count with their own neighbours' labels
                unk = np.nonzero(~known)[0]
                soft = _soft_labels(st, nbs[unk], ts, n_classes, exclude=s)
                two = wts[unk] @ soft
                if hist is not None:
                    two += hist
            else:
                two = hist
            tot = _sum(two)
            if tot > 0:
                ctx[lab_off + 1 : lab_off + per * n_classes : per] = two / tot
    return ctx, nbs, wts, nts


def _soft_labels(
    st: EdgeStreamState, nbs: np.ndarray, ts: float, n_classes: int, exclude: Any = -1
) -> np.ndarray:
    """(len(nbs), n_classes): the recency-weighted histogram of each node's live neighbours'
    last known labels, normalised (a row of zeros: no label known). ``exclude``: a slot left
    out (the node asking: its own label, when known, must not vote for itself through its
    neighbours, or training on a node labelled before would see its answer); an array gives
    one such slot per row (several nodes' rows in one pass)."""
    k = len(nbs)
    nb2 = st.nbr[nbs]
    lab2 = st.label[nb2]  # nb2 == -1 reads the last slot: masked below
    if isinstance(exclude, np.ndarray):
        exclude = exclude[:, None]
    ok = (nb2 >= 0) & (lab2 >= 0) & (st.gen[nb2] == st.nbr_gen[nbs]) & (nb2 != exclude)
    rows = _row_offsets(k, n_classes) + lab2
    if st.lam > 0:
        w2 = st.nbr_ts[nbs] - ts
        np.minimum(w2, 0.0, out=w2)
        w2 *= st.lam
        np.exp(w2, out=w2)
        soft = np.bincount(rows[ok], weights=w2[ok], minlength=k * n_classes)
    else:  # every weight is e^0 = 1: the same sums (whole numbers) as plain counts
        soft = np.bincount(rows[ok], minlength=k * n_classes)
    soft = soft.reshape(k, n_classes).astype(np.float64, copy=False)
    tot = _sum(soft, axis=1, keepdims=True)
    np.divide(soft, tot, out=soft, where=tot > 0)
    return soft


_ROWS: dict[tuple[int, int], np.ndarray] = {}


def _row_offsets(k: int, n_classes: int) -> np.ndarray:
    """``[[0], [C], [2C], ...]`` (k rows): cached, as k and C take few values."""
    r = _ROWS.get((k, n_classes))
    if r is None:
        if len(_ROWS) > 256:
            _ROWS.clear()
        r = _ROWS[(k, n_classes)] = np.arange(0, k * n_classes, n_classes)[:, None]
    return r


def _recency(st: EdgeStreamState, nts: np.ndarray, ts: float) -> np.ndarray:
    """Normalised recency weights of ring entries stamped ``nts`` (uniform without decay)."""
    k = len(nts)
    if st.lam > 0:
        gaps = np.maximum(ts - nts, 0.0)
        w = np.exp((gaps.min() - gaps) * st.lam)
        return w / _sum(w)
    return np.full(k, 1.0 / k)


def refresh_estimate(st: EdgeStreamState, s: int, ts: float) -> None:
    """Store slot ``s``'s two-hop label histogram (normalised) as its estimate ``st.est[s]``,
    read by its neighbours' propagated vote (:func:`propagated`). Labelled nodes are skipped
    (their neighbours read the label itself). O(K²) like the two-hop column."""
    refresh_estimates(st, s, s, ts)


def refresh_estimates(st: EdgeStreamState, u: int, v: int, ts: float) -> None:
    """:func:`refresh_estimate` of both ends of an edge in one pass (one second-hop gather
    for both), and keep each histogram for :func:`context`: a prediction for ``u`` or ``v``
    right after the edge, at the same ``ts`` and with no state change in between, reads the
    same two-hop column (same numbers, same float operations) instead of recomputing it."""
    c = st.n_est
    if not c:
        return
    label = st.label
    ends = []
    for s in (u,) if v == u else (u, v):
        if label[s] >= 0:
            continue
        nbs, nts, _, _ = st.neighbours_of(s)
        k = len(nbs)
        if not k:
            continue
        wts = _recency(st, nts, ts)
        lab = label[nbs]
        known = lab >= 0
        two = np.bincount(lab[known], weights=wts[known], minlength=c)[:c].astype(np.float64)
        unk = None if _all(known) else np.nonzero(~known)[0]
        ends.append((s, nbs, wts, two, unk))
    if not ends:
        return
    soft = None
    gather = [e for e in ends if e[4] is not None]
    if len(gather) == 2:  # both ends: one gather, rows [u's unlabelled nbs, v's]
        (su, nu, _, _, iu), (sv, nv, _, _, iv) = gather
        excl = np.empty(len(iu) + len(iv), np.int64)
        excl[: len(iu)] = su
        excl[len(iu) :] = sv
        soft = _soft_labels(st, np.concatenate((nu[iu], nv[iv])), ts, c, exclude=excl)
    cache = []
    row = 0
    for s, nbs, wts, two, unk in ends:
        if unk is not None:
            if soft is None:
                rows = _soft_labels(st, nbs[unk], ts, c, exclude=s)
            else:
                rows = soft[row : row + len(unk)]
                row += len(unk)
            two += wts[unk] @ rows
        tot = _sum(two)
        st.est_tot[s] = tot
        if tot > 0:
            two /= tot
            st.est[s] = two
            cache.append((s, two))
        else:
            st.est[s] = 0.0
    st.two_hop_cache = (ts, cache)


def refresh_around(st: EdgeStreamState, s: int, ts: float) -> None:
    """:func:`refresh_estimate` of slot ``s``'s unlabelled neighbours, after ``s``'s label
    changed: their estimates then hold ``s``'s current label, which :func:`propagated` relies
    on to take it out again when it asks for ``s``."""
    nbs = st.neighbours_of(s)[0]
    for v in np.unique(nbs[st.label[nbs] < 0]).tolist():
        refresh_estimates(st, v, v, ts)
    st.two_hop_cache = None


def _without(st: EdgeStreamState, s: int, vs: np.ndarray, raw: np.ndarray) -> np.ndarray:
    """The estimates ``raw`` of unlabelled slots ``vs`` with labelled slot ``s``'s own label
    taken out (its ring entries' share of each estimate's weight, see ``est_tot``), so that a
    node's label does not vote for itself directly through its neighbours: that echo kept a
    node's old class after it changed (issue 11, an independent re-labelling stream), and is
    what the two-hop column's ``exclude`` already avoids. (Three hops round, through two
    unlabelled nodes, it can still come back, diluted.) The weights are those of
    :func:`refresh_estimates` (newest live entry 1); each row is renormalised after the
    subtraction, so a ring that changed since (an evicted entry) cannot inflate it, and an
    estimate of unknown weight (``est_tot`` NaN: a snapshot from before it was kept) is
    left as it is."""
    ring = st.nbr[vs]  # (k, K)
    live = (ring >= 0) & (st.gen[ring] == st.nbr_gen[vs])
    if st.lam > 0:
        nts = np.where(live, st.nbr_ts[vs], -np.inf)
        w = np.exp((nts - nts.max(axis=1, keepdims=True)) * st.lam)  # dead entries: 0
    else:
        w = live.astype(np.float64)
    tot = st.est_tot[vs]
    share = _sum(w * (ring == s), axis=1) / np.maximum(_sum(w, axis=1), 1e-30)
    share[~np.isfinite(tot)] = 0.0
    if not share.any():
        return raw
    out = raw * tot[:, None]
    out[:, st.label[s]] -= share
    np.maximum(out, 0.0, out=out)
    left = _sum(out, axis=1)
    keep = left > 1e-6 * tot  # else s was all the evidence (float32 estimates leave dust)
    out[keep] /= left[keep, None]
    out[~keep] = 0.0
    same = share == 0.0  # rows s is not in (or of unknown weight): as stored
    out[same] = raw[same]
    return out


def _cached_two_hop(st: EdgeStreamState, s: int, ts: float, n_classes: int) -> Any:
    """Slot ``s``'s normalised two-hop histogram kept by :func:`refresh_estimates` (``None``:
    not kept, or the state changed since; the state clears it on every change)."""
    kept = st.two_hop_cache
    if kept is None or kept[0] != ts or n_classes != st.n_est:
        return None
    for slot, two in kept[1]:
        if slot == s:
            return two
    return None


def propagated(
    st: EdgeStreamState,
    s: int,
    ts: float,
    n_classes: int,
    nbs: np.ndarray | None = None,
    wts: np.ndarray | None = None,
    sharpness: tuple[float, ...] = (1.0,),
    age: np.ndarray | None = None,
) -> np.ndarray:
    """Propagated label histograms of slot ``s`` (rows normalised; zeros without evidence):
    each labelled neighbour counts with its label, each unlabelled one with its stored
    two-hop estimate (:func:`refresh_estimate`) raised to the power ``sharpness`` and
    renormalised, so labels up to three hops away reach a node whose neighbourhood is new.
    One row per ``sharpness``, or, with one power and ``age`` of shape (rows, K), one row
    per ``age`` row. O(K·C) per row. ``nbs``, ``wts``: the live neighbours and their recency
    weights at ``ts`` when already known (as :func:`context` returns them); ``age``: further
    weights of those neighbours, in the same order (see :func:`age_weights`).

    Why sharpen: a neighbour's estimate is the label mix around it, flatter than what it
    says about the neighbour itself (a neighbour whose surroundings are 50% one class most
    likely belongs to it); summing the raw mixes under-counts such a neighbour against a
    labelled one. A power > 1 counts it closer to its likely class; the learner picks the
    power on its own labels (see :attr:`.NodePropertyClassifier.sharpness`)."""
    many = age is not None and age.ndim == 2
    if many and len(sharpness) > 1:
        raise ValueError("several age rows need one sharpness")
    out = np.zeros((len(age) if many else len(sharpness), n_classes))
    if nbs is None:
        nbs, nts, _, _ = st.neighbours_of(s)
        if not len(nbs) or not st.n_est:
            return out
        wts = _recency(st, nts, ts)
    elif not len(nbs) or not st.n_est:
        return out
    c = min(n_classes, st.n_est)
    if age is not None:
        wts = wts * age  # (K,) or (rows, K)
    lab = st.label[nbs]
    known = lab >= 0
    if many:
        hot = np.zeros((len(lab), c))
        counted = known & (lab < c)  # as bincount's [:c] below
        hot[counted, lab[counted]] = 1.0
        out[:, :c] = wts @ hot
    else:
        out[:, :c] = np.bincount(lab[known], weights=wts[known], minlength=c)[:c]
    if not _all(known):
        unk = np.nonzero(~known)[0]
        raw = st.est[nbs[unk], :c]
        if 0 <= st.label[s] < c:
            raw = _without(st, s, nbs[unk], raw)
        w = wts[..., unk]
        for i, b in enumerate(sharpness):
            est = raw
            if b != 1.0:
                est = raw**b  # a row without evidence stays zero: 0 / tiny (est: float32)
                est /= np.maximum(_sum(est, axis=1), 1e-30)[:, None]
            out[slice(None) if many else i, :c] += w @ est
    tot = _sum(out, axis=1)
    tot[tot == 0] = 1.0
    out /= tot[:, None]
    return out


def age_weights(nts: np.ndarray, decay: float | tuple[float, ...]) -> np.ndarray:
    """``decay ** rank`` for ring entries stamped ``nts``, rank 0 the newest: recency by
    order, not by time, so it means the same in any time unit and at any pace. A tuple of
    decays gives one row each."""
    k = len(nts)
    order = np.argsort(-nts, kind="stable")
    if isinstance(decay, tuple):
        w = np.empty((len(decay), k))
        w[:, order] = np.power.outer(decay, np.arange(k))
        return w
    w = np.empty(k)
    w[order] = decay ** np.arange(k)
    return w


class FeatureLayout:
    """Where each family's block sits in the shared input vector of the candidate heads.

    Layout: ``[structural own, structural nbr-mean, random own, random nbr-mean, positional
    own, positional nbr-mean]`` (only the families needed), then the context block, then the
    edge-feature block, then the neighbour-label histogram (one column per class).
    """

    def __init__(self, st: EdgeStreamState, families: tuple[str, ...]) -> None:
        need = set()
        for f in families:
            need.update(BASE_FAMILIES if f == "combined" else (f,))
        self.families = families
        self.blocks: dict[str, tuple[int, int]] = {}
        off = 0
        for f in BASE_FAMILIES:
            if f in need:
                w = family_width(st, f)
                self.blocks[f] = (off, off + w)
                off += w
        self.ctx_start = off
        # (neighbour slots, recency weights, ring timestamps) of the last vector's node
        self.last_neighbours: tuple = (None, None, None)

    def head_mask(self, st: EdgeStreamState, n_classes: int, profile: bool = False) -> np.ndarray:
        """(n_features, n_heads) mask: a head sees its family's block(s) and the context."""
        d = self.ctx_start + context_width(st, profile) + n_classes
        m = np.zeros((d, len(self.families)), bool)
        m[self.ctx_start :] = True
        for h, f in enumerate(self.families):
            for g in BASE_FAMILIES if f == "combined" else (f,):
                a, b = self.blocks[g]
                m[a:b, h] = True
        return m

    def fill_for(self, family: str) -> tuple[str, ...]:
        """Base blocks needed to predict with ``family`` ("ensemble": all)."""
        if family in ("combined", "ensemble"):
            return tuple(self.blocks)
        return (family,)

    def vector(
        self,
        st: EdgeStreamState,
        s: int,
        ts: float,
        n_classes: int,
        fill: tuple[str, ...],
        profile: bool = False,
        two_hop: bool = False,
    ) -> np.ndarray:
        """Input vector of slot ``s`` at ``ts``; blocks not in ``fill`` stay zero."""
        c0 = self.ctx_start
        x = np.zeros(c0 + context_width(st, profile) + label_columns(two_hop) * n_classes)
        _, nbs, wts, nts = context(st, s, ts, n_classes, profile, two_hop, out=x[c0:])
        self.last_neighbours = (nbs, wts, nts)  # for the propagated vote of this node and ts
        k = len(nbs)
        slots = np.empty(k + 1, np.int64)
        slots[0] = s
        slots[1:] = nbs
        for f in fill:  # the node's own features, then the recency-weighted neighbour mean
            a, b = self.blocks[f]
            h = (b - a) // 2
            r = _rows(st, f, slots, ts)
            x[a : a + h] = r[0]
            if k:
                x[a + h : b] = wts @ r[1:]
        return x
