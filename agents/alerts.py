"""Drift detectors for a model host, and the evidence an alert carries.

Kept out of the per-record path: the host feeds a detector one 0/1 error per learned example
and writes it into a small ring; everything here runs only when a detector fires.

An alert says what happened:

* ``kind``: ``"concept"`` (the error rate moved; needs labels) or ``"data"`` (the inputs or
  the predictions moved; needs no label);
* ``direction``: ``"degradation"`` or ``"improvement"`` (concept), ``"shift"`` (data);
* the error rate in the windows before and after the estimated change point, with their
  sizes — the split that best separates the two (a CUSUM estimate over the errors since the
  previous detection), so every detector's alert reads the same way;
* ``severity``: ``"low"`` / ``"medium"`` / ``"high"`` from the size of the move.
"""

from __future__ import annotations

from statistics import NormalDist
from typing import Any

import numpy as np
from river import drift

from models.data_drift import PREDICTION, DataDriftDetector
from models.reference_drift import ReferenceDriftDetector

#: label-based detectors offered in `[models.X] drift_detector`, and what `drift_delta` sets
DETECTORS: dict[str, str] = {
    "adwin": "ADWIN: drift_delta is its confidence delta",
    "page_hinkley": "Page-Hinkley (threshold 25): drift_delta is not used; set "
                    "drift_params.threshold",
    "kswin": "KSWIN: drift_delta is the KS test's alpha",
    "ddm": "DDM: drift_delta sets drift_threshold to the normal quantile z(1 - drift_delta)",
    "eddm": "EDDM: drift_delta is not used; set drift_params.alpha / beta",
    "hddm_a": "HDDM_A: drift_delta is its drift_confidence",
    "hddm_w": "HDDM_W: drift_delta is its drift_confidence",
    "adwin+page_hinkley": "both on the same errors, a drift when either fires: drift_delta is "
                          "ADWIN's delta, drift_params go to Page-Hinkley",
    "none": "no river detector on the model's own errors (the default: the frozen reference "
            "of `reference_drift` watches the concept)",
}
#: detectors with no confidence parameter that `drift_delta` could map to
NO_DELTA = {"page_hinkley", "eddm"}
#: this service's defaults where they differ from river's: Page-Hinkley's threshold 25
#: (river: 50) was chosen by `bench/alerts.py` on its tune streams (docs/bench-alerts.md)
SERVICE_DEFAULTS: dict[str, dict[str, Any]] = {"page_hinkley": {"threshold": 25.0},
                                               "adwin+page_hinkley": {"threshold": 25.0}}
#: the river detector of a model that names none: none, the frozen reference
#: (`reference_drift`) alone was chosen by `bench/alerts.py` (docs/bench-alerts.md)
DEFAULT_DETECTOR = "none"
#: recent errors kept for the evidence of an alert (a power of two): the reference's windows
#: reach ~10k examples, and with 4096 the live model's rates were missing from such alerts
RING = 16384


class Either:
    """Two detectors on one error stream; a drift when either fires.

    Why: they miss different things. ADWIN compares windows, so it sees a short, strong burst
    of errors (a model that recovers within a few dozen examples) against a long quiet past;
    Page-Hinkley accumulates small excesses, so it sees a modest rise that lasts.
    """

    def __init__(self, first: Any, second: Any) -> None:
        self.first = first
        self.second = second
        self.drift_detected = False

    def update(self, x: float) -> None:
        a, b = self.first, self.second
        a.update(x)
        b.update(x)
        self.drift_detected = a.drift_detected or b.drift_detected


def build_detector(name: str, delta: float, params: dict[str, Any] | None = None) -> Any:
    """A fresh river detector; ``params`` (the model's `drift_params`) override the mapping."""
    p = {**SERVICE_DEFAULTS.get(name, {}), **(params or {})}
    if name == "adwin":
        p.setdefault("delta", delta)
        return drift.ADWIN(**p)
    if name == "page_hinkley":
        return drift.PageHinkley(**p)
    if name == "adwin+page_hinkley":
        return Either(drift.ADWIN(delta=delta), drift.PageHinkley(**p))
    if name == "kswin":
        p.setdefault("alpha", delta)
        p.setdefault("seed", 42)
        return drift.KSWIN(**p)
    if name == "ddm":
        p.setdefault("drift_threshold", NormalDist().inv_cdf(1.0 - delta))
        return drift.binary.DDM(**p)
    if name == "eddm":
        return drift.binary.EDDM(**p)
    if name == "hddm_a":
        p.setdefault("drift_confidence", delta)
        return drift.binary.HDDMA(**p)
    if name == "hddm_w":
        p.setdefault("drift_confidence", delta)
        return drift.binary.HDDMW(**p)
    return None


