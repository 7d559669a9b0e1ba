"""The README's Kafka examples, run in the order written against a real broker and worker:
every `streamsvc produce`/`tail` line of its "push events" block (on smaller counts), then its
`curl` of the model status, with the files the README makes or names before."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from pathlib import Path

import httpx

from tests.conftest import ServiceProcs, wait_for
from tests.test_cli import run
from tests.test_readme_examples import README, free_port, readme_steps

SMALLER = {"--count": "600", "--rate": "0"}  # the same commands, quicker


def kafka_block() -> list[str]:
    for block in re.findall(r"```bash\n(.*?)```", README.read_text(), flags=re.S):
        if "streamsvc produce --synthetic sea-abrupt" in block:
            return [ln.split("  #")[0].strip() for ln in block.splitlines() if ln.strip()]
    raise AssertionError("the README lost its block of Kafka examples")


def _argv(line: str, topics: dict[str, str]) -> list[str]:
    """The README's command with smaller counts, and the test's own names for the topics the
    README calls by their default names (`labels`, `predictions`, ...)."""
    named = {name: topics[role] for role, name in (
        ("labels", "labels"), ("predictions", "predictions"), ("drift_alerts", "drift-alerts"),
        ("dead_letters", "dead-letters"), ("events", "events"))}
    argv = shlex.split(line)[1:]
    argv = [SMALLER.get(argv[i - 1], a) if i else a for i, a in enumerate(argv)]
    if argv[0] == "tail":
        return [argv[0], named.get(argv[1], argv[1]), *argv[2:]]
    return [named.get(a, a) if i and argv[i - 1] == "--topic" else a for i, a in enumerate(argv)]


def _learned(port: int) -> int:
    try:
        r = httpx.get(f"http://127.0.0.1:{port}/models/default", timeout=5)
    except httpx.HTTPError:
        return 0
    return r.json().get("examples_learned", 0) if r.status_code == 200 else 0


def test_readme_kafka_examples_run_in_order(service: ServiceProcs, tmp_path: Path) -> None:
    rows = 0
    for kind, value in readme_steps():  # mydata.csv, made by the README's demo section
        if kind == "file":
            name, text = value
            (tmp_path / name).write_text(text)
            if name == "mydata.csv":
                rows = len([ln for ln in text.splitlines()[1:] if ln.strip()])
    assert rows > 0
    # the graph line is for a node_property model, as the README says next to it
    service.start_worker(env={"STREAMSVC_MODELS__GRAPH__KIND": "node_property"})
    env = {k: v for k, v in service.env.items() if k.startswith("STREAMSVC_")}
    env["STREAMSVC_MODELS__GRAPH__KIND"] = "node_property"
    port = free_port()
    service.start("api", "--port", str(port), env=env, name="api")
    lines = kafka_block()
    assert any(ln.startswith("streamsvc tail") for ln in lines)
    assert any(ln.startswith("curl") for ln in lines)
    for line in lines:
        if line.startswith(("pip ", "export ")):
            continue  # installed already; the broker address comes from the fixture
        if line.startswith("printf "):  # a file the block makes for its next line
            subprocess.run(line, shell=True, cwd=tmp_path, check=True)
            continue
        if line.startswith("curl"):
            # the synthetic stream and every row of mydata.csv: one model takes both
            wait_for(lambda: _learned(port) >= 600 + rows, 120,
                     "the README's curl to show what the model learned")
            assert _learned(port) == 600 + rows
            continue
        argv = _argv(line, service.topics)
        assert argv[0] in ("produce", "tail"), line
        if argv[0] == "tail":
            argv += ["--from-beginning", "--max", "5", "--timeout", "60"]
        r = run(*argv, cwd=tmp_path, env=env, timeout=240)
        assert r.returncode == 0, f"{line}\n{r.stderr[-2000:]}"
        if argv[0] == "tail":
            got = [json.loads(x) for x in r.stdout.splitlines()]
            assert len(got) == 5 and all("y_pred" in m for m in got), r.stdout[:500]

    def graph_seen() -> int:  # the worker publishes each model's status every 2 s
        try:
            r = httpx.get(f"http://127.0.0.1:{port}/models/graph", timeout=5)
        except httpx.HTTPError:
            return 0
        return r.json().get("examples_seen", 0) if r.status_code == 200 else 0

    wait_for(lambda: graph_seen() > 0, 60, "the graph model's status to show the edges")
