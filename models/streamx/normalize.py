"""Running statistics that make one-sample-at-a-time learning scale-free.

Why: with lr = 1 and no batches, the network must see inputs of unit scale and TD errors of
roughly unit scale whatever the environment's units. Observations are standardised by their
running mean/variance (Welford), rewards are divided by the running std of the discounted
return (not of the reward: the return is what the value network has to output).
The statistics are shared by all agents feeding one model; the return trace that feeds the
reward statistics is per agent (each agent has its own episode).
"""

from __future__ import annotations

import math

import numpy as np


class RunningMeanStd:
    """Welford's running mean and (sample) variance of a vector; var is 1 until two samples."""

    def __init__(self, shape: int | tuple[int, ...]):
        self.mean = np.zeros(shape)
        self.m2 = np.zeros(shape)
        self.count = 0

    def update(self, x: np.ndarray) -> None:
        self.count += 1
        d = x - self.mean
        self.mean += d / self.count
        d *= x - self.mean
        self.m2 += d

    @property
    def var(self) -> np.ndarray:
        if self.count < 2:
            return np.ones_like(self.mean)
        return self.m2 / (self.count - 1)


class ObservationNormalizer:
    """x ↦ (x - mean) / √(var + ε), statistics updated with x first (as the stream-x wrappers do)."""

    def __init__(self, dim: int, eps: float = 1e-8):
        self.stats = RunningMeanStd(dim)
        self.eps = eps

    def __call__(self, x: np.ndarray, update: bool = True) -> np.ndarray:
        st = self.stats
        if update:
            st.update(x)
        if st.count < 2:
            return (x - st.mean) / math.sqrt(1.0 + self.eps)
        # (x - μ)/√(m2/(n-1) + ε) = (x - μ)·√(n-1)/√(m2 + ε(n-1)): three array calls
        out = st.m2 + self.eps * (st.count - 1)
        np.sqrt(out, out=out)
        np.divide(x - st.mean, out, out=out)
        out *= math.sqrt(st.count - 1)
        return out


class RewardScaler:
    """Divide rewards by max(floor, running std of the discounted return) (scalar Welford).

    Why a floor: ObGD's step does not depend on |δ| while |δ| <= 1 (δ̄ = max(|δ|, 1)), so
    cumulants that are already small learn at the same relative speed unscaled; only large
    ones need shrinking. Scaling small ones *up* hurts: with terminal-only rewards (a random
    walk paying ±1 at its ends) the backward return trace is 0 on almost every step, its std
    is ~1/√(episode length), and dividing by it inflates the terminal reward ~10×, so the
    bound clips every informative update and the learned scale keeps moving.

    Why the floor is relative (``relative=True``, what the learners use): a floor of 1 in
    the reward's own units is not scale-free. The same walk paying ±1000 had σ ≈ 100 (the
    trace's std), cumulants of ±10 and 3.5x the error; paying ±0.001 it had σ = 1, values of
    0.001 against initial outputs of ~0.1 (issue 11, an independent check: relative RMS
    0.23 and 2.5 against 0.06 at ±1). The relative floor is the mean size of the non-zero
    rewards seen (1 until one is seen), so every scale of a stream learns alike, and rewards
    of size 1 (CartPole's, Acrobot's, the ±1 walks) are divided exactly as with a floor of 1
    (eps and the variance before two returns are scaled with the floor, so this holds down
    to any size).
    ``floor=0, relative=False`` is the plain stream-x scaler.
    """

    floor = 0.0  # class defaults: models pickled before the floor, or before it was
    relative = False  # relative, keep their behaviour
    abs_sum = 0.0
    abs_n = 0

    def __init__(self, eps: float = 1e-8, floor: float = 0.0, relative: bool = False):
        self.eps = eps
        self.floor = floor
        self.relative = relative
        self.count = 0
        self.mean = 0.0
        self.m2 = 0.0
        self.abs_sum = 0.0  # sum and count of |reward| over the non-zero rewards
        self.abs_n = 0

    @property
    def var(self) -> float:
        return self.m2 / (self.count - 1) if self.count >= 2 else 1.0

    @property
    def std(self) -> float:
        if not self.relative:
            return max(self.floor, math.sqrt(self.var + self.eps))
        floor = self.abs_sum / self.abs_n if self.abs_n else 1.0
        # eps and the variance before two returns are in the rewards' units too
        var = self.m2 / (self.count - 1) if self.count >= 2 else floor * floor
        return max(floor, math.sqrt(var + self.eps * floor * floor))

    def scale(self, reward: float, discounted_return: float, update: bool = True) -> float:
        """``discounted_return`` is the caller's trace G ← γG + r, already including ``reward``."""
        if update:
            self.count += 1
            d = discounted_return - self.mean
            self.mean += d / self.count
            self.m2 += d * (discounted_return - self.mean)
            if reward != 0.0:
                self.abs_sum += abs(reward)
                self.abs_n += 1
        return reward / self.std


def time_feature(t: int, time_limit: int) -> float:
    """Time-in-episode input: -0.5 at the first observation, +0.5 at ``time_limit`` steps.

    Lets the value of a state depend on how much time is left when episodes are cut at a
    fixed length (otherwise the cut looks like random termination).
    """
    return t / time_limit - 0.5
