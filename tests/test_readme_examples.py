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
