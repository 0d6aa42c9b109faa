"""Soak: millions of environment steps and a hundred thousand updates in one process, with
flat memory and a steady speed (``pytest -m soak``; deselected by default).

Two learners cover the two counts: A2C with a GRU core on many environments of a cogrl core
reaches 10 million environment steps (the batched core, rollout storage, recurrent state
and episode statistics at scale), and DQN with a small replay on few environments reaches
100,000 gradient updates (replay writes and samples, target copies, the optimiser). Each
run is cut into windows; after every window the process's resident set size (RSS, from
``/proc/self/statm``) and the window's steps per second are recorded and printed in the
test report. After a warm-up (the replay full, allocators and caches settled) the RSS
(the median of the last five windows against the first five) may grow by less than 5%,
and the late windows' speed must stay within a generous factor of the early windows' (a
leak of per-step work -- a growing list, a Python-side history --
shows as a slowdown long before it shows as memory).

``SOAK_SCALE`` (default 1) scales the step and update counts, for a quick try of the test
itself: ``SOAK_SCALE=0.05 pytest -m soak tests/test_soak.py``.
"""

from __future__ import annotations

import os
import statistics
import time
from dataclasses import dataclass, field
from typing import Any

import pytest
import torch

import cogrl.agents
from cogrl.agents.base import Agent

pytestmark = pytest.mark.soak

SCALE = float(os.environ.get("SOAK_SCALE", "1"))
ENV = "cogrl/DelayedRecall-v0"  # millions of steps per second: the learner's cost dominates
WINDOWS = 20
WARMUP_WINDOWS = 2
RSS_GROWTH = 0.05
# The late windows' steps/s must be at least this fraction of the early windows' (generous:
# the machine is shared, and only a slowdown that grows with the step count is a failure).
SPEED_FRACTION = 1 / 3


def rss_bytes() -> int:
    """The resident set size of this process now (not the peak), from ``/proc``."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE")


def updates_done(agent: Agent) -> int:
    """Gradient updates so far: Adam's step count of the first parameter."""
    optimizer: torch.optim.Optimizer = agent.optimizer  # type: ignore[attr-defined]
    first = optimizer.param_groups[0]["params"][0]
    state = optimizer.state.get(first, {})
    return int(state["step"]) if "step" in state else 0


@dataclass
class Windows:
    """Callback that records RSS and speed at the end of every window of ``steps`` steps."""

    steps: int
    rows: list[dict[str, float]] = field(default_factory=list)
    _next: int = 0
    _t: float = field(default_factory=time.perf_counter)
    _last_steps: int = 0
    extra: Any = None

    def __post_init__(self) -> None:
        self._next = self.steps

    def __call__(self, agent: Agent, info: dict[str, float]) -> None:
        now = int(info["timesteps"])
        if now < self._next:
            return
        t = time.perf_counter()
        row = {
            "steps": now,
            "updates": updates_done(agent),
            "rss_mib": rss_bytes() / 2**20,
            "steps_per_s": (now - self._last_steps) / (t - self._t),
        }
        if self.extra is not None:
            row.update(self.extra(agent))
        self.rows.append(row)
        self._t, self._last_steps = t, now
        while self._next <= now:
            self._next += self.steps

    def table(self) -> list[str]:
        keys = list(self.rows[0])
        lines = ["  ".join(f"{k:>12}" for k in keys)]
        for row in self.rows:
            lines.append("  ".join(f"{row[k]:>12,.1f}" for k in keys))
        return lines


def check_flat(
    name: str, windows: Windows, report_lines: dict[str, list[str]], warmup: int = WARMUP_WINDOWS
) -> None:
    """RSS growth and speed after the first ``warmup`` windows: the median of the last
    five windows against the median of the first five (a single window's RSS moves by a few
    percent as the allocator returns and takes pages; a leak moves the level)."""
    rows = windows.rows
    lines = report_lines.setdefault(f"soak: {name}", [])
    lines.extend(windows.table())
    assert len(rows) >= WINDOWS, f"only {len(rows)} windows were recorded"
    assert len(rows) - warmup >= 10, f"a warm-up of {warmup} windows leaves too few to compare"
    after = rows[warmup:]
    early_rss = statistics.median(r["rss_mib"] for r in after[:5])
    late_rss = statistics.median(r["rss_mib"] for r in after[-5:])
    peak = max(r["rss_mib"] for r in after)
    early_speed = statistics.median(r["steps_per_s"] for r in after[:5])
    late_speed = statistics.median(r["steps_per_s"] for r in after[-5:])
    lines.append(
        f"RSS after warm-up (median of 5 windows) {early_rss:,.1f} MiB early, {late_rss:,.1f} "
        f"MiB late ({late_rss / early_rss - 1:+.2%}), peak {peak:,.1f} MiB; median steps/s "
        f"early {early_speed:,.0f}, late {late_speed:,.0f} ({late_speed / early_speed:.2f}x)"
    )
    print("\n".join(lines))
    assert late_rss <= early_rss * (1 + RSS_GROWTH), (
        f"{name}: RSS grew from {early_rss:,.1f} MiB to {late_rss:,.1f} MiB after warm-up "
        f"(more than {RSS_GROWTH:.0%})"
    )
    assert late_speed >= SPEED_FRACTION * early_speed, (
        f"{name}: steps/s fell from {early_speed:,.0f} (early windows) to {late_speed:,.0f} "
        "(late windows)"
    )


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="reads RSS from /proc")
def test_ten_million_steps_with_flat_memory_and_speed(report_lines):
    total = int(10_000_000 * SCALE)
    agent = cogrl.agents.make(
        "a2c",
        ENV,
        device="cpu",
        seed=0,
        num_envs=1024,
        n_steps=8,
        policy={"hidden_sizes": [32], "core": "gru", "core_size": 32},
    )
    windows = Windows(total // WINDOWS)
    agent.learn(total, callback=windows)
    assert agent.num_timesteps >= total
    check_flat(f"A2C (GRU) on {ENV}, {agent.num_timesteps:,} steps", windows, report_lines)


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="reads RSS from /proc")
def test_a_hundred_thousand_updates_with_flat_memory_and_speed(report_lines):
    updates = int(100_000 * SCALE)
    num_envs = 4
    agent = cogrl.agents.make(
        "dqn",
        ENV,
        device="cpu",
        seed=0,
        num_envs=num_envs,
        train_freq=num_envs,  # one update per step of the environments
        buffer_size=10_000,
        learning_starts=1_000,
        batch_size=32,
        target_update_interval=1_000,
        policy={"hidden_sizes": [32, 32]},
    )
    # The updates start once the replay holds learning_starts transitions; the run ends
    # when `updates` of them are done.
    total = (updates + agent.config.learning_starts // num_envs) * num_envs
    windows = Windows(total // WINDOWS, extra=lambda a: {"replay": float(a.replay.size)})
    agent.learn(total, callback=windows)
    assert updates_done(agent) >= updates
    # The comparison starts once the replay is full (its storage is preallocated, but the
    # pages are touched as it fills).
    full = [i for i, row in enumerate(windows.rows) if row["replay"] == agent.replay.capacity]
    assert full, "the replay never filled"
    check_flat(
        f"DQN on {ENV}, {updates_done(agent):,} updates, {agent.num_timesteps:,} steps",
        windows,
        report_lines,
        warmup=max(WARMUP_WINDOWS, full[0] + 1),
    )
