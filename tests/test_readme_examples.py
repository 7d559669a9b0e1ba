"""The README's no-Kafka examples, run in the order written: every `streamsvc demo` command of
its bash blocks (on a small count) and the files its heredocs create, in one folder, as a new
user following it line by line would."""

from __future__ import annotations

import json
import re
import shlex
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

README = Path(__file__).resolve().parents[1] / "README.md"
COUNT = "400"


def readme_steps() -> list[tuple[str, object]]:
    """("file", (name, text)) for `cat > name <<'EOF'` heredocs and ("demo", argv) for
    `streamsvc demo ...` lines (the last command of an `&&` chain), in README order."""
    steps: list[tuple[str, object]] = []
    for block in re.findall(r"```bash\n(.*?)```", README.read_text(), flags=re.S):
        lines = iter(block.splitlines())
        for line in lines:
            here = re.match(r"cat > (\S+) <<'(\w+)'$", line.strip())
            if here:
                body = []
                for more in lines:
                    if more.strip() == here.group(2):
                        break
                    body.append(more)
                steps.append(("file", (here.group(1), "\n".join(body) + "\n")))
                continue
            cmd = line.split("&&")[-1].split("#")[0].strip()
            if cmd.startswith("streamsvc demo"):
                steps.append(("demo", shlex.split(cmd)[2:]))
    return steps


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_readme_shows_the_demo_examples() -> None:
    steps = readme_steps()
    demos = [argv for kind, argv in steps if kind == "demo"]
    assert [] in demos and ["--serve"] in demos  # `streamsvc demo` and `streamsvc demo --serve`
    assert any("--file" in argv for argv in demos)
    files = [name for kind, (name, _) in ((k, v) for k, v in steps if k == "file")]
    assert "mydata.csv" in files


def test_readme_demo_examples_run_in_order(tmp_path: Path) -> None:
    ran = 0
    for n, (kind, what) in enumerate(readme_steps()):
        if kind == "file":
            name, text = what
            (tmp_path / name).write_text(text)
            continue
        argv = list(what)
        out = f"out{n}"
        if "--file" not in argv:
            if "--count" in argv:
                argv[argv.index("--count") + 1] = COUNT
            else:
                argv += ["--count", COUNT]
        argv += ["--out", out]
        cmd = [sys.executable, "-m", "streamsvc.cli", "demo", *argv]
        if "--serve" in argv:
            port = free_port()
            proc = subprocess.Popen([*cmd, "--port", str(port)], cwd=tmp_path, text=True,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            try:
                deadline = time.monotonic() + 120
                while time.monotonic() < deadline:
                    line = proc.stdout.readline()
                    assert line or proc.poll() is None, proc.stderr.read()
                    if line.startswith("Dashboard:"):
                        break
                else:
                    raise AssertionError("demo --serve never said the dashboard was up")
                page = httpx.get(f"http://127.0.0.1:{port}/", timeout=10)
                assert page.status_code == 200 and "<html" in page.text.lower()
                models = httpx.get(f"http://127.0.0.1:{port}/models", timeout=10).json()
                assert models, models
            finally:
                proc.terminate()
                proc.wait(30)
        else:
            r = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300)
            assert r.returncode == 0, (argv, r.stdout, r.stderr)
            assert "Traceback" not in r.stderr and "== streamsvc demo" in r.stdout
        status = json.loads((tmp_path / out / "status.json").read_text())
        assert status["examples_learned"] > 0, (argv, status)
        for name in ("predictions.jsonl", "drift-alerts.jsonl", "dead-letters.jsonl"):
            assert (tmp_path / out / name).exists(), (argv, name)
        if "--file" in argv:
            assert status["examples_learned"] == len(
                (tmp_path / argv[argv.index("--file") + 1]).read_text().splitlines()) - 1
            assert (tmp_path / out / "dead-letters.jsonl").read_text() == ""
        ran += 1
    assert ran >= 4


