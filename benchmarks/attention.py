"""Hard and soft attention on real MNIST: the RAM and DRAM papers' tables, side by side.

Every cell trains one learner on one task for the same wall-clock budget (one torch
thread), tests it on the standard MNIST test set after each slice (10,000 test-split
episodes from one seed; evaluation is not counted as training), and saves its curve as
JSON under ``benchmarks/results/attention/``. ``--report`` turns the saved cells into the
BENCHMARKS.md section and PNG learning curves (error against wall time and against
training images seen) in ``docs/figures/``.

Data: MNIST IDX files (``--root``, default ``../shared/data/mnist``: the official 60,000
training and 10,000 test images). Glimpse learners also report ``on_digit``: the fraction
of the glimpses they chose whose centre lies in a digit's ink box (the environments'
episode metric), beside the error.

With ``--anneal``, an agent's learning rate decays linearly to 0 over its cell's wall-clock
budget (set before each update from the time spent), the schedule a long run needs to
settle; ``--save DIR`` keeps each trained agent there (``cogrl eval``/``record`` read it).
``--checkpoint DIR`` saves a RAM or DRAM cell's training state there after every slice, and
the same command run again resumes it from its last slice (a run longer than a session).
``--env JSON`` adds arguments to every environment a cell makes (training and test: an
augmentation such as GlimpseDigits' ``train_shift`` leaves the test split as it is).
Two diagnostics of RAM and DRAM cells: ``--train-error`` also tests each slice on 10,000
random training episodes (the gap to the test error is overfitting); ``--mc M`` (RAM)
also reports the test error with each image's class probabilities averaged over M
episodes of sampled glimpse locations, and ``mc`` adds that figure to a finished cell
from its ``--save``d agent. ``where --agent FILE`` splits a saved agent's test errors by how
many of each episode's digits its glimpses fell on (:func:`where_errors`), and with
``--probe`` how well each digit can be read from its state after the last glimpse.

    python benchmarks/attention.py run --table ram            # every cell of one table
    python benchmarks/attention.py run --table ram --cells mnist28/ram:6   # one cell
    python benchmarks/attention.py report                     # tables + plots from JSON
    python benchmarks/attention.py run --table ram --quick    # smoke run, saves nothing
    python benchmarks/attention.py mc --cells mnist28/ram:6 --save DIR --mc 10 --full
    python benchmarks/attention.py where --agent DIR/addition__dram-3.pt --probe  # errors by gaze

Learners (``NAME[:GLIMPSES]``):

- ``ram:N``: cogrl's RAM with N glimpses (``cogrl.agents.make("ram", ...)``).
- ``dram:N`` / ``dram-ram:N``: cogrl's DRAM with N glimpses per object; ``dram-ram`` is
  DRAM without its context network and with one recurrent layer, the paper's RAM baseline
  on sequences.
- ``dram-ll:N``: DRAM whose locations are reinforced with the classifier's log-likelihood
  of each label (``location_reward="log_likelihood"``, the learning signal of the paper's
  variational bound) instead of the 0/1 reward.
- ``fc``, ``cnn``, ``stn``, ``soft``: the whole-image models of :mod:`cogrl.baselines`,
  trained by cross-entropy on canvases drawn from the same training episodes.
- ``ppo-gru``, ``ppo-gru-answer``, ``ppo-gru-where``, ``saliency``: the visual-search
  learners (table ``search``): PPO with a GRU core by pure reinforcement, the same with
  answer supervision (the target's cell as the declaration due at an episode's end: its
  likelihood among all actions, or, ``-where``, among the declaring actions only), and
  the bottom-up saliency baseline.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from textwrap import fill

import torch

import cogrl
from cogrl.agents import evaluate, make
from cogrl.agents.ram import LOCATION_SIZE
from cogrl.envs import make_core

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "attention"
FIGURES = HERE.parent / "docs" / "figures"
DEFAULT_ROOT = HERE.parent.parent / "shared" / "data" / "mnist"
TEST_SEED = 12345
TEST_EPISODES = 10_000
TEST_SEARCH = 2_000  # search episodes per test (the saliency baseline's maps are costly)
SECTION = "## Attention on real MNIST: the RAM and DRAM papers' tables (issue 11)"
# --full: cells trained on all 60,000 training images, kept and reported apart
RESULTS_FULL = HERE / "results" / "attention-60k"
SECTION_FULL = "## Attention on the full MNIST: the papers' tables with 60,000 images (issue 21)"
FULL = False

# task name -> (env id, env kwargs beyond the data)
TASKS: dict[str, tuple[str, dict]] = {
    "mnist28": ("cogrl/GlimpseDigits-v0", {}),
    "translated60": ("cogrl/TranslatedDigits-v0", {}),
    "cluttered60": ("cogrl/ClutteredDigits-v0", {}),
    "pairs": ("cogrl/MultiDigits-v0", {}),
    "addition": ("cogrl/MultiDigits-v0", {"target": "sum"}),
    "search": ("cogrl/VisualSearch-v0", {}),
}
# table -> (task, learner, training seconds) cells, in the order of the papers' tables
TABLES: dict[str, list[tuple[str, str, float]]] = {
    "ram": [
        ("mnist28", "ram:6", 300),
        ("mnist28", "fc", 300),
        ("mnist28", "cnn", 300),
        ("translated60", "ram:4", 420),
        ("translated60", "ram:6", 420),
        ("translated60", "ram:8", 420),
        ("translated60", "cnn", 420),
        ("cluttered60", "ram:8", 420),
        ("cluttered60", "cnn", 420),
    ],
    "soft": [
        ("cluttered60", "stn", 420),
        ("cluttered60", "soft", 420),
    ],
    "addition": [
        ("addition", "dram:3", 600),
        ("addition", "dram:4", 600),
        ("addition", "dram-ll:3", 600),
        ("addition", "cnn", 600),
    ],
    "search": [
        ("search", "saliency", 0),
        ("search", "ppo-gru", 600),
        ("search", "ppo-gru-answer", 600),
        ("search", "ppo-gru-where", 600),
        ("search", "dram:3", 600),
    ],
    "dram": [
        ("pairs", "dram:3", 600),
        ("pairs", "dram-ram:3", 600),
        ("pairs", "cnn", 600),
        ("pairs", "stn", 600),
        ("pairs", "soft", 600),
    ],
}

Curve = list[dict[str, float]]  # {"seconds", "images", "error"} after each slice


def slices(
    budget: float,
    n: int,
    train_for: Callable[[float], int],
    test: Callable[[], dict],
    curve: Curve | None = None,
    after: Callable[[Curve], None] | None = None,
) -> Curve:
    """Alternate ``budget / n`` seconds of training (returning images trained on) and an
    untimed test (returning ``{"error": ..., other metrics}``); the curve of training
    seconds, images seen and the test's metrics. ``curve``: the slices a resumed run has
    done (it goes on from the last); ``after(curve)`` is called after each new slice."""
    curve = [] if curve is None else list(curve)
    spent, images = (curve[-1]["seconds"], curve[-1]["images"]) if curve else (0.0, 0)
    for _ in range(len(curve), n):
        start = time.perf_counter()
        images += train_for(budget / n)
        spent += time.perf_counter() - start
        metrics = test()
        curve.append({"seconds": spent, "images": images, **metrics})
        shown = "  ".join(f"{k} {v:.4f}" for k, v in metrics.items())
        print(f"    {spent:7.0f} s {images:9d} images  {shown}", flush=True)
        if after is not None:
            after(curve)
    return curve


def data_kwargs(root: Path) -> dict:
    return {"dataset": "mnist", "root": str(root)}


# --- learners ---------------------------------------------------------------------------------
ANNEAL = False  # --anneal: learning rates decay linearly to 0 over each cell's budget
DEVICE = "cpu"  # --device: where RAM and DRAM train (the other learners stay on the CPU)
HYPER: dict = {}  # --hyper: the hyperparameters of RAM, DRAM and PPO cells, over the cell's own
RESULTS_OUT: Path | None = None  # --results: a folder for the cells instead of the default
SAVE: Path | None = None  # --save DIR: trained agents are saved there
CHECKPOINT: Path | None = None  # --checkpoint DIR: RAM and DRAM cells save and resume there
TRAIN_ERROR = False  # --train-error: each test also measures TEST_EPISODES training episodes
MC_SAMPLES = 0  # --mc M: RAM's tests also average the class over M sampled glimpse paths


def run_agent(name: str, task: str, env_kwargs: dict, budget: float, n: int, seed: int) -> dict:
    """An agent of cogrl's (RAM, DRAM) trained with ``learn`` under a deadline."""
    kind, _, glimpses = name.partition(":")
    env_id, task_kwargs = TASKS[task]
    kwargs = {**task_kwargs, **env_kwargs}
    hyper: dict = {}
    if kind == "ram":
        kwargs["n_glimpses"] = int(glimpses)
    else:  # dram, dram-ram, dram-ll
        hyper["glimpses_per_object"] = int(glimpses)
        if kind == "dram-ram":
            hyper.update(context_network=False, layers=1)
        if kind == "dram-ll":
            hyper["location_reward"] = "log_likelihood"
    stem = f"{task}__{name.replace(':', '-')}"
    agent, done = None, []
    made_with = {"hyper": {**hyper, **HYPER}, "env": kwargs}
    if CHECKPOINT is not None:
        agent, done = resume_cell(CHECKPOINT / f"{stem}.json", budget, n, made_with)
    if agent is None:
        agent = make(
            "dram" if kind.startswith("dram") else "ram", env_id, seed=seed,
            env_kwargs=kwargs, device=DEVICE, **{**hyper, **HYPER},
        )  # fmt: skip

    length = episode_length(agent)
    learn_slice = budget_slices(agent, budget, done[-1]["seconds"] if done else 0.0)

    def train_for(seconds: float) -> int:
        return learn_slice(seconds) // length

    # The test set's error, each test image once, where an episode shows one (RAM's tasks;
    # DRAM's compose several, drawn at random); --quick draws TEST_EPISODES.
    every = agent.make_core(1, split="test").num_items is not None and TEST_EPISODES == 10_000

    def test() -> dict:
        episodes = "all" if every else TEST_EPISODES
        result = evaluate(agent, episodes, num_envs=TEST_EPISODES, seed=TEST_SEED, split="test")
        metrics = test_metrics(result)
        if TRAIN_ERROR:  # overfitting or not: the same error on images it trains on
            seen = evaluate(agent, TEST_EPISODES, num_envs=TEST_EPISODES, seed=TEST_SEED)
            metrics["train_error"] = 1.0 - seen["accuracy"]
        if MC_SAMPLES:  # RAM cells only (main checks)
            metrics["error_mc"] = mc_error(agent, MC_SAMPLES)
        return metrics

    def keep(curve: Curve) -> None:
        """The cell's training state after each slice, for --checkpoint's resume: the agent
        (weights, optimiser, random states) under the slice's own name, then the record
        naming it, each written whole, so a run killed at any moment leaves a pair that
        fits; the previous slice's agent goes last."""
        record = CHECKPOINT / f"{stem}.json"
        previous = json.loads(record.read_text())["agent"] if record.is_file() else None
        saved = agent.save(CHECKPOINT / f"{stem}__slice{len(curve)}", training=True)
        tmp = record.with_name(record.name + ".tmp")
        state = {"budget": budget, "slices": n, **made_with, "agent": saved.name, "curve": curve}
        tmp.write_text(json.dumps(state))
        os.replace(tmp, record)
        if previous is not None and previous != saved.name:
            (CHECKPOINT / previous).unlink(missing_ok=True)

    curve = slices(budget, n, train_for, test, done, None if CHECKPOINT is None else keep)
    if SAVE is not None:
        SAVE.mkdir(parents=True, exist_ok=True)
        agent.save(SAVE / f"{stem}.pt")
    return {"curve": curve, "pixels": pixels_per_image(agent.make_core(1), length)}


