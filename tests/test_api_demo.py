"""`streamsvc demo --serve` shows rejected rows as the Kafka service does: dead letters by
reason in /workers (the dashboard's panel) and in /metrics."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from streamsvc.devbroker import free_port
from tests.conftest import stop_group, wait_for


def _messy_csv(path: Path) -> None:
    rng = random.Random(0)
    rows = ["a,b,label"]
    for i in range(600):
        a, b = rng.random(), rng.random()
        rows.append(f"{a},oops,{int(a > 0.5)}" if i % 50 == 7 else
                    f"{a}" if i % 50 == 9 else f"{a},{b},{int(a > 0.5)}")
    path.write_text("\n".join(rows) + "\n")


def test_demo_serve_shows_dead_letters_in_workers_and_metrics(tmp_path: Path) -> None:
    _messy_csv(tmp_path / "messy.csv")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = open(tmp_path / "demo.log", "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamsvc.cli", "demo", "--file", "messy.csv", "--target",
         "label", "--serve", "--port", str(port)], cwd=tmp_path, stdout=log,
        stderr=subprocess.STDOUT, start_new_session=True, env={**os.environ,
                                                                "PYTHONUNBUFFERED": "1"})
    try:
        def done() -> bool:
            if proc.poll() is not None:
                raise AssertionError((tmp_path / "demo.log").read_text())
            return "Dashboard:" in (tmp_path / "demo.log").read_text()

        wait_for(done, 120, "demo finished, dashboard kept up")
        workers = httpx.get(f"{url}/workers", timeout=5).json()
        assert [w["worker"] for w in workers] == ["embedded"]
        w = workers[0]
        assert w["counters"]["dead_letters"] == 24 and w["counters"]["events_in"] == 600
        assert w["dead_letters_by_reason"] == {"text in numeric column 'b'": 12,
                                               "too few values": 12}
        metrics = httpx.get(f"{url}/metrics", timeout=5).text
        assert 'streamsvc_dead_letters{worker="embedded"} 24.0' in metrics
        assert ('streamsvc_dead_letters_total{reason="too few values",worker="embedded"} 12.0'
                in metrics)
        model = httpx.get(f"{url}/models/default", timeout=5).json()
        assert model["examples_learned"] == 576
        ready = httpx.get(f"{url}/ready", timeout=5).json()
        assert ready["ready"] and ready["workers"] == ["embedded"]
    finally:
        stop_group(proc, signal.SIGINT, 20)
        log.close()
