"""Backward passes: the gradients of softmax, attention and multi-head attention.

Each function returns the gradient of ``sum(output * d_output)`` with respect to
the inputs of the matching forward function, where ``d_output`` is the gradient
arriving from above (for a loss L, ``d_output = dL/d output``).  They are the
chain rule written out step by step, in the order opposite to the forward pass:
weighted sum of values, softmax, scores.  Chapter 3's page "Learning to attend"
derives them.

Every function recomputes what it needs from the forward pass (the weights),
so it takes the same arguments as the forward function plus ``d_output``, and
raises the same errors for bad input.
"""

from __future__ import annotations

import numpy as np

from attnlib._checks import as_float_array, check_finite
from attnlib.attention import scaled_dot_product_attention
from attnlib.multihead import merge_heads, multi_head_attention, split_heads
from attnlib.scores import resolve_scale

_PARAM_NAMES = ("W_q", "W_k", "W_v", "W_o", "b_q", "b_k", "b_v", "b_o")


def _gradient_like(d_output, expected_shape: tuple[int, ...], name: str, of_what: str) -> np.ndarray:
    """Return ``d_output`` as a float array of exactly ``expected_shape``, or raise."""
    d_output = as_float_array(d_output, name)
    if d_output.shape != tuple(expected_shape):
        raise ValueError(
            f"{name} must have the shape of {of_what}, {tuple(expected_shape)}, but has shape {d_output.shape}"
        )
    check_finite(d_output, name)
    return d_output


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


def softmax_backward(weights, d_weights, axis: int = -1) -> np.ndarray:
    r"""Gradient through the softmax: from ``d_weights`` to ``d_scores``.

    With :math:`A = \operatorname{softmax}(S)` along ``axis`` and the incoming
    gradient :math:`dA`, the Jacobian of the softmax gives

    .. math:: dS = A \odot \left(dA - \textstyle\sum_j dA_j A_j\right)

    where the sum runs along ``axis`` (one number per row, kept for broadcasting).
    An entry with weight 0 (a masked key, score ``-inf``) gets gradient 0, and so
    does every entry of a fully masked row (all weights 0).

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
        :math:`dS`, the gradient with respect to the softmax's input.

    Examples
    --------
    >>> softmax_backward([0.5, 0.5], [1.0, 0.0])  # rowsum(dA * A) = 0.5
    array([ 0.25, -0.25])
    >>> softmax_backward([[0.0, 0.0]], [[3.0, 1.0]])  # a fully masked row
    array([[0., 0.]])
    """
    A = as_float_array(weights, "weights", min_ndim=1)
    dA = _gradient_like(d_weights, A.shape, "d_weights", "the weights")
    if not -A.ndim <= axis < A.ndim:
        raise ValueError(f"axis {axis} is out of range for weights of shape {A.shape}")
    check_finite(A, "weights")
    rowsum = np.sum(dA * A, axis=axis, keepdims=True)  # (..., 1): sum_j dA_j A_j
    return A * (dA - rowsum)  # (..., n)


