"""Positional encodings: attention alone cannot tell word order apart."""

from __future__ import annotations

import numpy as np

from attnlib._validate import positive_int


def sinusoidal_positional_encoding(n_positions: int, d_model: int) -> np.ndarray:
    r"""The sinusoidal encoding of Vaswani et al. (2017).

    .. math:: PE_{p, 2i} = \sin\!\left(p / 10000^{2i/d_{model}}\right), \quad
              PE_{p, 2i+1} = \cos\!\left(p / 10000^{2i/d_{model}}\right)

    Added to token embeddings, it lets attention tell positions apart
    (chapter 4 shows why that is needed).

    Parameters
    ----------
    n_positions : int
        Number of positions ``p = 0 .. n_positions - 1``.
    d_model : int
        Width of the encoding.

    Returns
    -------
    ndarray, shape (n_positions, d_model)
        Sine on even columns, cosine on odd columns.

    Examples
    --------
    >>> sinusoidal_positional_encoding(2, 4).round(4)
    array([[0.    , 1.    , 0.    , 1.    ],
           [0.8415, 0.5403, 0.01  , 1.    ]])
    """
    n_positions, d_model = positive_int(n_positions, "n_positions"), positive_int(d_model, "d_model")
    positions = np.arange(n_positions)[:, None]  # (n_positions, 1)
    two_i = np.arange(0, d_model, 2)  # (ceil(d_model / 2),)
    angles = positions / 10000.0 ** (two_i / d_model)  # (n_positions, ceil(d_model / 2))
    pe = np.zeros((n_positions, d_model))
    pe[:, 0::2] = np.sin(angles)
    pe[:, 1::2] = np.cos(angles[:, : d_model // 2])
    return pe
