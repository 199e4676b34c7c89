"""How much of a sequence survives in an encoder's memory, measured.

The experiment of chapter 2 ("The problem attention solves"), reused in
chapter 5: random token sequences go through a recurrent encoder
(:mod:`attnlib.rnn`); a linear readout, fitted in closed form (ridge
regression), tries to recover the token at every position

* from the **final hidden state** alone (what a classic encoder passes on), or
* from **attention over all hidden states**, with a query that asks for a position.

Recall is the fraction of tokens recovered exactly, reported by *distance from
the end*: distance 1 is the last token read, distance ``n`` the first.
"""

from __future__ import annotations

import time

import numpy as np

from attnlib._checks import as_float_array, check_finite
from attnlib.attention import scaled_dot_product_attention
from attnlib.positional import sinusoidal_positional_encoding
from attnlib.rnn import check_rnn_params, rnn_encode


def _positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _check_tokens(tokens, vocab_size: int, name: str = "tokens") -> np.ndarray:
    arr = np.asarray(tokens)
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"{name} must be an array of integer token ids, got dtype {arr.dtype}")
    if arr.size and (arr.min() < 0 or arr.max() >= vocab_size):
        raise ValueError(f"{name} must hold ids in 0..{vocab_size - 1} (vocab_size={vocab_size}), "
                         f"got values from {arr.min()} to {arr.max()}")
    return arr


def random_tokens(n_sequences: int, length: int, vocab_size: int, rng: np.random.Generator) -> np.ndarray:
    """Uniformly random token ids: a batch of sequences with nothing to guess from.

    Every token is independent of the others, so the only way to recall one is
    to have remembered it (chapter 2).

    Parameters
    ----------
    n_sequences, length, vocab_size : int
    rng : numpy.random.Generator

    Returns
    -------
    ndarray of int, shape (n_sequences, length)
        Ids in ``0 .. vocab_size - 1``.

    Examples
    --------
    >>> random_tokens(2, 5, 3, np.random.default_rng(0)).shape
    (2, 5)
    """
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    n_sequences = _positive_int(n_sequences, "n_sequences")
    length = _positive_int(length, "length")
    vocab_size = _positive_int(vocab_size, "vocab_size")
    return rng.integers(0, vocab_size, size=(n_sequences, length))


def one_hot(tokens, vocab_size: int) -> np.ndarray:
    r"""Token ids as one-hot vectors: row ``i`` of the identity for token ``i``.

    .. math:: x_{t,v} = [\text{token}_t = v]

    Parameters
    ----------
    tokens : array_like of int, shape (...)
    vocab_size : int

    Returns
    -------
    ndarray, shape (..., vocab_size)

    Examples
    --------
    >>> one_hot([2, 0], 3)
    array([[0., 0., 1.],
           [1., 0., 0.]])
    """
    vocab_size = _positive_int(vocab_size, "vocab_size")
    tokens = _check_tokens(tokens, vocab_size)
    return np.eye(vocab_size)[tokens]  # (..., vocab_size)


def ridge_fit(F, Y, alpha: float = 1e-2) -> np.ndarray:
    r"""Closed-form ridge regression: the linear map that best predicts ``Y`` from ``F``.

    .. math:: W = (F^\top F + \alpha I)^{-1} F^\top Y

    No intercept is fitted: append a column of ones to ``F`` for one
    (:func:`with_bias` does).  Chapter 2 uses it as the readout that decodes
    tokens from hidden states; nothing else in the network is trained.

    Parameters
    ----------
    F : array_like, shape (n_samples, d_features)
        Features, one sample per row.
    Y : array_like, shape (n_samples, d_out) or (n_samples,)
        Targets.
    alpha : float
        The ridge penalty (non-negative); it keeps the solve well posed.

    Returns
    -------
    W : ndarray, shape (d_features, d_out) or (d_features,)
        Predict with ``F @ W``.

    Examples
    --------
    >>> F = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    >>> ridge_fit(F, F @ np.array([2.0, -1.0]), alpha=0.0).round(6)
    array([ 2., -1.])
    """
    F = as_float_array(F, "F", min_ndim=2)
    Y = as_float_array(Y, "Y", min_ndim=1)
    if F.ndim != 2:
        raise ValueError(f"F must be 2-D (n_samples, d_features), got shape {F.shape}")
    if Y.ndim > 2 or Y.shape[0] != F.shape[0]:
        raise ValueError(f"Y must have shape (n_samples,) or (n_samples, d_out) with n_samples={F.shape[0]}, "
                         f"got {Y.shape}")
    check_finite(F, "F")
    check_finite(Y, "Y")
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float, np.number)) \
            or not np.isfinite(alpha) or alpha < 0:
        raise ValueError(f"alpha must be a non-negative finite number, got {alpha!r}")
    gram = F.T @ F + alpha * np.eye(F.shape[1])  # (d_features, n) @ (n, d_features) -> (d_features, d_features)
    return np.linalg.solve(gram, F.T @ Y)  # (d_features, n) @ (n, d_out) -> (d_features, d_out)


