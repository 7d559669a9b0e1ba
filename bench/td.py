"""Stream TD(λ) prediction checks: the 19-state random walk and a drifting sensor stream.

1. Random walk (Sutton & Barto): 19 states, start in the middle, ±1 at the ends, γ = 1, one-hot
   observations; true values -0.9 … 0.9. Bar: RMS value error falls below 0.1. Reference in
   the same run: tabular TD(λ) (λ = 0.5, α = 0.05).
2. Drifting sensor: a continuing stream (never ``done``), reading c_t = level + seasonal +
   noise whose level jumps at 40% and drifts linearly after 70% of the stream; observations
   (phase sin/cos, current and previous reading), cumulant c_{t+1}, γ = 0.9. The true
   discounted future sum is computed offline. Reference in the same run: an exponential
   moving average of the reading times 1/(1-γ) (tracks drift, ignores the season).

    python -m bench.td --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import math

import numpy as np
from tqdm import tqdm

from bench.streamx_common import command, machine, write_section
from models.streamx import StreamTD

N_STATES = 19
TRUE_V = np.arange(1, N_STATES + 1) / (N_STATES + 1) * 2 - 1


def walk_episode(rng: np.random.Generator):
    s = N_STATES // 2
    while True:
        s2 = s + (1 if rng.random() < 0.5 else -1)
        if s2 < 0 or s2 >= N_STATES:
            yield s, (1.0 if s2 >= N_STATES else -1.0), s, True
            return
        yield s, 0.0, s2, False
        s = s2


def random_walk(seed: int, episodes: int, kw: dict, bar: tqdm) -> dict:
    eye = np.eye(N_STATES)
    td = StreamTD(gamma=1.0, seed=seed, **kw)
    tab, z = np.zeros(N_STATES), np.zeros(N_STATES)
    rng = np.random.default_rng(seed + 1000)
    errs, tab_errs = [], []
    for ep in range(episodes):
        z[:] = 0
        for s, r, s2, done in walk_episode(rng):
            td.learn_one(eye[s], r, eye[s2], done)
            delta = r + (0.0 if done else tab[s2]) - tab[s]  # tabular TD(0.5) reference
            z *= 0.5
            z[s] += 1
            tab += 0.05 * delta * z
        if ep % 10 == 9:
            v = np.array([td.predict_one(eye[i]) for i in range(N_STATES)])
            errs.append(math.sqrt(np.mean((v - TRUE_V) ** 2)))
            tab_errs.append(math.sqrt(np.mean((tab - TRUE_V) ** 2)))
        bar.update(1)
    tail = max(1, len(errs) // 5)
    first = next((10 * (i + 1) for i, e in enumerate(errs) if e < 0.1), None)
    return {"final": float(np.mean(errs[-tail:])), "min": float(min(errs)), "first": first,
            "ref_final": float(np.mean(tab_errs[-tail:])), "steps": td.n_learned}


def sensor(seed: int, steps: int, bar: tqdm) -> dict:
    rng = np.random.default_rng(seed)
    gamma, period = 0.9, 50
    t = np.arange(steps + 2)
    level = np.where(t < 0.4 * steps, 1.0, 3.0) + np.where(t > 0.7 * steps, (t - 0.7 * steps) / steps * 5, 0)
    c = level + np.sin(2 * np.pi * t / period) + 0.3 * rng.normal(size=t.shape)
    G = np.zeros(steps + 2)  # G[t] = Σ_k γ^k c[t+k+1]
    for i in range(steps, -1, -1):
        G[i] = c[i + 1] + gamma * G[i + 1]
    td = StreamTD(gamma=gamma, seed=seed)
    pred, ema, ref = np.zeros(steps), c[0], np.zeros(steps)
    for i in range(steps):
        obs = [math.sin(2 * np.pi * i / period), math.cos(2 * np.pi * i / period), c[i], c[i - 1] if i else c[0]]
        pred[i] = td.step("sensor", "stream", obs, c[i] if i else 0.0, False)["value"]
        ema += 0.02 * (c[i] - ema)
        ref[i] = ema / (1 - gamma)
        if i % 100 == 0:
            bar.update(100)
    skip = steps // 10  # warm-up excluded (the first 10% of the stream)
    seg = slice(skip, steps - 30)  # the true return is exact only away from the end
    after = slice(int(0.4 * steps), int(0.4 * steps) + steps // 10)
    rmse = lambda p, s: float(np.sqrt(np.mean((p[s] - G[:steps][s]) ** 2)))  # noqa: E731
    return {"rmse": rmse(pred, seg), "ref_rmse": rmse(ref, seg), "jump_rmse": rmse(pred, after),
            "ref_jump_rmse": rmse(ref, after), "std_G": float(G[seg].std())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--episodes", type=int, default=500, help="random-walk episodes per run")
    ap.add_argument("--sensor-steps", type=int, default=30_000)
    ap.add_argument("--no-doc", action="store_true")
    args = ap.parse_args()
    configs = {
        "StreamTD(κ=16, λ=0.5, scale_reward=False)": dict(kappa=16.0, lam=0.5, scale_reward=False),
        "StreamTD defaults (κ=2, λ=0.8, reward scaling)": {},
    }
    total = len(args.seeds) * (len(configs) * args.episodes + args.sensor_steps)
    rw: dict[str, list[dict]] = {k: [] for k in configs}
    sens = []
    with tqdm(total=total, desc="stream TD(λ)", mininterval=1.0) as bar:
        for seed in args.seeds:
            for name, kw in configs.items():
                rw[name].append(random_walk(seed, args.episodes, kw, bar))
            sens.append(sensor(seed, args.sensor_steps, bar))
    lines = []
    for name, runs in rw.items():
        for s, r in zip(args.seeds, runs, strict=True):
            line = (f"| {name} | {s} | {r['final']:.3f} | {r['min']:.3f} | {r['first']} | "
                    f"{r['ref_final']:.3f} | {r['final'] / r['ref_final']:.2f} |")
            lines.append(line)
            print(line)
    srows = []
    for s, r in zip(args.seeds, sens, strict=True):
        row = (f"| {s} | {r['rmse']:.3f} | {r['ref_rmse']:.3f} | {r['rmse'] / r['ref_rmse']:.2f} | "
               f"{r['jump_rmse']:.3f} | {r['ref_jump_rmse']:.3f} | {r['std_G']:.2f} |")
        srows.append(row)
        print(row)
    if args.no_doc:
        return
    rows = "\n".join(lines)
    body = f"""## Stream TD(λ): 19-state random walk and a drifting sensor stream

