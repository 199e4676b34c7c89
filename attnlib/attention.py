"""Scaled dot-product attention: the formula at the heart of the book."""

from __future__ import annotations

import numpy as np

from attnlib._checks import check_attention, check_no_overflow
from attnlib.softmax import softmax


def scaled_dot_product_attention(Q, K, V, mask=None, *, scale=None):
    r"""Attention: each query takes a softmax-weighted average of the values.

    .. math:: \operatorname{Attention}(Q, K, V) =
              \operatorname{softmax}\!\left(\frac{Q K^\top}{\sqrt{d_k}}\right) V

    Chapter 3 ("How attention works") builds it step by step.  :func:`attnlib.fast.scaled_dot_product_attention`
    computes the same in cache-sized blocks on every core; :func:`attnlib.blockwise_attention`
    computes the output without ever holding the weights.

    Parameters
    ----------
    Q : array_like, shape (..., n_q, d_k)
        Queries: what each position is looking for.
    K : array_like, shape (..., n_k, d_k)
        Keys: what each position offers to be matched against.
    V : array_like, shape (..., n_k, d_v)
        Values: the content that is averaged.
    mask : array_like of bool, optional
        Broadcastable to ``(..., n_q, n_k)`` without changing that shape: it may not add
        batch dimensions, and if it has any it has one per batch dimension of the scores
        (``padding_mask(lengths, n)[:, None]`` against ``(B, H, n, n)`` scores).  ``mask[..., i, j]``
        True means query i may attend to key j (PyTorch's boolean ``attn_mask`` convention).
        A query with no allowed key gets zero weights and a zero output.
    scale : float, optional
        Multiplies the scores; defaults to ``1/sqrt(d_k)``.

    Returns
    -------
    output : ndarray, shape (..., n_q, d_v)
    weights : ndarray, shape (..., n_q, n_k)
        Each row sums to 1 (or 0 for a fully masked row).

    Raises
    ------
    ValueError or TypeError
        For inputs that do not fit the contract above, with what was expected and what arrived;
        also when an allowed score overflows the dtype (it would pass for a masked key).
    MemoryError
        Before allocating, when the weights would not fit in the memory left.

    Notes
    -----
    float16 inputs are computed in float32 (a float16 sum overflows past 65504) and the
    results returned as float16.

    Examples
    --------
    >>> Q = np.array([[1.0, 0.0]])
    >>> K = np.array([[1.0, 0.0], [0.0, 1.0]])
    >>> V = np.array([[10.0], [20.0]])
    >>> out, w = scaled_dot_product_attention(Q, K, V)
    >>> w.round(3), out.round(3)
    (array([[0.67, 0.33]]), array([[13.302]]))
    >>> scaled_dot_product_attention(Q, K, V, mask=np.array([[False, True]]))[0]
    array([[20.]])
    """
    Q, K, V, mask, scale, out_dtype = check_attention(  # shapes, dtypes, the mask, the memory needed
        Q, K, V, mask, scale, copies=3, what="scaled_dot_product_attention")  # 3: the softmax's temporaries
    scores = (Q * scale) @ K.swapaxes(-1, -2)  # (..., n_q, d_k) @ (..., d_k, n_k) -> (..., n_q, n_k)
    check_no_overflow(scores, mask)  # an infinite score would pass for a masked key
    if mask is not None:
        scores = np.where(mask, scores, -np.inf)  # masked keys score -inf: weight exactly 0
    weights = softmax(scores, axis=-1)  # (..., n_q, n_k); a row with no allowed key is all 0
    output = weights @ V  # (..., n_q, n_k) @ (..., n_k, d_v) -> (..., n_q, d_v)
    return output.astype(out_dtype, copy=False), weights.astype(out_dtype, copy=False)
