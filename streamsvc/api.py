"""The REST sidecar (FastAPI): health, readiness, model inspection, alerts, metrics, dashboard."""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable, Collection, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Literal

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi_offline import FastAPIOffline
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from agents.catalog import is_template
from streamsvc import __version__, schemas
from streamsvc.config import Settings
from streamsvc.status import KafkaStatusFeed, StatusView, finite_or_none

DASHBOARD = Path(__file__).with_name("static") / "dashboard.html"
#: model names a 404 lists at most (a template may have made thousands)
KNOWN_SHOWN = 20


def configured_models(settings: Settings) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for n, m in settings.models.items():
        out[n] = {"kind": m.kind, "family": m.family, "shards_configured": m.shards,
                  "drift_detector": m.drift_detector}
        if m.challenger_of:
            out[n]["challenger_of"] = m.challenger_of
        if is_template(n):
            out[n]["template"] = True
    return out


# -- response bodies (the OpenAPI document at /docs describes them) ------------------------------
class Health(BaseModel):
    status: Literal["ok"]
    version: str
    uptime_s: float = Field(description="Seconds since the sidecar started")


class Readiness(BaseModel):
    """The body of /ready, with status 200 when ready and 503 when not."""
    ready: bool
    reasons: list[str] = Field(description="Why not ready, in plain words (empty when ready)")
    workers: list[str] = Field(description="Workers that reported recently")
    mode: Literal["embedded", "kafka"] = Field(description="embedded: `streamsvc demo "
                                               "--serve` (no Kafka; the demo reports as one "
                                               "worker, `embedded`)")


class Problem(BaseModel):
    """An error: 404 (unknown model or topic), 401 (API token missing or wrong)."""
    detail: str = Field(description="What went wrong and what to do, in plain words")


class ModelSummary(BaseModel):
    """One model's headline numbers, summed over its shards."""
    model_config = ConfigDict(extra="allow")
    name: str
    kind: str | None = Field(None, description="drift_moe, hoeffding_tree, arf, stream_q, ...")
    family: str | None = Field(None, description="classifier, rl or graph")
    examples_seen: int | None = Field(None, description="Events predicted (classifiers), "
                                      "edges (graph), transitions (rl)")
    examples_learned: int | None = Field(None, description="Labelled examples learned from")
    accuracy: float | None = Field(None, description="Prequential accuracy (test, then train)")
    rolling_accuracy: float | None = Field(None, description="Accuracy over the last "
                                           "`worker.rolling_window` examples")
    drift_alerts: int | None = Field(None, description="Drift alerts published: the shards' "
                                     "own counter (at least the alerts this sidecar received). "
                                     "The one name for this number; /models/{name} no longer "
                                     "repeats it as `alerts`")
    updated: float | None = Field(None, description="Newest shard status, epoch seconds")
    template: str | None = Field(None, description="The template (`[models.\"tenant-*\"]`) "
                                 "that made this model on first use")
    challenger_of: str | None = Field(None, description="The model this one challenges: it "
                                      "gets a copy of that model's records, publishes nothing")


class ShardInfo(BaseModel):
    model_config = ConfigDict(extra="allow")
    shard: str | None = None
    partition: int | None = Field(None, description="Records partition holding the shard")
    worker: str | None = None
    examples_learned: int | None = None
    accuracy: float | None = None
    rolling_accuracy: float | None = None
    updated: float | None = None


def _all_optional(model: type[BaseModel], name: str) -> type[BaseModel]:
    """`model` with every field optional: what the sidecar relays from Kafka is shown even
    when an older or foreign producer left a field out."""
    fields: dict[str, Any] = {
        n: (f.annotation | None, Field(None, description=f.description))
        for n, f in model.model_fields.items()}
    return create_model(name, __config__=ConfigDict(extra="allow"), __doc__=model.__doc__,
                        **fields)


AlertInfo = _all_optional(schemas.DriftAlert, "AlertInfo")


class ChallengerInfo(BaseModel):
    """A challenger beside its champion: both scored on the same events."""
    model_config = ConfigDict(extra="allow")
    name: str
    kind: str | None = None
    examples_evaluated: int | None = Field(None, description="Its predictions scored (fewer "
                                           "than the champion's if it was added later)")
    accuracy: float | None = None
    rolling_accuracy: float | None = None
    vs_champion: dict[str, float | None] | None = Field(
        None, description="accuracy and rolling_accuracy minus the champion's (> 0: ahead)")