@torch.no_grad()
def mc_error(agent, samples: int, chunk: int = 1000) -> float:
    """RAM's test error with each test image's class probabilities averaged over
    ``samples`` episodes whose glimpse locations are sampled from the location policy, as
    public RAM code reports its figures (the paper's and the other rows take the policy's
    mean location, one episode per image)."""
    probe = agent.make_core(1, split="test")
    items = probe.num_items
    probe.close()
    n = chunk * samples
    core = agent.make_core(n, split="test")
    wrong = 0
    for first in range(0, items, chunk):
        chosen = (torch.arange(first, first + chunk, device=core.device) % items).repeat(samples)
        obs, _ = core.reset(seed=TEST_SEED if first == 0 else None, options={"item": chosen})
        state, start = None, torch.ones(n, dtype=torch.bool, device=core.device)
        done = torch.zeros_like(start)
        while not bool(done.all()):  # RAM's episodes all take n_glimpses steps
            action, state = agent.predict(obs, state, start, deterministic=False)
            obs, _, terminated, truncated, info = core.step(action)
            start = terminated | truncated
            done |= start
        scores = action[:, LOCATION_SIZE:]  # 2 softmax(logits) - 1 at the last step
        probs = scores.reshape(samples, chunk, -1).add(1).mean(0)
        label = info[agent.label_key].reshape(samples, chunk)[0]
        counted = torch.arange(first, first + chunk, device=core.device) < items
        wrong += int(((probs.argmax(-1) != label) & counted).sum())
    core.close()
    return wrong / items


def add_mc_error(cells: list[str], save: Path | None, samples: int, full: bool, parser) -> None:
    """``mc``: for RAM cells run with ``--save``, the last test's error over ``samples``
    sampled glimpse paths (:func:`mc_error`) from the saved agent, added to the cell's
    record with this command."""
    from cogrl.agents import load

    if save is None or samples < 1 or not cells:
        parser.error("mc needs --cells TASK/ram:N ..., --save DIR (the run's) and --mc M >= 1")
    for cell in cells:
        task, _, learner = cell.partition("/")
        path = save / f"{task}__{learner.replace(':', '-')}.pt"
        record_path = cell_path(task, learner)
        if not learner.startswith("ram:") or not path.is_file() or not record_path.is_file():
            parser.error(f"{cell}: needs a RAM cell's record {record_path} and its agent {path}")
        agent = load(path, device="cpu")
        error = mc_error(agent, samples)
        print(f"{cell}: test error {error:.4f} over {samples} sampled glimpse paths", flush=True)
        record = json.loads(record_path.read_text())
        record["curve"][-1]["error_mc"] = error
        record["mc_samples"] = samples
        record["mc_command"] = (
            f"python benchmarks/attention.py mc --cells {cell} --save DIR --mc {samples}"
            + (" --full" if full else "")
        )
        record_path.write_text(json.dumps(record, indent=1))


