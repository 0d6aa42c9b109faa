"""Test accuracy against wall time on the glimpse-recognition tasks.

Three learners, each given the same wall-clock training budget per task, in one run:

- ``ram``: cogrl's recurrent attention model (continuous mode, glimpses only).
- ``cnn``: the RAM paper's convolutional baseline on the *whole* canvas (one layer of 8
  10 x 10 filters with stride 5, a 256-unit rectified layer, softmax), trained with
  cross-entropy on canvases drawn from the same training episodes.
- ``sb3-ppo``: Stable-Baselines3's PPO (``MultiInputPolicy``, its defaults) on the
  discrete mode, through ``gym.make`` with no wrapper.

Every learner is tested on the same 1,000 test-split episodes (the test core reset with
one seed) after each slice of its budget; evaluation time is not counted as training.

    python benchmarks/learning.py                   # full run, writes BENCHMARKS.md
    python benchmarks/learning.py --quick           # smoke run, prints only
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from report import write_section
from torch import nn

import cogrl
from cogrl.agents import evaluate, make
from cogrl.baselines import PaperCNN, canvas_batch

TASKS = ["cogrl/GlimpseDigits-v0", "cogrl/TranslatedDigits-v0", "cogrl/ClutteredDigits-v0"]
TEST_SEED = 12345
SECTION = "## Learning: test accuracy against wall time"

Curve = list[tuple[float, float]]  # (training seconds, test accuracy)


def train_in_slices(
    budget: float, slices: int, train_for: Callable[[float], None], test: Callable[[], float]
) -> Curve:
    """Alternate training (``budget / slices`` seconds each) and testing (not timed)."""
    curve: Curve = []
    spent = 0.0
    for _ in range(slices):
        start = time.perf_counter()
        train_for(budget / slices)
        spent += time.perf_counter() - start
        curve.append((spent, test()))
    return curve


def run_ram(task: str, budget: float, slices: int, episodes: int, device: str, seed: int) -> Curve:
    agent = make("ram", task, device=device, seed=seed)

    def train_for(seconds: float) -> None:
        deadline = time.perf_counter() + seconds
        agent.learn(10**12, callback=lambda *_: time.perf_counter() < deadline)

    def test() -> float:
        result = evaluate(agent, episodes, num_envs=episodes, seed=TEST_SEED, split="test")
        return result["accuracy"]

    return train_in_slices(budget, slices, train_for, test)


def run_cnn(
    task: str, budget: float, slices: int, episodes: int, device: str, seed: int, batch: int = 128
) -> Curve:
    torch.manual_seed(seed)
    train = cogrl.envs.make_core(task, num_envs=batch, device=device, split="train")
    train.reset(seed=seed)
    test_core = cogrl.envs.make_core(task, num_envs=episodes, device=device, split="test")
    test_core.reset(seed=TEST_SEED)
    test_x, test_y = test_core.canvas_images()[:, None].clone(), test_core.label.clone()
    model = PaperCNN(train.canvas_size).to(train.device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    def train_for(seconds: float) -> None:
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            canvases, labels = canvas_batch(train)  # fresh training episodes
            loss = nn.functional.cross_entropy(model(canvases), labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

    @torch.no_grad()
    def test() -> float:
        return float((model(test_x).argmax(1) == test_y).float().mean())

    return train_in_slices(budget, slices, train_for, test)


def run_sb3_ppo(
    task: str, budget: float, slices: int, episodes: int, device: str, seed: int
) -> Curve:
    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_vec_env

    env = make_vec_env(lambda: gym.make(task, action_mode="discrete"), n_envs=8, seed=seed)
    model = PPO("MultiInputPolicy", env, seed=seed, device="cpu", verbose=0)
    test_env = gym.make_vec(
        task,
        num_envs=episodes,
        vectorization_mode="vector_entry_point",
        action_mode="discrete",
        split="test",
    )

    class Deadline(BaseCallback):
        def __init__(self, deadline: float) -> None:
            super().__init__()
            self.deadline = deadline

        def _on_step(self) -> bool:
            return time.perf_counter() < self.deadline

    def train_for(seconds: float) -> None:
        model.learn(
            10**12, callback=Deadline(time.perf_counter() + seconds), reset_num_timesteps=False
        )

    def test() -> float:
        obs, _ = test_env.reset(seed=TEST_SEED)
        correct = np.zeros(episodes, dtype=bool)
        finished = np.zeros(episodes, dtype=bool)
        while not finished.all():
            action, _ = model.predict(obs, deterministic=True)
            obs, _, terminated, truncated, info = test_env.step(action)
            ended = (terminated | truncated) & ~finished
            correct[ended] = info["correct"][ended]
            finished |= ended
        return float(correct.mean())

    return train_in_slices(budget, slices, train_for, test)


RUNNERS = {"ram": run_ram, "cnn": run_cnn, "sb3-ppo": run_sb3_ppo}


def markdown(
    results: dict[tuple[str, str], Curve], budgets: dict[str, float], command: str, device: str
) -> str:
    lines = [
        SECTION,
        "",
        f"Command: `{command}`",
        "",
        f"Machine: {platform.machine()}, {torch.get_num_threads()} torch threads, "
        f"torch {torch.__version__}, device {device}.",
        "Test accuracy on the same 1,000 test-split episodes after each slice of training; "
        "the budget is training wall time per learner (evaluation excluded).",
        "",
        "| task | learner | budget (s) | test accuracy along the run (s: acc) | final |",
        "|---|---|---|---|---|",
    ]
    for (task, learner), curve in results.items():
        points = ", ".join(f"{t:.0f}: {a:.3f}" for t, a in curve)
        lines.append(
            f"| {task} | {learner} | {budgets[task]:.0f} | {points} | **{curve[-1][1]:.3f}** |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tasks", nargs="+", default=TASKS)
    parser.add_argument("--learners", nargs="+", default=list(RUNNERS), choices=list(RUNNERS))
    parser.add_argument(
        "--budget",
        type=float,
        nargs="+",
        default=[90.0, 240.0, 240.0],
        help="training seconds per learner, one per task (or one for all)",
    )
    parser.add_argument("--slices", type=int, default=6)
    parser.add_argument("--episodes", type=int, default=1000)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="tiny budgets, print only")
    parser.add_argument(
        "--markdown", type=Path, default=Path(__file__).parent.parent / "BENCHMARKS.md"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.budget, args.slices, args.episodes = [4.0], 2, 100
    if len(args.budget) == 1:
        args.budget = args.budget * len(args.tasks)
    if len(args.budget) != len(args.tasks):
        parser.error(f"--budget takes 1 or {len(args.tasks)} values, got {len(args.budget)}")
    budgets = dict(zip(args.tasks, args.budget, strict=True))
    results: dict[tuple[str, str], Curve] = {}
    for task in args.tasks:
        for learner in args.learners:
            curve = RUNNERS[learner](
                task, budgets[task], args.slices, args.episodes, args.device, args.seed
            )
            results[(task, learner)] = curve
            print(
                f"{task:28s} {learner:8s} " + " ".join(f"{t:6.0f}s:{a:.3f}" for t, a in curve),
                flush=True,
            )
    command = " ".join(
        ["python benchmarks/learning.py", *(argv if argv is not None else sys.argv[1:])]
    )
    text = markdown(results, budgets, command, args.device)
    print(text)
    if not args.quick:
        write_section(args.markdown, SECTION, text)


if __name__ == "__main__":
    main()
