"""Client tools on kafka-python: `produce` (files or synthetic streams) and `tail`."""

from __future__ import annotations

import argparse
import itertools
import json
import secrets
import sys
import time
from collections import deque
from collections.abc import Iterator
from typing import Any

from tqdm import tqdm

from agents.catalog import MODEL_NAME, is_template
from agents.processor import template_refusal
from streamsvc.words import did_you_mean


def kafka_kwargs(settings: Any) -> dict[str, Any]:
    """kafka-python connection arguments (broker + security). On a secured connection, after
    a quick check that Kafka accepts them: a wrong password or certificate fails here in plain
    words, where kafka-python would only time out."""
    from streamsvc.security import check_kafka

    if settings.security.protocol != "PLAINTEXT":
        check_kafka(settings.bootstrap, settings.security)
    return {"bootstrap_servers": settings.bootstrap, **settings.security.kafka_python(),
            "bootstrap_timeout_ms": BOOTSTRAP_WAIT_MS}


BOOTSTRAP_WAIT_MS = 6000  # kafka-python's default is 30 s of retries before it gives up


def connect(factory: Any, settings: Any, *args: Any, **kw: Any) -> Any:
    """A kafka-python producer or consumer; when no broker answers, `KafkaUnreachable` in one
    sentence with the address and the cause (connection refused, unknown name)."""
    from kafka.errors import KafkaTimeoutError

    try:
        return factory(*args, **kafka_kwargs(settings), **kw)
    except KafkaTimeoutError:
        check_reachable(settings.bootstrap)
        raise


def broker_topics(settings: Any) -> set[str]:
    """The topics the broker holds now (asking does not create any)."""
    from kafka import KafkaConsumer

    consumer = connect(KafkaConsumer, settings, group_id=None)
    try:
        return set(consumer.topics())
    finally:
        consumer.close()


def unknown_topic(settings: Any, name: str, existing: set[str]) -> str | None:
    """Why ``name`` looks like a typo: neither on the broker nor one of the service's topics
    (None: it is one of those). A typo must not silently create a topic nobody reads."""

    configured = set(settings.topics.values())
    if name in existing or name in configured:
        return None
    close = did_you_mean(name, sorted(configured | existing))
    hint = f"; {close}" if close else f" ({', '.join(sorted(configured))})"
    return (f"topic {name!r} does not exist on the broker and is not one of the service's "
            f"topics{hint}")


def check_reachable(bootstrap: str, timeout: float = 2.0) -> None:
    """Raise `KafkaUnreachable` in one sentence with the address and the cause when no
    bootstrap address accepts a TCP connection; return when one does."""
    import socket

    from streamsvc.security import KafkaUnreachable

    causes = []
    for address in bootstrap.split(","):
        host, _, port = address.strip().rpartition(":")
        host = host.strip("[]") or "localhost"
        try:
            with socket.create_connection((host, int(port)), timeout=timeout):
                return
        except socket.gaierror:
            causes.append(f"the name {host!r} is not known")
        except ConnectionRefusedError:
            causes.append("connection refused: nothing listens there")
        except TimeoutError:
            causes.append("no answer: a firewall, or the wrong host?")
        except (OSError, ValueError) as exc:
            causes.append(getattr(exc, "strerror", None) or str(exc))
    raise KafkaUnreachable(f"cannot reach Kafka at {bootstrap} "
                           f"({'; '.join(dict.fromkeys(causes))}). {KAFKA_HINT}")


KAFKA_HINT = ("Is the broker running, and is the address right? Start one with `streamsvc "
              "dev-broker`, or point to yours with --broker or STREAMSVC_BROKER.")


def _pace(sent: int, rate: float, start: float) -> None:
    """Sleep just enough to keep `sent` records since `start` at `rate` per second (0: no limit)."""
    if rate > 0:
        ahead = sent / rate - (time.monotonic() - start)
        if ahead > 0:
            time.sleep(ahead)


def _json_value(v: Any) -> Any:
    if hasattr(v, "item"):
        return v.item()
    return v


def synthetic_examples(name: str, n: int, seed: int, run: str = ""
                       ) -> Iterator[tuple[str, dict[str, Any], Any]]:
    """(id, x, y) of a built-in stream; ids are ``name-seed[-run]-i``.

    ``run`` tells one `produce` run's events from another's: a model learns an id's label
    once, so a second run with the same seed would otherwise be predicted and not learned
    (counted as duplicates)."""
    from streamsvc.streams import make_stream

    prefix = f"{name}-{seed}-{run}-" if run else f"{name}-{seed}-"
    for i, (x, y) in enumerate(make_stream(name, n, seed)):
        yield f"{prefix}{i}", {str(k): _json_value(v) for k, v in x.items()}, _json_value(y)


