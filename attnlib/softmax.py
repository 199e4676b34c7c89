"""The softmax, numerically stable and defined for masked (``-inf``) entries."""

from __future__ import annotations

import numpy as np

from attnlib._checks import as_float_array


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
    if np.isnan(x).any() or np.isposinf(x).any():
        raise ValueError("softmax expects finite scores or -inf (masked), got NaN or +inf")
    if not -x.ndim <= axis < x.ndim:
        raise ValueError(f"axis {axis} is out of range for an array of shape {x.shape}")
    m = np.max(x, axis=axis, keepdims=True)
    m = np.where(np.isneginf(m), 0.0, m)  # an all -inf slice: exp(-inf) = 0 below
    e = np.exp(x - m)
    total = np.sum(e, axis=axis, keepdims=True)
    return np.divide(e, total, out=np.zeros_like(e), where=total > 0)