def with_bias(F) -> np.ndarray:
    """Append a column of ones, so that a linear readout can learn an offset.

    Examples
    --------
    >>> with_bias(np.zeros((2, 1)))
    array([[0., 1.],
           [0., 1.]])
    """
    F = as_float_array(F, "F", min_ndim=1)
    return np.concatenate([F, np.ones((*F.shape[:-1], 1))], axis=-1)  # (..., d + 1)


def encode_tokens(tokens, params: dict) -> np.ndarray:
    """Run the recurrent encoder over one-hot token sequences; return all states.

    Parameters
    ----------
    tokens : array_like of int, shape (..., n)
        Ids in ``0 .. d_in - 1``, where ``d_in`` is the width of ``params["W_xh"]``.
    params : dict
        From :func:`attnlib.init_rnn` with ``d_in = vocab_size``.

    Returns
    -------
    H : ndarray, shape (..., n, d_hidden)

    Examples
    --------
    >>> from attnlib.rnn import init_rnn
    >>> encode_tokens([[0, 1, 2]], init_rnn(3, 5, np.random.default_rng(0))).shape
    (1, 3, 5)
    """
    W_xh, _, _ = check_rnn_params(params)
    return rnn_encode(one_hot(tokens, W_xh.shape[0]), params)  # (..., n, d_hidden)


def _accuracy_by_distance(pred, tokens) -> np.ndarray:
    """Fraction correct at each position, reordered so that entry k is distance k + 1."""
    return (pred == tokens).mean(axis=0)[::-1]  # (n,) position n-1 first


def final_state_recall(tokens_train, tokens_test, params: dict, *, alpha: float = 1e-2) -> np.ndarray:
    r"""Recall of every position from the **final** hidden state only.

    One ridge readout per position maps ``[h_n, 1]`` to the one-hot token at that
    position; the predicted token is the arg-max.  The readouts are fitted on
    ``tokens_train`` and scored on ``tokens_test``.

    .. math:: \hat x_p = \arg\max_v \,([h_n, 1]\, W_p)_v

    Parameters
    ----------
    tokens_train : array_like of int, shape (n_train, n)
    tokens_test : array_like of int, shape (n_test, n)
    params : dict
        An encoder from :func:`attnlib.init_rnn` with ``d_in = vocab_size``.
    alpha : float
        Ridge penalty.

    Returns
    -------
    recall : ndarray, shape (n,)
        ``recall[k]`` is the fraction of test tokens at distance ``k + 1`` from the
        end that the readout recovers (chance is ``1 / vocab_size``).

    Examples
    --------
    >>> from attnlib.rnn import init_rnn
    >>> rng = np.random.default_rng(0)
    >>> p = init_rnn(4, 16, rng)
    >>> r = final_state_recall(random_tokens(300, 3, 4, rng), random_tokens(100, 3, 4, rng), p)
    >>> r.shape, bool(r[0] == 1.0)
    ((3,), True)
    """
    train, test = _check_pair(tokens_train, tokens_test, params)
    vocab_size = check_rnn_params(params)[0].shape[0]
    n = train.shape[1]
    F_train = with_bias(encode_tokens(train, params)[:, -1, :])  # (n_train, d_hidden + 1)
    F_test = with_bias(encode_tokens(test, params)[:, -1, :])  # (n_test, d_hidden + 1)
    Y = one_hot(train, vocab_size).reshape(len(train), n * vocab_size)  # (n_train, n * vocab)
    W = ridge_fit(F_train, Y, alpha)  # (d_hidden + 1, n * vocab): one readout per position
    scores = (F_test @ W).reshape(len(test), n, vocab_size)  # (n_test, n, vocab)
    return _accuracy_by_distance(scores.argmax(axis=-1), test)


