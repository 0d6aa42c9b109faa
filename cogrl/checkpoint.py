"""Checkpoint files: written atomically, read with ``weights_only=True``, with clear errors.

A checkpoint (``model.pt``, ``checkpoint.pt``) holds the agent's configuration as JSON text,
its weights, and, for a training checkpoint, everything a training run needs to continue
exactly where it stopped (:meth:`cogrl.agents.base.Agent.training_state`): tensors
and plain values only, so that opening one never runs code from it.

Files are written to a temporary file in the same folder, flushed to the disk and renamed
over the old one: a process killed while writing leaves the previous checkpoint intact and
a stray ``*.tmp-*`` file that is never read.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

__all__ = ["atomic_save", "read_checkpoint"]


def atomic_save(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save(obj, path)``, all or nothing: a temporary file renamed over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    # The rename itself reaches the disk with the folder's entry.
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return path


def read_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """The contents of a checkpoint written by cogrl (``weights_only=True``: runs no code).

    A missing file is a FileNotFoundError; an empty, truncated, corrupt or foreign file a
    ValueError that names it.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    if path.stat().st_size == 0:
        raise ValueError(f"checkpoint {path} is empty (0 bytes): it was not written completely")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch.load fails on damaged files with many exception types
        raise ValueError(
            f"checkpoint {path} cannot be read: it is truncated, corrupt or not a cogrl "
            f"checkpoint ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else e!r})"
        ) from None
    if not isinstance(data, dict) or not {"config", "state"} <= set(data):
        raise ValueError(
            f"checkpoint {path} is not a cogrl checkpoint: expected a dict with 'config' and "
            f"'state', got {type(data).__name__}"
        )
    return data
