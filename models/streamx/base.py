"""Shared machinery of the stream-x learners: one network, many agents.

The service receives interleaved transitions of many agents for ONE model. The network,
optimizer statistics, observation and reward statistics are shared; everything that belongs
to a trajectory (eligibility trace, last features/action, step in episode, return trace and
return so far) lives in a per-agent ``AgentState``. Agents are kept in LRU order and the least
recently seen is evicted beyond ``max_agents`` so memory stays bounded.

A forward pass is cached per agent together with the parameter version it was computed with:
in a single-agent loop the activations computed to *act* on s are reused to *learn* from
(s, a, r, s'), and are recomputed only when another agent changed the weights in between.
"""

from __future__ import annotations

import math
from collections import OrderedDict, deque
from collections.abc import Sequence
from typing import Any

import numpy as np
from river import base

from .network import MLP
from .normalize import ObservationNormalizer, RewardScaler, time_feature
from .obgd import ObGD, make_optimizer

# Inputs are refused above this magnitude BEFORE anything is learned: Welford statistics
# square them, and a square beyond ~1e308 would turn the shared statistics into inf for good.
MAX_MAGNITUDE = 1e100


class AgentState:
    """Per-agent trajectory bookkeeping (own trace, last features, return so far)."""

    __slots__ = (
        "episode",
        "t",
        "raw",
        "x",
        "cache",
        "out",
        "version",
        "action",
        "greedy",
        "z",
        "G",
        "ret",
    )

    def __init__(self, n_params: int) -> None:
        self.episode: str | None = None
        self.t = 0  # steps taken in the current episode (index of the current observation)
        self.raw: np.ndarray | None = None  # raw last obs (only used by the single-agent API)
        self.x: np.ndarray | None = None  # features of the last obs; None = no episode running
        self.cache: tuple | None = None
        self.out: np.ndarray | None = None
        self.version = -1
        self.action = 0
        self.greedy = True
        self.z = np.zeros(n_params)  # eligibility trace
        self.G = 0.0  # discounted return trace feeding the reward scaler
        self.ret = 0.0  # undiscounted return of the episode so far (raw rewards)

    def __getstate__(self) -> dict:
        return {k: getattr(self, k) for k in self.__slots__}

    def __setstate__(self, state: dict) -> None:
        for k, v in state.items():
            setattr(self, k, v)


