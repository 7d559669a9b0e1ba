"""Neighbour-label votes as members of the learner's mixture, and a fitted combination of them.

The votes read the label columns of a node's input vector (the recency-weighted histogram of
its neighbours' labels and its two-hop version, see :func:`.features.context`) and, for the
propagated vote, the neighbours' stored two-hop estimates (:func:`.features.propagated`), and
smooth them towards the recent class frequencies with one pseudo-neighbour, so that a wrong
vote costs a bounded log-loss and a node without labelled neighbours gets the majority's
answer.

:class:`VoteCombiner` is a tiny softmax over those smoothed votes' log-probabilities with
weights shared by all classes (plus a bias per class): it starts as the richest vote (the
propagated one, else the two-hop one) and learns how much to trust each against the others
and the class prior. With five shared weights it cannot memorise nodes, so what it learns on
labelled nodes carries over to unlabelled ones.
"""

from __future__ import annotations

import numpy as np

_EPS = 1e-6
_any = np.logical_or.reduce  # ndarray.any without its Python-level wrapper (hot path)


def smoothed_votes(
    hist: np.ndarray,
    two: np.ndarray | None,
    n1: float,
    n2: float,
    prior: np.ndarray,
    prop: np.ndarray | None = None,
) -> list[np.ndarray]:
    """[one-hop vote, two-hop vote (if ``two`` is given), propagated vote (if ``prop`` is
    given, with ``n2`` neighbours' weight)], each ``(n·h + prior) / (n + 1)`` (just
    ``prior`` without evidence)."""
    out = []
    for h, n in ((hist, n1), (two, n2), (prop, n2)):
        if h is None:
            continue
        out.append((n * h + prior) / (n + 1.0) if n > 0 and _any(h) else prior)
    return out


class VoteCombiner:
    """Softmax over ``w · [log one-hop, log two-hop, log propagated vote, log prior]_c + b_c``
    (the votes given), trained with Adam on the log-loss; initialised to the richest vote
    given (the last one)."""

    def __init__(self, n_votes: int, lr: float = 0.02) -> None:
        self.lr = lr
        self.w = np.zeros(n_votes + 1)
        self.w[n_votes - 1] = 1.0  # the richest vote
        self.b = np.zeros(0)
        self._m = np.zeros(n_votes + 1)
        self._v = np.zeros(n_votes + 1)
        self._mb = np.zeros(0)
        self._vb = np.zeros(0)
        self.t = 0

    def add_class(self) -> None:
        self.b = np.append(self.b, 0.0)
        self._mb = np.append(self._mb, 0.0)
        self._vb = np.append(self._vb, 0.0)

    @staticmethod
    def _features(votes: list[np.ndarray], prior: np.ndarray) -> np.ndarray:
        return np.log(np.maximum(np.vstack((*votes, prior)), _EPS))  # (n_votes + 1, C)

    def proba(self, votes: list[np.ndarray], prior: np.ndarray) -> np.ndarray:
        f = self._features(votes, prior)
        z = self.w @ f + self.b
        z -= z.max()
        p = np.exp(z)
        return p / p.sum()

    def learn(self, votes: list[np.ndarray], prior: np.ndarray, yi: int) -> np.ndarray:
        """One Adam step; returns the pre-update probabilities."""
        f = self._features(votes, prior)
        z = self.w @ f + self.b
        z -= z.max()
        p = np.exp(z)
        p /= p.sum()
        g = p.copy()
        g[yi] -= 1.0
        gw = f @ g
        self.t += 1
        b1, b2 = 0.9, 0.999
        step = self.lr * np.sqrt(1 - b2**self.t) / (1 - b1**self.t)
        self._m = b1 * self._m + (1 - b1) * gw
        self._v = b2 * self._v + (1 - b2) * gw * gw
        self.w -= step * self._m / (np.sqrt(self._v) + 1e-8)
        self._mb = b1 * self._mb + (1 - b1) * g
        self._vb = b2 * self._vb + (1 - b2) * g * g
        self.b -= step * self._mb / (np.sqrt(self._vb) + 1e-8)
        return p
