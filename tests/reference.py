"""Plain-loop references: the formulas written out with Python loops, trusted by inspection."""

import math

import numpy as np


def softmax_loop(row):
    finite = [x for x in row if x != -math.inf]
    if not finite:
        return [0.0] * len(row)
    m = max(finite)
    e = [math.exp(x - m) if x != -math.inf else 0.0 for x in row]
    total = sum(e)
    return [v / total for v in e]


def attention_loop(Q, K, V, mask=None, scale=None):
    """Attention for 2-D Q (n_q, d_k), K (n_k, d_k), V (n_k, d_v), one query at a time."""
    n_q, d_k = Q.shape
    n_k, d_v = V.shape
    scale = 1.0 / math.sqrt(d_k) if scale is None else scale
    out = np.zeros((n_q, d_v))
    weights = np.zeros((n_q, n_k))
    for i in range(n_q):
        scores = []
        for j in range(n_k):
            if mask is not None and not mask[i, j]:
                scores.append(-math.inf)
            else:
                scores.append(sum(Q[i, t] * K[j, t] for t in range(d_k)) * scale)
        w = softmax_loop(scores)
        for j in range(n_k):
            weights[i, j] = w[j]
            for t in range(d_v):
                out[i, t] += w[j] * V[j, t]
    return out, weights


def multi_head_loop(X_q, X_kv, params, n_heads, mask=None):
    """Multi-head attention for 2-D inputs, one head at a time with explicit column slices."""
    d_model = X_q.shape[1]
    d_head = d_model // n_heads
    Q, K, V = X_q @ params["W_q"], X_kv @ params["W_k"], X_kv @ params["W_v"]
    if "b_q" in params:
        Q, K, V = Q + params["b_q"], K + params["b_k"], V + params["b_v"]
    heads, weights = [], []
    for h in range(n_heads):
        cols = slice(h * d_head, (h + 1) * d_head)
        o, w = attention_loop(Q[:, cols], K[:, cols], V[:, cols], mask)
        heads.append(o)
        weights.append(w)
    out = np.concatenate(heads, axis=1) @ params["W_o"]
    if "b_o" in params:
        out = out + params["b_o"]
    return out, np.stack(weights)


def central_differences(f, params, key, h=1e-6):
    """The gradient of ``f(params)`` with respect to ``params[key]``, entry by entry (float64)."""
    grad = np.zeros_like(params[key])
    for idx in np.ndindex(grad.shape):
        plus = {k: v.copy() for k, v in params.items()}
        minus = {k: v.copy() for k, v in params.items()}
        plus[key][idx] += h
        minus[key][idx] -= h
        grad[idx] = (f(plus) - f(minus)) / (2 * h)
    return grad