class StreamLearner(base.Base):
    """Base of StreamTD / StreamQ: validation, features, agents, episodes, inspection.

    Follows river's conventions (constructor params stored under their own names, so
    ``clone()`` works; picklable; seeded). ``river.checks.check_estimator`` does not apply:
    these are not supervised estimators on feature dicts but RL learners on fixed-length
    observation vectors (emerging/disappearing features are rejected on purpose, as an
    observation whose size changes is a producer bug that must surface as a ValueError)."""

    _kind = "stream"
    _LOCAL = "__local__"

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
        if obs_dim is not None and int(obs_dim) < 1:
            raise ValueError(f"obs_dim must be >= 1 or None, got {obs_dim}")
        if not 0.0 <= sparsity < 1.0:
            raise ValueError(f"sparsity must be in [0, 1), got {sparsity}")
        if time_limit is not None and int(time_limit) < 1:
            raise ValueError(f"time_limit must be >= 1 or None, got {time_limit}")
        if max_agents < 1 or return_window < 1:
            raise ValueError("max_agents and return_window must be >= 1")
        self.obs_dim = obs_dim
        self.hidden = tuple(hidden)
        self.lr = lr
        self.gamma = gamma
        self.lam = lam
        self.kappa = kappa
        self.sparsity = sparsity
        self.optimizer = optimizer
        self.normalize_obs = normalize_obs
        self.scale_reward = scale_reward
        self.time_limit = time_limit
        self.max_agents = max_agents
        self.return_window = return_window
        self.seed = seed

        self._opt: ObGD = make_optimizer(optimizer, lr, gamma, lam, kappa)
        self._rng = np.random.default_rng(seed)
        self.obs_dim_: int | None = None
        self.net: MLP | None = None
        self._obs_norm: ObservationNormalizer | None = None
        self._rewards = RewardScaler(relative=True)
        self._agents: OrderedDict[str, AgentState] = OrderedDict()
        self._local: AgentState | None = None
        self._version = 0  # bumped at every parameter update (invalidates cached forwards)
        self._returns: deque[float] = deque(maxlen=return_window)
        self.n_learned = 0
        self.n_episodes = 0
        self.n_abandoned = 0
        self.n_evicted = 0
        self._td_ema = 0.0
        self._step_ema = 0.0
        if obs_dim is not None:
            self._build(int(obs_dim))

    # ---- to be provided by subclasses -------------------------------------------------
    def _n_outputs(self) -> int:
        raise NotImplementedError

    def _skip_path(self) -> bool:
        """Whether the network has a linear path from inputs to outputs (see ``MLP``)."""
        return False

    # ---- construction and validation --------------------------------------------------
    def _build(self, dim: int) -> None:
        self.obs_dim_ = dim
        n_in = self._input_size(dim)
        self.net = MLP(n_in, self._n_outputs(), self.hidden, self.sparsity, self._rng,
                       skip=self._skip_path())
        self._obs_norm = ObservationNormalizer(dim) if self.normalize_obs else None
        # the base features' length (``_features``): a subclass may add inputs after them
        self._xbuf_len = StreamLearner._input_size(self, dim)

    def _input_size(self, dim: int) -> int:
        """The network's inputs for an observation of ``dim`` values (plus the time feature)."""
        return dim + (1 if self.time_limit else 0)

    def _check_obs(self, obs: Any, what: str = "obs") -> np.ndarray:
        try:
            x = np.asarray(obs, dtype=float)
        except (TypeError, ValueError) as e:
            raise ValueError(f"{what} must be a list of numbers: {e}") from None
        if x.ndim != 1:
            raise ValueError(f"{what} must be a flat list of numbers, got shape {x.shape}")
        if self.obs_dim_ is None:
            if x.shape[0] < 1:
                raise ValueError(f"{what} must not be empty")
            self._build(x.shape[0])
        elif x.shape[0] != self.obs_dim_:
            raise ValueError(
                f"{what} has {x.shape[0]} values but this model expects obs_dim={self.obs_dim_}"
            )
        if not math.isfinite(np.add.reduce(x)):  # any NaN/inf makes the sum non-finite
            raise ValueError(f"{what} contains NaN or infinite values: {x.tolist()}")
        if float(np.maximum.reduce(np.abs(x))) > MAX_MAGNITUDE:
            raise ValueError(
                f"{what} has a value beyond ±{MAX_MAGNITUDE:g}, too large to learn "
                f"from (its square would overflow the running statistics): "
                f"{x.tolist()}"
            )
        return x

    @staticmethod
    def _check_reward(reward: Any) -> float:
        try:
            r = float(reward)
        except (TypeError, ValueError):
            raise ValueError(f"reward must be a number, got {reward!r}") from None
        if not math.isfinite(r):
            raise ValueError(f"reward must be finite, got {reward!r}")
        if abs(r) > MAX_MAGNITUDE:
            raise ValueError(
                f"reward {r:g} is beyond ±{MAX_MAGNITUDE:g}, too large to learn from "
                "(its square would overflow the running statistics)"
            )
        return r

    # ---- agents and episodes ----------------------------------------------------------
    def _agent(self, agent: str) -> AgentState:
        st = self._agents.get(agent)
        if st is None:
            if len(self._agents) >= self.max_agents:
                self._agents.popitem(last=False)
                self.n_evicted += 1
            st = AgentState(self.net.size)
            self._agents[agent] = st
        else:
            self._agents.move_to_end(agent)
        return st

    def _local_state(self) -> AgentState:
        if self._local is None:
            self._local = AgentState(self.net.size)
        return self._local

    def _start_episode(self, st: AgentState, episode: str | None) -> None:
        if st.x is not None:
            self.n_abandoned += 1  # a new episode began before the old one said done
        st.episode = episode
        st.t = 0
        st.z.fill(0.0)
        st.G = 0.0
        st.ret = 0.0
        st.x = st.raw = st.cache = st.out = None

    def _end_episode(self, st: AgentState) -> None:
        self._returns.append(st.ret)
        self.n_episodes += 1
        st.z.fill(0.0)
        st.G = 0.0
        st.x = st.raw = st.cache = st.out = None
        st.episode = None

    # ---- features, forward, reward ----------------------------------------------------
    def _features(self, st: AgentState, raw: np.ndarray, update: bool = True) -> np.ndarray:
        x = self._obs_norm(raw, update) if self._obs_norm is not None else raw
        if self.time_limit:
            out = np.empty(self._xbuf_len)
            out[:-1] = x
            out[-1] = time_feature(st.t, self.time_limit)
            return out
        return x

    def _forward_state(self, st: AgentState) -> tuple[np.ndarray, tuple]:
        """Network outputs for the agent's last features, reusing the cache if still valid."""
        if st.cache is None or st.version != self._version:
            st.out, st.cache = self.net.forward(st.x)
            st.version = self._version
        return st.out, st.cache

    # Keep the outputs' meaning in reward units when the reward scale moves (StreamQ and
    # StreamTD set it; see ``_scaled_reward``).
    _preserve_outputs = False

    def _scaled_reward(self, st: AgentState, r: float) -> float:
        """r / σ, updating σ (running std of the discounted return) with this reward first.

        With ``_preserve_outputs`` the outputs of ``_value_nets()`` (output layer and skip
        path) are multiplied by σ_old / σ_new whenever σ changes, so that output × σ (the
        estimate in reward units) is unchanged by the new scale: the scale-only half of
        Pop-Art (van Hasselt et al. 2016, "preserving outputs precisely while adaptively
        rescaling targets"). Callers holding an output computed
        before this call multiply it by the ratio applied, ``self._out_ratio``."""
        st.ret += r
        self._out_ratio = 1.0
        if not self.scale_reward:
            return r
        st.G = self.gamma * st.G + r
        if not self._preserve_outputs:
            return self._rewards.scale(r, st.G)
        rs = self._rewards
        old, learned = rs.std, not rs.relative or rs.abs_n > 0
        scaled = rs.scale(r, st.G)
        new = rs.std
        # the first non-zero reward sets a relative floor: the outputs so far learned only
        # zeros and the initial weights, nothing in reward units to preserve
        if new != old and learned:
            ratio = self._out_ratio = old / new
            for net in self._value_nets():
                W, b = net.layers[-1]
                W *= ratio
                b *= ratio
                if net.skip_w is not None:
                    net.skip_w *= ratio
            self._version += 1
        return scaled

    def _value_nets(self) -> list[MLP]:
        """The networks whose outputs are estimates in units of σ (rescaled with it)."""
        return [self.net]

    def _apply(self, st: AgentState, grad: np.ndarray, delta: float, cut: bool) -> None:
        """Trace update + ObGD step; ``cut`` zeroes the trace afterwards (episode end etc.)."""
        opt = self._opt
        opt.accumulate(st.z, grad)
        step = opt.apply(self.net.theta, st.z, delta)
        if cut:
            st.z.fill(0.0)
        self._version += 1
        self.n_learned += 1
        self._td_ema += 0.01 * (abs(delta) - self._td_ema)
        self._step_ema += 0.01 * (step - self._step_ema)

    # ---- inspection -------------------------------------------------------------------
    def reward_std(self) -> float:
        return self._rewards.std if self.scale_reward else 1.0

    def inspect(self) -> dict:
        """Small JSON-serialisable status (shown by the REST sidecar)."""
        rets = list(self._returns)
        return {
            "kind": self._kind,
            "obs_dim": self.obs_dim_,
            "n_parameters": int(self.net.size) if self.net is not None else 0,
            "steps_learned": int(self.n_learned),
            "episodes_finished": int(self.n_episodes),
            "episodes_abandoned": int(self.n_abandoned),
            "mean_return": float(np.mean(rets)) if rets else None,
            "last_return": float(rets[-1]) if rets else None,
            "return_window": int(self.return_window),
            "active_agents": len(self._agents),
            "evicted_agents": int(self.n_evicted),
            "reward_std": float(self.reward_std()),
            "abs_td_error_ema": float(self._td_ema),
            "step_size_ema": float(self._step_ema),
        }
