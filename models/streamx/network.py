"""The stream-x network: Linear → LayerNorm (no parameters) → LeakyReLU, repeated, linear head.

Why numpy and not a framework: one sample per step means tiny mat-vecs, where per-call
overhead dominates. All parameters live in ONE flat float64 vector (``theta``) and the layers
are views into it, so the optimizer can decay/add/L1-norm the whole eligibility trace with a
handful of vectorised calls. Gradients are written into a flat buffer (``grad``) of the same
layout. ``forward`` returns a small cache of activations instead of storing it on the network,
so several agents can hold caches for their own last observation at the same time.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

LN_EPS = 1e-5  # LayerNorm epsilon, as in torch.nn.functional.layer_norm
NEGATIVE_SLOPE = 0.01  # LeakyReLU slope, torch's default


def sparse_init(
    weight: np.ndarray, sparsity: float, rng: np.random.Generator
) -> None:
    """Fill ``weight`` (out, in) in place: U(±1/√fan_in), then zero ⌈sparsity·fan_in⌉ inputs per unit.

    Sparse initial weights make units respond to different input subsets, which the stream-x
    paper found reduces interference when learning from one correlated sample at a time.
    """
    fan_out, fan_in = weight.shape
    bound = 1.0 / math.sqrt(fan_in)
    weight[...] = rng.uniform(-bound, bound, size=weight.shape)
    n_zero = int(math.ceil(sparsity * fan_in))
    if n_zero <= 0:
        return
    # one independent random subset per unit (row), drawn without Python loops over units
    order = np.argsort(rng.random((fan_out, fan_in)), axis=1)
    np.put_along_axis(weight, order[:, :n_zero], 0.0, axis=1)


class MLP:
    """Fully connected stream-x network with a flat parameter vector.

    ``layers`` holds (W, b) views into ``theta`` with W shaped (out, in) so each row is one
    unit's fan-in (what sparse init talks about). ``grad_layers`` mirrors it into ``grad``.

    ``skip`` adds a linear path from the inputs straight to the outputs (``W_skip``, zero at
    start, the last block of ``theta``). Why: LayerNorm makes the hidden features blind to
    the inputs' scale along a direction, and a value that is linear in the inputs (a ramp
    over one numeric feature; on one-hot inputs, one value per state) is what a TD learner
    most often has to find. With the path, that part is learned like linear TD (tabular on
    one-hot states), and the hidden layers only carry what is left.
    """

    def __init__(
        self,
        n_in: int,
        n_out: int,
        hidden: Sequence[int] = (32, 32),
        sparsity: float = 0.9,
        rng: np.random.Generator | None = None,
        skip: bool = False,
    ) -> None:
        if n_in < 1 or n_out < 1 or any(h < 1 for h in hidden):
            raise ValueError(f"layer sizes must be >= 1, got in={n_in} hidden={hidden} out={n_out}")
        rng = np.random.default_rng() if rng is None else rng
        self.n_in = int(n_in)
        self.n_out = int(n_out)
        self.hidden = tuple(int(h) for h in hidden)
        self.skip = bool(skip)
        shapes = self._shapes()
        self.size = sum(o * i + o for o, i in shapes) + (self.n_out * self.n_in if skip else 0)
        self.theta = np.zeros(self.size)
        self.grad = np.zeros(self.size)
        self._relink()
        for W, _ in self.layers:  # biases (and the skip path) stay zero
            sparse_init(W, sparsity, rng)

    def _shapes(self) -> list[tuple[int, int]]:
        sizes = (self.n_in, *self.hidden, self.n_out)
        return [(sizes[i + 1], sizes[i]) for i in range(len(sizes) - 1)]

    def _relink(self) -> None:
        """(Re)build the views into ``theta`` / ``grad`` (after construction or unpickling)."""
        shapes = self._shapes()
        self.layers = self._views(self.theta, shapes)
        self.grad_layers = self._views(self.grad, shapes)
        n_skip = self.n_out * self.n_in if self.skip else 0
        self.skip_w = self.theta[self.size - n_skip:].reshape(-1, self.n_in) if n_skip else None
        self.skip_g = self.grad[self.size - n_skip:].reshape(-1, self.n_in) if n_skip else None
        self._link()

    def _link(self) -> None:
        # hidden layers with a ones-vector of their width (dot with it is the fastest sum)
        self._fwd = [(W, b, np.ones(b.shape[0])) for W, b in self.layers[:-1]]

    @staticmethod
    def _views(flat: np.ndarray, shapes: list[tuple[int, int]]) -> list[tuple[np.ndarray, np.ndarray]]:
        views, k = [], 0
        for o, i in shapes:
            W = flat[k : k + o * i].reshape(o, i)
            k += o * i
            b = flat[k : k + o]
            k += o
            views.append((W, b))
        return views

    # pickling: views would be pickled as independent copies, so rebuild them from the flat vectors
    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        for view in ("layers", "grad_layers", "_fwd", "skip_w", "skip_g"):
            state.pop(view, None)
        return state

    def __setstate__(self, state: dict) -> None:
        state.setdefault("skip", False)  # pickled before the skip path existed
        self.__dict__.update(state)
        self._relink()

    def forward(self, x: np.ndarray) -> tuple[np.ndarray, tuple]:
        """Return (outputs, cache); the cache holds what ``backward`` needs for this input.

        Written for call overhead, not elegance: ~8 numpy calls per hidden layer.
        """
        dot = np.dot
        h = x
        cache = []
        for W, b, ones in self._fwd:
            pre = dot(W, h)
            pre += b
            n = pre.shape[0]
            m = dot(ones, pre) / n
            var = dot(pre, pre) / n - m * m  # E[x²] - m²: one pass; values are O(1) here
            inv = 1.0 / math.sqrt((var if var > 0.0 else 0.0) + LN_EPS)
            pre -= m
            pre *= inv  # pre is now the normalised y
            cache.append((h, pre, inv))
            h = np.maximum(pre, NEGATIVE_SLOPE * pre)
        W, b = self.layers[-1]
        out = dot(W, h)
        out += b
        if self.skip_w is not None:
            out += dot(self.skip_w, x)
        cache.append(h)
        return out, tuple(cache)

    def _backward_hidden(self, cache: tuple, g: np.ndarray) -> None:
        """Back-propagate ``g`` (gradient w.r.t. the last hidden activation) through the stack."""
        dot = np.dot
        for k in range(len(self.layers) - 2, -1, -1):
            h_in, y, inv = cache[k]
            gy = g * np.where(y > 0.0, 1.0, NEGATIVE_SLOPE)
            n = y.shape[0]
            a = dot(self._fwd[k][2], gy) / n
            c = dot(gy, y) / n
            gy -= a
            gy -= c * y
            gy *= inv  # now d/d(pre-activation)
            gW, gb = self.grad_layers[k]
            dot(gy[:, None], h_in[None, :], out=gW)
            gb[...] = gy
            if k:
                g = dot(gy, self.layers[k][0])

    def _input(self, cache: tuple) -> np.ndarray:
        """The input ``x`` of the forward pass that made ``cache`` (for the skip path)."""
        return cache[0][0] if self._fwd else cache[-1]

    def backward(self, cache: tuple, dout: np.ndarray) -> np.ndarray:
        """Write d(dout·output)/dθ into ``self.grad`` (overwriting it) and return that buffer."""
        h = cache[-1]
        gW, gb = self.grad_layers[-1]
        np.dot(dout[:, None], h[None, :], out=gW)
        gb[...] = dout
        if self.skip_g is not None:
            np.dot(dout[:, None], self._input(cache)[None, :], out=self.skip_g)
        self._backward_hidden(cache, np.dot(dout, self.layers[-1][0]))
        return self.grad

    def backward_row(self, cache: tuple, index: int) -> np.ndarray:
        """Gradient of output ``index`` alone (Q(λ) needs ∇q(s, a) for one action)."""
        gW, gb = self.grad_layers[-1]
        gW.fill(0.0)
        gW[index] = cache[-1]
        gb.fill(0.0)
        gb[index] = 1.0
        if self.skip_g is not None:
            self.skip_g.fill(0.0)
            self.skip_g[index] = self._input(cache)
        self._backward_hidden(cache, self.layers[-1][0][index])
        return self.grad
