"""Drifting stream builders and prequential metrics."""

from __future__ import annotations

import ast
import itertools
import math
from pathlib import Path

import pytest

from models.metrics import PrequentialMetrics, RollingAccuracy
from streamsvc.streams import (
    STREAMS,
    compose,
    drift_points,
    drift_width,
    make_stream,
    switch_probability,
)


def test_registry_names_and_drift_points():
    assert set(STREAMS) == {
        "sea-abrupt",
        "sea-gradual",
        "led-abrupt",
        "led-gradual",
        "rbf-moderate",
        "rbf-fast",
    }
    assert drift_points("sea-abrupt", 1000) == [250, 500, 750]
    assert drift_points("rbf-fast", 1000) == []
    assert drift_width("led-abrupt", 1000) == 1 and drift_width("led-gradual", 1000) == 50
    with pytest.raises(KeyError, match="unknown stream"):
        make_stream("nope", 10, 0)


@pytest.mark.parametrize("name", list(STREAMS))
def test_streams_are_reproducible_and_sized(name):
    a = list(make_stream(name, 300, seed=3))
    b = list(make_stream(name, 300, seed=3))
    c = list(make_stream(name, 300, seed=4))
    assert len(a) == 300 and a == b and a != c
    assert {y for _, y in a} <= set(range(STREAMS[name].n_classes))
    assert all(isinstance(x, dict) and x for x, _ in a)


def test_switch_probability_never_overflows():
    assert switch_probability(10**9, 0, 2) == pytest.approx(1.0)
    assert switch_probability(-(10**9), 0, 2) == pytest.approx(0.0, abs=1e-20)
    assert switch_probability(100, 100, 50) == pytest.approx(0.5)
    assert switch_probability(99, 100, 1) == 0.0 and switch_probability(100, 100, 1) == 1.0


def test_compose_abrupt_and_gradual():
    def const(v):
        return itertools.repeat(({"v": v}, v))

    ab = [y for _, y in compose([const(0), const(1), const(2)], [10, 20], 1, 30, seed=0)]
    assert ab == [0] * 10 + [1] * 10 + [2] * 10
    gr = [y for _, y in compose([const(0), const(1)], [500], 200, 1000, seed=0)]
    assert gr[:100].count(1) < 5 and gr[-100:].count(0) < 5
    mid = gr[450:550]
    assert 20 < mid.count(1) < 80  # mixture around the centre
    with pytest.raises(ValueError):
        list(compose([const(0)], [5], 1, 10, seed=0))


def test_abrupt_sea_changes_concept_at_drift_points():
    data = list(make_stream("sea-abrupt", 4000, seed=1))

    # river SEA: y = x1 + x2 > threshold; concept 0 uses 8, concept 3 uses 9.5 (10% noise)
    def agree(lo, hi, thr):
        return sum((x[0] + x[1] > thr) == y for x, y in data[lo:hi]) / (hi - lo)

    assert agree(0, 1000, 8.0) > 0.85
    assert agree(3000, 4000, 9.5) > 0.85 and agree(3000, 4000, 8.0) < agree(3000, 4000, 9.5)


def test_prequential_metrics_and_kappas():
    m = PrequentialMetrics(window=3)
    ys = [0, 0, 1, 1, 1, 0]
    preds = [0, 1, 1, 1, None, 0]
    for y, p in zip(ys, preds, strict=True):
        m.update(y, p)
    assert m.accuracy == pytest.approx(4 / 6)
    # majority baseline (prequential): predicts 0,0,0,0(tie keeps 0),1 after t=4 → hits at 1,5?
    maj_hits = m.majority_correct / m.n
    nochange_hits = m.nochange_correct / m.n
    assert nochange_hits == pytest.approx(3 / 6)  # 0→0, 1→1, 1→1
    assert m.kappa_t == pytest.approx((4 / 6 - nochange_hits) / (1 - nochange_hits))
    assert m.kappa_m == pytest.approx((4 / 6 - maj_hits) / (1 - maj_hits))
    assert m.rolling.get() == pytest.approx(2 / 3)
    s = m.summary()
    assert s["n"] == 6 and set(s) >= {"accuracy", "kappa_m", "kappa_t", "rolling_accuracy"}
    assert PrequentialMetrics().kappa_m == 0.0


def test_rolling_accuracy_window():
    r = RollingAccuracy(window=4)
    for h in [1, 1, 1, 1, 0, 0]:
        r.update(bool(h))
    assert len(r) == 4 and r.get() == 0.5
    assert math.isclose(RollingAccuracy().get(), 0.0)


# -- layering: bench uses the product, never the other way round ---------------------------
ROOT = Path(__file__).resolve().parent.parent
#: package → top-level packages it must not import (dependencies point models ← agents ←
#: streamsvc, and none of them may reach into the benchmarks)
FORBIDDEN = {
    "models": {"bench", "agents", "streamsvc"},
    "agents": {"bench", "streamsvc"},
    "streamsvc": {"bench"},
}


def _imported_top_levels(tree: ast.AST) -> set[str]:
    """Top-level packages named by `import`, `from ... import` and `import_module("...")`."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
        elif (isinstance(node, ast.Call) and node.args
              and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)
              and getattr(node.func, "attr", getattr(node.func, "id", None))
              in {"import_module", "__import__"}):
            names.add(node.args[0].value.split(".")[0])
    return names


def test_imported_top_levels_sees_every_import_form():
    tree = ast.parse("import bench.drift\nfrom bench import x\nimport os\n"
                     "def f():\n    from bench.streams import make_stream\n"
                     "    importlib.import_module('bench.graph')\n")
    assert _imported_top_levels(tree) == {"bench", "os"}
    assert "bench" not in _imported_top_levels(ast.parse("from . import bench\n"))


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_product_packages_do_not_import_bench_or_upper_layers(package):
    files = sorted((ROOT / package).rglob("*.py"))
    assert files, f"no sources found under {package}/"
    bad = [
        f"{f.relative_to(ROOT)} imports {name}"
        for f in files
        for name in sorted(_imported_top_levels(ast.parse(f.read_text(), str(f)))
                           & FORBIDDEN[package])
    ]
    assert not bad, "layering violated:\n" + "\n".join(bad)