def build_data_detector(spec: Any) -> DataDriftDetector | None:
    """The label-free detector of a model (``[models.X] data_drift = false`` turns it off)."""
    if not getattr(spec, "data_drift", True):
        return None
    return DataDriftDetector(**dict(getattr(spec, "data_drift_params", None) or {}))


def build_reference_detector(spec: Any) -> ReferenceDriftDetector | None:
    """The frozen-reference detector of a model (``reference_drift = false`` turns it off)."""
    if not getattr(spec, "reference_drift", True):
        return None
    return ReferenceDriftDetector(**dict(getattr(spec, "reference_drift_params", None) or {}))


#: the frozen reference's kinds (`models/reference_drift.py`), in an alert's words
_KIND_WORDS = {"tree": "a small decision tree", "linear": "a logistic regression",
               "naive_bayes": "naive Bayes"}


def reference_evidence(det: ReferenceDriftDetector, ring: bytearray, n_err: int
                       ) -> dict[str, Any]:
    """What a reference detection says: the reference's error rose (the concept moved); the
    live model's own errors (``ring``) over the same windows tell whether it has adapted."""
    ev = det.evidence
    wb, wa = ev["window_before"], ev["window_after"]
    e = recent_errors(ring, n_err, wb + wa)
    live: dict[str, Any] = {}
    adapted = None  # unknown: the ring no longer holds the errors before the change
    if len(e) > wa:
        live = {"error_rate_before": round(float(e[:-wa].mean()), 4),
                "error_rate_after": round(float(e[-wa:].mean()), 4)}
        adapted = live["error_rate_after"] <= live["error_rate_before"] + 0.02
    kind = ev.get("reference_kind", "naive_bayes")  # older detectors: naive Bayes only
    return {
        **_rates(ev["reference_error_before"], ev["reference_error_after"], wb, wa),
        "direction": "degradation",
        "reference_kind": kind,
        "evidence_from": f"reference model ({_KIND_WORDS.get(kind, kind)} trained on "
                         f"{ev['reference_trained_on']} examples, then frozen)",
        "live_model": {k: live.get(k) for k in ("error_rate_before", "error_rate_after")},
        "learner_adapted": adapted,
    }


def recent_errors(ring: bytearray, n_err: int, n: int) -> np.ndarray:
    """The last ``n`` errors written to ``ring`` (``n_err`` written so far), oldest first."""
    n = min(n, n_err, len(ring))
    idx = np.arange(n_err - n, n_err) & (len(ring) - 1)
    return np.frombuffer(ring, dtype=np.uint8)[idx].astype(float)


def split_point(e: np.ndarray, min_side: int = 30) -> int:
    """Index that best splits ``e`` into two parts with different means (max |CUSUM|)."""
    n = len(e)
    if n < 2 * min_side:
        return n // 2
    s = np.cumsum(e - e.mean())[min_side - 1:n - min_side]
    return int(np.argmax(np.abs(s))) + min_side


def concept_severity(before: float, after: float) -> str:
    """How big a move in error rate is: absolute change, and relative to where it was."""
    d = abs(after - before)
    rel = d / max(min(before, after), 0.01)
    if d >= 0.15 or (d >= 0.05 and rel >= 1.0):
        return "high"
    if d >= 0.05:
        return "medium"
    return "low"


def concept_evidence(ring: bytearray, n_err: int, since_last: int) -> dict[str, Any]:
    """Direction, error rates and window sizes around the estimated change point."""
    e = recent_errors(ring, n_err, max(since_last, 200))
    k = split_point(e)
    before, after = e[:k], e[k:]
    rb = float(before.mean()) if len(before) else float("nan")
    ra = float(after.mean()) if len(after) else float("nan")
    return {"direction": "degradation" if ra > rb else "improvement",
            **_rates(rb, ra, len(before), len(after))}


