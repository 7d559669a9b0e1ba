"""Simple node-classification baselines over an edge stream, kept apart from the learner's
state (their own ring of recent neighbours), so that they are a fair yardstick.

* neighbour vote: the most frequent known label among the node's last K neighbours;
* two-hop vote: the same, where an unlabelled neighbour counts with the label shares of its
  own last K neighbours;
* majority: the most frequent label revealed so far.

Each falls back to the next simpler one (two-hop → majority, vote → majority) when it has
no evidence.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Hashable


class SimpleBaselines:
    """All three baselines on one shared neighbour store (the store is not a model)."""

    NAMES = ("neighbour vote", "two-hop vote", "majority")

    def __init__(self, neighbours: int = 20) -> None:
        self.k = neighbours
        self.nbrs: dict[Hashable, deque] = {}
        self.labels: dict[Hashable, Hashable] = {}
        self.counts: Counter = Counter()

    def edge(self, src: Hashable, dst: Hashable) -> None:
        for a, b in ((src, dst), (dst, src)):
            q = self.nbrs.get(a)
            if q is None:
                q = self.nbrs[a] = deque(maxlen=self.k)
            q.append(b)

    def label(self, node: Hashable, y: Hashable) -> None:
        self.labels[node] = y
        self.counts[y] += 1

    def majority(self) -> Hashable | None:
        return self.counts.most_common(1)[0][0] if self.counts else None

    def vote(self, node: Hashable) -> Hashable | None:
        lab = self.labels
        c = Counter(lab[n] for n in self.nbrs.get(node, ()) if n in lab)
        return c.most_common(1)[0][0] if c else self.majority()

    def two_hop(self, node: Hashable) -> Hashable | None:
        lab = self.labels
        score: Counter = Counter()
        for n in self.nbrs.get(node, ()):
            if n in lab:
                score[lab[n]] += 1.0
                continue
            inner = Counter(lab[m] for m in self.nbrs.get(n, ()) if m in lab)
            tot = sum(inner.values())
            for y, c in inner.items():
                score[y] += c / tot
        return max(score, key=score.__getitem__) if score else self.majority()

    def predict(self, node: Hashable) -> dict[str, Hashable | None]:
        return {
            "neighbour vote": self.vote(node),
            "two-hop vote": self.two_hop(node),
            "majority": self.majority(),
        }
