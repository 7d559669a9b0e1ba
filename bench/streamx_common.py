"""Helpers shared by the stream-x benchmark scripts: machine description, doc sections.

All stream-x scripts write into ONE page, docs/bench-streamx.md, each inside its own
``<!-- name:start -->`` / ``<!-- name:end -->`` markers, so re-running one script only
replaces its own section.
"""

from __future__ import annotations

import os
import platform
import shlex
import sys
from pathlib import Path

import numpy as np

DOC = Path(__file__).resolve().parent.parent / "docs" / "bench-streamx.md"
HEADER = (
    "# stream-x learners: benchmarks\n\n"
    "Numpy stream TD(λ) / Q(λ) (`models/streamx`). Each section is written by the script named\n"
    "in it; re-run the command shown to refresh that section only.\n"
)


def machine() -> str:
    import river

    return (
        f"{platform.platform()}, {os.cpu_count()} CPUs ({platform.processor() or platform.machine()}), "
        f"Python {platform.python_version()}, numpy {np.__version__}, river {river.__version__}"
    )


def command() -> str:
    mod = Path(sys.argv[0]).stem
    return f"python -m bench.{mod} " + " ".join(shlex.quote(a) for a in sys.argv[1:])


def write_section(name: str, body: str) -> Path:
    """Replace (or append) the section ``name`` of docs/bench-streamx.md with ``body``."""
    DOC.parent.mkdir(parents=True, exist_ok=True)
    text = DOC.read_text() if DOC.exists() else HEADER
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    block = f"{start}\n{body.rstrip()}\n{end}"
    if start in text and end in text:
        pre, rest = text.split(start, 1)
        _, post = rest.split(end, 1)
        text = pre + block + post
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    DOC.write_text(text)
    return DOC
