"""Synthetic temporal-graph generator: message shapes, determinism, planted shifts."""

from __future__ import annotations

import math

import pytest

from streamsvc.graphgen import make_edge_stream


def test_messages_have_the_service_shapes() -> None:
    stream = make_edge_stream(3000, seed=1)
    msgs = list(stream)
    edges = [m for m in msgs if m["kind"] == "edge"]
    nodes = [m for m in msgs if m["kind"] == "node"]
    assert len(edges) == 3000 and nodes
    for m in edges:
        assert isinstance(m["src"], str) and isinstance(m["dst"], str)
        assert math.isfinite(m["ts"]) and math.isfinite(m["w"]) and m["w"] > 0
        assert len(m["x"]) == 4 and all(isinstance(v, float) for v in m["x"])
        assert set(m) <= {"kind", "src", "dst", "ts", "w", "x", "y"}
    for m in nodes:
        assert set(m) == {"kind", "node", "y", "ts"}
    ts = [m["ts"] for m in edges]
    assert ts == sorted(ts)
    labelled = sum("y" in m for m in edges) / len(edges)
    assert 0.05 < labelled < 0.15
    assert [s["kind"] for s in stream.shifts] == ["switch", "new_communities"]
    assert stream.shifts[0]["edge_index"] == 1200 and stream.shifts[0]["ts"] == 1200 / stream.rate


def test_same_seed_same_stream_and_new_labels_after_shift() -> None:
    a = list(make_edge_stream(4000, seed=2, shifts=[("new_communities", 0.5)], x_dim=0))
    b = list(make_edge_stream(4000, seed=2, shifts=[("new_communities", 0.5)], x_dim=0))
    assert a == b
    assert all("x" not in m for m in a)
    edges = [m for m in a if m["kind"] == "edge"]
    before = {m["y"] for m in edges[:2000] if "y" in m}
    after = {m["y"] for m in edges[2000:] if "y" in m}
    assert before == {f"c{i}" for i in range(5)}
    assert after - before == {"c5", "c6"}


def test_switch_changes_labels_of_existing_nodes() -> None:
    msgs = [m for m in make_edge_stream(20_000, seed=3, shifts=[("switch", 0.5)])
            if m["kind"] == "edge" and "y" in m]
    first: dict = {}
    changed = 0
    for i, m in enumerate(msgs):
        if m["src"] in first and first[m["src"]][1] != m["y"]:
            assert first[m["src"]][0] < len(msgs) // 2 + 200  # only across the shift
            changed += 1
            first[m["src"]] = (i, m["y"])
        first.setdefault(m["src"], (i, m["y"]))
    assert changed > 50


def test_anomaly_task_and_bad_arguments() -> None:
    msgs = list(make_edge_stream(3000, seed=4, task="anomaly"))
    ys = {m["y"] for m in msgs if "y" in m}
    assert ys == {True, False}
    with pytest.raises(ValueError, match="shift kind"):
        make_edge_stream(10, shifts=[("earthquake", 0.5)])
    with pytest.raises(ValueError, match="fraction"):
        make_edge_stream(10, shifts=[("switch", 1.5)])
    with pytest.raises(ValueError, match="task"):
        make_edge_stream(10, task="regression")
