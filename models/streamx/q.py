"""Stream Q(λ): Watkins-style Q(λ) with ObGD, learning from every transition as it arrives."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .base import AgentState, StreamLearner


class StreamQ(StreamLearner):
    """ε-greedy stream Q(λ) controller for discrete actions (stream-x, Elsayed et al. 2024).

    Two ways to drive it:

    * ``step(agent, episode, obs, reward, done, truncated=None)``: the service path. Transitions of many agents
      may be interleaved; each agent has its own trace and episode. The first transition of an
      episode carries reward 0 (ignored); later ones carry the reward of the previous action.
      Returns the next action.
    * ``act(obs)`` / ``learn_one(obs, action, reward, next_obs, done, truncated=None)``: the single-agent
      gymnasium-style loop for notebooks.

    Update per transition (s, a, r, s'): δ = r̃ + γ·max_a' q(s', a')·(1 - terminal) - q(s, a)
    with r̃ the scaled reward; z ← γλz + ∇q(s, a); θ ← θ + step·δ·z (ObGD step); the trace is
    zeroed at episode end and after a non-greedy (exploratory) action. ε decays linearly from
    ``epsilon_start`` to ``epsilon_end`` over ``exploration_steps`` decisions (all agents).

    Terminal vs cut: an episode that ends in a terminal state has value 0 after it; one that
    is cut by a time limit (``truncated``, or by default any episode that is done after
    exactly ``time_limit`` steps) still bootstraps from its last observation. Why (issue 11,
    studied on CartPole seeds 0–59): with the 500-step cap taken as terminal, every
    successful episode ends with a target of ~0 for a balanced state. The time feature
    alone does not isolate that: the TD error at the cap is ≈ -q, it is spread back by the
    trace, and the values of balanced states drift down (mean TD error < 0 during runs of
    500-step episodes) until the greedy action flips and returns fall to ~10 for thousands
    of steps. Bootstrapping at the cut removed most of these collapses (seeds 0–29: 18 → 28
    of 30 at ≥ 400 over steps 40k–50k, 6 → 0 below 300; seeds 30–59: 22 → 24, 5 → 3).
    What was left after that (issue 11, second study): a learner that had reached 500 slid
    back to plateaus of ~150 (the cart drifting off the track) or fell to returns of ~10 for
    10–20k steps. Cause: the reward scale σ (running std of the discounted return) is a moving
    normaliser of the targets (on CartPole it rose from ~21 at step 2.5k to 31–34 at step 5k,
    then moved by 5–30% over later stretches as episode lengths changed), but the outputs kept
    the old scale; every change of σ made all stored Q-values wrong by the same factor, and
    Q-learning corrects only the action taken in each state. Over a few thousand steps that
    scale error (q·Δσ/σ: seed 10, steps 10k–15k, σ -6% with q ≈ 3.1 gives 0.17) is 5–10× the
    action gaps the greedy policy rests on (0.01–0.04), so which action looked better was
    decided by stale scales rather than by returns. Instrumented runs also showed why one bad
    stretch spreads: hidden representations of visited states are ~0.99 alike (cosine), so one
    terminal update with δ ≈ -q moves the Q-values of all states by ~0.8 (out of ~4). Fix: whenever σ changes, the
    output layer is multiplied by σ_old/σ_new (the scale half of Pop-Art, van Hasselt et al.
    2016), so q × σ is unchanged by the rescale, and the TD error of that transition uses q(s, a)
    under the rescaled layer. CartPole seeds 0–59 at ≥ 400 over steps 40k–50k: 58/60 → 60/60,
    below 300: 2 → 0, lowest 10-episode stretch after step 25k 8.7 → 363; seeds 60–99 (checked
    once, not tuned on): 36/40 → 40/40, below 300: 4 → 0; Acrobot seeds 0–23 mean return -223
    → -221 (median -144 → -146). What did not help, same seeds: a longer ε floor (0.05), keeping
    traces after exploratory actions, no time feature, no reward scaling, freezing σ after 10k
    steps, a bound on the exact first-order change g·z instead of ‖z‖₁, first-layer init that
    keeps an input per unit (docs/bench-streamx.md). The hidden width (64, 64) (the paper's is
    (32, 32)) was chosen before this fix on the same tuning seeds.

    Parameters (besides those of every stream-x learner: ``obs_dim`` (None → inferred from the
    first observation, then enforced), ``hidden``, ``lr``, ``gamma``, ``lam``, ``kappa``,
    ``sparsity``, ``optimizer`` ("obgd" | "adaptive"), ``normalize_obs``, ``scale_reward``,
    ``time_limit`` (the episode cap: scales the time feature, and an episode done after
    exactly that many steps is taken as cut; None = no time feature),
    ``max_agents``, ``return_window``, ``seed``): ``n_actions``, ``epsilon_start``,
    ``epsilon_end``, ``exploration_steps``, ``explore_repeat`` (0 = plain ε-greedy, the
    default; N > 0 = an exploratory action is held for up to N decisions, see ``_choose``:
    on Acrobot it turned the seeds that never found the goal into learners, on CartPole it
    cost returns, so it is opt-in; ``docs/bench-streamx.md``, "Held exploration").

    Example: a corridor of 6 cells (one-hot), start in cell 0, +1 for reaching cell 5, a small
    cost per step; after 200 episodes the greedy action in every cell is "right" (1).

    >>> import numpy as np
    >>> from models.streamx import StreamQ
    >>> q = StreamQ(n_actions=2, exploration_steps=1500, time_limit=30, seed=3)
    >>> eye = np.eye(6)
    >>> for episode in range(200):
    ...     s = 0
    ...     for t in range(30):
    ...         a = q.act(eye[s])
    ...         s2 = min(s + 1, 5) if a == 1 else max(s - 1, 0)
    ...         done = s2 == 5 or t == 29
    ...         q.learn_one(eye[s], a, 1.0 if s2 == 5 else -0.01, eye[s2], done)
    ...         if done:
    ...             break
    ...         s = s2
    >>> [q.predict_one(eye[s]) for s in range(5)]
    [1, 1, 1, 1, 1]

    The service path: many agents' transitions interleaved, one answer per transition.

    >>> out = q.step("robot-7", "episode-1", eye[0], 0.0, False)
    >>> sorted(out)
    ['action', 'done', 'epsilon', 'greedy', 'q', 'step']
    """

    _kind = "stream_q"
    _preserve_outputs = True
    explore_repeat = 0  # what models pickled before the option existed behave as

    def __init__(
        self,
        n_actions: int,
        obs_dim: int | None = None,
        hidden: Sequence[int] = (64, 64),
        lr: float = 1.0,
        gamma: float = 0.99,
        lam: float = 0.8,
        kappa: float = 2.0,
        epsilon_start: float = 1.0,
        epsilon_end: float = 0.01,
        exploration_steps: int = 5_000,
        explore_repeat: int = 0,
        sparsity: float = 0.9,
        optimizer: str = "obgd",
        normalize_obs: bool = True,
        scale_reward: bool = True,
        time_limit: int | None = 500,
        max_agents: int = 10_000,
        return_window: int = 100,
        seed: int | None = 0,
    ) -> None:
        if int(n_actions) < 1:
            raise ValueError(f"n_actions must be >= 1, got {n_actions}")
        if not (0.0 <= epsilon_end <= 1.0 and 0.0 <= epsilon_start <= 1.0):
            raise ValueError("epsilon_start and epsilon_end must be in [0, 1]")
        if exploration_steps < 0:
            raise ValueError(f"exploration_steps must be >= 0, got {exploration_steps}")
        if int(explore_repeat) < 0:
            raise ValueError(f"explore_repeat must be >= 0, got {explore_repeat}")
        self.n_actions = int(n_actions)
        self.epsilon_start = epsilon_start
        self.epsilon_end = epsilon_end
        self.exploration_steps = exploration_steps
        self.explore_repeat = int(explore_repeat)
        self.n_decisions = 0
        super().__init__(
            obs_dim=obs_dim,
            hidden=hidden,
            lr=lr,
            gamma=gamma,
            lam=lam,
            kappa=kappa,
            sparsity=sparsity,
            optimizer=optimizer,
            normalize_obs=normalize_obs,
            scale_reward=scale_reward,
            time_limit=time_limit,
            max_agents=max_agents,
            return_window=return_window,
            seed=seed,
        )

    def _n_outputs(self) -> int:
        return self.n_actions

    @property
    def epsilon(self) -> float:
        """Exploration rate for the next decision."""
        if self.exploration_steps <= 0:
            return float(self.epsilon_end)
        frac = min(1.0, (self.n_decisions + 1) / self.exploration_steps)
        return float(self.epsilon_start + frac * (self.epsilon_end - self.epsilon_start))

    def _choose(self, q: np.ndarray, st: AgentState | None = None) -> tuple[int, bool]:
        """ε-greedy; a random action that happens to equal the greedy one counts as greedy.

        With ``explore_repeat`` > 0 an exploratory action is held for a random number of
        decisions of the same agent (εz-greedy, Dabney et al. 2021: a duration n with
        P(n) ∝ n⁻², at most ``explore_repeat``), so exploration can travel: a task whose
        reward needs a coherent run of actions (Acrobot's swing-up) is found by a held action
        far more often than by independent coin flips."""
        eps = self.epsilon
        self.n_decisions += 1
        greedy_a = int(q.argmax())
        rng = self._rng
        holds = self._holds() if self.explore_repeat and st is not None else None
        if holds:
            held = holds.get(st)
            if held is not None:
                a, left = held
                if left <= 1:
                    del holds[st]
                else:
                    holds[st] = (a, left - 1)
                return a, a == greedy_a
        if rng.random() < eps:
            a = int(rng.random() * self.n_actions)
            if holds is not None:
                n = min(int(rng.zipf(2.0)), self.explore_repeat)
                if n > 1:
                    if len(holds) >= self.max_agents:
                        holds.clear()  # bounded: evicted agents' holds go too
                    holds[st] = (a, n - 1)
            return a, a == greedy_a
        return greedy_a, True

    def _holds(self) -> dict[AgentState, tuple[int, int]]:
        """Agent state -> (held exploratory action, decisions left)."""
        holds = self.__dict__.get("_held")
        if holds is None:
            holds = self._held = {}
        return holds

    def _start_episode(self, st: AgentState, episode: str | None) -> None:
        self.__dict__.get("_held", {}).pop(st, None)
        super()._start_episode(st, episode)

    def _end_episode(self, st: AgentState) -> None:
        self.__dict__.get("_held", {}).pop(st, None)
        super()._end_episode(st)

    def _cut_short(self, st: AgentState, terminated: bool, truncated: bool | None) -> bool:
        """Did the episode end by being cut (time limit) rather than in a terminal state?

        ``truncated`` given: cut when it is true and ``done`` (gymnasium's ``terminated``) is
        not; both true is terminal, as gymnasium means it. ``truncated`` None: an episode that
        is done after exactly ``time_limit`` steps counts as cut (``time_limit`` is the cap
        the time feature is scaled by)."""
        if truncated is not None:
            return bool(truncated) and not terminated
        return terminated and bool(self.time_limit) and st.t == self.time_limit

    def _learn(
        self, st: AgentState, reward: float, x_next: np.ndarray, done: bool, cut_short: bool = False
    ) -> None:
        """One Q(λ) update from (st.x, st.action, reward, x_next, done). An episode that was
        cut short (time limit) still bootstraps from x_next; only a terminal state has value 0."""
        q, cache = self._forward_state(st)
        a = st.action
        r = self._scaled_reward(st, reward)  # rescales the output layer if σ moved
        q_sa = float(q[a]) * self._out_ratio  # q(s, a) under the rescaled output layer
        if done and not cut_short:
            target = r
        else:
            q_next, _ = self.net.forward(x_next)
            target = r + self.gamma * float(np.maximum.reduce(q_next))
        delta = target - q_sa
        grad = self.net.backward_row(cache, a)
        self._apply(st, grad, delta, cut=done or not st.greedy)

    # ---- service API ----------------------------------------------------------------------
    def step(
        self,
        agent: str,
        episode: str,
        obs: Any,
        reward: float,
        done: bool,
        truncated: bool | None = None,
    ) -> dict:
        """Learn from this agent's previous transition (if any), then choose its next action.

        A transition for an agent whose episode id differs from the one in progress starts a
        new episode (the unfinished one is dropped: its traces are reset, nothing is learned
        from its last action). ``done`` ends the episode; the returned action is then the
        greedy one (no exploration, ε not advanced) and can be ignored. ``truncated`` says
        the episode was cut (gymnasium's ``truncated``: a time limit, not a terminal state),
        so its last target still bootstraps from ``obs``; it also ends the episode. None
        (default): cut if it ends after exactly ``time_limit`` steps.
        Returns {"action", "step", "greedy", "q", "epsilon", "done"}.
        """
        x_raw = self._check_obs(obs)
        r = self._check_reward(reward)
        terminated, done = bool(done), bool(done) or bool(truncated)
        st = self._agent(agent)
        if st.x is None or st.episode != episode:
            self._start_episode(st, episode)
            st.x = self._features(st, x_raw)
        else:
            st.t += 1
            x = self._features(st, x_raw)
            self._learn(st, r, x, done, self._cut_short(st, terminated, truncated))
            st.x, st.cache = x, None
        q, _ = self._forward_state(st)
        eps = self.epsilon
        if done:
            a, greedy = int(q.argmax()), True
        else:
            a, greedy = self._choose(q, st)
        st.action, st.greedy = a, greedy
        t = st.t
        if done:
            self._end_episode(st)
        return {
            "action": a,
            "step": t,
            "greedy": greedy,
            "q": q.tolist(),
            "epsilon": eps,
            "done": done,
        }

    # ---- single-agent API -----------------------------------------------------------------
    def _local_obs(self, x_raw: np.ndarray) -> AgentState:
        st = self._local_state()
        if st.x is None or not np.array_equal(st.raw, x_raw):
            if st.x is None:
                self._start_episode(st, None)
            st.x = self._features(st, x_raw)
            st.raw = x_raw
            st.cache = None
        return st

    def act(self, obs: Any) -> int:
        """ε-greedy action for ``obs`` (advances ε). Pair with ``learn_one`` in a loop."""
        st = self._local_obs(self._check_obs(obs))
        q, _ = self._forward_state(st)
        st.action, st.greedy = self._choose(q, st)
        return st.action

    def learn_one(
        self,
        obs: Any,
        action: int,
        reward: float,
        next_obs: Any,
        done: bool = False,
        truncated: bool | None = None,
    ) -> None:
        """Learn from one transition. The trace is cut if ``action`` is not greedy under the
        current Q (in a single-agent loop: exactly when ``act`` explored). ``done`` and
        ``truncated`` as in ``step``: a truncated episode ends but ``next_obs`` is not terminal."""
        x_raw = self._check_obs(obs)
        x_next_raw = self._check_obs(next_obs, "next_obs")
        r = self._check_reward(reward)
        a = int(action)
        if not 0 <= a < self.n_actions:
            raise ValueError(f"action must be in [0, {self.n_actions}), got {action!r}")
        st = self._local_obs(x_raw)
        q, _ = self._forward_state(st)
        st.action, st.greedy = a, a == int(q.argmax())
        terminated, done = bool(done), bool(done) or bool(truncated)
        st.t += 1
        x_next = self._features(st, x_next_raw)
        self._learn(st, r, x_next, done, self._cut_short(st, terminated, truncated))
        if done:
            self._end_episode(st)
        else:
            st.x, st.raw, st.cache = x_next, x_next_raw, None

    def q_values(self, obs: Any) -> list[float]:
        """Q estimates for ``obs`` without side effects (statistics are not updated)."""
        x_raw = self._check_obs(obs)
        st = self._local if self._local is not None else AgentState(self.net.size)
        q, _ = self.net.forward(self._features(st, x_raw, update=False))
        return q.tolist()

    def predict_one(self, obs: Any) -> int:
        """Greedy action for ``obs``, without exploration or learning side effects."""
        return int(np.argmax(self.q_values(obs)))

    def inspect(self) -> dict:
        d = super().inspect()
        d.update(n_actions=self.n_actions, epsilon=self.epsilon, decisions=int(self.n_decisions))
        return d
