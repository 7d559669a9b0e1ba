"""The worker's collector policy (`streamsvc.heap`): freeze at start, count full pauses."""

import gc

from streamsvc.heap import GEN0_THRESHOLD, GcWatch


class _Cycle:
    def __init__(self) -> None:
        self.me = self


def test_settle_freezes_what_exists_and_full_collections_are_counted() -> None:
    watch = GcWatch()
    before = gc.get_threshold()
    try:
        frozen = watch.settle()
        assert frozen > 1000 and gc.get_freeze_count() == frozen
        assert gc.get_threshold() == (GEN0_THRESHOLD, *before[1:])
        assert watch.counters()["gc_full_collections"] == 0
        gc.collect(1)  # a young collection is not a full one
        assert watch.counters()["gc_full_collections"] == 0
        _Cycle()  # garbage only the collector can free: made after the freeze, so freed
        assert gc.collect() >= 1
        c = watch.counters()
        assert c["gc_full_collections"] == 1 and c["gc_frozen_objects"] == frozen
        assert 0 <= c["gc_longest_pause_seconds"] == c["gc_full_pause_seconds"] < 5
        watch.settle()  # its own collection is counted now; watching twice would count 2
        assert watch.counters()["gc_full_collections"] == 2
    finally:
        watch.close()
        gc.unfreeze()
        gc.set_threshold(*before)
    gc.collect()
    assert watch.counters()["gc_full_collections"] == 2  # closed: no longer counting
