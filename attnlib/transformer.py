"""The parts of a transformer encoder layer around attention: layer norm, GELU, feed-forward, embeddings.

Each is a small pure function.  :func:`encoder_layer` puts them together with
:func:`attnlib.multi_head_attention` the way BERT does (a "post-norm" layer).  Chapter 6
("Real-world impact") runs a real pretrained model, all-MiniLM-L6-v2, with them.
"""

from __future__ import annotations

import math

import numpy as np

from attnlib._validate import as_float_array, check_finite, positive_number
from attnlib.multihead import multi_head_attention

# The parameters of an encoder layer besides the attention's W_q ... W_o, b_q ... b_o.
LAYER_KEYS = ("ln_1_gamma", "ln_1_beta", "W_1", "b_1", "W_2", "b_2", "ln_2_gamma", "ln_2_beta")

_erf = np.frompyfunc(math.erf, 1, 1)  # numpy has no erf; math.erf is exact to double precision


def layer_norm(X, gamma, beta, *, eps: float = 1e-12) -> np.ndarray:
    r"""Normalize each row to mean 0 and variance 1, then scale and shift it.

    .. math:: \operatorname{LN}(x) = \gamma \odot \frac{x - \mu}{\sqrt{\sigma^2 + \epsilon}} + \beta,
              \quad \mu, \sigma^2 \text{ the mean and (biased) variance of } x

    Parameters
    ----------
    X : array_like, shape (..., d)
        Finite.  float16 is computed in float32 and returned as float16; rows whose
        variance would overflow (entries near 1e154 in float64) are normalised exactly,
        not set to zero.
    gamma, beta : array_like, shape (d,)
        The learned scale and shift.
    eps : float
        Added to the variance; BERT uses ``1e-12``.

    Returns
    -------
    ndarray, shape (..., d)

    Examples
    --------
    >>> layer_norm([[1.0, 2.0, 3.0]], np.ones(3), np.zeros(3)).round(4)
    array([[-1.2247,  0.    ,  1.2247]])
    """
    X = as_float_array(X, "X", min_ndim=1)
    d = X.shape[-1]
    gamma = as_float_array(gamma, "gamma")
    beta = as_float_array(beta, "beta")
    for name, arr in (("gamma", gamma), ("beta", beta)):
        if arr.shape != (d,):
            raise ValueError(f"{name} should have shape ({d},) to match X's last axis, got {arr.shape}")
    eps = positive_number(eps, "eps")
    check_finite(X, "X")
    Z = X.astype(np.float32) if X.dtype == np.float16 else X  # as softmax: float16 overflows past 65504
    out_dtype = np.result_type(X, gamma, beta)
    mu = Z.mean(axis=-1, keepdims=True)  # (..., 1)
    with np.errstate(over="ignore"):  # tested just below
        var = Z.var(axis=-1, keepdims=True)  # (..., 1), biased: divides by d
    if not np.isfinite(var).all():  # the squares overflowed: normalise rows scaled into [-1, 1] instead
        c = np.abs(Z).max(axis=-1, keepdims=True)  # (..., 1): the largest size in each row, > 0 here
        Z = Z / c  # (..., d), entries in [-1, 1]: their mean and variance cannot overflow
        mu = Z.mean(axis=-1, keepdims=True)  # (..., 1): μ / c
        std = np.sqrt(Z.var(axis=-1, keepdims=True)) * c  # (..., 1): σ, at most c
        return (gamma * (Z - mu) / (np.hypot(std, math.sqrt(eps)) / c) + beta).astype(out_dtype, copy=False)
    return (gamma * (Z - mu) / np.sqrt(var + eps) + beta).astype(out_dtype, copy=False)  # (..., d)


