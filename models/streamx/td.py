"""Stream TD(λ): predict the discounted sum of a future signal, one transition at a time."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .base import AgentState, StreamLearner


class StreamTD(StreamLearner):
    """Stream TD(λ) value prediction with ObGD (stream-x, Elsayed et al. 2024).

    Predicts v(s) ≈ E[Σ_k γ^k c_{t+k+1}] for a cumulant c (the ``reward`` field). Update per
    transition: δ = c̃ + γ·v(s')·(1 - done) - v(s); z ← γλz + ∇v(s); θ ← θ + step·δ·z; the
    trace is zeroed at episode end. With ``scale_reward`` the network learns in units of the
    running return std and predictions are multiplied back, so ``value`` is in cumulant units.

    Service path: ``step(agent, episode, obs, reward, done)`` (interleaved agents, first
    transition's reward ignored) → {"value", "step", "done"}. Single-agent path:
    ``learn_one(obs, reward, next_obs, done)`` and ``predict_one(obs)``.
    For continuing streams, never send ``done`` and keep ``time_limit=None`` (default).
    Parameters: see ``StreamLearner`` (obs_dim, hidden, lr, gamma, lam, kappa, sparsity,
    optimizer, normalize_obs, scale_reward, time_limit, max_agents, return_window, seed).
    """

    _kind = "stream_td"

    def __init__(
        self,
        obs_dim: int | None = None,
        hidden: Sequence[int] = (32, 32),
        lr: float = 1.0,
        gamma: float = 0.99,
        lam: float = 0.8,
        kappa: float = 2.0,
        sparsity: float = 0.9,
        optimizer: str = "obgd",
        normalize_obs: bool = True,
        scale_reward: bool = True,
        time_limit: int | None = None,
        max_agents: int = 10_000,
        return_window: int = 100,
        seed: int | None = 0,
    ) -> None:
        super().__init__(
            obs_dim=obs_dim, hidden=hidden, lr=lr, gamma=gamma, lam=lam, kappa=kappa,
            sparsity=sparsity, optimizer=optimizer, normalize_obs=normalize_obs,
            scale_reward=scale_reward, time_limit=time_limit, max_agents=max_agents,
            return_window=return_window, seed=seed,
        )
        self._ones = np.ones(1)

    def _n_outputs(self) -> int:
        return 1

    def _learn(self, st: AgentState, reward: float, x_next: np.ndarray, done: bool) -> None:
        out, cache = self._forward_state(st)
        r = self._scaled_reward(st, reward)
        target = r if done else r + self.gamma * float(self.net.forward(x_next)[0][0])
        delta = target - float(out[0])
        self._apply(st, self.net.backward(cache, self._ones), delta, cut=done)

    def _value(self, st: AgentState) -> float:
        out, _ = self._forward_state(st)
        return float(out[0]) * self.reward_std()

    # ---- service API ----------------------------------------------------------------------
    def step(self, agent: str, episode: str, obs: Any, reward: float, done: bool) -> dict:
        """Learn from the agent's previous transition, then predict the value of ``obs``.

        The value of a terminal observation (``done``) is 0 by definition.
        """
        x_raw = self._check_obs(obs)
        r = self._check_reward(reward)
        done = bool(done)
        st = self._agent(agent)
        if st.x is None or st.episode != episode:
            self._start_episode(st, episode)
            st.x = self._features(st, x_raw)
        else:
            st.t += 1
            x = self._features(st, x_raw)
            self._learn(st, r, x, done)
            st.x, st.cache = x, None
        t = st.t
        if done:
            self._end_episode(st)
            return {"value": 0.0, "step": t, "done": True}
        return {"value": self._value(st), "step": t, "done": False}

    # ---- single-agent API -----------------------------------------------------------------
    def learn_one(self, obs: Any, reward: float, next_obs: Any, done: bool = False) -> None:
        """Learn from one transition (obs → next_obs with cumulant ``reward``)."""
        x_raw = self._check_obs(obs)
        x_next_raw = self._check_obs(next_obs, "next_obs")
        r = self._check_reward(reward)
        st = self._local_state()
        if st.x is None or not np.array_equal(st.raw, x_raw):
            if st.x is None:
                self._start_episode(st, None)
            st.x, st.raw, st.cache = self._features(st, x_raw), x_raw, None
        st.t += 1
        x_next = self._features(st, x_next_raw)
        self._learn(st, r, x_next, bool(done))
        if done:
            self._end_episode(st)
        else:
            st.x, st.raw, st.cache = x_next, x_next_raw, None

    def predict_one(self, obs: Any) -> float:
        """Value estimate for ``obs`` (cumulant units), without updating any statistics."""
        x_raw = self._check_obs(obs)
        st = self._local if self._local is not None else AgentState(self.net.size)
        out, _ = self.net.forward(self._features(st, x_raw, update=False))
        return float(out[0]) * self.reward_std()
