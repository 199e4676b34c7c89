"""Boolean masks.  Convention: ``mask[..., i, j]`` is True when query i may attend to key j."""

from __future__ import annotations

import numpy as np

from attnlib._validate import check_fits_in_memory, positive_int


def causal_mask(n_q: int, n_k: int | None = None) -> np.ndarray:
    """Mask out the future: query i may attend to keys 0..i.

    Parameters
    ----------
    n_q : int
        Number of queries.
    n_k : int, optional
        Number of keys; defaults to ``n_q``.

    Returns
    -------
    ndarray of bool, shape (n_q, n_k)
        ``mask[i, j] = j <= i``.

    Examples
    --------
    >>> causal_mask(3).astype(int)
    array([[1, 0, 0],
           [1, 1, 0],
           [1, 1, 1]])
    """
    n_q = positive_int(n_q, "n_q")
    n_k = n_q if n_k is None else positive_int(n_k, "n_k")
    check_fits_in_memory((n_q, n_k), bool, 1, "causal_mask", arrays="the mask", hint=(
        "attnlib.blockwise_attention(Q, K, V, causal=True) applies the causal mask without building it"))
    return np.tril(np.ones((n_q, n_k), dtype=bool))


def padding_mask(lengths, n_k: int) -> np.ndarray:
    """Hide padding: in sequence b, key j is allowed where ``j < lengths[b]``.

    Parameters
    ----------
    lengths : array_like of int, shape (batch,)
        The true length of each sequence, between 0 and ``n_k``.
    n_k : int
        The padded length.

    Returns
    -------
    ndarray of bool, shape (batch, 1, n_k)
        Broadcasts over the query axis of ``(batch, n_q, n_k)`` scores.  For scores with
        a heads axis, ``(batch, n_heads, n_q, n_k)``, add it: ``mask[:, None]``.

    Examples
    --------
    >>> padding_mask([2, 3], 4).astype(int)
    array([[[1, 1, 0, 0]],
    <BLANKLINE>
           [[1, 1, 1, 0]]])
    """
    n_k = positive_int(n_k, "n_k")
    lengths = np.asarray(lengths)
    if not np.issubdtype(lengths.dtype, np.integer) and not (lengths.size == 0 and lengths.dtype == float):
        raise TypeError(f"lengths must be integers (one per sequence), got dtype {lengths.dtype}")
    if lengths.ndim != 1:
        raise ValueError(f"lengths must be a 1-D array of integers (one per sequence), got shape {lengths.shape}")
    lengths = lengths.astype(np.int64)
    if lengths.size and (lengths.min() < 0 or lengths.max() > n_k):
        raise ValueError(f"lengths must lie in 0..n_k={n_k}, got {lengths.tolist()}")
    return (np.arange(n_k) < lengths[:, None])[:, None, :]  # (batch, 1, n_k)
