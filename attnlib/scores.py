"""Score functions: how well does each query match each key?

All three return a score matrix of shape ``(..., n_q, n_k)``; the softmax of a
row turns it into attention weights.  Chapter 3 compares them.
"""

from __future__ import annotations

import math

import numpy as np

from attnlib._validate import (
    as_float_array,
    broadcast_batch,
    check_finite,
    check_no_overflow,
    check_nonempty,
    check_rng,
    positive_int,
    resolve_scale,
)


def _queries_and_keys(Q, K, *, same_dim: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Validate a pair ``Q (..., n_q, d_k)``, ``K (..., n_k, d_k)``."""
    Q = as_float_array(Q, "Q", min_ndim=2)
    K = as_float_array(K, "K", min_ndim=2)
    check_nonempty(Q, "Q", ("n_q", "d_k"))
    check_nonempty(K, "K", ("n_k", "d_k"))
    check_finite(Q, "Q")
    check_finite(K, "K")
    if same_dim and Q.shape[-1] != K.shape[-1]:
        raise ValueError(
            f"Q has d_k={Q.shape[-1]} but K has d_k={K.shape[-1]}; "
            "queries and keys must have the same size to be compared"
        )
    broadcast_batch({"Q": Q.shape[:-2], "K": K.shape[:-2]})
    return Q, K


def dot_product_scores(Q, K) -> np.ndarray:
    r"""Raw dot-product scores :math:`S = Q K^\top`.

    Parameters
    ----------
    Q : array_like, shape (..., n_q, d_k)
    K : array_like, shape (..., n_k, d_k)

    Returns
    -------
    ndarray, shape (..., n_q, n_k)
        ``S[..., i, j] = Q[..., i, :] · K[..., j, :]``.

    Examples
    --------
    >>> dot_product_scores([[1.0, 0.0]], [[1.0, 0.0], [0.0, 1.0], [2.0, 2.0]])
    array([[1., 0., 2.]])
    """
    Q, K = _queries_and_keys(Q, K)
    S = Q @ K.swapaxes(-1, -2)  # (..., n_q, d_k) @ (..., d_k, n_k) -> (..., n_q, n_k)
    check_no_overflow(S)  # an infinite score would later pass for a masked key
    return S


def scaled_dot_product_scores(Q, K, *, scale=None) -> np.ndarray:
    r"""Scaled dot-product scores :math:`S = Q K^\top / \sqrt{d_k}`.

    Dividing by :math:`\sqrt{d_k}` keeps the variance of a score near 1 when the
    entries of ``Q`` and ``K`` have unit variance, so the softmax does not saturate
    as ``d_k`` grows (chapter 3 measures this).

    Parameters
    ----------
    Q : array_like, shape (..., n_q, d_k)
    K : array_like, shape (..., n_k, d_k)
    scale : float, optional
        Multiplies the dot products; defaults to ``1/sqrt(d_k)``.

    Returns
    -------
    ndarray, shape (..., n_q, n_k)

    Examples
    --------
    >>> scaled_dot_product_scores([[1.0, 1.0, 1.0, 1.0]], [[1.0, 1.0, 1.0, 1.0]])
    array([[2.]])
    """
    Q, K = _queries_and_keys(Q, K)
    scale = resolve_scale(scale, Q.shape[-1])
    S = (Q * scale) @ K.swapaxes(-1, -2)  # (..., n_q, d_k) @ (..., d_k, n_k) -> (..., n_q, n_k)
    check_no_overflow(S)  # an infinite score would later pass for a masked key
    return S


def init_additive(d_q: int, d_k: int, d_hidden: int, rng: np.random.Generator) -> dict:
    """Random parameters for :func:`additive_scores` (Glorot-style scale).

    Returns a dict with ``W_q (d_q, d_hidden)``, ``W_k (d_k, d_hidden)`` and
    ``w_v (d_hidden,)``.

    Examples
    --------
    >>> p = init_additive(3, 5, 4, np.random.default_rng(0))
    >>> [p[name].shape for name in ("W_q", "W_k", "w_v")]
    [(3, 4), (5, 4), (4,)]
    """
    check_rng(rng)
    d_q, d_k, d_hidden = (positive_int(v, n) for v, n in ((d_q, "d_q"), (d_k, "d_k"), (d_hidden, "d_hidden")))
    return {
        "W_q": rng.normal(0.0, math.sqrt(2.0 / (d_q + d_hidden)), size=(d_q, d_hidden)),
        "W_k": rng.normal(0.0, math.sqrt(2.0 / (d_k + d_hidden)), size=(d_k, d_hidden)),
        "w_v": rng.normal(0.0, math.sqrt(1.0 / d_hidden), size=(d_hidden,)),
    }


def additive_scores(Q, K, params: dict) -> np.ndarray:
    r"""Additive (Bahdanau) scores :math:`s_{ij} = w_v^\top \tanh(W_q^\top q_i + W_k^\top k_j)`.

    Queries and keys may have different sizes: each is projected to ``d_hidden``
    first.  This is the score of Bahdanau et al. (2014).

    Parameters
    ----------
    Q : array_like, shape (..., n_q, d_q)
    K : array_like, shape (..., n_k, d_k)
    params : dict
        ``W_q (d_q, d_hidden)``, ``W_k (d_k, d_hidden)``, ``w_v (d_hidden,)``,
        as made by :func:`init_additive`.

    Returns
    -------
    ndarray, shape (..., n_q, n_k)

    Examples
    --------
    >>> p = {"W_q": np.eye(2), "W_k": np.eye(2), "w_v": np.ones(2)}
    >>> additive_scores([[0.0, 0.0]], [[0.0, 0.0], [10.0, 10.0]], p).round(3)
    array([[0., 2.]])
    """
    Q, K = _queries_and_keys(Q, K, same_dim=False)
    if not isinstance(params, dict):
        raise TypeError(f"params must be a dict with W_q, W_k and w_v, got {type(params).__name__}")
    unknown = sorted(set(params) - {"W_q", "W_k", "w_v"})
    if unknown:
        raise ValueError(f"params has unknown keys {unknown}; additive_scores uses W_q, W_k and w_v")
    missing = {"W_q", "W_k", "w_v"} - set(params)
    if missing:
        raise ValueError(f"params must have W_q, W_k and w_v; missing {sorted(missing)}")
    W_q, W_k, w_v = (as_float_array(params[n], n) for n in ("W_q", "W_k", "w_v"))
    d_hidden = w_v.shape[0] if w_v.ndim == 1 else -1
    if w_v.ndim != 1 or W_q.shape != (Q.shape[-1], d_hidden) or W_k.shape != (K.shape[-1], d_hidden):
        raise ValueError(
            f"expected W_q ({Q.shape[-1]}, d_hidden), W_k ({K.shape[-1]}, d_hidden), "
            f"w_v (d_hidden,); got W_q {W_q.shape}, W_k {W_k.shape}, w_v {w_v.shape}"
        )
    q = (Q @ W_q)[..., :, None, :]  # (..., n_q, 1, d_hidden)
    k = (K @ W_k)[..., None, :, :]  # (..., 1, n_k, d_hidden)
    for name, arr in (("W_q", W_q), ("W_k", W_k), ("w_v", w_v)):
        check_finite(arr, name)
    S = np.tanh(q + k) @ w_v  # (..., n_q, n_k, d_hidden) @ (d_hidden,) -> (..., n_q, n_k)
    check_no_overflow(S)
    return S
