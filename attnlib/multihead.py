"""Multi-head attention: several attentions side by side, each in its own subspace."""

from __future__ import annotations

import math

import numpy as np

from attnlib._checks import as_bool, as_float_array, check_finite, check_mask, check_rng, positive_int
from attnlib.attention import scaled_dot_product_attention

_WEIGHTS = ("W_q", "W_k", "W_v", "W_o")
_BIASES = ("b_q", "b_k", "b_v", "b_o")
# The other parameters of a transformer layer (attnlib.transformer.encoder_layer): a whole
# layer's dict may be passed here, and these keys are left alone.  Any other key is an error.
LAYER_KEYS = ("ln_1_gamma", "ln_1_beta", "W_1", "b_1", "W_2", "b_2", "ln_2_gamma", "ln_2_beta")


def _check_heads(d_model: int, n_heads) -> int:
    n_heads = positive_int(n_heads, "n_heads")
    if d_model % n_heads:
        raise ValueError(
            f"d_model={d_model} is not divisible by n_heads={n_heads}; "
            "each head needs d_model / n_heads columns"
        )
    return int(n_heads)


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
    n_heads = _check_heads(X.shape[-1], n_heads)
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
    X = as_float_array(X, "X", min_ndim=3)
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
    _check_heads(d_model, n_heads)
    bias = as_bool(bias, "bias")
    params = {name: rng.normal(0.0, 1.0 / math.sqrt(d_model), size=(d_model, d_model)) for name in _WEIGHTS}
    if bias:
        params.update({name: np.zeros(d_model) for name in _BIASES})
    return params


def _check_params(params, d_model: int) -> dict:
    if not isinstance(params, dict):
        raise TypeError(f"params must be a dict with W_q, W_k, W_v, W_o, got {type(params).__name__}")
    unknown = sorted(set(params) - set(_WEIGHTS + _BIASES + LAYER_KEYS), key=str)
    if unknown:
        raise ValueError(f"params has unknown keys {unknown}; multi-head attention uses W_q, W_k, W_v, W_o "
                         "and the optional biases b_q, b_k, b_v, b_o (names are case-sensitive)")
    missing = [name for name in _WEIGHTS if name not in params]
    if missing:
        raise ValueError(f"params is missing {missing}; expected W_q, W_k, W_v, W_o (and optional biases)")
    checked = {}
    for name in _WEIGHTS + _BIASES:
        if name not in params or (name in _BIASES and params[name] is None):
            continue
        arr = as_float_array(params[name], name)
        expected = (d_model, d_model) if name in _WEIGHTS else (d_model,)
        if arr.shape != expected:
            raise ValueError(f"{name} should have shape {expected} for d_model={d_model}, got {arr.shape}")
        check_finite(arr, name)
        checked[name] = arr
    return checked


def multi_head_attention(X_q, X_kv, params: dict, n_heads: int, mask=None):
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
        optional biases ``b_q, b_k, b_v, b_o`` of shape ``(d_model,)``.  A whole
        :func:`attnlib.transformer.encoder_layer` dict may be passed (its other
        parameters are not used here); any other key, such as ``b_O``, is an error.
    n_heads : int
        Must divide ``d_model``.
    mask : array_like of bool, optional
        Broadcastable to ``(..., n_q, n_k)`` (without the heads axis) without changing
        that shape; the same mask applies to every head.  True = may attend.

    Returns
    -------
    output : ndarray, shape (..., n_q, d_model)
    weights : ndarray, shape (..., n_heads, n_q, n_k)

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(5, 8))
    >>> out, w = multi_head_attention(X, X, init_multi_head(8, 2, rng), n_heads=2)
    >>> out.shape, w.shape
    ((5, 8), (2, 5, 5))
    """
    X_q = as_float_array(X_q, "X_q", min_ndim=2)
    X_kv = as_float_array(X_kv, "X_kv", min_ndim=2)
    if X_q.shape[-1] != X_kv.shape[-1]:
        raise ValueError(
            f"X_q has d_model={X_q.shape[-1]} but X_kv has d_model={X_kv.shape[-1]}; they must match"
        )
    check_finite(X_q, "X_q")
    check_finite(X_kv, "X_kv")
    d_model = X_q.shape[-1]
    n_heads = _check_heads(d_model, n_heads)
    p = _check_params(params, d_model)

    def project(X, w, b):
        Y = X @ p[w]  # (..., n, d_model) @ (d_model, d_model) -> (..., n, d_model)
        Y = Y + p[b] if b in p else Y
        if not np.isfinite(Y).all():  # the inputs are finite: the product overflowed
            raise ValueError(f"the projection X @ {w} overflows {Y.dtype}; scale the inputs or {w} down")
        return Y

    Q = split_heads(project(X_q, "W_q", "b_q"), n_heads)  # (..., n_heads, n_q, d_head)
    K = split_heads(project(X_kv, "W_k", "b_k"), n_heads)  # (..., n_heads, n_k, d_head)
    V = split_heads(project(X_kv, "W_v", "b_v"), n_heads)  # (..., n_heads, n_k, d_head)
    if mask is not None:
        batch = np.broadcast_shapes(X_q.shape[:-2], X_kv.shape[:-2])
        mask = check_mask(mask, (*batch, X_q.shape[-2], X_kv.shape[-2]))  # (..., n_q, n_k)
        mask = mask[..., None, :, :]  # (..., 1, n_q, n_k): the same mask for every head
    heads, weights = scaled_dot_product_attention(Q, K, V, mask)  # (..., n_heads, n_q, d_head)
    output = project(merge_heads(heads), "W_o", "b_o")  # (..., n_q, d_model)
    return output, weights
