"""A small numpy MLP with Adam, written for an online router.

Why not torch: the router is tiny (d→256→128→E), it runs one forward per example and one
mini-batch update every few hundred examples, and the learners in ``models/`` must stay pure
numpy + river. Two things a generic MLP lacks are needed here: the input layer grows when new
features appear in the stream, and the output layer grows when a new class (task experts)
appears. Both keep all existing weights and Adam moments untouched.

Weights are stored input-major (``W[l]`` has shape ``(fan_in, fan_out)``) so a batch
forward is ``X @ W + b``. The first layer is allocated with spare *capacity* rows: rows past
``n_in`` are zero and never receive gradient, so growing the input is usually free.
"""

from __future__ import annotations

import numpy as np

__all__ = ["MLP", "Adam", "bce_with_logits"]


def bce_with_logits(z: np.ndarray, m: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean binary cross-entropy on logits and its gradient w.r.t. ``z``.

    Same reduction as torch's ``BCEWithLogitsLoss()`` (mean over every element); computed in
    the log-sum-exp-stable form ``max(z, 0) - z*m + log1p(exp(-|z|))``.
    """
    loss = np.maximum(z, 0.0) - z * m + np.log1p(np.exp(-np.abs(z)))
    # sigmoid without overflow: exp of a non-positive number only
    e = np.exp(-np.abs(z))
    sig = np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
    return float(loss.mean()), (sig - m) / z.size


class Adam:
    """Adam (Kingma & Ba) with bias correction; state arrays mirror the parameter arrays.

    ``step`` takes parameter *views* and gradient arrays of the same shape, so the caller can
    update only the active part of a capacity-allocated array.
    """

    def __init__(
        self, lr: float = 2e-3, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8
    ) -> None:
        self.lr = lr
        self.beta1 = beta1
        self.beta2 = beta2
        self.eps = eps
        self.t = 0

    def step(
        self,
        params: list[np.ndarray],
        grads: list[np.ndarray],
        ms: list[np.ndarray],
        vs: list[np.ndarray],
    ) -> None:
        """In-place update of every ``params[i]`` (and its moments ``ms[i]``, ``vs[i]``)."""
        self.t += 1
        b1, b2 = self.beta1, self.beta2
        # fold both bias corrections into the step size (standard Adam formulation)
        step = self.lr * np.sqrt(1.0 - b2**self.t) / (1.0 - b1**self.t)
        eps_hat = self.eps * np.sqrt(1.0 - b2**self.t)
        for p, g, m, v in zip(params, grads, ms, vs, strict=True):
            m *= b1
            m += (1.0 - b1) * g
            v *= b2
            v += (1.0 - b2) * (g * g)
            p -= step * m / (np.sqrt(v) + eps_hat)


class MLP:
    """ReLU MLP with a linear head, growable input and output layers.

    Parameters
    ----------
    n_in
        Number of inputs at creation (may be 0: rows are added by ``add_inputs``).
    hidden
        Hidden layer widths.
    n_out
        Number of outputs (logits).
    seed
        Seed of the generator used for the initial weights and for any row/column added later.
    in_scale
        Bound of the uniform init of first-layer weights. ``None`` → ``1/sqrt(n_in)`` fixed at
        the first time inputs exist (torch's ``nn.Linear`` default bound), then kept for rows
        added later so late features start on the same scale.
    """

    def __init__(
        self,
        n_in: int,
        hidden: tuple[int, ...] = (256, 128),
        n_out: int = 1,
        seed: int | None = None,
        in_scale: float | None = None,
    ) -> None:
        self.hidden = tuple(int(h) for h in hidden)
        self.rng = np.random.default_rng(seed)
        self.in_scale = in_scale
        sizes = [n_in, *self.hidden, n_out]
        self.W: list[np.ndarray] = []
        self.b: list[np.ndarray] = []
        for li, (fi, fo) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
            if li == 0:
                self.W.append(np.zeros((max(fi, 8), fo)))
                self.b.append(np.zeros(fo))
            else:
                bound = 1.0 / np.sqrt(fi)
                self.W.append(self.rng.uniform(-bound, bound, size=(fi, fo)))
                self.b.append(np.zeros(fo))
        self.n_in = 0
        self.n_out = n_out
        self.mW = [np.zeros_like(w) for w in self.W]
        self.vW = [np.zeros_like(w) for w in self.W]
        self.mb = [np.zeros_like(b) for b in self.b]
        self.vb = [np.zeros_like(b) for b in self.b]
        if n_in:
            self.add_inputs(n_in)

    # ------------------------------------------------------------------ growth
    @property
    def capacity(self) -> int:
        return self.W[0].shape[0]

    def add_inputs(self, k: int) -> None:
        """Activate ``k`` more input columns; their weights are drawn now, in column order."""
        if k <= 0:
            return
        new_n = self.n_in + k
        if new_n > self.capacity:
            cap = max(new_n, 2 * self.capacity)
            extra = cap - self.capacity
            for arrs in (self.W, self.mW, self.vW):
                arrs[0] = np.vstack([arrs[0], np.zeros((extra, arrs[0].shape[1]))])
        if self.in_scale is None:
            self.in_scale = 1.0 / np.sqrt(new_n)
        fo = self.W[0].shape[1]
        self.W[0][self.n_in : new_n] = self.rng.uniform(-self.in_scale, self.in_scale, (k, fo))
        self.n_in = new_n

    def add_outputs(self, k: int) -> None:
        """Append ``k`` output units (new logits start near zero, moments at zero)."""
        if k <= 0:
            return
        fi = self.W[-1].shape[0]
        bound = 1.0 / np.sqrt(fi)
        self.W[-1] = np.hstack([self.W[-1], self.rng.uniform(-bound, bound, (fi, k))])
        self.b[-1] = np.concatenate([self.b[-1], np.zeros(k)])
        for arrs in (self.mW, self.vW):
            arrs[-1] = np.hstack([arrs[-1], np.zeros((fi, k))])
        for arrs in (self.mb, self.vb):
            arrs[-1] = np.concatenate([arrs[-1], np.zeros(k)])
        self.n_out += k

    # ----------------------------------------------------------------- compute
    def forward_one(self, x: np.ndarray) -> np.ndarray:
        """Logits for one input vector of length ``n_in`` (the per-example hot path)."""
        W, b = self.W, self.b
        h = x @ W[0][: self.n_in]
        h += b[0]
        np.maximum(h, 0.0, out=h)
        for li in range(1, len(W) - 1):
            h = h @ W[li]
            h += b[li]
            np.maximum(h, 0.0, out=h)
        z = h @ W[-1]
        z += b[-1]
        return z

    def forward(self, X: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        """Batch logits and the activations needed by ``backward`` (``X``: ``(B, n_in)``)."""
        acts = [X]
        h = X @ self.W[0][: self.n_in] + self.b[0]
        np.maximum(h, 0.0, out=h)
        acts.append(h)
        for li in range(1, len(self.W) - 1):
            h = h @ self.W[li] + self.b[li]
            np.maximum(h, 0.0, out=h)
            acts.append(h)
        z = h @ self.W[-1] + self.b[-1]
        return z, acts

    def backward(
        self, acts: list[np.ndarray], dz: np.ndarray
    ) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Gradients of the loss w.r.t. every (active) weight and bias, given ``dL/dz``."""
        n_layers = len(self.W)
        gW: list[np.ndarray] = [np.empty(0)] * n_layers
        gb: list[np.ndarray] = [np.empty(0)] * n_layers
        g = dz
        for li in range(n_layers - 1, -1, -1):
            a = acts[li]
            gW[li] = a.T @ g
            gb[li] = g.sum(axis=0)
            if li > 0:
                W = self.W[li]
                g = g @ W.T
                g *= a > 0.0  # ReLU derivative from the post-activation
        return gW, gb

    def loss_and_grads(
        self, X: np.ndarray, M: np.ndarray
    ) -> tuple[float, list[np.ndarray], list[np.ndarray]]:
        """BCE-with-logits loss of the batch and its gradients (used by tests and ``fit_batch``)."""
        z, acts = self.forward(X)
        loss, dz = bce_with_logits(z, M)
        gW, gb = self.backward(acts, dz)
        return loss, gW, gb

    def fit_batch(self, X: np.ndarray, M: np.ndarray, opt: Adam) -> float:
        """One Adam step on a batch of inputs ``X`` and multi-hot targets ``M``; returns loss."""
        loss, gW, gb = self.loss_and_grads(X, M)
        n = self.n_in
        params = [self.W[0][:n], *self.W[1:], *self.b]
        grads = [*gW, *gb]
        ms = [self.mW[0][:n], *self.mW[1:], *self.mb]
        vs = [self.vW[0][:n], *self.vW[1:], *self.vb]
        opt.step(params, grads, ms, vs)
        return loss
