"""The NTM core trained supervised on the copy task, as pytorch-ntm trains its NTM: a check
that ``cogrl.nn.NTMCore`` learns what the paper's machine learns when the target is given.

``NTMCore`` (the paper's copy machine: 128 x 20 memory, one read and one write head, an
LSTM controller of 100) with a linear read-out of 8 bits, binary cross-entropy on the
output steps, Adam at 1e-3, gradients clipped to norm 10, batches of 16 sequences of one
length drawn from 1-20 (the input as ``cogrl/Copy-v0`` shows it: bits, a delimiter flag,
an "answer now" flag). Every 250 updates it prints the mean bits wrong per sequence over
the last 250 batches. pytorch-ntm (batch 1, RMSprop) converges within about 30,000
sequences.

    python benchmarks/ntm_supervised.py --updates 3000     # about 3 minutes, one thread
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from cogrl.nn import make_core

BITS = 8


def batch(generator: torch.Generator, size: int) -> tuple[torch.Tensor, torch.Tensor, int]:
    length = int(torch.randint(1, 21, (), generator=generator))
    seq = torch.randint(0, 2, (length, size, BITS), generator=generator).float()
    x = torch.zeros(2 * length + 1, size, BITS + 2)
    x[:length, :, :BITS] = seq
    x[length, :, BITS] = 1.0  # delimiter
    x[length + 1 :, :, BITS + 1] = 1.0  # answer now
    return x, seq, length


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--updates", type=int, default=3000)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    core = make_core("ntm", BITS + 2, 100, memory_size=128, memory_width=20)
    readout = torch.nn.Linear(100, BITS)
    parameters = [*core.parameters(), *readout.parameters()]
    optimizer = torch.optim.Adam(parameters, lr=1e-3)
    errors: list[float] = []
    start = time.perf_counter()
    for update in range(1, args.updates + 1):
        x, seq, length = batch(generator, args.batch)
        h, _ = core.sequence(x, core.initial_state(args.batch))
        logits = readout(h[length + 1 :])
        loss = F.binary_cross_entropy_with_logits(logits, seq)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(parameters, 10.0)
        optimizer.step()
        errors.append(float(((logits > 0).float() != seq).float().sum()) / args.batch)
        if update % 250 == 0:
            recent = errors[-250:]
            print(
                f"update {update:5d} ({update * args.batch:6,d} sequences, "
                f"{time.perf_counter() - start:4.0f} s): bits wrong per sequence "
                f"{sum(recent) / len(recent):6.2f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
