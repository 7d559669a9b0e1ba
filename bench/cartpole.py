"""Stream Q(λ) with shipped defaults on CartPole-v1 (10 seeds) and Acrobot-v1, driven through
the service path ``step()``.

Quality bar (issue 11): mean return of the episodes that end within steps 40k–50k ≥ 400 on at
least 9 of 10 seeds, none below 300. Choices made on tuning seeds only: bootstrapping at the
500-step cut, the hidden width (64, 64), and rescaling the output layer when the reward scale
moves (CartPole seeds 0–59, Acrobot 0–11; CartPole 60–99 and Acrobot 12–23 as a check). This
reports on seeds 100–109 (Acrobot 100–104), never used for a choice, but seen twice before
(widths (32, 32) and (64, 64), before the rescaling): the page written by this script says so,
with those numbers.
Acrobot-v1 (3 actions, reward -1 per step, cap 500) checks that the defaults carry to a
second task.
Reference measured in the same run: a uniformly random policy on each task (mean return,
and the bare environment's stepping rate).

    python -m bench.cartpole --seeds 100 101 102 103 104 105 106 107 108 109
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from tqdm import tqdm

from bench.streamx_common import command, machine, write_section
from models.streamx import StreamQ

DOCS = Path(__file__).resolve().parent.parent / "docs"
HIDDEN = tuple(inspect.signature(StreamQ).parameters["hidden"].default)

# How the width was chosen, and what had been seen before (written into the page as is).
DISCLOSURE = """**How the defaults were chosen (full disclosure).**

