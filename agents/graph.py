"""Hosting of a node-property model: edges and node labels in, node predictions out."""

from __future__ import annotations

from typing import Any

from agents.host import (
    HostLimits,
    Out,
    check_label_type,
    json_label,
    metrics_status,
    model_inspect,
)
from models.metrics import PrequentialMetrics


class GraphHost:
    """The (single) shard of a `node_property` model. Every edge updates the per-node state
    and yields a prediction for its `src`; labels (on edges or in `node-labels`) are scored
    prequentially before the learner sees them."""

    def __init__(self, spec: Any, shard: str, limits: HostLimits) -> None:
        self.name = spec.name
        self.kind = spec.kind
        self.shard = shard
        self.model = spec.build()
        self.edges = 0
        self.labels = 0
        self.label_type: str | None = None
        self.metrics = PrequentialMetrics(limits.rolling_window)

    def handle(self, kind: str, msg: Any, now: float, src: dict[str, Any]) -> list[Out]:
        if msg.y is not None:
            check_label_type(self, msg.y)
        body = msg.model_dump(exclude_none=True)
        proba = self.model.learn_predict(body)
        node = msg.src if kind == "edge" else msg.node
        self.edges += kind == "edge"
        y_pred = max(proba, key=proba.get) if proba else None
        if msg.y is not None:
            self.labels += 1
            if y_pred is not None:
                self.metrics.update(msg.y, y_pred)
        if kind != "edge":
            return []
        pred = {"node": node, "model": self.name, "y_pred": json_label(y_pred),
                "proba": {str(k): round(float(v), 6) for k, v in proba.items()}, "ts": msg.ts}
        return [("node_predictions", node, pred)]

    def tick(self, now: float) -> list[Out]:
        return []

    def status(self) -> dict[str, Any]:
        return {
            "model": self.name, "shard": self.shard, "kind": self.kind, "family": "graph",
            "examples_seen": self.edges, "examples_learned": self.labels,
            **metrics_status(self.metrics),
            "inspect": model_inspect(self.model),
        }