class ModelDetail(ModelSummary):
    """Everything the sidecar knows about one model."""
    shards_configured: int | None = Field(None, description="`shards` in the config")
    drift_detector: str | None = None
    examples_evaluated: int | None = Field(None, description="Predictions scored against "
                                           "their label")
    correct: int | None = None
    kappa_m: float | None = Field(None, description="κ-M (one shard only)")
    kappa_t: float | None = Field(None, description="κ-temporal (one shard only)")
    pending_labels: int | None = Field(None, description="Events waiting for a delayed label")
    waiting_orphan_labels: int | None = Field(None, description="Labels waiting for their "
                                              "event")
    labels_missing: int | None = Field(None, description="Events whose label never came")
    labels_duplicate: int | None = None
    labels_unknown: int | None = Field(None, description="Labels for unknown ids "
                                       "(dead-lettered)")
    labels_joined: int | None = None
    alerts_suppressed: int | None = Field(None, description="Alerts held back by the cooldown")
    improvements: int | None = Field(None, description="Error-rate falls (published only "
                                     "with alert_on = \"both\")")
    data_alerts: int | None = None
    data_alerts_suppressed: int | None = None
    reference_errors: int | None = Field(None, description="Examples the frozen-reference "
                                         "drift detector could not use (it restarted)")
    shards: list[ShardInfo] = Field(default_factory=list)
    inspect: dict[str, Any] = Field(default_factory=dict, description="shard -> kind-specific "
                                    "inspection (DriftMoE experts and router, tree sizes, "
                                    "returns, node counts)")
    true_drifts: list[list[int]] | None = Field(None, description="The demo's built-in "
                                                "stream: (start, end) of each true drift")
    extra: list[Any] | None = None
    refused: int | None = Field(None, description="A challenger's records its learner refused "
                                "(its champion dead-letters them)")
    vs_champion: dict[str, float | None] | None = Field(
        None, description="A challenger: accuracy and rolling_accuracy minus its champion's")
    challengers: list[ChallengerInfo] | None = Field(
        None, description="A champion: its challengers, scored on the same events")
    recent_alerts: list[AlertInfo] = Field(  # type: ignore[valid-type]
        default_factory=list, description="The model's last 20 alerts, oldest first")


class HistoryPoint(BaseModel):
    model_config = ConfigDict(extra="allow")
    t: float | None = Field(None, description="Status time, epoch seconds")
    shard: str | None = None
    examples_learned: int | None = None
    rolling_accuracy: float | None = None
    accuracy: float | None = None


class TopicSchema(BaseModel):
    topic: str = Field(description="Default topic name")
    config_key: str = Field(description="Where the name is set: `topics.<key>`")
    direction: Literal["in", "out"] = Field(description="in: the service reads it; out: it "
                                            "publishes it")
    title: str = Field(description="The model the messages are validated with / described by")
    description: str
    url: str = Field(description="The topic's JSON Schema")


def _loose(model: type[BaseModel], data: Any) -> BaseModel:
    """`data` as `model`, fields that do not fit dropped (they came from Kafka: a malformed
    status or alert must not turn the endpoint into a 500)."""
    data = dict(data) if isinstance(data, dict) else {}
    for _ in range(5):
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            bad = {str(e["loc"][0]) for e in exc.errors() if e["loc"]}
            if not bad & set(data):
                break
            data = {k: v for k, v in data.items() if k not in bad}
    return model.model_validate({k: data[k] for k in ("name",) if k in data})


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
    ("replay_errors", "Records that failed again while replayed (dead-lettered the first time)"),
    ("snapshots_saved", "Model snapshots written"),
    ("snapshots_refused", "Model snapshots refused unread: signature missing or wrong"),
    ("gc_full_collections", "Full garbage collections in the worker (each holds its loop)"),
    ("gc_full_pause_seconds", "Seconds the worker's loop was held by full collections"),
    ("packs", "Packs of forwarded records sent to the records topic (one per model shard "
     "and batch)"),
]


class StatusCollector(Collector):
    """Prometheus view of a `StatusView`: per-model numbers from the shard statuses and
    per-worker counters, lag, rates and latency from the workers' status records, read at
    scrape time. Missing fields give no sample; they never fail the scrape."""

    def __init__(self, view: StatusView) -> None:
        self.view = view

    def collect(self) -> Iterator[Metric]:
        every = self.view.models()
        # a template's models are summed per template: one series per made model would
        # grow without bound (a template may make thousands)
        models = [m for m in every if not isinstance(m.get("template"), str)]
        yield from _per_template([m for m in every if isinstance(m.get("template"), str)])
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