def gelu(x) -> np.ndarray:
    r"""The Gaussian error linear unit, in its exact form (as BERT uses it).

    .. math:: \operatorname{GELU}(x) = x\,\Phi(x) = \tfrac{x}{2}\left(1 + \operatorname{erf}(x/\sqrt{2})\right)

    A smooth ReLU: large positive inputs pass, large negative inputs become 0.
    numpy has no ``erf``, so this applies Python's exact ``math.erf`` element by element
    (one Python call per entry: fine for a sentence, slow for a large batch).

    Examples
    --------
    >>> gelu([-3.0, 0.0, 1.0, 3.0]).round(4)
    array([-0.004 ,  0.    ,  0.8413,  2.996 ])
    """
    x = as_float_array(x, "x")
    check_finite(x, "x")
    erf = _erf(x / math.sqrt(2.0)).astype(x.dtype)  # same shape as x
    return 0.5 * x * (1.0 + erf)


def feed_forward(X, W_1, b_1, W_2, b_2) -> np.ndarray:
    r"""The position-wise feed-forward network: the same two-layer MLP applied to every token.

    .. math:: \operatorname{FFN}(x) = \operatorname{GELU}(x W_1 + b_1)\, W_2 + b_2

    Parameters
    ----------
    X : array_like, shape (..., n, d_model)
    W_1 : (d_model, d_ff), b_1 : (d_ff,), W_2 : (d_ff, d_model), b_2 : (d_model,)
        Used as ``X @ W`` (a PyTorch ``Linear`` weight is ``(out, in)``: transpose it first).

    Returns
    -------
    ndarray, shape (..., n, d_model)

    Examples
    --------
    >>> X = np.ones((2, 3))
    >>> feed_forward(X, np.eye(3, 4), np.zeros(4), np.eye(4, 3), np.zeros(3)).round(4)
    array([[0.8413, 0.8413, 0.8413],
           [0.8413, 0.8413, 0.8413]])
    """
    X = as_float_array(X, "X", min_ndim=1)
    W_1, b_1, W_2, b_2 = (as_float_array(a, name) for a, name in
                          ((W_1, "W_1"), (b_1, "b_1"), (W_2, "W_2"), (b_2, "b_2")))
    d_model = X.shape[-1]
    if W_1.ndim != 2 or W_1.shape[0] != d_model:
        raise ValueError(f"W_1 should have shape ({d_model}, d_ff) for d_model={d_model}, got {W_1.shape}")
    d_ff = W_1.shape[1]
    for name, arr, expected in (("b_1", b_1, (d_ff,)), ("W_2", W_2, (d_ff, d_model)), ("b_2", b_2, (d_model,))):
        if arr.shape != expected:
            raise ValueError(f"{name} should have shape {expected} (d_model={d_model}, d_ff={d_ff}), "
                             f"got {arr.shape}")
    H = gelu(X @ W_1 + b_1)  # (..., n, d_model) @ (d_model, d_ff) -> (..., n, d_ff)
    return H @ W_2 + b_2  # (..., n, d_ff) @ (d_ff, d_model) -> (..., n, d_model)


def token_embeddings(token_ids, word_embeddings, position_embeddings, type_embeddings=None,
                     type_ids=None) -> np.ndarray:
    r"""BERT's input: a learned vector per token, plus one per position (and per segment).

    .. math:: x_i = E_{\text{word}}[t_i] + E_{\text{pos}}[i] + E_{\text{type}}[s_i]

    Unlike the fixed sinusoids of chapter 4, BERT *learns* its position vectors.  The sum
    still goes through a layer norm before the first layer.

    Parameters
    ----------
    token_ids : array_like of int, shape (..., n)
        One sequence, or a batch of sequences of the same (padded) length.
    word_embeddings : (vocab_size, d_model)
    position_embeddings : (max_positions, d_model)
    type_embeddings : (n_types, d_model), optional
    type_ids : array_like of int, shape (..., n), optional
        The segment of each token; defaults to 0 for all (a single sentence).

    Returns
    -------
    ndarray, shape (..., n, d_model)

    Examples
    --------
    >>> E = np.eye(4)
    >>> token_embeddings([2, 0], E, 10 * E)
    array([[10.,  0.,  1.,  0.],
           [ 1., 10.,  0.,  0.]])
    """
    ids = np.asarray(token_ids)
    if not np.issubdtype(ids.dtype, np.integer):
        raise TypeError(f"token_ids must be an array of integers (..., n), got dtype {ids.dtype}")
    if ids.ndim < 1 or ids.shape[-1] == 0:
        raise ValueError(f"token_ids must have shape (..., n) with n >= 1 tokens, got shape {ids.shape}")
    word = as_float_array(word_embeddings, "word_embeddings", min_ndim=2)
    pos = as_float_array(position_embeddings, "position_embeddings", min_ndim=2)
    n = ids.shape[-1]
    if n > pos.shape[0]:
        raise ValueError(f"the model knows {pos.shape[0]} positions but got {n} tokens")
    if ids.size and (ids.min() < 0 or ids.max() >= word.shape[0]):
        raise ValueError(f"token ids must be in [0, {word.shape[0]}), got {ids.min()}..{ids.max()}")
    X = word[ids].astype(np.float64) + pos[:n]  # (..., n, d_model) + (n, d_model)
    if type_embeddings is not None:
        type_table = as_float_array(type_embeddings, "type_embeddings", min_ndim=2)
        types = np.zeros(ids.shape, dtype=int) if type_ids is None else np.asarray(type_ids)
        if not np.issubdtype(types.dtype, np.integer):
            raise TypeError(f"type_ids must be integers, got dtype {types.dtype}")
        if types.shape != ids.shape or types.min() < 0 or types.max() >= type_table.shape[0]:
            raise ValueError(f"type_ids must have the shape of token_ids {ids.shape} and values in "
                             f"[0, {type_table.shape[0]}), got shape {types.shape}")
        X = X + type_table[types]  # (..., n, d_model)
    return X


