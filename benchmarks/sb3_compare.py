"""cogrl's learners against Stable-Baselines3's: same machine, same run, same environments.

A. Steps and wall time to a score on CartPole-v1 (PPO, A2C, DQN; five seeds each). Every
   run trains for at most ``--max-steps`` environment steps (summed over environments);
   every ``--eval-freq`` steps it plays 20 deterministic episodes on a separate evaluation
   env (``gym.make_vec("CartPole-v1", 20)`` reset with seeds 1000..1019, the same for both
   libraries) and stops at the first evaluation whose mean return is at least 475.
   Training time excludes evaluation time.

   - cogrl: ``make(algo, "CartPole-v1", env_kwargs=p.env_kwargs, **p.hyperparameters)`` with
     ``p = preset(algo, "CartPole-v1")``, one ``learn(max_steps, callback=...)`` call.
   - SB3: RL Zoo's tuned CartPole-v1 hyperparameters (rl-baselines3-zoo,
     hyperparams/ppo.yml, a2c.yml, dqn.yml) on ``make_vec_env("CartPole-v1", n, seed=s)``
     (DummyVecEnv), with a ``BaseCallback`` doing the same evaluation. PPO and A2C run on
     16 environments (the zoo's 8 becomes 16, as cogrl's presets); DQN keeps the zoo's one
     environment, since its ``train_freq``/``gradient_steps`` are tuned for it.

B. Environment steps per second while learning, ``--speed-steps`` steps, no evaluation:
   (1) CartPole-v1, 16 environments, PPO, A2C and DQN, each library with its
   hyperparameters above (SB3's DQN on 16 environments with ``train_freq=16``,
   ``gradient_steps=128``: still 256 transitions per update); (2) ``cogrl/GlimpseDigits-v0``
   in discrete mode, PPO and DQN: cogrl with its preset for that task, SB3 with its defaults
   (``MultiInputPolicy``; PPO ``n_steps=128``; DQN ``learning_starts=1000``,
   ``train_freq=16``, ``gradient_steps=1``) on 16 ``gym.make`` copies in a DummyVecEnv.
   Goals: cogrl at least 3x SB3's steps per second on CartPole-v1, 10x on cogrl's tasks.

Both libraries run on the CPU with ``torch.set_num_threads(--threads)``.

    python benchmarks/sb3_compare.py                    # full run, prints the tables
    python benchmarks/sb3_compare.py --write            # ... and writes BENCHMARKS.md
    python benchmarks/sb3_compare.py --quick            # smoke run (a few minutes)
    python benchmarks/sb3_compare.py --parts speed --algos ppo
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from textwrap import fill
from typing import Any

import gymnasium as gym
import numpy as np
import stable_baselines3
import torch
from report import write_section
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import make_vec_env
from throughput import machine

import cogrl.envs  # noqa: F401  (registers cogrl's ids with Gymnasium)
from cogrl.agents import AGENTS, Agent, make
from cogrl.agents.presets import PRESETS, preset

CARTPOLE = "CartPole-v1"
GLIMPSE = "cogrl/GlimpseDigits-v0"
ALGOS = ["ppo", "a2c", "dqn"]
SPEED_ALGOS = {CARTPOLE: ["ppo", "a2c", "dqn"], GLIMPSE: ["ppo", "dqn"]}
GOALS = {CARTPOLE: 3.0, GLIMPSE: 10.0}  # cogrl steps/s over SB3's
NUM_ENVS = 16
THRESHOLD = 475.0
EVAL_EPISODES, EVAL_SEED = 20, 1000
SECTION_STEPS = "## Learners vs Stable-Baselines3: steps to 475 on CartPole-v1"
SECTION_SPEED = "## Learners vs Stable-Baselines3: steps per second"

Model = Agent | BaseAlgorithm  # both offer predict(obs, deterministic=True) and num_timesteps


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- what each library trains --------------------------------------------------------------
@dataclass(frozen=True)
class Linear:
    """RL Zoo's ``lin_<x>`` schedule: x times the remaining fraction of training (1 -> 0)."""

    initial: float

    def __call__(self, progress_remaining: float) -> float:
        return progress_remaining * self.initial

    def __repr__(self) -> str:
        return f"lin_{self.initial:g}"


