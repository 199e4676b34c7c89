"""Scaled dot-product attention, the formula at the heart of the book, and its backward pass.

The public functions check their arguments once (:mod:`attnlib._validate`) and call
the formula, ``_attention`` and ``_attention_backward``, which trust them.  The
forward's weights are all the backward needs besides the inputs: pass them as
``attention_backward(..., weights=weights)`` and nothing is recomputed.
"""

from __future__ import annotations

import numpy as np

from attnlib._validate import check_attention, check_output, check_scores, gradient_like
from attnlib.softmax import _softmax, _softmax_backward


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
        Q, K, V, mask, scale, copies=3, what="scaled_dot_product_attention", finite=False)  # 3: softmax temporaries
    output, weights = _attention(Q, K, V, mask, scale)
    return output.astype(out_dtype, copy=False), weights.astype(out_dtype, copy=False)


def _attention(Q, K, V, mask, scale: float):
    """The formula on checked arrays: ``(output, weights)``.

    Raises if an input holds NaN or infinity or a score overflows (an infinite score would
    pass for a masked key): two tests of results stand for three of the inputs.
    """
    S = (Q * scale) @ K.swapaxes(-1, -2)  # (..., n_q, d_k) @ (..., d_k, n_k) -> (..., n_q, n_k)
    check_scores(S, mask, Q, K)  # NaN or infinity in Q or K, or an overflow
    A = _softmax(S if mask is None else np.where(mask, S, -np.inf))  # masked keys: score -inf, weight 0
    output = A @ V  # (..., n_q, n_k) @ (..., n_k, d_v) -> (..., n_q, d_v)
    check_output(output, V)  # NaN or infinity in V
    return output, A


def attention_backward(Q, K, V, d_output, mask=None, *, scale=None, weights=None):
    r"""Gradients of scaled dot-product attention with respect to ``Q``, ``K`` and ``V``.

    The forward pass (:func:`scaled_dot_product_attention`) is
    :math:`S = \gamma\,Q K^\top`, :math:`A = \operatorname{softmax}(S)` (masked
    scores ``-inf``), :math:`O = A V`.  Going back with :math:`dO`:

    .. math::
        dV = A^\top dO, \quad dA = dO\, V^\top, \quad
        dS = A \odot (dA - \operatorname{rowsum}(dA \odot A)), \quad
        dQ = \gamma\, dS\, K, \quad dK = \gamma\, dS^\top Q

    A masked pair has :math:`A = 0`, so its :math:`dS` is 0 and nothing flows
    through it; a fully masked row (zero output) gives zero gradients.  Chapter 3's
    page "Learning to attend" derives it.

    Parameters
    ----------
    Q : array_like, shape (..., n_q, d_k)
    K : array_like, shape (..., n_k, d_k)
    V : array_like, shape (..., n_k, d_v)
    d_output : array_like, shape (..., n_q, d_v)
        The gradient arriving at the output :math:`dO`, of the forward output's
        shape (the broadcast batch dimensions, then ``(n_q, d_v)``).
    mask : array_like of bool, optional
        Broadcastable to ``(..., n_q, n_k)``; True = this query may attend to this key.
    scale : float, optional
        The scale :math:`\gamma` of the scores; defaults to ``1/sqrt(d_k)``.
    weights : array_like, shape (..., n_q, n_k), optional
        The cache: the weights :math:`A` that the forward call with the same arguments
        returned.  Given, the forward is not computed again; left out, it is.

    Returns
    -------
    dQ : ndarray, shape of ``Q``
    dK : ndarray, shape of ``K``
    dV : ndarray, shape of ``V``
        The gradients of ``sum(output * d_output)``.  An input that was broadcast
        over batch dimensions gets the sum of the gradients of all its uses.  float16
        is computed in float32 and returned as float16, as in the forward.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> Q = rng.normal(size=(2, 3, 4))  # a batch of 2, 3 queries each
    >>> K, V = rng.normal(size=(5, 4)), rng.normal(size=(5, 2))  # 5 keys shared by the batch
    >>> output, weights = scaled_dot_product_attention(Q, K, V)
    >>> dQ, dK, dV = attention_backward(Q, K, V, np.ones((2, 3, 2)), weights=weights)
    >>> dQ.shape, dK.shape, dV.shape
    ((2, 3, 4), (5, 4), (5, 2))
    >>> dV.sum(axis=0)  # each of the 2 x 3 queries spreads its gradient 1 over the values
    array([6., 6.])
    """
    shapes = [np.shape(x) for x in (Q, K, V)]
    Q_, K_, V_, mask, s, out_dtype = check_attention(Q, K, V, mask, scale, copies=3, what="attention_backward")
    n_out = (*Q_.shape[:-1], V_.shape[-1])  # (..., n_q, d_v): the forward output's shape
    dO = gradient_like(d_output, n_out, "d_output", "the attention output (..., n_q, d_v)").astype(Q_.dtype)
    if weights is None:
        _, A = _attention(Q_, K_, V_, mask, s)  # (..., n_q, n_k), zeros where masked
    else:
        A = gradient_like(weights, (*Q_.shape[:-1], K_.shape[-2]), "weights",
                          "the forward's weights (..., n_q, n_k)").astype(Q_.dtype, copy=False)
    dQ, dK, dV = _attention_backward(Q_, K_, V_, A, dO, s)
    return tuple(_sum_to_shape(g, shape).astype(out_dtype, copy=False)
                 for g, shape in zip((dQ, dK, dV), shapes, strict=True))


def _attention_backward(Q, K, V, A, dO, scale: float):
    """The gradients ``(dQ, dK, dV)`` from checked arrays and the forward's weights ``A``.

    Q has the batch shape of ``A``; K and V may have fewer batch dimensions (their
    gradients then have ``A``'s batch shape too: sum them with ``_sum_to_shape``).
    """
    # O = A V
    dV = A.swapaxes(-1, -2) @ dO  # (..., n_k, n_q) @ (..., n_q, d_v) -> (..., n_k, d_v)
    dA = dO @ V.swapaxes(-1, -2)  # (..., n_q, d_v) @ (..., d_v, n_k) -> (..., n_q, n_k)
    # A = softmax(S)
    dS = _softmax_backward(A, dA)  # (..., n_q, n_k); 0 where A = 0 (masked)
    # S = scale Q K^T
    dQ = scale * (dS @ K)  # (..., n_q, n_k) @ (..., n_k, d_k) -> (..., n_q, d_k)
    dK = scale * (dS.swapaxes(-1, -2) @ Q)  # (..., n_k, n_q) @ (..., n_q, d_k) -> (..., n_k, d_k)
    return dQ, dK, dV


def _sum_to_shape(grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum ``grad`` over the dimensions that broadcasting added to an input of ``shape``.

    An input used once per batch entry (for example keys shared across a batch)
    collects the gradient of every use: leading dimensions it lacked are summed
    away, and dimensions where it had size 1 are summed with ``keepdims``.
    """
    if grad.shape == tuple(shape):  # nothing was broadcast
        return grad
    grad = grad.sum(axis=tuple(range(grad.ndim - len(shape))))  # dimensions the input did not have
    stretched = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    return grad.sum(axis=stretched, keepdims=True)  # dimensions of size 1 that were repeated
