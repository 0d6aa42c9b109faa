"""Curricula: a schedule of environment arguments that advances on an episode metric.

A :class:`Curriculum` holds ``levels``, a list of settings of an environment's
configurable arguments (``core.configurable``: Copy's ``min_length`` and ``max_length``,
DelayedRecall's ``delay``, StoryQA's ``task``, ...), easiest first. It tells a running
batched core which level each environment's next episodes are drawn at
(:meth:`cogrl.core.BatchedEnv.configure`: no new core, no new agent, no lost optimiser
state), watches the episodes that end, and moves to the next level once an episode metric
(as the environment declares in ``metadata["episode_metrics"]`` and learners log it, e.g.
``accuracy`` or ``bit_errors``) averaged over the last ``window`` episodes finished *at the
current level* passes a threshold (``accuracy >= 0.9``, ``bit_errors <= 0.1``). Episodes
drawn at other levels (under ``mix``, below) never count towards advancing.

API
---

``Curriculum(core, levels, metric, threshold, direction=">=", window=100, mix=False,
mix_uniform=0.10, mix_easier=0.25, mix_geometric=0.5, seed=0)``
    Checks everything against ``core`` (every level's arguments configurable and within
    the bounds the core was built for, the metric one it reports) and configures the core
    for its first episodes: build it before ``core.reset()`` (built on a core already
    running, it counts the episodes that start after it, not those in progress).
``observe(info)``
    Every step, with the ``info`` of ``core.step``: the metric of the episodes that ended
    and the level each was drawn at. Tensor operations only, no host reads (sync-free).
``update() -> bool``
    Once per rollout (or logging interval): judges the window, advances at most one level
    (true when it did), draws the levels of the environments' next episodes and configures
    the core. It reads two numbers on the host.
``on_reset()``
    After every ``core.reset()``: every environment's episode in progress is then drawn at
    its assigned level (the curriculum cannot see resets otherwise).
``level``, ``levels``, ``scalars()``
    The current level (an int), the levels, and what to log: ``{"curriculum/level": ...,
    "curriculum/<metric>": ...}`` (the metric averaged over the window judged by the last
    :meth:`Curriculum.update`; NaN before any episode ended at that level).
``state_dict()`` / ``load_state_dict(state)``
    Tensors and plain values (``torch.load(weights_only=True)``): the level, the window,
    the levels assigned and in progress and the random generator, so that a resumed run
    continues exactly.
:func:`parse_curriculum` (text -> keyword arguments), :meth:`Curriculum.from_text`.

Example::

    core = Copy(num_envs=64, max_length=20)
    curriculum = Curriculum.from_text(
        core, "max_length=2,4,8,12,16,20; metric=bit_errors<=0.1; window=500; mix=true"
    )
    obs, _ = core.reset(seed=0)
    for rollout in range(1000):
        for step in range(128):
            obs, reward, terminated, truncated, info = core.step(policy(obs))
            curriculum.observe(info)
        curriculum.update()
        log(curriculum.scalars())

Text form (:func:`parse_curriculum`)
------------------------------------

Items separated by ``;``: each configurable argument with its value at every level,
``name=v1,v2,...`` (the lists of all arguments of the same length; a single value holds at
every level; ``a..b`` is every int from ``a`` to ``b``), then ``metric=NAME>=X`` (or
``<=``, ``>``, ``<``), optionally ``window=N`` (default 100) and ``mix=true``,
``mix=false`` (default) or ``mix=U,E`` / ``mix=U,E,P`` (the mix's fractions and geometric
parameter, below). For example:

- Copy: ``max_length=2,4,8,12,16,20; metric=bit_errors<=0.1; window=500; mix=true``
- Copy at exact lengths: ``min_length=5,10,20; max_length=5,10,20; metric=accuracy>=0.9``
- RepeatCopy: ``max_length=2,5,10; max_repeats=2,5,10; metric=accuracy>=0.8``
- AssociativeRecall: ``max_items=3..6; metric=accuracy>=0.9; window=200``
- DelayedRecall (built with ``delay=30``): ``delay=0,5,10,20,30; metric=accuracy>=0.95``
- StoryQA (built with ``tasks=[1, 2, 3]``): ``task=1,2,3; metric=accuracy>=0.9``

The names ``metric``, ``window`` and ``mix`` are the curriculum's; every other name is an
environment argument.

The mix (Zaremba and Sutskever)
-------------------------------

Without ``mix``, every episode is drawn at the current level ("naive" curriculum). With
``mix``, each environment's next level is drawn as in Zaremba and Sutskever's curriculum
for the RL-NTM (W. Zaremba and I. Sutskever, "Reinforcement Learning Neural Turing
Machines", arXiv:1505.00521, 2015), which refines the "combined" strategy of
W. Zaremba and I. Sutskever, "Learning to Execute", arXiv:1410.4615, 2014 (section 4:
every example comes either from the naive curriculum, at the current level, or from the
"mix" strategy, uniform over all levels, so that the network always sees some harder
examples and keeps seeing the easier ones). With the current level ``D`` and ``L`` levels
(``0 .. L - 1`` here), and ``e`` drawn from a geometric distribution with success
probability ``mix_geometric`` (1/2), ``P(e = k) = p (1 - p)**k`` for ``k = 0, 1, ...``:

- with probability ``mix_uniform`` (10%), a level uniform over all levels ``0 .. L - 1``;
- with probability ``mix_easier`` (25%), a level uniform over ``0 .. D + e``;
- otherwise (65%), level ``D + e``,

``D + e`` capped at the last level. The current level is thus the most frequent (with
the defaults 38% of the episodes at a level in the middle of 10, 51% at the first, 69% at
the last), some a little harder, some easier and some anywhere. The paper judges the
error at the current level and moves on one level when it passes a threshold, as here.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch

from cogrl.core import BatchedEnv
from cogrl.rng import check_seed

__all__ = ["DIRECTIONS", "Curriculum", "parse_curriculum"]

#: The comparisons a threshold may use: the metric of the window ``direction`` threshold.
DIRECTIONS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
}
# The published mix (Zaremba and Sutskever 2015): uniform over all levels, uniform up to
# D + e, and e's geometric success probability.
MIX_UNIFORM, MIX_EASIER, MIX_GEOMETRIC = 0.10, 0.25, 0.5
DEFAULT_WINDOW = 100

_EXAMPLE = "max_length=2,4,8,12,16,20; metric=bit_errors<=0.1; window=500; mix=true"
_FORM = (
    "ARGUMENT=V1,V2,... (one value per level, or one for all; a..b for a range of ints), "
    "as many arguments as needed; metric=NAME>=X (or <=, >, <); optionally window=N and "
    "mix=true|false|U,E|U,E,P; items separated by ';'"
)


class Curriculum:
    """A schedule of a batched core's configurable arguments that advances on an episode
    metric (see the module docstring).

    Arguments:
        core: the running core (a :class:`cogrl.core.BatchedEnv` whose ``configurable``
            names every argument of the levels).
        levels: the settings, easiest first: a list of ``{argument: value}``, every level
            setting the same arguments.
        metric: an episode metric of ``core.metadata["episode_metrics"]``.
        threshold, direction: advance when ``mean(metric over the window) direction
            threshold``, ``direction`` one of ``>=``, ``<=``, ``>``, ``<``.
        window: the episodes finished at the current level averaged before judging.
        mix: draw each environment's level with Zaremba and Sutskever's mix (module
            docstring) rather than always at the current level.
        mix_uniform, mix_easier, mix_geometric: the mix's fractions of levels uniform over
            all levels and uniform up to ``D + e``, and ``e``'s geometric success
            probability (the published 0.10, 0.25, 0.5).
        seed: of the random generator of the mix's draws (saved in :meth:`state_dict`).
    """

    def __init__(
        self,
        core: BatchedEnv,
        levels: Sequence[Mapping[str, Any]],
        metric: str,
        threshold: float,
        direction: str = ">=",
        window: int = DEFAULT_WINDOW,
        mix: bool = False,
        mix_uniform: float = MIX_UNIFORM,
        mix_easier: float = MIX_EASIER,
        mix_geometric: float = MIX_GEOMETRIC,
        seed: int = 0,
    ) -> None:
        if not isinstance(core, BatchedEnv):
            raise ValueError(f"core must be a BatchedEnv, got {type(core).__name__}")
        self.core = core
        self.spec = _check_spec(
            core,
            levels=levels,
            metric=metric,
            threshold=threshold,
            direction=direction,
            window=window,
            mix=mix,
            mix_uniform=mix_uniform,
            mix_easier=mix_easier,
            mix_geometric=mix_geometric,
        )
        self.seed = check_seed(seed)
        self._compare = DIRECTIONS[self.spec["direction"]]
        self._info_key = core.metadata["episode_metrics"][self.spec["metric"]]
        self._generator = torch.Generator().manual_seed(self.seed)
        n, dev = core.num_envs, core.device
        configured = core.configuration()
        # Each argument's value at each level, in the dtype the core holds it in.
        self._table = {
            key: torch.tensor(
                [level[key] for level in self.spec["levels"]], dtype=configured[key].dtype
            ).to(dev)
            for key in self.spec["levels"][0]
        }
        self._level = 0
        self._next_level = torch.zeros(n, dtype=torch.int64, device=dev)
        # The level of each environment's episode in progress (-1: not drawn at a level).
        self._episode_level = torch.full((n,), -1, dtype=torch.int64, device=dev)
        # The metric of the episodes finished at the current level: a ring of `window`
        # values (and a last slot that takes the values not kept), and how many were
        # written since the level began.
        w = self.spec["window"]
        self._values = torch.zeros(w + 1, dtype=torch.float32, device=dev)
        self._written = torch.zeros((), dtype=torch.int64, device=dev)
        self._scalars = {"curriculum/level": 0.0, f"curriculum/{self.spec['metric']}": math.nan}
        self._assign(force=True)
        if not core.rng.seeded:  # the first reset draws every episode at its assigned level
            self.on_reset()

    @classmethod
    def from_text(cls, core: BatchedEnv, text: str, seed: int = 0) -> Curriculum:
        """A curriculum from its text form (see :func:`parse_curriculum`)."""
        return cls(core, **parse_curriculum(text), seed=seed)

    # --- what a learner reads --------------------------------------------------------------
    @property
    def level(self) -> int:
        """The current level, 0 (the first, easiest) to ``len(levels) - 1``."""
        return self._level

    @property
    def levels(self) -> list[dict[str, Any]]:
        """The levels (copies)."""
        return [dict(level) for level in self.spec["levels"]]

    def scalars(self) -> dict[str, float]:
        """What to log: ``curriculum/level`` and ``curriculum/<metric>``, the metric over the
        window the last :meth:`update` judged (NaN where no episode had ended at its level).
        No host read."""
        return dict(self._scalars)

    def next_levels(self) -> torch.Tensor:
        """The level each environment's next episodes are drawn at (a copy, (num_envs,))."""
        return self._next_level.clone()

    # --- per step ----------------------------------------------------------------------------
    def observe(self, info: Mapping[str, Any]) -> None:
        """Take in one step's ``info`` (of ``core.step``): the metric of each episode that
        ended (``info[key]`` where ``info["_" + key]``, ``key`` the metric's info key) counts
        towards the window when it was drawn at the current level. Sync-free."""
        done = info["_episode"]
        key = self._info_key
        if key in info:
            counted = info["_" + key] & done & (self._episode_level == self._level)
            self._append(info[key], counted)
        # Autoreset started the next episodes of the finished environments at their
        # assigned levels.
        torch.where(done, self._next_level, self._episode_level, out=self._episode_level)

    def on_reset(self) -> None:
        """Call after ``core.reset()``: every environment's episode is at its assigned level."""
        self._episode_level.copy_(self._next_level)

    def _append(self, values: torch.Tensor, counted: torch.Tensor) -> None:
        """Write ``values`` where ``counted`` (N,) into the ring, in environment order, keeping
        the last ``window`` if more ended; tensor operations only."""
        w = self.spec["window"]
        c = counted.long()
        rank = torch.cumsum(c, 0) - c  # among this step's counted episodes
        new = c.sum()
        keep = counted & (rank >= new - w)
        slot = torch.where(keep, (self._written + rank) % w, w)
        self._values.index_put_((slot,), values.to(torch.float32))
        self._written += new

    # --- once per rollout ------------------------------------------------------------------
    def update(self) -> bool:
        """Judge the window and advance one level if the threshold holds over it (only with
        ``window`` episodes finished at the current level); then draw the next episodes'
        levels and configure the core. True when the level advanced. Reads two numbers on
        the host, and configuring the core reads the values it checks."""
        w = self.spec["window"]
        count, total = torch.stack(
            [self._written.clamp(max=w).to(torch.float32), self._values[:w].sum()]
        ).tolist()
        mean = total / count if count else math.nan
        advance = (
            count >= w
            and self._compare(mean, self.spec["threshold"])
            and self._level < len(self.spec["levels"]) - 1
        )
        if advance:
            self._level += 1
            self._values.zero_()
            self._written.zero_()
        self._scalars = {
            "curriculum/level": float(self._level),
            f"curriculum/{self.spec['metric']}": mean,
        }
        self._assign(force=advance)
        return bool(advance)

    def _assign(self, force: bool) -> None:
        """Draw every environment's next level (the mix) or set the current one, and
        configure the core where anything may have changed."""
        if self.spec["mix"]:
            levels = self._draw_mix(self.core.num_envs)
        elif force:
            levels = torch.full((self.core.num_envs,), self._level, dtype=torch.int64)
        else:
            return
        self._next_level.copy_(levels)
        self._configure()

    def _configure(self) -> None:
        self.core.configure({key: table[self._next_level] for key, table in self._table.items()})

    def _draw_mix(self, n: int) -> torch.Tensor:
        """``n`` levels of Zaremba and Sutskever's mix at the current level (CPU, int64)."""
        g, spec = self._generator, self.spec
        last, current = len(spec["levels"]) - 1, self._level
        branch = torch.rand(n, generator=g, dtype=torch.float64)
        pick = torch.rand(n, generator=g, dtype=torch.float64)
        # e ~ Geometric(p) on 0, 1, 2, ... (failures before the first success), by inversion:
        # P(e >= k) = (1 - p)**k.
        v = torch.rand(n, generator=g, dtype=torch.float64)
        p = spec["mix_geometric"]
        e = torch.floor(torch.log1p(-v) / math.log1p(-p)) if p < 1 else torch.zeros_like(v)
        top = torch.clamp(current + e.long(), max=last)
        anywhere = torch.clamp((pick * (last + 1)).long(), max=last)
        easier = torch.minimum((pick * (top + 1)).long(), top)
        u, f = spec["mix_uniform"], spec["mix_easier"]
        return torch.where(branch < u, anywhere, torch.where(branch < u + f, easier, top))

    # --- checkpoints -----------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything a curriculum built with the same arguments on a core of the same
        number of environments needs to continue exactly: CPU tensors and plain values
        (loadable with ``torch.load(weights_only=True)``)."""
        return {
            "spec": _plain(self.spec),
            "num_envs": self.core.num_envs,
            "level": self._level,
            "next_level": self._next_level.cpu().clone(),
            "episode_level": self._episode_level.cpu().clone(),
            "values": self._values.cpu().clone(),
            "written": self._written.cpu().clone(),
            "generator": self._generator.get_state(),
            "scalars": dict(self._scalars),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continue from a :meth:`state_dict` (checked before anything changes: another
        curriculum's, or one of another number of environments, is a ValueError); the core
        is configured with the levels assigned then."""
        keys = {"spec", "num_envs", "level", "next_level", "episode_level", "values"}
        keys |= {"written", "generator", "scalars"}
        if not isinstance(state, Mapping) or set(state) != keys:
            got = sorted(state) if isinstance(state, Mapping) else type(state).__name__
            raise ValueError(f"a curriculum state has the keys {sorted(keys)}, got {got}")
        if _plain(state["spec"]) != _plain(self.spec):
            raise ValueError(
                f"the state is of another curriculum ({state['spec']!r}); this one is "
                f"{_plain(self.spec)!r}"
            )
        if state["num_envs"] != self.core.num_envs:
            raise ValueError(
                f"the state is of a curriculum over {state['num_envs']!r} environments; this "
                f"core has {self.core.num_envs}"
            )
        level = state["level"]
        if isinstance(level, bool) or not isinstance(level, int):
            raise ValueError(f"state level must be an int, got {level!r}")
        if not 0 <= level < len(self.spec["levels"]):
            raise ValueError(f"state level {level} is not one of the {len(self.spec['levels'])}")
        targets = {
            "next_level": self._next_level,
            "episode_level": self._episode_level,
            "values": self._values,
            "written": self._written,
        }
        for key, target in targets.items():
            value = state[key]
            if not isinstance(value, torch.Tensor) or value.shape != target.shape:
                raise ValueError(
                    f"state {key} must be a tensor of shape {tuple(target.shape)}, got {value!r}"
                )
        generator = state["generator"]
        if not isinstance(generator, torch.Tensor) or generator.dtype != torch.uint8:
            raise ValueError(f"state generator must be a uint8 tensor, got {generator!r}")
        self._generator.set_state(generator.clone())
        for key, target in targets.items():
            target.copy_(state[key])
        self._level = level
        self._scalars = {str(k): float(v) for k, v in state["scalars"].items()}
        self._configure()


