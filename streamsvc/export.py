"""`streamsvc export MODEL`: a worker's learned model, read back from the checkpoints topic,
written to a file a notebook loads with `pickle` (the mission's "export a model and load it
in a notebook").

The snapshots are read the way a restarting worker reads them: a snapshot whose signature
fails (`worker.snapshot_key`) is refused before it is unpickled. A model with several shards
is exported as a list of its replicas, shard 0 first; each learned the events whose id
hashes to it."""

from __future__ import annotations

import argparse
import difflib
import pickle
import sys
from pathlib import Path
from typing import Any


def model_replicas(settings: Any, name: str, timeout: float = 30.0
                   ) -> tuple[dict[int, Any], list[str]]:
    """({shard: learner} of model ``name`` in the latest snapshots, refused snapshot keys)."""
    from streamsvc.checkpoints import CheckpointStore

    refused: list[str] = []
    store = CheckpointStore(settings.bootstrap, settings.topic("checkpoints"),
                            client_config=settings.security.librdkafka(),
                            signing_key=settings.snapshot_key,
                            on_refused=lambda key, problem: refused.append(f"{key}: {problem}"))
    try:
        found = store.load_all(f"{settings.app_id}/records-", timeout=timeout)
    finally:
        store.close()
    shards: dict[int, Any] = {}
    for blob, _ in found.values():
        for host in pickle.loads(blob).hosts.values():
            if host.name == name:  # its shard is its routing key: "name" or "name#k"
                _, sep, k = str(host.shard).rpartition("#")
                shards[int(k) if sep else 0] = host.model
    return shards, refused


def export_command(args: argparse.Namespace, settings: Any) -> int:
    name = args.model
    if name not in settings.models:
        close = difflib.get_close_matches(name, list(settings.models), n=1)
        hint = f"did you mean {close[0]!r}?" if close else \
            f"configured: {', '.join(settings.models)}"
        print(f"streamsvc export: unknown model {name!r}; {hint}", file=sys.stderr)
        return 2
    out = Path(args.out or f"{name}.pkl")
    if out.is_dir() or (out.exists() and not args.force):
        print(f"streamsvc export: {out} exists; pass --force to overwrite it, or choose "
              "another --out", file=sys.stderr)
        return 2
    from streamsvc.client import broker_topics

    if settings.topic("checkpoints") not in broker_topics(settings):
        print(f"streamsvc export: the broker has no checkpoints topic "
              f"({settings.topic('checkpoints')!r}) yet: no worker has run against it",
              file=sys.stderr)
        return 1
    shards, refused = model_replicas(settings, name)
    for problem in refused:
        print(f"streamsvc export: a snapshot was refused, not read: {problem}", file=sys.stderr)
    if not shards:
        print(f"streamsvc export: no snapshot holds model {name!r} yet: a worker writes one "
              "after it has learned from records of it (and at every rebalance or stop)",
              file=sys.stderr)
        return 1
    learners = [shards[k] for k in sorted(shards)]
    try:
        with out.open("wb") as f:
            pickle.dump(learners[0] if len(learners) == 1 else learners, f)
    except OSError as exc:
        print(f"streamsvc export: cannot write {out}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    what = (f"{type(learners[0]).__name__}" if len(learners) == 1 else
            f"a list of {len(learners)} {type(learners[0]).__name__} replicas, shard 0 first")
    print(f"wrote {out}: model {name!r}, {what}\nload it with: import pickle; "
          f"model = pickle.load(open({str(out)!r}, 'rb'))  # a pickle: load files you trust",
          file=sys.stderr)
    return 0
