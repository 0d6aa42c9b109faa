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
it), and the optimiser step stays the fused eager one (but for PPO's on the CPU, below), so
checkpoints and the learning-rate schedule are as without compiling.

Numerics: a compiled graph may fuse and reorder floating-point operations, so its results
match the eager ones to float32 rounding (about 1e-6 relative per update), not bit for bit;
over a long run the two diverge as any two runs on different hardware do.

A feedforward policy's PPO minibatch goes further on the CPU (:func:`fused_update`): the
loss, its gradients (``torch.func.grad`` over the policy's parameters, in the graph rather
than through the autograd engine), the gradient clipping and the Adam step are one
compiled function, so that a minibatch (two, for PPO) is one call into Inductor's C++ and
the matrix products, instead of an autograd graph walked node by node and an optimiser
step apart (measured: BENCHMARKS.md, "Issue 21"). Its Adam is torch's algorithm on the
optimiser's own state tensors (``step``, ``exp_avg``, ``exp_avg_sq``), so checkpoints,
resuming and the learning-rate schedule are as eager; it matches the eager update to
float32 rounding, which Adam's division by ``sqrt(v)`` enlarges for gradients near zero.

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
from torch import nn
from torch.utils._pytree import tree_flatten, tree_map_only, tree_unflatten

__all__ = ["Compiled", "compile_unavailable", "fused_update", "fused_update_unavailable"]


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


def fused_update_unavailable(optimizer: torch.optim.Optimizer) -> str | None:
    """Why :func:`fused_update` cannot stand in for ``optimizer``'s step, or None."""
    if type(optimizer) not in (torch.optim.Adam, torch.optim.AdamW):
        return f"it implements Adam and AdamW only, not {type(optimizer).__name__}"
    if len(optimizer.param_groups) != 1:
        return "it takes one parameter group"
    group = optimizer.param_groups[0]
    for flag in ("amsgrad", "maximize", "differentiable"):
        if group.get(flag):
            return f"it does not implement Adam's {flag}=True"
    if isinstance(group["lr"], torch.Tensor):
        return "it takes a float learning rate, not a tensor"
    if type(optimizer) is torch.optim.Adam and group["weight_decay"]:
        return "it does not implement Adam's L2 weight decay (AdamW's decoupled one it does)"
    if not all(p.requires_grad for p in group["params"]):
        # torch.func would give them gradients (zeros) that torch's Adam never sees.
        return "it steps every parameter, and some are frozen (requires_grad=False)"
    return None


class _Call(nn.Module):
    """``fn(*args)`` as a module's forward, with ``module`` as its submodule, so that
    ``torch.func.functional_call`` runs ``fn`` on substituted parameters of ``module``."""

    def __init__(self, module: nn.Module, fn: Callable[..., Any]) -> None:
        super().__init__()
        self.module, self.fn = module, fn

    def forward(self, *args: Any) -> Any:
        return self.fn(*args)


def fused_update(
    module: nn.Module,
    optimizer: torch.optim.Optimizer,
    loss_fn: Callable[..., tuple[torch.Tensor, Any]],
    max_grad_norm: float | None,
    wrap: Callable[[Callable[..., Any]], Callable[..., Any]] = lambda fn: fn,
) -> Callable[..., tuple[torch.Tensor, Any, torch.Tensor]]:
    """Optimiser steps on ``loss_fn(*args) -> (loss, aux)`` (a function of ``module``'s
    parameters) as one function: ``update(args_1, args_2, ...)`` takes one step per tuple
    of arguments, in order, and returns ``[(loss, aux, grad_norm), ...]`` (each loss
    detached, each norm before clipping). ``wrap`` (e.g. a :class:`Compiled`) wraps its
    arithmetic, so that several steps are one compiled call; per step it is
    :func:`~cogrl.agents.training.gradient_step`'s: the global
    gradient norm clipped to ``max_grad_norm`` as :func:`~cogrl.agents.training.clip_grad`
    does, then torch's Adam (AdamW: with decoupled weight decay) step on ``optimizer``'s
    state, ``m = b1 m + (1 - b1) g``, ``v = b2 v + (1 - b2) g^2``,
    ``theta -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)``. The state is
    read from the optimiser at each call (a loaded checkpoint's included) and created as
    torch's fused Adam creates it where missing; the learning rate goes in as a tensor, so
    that an annealed rate does not recompile."""
    reason = fused_update_unavailable(optimizer)
    if reason is not None:
        raise ValueError(f"fused_update: {reason}")
    group = optimizer.param_groups[0]
    named = list(module.named_parameters())
    params = list(group["params"])
    if [id(p) for p in params] != [id(p) for _, p in named]:
        raise ValueError("fused_update: the optimiser must hold the module's parameters, in order")
    keys = ["module." + name for name, _ in named]
    call = _Call(module, loss_fn)
    beta1, beta2 = group["betas"]
    eps, decay = group["eps"], group["weight_decay"]
    decoupled = type(optimizer) is torch.optim.AdamW

    # aux's structure and where it holds None: torch.func's aux takes tensors only.
    structure: list[Any] = [None, []]

    def loss_of(weights: dict[str, torch.Tensor], *args: Any) -> tuple[torch.Tensor, Any]:
        loss, aux = torch.func.functional_call(call, weights, args)
        leaves, structure[0] = tree_flatten(aux)
        structure[1] = [x is None for x in leaves]
        return loss, (loss.detach(), [x for x in leaves if x is not None])

    gradients = torch.func.grad(loss_of, has_aux=True)

    def step(lr, weights, exp_avgs, exp_avg_sqs, steps, batches):
        out = []
        for args in batches:  # one optimiser step each, in order
            grads, (loss, aux) = gradients(dict(zip(keys, weights, strict=True)), *args)
            g = [grads[k] for k in keys]
            norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(x) for x in g]))
            if max_grad_norm is not None:
                coef = torch.clamp(max_grad_norm / (norm + 1e-6), max=1.0)
                g = [x * coef for x in g]
            for w, x, m, v, t in zip(weights, g, exp_avgs, exp_avg_sqs, steps, strict=True):
                t.add_(1)
                if decoupled and decay:
                    w.mul_(1 - lr * decay)
                m.lerp_(x, 1 - beta1)
                v.mul_(beta2).addcmul_(x, x, value=1 - beta2)
                denom = v.sqrt() / (1 - beta2**t).sqrt() + eps
                w.sub_(lr / (1 - beta1**t) * m / denom)
            out.append((loss, aux, norm))
        return out

    wrapped = wrap(step)

    def update(*batches: tuple) -> list[tuple[torch.Tensor, Any, torch.Tensor]]:
        states = []
        for p in params:
            state = optimizer.state[p]
            if not state:  # as torch's fused Adam's first step makes it
                state["step"] = torch.zeros((), dtype=torch.float32, device=p.device)
                state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            states.append(state)
        lr = torch.tensor(float(group["lr"]), device=params[0].device)
        results = wrapped(
            lr,
            [p.detach() for p in params],
            [s["exp_avg"] for s in states],
            [s["exp_avg_sq"] for s in states],
            [s["step"] for s in states],
            batches,
        )
        out = []
        for loss, leaves, norm in results:
            tensors = iter(leaves)
            aux = [None if none else next(tensors) for none in structure[1]]
            out.append((loss, tree_unflatten(aux, structure[0]), norm))
        return out

    return update