# --- checks -----------------------------------------------------------------------------------


def _check_spec(core: BatchedEnv, **spec: Any) -> dict[str, Any]:
    """The curriculum's arguments as plain values, checked against ``core``."""
    name = type(core).__name__
    levels = spec["levels"]
    if isinstance(levels, (str, Mapping)) or not isinstance(levels, Sequence) or not levels:
        raise ValueError(
            f"levels must be a non-empty list of {{argument: value}} dicts, got {levels!r}"
        )
    for i, level in enumerate(levels):
        if not isinstance(level, Mapping) or not level:
            raise ValueError(
                f"level {i} must be a non-empty {{argument: value}} dict, got {level!r}"
            )
        for key in level:
            if key not in core.configurable:
                configurable = list(core.configurable) or "none"
                raise ValueError(
                    f"level {i} sets {key!r}, which {name} cannot configure while running; "
                    f"its configurable arguments: {configurable}"
                )
        if set(level) != set(levels[0]):
            raise ValueError(
                f"every level must set the same arguments: level 0 sets {sorted(levels[0])}, "
                f"level {i} sets {sorted(level)}"
            )
        try:
            core.check_configuration(level)
        except ValueError as e:
            raise ValueError(f"level {i} ({dict(level)}) does not suit this {name}: {e}") from e
    metrics = core.metadata.get("episode_metrics", {})
    metric = spec["metric"]
    if metric not in metrics:
        raise ValueError(
            f"metric must be one of {name}'s episode metrics {sorted(metrics) or '(none)'}, "
            f"got {metric!r}"
        )
    threshold = spec["threshold"]
    if not _is_real(threshold) or not math.isfinite(threshold):
        raise ValueError(f"threshold must be a finite number, got {threshold!r}")
    if spec["direction"] not in DIRECTIONS:
        raise ValueError(f"direction must be one of {list(DIRECTIONS)}, got {spec['direction']!r}")
    window = spec["window"]
    if isinstance(window, bool) or not isinstance(window, (int, np.integer)) or window < 1:
        raise ValueError(f"window must be an int >= 1 (episodes), got {window!r}")
    if not isinstance(spec["mix"], bool):
        raise ValueError(f"mix must be true or false, got {spec['mix']!r}")
    u, f, p = spec["mix_uniform"], spec["mix_easier"], spec["mix_geometric"]
    for key, value in (("mix_uniform", u), ("mix_easier", f)):
        if not _is_real(value) or not 0.0 <= value <= 1.0:
            raise ValueError(f"{key} must be a fraction in [0, 1], got {value!r}")
    if u + f > 1.0:
        raise ValueError(
            f"mix_uniform + mix_easier must be at most 1 (the rest are at the current level), "
            f"got {u!r} + {f!r}"
        )
    if not _is_real(p) or not 0.0 < p <= 1.0:
        raise ValueError(f"mix_geometric must be a probability in (0, 1], got {p!r}")
    return {
        "levels": [{str(k): _number(v) for k, v in level.items()} for level in levels],
        "metric": str(metric),
        "threshold": float(threshold),
        "direction": spec["direction"],
        "window": int(window),
        "mix": spec["mix"],
        "mix_uniform": float(u),
        "mix_easier": float(f),
        "mix_geometric": float(p),
    }


