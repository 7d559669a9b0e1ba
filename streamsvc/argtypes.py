"""argparse ``type`` functions for numbers with a floor: a wrong value is one sentence and
exit 2 when the command line is read, not a Java stack trace or a hang later (a negative
``tail --timeout`` used to wait forever, ``dev-broker --partitions 0`` failed inside Kafka)."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable


def at_least(low: float, kind: type = int) -> Callable[[str], float]:
    """A parser of ``kind`` (int or float) that refuses values below ``low``.

    >>> at_least(1)("4")
    4
    >>> at_least(0, float)("-2")
    Traceback (most recent call last):
    argparse.ArgumentTypeError: must be at least 0, got -2
    """

    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            what = "a whole number" if kind is int else "a number"
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low:g}, got {text}")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in its own messages
    return parse
