"""Input checks for the widgets: clear ``ValueError``/``TypeError`` messages.

One rule for every widget: Python holds what the view shows.  A value set from Python that the
view cannot show (a query outside the plane, a temperature beyond its slider, a head or a
checkpoint that does not exist, scores where weights are expected) raises a ``ValueError`` that
names the allowed range; nothing is clamped silently.  The views keep their own controls inside
the same ranges, so a value that comes from the browser always passes.
"""

from __future__ import annotations

import math

import numpy as np

from attnlib._validate import as_float_array, check_finite, positive_number

__all__ = ["array_of_rank", "attention_weights", "in_range", "index", "labels", "matrix", "positive_number",
           "shown"]

# Views that only show weights (AttentionMap, ModelView, TrainingView) print them with 2 decimals and
# colour by them; their state keeps 3 decimals (exact to 5e-4), a quarter of the bytes of full floats.
# Views that recompute in the browser (QueryKeyExplorer, MaskExplorer, NeuronView) keep full floats,
# so that their math agrees with attnlib to 1e-6.
DISPLAY_DIGITS = 3


def shown(x, digits: int = DISPLAY_DIGITS) -> list:
    """``x`` as nested lists of floats rounded to ``digits`` decimals: the state of a display-only view."""
    return np.round(np.asarray(x, dtype=np.float64), digits).tolist()  # float64: short reprs in JSON


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


def in_range(x, name: str, low: float, high: float, *, why: str) -> float:
    """A finite number in ``[low, high]`` (``why`` says where the range comes from)."""
    if isinstance(x, (bool, np.bool_)) or not isinstance(x, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number, got {type(x).__name__}")
    if not math.isfinite(x) or not low <= x <= high:
        raise ValueError(f"{name} must be in [{low:g}, {high:g}] ({why}), got {x!r}")
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
