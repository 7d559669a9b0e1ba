"""The REST sidecar (FastAPI): health, readiness, model inspection, alerts, metrics, dashboard."""

from __future__ import annotations

import hmac
import time
from collections.abc import Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString
from pydantic import BaseModel, Field

from streamsvc import __version__
from streamsvc.config import Settings
from streamsvc.status import KafkaStatusFeed, StatusView, finite_or_none

DASHBOARD = Path(__file__).with_name("static") / "dashboard.html"


def configured_models(settings: Settings) -> dict[str, dict[str, Any]]:
    return {n: {"kind": m.kind, "family": m.family, "shards_configured": m.shards,
                "drift_detector": m.drift_detector} for n, m in settings.models.items()}


# -- /workers response --------------------------------------------------------------------------
class WorkerRates(BaseModel):
    in_per_s: float | None = Field(None, description="Records consumed per second (all input "
                                   "topics) over the worker's last status interval")
    out_per_s: float | None = Field(None, description="Outputs sent per second, same interval")


class WorkerLatency(BaseModel):
    """Record produced -> outputs sent, cumulative since the worker started."""
    count: int | float = Field(description="Records measured")
    sum: float | None = Field(None, description="Sum of the latencies, seconds")
    mean: float | None = Field(None, description="Mean latency, seconds")
    p50: float | None = Field(None, description="Median estimated from the histogram, seconds")
    p99: float | None = Field(None, description="99th percentile estimated from the histogram")
    buckets: list[float] = Field(description="Upper bounds of the buckets, seconds")
    counts: list[int | float] = Field(description="Count per bucket (not cumulative), then "
                                      "the count above the last bound")


class WorkerPoint(BaseModel):
    t: float = Field(description="Status time, epoch seconds")
    in_per_s: float | None = None
    out_per_s: float | None = None
    lag: int | None = Field(None, description="Total consumer lag, messages")


class WorkerInfo(BaseModel):
    worker: str
    updated: float | None = Field(None, description="Last status, epoch seconds")
    age_s: float | None = Field(None, description="Seconds since the last status")
    partitions: list[int] = Field(default_factory=list,
                                  description="Partitions of the records topic owned")
    lag_total: int | None = Field(None, description="Messages behind the log ends, summed")
    lag: dict[str, dict[str, int]] = Field(
        default_factory=dict, description="topic -> partition -> messages behind the log end")
    rates: WorkerRates = Field(default_factory=WorkerRates)
    latency: WorkerLatency | None = None
    counters: dict[str, int | float] = Field(default_factory=dict)
    dead_letters_by_reason: dict[str, int | float] = Field(default_factory=dict)
    history: list[WorkerPoint] = Field(default_factory=list,
                                       description="Recent points, oldest first")


# -- /metrics ------------------------------------------------------------------------------------
_MODEL_GAUGES = [
    ("examples_seen", "Events predicted"),
    ("examples_learned", "Examples learned"),
    ("accuracy", "Prequential accuracy"),
    ("rolling_accuracy", "Accuracy over the rolling window"),
    ("drift_alerts", "Drift alerts received by the sidecar"),
    ("pending_labels", "Events waiting for a delayed label"),
    ("labels_missing", "Events whose label never came (expired)"),
    ("labels_unknown", "Labels for unknown event ids (dead-lettered)"),
]
_WORKER_GAUGES = [  # the per-worker numbers exposed before, under their old names
    ("dead_letters", "Records sent to dead-letters"),
    ("events_in", "Raw events consumed"),
    ("labels_in", "Raw labels consumed"),
    ("snapshots_saved", "Model snapshots written"),
]
_WORKER_COUNTERS = [
    ("send_errors", "Sends to Kafka that failed for good"),
    ("send_retries", "Sends to Kafka retried"),
    ("replayed", "Records replayed after a restore"),
    ("snapshots_saved", "Model snapshots written"),
    ("snapshots_refused", "Model snapshots refused unread: signature missing or wrong"),
]