@torch.no_grad()
def glimpse_rollout(agent, split: str, seed: int, episodes: int) -> dict:
    """``episodes`` episodes of ``split`` (reset with ``seed``) under the deterministic
    policy of the tables' tests, and for each: ``correct``; ``centre_on`` and ``patch_on``
    (N, n_digits), whether some glimpse it saw (the first included) had its centre in the
    digit's ink box (``on_digit``'s sense), or its finest patch overlapping the ink box;
    ``state`` (N, S), the agent's recurrent state after the episode's last glimpse, its
    tensors side by side; ``digits`` (N, n_digits), the digits' labels in reading order."""
    core = agent.make_core(episodes, split=split)
    obs, _ = core.reset(seed=seed)
    digits = core.label.clone().view(episodes, -1)
    if agent.env_kwargs.get("target") == "sum":  # the same canvases, labelled digit by digit
        twin = make_core(
            agent.env_id,
            episodes,
            agent.device,
            **{**agent.env_kwargs, "split": split, "target": "sequence"},
        )
        twin.reset(seed=seed)
        if not torch.equal(twin.canvas, core.canvas):
            raise RuntimeError("the sequence-labelled twin drew other canvases than the task's")
        digits = twin.label.clone()
        twin.close()
    half = core.retina.g / 2
    centre_on = torch.zeros(episodes, core.n_digits, dtype=torch.bool, device=core.device)
    patch_on = torch.zeros_like(centre_on)
    correct = torch.zeros(episodes, dtype=torch.bool, device=core.device)
    done = torch.zeros_like(correct)
    state, start, final = None, torch.ones_like(correct), None
    while not bool(done.all()):
        # obs["location"] is where this step's glimpse was taken, (x, y) in [-1, 1].
        # Counted while an episode runs, when the core's ink boxes are its digits'.
        seen = ~done[:, None]
        centre_on |= seen & core.digits_under(obs["location"])
        patch_on |= seen & core.digits_under(obs["location"], margin=half)
        action, state = agent.predict(obs, state, start, deterministic=True)
        obs, _, terminated, truncated, info = core.step(action)
        start = terminated | truncated
        ends = start & ~done
        flat = torch.cat([x.float().view(episodes, -1) for x in state if x.is_floating_point()], 1)
        final = flat.clone() if final is None else torch.where(ends[:, None], flat, final)
        correct |= ends & info["correct"].bool()
        done |= start
    core.close()
    return {
        "correct": correct, "centre_on": centre_on, "patch_on": patch_on, "state": final,
        "digits": digits,
    }  # fmt: skip


def where_errors(agent, episodes: int = TEST_EPISODES) -> tuple[dict, dict]:
    """Where a glimpse agent's test errors come from: ``episodes`` test episodes (seed
    ``TEST_SEED``) grouped by how many of their digits some glimpse fell on
    (:func:`glimpse_rollout`'s two senses, ``centre`` and ``patch``), each group's share
    of the episodes and its error, and the rollout itself. Wrong answers spread evenly
    over the groups say the location policy is not what limits the error."""
    test = glimpse_rollout(agent, "test", TEST_SEED, episodes)
    correct = test["correct"]
    result = {"episodes": episodes, "error": 1.0 - correct.float().mean().item()}
    for sense in ("centre", "patch"):
        count = test[f"{sense}_on"].sum(1)
        result[sense] = [
            {
                "digits": k,
                "share": (count == k).float().mean().item(),
                "error": 1.0 - correct[count == k].float().mean().item(),
            }
            for k in range(test["digits"].shape[1] + 1)
            if bool((count == k).any())
        ]
    return result, test


def digit_probe(agent, test: dict, rows: int = 4 * TEST_EPISODES, steps: int = 1500) -> list:
    """How well each digit can be read from the agent's state after its last glimpse:
    for each digit position, a linear probe (softmax regression on the standardised
    state, Adam, ``steps`` batches of 2,048) fitted on ``rows`` training episodes and
    scored on ``test`` (:func:`glimpse_rollout`'s); the test and training errors per
    position. A probe's error bounds from above what the state holds: where it is as high
    as the answer's, the state has not recognised the digits."""
    chunks = [
        glimpse_rollout(agent, "train", TEST_SEED + 1 + i, min(TEST_EPISODES, rows - first))
        for i, first in enumerate(range(0, rows, TEST_EPISODES))
    ]
    x = torch.cat([c["state"] for c in chunks])
    digits = torch.cat([c["digits"] for c in chunks])
    mean, std = x.mean(0), x.std(0) + 1e-6
    generator = torch.Generator().manual_seed(0)
    errors = []
    for position in range(digits.shape[1]):
        probe = torch.nn.Linear(x.shape[1], int(digits.max()) + 1)
        optimizer = torch.optim.Adam(probe.parameters(), lr=3e-3)
        for _ in range(steps):
            batch = torch.randint(0, len(x), (2048,), generator=generator)
            logits = probe((x[batch] - mean) / std)
            loss = torch.nn.functional.cross_entropy(logits, digits[batch, position])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        with torch.no_grad():
            wrong = [
                (probe((s - mean) / std).argmax(1) != d[:, position]).float().mean().item()
                for s, d in ((test["state"], test["digits"]), (x, digits))
            ]
        errors.append({"position": position, "test_error": wrong[0], "train_error": wrong[1]})
    return errors


def print_where(path: Path, root: Path, probe: bool) -> None:
    """``where``: :func:`where_errors` of the agent saved at ``path`` (and with ``probe``
    :func:`digit_probe`'s), its MNIST read from ``root`` (the folder it trained on may be
    another machine's)."""
    from cogrl.agents import load

    agent = load(path, device="cpu")
    if "root" in agent.env_kwargs:
        agent.env_kwargs["root"] = str(root)
    result, test = where_errors(agent)
    print(f"{path}: test error {result['error']:.4f} over {result['episodes']} episodes")
    senses = (("centre", "a glimpse's centre in the ink box"), ("patch", "the finest patch on it"))
    for sense, what in senses:
        print(f"  by digits with {what}:")
        for group in result[sense]:
            print(
                f"    {group['digits']}: {group['share']:.2%} of the episodes, "
                f"error {group['error']:.2%}"
            )
    if probe:
        print("  each digit read from the state after the last glimpse by a linear probe:")
        for row in digit_probe(agent, test):
            print(
                f"    digit {row['position'] + 1}: test error {row['test_error']:.2%} "
                f"(training {row['train_error']:.2%})"
            )