@dataclass
class Setup:
    """One library's learner on one environment, as the tables describe it."""

    library: str  # "cogrl" or "SB3"
    algo: str
    env_id: str
    num_envs: int
    hyperparameters: dict[str, Any]
    source: str  # where the hyperparameters come from
    env_kwargs: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"{self.library} {self.algo.upper()}"

    def describe(self) -> str:
        shown = ", ".join(f"{k}={v!r}" for k, v in self.hyperparameters.items()) or "defaults"
        env = f"{self.env_id}" + (f" {self.env_kwargs}" if self.env_kwargs else "")
        return f"{self.name} on {env}, {self.num_envs} envs ({self.source}): {shown}"


def cogrl_setup(algo: str, env_id: str, env_kwargs: dict[str, Any] | None = None) -> Setup:
    """cogrl's preset for ``algo`` on ``env_id`` (its defaults where there is none)."""
    p = preset(algo, env_id)
    source = f"preset({algo!r}, {env_id!r})"
    if env_id not in PRESETS.get(algo, {}):
        source = f"no preset for {env_id}: the agent's defaults"
    kwargs = {**p.env_kwargs, **(env_kwargs or {})}
    num_envs = AGENTS[algo].Config.from_dict(p.hyperparameters).num_envs
    return Setup("cogrl", algo, env_id, num_envs, p.hyperparameters, source, kwargs)


def sb3_cartpole_setup(algo: str, part: str) -> Setup:
    """RL Zoo's tuned CartPole-v1 hyperparameters (rl-baselines3-zoo, hyperparams/<algo>.yml).

    The zoo runs PPO and A2C on 8 environments; here they get 16, as cogrl's presets. DQN
    keeps the zoo's one environment for steps-to-475 (``part="threshold"``); for speed it
    runs on 16 with ``train_freq`` (counted in vector steps) scaled to keep 256 transitions
    per update."""
    zoo = "RL Zoo's CartPole-v1"
    if algo == "ppo":
        hyperparameters = dict(
            n_steps=32,
            batch_size=256,
            gae_lambda=0.8,
            gamma=0.98,
            n_epochs=20,
            ent_coef=0.0,
            learning_rate=Linear(1e-3),
            clip_range=Linear(0.2),
        )
        return Setup("SB3", algo, CARTPOLE, NUM_ENVS, hyperparameters, f"{zoo}, 8 -> 16 envs")
    if algo == "a2c":
        return Setup("SB3", algo, CARTPOLE, NUM_ENVS, dict(ent_coef=0.0), f"{zoo}, 8 -> 16 envs")
    hyperparameters = dict(
        learning_rate=2.3e-3,
        batch_size=64,
        buffer_size=100_000,
        learning_starts=1_000,
        gamma=0.99,
        target_update_interval=10,
        train_freq=256,
        gradient_steps=128,
        exploration_fraction=0.16,
        exploration_final_eps=0.04,
        policy_kwargs=dict(net_arch=[256, 256]),
    )
    if part == "threshold":
        return Setup("SB3", algo, CARTPOLE, 1, hyperparameters, zoo)
    hyperparameters["train_freq"] = 256 // NUM_ENVS
    source = f"{zoo}, 1 -> 16 envs, train_freq 256 -> 16 vector steps"
    return Setup("SB3", algo, CARTPOLE, NUM_ENVS, hyperparameters, source)


