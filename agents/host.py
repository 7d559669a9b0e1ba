"""Hosting of one model shard: predict, join delayed labels, learn, evaluate, detect drift.

Kafka-free on purpose: the worker's pipeline and the embedded demo run exactly this code, and a
whole `PartitionState` pickles into one checkpoint.
"""

from __future__ import annotations

import math
import time
import zlib
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any

from agents.alerts import (
    RING,
    build_data_detector,
    build_detector,
    build_reference_detector,
    concept_evidence,
    data_evidence,
    reference_evidence,
)
from agents.messages import BadRecord, EventIn, LabelIn, dead_letter
from models.data_drift import PREDICTION
from models.metrics import PrequentialMetrics

#: What a host returns: (output role, key, JSON-able value). Roles name topics in the config.
Out = tuple[str, str | None, dict[str, Any]]


@dataclass
class HostLimits:
    pending_max: int = 100_000
    pending_ttl: float = 7 * 24 * 3600.0
    orphan_max: int = 10_000
    orphan_ttl: float = 60.0
    rolling_window: int = 1000


def routing_key(model: str, shards: int, record_id: str) -> str:
    """Which shard of a model owns a record: stable across processes (crc32, not `hash`)."""
    if shards <= 1:
        return model
    return f"{model}#{zlib.crc32(record_id.encode()) % shards}"


def make_detector(name: str, delta: float, params: dict[str, Any] | None = None) -> Any:
    """The label-based drift detector `name` (see `agents.alerts.DETECTORS`), or None."""
    return build_detector(name, delta, params)


def check_label_type(host: Any, y: Any) -> None:
    """One model, one label type, fixed by its first label: river's learners break for good
    on mixed types (and True would silently merge with class 1)."""
    kind = type(y).__name__
    first = getattr(host, "label_type", None)
    if first is None:
        host.label_type = kind
    elif kind != first:
        # the words before ':' are the reason's class in the counts: no value in them
        raise BadRecord(
            f"model {host.name!r} learns {_LABEL_WORDS.get(first, (first, first))[1]}, not "
            f"{_LABEL_WORDS.get(kind, (kind, kind))[1]}: label {y!r} (a model learns the type "
            "of its first label); send labels of that type, or use another model")


#: label type -> (one of it, several of it), for messages
_LABEL_WORDS = {"int": ("an integer", "integers"), "bool": ("a boolean", "booleans (true/false)"),
                "str": ("text", "text labels")}


def json_label(y: Any) -> Any:
    if isinstance(y, bool | int | str) or y is None:
        return y
    if hasattr(y, "item"):  # numpy scalar
        return y.item()
    return str(y)


def _finite_or_none(v: float) -> float | None:
    return round(v, 6) if math.isfinite(v) else None


def metrics_status(m: PrequentialMetrics) -> dict[str, Any]:
    """Prequential metrics as shown in model-status (None until something was evaluated)."""
    if not m.n:
        return {"examples_evaluated": 0, "correct": 0, "accuracy": None,
                "rolling_accuracy": None, "kappa_m": None, "kappa_t": None}
    return {"examples_evaluated": m.n, "correct": m.correct,
            "accuracy": round(m.accuracy, 6), "rolling_accuracy": round(m.rolling.get(), 6),
            "kappa_m": _finite_or_none(m.kappa_m), "kappa_t": _finite_or_none(m.kappa_t)}


def model_inspect(model: Any) -> dict[str, Any]:
    """The learner's own `inspect()` (or tree sizes for river trees); never raises."""
    try:
        if hasattr(model, "inspect"):
            return model.inspect()
        if hasattr(model, "n_nodes"):
            return {"n_nodes": model.n_nodes, "n_leaves": model.n_leaves, "height": model.height}
        if hasattr(model, "models"):  # river ensembles
            return {"n_models": len(model.models)}
    except Exception as exc:  # noqa: BLE001 - inspection must never break status
        return {"error": repr(exc)}
    return {}


@dataclass
class _Pending:
    x: dict[str, Any]
    y_pred: Any
    at: float