def learn_for(
    agent, seconds: float, budget: float = 0.0, spent: float = 0.0, anneal: bool | None = None
) -> int:
    """Train ``agent`` for ``seconds`` of wall time (``learn`` stopped by its callback at
    the first update past the deadline); the environment steps it took. With ``anneal``
    (default: ``--anneal``) the learning rate is set before each update to
    ``lr (1 - t / budget)``, ``t`` the training time so far (``spent`` before this call)."""
    anneal = ANNEAL if anneal is None else anneal
    start_steps = agent.num_timesteps
    start = time.perf_counter()
    deadline = start + seconds
    rate = agent.config.learning_rate

    def keep_going(*_) -> bool:
        now = time.perf_counter()
        if anneal and budget > 0:
            left = max(0.0, 1.0 - (spent + now - start) / budget)
            for group in agent.optimizer.param_groups:
                group["lr"] = rate * left
        return now < deadline

    keep_going()
    agent.learn(10**12, callback=keep_going, reset_num_timesteps=False)
    return agent.num_timesteps - start_steps


def budget_slices(agent, budget: float, spent: float = 0.0) -> Callable[[float], int]:
    """``train_for(seconds)``: :func:`learn_for` over one slice of ``budget``, keeping the
    training time spent so far (from ``spent``, a resumed run's) for ``--anneal``'s decay;
    the environment steps taken."""

    def train_for(seconds: float) -> int:
        nonlocal spent
        start = time.perf_counter()
        steps = learn_for(agent, seconds, budget, spent)
        spent += time.perf_counter() - start
        return steps

    return train_for


def resume_cell(record: Path, budget: float, n: int, made_with: dict) -> tuple:
    """The agent and curve that ``--checkpoint``'s ``record`` holds (``(None, [])`` where
    there is none yet): the agent with its training state, to go on with slice
    ``len(curve) + 1`` of ``n``. A record of another budget or number of slices is an
    error (its learning rate's decay and its slices would not be this run's), and so is
    one of other hyperparameters or environment arguments (``made_with``): the saved
    agent would go on with its own, not the command's."""
    from cogrl.agents.base import load_checkpoint

    if not record.is_file():
        return None, []
    saved = json.loads(record.read_text())
    if (saved["budget"], saved["slices"]) != (budget, n):
        raise SystemExit(
            f"{record} is a run of {saved['budget']:.0f} s in {saved['slices']} slices, not "
            f"{budget:.0f} s in {n}: run with its --budget-scale and --slices, or another "
            "--checkpoint folder"
        )
    for key, value in made_with.items():
        if key in saved and saved[key] != value:
            raise SystemExit(
                f"{record} was made with {key} {saved[key]}, not {value}: run with its "
                "--hyper and --env, or another --checkpoint folder"
            )
    agent, training = load_checkpoint(record.parent / saved["agent"], device=DEVICE)
    agent.load_training_state(training)
    curve = saved["curve"]
    print(f"    resumed from {record} after slice {len(curve)} of {n}", flush=True)
    return agent, curve


def test_metrics(result: dict) -> dict:
    """The test's error (1 - accuracy: sequences right, or targets found) and, on the
    search task, the mean saccades to the target and per episode."""
    metrics = {"error": 1.0 - result["accuracy"]}
    for key in ("label_accuracy", "saccades_to_target", "saccades", "on_digit"):
        if key in result:
            metrics[key] = result[key]
    return metrics


def run_ppo_gru(name: str, task: str, env_kwargs: dict, budget: float, n: int, seed: int) -> dict:
    """cogrl's PPO with a GRU core on the discrete mode (look at or declare on a cell),
    every observation key encoded (the cue included): its preset for the search task, with
    ``--hyper`` over it. ``ppo-gru-answer`` adds answer supervision (``answer_coef=1``):
    at an episode's last step, the negative log-likelihood of declaring on the target's
    cell, beside the reward (the hybrid loss of the RAM papers); ``ppo-gru-where`` takes
    that likelihood among the declaring actions only (``answer_scope="answers"``: where
    to declare, not when); ``ppo-gru`` is pure reinforcement."""
    from cogrl.agents.presets import preset

    env_id, task_kwargs = TASKS[task]
    p = preset("ppo", env_id)
    answer = {
        "ppo-gru": {},
        "ppo-gru-answer": {"answer_coef": 1.0},
        "ppo-gru-where": {"answer_coef": 1.0, "answer_scope": "answers"},
    }[name]
    hyper = {**p.hyperparameters, **answer, **HYPER}
    if ANNEAL:  # learn_for's decay over the budget, which PPO's own (per learn call) would undo
        if HYPER.get("anneal_lr"):
            raise SystemExit("--anneal decays over the budget: it cannot run with anneal_lr true")
        hyper["anneal_lr"] = False
    kwargs = {**task_kwargs, **env_kwargs, **p.env_kwargs}
    agent = make("ppo", env_id, seed=seed, env_kwargs=kwargs, **hyper)
    train_for = budget_slices(agent, budget)  # environment steps (saccades + declarations)

    def test() -> dict:
        result = evaluate(agent, TEST_SEARCH, num_envs=TEST_SEARCH, seed=TEST_SEED, split="test")
        return test_metrics(result)

    curve = slices(budget, n, train_for, test)
    core = agent.make_core(1)
    return {"curve": curve, "pixels": core.retina.k * core.retina.g**2, "unit": "steps"}


def run_saliency(name: str, task: str, env_kwargs: dict, budget: float, n: int, seed: int) -> dict:
    """The saliency-guided baseline: Itti-Koch winner-take-all fixations, no training."""
    from cogrl.envs.attention.search import saliency_search

    env_id, task_kwargs = TASKS[task]
    core = cogrl.envs.make_core(
        env_id, num_envs=TEST_SEARCH, split="test", **{**task_kwargs, **env_kwargs}
    )
    policy = saliency_search(core)
    obs, _ = core.reset(seed=TEST_SEED)
    found = torch.zeros(TEST_SEARCH, dtype=torch.bool)
    done = torch.zeros(TEST_SEARCH, dtype=torch.bool)
    to_target = torch.zeros(TEST_SEARCH)
    saccades = torch.zeros(TEST_SEARCH)
    while not bool(done.all()):
        obs, _, terminated, truncated, info = core.step(policy(obs))
        ended = (terminated | truncated) & ~done
        found |= ended & info["found"]
        to_target = torch.where(ended, info["saccades_to_target"].float(), to_target)
        saccades = torch.where(ended, info["saccades"].float(), saccades)
        done |= ended
    metrics = {
        "error": 1.0 - float(found.float().mean()),
        "saccades_to_target": float(to_target.mean()),
        "saccades": float(saccades.mean()),
    }
    print(f"    {metrics}", flush=True)
    return {"curve": [{"seconds": 0.0, "images": 0, **metrics}], "pixels": core.canvas_size**2}


def episode_length(agent) -> int:
    """Steps, each one glimpse, of the agent's (fixed-length) episodes: DRAM's
    ``episode_length``, else the core's bound (RAM's episodes all take ``n_glimpses``)."""
    length = getattr(agent, "episode_length", None)
    return int(length if length is not None else agent.make_core(1).max_episode_steps)


def pixels_per_image(core, glimpses: int) -> int:
    """Canvas values a glimpse agent reads per image: k patches of g x g per glimpse, plus
    the context view where the observation has one."""
    per_glimpse = core.retina.k * core.retina.g**2
    return glimpses * per_glimpse + core.context_size**2


