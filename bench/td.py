"""Stream TD(λ) prediction with shipped defaults: random walks of several sizes and γ, and a
drifting sensor stream.

1. Random walks (Sutton & Barto): n states, start in the middle, +1 at the right end and 0
   (or -1: a separate task) at the left end, episodic, one-hot observations, γ = 1 or 0.99.
   True values by solving the Bellman equations. Bar (issue 11): RMS error < 0.1 after
   ``--steps`` transitions on the 5- and 19-state walks. References in the same run, on the
   same episodes: tabular TD(λ = 0.5, α = 0.05) and predicting 0 everywhere.
2. Drifting sensor: a continuing stream (never ``done``), reading c_t = level + seasonal +
   noise whose level jumps at 40% and drifts linearly after 70% of the stream; observations
   (phase sin/cos, current and previous reading), cumulant c_{t+1}, γ = 0.9. The true
   discounted future sum is computed offline. Reference in the same run: an exponential
   moving average of the reading times 1/(1-γ) (tracks drift, ignores the season).

The defaults were chosen on seeds 0–9; report on seeds never used for that:

    python -m bench.td --seeds 100 101 102
    python -m bench.td --seeds $(seq -s " " 1000 1039) --sizes 5 19 --section td-fresh
"""

from __future__ import annotations

import argparse
import itertools
import math

import numpy as np
from tqdm import tqdm

from bench.streamx_common import command, machine, write_section
from models.streamx import StreamTD

SIZES = (5, 7, 11, 19, 31)
GAMMAS = (1.0, 0.99)
LEFT_REWARDS = (0.0, -1.0)


def true_values(n: int, gamma: float, left: float) -> np.ndarray:
    """v = P(r + γ v) for the symmetric walk with absorbing ends."""
    P, b = np.zeros((n, n)), np.zeros(n)
    for i in range(n):
        for j in (i - 1, i + 1):
            if j < 0:
                b[i] += 0.5 * left
            elif j >= n:
                b[i] += 0.5
            else:
                P[i, j] += 0.5
    return np.linalg.solve(np.eye(n) - gamma * P, b)


def walk(n: int, left: float, seed: int, steps: int):
    """The transitions (s, r, s', done) of episodes from the middle state, ``steps`` in all."""
    rng = np.random.default_rng(seed + 1000)
    t = 0
    while t < steps:
        s = n // 2
        while t < steps:
            s2 = s + (1 if rng.random() < 0.5 else -1)
            done = s2 < 0 or s2 >= n
            yield s, ((1.0 if s2 >= n else left) if done else 0.0), min(max(s2, 0), n - 1), done
            t += 1
            if done:
                break
            s = s2


def model_values(n: int, gamma: float, transitions) -> np.ndarray:
    """Values of the maximum-likelihood model of the transitions seen (LSTD(0) on one-hot
    states): the walk's estimated transition probabilities and mean rewards, solved exactly.
    No step size and no forgetting: what these transitions tell a learner with no prior."""
    visits, moves, rewards = np.zeros(n), np.zeros((n, n)), np.zeros(n)
    for s, r, nxt, done in transitions:
        visits[s] += 1
        rewards[s] += r
        if not done:
            moves[s, nxt] += 1
    seen = np.maximum(visits, 1)
    return np.linalg.solve(np.eye(n) - gamma * moves / seen[:, None], rewards / seen)


def model_rms(n: int, gamma: float, left: float, seed: int, steps: int) -> float:
    """RMS error of the maximum-likelihood model's values on seed ``seed``'s walk."""
    err = model_values(n, gamma, walk(n, left, seed, steps)) - true_values(n, gamma, left)
    return float(np.sqrt(np.mean(err**2)))


ENCODINGS = ("onehot", "index")


