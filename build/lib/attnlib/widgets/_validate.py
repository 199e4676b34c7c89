"""Input checks for the widgets: clear ``ValueError``/``TypeError`` messages."""

from __future__ import annotations

import math

import numpy as np

from attnlib._checks import as_float_array, check_finite


def matrix(x, name: str, rows: str, cols: str, *, n_cols: int | None = None) -> np.ndarray:
    """A finite, non-empty 2-D float array ``(rows, cols)``."""
    arr = as_float_array(x, name)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-D ({rows}, {cols}), got shape {arr.shape}")
    if arr.shape[0] == 0:
        raise ValueError(f"{name} has {rows}=0 (shape {arr.shape}); the widget needs at least one row")
    if arr.shape[1] == 0:
        raise ValueError(f"{name} has {cols}=0 (shape {arr.shape}); the widget needs at least one column")
    if n_cols is not None and arr.shape[1] != n_cols:
        raise ValueError(f"{name} must have {cols}={n_cols}, got shape {arr.shape}")
    check_finite(arr, name)
    return arr


def positive_number(x, name: str) -> float:
    """A positive finite float."""
    if isinstance(x, bool) or not isinstance(x, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number, got {type(x).__name__}")
    if not math.isfinite(x) or x <= 0:
        raise ValueError(f"{name} must be a positive finite number, got {x!r}")
    return float(x)


def labels(values, n: int, name: str, default_prefix: str) -> list[str]:
    """``n`` strings (defaults: ``prefix1 ... prefixN``)."""
    if values is None:
        return [f"{default_prefix}{i + 1}" for i in range(n)]
    if isinstance(values, str) or not hasattr(values, "__len__"):
        raise TypeError(f"{name} must be a list of {n} strings, got {type(values).__name__}")
    if len(values) != n:
        raise ValueError(f"{name} has {len(values)} entries but there are {n}")
    return [str(v) for v in values]
