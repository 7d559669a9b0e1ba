"""Drifting synthetic streams built from river's generators, with known drift positions.

Why our own composition: river's ``ConceptDriftStream`` evaluates ``1 / (1 + exp(-4 (t - p) / w))``
unguarded, which overflows for narrow widths. Here the switch probability is a logistic with
a clipped exponent (abrupt drifts are a plain step), and several drifts are chained like MOA's
nested ``ConceptDriftStream``: the example at time t comes from concept j+1 only if it also
passed drifts 0..j. Only the chosen concept's generator advances, so each concept is an
independent, seeded river stream.

Public API (used by ``streamsvc produce --synthetic``, ``streamsvc demo --stream`` and the
benchmarks in ``bench/``)::

    make_stream(name, n, seed) -> iterator of (x: dict, y)
    drift_points(name, n) -> list[int]          # centres of the drifts (empty: continuous)
    STREAMS                                     # name -> StreamSpec
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from river.datasets import synth

__all__ = ["STREAMS", "StreamSpec", "compose", "drift_points", "drift_width", "make_stream"]

Example = tuple[dict, Any]


def switch_probability(t: int, position: int, width: int) -> float:
    """Probability that example ``t`` already belongs to the concept after a drift.

    ``width <= 1`` is an abrupt drift (a step at ``position``); otherwise a logistic centred
    on ``position`` whose exponent is clipped so it never overflows.
    """
    if width <= 1:
        return 1.0 if t >= position else 0.0
    e = -4.0 * (t - position) / width
    e = max(-60.0, min(60.0, e))
    return 1.0 / (1.0 + math.exp(e))


def compose(
    concepts: list[Iterable[Example]],
    positions: list[int],
    width: int,
    n: int,
    seed: int,
) -> Iterator[Example]:
    """Chain ``len(positions)`` drifts between ``len(positions) + 1`` concepts, ``n`` examples."""
    if len(concepts) != len(positions) + 1:
        raise ValueError("need exactly one more concept than drift positions")
    its = [iter(c) for c in concepts]
    rng = random.Random(seed)
    for t in range(n):
        k = 0
        for p in positions:
            pr = switch_probability(t, p, width)
            if pr >= 1.0 or (pr > 0.0 and rng.random() < pr):
                k += 1
            else:
                break
        yield next(its[k])


@dataclass(frozen=True)
class StreamSpec:
    """How to build one named stream."""

    name: str
    description: str
    build: Callable[[int, int], Iterator[Example]]
    n_classes: int
    abrupt: bool
    drifting: bool = True  # has drift points (False: continuous drift)

    def drift_points(self, n: int) -> list[int]:
        return [n // 4, n // 2, 3 * n // 4] if self.drifting else []

    def drift_width(self, n: int) -> int:
        return 1 if self.abrupt else max(2, n // 20)


def _sea(n: int, seed: int, abrupt: bool) -> Iterator[Example]:
    concepts = [synth.SEA(variant=v, noise=0.1, seed=seed * 10 + v) for v in range(4)]
    width = 1 if abrupt else max(2, n // 20)
    return compose(concepts, [n // 4, n // 2, 3 * n // 4], width, n, seed)


def _led(n: int, seed: int, abrupt: bool) -> Iterator[Example]:
    # MOA's LED drift setting: 1, 3, 5 then 7 of the 7 segments swapped with irrelevant ones
    concepts = [
        synth.LEDDrift(
            seed=seed * 10 + i, noise_percentage=0.1, irrelevant_features=True, n_drift_features=k
        )
        for i, k in enumerate((1, 3, 5, 7))
    ]
    width = 1 if abrupt else max(2, n // 20)
    return compose(concepts, [n // 4, n // 2, 3 * n // 4], width, n, seed)


def _rbf(n: int, seed: int, speed: float) -> Iterator[Example]:
    gen = synth.RandomRBFDrift(
        seed_model=seed,
        seed_sample=seed + 1,
        n_classes=5,
        n_features=10,
        n_centroids=50,
        change_speed=speed,
        n_drift_centroids=50,
    )
    return itertools.islice(iter(gen), n)


STREAMS: dict[str, StreamSpec] = {
    s.name: s
    for s in (
        StreamSpec(
            "sea-abrupt",
            "SEA, 10% noise, functions 0→1→2→3 switched abruptly at n/4, n/2, 3n/4",
            lambda n, seed: _sea(n, seed, True),
            2,
            abrupt=True,
        ),
        StreamSpec(
            "sea-gradual",
            "SEA, 10% noise, functions 0→1→2→3, logistic drifts of width n/20",
            lambda n, seed: _sea(n, seed, False),
            2,
            abrupt=False,
        ),
        StreamSpec(
            "led-abrupt",
            "LED (24 attributes, 10% noise), 1→3→5→7 drifting attributes, abrupt",
            lambda n, seed: _led(n, seed, True),
            10,
            abrupt=True,
        ),
        StreamSpec(
            "led-gradual",
            "LED (24 attributes, 10% noise), 1→3→5→7 drifting attributes, width n/20",
            lambda n, seed: _led(n, seed, False),
            10,
            abrupt=False,
        ),
        StreamSpec(
            "rbf-moderate",
            "RandomRBFDrift, 10 features, 5 classes, 50 centroids all moving at speed 1e-4",
            lambda n, seed: _rbf(n, seed, 1e-4),
            5,
            abrupt=False,
            drifting=False,
        ),
        StreamSpec(
            "rbf-fast",
            "RandomRBFDrift, 10 features, 5 classes, 50 centroids all moving at speed 1e-3",
            lambda n, seed: _rbf(n, seed, 1e-3),
            5,
            abrupt=False,
            drifting=False,
        ),
    )
}


def _spec(name: str) -> StreamSpec:
    try:
        return STREAMS[name]
    except KeyError:
        raise KeyError(f"unknown stream {name!r}; known: {', '.join(STREAMS)}") from None


def make_stream(name: str, n: int, seed: int = 42) -> Iterator[Example]:
    """``n`` examples ``(x, y)`` of the named stream; same ``(name, n, seed)`` → same data."""
    if n < 0:
        raise ValueError("n must be >= 0")
    return _spec(name).build(n, seed)


def drift_points(name: str, n: int) -> list[int]:
    """Centres of the drifts of a stream of length ``n`` (empty for continuous drift)."""
    return _spec(name).drift_points(n)


def drift_width(name: str, n: int) -> int:
    """Width of the drifts (1 = abrupt)."""
    return _spec(name).drift_width(n)