def random_walk(n: int, gamma: float, left: float, seed: int, steps: int, bar: tqdm,
                skip: bool = True, encoding: str = "onehot") -> dict:
    """Shipped-default StreamTD vs tabular TD(λ) and the maximum-likelihood model on the same
    transitions; RMS at the end. ``skip=False``: the network without its linear skip path.
    ``encoding="index"``: StreamTD sees each state as one number, its index / (n - 1), instead
    of one-hot (the references are tabular either way)."""
    eye = np.eye(n) if encoding == "onehot" else (np.arange(n) / (n - 1))[:, None]
    tv = true_values(n, gamma, left)
    td = StreamTD(gamma=gamma, seed=seed, skip=skip)
    tab, z = np.zeros(n), np.zeros(n)
    seen = []
    for s, r, nxt, done in walk(n, left, seed, steps):
        seen.append((s, r, nxt, done))
        td.learn_one(eye[s], r, eye[nxt], done)
        delta = r + (0.0 if done else gamma * tab[nxt]) - tab[s]
        z *= gamma * 0.5
        z[s] += 1.0
        tab += 0.05 * delta * z
        if done:
            z[:] = 0.0
    bar.update(steps)
    v = np.array([td.predict_one(eye[i]) for i in range(n)])
    rms = lambda p: float(np.sqrt(np.mean((p - tv) ** 2)))  # noqa: E731
    return {"rms": rms(v), "tab": rms(tab), "zero": rms(np.zeros(n)),
            "model": rms(model_values(n, gamma, seen))}


