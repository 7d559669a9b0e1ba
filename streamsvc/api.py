"""The REST sidecar (FastAPI): health, readiness, model inspection, alerts, metrics, dashboard."""

from __future__ import annotations

import time
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, Query
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse

from streamsvc import __version__
from streamsvc.config import Settings
from streamsvc.status import KafkaStatusFeed, StatusView

DASHBOARD = Path(__file__).with_name("static") / "dashboard.html"


def configured_models(settings: Settings) -> dict[str, dict[str, Any]]:
    return {n: {"kind": m.kind, "family": m.family, "shards_configured": m.shards,
                "drift_detector": m.drift_detector} for n, m in settings.models.items()}


def create_api(view: StatusView, feed: KafkaStatusFeed | None = None) -> FastAPI:
    """Build the app around a `StatusView` (fed from Kafka by `feed`, or by the demo)."""

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

    @app.get("/alerts", summary="Most recent drift alerts, newest last")
    def alerts(model: str | None = None, limit: int = Query(100, ge=1, le=10_000)
               ) -> list[dict[str, Any]]:
        if model is not None and view.model(model) is None:
            raise _unknown(model)
        return view.recent_alerts(model, limit)

    @app.get("/metrics", response_class=PlainTextResponse, summary="Prometheus text format")
    def metrics() -> str:
        return prometheus_text(view)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def dashboard() -> str:
        return DASHBOARD.read_text()

    return app


def _escape(v: Any) -> str:
    """Prometheus text-format label value escaping."""
    return str(v).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def prometheus_text(view: StatusView) -> str:
    lines: list[str] = []

    def metric(name: str, kind: str, help_: str, samples: list[tuple[dict[str, str], Any]]):
        lines.append(f"# HELP streamsvc_{name} {help_}")
        lines.append(f"# TYPE streamsvc_{name} {kind}")
        for labels, value in samples:
            if value is None:
                continue
            lab = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
            lines.append(f"streamsvc_{name}{{{lab}}} {float(value)}")

    models = [view.model(n) or {} for n in view.model_names()]
    for field, kind, help_ in [
        ("examples_seen", "counter", "Events predicted"),
        ("examples_learned", "counter", "Examples learned"),
        ("accuracy", "gauge", "Prequential accuracy"),
        ("rolling_accuracy", "gauge", "Accuracy over the rolling window"),
        ("drift_alerts", "counter", "Drift alerts received by the sidecar"),
        ("pending_labels", "gauge", "Events waiting for a delayed label"),
        ("labels_missing", "counter", "Events whose label never came (expired)"),
        ("labels_unknown", "counter", "Labels for unknown event ids (dead-lettered)"),
    ]:
        metric(field, kind, help_, [({"model": m.get("name", "?")}, m.get(field)) for m in models])
    workers = view.live_workers()
    metric("workers_live", "gauge", "Workers that reported recently", [({}, len(workers))])
    for c, help_ in [("dead_letters", "Records sent to dead-letters"),
                     ("events_in", "Raw events consumed"), ("labels_in", "Raw labels consumed"),
                     ("snapshots_saved", "Model snapshots written")]:
        metric(c, "counter", help_,
               [({"worker": w["worker"]}, w.get("counters", {}).get(c)) for w in workers])
    metric("up", "gauge", "Sidecar is up", [({}, 1)])
    return "\n".join(lines) + "\n"


def run_api(settings: Settings, host: str, port: int) -> None:
    import uvicorn

    view = StatusView(configured_models(settings), alerts_kept=settings.api["alerts_kept"],
                      stale_after=settings.api["stale_after"])
    feed = KafkaStatusFeed(view, settings.bootstrap, settings.topic("model_status"),
                           settings.topic("drift_alerts"))
    uvicorn.run(create_api(view, feed), host=host, port=port, log_level="info")
