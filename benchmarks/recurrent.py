"""Recurrent learners on partially observed tasks, against sb3-contrib's RecurrentPPO.

Two popgym tasks that a memoryless policy cannot solve (Morad et al. 2023, POPGym):
``RepeatPreviousEasy`` (say the card seen 4 steps ago; a feedforward policy stays near
-0.5, random play -0.49) and ``PositionOnlyCartPoleEasy`` (CartPole without velocities;
random play 0.12, at most 1.0).

Every run trains for ``--steps`` environment steps (summed over environments). A wrapper
around every environment copy records each training episode's return against the number
of environment steps taken so far, the same way for both libraries; *steps to threshold*
is the first step count at which the mean return of the last 50 training episodes reaches
the task's threshold. *Steps/s* is ``--steps`` over the wall time of ``learn``.

- cogrl PPO, ``policy.core`` LSTM or GRU of 128 (an MLP of 64-64 before it, orthogonal
  initialisation), and the GRU again with ``sequence_length=16`` (truncated BPTT); a
  feedforward policy for contrast.
- sb3-contrib ``RecurrentPPO("MlpLstmPolicy")``, LSTM of 128 (an MLP of 64-64 after it,
  orthogonal initialisation, a separate critic LSTM as cogrl's separate critic torso).
- Both: 16 environments (SB3: ``DummyVecEnv``), ``n_steps=128``, ``batch_size=256``,
  ``n_epochs=4``, ``learning_rate=3e-4``, ``gamma=0.99``, ``gae_lambda=0.95``,
  ``clip_range=0.2``, ``ent_coef=0``, ``max_grad_norm=0.5``.
- cogrl recurrent DQN (R2D2-style: stored states, burn-in 4, sequences of 8, GRU of 128),
  and feedforward DQN for contrast, on ``RepeatPreviousEasy``.

Both libraries run on the CPU with ``torch.set_num_threads(--threads)`` (default 1).
Goal (issue 8): cogrl's recurrent PPO >= 5x sb3-contrib's steps/s, no more steps to
threshold.

    python benchmarks/recurrent.py                 # full run (about 25 minutes), prints tables
    python benchmarks/recurrent.py --write         # ... and writes BENCHMARKS.md
    python benchmarks/recurrent.py --quick         # smoke run
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import popgym  # noqa: F401  (registers popgym's ids)
import sb3_contrib
import torch
from report import write_section
from sb3_contrib import RecurrentPPO
from stable_baselines3.common.env_util import make_vec_env
from throughput import machine

import cogrl.agents

TASKS = {
    # Thresholds half way (and 80% of the way) from random play to the best return: what
    # sb3-contrib's runs reach within 100k steps, so that the step counts compare.
    "RepeatPreviousEasy": ("popgym-RepeatPreviousEasy-v0", 0.0),
    "PositionOnlyCartPoleEasy": ("popgym-PositionOnlyCartPoleEasy-v0", 0.8),
}
WINDOW = 50
PPO_SETTINGS = dict(
    n_steps=128,
    batch_size=256,
    n_epochs=4,
    learning_rate=3e-4,
    gamma=0.99,
    gae_lambda=0.95,
    clip_range=0.2,
    ent_coef=0.0,
    max_grad_norm=0.5,
)


class Recorder:
    """Every training episode's return, with the environment steps taken when it ended."""

    steps = 0
    episodes: list[tuple[int, float]] = []

    @classmethod
    def clear(cls) -> None:
        cls.steps, cls.episodes = 0, []

    @classmethod
    def steps_to(cls, threshold: float) -> int | None:
        returns = [r for _, r in cls.episodes]
        for i in range(WINDOW, len(returns) + 1):
            if np.mean(returns[i - WINDOW : i]) >= threshold:
                return cls.episodes[i - 1][0]
        return None

    @classmethod
    def final(cls) -> float:
        return float(np.mean([r for _, r in cls.episodes[-WINDOW:]]))


class Recording(gym.Wrapper):
    def reset(self, **kwargs):
        self._return = 0.0
        return self.env.reset(**kwargs)

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        Recorder.steps += 1
        self._return += float(reward)
        if terminated or truncated:
            Recorder.episodes.append((Recorder.steps, self._return))
        return obs, reward, terminated, truncated, info


def recorded(env_id: str) -> str:
    """A registered id for ``env_id`` with the recording wrapper around every copy."""
    name = f"bench/Recorded-{env_id}"
    if name not in gym.registry:
        gym.register(name, entry_point=lambda **kw: Recording(gym.make(env_id, **kw)))
    return name


def cogrl_ppo(env_id: str, seed: int, core: str, **extra: Any) -> Callable[[int], None]:
    settings = {k: v for k, v in PPO_SETTINGS.items()}
    agent = cogrl.agents.make(
        "ppo",
        recorded(env_id),
        seed=seed,
        device="cpu",
        num_envs=16,
        policy={"core": core, "core_size": 128, "hidden_sizes": [64, 64], "ortho_init": True},
        **settings,
        **extra,
    )
    return agent.learn


