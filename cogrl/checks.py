"""Checks of configuration values: each failure is a ValueError naming the setting, the
value it got and what it expects."""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np

__all__ = ["check_bools", "check_choice", "check_int", "check_number", "check_path", "is_number"]


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def check_int(name: str, value: Any, low: int = 1) -> None:
    """``value`` must be an int >= ``low``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{name} must be an int >= {low}, got {value!r}")


def check_number(
    name: str, value: Any, low: float = 0.0, high: float = math.inf, low_open: bool = False
) -> None:
    """``value`` must be a finite number in [low, high] (or (low, high] if ``low_open``)."""
    ok = is_number(value) and math.isfinite(value) and value <= high
    ok = ok and (value > low if low_open else value >= low)
    if not ok:
        bracket = "(" if low_open else "["
        interval = f"{bracket}{low}, {high}]"
        raise ValueError(f"{name} must be a finite number in {interval}, got {value!r}")


def check_choice(name: str, value: Any, choices: Any) -> None:
    try:
        known = bool(value in choices)
    except (TypeError, ValueError):  # unhashable (a dict asked of a set), or an array
        known = False
    if not known:
        raise ValueError(f"{name} must be one of {sorted(choices)}, got {value!r}")


def check_path(name: str, value: Any, optional: bool = False) -> None:
    """``value`` must be a path (a string or ``os.PathLike``), or None when ``optional``."""
    if optional and value is None:
        return
    if not isinstance(value, (str, os.PathLike)):
        what = "a path (a string or os.PathLike)" + (" or None" if optional else "")
        raise ValueError(f"{name} must be {what}, got {value!r}")


def check_bools(config: Any, *names: str) -> None:
    for name in names:
        if not isinstance(getattr(config, name), bool):
            raise ValueError(f"{name} must be true or false, got {getattr(config, name)!r}")
