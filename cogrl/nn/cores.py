"""Cores: what carries memory from one step to the next, and the registry of them by name.

A core is RAM's core network ``f_h``: one step ``(x_t, state_{t-1}) -> (h_t, state_t)``.
Every learner builds its core by name (``policy.core``), so a core registered here works
in PPO, A2C, REINFORCE, DQN (R2D2 sequences with burn-in) and RAM alike:

```python
import cogrl.nn

@cogrl.nn.register_core("my_core")
class MyCore(cogrl.nn.Core):
    def __init__(self, input_size: int, hidden_size: int = 128, depth: int = 2) -> None: ...
    def initial_state(self, batch_size, device="cpu"): ...
    def forward(self, x, state): ...   # -> (h (B, hidden_size), next state)
```

Then ``policy={"core": "my_core", "depth": 3}`` in Python, or
``cogrl train ... --set policy.core=mypackage.cores:my_core --set policy.depth=3`` (the
``module:name`` form imports the module that registers the core, as Gymnasium ids do). The
contract: a subclass of :class:`Core`, built as ``Core(input_size, hidden_size,
**its_own_hyperparameters)``, with ``hidden_size`` (the width of its output),
``initial_state(batch_size, device)`` (which may be learned) and ``forward``. Its state
may be any nesting of tensors (:mod:`cogrl.nn.state`).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from cogrl.imports import import_named_module
from cogrl.nn.state import State, map_state, reset_state

__all__ = [
    "CORES",
    "Core",
    "GRUCore",
    "IdentityCore",
    "LSTMCore",
    "RNNCore",
    "available_cores",
    "core_class",
    "core_hyperparameters",
    "make_core",
    "register_core",
]


class Core(nn.Module):
    """The recurrent core ``f_h``: one step ``(x_t, state_{t-1}) -> (h_t, state_t)``.

    ``hidden_size`` is the width of ``h_t``. An episode starts from :meth:`initial_state`,
    which may hold learned parameters; nothing carries over from the episode before
    (learners rely on it: they cut sequences at episode starts and run the pieces side by
    side, :mod:`cogrl.nn.sequences`). :meth:`sequence` runs many steps at once; a core with
    a faster way than stepping :meth:`forward` overrides it.
    """

    hidden_size: int

    def initial_state(self, batch_size: int, device: torch.device | str = "cpu") -> State:
        raise NotImplementedError

    def forward(self, x: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        raise NotImplementedError

    def memory_weights(self, state: State) -> dict[str, torch.Tensor]:
        """What a memory core attends to after a step, for seeing memory at work: named
        weightings ``(B, heads, locations)`` over its memory locations (an NTM's read and
        write weightings, a memory network's attention over sentences per hop). Cores
        without an external memory have none."""
        return {}

    def reset(self, state: State, episode_start: torch.Tensor) -> State:
        """``where(episode_start, initial_state, state)``, row by row."""
        batch = episode_start.shape[0]
        return reset_state(state, episode_start, self.initial_state(batch, episode_start.device))

    def sequence(
        self, x: torch.Tensor, state: State, lengths: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, State]:
        """Run over S sequences of inputs ``x`` (L, S, F) from ``state``, without a restart:
        ``h`` (L, S, hidden_size) and the state after each sequence's last step.

        ``lengths`` (S,), on the CPU: sequence s holds ``lengths[s]`` steps, padded after
        (``None``: all L). Outputs past a sequence's end are unspecified. This steps
        :meth:`forward` L times; a core with a fused kernel overrides it.
        """
        L = x.shape[0]
        alive = None
        if lengths is not None and int(lengths.min()) < L:
            alive = torch.arange(L)[:, None] < lengths[None, :]
            alive = alive.to(x.device)
        hs = []
        for t in range(L):
            h, new = self(x[t], state)
            # A finished sequence keeps the state of its last step.
            state = new if alive is None else reset_state(new, ~alive[t], state)
            hs.append(h)
        return torch.stack(hs), state


#: Cores by name: ``policy.core`` picks one (see :func:`register_core`).
CORES: dict[str, type[Core]] = {}


def register_core(name: str) -> Callable[[type[Core]], type[Core]]:
    """Class decorator: make a :class:`Core` subclass available as ``policy.core=name``."""
    if not isinstance(name, str) or not name or ":" in name:
        raise ValueError(f"a core name must be a non-empty string without ':', got {name!r}")

    def decorate(cls: type[Core]) -> type[Core]:
        if not (isinstance(cls, type) and issubclass(cls, Core)):
            raise TypeError(f"register_core({name!r}) decorates a Core subclass, got {cls!r}")
        CORES[name] = cls
        return cls

    return decorate


def available_cores() -> list[str]:
    return sorted(CORES)


def core_class(name: str) -> type[Core]:
    """The core registered as ``name``; ``"module:name"`` imports ``module`` first (where
    the user's core registers itself). Unknown names are a ValueError listing the known."""
    if not isinstance(name, str):
        raise ValueError(f"core must be a name, got {name!r}; available: {available_cores()}")
    key = name
    if ":" in name:
        module, _, key = name.partition(":")
        try:
            import_named_module(module, f"the policy core {name!r}")
        except ImportError as e:
            raise ValueError(f"core {name!r}: cannot import module {module!r} ({e})") from None
    if key not in CORES:
        raise ValueError(f"unknown core {name!r}; available: {available_cores()}")
    return CORES[key]


def core_hyperparameters(name: str) -> dict[str, Any]:
    """The core's own hyperparameters (beyond ``input_size`` and ``hidden_size``) and their
    defaults (``inspect.Parameter.empty`` where there is none)."""
    params = inspect.signature(core_class(name).__init__).parameters
    skip = ("self", "input_size", "hidden_size")
    return {
        k: p.default
        for k, p in params.items()
        if k not in skip and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    }


def make_core(name: str, input_size: int, hidden_size: int = 256, **kwargs: Any) -> Core:
    """The core ``name`` from ``input_size`` to ``hidden_size``, with its own ``kwargs``.

    ``"none"`` passes its input through (its ``hidden_size`` is ``input_size``). A keyword
    the core does not take is a ValueError that lists the ones it does.
    """
    cls = core_class(name)
    known = core_hyperparameters(name)
    unknown = sorted(set(kwargs) - set(known))
    if unknown:
        raise ValueError(
            f"unknown hyperparameter(s) {unknown} for core {name!r}; it takes {sorted(known)}"
        )
    core = cls(input_size, hidden_size, **kwargs)
    if not isinstance(getattr(core, "hidden_size", None), int):
        raise TypeError(f"core {name!r} must set an int hidden_size (the width of its output)")
    return core


@register_core("none")
class IdentityCore(Core):
    """No memory: ``h_t = x_t``. Its state is an empty (B, 0) tensor."""

    def __init__(self, input_size: int, hidden_size: int | None = None) -> None:
        super().__init__()
        self.hidden_size = input_size

    def initial_state(self, batch_size: int, device: torch.device | str = "cpu") -> State:
        return torch.zeros(batch_size, 0, device=device)

    def forward(self, x: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        return x, state


@register_core("rnn")
class RNNCore(Core):
    """RAM's core network: ``h_t = ReLU(Linear(h_{t-1}) + Linear(g_t))``."""

    def __init__(self, input_size: int, hidden_size: int = 256) -> None:
        super().__init__()
        self.input_to_hidden = nn.Linear(input_size, hidden_size)
        self.hidden_to_hidden = nn.Linear(hidden_size, hidden_size)
        self.hidden_size = hidden_size

    def initial_state(self, batch_size: int, device: torch.device | str = "cpu") -> State:
        return torch.zeros(batch_size, self.hidden_size, device=device)

    def forward(self, x: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        h = F.relu(self.hidden_to_hidden(state) + self.input_to_hidden(x))
        return h, h


class _FusedCore(Core):
    """A core whose sequences run in torch's fused kernel (``nn.GRU``, ``nn.LSTM``; on the
    CPU the LSTM's is oneDNN's) rather than step by step, and whose single steps run the
    matching cell kernel on the same weights. Its state is ``self.rnn``'s hidden state
    without the layer axis."""

    rnn: nn.GRU | nn.LSTM
    # Parameter names of the GRUCell/LSTMCell the core held before, for older model files.
    _old_names = {
        "cell.weight_ih": "rnn.weight_ih_l0",
        "cell.weight_hh": "rnn.weight_hh_l0",
        "cell.bias_ih": "rnn.bias_ih_l0",
        "cell.bias_hh": "rnn.bias_hh_l0",
    }

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        for old, new in self._old_names.items():
            if prefix + old in state_dict and prefix + new not in state_dict:
                state_dict[prefix + new] = state_dict.pop(prefix + old)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    @staticmethod
    def _layered(state: State) -> State:
        return map_state(lambda s: s.unsqueeze(0).contiguous(), state)

    @staticmethod
    def _unlayered(state: State) -> State:
        return map_state(lambda s: s.squeeze(0), state)

    def _weights(self) -> tuple[torch.Tensor, ...]:
        rnn = self.rnn
        return rnn.weight_ih_l0, rnn.weight_hh_l0, rnn.bias_ih_l0, rnn.bias_hh_l0

    def sequence(
        self, x: torch.Tensor, state: State, lengths: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, State]:
        L = x.shape[0]
        if lengths is None or int(lengths.min()) == L:
            h, state = self.rnn(x, self._layered(state))
            return h, self._unlayered(state)
        # Packed, so that each sequence's final state is taken at its own last step.
        packed = pack_padded_sequence(x, lengths, enforce_sorted=False)
        h, state = self.rnn(packed, self._layered(state))
        h, _ = pad_packed_sequence(h, total_length=L)
        return h, self._unlayered(state)


@register_core("gru")
class GRUCore(_FusedCore):
    """A gated recurrent unit (Cho et al. 2014); the state is ``h_t``."""

    def __init__(self, input_size: int, hidden_size: int = 256) -> None:
        super().__init__()
        self.rnn = nn.GRU(input_size, hidden_size)
        self.hidden_size = hidden_size

    def initial_state(self, batch_size: int, device: torch.device | str = "cpu") -> State:
        return torch.zeros(batch_size, self.hidden_size, device=device)

    def forward(self, x: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        # One step through the cell kernel nn.GRUCell calls (a third faster per step than
        # nn.GRU on one time step), on nn.GRU's weights.
        h = torch.gru_cell(x, state, *self._weights())
        return h, h


@register_core("lstm")
class LSTMCore(_FusedCore):
    """A long short-term memory (Hochreiter and Schmidhuber 1997); the state is ``(h, c)``."""

    def __init__(self, input_size: int, hidden_size: int = 256) -> None:
        super().__init__()
        self.rnn = nn.LSTM(input_size, hidden_size)
        self.hidden_size = hidden_size

    def initial_state(self, batch_size: int, device: torch.device | str = "cpu") -> State:
        zeros = torch.zeros(batch_size, self.hidden_size, device=device)
        return (zeros, zeros.clone())

    def forward(self, x: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        # One step through nn.LSTMCell's kernel (half the time of nn.LSTM on one step).
        h, c = torch.lstm_cell(x, tuple(state), *self._weights())
        return h, (h, c)