def list_streams() -> list[tuple[str, str]]:
    from streamsvc.streams import STREAMS

    return [(name, getattr(spec, "description", "")) for name, spec in STREAMS.items()]


GRAPH_STREAMS = {
    "graph-community": "temporal graph, communities as node labels, a community switch at "
                       "40% and new communities at 70% of the edges (edges + node-labels)",
    "graph-anomaly": "the same graph with a binary 'banned' node label (edges + node-labels)",
}


def produce_graph(args: argparse.Namespace, settings: Any) -> int:
    """Edges to the edges topic and node labels to the node-labels topic."""
    from kafka import KafkaProducer

    from streamsvc.graphgen import make_edge_stream

    n = args.count or 10000
    stream = make_edge_stream(n, seed=args.seed,
                              task="anomaly" if args.synthetic == "graph-anomaly" else "community")
    topics = {"edge": args.topic or settings.topic("edges"), "node": settings.topic("node_labels")}
    producer = connect(KafkaProducer, settings, linger_ms=20)
    sent = {"edge": 0, "node": 0}
    start = time.monotonic()
    try:
        for msg in tqdm(stream, total=n, unit="msg", desc=f"→ {topics['edge']}"):
            kind = msg.pop("kind")
            if args.model:
                msg["model"] = args.model
            key = str(msg.get("src", msg.get("node"))).encode()
            producer.send(topics[kind], key=key, value=json.dumps(msg).encode())
            sent[kind] += 1
            _pace(sum(sent.values()), args.rate, start)
        producer.flush()
    finally:
        producer.close()
    print(f"sent {sent['edge']} edges to {topics['edge']!r} and {sent['node']} node labels to "
          f"{topics['node']!r}; planted shifts: {stream.shifts}", file=sys.stderr)
    return 0


def produce_command(args: argparse.Namespace, settings: Any) -> int:
    if args.list:
        for name, desc in list_streams() + list(GRAPH_STREAMS.items()):
            print(f"{name:16s} {desc}")
        return 0
    wrong = _wrong_use(args)
    if wrong:
        print(f"streamsvc produce: {wrong}", file=sys.stderr)
        return 2
    configured = set(settings.topics.values())
    named = [t for t in (args.topic, args.labels_to) if t and t not in configured]
    if named and not getattr(args, "new_topic", False):
        existing = broker_topics(settings)
        for name in named:
            if problem := unknown_topic(settings, name, existing):
                print(f"streamsvc produce: {problem}; pass --new-topic to create it",
                      file=sys.stderr)
                return 2
    if args.model and is_template(args.model):
        print(f"streamsvc produce: --model: {template_refusal(args.model)}", file=sys.stderr)
        return 2
    if args.model and not MODEL_NAME.fullmatch(args.model):
        print(f"streamsvc produce: --model {args.model!r} can name no model: a model name "
              "holds letters, digits, '.', '_' and '-' (at most 100 characters)",
              file=sys.stderr)
        return 2
    if args.synthetic in GRAPH_STREAMS:
        return produce_graph(args, settings)
    from kafka import KafkaProducer

    from streamsvc.files import BadRow, Example, ExampleFile, FileProblem, is_json_lines

    topic = args.topic or settings.topic("events")
    if args.model and args.model not in settings.catalog:
        close = did_you_mean(args.model, settings.catalog.models)
        print(f"warning: model {args.model!r} is not in this configuration (models: "
              f"{', '.join(sorted(settings.models)) or 'none'}"
              f"{'; ' + close if close else ''}); unless the workers' configuration has it, "
              "they send these records to dead-letters", file=sys.stderr)
    elif args.model and (champion := settings.catalog[args.model].challenger_of):
        print(f"note: model {args.model!r} is a challenger: its records go to its champion "
              f"{champion!r} (and so to it too)", file=sys.stderr)
    if args.file and args.topic is None and args.target is None and \
            (meant := _meant_topic(args.file)):
        print(f"streamsvc produce: the lines of {args.file} look like {meant[0]}, not events: "
              f"send them with --topic {settings.topic(meant[1])} (or, if they are rows of "
              "features, name their label column with --target)", file=sys.stderr)
        return 2
    if args.file and args.target is None and args.labels_to is None and \
            is_json_lines(args.file) and (topic != settings.topic("events")
                                          or _event_lines(args)):
        return _produce_lines(args, settings, topic)
    rejected = _Rejected(args.file)
    examples: Any
    if args.file:
        try:  # checked before connecting: a file that cannot be used at all sends nothing
            examples = ExampleFile.from_args(args, guess_target=False)
        except FileProblem as exc:
            print(f"streamsvc produce: {exc}", file=sys.stderr)
            return 2
        for note in examples.notes:
            print(note, file=sys.stderr)
    else:
        from streamsvc.streams import STREAMS

        if args.synthetic not in STREAMS:
            print(f"streamsvc produce: unknown stream {args.synthetic!r}; choose from "
                  f"{', '.join([*STREAMS, *GRAPH_STREAMS])}", file=sys.stderr)
            return 2
        examples = synthetic_examples(args.synthetic, args.count or 10000, args.seed,
                                      run=secrets.token_hex(3))
    producer = connect(KafkaProducer, settings, linger_ms=20)
    delayed: deque[tuple[str, Any]] = deque()
    n_labels = 0
    sent = _Sent(topic)
    total = args.count if args.count else None
    try:
        bar = tqdm(examples, total=total, unit="rec", desc=f"→ {topic}")
        for item in bar:
            if isinstance(item, BadRow):  # reported and counted, never sent half-parsed
                rejected.add(bar, item)
                continue
            rid, x, y = (item.id, item.x, item.y) if isinstance(item, Example) else item
            sent.add(rid, isinstance(item, Example) and item.lined)
            msg = {"id": rid, "x": x}
            if y is not None and not args.labels_to:
                msg["y"] = y
            if args.model:
                msg["model"] = args.model
            producer.send(topic, key=rid.encode(), value=json.dumps(msg).encode())
            if args.labels_to and y is not None:
                delayed.append((rid, y))
                n_labels += 1
                while len(delayed) > args.label_delay:
                    _send_label(producer, args, *delayed.popleft())
            if args.count and sent.n >= args.count:
                break
            _pace(sent.n, args.rate, sent.start)
        while delayed:
            _send_label(producer, args, *delayed.popleft())
        producer.flush()
    finally:
        producer.close()
    sent.say(f" and {_count(n_labels, 'label')} to {args.labels_to!r}" if args.labels_to else "")
    return rejected.summary(sent.n)