def attend_to_positions(H, positions, *, d_pe: int = 64, scale: float = 4.0):
    r"""Attention over all hidden states, with a query that asks for a position.

    Keys are the sinusoidal positional encodings of the positions
    ``0 .. n - 1``; the query for position ``p`` is the encoding of ``p``; the
    values are the hidden states.  The dot product of two encodings is largest
    when the positions are equal, so the weights peak at the asked-for state.

    .. math:: a_p = \operatorname{softmax}\!\left(s\, PE_p\, PE^\top\right) H

    Parameters
    ----------
    H : array_like, shape (..., n, d_hidden)
        All hidden states of a sequence (or a batch of them).
    positions : array_like of int, shape (n_q,)
        The positions asked for, each in ``0 .. n - 1``.
    d_pe : int
        Width of the positional encoding.
    scale : float
        Multiplies the scores; larger is sharper.

    Returns
    -------
    output : ndarray, shape (..., n_q, d_hidden)
    weights : ndarray, shape (n_q, n)

    Examples
    --------
    >>> H = np.eye(4)[None]  # one sequence whose state at step t is the unit vector e_t
    >>> out, w = attend_to_positions(H, [2])
    >>> int(w.argmax()), bool(w[0, 2] > 0.95)
    (2, True)
    """
    H = as_float_array(H, "H", min_ndim=2)
    n = H.shape[-2]
    positions = np.asarray(positions)
    if positions.ndim != 1 or positions.dtype == bool or not np.issubdtype(positions.dtype, np.integer):
        raise TypeError(f"positions must be a 1-D array of integers, got {positions.dtype} "
                        f"with shape {positions.shape}")
    if positions.size and (positions.min() < 0 or positions.max() >= n):
        raise ValueError(f"positions must lie in 0..{n - 1} for a sequence of n={n}, "
                         f"got {positions.min()}..{positions.max()}")
    if not np.isfinite(scale) or scale <= 0:
        raise ValueError(f"scale must be a positive finite number, got {scale!r}")
    PE = sinusoidal_positional_encoding(n, _positive_int(d_pe, "d_pe"))  # (n, d_pe)
    Q, K = PE[positions], PE  # (n_q, d_pe), (n, d_pe)
    _, weights = scaled_dot_product_attention(Q, K, np.zeros((n, 1)), scale=scale)  # (n_q, n)
    lead, d_hidden = H.shape[:-2], H.shape[-1]
    H_2d = np.moveaxis(H, -2, 0).reshape(n, -1)  # (n, ... * d_hidden): one matrix product for the batch
    out = (weights @ H_2d).reshape(len(positions), *lead, d_hidden)  # (n_q, n) @ (n, ...*d) -> (n_q, ..., d)
    return np.moveaxis(out, 0, -2), weights  # (..., n_q, d_hidden)


