"""The command line as a user meets it: help, demo, produce/tail, clear errors."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ServiceProcs


def run(*args: str, cwd: Path | None = None, env: dict | None = None, timeout: float = 180
        ) -> subprocess.CompletedProcess:
    import os

    return subprocess.run([sys.executable, "-m", "streamsvc.cli", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=timeout, env={**os.environ, **(env or {})})


def test_help_lists_every_command() -> None:
    out = run("--help").stdout
    for cmd in ("worker", "api", "produce", "tail", "demo", "dev-broker"):
        assert cmd in out
    for cmd in ("worker", "api", "produce", "tail", "demo", "dev-broker", "worker-alive",
                "schemas", "export"):
        r = run(cmd, "--help")
        assert r.returncode == 0 and "usage: streamsvc " + cmd in r.stdout
        # a paragraph that says what the command does, between the usage and the options
        assert not r.stdout.split("\n\n")[1].startswith(("positional", "options")), cmd


def test_demo_runs_and_summarises(tmp_path: Path) -> None:
    r = run("demo", "--count", "6000", "--stream", "sea-abrupt", "--out", str(tmp_path / "o"))
    assert r.returncode == 0, r.stderr
    assert "== streamsvc demo" in r.stdout and "accuracy" in r.stdout
    assert "true drifts at  1500, 3000, 4500" in r.stdout
    preds = (tmp_path / "o" / "predictions.jsonl").read_text().splitlines()
    assert len(preds) == 6000
    status = json.loads((tmp_path / "o" / "status.json").read_text())
    assert status["examples_learned"] == 6000 and status["accuracy"] > 0.7


def test_demo_on_a_csv_file(tmp_path: Path) -> None:
    csv = tmp_path / "d.csv"
    rows = ["a,b,colour,label"] + [f"{i % 7},{(i * 3) % 5},{'red' if i % 2 else 'blue'},"
                                   f"{int(i % 7 > 3)}" for i in range(800)]
    csv.write_text("\n".join(rows) + "\n")
    r = run("demo", "--file", str(csv), "--out", str(tmp_path / "o"))
    assert r.returncode == 0, r.stderr
    status = json.loads((tmp_path / "o" / "status.json").read_text())
    assert status["examples_learned"] == 800 and status["accuracy"] > 0.8


def test_clear_errors_for_wrong_use(tmp_path: Path) -> None:
    r = run("demo", "--stream", "nope")
    assert r.returncode == 2 and "unknown stream 'nope'" in r.stderr
    bad = tmp_path / "bad.toml"
    bad.write_text("[kafka]\nbrokr = 1\n")
    r = run("worker", "--config", str(bad))
    assert r.returncode == 2 and "kafka.brokr" in r.stderr
    r = run("produce", "--file", str(tmp_path / "missing.csv"))
    assert r.returncode != 0 and "no such file" in r.stderr
    r = run("produce")
    assert r.returncode == 2 and "one of the arguments" in r.stderr
    r = run("demo", "--count", "0", "--out", str(tmp_path / "zero"))
    assert r.returncode == 2 and "--count must be at least 1" in r.stderr
    assert not (tmp_path / "zero").exists(), "a refused demo must not touch the output folder"


def test_demo_help_names_the_files_it_writes_and_the_bar_ends_full(tmp_path: Path) -> None:
    assert "drift-alerts.jsonl, dead-letters.jsonl" in " ".join(run("demo", "--help").stdout
                                                                 .split())
    help_ = run("demo", "--help").stdout
    assert "without Kafka" in help_ and "--broker" not in help_  # the demo has no broker
    assert "--seed SEED           built-in stream seed" in help_
    r = run("demo", "--count", "700", "--out", str(tmp_path / "o"))
    # the bar's last state, whatever refreshes a loaded machine interleaved before it
    last = [part for part in re.split(r"[\r\n]", r.stderr) if part.strip()][-1]
    assert r.returncode == 0 and "700/700" in last, last


@pytest.mark.parametrize("args, said", [
    (("dev-broker", "--partitions", "0"), "--partitions: must be at least 1, got 0"),
    (("dev-broker", "--partitions", "abc"), "'abc' is not a whole number"),
    (("tail", "predictions", "--timeout", "-2"), "--timeout: must be at least 0, got -2"),
    (("tail", "predictions", "--max", "-1"), "--max: must be at least 0, got -1"),
    (("produce", "--synthetic", "sea-abrupt", "--rate", "-5"), "--rate: must be at least 0"),
    (("produce", "--synthetic", "sea-abrupt", "--label-delay", "-1"), "--label-delay: must be"),
    (("tail", "predictions", "--timeout", "inf"), "--timeout: 'inf' is not a finite number"),
])
def test_numbers_below_their_floor_are_refused_when_the_command_line_is_read(args, said) -> None:
    # dev-broker --partitions 0 was a Java stack trace; tail --timeout -2 waited forever
    r = run(*args)
    assert r.returncode == 2 and said in r.stderr and "Traceback" not in r.stderr, r.stderr


@pytest.mark.parametrize("line, topic", [
    ('{"agent": "a", "episode": "1", "obs": [0.1, 0.2], "reward": 0, "done": false}',
     "transitions"),
    ('{"src": "a", "dst": "b", "ts": 1}', "edges"),
    ('{"node": "a", "y": "x", "ts": 1}', "node-labels"),
])
def test_produce_names_the_topic_a_file_of_other_messages_is_for(tmp_path: Path, line: str,
                                                                 topic: str) -> None:
    # sent to events (the default topic), every line was a dead letter ("feature 'obs' is a
    # list"); refused before connecting, naming the topic
    f = tmp_path / "lines.jsonl"
    f.write_text(line + "\n" + line + "\n")
    r = run("produce", "--file", str(f))
    assert r.returncode == 2 and f"send them with --topic {topic}" in r.stderr, r.stderr


def test_a_dataset_with_a_column_named_like_a_message_key_is_not_refused(tmp_path: Path
                                                                         ) -> None:
    # network flows have src and dst, but no ts: rows of features, sent as events
    f = tmp_path / "flows.jsonl"
    f.write_text('{"src": "10.0.0.1", "dst": "10.0.0.2", "bytes": 300, "label": 0}\n' * 3)
    for extra in ((), ("--target", "label")):
        r = run("produce", "--file", str(f), *extra, "--broker", "127.0.0.1:1", timeout=60)
        assert "look like" not in r.stderr and r.returncode == 1, r.stderr  # no broker there


def test_produce_warns_about_a_model_the_configuration_does_not_have(tmp_path: Path) -> None:
    f = tmp_path / "e.jsonl"
    f.write_text('{"id": "1", "x": {"a": 1}}\n')
    r = run("produce", "--file", str(f), "--model", "defualt", "--broker", "127.0.0.1:1")
    assert "warning: model 'defualt' is not in this configuration (models: default; did " \
        "you mean 'default'?)" in r.stderr
    r = run("produce", "--file", str(f), "--model", "tenant 7", "--broker", "127.0.0.1:1")
    assert r.returncode == 2 and "can name no model" in r.stderr
    r = run("produce", "--file", str(f), "--model", "tenant-*", "--broker", "127.0.0.1:1")
    assert r.returncode == 2 and "a template's name names no model" in r.stderr
    for args in (("export", "tenant-*"), ("demo", "--model", "tenant-*")):
        r = run(*args)
        assert r.returncode == 2 and "a template's name names no model" in r.stderr, r.stderr


@pytest.mark.parametrize("args, said", [
    (("demo", "--file", "x.csv", "--stream", "led-abrupt"), "--stream and --file are two sources"),
    (("demo", "--target", "label"), "--target applies to --file"),
    (("demo", "--id-column", "id", "--label-type", "int"), "--id-column, --label-type apply to"),
    (("produce", "--synthetic", "sea-abrupt", "--label-delay", "100"),
     "--label-delay delays the labels sent with --labels-to"),
    (("produce", "--synthetic", "graph-community", "--labels-to", "labels"),
     "graph-community sends its node labels to the node-labels topic"),
    (("produce", "--synthetic", "sea-abrupt", "--target", "label"), "--target applies to --file"),
])
def test_options_that_would_be_ignored_are_refused(tmp_path: Path, args, said) -> None:
    r = run(*args, "--out" if args[0] == "demo" else "--seed", str(tmp_path / "o")
            if args[0] == "demo" else "1", cwd=tmp_path)
    assert r.returncode == 2 and said in r.stderr, r.stderr
    assert not (tmp_path / "o").exists()


def test_produce_list() -> None:
    r = run("produce", "--list")
    assert r.returncode == 0 and "sea-abrupt" in r.stdout and "led-gradual" in r.stdout
    assert "graph-community" in r.stdout


@pytest.mark.kafka
def test_produce_and_tail_through_kafka(service: ServiceProcs, tmp_path: Path) -> None:
    env = {k: v for k, v in service.env.items() if k.startswith("STREAMSVC_")}
    topic = f"{service.ns}-cli"
    produce = ("produce", "--synthetic", "led-abrupt", "--count", "300", "--topic", topic,
               "--labels-to", f"{topic}-labels", "--label-delay", "10")
    # a name that is neither on the broker nor one of the service's topics looks like a typo
    r = run(*produce, env=env)
    assert r.returncode == 2 and f"topic '{topic}' does not exist" in r.stderr, r.stderr
    assert "--new-topic" in r.stderr and "Traceback" not in r.stderr
    r = run("tail", f"{topic}-nothing", "--timeout", "5", env=env)
    assert r.returncode == 2 and "does not exist on the broker" in r.stderr, r.stderr
    typo = service.topics["predictions"][:-1]
    r = run("tail", typo, "--timeout", "5", env=env)
    assert r.returncode == 2 and f"did you mean '{service.topics['predictions']}'" in r.stderr
    r = run(*produce, "--new-topic", env=env)
    assert r.returncode == 0, r.stderr
    assert f"sent 300 records to '{topic}' and 300 labels to '{topic}-labels'" in r.stderr
    r = run("tail", topic, "--from-beginning", "--max", "300", "--timeout", "20", env=env)
    msgs = [json.loads(line) for line in r.stdout.splitlines()]
    assert len(msgs) == 300 and all("y" not in m and m["x"] for m in msgs)
    r = run("tail", f"{topic}-labels", "--from-beginning", "--max", "300", "--timeout", "20",
            env=env)
    labels = [json.loads(line) for line in r.stdout.splitlines()]
    assert sorted(m["id"] for m in labels) == sorted(m["id"] for m in msgs)  # 4 partitions
    # a second run of the same stream and seed sends new events, not replays the model would
    # predict and not learn (a label is learned once per id); the ids are said
    r = run("produce", "--synthetic", "led-abrupt", "--count", "5", "--topic", topic, env=env)
    assert r.returncode == 0 and "(first id led-abrupt-42-" in r.stderr, r.stderr
    r = run("tail", topic, "--from-beginning", "--max", "305", "--timeout", "20", env=env)
    ids = [json.loads(line)["id"] for line in r.stdout.splitlines()]
    assert len(ids) == len(set(ids)) == 305, ids[-10:]


@pytest.mark.kafka
@pytest.mark.parametrize("codec", ["lz4", "zstd", "snappy", "gzip"])
def test_tail_reads_every_compression_the_worker_may_write(service: ServiceProcs,
                                                           codec: str) -> None:
    # worker.compression offers these codecs (and checkpoints are always lz4): `tail` and the
    # sidecar read with kafka-python, which needs a library per codec; missing, it said
    # "cannot reach Kafka" about a broker that was up
    from confluent_kafka import Producer

    env = {k: v for k, v in service.env.items() if k.startswith("STREAMSVC_")}
    topic = f"{service.ns}-{codec}"
    prod = Producer({"bootstrap.servers": service.broker.bootstrap,
                     "compression.type": codec, "allow.auto.create.topics": True})
    for i in range(20):
        prod.produce(topic, json.dumps({"i": i}).encode())
    assert prod.flush(30) == 0
    r = run("tail", topic, "--from-beginning", "--max", "20", "--timeout", "30", env=env)
    assert r.returncode == 0, r.stderr
    assert sorted(json.loads(line)["i"] for line in r.stdout.splitlines()) == list(range(20))


@pytest.mark.kafka
def test_produce_gives_jsonl_events_without_an_id_their_line(service: ServiceProcs,
                                                              tmp_path: Path) -> None:
    # an event needs an id; the demo and CSV rows use the line number, and so does produce
    # (before, each such line was a dead letter: "missing 'id'")
    env = {k: v for k, v in service.env.items() if k.startswith("STREAMSVC_")}
    f = tmp_path / "noid.jsonl"
    f.write_text('{"x": {"a": 1}, "y": true}\n{"id": "own", "x": {"a": 2}}\n')
    topic = service.topics["events"]
    r = run("produce", "--file", str(f), "--topic", topic, env=env)
    assert r.returncode == 0 and "sent 2 records" in r.stderr, r.stderr
    assert "(first id 1, last own)" in r.stderr and "1 row had no id" in r.stderr, r.stderr
    r = run("tail", topic, "--from-beginning", "--max", "2", "--timeout", "20", env=env)
    sent = [json.loads(line) for line in r.stdout.splitlines()]
    assert sorted(m["id"] for m in sent) == ["1", "own"]
    assert {m["id"]: m["x"]["a"] for m in sent} == {"1": 1, "own": 2}


@pytest.mark.kafka
def test_produce_synthetic_graph(service: ServiceProcs) -> None:
    env = {k: v for k, v in service.env.items() if k.startswith("STREAMSVC_")}
    r = run("produce", "--synthetic", "graph-community", "--count", "400", env=env)
    assert r.returncode == 0, r.stderr
    m = re.search(r"sent (\d+) edges to .* and (\d+) node labels", r.stderr)
    assert m and int(m.group(1)) == 400 and int(m.group(2)) >= 0
    r = run("tail", service.topics["edges"], "--from-beginning", "--max", "5", "--timeout", "20",
            env=env)
    edges = [json.loads(line) for line in r.stdout.splitlines()]
    assert len(edges) == 5 and all({"src", "dst", "ts"} <= set(e) for e in edges)


def test_help_documents_files_and_exit_codes() -> None:
    for cmd in ("demo", "produce"):
        out = " ".join(run(cmd, "--help").stdout.split())
        assert "--label-type {auto,int,float,str,bool}" in out
        assert "exit codes:" in out and "3 most rows of --file were rejected" in out
        assert "reported with its line number, skipped and counted" in out


def test_produce_refuses_a_file_it_cannot_use_before_connecting(tmp_path: Path) -> None:
    nowhere = {"STREAMSVC_BROKER": "kafka://127.0.0.1:9"}  # nothing listens: must not matter
    r = run("produce", "--file", str(tmp_path / "nosuch.csv"), env=nowhere, timeout=30)
    assert r.returncode == 2
    assert r.stderr.strip() == f"streamsvc produce: no such file: {tmp_path / 'nosuch.csv'}"
    (tmp_path / "d.csv").write_text("a,b,label\n1,2,0\n")
    r = run("produce", "--file", str(tmp_path / "d.csv"), "--target", "y", env=nowhere,
            timeout=30)
    assert r.returncode == 2 and "--target column 'y' is not in" in r.stderr
    assert "(columns: a, b, label)" in r.stderr
    (tmp_path / "e.jsonl").write_text("\n")
    r = run("produce", "--file", str(tmp_path / "e.jsonl"), env=nowhere, timeout=30)
    assert r.returncode == 2 and r.stderr.strip().endswith("e.jsonl is empty")
    assert "Traceback" not in r.stderr


@pytest.mark.parametrize("argv,cause", [
    (["produce", "--file", "{csv}", "--target", "label"],
     "connection refused: nothing listens there"),
    (["tail", "predictions", "--max", "1"], "connection refused: nothing listens there"),
    (["worker"], "connection refused: nothing listens there"),
    (["produce", "--synthetic", "sea-abrupt", "-n", "5", "--broker", "nosuch.invalid:9092"],
     "the name 'nosuch.invalid' is not known"),
])
def test_no_broker_is_one_sentence_at_once(tmp_path: Path, argv: list[str], cause: str) -> None:
    """Without a broker, produce, tail and the worker say so in the same one line within
    seconds: no kafka-python retry log (WARNING ... ECONNREFUSED, backoff ...), no 30 s wait
    (the worker gives a starting broker a few seconds more)."""
    import time

    csv = tmp_path / "d.csv"
    csv.write_text("a,label\n1,0\n2,1\n")
    address = "nosuch.invalid:9092" if "--broker" in argv else "127.0.0.1:9"
    start = time.monotonic()
    r = run(*[a.format(csv=csv) for a in argv], env={"STREAMSVC_BROKER": "kafka://127.0.0.1:9"},
            timeout=60)
    assert time.monotonic() - start < (40 if argv == ["worker"] else 20)
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert lines[-1] == (
        f"streamsvc: cannot reach Kafka at {address} ({cause}). Is the broker running, and is "
        "the address right? Start one with `streamsvc dev-broker`, or point to yours with "
        "--broker or STREAMSVC_BROKER."), r.stderr
    # before it, only what the file reader chose (a --file's features)
    assert lines[:-1] == (["features: 1 numeric (a)"] if "--file" in argv else []), r.stderr


@pytest.mark.kafka
def test_produce_a_messy_file_sends_only_whole_rows(service: ServiceProcs,
                                                    tmp_path: Path) -> None:
    env = {k: v for k, v in service.env.items() if k.startswith("STREAMSVC_")}
    topic = f"{service.ns}-file"
    rows = ["id,a,colour,label"] + [f"r{i},{i % 9},{'red' if i % 2 else 'blue'},{float(i % 2)}"
                                    for i in range(40)]
    rows[5] = "r4,4"                    # line 6: too few values
    rows[9] = "r8,8,red,1.0,extra"      # line 10: too many values
    rows[12] = "r11,lots,red,1.0"       # line 13: text in the numeric column 'a'
    csv = tmp_path / "mine.csv"
    csv.write_text("\n".join(rows) + "\n")
    r = run("produce", "--file", str(csv), "--target", "label", "--id-column", "id",
            "--topic", topic, "--new-topic", env=env)
    assert r.returncode == 0, r.stderr
    assert f"{csv}:6: skipped: 2 values, but the header has 4 columns" in r.stderr
    assert f"{csv}:13: skipped: column 'a' holds 'lots', but it is a numeric column" in r.stderr
    assert f"rejected 3 of 40 rows of {csv} (not sent), by reason:" in r.stderr
    assert "sent 37 records" in r.stderr
    r = run("tail", topic, "--from-beginning", "--max", "37", "--timeout", "20", env=env)
    msgs = [json.loads(line) for line in r.stdout.splitlines()]
    assert len(msgs) == 37 and {"r4", "r8", "r11"}.isdisjoint(m["id"] for m in msgs)
    assert all(type(m["y"]) is int and type(m["x"]["a"]) is int for m in msgs)

    lines = tmp_path / "labels.jsonl"
    lines.write_text('{"id": "r0", "y": 0}\n{"id": "r1", "y": \n[1]\n{"id": "r2", "y": 0}\n')
    r = run("produce", "--file", str(lines), "--topic", f"{topic}-labels", "--new-topic",
            env=env)
    assert r.returncode == 0 and "sent 2 records" in r.stderr, r.stderr
    assert f"{lines}:2: skipped: not valid JSON" in r.stderr
    assert f"{lines}:3: skipped: expected a JSON object" in r.stderr

    bad = tmp_path / "bad.csv"
    bad.write_text("a,label\n" + "".join(f"{i},{i}.5\n" for i in range(10)) + "1,1\n")
    r = run("produce", "--file", str(bad), "--target", "label", "--topic", topic, env=env)
    assert r.returncode == 3, r.stderr
    assert "10 × label is a decimal number (lines 2, 3, 4, …)" in r.stderr
    assert "most rows of" in r.stderr and "sent 1 record " in r.stderr


@pytest.mark.parametrize("argv,words", [
    (["--synthetic", "sea-abrupt", "--count", "0"],
     "--count must be at least 1 (got 0); leave it out for the whole file or 10000 synthetic "
     "records"),
    (["--synthetic", "sea-abrupt", "-n", "-3"], "--count must be at least 1 (got -3)"),
    (["--synthetic", "sea-abrupt", "--rate", "-1"], "--rate: must be at least 0, got -1"),
    (["--synthetic", "sea-abrupt", "--labels-to", "l", "--label-delay", "-2"],
     "--label-delay: must be at least 0, got -2"),
    (["--file", "{csv}", "--labels-to", "l"],
     "--labels-to sends the labels of --target to another topic: name the label column with "
     "--target"),
    (["--synthetic", "nope"], "unknown stream 'nope'; choose from sea-abrupt, sea-gradual, "
     "led-abrupt, led-gradual, rbf-moderate, rbf-fast, graph-community, graph-anomaly"),
])
def test_produce_refuses_options_that_cannot_mean_what_they_say(tmp_path: Path, argv: list[str],
                                                                words: str) -> None:
    """Refused with exit 2 before connecting (nothing listens at the address): --count 0 used
    to send 10,000 records, --labels-to without --target sent no label at all."""
    csv = tmp_path / "d.csv"
    csv.write_text("a,label\n1,0\n2,1\n")
    r = run("produce", *[a.format(csv=csv) for a in argv], "--broker", "127.0.0.1:9",
            timeout=30)
    assert r.returncode == 2
    said = r.stderr.strip().splitlines()[-1]  # argparse's own refusals follow the usage
    assert said.startswith(f"streamsvc produce: {words}") or \
        said.startswith(f"streamsvc produce: error: argument {words}"), r.stderr
    assert "cannot reach Kafka" not in r.stderr


def test_api_without_a_broker_says_so_once_without_kafka_python_retry_lines(tmp_path: Path
                                                                          ) -> None:
    import httpx

    from streamsvc.devbroker import free_port
    from tests.conftest import stop_group, wait_for

    port = free_port()
    log = tmp_path / "api.log"
    with open(log, "wb") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "streamsvc.cli", "api", "--port",
                                 str(port), "--broker", "127.0.0.1:9"], stdout=fh,
                                stderr=subprocess.STDOUT, start_new_session=True)
    try:
        def answered() -> dict | None:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/ready", timeout=2).json()
            except httpx.HTTPError:
                return None

        ready = wait_for(answered, 60, "the sidecar to answer /ready")
        assert not ready["ready"] and any("Kafka not reachable" in r for r in ready["reasons"])
        import time

        time.sleep(4)  # kafka-python retries meanwhile (a log line per try until now)
    finally:
        stop_group(proc, timeout=20)
    text = log.read_text()
    assert "cannot reach Kafka at 127.0.0.1:9" in text and "Serving anyway" in text
    assert "kafka.net" not in text and "ECONNREFUSED" not in text, text


def test_every_remaining_cli_message(tmp_path: Path) -> None:
    """One case per message of the CLI not met elsewhere: the demo's model choice, the
    sidecar's TLS options, the liveness probe."""
    import os
    import time

    conf = tmp_path / "c.toml"
    conf.write_text('[models.default]\nkind = "drift_moe"\n[models.cartpole]\n'
                    'kind = "stream_q"\nparams = { n_actions = 2 }\n')
    cases = [
        (["demo", "--model", "nope"], 2,
         "streamsvc demo: unknown model 'nope'; configured: default"),
        (["demo", "--config", str(conf), "--model", "cartpole"], 2,
         "streamsvc demo: model 'cartpole' is a stream_q model; the demo runs classifiers on "
         "event streams"),
        (["api", "--ssl-certfile", "c.pem"], 2,
         "streamsvc: --ssl-certfile and --ssl-keyfile go together"),
        (["api", "--ssl-certfile", "c.pem", "--ssl-keyfile", "k.pem"], 2,
         "streamsvc: no such file: c.pem"),
    ]
    for argv, code, words in cases:
        r = run(*argv, cwd=tmp_path, timeout=60)
        assert (r.returncode, r.stderr.strip()) == (code, words), (argv, r.stderr)
    hb = tmp_path / "hb"
    env = {"STREAMSVC_WORKER__HEARTBEAT_FILE": str(hb)}
    r = run("worker-alive", env=env, timeout=60)
    assert r.returncode == 1 and r.stderr.strip() == (
        f"streamsvc: no worker heartbeat at {hb} (worker not started, or another "
        "worker.heartbeat_file)")
    hb.touch()
    os.utime(hb, (time.time() - 120, time.time() - 120))
    r = run("worker-alive", env=env, timeout=60)
    assert r.returncode == 1 and r.stderr.strip().startswith(
        "streamsvc: the worker's heartbeat is 12")
    assert r.stderr.strip().endswith("s old (limit 60 s): its loop is stuck or stopped")
    hb.touch()
    r = run("worker-alive", env=env, timeout=60)
    assert r.returncode == 0 and r.stdout.startswith("worker alive (heartbeat ")


