"""Play CartPole through Kafka: the environment runs here, the stream Q(λ) agent in the worker.

    streamsvc dev-broker &                      # or docker compose up -d
    STREAMSVC_MODELS__CARTPOLE__KIND=stream_q \\
    STREAMSVC_MODELS__CARTPOLE__PARAMS__N_ACTIONS=2 streamsvc worker &
    python examples/cartpole_kafka.py --episodes 20

Each step sends {"agent", "episode", "obs", "reward", "done"} to `transitions` and waits for
the action on `actions`; the round-trip latency per step is reported at the end.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from tqdm import trange

try:
    import gymnasium as gym
except ImportError:  # said in words: the example's one dependency beyond the service
    raise SystemExit("this example needs gymnasium: pip install gymnasium "
                     "(or pip install -e \".[bench]\")") from None

from streamsvc.config import broker_to_bootstrap
from streamsvc.rl_client import TransitionClient


def play(bootstrap: str, episodes: int, model: str | None, seed: int = 0,
         transitions: str = "transitions", actions: str = "actions",
         max_steps: int = 500, policy: Any = None, timeout: float = 30.0
         ) -> tuple[list[float], dict[str, float]]:
    """Play `episodes`; `policy(answer) -> action` (default: the answer's `action`)."""
    policy = policy or (lambda ans: ans["action"])
    env = gym.make("CartPole-v1", max_episode_steps=max_steps)
    client = TransitionClient(bootstrap, transitions, actions, model=model, timeout=timeout)
    returns = []
    try:
        for ep in trange(episodes, desc="episodes", unit="ep"):
            obs, _ = env.reset(seed=seed + ep)
            ans = client.step(str(ep), obs.tolist(), 0.0, False)
            total, done = 0.0, False
            while not done:
                obs, r, term, trunc, _ = env.step(policy(ans))
                total += r
                done = term or trunc
                ans = client.step(str(ep), obs.tolist(), r, term, truncated=trunc)
            returns.append(total)
        return returns, client.latency_ms()
    finally:
        client.close()
        env.close()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--broker", default=os.environ.get("STREAMSVC_BROKER", "127.0.0.1:9092"))
    p.add_argument("--episodes", type=int, default=10)
    p.add_argument("--model", default=None,
                   help="stream_q model name; needed when the worker has more than one "
                   "stream_q/stream_td model (default: the only one)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--timeout", type=float, default=30.0,
                   help="seconds to wait for each answer before giving up (default 30)")
    args = p.parse_args()
    try:
        returns, lat = play(broker_to_bootstrap(args.broker), args.episodes, args.model,
                            args.seed, timeout=args.timeout)
    except TimeoutError as exc:  # one sentence, not a traceback: it is the usual first error
        raise SystemExit(f"cartpole_kafka: {exc}") from None
    print(f"returns: {returns}")
    print(f"round-trip latency per step (ms): {lat}")


if __name__ == "__main__":
    main()
