"""The speed path: softmax and attention in cache-sized blocks on every CPU core.

Same names, same contract and the same validation as the plain versions that the
chapters read (:func:`attnlib.softmax.softmax`,
:func:`attnlib.attention.scaled_dot_product_attention`), and tested equal to them
(``tests/test_fast.py``).  What the engineering buys is measured by ``make bench``, which
prints both paths' speed as a fraction of the machine's matrix-product rate side by
side (``benchmarks/README.md``).  The tricks:

- the work is done one block of about a million scores at a time, so that a block's
  scores are still in the processor's cache for the softmax and the product with V;
- the softmax runs in place, in the weights array that is returned (no temporaries);
- blocks are shared between threads (numpy releases the GIL inside its loops and
  products), as many as the BLAS may use: ``OPENBLAS_NUM_THREADS=1`` or
  ``threadpoolctl.threadpool_limits(1)`` makes it one.  The blocks depend only on
  the shapes, so the result is the same whatever the number of threads.

:func:`blockwise_attention` (from :mod:`attnlib.blockwise`) is here too: it never
forms the weights at all.
"""

from __future__ import annotations

from functools import partial

import numpy as np

from attnlib._parallel import run_tasks
from attnlib._validate import (
    as_float_array,
    check_attention,
    check_axis,
    check_no_overflow,
    check_softmax_input,
    may_overflow,
    working_dtype,
)
from attnlib.blockwise import blockwise_attention, blockwise_plan

__all__ = ["blockwise_attention", "blockwise_plan", "scaled_dot_product_attention", "softmax"]

# Rows of a softmax are processed in chunks of about this many entries (256 KB of float32),
# so that the max, exp, sum and division of a chunk happen while it sits in the cache.
_CHUNK_ENTRIES = 1 << 16
# Attention is computed in blocks of about this many scores (4 MB of float32).
_BLOCK_ENTRIES = 1 << 20
# Arrays at least this large are split between the CPU cores (see _parallel.py).
_PARALLEL_ENTRIES = 1 << 20


def softmax(x, axis: int = -1) -> np.ndarray:
    """:func:`attnlib.softmax`, computed in cache-sized chunks of rows, on every core for large ``x``.

    Examples
    --------
    >>> softmax([1.0, 2.0, 3.0]).round(4)
    array([0.09  , 0.2447, 0.6652])
    >>> softmax([-np.inf, -np.inf])
    array([0., 0.])
    """
    x = as_float_array(x, "x", min_ndim=1)
    axis = check_axis(axis, x.ndim, x.shape)
    check_softmax_input(x, axis)
    out = np.moveaxis(x, axis, -1).astype(working_dtype(x), order="C")  # (..., n): our own copy to overwrite
    rows = out.reshape(-1, out.shape[-1])  # (rows, n), a view
    step = max(1, _CHUNK_ENTRIES // rows.shape[1])
    tasks = [partial(_softmax_rows, rows[i : i + step]) for i in range(0, rows.shape[0], step)]
    run_tasks(tasks, parallel=rows.size >= _PARALLEL_ENTRIES)
    return np.moveaxis(out, -1, axis).astype(x.dtype, copy=False)


def _softmax_rows(y: np.ndarray) -> None:
    """In place: ``y (rows, n) <- softmax(y)`` along the last axis; the same steps as the plain softmax."""
    m = np.max(y, axis=-1, keepdims=True)  # (rows, 1)
    m[np.isneginf(m)] = 0.0  # a row of only -inf: exp(-inf - 0) = 0
    np.subtract(y, m, out=y)
    np.exp(y, out=y)
    total = np.sum(y, axis=-1, keepdims=True)  # (rows, 1)
    total[total == 0] = 1.0  # a row of only -inf stays 0
    np.divide(y, total, out=y)


def scaled_dot_product_attention(Q, K, V, mask=None, *, scale=None):
    """:func:`attnlib.scaled_dot_product_attention`, in cache-sized blocks shared between the CPU cores.

    Same arguments, results, errors and dtypes; tested equal to the plain version.

    Examples
    --------
    >>> Q, K, V = np.array([[1.0, 0.0]]), np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([[10.0], [20.0]])
    >>> out, w = scaled_dot_product_attention(Q, K, V)
    >>> w.round(3), out.round(3)
    (array([[0.67, 0.33]]), array([[13.302]]))
    """
    Q, K, V, mask, scale, out_dtype = check_attention(
        Q, K, V, mask, scale, copies=1, what="attnlib.fast.scaled_dot_product_attention")
    batch, (n_q, n_k), d_v = Q.shape[:-2], (Q.shape[-2], K.shape[-2]), V.shape[-1]
    dtype = Q.dtype
    check_overflow = may_overflow(Q, K, scale, dtype)  # almost always False: then no check per block
    # The scale is applied to Q (n_q * d_k numbers) rather than to the scores (n_q * n_k).
    # Batch entries are counted flat; only what was broadcast gets copied.  (Q * scale comes
    # before the results on purpose: allocated the other way round, glibc handed the freed
    # memory back to the system after every call, and small calls took twice as long.)
    Q, K, V = (_flat(x, batch) for x in (Q * scale, K, V))  # (entries, n, d)
    weights = np.empty((*batch, n_q, n_k), dtype)
    output = np.empty((*batch, n_q, d_v), dtype)
    flat_weights, flat_output = weights.reshape(-1, n_q, n_k), output.reshape(-1, n_q, d_v)  # views

    def attend(entries: slice, rows: slice) -> None:
        """Batch entries ``entries``, queries ``rows``: scores, softmax, weighted sum of values."""
        scores = flat_weights[entries, rows]  # (entries, rows, n_k), a view: the weights are computed in place
        np.matmul(Q[entries, rows], K[entries].swapaxes(-1, -2), out=scores)  # (.., rows, d_k) @ (.., d_k, n_k)
        allowed = None if mask is None else _take(mask, entries, batch)[:, rows]  # (entries, rows, n_k)
        if check_overflow:
            check_no_overflow(scores, allowed)
        if allowed is not None:  # masked keys score -inf: weight exactly 0
            np.copyto(scores, -np.inf, where=~allowed)
        _softmax_rows(scores.reshape(-1, n_k))  # a view: a block is contiguous
        np.matmul(scores, V[entries], out=flat_output[entries, rows])  # (.., rows, n_k) @ (.., n_k, d_v)

    parallel = weights.size >= _PARALLEL_ENTRIES
    run_tasks([partial(attend, *block) for block in _blocks(len(flat_weights), n_q, n_k, parallel)],
              parallel=parallel)
    return output.astype(out_dtype, copy=False), weights.astype(out_dtype, copy=False)


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
        entries = min(entries, -(-n_batch // 8))  # ceil(n_batch / 8)
        if n_batch < 8:
            rows = min(rows, -(-n_q // -(-8 // n_batch)))
    return [(slice(b, min(b + entries, n_batch)), slice(i, i + rows))
            for b in range(0, n_batch, entries) for i in range(0, n_q, rows)]