def sb3_glimpse_setup(algo: str) -> Setup:
    """SB3 on the discrete mode, doing the gradient work of cogrl's preset per env step.

    PPO: rollouts of 16 x 128 = 2048 steps, minibatches of 512, 2 epochs (8 gradient
    steps per 2048 env steps, as cogrl's 256 x 8 rollout with 4 minibatches x 2 epochs).
    DQN: one gradient step on 256 transitions every 4 vector steps = 64 transitions (as
    cogrl's train_freq=64, gradient_steps=1, batch_size=256). SB3's policies stay its
    feedforward defaults, cheaper per step than cogrl's GRU for PPO.
    """
    if algo == "ppo":
        hyperparameters: dict[str, Any] = dict(n_steps=128, batch_size=512, n_epochs=2)
    else:
        hyperparameters = dict(
            learning_starts=5_000, train_freq=4, gradient_steps=1, batch_size=256
        )
    kwargs = {"action_mode": "discrete"}
    source = "SB3's defaults, with cogrl's preset's gradient steps per env step"
    return Setup("SB3", algo, GLIMPSE, NUM_ENVS, hyperparameters, source, kwargs)


def build(setup: Setup, seed: int) -> Model:
    if setup.library.startswith("cogrl"):
        return make(
            setup.algo,
            setup.env_id,
            seed=seed,
            device="cpu",
            env_kwargs=setup.env_kwargs,
            compile=setup.library == COMPILED,
            **setup.hyperparameters,
        )
    from stable_baselines3 import A2C, DQN, PPO

    classes = {"ppo": PPO, "a2c": A2C, "dqn": DQN}
    env = make_vec_env(setup.env_id, setup.num_envs, seed=seed, env_kwargs=setup.env_kwargs)
    dict_obs = isinstance(env.observation_space, gym.spaces.Dict)
    policy = "MultiInputPolicy" if dict_obs else "MlpPolicy"
    return classes[setup.algo](
        policy, env, seed=seed, device="cpu", verbose=0, **setup.hyperparameters
    )


class KeepGoing(BaseCallback):
    """SB3's side of the callback: ``keep_going(num_timesteps)`` after every vector step."""

    def __init__(self, keep_going: Callable[[int], bool]) -> None:
        super().__init__()
        self.keep_going = keep_going

    def _on_step(self) -> bool:
        return self.keep_going(self.num_timesteps)


def learn(model: Model, steps: int, keep_going: Callable[[int], bool] | None = None) -> None:
    """One ``learn`` call of ``steps`` environment steps; ``keep_going(timesteps)`` is asked
    after every update (cogrl) or vector step (SB3) and stops training when it says no."""
    if isinstance(model, Agent):
        callback = None
        if keep_going is not None:
            callback = lambda agent, info: keep_going(int(info["timesteps"]))  # noqa: E731
        model.learn(steps, callback=callback)
    else:
        model.learn(steps, callback=KeepGoing(keep_going) if keep_going is not None else None)


def gradient_steps_per_1k(model: Model) -> str:
    """Gradient steps per 1,000 environment steps (and their batch size): the work an update
    schedule asks for, so that steps per second can be read against it."""
    if isinstance(model, Agent):
        c = model.config
        n, algo = c.num_envs, model.name
        if algo == "dqn":
            return f"{1000 * c.gradient_steps / c.train_freq:.0f} x {c.batch_size}"
        steps, batch = n * c.n_steps, n * c.n_steps
        epochs = 1
        if algo == "ppo":
            batch, epochs = c.batch_size, c.n_epochs
    else:
        n = model.n_envs
        if model.__class__.__name__ == "DQN":
            transitions = model.train_freq.frequency * n  # train_freq counts vector steps
            return f"{1000 * model.gradient_steps / transitions:.0f} x {model.batch_size}"
        steps, batch = n * model.n_steps, n * model.n_steps
        epochs = 1
        if model.__class__.__name__ == "PPO":
            batch, epochs = model.batch_size, model.n_epochs
    return f"{1000 * epochs * math.ceil(steps / batch) / steps:.0f} x {batch}"