def sb3_ppo(env_id: str, seed: int) -> Callable[[int], None]:
    env = make_vec_env(recorded(env_id), n_envs=16, seed=seed)
    model = RecurrentPPO(
        "MlpLstmPolicy",
        env,
        seed=seed,
        device="cpu",
        policy_kwargs={"lstm_hidden_size": 128, "net_arch": [64, 64]},
        **PPO_SETTINGS,
    )
    return model.learn


def cogrl_dqn(env_id: str, seed: int, core: str) -> Callable[[int], None]:
    agent = cogrl.agents.make(
        "dqn",
        recorded(env_id),
        seed=seed,
        device="cpu",
        num_envs=16,
        learning_rate=1e-3,
        batch_size=32,
        buffer_size=50_000,
        learning_starts=2_000,
        train_freq=16,
        gradient_steps=1,
        target_update_interval=1_000,
        double_q=True,
        exploration_fraction=0.2,
        exploration_final_eps=0.05,
        policy={"core": core, "core_size": 128, "hidden_sizes": [64]},
    )
    return agent.learn


RUNS: dict[str, tuple[str, Callable[..., Callable[[int], None]], dict[str, Any]]] = {
    "cogrl PPO, LSTM": ("ppo", cogrl_ppo, {"core": "lstm"}),
    "cogrl PPO, GRU": ("ppo", cogrl_ppo, {"core": "gru"}),
    "cogrl PPO, GRU, sequence_length=16": (
        "ppo",
        cogrl_ppo,
        {"core": "gru", "sequence_length": 16},
    ),
    "cogrl PPO, no core": ("ppo", cogrl_ppo, {"core": "none"}),
    "sb3-contrib RecurrentPPO, LSTM": ("ppo", sb3_ppo, {}),
    "cogrl DQN, GRU (R2D2)": ("dqn", cogrl_dqn, {"core": "gru"}),
    "cogrl DQN, no core": ("dqn", cogrl_dqn, {"core": "none"}),
}


def run(make: Callable[..., Callable[[int], None]], env_id, seed, steps, kwargs) -> dict:
    torch.manual_seed(seed)
    Recorder.clear()
    learn = make(env_id, seed, **kwargs)
    start = time.perf_counter()
    learn(steps)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "final": Recorder.final(), "episodes": len(Recorder.episodes)}


def summarise(results: list[dict], steps: int) -> str:
    sps = [steps / r["seconds"] for r in results]
    reached = [r["to_threshold"] for r in results]
    hit = [s for s in reached if s is not None]
    to = (
        f"{statistics.median(hit) / 1000:.0f}k (median of {len(hit)}/{len(reached)})"
        if hit
        else f"not reached (0/{len(reached)})"
    )
    finals = ", ".join(f"{r['final']:.2f}" for r in results)
    return f"{statistics.mean(sps):,.0f} | {to} | {finals}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=100_000)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    parser.add_argument("--runs", nargs="+", default=list(RUNS), choices=list(RUNS))
    parser.add_argument("--quick", action="store_true", help="smoke run: 10k steps, one seed")
    parser.add_argument("--write", action="store_true", help="write BENCHMARKS.md")
    args = parser.parse_args()
    if args.quick:
        args.steps, args.seeds = 10_000, 1
    torch.set_num_threads(args.threads)
    lines = [
        "## Recurrent learners on memory tasks (vs sb3-contrib)",
        "",
        f"Command: `python benchmarks/recurrent.py{' --write' if args.write else ''}` "
        f"({args.steps:,} steps, {args.seeds} seeds, {args.threads} torch thread(s), "
        f"sb3-contrib {sb3_contrib.__version__}, popgym; see the script's docstring for "
        f"the settings). Steps/s: mean over seeds; steps to threshold: the first step at "
        f"which the last {WINDOW} training episodes' mean return reaches it; final: that "
        "mean at the end, per seed.",
        "",
        *(f"- {line}" for line in machine("cpu")),
        "",
    ]
    for task in args.tasks:
        env_id, threshold = TASKS[task]
        lines += [
            f"**{task}** (threshold {threshold})",
            "",
            "| run | steps/s | steps to threshold | final return (per seed) |",
            "|---|---|---|---|",
        ]
        for name in args.runs:
            algo, make, kwargs = RUNS[name]
            if algo == "dqn" and task != "RepeatPreviousEasy":
                continue
            results = []
            for seed in range(args.seeds):
                result = run(make, env_id, seed, args.steps, kwargs)
                result["to_threshold"] = Recorder.steps_to(threshold)
                results.append(result)
                print(f"{task} {name} seed {seed}: {result}", file=sys.stderr, flush=True)
            lines.append(f"| {name} | {summarise(results, args.steps)} |")
            print(lines[-1], flush=True)
        lines.append("")
    text = "\n".join(lines)
    print(text)
    if args.write:
        write_section(
            Path(__file__).resolve().parent.parent / "BENCHMARKS.md",
            "## Recurrent learners on memory tasks",
            text,
        )


if __name__ == "__main__":
    main()
