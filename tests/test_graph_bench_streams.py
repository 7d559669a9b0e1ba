"""The benchmark streams of the node-property learner keep their protocol: a node scored as
unlabelled never has its label revealed, shifts happen where planted, units only rescale."""

from __future__ import annotations

import pytest

from bench.graph_pubmed import load_pubmed, messages
from bench.graph_sbm import SBMStream


def _check_no_leak(msgs: list[dict]) -> tuple[int, int]:
    revealed = {m["node"] for m in msgs if m["kind"] == "node"}
    scored = {m["src"] for m in msgs if m["kind"] == "edge" and m["eval_src"]}
    assert revealed and scored
    assert not revealed & scored
    return len(revealed), len(scored)


def test_sbm_stream_never_reveals_a_scored_node_and_plants_its_shifts() -> None:
    gen = SBMStream(6000, 3, shifts=[("switch", 0.3), ("mixing", 0.6)])
    msgs = list(gen.messages())
    n_lab, n_eval = _check_no_leak(msgs)
    assert 0.15 < n_lab / (n_lab + n_eval) < 0.45  # ~30% of nodes labelled
    assert [e["kind"] for e in gen.events] == ["switch", "mixing"]
    n_edges = sum(m["kind"] == "edge" for m in msgs)
    assert abs(gen.events[0]["edge_index"] - 0.3 * n_edges) < 0.02 * n_edges
    # after the switch some labelled nodes announce a new community
    first: dict[str, str] = {}
    changed = 0
    for m in msgs:
        if m["kind"] == "node":
            changed += first.setdefault(m["node"], m["y"]) != m["y"]
    assert changed > 0


def test_sbm_stream_in_milliseconds_is_the_same_stream_rescaled() -> None:
    s = list(SBMStream(2000, 8, unit="s").messages())
    ms = list(SBMStream(2000, 8, unit="ms").messages())
    assert [m.get("src", m.get("node")) for m in s] == [m.get("src", m.get("node")) for m in ms]
    # seconds are rounded to the millisecond
    assert all(
        b["ts"] == pytest.approx(a["ts"] * 1000, abs=0.51) for a, b in zip(s, ms, strict=True)
    )


def test_sbm_stream_rejects_unknown_settings() -> None:
    with pytest.raises(ValueError, match="bad shift"):
        SBMStream(100, 0, shifts=[("earthquake", 0.5)])
    with pytest.raises(ValueError, match="unit"):
        SBMStream(100, 0, unit="h")


def test_pubmed_stream_is_the_real_graph_in_year_order_without_leaks() -> None:
    edges, topics = load_pubmed()
    assert len(edges) == 44_335 and len(topics) == 19_717
    assert sorted(set(topics.values())) == ["1", "2", "3"]
    years = [t for _, _, t in edges]
    assert years == sorted(years) and years[0] == 1967 and years[-1] == 2010
    msgs = list(messages(edges, topics, 0.3, seed=1))
    n_lab, n_eval = _check_no_leak(msgs)
    labels = [m for m in msgs if m["kind"] == "node"]
    assert len(labels) == len({m["node"] for m in labels})  # each topic revealed once
    assert 0.25 < n_lab / len(topics) < 0.35


def test_the_oracle_reference_runs_where_the_stream_says_both_ends_truth() -> None:
    """An SBM stream carries both ends' communities: the oracle column is there and, knowing
    the neighbours' truth at 0.9 within-community linking, beats the simple votes. PubMed's
    messages carry only the scored node's truth: the same runner leaves the oracle out."""
    from bench.graph_robust import BASELINES, ORACLE, run_stream

    res = run_stream(SBMStream(3000, 5).messages(), {})
    assert ORACLE in res["hits"] and len(res["hits"][ORACLE]) == len(res["idx"]) > 500
    assert res["hits"][ORACLE].mean() > max(res["hits"][b].mean() for b in BASELINES) + 0.02
    edges, topics = load_pubmed()
    res = run_stream(messages(edges[:3000], topics, 0.3, seed=1), {})
    assert ORACLE not in res["hits"] and len(res["hits"]["two-hop vote"]) > 100