# --- A: steps and wall time to 475 ---------------------------------------------------------
class Evaluation:
    """Mean return of 20 deterministic CartPole-v1 episodes, seeds 1000..1019, for either
    library (both predict numpy actions for numpy batches)."""

    def __init__(self) -> None:
        self.envs = gym.make_vec(CARTPOLE, EVAL_EPISODES, vectorization_mode="sync")

    def __call__(self, model: Model) -> float:
        obs, _ = self.envs.reset(seed=EVAL_SEED)  # environment i gets seed 1000 + i
        returns = np.zeros(EVAL_EPISODES)
        done = np.zeros(EVAL_EPISODES, dtype=bool)
        while not done.all():
            action, _ = model.predict(obs, deterministic=True)
            obs, reward, terminated, truncated, _ = self.envs.step(action)
            returns += np.where(done, 0.0, reward)  # each environment's first episode only
            done |= terminated | truncated
        return float(returns.mean())


@dataclass
class ThresholdRun:
    steps: int | None  # environment steps at the first evaluation >= 475 (None: not reached)
    last_steps: int  # at the last evaluation
    last_score: float
    trained_steps: int  # all environment steps of the run
    train_seconds: float  # wall time of learn, evaluation excluded

    @property
    def steps_per_second(self) -> float:
        return self.trained_steps / self.train_seconds


