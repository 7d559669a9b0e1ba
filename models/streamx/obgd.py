"""Overshooting-bounded gradient descent (ObGD) with eligibility traces, and its adaptive variant.

Why: with one sample per update and lr = 1, plain TD(λ) overshoots (the TD error changes sign
after the step). ObGD shrinks the step so that the *first-order* change of the prediction is
at most 1/κ of the error: M = α·κ·δ̄·‖z‖₁ with δ̄ = max(|δ|, 1), step = α / max(1, M).

The optimizer holds the hyper-parameters (and, for AdaptiveObGD, the second-moment estimate,
which is a property of the parameters and so shared); the trace ``z`` is passed in because in
the service every agent that feeds the same model keeps its own trace.
"""

from __future__ import annotations

import numpy as np


class ObGD:
    """θ ← θ + step·δ·z after z ← γλz + ∇; see module docstring for the step size."""

    def __init__(self, lr: float = 1.0, gamma: float = 0.99, lam: float = 0.8, kappa: float = 2.0):
        if lr <= 0 or kappa <= 0:
            raise ValueError(f"lr and kappa must be > 0, got lr={lr} kappa={kappa}")
        if not (0.0 <= gamma <= 1.0 and 0.0 <= lam <= 1.0):
            raise ValueError(f"gamma and lam must be in [0, 1], got gamma={gamma} lam={lam}")
        self.lr = lr
        self.gamma = gamma
        self.lam = lam
        self.kappa = kappa
        self._buf: np.ndarray | None = None

    def _scratch(self, n: int) -> np.ndarray:
        if self._buf is None or self._buf.shape[0] != n:
            self._buf = np.empty(n)
        return self._buf

    def accumulate(self, z: np.ndarray, grad: np.ndarray, decay: bool = True) -> None:
        """z ← γλz + ∇ (or z ← ∇ when ``decay`` is False, i.e. the trace was just cut)."""
        if decay:
            z *= self.gamma * self.lam
            z += grad
        else:
            z[...] = grad

    def step_size(self, z: np.ndarray, delta: float) -> float:
        buf = self._scratch(z.shape[0])
        z_l1 = float(np.add.reduce(np.abs(z, out=buf)))
        m = self.lr * self.kappa * max(abs(delta), 1.0) * z_l1
        return self.lr / m if m > 1.0 else self.lr

    def apply(self, theta: np.ndarray, z: np.ndarray, delta: float) -> float:
        """Move θ along the trace; returns the step size actually used."""
        step = self.step_size(z, delta)
        buf = self._scratch(z.shape[0])
        np.multiply(z, step * delta, out=buf)
        theta += buf
        return step

    def update(self, theta: np.ndarray, z: np.ndarray, grad: np.ndarray, delta: float) -> float:
        """accumulate + apply in one call (the common case)."""
        self.accumulate(z, grad)
        return self.apply(theta, z, delta)


class AdaptiveObGD(ObGD):
    """ObGD on a trace rescaled per parameter by √(v̂ + ε), v ← β₂v + (1-β₂)(δz)² (Adam-like).

    Helps when parameters receive gradients of very different scales; the bound on the step
    is computed on the rescaled trace so the overshooting guarantee keeps its meaning.
    """

    def __init__(
        self,
        lr: float = 1.0,
        gamma: float = 0.99,
        lam: float = 0.8,
        kappa: float = 2.0,
        beta2: float = 0.999,
        eps: float = 1e-8,
    ):
        super().__init__(lr=lr, gamma=gamma, lam=lam, kappa=kappa)
        if not 0.0 <= beta2 < 1.0:
            raise ValueError(f"beta2 must be in [0, 1), got {beta2}")
        self.beta2 = beta2
        self.eps = eps
        self.v: np.ndarray | None = None
        self.count = 0

    def apply(self, theta: np.ndarray, z: np.ndarray, delta: float) -> float:
        n = z.shape[0]
        if self.v is None or self.v.shape[0] != n:
            self.v = np.zeros(n)
            self.count = 0
        self.count += 1
        buf = self._scratch(n)
        np.multiply(z, delta, out=buf)
        buf *= buf
        self.v *= self.beta2
        self.v += (1.0 - self.beta2) * buf
        denom = self.v / (1.0 - self.beta2**self.count)
        denom += self.eps
        np.sqrt(denom, out=denom)
        np.divide(z, denom, out=buf)  # rescaled trace
        z_l1 = float(np.add.reduce(np.abs(buf)))
        m = self.lr * self.kappa * max(abs(delta), 1.0) * z_l1
        step = self.lr / m if m > 1.0 else self.lr
        buf *= step * delta
        theta += buf
        return step


def make_optimizer(
    name: str, lr: float, gamma: float, lam: float, kappa: float
) -> ObGD:
    """Factory used by the learners' ``optimizer`` parameter ("obgd" or "adaptive")."""
    if name == "obgd":
        return ObGD(lr=lr, gamma=gamma, lam=lam, kappa=kappa)
    if name == "adaptive":
        return AdaptiveObGD(lr=lr, gamma=gamma, lam=lam, kappa=kappa)
    raise ValueError(f"optimizer must be 'obgd' or 'adaptive', got {name!r}")


__all__ = ["ObGD", "AdaptiveObGD", "make_optimizer"]
