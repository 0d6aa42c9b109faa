"""``compile=True``: a learner's hot functions under ``torch.compile``, eager where it cannot.

A learner built with ``compile=True`` (``cogrl train --compile``) wraps the functions that
run per environment step or per minibatch (the rollout's policy step, the minibatch loss)
in :class:`Compiled` (through ``Agent.compiled``). On a GPU they compile with
``mode="reduce-overhead"`` (CUDA graphs: one launch per graph instead of dozens of small
kernels), but for a step unrolled through an episode and backpropagated once (RAM's,
DRAM's), which compiles without graphs. On the CPU they compile with Inductor's default mode
(fused C++ loops instead of one dispatch per operation), except those measured slower
compiled there (RAM's and DRAM's step, A2C's loss: per-call overhead on small graphs),
which stay eager unless ``Agent.use_compile(True, everywhere=True)``. Recurrent policies'
minibatches (segments of varying lengths, read on the host) stay eager everywhere.
Gradients still flow through the compiled forward (AOTAutograd compiles the backward with
it), and the optimiser step stays the fused eager one, so checkpoints and the learning-rate
schedule are as without compiling.

Numerics: a compiled graph may fuse and reorder floating-point operations, so its results
match the eager ones to float32 rounding (about 1e-6 relative per update), not bit for bit;
over a long run the two diverge as any two runs on different hardware do.

Where compiling cannot work (:func:`compile_unavailable`: no Dynamo for this Python, no C++
compiler for Inductor's CPU code) or fails on the first call, a warning says why and the
learner runs eagerly, with the same results it would have had with ``compile=False``.
"""

from __future__ import annotations

import shutil
import warnings
from collections.abc import Callable
from typing import Any

import torch
from torch.utils._pytree import tree_map_only

__all__ = ["Compiled", "compile_unavailable"]


def compile_unavailable(device: torch.device) -> str | None:
    """Why ``torch.compile`` cannot run on ``device`` here, or None where it can."""
    if not torch._dynamo.is_dynamo_supported():
        return "torch.compile (Dynamo) does not support this Python or platform"
    if device.type == "cpu":
        from torch._inductor import config

        # Inductor searches these in order (None: a conda-installed g++, opt-in).
        cxx = getattr(config.cpp, "cxx", (None, "g++"))
        compilers = tuple(cxx) if isinstance(cxx, (tuple, list)) else (cxx,)
        candidates = [c for c in compilers if c] or ["g++", "c++", "clang++"]
        if not any(shutil.which(c) for c in candidates):
            return (
                f"Inductor needs a C++ compiler for CPU code and found none of {candidates} "
                "on PATH (install g++ or clang++, or set CXX)"
            )
    elif device.type not in ("cuda", "xpu"):
        return f"cogrl compiles for the CPU and CUDA devices only, not {device.type!r}"
    return None


def _compile_errors() -> tuple[type[BaseException], ...]:
    """The exceptions that mean compiling failed (not the function's own errors)."""
    errors: list[type[BaseException]] = [torch._dynamo.exc.TorchDynamoException]
    inductor = getattr(torch._inductor.exc, "InductorError", None)
    if inductor is not None:
        errors.append(inductor)
    return tuple(errors)


class Compiled:
    """``fn`` under ``torch.compile`` (``mode`` by device: see the module docstring).

    The first call compiles. If compiling fails, a ``RuntimeWarning`` names ``what`` and the
    error, and this and every later call run ``fn`` eagerly; errors that are ``fn``'s own
    (a bad value it raises on) pass through unchanged.
    """

    def __init__(
        self,
        fn: Callable[..., Any],
        what: str,
        device: torch.device,
        backend: Any = "inductor",
        cuda_graphs: bool = True,
    ) -> None:
        self.fn, self.what = fn, what
        self.failure: str | None = None
        # CUDA graphs replay into the same output memory: a call's outputs are cloned, so
        # that what a learner keeps (a minibatch's loss for the log) is not overwritten by
        # the next replay. Only for functions whose backward, if any, runs before the next
        # call (a minibatch loss, a no-grad policy step), not for a step unrolled through
        # time and backpropagated once (RAM's), whose earlier replays' saved tensors the
        # next would overwrite.
        self.graphs = device.type == "cuda" and backend == "inductor" and cuda_graphs
        mode = "reduce-overhead" if self.graphs else None
        self._compiled = torch.compile(fn, backend=backend, mode=mode)

    @property
    def active(self) -> bool:
        """Whether calls run the compiled function."""
        return self.failure is None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.active:
            try:
                if not self.graphs:
                    return self._compiled(*args, **kwargs)
                torch.compiler.cudagraph_mark_step_begin()
                out = self._compiled(*args, **kwargs)
                return tree_map_only(torch.Tensor, torch.clone, out)
            except _compile_errors() as e:
                # A backend's own error is wrapped: name the innermost.
                inner = getattr(e, "inner_exception", None) or e.__cause__ or e
                self.failure = f"{type(inner).__name__}: {inner}".splitlines()[0]
                warnings.warn(
                    f"compile=True: compiling {self.what} failed ({self.failure}); it runs "
                    "eagerly from now on (the same results as compile=False)",
                    RuntimeWarning,
                    stacklevel=2,
                )
        return self.fn(*args, **kwargs)