def _per_template(made: list[dict[str, Any]]) -> Iterator[Metric]:
    """Per template: how many models it made, their examples summed, their accuracy over all
    their scored examples, and the worst rolling accuracy among them (what to alert on)."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for m in made:
        groups.setdefault(m["template"], []).append(m)

    def family(name: str, help_: str, value: Callable[[list[dict[str, Any]]], float | None]
               ) -> Metric:
        g = GaugeMetricFamily(f"streamsvc_template_{name}", help_, labels=["template"])
        for t, ms in sorted(groups.items()):
            v = value(ms)
            if v is not None:
                g.add_metric([t], v)
        return g

    def total(key: str) -> Callable[[list[dict[str, Any]]], float]:
        return lambda ms: float(sum(finite_or_none(m.get(key)) or 0 for m in ms))

    def accuracy(ms: list[dict[str, Any]]) -> float | None:
        n = total("examples_evaluated")(ms)
        return total("correct")(ms) / n if n else None

    def worst(ms: list[dict[str, Any]]) -> float | None:
        rolled = [v for m in ms if (v := finite_or_none(m.get("rolling_accuracy"))) is not None]
        return min(rolled) if rolled else None

    yield family("models", "Models the template made (that have reported)",
                 lambda ms: float(len(ms)))
    yield family("examples_seen", "Events predicted by its models", total("examples_seen"))
    yield family("examples_learned", "Examples its models learned", total("examples_learned"))
    yield family("accuracy", "Prequential accuracy over all its models' scored examples",
                 accuracy)
    yield family("worst_rolling_accuracy", "The lowest rolling accuracy among its models",
                 worst)
    yield family("drift_alerts", "Drift alerts of its models", total("drift_alerts"))


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


def create_api(view: StatusView, feed: KafkaStatusFeed | None = None, token: str = "",
               configured: Collection[str] = ()) -> FastAPI:
    """Build the app around a `StatusView` (fed from Kafka by `feed`, or by the demo).
    With a `token`, every endpoint but `OPEN_PATHS` requires it as a bearer token.
    ``configured``: the models of this configuration (names, or `Settings.catalog`, which
    also knows the names templates make), so that a model no worker has reported yet is not
    called unknown."""
    registry = metrics_registry(view)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if feed is not None and not feed.is_alive():
            feed.start()
        yield
        if feed is not None:
            feed.stop()

    # the docs pages load Swagger UI / ReDoc from the package, not from a CDN: /docs works
    # offline and behind firewalls
    app = FastAPIOffline(
        title="streamsvc", version=__version__, lifespan=lifespan,
        description="Health, readiness and inspection of the streamsvc online learners. "
        "Model status comes from the workers through Kafka's `model-status` topic. "
        "The topics' message shapes: `/schemas` (JSON Schema) and `/asyncapi.json`.",
    )
    auth: dict[int | str, dict[str, Any]] = {401: {
        "model": Problem, "description": "API token missing or wrong (only when `api.token` "
        "is set)"}}
    err404 = {**auth, 404: {"model": Problem, "description": "Unknown model"}}

    if token:
        @app.middleware("http")
        async def require_token(request: Request, call_next: Any) -> Any:
            if request.url.path not in OPEN_PATHS:
                refusal = token_refusal(request, token)
                if refusal is not None:
                    return refusal
            return await call_next(request)

    def _unknown(name: str) -> HTTPException:
        names = view.model_names()
        known = ", ".join(names[:KNOWN_SHOWN]) or "(none)"
        if len(names) > KNOWN_SHOWN:
            known += f" and {len(names) - KNOWN_SHOWN} more (GET /models)"
        if is_template(name):
            return HTTPException(404, detail=(
                f"{name!r} is a model template; ask for a model it made (reported: {known})"))
        template = getattr(configured, "template_for", lambda _: None)(name)
        if template is not None and name not in getattr(configured, "models", {}):
            return HTTPException(404, detail=(
                f"no model {name!r} has been reported: template {template.name!r} makes it "
                f"when a record names it (reported: {known})"))
        if name in configured:
            return HTTPException(404, detail=(
                f"model {name!r} is configured, but no worker has reported it yet (a worker "
                f"reports a model once it has had a record for it; reported: {known})"))
        return HTTPException(404, detail=f"unknown model {name!r}; known models: {known}")

    @app.get("/health", summary="Process alive", response_model=Health)
    def health() -> Health:
        return Health(status="ok", version=__version__,
                      uptime_s=round(time.time() - view.started, 1))

    @app.get("/ready", summary="Kafka reachable and at least one worker reporting",
             response_model=Readiness,
             responses={503: {"model": Readiness,
                              "description": "Not ready; `reasons` says why"}})
    def ready() -> JSONResponse:
        ok, reasons = view.readiness()
        body = {"ready": ok, "reasons": reasons,
                "workers": [w["worker"] for w in view.live_workers()],
                "mode": "embedded" if view.embedded else "kafka"}
        return JSONResponse(body, status_code=200 if ok else 503)

    # relayed from Kafka: fields a status or alert did not carry stay out of the answer
    # (exclude_unset), so the JSON is what the workers published, with its types checked
    @app.get("/models", summary="All models with their headline numbers",
             response_model=list[ModelSummary], response_model_exclude_unset=True,
             responses=auth)
    def models() -> list[BaseModel]:
        out = []
        for m in view.models():
            out.append(_loose(ModelSummary, {k: m.get(k) for k in ModelSummary.model_fields}))
        return out

    @app.get("/models/{name}", summary="One model: counts, metrics, drift alerts, inspection",
             response_model=ModelDetail, response_model_exclude_unset=True, responses=err404)
    def model(name: str) -> BaseModel:
        m = view.model(name)
        if m is None:
            raise _unknown(name)
        m["recent_alerts"] = [_loose(AlertInfo, a) for a in m.get("recent_alerts", [])]
        return _loose(ModelDetail, m)

    @app.get("/models/{name}/history", summary="Accuracy over examples learned (for plots)",
             response_model=list[HistoryPoint], response_model_exclude_unset=True,
             responses=err404)
    def history(name: str) -> list[BaseModel]:
        if view.model(name) is None:
            raise _unknown(name)
        return [_loose(HistoryPoint, p) for p in view.model_history(name)]

    @app.get("/alerts", summary="Most recent drift alerts, newest first (as on the dashboard)",
             response_model=list[AlertInfo],  # type: ignore[valid-type]
             response_model_exclude_unset=True, responses=err404)
    def alerts(model: str | None = None, limit: int = Query(100, ge=1, le=10_000)
               ) -> list[BaseModel]:
        if model is not None and view.model(model) is None:
            raise _unknown(model)
        recent = view.recent_alerts(model, limit)  # arrival order, oldest first
        # newest first; shards publish independently, so by time, arrival order breaking ties
        order = sorted(range(len(recent)), key=lambda i: (_num_ts(recent[i].get("ts")), i),
                       reverse=True)
        return [_loose(AlertInfo, recent[i]) for i in order]

    @app.get("/schemas", summary="The topics and their message shapes (JSON Schema)",
             response_model=list[TopicSchema], responses=auth)
    def schema_index() -> list[TopicSchema]:
        out = []
        for topic, (role, shape, direction) in schemas.TOPICS.items():
            out.append(TopicSchema(
                topic=topic, config_key=role, direction=direction,  # type: ignore[arg-type]
                title=shape.__name__, description=(shape.__doc__ or "").strip(),
                url=f"/schemas/{topic}"))
        return out

    @app.get("/schemas/{topic}", summary="JSON Schema of one topic's messages",
             response_model=dict[str, Any],
             responses={**auth, 404: {"model": Problem, "description": "Unknown topic"}})
    def schema(topic: str) -> dict[str, Any]:
        found = schemas.topic_name(topic)
        if found is None:
            raise HTTPException(404, detail=f"unknown topic {topic!r}; topics: "
                                f"{', '.join(schemas.TOPICS)}")
        return schemas.json_schema(found)

    @app.get("/asyncapi.json", summary="AsyncAPI 3.0 document of the topics",
             response_model=dict[str, Any], responses=auth)
    def asyncapi() -> dict[str, Any]:
        return schemas.asyncapi()

    @app.get("/workers", summary="Live workers: lag, rates, latency, counters, dead letters",
             response_model=list[WorkerInfo], responses=auth)
    def workers(history: int = Query(300, ge=0, le=10_000, description="History points per "
                                     "worker (records/s and lag over time), newest kept")
                ) -> list[dict[str, Any]]:
        return view.worker_summaries(history=history)

    @app.get("/metrics", summary="Prometheus text format", response_class=Response,
             responses={**auth, 200: {"content": {CONTENT_TYPE_LATEST: {}}}})
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
        log.warning("%s. Serving anyway: /ready reports it until Kafka answers",
                    str(exc).rstrip("."))
    if not settings.api_token:
        log.warning("api.token is not set: every endpoint is open to whoever reaches port %d "
                    "(README: Security)", port)
    view = StatusView(configured_models(settings), alerts_kept=settings.api["alerts_kept"],
                      stale_after=settings.api["stale_after"])
    feed = KafkaStatusFeed(view, settings.bootstrap, settings.topic("model_status"),
                           settings.topic("drift_alerts"), settings.security.kafka_python())
    uvicorn.run(create_api(view, feed, token=settings.api_token,
                           configured=settings.catalog), host=host, port=port,
                log_level="info", ssl_certfile=ssl_certfile, ssl_keyfile=ssl_keyfile)


def _num_ts(v: Any) -> float:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else 0.0
