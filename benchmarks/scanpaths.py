"""Scanpath models against real human eye movements: the issue-10 table, one run.

Every model makes scanpaths of 9 fixations (OSIE's median) on the test images of the shared
OSIE subset (``../shared/data/osie``: 40 of its 200 images by :func:`cogrl.datasets.
image_split`, 15 observers each), scored by :func:`cogrl.scanpaths.score_scanpaths`:
saliency-map metrics (AUC-Judd, shuffled AUC, NSS, CC) of the model's map where it has one
(centre bias, the saliency models) and of the density of its fixations otherwise; scanpath
metrics against every observer (MultiMatch's 5 dimensions and their mean, ScanMatch on a
12 x 8 grid, string-edit similarity on the same grid); the human-consistency KL (MultiMatch).

Rows: the human ceiling (each observer against the other 14), centre bias, random, each
saliency model's map with its winner-take-all + inhibition-of-return scanpath, Wang et al.
2011 (greedy residual perceptual information on the site-entropy-rate map), and PPO
(``cogrl/Scanpath-v0``'s preset, trained on the 160 training images) with each reward.

    python benchmarks/scanpaths.py --steps 300000 --write
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from report import write_section
from throughput import machine

import cogrl.agents
from cogrl import scanpaths
from cogrl.agents.presets import preset
from cogrl.datasets import load_fixations

OSIE = Path(__file__).resolve().parents[2] / "shared" / "data" / "osie"
ENV_ID = "cogrl/Scanpath-v0"
COLUMNS = (
    ("auc_judd", "AUC-Judd"),
    ("auc_shuffled", "sAUC"),
    ("nss", "NSS"),
    ("cc", "CC"),
    ("multimatch_vector", "MM vector"),
    ("multimatch_direction", "MM direction"),
    ("multimatch_length", "MM length"),
    ("multimatch_position", "MM position"),
    ("multimatch_duration", "MM duration"),
    ("multimatch", "MM mean"),
    ("scanmatch", "ScanMatch"),
    ("sed", "SED sim."),
    ("human_consistency_kl", "human-consistency KL"),
)
SCANPATH_KEYS = ("multimatch", "scanmatch", "sed")  # higher is better; the KL: lower
CAVEATS = """
Reading the table: the map metrics of a model without a map of its own (random, Wang
2011, the agents) score the density of its 9 fixations per image (sigma one degree, 24
pixels), a sparse map that AUC and CC penalise; the saliency models' rows score their maps
at each image's resolution, and their scanpath columns score the winner-take-all
scanpath on that map. The human row scores each observer against the other 14 (maps: the
others' fixation density). MultiMatch's duration column compares a fixed duration (the
image's median human fixation) for every model. The human-consistency KL is
KL(human-vs-human || model-vs-human) over 10-bin histograms of MultiMatch scores, averaged
over its five dimensions and the images (cogrl.metrics.human_consistency states the
choices); lower is better. One seed; the agents trained on the 160 training images.
"""


def train_agent(reward: str, steps: int, seed: int, root: Path):
    p = preset("ppo", ENV_ID)
    agent = cogrl.agents.make(
        "ppo",
        ENV_ID,
        seed=seed,
        env_kwargs={**p.env_kwargs, "human_data": str(root), "reward": reward},
        **p.hyperparameters,
    )
    start = time.perf_counter()
    agent.learn(steps)
    return agent, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=300_000, help="PPO steps per reward")
    parser.add_argument("--root", type=Path, default=OSIE, help="the human-data folder")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--write", action="store_true", help="write BENCHMARKS.md")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    test = load_fixations(args.root, "test")
    rows: dict[str, dict[str, float]] = {}
    notes: dict[str, str] = {}

    def report(name: str, scores: dict[str, float], seconds: float) -> None:
        rows[name] = scores
        print(f"{name}: {scores} ({seconds:.0f} s)", file=sys.stderr, flush=True)

    start = time.perf_counter()
    report("human (each observer vs the others)", scanpaths.human_ceiling(test), 0)
    for name in (
        "center_bias",
        "random",
        *(b for b in scanpaths.BASELINES if b.startswith("wta:")),
        "wang2011",
    ):
        start = time.perf_counter()
        paths = scanpaths.baseline_scanpaths(name, test, seed=args.seed)
        maps = None
        if name == "center_bias" or name.startswith("wta:"):
            maps = scanpaths.saliency_maps(name.removeprefix("wta:"), test)
        report(name, scanpaths.score_scanpaths(paths, test, maps), time.perf_counter() - start)
    for reward in ("information", "human"):
        agent, seconds = train_agent(reward, args.steps, args.seed, args.root)
        paths = scanpaths.agent_scanpaths(agent, test)
        name = f"ppo, reward={reward}"
        report(name, scanpaths.score_scanpaths(paths, test), seconds)
        notes[name] = f"{agent.num_timesteps:,} steps, {seconds / 60:.1f} min"

    lines = [
        "## Scanpaths on OSIE: saliency maps and scanpath models against human eye movements",
        "",
        f"Command: `python benchmarks/scanpaths.py --steps {args.steps}` (seed {args.seed}, "
        f"{args.threads} torch thread(s); see the script's docstring). {len(test)} test "
        "images of the shared OSIE subset, 15 observers each; 9 fixations per model "
        "scanpath, one per image (the agents' most likely actions).",
        "",
        *(f"- {line}" for line in machine("cpu")),
        "",
        "| model | " + " | ".join(title for _, title in COLUMNS) + " |",
        "|---|" + "---:|" * len(COLUMNS),
    ]
    for name, scores in rows.items():
        label = name if name not in notes else f"{name} ({notes[name]})"
        lines.append(f"| {label} | " + " | ".join(f"{scores[k]:.3f}" for k, _ in COLUMNS) + " |")
    lines += ["", *CAVEATS.strip().splitlines(), "", *goals(rows)]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.write:
        write_section(Path(__file__).resolve().parent.parent / "BENCHMARKS.md", lines[0], text)


def goals(rows: dict[str, dict[str, float]]) -> list[str]:
    itti, ser = rows["wta:itti_koch"], rows["wta:site_entropy_rate"]
    ceiling = rows["human (each observer vs the others)"]
    out = ["Goals:"]
    met = ser["auc_judd"] > itti["auc_judd"]
    out.append(
        f"- site entropy rate above Itti-Koch in map AUC-Judd: {ser['auc_judd']:.3f} vs "
        f"{itti['auc_judd']:.3f}, **{'met' if met else 'not met'}**"
    )
    for reward in ("information", "human"):
        agent = rows[f"ppo, reward={reward}"]
        beaten = [k for k in SCANPATH_KEYS if agent[k] > itti[k]]
        kl = agent["human_consistency_kl"] < itti["human_consistency_kl"]
        ok = len(beaten) == len(SCANPATH_KEYS) and kl
        out.append(
            f"- PPO ({reward} reward) beats Itti-Koch WTA+IOR on every scanpath metric "
            f"({', '.join(f'{k} {agent[k]:.3f} vs {itti[k]:.3f}' for k in SCANPATH_KEYS)}) and "
            f"on the KL ({agent['human_consistency_kl']:.3f} vs "
            f"{itti['human_consistency_kl']:.3f}): **{'met' if ok else 'not met'}**"
        )
    agent = rows["ppo, reward=human"]
    halfway = {
        k: itti[k] + 0.5 * (ceiling[k] - itti[k]) for k in (*SCANPATH_KEYS, "human_consistency_kl")
    }
    ok = all(agent[k] >= halfway[k] for k in SCANPATH_KEYS) and (
        agent["human_consistency_kl"] <= halfway["human_consistency_kl"]
    )
    out.append(
        "- the human-reward agent within half of the gap between Itti-Koch and the human "
        "ceiling (at least half-way on "
        + ", ".join(f"{k} (half-way {v:.3f}: {agent[k]:.3f})" for k, v in halfway.items())
        + f"): **{'met' if ok else 'not met'}**"
    )
    return out


if __name__ == "__main__":
    main()