def encoder_layer(X, params: dict, n_heads: int, mask=None, *, eps: float = 1e-12):
    r"""One BERT encoder layer: self-attention, then a feed-forward network, each with a residual and a norm.

    .. math:: H = \operatorname{LN}_1\!\big(X + \operatorname{MHA}(X, X)\big), \qquad
              Y = \operatorname{LN}_2\!\big(H + \operatorname{FFN}(H)\big)

    Parameters
    ----------
    X : array_like, shape (..., n, d_model)
    params : dict
        The attention parameters of :func:`attnlib.multi_head_attention` (``W_q``...``W_o``,
        ``b_q``...``b_o``), ``ln_1_gamma, ln_1_beta``, ``W_1, b_1, W_2, b_2`` and ``ln_2_gamma, ln_2_beta``.
    n_heads : int
    mask : array_like of bool, optional
        ``(..., n, n)``, True = may attend.

    Returns
    -------
    Y : ndarray, shape (..., n, d_model)
    weights : ndarray, shape (..., n_heads, n, n)
        The attention weights of every head.

    Examples
    --------
    >>> from attnlib import init_multi_head
    >>> rng = np.random.default_rng(0)
    >>> p = init_multi_head(8, 2, rng)
    >>> p.update(ln_1_gamma=np.ones(8), ln_1_beta=np.zeros(8), ln_2_gamma=np.ones(8), ln_2_beta=np.zeros(8),
    ...          W_1=rng.normal(size=(8, 16)), b_1=np.zeros(16), W_2=rng.normal(size=(16, 8)), b_2=np.zeros(8))
    >>> Y, w = encoder_layer(rng.normal(size=(5, 8)), p, n_heads=2)
    >>> Y.shape, w.shape
    ((5, 8), (2, 5, 5))
    """
    X = as_float_array(X, "X", min_ndim=2)
    if not isinstance(params, dict):
        raise TypeError(f"params must be a dict (see the docstring), got {type(params).__name__}")
    missing = [k for k in LAYER_KEYS if k not in params]
    if missing:
        raise ValueError(f"params is missing {missing}; an encoder layer needs {list(LAYER_KEYS)} "
                         "besides the attention's W_q ... W_o")
    A, weights = multi_head_attention(X, X, params, n_heads, mask)  # (..., n, d_model), (..., h, n, n)
    H = layer_norm(X + A, params["ln_1_gamma"], params["ln_1_beta"], eps=eps)  # (..., n, d_model)
    F = feed_forward(H, params["W_1"], params["b_1"], params["W_2"], params["b_2"])  # (..., n, d_model)
    Y = layer_norm(H + F, params["ln_2_gamma"], params["ln_2_beta"], eps=eps)  # (..., n, d_model)
    return Y, weights
