"""Hosting of a stream TD(λ)/Q(λ) model: transitions in, actions or values out."""

from __future__ import annotations

import math
from typing import Any

from agents.host import HostLimits, Out, model_inspect
from models.streamx.base import MAX_MAGNITUDE


def _check_numbers(obs: Any, reward: Any) -> None:
    """Plain-words refusal of an observation or reward the learner must not learn from."""
    _check_number("reward", reward)
    for i, v in enumerate(obs):
        _check_number(f"obs[{i}]", v)


def _check_number(name: str, value: Any) -> None:
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"{name} is not a finite number ({value!r}); nothing was learned")
    if abs(v) > MAX_MAGNITUDE:
        raise ValueError(f"{name} = {v:g} is beyond ±{MAX_MAGNITUDE:g}, too large to learn "
                         "from; nothing was learned")


class RLHost:
    """One shard of a `stream_q` / `stream_td` model. Many agents' episodes may interleave on
    one topic; the learner keeps each agent's traces and episode apart."""

    def __init__(self, spec: Any, shard: str, limits: HostLimits) -> None:
        self.name = spec.name
        self.kind = spec.kind
        self.shard = shard
        self.model = spec.build()
        self.transitions = 0
        self.episodes_done = 0

    def handle(self, kind: str, msg: Any, now: float, src: dict[str, Any]) -> list[Out]:
        # Refuse BEFORE learning: a transition the learner cannot take in (non-finite, or so
        # large that its square overflows the shared running statistics) would otherwise
        # poison the model for every later transition. The ValueError becomes a dead letter.
        _check_numbers(msg.obs, msg.reward)
        out = self.model.step(msg.agent, msg.episode, msg.obs, msg.reward, msg.done,
                              truncated=msg.truncated)
        numbers = [out.get("value", 0.0), *out.get("q", [])]
        if not all(math.isfinite(float(v)) for v in numbers):  # last resort; should not happen
            raise ValueError("the model's output is not finite (reward far outside the range "
                             "it can learn from?)")
        self.transitions += 1
        self.episodes_done += int(msg.done or bool(msg.truncated))
        base = {"model": self.name, "agent": msg.agent, "episode": msg.episode,
                "ts": msg.ts if msg.ts is not None else now}
        if msg.seq is not None:
            base["seq"] = msg.seq
        if self.kind == "stream_q":
            action = {**base, "step": out["step"], "action": int(out["action"]),
                      "greedy": bool(out["greedy"]), "epsilon": round(float(out["epsilon"]), 5),
                      "q": [round(float(q), 5) for q in out["q"]], "done": bool(out["done"])}
            return [("actions", msg.agent, action)]
        value = {**base, "step": out["step"], "value": float(out["value"]),
                 "done": bool(out["done"])}
        return [("values", msg.agent, value)]

    def tick(self, now: float) -> list[Out]:
        return []

    def status(self) -> dict[str, Any]:
        inspect = model_inspect(self.model)
        return {
            "model": self.name, "shard": self.shard, "kind": self.kind, "family": "rl",
            "examples_seen": self.transitions, "examples_learned": self.transitions,
            "episodes_finished": self.episodes_done, "inspect": inspect,
        }
