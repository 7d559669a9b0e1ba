"""Concept drift seen through a reference model that has stopped learning.

Why: a detector on the live model's own errors only sees a drift the model suffers from. A
learner that adapts quickly (DriftMoE resetting an expert after a label flip on an easy stream)
may make a few dozen extra mistakes and recover, which no detector can tell from noise — yet
the concept did change, and a user acting on the data wants to know. A small model trained on
a window of the current concept and then frozen keeps making the new concept's mistakes, so
its error rate rises and *stays* up: a one-sided Bernoulli CUSUM on that error stream finds
the change after a few hundred examples, whatever the live model does.

The test adapts to the data: the reference's error rate ``p0`` is estimated on the examples it
has not learned from, and the CUSUM looks for a rise to ``p0 + max(min_rise, rel_rise * p0)``
(a rise relative to where the error is, with a floor). After a detection, or when the caller
reports a drift found another way (`restart`), a new reference is trained on the next window.

>>> import random
>>> from models.reference_drift import ReferenceDriftDetector
>>> rng = random.Random(1)
>>> det = ReferenceDriftDetector()
>>> found = []
>>> for i in range(6000):
...     x = {"a": rng.random(), "b": rng.random()}
...     y = (x["a"] > 0.5) if i < 3000 else (x["b"] > 0.5)  # the concept changes at 3,000
...     if det.update(x, y):
...         found.append(i)
>>> len(found) == 1 and 3000 < found[0] < 3500
True
"""

from __future__ import annotations

import math
from typing import Any

from models.frozen_nb import FrozenNaiveBayes


class ReferenceDriftDetector:
    """A frozen reference model's error stream under a one-sided Bernoulli CUSUM.

    Parameters: ``window`` examples train each reference (a naive Bayes model, frozen into a
    table: `models.frozen_nb`); ``calibrate`` examples
    after that estimate its error rate ``p0`` — one standard error above the sample mean, so
    that an unlucky calibration does not turn noise into alarms; ``threshold`` is the CUSUM's
    alarm level in nats (roughly ``exp(threshold)`` stationary examples between false alarms);
    the rise looked for is ``max(min_rise, rel_rise * p0)``.
    """

    def __init__(self, window: int = 1000, calibrate: int = 500, threshold: float = 12.0,
                 min_rise: float = 0.03, rel_rise: float = 0.3) -> None:
        for name, v in (("window", window), ("calibrate", calibrate)):
            if not isinstance(v, int) or isinstance(v, bool) or v < 50:
                raise ValueError(f"{name} must be a whole number of examples >= 50")
        for name, v in (("threshold", threshold), ("min_rise", min_rise),
                        ("rel_rise", rel_rise)):
            if not isinstance(v, (int, float)) or isinstance(v, bool) or not v > 0:
                raise ValueError(f"{name} must be a positive number")
        self.window = window
        self.calibrate = calibrate
        self.threshold = float(threshold)
        self.min_rise = float(min_rise)
        self.rel_rise = float(rel_rise)
        self.n_detections = 0
        self.n_references = 0
        self.evidence: dict[str, Any] = {}
        self.restart()

    def restart(self) -> None:
        """Train a new reference on the examples that come next (the concept of now)."""
        self.model = FrozenNaiveBayes()
        self.trained = 0
        self.seen = 0  # examples scored since the reference froze
        self.errors = 0
        self.s = 0.0  # CUSUM statistic
        self.s_start = 0  # examples scored when the CUSUM last left zero
        self.s_errors = 0  # errors since then
        self.p0 = self.p1 = float("nan")
        self.llr: tuple[float, float] | None = None
        self.n_references += 1

    @property
    def monitoring(self) -> bool:
        return self.llr is not None

    def update(self, x: dict[str, Any], y: Any) -> bool:
        """One labelled example; True when the reference's error rate has risen."""
        if self.trained < self.window:
            self.model.learn_one(x, y)
            self.trained += 1
            if self.trained == self.window:
                self.model.freeze()
            return False
        err = self.model.predict_one(x) != y
        self.seen += 1
        self.errors += err
        if self.llr is None or not self.seen & 63:
            if self.seen >= self.calibrate:
                self._set_rates()
            if self.llr is None:
                return False
        self.s += self.llr[err]
        if self.s <= 0.0:
            self.s, self.s_start, self.s_errors = 0.0, self.seen, 0
            return False
        self.s_errors += err
        if self.s < self.threshold:
            return False
        self._detected()
        return True

    def _set_rates(self) -> None:
        # the reference's error rate over every example it has scored outside the current
        # CUSUM run (a drift inside that run does not raise its own baseline), shrunk away
        # from 0 (a perfect reference would make one error infinitely surprising), then one
        # standard error up; refreshed every 64 examples, so a calibration that was lucky
        # does not keep turning noise into alarms
        if self.llr is None:  # the test starts now
            self.s_start, self.s_errors = self.seen, 0
        n, k = self.s_start, self.errors - self.s_errors
        p = min((k + 1) / (n + 2), 1.0)
        p0 = min(p + math.sqrt(p * (1 - p) / max(n, 1)), 0.9)
        p1 = min(p0 + max(self.min_rise, self.rel_rise * p0), 0.99)
        self.p0, self.p1 = p0, p1
        self.llr = (math.log((1 - p1) / (1 - p0)), math.log(p1 / p0))

    def _detected(self) -> None:
        after = max(self.seen - self.s_start, 1)
        before = max(self.s_start, 1)
        self.evidence = {
            "reference_error_before": round((self.errors - self.s_errors) / before, 4),
            "reference_error_after": round(self.s_errors / after, 4),
            "window_before": before, "window_after": after,
            "reference_trained_on": self.trained,
        }
        self.n_detections += 1
        self.restart()

    def summary(self) -> dict[str, Any]:
        phase = ("testing" if self.monitoring else
                 "calibrating" if self.trained >= self.window else "training")
        return {"phase": phase, "error_rate": None if math.isnan(self.p0) else round(self.p0, 4),
                "detections": self.n_detections, "references_trained": self.n_references}