def sensor(seed: int, steps: int, bar: tqdm, skip: bool = True) -> dict:
    rng = np.random.default_rng(seed)
    gamma, period = 0.9, 50
    t = np.arange(steps + 2)
    level = np.where(t < 0.4 * steps, 1.0, 3.0) + np.where(t > 0.7 * steps, (t - 0.7 * steps) / steps * 5, 0)
    c = level + np.sin(2 * np.pi * t / period) + 0.3 * rng.normal(size=t.shape)
    G = np.zeros(steps + 2)  # G[t] = Σ_k γ^k c[t+k+1]
    for i in range(steps, -1, -1):
        G[i] = c[i + 1] + gamma * G[i + 1]
    td = StreamTD(gamma=gamma, seed=seed, skip=skip)
    pred, ema, ref = np.zeros(steps), c[0], np.zeros(steps)
    for i in range(steps):
        obs = [math.sin(2 * np.pi * i / period), math.cos(2 * np.pi * i / period), c[i], c[i - 1] if i else c[0]]
        pred[i] = td.step("sensor", "stream", obs, c[i] if i else 0.0, False)["value"]
        ema += 0.02 * (c[i] - ema)
        ref[i] = ema / (1 - gamma)
        if i % 100 == 99:
            bar.update(100)
    skip = steps // 10  # warm-up excluded (the first 10% of the stream)
    seg = slice(skip, steps - 30)  # the true return is exact only away from the end
    after = slice(int(0.4 * steps), int(0.4 * steps) + steps // 10)
    rmse = lambda p, s: float(np.sqrt(np.mean((p[s] - G[:steps][s]) ** 2)))  # noqa: E731
    return {"rmse": rmse(pred, seg), "ref_rmse": rmse(ref, seg), "jump_rmse": rmse(pred, after),
            "ref_jump_rmse": rmse(ref, after), "std_G": float(G[seg].std())}


def worst_case(n: int, gamma: float, left: float, seed: int, steps: int) -> str:
    """The model's worst seed in words: how its episodes ended and the offset that left."""
    err = model_values(n, gamma, walk(n, left, seed, steps)) - true_values(n, gamma, left)
    ends = [nxt for _, _, nxt, done in walk(n, left, seed, steps) if done]
    n_left = sum(e == 0 for e in ends)
    return (f"its worst case, seed {seed} of the {n}-state {left:+g}/+1 γ = {gamma:g} walk: "
            f"{len(ends)} episodes, {n_left} ending left and {len(ends) - n_left} right, and the "
            f"values estimated from them are off by {err.mean():+.3f} on average over the "
            f"states (RMS {np.sqrt(np.mean(err**2)):.3f})")


def floor_section(rows: list[str], worst: str, args: argparse.Namespace) -> str:
    """The page's paragraph on how often the transitions themselves allow no RMS below 0.1."""
    if not rows:
        return ""
    return f"""
**How often can the target be met at all?** The maximum-likelihood model alone on seeds
0–{args.floor_seeds - 1} of each walk ({args.steps} transitions each; the model needs no
tuning, so these seeds choose nothing). Where it misses, its error is almost all a common
offset that comes from the episodes' outcomes themselves; {worst}. A learner that does not
already know the walk is symmetric cannot undo that, so "below 0.1" cannot hold on every
seed of such a walk at this length; what a learner can be held to there is its ratio to this
model on the same transitions (the table above).

| states | γ | rewards left / right | ML model RMS (mean) | 95th percentile | worst | seeds at or above 0.1 |
|---|---|---|---|---|---|---|
{chr(10).join(rows)}
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=[100, 101, 102])
    ap.add_argument("--steps", type=int, default=20_000, help="transitions per random-walk run")
    ap.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    ap.add_argument("--sensor-steps", type=int, default=30_000)
    ap.add_argument("--floor-seeds", type=int, default=200,
                    help="also the maximum-likelihood model alone on seeds 0..N-1 of each 5- and "
                    "19-state walk (how often these transitions themselves allow no RMS below 0.1)")
    ap.add_argument("--no-skip", action="store_true",
                    help="StreamTD without its linear skip path (skip=False), for comparison; "
                    "implies --no-doc")
    ap.add_argument("--encoding", choices=ENCODINGS, default="onehot",
                    help="how StreamTD sees a walk's state: one-hot (default) or its index as one "
                    "number; anything but one-hot implies --no-doc")
    ap.add_argument("--no-doc", action="store_true")
    ap.add_argument("--section", default="td", help="section of docs/bench-streamx.md to (re)write")
    args = ap.parse_args()
    tasks = list(itertools.product(args.sizes, GAMMAS, LEFT_REWARDS))
    total = len(args.seeds) * (len(tasks) * args.steps + args.sensor_steps)
    walks: dict[tuple, list[dict]] = {task: [] for task in tasks}
    sens = []
    with tqdm(total=total, desc="stream TD(λ)", unit="step", mininterval=1.0) as bar:
        for seed in args.seeds:
            for task in tasks:
                walks[task].append(random_walk(*task, seed, args.steps, bar, skip=not args.no_skip,
                                               encoding=args.encoding))
            sens.append(sensor(seed, args.sensor_steps, bar, skip=not args.no_skip))
    lines, n_pass, n_bar, n_model, n_avoidable = [], 0, 0, 0, 0
    for (n, gamma, left), runs in walks.items():
        rms = [r["rms"] for r in runs]
        model = [r["model"] for r in runs]
        tab = float(np.mean([r["tab"] for r in runs]))
        zero = runs[0]["zero"]
        if n in (5, 19):
            n_bar += len(rms)
            n_pass += sum(e < 0.1 for e in rms)
            n_model += sum(m < 0.1 for m in model)
            n_avoidable += sum(e >= 0.1 > m for e, m in zip(rms, model, strict=True))
        line = (f"| {n} | {gamma:g} | {left:+g} / +1 | {np.mean(rms):.3f} | {max(rms):.3f} | "
                f"{np.mean(model):.3f} | {max(model):.3f} | {np.mean(rms) / np.mean(model):.2f} | "
                f"{tab:.3f} | {np.mean(rms) / tab:.2f} | {zero:.3f} | {np.mean(rms) / zero:.2f} |")
        lines.append(line)
        print(line)
    floor_rows, worst = [], (0.0, "")
    if args.floor_seeds:
        for n, gamma, left in tasks:
            if n not in (5, 19):
                continue
            errs = np.array([model_rms(n, gamma, left, s, args.steps) for s in range(args.floor_seeds)])
            row = (f"| {n} | {gamma:g} | {left:+g} / +1 | {errs.mean():.3f} | {np.quantile(errs, 0.95):.3f} | "
                   f"{errs.max():.3f} | {int((errs >= 0.1).sum())} of {len(errs)} |")
            floor_rows.append(row)
            print(row)
            if errs.max() > worst[0]:
                worst = (float(errs.max()), worst_case(n, gamma, left, int(errs.argmax()), args.steps))
    srows = []
    for s, r in zip(args.seeds, sens, strict=True):
        row = (f"| {s} | {r['rmse']:.3f} | {r['ref_rmse']:.3f} | {r['rmse'] / r['ref_rmse']:.2f} | "
               f"{r['jump_rmse']:.3f} | {r['ref_jump_rmse']:.3f} | {r['std_G']:.2f} |")
        srows.append(row)
        print(row)
    print(f"{n_pass}/{n_bar} runs on the 5- and 19-state walks below 0.1 (the maximum-likelihood model: "
          f"{n_model}/{n_bar}; StreamTD at or above 0.1 where the model is below: {n_avoidable})")
    if args.no_doc or args.no_skip or args.encoding != "onehot":
        return
    title = "" if args.section == "td" else f" — seeds {args.seeds[0]}–{args.seeds[-1]}"
    body = f"""## Stream TD(λ): random walks and a drifting sensor stream (shipped defaults){title}

Command: `{command()}`
Machine: {machine()}

**Random walks** (one-hot states, start in the middle, +1 at the right end and 0 or -1 at
the left end, episodic; {args.steps} transitions per run through `learn_one`; seeds
{", ".join(map(str, args.seeds))}, not used to choose the defaults, which were set on seeds
0–9). Learner: `StreamTD(gamma=γ, seed=s)`, everything else default (κ = 8, λ = 0.5, a
linear skip path from the inputs to the output, reward scale floored at the mean size of the non-zero cumulants (1 on these walks), predictions from the average of the weights since the last restart (step k weighted ∝ k), an
EMA of horizon 10k steps once it is 20k steps old, restarted when live and average differ by more than 4
RMS TD errors). RMS error over
the states after the last transition, mean and worst over seeds. References in the same
run on the same transitions: the **maximum-likelihood model** (the transitions' counts
solved exactly for the values, i.e. LSTD(0) on one-hot states: no step size and nothing
forgotten; not a strict floor, since a learner whose prior suits the walk can beat it on
short runs), tabular TD(λ = 0.5, α = 0.05) and predicting 0.

| states | γ | rewards left / right | StreamTD RMS (mean) | worst seed | ML model RMS (mean) | ML model worst | ratio to ML model | tabular TD(λ) RMS | ratio to tabular | predict-0 RMS | ratio to predict-0 |
|---|---|---|---|---|---|---|---|---|---|---|---|
{chr(10).join(lines)}

**{n_pass}/{n_bar} runs on the 5- and 19-state walks below 0.1** (target: all). The
maximum-likelihood model is below 0.1 on {n_model}/{n_bar}; StreamTD is at or above 0.1 on
{n_avoidable} run(s) where the model is below.
{floor_section(floor_rows, worst[1], args)}
Most of the remaining error is a common offset of all states' values (the shared layers
move every state's value at each update and, with γ = 1, an episode's TD errors add up to
its Monte-Carlo error), which wanders over ~100 episodes; it grows with the reward range
(-1 / +1 rows) and is why the network is noisier than tabular TD on some walks. See the
StreamTD docstring (`models/streamx/td.py`).

