"""Online feature encoding for numpy learners fed river-style ``dict`` examples.

A neural router needs a fixed-position, roughly unit-scale vector, while stream examples are
dicts whose keys may appear late, disappear, or carry strings. ``FeatureEncoder`` keeps a
growing vocabulary (numeric feature name → column, ``(name, value)`` of a categorical feature
→ one-hot column), standardises numeric columns with running (Welford) mean/variance, and
leaves absent features at 0 (= the running mean after scaling).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["FeatureEncoder"]

_NUMERIC = (int, float)


class FeatureEncoder:
    """Growing vocabulary + online standardisation.

    Parameters
    ----------
    max_features
        Cap on the number of columns (protects memory against high-cardinality strings).
        Keys met after the cap is reached are ignored and counted in ``n_ignored``.
    clip
        Standardised numeric values are clipped to ``[-clip, clip]``: early running
        statistics are noisy and the router should not see huge inputs.
    """

    def __init__(self, max_features: int = 4096, clip: float = 5.0) -> None:
        self.max_features = max_features
        self.clip = clip
        self.num_index: dict[Any, int] = {}
        self.cat_index: dict[tuple[Any, Any], int] = {}
        self.n = 0
        self.n_ignored = 0
        self.count = np.zeros(8)
        self.mean = np.zeros(8)
        self.m2 = np.zeros(8)

    # ----------------------------------------------------------------- lookup
    def encode(self, x: dict, grow: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
        """Map ``x`` to ``(columns, raw values, is_numeric, n_new)``.

        With ``grow=True`` unknown keys get columns and ``n_new`` counts them; with
        ``grow=False`` (prediction) they are skipped, nothing is mutated, and ``n_new`` counts
        the skipped keys.
        New keys of one example are sorted before getting columns, so the column layout does
        not depend on the dict's key order.
        """
        num_index, cat_index = self.num_index, self.cat_index
        cols: list[int] = []
        vals: list[float] = []
        isnum: list[bool] = []
        new: list[tuple[int, str, Any, float]] = []
        n_unknown = 0
        for k, v in x.items():
            t = type(v)
            if t is float or t is int or t is bool:
                numeric, fv = True, float(v)
            elif t is str:
                numeric, fv = False, 1.0
            elif v is None:
                continue
            else:
                try:
                    numeric, fv = True, float(v)  # numpy scalars, Decimal, ...
                except (TypeError, ValueError):
                    numeric, fv, v = False, 1.0, str(v)
            if numeric:
                if fv != fv or math.isinf(fv):  # NaN/inf → treat as missing
                    continue
                c = num_index.get(k)
            else:
                c = cat_index.get((k, v))
            if c is None:
                if grow:
                    new.append((0 if numeric else 1, repr(k), (k if numeric else (k, v)), fv))
                else:
                    n_unknown += 1
                continue
            cols.append(c)
            vals.append(fv)
            isnum.append(numeric)
        n_new = n_unknown
        if new:
            new.sort(key=lambda e: (e[0], e[1], repr(e[2])))
            for kind, _, key, fv in new:
                if self.n >= self.max_features:
                    self.n_ignored += 1
                    continue
                c = self._add_column()
                if kind == 0:
                    num_index[key] = c
                else:
                    cat_index[key] = c
                cols.append(c)
                vals.append(fv)
                isnum.append(kind == 0)
                n_new += 1
        return (
            np.array(cols, dtype=np.intp),
            np.array(vals, dtype=np.float64),
            np.array(isnum, dtype=bool),
            n_new,
        )

    def _add_column(self) -> int:
        c = self.n
        if c >= self.count.shape[0]:
            extra = self.count.shape[0]
            self.count = np.concatenate([self.count, np.zeros(extra)])
            self.mean = np.concatenate([self.mean, np.zeros(extra)])
            self.m2 = np.concatenate([self.m2, np.zeros(extra)])
        self.n += 1
        return c

    # -------------------------------------------------------------- transform
    def scaled(self, cols: np.ndarray, vals: np.ndarray, isnum: np.ndarray) -> np.ndarray:
        """Dense vector of length ``n``: standardised numerics, raw one-hots, zeros elsewhere."""
        out = np.zeros(self.n)
        if cols.size:
            cnt = self.count[cols]
            var = np.where(cnt > 1.0, self.m2[cols] / np.maximum(cnt - 1.0, 1.0), 1.0)
            std = np.sqrt(var)
            std[std < 1e-12] = 1.0
            z = (vals - self.mean[cols]) / std
            np.clip(z, -self.clip, self.clip, out=z)
            out[cols] = np.where(isnum, z, vals)
        return out

    def learn(self, cols: np.ndarray, vals: np.ndarray, isnum: np.ndarray) -> None:
        """Welford update of the numeric columns present in one example."""
        if not cols.size:
            return
        c = cols[isnum]
        if not c.size:
            return
        v = vals[isnum]
        cnt = self.count[c] + 1.0
        self.count[c] = cnt
        delta = v - self.mean[c]
        mean = self.mean[c] + delta / cnt
        self.mean[c] = mean
        self.m2[c] += delta * (v - mean)

    def transform_one(self, x: dict) -> np.ndarray:
        """Scaled vector of ``x`` with the current vocabulary (no state change)."""
        return self.scaled(*self.encode(x, grow=False)[:3])

    def summary(self) -> dict:
        return {
            "n_columns": int(self.n),
            "n_numeric": len(self.num_index),
            "n_categorical": len(self.cat_index),
            "n_ignored": int(self.n_ignored),
        }
