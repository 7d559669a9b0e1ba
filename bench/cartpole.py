"""Stream Q(λ) on CartPole-v1 (episode cap 500), driven through the service path ``step()``.

Quality bar (issue 4): with the default hyper-parameters, the mean return of the episodes that
end within steps 40k–50k is above 400 on at least 3 of 5 seeds. The reference measured in the
same run is a uniformly random policy (its mean return and the bare environment speed).

    python -m bench.cartpole --seeds 0 1 2 3 4 --steps 50000
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
from tqdm import tqdm

from bench.streamx_common import command, machine, write_section
from models.streamx import StreamQ

DOCS = Path(__file__).resolve().parent.parent / "docs"


def run_seed(seed: int, steps: int, exploration_steps: int, bar: tqdm) -> dict:
    env = gym.make("CartPole-v1")  # max_episode_steps=500
    agent = StreamQ(n_actions=int(env.action_space.n), exploration_steps=exploration_steps,
                    time_limit=500, seed=seed)
    obs, _ = env.reset(seed=seed)
    ep = 0
    res = agent.step("cartpole", "0", obs.tolist(), 0.0, False)
    ends, returns, ret = [], [], 0.0
    learn_time = 0.0
    for t in range(1, steps + 1):
        obs, r, term, trunc, _ = env.step(res["action"])
        done = term or trunc
        ret += r
        t0 = time.perf_counter()
        res = agent.step("cartpole", str(ep), obs.tolist(), float(r), done)
        learn_time += time.perf_counter() - t0
        if done:
            ends.append(t)
            returns.append(ret)
            ret, ep = 0.0, ep + 1
            obs, _ = env.reset()
            t0 = time.perf_counter()
            res = agent.step("cartpole", str(ep), obs.tolist(), 0.0, False)
            learn_time += time.perf_counter() - t0
            bar.set_postfix(seed=seed, ret=f"{np.mean(returns[-10:]):.0f}", eps=f"{agent.epsilon:.2f}",
                            refresh=False)
        bar.update(1)
    env.close()
    assert agent.inspect()["steps_learned"] == steps
    return {"seed": seed, "ends": ends, "returns": returns,
            "learn_steps_per_s": steps / learn_time}


def random_reference(steps: int, seed: int) -> dict:
    env = gym.make("CartPole-v1")
    rng = np.random.default_rng(seed)
    env.reset(seed=seed)
    returns, ret = [], 0.0
    t0 = time.perf_counter()
    for _ in range(steps):
        _, r, term, trunc, _ = env.step(int(rng.integers(2)))
        ret += r
        if term or trunc:
            returns.append(ret)
            ret = 0.0
            env.reset()
    return {"mean_return": float(np.mean(returns)), "env_steps_per_s": steps / (time.perf_counter() - t0)}


def window_mean(run: dict, lo: int, hi: int) -> float:
    rets = [r for t, r in zip(run["ends"], run["returns"], strict=True) if lo < t <= hi]
    return float(np.mean(rets)) if rets else float("nan")


def plot(runs: list[dict], steps: int, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for run in runs:
        ends, rets = np.array(run["ends"]), np.array(run["returns"])
        k = min(10, len(rets))
        smooth = np.convolve(rets, np.ones(k) / k, mode="valid")
        ax.plot(ends[k - 1 :], smooth, label=f"seed {run['seed']}", lw=1.2)
    ax.axhline(400, color="grey", ls="--", lw=0.8)
    ax.axvspan(0.8 * steps, steps, color="grey", alpha=0.08)
    ax.set_xlabel("environment steps")
    ax.set_ylabel("episode return (moving mean of 10)")
    ax.set_title("Stream Q(λ), numpy, CartPole-v1 (cap 500), default hyper-parameters")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--steps", type=int, default=50_000)
    ap.add_argument("--exploration-fraction", type=float, default=0.1,
                    help="ε decays from 1 to 0.01 over this fraction of --steps")
    ap.add_argument("--json", type=Path, default=None, help="also dump raw curves here")
    ap.add_argument("--no-doc", action="store_true", help="do not write docs/")
    args = ap.parse_args()
    expl = int(args.exploration_fraction * args.steps)
    lo, hi = int(0.8 * args.steps), args.steps

    ref = random_reference(20_000, seed=12345)
    runs = []
    with tqdm(total=args.steps * len(args.seeds), desc="CartPole Q(λ)", unit="step",
              mininterval=1.0) as bar:
        for seed in args.seeds:
            runs.append(run_seed(seed, args.steps, expl, bar))
    for run in runs:
        run["window_mean"] = window_mean(run, lo, hi)
    n_pass = sum(run["window_mean"] > 400 for run in runs)
    sps = [run["learn_steps_per_s"] for run in runs]
    for run in runs:
        print(f"seed {run['seed']}: mean return steps {lo}-{hi} = {run['window_mean']:.1f} "
              f"({run['learn_steps_per_s']:.0f} learner steps/s)")
    print(f"{n_pass}/{len(runs)} seeds above 400; random policy {ref['mean_return']:.1f}")
    if args.json:
        args.json.write_text(json.dumps({"runs": runs, "reference": ref}))
    if args.no_doc:
        return
    png = DOCS / "cartpole-learning-curves.png"
    plot(runs, args.steps, png)
    rows = "\n".join(
        f"| {r['seed']} | {r['window_mean']:.1f} | {r['window_mean'] / ref['mean_return']:.1f}× "
        f"| {len(r['returns'])} | {r['learn_steps_per_s']:.0f} |"
        for r in runs
    )
    body = f"""## Stream Q(λ) on CartPole-v1 (episode cap 500)

Command: `{command()}`
Machine: {machine()}
Setup: `StreamQ(n_actions=2, time_limit=500, exploration_steps={expl}, seed=s)` with the
defaults α=1, κ=2, γ=0.99, λ=0.8, hidden (32, 32), ε 1 → 0.01 linearly over {expl} steps;
driven through the service path `step(agent, episode, obs, reward, done)`.
Reference in the same run: uniformly random policy, mean return {ref['mean_return']:.1f}
(bare environment {ref['env_steps_per_s']:.0f} steps/s).

| seed | mean return, episodes ending in steps {lo}–{hi} | × random policy | episodes | learner steps/s |
|---|---|---|---|---|
{rows}

**{n_pass}/{len(runs)} seeds above 400** (bar: at least 3 of 5). Learner speed (time inside
`StreamQ.step`, one process, one core): median {np.median(sps):.0f} steps/s,
{np.median(sps) / ref['env_steps_per_s']:.2f}× the bare environment's stepping rate (timed while
sharing the machine; the dedicated measurement is in the speed section).

![learning curves](cartpole-learning-curves.png)
"""
    print("wrote", write_section("cartpole", body))


if __name__ == "__main__":
    main()
