"""A synchronous environment-side client: send a transition, wait for the service's answer.

Used by `examples/cartpole_kafka.py` and the RL end-to-end test; plain kafka-python.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from kafka import KafkaConsumer, KafkaProducer


class TransitionClient:
    """Talks to a `stream_q` (answers on `actions`) or `stream_td` model (on
    `value-predictions`). Transitions are keyed by agent so one agent's steps stay in order."""

    def __init__(self, bootstrap: str, transitions: str, answers: str, model: str | None = None,
                 agent: str | None = None, timeout: float = 30.0) -> None:
        self.agent = agent or f"agent-{uuid.uuid4().hex[:8]}"
        self.model = model
        self.transitions = transitions
        self.timeout = timeout
        self.producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=0, acks=1)
        self.consumer = KafkaConsumer(answers, bootstrap_servers=bootstrap, group_id=None,
                                      auto_offset_reset="latest", enable_auto_commit=False,
                                      fetch_max_wait_ms=10)
        self._seq = 0
        self.latencies: list[float] = []
        self._wait_assignment()

    def _wait_assignment(self) -> None:
        deadline = time.monotonic() + self.timeout
        while not self.consumer.assignment() and time.monotonic() < deadline:
            self.consumer.poll(timeout_ms=100)
        for tp in self.consumer.assignment():
            self.consumer.position(tp)  # pin "latest" now, before the first transition

    def step(self, episode: str, obs: list[float], reward: float, done: bool,
             truncated: bool | None = None) -> dict[str, Any]:
        """Send one transition and block until its answer arrives; returns the answer.
        ``truncated`` (gymnasium's): the episode was cut by a time limit, not ended."""
        self._seq += 1
        msg = {"agent": self.agent, "episode": episode, "obs": [float(v) for v in obs],
               "reward": float(reward), "done": bool(done), "seq": self._seq}
        if truncated is not None:
            msg["truncated"] = bool(truncated)
        if self.model:
            msg["model"] = self.model
        start = time.perf_counter()
        self.producer.send(self.transitions, key=self.agent.encode(),
                           value=json.dumps(msg).encode())
        self.producer.flush()
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            for batch in self.consumer.poll(timeout_ms=50).values():
                for m in batch:
                    ans = json.loads(m.value)
                    if ans.get("agent") == self.agent and ans.get("seq") == self._seq:
                        self.latencies.append(time.perf_counter() - start)
                        return ans
        raise TimeoutError(
            f"no answer for {self.agent} step {self._seq} within {self.timeout:g} s. Is a "
            f"worker running with a stream_q or stream_td model? With several of them, name "
            f"one (model={self.model!r} now); `streamsvc tail dead-letters --from-beginning` "
            f"shows why the service refused a transition")

    def latency_ms(self) -> dict[str, float]:
        if not self.latencies:
            return {}
        xs = sorted(self.latencies)

        def q(p: float) -> float:
            return round(1000 * xs[min(len(xs) - 1, int(p * len(xs)))], 2)

        return {"n": len(xs), "p50": q(0.50), "p90": q(0.90), "p99": q(0.99),
                "max": round(1000 * xs[-1], 2)}

    def close(self) -> None:
        self.producer.close()
        self.consumer.close()
