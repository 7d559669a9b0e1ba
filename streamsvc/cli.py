"""`streamsvc` command line: worker, api, produce, tail, demo, dev-broker, export."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from streamsvc import __version__
from streamsvc.argtypes import at_least
from streamsvc.ports import any_port_arg, port_arg, port_problem

EPILOG = """\
quick start (no Kafka needed):
  streamsvc demo                         run the learners in-process on a drifting stream

with Kafka:
  streamsvc dev-broker --port 9092       a local Apache Kafka 3.9 broker (Java + Maven)
  streamsvc worker                       a worker (add more for more partitions)
  streamsvc api                          the REST sidecar on http://127.0.0.1:8000
  streamsvc produce --synthetic sea-abrupt --count 5000
  streamsvc tail predictions
  streamsvc export default               the learned model, for a notebook (pickle)

configuration: --config FILE or STREAMSVC_CONFIG, plus STREAMSVC_* variables
(STREAMSVC_BROKER=kafka://host:9092, STREAMSVC_<SECTION>__<KEY>=value).
"""


def _add_config(p: argparse.ArgumentParser, kafka: bool = True) -> None:
    p.add_argument("--config", "-c", metavar="FILE",
                   help="TOML config file (default: $STREAMSVC_CONFIG, else shipped defaults)")
    if kafka:
        p.add_argument("--broker", "-b", metavar="URL",
                       help="Kafka broker, e.g. kafka://127.0.0.1:9092 (overrides config)")
    p.add_argument("--log-level", default=argparse.SUPPRESS,
                   choices=["debug", "info", "warning", "error"], help="logging level")


FILE_NOTES = """\
files (--file): CSV with a header row, or JSONL (one JSON object per line). A bad row (too
few or too many values, text in a numeric column, a line that is not JSON, a missing label)
is reported with its line number, skipped and counted, and the rest goes on; the summary
lists rejected rows by reason. Empty cells and NA, NaN, null, None, ? are missing values.
What was chosen is printed first: the label column, an unnamed index column used as the id,
which features are numeric and which text. A ';'-separated file may use decimal commas.
"""


def _add_label_type(p: argparse.ArgumentParser) -> None:
    p.add_argument("--label-type", choices=["auto", "int", "float", "str", "bool"],
                   default="auto", help="how --file labels are read. auto (default): "
                   "true/false are booleans, integral numbers such as 1.0 are integers, other "
                   "text is text; a model learns one label type. float: numbers as class "
                   "names ('1.5')")


def _settings(args: argparse.Namespace):
    from streamsvc.config import load_settings

    env = dict(os.environ)
    if getattr(args, "broker", None):
        env["STREAMSVC_BROKER"] = args.broker if "://" in args.broker else f"kafka://{args.broker}"
    return load_settings(args.config, env)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="streamsvc",
        description="Online stream processing with incremental learners: workers (Faust "
        "applications with a batch hot path on librdkafka) route Kafka events through "
        "river-style experts and publish predictions and drift alerts; a FastAPI sidecar "
        "serves health and model inspection.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"streamsvc {__version__}")
    parser.add_argument("--log-level", default=os.environ.get("STREAMSVC_LOG_LEVEL", "info"),
                        choices=["debug", "info", "warning", "error"], help="logging level")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    parser.commands = sub.choices  # type: ignore[attr-defined]  # for errors, in main()

    p = sub.add_parser("worker", help="run a worker: consumes events, labels, edges and "
                       "transitions in batches, publishes predictions, actions and drift alerts",
                       description="Run one worker of the service. It joins the consumer "
                       "group, learns the models of the partitions it is given, publishes "
                       "predictions, actions, drift alerts and model status, and keeps its "
                       "models in the checkpoints topic, so that a restarted or added worker "
                       "goes on where the last one stopped. Start more for more throughput "
                       "(up to the partition count). Stop it with Ctrl-C or SIGTERM.")
    _add_config(p)

    p = sub.add_parser(
        "worker-alive", help="liveness probe: exit 0 if a worker's loop turned recently",
        description="Exit 0 when the worker's heartbeat file (touched every second by its "
        "loop) is younger than --max-age seconds, else 1 with the reason. For Docker / "
        "Kubernetes liveness probes: a hung worker is restarted; one waiting for Kafka is not.")
    _add_config(p)
    p.add_argument("--max-age", type=float, default=60.0,
                   help="seconds without a heartbeat before the worker counts as hung (60)")

    p = sub.add_parser("api", help="run the REST sidecar (health, readiness, model status)",
                       description="Serve the REST sidecar and the dashboard: /health, "
                       "/ready, /models, /models/{name}, /alerts, /metrics (Prometheus) and "
                       "OpenAPI docs at /docs. It reads the workers' model-status and "
                       "drift-alerts topics; it starts without a broker or worker and says "
                       "what is missing in /ready.")
    _add_config(p)
    p.add_argument("--host", help="bind address (default from config: 127.0.0.1)")
    p.add_argument("--port", type=port_arg, help="port (default from config: 8000)")
    p.add_argument("--ssl-certfile", metavar="PEM", help="serve HTTPS with this certificate "
                   "(passed to uvicorn; needs --ssl-keyfile)")
    p.add_argument("--ssl-keyfile", metavar="PEM", help="private key of --ssl-certfile")

    p = sub.add_parser("produce", help="push records into a topic from a file or a built-in "
                       "synthetic drifting stream",
                       description="Send records to a topic with kafka-python: the rows of a "
                       "CSV/JSONL file as events (or,\nwith --topic, lines for another "
                       "topic as they are), or a built-in drifting stream\n(--list). Rows "
                       "that cannot be sent are skipped, shown and counted.",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog="examples:\n  streamsvc produce --synthetic sea-abrupt --count 10000 "
                       "--rate 500\n  streamsvc produce --file data.csv --target label --id-column "
                       "id\n  streamsvc produce --file labels.jsonl --topic labels\n\n" + FILE_NOTES
                       + "\nexit codes: 0 sent, 1 Kafka unreachable, 2 wrong use (missing, empty "
                       "or unreadable\nfile, unknown column), 3 most rows of --file were "
                       "rejected")
    _add_config(p)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--file", "-f", help="CSV or JSONL file. Without --target, JSONL events "
                     "({\"id\", \"x\", ...}) and lines for other topics are sent as they are; "
                     "flat rows become events like a CSV's rows")
    src.add_argument("--synthetic", "-s", metavar="STREAM",
                     help="built-in drifting stream (see --list)")
    src.add_argument("--list", action="store_true", help="list the built-in streams and exit")
    p.add_argument("--topic", "-t", help="target topic (default: the events topic)")
    p.add_argument("--model", "-m", default=None, help="value of the 'model' field")
    p.add_argument("--target", help="column holding the label (CSV/JSONL; without it rows are "
                   "sent without a label)")
    p.add_argument("--id-column", help="column holding the event id (default: line number)")
    _add_label_type(p)
    p.add_argument("--count", "-n", type=int, default=None,
                   help="number of records (synthetic default: 10000)")
    p.add_argument("--seed", type=int, default=42, help="synthetic stream seed")
    p.add_argument("--rate", type=at_least(0, float), default=0.0, help="records per second (0: as fast as "
                   "possible)")
    p.add_argument("--labels-to", metavar="TOPIC", help="send labels separately to this topic "
                   "(delayed-label mode) instead of inside the event")
    p.add_argument("--label-delay", type=at_least(0), default=0, help="in delayed-label mode, send each "
                   "label this many events after its event")
    p.add_argument("--new-topic", action="store_true", help="allow a --topic/--labels-to that "
                   "neither exists nor is one of the service's topics (Kafka creates it); "
                   "without it such a name is refused as a likely typo")

    p = sub.add_parser("tail", help="print the messages of a topic",
                       description="Print a topic's messages as JSON lines, new ones by "
                       "default (--from-beginning for all). Ends at Ctrl-C, after --max "
                       "messages or after --timeout idle seconds.")
    _add_config(p)
    p.add_argument("topic", help="topic name, e.g. predictions, drift-alerts, dead-letters")
    p.add_argument("--from-beginning", action="store_true", help="start at the oldest message")
    p.add_argument("--max", type=at_least(0), default=0,
                   help="stop after this many messages (0: no limit)")
    p.add_argument("--timeout", type=at_least(0, float), default=0.0,
                   help="stop after this many idle seconds (0: never)")

    p = sub.add_parser("demo", help="run the learners in-process on a drifting stream (no "
                       "Kafka), with progress bar, outputs and a summary",
                       description="Run a configured model in-process, without Kafka, on a "
                       "built-in drifting stream or your\nCSV/JSONL file, through the same "
                       "validation and model code as a worker: progress bar, drift\nalerts as "
                       "they happen, output files and a summary.\n\nexamples:\n"
                       "  streamsvc demo\n  streamsvc demo --stream led-gradual --count 5000\n"
                       "  streamsvc demo --file mydata.csv --target label --id-column id\n"
                       "  streamsvc demo --serve                 dashboard at "
                       "http://127.0.0.1:8000/",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog=FILE_NOTES + "Skipped rows go to dead-letters.jsonl with the "
                       "reason and the raw line.\n\nexit codes: 0 done, 2 wrong use (unknown "
                       "stream or model, missing, empty or\nunreadable file, unknown column, "
                       "port in use), 3 most rows of --file were rejected")
    _add_config(p, kafka=False)
    p.add_argument("--stream", default=None, help="built-in stream (default "
                   "sea-abrupt; the list: streamsvc produce --list, all but its graph-* edge "
                   "streams)")
    p.add_argument("--file", "-f", help="CSV or JSONL file instead of a built-in stream")
    p.add_argument("--target", help="label column of --file (default: CSV the last column, "
                   "JSONL 'y', 'label' or the last key; the choice is printed)")
    _add_label_type(p)
    p.add_argument("--id-column", help="column of --file holding the event id (not a feature; "
                   "default: the line number)")
    p.add_argument("--count", "-n", type=int, default=20000,
                   help="examples of a built-in stream (default 20000; a --file is read whole)")
    p.add_argument("--seed", type=int, default=42, help="built-in stream seed (default 42)")
    p.add_argument("--model", default="default", help="configured model to run (default: "
                   "'default'; a classifier)")
    p.add_argument("--out", default="demo-out", help="folder for predictions.jsonl, "
                   "drift-alerts.jsonl, dead-letters.jsonl and status.json")
    p.add_argument("--serve", action="store_true",
                   help="keep the REST sidecar and dashboard up on the results")
    p.add_argument("--port", type=port_arg, default=8000, help="sidecar port with --serve")

    p = sub.add_parser("dev-broker", help="run a local Apache Kafka 3.9 broker (KRaft, no "
                       "Docker; jars fetched once with Maven)",
                       description="Run a single-node Apache Kafka 3.9 broker (KRaft) for "
                       "development, without Docker. Needs Java 17+ and Maven: the first "
                       "run fetches Kafka's jars with Maven (a few minutes), later runs "
                       "start in seconds. Prints the bootstrap address; Ctrl-C stops it. "
                       "Not for production: one node, no security.")
    p.add_argument("--port", type=any_port_arg, default=9092, help="client port (default 9092; 0: any "
                   "free port)")
    p.add_argument("--data-dir", help="keep broker data here across runs (default: temporary)")
    p.add_argument("--partitions", type=at_least(1), default=4,
                   help="default partitions of new topics (default 4)")

    p = sub.add_parser("export", help="write a worker's learned model to a file a notebook "
                       "loads with pickle",
                       description="Read the latest snapshots of the workers from the "
                       "checkpoints topic (signatures checked as a restarting worker checks "
                       "them) and write MODEL's learner to --out with pickle: the learner "
                       "itself for one shard, a list of its replicas (shard 0 first) for "
                       "several. Load it with pickle.load; it is the same river-style "
                       "learner the worker runs (learn_one, predict_one, ...).")
    _add_config(p)
    p.add_argument("model", help="model name, e.g. default, or one a template made, e.g. "
                   "tenant-42")
    p.add_argument("--out", "-o", help="file to write (default: MODEL.pkl)")
    p.add_argument("--force", action="store_true", help="overwrite --out if it exists")

    p = sub.add_parser("schemas", help="write the topics' message shapes as JSON Schema files "
                       "and an AsyncAPI document (what docs/schemas/ holds)",
                       description="Write one JSON Schema per topic's message shape and an "
                       "AsyncAPI document of the service's topics into --out, for producers "
                       "and consumers written in other languages.")
    p.add_argument("--out", default="docs/schemas", help="folder to write into "
                   "(default docs/schemas)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:  # said by the subcommand's parser, so that its usage (its options) is shown
        commands = getattr(parser, "commands", {})
        commands.get(getattr(args, "command", None), parser).error(
            f"unrecognized arguments: {' '.join(extra)}")
    if not args.command:
        parser.print_help()
        return 2
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("kafka", "aiokafka", "faust", "mode"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))
    # librdkafka warns of transient states (coordinator loading, a broker restarting) it
    # recovers from by itself; its errors still show
    logging.getLogger("streamsvc.kafka").setLevel(max(logging.ERROR, logging.getLogger().level))
    if args.command in ("produce", "tail", "api", "export") and args.log_level != "debug":
        # kafka-python logs every retry; what went wrong is said once, in words (produce and
        # tail: below; the sidecar: at start, then in /ready's reasons)
        logging.getLogger("kafka").setLevel(logging.CRITICAL)
    from kafka.errors import KafkaError

    from streamsvc.config import ConfigError
    from streamsvc.security import KafkaAccessError

    try:
        return _dispatch(args)
    except ConfigError as exc:
        print(f"streamsvc: configuration error: {exc}", file=sys.stderr)
        return 2
    except KafkaAccessError as exc:  # wrong password, untrusted certificate, no broker
        print(f"streamsvc: {exc}", file=sys.stderr)
        return 1
    except KafkaError as exc:
        from streamsvc.client import KAFKA_HINT

        print(f"streamsvc: cannot reach Kafka at {_broker_address(args)} "
              f"({_kafka_words(exc)}). {KAFKA_HINT}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _broker_address(args: argparse.Namespace) -> str:
    """The bootstrap address the command used, for error messages."""
    from streamsvc.config import ConfigError

    try:
        return _settings(args).bootstrap
    except (ConfigError, OSError, ValueError):
        return os.environ.get("STREAMSVC_BROKER") or getattr(args, "broker", None) or "?"


def _kafka_words(exc: Exception) -> str:
    """kafka-python's error class names in words: NoBrokersAvailable → no brokers available."""
    import re

    cls = type(exc).__name__
    words = {"KafkaTimeoutError": "no answer in time", "NoBrokersAvailable": "no broker "
             "answered"}.get(cls) or re.sub(r"(?<=[a-z])(?=[A-Z])", " ", cls.removesuffix(
                 "Error")).lower()
    detail = str(exc).strip().removeprefix(f"{cls}:").strip()
    return words if not detail or detail == cls else f"{words}: {detail}"


def _dispatch(args: argparse.Namespace) -> int:
    cmd = args.command
    if cmd == "worker-alive":
        return worker_alive(_settings(args).heartbeat_file, args.max_age)
    if cmd == "worker":
        from streamsvc.app import run_worker

        run_worker(_settings(args), loglevel=args.log_level)
        return 0
    if cmd == "api":
        from streamsvc.api import run_api

        s = _settings(args)
        if bool(args.ssl_certfile) != bool(args.ssl_keyfile):
            print("streamsvc: --ssl-certfile and --ssl-keyfile go together", file=sys.stderr)
            return 2
        for f in (args.ssl_certfile, args.ssl_keyfile):
            if f and not os.path.isfile(f):
                print(f"streamsvc: no such file: {f}", file=sys.stderr)
                return 2
        if args.ssl_certfile and (bad := _tls_problem(args.ssl_certfile, args.ssl_keyfile)):
            print(f"streamsvc api: {bad}", file=sys.stderr)
            return 2
        host, port = args.host or s.api["host"], args.port or s.api["port"]
        if busy := port_problem(port, host):
            print(f"streamsvc api: {busy}", file=sys.stderr)
            return 2
        run_api(s, host=host, port=port, ssl_certfile=args.ssl_certfile,
                ssl_keyfile=args.ssl_keyfile)
        return 0
    if cmd == "export":
        from streamsvc.export import export_command

        return export_command(args, _settings(args))
    if cmd == "schemas":
        from pathlib import Path

        from streamsvc.schemas import write

        try:
            paths = write(Path(args.out))
        except OSError as exc:
            print(f"streamsvc schemas: cannot write to {args.out}: {exc.strerror or exc}",
                  file=sys.stderr)
            return 2
        print(f"wrote {len(paths)} files to {args.out}: "
              + ", ".join(p.name for p in paths))
        return 0
    if cmd == "produce":
        from streamsvc.client import produce_command

        return produce_command(args, None if args.list else _settings(args))
    if cmd == "tail":
        from streamsvc.client import tail_command

        return tail_command(args, _settings(args))
    if cmd == "demo":
        from streamsvc.demo import demo_command

        return demo_command(args, _settings(args))
    if cmd == "dev-broker":
        return _dev_broker(args)
    raise AssertionError(cmd)


def _tls_problem(certfile: str, keyfile: str) -> str | None:
    """Why the sidecar could not serve HTTPS with this certificate and key (None: it can)."""
    import ssl

    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(certfile, keyfile)
    except ssl.SSLError as exc:
        detail = f" ({exc.reason.lower().replace('_', ' ')})" if exc.reason else ""
        return (f"cannot serve HTTPS with {certfile} and {keyfile}: they are not a PEM "
                f"certificate and its private key{detail}")
    except OSError as exc:
        return f"cannot read {certfile} or {keyfile}: {exc.strerror or exc}"
    return None


def _dev_broker(args: argparse.Namespace) -> int:
    import signal
    import threading

    from streamsvc.devbroker import BrokerError, KafkaBroker, jars_ready

    if args.port and (busy := port_problem(args.port, who="another Kafka broker")):
        print(f"streamsvc dev-broker: {busy}", file=sys.stderr)
        return 2
    broker = KafkaBroker(port=args.port or None, data_dir=args.data_dir,
                         partitions=args.partitions)
    try:
        print("starting Apache Kafka" + ("" if jars_ready(broker.cache_dir) else
              " (this first run fetches its jars with Maven)") + "...", flush=True)
        broker.start()
    except BrokerError as exc:
        print(f"streamsvc dev-broker: {exc}", file=sys.stderr)
        return 1
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print(f"Kafka ready: bootstrap {broker.bootstrap}  (STREAMSVC_BROKER={broker.url})",
          flush=True)
    print("Ctrl-C stops it.", flush=True)
    try:
        while not stop.wait(1.0):
            if broker.proc is None or broker.proc.poll() is not None:
                print("streamsvc dev-broker: Kafka exited:\n" + broker.tail_log(), file=sys.stderr)
                return 1
    except KeyboardInterrupt:
        pass
    finally:
        print("stopping Kafka...", flush=True)
        broker.stop()
    return 0




def worker_alive(path: str, max_age: float) -> int:
    """The liveness probe: 0 if the heartbeat file is fresh, else 1 (reason on stderr)."""
    import time

    try:
        age = time.time() - os.stat(path).st_mtime
    except OSError:
        print(f"streamsvc: no worker heartbeat at {path} (worker not started, or another "
              "worker.heartbeat_file)", file=sys.stderr)
        return 1
    if age > max_age:
        print(f"streamsvc: the worker's heartbeat is {age:.0f} s old (limit {max_age:.0f} s): "
              "its loop is stuck or stopped", file=sys.stderr)
        return 1
    print(f"worker alive (heartbeat {age:.1f} s ago)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