def _rates(before: float, after: float, n_before: int, n_after: int) -> dict[str, Any]:
    """Error rates and accuracies in the windows before and after a change, and severity."""
    return {
        "severity": concept_severity(before, after),
        "error_rate_before": round(before, 4), "error_rate_after": round(after, 4),
        "accuracy_before": round(1 - before, 4), "accuracy_after": round(1 - after, 4),
        "window_before": n_before, "window_after": n_after,
    }


def data_evidence(det: DataDriftDetector, top: int = 5) -> dict[str, Any]:
    """The features (and whether the predictions) that moved, strongest first."""
    ev = det.evidence
    psi = max((v["psi"] for v in ev.values()), default=0.0)
    names = det.drifted_features
    return {
        "direction": "shift",
        "severity": "high" if psi >= 0.25 else "medium" if psi >= 0.1 else "low",
        "features": [f for f in names if f != PREDICTION],
        "predictions_moved": PREDICTION in ev,
        "max_psi": psi,
        "evidence": {f: ev[f] for f in names[:top]},
        "window_before": det.reference, "window_after": det.window,
    }


def match_drifts(positions: list[int], windows: list[tuple[int, int]], within: int = 2000
                 ) -> tuple[list[int | None], list[int]]:
    """Match alert positions to true drifts.

    An alert belongs to the latest drift that started at or before it and whose window
    ``(start, end)`` (abrupt: start = end) extended by ``within`` contains it; so one alert is
    never credited to two drifts. A drift is found by the first alert that belongs to it;
    returns each drift's delay from ``start`` (None: missed) and the positions that belong to
    no drift (false alarms).
    """
    first: dict[int, int] = {}
    false: list[int] = []
    for p in sorted(positions):
        owners = [k for k, (start, end) in enumerate(windows) if start <= p <= end + within]
        if not owners:
            false.append(p)
            continue
        k = max(owners, key=lambda k: windows[k][0])
        first.setdefault(k, p)
    delays = [first[k] - windows[k][0] if k in first else None for k in range(len(windows))]
    return delays, false


def moved(alert: dict[str, Any]) -> str:
    """What a data alert saw move, in words: feature names quoted, since names such as "5"
    (LED's segments, a CSV's numbered columns) would read as counts."""
    names = [f"'{f}'" for f in alert.get("features") or []]
    what = (f"feature{'s' if len(names) > 1 else ''} {', '.join(names)}" if names else "")
    if alert.get("predictions_moved"):
        what = f"{what} and the predictions' mix" if what else "the predictions' mix"
    return what or "no input feature"


def describe(alert: dict[str, Any]) -> str:
    """One line a person can read."""
    at = alert.get("position")
    if alert.get("kind") == "data":
        return (f"data drift at event {at} ({alert.get('severity')}): {moved(alert)} moved "
                f"(PSI up to {alert.get('max_psi')})")
    if alert.get("detector") == "reference":
        kind = _KIND_WORDS.get(alert.get("reference_kind"), "")
        own = alert.get("live_model") or {}
        adapted = alert.get("learner_adapted")
        live = ("the live model's errors from before are no longer kept" if adapted is None
                else "the live model has adapted already" if adapted
                else "the live model is affected")
        if own.get("error_rate_before") is not None and own.get("error_rate_after") is not None:
            live += f" (its error {own['error_rate_before']} → {own['error_rate_after']})"
        inputs = alert.get("inputs_moved")
        if inputs:
            live += (f"; the inputs moved too ({', '.join(inputs[:3])}): the reference errs "
                     f"more where it fitted the new inputs poorly even if the rule is the same")
        return (f"concept drift at example {at} ({alert.get('severity')}), seen by the frozen "
                f"reference model{f' ({kind})' if kind else ''}: the reference's error "
                f"{alert.get('error_rate_before')} over {alert.get('window_before')} → "
                f"{alert.get('error_rate_after')} over {alert.get('window_after')} examples; "
                f"{live}")
    return (f"concept drift at example {at}: {alert.get('direction')} "
            f"({alert.get('severity')}), error {alert.get('error_rate_before')} over "
            f"{alert.get('window_before')} → {alert.get('error_rate_after')} over "
            f"{alert.get('window_after')} examples")