**Tried after this, not shipped (issue 11, second pass; defaults unchanged).** Tuning seeds
0–9 are harder than the report seeds on the 19-state -1/+1 γ = 1 walk: 0.088 mean, 0.140
worst with these defaults. (1) A smaller step for the common offset: the part of each step
along the running mean of ∇v (which moves the visit-weighted mean value) multiplied by
c = max(min(1, ρ/0.1), 50/(50 + e)), ρ = running mean of 1 - γ(1 - done) (how much a TD error
responds to a common offset: 0 inside a γ = 1 episode), e its sum since the last restart.
Seeds 0–9: -1/+1 γ = 1 0.070/0.114, -1/+1 γ = 0.99 0.050/0.081 (was 0.066/0.133), 0/+1 γ = 1
0.056/0.085 (was 0.050/0.072), sensor unchanged. It did not hold on the report seeds:
100–102 -1/+1 γ = 1 0.068/0.103 (23/24 below 0.1), 200–204 0.075/0.132 (39/40), so it was
reverted. Variants on seeds 0–9 (-1/+1 γ = 1 unless said): a constant c = 0.1 0.055/0.089
but sensor RMSE 1.6–1.8 (1.2–1.3), and c = ρ/0.1 alone (~0.1 on this walk, 1 on the sensor)
0/+1 0.225 (the offset hardly leaves its initial value); c = 0.3 0.063/0.103; c = ρ/0.03
0.069/0.139 (0/+1 0.082); per-transition c = 1 - γ(1 - done) 0.085/0.227 (0/+1 0.121); E = 20 or 100 instead of 50 0/+1 0.078 or
-1/+1 0.081/0.138. (2) Knobs of the current scheme: κ 4 / 16 0.163 / 0.115, λ 0 / 0.8
0.100 / 0.119, average unbounded / 3k steps 0.087 / 0.111, averaging only the last half
since the restart 0.089/0.133. (3) The restart test: on seeds 0–9 it fires 1–3 times per
19-state run on noise (RMS TD error ~0.1, a single state's live-vs-average gap beyond 0.4);
a late one leaves predictions on the young average (seed 3: restart at step 18,008, RMS
0.140). Never restarting 0.088/0.124; restarting at 8 RMS TD errors 0.088/0.124 but 0/+1
0.081/0.131 (restarts shed the initial transient); testing a 20-step mean of the squared or
signed gap 0.094/0.137 or 0.089/0.124, sensor RMSE +2–7%; a threshold growing with the
average's age, 16·(1 + n/10k), 0.085/0.125 (0/+1 0.047/0.077); a soft restart (the average's
count ÷ 10, a hard restart only once it is below 10) 0.086/0.139: none kept (within seed
noise). Without restarts seed 3 gets 0.084 (0.140 with), seed 301 from a random start 0.041
(0.205), but seed 4 0.124 (0.101).

