"""A naive Bayes classifier that learns for a while, then is frozen into a table.

Why: the frozen-reference drift detector (`models.reference_drift`) scores every labelled
example with a model that no longer learns. A Hoeffding tree after 1,000 examples is nearly
always a single naive-Bayes leaf (54 of 59 references on the alert benchmark's streams), and
river computes that leaf's answer through per-class Gaussian objects on every call: ~6 µs for
three features, ~23 µs for LED's 24 features and 10 classes — a quarter of a bare Hoeffding
tree's own time. Frozen, the same model is a table of per-class terms: a prediction is a few
multiply-adds per feature and class.

Numbers get a Gaussian per class (Welford's mean and variance, the variance floored at a
millionth of the feature's overall variance; a feature that never varied is left out); text
gets Laplace-smoothed value frequencies per class. A feature a class never showed with, or
missing from `x`, adds nothing.

>>> from models.frozen_nb import FrozenNaiveBayes
>>> nb = FrozenNaiveBayes()
>>> for i in range(200):
...     a = i % 10 / 10
...     nb.learn_one({"a": a, "shop": "web" if a > 0.5 else "store"}, a > 0.5)
>>> nb.freeze()
>>> nb.predict_one({"a": 0.9, "shop": "web"}), nb.predict_one({"a": 0.1, "shop": "store"})
(True, False)
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

_LOG_2PI = math.log(2 * math.pi)


class FrozenNaiveBayes:
    """Learns with `learn_one` until `freeze`; then only `predict_one` (the most probable
    class)."""

    def __init__(self) -> None:
        self.counts: dict[Any, int] = {}
        self.num: dict[str, dict[Any, list[float]]] = {}  # feature -> class -> [n, mean, m2]
        self.cat: dict[str, dict[Any, dict[str, int]]] = {}  # feature -> class -> value -> n
        self.frozen = False

    def learn_one(self, x: dict[str, Any], y: Any) -> None:
        if self.frozen:
            raise RuntimeError("a frozen model does not learn")
        self.counts[y] = self.counts.get(y, 0) + 1
        num, cat = self.num, self.cat
        for k, v in x.items():
            if isinstance(v, str):
                by_value = cat.get(k)
                if by_value is None:
                    by_value = cat[k] = {}
                per = by_value.get(y)
                if per is None:
                    per = by_value[y] = {}
                per[v] = per.get(v, 0) + 1
            elif v is not None:
                by_class = num.get(k)  # (no `setdefault`: it built a dict per call)
                if by_class is None:
                    by_class = num[k] = {}
                s = by_class.get(y)
                if s is None:
                    s = by_class[y] = [0, 0.0, 0.0]
                n = s[0] = s[0] + 1
                m = s[1]
                d = v - m
                m = s[1] = m + d / n
                s[2] += d * (v - m)

    def freeze(self) -> None:
        """Turn the statistics into per-class terms (classes in a fixed order)."""
        self.classes = list(self.counts)
        total = sum(self.counts.values())
        self.prior = [math.log(self.counts[c] / total) for c in self.classes]
        # numbers: (mean, -1/(2 var), -log(2 pi var)/2) per class, None if the class never
        # showed the feature
        self.num_terms: dict[str, list[tuple[float, float, float] | None]] = {}
        for k, per in self.num.items():
            n = sum(s[0] for s in per.values())
            mean = sum(s[0] * s[1] for s in per.values()) / n
            m2 = sum(s[2] + s[0] * (s[1] - mean) ** 2 for s in per.values())
            overall = m2 / max(n - 1, 1)
            if overall <= 1e-12:  # the same value throughout: it tells the classes nothing
                continue
            floor = overall * 1e-6
            terms: list[tuple[float, float, float] | None] = []
            for c in self.classes:
                s = per.get(c)
                if s is None:
                    terms.append(None)
                    continue
                var = max(s[2] / (s[0] - 1) if s[0] > 1 else 0.0, floor)
                terms.append((s[1], -0.5 / var, -0.5 * (_LOG_2PI + math.log(var))))
            self.num_terms[k] = terms
        # text: log P(value | class), Laplace-smoothed; an unseen value gets one count's share
        self.cat_terms: dict[str, tuple[dict[str, list[float]], list[float]]] = {}
        for k, per in self.cat.items():
            values = {v for d in per.values() for v in d}
            seen: dict[str, list[float]] = {v: [] for v in values}
            unseen: list[float] = []
            for c in self.classes:
                d = per.get(c, {})
                den = sum(d.values()) + len(values) + 1
                for v in values:
                    seen[v].append(math.log((d.get(v, 0) + 1) / den))
                unseen.append(math.log(1 / den))
            self.cat_terms[k] = (seen, unseen)
        # several classes and numbers only: the terms as matrices, a feature per row (a class
        # that never showed a feature adds 0)
        self.names = list(self.num_terms)
        shape = (len(self.names), len(self.classes))
        self.mat = tuple(np.array([[0.0 if t is None else t[j] for t in terms]
                                   for terms in self.num_terms.values()]).reshape(shape)
                         for j in range(3))
        self.prior_vec = np.array(self.prior)
        self.frozen = True

    def predict_one(self, x: dict[str, Any]) -> Any:
        if not self.frozen:
            raise RuntimeError("freeze() first")
        num, cats = self.num_terms, self.cat_terms
        if len(self.prior) == 2:  # two classes: the same sums, without the lists and loops
            s0, s1 = self.prior
            for k, v in x.items():
                terms = num.get(k)
                if terms is not None and not isinstance(v, str) and v is not None:
                    t, u = terms
                    if t is not None:
                        d = v - t[0]
                        s0 += d * d * t[1] + t[2]
                    if u is not None:
                        d = v - u[0]
                        s1 += d * d * u[1] + u[2]
                    continue
                cat = cats.get(k)
                if cat is not None and isinstance(v, str):
                    row = cat[0].get(v, cat[1])
                    s0 += row[0]
                    s1 += row[1]
            return self.classes[1] if s1 > s0 else self.classes[0]  # the first of equals
        if not cats:  # numbers only: one pass of array arithmetic over the classes
            get = x.get
            try:
                v = np.array([get(k) for k in self.names], dtype=float)
            except (TypeError, ValueError):
                v = None
            if v is not None and np.isfinite(v).all():
                mean, a, b = self.mat
                d = v[:, None] - mean
                return self.classes[int(np.argmax(self.prior_vec + (d * d * a + b).sum(axis=0)))]
        scores = list(self.prior)
        n = len(scores)
        for k, v in x.items():
            terms = num.get(k)
            if terms is not None and not isinstance(v, str) and v is not None:
                for i in range(n):
                    t = terms[i]
                    if t is not None:
                        d = v - t[0]
                        scores[i] += d * d * t[1] + t[2]
                continue
            cat = cats.get(k)
            if cat is not None and isinstance(v, str):
                row = cat[0].get(v, cat[1])
                for i in range(n):
                    scores[i] += row[i]
        return self.classes[max(range(n), key=scores.__getitem__)]