# (name, key) of the other input topics, by the keys their messages must have (the whole
# required shape: a dataset with a column named `obs` or `src` is not mistaken for them)
_SHAPES = (("transitions", "transitions", ("obs", "reward", "done")),
           ("edges", "edges", ("src", "dst", "ts")),
           ("node labels", "node_labels", ("node", "y", "ts")))


def _meant_topic(path: str) -> tuple[str, str] | None:
    """(what, topic key) when most of a JSONL file's first objects have the shape of another
    input topic's messages (transitions, edges, node labels): sent to `events`, every one
    would be a dead letter."""
    from streamsvc.files import BadRow, FileProblem, is_json_lines, read_json_lines

    try:
        if not is_json_lines(path):
            return None
        objs = [o for _, _, o in itertools.islice(read_json_lines(path), 20)
                if not isinstance(o, BadRow)]
    except FileProblem:  # said where the file is read for sending
        return None
    for what, key, needs in _SHAPES:
        if objs and sum(all(k in o for k in needs) and "x" not in o for o in objs) * 2 > len(objs):
            return what, key
    return None


def _event_lines(args: argparse.Namespace) -> bool:
    """Whether a JSONL file's lines are events ({"id", "x", ...}) to send as they are; flat
    rows ({"a": 1, "b": 2}) bound for the events topic are made into events like a CSV's rows
    instead (sent as they are, every one would be a dead letter: no 'id', no 'x')."""
    from streamsvc.files import ExampleFile, FileProblem

    try:
        return ExampleFile.from_args(args, guess_target=False).event_shaped
    except FileProblem:  # said line by line when the lines are sent as they are
        return True


def _wrong_use(args: argparse.Namespace) -> str | None:
    """Options that cannot mean what they say, refused before anything is sent."""
    if args.count is not None and args.count < 1:
        return (f"--count must be at least 1 (got {args.count}); leave it out for the whole "
                "file or 10000 synthetic records")
    if args.labels_to and args.file and args.target is None:
        return ("--labels-to sends the labels of --target to another topic: name the label "
                "column with --target")
    from streamsvc.files import file_only_options

    if args.synthetic and (problem := file_only_options(args)):
        return problem
    if args.label_delay and not args.labels_to:
        return ("--label-delay delays the labels sent with --labels-to; without --labels-to "
                "each label travels inside its event")
    if args.labels_to and args.synthetic in GRAPH_STREAMS:
        return (f"{args.synthetic} sends its node labels to the node-labels topic; --labels-to "
                "is for events' labels")
    return None


class _Rejected:
    """Rows of --file that were not sent: the first few printed with their line, all counted
    by reason for the summary; exit code 3 when most rows were rejected."""

    SHOWN = 5

    def __init__(self, path: str | None) -> None:
        from streamsvc.files import Rejections

        self.path, self.rows = path, Rejections()

    def add(self, bar: Any, row: Any) -> None:
        if self.rows.count < self.SHOWN:
            bar.write(f"{self.path}:{row.line}: skipped: {row.reason}", file=sys.stderr)
        elif self.rows.count == self.SHOWN:
            bar.write("(more skipped rows are counted in the summary)", file=sys.stderr)
        self.rows.add(row.line, row.reason, row.category)

    def summary(self, sent: int) -> int:
        from streamsvc.files import most_rejected

        if not self.rows.count:
            return 0
        total = sent + self.rows.count
        print(f"rejected {self.rows.count} of {total} rows of {self.path} (not sent), by "
              "reason:\n" + "\n".join(self.rows.lines()), file=sys.stderr)
        if most_rejected(self.rows.count, total):
            print(f"streamsvc produce: most rows of {self.path} were rejected", file=sys.stderr)
            return 3
        return 0


