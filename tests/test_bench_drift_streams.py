"""bench.drift's generator families outside the product's streams (the robustness check)."""

import pytest

from bench.drift import UNSEEN


@pytest.mark.parametrize("name", sorted(UNSEEN))
def test_unseen_streams_are_whole_reproducible_and_labelled_as_declared(name: str) -> None:
    spec = UNSEEN[name]
    first, again = list(spec.build(800, 7)), list(spec.build(800, 7))
    assert len(first) == 800 and first == again
    labels = {y for _, y in first}
    assert len(labels) == spec.n_classes, labels
    other = list(spec.build(800, 8))
    assert other != first  # the seed matters
    if spec.drifting:
        assert spec.drift_points(800) == [200, 400, 600]
