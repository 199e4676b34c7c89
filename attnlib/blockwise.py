"""Blockwise attention: exact attention without ever holding the n_q × n_k matrix.

The keys are visited one block at a time.  For every query the softmax is kept
*online*: a running maximum ``m`` of the scores seen so far, a running sum ``l``
of their exponentials and a running weighted sum ``acc`` of the values.  When a
new block raises the maximum, what was accumulated is rescaled by
``exp(m_old - m_new)``.  At the end ``acc / l`` is exactly the softmax-weighted
average.  This is the idea behind FlashAttention (Dao et al., 2022), here in
plain numpy.  Chapter 5 ("Why attention is revolutionary", the price) explains it.
"""

from __future__ import annotations

import numpy as np

from attnlib._validate import (
    as_bool,
    as_bool_mask,
    check_attention,
    check_mask,
    check_no_overflow,
    may_overflow,
    positive_int,
)

#: Tile status codes returned by :func:`blockwise_plan`.
SKIPPED, MASKED, FULL = 0, 1, 2


def _tile_mask(mask, causal: bool, rows: slice, cols: slice):
    """The mask of one tile, or None when every query of the tile may see every key.

    Returns ``(tile, status)``: ``tile`` is a boolean array broadcastable to
    ``(..., rows, cols)`` (or None) and ``status`` one of SKIPPED, MASKED, FULL.
    """
    tile = None
    if causal:
        # Query i may see key j when j <= i: the tile is all-visible when its last
        # key is at or before its first query, all-hidden when its first key is
        # after its last query.
        if cols.start > rows.stop - 1:
            return None, SKIPPED
        if cols.stop - 1 > rows.start:
            i = np.arange(rows.start, rows.stop)[:, None]  # (rows, 1)
            j = np.arange(cols.start, cols.stop)[None, :]  # (1, cols)
            tile = j <= i  # (rows, cols)
    if mask is not None:
        part = mask[..., rows, cols]  # (..., rows, cols), a view
        tile = part if tile is None else part & tile
    if tile is None:
        return None, FULL
    if not tile.any():
        return None, SKIPPED
    if tile.all():
        return None, FULL
    return tile, MASKED


def blockwise_plan(n_q: int, n_k: int, block_size: int, mask=None, *, causal: bool = False) -> np.ndarray:
    """Which tiles :func:`blockwise_attention` computes, as a grid of status codes.

    Tile ``(a, b)`` pairs query block ``a`` with key block ``b``.  Its code is
    ``SKIPPED`` (0) when the mask hides all of it (no work at all), ``MASKED`` (1)
    when it is computed and partly masked, and ``FULL`` (2) when it is computed
    with no mask.  A batch of masks counts a tile as skipped only when every
    mask in the batch hides it.

    Parameters
    ----------
    n_q, n_k : int
        Numbers of queries and keys.
    block_size : int
        Queries and keys per block.
    mask : array_like of bool, optional
        Broadcastable to ``(..., n_q, n_k)``; True = this query may attend to this key.
    causal : bool
        Also apply :func:`attnlib.causal_mask` (query i sees keys 0..i).

    Returns
    -------
    ndarray of int8, shape (ceil(n_q / block_size), ceil(n_k / block_size))

    Examples
    --------
    >>> blockwise_plan(6, 6, 2, causal=True)
    array([[1, 0, 0],
           [2, 1, 0],
           [2, 2, 1]], dtype=int8)
    """
    n_q, n_k = positive_int(n_q, "n_q"), positive_int(n_k, "n_k")
    block_size = positive_int(block_size, "block_size")
    causal = as_bool(causal, "causal")
    if mask is not None:
        mask = as_bool_mask(mask)
        mask = check_mask(mask, (*mask.shape[:-2], n_q, n_k))  # a batch of masks is allowed here
    q_starts = range(0, n_q, block_size)
    k_starts = range(0, n_k, block_size)
    plan = np.empty((len(q_starts), len(k_starts)), dtype=np.int8)
    for a, i0 in enumerate(q_starts):
        rows = slice(i0, min(i0 + block_size, n_q))
        for b, j0 in enumerate(k_starts):
            cols = slice(j0, min(j0 + block_size, n_k))
            plan[a, b] = _tile_mask(mask, causal, rows, cols)[1]
    return plan


