"""Checkpoint files: written atomically, read with ``weights_only=True``, with clear errors.

A checkpoint (``model.pt``, ``checkpoint.pt``) holds the agent's configuration as JSON text,
its weights, and, for a training checkpoint, everything a training run needs to continue
exactly where it stopped (:meth:`cogrl.agents.base.Agent.training_state`): tensors
and plain values only, so that opening one never runs code from it.

Files are written to a temporary file in the same folder, flushed to the disk and renamed
over the old one: a process killed while writing leaves the previous checkpoint intact and
a stray ``NAME.tmp-PID`` file that is never read (:func:`remove_stale_temporaries` removes
those of processes that are gone; a run's resume does). A full disk is an
:class:`OSError` with ``errno.ENOSPC`` that says so, the file left as it was.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
from pathlib import Path
from typing import Any

import torch

__all__ = ["atomic_save", "read_checkpoint", "remove_stale_temporaries"]

#: Free bytes under which a failed write is taken for a full disk: torch's writer reports
#: ENOSPC as "RuntimeError: [enforce fail at inline_container.cc] . unexpected pos ...".
FULL_DISK_BYTES = 1 << 20
_TEMPORARY = re.compile(r"\.tmp-?(\d+)$")


def atomic_save(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save(obj, path)``, all or nothing: a temporary file renamed over ``path``.
    Where the disk fills up, an OSError (``errno.ENOSPC``) that says so and that ``path``
    is unchanged."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except (OSError, RuntimeError) as e:
        if not _disk_full(e, path.parent):
            raise
        raise OSError(
            errno.ENOSPC,
            f"no space left on device while writing {path} (its file system has "
            f"{shutil.disk_usage(path.parent).free:,} bytes free; {type(e).__name__}: "
            f"{str(e).splitlines()[0] if str(e) else e!r}); {path} was not changed",
        ) from None
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


def _disk_full(error: BaseException, folder: Path) -> bool:
    """Whether a failed write ran out of space: ENOSPC in the error or its causes, or
    (torch's writer hides the errno) the folder's file system all but full, measured while
    the temporary file still takes its space."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno == errno.ENOSPC:
            return True
        seen = seen.__cause__ or seen.__context__
    try:
        return shutil.disk_usage(folder).free < FULL_DISK_BYTES
    except OSError:
        return False


def remove_stale_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Remove the temporary files (``NAME.tmp-PID``, ``NAME.tmpPID``) that writes killed in
    ``folder`` left behind: those of processes no longer running. Returns them."""
    removed = []
    for file in Path(folder).iterdir():
        match = _TEMPORARY.search(file.name)
        if match is None or not file.is_file():
            continue
        pid = int(match.group(1))
        if pid != os.getpid() and _running(pid):
            continue  # another live process may be writing it
        file.unlink(missing_ok=True)
        removed.append(file)
    return removed


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


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
