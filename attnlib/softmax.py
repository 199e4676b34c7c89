"""The softmax, numerically stable and defined for masked (``-inf``) entries, and its backward pass.

Each public function checks its arguments (:mod:`attnlib._validate`), then calls the
formula (``_softmax``, ``_softmax_backward``), which trusts them; library code calls
the formula directly.
"""

from __future__ import annotations

import numpy as np

from attnlib._validate import as_float_array, check_axis, check_finite, check_softmax_input, gradient_like


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
    z = x.astype(np.float32) if x.dtype == np.float16 else x  # a float16 sum overflows past 65504
    return _softmax(z, axis).astype(x.dtype, copy=False)


def _softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """The softmax of checked scores (finite or -inf), along ``axis``."""
    m = x.max(axis=axis, keepdims=True)  # (..., 1, ...): the largest score of each slice
    m = np.maximum(m, np.finfo(x.dtype).min)  # a slice of only -inf: exp(-inf - min) = 0 below
    e = np.exp(x - m)  # same shape as x, every entry in [0, 1]
    total = e.sum(axis=axis, keepdims=True)  # (..., 1, ...): at least 1 (the maximum's e^0)...
    return e / np.maximum(total, 1.0)  # ... or 0 for a slice of only -inf, whose weights stay 0


def softmax_backward(weights, d_weights, axis: int = -1) -> np.ndarray:
    r"""Gradient through the softmax: from ``d_weights`` to ``d_scores``.

    With :math:`A = \operatorname{softmax}(S)` along ``axis`` and the incoming
    gradient :math:`dA`, the Jacobian of the softmax gives

    .. math:: dS = A \odot \left(dA - \textstyle\sum_j dA_j A_j\right)

    where the sum runs along ``axis`` (one number per row, kept for broadcasting).
    An entry with weight 0 (a masked key, score ``-inf``) gets gradient 0, and so
    does every entry of a fully masked row (all weights 0).  The forward's output,
    ``weights``, is all the backward needs: nothing is recomputed.

    Parameters
    ----------
    weights : array_like, shape (..., n)
        The softmax's output :math:`A` (``softmax(scores, axis)``).
    d_weights : array_like, shape (..., n)
        The gradient arriving at the weights, :math:`dA`; same shape as ``weights``.
    axis : int
        The axis along which the softmax was taken.

    Returns
    -------
    d_scores : ndarray, shape (..., n)
        :math:`dS`, the gradient with respect to the softmax's input.  float16 is
        computed in float32 and returned as float16, as in the forward.

    Examples
    --------
    >>> softmax_backward([0.5, 0.5], [1.0, 0.0])  # rowsum(dA * A) = 0.5
    array([ 0.25, -0.25])
    >>> softmax_backward([[0.0, 0.0]], [[3.0, 1.0]])  # a fully masked row
    array([[0., 0.]])
    """
    A = as_float_array(weights, "weights", min_ndim=1)
    dA = gradient_like(d_weights, A.shape, "d_weights", "the weights")
    axis = check_axis(axis, A.ndim, A.shape)
    check_finite(A, "weights")
    out_dtype = np.result_type(A, dA)
    if out_dtype == np.float16:  # as the forward: a float16 row sum overflows past 65504
        A, dA = A.astype(np.float32), dA.astype(np.float32)
    return _softmax_backward(A, dA, axis).astype(out_dtype, copy=False)


def _softmax_backward(A: np.ndarray, dA: np.ndarray, axis: int = -1) -> np.ndarray:
    """dS = A * (dA - rowsum(dA * A)) on checked arrays."""
    rowsum = (dA * A).sum(axis=axis, keepdims=True)  # (..., 1): sum_j dA_j A_j
    return A * (dA - rowsum)  # (..., n)
