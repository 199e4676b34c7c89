"""The softmax, numerically stable and defined for masked (``-inf``) entries."""

from __future__ import annotations

import numpy as np

from attnlib._checks import as_float_array, check_axis, check_softmax_input, working_dtype


def softmax(x, axis: int = -1) -> np.ndarray:
    r"""Turn scores into weights that are non-negative and sum to one.

    .. math:: \operatorname{softmax}(x)_i = \frac{e^{x_i - m}}{\sum_j e^{x_j - m}},
              \quad m = \max_j x_j

    Subtracting the maximum changes nothing mathematically and keeps ``exp``
    from overflowing.  Entries equal to ``-inf`` (masked out) get weight exactly 0,
    and a slice that is entirely ``-inf`` gives all zeros, never NaN.
    Chapter 3 ("How attention works") explains it.  (:func:`attnlib.fast.softmax`
    computes the same in cache-sized pieces on every core.)

    Parameters
    ----------
    x : array_like, shape (..., n)
        Scores. ``-inf`` is allowed; NaN and ``+inf`` are not.  float16 scores are
        computed in float32 (a float16 sum overflows past 65504) and returned as float16.
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
    axis = check_axis(axis, x.ndim, x.shape)
    check_softmax_input(x, axis)
    z = x.astype(working_dtype(x), copy=False)
    m = np.max(z, axis=axis, keepdims=True)  # (..., 1, ...): the largest score of each slice
    m[np.isneginf(m)] = 0.0  # a slice of only -inf: exp(-inf - 0) = 0 below
    e = np.exp(z - m)  # same shape as x, every entry in [0, 1]
    total = np.sum(e, axis=axis, keepdims=True)  # (..., 1, ...), at least 1 unless all -inf
    total[total == 0] = 1.0  # a slice of only -inf: 0 / 1 = 0
    return (e / total).astype(x.dtype, copy=False)

