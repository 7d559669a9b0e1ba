"""What the sidecar knows: model-shard statuses, worker heartbeats and drift alerts.

Fed either from Kafka (the compacted `model-status` topic and `drift-alerts`, read with
kafka-python in a background thread, so the sidecar works with any number of workers) or
directly by the embedded demo.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from typing import Any

log = logging.getLogger("streamsvc.status")

_SUMMED = ("examples_seen", "examples_learned", "examples_evaluated", "correct",
           "pending_labels", "waiting_orphan_labels", "labels_missing", "labels_duplicate",
           "labels_unknown", "labels_joined", "alerts", "alerts_suppressed")


class StatusView:
    """Thread-safe aggregate of everything the workers report."""

    def __init__(self, configured: dict[str, dict[str, Any]], alerts_kept: int = 1000,
                 stale_after: float = 30.0) -> None:
        self.configured = configured  # name -> {"kind", "family", ...}
        self.shards: dict[str, dict[str, Any]] = {}
        self.workers: dict[str, dict[str, Any]] = {}
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
                if value is None:
                    self.workers.pop(key[7:], None)
                else:
                    self.workers[key[7:]] = value
                return
            if value is None:
                self.shards.pop(key, None)
                return
            self.shards[key] = value
            name = value.get("model", key.split("#", 1)[0])
            hist = self.history.setdefault(name, deque(maxlen=600))
            point = {"t": value.get("updated", time.time()),
                     "shard": key,
                     "examples_learned": value.get("examples_learned"),
                     "rolling_accuracy": value.get("rolling_accuracy"),
                     "accuracy": value.get("accuracy")}
            if not hist or hist[-1]["examples_learned"] != point["examples_learned"] \
                    or hist[-1]["shard"] != key:
                hist.append(point)

    def on_alert(self, alert: dict[str, Any]) -> None:
        with self._lock:
            self.alerts.append(alert)

    # -- queries ------------------------------------------------------------------------
    def model_names(self) -> list[str]:
        with self._lock:
            names = set(self.configured)
            names.update(s.get("model", k.split("#", 1)[0]) for k, s in self.shards.items())
        return sorted(names)

    def model(self, name: str) -> dict[str, Any] | None:
        with self._lock:
            shards = [s for k, s in self.shards.items()
                      if s.get("model", k.split("#", 1)[0]) == name]
            conf = self.configured.get(name)
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
            extra = [s.get("extra") for s in shards if s.get("extra")]
            if extra:
                out["extra"] = extra
            alerts = [a for a in self.alerts if a.get("model") == name]
            # the shards' own counters: not capped by this buffer, never decreasing
            out["drift_alerts"] = max(out["alerts"], len(alerts))
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

    def __init__(self, view: StatusView, bootstrap: str, status_topic: str, alerts_topic: str
                 ) -> None:
        super().__init__(name="streamsvc-status-feed", daemon=True)
        self.view = view
        self.bootstrap = bootstrap
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
                                 enable_auto_commit=False, request_timeout_ms=15000)
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
