"""`streamsvc demo --file` as a new user meets it with their own messy data: bad rows are
reported with file and line, skipped, counted and dead-lettered; the run goes on; whole-file
problems and a busy port are one clear sentence and exit code 2; never a traceback."""

from __future__ import annotations

import json
import random
import socket
import subprocess
import sys
from pathlib import Path

import pytest


def demo(*args: str, cwd: Path | None = None, timeout: float = 180
         ) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "streamsvc.cli", "demo", *args],
                          capture_output=True, text=True, cwd=cwd, timeout=timeout)


def no_traceback(r: subprocess.CompletedProcess) -> None:
    assert "Traceback" not in r.stderr and "Error:" not in r.stderr, r.stderr


def messy_csv(path: Path, n: int = 400, seed: int = 1) -> dict[int, str]:
    """A CSV as users have them: pandas-style 1.0/0.0 labels, short and long rows, text in a
    numeric column, missing labels and values. Returns {line: category} of the bad rows."""
    rnd = random.Random(seed)
    lines, bad = ["temp,pressure,colour,label"], {}
    for i in range(n):
        t, p = rnd.uniform(0, 40), rnd.uniform(950, 1050)
        lines.append(f"{t:.2f},{p:.1f},{rnd.choice(['red', 'blue'])},{float(t > 20)}")
        line = len(lines) + 1
        if i % 50 == 10:
            lines.append(f"{t:.2f},{p:.1f}")
            bad[line] = "too few values"
        elif i % 50 == 20:
            lines.append(f"{t:.2f},{p:.1f},red,1.0,extra")
            bad[line] = "too many values"
        elif i % 50 == 30:
            lines.append("warm,1000,red,1.0")
            bad[line] = "text in numeric column 'temp'"
        elif i % 50 == 40:
            lines.append(f"{t:.2f},{p:.1f},red,")
            bad[line] = "no label"
        elif i % 50 == 45:
            lines.append(f"NA,{p:.1f},blue,0.0")  # a missing value: the row is kept
    path.write_text("\n".join(lines) + "\n")
    return bad


def test_messy_csv_goes_on_and_says_what_it_skipped(tmp_path: Path) -> None:
    csv = tmp_path / "mine.csv"
    bad = messy_csv(csv)
    out = tmp_path / "o"
    r = demo("--file", str(csv), "--out", str(out))
    no_traceback(r)
    assert r.returncode == 0, r.stderr
    assert "using column 'label' as the label (the last column); pass --target to choose" \
        in r.stdout
    first = min(bad)
    assert f"mine.csv:{first}: skipped: 2 values, but the header has 4 columns" in r.stderr
    assert f"rejected rows   {len(bad)} of " in r.stdout
    for category in ("too few values", "too many values", "text in numeric column 'temp'",
                     "no label"):
        n = sum(c == category for c in bad.values())
        lines = sorted(ln for ln, c in bad.items() if c == category)[:3]
        assert f"{n:>6} × {category} (lines {', '.join(map(str, lines))}, …)" in r.stdout
    letters = [json.loads(s) for s in (out / "dead-letters.jsonl").read_text().splitlines()]
    assert {d["line"]: d for d in letters}.keys() == bad.keys()
    short = next(d for d in letters if d["line"] == first)
    assert short["error"] == "2 values, but the header has 4 columns"
    assert short["file"] == "mine.csv" and short["raw"].count(",") == 1
    status = json.loads((out / "status.json").read_text())
    good = 400 + 8  # every generated row, and the 8 rows with NA (a missing value) too
    assert status["examples_learned"] == good and status["accuracy"] > 0.8
    assert len((out / "predictions.jsonl").read_text().splitlines()) == good


def test_most_rows_rejected_exits_3(tmp_path: Path) -> None:
    csv = tmp_path / "d.csv"
    csv.write_text("a,b,label\n" + "".join(f"{i},{i % 3},{i % 2 + 0.5}\n" for i in range(60)))
    r = demo("--file", str(csv), "--out", str(tmp_path / "o"))
    no_traceback(r)
    assert r.returncode == 3, r.stdout + r.stderr
    assert "most rows of" in r.stderr and "were rejected (60 of 60)" in r.stderr
    assert "60 × label is a decimal number (lines 2, 3, 4, …)" in r.stdout
    assert "pass --label-type str" in r.stderr
    r = demo("--file", str(csv), "--label-type", "str", "--out", str(tmp_path / "o2"))
    assert r.returncode == 0 and "rejected rows" not in r.stdout
    assert json.loads((tmp_path / "o2" / "status.json").read_text())["examples_learned"] == 60


