"""Where a learner's time goes, eager and compiled: torch.profiler over a short ``learn``
call (after a warm-up that compiles), on the CPU with one thread. "compiled" is every hot
function compiled (``agent.use_compile(True, everywhere=True)``), also those that
``compile=True`` leaves eager on the CPU because they measured slower here.

For each learner: steps per second (unprofiled, the same steps), then the operations with
the most self CPU time under the profiler, as shares of the profiled total (the profiler
slows small operations, so the shares, not its absolute times, are what to read).

    python benchmarks/profile_learners.py                 # PPO, A2C, RAM; markdown out
    python benchmarks/profile_learners.py --learners ppo --top 8
"""

from __future__ import annotations

import argparse
import time

import torch
from torch.profiler import ProfilerActivity, profile

from cogrl.agents import make
from cogrl.agents.presets import preset

# learner -> (env id, hyperparameters, steps timed)
CASES = {
    "ppo": ("CartPole-v1", preset("ppo", "CartPole-v1").hyperparameters, 16_384),
    "a2c": ("CartPole-v1", preset("a2c", "CartPole-v1").hyperparameters, 16_384),
    "ram": ("cogrl/GlimpseDigits-v0", {}, 128 * 6 * 40),
}


def measure(learner: str, compiled: bool, top: int) -> tuple[float, list[tuple[str, float]]]:
    env_id, hyper, steps = CASES[learner]
    agent = make(learner, env_id, seed=0, device="cpu", **hyper)
    agent.use_compile(compiled, everywhere=True)
    agent.learn(steps // 8)  # warm-up: compiling, allocator
    start = time.perf_counter()
    agent.learn(steps, reset_num_timesteps=False)
    rate = steps / (time.perf_counter() - start)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        agent.learn(steps // 4, reset_num_timesteps=False)
    events = [e for e in prof.key_averages() if e.self_cpu_time_total > 0]
    total = sum(e.self_cpu_time_total for e in events)
    events.sort(key=lambda e: e.self_cpu_time_total, reverse=True)
    return rate, [(e.key, e.self_cpu_time_total / total) for e in events[:top]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--learners", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--top", type=int, default=6)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    lines = [
        "| learner | env | mode | steps/s | top operations by self CPU time (share) |",
        "|---|---|---|---:|---|",
    ]
    for learner in args.learners:
        for compiled in (False, True):
            rate, ops = measure(learner, compiled, args.top)
            shown = ", ".join(f"`{name}` {share:.0%}" for name, share in ops)
            mode = "compiled" if compiled else "eager"
            row = f"| {learner} | {CASES[learner][0]} | {mode} | {rate:,.0f} | {shown} |"
            print(row, flush=True)
            lines.append(row)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
