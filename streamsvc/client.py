"""Client tools on kafka-python: `produce` (files or synthetic streams) and `tail`."""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tqdm import tqdm


def kafka_kwargs(settings: Any) -> dict[str, Any]:
    """kafka-python connection arguments (broker + security), after a quick check that Kafka
    accepts them: a wrong password or certificate fails here in plain words, not as a hang."""
    from streamsvc.security import check_kafka

    check_kafka(settings.bootstrap, settings.security)
    return {"bootstrap_servers": settings.bootstrap, **settings.security.kafka_python()}


def _pace(sent: int, rate: float, start: float) -> None:
    """Sleep just enough to keep `sent` records since `start` at `rate` per second (0: no limit)."""
    if rate > 0:
        ahead = sent / rate - (time.monotonic() - start)
        if ahead > 0:
            time.sleep(ahead)


def _number(v: str) -> Any:
    """CSV cells: numbers become numbers, the rest stays text (a categorical feature)."""
    try:
        f = float(v)
    except ValueError:
        return v
    return int(f) if f.is_integer() and "." not in v and "e" not in v.lower() else f


def read_examples(path: str | Path, target: str | None, id_column: str | None
                  ) -> Iterator[tuple[str, dict[str, Any], Any]]:
    """(id, x, y) from a CSV (header row) or JSONL file; y is None without a target column."""
    path = Path(path)
    if not path.is_file():
        raise SystemExit(f"streamsvc: no such file: {path}")
    return _read_examples(path, target, id_column)


def _read_examples(path: Path, target: str | None, id_column: str | None
                   ) -> Iterator[tuple[str, dict[str, Any], Any]]:
    if path.suffix.lower() in {".jsonl", ".ndjson", ".json"}:
        with path.open() as fh:
            for i, line in enumerate(fh):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise SystemExit(f"streamsvc: {path}:{i + 1}: not JSON: {exc}") from None
                if "x" in row and target is None:
                    yield str(row.get("id", i)), row["x"], row.get("y")
                    continue
                rid = str(row.pop(id_column)) if id_column else str(i)
                y = row.pop(target, None) if target else None
                yield rid, row, y
        return
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        cols = reader.fieldnames or []
        for c in (target, id_column):
            if c and c not in cols:
                raise SystemExit(f"streamsvc: column {c!r} not in {path} (columns: {cols})")
        for i, row in enumerate(reader):
            rid = row.pop(id_column) if id_column else str(i)
            y = row.pop(target) if target else None
            x = {k: _number(v) for k, v in row.items() if v != ""}
            yield rid, x, (_number(y) if isinstance(y, str) else y)


def _json_value(v: Any) -> Any:
    if hasattr(v, "item"):
        return v.item()
    return v


def synthetic_examples(name: str, n: int, seed: int) -> Iterator[tuple[str, dict[str, Any], Any]]:
    from streamsvc.streams import make_stream

    for i, (x, y) in enumerate(make_stream(name, n, seed)):
        yield f"{name}-{seed}-{i}", {str(k): _json_value(v) for k, v in x.items()}, _json_value(y)


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
    producer = KafkaProducer(**kafka_kwargs(settings), linger_ms=20)
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
    if args.synthetic in GRAPH_STREAMS:
        return produce_graph(args, settings)
    from kafka import KafkaProducer

    topic = args.topic or settings.topic("events")
    if args.file and args.target is None and args.labels_to is None and \
            Path(args.file).suffix.lower() in {".jsonl", ".ndjson"}:
        return _produce_lines(args, settings, topic)
    if args.file:
        examples = read_examples(args.file, args.target, args.id_column)
    else:
        from streamsvc.streams import STREAMS

        if args.synthetic not in STREAMS:
            print(f"streamsvc: unknown stream {args.synthetic!r}; choose from "
                  f"{', '.join(STREAMS)}", file=sys.stderr)
            return 2
        examples = synthetic_examples(args.synthetic, args.count or 10000, args.seed)
    producer = KafkaProducer(**kafka_kwargs(settings), linger_ms=20)
    delayed: deque[tuple[str, Any]] = deque()
    sent = 0
    start = time.monotonic()
    total = args.count if args.count else None
    try:
        for rid, x, y in tqdm(examples, total=total, unit="rec", desc=f"→ {topic}"):
            msg = {"id": rid, "x": x}
            if y is not None and not args.labels_to:
                msg["y"] = y
            if args.model:
                msg["model"] = args.model
            producer.send(topic, key=rid.encode(), value=json.dumps(msg).encode())
            if args.labels_to and y is not None:
                delayed.append((rid, y))
                while len(delayed) > args.label_delay:
                    _send_label(producer, args, *delayed.popleft())
            sent += 1
            if args.count and sent >= args.count:
                break
            _pace(sent, args.rate, start)
        while delayed:
            _send_label(producer, args, *delayed.popleft())
        producer.flush()
    finally:
        producer.close()
    print(f"sent {sent} records to {topic!r} in {time.monotonic() - start:.1f}s", file=sys.stderr)
    return 0


def _produce_lines(args: argparse.Namespace, settings: Any, topic: str) -> int:
    """JSONL without --target: every line is sent as it is (one JSON object per line), keyed
    by its `id` when it has one; --model only fills in a missing `model`."""
    from kafka import KafkaProducer

    path = Path(args.file)
    if not path.is_file():
        raise SystemExit(f"streamsvc: no such file: {path}")
    producer = KafkaProducer(**kafka_kwargs(settings), linger_ms=20)
    sent, start = 0, time.monotonic()
    try:
        with path.open("rb") as fh:
            for i, line in enumerate(tqdm(fh, unit="rec", desc=f"→ {topic}")):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except ValueError as exc:
                    raise SystemExit(f"streamsvc: {path}:{i + 1}: not JSON: {exc}") from None
                if not isinstance(obj, dict):
                    raise SystemExit(f"streamsvc: {path}:{i + 1}: not a JSON object")
                value = line.rstrip(b"\r\n")
                if args.model and "model" not in obj:
                    value = json.dumps({**obj, "model": args.model}).encode()
                key = str(obj["id"]).encode() if "id" in obj else None
                producer.send(topic, key=key, value=value)
                sent += 1
                if args.count and sent >= args.count:
                    break
                _pace(sent, args.rate, start)
        producer.flush()
    finally:
        producer.close()
    print(f"sent {sent} records to {topic!r} in {time.monotonic() - start:.1f}s", file=sys.stderr)
    return 0


def _send_label(producer: Any, args: argparse.Namespace, rid: str, y: Any) -> None:
    msg = {"id": rid, "y": y}
    if args.model:
        msg["model"] = args.model
    producer.send(args.labels_to, key=rid.encode(), value=json.dumps(msg).encode())


def tail_command(args: argparse.Namespace, settings: Any) -> int:
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(
        args.topic, **kafka_kwargs(settings), group_id=None,
        auto_offset_reset="earliest" if args.from_beginning else "latest",
        enable_auto_commit=False,
        consumer_timeout_ms=int(args.timeout * 1000) if args.timeout else float("inf"),
    )
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
