"""Online multinomial logistic regression with online standardisation and Adam.

Small on purpose (SPLASH: simple beats complex): one weight matrix, inputs standardised with
running moments so that the very different feature scales (one-hot degrees, log weights,
unit-norm projections) need no tuning, and columns/rows that can be inserted when a new
class or a new input block appears mid-stream.
"""

from __future__ import annotations

import numpy as np


class OnlineSoftmax:
    """Softmax regression trained one example at a time.

    ``forget`` turns the input moments into exponential moving averages after ``1/forget``
    examples, so standardisation follows a drifting input distribution.
    """

    def __init__(
        self,
        n_features: int,
        n_classes: int = 0,
        lr: float = 0.01,
        l2: float = 1e-5,
        forget: float = 1e-3,
        clip: float = 5.0,
    ) -> None:
        self.lr = lr
        self.l2 = l2
        self.forget = forget
        self.clip = clip
        self.n = 0
        self.t = 0
        self.mean = np.zeros(n_features)
        self.var = np.ones(n_features)
        self.W = np.zeros((n_features, n_classes))
        self.b = np.zeros(n_classes)
        self.mW = np.zeros_like(self.W)
        self.vW = np.zeros_like(self.W)
        self.mb = np.zeros(n_classes)
        self.vb = np.zeros(n_classes)

    @property
    def n_features(self) -> int:
        return self.W.shape[0]

    @property
    def n_classes(self) -> int:
        return self.W.shape[1]

    def add_class(self) -> None:
        """Append an output; its bias starts low so an unseen class is not over-predicted."""
        z = np.zeros((self.n_features, 1))
        self.W = np.hstack((self.W, z))
        self.mW = np.hstack((self.mW, z))
        self.vW = np.hstack((self.vW, z))
        low = float(self.b.min()) if self.n_classes > 1 else 0.0
        self.b = np.append(self.b, low)
        self.mb = np.append(self.mb, 0.0)
        self.vb = np.append(self.vb, 0.0)

    def insert_features(self, at: int, n: int) -> None:
        """Insert ``n`` zero-weight inputs before index ``at``."""
        self.mean = np.insert(self.mean, at, np.zeros(n))
        self.var = np.insert(self.var, at, np.ones(n))
        rows = np.zeros((n, self.n_classes))
        self.W = np.insert(self.W, at, rows, axis=0)
        self.mW = np.insert(self.mW, at, rows, axis=0)
        self.vW = np.insert(self.vW, at, rows, axis=0)

    def _z(self, x: np.ndarray) -> np.ndarray:
        z = (x - self.mean) / np.sqrt(self.var + 1e-8)
        return np.clip(z, -self.clip, self.clip)

    def proba(self, x: np.ndarray) -> np.ndarray:
        if self.n_classes == 0:
            return np.zeros(0)
        logits = self._z(x) @ self.W + self.b
        logits -= logits.max()
        e = np.exp(logits)
        return e / e.sum()

    def learn(self, x: np.ndarray, yi: int) -> np.ndarray:
        """One Adam step on the log-loss; returns the pre-update probabilities."""
        self.n += 1
        a = max(1.0 / self.n, self.forget)
        d = x - self.mean
        self.mean += a * d
        self.var = (1 - a) * (self.var + a * d * d)
        if self.n == 1:
            self.var[:] = 1.0
        z = self._z(x)
        logits = z @ self.W + self.b
        logits -= logits.max()
        p = np.exp(logits)
        p /= p.sum()
        g = p.copy()
        g[yi] -= 1.0
        gW = np.outer(z, g)
        if self.l2:
            gW += self.l2 * self.W
        self.t += 1
        b1, b2 = 0.9, 0.999
        step = self.lr * np.sqrt(1 - b2**self.t) / (1 - b1**self.t)
        self.mW *= b1
        self.mW += (1 - b1) * gW
        self.vW *= b2
        self.vW += (1 - b2) * gW * gW
        self.W -= step * self.mW / (np.sqrt(self.vW) + 1e-8)
        self.mb = b1 * self.mb + (1 - b1) * g
        self.vb = b2 * self.vb + (1 - b2) * g * g
        self.b -= step * self.mb / (np.sqrt(self.vb) + 1e-8)
        return p
