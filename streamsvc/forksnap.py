"""Pickling a snapshot in a forked child, so the hot path does not stop for it.

Why: pickling a model is the longest pause of the worker's loop (53 ms for a Hoeffding tree
after 100,000 examples, ~2 MB), and every record that arrives meanwhile waits: at a few
thousand events/s that alone puts the p99 latency above 50 ms. `os.fork()` returns in a few
milliseconds; the child holds a copy-on-write image of the state *as it is at the batch
boundary*, pickles it and writes the bytes to a pipe, while the parent goes on learning. The
same trick keeps Redis answering while it saves.

The child touches nothing but the object it pickles and the pipe (no logging, no Kafka
client, no imports) and leaves with `os._exit`, so the librdkafka threads and the asyncio loop
it did not inherit are never needed. Where `fork` is missing, or fails, the caller pickles in
its own thread as before.
"""

from __future__ import annotations

import os
import pickle
import select
import signal
import time
import warnings
from collections.abc import Callable
from typing import Any

#: seconds a child may take to deliver its snapshot before it is killed (the write is retried)
CHILD_TIMEOUT = 300.0


def pickle_in_child(obj: Any) -> Callable[[], bytes] | None:
    """Fork a child that pickles `obj`; return a function that waits for the bytes (call it
    from another thread), or None when no child could be started."""
    if not hasattr(os, "fork"):
        return None
    try:
        r, w = os.pipe()
    except OSError:
        return None
    try:
        with warnings.catch_warnings():  # Python >= 3.12 warns about fork with threads: the
            warnings.simplefilter("ignore", DeprecationWarning)  # child uses none of them
            pid = os.fork()
    except OSError:
        os.close(r)
        os.close(w)
        return None
    if pid == 0:  # pragma: no cover - the child; its bytes are checked by the parent's tests
        code = 1
        try:
            os.close(r)
            view = memoryview(pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL))
            while view:
                view = view[os.write(w, view):]
            code = 0
        finally:
            os._exit(code)
    os.close(w)
    return lambda: _collect(pid, r)


def _collect(pid: int, fd: int) -> bytes:
    """Read the child's bytes to the end, then reap it; raise if it failed or hung."""
    chunks: list[bytes] = []
    deadline = time.monotonic() + CHILD_TIMEOUT
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                os.kill(pid, signal.SIGKILL)
                raise TimeoutError(f"snapshot child {pid} gave nothing for {CHILD_TIMEOUT:.0f}s")
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(fd)
        code = _reap(pid)
    data = b"".join(chunks)
    if code != 0 or not data.endswith(pickle.STOP):  # a pickle ends with STOP: not cut short
        raise RuntimeError(f"snapshot child {pid} failed (exit status {code}, {len(data)} bytes)")
    return data


def _reap(pid: int) -> int:
    try:
        _, status = os.waitpid(pid, 0)
    except ChildProcessError:  # reaped by someone else (e.g. an event loop's child watcher)
        return 0
    return os.waitstatus_to_exitcode(status)
