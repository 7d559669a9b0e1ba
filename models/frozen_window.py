"""The training window the frozen reference models keep until they are fitted once.

Why a window, not incremental learning: a frozen reference (`models.reference_drift`) is fitted
once on the examples of the current concept and must then keep making that concept's
mistakes, so its models store the window, fit on `freeze()`, and refuse to learn after it.

>>> from models.frozen_window import FrozenWindow
>>> w = FrozenWindow()
>>> w.learn_one({"a": 1.0}, "x"); w.learn_one({"a": 2.0}, "y"); w.learn_one({"a": 3.0}, "x")
>>> w.class_index()
(['x', 'y'], {'x': 0, 'y': 1})
"""

from __future__ import annotations

from typing import Any


class FrozenWindow:
    """Stores examples with `learn_one` until a subclass's `freeze` fits on them."""

    def __init__(self) -> None:
        self.xs: list[dict[str, Any]] = []
        self.ys: list[Any] = []
        self.frozen = False

    def learn_one(self, x: dict[str, Any], y: Any) -> None:
        if self.frozen:
            raise RuntimeError("a frozen model does not learn")
        self.xs.append(x)
        self.ys.append(y)

    def class_index(self) -> tuple[list[Any], dict[Any, int]]:
        """The window's classes in order of first appearance, and each one's index."""
        classes = list(dict.fromkeys(self.ys))
        return classes, {c: i for i, c in enumerate(classes)}