class StatusCollector(Collector):
    """Prometheus view of a `StatusView`: per-model numbers from the shard statuses and
    per-worker counters, lag, rates and latency from the workers' status records, read at
    scrape time. Missing fields give no sample; they never fail the scrape."""

    def __init__(self, view: StatusView) -> None:
        self.view = view

    def collect(self) -> Iterator[Metric]:
        models = [self.view.model(n) or {} for n in self.view.model_names()]
        # values read from status snapshots, so gauges (they keep their historical names)
        for field, help_ in _MODEL_GAUGES:
            g = GaugeMetricFamily(f"streamsvc_{field}", help_, labels=["model"])
            for m in models:
                v = finite_or_none(m.get(field))
                if v is not None:
                    g.add_metric([str(m.get("name", "?"))], v)
            yield g
        workers = self.view.worker_summaries(history=0)
        yield GaugeMetricFamily("streamsvc_workers_live", "Workers that reported recently",
                                value=len(workers))
        for field, help_ in _WORKER_GAUGES:
            yield _per_worker(GaugeMetricFamily, field, help_, workers)

        c = CounterMetricFamily("streamsvc_records_in", "Records consumed, by input topic role",
                                labels=["worker", "topic_role"])
        for w in workers:
            for k, v in sorted(w["counters"].items()):
                if k.endswith("_in"):
                    c.add_metric([w["worker"], k[:-3]], v)
        yield c
        yield _per_worker(CounterMetricFamily, "outputs", "Output records sent (predictions, "
                          "alerts, actions, ...)", workers)
        c = CounterMetricFamily("streamsvc_dead_letters", "Records sent to dead-letters, "
                                "by reason", labels=["worker", "reason"])
        for w in workers:
            for reason, v in sorted(w["dead_letters_by_reason"].items()):
                c.add_metric([w["worker"], reason], v)
        yield c
        for field, help_ in _WORKER_COUNTERS:
            yield _per_worker(CounterMetricFamily, field, help_, workers)

        g = GaugeMetricFamily("streamsvc_consumer_lag", "Messages behind the log end",
                              labels=["worker", "topic", "partition"])
        for w in workers:
            for topic, parts in sorted(w["lag"].items()):
                for p, v in sorted(parts.items()):
                    g.add_metric([w["worker"], topic, p], v)
        yield g
        g = GaugeMetricFamily("streamsvc_records_per_second", "Records per second over the "
                              "worker's last status interval", labels=["worker", "direction"])
        for w in workers:
            for direction in ("in", "out"):
                v = w["rates"][f"{direction}_per_s"]
                if v is not None:
                    g.add_metric([w["worker"], direction], v)
        yield g
        h = HistogramMetricFamily("streamsvc_processing_latency_seconds",
                                  "Record produced -> outputs sent", labels=["worker"])
        for w in workers:
            lat = w["latency"]
            if lat is None:
                continue
            cum, buckets = 0.0, []
            for bound, n in zip([*lat["buckets"], float("inf")], lat["counts"], strict=True):
                cum += n
                buckets.append((floatToGoString(bound), cum))
            # without a sum the buckets alone are exposed (no _count/_sum pair to misread)
            h.add_metric([w["worker"]], buckets, lat["sum"])
        yield h
        yield GaugeMetricFamily("streamsvc_up", "Sidecar is up", value=1)


def _per_worker(family: type, field: str, help_: str, workers: list[dict[str, Any]]) -> Any:
    """One metric family of a worker counter, a sample per worker that reports it."""
    fam = family(f"streamsvc_{field}", help_, labels=["worker"])
    for w in workers:
        if field in w["counters"]:
            fam.add_metric([w["worker"]], w["counters"][field])
    return fam


def metrics_registry(view: StatusView) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StatusCollector(view))
    return registry


def prometheus_text(view: StatusView) -> str:
    """The `/metrics` body (Prometheus text format)."""
    return generate_latest(metrics_registry(view)).decode()


#: reachable without the API token: probes, and the dashboard's page (it holds no data and
#: asks for the token itself)
OPEN_PATHS = frozenset({"/health", "/ready", "/"})


def token_refusal(request: Request, token: str) -> JSONResponse | None:
    """None if the request carries `Authorization: Bearer <token>`, else the 401 to send."""
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and given and \
            hmac.compare_digest(given.strip().encode(), token.encode()):
        return None
    wrong = scheme.lower() == "bearer" and bool(given)
    detail = ("wrong API token" if wrong else "this endpoint needs the API token") + \
        ": send the header 'Authorization: Bearer <api.token>' (see README, Security)"
    challenge = 'Bearer realm="streamsvc"' + (', error="invalid_token"' if wrong else "")
    return JSONResponse({"detail": detail}, status_code=401,
                        headers={"WWW-Authenticate": challenge})