Command: `{command()}`
Machine: {machine()}

**Random walk** (19 states, γ = 1, one-hot observations, {args.episodes} episodes per run,
`learn_one` path). RMS error over the 19 states, evaluated every 10 episodes; "final" = mean
of the last 20% of evaluations; "first < 0.1" = first episode count with error below 0.1.
Reference in the same run: tabular TD(λ=0.5, α=0.05) on the same episodes.

| learner | seed | final RMS | min RMS | first < 0.1 | tabular final RMS | ratio to tabular |
|---|---|---|---|---|---|---|
{rows}

With lr = 1 the ObGD step is set by the bound, i.e. by κ alone; the default κ = 2 (tuned for
control) leaves a noise floor on this tabular-like task, and reward scaling with γ = 1 (a
return trace that is mostly 0) adds noise. A larger κ is the knob for quiet prediction.

**Drifting sensor** ({args.sensor_steps} steps, never `done`, `step()` path, default
`StreamTD(gamma=0.9)`). RMSE of the predicted discounted future sum vs. the true one, after a
10% warm-up; "after jump" = the 10% of the stream following the level jump.
Reference in the same run: EMA(reading, 0.02) / (1 - γ).

| seed | StreamTD RMSE | reference RMSE | ratio | StreamTD after jump | reference after jump | std of true G |
|---|---|---|---|---|---|---|
{chr(10).join(srows)}
"""
    print("wrote", write_section("td", body))


if __name__ == "__main__":
    main()
