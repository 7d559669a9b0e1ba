"""What the sidecar knows: model-shard statuses, worker heartbeats and drift alerts.

Fed either from Kafka (the compacted `model-status` topic and `drift-alerts`, read with
kafka-python in a background thread, so the sidecar works with any number of workers) or
directly by the embedded demo.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections import deque
from typing import Any

log = logging.getLogger("streamsvc.status")

#: history points kept per model, and per model a template made (there may be thousands)
HISTORY_KEPT = 600
HISTORY_KEPT_MADE = 50
_SUMMED = ("examples_seen", "examples_learned", "examples_evaluated", "correct",
           "pending_labels", "waiting_orphan_labels", "labels_missing", "labels_duplicate",
           "labels_unknown", "labels_joined", "alerts", "alerts_suppressed",
           "improvements", "data_alerts", "data_alerts_suppressed", "reference_errors")


class StatusView:
    """Thread-safe aggregate of everything the workers report."""

    def __init__(self, configured: dict[str, dict[str, Any]], alerts_kept: int = 1000,
                 stale_after: float = 30.0, worker_history_kept: int = 300) -> None:
        self.configured = configured  # name -> {"kind", "family", ...}
        self.shards: dict[str, dict[str, Any]] = {}
        self._by_model: dict[str, dict[str, dict[str, Any]]] = {}  # model -> its shards
        self.workers: dict[str, dict[str, Any]] = {}
        # per worker: the last points of (time, records/s in and out, total consumer lag)
        self.worker_history: dict[str, deque[dict[str, Any]]] = {}
        self.worker_history_kept = worker_history_kept
        self._derived_rates: dict[str, dict[str, float | None]] = {}
        self.alerts: deque[dict[str, Any]] = deque(maxlen=alerts_kept)
        self.history: dict[str, deque[dict[str, Any]]] = {}
        self.stale_after = stale_after
        self.kafka_ok = False
        self.kafka_error: str | None = "not connected yet"
        self.embedded = False
        self.started = time.time()
        self._lock = threading.Lock()

    # -- updates ------------------------------------------------------------------------
    def on_status(self, key: str, value: Any) -> None:
        if value is not None and not isinstance(value, dict):
            log.warning("ignoring model-status record %r: not a JSON object", key)
            return
        with self._lock:
            if key.startswith("worker:"):
                wid = key[7:]
                if value is None:
                    self.workers.pop(wid, None)
                    self.worker_history.pop(wid, None)
                    self._derived_rates.pop(wid, None)
                else:
                    self._worker_point(wid, self.workers.get(wid), value)
                    self.workers[wid] = value
                return
            if value is None:
                self._forget(key)
                return
            name = value.get("model", key.split("#", 1)[0])
            if not isinstance(name, str):  # anyone who can write the topic can send this
                log.warning("ignoring model-status record %r: its 'model' is not text", key)
                return
            self._forget(key)
            self.shards[key] = value
            self._by_model.setdefault(name, {})[key] = value
            # a template's models (there may be thousands) keep a shorter history
            kept = HISTORY_KEPT_MADE if value.get("template") else HISTORY_KEPT
            hist = self.history.setdefault(name, deque(maxlen=kept))
            point = {"t": value.get("updated", time.time()),
                     "shard": key,
                     "examples_learned": value.get("examples_learned"),
                     "rolling_accuracy": value.get("rolling_accuracy"),
                     "accuracy": value.get("accuracy")}
            if not hist or hist[-1]["examples_learned"] != point["examples_learned"] \
                    or hist[-1]["shard"] != key:
                hist.append(point)

    def _forget(self, key: str) -> None:
        """Drop the shard status under `key` (lock held)."""
        old = self.shards.pop(key, None)
        if old is not None:
            name = old.get("model", key.split("#", 1)[0])
            of_model = self._by_model.get(name, {})
            of_model.pop(key, None)
            if not of_model:
                self._by_model.pop(name, None)

    def _worker_point(self, wid: str, prev: dict[str, Any] | None, cur: dict[str, Any]
                      ) -> None:
        """Append one history point for a worker status (lock held)."""
        t = finite_or_none(cur.get("updated"))
        if t is None:
            return
        rates = worker_rates(cur)
        if rates["in_per_s"] is None and rates["out_per_s"] is None and prev is not None:
            # an older worker without `rates`: derive them from its counters
            rates = _rates_between(prev, cur)
            self._derived_rates[wid] = rates
        else:
            self._derived_rates.pop(wid, None)
        hist = self.worker_history.setdefault(wid, deque(maxlen=self.worker_history_kept))
        if hist and t <= hist[-1]["t"]:
            return  # a replayed or out-of-order status: the history only moves forward
        hist.append({"t": t, "in_per_s": rates["in_per_s"], "out_per_s": rates["out_per_s"],
                     "lag": worker_lag_total(cur)})

    def on_alert(self, alert: dict[str, Any]) -> None:
        with self._lock:
            self.alerts.append(alert)

    # -- queries ------------------------------------------------------------------------
    def model_names(self) -> list[str]:
        """Configured and reported models (a template is no model: the models it made are)."""
        with self._lock:
            return self._names()

    def _names(self) -> list[str]:
        """`model_names` (lock held)."""
        names = {n for n, c in self.configured.items() if not c.get("template")}
        names.update(self._by_model)
        return sorted(names)

    def model(self, name: str) -> dict[str, Any] | None:
        """One model's numbers summed over its shards; a champion's lists its challengers
        beside it, a challenger's says how far it is ahead of its champion."""
        with self._lock:
            out = self._model(name)
            if out is None:
                return None
            champion = out.get("challenger_of")
            if champion:
                other = self._model(champion)
                out["vs_champion"] = _lead(out, other) if other else None
            # the workers' word first: after a promotion the sidecar's own config may be
            # older than theirs
            named = {n for n, c in self.configured.items()
                     if c.get("challenger_of") == name and n not in self._by_model}
            named.update(n for n, shards in self._by_model.items()
                         if any(s.get("challenger_of") == name for s in shards.values()))
            challengers = [m for m in map(self._model, sorted(named)) if m is not None]
            if challengers:
                out["challengers"] = [
                    {**{k: c.get(k) for k in _COMPARED}, "vs_champion": _lead(c, out)}
                    for c in challengers]
            return out

    def models(self) -> list[dict[str, Any]]:
        """`model` of every model, the comparisons left out, in one pass over the alerts
        (thousands of models made by a template: not one pass each)."""
        with self._lock:
            alerts: dict[Any, list[dict[str, Any]]] = {}
            for a in self.alerts:
                alerts.setdefault(a.get("model"), []).append(a)
            return [m for m in (self._model(n, alerts.get(n, [])) for n in self._names()) if m]

    def _model(self, name: str, alerts: list[dict[str, Any]] | None = None
               ) -> dict[str, Any] | None:
        """`model` without the comparisons (lock held); `alerts`: the model's, if known."""
        shards = list(self._by_model.get(name, {}).values())
        conf = self.configured.get(name)
        if conf is not None and conf.get("template"):
            conf = None  # a template is no model; the models it made are
        if conf is None and not shards:
            return None
        out: dict[str, Any] = {"name": name, **(conf or {})}
        for k in _SUMMED:
            out[k] = sum(int(s.get(k) or 0) for s in shards)
        if shards:
            out["kind"] = shards[0].get("kind", out.get("kind"))
            out["family"] = shards[0].get("family", out.get("family"))
        ev = out["examples_evaluated"]
        out["accuracy"] = round(out["correct"] / ev, 6) if ev else None
        rolled = [(s["rolling_accuracy"], s.get("examples_evaluated") or 0)
                  for s in shards if s.get("rolling_accuracy") is not None]
        wsum = sum(w for _, w in rolled)
        out["rolling_accuracy"] = (
            round(sum(a * w for a, w in rolled) / wsum, 6) if wsum else None)
        if len(shards) == 1:  # κ statistics do not add up across shards
            out["kappa_m"] = shards[0].get("kappa_m")
            out["kappa_t"] = shards[0].get("kappa_t")
        out["updated"] = max((s.get("updated", 0) for s in shards), default=None)
        out["shards"] = [
            {k: s.get(k) for k in ("shard", "partition", "worker", "examples_learned",
                                   "accuracy", "rolling_accuracy", "updated")}
            for s in shards
        ]
        out["inspect"] = {s.get("shard", "?"): s.get("inspect", {}) for s in shards}
        truth = [s["true_drifts"] for s in shards if s.get("true_drifts")]
        if truth:  # the embedded demo's built-in stream: (start, end) of each true drift
            out["true_drifts"] = truth[0]
        extra = [s.get("extra") for s in shards if s.get("extra")]
        if extra:
            out["extra"] = extra
        for key in ("template", "challenger_of"):  # what the workers say, once they report
            said = [s[key] for s in shards if isinstance(s.get(key), str)]
            if said:
                out[key] = said[0]
            elif shards:
                out.pop(key, None)
        if any("refused" in s for s in shards):
            out["refused"] = sum(int(s.get("refused") or 0) for s in shards)
        if alerts is None:
            alerts = [a for a in self.alerts if a.get("model") == name]
        # the shards' own counters: not capped by this buffer, never decreasing; one name
        # for this number in the answer (the shards call it `alerts`)
        out["drift_alerts"] = max(out.pop("alerts"), len(alerts))
        out["recent_alerts"] = alerts[-20:]
        return out

    def model_history(self, name: str) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.history.get(name, []))

    def recent_alerts(self, model: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        with self._lock:
            alerts = [a for a in self.alerts if model is None or a.get("model") == model]
        return alerts[-limit:]

    def live_workers(self) -> list[dict[str, Any]]:
        now = time.time()
        with self._lock:
            return [dict(v, worker=k) for k, v in self.workers.items()
                    if now - _num(v.get("updated")) <= self.stale_after]

    def worker_summaries(self, history: int | None = None) -> list[dict[str, Any]]:
        """Every live worker's numbers, sanitised (see `summarize_worker`), sorted by id,
        each with its last `history` history points (all kept ones when None)."""
        out = []
        for w in sorted(self.live_workers(), key=lambda w: str(w["worker"])):
            wid = w["worker"]
            with self._lock:
                hist = list(self.worker_history.get(wid, ()))
                derived = self._derived_rates.get(wid)
            s = summarize_worker(w)
            if derived is not None and s["rates"]["in_per_s"] is None \
                    and s["rates"]["out_per_s"] is None:
                s["rates"] = dict(derived)
            if history is not None:
                hist = hist[-history:] if history > 0 else []
            s["history"] = hist
            out.append(s)
        return out

    def readiness(self) -> tuple[bool, list[str]]:
        if self.embedded:
            return True, []
        reasons = []
        if not self.kafka_ok:
            reasons.append(f"Kafka not reachable: {self.kafka_error}")
        if not self.live_workers():
            reasons.append(f"no worker has reported in the last {self.stale_after:.0f}s")
        return not reasons, reasons


class KafkaStatusFeed(threading.Thread):
    """Background reader of `model-status` (from the beginning: it is compacted) and
    `drift-alerts` (the most recent ones) into a `StatusView`."""

    def __init__(self, view: StatusView, bootstrap: str, status_topic: str, alerts_topic: str,
                 client_kwargs: dict[str, Any] | None = None) -> None:
        """`client_kwargs`: kafka-python security settings (`KafkaSecurity.kafka_python()`)."""
        super().__init__(name="streamsvc-status-feed", daemon=True)
        self.view = view
        self.bootstrap = bootstrap
        self.client_kwargs = dict(client_kwargs or {})
        self.topics = (status_topic, alerts_topic)
        self._stop = threading.Event()

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> None:
        while not self._stop.is_set():
            try:
                self._consume()
            except Exception as exc:  # noqa: BLE001 - report and retry, never die
                self.view.kafka_ok = False
                self.view.kafka_error = repr(exc)
                log.warning("status feed: %r; retrying in 2s", exc)
                self._stop.wait(2.0)

    def _consume(self) -> None:
        from kafka import KafkaConsumer, TopicPartition

        consumer = KafkaConsumer(bootstrap_servers=self.bootstrap, group_id=None,
                                 enable_auto_commit=False, request_timeout_ms=15000,
                                 **self.client_kwargs)
        try:
            status_topic, alerts_topic = self.topics
            assigned: set[TopicPartition] = set()
            checked = 0.0
            while not self._stop.is_set():
                if time.monotonic() - checked > 5.0:
                    consumer.topics()  # a metadata round trip: raises when Kafka is gone
                    checked = time.monotonic()
                    self.view.kafka_ok, self.view.kafka_error = True, None
                tps = set()
                for t in self.topics:
                    for p in consumer.partitions_for_topic(t) or ():
                        tps.add(TopicPartition(t, p))
                if tps != assigned:
                    consumer.assign(list(tps))
                    new = tps - assigned
                    if new:
                        consumer.seek_to_beginning(*new)
                    assigned = tps
                if not assigned:
                    self._stop.wait(1.0)
                    continue
                for tp, batch in consumer.poll(timeout_ms=500).items():
                    for m in batch:
                        value = _json(m.value)
                        if tp.topic == status_topic:
                            key = m.key.decode(errors="replace") if m.key else ""
                            self.view.on_status(key, value)
                        elif isinstance(value, dict):
                            self.view.on_alert(value)
        finally:
            consumer.close()


# -- worker status records: every field may be missing or malformed (older workers, demo) -----
#: what a comparison of a challenger with its champion shows of each
_COMPARED = ("name", "kind", "examples_evaluated", "accuracy", "rolling_accuracy")


def _lead(model: dict[str, Any], champion: dict[str, Any]) -> dict[str, float | None]:
    """How far `model` is ahead of `champion` (negative: behind), per accuracy."""
    def diff(key: str) -> float | None:
        a, b = model.get(key), champion.get(key)
        return round(a - b, 6) if a is not None and b is not None else None
    return {"accuracy": diff("accuracy"), "rolling_accuracy": diff("rolling_accuracy")}


def finite_or_none(v: Any) -> float | None:
    """A finite number, or None (bools, strings, NaN and infinities are not numbers here)."""
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    f = float(v)
    return f if math.isfinite(f) else None


def _count(v: Any) -> float | None:
    f = finite_or_none(v)
    return f if f is not None and f >= 0 else None


def _intish(v: float) -> int | float:
    return int(v) if v.is_integer() else v


def worker_counters(status: dict[str, Any]) -> dict[str, int | float]:
    c = status.get("counters")
    if not isinstance(c, dict):
        return {}
    out = {}
    for k, v in c.items():
        n = _count(v)
        if isinstance(k, str) and n is not None:
            out[k] = _intish(n)
    return out


def worker_dead_letters_by_reason(status: dict[str, Any]) -> dict[str, int | float]:
    d = status.get("dead_letters_by_reason")
    if not isinstance(d, dict):
        return {}
    out = {}
    for k, v in d.items():
        n = _count(v)
        if n is not None:
            out[str(k)] = _intish(n)
    return out


def worker_lag(status: dict[str, Any]) -> dict[str, dict[str, int]]:
    """{topic: {partition (str): messages behind the log end}}; negatives count as 0."""
    lag = status.get("lag")
    if not isinstance(lag, dict):
        return {}
    out: dict[str, dict[str, int]] = {}
    for topic, parts in lag.items():
        if not isinstance(parts, dict):
            continue
        clean = {}
        for p, v in parts.items():
            n = finite_or_none(v)
            if n is not None:
                clean[str(p)] = max(0, int(n))
        if clean:
            out[str(topic)] = clean
    return out


def worker_lag_total(status: dict[str, Any]) -> int | None:
    lag = worker_lag(status)
    return sum(sum(p.values()) for p in lag.values()) if lag else None


def worker_rates(status: dict[str, Any]) -> dict[str, float | None]:
    r = status.get("rates")
    r = r if isinstance(r, dict) else {}
    return {"in_per_s": _count(r.get("in_per_s")), "out_per_s": _count(r.get("out_per_s"))}


def _inputs(counters: dict[str, int | float]) -> float | None:
    ins = [v for k, v in counters.items() if k.endswith("_in")]
    return float(sum(ins)) if ins else None


def _rates_between(prev: dict[str, Any], cur: dict[str, Any]) -> dict[str, float | None]:
    """Records/s in and out between two statuses of one worker, from its counters."""
    out: dict[str, float | None] = {"in_per_s": None, "out_per_s": None}
    t0, t1 = finite_or_none(prev.get("updated")), finite_or_none(cur.get("updated"))
    if t0 is None or t1 is None or t1 <= t0:
        return out
    c0, c1 = worker_counters(prev), worker_counters(cur)
    for key, a, b in (("in_per_s", _inputs(c0), _inputs(c1)),
                      ("out_per_s", c0.get("outputs"), c1.get("outputs"))):
        if a is not None and b is not None and b >= a:  # a restart resets the counters
            out[key] = (b - a) / (t1 - t0)
    return out


def worker_latency(status: dict[str, Any]) -> dict[str, Any] | None:
    """The latency histogram if it is well formed: ascending finite bucket bounds and one
    non-negative count per bucket plus one above the last; else None."""
    lat = status.get("latency")
    if not isinstance(lat, dict):
        return None
    bounds, counts = lat.get("buckets"), lat.get("counts")
    if not isinstance(bounds, list) or not isinstance(counts, list) or not bounds \
            or len(counts) != len(bounds) + 1:
        return None
    b = [finite_or_none(v) for v in bounds]
    c = [_count(v) for v in counts]
    if any(v is None for v in b) or any(v is None for v in c) \
            or any(x >= y for x, y in zip(b, b[1:], strict=False)):
        return None
    total = sum(c)
    return {"buckets": b, "counts": [_intish(v) for v in c], "count": _intish(total),
            "sum": _count(lat.get("sum"))}


def histogram_quantile(q: float, bounds: list[float], counts: list[float]) -> float | None:
    """Estimate the q-quantile from a histogram with non-cumulative `counts` (one per bucket
    in `bounds`, plus the overflow), interpolating linearly inside the bucket as Prometheus'
    histogram_quantile does: the first bucket starts at 0 and a quantile falling in the
    overflow bucket is reported as the highest finite bound."""
    total = sum(counts)
    if total <= 0:
        return None
    rank = q * total
    cum = 0.0
    for i, c in enumerate(counts):
        if c > 0 and cum + c >= rank:
            if i == len(bounds):
                return bounds[-1]
            lo = bounds[i - 1] if i > 0 else min(0.0, bounds[0])
            return lo + (bounds[i] - lo) * max(0.0, rank - cum) / c
        cum += c
    return bounds[-1]


def summarize_worker(status: dict[str, Any]) -> dict[str, Any]:
    """A worker status record reduced to clean numbers, whatever the worker's version."""
    parts = status.get("partitions")
    lat = worker_latency(status)
    if lat is not None:
        lat["p50"] = histogram_quantile(0.5, lat["buckets"], lat["counts"])
        lat["p99"] = histogram_quantile(0.99, lat["buckets"], lat["counts"])
        lat["mean"] = lat["sum"] / lat["count"] if lat["sum"] is not None and lat["count"] \
            else None
    updated = finite_or_none(status.get("updated"))
    return {
        "worker": str(status.get("worker", "?")),
        "updated": updated,
        "age_s": round(time.time() - updated, 3) if updated is not None else None,
        "partitions": sorted(int(p) for p in parts if finite_or_none(p) is not None
                             and float(p).is_integer()) if isinstance(parts, list) else [],
        "counters": worker_counters(status),
        "dead_letters_by_reason": worker_dead_letters_by_reason(status),
        "lag": worker_lag(status),
        "lag_total": worker_lag_total(status),
        "rates": worker_rates(status),
        "latency": lat,
    }


def _num(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return 0.0


def _json(raw: bytes | None) -> Any:
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None
