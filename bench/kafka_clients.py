"""Which Kafka client should carry the worker's hot path? Measured side by side.

    python -m bench.kafka_clients --n 100000

For each client the same job: consume N small JSON records from one topic (4 partitions),
send each on to another topic, flush, commit — the work of one hop of the worker with no
processing in between. Also a bare Faust agent that forwards each event (the framework's
per-event streams). All in one run on one broker, so the numbers compare.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import time
import uuid
from pathlib import Path

from tqdm import tqdm

from streamsvc.devbroker import KafkaBroker


def _fill(bootstrap: str, topic: str, n: int) -> None:
    from confluent_kafka import Producer

    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "batch.size": 1_000_000})
    for i in range(n):
        body = json.dumps({"id": f"e{i}", "x": {"a": i % 7, "b": 0.5, "c": 1.25}, "y": i % 2})
        while True:
            try:
                p.produce(topic, body.encode())
                break
            except BufferError:
                p.poll(0.01)
    p.flush()


def _make_topics(bootstrap: str, names: list[str]) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    for f in admin.create_topics([NewTopic(t, 4, 1) for t in names]).values():
        f.result()


def forward_confluent(bootstrap: str, src: str, dst: str, n: int) -> float:
    from confluent_kafka import Consumer, Producer

    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"g-{uuid.uuid4().hex[:6]}",
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 2, "compression.type": "lz4"})
    c.subscribe([src])
    got = 0
    t0 = None
    while got < n:
        msgs = c.consume(2000, 0.5)
        if not msgs:
            continue
        if t0 is None:
            t0 = time.perf_counter()
        for m in msgs:
            if m.error():
                continue
            p.produce(dst, m.value(), m.key())
            got += 1
        p.poll(0)
        p.flush()
        c.commit(asynchronous=False)
    dt = time.perf_counter() - (t0 or time.perf_counter())
    c.close()
    return n / dt


def forward_aiokafka(bootstrap: str, src: str, dst: str, n: int) -> float:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    async def run() -> float:
        c = AIOKafkaConsumer(src, bootstrap_servers=bootstrap,
                             group_id=f"g-{uuid.uuid4().hex[:6]}", auto_offset_reset="earliest",
                             enable_auto_commit=False)
        p = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=2, compression_type=None,
                             max_batch_size=512 * 1024)
        await c.start()
        await p.start()
        got, t0 = 0, None
        try:
            while got < n:
                batches = await c.getmany(timeout_ms=500, max_records=2000)
                if not batches:
                    continue
                if t0 is None:
                    t0 = time.perf_counter()
                futs = []
                for msgs in batches.values():
                    for m in msgs:
                        futs.append(await p.send(dst, m.value, key=m.key))
                        got += 1
                await asyncio.gather(*futs)
                await c.commit()
            return n / (time.perf_counter() - t0)
        finally:
            await c.stop()
            await p.stop()

    return asyncio.run(run())


def forward_faust(bootstrap: str, src: str, dst: str, n: int) -> float:
    """A Faust agent that sends each event on (the per-event stream path)."""
    import faust

    app = faust.App(f"bench-{uuid.uuid4().hex[:6]}", broker=f"kafka://{bootstrap}",
                    value_serializer="raw", web_enabled=False, topic_allow_declare=False,
                    consumer_auto_offset_reset="earliest")
    t_src, t_dst = app.topic(src), app.topic(dst)
    state = {"got": 0, "t0": None, "rate": 0.0}

    @app.agent(t_src)
    async def fwd(stream):  # noqa: ANN001
        async for value in stream:
            if state["t0"] is None:
                state["t0"] = time.perf_counter()
            await t_dst.send(value=value)
            state["got"] += 1
            if state["got"] >= n:
                state["rate"] = n / (time.perf_counter() - state["t0"])
                await app.stop()
                return

    async def main() -> None:
        await app.start()
        while not state["rate"]:
            await asyncio.sleep(0.2)

    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(asyncio.wait_for(main(), timeout=600))
    except Exception:  # noqa: BLE001 - faust's shutdown path may raise when stopped early
        pass
    return state["rate"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--faust", action="store_true", help="also the Faust per-event agent")
    ap.add_argument("--out", default="docs/bench-kafka-clients.md")
    args = ap.parse_args()
    rows = []
    with KafkaBroker(partitions=4) as broker:
        cands = [("confluent-kafka (librdkafka)", forward_confluent),
                 ("aiokafka", forward_aiokafka)]
        if args.faust:
            cands.append(("faust agent, per-event send", forward_faust))
        for name, fn in tqdm(cands, desc="clients"):
            src, dst = f"src-{uuid.uuid4().hex[:6]}", f"dst-{uuid.uuid4().hex[:6]}"
            _make_topics(broker.bootstrap, [src, dst])
            _fill(broker.bootstrap, src, args.n)
            rows.append((name, fn(broker.bootstrap, src, dst, args.n)))
    best = max(r for _, r in rows)
    lines = ["## Which Kafka client carries the hot path (`bench/kafka_clients.py`)", "",
             f"Command: `python -m bench.kafka_clients {' '.join(sys.argv[1:])}`. One broker, "
             f"{args.n:,} small JSON records on 4 partitions consumed, each sent on to another "
             "topic, flushed, committed: one hop of the worker with no processing. Machine: "
             f"{platform.platform()}, {os.cpu_count()} CPUs.", "",
             "| client | forwarded events/s | ratio to best |", "|---|---:|---:|"]
    lines += [f"| {name} | {r:,.0f} | {r / best:.2f} |" for name, r in rows]
    print("\n".join(lines), flush=True)
    Path(args.out).write_text("\n".join(lines) + "\n")
    os._exit(0)  # a stopped Faust app may leave threads behind that keep the process up


if __name__ == "__main__":
    main()
