"""The worker's heap and Python's cyclic garbage collector: why the worker freezes it.

A full (generation 2) collection walks every object the collector tracks, and holds the
interpreter while it does. A started worker tracks ~150k objects, nearly all from the imports
and the Faust application that live as long as the process. Measured in the worker under load
(`hoeffding_tree`, 6,000 events/s, `time.thread_time()` around each collection): a full
collection every 5-8 s, ~90 ms of CPU each — every event in flight waits for it. After
`gc.freeze()` at start the same run had no collection over 5 ms.

Frozen objects are still freed by reference counting as usual; only reference cycles among
them are never collected, and they are the process's long-lived parts (modules, the app,
clients). Objects made later (models, caches) are collected as before.

Young collections come less often too (`GEN0_THRESHOLD` container allocations instead of
Python's 700): the host takes a shard's records in passes (`agents.host`), so what one pass
makes lives until the next, and at 700 much of it survived two young collections into the old
generation, whose growth then set off full collections that walk every model. Measured on the
in-process path (`hoeffding_tree`, 40,000 events, CPU µs per event, 3 runs each): 21.7 at 700,
19.1 at 10,000 (the learner alone in a plain loop: 11.2 and 10.8).
"""

from __future__ import annotations

import gc
import time
from typing import Any

#: container allocations between two young collections (Python's default: 700)
GEN0_THRESHOLD = 10_000


def tune_collector() -> int:
    """Collect once, freeze the survivors, space young collections (`GEN0_THRESHOLD`); the
    worker and the demo call it once their long-lived parts exist. Returns how many froze."""
    gc.collect()
    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(GEN0_THRESHOLD, gen1, gen2)
    return gc.get_freeze_count()


class GcWatch:
    """Freezes what exists at start, then counts full collections and their pauses so the
    worker status shows whether the collector is what holds the stream."""

    def __init__(self) -> None:
        self.full_collections = 0
        self.full_pause_s = 0.0
        self.longest_pause_s = 0.0
        self._started: float | None = None
        self.frozen = 0  # counted once: gc.get_freeze_count() walks the whole frozen list

    def settle(self) -> int:
        """`tune_collector`, then start watching; returns how many froze."""
        self.frozen = tune_collector()
        if self._on_gc not in gc.callbacks:
            gc.callbacks.append(self._on_gc)
        return self.frozen

    def close(self) -> None:
        if self._on_gc in gc.callbacks:
            gc.callbacks.remove(self._on_gc)

    def _on_gc(self, phase: str, info: dict[str, Any]) -> None:
        if info.get("generation") != 2:
            return
        if phase == "start":
            self._started = time.perf_counter()
        elif self._started is not None:
            pause = time.perf_counter() - self._started
            self._started = None
            self.full_collections += 1
            self.full_pause_s += pause
            self.longest_pause_s = max(self.longest_pause_s, pause)

    def counters(self) -> dict[str, int | float]:
        """For the worker status (and `/metrics`): full collections since start, the seconds
        they held the loop, the longest one, and how many objects were frozen at start."""
        return {"gc_full_collections": self.full_collections,
                "gc_full_pause_seconds": round(self.full_pause_s, 4),
                "gc_longest_pause_seconds": round(self.longest_pause_s, 4),
                "gc_frozen_objects": self.frozen}
