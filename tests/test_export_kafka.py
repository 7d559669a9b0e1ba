"""`streamsvc export`: the model a worker learned, out of the checkpoints topic and into a
file that a notebook loads with pickle."""

from __future__ import annotations

import pickle
import signal
from pathlib import Path

import pytest

from tests.conftest import ServiceProcs, TopicReader, wait_for
from tests.test_cli import run

pytestmark = pytest.mark.kafka

ENV = {"STREAMSVC_MODELS__DEFAULT__KIND": "hoeffding_tree",
       "STREAMSVC_MODELS__WIDE__KIND": "hoeffding_tree", "STREAMSVC_MODELS__WIDE__SHARDS": "2",
       "STREAMSVC_WORKER__STATUS_INTERVAL": "1.0"}


def _learned(status: TopicReader, seen: dict[tuple[str, str], int]) -> dict[str, int]:
    """Examples learned per model, summed over its shards (latest status of each)."""
    for s in status.poll():
        if s and "model" in s and "examples_learned" in s:
            seen[(s["model"], s.get("shard"))] = s["examples_learned"]
    out: dict[str, int] = {}
    for (model, _), n in seen.items():
        out[model] = out.get(model, 0) + n
    return out


def test_export_writes_the_learned_model_for_a_notebook(service: ServiceProcs,
                                                         tmp_path: Path) -> None:
    env = {**{k: v for k, v in service.env.items() if k.startswith("STREAMSVC_")}, **ENV}
    worker = service.start_worker(env=ENV)
    status = TopicReader(service.broker.bootstrap, service.topics["model_status"])
    try:
        for model in ("default", "wide"):
            r = run("produce", "--synthetic", "sea-abrupt", "--count", "300", "--model", model,
                    env=env)
            assert r.returncode == 0, r.stderr
        seen: dict[tuple[str, str], int] = {}
        wait_for(lambda: _learned(status, seen) == {"default": 300, "wide": 300}, 90,
                 "the worker to learn the 300 events of each model")
    finally:
        status.close()
    assert service.stop(worker, signal.SIGTERM) == 0  # a clean stop snapshots every partition
    out = tmp_path / "default.pkl"
    r = run("export", "default", "--out", str(out), env=env)
    assert r.returncode == 0, r.stderr
    assert "model 'default'" in r.stderr and "pickle.load" in r.stderr
    model = pickle.loads(out.read_bytes())
    # the worker's own learner: it has seen both labels and answers like any river model
    assert set(model.predict_proba_one({"0": 5.0, "1": 5.0, "2": 5.0})) == {False, True}
    assert model.n_nodes >= 1
    r = run("export", "default", "--out", str(out), env=env)
    assert r.returncode == 2 and "--force" in r.stderr
    # a model with two shards: a list of its replicas, each trained on its half of the ids
    r = run("export", "wide", "--out", str(tmp_path / "wide.pkl"), env=env)
    assert r.returncode == 0 and "a list of 2" in r.stderr, r.stderr
    replicas = pickle.loads((tmp_path / "wide.pkl").read_bytes())
    assert len(replicas) == 2 and all(m.n_nodes >= 1 for m in replicas)
    # a reader that expects signed snapshots refuses these unsigned ones before unpickling
    r = run("export", "default", "--out", str(tmp_path / "signed.pkl"),
            env={**env, "STREAMSVC_WORKER__SNAPSHOT_KEY": "k" * 32})
    assert r.returncode == 1 and "refused, not read" in r.stderr, r.stderr
    assert "rebuilt by replaying" not in r.stderr and not (tmp_path / "signed.pkl").exists()
    r = run("export", "defualt", env=env)
    assert r.returncode == 2 and "did you mean 'default'?" in r.stderr