def _is_real(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def _number(value: Any) -> Any:
    """numpy scalars as Python's (the spec holds plain values)."""
    return value.item() if isinstance(value, np.generic) else value


def _plain(spec: Mapping[str, Any]) -> dict[str, Any]:
    """A spec as plain values (lists, dicts), for saving and comparing."""
    return {
        **spec,
        "levels": [dict(level) for level in spec["levels"]],
    }


# --- the text form ----------------------------------------------------------------------------

_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_METRIC = re.compile(rf"^\s*([A-Za-z_][\w.]*)\s*(>=|<=|>|<)\s*({_NUMBER})\s*$")
_RANGE = re.compile(r"^([-+]?\d+)\s*\.\.\s*([-+]?\d+)$")
_NAME = re.compile(r"^[A-Za-z_]\w*$")
_TRUE, _FALSE = {"true", "yes", "on", "1"}, {"false", "no", "off", "0"}


def parse_curriculum(text: str) -> dict[str, Any]:
    """The keyword arguments of :class:`Curriculum` (all but ``core`` and ``seed``) from
    the text form, e.g. ``"max_length=2,4,8,12,16,20; metric=bit_errors<=0.1;
    window=500; mix=true"`` (see the module docstring); plain values (JSON-able).

    A ValueError names the bad part and shows the expected form. Whether the arguments
    suit the environment is checked by :class:`Curriculum`.
    """
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"a curriculum must be text of the form {_FORM}, e.g. {_EXAMPLE!r}")
    arguments: dict[str, list[Any]] = {}
    out: dict[str, Any] = {}
    seen: set[str] = set()
    for part in (p.strip() for p in text.split(";")):
        if not part:
            continue
        name, eq, value = (s.strip() for s in part.partition("="))
        if not eq or not _NAME.match(name) or not value:
            raise ValueError(
                f"curriculum item {part!r} is not NAME=VALUE; expected {_FORM}, e.g. {_EXAMPLE!r}"
            )
        if name in seen:
            raise ValueError(f"curriculum item {name!r} is given twice (in {text!r})")
        seen.add(name)
        if name == "metric":
            out.update(_parse_metric(value))
        elif name == "window":
            if not re.fullmatch(r"\d+", value) or int(value) < 1:
                raise ValueError(
                    f"curriculum item window={value!r} must be a positive int (episodes), "
                    "e.g. window=500"
                )
            out["window"] = int(value)
        elif name == "mix":
            out.update(_parse_mix(value))
        else:
            arguments[name] = _parse_values(name, value)
    if "metric" not in out:
        raise ValueError(
            f"curriculum {text!r} has no metric=NAME>=X (or <=, >, <); expected {_FORM}, "
            f"e.g. {_EXAMPLE!r}"
        )
    if not arguments:
        raise ValueError(
            f"curriculum {text!r} sets no environment argument (ARGUMENT=V1,V2,...); "
            f"expected {_FORM}, e.g. {_EXAMPLE!r}"
        )
    lengths = {name: len(values) for name, values in arguments.items() if len(values) > 1}
    if len(set(lengths.values())) > 1:
        raise ValueError(
            f"curriculum arguments give different numbers of levels {lengths}: each must give "
            "one value per level (or a single value for all levels)"
        )
    count = next(iter(lengths.values()), 1)
    out["levels"] = [
        {name: values[i if len(values) > 1 else 0] for name, values in arguments.items()}
        for i in range(count)
    ]
    return {"levels": out.pop("levels"), **out}


