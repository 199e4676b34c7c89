"""Attention pooling as kernel regression (Nadaraya 1964, Watson 1964)."""

from __future__ import annotations

from attnlib._validate import as_float_array, check_finite, check_no_overflow, positive_number
from attnlib.softmax import softmax


def nadaraya_watson(x_query, x_keys, y_values, *, bandwidth: float = 1.0):
    r"""Predict by averaging ``y_values``, weighted by a Gaussian kernel.

    .. math:: \hat y(x) = \sum_i w_i(x)\, y_i, \qquad
              w_i(x) = \operatorname{softmax}_i\!\left(-\frac{(x - x_i)^2}{2 \sigma^2}\right)

    This is attention with query ``x``, keys ``x_i`` and values ``y_i``, where the
    score is a negative squared distance instead of a dot product (chapter 3).

    Parameters
    ----------
    x_query : array_like, shape (n_q,)
    x_keys : array_like, shape (n_k,)
    y_values : array_like, shape (n_k,) or (n_k, d_v)
    bandwidth : float
        The kernel width :math:`\sigma`: small means local, large means smooth.

    Returns
    -------
    y_hat : ndarray, shape (n_q,) or (n_q, d_v)
    weights : ndarray, shape (n_q, n_k)

    Examples
    --------
    >>> y_hat, w = nadaraya_watson([0.0], [0.0, 10.0], [1.0, 5.0])
    >>> y_hat.round(6)
    array([1.])
    """
    x_query = as_float_array(x_query, "x_query", min_ndim=1)
    x_keys = as_float_array(x_keys, "x_keys", min_ndim=1)
    y_values = as_float_array(y_values, "y_values", min_ndim=1)
    if x_query.ndim != 1 or x_keys.ndim != 1:
        raise ValueError(
            f"x_query and x_keys must be 1-D, got shapes {x_query.shape} and {x_keys.shape}"
        )
    if x_keys.size == 0 or x_query.size == 0:
        raise ValueError("nadaraya_watson needs at least one query and one key")
    if y_values.shape[0] != x_keys.shape[0] or y_values.ndim > 2:
        raise ValueError(
            f"y_values must have shape (n_k,) or (n_k, d_v) with n_k={x_keys.shape[0]}, "
            f"got {y_values.shape}"
        )
    for name, arr in (("x_query", x_query), ("x_keys", x_keys), ("y_values", y_values)):
        check_finite(arr, name)
    bandwidth = positive_number(bandwidth, "bandwidth")
    scores = -((x_query[:, None] - x_keys[None, :]) ** 2) / (2 * bandwidth**2)  # (n_q, n_k)
    check_no_overflow(scores)  # a score of -inf would pass for a masked key
    weights = softmax(scores, axis=-1)  # (n_q, n_k)
    return weights @ y_values, weights  # (n_q, n_k) @ (n_k[, d_v]) -> (n_q[, d_v])