def run_whole(
    name: str, task: str, env_kwargs: dict, budget: float, n: int, seed: int, batch: int = 128
) -> dict:
    """A whole-image model of :mod:`cogrl.baselines`, by cross-entropy on fresh canvases."""
    from cogrl.baselines import canvas_batch, make_model

    env_id, task_kwargs = TASKS[task]
    kwargs = {**task_kwargs, **env_kwargs}
    torch.manual_seed(seed)
    train = cogrl.envs.make_core(env_id, num_envs=batch, split="train", **kwargs)
    train.reset(seed=seed)
    test_core = cogrl.envs.make_core(env_id, num_envs=TEST_EPISODES, split="test", **kwargs)
    test_core.reset(seed=TEST_SEED)
    test_x = test_core.canvas_images()[:, None].clone()
    test_y = test_core.label.clone()
    model = make_model(name, train.canvas_size, train.n_classes, train.n_answers)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    def loss_of(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), labels.reshape(-1)
        )

    def train_for(seconds: float) -> int:
        deadline, images = time.perf_counter() + seconds, 0
        while time.perf_counter() < deadline:
            canvases, labels = canvas_batch(train)
            loss = loss_of(model(canvases), labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            images += canvases.shape[0]
        return images

    @torch.no_grad()
    def test() -> dict:
        wrong, labels_right = 0, 0.0
        for i in range(0, TEST_EPISODES, 1000):
            logits = model(test_x[i : i + 1000])
            pred = logits.argmax(-1).view(logits.shape[0], -1)
            right = pred == test_y[i : i + 1000].view(pred.shape)
            # A canvas is right when every label of its answer is.
            wrong += int((~right.all(1)).sum())
            labels_right += float(right.float().mean(1).sum())
        metrics = {"error": wrong / TEST_EPISODES}
        if test_y.ndim > 1:
            metrics["label_accuracy"] = labels_right / TEST_EPISODES
        return metrics

    curve = slices(budget, n, train_for, test)
    return {"curve": curve, "pixels": int(model.pixels_read)}


def run_learner(name: str, task: str, env_kwargs: dict, budget: float, n: int, seed: int) -> dict:
    kind = name.split(":")[0]
    if kind in ("ppo-gru", "ppo-gru-answer", "ppo-gru-where"):
        return run_ppo_gru(name, task, env_kwargs, budget, n, seed)
    if kind == "saliency":
        return run_saliency(name, task, env_kwargs, budget, n, seed)
    if kind in ("ram", "dram", "dram-ram", "dram-ll"):
        return run_agent(name, task, env_kwargs, budget, n, seed)
    if kind in ("fc", "cnn", "stn", "soft"):
        return run_whole(name, task, env_kwargs, budget, n, seed)
    raise ValueError(f"unknown learner {name!r}")


# --- report -----------------------------------------------------------------------------------
def results_dir() -> Path:
    if RESULTS_OUT is not None:
        return RESULTS_OUT
    return RESULTS_FULL if FULL else RESULTS


def cell_path(task: str, learner: str) -> Path:
    return results_dir() / f"{task}__{learner.replace(':', '-')}.json"


def load_cells() -> dict[tuple[str, str], dict]:
    cells = {}
    for path in sorted(results_dir().glob("*.json")):
        record = json.loads(path.read_text())
        cells[(record["task"], record["learner"])] = record
    return cells


def plot(cells: dict[tuple[str, str], dict], task: str) -> Path | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    chosen = {k: v for k, v in cells.items() if k[0] == task}
    if not chosen:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for (_, learner), record in chosen.items():
        curve = record["curve"]
        errors = [100 * p["error"] for p in curve]
        axes[0].plot([p["seconds"] for p in curve], errors, marker="o", label=learner)
        axes[1].plot([p["images"] for p in curve], errors, marker="o", label=learner)
    axes[0].set_xlabel("training wall time (s), 1 torch thread")
    axes[1].set_xlabel("training images seen")
    axes[1].set_xscale("log")
    from matplotlib.ticker import FormatStrFormatter, NullFormatter

    axes[1].xaxis.set_minor_formatter(NullFormatter())

    for ax in axes:
        ax.set_ylabel("test error (%)")
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(FormatStrFormatter("%g"))
        ax.yaxis.set_minor_formatter(FormatStrFormatter("%g"))
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend()
    fig.suptitle(f"{task}: test error on the MNIST test set")
    fig.tight_layout()
    FIGURES.mkdir(parents=True, exist_ok=True)
    path = FIGURES / f"attention{'60k' if FULL else ''}_{task}.png"
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


# The papers' numbers (test error) for each cell: Mnih et al. 2014, tables 1 and 2 (28 x 28,
# 60 x 60 translated and cluttered MNIST); Ba et al. 2015, table 1 (MNIST pairs).
ANCHORS = {
    ("mnist28", "ram:6"): 1.29,
    ("mnist28", "fc"): 1.69,
    ("mnist28", "cnn"): 1.21,
    ("translated60", "ram:4"): 1.54,
    ("translated60", "ram:6"): 1.22,
    ("translated60", "ram:8"): 1.2,
    ("translated60", "cnn"): 1.62,
    ("cluttered60", "ram:8"): 4.04,
    ("cluttered60", "cnn"): 8.09,
    ("pairs", "dram:3"): 5,
    ("pairs", "dram-ram:3"): 9,
    ("addition", "dram:3"): 2.5,
    ("addition", "dram:4"): 2.5,
    ("addition", "dram-ll:3"): 2.5,
    ("addition", "cnn"): "3.2% (its ConvNet 64-64-64-512)",
}
NAMES = {
    "fc": "fully connected (2 x 256)",
    "cnn": "convolutional (RAM paper's)",
    "stn": "spatial transformer",
    "soft": "soft attention over a CNN grid",
    "saliency": "Itti-Koch winner-take-all",
    "ppo-gru": "PPO, GRU core (discrete)",
    "ppo-gru-answer": "PPO, GRU core (discrete), answer supervision",
    "ppo-gru-where": "PPO, GRU core (discrete), answer supervision among declarations",
}


def paper_cell(paper: float | str | None) -> str:
    """A paper's error as a table cell: a number in percent, or a note as written."""
    if paper is None:
        return ""
    return paper if isinstance(paper, str) else f"{paper}%"


def learner_name(learner: str, hyper: dict | None = None) -> str:
    """The learner's name in the tables; ``hyper``, a record's hyperparameters, names the
    DRAM models (its RAM baseline too) with the convolutional glimpse network."""
    kind, _, n = learner.partition(":")
    conv = ", convolutional glimpse network" if (hyper or {}).get("glimpse_image") == "conv" else ""
    if kind == "ram":
        return f"RAM, {n} glimpses"
    if kind == "dram":
        return f"DRAM{conv}, {n} glimpses per digit"
    if kind == "dram-ram":
        return f"RAM (DRAM without context, one layer){conv}, {n} per digit"
    if kind == "dram-ll":
        return f"DRAM, log-likelihood reward{conv}, {n} glimpses per digit"
    return NAMES.get(kind, learner)


def final(record: dict) -> dict:
    return record["curve"][-1]


def at_time(record: dict, seconds: float) -> dict | None:
    """The last point of ``record``'s curve trained for at most ``seconds`` (1% over
    allowed: a slice ends a little after its share of the budget)."""
    points = [p for p in record["curve"] if p["seconds"] <= 1.01 * seconds]
    return points[-1] if points else None


def pct(x: float) -> str:
    return f"{100 * x:.2f}%"


def report(markdown_path: Path) -> str:
    cells = load_cells()
    get = cells.get
    if FULL:
        return report_full(cells, markdown_path)
    lines = [
        SECTION,
        "",
        "MNIST from `../shared/data/mnist`: **22.7k training images** (the first 22,699 of "
        "60,000) and the standard 10,000-image test set. Each cell trains one learner for "
        "its budget of training wall time (one seed, one torch thread, this 2-core CPU; "
        "other jobs shared the machine, so budgets are comparable within a table, not "
        "exactly across runs), testing after each fifth of it on 10,000 test-split episodes "
        "(2,000 for the search task's PPO and saliency cells, whose Itti-Koch maps are "
        "costly; seed 12345; not counted as training). The papers trained for "
        "days on a GPU with all 60k images: the gaps below are mostly training time. "
        "Pixels read: canvas values a model takes in per image (a glimpse agent's patches, "
        "k x g x g per glimpse, plus its context view; a whole-image model's canvas).",
        "",
    ]

    def table(title: str, keys: list[tuple[str, str]], extra: str = "") -> None:
        rows = [(k, cells[k]) for k in keys if k in cells]
        if not rows:
            return
        lines.extend([f"### {title}", ""])
        if extra:
            lines.extend([extra, ""])
        lines.append(
            "| task | model | budget (s) | images seen | test error | paper | pixels read "
            "| command |"
        )
        lines.append("|---|---|---|---|---|---|---|---|")
        for (task, learner), record in rows:
            last = final(record)
            error = pct(last["error"])
            if "label_accuracy" in last and task != "addition":  # one label: the same
                error += f" (labels: {pct(1 - last['label_accuracy'])})"
            paper = ANCHORS.get((task, learner))
            lines.append(
                f"| {task} | {learner_name(learner)} | {record['budget']:.0f} | "
                f"{last['images']:,} | **{error}** | "
                f"{paper_cell(paper)} | {record['pixels']:,} | "
                f"`{record['command']}` |"
            )
        lines.append("")

    ram_keys = [(t, ln) for t, ln, _ in TABLES["ram"]]
    table("1. The RAM paper's tables (Mnih et al. 2014)", ram_keys)
    goals = []
    r, c = get(("cluttered60", "ram:8")), get(("cluttered60", "cnn"))
    if r and c:
        met = final(r)["error"] < final(c)["error"]
        ratio = final(c)["images"] / max(1, final(r)["images"])
        why = (
            ""
            if met
            else f" In the same wall time the CNN trained on {ratio:.1f}x the images (on this"
            " CPU, RAM's recurrent glimpse steps cost more per image than the CNN's one pass"
            " over the canvas), and RAM learns where to look from its reward alone."
        )
        goals.append(
            f"- RAM below the CNN on cluttered MNIST: **{'met' if met else 'not met'}** "
            f"({pct(final(r)['error'])} vs {pct(final(c)['error'])}).{why}"
        )
    gaps = []
    for key in ram_keys:
        if key in cells and key[1].startswith("ram") and key in ANCHORS:
            gap = 100 * final(cells[key])["error"] - ANCHORS[key]
            gaps.append(f"{key[0]} {learner_name(key[1])}: {gap:+.2f} points")
    if gaps:
        within = all(float(g.split(": ")[1].split()[0]) <= 0.5 for g in gaps)
        why = (
            ""
            if within
            else " Minutes of one CPU thread on 22.7k training images, against the paper's"
            " training to convergence on 60k: most curves were still falling when their"
            " budget ended (see the plots), and where one levelled off it did so above the"
            " paper's error with RAM's defaults, which were chosen on scikit-learn's digits."
        )
        goals.append(
            f"- RAM within 0.5 points of the paper's errors: **{'met' if within else 'not met'}**"
            f" ({'; '.join(gaps)}).{why}"
        )
    lines.extend(goals + [""] if goals else [])

    pair_keys = [("pairs", ln) for _, ln, _ in TABLES["dram"]]
    table(
        "2. DRAM on MNIST pairs and addition (Ba et al. 2015), and 3. hard vs soft attention",
        pair_keys
        + [(t, ln) for t, ln, _ in TABLES["addition"]]
        + [("cluttered60", "ram:8"), ("cluttered60", "cnn")]
        + [(t, ln) for t, ln, _ in TABLES["soft"]],
        "Pairs: two digits apart on a 100 x 100 canvas, read left to right; the error is "
        "the share of canvases with either label wrong (in brackets: of labels wrong). "
        "Addition: the same canvases, answered by the sum of the two digits. The paper's "
        "figures are Ba et al. 2015's tables 1 (pairs) and 2 (addition, where its ConvNet "
        "is a 64-64-64-512 network, larger than the RAM paper's CNN here), quoted as "
        "recalled: this machine could not reach the paper to check them.",
    )
    d, r = get(("pairs", "dram:3")), get(("pairs", "dram-ram:3"))
    if d and r:
        met = final(d)["error"] < final(r)["error"]
        lines.extend(
            [
                f"- DRAM below RAM on MNIST pairs: **{'met' if met else 'not met'}** "
                f"({pct(final(d)['error'])} vs {pct(final(r)['error'])}).",
                "",
            ]
        )

    rows = [(k, cells[k]) for k in [("search", ln) for _, ln, _ in TABLES["search"]] if k in cells]
    if rows:
        lines.extend(
            [
                "### 4. Visual search",
                "",
                "`cogrl/VisualSearch-v0` on MNIST: find the cued digit among 3 distractors on "
                "a 100 x 100 canvas, at most 10 steps, 0.01 per saccade. Success: declared on "
                "the target; chance for a guess at one of the 4 digits is 25%. Saccades to "
                "target: saccades before the gaze first lands on the target (11 when never).",
                "",
                "| model | budget (s) | success | saccades to target | saccades | command |",
                "|---|---|---|---|---|---|",
            ]
        )
        for (_, learner), record in rows:
            last = final(record)
            budget = f"{record['budget']:.0f}" if record["budget"] else "none (not trained)"
            name = learner_name(learner)
            if learner.startswith("dram:"):
                name = f"DRAM, {learner[5:]} saccades then a declaration"
            if record.get("env"):  # the task's arguments beyond its defaults
                name += f", `{json.dumps(record['env'])}`"
            lines.append(
                f"| {name} | {budget} | "
                f"**{pct(1 - last['error'])}** | {last.get('saccades_to_target', 0):.2f} | "
                f"{last.get('saccades', 0):.2f} | `{record['command']}` |"
            )
        lines.append("")
    for task in dict.fromkeys(t for t, _ in cells if t != "search"):
        path = plot(cells, task)
        if path is not None:
            lines.append(f"![{task}]({os.path.relpath(path, markdown_path.parent)})")
    return "\n".join(lines) + "\n"


def report_full(cells: dict[tuple[str, str], dict], markdown_path: Path) -> str:
    """The section of the cells trained on the full MNIST (``--full``): one table in the
    papers' order, with where the glimpse models looked, and the learning curves."""
    lines = [
        SECTION_FULL,
        "",
        fill(
            "MNIST from `../shared/data/mnist`: all 60,000 training images and the standard "
            "10,000-image test set, each test image once per test (`evaluate(agent, 'all')`; "
            "DRAM's canvases compose several images: 10,000 drawn episodes, seed 12345). One "
            "seed, one torch thread on this 2-core CPU, two cells at a time (so the wall "
            "times are a busy machine's), tests after each slice of the budget, not counted "
            "as training; a budget marked (cuda) is a lent H200's, on which five trainings "
            "shared the GPU at once (BENCHMARKS.md, issue 21's GPU run), one marked with a "
            "CPU's name ran on that CPU, the others on the AMD EPYC that the earlier "
            "sessions' benchmarks name. `--anneal`: the "
            "agent's learning rate decays linearly to 0 over the budget. *On digit*: the "
            "share of the glimpses the model chose whose centre lies "
            "in the digit's ink box (the environments' `on_digit`), in the last test.",
            width=88,
        ),
        "",
        "| task | model | budget (s) | images seen | test error | paper | on digit | goal "
        "| command |",
        "|---|---|---:|---:|---:|---|---:|---|---|",
    ]
    order = [(t, ln) for table in TABLES.values() for t, ln, _ in table]
    for task, learner in dict.fromkeys(order):
        record = cells.get((task, learner))
        if record is None:
            continue
        last = final(record)
        on = last.get("on_digit")
        goal = GOALS_FULL.get((task, learner))
        verdict = ""
        if goal is not None:
            verdict = f"<= {goal:.1%}: " + ("met" if last["error"] <= goal else "**not met**")
        device = record.get("device", "cpu")
        where = record.get("cpu") if device == "cpu" else device
        budget = f"{record['budget']:.0f}" + (f" ({where})" if where else "")
        lines.append(
            f"| {task} | {learner_name(learner, record.get('hyper'))} | {budget} "
            f"| {last['images']:,}{' steps' if record.get('unit') == 'steps' else ''} "
            f"| **{pct(last['error'])}** "
            f"| {paper_cell(ANCHORS.get((task, learner)))} "
            f"| {'' if on is None else f'{on:.2f}'} | {verdict} | `{record['command']}` |"
        )
    lines.append("")
    if any(task == "search" for task, _ in cells):
        lines += [
            "- Visual search: the error is the share of test episodes whose declaration "
            "missed the cued digit (1 - success; chance 75%), its images seen the "
            "environment steps (saccades and declarations) of the PPO cell.",
            "",
        ]
    for task, learner in dict.fromkeys(order):
        lines += diagnostics(task, learner, cells.get((task, learner)))
    for task, model, other, names, claim in SAME_TIME_CLAIMS:
        lines += same_time_claim(cells.get((task, model)), cells.get((task, other)), names, claim)
    for task in dict.fromkeys(t for t, _ in cells if t != "search"):
        path = plot(cells, task)
        if path is not None:
            lines.append(f"![{task}]({os.path.relpath(path, markdown_path.parent)})")
    return "\n".join(lines) + "\n"


def diagnostics(task: str, learner: str, record: dict | None) -> list[str]:
    """A cell's last test beyond the table's error, where it was run with them: the
    error on training images (``--train-error``) and averaged over sampled glimpse paths
    (``--mc``)."""
    if record is None:
        return []
    last, parts = final(record), []
    if "train_error" in last:
        env = record.get("env")
        drawn = f"drawn as in training, `{json.dumps(env)}`; " if env else ""
        parts.append(
            f"train error {pct(last['train_error'])} on 10,000 random training images "
            f"({drawn}test {pct(last['error'])})"
        )
    if "error_mc" in last:
        mc = (
            f"test error {pct(last['error_mc'])} with each image's class averaged over "
            f"{record['mc_samples']} sampled glimpse paths"
        )
        if "mc_command" in record:
            mc += f" (`{record['mc_command']}`, DIR the run's `--save`)"
        parts.append(mc)
    if not parts:
        return []
    return [
        f"- {task}, {learner_name(learner, record.get('hyper'))}: " + "; ".join(parts) + ".",
        "",
    ]


#: Issue 21's comparisons at equal wall time: (task, model, the model it must beat, their
#: short names, claim).
SAME_TIME_CLAIMS = [
    (
        "cluttered60",
        "ram:8",
        "cnn",
        ("RAM", "the CNN"),
        "RAM below the RAM paper's CNN on cluttered MNIST",
    ),
    (
        "pairs",
        "dram:3",
        "dram-ram:3",
        ("DRAM", "RAM"),
        "DRAM below its RAM baseline on MNIST pairs",
    ),
]


def same_time_claim(
    a: dict | None, b: dict | None, names: tuple[str, str], claim: str
) -> list[str]:
    """``claim`` (``a``'s error below ``b``'s) judged at equal training wall time: each
    model's last test within the shorter budget, both trained on the same CPU."""
    if not (a and b and a.get("device", "cpu") == b.get("device", "cpu") == "cpu"):
        return []
    if a.get("cpu") != b.get("cpu"):  # equal wall time means something on one machine only
        return []
    seconds = min(a["budget"], b["budget"])
    at_a, at_b = at_time(a, seconds), at_time(b, seconds)
    if not (at_a and at_b):
        return []
    met = at_a["error"] < at_b["error"]
    notes = [
        f"{name}'s test at {at['seconds']:.0f} s of its {r['budget']:.0f}-s run"
        for name, at, r in ((names[0], at_a, a), (names[1], at_b, b))
        if r["budget"] > seconds
    ]
    return [
        f"- {claim} in the same wall time ({seconds:.0f} s): "
        f"**{'met' if met else 'not met'}** ({pct(at_a['error'])} against "
        f"{pct(at_b['error'])}, {names[1]} having seen "
        f"{at_b['images'] / max(1, at_a['images']):.1f}x the images"
        + "".join(f"; {n}" for n in notes)
        + ").",
        "",
    ]


#: Issue 21's test-error goals on the full MNIST.
GOALS_FULL = {
    ("mnist28", "ram:6"): 0.015,
    ("translated60", "ram:6"): 0.018,
    ("cluttered60", "ram:8"): 0.05,
    ("pairs", "dram:3"): 0.07,
    ("addition", "dram:3"): 0.05,
    ("addition", "dram:4"): 0.05,
    ("addition", "dram-ll:3"): 0.05,
    # visual search: >= 90% of the targets found, an error (targets missed) <= 10%
    ("search", "ppo-gru"): 0.10,
    ("search", "ppo-gru-answer"): 0.10,
    ("search", "ppo-gru-where"): 0.10,
    ("search", "dram:3"): 0.10,
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("action", choices=["run", "report", "mc", "where"])
    parser.add_argument("--table", choices=sorted(TABLES))
    parser.add_argument("--cells", nargs="+", help="TASK/LEARNER cells of the table to run")
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT)
    parser.add_argument("--slices", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--budget-scale", type=float, default=1.0)
    parser.add_argument("--quick", action="store_true", help="10 s cells, saves nothing")
    parser.add_argument("--markdown", type=Path, default=HERE.parent / "BENCHMARKS.md")
    parser.add_argument(
        "--anneal", action="store_true", help="decay agents' learning rates to 0 over the budget"
    )
    parser.add_argument("--save", type=Path, help="folder to save the trained agents in")
    parser.add_argument(
        "--agent", type=Path, help="where: a saved RAM or DRAM agent (--save's or --checkpoint's)"
    )
    parser.add_argument(
        "--probe", action="store_true", help="where: also read each digit from the final state"
    )
    parser.add_argument(
        "--checkpoint", type=Path,
        help="RAM and DRAM cells: save the training state there after each slice, and "
        "resume from it (a run that spans sessions)",
    )  # fmt: skip
    parser.add_argument(
        "--mc",
        type=int,
        default=0,
        metavar="M",
        help="RAM on one-image tasks: also the test error averaged over M sampled glimpse paths",
    )
    parser.add_argument(
        "--train-error",
        action="store_true",
        help="RAM and DRAM: also test on 10,000 random training episodes (train_error)",
    )
    parser.add_argument("--device", default="cpu", help="RAM's and DRAM's device (cpu, cuda)")
    parser.add_argument(
        "--env", type=json.loads, default={},
        help='the environments\' arguments beyond the task\'s, e.g. \'{"train_shift": 2}\'',
    )  # fmt: skip
    parser.add_argument(
        "--hyper", type=json.loads, default={},
        help='the hyperparameters of RAM, DRAM or PPO cells as JSON, e.g. \'{"num_envs": 1024}\'',
    )  # fmt: skip
    parser.add_argument(
        "--results", type=Path, help="folder for the cells' JSON (default: results/attention*)"
    )
    parser.add_argument(
        "--full",
        action="store_true",
        help="cells on the full training set: kept in results/attention-60k, own section",
    )
    args = parser.parse_args(argv)
    if args.action != "where" and (args.agent is not None or args.probe):
        parser.error(f"--agent and --probe belong to the where action, not {args.action}")
    global FULL
    FULL = args.full
    if args.action == "report":
        from report import write_section

        text = report(args.markdown)
        print(text)
        write_section(args.markdown, SECTION_FULL if FULL else SECTION, text)
        return
    if args.action == "mc":
        global RESULTS_OUT
        RESULTS_OUT = args.results
        add_mc_error(args.cells or [], args.save, args.mc, args.full, parser)
        return
    if args.action == "where":
        if args.agent is None or not args.agent.is_file():
            parser.error(f"where needs --agent FILE, a saved RAM or DRAM agent; got {args.agent}")
        print_where(args.agent, args.root, args.probe)
        return
    if args.table is None:
        parser.error("run needs --table")
    if not args.root.is_dir():
        parser.error(f"--root {args.root} is not a folder holding MNIST's IDX files")
    global TEST_EPISODES, TEST_SEARCH, ANNEAL, SAVE, DEVICE, HYPER, TRAIN_ERROR
    global MC_SAMPLES, CHECKPOINT
    CHECKPOINT = args.checkpoint
    ANNEAL, SAVE, TRAIN_ERROR, MC_SAMPLES = args.anneal, args.save, args.train_error, args.mc
    if args.mc < 0:
        parser.error(f"--mc must be a number of sampled glimpse paths >= 0, got {args.mc}")
    DEVICE, HYPER, RESULTS_OUT = args.device, args.hyper, args.results
    cells = TABLES[args.table]
    if args.cells:
        cells = [c for c in cells if f"{c[0]}/{c[1]}" in args.cells]
        if not cells:
            parser.error(f"no cell of table {args.table} among {args.cells}")
    if not isinstance(args.env, dict):
        parser.error(f"--env must be a JSON object of environment arguments, got {args.env!r}")
    if not isinstance(args.hyper, dict):
        parser.error(f"--hyper must be a JSON object of hyperparameters, got {args.hyper!r}")
    others = [f"{t}/{ln}" for t, ln, _ in cells if not ln.startswith(("ram", "dram"))]
    # cells trained by cogrl's learners, whose hyperparameters --hyper sets
    fixed = [f"{t}/{ln}" for t, ln, _ in cells if not ln.startswith(("ram", "dram", "ppo"))]
    not_ram = [f"{t}/{ln}" for t, ln, _ in cells if not ln.startswith("ram:")]
    if args.mc and not_ram:
        parser.error(f"--mc averages RAM's glimpse paths: not for {not_ram}")
    if args.checkpoint and others:
        parser.error(f"--checkpoint applies to RAM and DRAM cells only, not {others}")
    if args.checkpoint and args.quick:
        parser.error("--checkpoint keeps a run's state, and --quick runs save nothing")
    if args.train_error and others:
        parser.error(f"--train-error applies to RAM and DRAM cells only, not {others}")
    if args.hyper and fixed:
        parser.error(f"--hyper applies to RAM, DRAM and PPO cells only, not {fixed}")
    if args.device != "cpu" and others:
        parser.error(f"--device applies to RAM and DRAM cells only, not {others}")
    if args.quick:
        TEST_EPISODES = TEST_SEARCH = 500
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {platform.machine()}",
        flush=True,
    )
    for task, learner, budget in cells:
        budget = 10.0 if args.quick else budget * args.budget_scale
        n = 2 if args.quick else args.slices
        print(f"{task} {learner} ({budget:.0f} s)", flush=True)
        env_kwargs = {**data_kwargs(args.root), **args.env}
        result = run_learner(learner, task, env_kwargs, budget, n, args.seed)
        if args.quick:
            continue
        command = (
            f"python benchmarks/attention.py run --table {args.table} --cells {task}/{learner}"
        )
        if args.budget_scale != 1.0:
            command += f" --budget-scale {args.budget_scale}"
        if args.slices != 5:
            command += f" --slices {args.slices}"
        if args.anneal:
            command += " --anneal"
        if args.train_error:
            command += " --train-error"
        if args.save:
            command += " --save DIR"
        if args.checkpoint:
            command += " --checkpoint DIR"
        if args.mc:
            command += f" --mc {args.mc}"
        if args.full:
            command += " --full"
        if args.device != "cpu":
            command += f" --device {args.device}"
        if args.env:
            command += f" --env '{json.dumps(args.env)}'"
        if args.hyper:
            command += f" --hyper '{json.dumps(args.hyper)}'"
        if args.results:
            command += f" --results {args.results}"
        results_dir().mkdir(parents=True, exist_ok=True)
        # The benchmarks folder is on sys.path when this runs as a script.
        from throughput import cpu_name

        record = {
            "task": task,
            "learner": learner,
            "budget": budget,
            "seed": args.seed,
            "threads": torch.get_num_threads(),
            "device": args.device,
            **({"cpu": cpu_name()} if args.device == "cpu" else {}),
            "hyper": args.hyper,
            **({"env": args.env} if args.env else {}),
            "command": command,
            **({"mc_samples": args.mc} if args.mc else {}),
            **result,
        }
        cell_path(task, learner).write_text(json.dumps(record, indent=1))


if __name__ == "__main__":
    if "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(1)
    main(sys.argv[1:])
