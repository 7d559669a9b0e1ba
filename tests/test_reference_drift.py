"""The frozen-reference detector on gradual drifts (`models.reference_drift`).

Streams: two uniform inputs a, b and a boolean label with 10% of the labels flipped. A gradual
drift moves from one labelling to the next over a window, each example drawn from the new one
with a probability that rises linearly across the window.
"""

from __future__ import annotations

import random

import pytest

from models.reference_drift import ReferenceDriftDetector


def _stream(n: int, seed: int, rules, changes):
    """`rules[k]` labels (a, b) after the k-th change; `changes[k - 1]` = (start, width) of
    the change into rule k (width 1: abrupt)."""
    rng = random.Random(seed)
    for i in range(n):
        a, b = rng.random(), rng.random()
        k = 0
        for start, width in changes:
            if rng.random() < min(max((i - start + 1) / width, 0.0), 1.0):
                k += 1
            else:
                break
        y = rules[k](a, b)
        yield {"a": a, "b": b}, (not y) if rng.random() < 0.1 else y


def _detections(stream, **params) -> tuple[list[int], ReferenceDriftDetector]:
    det = ReferenceDriftDetector(**params)
    return [i for i, (x, y) in enumerate(stream) if det.update(x, y)], det


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_a_slow_rise_is_alerted_within_its_window(seed: int) -> None:
    # the threshold on a moves from 0.5 to 0.62 over 6,000 examples: 12% of the inputs are
    # relabelled by the end, the reference's error creeps up by a few points
    stream = _stream(14_000, seed, [lambda a, b: a > 0.5, lambda a, b: a > 0.62],
                     [(3000, 6000)])
    hits, _ = _detections(stream)
    assert hits and 3000 < hits[0] < 3000 + 6000 + 2000, hits


@pytest.mark.parametrize("seed", [5, 10, 11])
def test_a_reference_rearmed_mid_transition_is_replaced_and_sees_the_next_drift(
        seed: int) -> None:
    # a → b over 6,000 examples from 5,000 (detected early, so the re-armed reference learns
    # a mixture), then an abrupt partial relabelling at 14,000 (b's threshold 0.5 → 0.6)
    def stream():
        return _stream(20_000, seed, [lambda a, b: a > 0.5, lambda a, b: b > 0.5,
                                      lambda a, b: b > 0.6], [(5000, 6000), (14_000, 1)])

    hits, det = _detections(stream())
    assert hits[0] < 9000, hits  # the transition is reported while under way
    assert det.n_replaced >= 1  # the mixture-trained reference gave way to a later one
    assert [h for h in hits if 14_000 <= h <= 16_000], hits  # the relabelling is found
    assert not [h for h in hits if 11_000 + 2000 < h < 14_000], hits  # nothing in between
    # without the check, the reference trained on the mixture misses it (this stream is why
    # the check exists)
    old, det_old = _detections(stream(), rearm_check=False)
    assert det_old.n_replaced == 0
    assert not [h for h in old if 14_000 <= h <= 16_000], old


@pytest.mark.parametrize("seed", [11, 12])
def test_a_rearmed_reference_is_kept_on_a_stationary_stream(seed: int) -> None:
    det = ReferenceDriftDetector()
    det.restart()  # as after a detection: the new reference is checked
    stream = _stream(30_000, seed, [lambda a, b: a + b > 1], [])
    assert not any(det.update(x, y) for x, y in stream)
    assert det.n_replaced == 0 and det.check == "off"  # the candidate did not win
    assert det.summary()["references_replaced"] == 0 and det.summary()["phase"] == "testing"


def test_the_first_reference_is_not_checked() -> None:
    det = ReferenceDriftDetector()
    assert det.check == "off"
    det.restart()
    assert det.check == "pending"
    assert ReferenceDriftDetector(rearm_check=False).check == "off"


@pytest.mark.parametrize("params", [{"rearm_check": "yes"}, {"rearm_z": 0},
                                    {"rearm_z": True}, {"window": 10}])
def test_bad_parameters_are_refused(params: dict) -> None:
    with pytest.raises(ValueError):
        ReferenceDriftDetector(**params)