def attention_recall(tokens_train, tokens_test, params: dict, *, alpha: float = 1e-2,
                     d_pe: int = 64, scale: float = 4.0) -> np.ndarray:
    r"""Recall of every position through attention over all hidden states.

    For each position ``p`` the query asks for ``p`` (:func:`attend_to_positions`);
    **one** ridge readout, shared by all positions, maps the attended state to
    the token.  Same encoder, same kind of readout as :func:`final_state_recall`:
    only the memory differs.

    Parameters
    ----------
    tokens_train, tokens_test, params, alpha
        As in :func:`final_state_recall`.
    d_pe, scale
        As in :func:`attend_to_positions`.

    Returns
    -------
    recall : ndarray, shape (n,)
        ``recall[k]``: fraction recovered at distance ``k + 1`` from the end.

    Examples
    --------
    >>> from attnlib.rnn import init_rnn
    >>> rng = np.random.default_rng(0)
    >>> p = init_rnn(4, 16, rng)
    >>> r = attention_recall(random_tokens(300, 12, 4, rng), random_tokens(100, 12, 4, rng), p)
    >>> bool(r.min() > 0.9)
    True
    """
    train, test = _check_pair(tokens_train, tokens_test, params)
    vocab_size = check_rnn_params(params)[0].shape[0]
    n = train.shape[1]
    positions = np.arange(n)
    A_train, _ = attend_to_positions(encode_tokens(train, params), positions, d_pe=d_pe, scale=scale)
    A_test, _ = attend_to_positions(encode_tokens(test, params), positions, d_pe=d_pe, scale=scale)
    d = A_train.shape[-1]
    F_train = with_bias(A_train.reshape(-1, d))  # (n_train * n, d_hidden + 1)
    F_test = with_bias(A_test.reshape(-1, d))  # (n_test * n, d_hidden + 1)
    W = ridge_fit(F_train, one_hot(train.reshape(-1), vocab_size), alpha)  # (d_hidden + 1, vocab)
    pred = (F_test @ W).argmax(axis=-1).reshape(test.shape)  # (n_test, n)
    return _accuracy_by_distance(pred, test)


def _check_pair(tokens_train, tokens_test, params):
    vocab_size = check_rnn_params(params)[0].shape[0]
    train = _check_tokens(tokens_train, vocab_size, "tokens_train")
    test = _check_tokens(tokens_test, vocab_size, "tokens_test")
    if train.ndim != 2 or test.ndim != 2:
        raise ValueError(f"tokens_train and tokens_test must be 2-D (n_sequences, n), "
                         f"got shapes {train.shape} and {test.shape}")
    if train.shape[1] != test.shape[1]:
        raise ValueError(f"train and test sequences must have the same length, "
                         f"got {train.shape[1]} and {test.shape[1]}")
    if train.shape[0] < 2 or test.shape[0] < 1 or train.shape[1] < 1:
        raise ValueError(f"need at least 2 training and 1 test sequence of length >= 1, "
                         f"got shapes {train.shape} and {test.shape}")
    return train, test


def time_recurrence_and_attention(lengths, d_hidden: int, rng: np.random.Generator, *,
                                  repeats: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Wall time of the step-by-step recurrence against one attention product.

    For each length ``n`` a random sequence ``X (n, d_hidden)`` is processed two
    ways: :func:`attnlib.rnn_encode` (``n`` dependent steps) and
    :func:`attnlib.scaled_dot_product_attention` with ``Q = K = V = X`` (one
    batch of matrix products).  The best of ``repeats`` runs is kept, the usual
    way to reduce noise from other programs.  The seconds depend on the machine.

    Parameters
    ----------
    lengths : sequence of int
    d_hidden : int
    rng : numpy.random.Generator
    repeats : int

    Returns
    -------
    t_rnn, t_attention : ndarray, shape (len(lengths),)
        Seconds per run.

    Examples
    --------
    >>> t_rnn, t_att = time_recurrence_and_attention([4, 8], 8, np.random.default_rng(0), repeats=2)
    >>> t_rnn.shape, bool((t_att > 0).all())
    ((2,), True)
    """
    from attnlib.rnn import init_rnn

    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    lengths = [_positive_int(n, "each length") for n in np.atleast_1d(lengths).tolist()]
    d_hidden = _positive_int(d_hidden, "d_hidden")
    repeats = _positive_int(repeats, "repeats")
    params = init_rnn(d_hidden, d_hidden, rng)
    t_rnn, t_att = [], []
    for n in lengths:
        X = rng.normal(size=(n, d_hidden))  # (n, d_hidden)
        t_rnn.append(_best_time(lambda X=X: rnn_encode(X, params), repeats))
        t_att.append(_best_time(lambda X=X: scaled_dot_product_attention(X, X, X), repeats))
    return np.array(t_rnn), np.array(t_att)


def _best_time(fn, repeats: int) -> float:
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best
