"""Run folders: naming, the resolved config, and parsing ``--set key=value`` overrides.

A run is one folder, ``runs/<env>__<agent>__<seed>__<YYYYmmdd-HHMMSS>/``, holding::

    config.json          the resolved configuration (agent.describe() plus the run's settings)
    events.out.tfevents  TensorBoard scalars, hyperparameters and rollout GIFs
    checkpoint.pt        the training state, for `cogrl train --resume` (cogrl.runner)
    model.pt             the final checkpoint (cogrl.agents.load(run / "model"))
    videos/*.mp4         rollout videos
"""

from __future__ import annotations

import ast
import json
import os
import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

__all__ = [
    "CONFIG_FILE",
    "DEFAULT_ROOT",
    "ENV_PREFIX",
    "CHECKPOINT_NAME",
    "MODEL_NAME",
    "VIDEOS_DIR",
    "config_hparams",
    "create_run_dir",
    "model_path",
    "merge_settings",
    "parse_overrides",
    "parse_value",
    "read_config",
    "require_run",
    "run_name",
    "write_config",
]

DEFAULT_ROOT = Path("runs")
CONFIG_FILE = "config.json"
MODEL_NAME = "model"  # agent.save(run / MODEL_NAME) writes model.pt
CHECKPOINT_NAME = "checkpoint"  # the training checkpoint, checkpoint.pt
VIDEOS_DIR = "videos"
ENV_PREFIX = "env."  # --set env.X=value goes to the environment, anything else to the agent
TIME_FORMAT = "%Y%m%d-%H%M%S"


def run_name(env_id: str, agent: str, seed: int | None, when: datetime | None = None) -> str:
    """``<env>__<agent>__<seed>__<YYYYmmdd-HHMMSS>``; characters of the env id that are not
    portable in file names (``/`` of namespaces, ``:`` of ``module:Id``) become ``-``."""
    stamp = (when or datetime.now()).strftime(TIME_FORMAT)
    env = re.sub(r"[^A-Za-z0-9._-]", "-", env_id)
    return f"{env}__{agent}__{seed}__{stamp}"


def create_run_dir(
    root: str | os.PathLike,
    env_id: str,
    agent: str,
    seed: int | None,
    when: datetime | None = None,
) -> Path:
    """Create and return a new run folder under ``root``; never reuses an existing one.

    Runs started in the same second get ``-2``, ``-3``, ... appended.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    name = run_name(env_id, agent, seed, when)
    for attempt in range(1, 1000):
        path = root / (name if attempt == 1 else f"{name}-{attempt}")
        try:
            path.mkdir()
        except FileExistsError:
            continue
        return path
    raise FileExistsError(f"could not create a new run folder named {name} under {root}")


def write_config(run_dir: str | os.PathLike, config: Mapping[str, Any]) -> Path:
    """Write ``config.json`` atomically (a kill while it is rewritten at the end of training
    leaves the old one, which ``--resume`` reads)."""
    path = Path(run_dir) / CONFIG_FILE
    tmp = path.with_name(f"{CONFIG_FILE}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(config, indent=2, sort_keys=False) + "\n")
    os.replace(tmp, path)
    return path


def read_config(run_dir: str | os.PathLike) -> dict[str, Any]:
    return json.loads((Path(run_dir) / CONFIG_FILE).read_text())


def model_path(run_dir: str | os.PathLike) -> Path:
    """The final checkpoint of a run (what ``agent.save(run / MODEL_NAME)`` writes)."""
    return Path(run_dir) / f"{MODEL_NAME}.pt"


def require_run(run_dir: str | os.PathLike) -> Path:
    """``run_dir`` as a Path if it holds a checkpoint, else FileNotFoundError saying why."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"run folder {str(run_dir)!r} does not exist")
    if not model_path(run_dir).is_file():
        raise FileNotFoundError(
            f"run folder {str(run_dir)!r} has no checkpoint {model_path(run_dir).name} "
            "(did its training finish?)"
        )
    return run_dir


def parse_value(text: str) -> Any:
    """A ``--set`` value: JSON if it parses (``3``, ``1e-3``, ``true``, ``[64, 64]``, ``null``),
    else a Python literal (``.5``, ``True``, ``None``), else the string itself."""
    try:
        return json.loads(text)
    except ValueError:
        pass
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return text


def parse_overrides(items: Iterable[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split ``key=value`` strings into (agent hyperparameters, env kwargs).

    Keys starting with ``env.`` go to the environment (prefix removed). Other dotted keys
    nest: ``policy.core=gru`` sets ``{"policy": {"core": "gru"}}``. A later item overrides
    an earlier one with the same key. A malformed item raises ValueError.
    """
    hyperparameters: dict[str, Any] = {}
    env_kwargs: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ValueError(f"--set expects key=value (e.g. learning_rate=3e-4), got {item!r}")
        if key.startswith(ENV_PREFIX):
            name = key[len(ENV_PREFIX) :]
            if not name:
                raise ValueError(f"--set {item!r}: missing the env argument name after 'env.'")
            env_kwargs[name] = parse_value(text)
            continue
        *parents, name = key.split(".")
        if not name or not all(parents):
            raise ValueError(f"--set {item!r}: empty name in {key!r}")
        target = hyperparameters
        for part in parents:
            if not isinstance(target.setdefault(part, {}), dict):
                raise ValueError(f"--set {item!r}: {part!r} was set to a value, not settings")
            target = target[part]
        target[name] = parse_value(text)
    return hyperparameters, env_kwargs


def merge_settings(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``over`` on top, merging nested dicts (a preset's ``policy`` with
    ``--set policy.core=...``) instead of replacing them."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge_settings(out[key], value)
        else:
            out[key] = value
    return out


def _flatten(values: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, Mapping):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def config_hparams(config: Mapping[str, Any]) -> dict[str, Any]:
    """The flat hyperparameter table of a run config, for TensorBoard's HParams tab
    (nested settings as ``policy.core``)."""
    flat: dict[str, Any] = {
        key: config[key] for key in ("agent", "env", "seed", "steps", "device") if key in config
    }
    flat.update(_flatten(config.get("hyperparameters", {})))
    flat.update({f"{ENV_PREFIX}{k}": v for k, v in config.get("env_kwargs", {}).items()})
    return flat
