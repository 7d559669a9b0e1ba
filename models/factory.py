"""Build a learner from a kind name and parameters, as the service's config names them.

Kept in `models/` so that a notebook can build exactly what a deployment runs:
`build_model("hoeffding_tree", {"grace_period": 50})`.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from typing import Any

#: Hoeffding-tree settings shared by the tree baselines and DriftMoE's experts (MISSION §5).
TREE_DEFAULTS: dict[str, Any] = {"grace_period": 50, "delta": 1e-7, "leaf_prediction": "nba"}


def _river(path: str, defaults: dict[str, Any] | None = None) -> Callable[..., Any]:
    def make(**params: Any) -> Any:
        module, name = path.rsplit(".", 1)
        cls = getattr(importlib.import_module(module), name)
        return cls(**{**(defaults or {}), **params})

    make.target = path  # type: ignore[attr-defined]
    return make


def _local(path: str) -> Callable[..., Any]:
    return _river(path)


#: kind -> (family, constructor). The family tells the service which topics feed the model:
#: "classifier" ← events/labels, "rl" ← transitions, "graph" ← edges/node-labels.
KINDS: dict[str, tuple[str, Callable[..., Any]]] = {
    # river's Hoeffding tree, same trees and predictions, faster naive-Bayes leaves
    "hoeffding_tree": ("classifier", _river("models.hoeffding.FastHoeffdingTreeClassifier",
                                            TREE_DEFAULTS)),
    "hoeffding_adaptive_tree": (
        "classifier",
        _river("river.tree.HoeffdingAdaptiveTreeClassifier", TREE_DEFAULTS),
    ),
    "arf": ("classifier", _river("river.forest.ARFClassifier", {"n_models": 10, "seed": 42})),
    "drift_moe": ("classifier", _local("models.drift_moe.DriftMoEClassifier")),
    "stream_q": ("rl", _local("models.streamx.StreamQ")),
    "stream_td": ("rl", _local("models.streamx.StreamTD")),
    "node_property": ("graph", _local("models.graph.NodePropertyClassifier")),
}


class ModelSpecError(ValueError):
    """A model kind or parameter that cannot be built; the message names the culprit."""


def kind_family(kind: str) -> str:
    if kind not in KINDS:
        raise ModelSpecError(f"unknown model kind {kind!r}; known kinds: {', '.join(sorted(KINDS))}")
    return KINDS[kind][0]


def wrong_types(cls: Any, params: dict[str, Any]) -> str | None:
    """Why ``params`` cannot be ``cls``'s: a number or true/false where the constructor's
    default is one, said in words (a string reaching the constructor failed deep inside it,
    e.g. "'<' not supported between instances of 'str' and 'int'").

    >>> from models.data_drift import DataDriftDetector
    >>> wrong_types(DataDriftDetector, {"window": "abc"})
    "parameter 'window' must be a number (default 1000), got 'abc'"
    """
    try:
        defaults = {n: p.default for n, p in inspect.signature(cls).parameters.items()}
    except (TypeError, ValueError):
        return None
    for name, value in params.items():
        if value is None:  # "none" where the constructor allows it (average=None, seed=None)
            continue
        default = defaults.get(name, inspect.Parameter.empty)
        if isinstance(default, bool):
            if not isinstance(value, bool):
                return f"parameter {name!r} must be true or false, got {value!r}"
        elif isinstance(default, int | float) and (
                isinstance(value, bool) or not isinstance(value, int | float)):
            return f"parameter {name!r} must be a number (default {default!r}), got {value!r}"
    return None


def _target_class(kind: str) -> Any:
    target = getattr(KINDS[kind][1], "target", None)
    if target is None:
        return None
    module, name = target.rsplit(".", 1)
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        return None


def build_model(kind: str, params: dict[str, Any] | None = None) -> Any:
    """Instantiate a learner; unknown kinds or parameters raise `ModelSpecError` naming them."""
    kind_family(kind)  # validates the kind with a helpful message
    make = KINDS[kind][1]
    params = dict(params or {})
    cls = _target_class(kind)
    if cls is not None and (problem := wrong_types(cls, params)):
        raise ModelSpecError(f"cannot build {kind!r}: {problem}")
    try:
        return make(**params)
    except ModuleNotFoundError as exc:
        raise ModelSpecError(f"model kind {kind!r} is not available: {exc}") from exc
    except TypeError as exc:
        try:
            accepted = [p for p in inspect.signature(cls or make).parameters if p != "self"]
        except (TypeError, ValueError):  # best effort to list accepted parameters
            accepted = []
        bad = [p for p in params if accepted and p not in accepted]
        hint = f"unknown parameter(s) {bad}; " if bad else ""
        raise ModelSpecError(
            f"cannot build {kind!r}: {hint}{exc}. Accepted parameters: {', '.join(accepted)}"
        ) from exc
    except ValueError as exc:
        raise ModelSpecError(f"cannot build {kind!r}: {exc}") from exc