# -- the README's Kafka block: its records, in its order, through the worker's processing path --
def readme_kafka_block() -> list[str]:
    for block in re.findall(r"```bash\n(.*?)```", README.read_text(), flags=re.S):
        if "streamsvc produce --synthetic sea-abrupt" in block:
            return [ln.split("  #")[0].strip() for ln in block.splitlines()
                    if ln.strip().startswith("streamsvc produce")]
    raise AssertionError("the README lost its block of Kafka examples")


def _through_the_worker_path(folder: Path, lines: list[str], count: int = 600
                             ) -> tuple[list[str], dict]:
    """What the README's `produce` lines send to `events` (read by produce's own functions:
    its parser, `synthetic_examples`, `ExampleFile.from_args`), handed in order to the shipped
    config's models through `route` and `Processor` (the worker's pipeline): the dead-letter
    reasons and the default model's status."""
    import os

    from agents.host import HostLimits
    from agents.messages import BadRecord
    from agents.processor import Processor, route
    from streamsvc.cli import build_parser
    from streamsvc.client import GRAPH_STREAMS, synthetic_examples
    from streamsvc.config import load_settings
    from streamsvc.files import BadRow, ExampleFile, is_json_lines

    settings = load_settings(None, {})
    proc = Processor(settings.models, HostLimits())
    dead: list[str] = []
    offset = 0
    sent_files = 0
    for line in lines:
        args = build_parser().parse_args(shlex.split(line)[1:])
        if args.synthetic in GRAPH_STREAMS or args.topic:  # edges; labels for earlier ids
            continue
        if args.file:
            assert not is_json_lines(args.file), line
            cwd = os.getcwd()
            os.chdir(folder)  # the README's relative file name
            try:
                examples = list(ExampleFile.from_args(args, guess_target=False))
            finally:
                os.chdir(cwd)
            assert not [e for e in examples if isinstance(e, BadRow)], line
            items = [(e.id, e.x, e.y) for e in examples]
            sent_files += len(items)
        else:
            items = list(synthetic_examples(args.synthetic, count, args.seed))
        for rid, x, y in items:
            msg = {"id": rid, "x": x, **({"y": y} if y is not None else {})}
            if args.model:
                msg["model"] = args.model
            offset += 1
            try:
                _, value = route("events", json.dumps(msg).encode(), proc.specs,
                                 {"topic": "events", "partition": 0, "offset": offset})
                outs = proc.handle(0, offset, value, 0.0)
            except BadRecord as exc:
                dead.append(str(exc))
                continue
            dead += [v["error"] for role, _, v in outs if role == "dead_letters"]
    (status,) = [s for s in proc.statuses() if s["model"] == "default"]
    return dead, {**status, "file_rows": sent_files}


def test_readme_kafka_examples_fit_one_model_in_the_order_written(tmp_path: Path) -> None:
    """Issue 14, item 6: after `produce --synthetic sea-abrupt`, the README's next example
    (`produce --file mydata.csv`) goes to the same default model; its labels must be of the
    type the synthetic stream taught it, or every row is a dead letter (seen only in the
    worker's outputs). Checked on the worker's own processing path, and shown to catch the
    old conflict (0/1 labels)."""
    for kind, value in readme_steps():
        if kind == "file":
            name, text = value
            (tmp_path / name).write_text(text)
    lines = readme_kafka_block()
    assert any("--file mydata.csv" in ln for ln in lines)
    assert lines[0].startswith("streamsvc produce --synthetic sea-abrupt")
    dead, status = _through_the_worker_path(tmp_path, lines)
    assert dead == [] and status["file_rows"] == 6
    assert status["examples_learned"] == 600 + 6, status

    mydata = tmp_path / "mydata.csv"  # the README's file with the 0/1 labels it used to have
    mydata.write_text(mydata.read_text().replace(",false\n", ",0\n").replace(",true\n", ",1\n"))
    dead, status = _through_the_worker_path(tmp_path, lines)
    assert len(dead) == 6 and status["examples_learned"] == 600
    assert all("label" in d for d in dead), dead