def attention_backward(Q, K, V, d_output, mask=None, *, scale=None):
    r"""Gradients of scaled dot-product attention with respect to ``Q``, ``K`` and ``V``.

    The forward pass (:func:`attnlib.scaled_dot_product_attention`) is
    :math:`S = \gamma\,Q K^\top`, :math:`A = \operatorname{softmax}(S)` (masked
    scores ``-inf``), :math:`O = A V`.  Going back with :math:`dO`:

    .. math::
        dV = A^\top dO, \quad dA = dO\, V^\top, \quad
        dS = A \odot (dA - \operatorname{rowsum}(dA \odot A)), \quad
        dQ = \gamma\, dS\, K, \quad dK = \gamma\, dS^\top Q

    A masked pair has :math:`A = 0`, so its :math:`dS` is 0 and nothing flows
    through it; a fully masked row (zero output) gives zero gradients.

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
        The scale :math:`s` of the scores; defaults to ``1/sqrt(d_k)``.

    Returns
    -------
    dQ : ndarray, shape of ``Q``
    dK : ndarray, shape of ``K``
    dV : ndarray, shape of ``V``
        The gradients of ``sum(output * d_output)``.  An input that was broadcast
        over batch dimensions gets the sum of the gradients of all its uses.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> Q = rng.normal(size=(2, 3, 4))  # a batch of 2, 3 queries each
    >>> K, V = rng.normal(size=(5, 4)), rng.normal(size=(5, 2))  # 5 keys shared by the batch
    >>> dQ, dK, dV = attention_backward(Q, K, V, np.ones((2, 3, 2)))
    >>> dQ.shape, dK.shape, dV.shape
    ((2, 3, 4), (5, 4), (5, 2))
    >>> dV.sum(axis=0)  # each of the 2 x 3 queries spreads its gradient 1 over the values
    array([6., 6.])
    """
    # The forward call checks the arguments (with the same errors) and gives the weights A
    output, A = scaled_dot_product_attention(Q, K, V, mask, scale=scale)  # A: (..., n_q, n_k), zeros where masked
    Q, K, V = (as_float_array(x, name) for x, name in ((Q, "Q"), (K, "K"), (V, "V")))
    s = resolve_scale(scale, Q.shape[-1])
    dO = _gradient_like(d_output, output.shape, "d_output", "the attention output (..., n_q, d_v)")
    A = np.broadcast_to(A, (*dO.shape[:-2], *A.shape[-2:]))  # (..., n_q, n_k): one per batch entry of the output

    # O = A V
    dV = A.swapaxes(-1, -2) @ dO  # (..., n_k, n_q) @ (..., n_q, d_v) -> (..., n_k, d_v)
    dA = dO @ V.swapaxes(-1, -2)  # (..., n_q, d_v) @ (..., d_v, n_k) -> (..., n_q, n_k)
    # A = softmax(S)
    dS = softmax_backward(A, dA)  # (..., n_q, n_k); 0 where A = 0 (masked)
    # S = s Q K^T
    dQ = s * (dS @ K)  # (..., n_q, n_k) @ (..., n_k, d_k) -> (..., n_q, d_k)
    dK = s * (dS.swapaxes(-1, -2) @ Q)  # (..., n_k, n_q) @ (..., n_q, d_k) -> (..., n_k, d_k)
    return _sum_to_shape(dQ, Q.shape), _sum_to_shape(dK, K.shape), _sum_to_shape(dV, V.shape)


