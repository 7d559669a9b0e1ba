"""Transitions and edges through the real broker and worker."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaProducer

from streamsvc.rl_client import TransitionClient
from tests.conftest import ServiceProcs, TopicReader, wait_for

pytestmark = pytest.mark.kafka

MODELS_ENV = {
    "STREAMSVC_MODELS__CART__KIND": "stream_q",
    "STREAMSVC_MODELS__CART__PARAMS__N_ACTIONS": "2",
    "STREAMSVC_MODELS__VALUE__KIND": "stream_td",
    "STREAMSVC_MODELS__GRAPH__KIND": "node_property",
    "STREAMSVC_WORKER__STATUS_INTERVAL": "1.0",
}


def _ready_worker(service: ServiceProcs):
    return service.start_worker(MODELS_ENV)


def test_cartpole_episodes_through_kafka_with_latency(service: ServiceProcs) -> None:
    gym = pytest.importorskip("gymnasium")
    worker = _ready_worker(service)
    t = service.topics
    client = TransitionClient(service.broker.bootstrap, t["transitions"], t["actions"],
                              model="cart", timeout=60)
    env = gym.make("CartPole-v1", max_episode_steps=500)
    steps = 0
    try:
        for ep in range(3):
            obs, _ = env.reset(seed=ep)
            ans = client.step(f"ep{ep}", obs.tolist(), 0.0, False)
            assert ans["step"] == 0 and ans["action"] in (0, 1)
            done = False
            while not done:
                obs, r, term, trunc, _ = env.step(ans["action"])
                done = term or trunc
                ans = client.step(f"ep{ep}", obs.tolist(), r, term, truncated=trunc)
                steps += 1
            assert ans["done"]
        lat = client.latency_ms()
        print(f"\nCartPole through Kafka: {steps} steps, round-trip latency ms {lat}")
        assert lat["n"] == steps + 3 and lat["p50"] > 0
        # a malformed transition (wrong observation size) goes to dead-letters, service goes on
        prod = KafkaProducer(bootstrap_servers=service.broker.bootstrap)
        for bad in [{"agent": "x", "episode": "1", "obs": [1.0, 2.0], "model": "cart"},
                    {"agent": "x", "episode": "1", "model": "cart"},
                    {"agent": "x", "episode": "1", "obs": [1, 2, 3, "NaN"], "model": "cart"}]:
            prod.send(t["transitions"], json.dumps(bad).encode())
        prod.send(t["transitions"], b'{"agent": "x", "episode": "1", "obs": [NaN, 1, 2, 3]}')
        prod.flush()
        prod.close()
        dead = TopicReader(service.broker.bootstrap, t["dead_letters"])
        wait_for(lambda: len([d for d in dead.poll() if d["topic"] == t["transitions"]]) >= 4,
                 60, "malformed transitions in dead-letters")
        errors = " | ".join(d["error"] for d in dead.messages)
        assert "obs_dim=4" in errors and "missing 'obs'" in errors
        dead.close()
        ans = client.step("after", [0.0, 0.0, 0.0, 0.0], 0.0, False)
        assert ans["action"] in (0, 1)
        assert worker.poll() is None
    finally:
        client.close()
        env.close()


def test_the_cartpole_example_says_why_it_got_no_answer(kafka_broker: Any) -> None:
    # no worker reads these topics: the example ends in one sentence that names the usual
    # causes, not in a TimeoutError traceback
    pytest.importorskip("gymnasium")
    example = Path(__file__).resolve().parents[1] / "examples" / "cartpole_kafka.py"
    r = subprocess.run([sys.executable, str(example), "--broker",
                        kafka_broker.bootstrap, "--episodes", "1", "--timeout", "3"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 1, r.stderr
    assert "Traceback" not in r.stderr
    assert "no answer for agent-" in r.stderr and "stream_q or stream_td" in r.stderr
    assert "streamsvc tail dead-letters" in r.stderr


def test_td_values_and_interleaved_agents(service: ServiceProcs) -> None:
    _ready_worker(service)
    t = service.topics
    a = TransitionClient(service.broker.bootstrap, t["transitions"], t["values"], model="value",
                         agent="sensor-a", timeout=60)
    b = TransitionClient(service.broker.bootstrap, t["transitions"], t["values"], model="value",
                         agent="sensor-b", timeout=60)
    try:
        for i in range(30):  # two agents' episodes interleaved on one topic
            va = a.step("1", [i / 30.0, 1.0], 1.0 if i else 0.0, i == 29)
            vb = b.step("7", [1.0 - i / 30.0, 0.0], 0.0, False)
            assert va["step"] == i and vb["step"] == i
            assert va["agent"] == "sensor-a" and vb["agent"] == "sensor-b"
        assert va["done"] and va["value"] == 0.0
        assert isinstance(vb["value"], float)
    finally:
        a.close()
        b.close()


def test_edges_to_node_predictions(service: ServiceProcs) -> None:
    _ready_worker(service)
    t = service.topics
    rng = random.Random(0)
    prod = KafkaProducer(bootstrap_servers=service.broker.bootstrap, linger_ms=5)
    n_edges = 1500
    for i in range(n_edges):
        c = rng.randrange(2)
        src = f"n{c}-{rng.randrange(40)}"
        dst = f"n{c}-{rng.randrange(40)}" if rng.random() < 0.9 else f"n{1 - c}-{rng.randrange(40)}"
        edge = {"src": src, "dst": dst, "ts": float(i), "model": "graph"}
        if rng.random() < 0.3:
            edge["y"] = f"community-{c}"
        prod.send(t["edges"], json.dumps(edge).encode())
    prod.send(t["edges"], b'{"src": "a", "dst": "b"}')             # no ts
    prod.send(t["edges"], b'{"src": "a", "dst": "b", "ts": "x"}')  # bad ts
    prod.send(t["node_labels"], json.dumps({"node": "n0-1", "y": "community-0", "ts": 2000.0,
                                            "model": "graph"}).encode())
    prod.flush()
    prod.close()
    preds = TopicReader(service.broker.bootstrap, t["node_predictions"])
    wait_for(lambda: len(preds.poll()) >= n_edges, 120, "a node prediction per edge")
    late = preds.messages[-300:]
    truth = [int(p["node"].split("-")[0][1]) for p in late if p["y_pred"] is not None]
    hits = sum(p["y_pred"] == f"community-{c}" for p, c in
               zip([p for p in late if p["y_pred"] is not None], truth, strict=True))
    assert len(truth) > 250 and hits / len(truth) > 0.8, (hits, len(truth))
    dead = TopicReader(service.broker.bootstrap, t["dead_letters"])
    wait_for(lambda: len([d for d in dead.poll() if d["topic"] == t["edges"]]) >= 2, 60,
             "malformed edges in dead-letters")
    preds.close()
    dead.close()
