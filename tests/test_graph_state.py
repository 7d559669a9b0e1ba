"""Edge-stream state: ring buffers, eviction, random-feature propagation, positional decay."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from models.graph import EdgeStreamState


def test_ring_buffer_keeps_only_the_most_recent_neighbours() -> None:
    st = EdgeStreamState(neighbours=5, max_nodes=100)
    for i in range(12):
        st.learn_edge("hub", f"n{i}", ts=float(i), w=1.0 + i)
    s = st.slot("hub")
    nbs, ts, w, _ = st.neighbours_of(s)
    assert len(nbs) == 5
    assert {st.ids[int(n)] for n in nbs} == {f"n{i}" for i in range(7, 12)}
    assert sorted(ts.tolist()) == [7.0, 8.0, 9.0, 10.0, 11.0]
    assert sorted(w.tolist()) == [8.0, 9.0, 10.0, 11.0, 12.0]
    # the other direction is recorded too
    nbs, _, _, _ = st.neighbours_of(st.slot("n3"))
    assert [st.ids[int(n)] for n in nbs] == ["hub"]
    assert st.deg_out[s] == 12 and st.deg_in[st.slot("n3")] == 1


def test_eviction_bounds_memory_and_drops_the_coldest() -> None:
    cap = 200
    st = EdgeStreamState(max_nodes=cap, neighbours=4, dim=8)
    sizes = []
    for i in range(20 * cap):
        # "hot" is touched every step; everyone else appears once
        st.learn_edge("hot", f"cold{i}", ts=float(i))
        assert st.nodes_tracked <= cap
        if i in (5 * cap, 20 * cap - 1):
            sizes.append(st.bytes_total())
    assert st.slot("hot") >= 0, "the hottest node must never be evicted"
    assert st.evictions >= 19 * cap - cap
    assert st.inspect()["capacity"] <= cap
    # memory stopped growing once the cap was reached (only id strings grow a little)
    assert sizes[1] <= sizes[0] * 1.05
    # survivors are the most recent nodes
    recent = [f"cold{i}" for i in range(20 * cap - cap // 2, 20 * cap)]
    assert all(st.slot(n) >= 0 for n in recent)
    assert st.slot("cold0") < 0
    # stale references to evicted (and reused) slots are ignored
    nbs, _, _, _ = st.neighbours_of(st.slot("hot"))
    assert all(st.ids[int(n)] is not None for n in nbs)
    assert len(nbs) == 4


def test_random_features_propagate_as_running_mean_to_new_nodes() -> None:
    st = EdgeStreamState(random_seeded=2, dim=6, max_nodes=50)
    st.learn_edge("a", "b", 0.0)
    ra = st.rand[st.slot("a")].copy()
    rb = st.rand[st.slot("b")].copy()
    assert np.linalg.norm(ra) > 0 and np.linalg.norm(rb) > 0 and not np.allclose(ra, rb)
    st.learn_edge("c", "a", 1.0)  # c is new: not seeded, gets a's features
    np.testing.assert_allclose(st.rand[st.slot("c")], ra, rtol=1e-6)
    st.learn_edge("b", "c", 2.0)
    np.testing.assert_allclose(st.rand[st.slot("c")], (ra + rb) / 2, rtol=1e-5, atol=1e-6)
    # seeded nodes keep their own features
    np.testing.assert_allclose(st.rand[st.slot("a")], ra)
    np.testing.assert_allclose(st.rand[st.slot("b")], rb)
    # a new node only linked to feature-less new nodes stays at zero (nothing to propagate)
    st.learn_edge("d", "e", 3.0)
    assert np.allclose(st.rand[st.slot("d")], 0.0)


def _walk_sum(
    edges: list[tuple[str, str, float, float]], R: dict, u: str, k: int, T: float, lam: float
) -> np.ndarray:
    """Direct definition: sum over time-respecting walks u -e1-> x1 -e2-> ... -ek-> xk with
    edges strictly older in stream order at each step, of prod(w) e^{-lam (T - t_k)} R[xk]."""
    total = np.zeros_like(next(iter(R.values())))

    def rec(node: str, before: int, depth: int, wprod: float, t_last: float) -> None:
        nonlocal total
        if depth == k:
            total = total + wprod * math.exp(-lam * (T - t_last)) * R[node]
            return
        for j in range(before):
            a, b, t, w = edges[j]
            if a == node and b != node:
                rec(b, j, depth + 1, wprod * w, t)
            elif b == node and a != node:
                rec(a, j, depth + 1, wprod * w, t)

    rec(u, len(edges), 0, 1.0, T)
    return total


def test_positional_update_with_decay_equals_direct_recomputation() -> None:
    rng = np.random.default_rng(3)
    nodes = ["a", "b", "c", "d", "e"]
    edges = []
    t = 0.0
    for _ in range(14):
        u, v = rng.choice(nodes, size=2, replace=False)
        t += float(rng.exponential(3.0))
        edges.append((str(u), str(v), t, float(rng.uniform(0.5, 2.0))))
    st = EdgeStreamState(dim=5, hops=3, half_life=7.0, max_nodes=10)
    for a, b, ts, w in edges:
        st.learn_edge(a, b, ts, w)
    T = edges[-1][2]
    R = {n: st.pos[st.slot(n), 0].astype(np.float64) for n in nodes if st.slot(n) >= 0}
    for n in R:
        s = st.slot(n)
        decay = math.exp(-st.lam * (T - st.last_ts[s]))  # bring lazily-decayed state to T
        for k in (1, 2, 3):
            want = _walk_sum(edges, R, n, k, T, st.lam)
            got = st.pos[s, k].astype(np.float64) * decay
            np.testing.assert_allclose(got, want, rtol=2e-4, atol=1e-5)


def test_out_of_order_edges_do_not_inflate_state() -> None:
    st = EdgeStreamState(dim=4, half_life=1.0, max_nodes=10)
    st.learn_edge("a", "b", 10.0)
    before = st.pos[st.slot("a"), 1].copy()
    st.learn_edge("a", "c", 2.0)  # late edge: folded in at a's latest time, no growth from decay
    assert st.last_ts[st.slot("a")] == 10.0
    assert np.all(np.isfinite(st.pos[st.slot("a")]))
    assert not np.allclose(st.pos[st.slot("a"), 1], before)


@pytest.mark.parametrize(
    "kw, msg",
    [
        ({"ts": math.nan}, "ts must be finite"),
        ({"ts": math.inf}, "ts must be finite"),
        ({"w": math.nan}, "weight w must be finite"),
        ({"x": [1.0, math.inf]}, "finite"),
        ({"x": ["a", "b"]}, "list of numbers"),
    ],
)
def test_state_rejects_bad_edges(kw: dict, msg: str) -> None:
    st = EdgeStreamState(max_nodes=10)
    args = {"src": "a", "dst": "b", "ts": 1.0, "w": 1.0} | kw
    with pytest.raises(ValueError, match=msg):
        st.learn_edge(**args)


def test_edge_feature_length_is_fixed_by_the_first_x() -> None:
    st = EdgeStreamState(max_nodes=10)
    st.learn_edge("a", "b", 0.0)  # no x: fine
    st.learn_edge("a", "b", 1.0, x=[1.0, 2.0])
    st.learn_edge("a", "c", 2.0)  # x stays optional
    with pytest.raises(ValueError, match="length 3, but the first x seen had length 2"):
        st.learn_edge("a", "b", 3.0, x=[1.0, 2.0, 3.0])


def test_state_update_throughput_is_reported() -> None:
    rng = np.random.default_rng(0)
    n = 20_000
    src = [f"n{a}" for a in rng.integers(0, 3000, n)]
    dst = [f"n{a}" for a in rng.integers(0, 3000, n)]
    st = EdgeStreamState(max_nodes=2000)
    t = time.perf_counter()
    for i in range(n):
        st.learn_edge(src[i], dst[i], i * 0.05, 1.0)
    rate = n / (time.perf_counter() - t)
    print(f"\nEdgeStreamState.learn_edge: {rate:,.0f} edges/s, {st.inspect()}")
    assert st.edges_seen == n


def test_ring_buffer_records_edge_direction() -> None:
    st = EdgeStreamState(neighbours=4, max_nodes=100)
    st.learn_edge("a", "b", ts=1.0)
    st.learn_edge("c", "a", ts=2.0)
    st.learn_edge("d", "d", ts=3.0)  # a self-loop is sent and received by the same node
    a = st.slot("a")
    by_nb = {st.ids[int(n)]: bool(o) for n, o in zip(st.nbr[a, :2], st.nbr_out[a, :2], strict=True)}
    assert by_nb == {"b": True, "c": False}
    assert bool(st.nbr_out[st.slot("b"), 0]) is False
    assert st.nbr_out[st.slot("d"), :2].tolist() == [True, True]
