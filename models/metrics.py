"""Prequential stream-classification metrics: accuracy, κ-M, κ-temporal, rolling accuracy.

κ-M compares against the majority-class classifier and κ-temporal against the no-change
classifier (predict the previous label), both run prequentially on the same stream
(Bifet et al., 2015). They expose the cases where plain accuracy flatters a model: skewed
classes (κ-M) and temporally dependent labels (κ-temporal). Pure Python, O(1) per update
(O(#classes) for the majority baseline), picklable, JSON-friendly ``summary()``.
"""

from __future__ import annotations

from collections import deque
from typing import Any

__all__ = ["PrequentialMetrics", "RollingAccuracy"]


class RollingAccuracy:
    """Accuracy over the last ``window`` predictions (exact, ring buffer)."""

    def __init__(self, window: int = 1000) -> None:
        self.window = window
        self._hits: deque[int] = deque()
        self._sum = 0

    def update(self, correct: bool) -> None:
        h = 1 if correct else 0
        self._hits.append(h)
        self._sum += h
        if len(self._hits) > self.window:
            self._sum -= self._hits.popleft()

    def get(self) -> float:
        return self._sum / len(self._hits) if self._hits else 0.0

    def __len__(self) -> int:
        return len(self._hits)


class PrequentialMetrics:
    """Test-then-train metrics; call ``update(y_true, y_pred)`` once per labelled example.

    ``None`` predictions (model not ready) count as errors. The baselines are updated after
    being scored, i.e. they are prequential too.
    """

    def __init__(self, window: int = 1000) -> None:
        self.n = 0
        self.correct = 0
        self.majority_correct = 0
        self.nochange_correct = 0
        self._class_counts: dict[Any, int] = {}
        self._majority: Any = None
        self._majority_count = 0
        self._last_y: Any = None
        self._has_last = False
        self.rolling = RollingAccuracy(window)

    def update(self, y_true: Any, y_pred: Any) -> None:
        hit = y_pred is not None and y_pred == y_true
        self.n += 1
        self.correct += bool(hit)
        self.rolling.update(bool(hit))
        if self._majority is not None and self._majority == y_true:
            self.majority_correct += 1
        if self._has_last and self._last_y == y_true:
            self.nochange_correct += 1
        c = self._class_counts.get(y_true, 0) + 1
        self._class_counts[y_true] = c
        if c > self._majority_count:
            self._majority, self._majority_count = y_true, c
        self._last_y, self._has_last = y_true, True

    @property
    def accuracy(self) -> float:
        return self.correct / self.n if self.n else 0.0

    @staticmethod
    def _kappa(p: float, p_ref: float) -> float:
        if p_ref >= 1.0:
            return 0.0 if p >= 1.0 else float("-inf")
        return (p - p_ref) / (1.0 - p_ref)

    @property
    def kappa_m(self) -> float:
        if not self.n:
            return 0.0
        return self._kappa(self.accuracy, self.majority_correct / self.n)

    @property
    def kappa_t(self) -> float:
        if not self.n:
            return 0.0
        return self._kappa(self.accuracy, self.nochange_correct / self.n)

    def summary(self) -> dict[str, float | int]:
        return {
            "n": self.n,
            "accuracy": self.accuracy,
            "kappa_m": self.kappa_m,
            "kappa_t": self.kappa_t,
            "rolling_accuracy": self.rolling.get(),
        }