def blockwise_attention(Q, K, V, mask=None, *, block_size: int = 512, causal: bool = False, scale=None):
    r"""Scaled dot-product attention computed tile by tile with an online softmax.

    The result equals :func:`attnlib.scaled_dot_product_attention`'s output, but
    only a ``(..., block_size, block_size)`` piece of the scores exists at any
    time, so the extra memory grows with n, not n².  Per query row, over the
    key blocks :math:`B`:

    .. math:: m' = \max(m, \max_{j\in B} s_j),\quad
              \ell' = e^{m-m'}\ell + \sum_{j\in B} e^{s_j-m'},\quad
              a' = e^{m-m'}a + \sum_{j\in B} e^{s_j-m'} v_j,
              \quad \text{output} = a / \ell

    Tiles that the mask hides entirely are skipped: under a causal mask about
    half of the work disappears.  Chapter 5 ("Why attention is revolutionary",
    the price) explains it.

    Parameters
    ----------
    Q : array_like, shape (..., n_q, d_k)
    K : array_like, shape (..., n_k, d_k)
    V : array_like, shape (..., n_k, d_v)
    mask : array_like of bool, optional
        Broadcastable to ``(..., n_q, n_k)`` without changing that shape; True = this
        query may attend to this key.  A query with no allowed key gets a zero output.
    block_size : int
        Queries and keys per tile (default 512: a 1 MiB float32 tile of scores).
    causal : bool
        Also apply the causal mask (query i sees keys 0..i) without building an
        ``(n_q, n_k)`` array for it.
    scale : float, optional
        Multiplies the scores; defaults to ``1/sqrt(d_k)``.

    Returns
    -------
    output : ndarray, shape (..., n_q, d_v)
        The attention output only: the weights are never formed.

    Examples
    --------
    >>> from attnlib import scaled_dot_product_attention
    >>> rng = np.random.default_rng(0)
    >>> Q, K, V = rng.normal(size=(10, 4)), rng.normal(size=(10, 4)), rng.normal(size=(10, 3))
    >>> out = blockwise_attention(Q, K, V, block_size=3)
    >>> bool(np.allclose(out, scaled_dot_product_attention(Q, K, V)[0], rtol=0, atol=1e-12))
    True
    >>> blockwise_attention([[1.0, 0.0]], [[1.0, 0.0], [0.0, 1.0]], [[10.0], [20.0]]).round(3)
    array([[13.302]])
    """
    Q, K, V, mask, scale, out_dtype = check_attention(Q, K, V, mask, scale)
    block_size = positive_int(block_size, "block_size")
    causal = as_bool(causal, "causal")
    batch, (n_q, n_k), d_v = Q.shape[:-2], (Q.shape[-2], K.shape[-2]), V.shape[-1]
    dtype = Q.dtype  # float16 is computed in float32: its sums overflow at 65504
    check_overflow = may_overflow(Q, K, scale, dtype)  # almost always False: then no check per tile

    Qs = Q * scale  # (..., n_q, d_k): the scale applied once, to the queries
    Kt = K.swapaxes(-1, -2)  # (..., d_k, n_k)
    output = np.zeros((*batch, n_q, d_v), dtype=dtype)  # (..., n_q, d_v)
    for i0 in range(0, n_q, block_size):
        rows = slice(i0, min(i0 + block_size, n_q))
        m = np.full((*batch, rows.stop - i0, 1), -np.inf, dtype=dtype)  # running max
        l = np.zeros((*batch, rows.stop - i0, 1), dtype=dtype)  # running sum of exp
        acc = np.zeros((*batch, rows.stop - i0, d_v), dtype=dtype)  # running sum of exp * V
        for j0 in range(0, n_k, block_size):
            cols = slice(j0, min(j0 + block_size, n_k))
            tile, status = _tile_mask(mask, causal, rows, cols)
            if status == SKIPPED:
                continue  # every score of this tile is masked: it adds exactly nothing
            S = Qs[..., rows, :] @ Kt[..., :, cols]  # (..., bq, d_k) @ (..., d_k, bk) -> (..., bq, bk)
            if check_overflow:
                check_no_overflow(S, tile)  # an infinite score would pass for a masked key
            if tile is not None:
                S = np.where(tile, S, -np.inf)  # masked keys score -inf: weight exactly 0
            m_new = np.maximum(m, S.max(axis=-1, keepdims=True))  # (..., bq, 1)
            shift = np.where(np.isneginf(m_new), 0.0, m_new)  # rows with nothing visible yet
            P = np.exp(S - shift)  # (..., bq, bk)
            rescale = np.exp(m - shift)  # (..., bq, 1): 0 while m is -inf
            l = l * rescale + P.sum(axis=-1, keepdims=True)
            acc = acc * rescale + P @ V[..., cols, :]  # (..., bq, bk) @ (..., bk, d_v) -> (..., bq, d_v)
            m = m_new
        np.divide(acc, l, out=output[..., rows, :], where=l > 0)  # fully masked rows stay 0
    return output.astype(out_dtype, copy=False)
