"""Snapshots pickled by a forked child: the bytes of the state at the fork, whatever the
parent does next; a child that fails is an error, never a truncated snapshot."""

from __future__ import annotations

import pickle
import threading
import time

import pytest

from agents.host import HostLimits
from agents.pipeline import Pipeline
from streamsvc.config import load_settings
from streamsvc.forksnap import pickle_in_child


def _learned_state(n: int = 300):
    pipe = Pipeline(load_settings(None, {"STREAMSVC_MODELS__DEFAULT__KIND": "hoeffding_tree"}
                                  ).models, HostLimits())
    pipe.assign(0, None, None)
    for i in range(n):
        raw = b'{"id": "e%d", "x": {"a": %d.5, "b": "%s"}, "y": %d}' % (
            i, i % 7, b"u" if i % 3 else b"v", i % 2)
        pipe.learn(0, i, pipe.ingest("events", "events", 0, i, raw).value, 1000)
    return pipe


def test_the_child_pickles_the_state_as_it_was_at_the_fork() -> None:
    pipe = _learned_state()
    st, meta = pipe.take_snapshot(0)
    expected = pickle.dumps(st, protocol=pickle.HIGHEST_PROTOCOL)
    collect = pickle_in_child(st)
    assert collect is not None
    for i in range(300, 400):  # the parent goes on learning before the bytes are read
        raw = b'{"id": "e%d", "x": {"a": 1.5, "b": "u"}, "y": 1}' % i
        pipe.learn(0, i, pipe.ingest("events", "events", 0, i, raw).value, 1000)
    blob = collect()
    assert blob == expected
    restored = pickle.loads(blob)
    assert restored.offset == meta["offset"] == 299
    assert next(iter(restored.hosts.values())).learned == 300


def test_a_child_that_cannot_pickle_is_an_error_not_a_short_snapshot() -> None:
    collect = pickle_in_child({"cannot": lambda: None})
    assert collect is not None
    with pytest.raises(RuntimeError, match="snapshot child .* failed"):
        collect()


def test_forking_beside_running_threads_and_a_kafka_client() -> None:
    from confluent_kafka import Producer

    busy = threading.Event()
    producer = Producer({"bootstrap.servers": "127.0.0.1:1", "log_level": 0})  # its threads run
    spinner = threading.Thread(target=lambda: busy.wait(5), daemon=True)
    spinner.start()
    state = {"weights": list(range(100_000))}
    t = time.perf_counter()
    collect = pickle_in_child(state)
    forked_in = time.perf_counter() - t
    assert collect is not None and pickle.loads(collect()) == state
    assert forked_in < 1.0
    busy.set()
    del producer