class ThresholdCheck:
    """Evaluates the policy acting when the step count crosses the next multiple of
    ``eval_freq``; says stop at the first score >= 475.

    SB3 calls back after every vector step, so it evaluates at the first count >= the
    point, with the policy of its last update. cogrl calls back after each update at count
    T; the new policy acts for the next ``lookahead`` steps, so when the point falls in
    (T, T + lookahead] it is that policy which acts there: it is evaluated then, and the
    count recorded is the point rounded up to a whole vector step (``stride``) — the
    count SB3 would record.
    """

    def __init__(
        self,
        model: Model,
        evaluation: Evaluation,
        eval_freq: int,
        lookahead: int = 0,
        stride: int = 1,
    ) -> None:
        self.model, self.evaluation, self.eval_freq = model, evaluation, eval_freq
        self.lookahead, self.stride = lookahead, stride
        self.next_eval = eval_freq
        self.eval_seconds = 0.0
        self.scores: list[tuple[int, float]] = []
        self.hit: int | None = None

    def __call__(self, timesteps: int) -> bool:
        if timesteps + self.lookahead < self.next_eval:
            return True
        at = timesteps
        if self.lookahead and self.next_eval > timesteps:
            at = -(-self.next_eval // self.stride) * self.stride
        while self.next_eval <= at:
            self.next_eval += self.eval_freq
        start = time.perf_counter()
        score = self.evaluation(self.model)
        self.eval_seconds += time.perf_counter() - start
        self.scores.append((at, score))
        if score >= THRESHOLD:
            self.hit = at
            return False
        return True


def update_size(setup: Setup) -> int:
    """Environment steps between two of cogrl's callbacks (0 for SB3: every vector step)."""
    if not setup.library.startswith("cogrl"):
        return 0
    config = AGENTS[setup.algo].Config.from_dict(setup.hyperparameters)
    return setup.num_envs * getattr(config, "n_steps", 1)  # DQN: every vector step


def steps_to_threshold(
    setup: Setup, seed: int, max_steps: int, eval_freq: int, evaluation: Evaluation
) -> ThresholdRun:
    model = build(setup, seed)
    check = ThresholdCheck(model, evaluation, eval_freq, update_size(setup), setup.num_envs)
    start = time.perf_counter()
    learn(model, max_steps, check)
    seconds = time.perf_counter() - start - check.eval_seconds
    last_steps, last_score = check.scores[-1] if check.scores else (model.num_timesteps, math.nan)
    run = ThresholdRun(check.hit, last_steps, last_score, model.num_timesteps, seconds)
    scores = ", ".join(f"{t // 1000}k: {s:.0f}" for t, s in check.scores)
    result = f"475 at {run.steps:,} steps" if run.steps is not None else "475 not reached"
    log(
        f"  {setup.name:9s} seed {seed}: {result}, {seconds:.1f} s training, "
        f"{run.steps_per_second:,.0f} steps/s (scores {scores})"
    )
    return run


def median(values: list[float]) -> float:
    return statistics.median(values) if values else math.nan


def fmt_steps(value: float) -> str:
    return "not reached" if math.isinf(value) else f"{value:,.0f}"


def fmt_run(run: ThresholdRun) -> str:
    if run.steps is not None:
        return f"{run.steps:,}"
    return f"not reached ({run.last_score:.0f} at {run.last_steps:,})"


def threshold_markdown(
    results: dict[str, dict[str, list[ThresholdRun]]],
    setups: dict[str, dict[str, Setup]],
    args: argparse.Namespace,
) -> str:
    seeds = ", ".join(map(str, args.seeds))
    lines = [
        SECTION_STEPS,
        "",
        fill(
            "Environment steps (summed over environments) until the first evaluation whose mean "
            f"return over {EVAL_EPISODES} deterministic episodes is at least {THRESHOLD:g}. The "
            "evaluation env is a separate CartPole-v1 vector env reset with seeds "
            f"{EVAL_SEED}..{EVAL_SEED + EVAL_EPISODES - 1}, the same for both libraries; it runs "
            f"every {args.eval_freq:,} steps, and a run stops at the threshold or after "
            f"{args.max_steps:,} steps (the learning-rate and exploration schedules span that "
            "maximum). Training time excludes evaluation. In the medians, a run that does not "
            f"reach the threshold counts as slower than every run that does. Seeds: {seeds}. "
            f"Both libraries on the CPU with {args.threads} torch thread(s). Produced by "
            "`benchmarks/sb3_compare.py`:",
            width=88,
        ),
        "",
        "```",
        args.command,
        "```",
        "",
        *(f"- {line}" for line in args.about),
        "",
        "Setups (SB3: RL Zoo's tuned CartPole-v1 hyperparameters; PPO and A2C on 16 environments",
        "where the zoo uses 8; DQN on the zoo's one environment):",
        "",
    ]
    for algo in results:
        lines += [f"- {s.describe()}" for s in setups[algo].values()]
    lines += [
        "",
        "| algorithm | library | envs | steps to 475, median | steps to 475 per seed "
        "| training s to 475, median | steps/s, median |",
        "|---|---|---:|---:|---|---:|---:|",
    ]
    verdicts = []
    for algo, by_library in results.items():
        medians = {}
        for library, runs in by_library.items():
            steps = [r.steps if r.steps is not None else math.inf for r in runs]
            seconds = [r.train_seconds if r.steps is not None else math.inf for r in runs]
            medians[library] = median(steps)
            lines.append(
                f"| {algo.upper()} | {library} | {setups[algo][library].num_envs} "
                f"| {fmt_steps(medians[library])} | {', '.join(fmt_run(r) for r in runs)} "
                f"| {'not reached' if math.isinf(median(seconds)) else f'{median(seconds):.1f}'} "
                f"| {median([r.steps_per_second for r in runs]):,.0f} |"
            )
        better = medians["cogrl"] <= medians["SB3"] and not math.isinf(medians["cogrl"])
        verdicts.append(
            f"- {algo.upper()}: cogrl needs <= SB3's steps (median): {'yes' if better else 'no'}"
            f" ({fmt_steps(medians['cogrl'])} vs {fmt_steps(medians['SB3'])})"
        )
    return "\n".join([*lines, "", *verdicts]) + "\n"


def part_threshold(args: argparse.Namespace) -> str:
    evaluation = Evaluation()
    results: dict[str, dict[str, list[ThresholdRun]]] = {}
    setups: dict[str, dict[str, Setup]] = {}
    for algo in args.algos:
        setups[algo] = {
            "cogrl": cogrl_setup(algo, CARTPOLE),
            "SB3": sb3_cartpole_setup(algo, "threshold"),
        }
        results[algo] = {"cogrl": [], "SB3": []}
        log(f"[A] {algo.upper()} on CartPole-v1, steps to {THRESHOLD:g}")
        for seed in args.seeds:  # the libraries alternate, so that load spikes hit both
            for library, setup in setups[algo].items():
                results[algo][library].append(
                    steps_to_threshold(setup, seed, args.max_steps, args.eval_freq, evaluation)
                )
    return threshold_markdown(results, setups, args)


# --- B: steps per second ---------------------------------------------------------------------
@dataclass
class SpeedRow:
    env_id: str
    algo: str
    setups: dict[str, Setup]
    rates: dict[str, float]
    work: dict[str, str]  # gradient steps per 1k env steps x batch


def steps_per_second(setup: Setup, seed: int, steps: int) -> tuple[float, str]:
    model = build(setup, seed)
    warm_up = 0.0
    if setup.library == COMPILED:
        # Compiling happens in the first update: timed apart, as warm-up.
        start = time.perf_counter()
        learn(model, update_size(setup))
        warm_up = time.perf_counter() - start
        log(f"  {setup.name}: warm-up (compiling) {warm_up:.1f} s")
    begin = model.num_timesteps
    start = time.perf_counter()
    learn(model, steps)
    seconds = time.perf_counter() - start
    rate = (model.num_timesteps - begin) / seconds
    if warm_up:
        WARM_UP[(setup.env_id, setup.algo)] = warm_up
    work = gradient_steps_per_1k(model)
    log(
        f"  {setup.name:9s} {setup.env_id}: {model.num_timesteps:,} steps in {seconds:.1f} s, "
        f"{rate:,.0f} steps/s ({work} gradient steps per 1k env steps)"
    )
    return rate, work


#: Compiling's warm-up seconds per (env, algo), for the table.
WARM_UP: dict[tuple[str, str], float] = {}
#: The library name of cogrl built with compile=True (``--compile``).
COMPILED = "cogrl compiled"


def speed_markdown(rows: list[SpeedRow], args: argparse.Namespace) -> str:
    lines = [
        SECTION_SPEED,
        "",
        fill(
            "Environment steps per second while learning: the time of one `learn` call of "
            f"{args.speed_steps:,} steps (seed {args.seeds[0]}, one run per learner, no "
            "evaluation), SB3 on 16 environments, cogrl on its preset's number; both libraries "
            f"on the CPU with {args.threads} torch thread(s). Each library trains with its own "
            "hyperparameters, so the work per environment step differs: the last column gives "
            "the gradient steps per 1,000 environment steps and their batch size. Produced by "
            "`benchmarks/sb3_compare.py`:",
            width=88,
        ),
        "",
        "```",
        args.command,
        "```",
        "",
        *(f"- {line}" for line in args.about),
        "",
        "Setups:",
        "",
    ]
    for row in rows:
        lines += [f"- {s.describe()}" for s in row.setups.values() if s.library != COMPILED]
    lines += [
        "",
        "| env | algorithm | envs (cogrl; SB3) | cogrl steps/s | SB3 steps/s | ratio | goal "
        "| gradient steps per 1k env steps x batch (cogrl; SB3) |",
        "|---|---|---|---:|---:|---:|---|---|",
    ]
    for row in rows:
        ratio = row.rates["cogrl"] / row.rates["SB3"]
        goal = GOALS[row.env_id]
        verdict = "met" if ratio >= goal else "**not met**"
        lines.append(
            f"| {row.env_id} | {row.algo.upper()} "
            f"| {row.setups['cogrl'].num_envs}; {row.setups['SB3'].num_envs} "
            f"| {row.rates['cogrl']:,.0f} "
            f"| {row.rates['SB3']:,.0f} | {ratio:.1f}x | >= {goal:g}x: {verdict} "
            f"| {row.work['cogrl']}; {row.work['SB3']} |"
        )
    compiled = [row for row in rows if COMPILED in row.rates]
    if compiled:
        lines += [
            "",
            "With `compile=True` (`--compile`; the same run, the same setups; compiling's "
            "warm-up, one update, timed apart):",
            "",
            "| env | algorithm | cogrl eager steps/s | cogrl compiled steps/s | gain "
            "| compiled vs SB3 | goal | warm-up s |",
            "|---|---|---:|---:|---:|---:|---|---:|",
        ]
        for row in compiled:
            ratio = row.rates[COMPILED] / row.rates["SB3"]
            goal = GOALS[row.env_id]
            verdict = "met" if ratio >= goal else "**not met**"
            lines.append(
                f"| {row.env_id} | {row.algo.upper()} | {row.rates['cogrl']:,.0f} "
                f"| {row.rates[COMPILED]:,.0f} | {row.rates[COMPILED] / row.rates['cogrl']:.2f}x "
                f"| {ratio:.1f}x | >= {goal:g}x: {verdict} "
                f"| {WARM_UP.get((row.env_id, row.algo), 0.0):.1f} |"
            )
    return "\n".join(lines) + "\n"


def part_speed(args: argparse.Namespace) -> str:
    rows = []
    for env_id, algos in SPEED_ALGOS.items():
        for algo in [a for a in algos if a in args.algos]:
            if env_id == CARTPOLE:
                setups = {
                    "cogrl": cogrl_setup(algo, env_id),
                    "SB3": sb3_cartpole_setup(algo, "speed"),
                }
            else:
                discrete = {"action_mode": "discrete"}
                setups = {
                    "cogrl": cogrl_setup(algo, env_id, discrete),
                    "SB3": sb3_glimpse_setup(algo),
                }
            if args.compile:
                setups[COMPILED] = replace(setups["cogrl"], library=COMPILED)
            log(f"[B] {algo.upper()} on {env_id}, steps per second")
            rates, work = {}, {}
            for library, setup in setups.items():
                rates[library], work[library] = steps_per_second(
                    setup, args.seeds[0], args.speed_steps
                )
            rows.append(SpeedRow(env_id, algo, setups, rates, work))
    return speed_markdown(rows, args)


# --- main ------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--algos", nargs="+", default=ALGOS, choices=ALGOS)
    parser.add_argument(
        "--parts", nargs="+", default=["threshold", "speed"], choices=["threshold", "speed"]
    )
    parser.add_argument("--eval-freq", type=int, default=5_000, help="env steps between evals")
    parser.add_argument("--max-steps", type=int, default=200_000, help="env steps per run (A)")
    parser.add_argument("--speed-steps", type=int, default=50_000, help="env steps per run (B)")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument(
        "--compile", action="store_true", help="(B) also cogrl with compile=True, same run"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: 1 seed, eval-freq 10,000, max-steps 30,000, speed-steps 5,000",
    )
    parser.add_argument("--write", action="store_true", help="write the tables into the file")
    parser.add_argument(
        "--benchmarks-file",
        type=Path,
        default=Path(__file__).resolve().parent.parent / "BENCHMARKS.md",
        help="the file --write writes (default: BENCHMARKS.md at the repository root)",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.seeds = args.seeds[:1]
        args.eval_freq, args.max_steps, args.speed_steps = 10_000, 30_000, 5_000
    args.command = " ".join(
        ["python benchmarks/sb3_compare.py", *(sys.argv[1:] if argv is None else argv)]
    )
    torch.set_num_threads(args.threads)
    cpu, _, _, *load = machine("cpu")  # the CPU, versions, device, load average
    args.about = [
        cpu,
        f"torch {torch.__version__} ({torch.get_num_threads()} intra-op thread(s)), "
        f"stable-baselines3 {stable_baselines3.__version__}, gymnasium {gym.__version__}, "
        f"cogrl {cogrl.__version__}",
        *load,
    ]
    sections = []
    if "threshold" in args.parts:
        sections.append((SECTION_STEPS, part_threshold(args)))
    if "speed" in args.parts:
        sections.append((SECTION_SPEED, part_speed(args)))
    for section, text in sections:
        print(text)
        if args.write:
            write_section(args.benchmarks_file, section, text)
            log(f"wrote the section {section!r} of {args.benchmarks_file}")


if __name__ == "__main__":
    main()