*Output layer rescaled when the reward scale moves* (issue 11, second study; tuning seeds
only). Collapses reproduced on CartPole tuning seeds (10: 500 for 10k steps, then a plateau at
~150 with the cart drifting off the track; 15: a plateau at ~110, then returns of ~9 for 17k
steps) and instrumented (`StreamQ` docstring): the reward scale σ (running std of the
discounted return) rose from ~21 at step 2.5k to 31–34 at 5k and moved 5–30% later, while the
network's outputs kept the old scale; Q-learning corrects only the action taken, and the scale
error (0.17 on seed 10, steps 10k–15k) was 5–10× the action gaps (0.01–0.04). The ObGD step,
ε, normalisation statistics, traces and the first layer were examined too (table). The causal
check: a constant σ = 30 (no drift, CartPole's typical value, not usable as a default) gave
60/60 like the fix; freezing σ after 10k steps did not help (the early drift does the damage).
Fix adopted: output layer × σ_old/σ_new at every change of σ (the scale half of Pop-Art), with
the TD error of that transition taken under the rescaled layer.

| CartPole seeds 0–59, steps 40k–50k | ≥ 400 | below 300 | mean | worst stretches < 100 | mean worst stretch |
|---|---|---|---|---|---|
| before (shipped defaults, (64, 64)) | 58/60 | 2 (10, 15) | 480.9 | 3 | 439.2 |
| ε floor 0.05 instead of 0.01 | 47/60 | 7 | 439.8 | 12 | 321.0 |
| traces kept after exploratory actions (the paper's default) | 54/60 | 4 | 472.7 | 5 | 421.6 |
| no time feature | 55/60 | 3 | 476.0 | 6 | 396.4 |
| no reward scaling | 51/60 | 6 | 451.4 | 5 | 389.7 |
| ObGD bound on g·z (the actual first-order change) as well as ‖z‖₁ | 47/60 | 10 | 431.1 | 9 | 326.7 |
| ObGD bound on g·z alone, κ = 1 | 56/60 | 2 | 482.6 | 4 | 415.8 |
| first layer keeps one input per unit (sparse init zeroes all 5 today) | 46/60 | 7 | 433.4 | 5 | 327.3 |
| σ frozen after 10k steps | 58/60 | 2 | 482.2 | 2 | 441.0 |
| constant σ = 30 (causal check only) | 60/60 | 0 | 499.0 | 0 | 494.0 |
| output rescaled, TD error with the stale q(s, a) | 59/60 | 0 | 495.8 | 0 | 478.6 |
| **output rescaled, TD error under the rescaled layer (adopted)** | **60/60** | **0** | 500.0 | 0 | 494.7 |

Check on seeds not tuned on (run once each): CartPole 60–99, before 36/40 ≥ 400 with 4 below
300, after 40/40 with none below 300 (lowest 10-episode stretch 24.5 → 228.5); Acrobot 0–23
(0–11 tuning) mean / median return before -222.7 / -143.5, after -220.5 / -145.5 (seeds stuck
near -500: 5 before, 4 after; that is an exploration problem this fix does not address).

*Hidden width (64, 64)* (before the rescaling), by a rule fixed before any report seed was run
with (64, 64): adopt it if, on tuning seeds only, it has clearly more CartPole seeds ≥ 400, no
more seeds below 300, and Acrobot is not worse. CartPole 0–59 ≥ 400 / below 300: (32, 32)
52/60 / 3, (64, 64) 58/60 / 2 (sign test p ≈ 0.055); Acrobot 0–11 mean -234.2 vs -218.2.

*The report seeds were seen twice before this run* (same script, earlier defaults), and both
later changes were made knowing those runs fell short:
with (32, 32) (commit a23cea8): CartPole 100–109: 500.0, 245.5, 168.9, 500.0, 497.3, 500.0,
500.0, 500.0, 500.0, 455.1 (8/10 ≥ 400, 2 below 300); Acrobot 100–104: -370.4, -147.2,
-167.3, -469.9, -487.7.
With (64, 64), before the rescaling (commit 744905c): CartPole 500.0, 500.0, 500.0, 415.7,
251.5, 500.0, 500.0, 500.0, 217.5, 500.0 (8/10, 2 below 300; seed 104 at ~10 for 1041
episodes); Acrobot -119.1, -108.7, -305.0, -153.2, -100.9.
Those numbers did not enter any choice; the tables above are the first and only run with the
rescaling."""


def run_seed(env_id: str, seed: int, steps: int, bar: tqdm, **params: Any) -> dict:
    """One learning run with `StreamQ(n_actions, seed, **params)` (the defaults: no params)."""
    env = gym.make(env_id)  # both tasks: max_episode_steps=500, StreamQ's default time_limit
    agent = StreamQ(n_actions=int(env.action_space.n), seed=seed, **params)
    obs, _ = env.reset(seed=seed)
    ep = 0
    res = agent.step("bench", "0", obs.tolist(), 0.0, False)
    ends, returns, ret = [], [], 0.0
    learn_time = 0.0
    for t in range(1, steps + 1):
        obs, r, term, trunc, _ = env.step(res["action"])
        done = term or trunc
        ret += r
        t0 = time.perf_counter()
        res = agent.step(
            "bench", str(ep), obs.tolist(), float(r), done, truncated=trunc and not term
        )
        learn_time += time.perf_counter() - t0
        if done:
            ends.append(t)
            returns.append(ret)
            ret, ep = 0.0, ep + 1
            obs, _ = env.reset()
            t0 = time.perf_counter()
            res = agent.step("bench", str(ep), obs.tolist(), 0.0, False)
            learn_time += time.perf_counter() - t0
            bar.set_postfix(
                task=env_id.split("-")[0],
                seed=seed,
                ret=f"{np.mean(returns[-10:]):.0f}",
                refresh=False,
            )
        bar.update(1)
    env.close()
    assert agent.inspect()["steps_learned"] == steps
    return {"seed": seed, "ends": ends, "returns": returns, "learn_steps_per_s": steps / learn_time}


def random_reference(env_id: str, steps: int, seed: int) -> dict:
    env = gym.make(env_id)
    rng = np.random.default_rng(seed)
    env.reset(seed=seed)
    n = int(env.action_space.n)
    ends, returns, ret = [], [], 0.0
    t0 = time.perf_counter()
    for t in range(1, steps + 1):
        _, r, term, trunc, _ = env.step(int(rng.integers(n)))
        ret += r
        if term or trunc:
            ends.append(t)
            returns.append(ret)
            ret = 0.0
            env.reset()
    return {
        "ends": ends,
        "returns": returns,
        "mean_return": float(np.mean(returns)),
        "env_steps_per_s": steps / (time.perf_counter() - t0),
    }


def window_mean(run: dict, lo: int, hi: int) -> float:
    rets = [r for t, r in zip(run["ends"], run["returns"], strict=True) if lo < t <= hi]
    return float(np.mean(rets)) if rets else float("nan")


def worst_stretch(run: dict, after: int, k: int = 10) -> float:
    """Lowest moving mean of k episode returns among episodes ending after step ``after``."""
    idx = [i for i, t in enumerate(run["ends"]) if t > after and i >= k - 1]
    return min(
        (float(np.mean(run["returns"][i - k + 1 : i + 1])) for i in idx), default=float("nan")
    )


def _curve(ax, run: dict, label: str, **kw) -> None:
    ends, rets = np.array(run["ends"]), np.array(run["returns"])
    k = min(10, len(rets))
    smooth = np.convolve(rets, np.ones(k) / k, mode="valid")
    ax.plot(ends[k - 1 :], smooth, label=label, lw=1.1, **kw)


def plot(
    cp: list[dict], cp_ref: dict, ac: list[dict], ac_ref: dict, steps: int, path: Path
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
    for ax, runs, ref, title, bar in (
        (axes[0], cp, cp_ref, "CartPole-v1", 400),
        (axes[1], ac, ac_ref, "Acrobot-v1", None),
    ):
        for run in runs:
            _curve(ax, run, f"seed {run['seed']}")
        _curve(ax, ref, "random policy", color="black", ls=":")
        if bar is not None:
            ax.axhline(bar, color="grey", ls="--", lw=0.8)
        ax.axvspan(0.8 * steps, steps, color="grey", alpha=0.08)
        ax.set_xlabel("environment steps")
        ax.set_ylabel("episode return (moving mean of 10)")
        ax.set_title(f"Stream Q(λ), shipped defaults, {title}")
        ax.legend(loc="lower right", fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--seeds", type=int, nargs="+", default=list(range(100, 110)))
    ap.add_argument("--acrobot-seeds", type=int, nargs="+", default=[100, 101, 102, 103, 104])
    ap.add_argument("--steps", type=int, default=50_000)
    ap.add_argument("--json", type=Path, default=None, help="also dump raw curves here")
    ap.add_argument("--no-doc", action="store_true", help="do not write docs/")
    args = ap.parse_args()
    lo, hi = int(0.8 * args.steps), args.steps

    load_start = os.getloadavg()[0]
    cp_ref = random_reference("CartPole-v1", args.steps, seed=12345)
    ac_ref = random_reference("Acrobot-v1", args.steps, seed=12345)
    cp, ac = [], []
    total = args.steps * (len(args.seeds) + len(args.acrobot_seeds))
    with tqdm(total=total, desc="stream Q(λ)", unit="step", mininterval=1.0) as bar:
        for seed in args.seeds:
            cp.append(run_seed("CartPole-v1", seed, args.steps, bar))
        for seed in args.acrobot_seeds:
            ac.append(run_seed("Acrobot-v1", seed, args.steps, bar))
    for run in (*cp, *ac):
        run["window_mean"] = window_mean(run, lo, hi)
        run["worst10"] = worst_stretch(run, args.steps // 2)
    for ref in (cp_ref, ac_ref):
        ref["window_mean"] = window_mean(ref, lo, hi)
    n400 = sum(run["window_mean"] >= 400 for run in cp)
    n300 = sum(run["window_mean"] < 300 for run in cp)
    for run in cp:
        print(
            f"CartPole seed {run['seed']}: steps {lo}-{hi} mean return {run['window_mean']:.1f}, "
            f"worst 10-episode mean after {args.steps // 2}: {run['worst10']:.1f}"
        )
    for run in ac:
        print(f"Acrobot seed {run['seed']}: steps {lo}-{hi} mean return {run['window_mean']:.1f}")
    print(
        f"CartPole: {n400}/{len(cp)} seeds >= 400, {n300} below 300; random {cp_ref['mean_return']:.1f}"
    )
    print(f"Acrobot random policy: {ac_ref['mean_return']:.1f}")
    if args.json:
        args.json.write_text(
            json.dumps(
                {"cartpole": cp, "acrobot": ac, "cartpole_random": cp_ref, "acrobot_random": ac_ref}
            )
        )
    if args.no_doc:
        return
    png = DOCS / "cartpole-learning-curves.png"
    plot(cp, cp_ref, ac, ac_ref, args.steps, png)
    rows = "\n".join(
        f"| {r['seed']} | {r['window_mean']:.1f} | {r['window_mean'] / cp_ref['mean_return']:.1f}× "
        f"| {r['worst10']:.1f} | {len(r['returns'])} | {r['learn_steps_per_s']:.0f} |"
        for r in cp
    )
    arows = "\n".join(
        f"| {r['seed']} | {r['window_mean']:.1f} | {ac_ref['window_mean']:.1f} | "
        f"{r['window_mean'] / ac_ref['window_mean']:.2f} | {r['worst10']:.1f} | {len(r['returns'])} |"
        for r in ac
    )
    sps = [run["learn_steps_per_s"] for run in cp]
    body = f"""## Stream Q(λ) with shipped defaults: CartPole-v1 (10 seeds) and Acrobot-v1

Command: `{command()}`
Machine: {machine()}
Setup: `StreamQ(n_actions=n, seed=s)` and nothing else: the shipped defaults (α = 1, κ = 2,
γ = 0.99, λ = 0.8, hidden {HIDDEN}, ε 1 → 0.01 over the first 5,000 decisions, time feature
for episodes capped at 500, observation normalisation, reward scaling with the output layer
rescaled whenever the scale moves), driven through the
service path `step(agent, episode, obs, reward, done, truncated)`: an episode cut at the
500-step cap bootstraps from its last observation, only a real termination has value 0.
Defaults studied on seeds 0–59 (CartPole) and 0–11 (Acrobot), checked on CartPole 60–99 and
Acrobot 12–23; these seeds were not used for any choice (but see the disclosure below). Reference in the same run: a uniformly random policy
(CartPole mean return {cp_ref["mean_return"]:.1f}, bare environment
{cp_ref["env_steps_per_s"]:.0f} steps/s).

**CartPole-v1** (cap 500). "worst stretch" = lowest mean of 10 consecutive episodes ending
after step {args.steps // 2} (a collapse shows here).

| seed | mean return, episodes ending in steps {lo}–{hi} | × random policy | worst stretch | episodes | learner steps/s |
|---|---|---|---|---|---|
{rows}

**{n400}/{len(cp)} seeds ≥ 400, {n300} below 300** (target: ≥ 9/10, none below 300).
Learner speed (time inside `StreamQ.step`, one process, shared machine): median
{np.median(sps):.0f} steps/s, {np.median(sps) / cp_ref["env_steps_per_s"]:.2f}× the bare
environment's stepping rate (load average {load_start:.1f} when the run started,
{os.getloadavg()[0]:.1f} when it ended, on 2 cores: compare speeds across runs with care).
Collapses (returns falling to ~10 for thousands of steps) and their two causes found so far
(the cap taken as terminal; the reward scale moving under stale outputs): see the `StreamQ`
docstring and the disclosure below.

**Acrobot-v1** (3 actions, reward -1 per step until the tip swings above the bar, cap 500;
seeds 0–11 checked the choices, 12–23 the rescaling, these were not used). Random policy in the same run: {ac_ref["mean_return"]:.1f} mean return
over all its episodes, {ac_ref["window_mean"]:.1f} in the same step window.

| seed | StreamQ mean return, steps {lo}–{hi} | random policy, same window | ratio (lower = better, returns are negative) | worst stretch | episodes |
|---|---|---|---|---|---|
{arows}

![learning curves](cartpole-learning-curves.png)

{DISCLOSURE}
With the rescaling and {HIDDEN} on the report seeds (tables above): {n400}/{len(cp)} ≥ 400,
{n300} below 300, so the issue 11 target (≥ 9/10, none below 300) is {"met" if n400 >= 0.9 * len(cp) and n300 == 0 else "not met"}.
"""
    print("wrote", write_section("cartpole", body))


if __name__ == "__main__":
    main()
