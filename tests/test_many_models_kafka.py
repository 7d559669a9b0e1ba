"""Many models through a real broker and workers: a template makes a model per tenant, a
challenger learns every event and late label of its champion and publishes nothing; both come
through a SIGKILL and a rebalance to a second worker with exact counts, the tenants spread over
the workers, and the sidecar sets the challenger beside its champion."""

from __future__ import annotations

import json
import pickle
import signal
import socket
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import ServiceProcs, TopicReader, wait_for
from tests.test_cli import run
from tests.test_many_models import CONFIG as UNIT_CONFIG

pytestmark = pytest.mark.kafka

# the unit tests' models, without their cap on a template's models
CONFIG = UNIT_CONFIG.replace("max_models = 2\n", "")
ENV = {"STREAMSVC_WORKER__STATUS_INTERVAL": "0.5", "STREAMSVC_WORKER__CHECKPOINT_EVERY": "150",
       "STREAMSVC_WORKER__COMMIT_INTERVAL": "0.05", "STREAMSVC_WORKER__SESSION_TIMEOUT": "6.0"}
TENANTS = [f"tenant-{c}" for c in "abcdefgh"]


def _event(i: int, model: str | None = None, labelled: bool = True) -> bytes:
    x = {"a": float(i % 10), "b": float((i * 7) % 13)}
    body: dict = {"id": f"{model or 'default'}-{i}", "x": x}
    if labelled:
        body["y"] = x["a"] > 4
    if model:
        body["model"] = model
    return json.dumps(body).encode()


def _learned(status: TopicReader, seen: dict, where: dict | None = None) -> dict[str, int]:
    """Examples learned per model (latest status of each shard); `where`: shard -> worker."""
    for s in status.poll():
        if s and "model" in s and "examples_learned" in s:
            seen[(s["model"], s.get("shard"))] = s["examples_learned"]
            if where is not None:
                where[s.get("shard")] = s.get("worker")
    out: dict[str, int] = {}
    for (model, _), n in seen.items():
        out[model] = out.get(model, 0) + n
    return out


def test_templates_and_challengers_learn_exactly_once_and_show_in_the_sidecar(
        service: ServiceProcs, tmp_path: Path) -> None:
    from kafka import KafkaProducer

    cfg = tmp_path / "streamsvc.toml"
    cfg.write_text(CONFIG)
    env = {**ENV, "STREAMSVC_CONFIG": str(cfg)}
    worker = service.start_worker(env=env)
    t = service.topics
    prod = KafkaProducer(bootstrap_servers=service.bootstrap)
    preds = TopicReader(service.bootstrap, t["predictions"])
    dead = TopicReader(service.bootstrap, t["dead_letters"])
    status = TopicReader(service.bootstrap, t["model_status"])
    seen: dict = {}
    try:
        # 1500 labelled events for the champion and 200 for each of two tenants; SIGKILL
        for i in range(1500):
            prod.send(t["events"], _event(i))
            if i < 200:
                prod.send(t["events"], _event(i, "tenant-a"))
                prod.send(t["events"], _event(i, "tenant-b"))
        prod.flush()
        wait_for(lambda: len(preds.poll()) >= 400, 90, "the worker at work")
        service.stop(worker, signal.SIGKILL)
        worker = service.start_worker(env=env)
        # 100 events whose labels come later, on `labels`: the challenger gets them too
        for i in range(1500, 1600):
            prod.send(t["events"], _event(i, labelled=False))
        prod.flush()
        wait_for(lambda: {p["id"] for p in preds.poll()} >= {f"default-{i}"
                                                              for i in range(1500, 1600)},
                 90, "the unlabelled events predicted")
        for i in range(1500, 1600):
            prod.send(t["labels"], json.dumps({"id": f"default-{i}",
                                               "y": i % 10 > 4}).encode())
        prod.send(t["events"], _event(0, "tenant-*"))  # a template's name: dead-lettered
        prod.send(t["events"], _event(0, "candidate"))  # a challenger's: to its champion
        prod.flush()
        want = {"default": 1601, "candidate": 1601, "tenant-a": 200, "tenant-b": 200}
        wait_for(lambda: _learned(status, seen) == want, 120,
                 "every model to learn its records once")
        # a second worker joins: the partitions it takes bring their made models and
        # challenger shards with them; six more tenants spread over both workers
        second = service.start_worker(env=env)
        for name in TENANTS[2:]:
            for i in range(50):
                prod.send(t["events"], _event(i, name))
        prod.flush()
        want.update({name: 50 for name in TENANTS[2:]})
        where: dict = {}
        wait_for(lambda: _learned(status, seen, where) == want and
                 len({where[n] for n in TENANTS}) == 2, 120,
                 "every model learned once, the tenants on both workers")
        time.sleep(3)  # nothing more comes: nothing learned twice after the moves
        assert _learned(status, seen) == want
        # predictions: one per event for each model a record named, none from the challenger
        def predicted() -> dict[str, int]:
            per_model: dict[str, set[str]] = {}
            for p in preds.poll():  # (a poll reads 500 messages at most: read until all came)
                per_model.setdefault(p["model"], set()).add(p["id"])
            return {m: len(ids) for m, ids in per_model.items()}

        expected = {m: n for m, n in want.items() if m != "candidate"}
        wait_for(lambda: predicted() == expected, 30, "one prediction per event")
        time.sleep(1)
        assert predicted() == expected
        [dl] = wait_for(dead.poll, 30, "a dead letter")
        assert "a template's name names no model" in dl["error"]
        # the sidecar: the challenger beside its champion, the tenants as models of their own
        port = _free_port()
        api = service.start("api", "--port", str(port), env=env, name="api")
        base = f"http://127.0.0.1:{port}"

        def champion() -> dict | None:
            try:
                r = httpx.get(f"{base}/models/default", timeout=2)
            except httpx.HTTPError:
                return None
            body = r.json() if r.status_code == 200 else {}
            rivals = body.get("challengers") or [{}]
            # the sidecar reads model-status from its start: wait until it has read them all
            return body if (rivals[0].get("examples_evaluated") or 0) >= 1591 else None

        champ = wait_for(champion, 60, "the sidecar to show the challenger")
        [ch] = champ["challengers"]
        assert ch["name"] == "candidate"
        assert ch["vs_champion"]["accuracy"] == pytest.approx(
            ch["accuracy"] - champ["accuracy"], abs=1e-5)
        names = [m["name"] for m in httpx.get(f"{base}/models", timeout=5).json()]
        assert names == ["candidate", "default", *TENANTS]
        tenant = httpx.get(f"{base}/models/tenant-a", timeout=5).json()
        assert tenant["template"] == "tenant-*" and tenant["examples_learned"] == 200
        service.stop(api)
        for w in (worker, second):  # a clean stop snapshots every partition
            assert service.stop(w) == 0
    finally:
        for r in (preds, dead, status):
            r.close()
        prod.close()
    cli_env = {**{k: v for k, v in service.env.items() if k.startswith("STREAMSVC_")}, **env}
    # a made model exports like a configured one
    r = run("export", "tenant-c", "--out", str(tmp_path / "c.pkl"), env=cli_env)
    assert r.returncode == 0, r.stderr
    model = pickle.loads((tmp_path / "c.pkl").read_bytes())
    assert model.predict_one({"a": 9.0, "b": 3.0}) in (True, False)
    # produce knows the names a template makes: no "not in this configuration" warning
    r = run("produce", "--synthetic", "sea-abrupt", "--count", "5", "--model", "tenant-z",
            env=cli_env)
    assert r.returncode == 0 and "warning" not in r.stderr, r.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
