"""Input validation shared by attnlib's public functions.

Every public function checks its inputs here first, so that a learner who passes
the wrong thing sees what was expected and what arrived, instead of a traceback
from deep inside numpy.
"""

from __future__ import annotations

import numpy as np


def as_float_array(x, name: str, *, min_ndim: int = 0) -> np.ndarray:
    """Return ``x`` as a floating-point array, or raise a clear error."""
    if isinstance(x, np.ndarray) and x.dtype == object or isinstance(x, (str, bytes)):
        raise TypeError(f"{name} must be an array of numbers, got {type(x).__name__}")
    try:
        arr = np.asarray(x)
    except Exception as err:  # ragged lists and the like
        raise TypeError(f"{name} must be an array of numbers: {err}") from None
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.number):
        raise TypeError(f"{name} must be an array of numbers, got dtype {arr.dtype}")
    if np.iscomplexobj(arr):
        raise TypeError(f"{name} must be real, got complex dtype {arr.dtype}")
    if not np.issubdtype(arr.dtype, np.floating):
        arr = arr.astype(np.float64)
    if arr.ndim < min_ndim:
        raise ValueError(
            f"{name} must have at least {min_ndim} dimensions, got shape {arr.shape}"
        )
    return arr


def check_finite(arr: np.ndarray, name: str) -> None:
    """Raise if ``arr`` holds NaN or infinity."""
    if not np.all(np.isfinite(arr)):
        bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
        raise ValueError(f"{name} must be finite, but {bad} entries are NaN or infinite")


def check_nonempty(arr: np.ndarray, name: str, axes_names: tuple[str, ...]) -> None:
    """Raise if one of the trailing axes of ``arr`` has length 0."""
    tail = arr.shape[-len(axes_names):]
    for axis_name, size in zip(axes_names, tail, strict=True):
        if size == 0:
            raise ValueError(
                f"{name} has {axis_name}=0 (shape {arr.shape}); "
                f"attention needs at least one {axis_name.split('_')[-1]}"
            )


def as_bool_mask(mask, name: str = "mask") -> np.ndarray:
    """Return ``mask`` as a boolean array, or raise a clear error."""
    arr = np.asarray(mask)
    if arr.dtype != bool:
        raise TypeError(
            f"{name} must be boolean (True = this query may attend to this key), "
            f"got dtype {arr.dtype}"
        )
    return arr


def broadcast_mask(mask, scores_shape: tuple[int, ...], name: str = "mask") -> np.ndarray:
    """Check a boolean mask against scores of shape ``(..., n_q, n_k)``.

    The mask may add leading (batch) dimensions but must not change ``n_q`` or
    ``n_k``.  Returns the mask broadcast to the joint shape.
    """
    arr = as_bool_mask(mask, name)
    try:
        shape = np.broadcast_shapes(scores_shape, arr.shape)
    except ValueError:
        shape = None
    if shape is None or shape[-2:] != tuple(scores_shape[-2:]):
        raise ValueError(
            f"{name} of shape {arr.shape} does not broadcast to the scores' shape "
            f"{tuple(scores_shape)} (..., n_q, n_k)"
        )
    return np.broadcast_to(arr, shape)


def broadcast_batch(shapes: dict[str, tuple[int, ...]]) -> tuple[int, ...]:
    """Broadcast the leading (batch) shapes of several arrays, or raise."""
    try:
        return np.broadcast_shapes(*shapes.values())
    except ValueError:
        listed = ", ".join(f"{k} {v}" for k, v in shapes.items())
        raise ValueError(f"leading (batch) dimensions do not broadcast: {listed}") from None
