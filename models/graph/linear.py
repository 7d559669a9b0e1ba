"""Several online softmax regressions ("heads") sharing one standardised input vector.

Small on purpose (SPLASH: simple beats complex). Each head is a multinomial logistic regression
that sees only some inputs (a boolean mask, e.g. one feature family plus the shared context),
so all candidate families are scored and trained with one matrix product and one Adam step
instead of one Python-level model each. Inputs are standardised with running moments so the
very different feature scales (one-hot degrees, log weights, unit-norm projections) need no
tuning; rows (inputs) and columns (classes) can be inserted mid-stream.
"""

from __future__ import annotations

import numpy as np


class MultiHeadSoftmax:
    """Masked multi-head softmax regression trained one example at a time with Adam.

    ``forget`` turns the input moments into exponential moving averages after ``1/forget``
    examples, so standardisation follows a drifting input distribution.
    """

    def __init__(
        self,
        mask: np.ndarray,
        n_classes: int = 0,
        lr: float = 0.003,
        l2: float = 1e-5,
        forget: float = 1e-3,
        clip: float = 5.0,
    ) -> None:
        mask = np.asarray(mask, dtype=bool)
        if mask.ndim != 2:
            raise ValueError("mask must be (n_features, n_heads)")
        d, h = mask.shape
        self.lr = lr
        self.l2 = l2
        self.forget = forget
        self.clip = clip
        self.n = 0
        self.t = 0
        self.mask = mask.astype(np.float64)
        self.mean = np.zeros(d)
        self.var = np.ones(d)
        self.inv_sd = np.ones(d)
        self.W = np.zeros((d, h, n_classes))
        self.b = np.zeros((h, n_classes))
        self.mW = np.zeros_like(self.W)
        self.vW = np.zeros_like(self.W)
        self.mb = np.zeros_like(self.b)
        self.vb = np.zeros_like(self.b)

    @property
    def n_features(self) -> int:
        return self.W.shape[0]

    @property
    def n_heads(self) -> int:
        return self.W.shape[1]

    @property
    def n_classes(self) -> int:
        return self.W.shape[2]

    def add_class(self) -> None:
        """Append an output to every head; its bias starts at the head's lowest bias so that
        an unseen class is not over-predicted."""
        pad = ((0, 0), (0, 0), (0, 1))
        self.W = np.pad(self.W, pad)
        self.mW = np.pad(self.mW, pad)
        self.vW = np.pad(self.vW, pad)
        low = (
            self.b.min(axis=1, keepdims=True) if self.n_classes > 1 else np.zeros((self.n_heads, 1))
        )
        self.b = np.hstack((self.b, low))
        self.mb = np.pad(self.mb, ((0, 0), (0, 1)))
        self.vb = np.pad(self.vb, ((0, 0), (0, 1)))

    def insert_features(self, at: int, n: int, heads: np.ndarray | None = None) -> None:
        """Insert ``n`` zero-weight inputs before index ``at`` (seen by ``heads``, default all)."""
        self.mean = np.insert(self.mean, at, np.zeros(n))
        self.var = np.insert(self.var, at, np.ones(n))
        self.inv_sd = np.insert(self.inv_sd, at, np.ones(n))
        rows = np.zeros((n, self.n_heads, self.n_classes))
        self.W = np.insert(self.W, at, rows, axis=0)
        self.mW = np.insert(self.mW, at, rows, axis=0)
        self.vW = np.insert(self.vW, at, rows, axis=0)
        m = (
            np.ones((n, self.n_heads))
            if heads is None
            else np.tile(np.asarray(heads, float), (n, 1))
        )
        self.mask = np.insert(self.mask, at, m, axis=0)

    def _z(self, x: np.ndarray) -> np.ndarray:
        z = x - self.mean
        z *= self.inv_sd
        np.minimum(z, self.clip, out=z)
        np.maximum(z, -self.clip, out=z)
        return z

    def _softmax(self, z: np.ndarray) -> np.ndarray:
        d, h, c = self.W.shape
        logits = (z @ self.W.reshape(d, h * c)).reshape(h, c)
        logits += self.b
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        p /= np.add.reduce(p, axis=1, keepdims=True)
        return p

    def proba(self, x: np.ndarray) -> np.ndarray:
        """(n_heads, n_classes) probabilities."""
        if self.n_classes == 0:
            return np.zeros((self.n_heads, 0))
        return self._softmax(self._z(x))

    def learn(self, x: np.ndarray, yi: int) -> np.ndarray:
        """One Adam step per head on the log-loss; returns the pre-update probabilities."""
        self.n += 1
        a = max(1.0 / self.n, self.forget)
        d = x - self.mean
        self.mean += a * d
        if self.n == 1:
            self.var[:] = 1.0
        else:
            self.var = (1 - a) * (self.var + a * d * d)
        self.inv_sd = 1.0 / np.sqrt(self.var + 1e-8)
        z = self._z(x)
        p = self._softmax(z)
        g = p.copy()
        g[:, yi] -= 1.0
        dim, h, c = self.W.shape
        gW = (z[:, None] * g.ravel()[None, :]).reshape(dim, h, c)
        gW *= self.mask[:, :, None]
        if self.l2:
            gW += self.l2 * self.W
        self.t += 1
        b1, b2 = 0.9, 0.999
        step = self.lr * np.sqrt(1 - b2**self.t) / (1 - b1**self.t)
        self.mW *= b1
        self.mW += (1 - b1) * gW
        self.vW *= b2
        self.vW += (1 - b2) * (gW * gW)
        self.W -= step * self.mW / (np.sqrt(self.vW) + 1e-8)
        self.mb = b1 * self.mb + (1 - b1) * g
        self.vb = b2 * self.vb + (1 - b2) * g * g
        self.b -= step * self.mb / (np.sqrt(self.vb) + 1e-8)
        return p
