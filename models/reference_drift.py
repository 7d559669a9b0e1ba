"""Concept drift seen through a reference model that has stopped learning.

Why: a detector on the live model's own errors only sees a drift the model suffers from. A
learner that adapts quickly (DriftMoE resetting an expert after a label flip on an easy stream)
may make a few dozen extra mistakes and recover, which no detector can tell from noise — yet
the concept did change, and a user acting on the data wants to know. A small model trained on
a window of the current concept and then frozen keeps making the new concept's mistakes, so
its error rate rises and *stays* up: a one-sided Bernoulli CUSUM on that error stream finds
the change after a few hundred examples, whatever the live model does.

The reference is only as sensitive as it is good: a concept change shows as its error rising
above its noise, and a model that cannot express the concept hides the rise (naive Bayes on
Agrawal's interactions of age and salary erred at the majority rate before and after a change;
on SEA's linear boundary it erred along the boundary, a part of each rise lost). So several
kinds are trained on the same window — a small tree (`models.frozen_tree`), a linear model
(`models.frozen_linear`), naive Bayes (`models.frozen_nb`) — all score the next ``calibrate``
examples, and the one with the fewest errors is kept; only it is asked after that.

The test adapts to the data: the reference's error rate ``p0`` is estimated on the examples it
has not learned from, and the CUSUM looks for a rise to ``p0 + max(min_rise, rel_rise * p0)``
(a rise relative to where the error is, with a floor). An alarm also needs the run the CUSUM
has been in to show a higher error rate than the examples before it by a two-sample
likelihood ratio of ``confirm`` nats: ``p0`` comes from as few as 500 examples, and after a
lucky calibration the CUSUM would climb on noise. After a detection, or when the caller
reports a drift found another way (`restart`), a new reference is trained on the next window.

A re-armed reference is checked against a later one. A detection inside a gradual window
re-arms the reference while the old concept is still mixed in: trained on that mixture, it
makes more mistakes on the new concept than a model of it would, and calibrated while the
mixture was still moving, its baseline is too high to see the next drift. So after a re-arm (a detection,
or `restart` from the caller), a candidate of the kept kind is trained on the window that follows the
reference's calibration and both are scored on the same next ``calibrate`` examples: when the
candidate's error is lower by more than ``rearm_margin`` (a half) of the rise the CUSUM looks
for (a one-sided test on the examples only one of the two gets wrong, at ``rearm_z`` standard
errors), the transition was still under way and the candidate replaces the reference (no alert: the drift
was reported already), and is checked in turn, until a candidate no longer wins (the new
concept has settled). Only after a re-arm: candidates trained all the time would absorb a slow
drift instead of reporting it. The first reference is not checked (nothing was detected before
it).

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

from models.frozen_linear import FrozenLinear
from models.frozen_nb import FrozenNaiveBayes
from models.frozen_tree import FrozenTree

#: reference model kinds (`models`), in the order a tie in calibration errors is settled
KINDS: dict[str, Any] = {"tree": FrozenTree, "linear": FrozenLinear,
                         "naive_bayes": FrozenNaiveBayes}


class _Trial:
    """The reference kinds trained side by side on one window, then scored side by side on
    the calibration examples; the detector keeps the one with the fewest errors. The kinds
    that only store their window (tree, linear) share one list."""

    __slots__ = ("models", "errors", "learners", "xs", "ys")

    def __init__(self, kinds: tuple[str, ...]) -> None:
        self.models = [KINDS[k]() for k in kinds]
        self.errors = [0] * len(self.models)
        self.xs: list[dict[str, Any]] = []
        self.ys: list[Any] = []
        self.learners = []
        for m in self.models:
            if isinstance(m, (FrozenTree, FrozenLinear)):
                m.xs, m.ys = self.xs, self.ys
            else:
                self.learners.append(m)

    def learn_one(self, x: dict[str, Any], y: Any) -> None:
        self.xs.append(x)
        self.ys.append(y)
        for m in self.learners:
            m.learn_one(x, y)

    def freeze(self) -> None:
        for m in self.models:
            m.freeze()

    def score(self, x: dict[str, Any], y: Any) -> None:
        errors = self.errors
        for i, m in enumerate(self.models):
            errors[i] += m.predict_one(x) != y

    def best(self) -> tuple[Any, int]:
        i = min(range(len(self.models)), key=self.errors.__getitem__)  # first of equals
        return self.models[i], self.errors[i]

    def predict_one(self, x: dict[str, Any]) -> Any:  # for inspection only
        return self.models[0].predict_one(x)


class ReferenceDriftDetector:
    """A frozen reference model's error stream under a one-sided Bernoulli CUSUM.

    Parameters: ``window`` examples train each reference (each kind in ``models``: a
    small tree, `models.frozen_tree`; a linear model, `models.frozen_linear`; naive Bayes,
    `models.frozen_nb` — all frozen); ``calibrate`` examples after that score them, and the
    one with the fewest errors is kept (a tie goes to the first named) and estimates its error
    rate ``p0`` — one standard error above the sample mean, so
    that an unlucky calibration does not turn noise into alarms; ``threshold`` is the CUSUM's
    alarm level in nats (roughly ``exp(threshold)`` stationary examples between false alarms);
    the rise looked for is ``max(min_rise, rel_rise * p0)``; a CUSUM over the threshold raises
    the alarm once the examples since it last left zero have a higher error rate than those
    before by a two-sample likelihood ratio of ``confirm`` nats (0: no such check);
    ``rearm_check`` turns the check
    of a re-armed reference against a later candidate on or off; the candidate replaces it
    when its error is lower by more than ``rearm_margin`` times that rise, ``rearm_z``
    standard errors clear (all chosen on the tune streams of `bench.alerts`).
    """

    def __init__(self, window: int = 1000, calibrate: int = 500, threshold: float = 12.0,
                 min_rise: float = 0.03, rel_rise: float = 0.3, rearm_check: bool = True,
                 rearm_z: float = 1.5, rearm_margin: float = 0.5,
                 models: tuple[str, ...] | list[str] = ("tree", "linear", "naive_bayes"),
                 confirm: float = 6.0) -> None:
        for name, v in (("window", window), ("calibrate", calibrate)):
            if not isinstance(v, int) or isinstance(v, bool) or v < 50:
                raise ValueError(f"{name} must be a whole number of examples >= 50")
        if not isinstance(rearm_check, bool):
            raise ValueError("rearm_check must be true or false")
        for name, v in (("rearm_margin", rearm_margin), ("confirm", confirm)):
            if not isinstance(v, (int, float)) or isinstance(v, bool) or not v >= 0:
                raise ValueError(f"{name} must be a number >= 0")
        for name, v in (("threshold", threshold), ("min_rise", min_rise),
                        ("rel_rise", rel_rise), ("rearm_z", rearm_z)):
            if not isinstance(v, (int, float)) or isinstance(v, bool) or not v > 0:
                raise ValueError(f"{name} must be a positive number")
        if (isinstance(models, str) or not isinstance(models, (list, tuple)) or not models
                or any(m not in KINDS for m in models) or len(set(models)) != len(models)):
            raise ValueError(f"models must name one or more of {', '.join(KINDS)}")
        self.window = window
        self.calibrate = calibrate
        self.threshold = float(threshold)
        self.min_rise = float(min_rise)
        self.rel_rise = float(rel_rise)
        self.rearm_check = rearm_check
        self.rearm_z = float(rearm_z)
        self.rearm_margin = float(rearm_margin)
        self.models = tuple(models)
        self.confirm = float(confirm)
        self.n_detections = 0
        self.n_references = 0
        self.n_replaced = 0  # re-armed references a later candidate replaced
        self.kept: dict[str, int] = {}  # reference kind -> times it was kept
        self.evidence: dict[str, Any] = {}
        self._new_reference(checked=False)

    def __setstate__(self, state: dict[str, Any]) -> None:
        # a detector pickled before the reference kinds and the confirmation existed: a
        # naive-Bayes reference, no confirmation (as it ran)
        state.setdefault("models", ("naive_bayes",))
        state.setdefault("confirm", 0.0)
        state.setdefault("kept", {})
        self.__dict__.update(state)

    def restart(self) -> None:
        """Train a new reference on the examples that come next (the concept of now); it is
        checked against a candidate trained after it (see the module's doc)."""
        self._new_reference(checked=self.rearm_check)

    def _new_reference(self, checked: bool) -> None:
        self._reset_check("pending" if checked else "off")
        kinds = self.models
        self._fresh(_Trial(kinds) if len(kinds) > 1 else KINDS[kinds[0]](), trained=0)

    def _reset_check(self, state: str) -> None:
        self.candidate: Any = None
        self.check = state  # pending → training → comparing → off
        self.cand_trained = 0
        self.cand_scored = 0
        self.only_ref_wrong = self.only_cand_wrong = 0

    def _fresh(self, model: Any, trained: int) -> None:
        self.model = model
        self.trained = trained
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

    @property
    def kind(self) -> str | None:
        """The kind of the reference in use (None while several are on trial)."""
        m = self.model
        if isinstance(m, _Trial):
            return None
        return next((k for k, c in KINDS.items() if type(m) is c), None)

    def update(self, x: dict[str, Any], y: Any) -> bool:
        """One labelled example; True when the reference's error rate has risen."""
        if self.llr is None or self.check != "off":
            return self._update(x, y)
        # testing, no check under way (nearly every example): `_update`, with fewer steps
        err = self.model.predict_one(x) != y
        seen = self.seen = self.seen + 1
        self.errors += err
        if not seen & 63:
            self._set_rates()
        return self._cusum(err)

    def _update(self, x: dict[str, Any], y: Any) -> bool:
        if self.trained < self.window:
            self.model.learn_one(x, y)
            self.trained += 1
            if self.trained == self.window:
                self.model.freeze()
            return False
        model = self.model
        if type(model) is _Trial:
            model.score(x, y)
            self.seen += 1
            if self.seen >= self.calibrate:  # keep the best; its errors calibrate the test
                self.model, self.errors = model.best()
                kind = self.kind or "?"
                self.kept[kind] = self.kept.get(kind, 0) + 1
            return False
        err = model.predict_one(x) != y
        self.seen += 1
        self.errors += err
        if self.check != "off" and self.seen > self.calibrate and self._checked(x, y, err):
            return False
        if self.llr is None or not self.seen & 63:
            if self.seen >= self.calibrate:
                self._set_rates()
            if self.llr is None:
                return False
        return self._cusum(err)

    def _cusum(self, err: bool) -> bool:
        """One scored example into the CUSUM; True on a confirmed alarm (the reference is
        then re-armed)."""
        s = self.s + self.llr[err]
        if s <= 0.0:
            self.s, self.s_start, self.s_errors = 0.0, self.seen, 0
            return False
        self.s = s
        self.s_errors += err
        if s < self.threshold or not self._confirmed():
            return False
        self._detected()
        return True

    def _confirmed(self) -> bool:
        """Is the error rate since the CUSUM last left zero higher than before it by a
        two-sample likelihood ratio of at least ``confirm`` nats? The CUSUM measures the run
        against ``p0``, an estimate from the examples before it: after a lucky calibration
        (500 examples; one standard error is a third of the rise looked for) that estimate
        stays low, the whole later stream is one run, and the CUSUM climbs on noise; the
        two-sample test knows how few examples the estimate came from."""
        if self.confirm <= 0.0:
            return True
        n1, k1 = self.s_start, self.errors - self.s_errors
        n2, k2 = self.seen - self.s_start, self.s_errors
        if n1 <= 0 or k2 * n1 <= k1 * n2:
            return False
        p = (k1 + k2) / (n1 + n2)
        return n1 * _kl(k1 / n1, p) + n2 * _kl(k2 / n2, p) >= self.confirm

    def _checked(self, x: dict[str, Any], y: Any, err: bool) -> bool:
        """The check of a re-armed reference; True when a candidate replaced it."""
        if self.check == "pending":  # a candidate of the kind kept
            self.candidate, self.check = type(self.model)(), "training"
        cand = self.candidate
        assert cand is not None
        if self.check == "training":
            cand.learn_one(x, y)
            self.cand_trained += 1
            if self.cand_trained == self.window:
                cand.freeze()
                self.check = "comparing"
            return False
        cand_err = cand.predict_one(x) != y
        self.cand_scored += 1
        self.only_ref_wrong += err and not cand_err
        self.only_cand_wrong += cand_err and not err
        if self.cand_scored < self.calibrate:
            return False
        # a one-sided test, once, at the end: is the candidate's error lower by more than
        # `rearm_margin` of the rise the CUSUM looks for? Two models of one concept trained on different samples
        # are never exactly as good as each other (the examples only one of them gets wrong
        # lie where their boundaries differ, nearly all on one side), so "significantly
        # better" alone would replace references on stationary data too; a reference worse
        # than a model of now by a good part of the rise is too blunt for that rise
        d = self.only_ref_wrong - self.only_cand_wrong
        m = self.only_ref_wrong + self.only_cand_wrong
        margin = self.rearm_margin * (self.p1 - self.p0) * self.cand_scored
        if m and d > margin + self.rearm_z * math.sqrt(m):
            self.n_replaced += 1
            self._reset_check("pending")  # the candidate is checked in turn
            self._fresh(cand, trained=self.window)
            return True
        self.check, self.candidate = "off", None
        return False

    def _set_rates(self) -> None:
        # the reference's error rate over the examples it has scored outside the current
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
            "reference_trained_on": self.trained, "reference_kind": self.kind,
        }
        self.n_detections += 1
        self.restart()

    def summary(self) -> dict[str, Any]:
        phase = ("testing" if self.monitoring else
                 "calibrating" if self.trained >= self.window else "training")
        return {"phase": phase, "error_rate": None if math.isnan(self.p0) else round(self.p0, 4),
                "detections": self.n_detections, "references_trained": self.n_references,
                "references_replaced": self.n_replaced, "reference_kind": self.kind,
                "kinds_kept": dict(self.kept)}


def _kl(a: float, b: float) -> float:
    """Kullback-Leibler divergence of Bernoulli(a) from Bernoulli(b), 0 < b < 1."""
    out = 0.0
    if a > 0.0:
        out += a * math.log(a / b)
    if a < 1.0:
        out += (1.0 - a) * math.log((1.0 - a) / (1.0 - b))
    return out
