"""Input checks for the widgets: clear ``ValueError``/``TypeError`` messages."""

from __future__ import annotations

import math

import numpy as np

from attnlib._validate import as_float_array, check_finite


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
    """``n`` strings (defaults: ``prefix0 ... prefix{n-1}``: the book counts layers and heads from 0)."""
    if values is None:
        return [f"{default_prefix}{i}" for i in range(n)]
    if isinstance(values, str) or not hasattr(values, "__len__"):
        raise TypeError(f"{name} must be a list of {n} strings, got {type(values).__name__}")
    if len(values) != n:
        raise ValueError(f"{name} has {len(values)} entries but there are {n}")
    return [str(v) for v in values]


def array_of_rank(x, name: str, dims: tuple[str, ...]) -> np.ndarray:
    """A finite, non-empty float array with ``len(dims)`` dimensions, named ``dims`` in errors."""
    arr = as_float_array(x, name)
    shape_text = "(" + ", ".join(dims) + ")"
    if arr.ndim != len(dims):
        raise ValueError(f"{name} must have shape {shape_text}, got an array of shape {arr.shape}")
    empty = [d for d, size in zip(dims, arr.shape, strict=True) if size == 0]
    if empty:
        raise ValueError(f"{name} has {empty[0]}=0 (shape {arr.shape}); the widget needs at least one")
    check_finite(arr, name)
    return arr


def attention_weights(x, name: str, dims: tuple[str, ...]) -> np.ndarray:
    """Like :func:`array_of_rank`, and every value a weight in [0, 1] (softmax output, not scores)."""
    arr = array_of_rank(x, name, dims)
    low, high = float(arr.min()), float(arr.max())
    if low < -1e-9 or high > 1 + 1e-9:
        raise ValueError(
            f"{name} must be attention weights in [0, 1] (the softmax's output), but its values run "
            f"from {low:.3g} to {high:.3g}; pass the weights, not the scores"
        )
    return arr


def index(value, n: int, name: str) -> int:
    """An int in ``0..n-1`` (bool is not an int here)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int in 0..{n - 1}, got {type(value).__name__}")
    if not 0 <= value < n:
        raise ValueError(f"{name} must be in 0..{n - 1}, got {value}")
    return int(value)
