"""`streamsvc export MODEL`: a worker's learned model, read back from the checkpoints topic,
written to a file a notebook loads with `pickle` (the mission's "export a model and load it
in a notebook").

The snapshots are read the way a restarting worker reads them: a snapshot whose signature
fails (`worker.snapshot_key`) is refused before it is unpickled. A shard is taken from the
snapshot of the records partition its records go to now; a copy left in another partition
by a changed `worker.shard_placement` or partition count is stale and skipped. A model with
several shards is exported as a list indexed by shard (None for a shard that has learned
nothing yet); each replica learned the events whose id hashes to it."""

from __future__ import annotations

import argparse
import logging
import pickle
import sys
from pathlib import Path
from typing import Any

from agents.catalog import is_template
from agents.processor import template_refusal
from streamsvc.words import did_you_mean


def _broker_view(settings: Any) -> tuple[set[str], int]:
    """(the broker's topics, how many partitions the records topic has: 0 for none yet),
    asked over one connection."""
    from kafka import KafkaConsumer

    from streamsvc.client import connect

    consumer = connect(KafkaConsumer, settings, group_id=None)
    try:
        return (set(consumer.topics()),
                len(consumer.partitions_for_topic(settings.topic("records")) or ()))
    finally:
        consumer.close()


def model_replicas(settings: Any, name: str, records_partitions: int, timeout: float = 30.0
                   ) -> tuple[dict[int, Any], list[str]]:
    """({shard: learner} of model ``name`` in the latest snapshots, problems to report);
    ``records_partitions``: the records topic's partition count (0: unknown, none skipped)."""
    from streamsvc.checkpoints import CheckpointStore
    from streamsvc.engine import records_partition

    problems: list[str] = []
    store = CheckpointStore(
        settings.bootstrap, settings.topic("checkpoints"),
        client_config=settings.security.librdkafka(), signing_key=settings.snapshot_key,
        on_refused=lambda key, why: problems.append(f"snapshot {key} refused, not read: {why}"))
    prefix = f"{settings.app_id}/records-"
    try:
        found = store.load_all(prefix, timeout=timeout)
    finally:
        store.close()
    n = records_partitions
    spread = settings.worker["shard_placement"] == "spread"
    shards: dict[int, Any] = {}
    for key, (blob, _) in found.items():
        partition = int(key[len(prefix):])
        for rk, host in pickle.loads(blob).hosts.items():
            if host.name != name:
                continue
            if n and records_partition(rk, n, spread) != partition:
                problems.append(f"a stale copy of shard {rk!r} in records partition {partition} "
                                "was skipped (its records go elsewhere now)")
                continue
            _, sep, k = rk.rpartition("#")  # the routing key: "name" or "name#k"
            shards[int(k) if sep else 0] = host.model
    return shards, problems


def export_command(args: argparse.Namespace, settings: Any) -> int:
    name = args.model
    if is_template(name):
        print(f"streamsvc export: {template_refusal(name)}", file=sys.stderr)
        return 2
    if name not in settings.catalog:
        hint = did_you_mean(name, settings.catalog.models) or \
            f"configured: {', '.join(settings.models)}"
        print(f"streamsvc export: unknown model {name!r}; {hint}", file=sys.stderr)
        return 2
    out = Path(args.out or f"{name}.pkl")
    if out.is_dir() or (out.exists() and not args.force):
        print(f"streamsvc export: {out} exists; pass --force to overwrite it, or choose "
              "another --out", file=sys.stderr)
        return 2
    from confluent_kafka import KafkaException

    topics, records_partitions = _broker_view(settings)
    if settings.topic("checkpoints") not in topics:
        print(f"streamsvc export: the broker has no checkpoints topic "
              f"({settings.topic('checkpoints')!r}) yet: no worker has run against it",
              file=sys.stderr)
        return 1
    # the store's own words are a worker's ("rebuilt by replaying"); export says its own below
    logging.getLogger("streamsvc.checkpoints").setLevel(logging.CRITICAL)
    try:
        shards, problems = model_replicas(settings, name, records_partitions)
    except (TimeoutError, KafkaException) as exc:
        print(f"streamsvc export: could not read the checkpoints topic: {exc}", file=sys.stderr)
        return 1
    for problem in problems:
        print(f"streamsvc export: {problem}", file=sys.stderr)
    if not shards:
        print(f"streamsvc export: no snapshot holds model {name!r} yet: a worker writes one "
              "after it has learned from records of it (and at every rebalance or stop)",
              file=sys.stderr)
        return 1
    n_shards = max(settings.catalog[name].shards, max(shards) + 1)
    learners = [shards.get(k) for k in range(n_shards)]
    try:
        with out.open("wb") as f:
            pickle.dump(learners[0] if n_shards == 1 else learners, f)
    except OSError as exc:
        print(f"streamsvc export: cannot write {out}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    kind = type(next(m for m in learners if m is not None)).__name__
    missing = [k for k, m in enumerate(learners) if m is None]
    what = kind if n_shards == 1 else (
        f"a list of {n_shards} {kind} replicas indexed by shard"
        + (f" (None for shard{'s' if len(missing) > 1 else ''} "
           f"{', '.join(map(str, missing))}: nothing learned yet)" if missing else ""))
    print(f"wrote {out}: model {name!r}, {what}\nload it with: import pickle; "
          f"model = pickle.load(open({str(out)!r}, 'rb'))  # a pickle: load files you trust",
          file=sys.stderr)
    return 0