@pytest.mark.kafka
def test_produce_flat_jsonl_rows_become_events(service: ServiceProcs, tmp_path: Path) -> None:
    """Flat JSONL rows bound for the events topic used to be sent as they were: no 'id', no
    'x', every one a dead letter at the worker. Now they are events, as a CSV's rows are;
    JSONL events keep being sent as they are."""
    env = {k: v for k, v in service.env.items() if k.startswith("STREAMSVC_")}
    flat = tmp_path / "rows.jsonl"
    flat.write_text("".join(json.dumps({"a": i, "colour": "red", "label": i % 2}) + "\n"
                            for i in range(5)))
    r = run("produce", "--file", str(flat), env=env)
    assert r.returncode == 0 and "sent 5 records" in r.stderr, r.stderr
    assert "pass --target KEY to send labels (is 'label' the label?)" in r.stderr
    r = run("produce", "--file", str(flat), "--target", "label", env=env)
    assert r.returncode == 0, r.stderr
    events = tmp_path / "events.jsonl"
    events.write_text(json.dumps({"id": "e9", "x": {"a": 1}, "y": 1.0, "ts": 5}) + "\n")
    r = run("produce", "--file", str(events), env=env)
    assert r.returncode == 0, r.stderr
    r = run("tail", service.topics["events"], "--from-beginning", "--max", "11", "--timeout",
            "20", env=env)
    got = [json.loads(line) for line in r.stdout.splitlines()]
    assert [m for m in got if m["id"] == "e9"] == [{"id": "e9", "x": {"a": 1}, "y": 1.0,
                                                    "ts": 5}]
    made = [m for m in got if m["id"] != "e9"]
    assert sorted((m["id"], m["x"]["a"], "y" in m) for m in made) == sorted(
        [(str(i + 1), i, False) for i in range(5)] + [(str(i + 1), i, True) for i in range(5)])
    assert all(m["x"]["colour"] == "red" for m in made)
    assert all(m["y"] == m["x"]["a"] % 2 for m in made if "y" in m)


