"""Learning speed of the numpy stream-x learners (CartPole-sized network), in-process, one core.

Bar (issue 4): at least 5,000 learning steps per second for the CartPole network (4 inputs +
time feature, StreamQ's default hidden layers, (64, 64) since issue 11 (was (32, 32)),
2 actions). Reference measured in the same run: one bare forward pass of the same network
(a learning step needs two forwards and one backward). StreamTD keeps its own default width.
Each figure is the best of ``--repeats`` timings (the machine is shared).

    python -m bench.streamx_speed --steps 20000
"""

from __future__ import annotations

import argparse
import inspect
import os
import time

import numpy as np
from tqdm import tqdm

from bench.streamx_common import command, machine, write_section
from models.streamx import MLP, StreamQ, StreamTD

Q_HIDDEN = tuple(inspect.signature(StreamQ).parameters["hidden"].default)
TD_HIDDEN = tuple(inspect.signature(StreamTD).parameters["hidden"].default)


def _data(steps: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(steps + 1, 4)), rng.normal(size=steps + 1)


def loop_act_learn(steps: int) -> float:
    obs, rew = _data(steps)
    ag = StreamQ(n_actions=2, time_limit=500, exploration_steps=steps // 10, seed=0)
    t0 = time.perf_counter()
    for t in range(steps):
        a = ag.act(obs[t])
        ag.learn_one(obs[t], a, rew[t], obs[t + 1], t % 200 == 199)
    return steps / (time.perf_counter() - t0)


def loop_step(steps: int, n_agents: int, td: bool = False) -> float:
    obs, rew = _data(steps)
    lists = obs.tolist()
    ag = StreamTD(seed=0) if td else StreamQ(n_actions=2, time_limit=500,
                                             exploration_steps=steps // 10, seed=0)
    names = [f"agent{i}" for i in range(n_agents)]
    for name in names:  # open one episode per agent (not learning steps)
        ag.step(name, "0", lists[0], 0.0, False)
    t0 = time.perf_counter()
    for t in range(steps):
        ag.step(names[t % n_agents], "0", lists[t + 1], float(rew[t]), False)
    dt = time.perf_counter() - t0
    assert ag.inspect()["steps_learned"] == steps
    return steps / dt


def bare_forward(steps: int) -> float:
    net = MLP(5, 2, Q_HIDDEN, rng=np.random.default_rng(0))
    xs = np.random.default_rng(0).normal(size=(steps, 5))
    t0 = time.perf_counter()
    for x in xs:
        net.forward(x)
    return steps / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=20_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-pin", action="store_true", help="do not pin the process to one core")
    ap.add_argument("--no-doc", action="store_true")
    args = ap.parse_args()
    if not args.no_pin and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    cases = {
        "bare forward pass (reference)": lambda: bare_forward(args.steps),
        "StreamQ act + learn_one (single agent)": lambda: loop_act_learn(args.steps),
        "StreamQ step(), 1 agent": lambda: loop_step(args.steps, 1),
        "StreamQ step(), 100 interleaved agents": lambda: loop_step(args.steps, 100),
        "StreamTD step(), 1 agent": lambda: loop_step(args.steps, 1, td=True),
    }
    best: dict[str, float] = {}
    load_start = os.getloadavg()[0]
    with tqdm(total=len(cases) * args.repeats, desc="stream-x speed", unit="run") as bar:
        for _ in range(args.repeats):
            for name, fn in cases.items():
                best[name] = max(best.get(name, 0.0), fn())
                bar.update(1)
    ref = best["bare forward pass (reference)"]
    for name, v in best.items():
        print(f"{name:45s} {v:9.0f} /s   {v / ref:.3f}× forward")
    if args.no_doc:
        return
    rows = "\n".join(f"| {name} | {v:.0f} | {v / ref:.3f} |" for name, v in best.items())
    q1 = best["StreamQ step(), 1 agent"]
    body = f"""## Learning speed (CartPole-sized network, one core)

Command: `{command()}`
Machine: {machine()}
Network (StreamQ default): 5 inputs (4 + time feature) → {" → ".join(map(str, Q_HIDDEN))} → 2,
{MLP(5, 2, Q_HIDDEN).size} parameters, float64 (hidden (64, 64) since issue 11; it was (32, 32),
see the CartPole section). The StreamTD row uses StreamTD's own default, hidden {TD_HIDDEN}, and
its ratio is still to the StreamQ network's forward pass.
Best of {args.repeats} timings of {args.steps} learning steps each, process pinned to one core
(`OPENBLAS_CORETYPE`={os.environ.get("OPENBLAS_CORETYPE", "unset")} left as is).

| case | learning steps/s | × bare forward passes/s |
|---|---|---|
{rows}

Bar: ≥ 5,000 learning steps/s → StreamQ `step()` reaches **{q1:.0f}/s** here, {q1 / ref:.3f}× the
bare forward passes measured in the same run (load average {load_start:.1f} when the run
started, {os.getloadavg()[0]:.1f} when it ended: the machine is shared, so the ratio is the
comparable figure). A learning step
costs two forward passes (target with the old weights, action with the new ones) plus one
backward pass and the ObGD update, plus normalisation, validation and bookkeeping. With many
interleaved agents the cached forward of each agent's last observation is stale (another
agent changed the weights), so one extra forward pass is paid.
How: one flat parameter vector with per-layer views (trace decay, L1 norm and update are
3–4 vectorised calls), outer products via `np.dot` into preallocated gradient views, sums as
dot products with a ones vector, LayerNorm statistics in one pass, and a per-agent cache of
the last forward pass tagged with the parameter version.
"""
    print("wrote", write_section("speed", body))


if __name__ == "__main__":
    main()