def create_api(view: StatusView, feed: KafkaStatusFeed | None = None, token: str = ""
               ) -> FastAPI:
    """Build the app around a `StatusView` (fed from Kafka by `feed`, or by the demo).
    With a `token`, every endpoint but `OPEN_PATHS` requires it as a bearer token."""
    registry = metrics_registry(view)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if feed is not None and not feed.is_alive():
            feed.start()
        yield
        if feed is not None:
            feed.stop()

    app = FastAPI(
        title="streamsvc", version=__version__, lifespan=lifespan,
        description="Health, readiness and inspection of the streamsvc online learners. "
        "Model status comes from the workers through Kafka's `model-status` topic.",
    )

    if token:
        @app.middleware("http")
        async def require_token(request: Request, call_next: Any) -> Any:
            if request.url.path not in OPEN_PATHS:
                refusal = token_refusal(request, token)
                if refusal is not None:
                    return refusal
            return await call_next(request)

    def _unknown(name: str) -> HTTPException:
        known = ", ".join(view.model_names()) or "(none)"
        return HTTPException(404, detail=f"unknown model {name!r}; known models: {known}")

    @app.get("/health", summary="Process alive")
    def health() -> dict[str, Any]:
        return {"status": "ok", "version": __version__,
                "uptime_s": round(time.time() - view.started, 1)}

    @app.get("/ready", summary="Kafka reachable and at least one worker reporting",
             responses={503: {"description": "Not ready; `reasons` says why"}})
    def ready() -> JSONResponse:
        ok, reasons = view.readiness()
        body = {"ready": ok, "reasons": reasons,
                "workers": [w["worker"] for w in view.live_workers()],
                "mode": "embedded" if view.embedded else "kafka"}
        return JSONResponse(body, status_code=200 if ok else 503)

    @app.get("/models", summary="All models with their headline numbers")
    def models() -> list[dict[str, Any]]:
        out = []
        for name in view.model_names():
            m = view.model(name) or {}
            out.append({k: m.get(k) for k in (
                "name", "kind", "family", "examples_seen", "examples_learned", "accuracy",
                "rolling_accuracy", "drift_alerts", "updated")})
        return out

    @app.get("/models/{name}", summary="One model: counts, metrics, drift alerts, inspection",
             responses={404: {"description": "Unknown model"}})
    def model(name: str) -> dict[str, Any]:
        m = view.model(name)
        if m is None:
            raise _unknown(name)
        return m

    @app.get("/models/{name}/history", summary="Accuracy over examples learned (for plots)",
             responses={404: {"description": "Unknown model"}})
    def history(name: str) -> list[dict[str, Any]]:
        if view.model(name) is None:
            raise _unknown(name)
        return view.model_history(name)

    @app.get("/alerts", summary="Most recent drift alerts, newest first (as on the dashboard)")
    def alerts(model: str | None = None, limit: int = Query(100, ge=1, le=10_000)
               ) -> list[dict[str, Any]]:
        if model is not None and view.model(model) is None:
            raise _unknown(model)
        recent = view.recent_alerts(model, limit)  # arrival order, oldest first
        # newest first; shards publish independently, so by time, arrival order breaking ties
        order = sorted(range(len(recent)), key=lambda i: (_num_ts(recent[i].get("ts")), i),
                       reverse=True)
        return [recent[i] for i in order]

    @app.get("/workers", summary="Live workers: lag, rates, latency, counters, dead letters",
             response_model=list[WorkerInfo])
    def workers(history: int = Query(300, ge=0, le=10_000, description="History points per "
                                     "worker (records/s and lag over time), newest kept")
                ) -> list[dict[str, Any]]:
        return view.worker_summaries(history=history)

    @app.get("/metrics", summary="Prometheus text format",
             response_class=Response, responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}})
    def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def dashboard() -> str:
        return DASHBOARD.read_text()

    return app


def run_api(settings: Settings, host: str, port: int, ssl_certfile: str | None = None,
            ssl_keyfile: str | None = None) -> None:
    """Serve the sidecar (HTTPS with a certificate and key). Fails at once when Kafka refuses
    the login or certificate; an unreachable Kafka only makes /ready say so."""
    import logging

    import uvicorn

    from streamsvc.security import KafkaRefused, KafkaUnreachable, check_kafka

    log = logging.getLogger("streamsvc.api")
    try:
        check_kafka(settings.bootstrap, settings.security, timeout=5.0)
    except KafkaRefused:
        raise
    except KafkaUnreachable as exc:
        log.warning("%s; serving anyway, /ready reports it until Kafka answers", exc)
    if not settings.api_token:
        log.warning("api.token is not set: every endpoint is open to whoever reaches port %d "
                    "(README: Security)", port)
    view = StatusView(configured_models(settings), alerts_kept=settings.api["alerts_kept"],
                      stale_after=settings.api["stale_after"])
    feed = KafkaStatusFeed(view, settings.bootstrap, settings.topic("model_status"),
                           settings.topic("drift_alerts"), settings.security.kafka_python())
    uvicorn.run(create_api(view, feed, token=settings.api_token), host=host, port=port,
                log_level="info", ssl_certfile=ssl_certfile, ssl_keyfile=ssl_keyfile)


def _num_ts(v: Any) -> float:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else 0.0
