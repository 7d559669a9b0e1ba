"""Small helpers for messages in plain words."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def did_you_mean(word: str, choices: Iterable[str], cutoff: float = 0.6,
                 quote: bool = True) -> str | None:
    """"did you mean 'x'?" for the choice closest to a misspelt `word` (None if none is
    close enough: `cutoff` as `difflib.get_close_matches` takes it).

    >>> did_you_mean("defualt", ["default", "graph"])
    "did you mean 'default'?"
    >>> did_you_mean("zzz", ["default"]) is None
    True
    """
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=cutoff)
    if not close:
        return None
    return f"did you mean {close[0]!r}?" if quote else f"did you mean {close[0]}?"