def test_wrong_ports_out_folders_and_certificates_are_one_sentence(tmp_path: Path) -> None:
    import socket

    for cmd in (("api", "--port", "70000"), ("demo", "--serve", "--port", "-1"),
                ("dev-broker", "--port", "abc")):
        r = run(*cmd)
        assert r.returncode == 2 and "is not a port" in r.stderr, (cmd, r.stderr)
    (tmp_path / "afile").write_text("")
    r = run("demo", "--count", "50", "--out", str(tmp_path / "afile"))
    assert r.returncode == 2 and "is a file, not a folder" in r.stderr, r.stderr
    (tmp_path / "c.pem").write_text("junk")
    r = run("api", "--ssl-certfile", str(tmp_path / "c.pem"), "--ssl-keyfile",
            str(tmp_path / "c.pem"), "--broker", "kafka://127.0.0.1:1")
    assert r.returncode == 2 and "not a PEM certificate" in r.stderr, r.stderr
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = str(busy.getsockname()[1])
        for cmd in (("api", "--port", port, "--broker", "kafka://127.0.0.1:1"),
                    ("dev-broker", "--port", port)):
            r = run(*cmd, timeout=60)
            assert r.returncode == 2 and f"port {port} is already in use" in r.stderr, r.stderr


def test_broker_urls_are_checked_at_start() -> None:
    from streamsvc.config import broker_problem, broker_to_bootstrap

    assert broker_to_bootstrap("kafka://localhost") == "localhost:9092"  # Kafka's own default
    assert broker_to_bootstrap("kafka://a:1;b:2") == "a:1,b:2"
    assert broker_to_bootstrap("kafka://[::1]") == "[::1]:9092"
    assert broker_problem("kafka://[::1]:9093") is None
    assert "bad port" in broker_problem("kafka://localhost:abc")
    assert "bad port" in broker_problem("kafka://localhost:99999")
    assert "no host" in broker_problem("kafka://:9092")
    r = run("tail", "predictions", "--broker", "kafka://localhost:abc", "--timeout", "1")
    assert r.returncode == 2 and "'kafka.broker' has a bad port" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr


