"""Time of one step of each memory core, alone (no learner): acting (a step without
gradients) and learning (``Core.sequence`` forward and backward over 32 steps, per step),
at a batch of 64 and 1024, one torch thread. Input width 64, output width 100; the NTM
128 x 20 (the paper's copy machine), the DNC and MemN2N at their defaults.

    python benchmarks/core_speed.py
"""

from __future__ import annotations

import time

import torch

from cogrl.nn import make_core

CORES = {"lstm": {}, "ntm": {"memory_size": 128, "memory_width": 20}, "dnc": {}, "memn2n": {}}
STEPS = 32


def main() -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    print("| core | batch | step without grad (ms) | sequence fwd+bwd per step (ms) |")
    print("|---|---|---|---|")
    for batch in (64, 1024):
        for name, settings in CORES.items():
            core = make_core(name, 64, 100, **settings)
            x = torch.randn(STEPS, batch, 64)
            state = core.initial_state(batch)
            with torch.no_grad():
                core(x[0], state)  # warm-up
                start = time.perf_counter()
                s = state
                for t in range(STEPS):
                    _, s = core(x[t], s)
                step = (time.perf_counter() - start) / STEPS
            start = time.perf_counter()
            h, _ = core.sequence(x, state)
            h.sum().backward()
            sequence = (time.perf_counter() - start) / STEPS
            print(f"| {name} | {batch} | {step * 1e3:.2f} | {sequence * 1e3:.2f} |", flush=True)


if __name__ == "__main__":
    main()
