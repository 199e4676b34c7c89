"""Scaled dot-product attention: the formula at the heart of the book."""

from __future__ import annotations

from functools import partial

import numpy as np

from attnlib._checks import as_float_array, broadcast_batch, broadcast_mask, check_finite, check_nonempty
from attnlib._parallel import run_tasks
from attnlib.scores import resolve_scale
from attnlib.softmax import PARALLEL_ENTRIES, softmax_rows_

# Attention is computed in blocks of about this many scores (4 MB of float32):
# small enough to stay in the cache between the three steps of a block.
_BLOCK_ENTRIES = 1 << 20


def check_qkv(Q, K, V) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validate ``Q (..., n_q, d_k)``, ``K (..., n_k, d_k)``, ``V (..., n_k, d_v)``.

    Returns the three as float arrays; raises ``ValueError``/``TypeError`` that
    say what was expected and what arrived.
    """
    Q = as_float_array(Q, "Q", min_ndim=2)
    K = as_float_array(K, "K", min_ndim=2)
    V = as_float_array(V, "V", min_ndim=2)
    check_nonempty(Q, "Q", ("n_q", "d_k"))
    check_nonempty(K, "K", ("n_k", "d_k"))
    check_nonempty(V, "V", ("n_k", "d_v"))
    if Q.shape[-1] != K.shape[-1]:
        raise ValueError(
            f"Q has d_k={Q.shape[-1]} but K has d_k={K.shape[-1]}; "
            "queries and keys must have the same size"
        )
    if K.shape[-2] != V.shape[-2]:
        raise ValueError(
            f"K has n_k={K.shape[-2]} keys but V has {V.shape[-2]} values; "
            "every key needs exactly one value"
        )
    broadcast_batch({"Q": Q.shape[:-2], "K": K.shape[:-2], "V": V.shape[:-2]})
    for name, arr in (("Q", Q), ("K", K), ("V", V)):
        check_finite(arr, name)
    return Q, K, V


def scaled_dot_product_attention(Q, K, V, mask=None, *, scale=None):
    r"""Attention: each query takes a softmax-weighted average of the values.

    .. math:: \operatorname{Attention}(Q, K, V) =
              \operatorname{softmax}\!\left(\frac{Q K^\top}{\sqrt{d_k}}\right) V

    Chapter 3 ("How attention works") builds it step by step.

    Parameters
    ----------
    Q : array_like, shape (..., n_q, d_k)
        Queries: what each position is looking for.
    K : array_like, shape (..., n_k, d_k)
        Keys: what each position offers to be matched against.
    V : array_like, shape (..., n_k, d_v)
        Values: the content that is averaged.
    mask : array_like of bool, optional
        Broadcastable to ``(..., n_q, n_k)``. ``mask[..., i, j]`` True means query i
        may attend to key j (PyTorch's boolean ``attn_mask`` convention).  A query
        with no allowed key gets zero weights and a zero output.
    scale : float, optional
        Multiplies the scores; defaults to ``1/sqrt(d_k)``.

    Returns
    -------
    output : ndarray, shape (..., n_q, d_v)
    weights : ndarray, shape (..., n_q, n_k)
        Each row sums to 1 (or 0 for a fully masked row).

    Notes
    -----
    The work is done one block of query rows at a time (about a million scores),
    so that a block's scores are still in the processor's cache for the softmax
    and the product with V.  With a million scores or more the blocks are shared
    between threads, as many as the BLAS may use (``OPENBLAS_NUM_THREADS=1`` or
    ``threadpoolctl.threadpool_limits(1)`` makes it one).  The blocks depend only
    on the shapes, so the result is the same whatever the number of threads.

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
    Q, K, V = check_qkv(Q, K, V)
    s = resolve_scale(scale, Q.shape[-1])
    (n_q, n_k), d_v = (Q.shape[-2], K.shape[-2]), V.shape[-1]
    batch = np.broadcast_shapes(Q.shape[:-2], K.shape[:-2], V.shape[:-2])
    if mask is not None:
        mask = broadcast_mask(mask, (*batch, n_q, n_k))  # may add batch dimensions
        batch = mask.shape[:-2]
    # The scale is applied to Q (n_q * d_k numbers) rather than to the scores (n_q * n_k).
    # Batch entries are counted flat; only what was broadcast gets copied.  (Q * s comes
    # before the results on purpose: allocated the other way round, glibc handed the freed
    # memory back to the system after every call, and small calls took twice as long.)
    Q, K, V = (_flat(x, batch) for x in (Q * s, K, V))  # (entries, n, d)
    dtype = np.result_type(Q, K, V)
    weights = np.empty((*batch, n_q, n_k), dtype)
    output = np.empty((*batch, n_q, d_v), dtype)
    flat_weights, flat_output = weights.reshape(-1, n_q, n_k), output.reshape(-1, n_q, d_v)  # views

    def attend(entries: slice, rows: slice) -> None:
        """Batch entries ``entries``, queries ``rows``: scores, softmax, weighted sum of values."""
        scores = flat_weights[entries, rows]  # (entries, rows, n_k), a view: the weights are computed in place
        np.matmul(Q[entries, rows], K[entries].swapaxes(-1, -2), out=scores)  # (.., rows, d_k) @ (.., d_k, n_k)
        if mask is not None:  # masked keys score -inf: weight exactly 0
            np.copyto(scores, -np.inf, where=~_take(mask, entries, batch)[:, rows])
        softmax_rows_(scores.reshape(-1, n_k))  # a view: a block is contiguous
        np.matmul(scores, V[entries], out=flat_output[entries, rows])  # (.., rows, n_k) @ (.., n_k, d_v)

    parallel = weights.size >= PARALLEL_ENTRIES
    run_tasks([partial(attend, *block) for block in _blocks(len(flat_weights), n_q, n_k, parallel)], parallel=parallel)
    return output, weights


def _flat(x: np.ndarray, batch: tuple[int, ...]) -> np.ndarray:
    """``x (..., n, d)`` broadcast to ``(*batch, n, d)`` and seen as ``(entries, n, d)``."""
    if x.shape[:-2] != batch:
        x = np.broadcast_to(x, (*batch, *x.shape[-2:]))
    return x.reshape(-1, *x.shape[-2:])  # a view, or a copy of what was broadcast


def _take(x: np.ndarray, entries: slice, batch: tuple[int, ...]) -> np.ndarray:
    """``x (*batch, n, m)`` at the flat batch ``entries``, as ``(entries, n, m)``: a view for one entry.

    For a mask, which may be broadcast over the batch: flattening all of it could copy
    as many booleans as there are scores; this copies at most a block's worth."""
    if entries.stop - entries.start == 1:
        at = tuple(slice(i, i + 1) for i in np.unravel_index(entries.start, batch))
    else:
        at = np.unravel_index(np.arange(entries.start, entries.stop), batch)  # a copy, of whole small entries
    return x[at].reshape(-1, *x.shape[-2:])


def _blocks(n_batch: int, n_q: int, n_k: int, parallel: bool) -> list[tuple[slice, slice]]:
    """Blocks of (batch entries, query rows) of about _BLOCK_ENTRIES scores each.

    Several whole batch entries when one entry is small, else one entry's rows in
    pieces; when the work is to be shared, at least 8 blocks.  The blocks depend only
    on the shapes, so the result is the same, to the last bit, whatever the number of
    threads.
    """
    rows = min(n_q, max(1, _BLOCK_ENTRIES // n_k))
    entries = max(1, _BLOCK_ENTRIES // (n_q * n_k)) if rows == n_q else 1
    if parallel:
        entries = min(entries, -(-n_batch // 8))
        if n_batch < 8:
            rows = min(rows, -(-n_q // -(-8 // n_batch)))
    return [(slice(b, min(b + entries, n_batch)), slice(i, i + rows))
            for b in range(0, n_batch, entries) for i in range(0, n_q, rows)]
