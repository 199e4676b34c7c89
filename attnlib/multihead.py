"""Multi-head attention: several attentions side by side, each in its own subspace, and its backward pass.

The public functions check their arguments once (:mod:`attnlib._validate`); the
formula functions ``_multi_head_attention`` and ``_multi_head_attention_backward``
trust them.  ``multi_head_attention(..., return_cache=True)`` also returns what the
backward needs (a :class:`MultiHeadCache`); ``multi_head_attention_backward(...,
cache=cache)`` then recomputes nothing.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from attnlib._validate import (
    ATTENTION_BIASES,
    ATTENTION_WEIGHTS,
    as_bool,
    as_float_array,
    check_heads,
    check_multi_head,
    check_rng,
    gradient_like,
    positive_int,
)
from attnlib.attention import _attention, _attention_backward, _sum_to_shape


def split_heads(X, n_heads: int) -> np.ndarray:
    """Split the last axis into heads: ``(..., n, d_model) -> (..., n_heads, n, d_head)``.

    Head h gets columns ``h*d_head:(h+1)*d_head``.  The reshape alone would give
    ``(..., n, n_heads, d_head)``; the heads axis must then be moved in front of the
    sequence axis (a transpose, not another reshape).

    Examples
    --------
    >>> X = np.arange(12.0).reshape(2, 6)  # n=2 tokens, d_model=6
    >>> split_heads(X, 3)[1]  # head 1 owns columns 2:4
    array([[2., 3.],
           [8., 9.]])
    """
    X = as_float_array(X, "X", min_ndim=2)
    return _split_heads(X, check_heads(X.shape[-1], n_heads))


def _split_heads(X: np.ndarray, n_heads: int) -> np.ndarray:
    *lead, n, d_model = X.shape
    d_head = d_model // n_heads
    X = X.reshape(*lead, n, n_heads, d_head)  # (..., n, n_heads, d_head)
    return np.swapaxes(X, -3, -2)  # (..., n_heads, n, d_head)


def merge_heads(X) -> np.ndarray:
    """Undo :func:`split_heads`: ``(..., n_heads, n, d_head) -> (..., n, n_heads * d_head)``.

    Examples
    --------
    >>> X = np.arange(12.0).reshape(2, 6)
    >>> bool(np.array_equal(merge_heads(split_heads(X, 3)), X))
    True
    """
    return _merge_heads(as_float_array(X, "X", min_ndim=3))


def _merge_heads(X: np.ndarray) -> np.ndarray:
    *lead, n_heads, n, d_head = X.shape
    X = np.swapaxes(X, -3, -2)  # (..., n, n_heads, d_head)
    return X.reshape(*lead, n, n_heads * d_head)  # (..., n, d_model)


def init_multi_head(d_model: int, n_heads: int, rng: np.random.Generator, *, bias: bool = False) -> dict:
    """Random parameters for :func:`multi_head_attention`.

    Weights are drawn from N(0, 1/d_model), so projections keep unit variance.

    Parameters
    ----------
    d_model, n_heads : int
        ``d_model`` must be divisible by ``n_heads``.
    rng : numpy.random.Generator
    bias : bool
        Also make biases ``b_q, b_k, b_v, b_o`` (zeros).

    Returns
    -------
    dict with ``W_q, W_k, W_v, W_o`` of shape ``(d_model, d_model)`` (and biases).

    Examples
    --------
    >>> p = init_multi_head(8, 2, np.random.default_rng(0))
    >>> sorted(p), p["W_q"].shape
    (['W_k', 'W_o', 'W_q', 'W_v'], (8, 8))
    """
    check_rng(rng)
    d_model = positive_int(d_model, "d_model")
    check_heads(d_model, n_heads)
    bias = as_bool(bias, "bias")
    params = {name: rng.normal(0.0, 1.0 / math.sqrt(d_model), size=(d_model, d_model)) for name in ATTENTION_WEIGHTS}
    if bias:
        params.update({name: np.zeros(d_model) for name in ATTENTION_BIASES})
    return params


class MultiHeadCache(NamedTuple):
    """What :func:`multi_head_attention` keeps for its backward pass (``return_cache=True``)."""

    X_q: np.ndarray  # (..., n_q, d_model), checked, in the dtype computed in
    X_kv: np.ndarray  # (..., n_k, d_model)
    params: dict  # the attention parameters used, checked: W_q ... W_o and the given biases
    Q: np.ndarray  # (..., n_heads, n_q, d_head), the projected and split queries
    K: np.ndarray  # (..., n_heads, n_k, d_head)
    V: np.ndarray  # (..., n_heads, n_k, d_head)
    weights: np.ndarray  # (..., n_heads, n_q, n_k)
    H: np.ndarray  # (..., n_q, d_model), the merged heads before W_o
    out_dtype: np.dtype  # the dtype of the results (float16 inputs are computed in float32)


def multi_head_attention(X_q, X_kv, params: dict, n_heads: int, mask=None, *, return_cache: bool = False):
    r"""Multi-head attention of Vaswani et al. (2017).

    .. math:: \operatorname{MHA}(X_q, X_{kv}) = \operatorname{concat}(h_1, \dots, h_H)\,W_o,
              \quad h_i = \operatorname{Attention}(X_q W_q^{(i)}, X_{kv} W_k^{(i)}, X_{kv} W_v^{(i)})

    where :math:`W^{(i)}` are columns ``i*d_head:(i+1)*d_head`` of ``W``.
    Self-attention passes the same array as ``X_q`` and ``X_kv``.  Chapter 4 explains it.

    Parameters
    ----------
    X_q : array_like, shape (..., n_q, d_model)
        The sequence that asks (queries).
    X_kv : array_like, shape (..., n_k, d_model)
        The sequence that is looked at (keys and values).
    params : dict
        ``W_q, W_k, W_v, W_o`` of shape ``(d_model, d_model)``, used as ``X @ W``;
        optional biases ``b_q, b_k, b_v, b_o`` of shape ``(d_model,)``.  Other keys (a
        whole :func:`attnlib.transformer.encoder_layer` dict may be passed) are not used,
        but a misspelt attention key such as ``b_O`` or ``Wq`` is an error.
    n_heads : int
        Must divide ``d_model``.
    mask : array_like of bool, optional
        Broadcastable to ``(..., n_q, n_k)`` (without the heads axis) without changing
        that shape; the same mask applies to every head.  True = may attend.
    return_cache : bool
        Also return a :class:`MultiHeadCache`, for :func:`multi_head_attention_backward`.

    Returns
    -------
    output : ndarray, shape (..., n_q, d_model)
    weights : ndarray, shape (..., n_heads, n_q, n_k)
    cache : MultiHeadCache
        Only with ``return_cache=True``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(5, 8))
    >>> out, w = multi_head_attention(X, X, init_multi_head(8, 2, rng), n_heads=2)
    >>> out.shape, w.shape
    ((5, 8), (2, 5, 5))
    """
    X_q, X_kv, p, n_heads, mask, out_dtype = check_multi_head(X_q, X_kv, params, n_heads, mask)
    return_cache = as_bool(return_cache, "return_cache")
    output, cache = _multi_head_attention(X_q, X_kv, p, n_heads, mask, out_dtype)
    output, weights = output.astype(out_dtype, copy=False), cache.weights.astype(out_dtype, copy=False)
    return (output, weights, cache) if return_cache else (output, weights)


def _project(X: np.ndarray, p: dict, w: str, b: str) -> np.ndarray:
    """The linear map ``X @ p[w] + p[b]`` (no bias if ``b`` is not in ``p``)."""
    Y = X @ p[w]  # (..., n, d_model) @ (d_model, d_model) -> (..., n, d_model)
    Y = Y + p[b] if b in p else Y
    if not np.isfinite(Y).all():  # the inputs are finite: the product overflowed
        raise ValueError(f"the projection X @ {w} overflows {Y.dtype}; scale the inputs or {w} down")
    return Y


def _multi_head_attention(X_q, X_kv, p: dict, n_heads: int, mask, out_dtype) -> tuple[np.ndarray, MultiHeadCache]:
    """The formula on checked arrays: ``(output, cache)``."""
    Q = _split_heads(_project(X_q, p, "W_q", "b_q"), n_heads)  # (..., n_heads, n_q, d_head)
    K = _split_heads(_project(X_kv, p, "W_k", "b_k"), n_heads)  # (..., n_heads, n_k, d_head)
    V = _split_heads(_project(X_kv, p, "W_v", "b_v"), n_heads)  # (..., n_heads, n_k, d_head)
    scale = 1.0 / math.sqrt(Q.shape[-1])
    heads, weights = _attention(Q, K, V, mask, scale)  # (..., n_heads, n_q, d_head), (..., n_heads, n_q, n_k)
    H = _merge_heads(heads)  # (..., n_q, d_model)
    output = _project(H, p, "W_o", "b_o")  # (..., n_q, d_model)
    return output, MultiHeadCache(X_q, X_kv, p, Q, K, V, weights, H, out_dtype)


def multi_head_attention_backward(X_q, X_kv, params: dict, n_heads: int, d_output, mask=None, *, cache=None):
    r"""Gradients of :func:`multi_head_attention` for its inputs and parameters.

    The forward pass projects, splits into heads, attends, merges and projects back:
    :math:`Q = X_q W_q + b_q`, :math:`K = X_{kv} W_k + b_k`, :math:`V = X_{kv} W_v + b_v`,
    :math:`H = \operatorname{concat}_h \operatorname{Attention}(Q_h, K_h, V_h)`,
    :math:`O = H W_o + b_o`.  Each linear map :math:`Y = X W + b` goes back as

    .. math:: dX = dY\, W^\top, \quad dW = \textstyle\sum X^\top dY, \quad db = \textstyle\sum dY

    (sums over the batch and the positions), and the heads go back through
    :func:`attnlib.attention_backward`.  For self-attention (the same ``X`` as ``X_q`` and
    ``X_kv``) the gradient with respect to ``X`` is ``dX_q + dX_kv``.

    Parameters
    ----------
    X_q : array_like, shape (..., n_q, d_model)
    X_kv : array_like, shape (..., n_k, d_model)
    params : dict
        As in the forward call (the same rule: other keys than the attention's are not used).
    n_heads : int
        Must divide ``d_model``.
    d_output : array_like, shape (..., n_q, d_model)
        The gradient arriving at the output, of the forward output's shape.
    mask : array_like of bool, optional
        Broadcastable to ``(..., n_q, n_k)``; the same for every head.  True = may attend.
    cache : MultiHeadCache, optional
        From ``multi_head_attention(X_q, X_kv, params, n_heads, mask, return_cache=True)``
        with the same arguments: then the forward is not computed again, and the arrays
        the forward checked are used.  Left out, the forward is recomputed.

    Returns
    -------
    dX_q : ndarray, shape of ``X_q``
    dX_kv : ndarray, shape of ``X_kv``
    d_params : dict
        One entry per attention parameter key of ``params`` (``W_q`` ... ``b_o``), each
        gradient of its parameter's shape (a bias given as ``None`` gets ``None``).  A
        layer's other keys get no entry: ``grads.update(d_params)`` is safe.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(5, 8))
    >>> params = init_multi_head(8, 2, rng, bias=True)
    >>> out, weights, cache = multi_head_attention(X, X, params, 2, return_cache=True)
    >>> dX_q, dX_kv, d_params = multi_head_attention_backward(X, X, params, 2, np.ones((5, 8)), cache=cache)
    >>> dX_q.shape, dX_kv.shape, sorted(d_params) == sorted(params)
    ((5, 8), (5, 8), True)
    >>> d_params["b_o"]  # b_o is added to each of the 5 outputs
    array([5., 5., 5., 5., 5., 5., 5., 5.])
    """
    if cache is None:
        _, _, cache = multi_head_attention(X_q, X_kv, params, n_heads, mask, return_cache=True)
    elif not isinstance(cache, MultiHeadCache):
        raise TypeError(f"cache must be the MultiHeadCache that multi_head_attention(..., return_cache=True) "
                        f"returned, got {type(cache).__name__}")
    n_out = (*cache.H.shape[:-1], cache.X_q.shape[-1])  # (..., n_q, d_model): the forward output's shape
    dO = gradient_like(d_output, n_out, "d_output", "the output (..., n_q, d_model)").astype(cache.H.dtype)
    dX_q, dX_kv, grads = _multi_head_attention_backward(cache, dO)
    out = cache.out_dtype
    d_params = {name: (None if params[name] is None else grads[name].astype(out, copy=False))
                for name in params if name in grads or name in ATTENTION_BIASES}
    return dX_q.astype(out, copy=False), dX_kv.astype(out, copy=False), d_params


def _multi_head_attention_backward(cache: MultiHeadCache, dO: np.ndarray):
    """``(dX_q, dX_kv, grads)`` from the forward's cache and the gradient at the output."""
    p, d_model = cache.params, cache.X_q.shape[-1]
    grads = {}

    def linear_backward(X, dY, w, b):
        """Y = X W + b: return dX and store dW, db (summed over batch and positions)."""
        rows_X = X.reshape(-1, d_model)  # (rows, d_model): every position of every batch entry
        rows_dY = dY.reshape(-1, d_model)  # (rows, d_model)
        grads[w] = rows_X.T @ rows_dY  # (d_model, rows) @ (rows, d_model) -> (d_model, d_model)
        if b in p:
            grads[b] = rows_dY.sum(axis=0)  # (d_model,)
        return dY @ p[w].T  # (..., n, d_model) @ (d_model, d_model) -> (..., n, d_model)

    X_q, X_kv = (np.broadcast_to(X, (*cache.H.shape[:-2], *X.shape[-2:])) for X in (cache.X_q, cache.X_kv))
    # O = H W_o + b_o
    dH = linear_backward(cache.H, dO, "W_o", "b_o")  # (..., n_q, d_model)
    # H = merge(Attention(Q, K, V)) per head, with the forward's weights
    scale = 1.0 / math.sqrt(cache.Q.shape[-1])
    n_heads = cache.Q.shape[-3]
    dQ, dK, dV = _attention_backward(cache.Q, cache.K, cache.V, cache.weights, _split_heads(dH, n_heads),
                                     scale)  # (..., n_heads, n, d_head) each
    # Q = X_q W_q + b_q, K = X_kv W_k + b_k, V = X_kv W_v + b_v
    dX_q = linear_backward(X_q, _merge_heads(dQ), "W_q", "b_q")  # (..., n_q, d_model)
    dX_kv = (linear_backward(X_kv, _merge_heads(dK), "W_k", "b_k")
             + linear_backward(X_kv, _merge_heads(dV), "W_v", "b_v"))  # (..., n_k, d_model)
    return _sum_to_shape(dX_q, cache.X_q.shape), _sum_to_shape(dX_kv, cache.X_kv.shape), grads