Robustness of the shipped defaults, seeds 300–304 (never used), mean / worst RMS: 19 states
-1/+1 γ = 1 after 10k transitions 0.106/0.173, after 50k 0.028/0.052; 0/+1 10k 0.082/0.146,
50k 0.013/0.021; 5 states -1/+1 10k 0.028/0.050; 19 states -1/+1 starting in a random state
0.085/0.205, starting in state 3 0.078/0.199 (both worst cases: seed 301, a restart at step
19,928 or 18,193 onto the live weights); through `step()` γ = 1 0.053/0.078, γ = 0.99
0.036/0.047. So the bar holds at 20k+ transitions from the middle start, not at 10k
transitions on 19 states, and a late noise-triggered restart can put a run at ~0.2.

**Tried next (session 10), not shipped; defaults unchanged** (chosen on seeds 0–9 only). (1)
Restart the average on a paired test instead of a single state's gap: an EMA over 100–200
transitions of δ_avg² − δ_live² (the averaged and the live weights' TD errors on the same
transitions) against the mean δ². Seeds 0–9: 19 states -1/+1 γ = 1 0.081/0.124 (0.088/0.140
with the defaults), -1/+1 γ = 0.99 0.057/0.092 (0.066/0.133); but the sensor stream needs ~220
restarts per run and its RMSE rose 20–65 %. (2) A second average that restarts only on that
paired test, predictions from whichever of the two the test favours: seeds 0–9 0.085/0.124,
-1/+1 γ = 0.99 0.058/0.092, sensor unchanged (1.254 vs 1.233); on the report seeds it lost:
100–102 23/24 below 0.1 (0/+1 γ = 1 worst 0.109, was 0.039; 31 states -1/+1 γ = 1 0.252, was
0.198), 200–204 38/40 (worst 0.116, was 0.100), 300–304 at 10k transitions worst 0.265 (0.173).
Why: with γ = 1 a common offset of all values cancels inside an episode's TD errors, so a
TD-error test tells noise from a level shift but not which average carries the smaller
offset, the error that dominates; telling two offsets 0.05 apart from returns alone would take
~1,000 episodes, a 20k-step 19-state run has ~220. What remains is to make the offset itself
wander less.