def _parse_metric(value: str) -> dict[str, Any]:
    match = _METRIC.match(value)
    if match is None:
        raise ValueError(
            f"curriculum item metric={value!r} must be NAME>=X (or <=, >, <), e.g. "
            "metric=accuracy>=0.9 or metric=bit_errors<=0.1"
        )
    name, direction, threshold = match.groups()
    return {"metric": name, "threshold": float(threshold), "direction": direction}


def _parse_mix(value: str) -> dict[str, Any]:
    word = value.lower()
    if word in _TRUE or word in _FALSE:
        return {"mix": word in _TRUE}
    parts = [p.strip() for p in value.split(",")]
    if len(parts) in (2, 3) and all(re.fullmatch(_NUMBER, p) for p in parts):
        numbers = [float(p) for p in parts]
        keys = ("mix_uniform", "mix_easier", "mix_geometric")
        return {"mix": True, **dict(zip(keys, numbers, strict=False))}
    raise ValueError(
        f"curriculum item mix={value!r} must be true, false, or the mix's fractions U,E "
        f"(uniform over all levels, uniform up to the current one) or U,E,P (and the "
        f"geometric parameter), e.g. mix=true (= mix={MIX_UNIFORM},{MIX_EASIER},{MIX_GEOMETRIC})"
    )


def _parse_values(name: str, value: str) -> list[int | float]:
    """``v1,v2,...`` (ints, floats, ranges ``a..b`` of ints) as a list."""
    values: list[int | float] = []
    for item in (v.strip() for v in value.split(",")):
        if re.fullmatch(r"[-+]?\d+", item):
            values.append(int(item))
        elif re.fullmatch(_NUMBER, item):
            values.append(float(item))
        elif (match := _RANGE.match(item)) is not None:
            low, high = int(match.group(1)), int(match.group(2))
            if low > high:
                raise ValueError(
                    f"curriculum item {name}={value!r}: the range {item!r} runs backwards; "
                    "write a..b with a <= b"
                )
            values.extend(range(low, high + 1))
        else:
            raise ValueError(
                f"curriculum item {name}={value!r}: {item!r} is not a number or a range a..b; "
                f"expected {name}=V1,V2,... with one value per level, e.g. {name}=2,4,8 or "
                f"{name}=1..5"
            )
    return values