def multi_head_attention_backward(X_q, X_kv, params: dict, n_heads: int, d_output, mask=None):
    r"""Gradients of :func:`attnlib.multi_head_attention` for its inputs and parameters.

    The forward pass projects, splits into heads, attends, merges and projects back:
    :math:`Q = X_q W_q + b_q`, :math:`K = X_{kv} W_k + b_k`, :math:`V = X_{kv} W_v + b_v`,
    :math:`H = \operatorname{concat}_h \operatorname{Attention}(Q_h, K_h, V_h)`,
    :math:`O = H W_o + b_o`.  Each linear map :math:`Y = X W + b` goes back as

    .. math:: dX = dY\, W^\top, \quad dW = \textstyle\sum X^\top dY, \quad db = \textstyle\sum dY

    (sums over the batch and the positions), and the heads go back through
    :func:`attention_backward`.  For self-attention (the same ``X`` as ``X_q`` and
    ``X_kv``) the gradient with respect to ``X`` is ``dX_q + dX_kv``.

    Parameters
    ----------
    X_q : array_like, shape (..., n_q, d_model)
    X_kv : array_like, shape (..., n_k, d_model)
    params : dict
        ``W_q, W_k, W_v, W_o`` of shape ``(d_model, d_model)`` and optional biases
        ``b_q, b_k, b_v, b_o`` of shape ``(d_model,)``, as in the forward call.
    n_heads : int
        Must divide ``d_model``.
    d_output : array_like, shape (..., n_q, d_model)
        The gradient arriving at the output, of the forward output's shape.
    mask : array_like of bool, optional
        Broadcastable to ``(..., n_q, n_k)``; the same for every head.  True = may attend.

    Returns
    -------
    dX_q : ndarray, shape of ``X_q``
    dX_kv : ndarray, shape of ``X_kv``
    d_params : dict
        The same keys as ``params``; each gradient has its parameter's shape
        (a bias given as ``None`` gets ``None``).

    Examples
    --------
    >>> import attnlib
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(5, 8))
    >>> params = attnlib.init_multi_head(8, 2, rng, bias=True)
    >>> dX_q, dX_kv, d_params = multi_head_attention_backward(X, X, params, 2, np.ones((5, 8)))
    >>> dX_q.shape, dX_kv.shape, sorted(d_params) == sorted(params)
    ((5, 8), (5, 8), True)
    >>> d_params["b_o"]  # b_o is added to each of the 5 outputs
    array([5., 5., 5., 5., 5., 5., 5., 5.])
    """
    # The forward call checks the arguments (with the same errors) and gives the output's shape
    output, _ = multi_head_attention(X_q, X_kv, params, n_heads, mask)  # (..., n_q, d_model)
    unknown = sorted(set(params) - set(_PARAM_NAMES), key=str)
    if unknown:
        raise ValueError(f"params has unknown keys {unknown}; multi-head attention uses W_q, W_k, W_v, W_o and the "
                         "optional biases b_q, b_k, b_v, b_o")
    dO = _gradient_like(d_output, output.shape, "d_output", "the output (..., n_q, d_model)")
    X_q, X_kv = as_float_array(X_q, "X_q"), as_float_array(X_kv, "X_kv")
    p = {name: as_float_array(w, name) for name, w in params.items() if w is not None}
    d_model = X_q.shape[-1]

    # Forward again, keeping what the backward pass needs
    def project(X, w, b):
        Y = X @ p[w]  # (..., n, d_model) @ (d_model, d_model) -> (..., n, d_model)
        return Y + p[b] if b in p else Y

    Q = split_heads(project(X_q, "W_q", "b_q"), n_heads)  # (..., n_heads, n_q, d_head)
    K = split_heads(project(X_kv, "W_k", "b_k"), n_heads)  # (..., n_heads, n_k, d_head)
    V = split_heads(project(X_kv, "W_v", "b_v"), n_heads)  # (..., n_heads, n_k, d_head)
    if mask is not None:  # the same mask for every head
        mask = np.broadcast_to(mask, (*output.shape[:-2], Q.shape[-2], K.shape[-2]))  # (..., n_q, n_k)
        mask = mask[..., None, :, :]  # (..., 1, n_q, n_k)
    heads, _ = scaled_dot_product_attention(Q, K, V, mask)  # (..., n_heads, n_q, d_head)
    H = merge_heads(heads)  # (..., n_q, d_model)

    def linear_backward(X, dY, w, b):
        """Y = X W + b: return dX and store dW, db (summed over batch and positions)."""
        rows_X = X.reshape(-1, d_model)  # (rows, d_model): every position of every batch entry
        rows_dY = dY.reshape(-1, d_model)  # (rows, d_model)
        grads[w] = rows_X.T @ rows_dY  # (d_model, rows) @ (rows, d_model) -> (d_model, d_model)
        if b in p:
            grads[b] = rows_dY.sum(axis=0)  # (d_model,)
        return dY @ p[w].T  # (..., n, d_model) @ (d_model, d_model) -> (..., n, d_model)

    grads = {}
    # O = H W_o + b_o
    dH = linear_backward(H, dO, "W_o", "b_o")  # (..., n_q, d_model)
    # H = merge(Attention(Q, K, V)) per head
    dQ, dK, dV = attention_backward(Q, K, V, split_heads(dH, n_heads), mask)  # shapes of Q, K, V
    # Q = X_q W_q + b_q, K = X_kv W_k + b_k, V = X_kv W_v + b_v
    dX_q = linear_backward(X_q, merge_heads(dQ), "W_q", "b_q")  # (..., n_q, d_model)
    dX_kv = (linear_backward(X_kv, merge_heads(dK), "W_k", "b_k")
             + linear_backward(X_kv, merge_heads(dV), "W_v", "b_v"))  # (..., n_k, d_model)
    d_params = {name: grads.get(name) for name in params}  # a bias given as None gets None
    return dX_q, dX_kv, d_params