def test_a_topic_name_that_looks_like_a_typo_is_named() -> None:
    from streamsvc.client import unknown_topic
    from streamsvc.config import load_settings

    s = load_settings(None, {})
    assert unknown_topic(s, "predictions", set()) is None  # the service's own, not created yet
    assert unknown_topic(s, "mine", {"mine"}) is None  # exists on the broker
    msg = unknown_topic(s, "predictons", {"mine"})
    assert msg and "did you mean 'predictions'?" in msg


def test_first_hour_messages(tmp_path: Path) -> None:
    """Wrong options get the subcommand's own usage; a short demo says why drifts were missed;
    one column cannot be both label and id; graph streams are named as edge streams."""
    r = run("demo", "--fiel", "x")
    assert r.returncode == 2 and "usage: streamsvc demo" in r.stderr and "--count" in r.stderr
    r = run("demo", "--count", "2000", "--out", str(tmp_path / "d"))
    assert r.returncode == 0, r.stderr
    assert "missed (within the first 1,500 examples)" in r.stdout
    assert "missed (the stream ended 500 examples after it)" in r.stdout
    (tmp_path / "m.csv").write_text("id,a,label\n1,2,x\n2,3,y\n")
    r = run("demo", "--file", str(tmp_path / "m.csv"), "--target", "id", "--id-column", "id")
    assert r.returncode == 2 and "must be different columns" in r.stderr
    r = run("demo", "--stream", "graph-community")
    assert r.returncode == 2 and "is an edge stream" in r.stderr


def test_data_alerts_quote_feature_names() -> None:
    from agents.alerts import describe, moved

    assert moved({"features": ["5"]}) == "feature '5'"
    assert moved({"features": ["5", "a"], "predictions_moved": True}) == \
        "features '5', 'a' and the predictions' mix"
    assert moved({"predictions_moved": True}) == "the predictions' mix"
    line = describe({"kind": "data", "position": 3000, "severity": "medium", "features": ["5"],
                     "max_psi": 0.4})
    assert line == "data drift at event 3000 (medium): feature '5' moved (PSI up to 0.4)"