def test_pandas_labels_are_learned_as_integers(tmp_path: Path) -> None:
    csv = tmp_path / "p.csv"
    csv.write_text("a,b,y\n" + "".join(f"{i % 10},{i % 7},{float(i % 10 > 4)}\n"
                                       for i in range(300)))
    r = demo("--file", str(csv), "--out", str(tmp_path / "o"))
    assert r.returncode == 0, r.stderr
    status = json.loads((tmp_path / "o" / "status.json").read_text())
    assert status["examples_learned"] == 300
    preds = [json.loads(s) for s in (tmp_path / "o" / "predictions.jsonl").read_text()
             .splitlines()]
    assert {p["y_pred"] for p in preds[50:]} <= {0, 1}


def test_one_bad_jsonl_line_does_not_end_the_demo(tmp_path: Path) -> None:
    p = tmp_path / "d.jsonl"
    rows = [json.dumps({"a": i % 10, "b": i % 3, "y": int(i % 10 > 4)}) for i in range(200)]
    rows.insert(50, '{"a": 1, "b": ')
    p.write_text("\n".join(rows) + "\n")
    r = demo("--file", str(p), "--out", str(tmp_path / "o"))
    no_traceback(r)
    assert r.returncode == 0, r.stderr
    assert "using key 'y' as the label (the usual name of a label)" in r.stdout
    assert "d.jsonl:51: skipped: not valid JSON" in r.stderr
    assert json.loads((tmp_path / "o" / "status.json").read_text())["examples_learned"] == 200


@pytest.mark.parametrize("make,extra,words", [
    (None, [], "streamsvc demo: no such file: {path}"),
    ("", [], "streamsvc demo: {path} is empty"),
    ("a,b,label\n", [], "streamsvc demo: {path} has no data rows (only a header)"),
    ("a,b,label\n1,2,0\n", ["--target", "lable"],
     "streamsvc demo: --target column 'lable' is not in {path} (columns: a, b, label)"),
])
def test_whole_file_problems_exit_2_and_write_nothing(tmp_path: Path, make: str | None,
                                                      extra: list[str], words: str) -> None:
    path = tmp_path / "in.csv"
    if make is not None:
        path.write_text(make)
    out = tmp_path / "o"
    r = demo("--file", str(path), *extra, "--out", str(out))
    no_traceback(r)
    assert r.returncode == 2 and r.stderr.strip() == words.format(path=path), r.stderr
    assert not out.exists()


def test_serve_on_a_busy_port_fails_before_running(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        r = demo("--serve", "--port", str(port), "--count", "200", "--out", str(tmp_path / "o"),
                 timeout=60)
    no_traceback(r)
    assert r.returncode == 2
    assert f"streamsvc demo: port {port} is already in use" in r.stderr
    assert "dashboard live" not in r.stdout and not (tmp_path / "o").exists()


def test_a_pandas_export_with_its_index_and_a_gap_in_the_labels(tmp_path: Path) -> None:
    """df.to_csv() as pandas writes it: an unnamed index column, 1.0/0.0 labels and an empty
    label where the column had a gap. The index is the event id (said), not a feature."""
    rng = random.Random(3)
    rows = [",temp,valve,label"]
    for i in range(300):
        t = rng.uniform(0, 40)
        rows.append(f"{i},{t:.2f},{rng.choice(['open', 'shut'])},"
                    f"{'' if i == 100 else float(t > 20)}")
    (tmp_path / "export.csv").write_text("\n".join(rows) + "\n")
    r = demo("--file", "export.csv", "--out", "o", cwd=tmp_path)
    no_traceback(r)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[:3] == [
        "using column 'label' as the label (the last column); pass --target to choose",
        "'column 1' has no name and counts the rows (a pandas index?): used as the event id, "
        "not as a feature",
        "features: 1 numeric (temp), 1 text (valve)"]
    assert "export.csv:102: skipped: no label (column 'label' is empty or missing)" in r.stderr
    preds = [json.loads(s) for s in (tmp_path / "o" / "predictions.jsonl").read_text()
             .splitlines()]
    assert [p["id"] for p in preds[:3]] == ["0", "1", "2"] and len(preds) == 299
    status = json.loads((tmp_path / "o" / "status.json").read_text())
    assert status["examples_learned"] == 299 and status["accuracy"] > 0.85
    # the rolling window (1,000 by default) over the 298 examples scored (the first one has
    # nothing to be predicted from) is said as 298, not as the 299 learned
    assert status["examples_evaluated"] == 298
    assert f"rolling acc.    {status['rolling_accuracy']:.4f} (last 298 examples)" in r.stdout


def test_an_unclosed_quote_is_named_as_the_reason(tmp_path: Path) -> None:
    csv = tmp_path / "q.csv"
    csv.write_text("a,b,label\n1,2,x\n\"3,4,y\n5,6,x\n7,8,y\n")
    r = demo("--file", str(csv), "--out", str(tmp_path / "o"))
    no_traceback(r)
    assert f"{csv.name}:3: skipped: a quote (\") opened in this row is never closed" in r.stderr