def _produce_lines(args: argparse.Namespace, settings: Any, topic: str) -> int:
    """JSONL without --target: every line is sent as it is (one JSON object per line), keyed
    by its `id` when it has one; --model only fills in a missing `model`."""
    from kafka import KafkaProducer

    from streamsvc.files import BadRow, FileProblem, read_json_lines

    try:
        lines = read_json_lines(args.file)
    except FileProblem as exc:
        print(f"streamsvc produce: {exc}", file=sys.stderr)
        return 2
    rejected = _Rejected(args.file)
    producer = connect(KafkaProducer, settings, linger_ms=20)
    sent = _Sent(topic)
    try:
        bar = tqdm(lines, unit="rec", desc=f"→ {topic}")
        for line, raw, obj in bar:
            if isinstance(obj, BadRow):
                rejected.add(bar, obj)
                continue
            value = raw.encode()
            extra = {}
            if args.model and "model" not in obj:
                extra["model"] = args.model
            if "id" not in obj and topic == settings.topic("events"):
                extra["id"] = str(line)  # an event's id is required: its line, as for CSV rows
            if extra:
                obj = {**obj, **extra}
                value = json.dumps(obj).encode()
            key = str(obj["id"]).encode() if "id" in obj else None
            producer.send(topic, key=key, value=value)
            sent.add(str(obj.get("id", "")), "id" in extra)  # "" for records without an id
            if args.count and sent.n >= args.count:
                break
            _pace(sent.n, args.rate, sent.start)
        producer.flush()
    finally:
        producer.close()
    sent.say()
    return rejected.summary(sent.n)


class _Sent:
    """What one `produce` run sent: the count and the first and last ids, said at the end
    (so a user can send labels for them), with a note when ids were line numbers."""

    def __init__(self, topic: str) -> None:
        self.topic, self.start = topic, time.monotonic()
        self.n = self.lined = 0
        self.first = self.last = ""

    def add(self, rid: str, lined: bool = False) -> None:
        self.n += 1
        if rid:  # records of other topics may carry no id
            self.first, self.last = self.first or rid, rid
        self.lined += lined

    def say(self, labels: str = "") -> None:
        ids = (f" (first id {self.first}, last {self.last})" if self.first != self.last
               else f" (id {self.first})" if self.first else "")
        print(f"sent {_count(self.n, 'record')} to {self.topic!r}{labels} in "
              f"{time.monotonic() - self.start:.1f}s{ids}", file=sys.stderr)
        if self.lined:
            print(f"note: {_count(self.lined, 'row')} had no id given, so each was sent with its "
                  "line number as its id. A model learns an id's label once: rows of another "
                  "file sent the same way to the same model would be predicted but not learned. "
                  "Name the column holding ids with --id-column (JSON lines shaped as events: "
                  "give each an \"id\").", file=sys.stderr)


def _count(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _send_label(producer: Any, args: argparse.Namespace, rid: str, y: Any) -> None:
    msg = {"id": rid, "y": y}
    if args.model:
        msg["model"] = args.model
    producer.send(args.labels_to, key=rid.encode(), value=json.dumps(msg).encode())


def tail_command(args: argparse.Namespace, settings: Any) -> int:
    from kafka import KafkaConsumer

    consumer = connect(
        KafkaConsumer, settings, group_id=None,
        auto_offset_reset="earliest" if args.from_beginning else "latest",
        enable_auto_commit=False,
        consumer_timeout_ms=int(args.timeout * 1000) if args.timeout else float("inf"),
    )
    existing = set(consumer.topics())
    if problem := unknown_topic(settings, args.topic, existing):
        consumer.close()
        print(f"streamsvc tail: {problem}", file=sys.stderr)
        return 2
    if args.topic not in existing:
        print(f"streamsvc tail: topic {args.topic!r} does not exist yet (a worker creates the "
              "service's topics when it starts); waiting for it", file=sys.stderr)
    consumer.subscribe([args.topic])
    n = 0
    try:
        for m in consumer:
            value = m.value.decode("utf-8", errors="replace") if m.value is not None else "null"
            print(value, flush=True)
            n += 1
            if args.max and n >= args.max:
                break
    except KeyboardInterrupt:
        pass
    finally:
        consumer.close()
    return 0