**Session 14: measured against the maximum-likelihood model, and four more attempts (not
shipped; defaults unchanged).** On seeds 0–39 of the 19-state -1/+1 γ = 1 walk the shipped
defaults give 0.073 mean RMS, 8 of 40 runs above 0.1; tabular TD(λ) 0.055 (4 of 40); the
maximum-likelihood model 0.047 (2 of 40; on seeds 0–199, 10 of 200). So StreamTD's error is
~1.5 times what these transitions allow, and even the model misses 0.1 on ~5% of seeds. (1)
An LSTD(λ) head (least squares over the averaged network's last hidden layer, regularised
toward its output weights, reset with the average): seeds 0–5 0.13 mean, against 0.093 for
the defaults; the hidden features move while the sums that LSTD keeps were built from older
ones. (2) Annealing the step since the last restart (κ·(1 + n/N)): N = 2,000 0.247, N = 5,000
0.109 on seeds 0–39: the network is still converging at 20k steps, so smaller steps add more
bias than they remove noise. (3) Calibrating the offset on completed episodes' returns
(every-visit Monte-Carlo error of the averaged predictor, with a correction for how its
predictions moved since): seeds 0–11 0.110 (0.102 shrunk by the estimate's own variance)
against 0.093: Monte-Carlo returns since a restart are a noisier witness of the offset than
the bootstrapped values. (4) Knobs on seeds 0–39: restart at 8 RMS TD errors 0.082, an
average of horizon 20k 0.074, λ = 0.7 0.083 (defaults 0.073); a restart only when the gap
test fires *and* the average's recent TD errors exceed the live weights' 0.070 (fresh seeds
1000–1039: 0.076, defaults 0.077). Diagnosis for whoever comes next: on seeds 1 and 10 the
~17,800 interior transitions add 0.139 and 0.117 to the variance of the live weights' common
offset, the ~160 terminal ones 0.011 and 0.008, although with γ = 1 an interior TD error says
nothing about a common offset. The offset is a random walk driven by the network's coupling
and pinned only at episode ends. A fix has to stop interior updates from moving it while
letting episode ends set it at a sample-average rate; the one-direction projection tried
before (see above) did the first and then learned the offset too slowly.

**Session 15: a linear skip path (shipped).** The network now has a linear path from the
normalised inputs straight to the output, learned with the rest (`StreamTD(skip=True)`, the
default; see `MLP`). On one-hot states it is a table of values learned like tabular TD, so a
state's value no longer has to pass through weights shared with every other state, which is
where the wandering offset came from. Chosen on seeds 0–39 of the 19-state -1/+1 γ = 1 walk
(0.073 → 0.058 mean RMS, 8 → 6 of 40 above 0.1) and seeds 0–9 of every walk; checked on
fresh seeds 2000–2039 (`python -m bench.td --seeds 2000 … 2039 --sizes 5 19 --floor-seeds 0
--no-doc`, and the same with `--no-skip` for the network without it), mean / worst RMS:

| walk | with the skip path | without |
|---|---|---|
| 19 states, -1/+1, γ = 1 | 0.050 / 0.166 | 0.065 / 0.184 |
| 19 states, -1/+1, γ = 0.99 | 0.033 / 0.097 | 0.043 / 0.117 |
| 19 states, 0/+1, γ = 0.99 | 0.023 / 0.072 | 0.030 / 0.076 |
| 19 states, 0/+1, γ = 1 | 0.035 / 0.082 | 0.036 / 0.094 |
| 5 states, -1/+1, γ = 1 | 0.032 / 0.062 | 0.025 / 0.052 |
| 5 states, -1/+1, γ = 0.99 | 0.031 / 0.067 | 0.023 / 0.038 |
| all 320 runs on 5 and 19 states below 0.1 | 319 | 315 |
| drifting sensor, mean RMSE (reference 5.448) | 1.214 | 1.236 |

The ratio to the maximum-likelihood model on the hard walk fell from 1.70 to 1.31. The 5-state
±1 walks lost a little (still under 0.07 on every seed). Tried on the same tuning seeds and not
kept: a restart test on a 30-step EMA of the squared gap (0.065 on seeds 0–39, but the sensor's
RMSE +6% and +10% after its jump, as in session 10), first-layer biases drawn like the weights
with at least one input kept per unit (19 states 0.103 against 0.077 on seeds 2000–2009, both
without the skip path), and holding the visit-weighted mean value still on interior transitions
(0.071 against 0.073 on seeds 0–39, without the skip path: within noise). Still weak: a walk whose
state is given as one number (its index; `--encoding index`), where the layers' LayerNorm sees
only the sign of a one-dimensional input at first: 19 states -1/+1 γ = 1 0.127 mean with the
skip path, 0.184 without (seeds 2000–2009).

**Session 17: the weight average counts later steps more (shipped).** An independent check
(its own Markov reward processes, not in this repository; seeds 3000–3009, 20k transitions,
shipped defaults) found StreamTD's error 9.6x the least-squares (LSTD) estimate's on a Boyan
chain (13 states, 4 interpolated features, values 0 to -24: 0.239 mean RMS, 0 of 10 runs below
0.1, still falling), 2x on a continuing 10-state MRP with γ = 0.95, and 0.133 on the 19-state
-1/+1 walk given as one number. In each case the averaged weights still held the early,
far-off weights of the transient, or restarted onto the live ones. The average now weights
step k in proportion to k (polynomial-decay averaging, Shamir & Zhang 2013: a
tail-weighted mean with 4/3 of the uniform mean's variance). Chosen on seeds 0–4 of those
tasks and 0–9 of this page's walks; on the check's seeds 3000–3009 (mean / worst RMS, ad-hoc
scripts outside the repository, the check's generators):

| task | uniform mean (before) | weighted mean (now) | LSTD on the same transitions |
|---|---|---|---|
| Boyan chain | 0.239 / 0.321 (0 of 10 below 0.1) | 0.155 / 0.242 (2 of 10) | 0.027 |
| continuing MRP, γ = 0.95, rewards ×1 | 0.288 / 0.716 | 0.224 / 0.407 | 0.142 |
| the same, rewards ×1000 | 312 / 716 | 237 / 412 | 142 |
| 19 states -1/+1 γ = 1, state as one number | 0.133 / 0.297 (4 of 10) | 0.116 / 0.158 (3 of 10) | 0.038 |
| 19 states 0/+1 γ = 0.99, state as one number | 0.077 / 0.142 (8 of 10) | 0.073 / 0.148 (9 of 10) | 0.094 |
| 19 states -1/+1 γ = 1, three tilings | 0.085 / 0.110 (9 of 10) | 0.086 / 0.114 (9 of 10) | 0.154 |
| this page's one-hot walks (5 and 19 states, 8 walks), seeds 3000–3019 | 0.033 mean, 158 of 160 below 0.1 | 0.030 mean, 158 of 160 | |

Seeds 0–4 of the sensor: RMSE 1.193 → 1.206, after the jump 2.534 → 2.599 (+1%, +3%). Still
missed: an absolute 0.1 on the Boyan chain (its values span 24, and the transient is still
being averaged out at 20k steps) and on the continuing MRP, where even LSTD is above 0.1 on 6
of 10 seeds; the state given as one number stays the weakest encoding (restarts of the average
fire 8–15 times per run there, on noise).

**Session 20: random Fourier inputs for observations of one to three values (shipped).** An
independent check (its own tasks, not in this repository: a continuous 1-D walk, a noisy and a
sparse 1-D signal, mountain car under a fixed policy, Markov reward processes with γ from 0.9 to
0.999; seeds 6000–6009, 30k transitions) found one-number states learned ~3x worse than linear TD
on RBF features: with one input, the first layer's LayerNorm output spans two directions
whatever the weights. Observations of at most 3 values now get 64 features cos(ω·x̂ + b) of the
normalised observation (ω ~ N(0, s²), s cycling over 0.5, 1, 2, 4), appended to it (`fourier`; 0
turns them off). Chosen on seeds 6300–6304; on 6000–6009 (mean RMS over the last 20%, ad-hoc
scripts outside the repository, the check's generators; in brackets linear TD on RBF features
with its best step size, then least squares): 1-D walk 0.53 → 0.15 (0.19, 0.09), noisy signal
20.3 → 8.4 (6.7, 4.8), sparse reward 0.49 → 0.24 (0.27, 0.13), mountain car 10.6 → 8.6 (8.4,
8.0); the earlier check's tasks (seeds 5000–5009): noisy sensor 1.19 → 0.68, the 19-state walk
given as its index 0.18 → 0.07, a ring given as an angle 0.10 → 0.06; one-hot tasks unchanged.
Worse: a cumulant on a constant level of 1e4 (22 → 155, both worse than its mean, 10.5). The
mean squared TD error of the restart test now outlives restarts (restarted with the average,
it came from a few correlated steps and restarts cascaded: every ~44 steps on mountain car;
there 380 → 8 per run with both changes). Tried, not shipped: centring the cumulant by its
running mean (level 1e4: 0.6; γ = 0.999: 128 → 6.4; but γ = 0.99: 0.48 → 0.96, the mean's noise
times 1/(1-γ)), and standardising the Fourier features (level 1e4 76, noisy sensor 0.54 → 0.96).
The walks and the sensor below have 4 or more inputs: changed only by the restart test (31
states, γ = 0.99: 0.030 / 0.064 → 0.040 / 0.069; the sensor after its jump 2.70–2.72 →
2.36–2.47; the earlier check's walk paying -1 per step 7.45 → 8.07).

**Drifting sensor** ({args.sensor_steps} steps, never `done`, `step()` path, default
`StreamTD(gamma=0.9)`). RMSE of the predicted discounted future sum vs. the true one, after a
10% warm-up; "after jump" = the 10% of the stream following the level jump.
Reference in the same run: EMA(reading, 0.02) / (1 - γ).

| seed | StreamTD RMSE | reference RMSE | ratio | StreamTD after jump | reference after jump | std of true G |
|---|---|---|---|---|---|---|
{chr(10).join(srows)}
"""
    print("wrote", write_section(args.section, body))


if __name__ == "__main__":
    main()