class ClassifierHost:
    """One shard of a classification model fed by `events` and `labels`.

    Policy for delayed labels (documented in the README):
    * an event without `y` waits in a bounded FIFO (`pending_max`, `pending_ttl`) for its
      label; when evicted it is counted as `labels_missing` and forgotten;
    * a label for an id that is waiting trains the model on the features seen at prediction
      time, exactly once; a second label for the same id is counted as `labels_duplicate`;
    * a label for an id not (yet) seen waits `orphan_ttl` seconds in case its event is late;
      when that runs out it goes to `dead-letters` (reason: unknown id).
    """

    def __init__(self, spec: Any, shard: str, limits: HostLimits) -> None:
        self.name = spec.name
        self.kind = spec.kind
        self.shard = shard
        self.params = dict(spec.params)
        self.model = spec.build()
        self.limits = limits
        self.detector_name = spec.drift_detector
        self.detector = make_detector(spec.drift_detector, spec.drift_delta,
                                      getattr(spec, "drift_params", None))
        self.detector_config = (spec.drift_delta, dict(getattr(spec, "drift_params", {}) or {}))
        self.alert_cooldown = spec.alert_cooldown
        self.alert_on = getattr(spec, "alert_on", "degradation")
        self.data_detector = build_data_detector(spec)
        self.reference = build_reference_detector(spec)
        self.label_type: str | None = None
        self.seen = 0
        self.learned = 0
        self.metrics = PrequentialMetrics(limits.rolling_window)
        self.pending: OrderedDict[str, _Pending] = OrderedDict()
        self.done_ids: OrderedDict[str, None] = OrderedDict()
        self.orphans: OrderedDict[str, tuple[LabelIn, float, dict[str, Any]]] = OrderedDict()
        self.counters = {"labels_missing": 0, "labels_duplicate": 0, "labels_unknown": 0,
                         "labels_joined": 0, "alerts": 0, "alerts_suppressed": 0}
        self.alerts: deque[dict[str, Any]] = deque(maxlen=20)
        self._alert_fields()

    def _alert_fields(self) -> None:
        """Drift bookkeeping (also filled in for snapshots taken before it existed)."""
        self.__dict__.setdefault("alert_on", "degradation")
        self.__dict__.setdefault("data_detector", None)
        self.__dict__.setdefault("reference", None)
        for k in ("improvements", "data_alerts", "data_alerts_suppressed", "reference_errors",
                  "data_alerts_model_learning"):
            self.counters.setdefault(k, 0)
        # learned examples when the data detector began its reference; the last input move
        self._data_ref_learned = self.__dict__.get("_data_ref_learned", self.learned)
        self._inputs_moved: tuple[int, list[str]] = self.__dict__.get("_inputs_moved",
                                                                      (0, []))
        self.last_improvement: dict[str, Any] | None = self.__dict__.get("last_improvement")
        self._last_alert_at = self.__dict__.get("_last_alert_at", -(10**12))
        self._last_fired = self.__dict__.get("_last_fired", 0)  # any detection, published or not
        self._last_data_alert_at = self.__dict__.get("_last_data_alert_at", -(10**12))
        self._last_resets = self.__dict__.get("_last_resets", 0)
        self._ring = self.__dict__.get("_ring") or bytearray(RING)  # last errors, evidence only
        self._n_err = self.__dict__.get("_n_err", 0)
        if len(self._ring) < RING:  # a snapshot from before the longer ring: same errors
            old, n = self._ring, self._n_err
            self._ring = bytearray(RING)
            for i in range(max(0, n - len(old)), n):
                self._ring[i & (RING - 1)] = old[i & (len(old) - 1)]
        self._label_text: dict[Any, str] = self.__dict__.get("_label_text") or {}  # class -> str
        self._resets_now: int | None = None  # the learner's expert resets at the event in hand

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._alert_fields()

    # -- the record paths -------------------------------------------------------------------
    def handle(self, kind: str, msg: Any, now: float, src: dict[str, Any]) -> list[Out]:
        if kind == "event":
            return self.on_event(msg, now)
        return self.on_label(msg, now, src)

    def _check_label(self, y: Any) -> None:
        check_label_type(self, y)

    def _check_features(self, x: dict[str, Any]) -> None:
        """One feature, one kind (number or text), fixed by its first value: river's trees
        compare a feature's values with each other, and one number among texts (or the
        reverse) breaks the model for every later record."""
        kinds = self.__dict__.get("feature_text")
        if kinds is None:
            kinds = self.feature_text = {}
        new = None
        for k, v in x.items():
            text = type(v) is str
            was = kinds.get(k)
            if was is None:
                new = new or {}
                new[k] = text
            elif was is not text:
                raise BadRecord(
                    f"model {self.name!r} learns feature {k!r} as {'text' if was else 'a number'}"
                    f", not {'text' if text else 'a number'}: got {v!r:.40} (a model learns the "
                    f"kind of a feature's first value); send {'text' if was else 'numbers'} "
                    "there, or give the feature another name")
        if new:
            kinds.update(new)

    def on_event(self, ev: EventIn, now: float) -> list[Out]:
        """One event (`run_labelled` does the same for a run of labelled events)."""
        if ev.y is not None and type(ev.y).__name__ != self.label_type:
            self._check_label(ev.y)
        self._check_features(ev.x)
        self.seen += 1
        y_pred, proba, expert = self._predict(ev.x)
        out: list[Out] = [("predictions", ev.id, self._prediction(ev, now, y_pred, proba,
                                                                   expert))]
        if self.data_detector is not None and self.data_detector.update(ev.x, y_pred):
            out += self._data_alert(now)
        if ev.y is not None and ev.id in self.done_ids:
            self.counters["labels_duplicate"] += 1  # the same labelled event sent twice
        elif ev.y is not None:
            out += self._learn(ev.x, ev.y, y_pred, now)
            self._remember_done(ev.id)
        elif ev.id in self.orphans:
            label, _, _ = self.orphans.pop(ev.id)
            out += self._learn(ev.x, label.y, y_pred, now)
            self.counters["labels_joined"] += 1
            self._remember_done(ev.id)
        elif ev.id in self.done_ids:
            pass  # replayed event whose label was already learned: never learn twice
        else:
            self.pending[ev.id] = _Pending(ev.x, y_pred, now)
            self.pending.move_to_end(ev.id)
        out += self._expire(now)  # labels that waited in vain: dead letters
        return out

    def handle_many(self, recs: list[tuple[str, Any, float, dict[str, Any]]]
                    ) -> list[list[Out] | Exception]:
        """`handle` for records of this shard in order (a pack of the records topic): what
        each one gives, or the exception it raised. Runs of events that carry their label go
        through `run_labelled` together."""
        results: list[list[Out] | Exception] = []
        run: list[tuple[Any, float]] = []
        ids: set[str] = set()
        done = self.done_ids
        for kind, msg, now, src in recs:
            try:
                labelled = kind == "event" and msg.y is not None and msg.id not in done \
                    and msg.id not in ids
            except Exception:  # noqa: BLE001 - malformed: the one-at-a-time path says why
                labelled = False
            if labelled:
                run.append((msg, now))
                ids.add(msg.id)
                continue
            if run:
                results += self.run_labelled(run)
                run, ids = [], set()
            try:
                results.append(self.handle(kind, msg, now, src))
            except Exception as exc:  # noqa: BLE001 - reported per record by the caller
                results.append(exc)
        if run:
            results += self.run_labelled(run)
        return results

    def run_labelled(self, evs: list[tuple[Any, float]]) -> list[list[Out] | Exception]:
        """Test-then-train for events that carry their label (none learned before), in three
        passes over the run: the checks; the learner alone (predict, learn, for each event in
        order); then each event's prediction message, metrics and drift detectors, in order,
        with the counts each had at its turn. The same outputs as `on_event` one event at a
        time (a test checks it).

        Why passes: measured in the worker, the host's own work between the learner's calls
        slowed those calls by ~3 µs per event (a Hoeffding tree: 15 vs 12 µs; the caches hold
        the host's data instead of the tree's), and the detectors ran 2-3x slower than alone.
        """
        results: list[list[Out] | Exception] = [[] for _ in evs]
        ok: list[int] = []
        for i, (ev, _) in enumerate(evs):  # 1: checks that refuse a record before learning
            try:
                if type(ev.y).__name__ != self.label_type:
                    self._check_label(ev.y)
                self._check_features(ev.x)
            except Exception as exc:  # noqa: BLE001 - BadRecord, or a malformed record
                results[i] = exc
                continue
            ok.append(i)
        m = self.model
        expert_of = hasattr(m, "last_expert")
        resets_of = hasattr(m, "n_resets")
        learned: list[tuple] = []
        remember = self._remember_done
        for i in ok:  # 2: the learner, test then train, event after event
            ev = evs[i][0]
            self.seen += 1
            before = self.learned
            try:
                proba = m.predict_proba_one(ev.x)
                expert = m.last_expert if expert_of else None
                m.learn_one(ev.x, ev.y)
            except Exception as exc:  # noqa: BLE001 - refused (or failed): its dead letter
                results[i] = exc
                continue
            self.learned = before + 1
            remember(ev.id)
            learned.append((i, proba, expert, self.seen, before,
                            m.n_resets if resets_of else None))
        seen, total = self.seen, self.learned
        try:
            for i, proba, expert, seen_i, before, resets in learned:  # 3: in order, as then
                ev, now = evs[i]
                self.seen, self.learned, self._resets_now = seen_i, before, resets
                try:
                    y_pred, pred = self._format(proba)
                    out: list[Out] = [("predictions", ev.id,
                                       self._prediction(ev, now, y_pred, pred, expert))]
                    if self.data_detector is not None and self.data_detector.update(ev.x,
                                                                                    y_pred):
                        out += self._data_alert(now)
                    self.learned = before + 1
                    out += self._learned(ev.x, ev.y, y_pred, now)
                    out += self._expire(now)
                except Exception as exc:  # noqa: BLE001 - reported per record by the caller
                    results[i] = exc
                    continue
                results[i] = out
        finally:
            self.seen, self.learned, self._resets_now = seen, total, None
        return results

    def on_label(self, lb: LabelIn, now: float, src: dict[str, Any]) -> list[Out]:
        self._check_label(lb.y)
        out: list[Out] = []
        p = self.pending.pop(lb.id, None)
        if p is not None:
            out += self._learn(p.x, lb.y, p.y_pred, now)
            self.counters["labels_joined"] += 1
            self._remember_done(lb.id)
        elif lb.id in self.done_ids:
            self.counters["labels_duplicate"] += 1
        else:
            self.orphans[lb.id] = (lb, now, src)
        out += self._expire(now)
        return out

    # -- internals --------------------------------------------------------------------------
    def _predict(self, x: dict[str, Any]) -> tuple[Any, dict[str, float], int | None]:
        """(most probable class, {class as text: probability to 6 decimals}, DriftMoE's
        answering expert)."""
        m = self.model
        proba = m.predict_proba_one(x)
        expert = getattr(m, "last_expert", None)
        y_pred, shown = self._format(proba)
        return y_pred, shown, None if expert is None else int(expert)

    def _format(self, proba: dict[Any, Any]) -> tuple[Any, dict[str, float]]:
        """The learner's probabilities as published: (most probable class, {class as text:
        probability to 6 decimals}); non-finite ones are left out. One pass, and no `round()`
        or `str()` per class: this runs for every event."""
        text = self._label_text
        y_pred, best, shown = None, -1.0, {}
        for k, v in proba.items():
            if v is None:
                continue
            v = float(v)
            if v - v != 0.0:  # inf or nan
                continue
            name = text.get(k)
            if name is None:
                name = text[k] = str(k)
            # a probability to 6 decimals as round(v, 6) gives it, for a third of its cost
            shown[name] = int(v * 1e6 + 0.5) / 1e6 if 0.0 <= v <= 1.0 else round(v, 6)
            if v > best:  # the first of equals, as max() would pick
                y_pred, best = k, v
        return y_pred, shown

    def _prediction(self, ev: Any, now: float, y_pred: Any, proba: dict[str, float],
                    expert: Any) -> dict[str, Any]:
        """The `predictions` message for one event."""
        pred = {
            "id": ev.id, "model": self.name, "y_pred": json_label(y_pred), "proba": proba,
            "ts": ev.ts if ev.ts is not None else now, "shard": self.shard,
            "examples_learned": self.learned,
        }
        if expert is not None:
            pred["expert"] = int(expert)
        return pred

    def _learn(self, x: dict[str, Any], y: Any, y_pred: Any, now: float) -> list[Out]:
        self.model.learn_one(x, y)
        self.learned += 1
        return self._learned(x, y, y_pred, now)

    def _learned(self, x: dict[str, Any], y: Any, y_pred: Any, now: float) -> list[Out]:
        """After the learner took (x, y): metrics, the error-based detector, the reference."""
        out: list[Out] = []
        if y_pred is not None:
            self.metrics.update(y, y_pred)
            out = self._check_drift(int(y_pred != y), now)
        ref = self.reference
        if ref is not None:
            try:
                fired = ref.update(x, y)
            except (ValueError, TypeError, ArithmeticError):
                # the live model learned this example; the detector's tree could not use it
                # (e.g. values near 1e300 overflow its Gaussians): never undo the record for
                # that, count it and let a new reference start
                self.counters["reference_errors"] += 1
                ref.restart()
                fired = False
            if fired:
                out += self._reference_alert(now)
        return out

    def _check_drift(self, error: int, now: float) -> list[Out]:
        """One 0/1 error into the evidence ring (every alert's, the reference's too) and the
        detector, if any; the rest only on a drift."""
        n = self._n_err
        self._ring[n & (RING - 1)] = error
        self._n_err = n + 1
        det = self.detector
        if det is None:
            return []
        det.update(error)
        if not det.drift_detected:
            return []
        return self._concept_alert(now)

    def _concept_head(self, detector: str, now: float, evidence: dict[str, Any]
                      ) -> dict[str, Any]:
        """A concept alert at the current position (which becomes the last detection)."""
        self._last_fired = position = self.learned
        return {
            "model": self.name, "shard": self.shard, "kind": "concept", "detector": detector,
            "position": position, "examples_seen": self.seen, "examples_learned": self.learned,
            "ts": now, **evidence, "rolling_accuracy": round(self.metrics.rolling.get(), 4),
            "examples_since_last_alert": position - max(self._last_alert_at, 0),
        }

    def _concept_alert(self, now: float) -> list[Out]:
        ev = concept_evidence(self._ring, self._n_err, self.learned - self._last_fired)
        alert = self._concept_head(self.detector_name, now, ev)
        if ev["direction"] == "improvement":
            self.counters["improvements"] += 1
            self.last_improvement = alert
            if self.alert_on != "both":
                return []
        elif self.reference is not None:  # a new concept: the reference must learn it afresh
            self.reference.restart()
        return self._publish_concept(alert)

    def _reference_alert(self, now: float) -> list[Out]:
        """The frozen reference's error rose: the concept moved, whether or not the live model
        has adapted already (the alert says which, from its own errors over the same span)."""
        ev = reference_evidence(self.reference, self._ring, self._n_err)
        at, names = self._inputs_moved
        age = self.reference.evidence["reference_trained_on"] + ev["window_before"] + ev[
            "window_after"]
        if names and self.learned - at <= age:
            # a covariate shift alone can raise a frozen model's errors (issue 11, an
            # independent check: 7 of 10 streams whose rule never changed): say so when the
            # inputs moved since the reference began learning (counting its training window
            # too: a later check, inputs sweeping slowly, found 57% of such alerts untagged
            # with the windows after its freeze alone)
            ev["inputs_moved"] = names
        return self._publish_concept(self._concept_head("reference", now, ev))

    def _publish_concept(self, alert: dict[str, Any]) -> list[Out]:
        """Publish a concept alert unless one was published less than `alert_cooldown`
        examples ago (then count it as suppressed)."""
        position = alert["position"]
        if position - self._last_alert_at < self.alert_cooldown:
            self.counters["alerts_suppressed"] += 1
            return []
        resets = self._resets_now  # DriftMoE replaces drifting experts: as at this example
        if resets is None:
            resets = getattr(self.model, "n_resets", None)
        if resets is not None:
            alert["learner"] = {"expert_resets_since_last_alert": resets - self._last_resets,
                                "expert_resets_total": resets}
            self._last_resets = resets
        self._last_alert_at = position
        self.counters["alerts"] += 1
        self.alerts.append(alert)
        return [("drift_alerts", self.name, alert)]

    def _data_alert(self, now: float) -> list[Out]:
        """Inputs or predictions moved (no label needed): publish, within the cooldown.

        Only the predictions moved, and the model has learned more examples since the
        detector took its reference than it had before: put down to the model's own learning
        (its early answers are no reference for a trained model's), not published, counted
        as ``data_alerts_model_learning``; the detector takes a new reference either way.
        Why (issue 11, an independent check): a Hoeffding tree's first 2000 answers made
        the reference, and 24 of 70 stationary streams raised a false alarm in their first
        14k events."""
        det = self.data_detector
        learned_then, self._data_ref_learned = self._data_ref_learned, self.learned
        inputs = [f for f in det.drifted_features if f != PREDICTION]
        if inputs:
            self._inputs_moved = (self.learned, inputs)  # the reference counts labelled ones
        elif self.learned > 2 * learned_then:
            self.counters["data_alerts_model_learning"] += 1
            return []
        if self.seen - self._last_data_alert_at < self.alert_cooldown:
            self.counters["data_alerts_suppressed"] += 1
            return []
        alert = {
            "model": self.name, "shard": self.shard, "kind": "data", "detector": "data_drift",
            "position": self.seen, "examples_seen": self.seen,
            "examples_learned": self.learned, "ts": now, **data_evidence(self.data_detector),
        }
        self._last_data_alert_at = self.seen
        self.counters["data_alerts"] += 1
        self.alerts.append(alert)
        return [("drift_alerts", self.name, alert)]

    def _remember_done(self, rid: str) -> None:
        self.done_ids[rid] = None
        while len(self.done_ids) > self.limits.pending_max:
            self.done_ids.popitem(last=False)

    def _expire(self, now: float) -> list[Out]:
        lim = self.limits
        while self.pending and (
            len(self.pending) > lim.pending_max
            or now - next(iter(self.pending.values())).at > lim.pending_ttl
        ):
            self.pending.popitem(last=False)
            self.counters["labels_missing"] += 1
        out: list[Out] = []
        while self.orphans and (
            len(self.orphans) > lim.orphan_max
            or now - next(iter(self.orphans.values()))[1] > lim.orphan_ttl
        ):
            rid, (label, _, src) = self.orphans.popitem(last=False)
            self.counters["labels_unknown"] += 1
            if src.get("copy"):
                continue  # a challenger's copy: its champion dead-letters the label
            raw = src.get("raw")  # the bytes as sent (text in snapshots of older workers)
            if isinstance(raw, str):
                raw = raw.encode("utf-8", "surrogatepass")
            out.append(("dead_letters", rid, dead_letter(
                src.get("topic", "labels"), src.get("partition", -1), src.get("offset", -1),
                f"label for an event id model {self.name!r} never saw: not within "
                f"orphan_ttl={lim.orphan_ttl}s, nor waiting (pending_ttl). A label goes to "
                "the model it names, or to 'default' if it names none: does it name the "
                f"model its event was sent to? Event id {rid!r}",
                raw if raw is not None else label.model_dump_json().encode())))
        return out

    def tick(self, now: float) -> list[Out]:
        """Time passes with no record (used by the status timer): expire what is due."""
        return self._expire(now)

    def status(self) -> dict[str, Any]:
        inspect = model_inspect(self.model)
        return {
            "model": self.name, "shard": self.shard, "kind": self.kind, "family": "classifier",
            "examples_seen": self.seen, "examples_learned": self.learned,
            **metrics_status(self.metrics),
            "pending_labels": len(self.pending), "waiting_orphan_labels": len(self.orphans),
            **self.counters, "recent_alerts": list(self.alerts), "inspect": inspect,
            "drift": {"detector": self.detector_name, "alert_on": self.alert_on,
                      "alert_cooldown": self.alert_cooldown,
                      "last_improvement": self.last_improvement,
                      "data_drift": None if self.data_detector is None
                      else self.data_detector.summary(),
                      "reference_drift": None if self.reference is None
                      else self.reference.summary()},
        }


@dataclass
class PartitionState:
    """Everything one worker holds for one partition of the records topic; one checkpoint."""

    partition: int
    offset: int = -1  # last records-topic offset whose effects this state includes
    hosts: dict[str, Any] = field(default_factory=dict)
    # highest source offset applied per (input topic, partition, shard) — (input topic,
    # partition) in snapshots of older workers: the ingest stage is at-least-once (a rebalance
    # can forward a record twice); this makes learning exactly-once
    src_high: dict[tuple, int] = field(default_factory=dict)
    duplicates: int = 0
    clock: float = 0.0  # label-join clock when snapshotted (the partition's StreamClock)
    version: int = 1
    dirty: int = 0
    saved_at: float = field(default_factory=time.time)
