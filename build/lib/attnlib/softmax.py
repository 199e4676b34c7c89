"""The softmax, numerically stable and defined for masked (``-inf``) entries."""

from __future__ import annotations

from functools import partial

import numpy as np

from attnlib._checks import as_float_array
from attnlib._parallel import run_tasks

# Rows are processed in chunks of about this many entries (256 KB of float32), so
# that the max, exp, sum and division of a chunk happen while it sits in the cache.
_CHUNK_ENTRIES = 1 << 16
# Arrays at least this large are split between the CPU cores (see _parallel.py).
PARALLEL_ENTRIES = 1 << 20


def softmax(x, axis: int = -1) -> np.ndarray:
    r"""Turn scores into weights that are non-negative and sum to one.

    .. math:: \operatorname{softmax}(x)_i = \frac{e^{x_i - m}}{\sum_j e^{x_j - m}},
              \quad m = \max_j x_j

    Subtracting the maximum changes nothing mathematically and keeps ``exp``
    from overflowing.  Entries equal to ``-inf`` (masked out) get weight exactly 0,
    and a slice that is entirely ``-inf`` gives all zeros, never NaN.
    Chapter 3 ("How attention works") explains it.

    Parameters
    ----------
    x : array_like, shape (..., n)
        Scores. ``-inf`` is allowed; NaN and ``+inf`` are not.
    axis : int
        The axis along which the weights sum to one.

    Returns
    -------
    ndarray, same shape as ``x``
        Weights in [0, 1] that sum to 1 along ``axis`` (or to 0 where every
        entry was ``-inf``).

    Examples
    --------
    >>> softmax([1.0, 2.0, 3.0]).round(4)
    array([0.09  , 0.2447, 0.6652])
    >>> softmax([0.0, -np.inf])
    array([1., 0.])
    >>> softmax([-np.inf, -np.inf])
    array([0., 0.])
    """
    x = as_float_array(x, "x", min_ndim=1)
    if not -x.ndim <= axis < x.ndim:
        raise ValueError(f"axis {axis} is out of range for an array of shape {x.shape}")
    out = np.moveaxis(x, axis, -1).copy(order="C")  # (..., n), our own copy to overwrite
    softmax_last_axis_(out)
    return np.moveaxis(out, -1, axis)


def softmax_last_axis_(x: np.ndarray) -> None:
    """Overwrite a C-contiguous float array ``x`` with ``softmax(x, axis=-1)``.

    The same math as :func:`softmax`, done in place and one cache-sized chunk of
    rows at a time, split between the CPU cores for large arrays: a handful of
    passes over a small chunk instead of one pass over all of ``x`` per step.
    """
    n = x.shape[-1]
    rows = x.reshape(-1, n)  # (rows, n), a view because x is C-contiguous
    if rows.size == 0:
        np.max(rows, axis=-1)  # raises numpy's own error for an empty axis, as np.max(x) does
        return
    step = max(1, _CHUNK_ENTRIES // n)
    tasks = [partial(softmax_rows_, rows[i : i + step]) for i in range(0, rows.shape[0], step)]
    run_tasks(tasks, parallel=rows.size >= PARALLEL_ENTRIES)


def softmax_rows_(y: np.ndarray) -> None:
    """In place: ``y (rows, n) <- softmax(y)`` along the last axis."""
    m = np.max(y, axis=-1, keepdims=True)  # (rows, 1); NaN anywhere in a row makes it NaN
    if not np.all(np.isfinite(m)):
        if np.isnan(m).any() or np.isposinf(m).any():
            raise ValueError("softmax expects finite scores or -inf (masked), got NaN or +inf")
        m[np.isneginf(m)] = 0.0  # an all -inf row: exp(-inf) = 0 below
    np.subtract(y, m, out=y)
    np.exp(y, out=y)
    total = np.sum(y, axis=-1, keepdims=True)  # (rows, 1)
    inverse = np.divide(1.0, total, out=np.zeros_like(total), where=total > 0)  # (rows, 1)
    np.multiply(y, inverse, out=y)  # one multiply per entry; an all -inf row stays all zeros
