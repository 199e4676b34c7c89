"""What a recurrent encoder remembers, and what attention over its states retrieves, measured.

The experiment of chapter 2 ("The problem attention solves") and its deeper page
("How we measured what an RNN forgets"), reused in chapter 5:
random token sequences go through an **untrained** tanh recurrent encoder
(:mod:`attnlib.rnn`), and linear readouts, fitted in closed form (ridge
regression), try to recover the token at every position from

* the **final hidden state** alone (what a classic encoder passes on), or
* **attention over all hidden states**, with a query that asks for a position.

Every arm is scored by the same readout (:func:`position_recall`): one ridge
readout per position, fitted on the same training sequences, so the arms
differ only in the features they hand to the readout.  The attention arms
differ only in their query and key weights (:func:`query_attention`):
hand-set to match positions (:func:`oracle_query`, an upper bound that is told
where to look), random (:func:`init_query`: scores so alike that the weights
are nearly uniform, the uniform-pooling control), or learned by gradient
descent (:func:`train_query`).  The query always starts from the asked-for
position; the keys carry their own position too, or, for the content-only
control, only their state (``init_query(..., key_position=False)``).

Recall is the fraction of tokens recovered exactly, reported by *distance from
the end*: distance 1 is the last token read, distance ``n`` the first.
"""

from __future__ import annotations

import numpy as np

from attnlib._validate import as_float_array, check_finite
from attnlib._validate import check_rng as _check_rng
from attnlib._validate import positive_int as _positive_int
from attnlib._validate import positive_number as _positive_number
from attnlib.attention import scaled_dot_product_attention
from attnlib.backward import attention_backward
from attnlib.nn import Adam, cross_entropy
from attnlib.positional import sinusoidal_positional_encoding
from attnlib.rnn import check_rnn_params, rnn_encode


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
    _check_rng(rng)
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
    tokens from hidden states.

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
    alpha = _check_alpha(alpha)
    gram = F.T @ F + alpha * np.eye(F.shape[1])  # (d_features, n) @ (n, d_features) -> (d_features, d_features)
    return np.linalg.solve(gram, F.T @ Y)  # (d_features, n) @ (n, d_out) -> (d_features, d_out)


def _check_alpha(alpha) -> float:
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float, np.number)) \
            or not np.isfinite(alpha) or alpha < 0:
        raise ValueError(f"alpha must be a non-negative finite number, got {alpha!r}")
    return float(alpha)


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
        From :func:`attnlib.rnn.init_rnn` with ``d_in = vocab_size``.

    Returns
    -------
    states : ndarray, shape (..., n, d_hidden)

    Examples
    --------
    >>> from attnlib.rnn import init_rnn
    >>> encode_tokens([[0, 1, 2]], init_rnn(3, 5, np.random.default_rng(0))).shape
    (1, 3, 5)
    """
    W_xh, _, _ = check_rnn_params(params)
    return rnn_encode(one_hot(tokens, W_xh.shape[0]), params)  # (..., n, d_hidden)


# --- the readout every arm shares ------------------------------------------------------------------------------


def position_recall(F_train, F_test, tokens_train, tokens_test, *, alpha: float = 1e-2) -> np.ndarray:
    r"""Recall by distance from the end (entry 0: the last token), one ridge readout per position.

    For each position ``p`` a readout :math:`W_p` is fitted on the training
    sequences, from the features :math:`f_p` (with a 1 appended) to the one-hot
    token at ``p``; the predicted test token is the arg-max.  Every readout
    sees exactly one example per training sequence, whatever the features are.

    .. math:: \hat y_p = \arg\max_v \,([f_p, 1]\, W_p)_v

    Parameters
    ----------
    F_train : array_like, shape (n_train, n, d) or (n_train, d)
        Features of each training sequence for each position; a 2-D array is
        the same features for every position (e.g. the final hidden state).
    F_test : array_like, shape (n_test, n, d) or (n_test, d)
    tokens_train : array_like of int, shape (n_train, n)
    tokens_test : array_like of int, shape (n_test, n)
    alpha : float
        Ridge penalty.

    Returns
    -------
    recall : ndarray, shape (n,)
        ``recall[k]``: the fraction of test tokens at distance ``k + 1`` from the
        end that the readout recovers (chance is ``1 / vocab_size``).

    Examples
    --------
    >>> tokens = np.array([[0, 1], [1, 0], [1, 1], [0, 0]])
    >>> position_recall(np.eye(2)[tokens], np.eye(2)[tokens], tokens, tokens)  # features that are the tokens
    array([1., 1.])
    """
    tokens_train, tokens_test = (np.asarray(t) for t in (tokens_train, tokens_test))
    for name, t in (("tokens_train", tokens_train), ("tokens_test", tokens_test)):
        if t.ndim != 2 or t.dtype == bool or not np.issubdtype(t.dtype, np.integer) or t.size == 0:
            raise ValueError(f"{name} must be a non-empty 2-D array of integer ids (n_sequences, n), "
                             f"got dtype {t.dtype} and shape {t.shape}")
    if tokens_train.shape[1] != tokens_test.shape[1]:
        raise ValueError(f"train and test sequences must have the same length, "
                         f"got {tokens_train.shape[1]} and {tokens_test.shape[1]}")
    n = tokens_train.shape[1]
    vocab_size = int(max(tokens_train.max(), tokens_test.max())) + 1
    F = []
    for name, f, t in (("F_train", F_train, tokens_train), ("F_test", F_test, tokens_test)):
        f = as_float_array(f, name, min_ndim=2)
        if not ((f.ndim == 3 and f.shape[:2] == t.shape) or (f.ndim == 2 and f.shape[0] == t.shape[0])):
            raise ValueError(f"{name} must have shape {(t.shape[0], n, 'd')} or {(t.shape[0], 'd')} to match "
                             f"its tokens {t.shape}, got {f.shape}")
        check_finite(f, name)
        F.append(with_bias(f))  # (n_seq, n, d + 1), or (n_seq, d + 1): the same features for every position
    F_tr, F_te = F
    if F_tr.shape[-1] != F_te.shape[-1]:
        raise ValueError(f"F_train and F_test must have the same width d, got {F_tr.shape[-1] - 1} and "
                         f"{F_te.shape[-1] - 1}")
    alpha = _check_alpha(alpha)
    Y = one_hot(tokens_train, vocab_size)  # (n_train, n, vocab)
    # one ridge problem per position p, solved together: (F_p^T F_p + alpha I) W_p = F_p^T Y_p
    if F_tr.ndim == 2:  # one set of features (a last state) for every p: one F^T F serves all n problems
        F_tr, F_te = F_tr[:, None, :], F_te[:, None, :]  # (n_seq, 1, d + 1): broadcast over p below
    gram = np.einsum("spd,spe->pde", F_tr, F_tr, optimize=True) + alpha * np.eye(F_tr.shape[-1])  # (n or 1, d+1, d+1)
    rhs = np.einsum("spd,spv->pdv", np.broadcast_to(F_tr, (*Y.shape[:2], F_tr.shape[-1])), Y,
                    optimize=True)  # (n, d + 1, vocab)
    W = np.linalg.solve(gram, rhs)  # (n, d + 1, vocab): readout W_p for each position
    scores = np.einsum("spd,pdv->spv", np.broadcast_to(F_te, (F_te.shape[0], n, F_te.shape[-1])), W,
                       optimize=True)  # (n_test, n, vocab)
    return _accuracy_by_distance(scores.argmax(axis=-1), tokens_test)


def _accuracy_by_distance(pred, tokens) -> np.ndarray:
    """Fraction correct at each position, reordered so that entry k is distance k + 1."""
    return (pred == tokens).mean(axis=0)[::-1]  # (n,) position n-1 first


def final_state_recall(tokens_train, tokens_test, params: dict, *, alpha: float = 1e-2) -> np.ndarray:
    r"""Recall of every position from the **final** hidden state only.

    :func:`position_recall` with the final state :math:`h_n` as the features of
    every position: one readout per position, each fitted on ``tokens_train``
    and scored on ``tokens_test``.

    .. math:: \hat y_p = \arg\max_v \,([h_n, 1]\, W_p)_v

    Parameters
    ----------
    tokens_train : array_like of int, shape (n_train, n)
    tokens_test : array_like of int, shape (n_test, n)
    params : dict
        An encoder from :func:`attnlib.rnn.init_rnn` with ``d_in = vocab_size``.
    alpha : float
        Ridge penalty.

    Returns
    -------
    recall : ndarray, shape (n,)
        ``recall[k]``: the fraction of test tokens at distance ``k + 1`` from the end
        that the readout recovers (chance is ``1 / vocab_size``).

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
    h_train = encode_tokens(train, params)[:, -1, :]  # (n_train, d_hidden)
    h_test = encode_tokens(test, params)[:, -1, :]  # (n_test, d_hidden)
    return position_recall(h_train, h_test, train, test, alpha=alpha)


def trace_size(tokens, params: dict, k: int, *, fixed: int = 0) -> float:
    r"""Mean length of the *trace* of the token ``k`` steps before the end, in the final state.

    A token's trace is the change it makes to the state (chapter 2): run the
    encoder on each sequence as it is and with that token swapped for the
    ``fixed`` token, and take the difference of the two final states.

    .. math:: \operatorname{trace} = h_n(x) - h_n(x \text{ with } x_{n-k} = \text{fixed})

    Sequences whose token there already is ``fixed`` have no trace and are left out.

    Parameters
    ----------
    tokens : array_like of int, shape (n_sequences, n)
    params : dict
        An encoder from :func:`attnlib.rnn.init_rnn` with ``d_in = vocab_size``.
    k : int
        Distance from the end, ``1 .. n``: 1 is the last token.
    fixed : int
        The token that stands in; it leaves no trace of its own.

    Returns
    -------
    size : float
        The mean over the sequences of :math:`\lVert \operatorname{trace} \rVert`.

    Examples
    --------
    >>> from attnlib.rnn import init_rnn
    >>> p = init_rnn(4, 8, np.random.default_rng(0))
    >>> p["W_hh"][:] = 0  # no recurrence: only the last token reaches the final state
    >>> tokens = random_tokens(50, 5, 4, np.random.default_rng(1))
    >>> trace_size(tokens, p, 1) > 0, trace_size(tokens, p, 2)
    (True, 0.0)
    """
    vocab_size = check_rnn_params(params)[0].shape[0]
    tokens = _check_tokens(tokens, vocab_size)
    if tokens.ndim != 2 or tokens.shape[1] < 1:
        raise ValueError(f"tokens must be 2-D (n_sequences, n) with n >= 1, got shape {tokens.shape}")
    n = tokens.shape[1]
    k = _positive_int(k, "k")
    if k > n:
        raise ValueError(f"k must be a distance from the end in 1..{n} (the sequences' length), got {k}")
    fixed = int(_check_tokens(np.asarray([fixed]), vocab_size, "fixed")[0])
    has_trace = tokens[:, n - k] != fixed  # (n_sequences,)
    if not has_trace.any():
        raise ValueError(f"every sequence already has the fixed token {fixed} at distance {k}: no trace to measure")
    swapped = tokens.copy()
    swapped[:, n - k] = fixed
    moved = encode_tokens(tokens, params)[:, -1] - encode_tokens(swapped, params)[:, -1]  # (n_sequences, d_hidden)
    return float(np.linalg.norm(moved[has_trace], axis=1).mean())


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


# --- attention over all states: one function, three kinds of query ----------------------------------------------


def _query_inputs(states, query: dict):
    """Check ``states`` and ``query``; return the states, the positional encodings and the key inputs.

    The key inputs are ``[h_{j+1}, PE_j]`` when ``W_k`` has ``d_hidden + d_pe`` rows
    (keys that carry their position) and ``h_{j+1}`` alone when it has ``d_hidden``
    rows (content-only keys).
    """
    states = as_float_array(states, "states", min_ndim=2)
    check_finite(states, "states")
    if not isinstance(query, dict) or set(query) != {"W_q", "W_k"}:
        got = sorted(query) if isinstance(query, dict) else type(query).__name__
        raise ValueError(f"query must be a dict with exactly W_q and W_k (from init_query, oracle_query "
                         f"or train_query), got {got}")
    W_q = as_float_array(query["W_q"], "W_q", min_ndim=2)
    W_k = as_float_array(query["W_k"], "W_k", min_ndim=2)
    n, d_hidden = states.shape[-2:]
    d_pe, d_k = W_q.shape
    if W_k.shape not in ((d_hidden + d_pe, d_k), (d_hidden, d_k)):
        raise ValueError(f"W_k must have shape (d_hidden + d_pe, d_k) = {(d_hidden + d_pe, d_k)} (keys with their "
                         f"position) or (d_hidden, d_k) = {(d_hidden, d_k)} (content-only keys) for states with "
                         f"d_hidden={d_hidden} and W_q of shape {W_q.shape}, got {W_k.shape}")
    PE = sinusoidal_positional_encoding(n, d_pe)  # (n, d_pe)
    if W_k.shape[0] == d_hidden:  # content-only keys: k_j = h_{j+1} W_k
        return states, PE, states, W_q, W_k
    F = np.concatenate([states, np.broadcast_to(PE, (*states.shape[:-2], n, d_pe))],
                       axis=-1)  # (..., n, d_hidden + d_pe)
    return states, PE, F, W_q, W_k


def query_attention(states, query: dict):
    r"""Attention over all hidden states, with a query for each position.

    The query of position ``p`` is its positional encoding projected by
    ``W_q``; the key of position ``j`` is the state ``states[..., j, :]`` computed right
    after token ``j`` (:math:`h_{j+1}`: recurrent steps count from 1, after
    :math:`h_0`) and its positional encoding, projected by ``W_k``; the values are
    the states themselves.  When ``W_k`` has only ``d_hidden`` rows the keys are
    content-only, :math:`k_j = h_{j+1} W_k`: they are not told their position.

    .. math:: a_p = \sum_{j=0}^{n-1} \operatorname{softmax}_j\!\left(\frac{q_p \cdot k_j}{\sqrt{d_k}}\right)
              h_{j+1}, \qquad q_p = PE_p W_q, \quad k_j = [h_{j+1}, PE_j]\, W_k

    Parameters
    ----------
    states : array_like, shape (..., n, d_hidden)
        All hidden states of a sequence (or a batch of them).
    query : dict
        ``W_q (d_pe, d_k)`` and ``W_k (d_hidden + d_pe, d_k)`` or ``W_k (d_hidden, d_k)``, from
        :func:`init_query`, :func:`oracle_query` or :func:`train_query`.

    Returns
    -------
    A : ndarray, shape (..., n, d_hidden)
        Row ``p`` is what the query for position ``p`` retrieved.
    weights : ndarray, shape (..., n, n)
        Row ``p`` is where that query looked.

    Examples
    --------
    >>> states = np.eye(4)[None]  # one sequence whose state at step t is the unit vector e_t
    >>> A, w = query_attention(states, oracle_query(4))
    >>> w.shape, bool((w[0].argmax(axis=1) == np.arange(4)).all())
    ((1, 4, 4), True)
    """
    states, PE, F, W_q, W_k = _query_inputs(states, query)
    Q = PE @ W_q  # (n, d_pe) @ (d_pe, d_k) -> (n, d_k): one query per position, shared by the batch
    K = F @ W_k  # (..., n, d_key_in) @ (d_key_in, d_k) -> (..., n, d_k), d_key_in = d_hidden (+ d_pe)
    return scaled_dot_product_attention(Q, K, states)  # (..., n, d_hidden), (..., n, n)


def oracle_query(d_hidden: int, *, d_pe: int = 32, scale: float = 4.0) -> dict:
    r"""Hand-set query and key weights that look up a position: the **oracle**.

    ``W_q`` copies the positional encoding, ``W_k`` keeps only the key's
    positional encoding, so the score of position ``p`` against state ``j`` is
    ``scale`` times :math:`PE_p \cdot PE_j`, largest at ``j = p``.  Nothing is
    learned: the weights already know the answer's position.  Chapter 2 uses it
    as an upper bound for a learned query, never as evidence on its own.

    .. math:: q_p \cdot k_j / \sqrt{d_k} = \text{scale}\; PE_p \cdot PE_j

    Parameters
    ----------
    d_hidden : int
        Width of the hidden states the keys are built from (the key ignores them).
    d_pe : int
        Width of the positional encoding (``d_k = d_pe``).
    scale : float
        Multiplies the scores; larger is sharper.

    Returns
    -------
    dict with ``W_q (d_pe, d_pe)`` and ``W_k (d_hidden + d_pe, d_pe)``.

    Examples
    --------
    >>> q = oracle_query(3, d_pe=2, scale=1.0)
    >>> q["W_q"].shape, q["W_k"].shape
    ((2, 2), (5, 2))
    """
    d_hidden = _positive_int(d_hidden, "d_hidden")
    d_pe = _positive_int(d_pe, "d_pe")
    scale = _positive_number(scale, "scale")
    W_k = np.zeros((d_hidden + d_pe, d_pe))
    W_k[d_hidden:] = np.eye(d_pe)  # the key is PE_j; the state h_j is ignored
    return {"W_q": scale * np.sqrt(d_pe) * np.eye(d_pe), "W_k": W_k}  # the sqrt(d_k) undoes attention's scaling


def oracle_weights(n: int, *, d_pe: int = 32, scale: float = 4.0) -> np.ndarray:
    r"""The oracle's attention weights over ``n`` positions: row ``p`` says where its query for ``p`` looks.

    The oracle's scores use positions only (:func:`oracle_query`), so its weights
    do not depend on the states: this is :func:`query_attention`'s weights for
    any states, here ``n`` states of width 1 that are all zero.

    .. math:: w_{pj} = \operatorname{softmax}_j(\text{scale}\; PE_p \cdot PE_j)

    Parameters
    ----------
    n : int
        Number of positions (and of states).
    d_pe, scale
        As in :func:`oracle_query`.

    Returns
    -------
    weights : ndarray, shape (n, n)
        Each row sums to 1 and peaks on its own position.

    Examples
    --------
    >>> w = oracle_weights(5, d_pe=8)
    >>> w.shape, bool((w.argmax(axis=1) == np.arange(5)).all())
    ((5, 5), True)
    """
    n = _positive_int(n, "n")
    return query_attention(np.zeros((n, 1)), oracle_query(1, d_pe=d_pe, scale=scale))[1]


def init_query(d_hidden: int, rng: np.random.Generator, *, d_pe: int = 32, d_k: int = 32,
               key_position: bool = True) -> dict:
    r"""Random query and key weights: the starting point of :func:`train_query`, and the control.

    Entries are drawn from :math:`N(0, 1/d_{in})`, where :math:`d_{in}` is the
    width of what each matrix multiplies, so that queries and keys start with
    entries about as large as their inputs' (below 1 for tanh states and
    positional encodings) and the weights start spread out (close to uniform
    pooling over the states).  With ``key_position=False`` the keys
    are content-only, :math:`k_j = h_{j+1} W_k`: only the query knows a position.

    Parameters
    ----------
    d_hidden : int
    rng : numpy.random.Generator
    d_pe : int
        Width of the positional encoding.
    d_k : int
        Width of queries and keys.
    key_position : bool
        Whether each key also sees its own positional encoding.

    Returns
    -------
    dict with ``W_q (d_pe, d_k)`` and ``W_k (d_hidden + d_pe, d_k)``, or ``W_k (d_hidden, d_k)``
    when ``key_position`` is false.

    Examples
    --------
    >>> q = init_query(8, np.random.default_rng(0), d_pe=4, d_k=6)
    >>> q["W_q"].shape, q["W_k"].shape
    ((4, 6), (12, 6))
    >>> init_query(8, np.random.default_rng(0), d_pe=4, d_k=6, key_position=False)["W_k"].shape
    (8, 6)
    """
    _check_rng(rng)
    d_hidden = _positive_int(d_hidden, "d_hidden")
    d_pe = _positive_int(d_pe, "d_pe")
    d_k = _positive_int(d_k, "d_k")
    if not isinstance(key_position, (bool, np.bool_)):
        raise TypeError(f"key_position must be True or False, got {type(key_position).__name__}")
    d_key_in = d_hidden + d_pe if key_position else d_hidden
    return {"W_q": rng.normal(0.0, 1.0 / np.sqrt(d_pe), size=(d_pe, d_k)),
            "W_k": rng.normal(0.0, 1.0 / np.sqrt(d_key_in), size=(d_key_in, d_k))}


def train_query(states, tokens, query: dict, rng: np.random.Generator, *, steps: int = 300,
                batch_size: int = 32, lr: float = 0.01) -> tuple[dict, np.ndarray]:
    r"""Learn query and key weights by gradient descent, so that each query finds its token.

    The task: for every position ``p``, predict the token at ``p`` from what the
    query for ``p`` retrieves (:func:`query_attention`).  A linear readout
    :math:`W_o`, shared by all positions and trained along with ``W_q`` and
    ``W_k``, turns :math:`a_p` into scores over the vocabulary; the loss is the
    mean cross-entropy.  The gradients flow back through the readout and through
    attention (:func:`attnlib.backward.attention_backward`) to ``W_q`` and
    ``W_k``; Adam (:class:`attnlib.nn.Adam`) takes the steps.  ``W_o`` is a
    scaffold for training and is thrown away: recall is measured afterwards with
    :func:`position_recall`, like every other arm.

    .. math:: L = -\frac{1}{B n} \sum_{b, p} \log \operatorname{softmax}([a_{bp}, 1]\, W_o)_{x_{bp}}

    Parameters
    ----------
    states : array_like, shape (n_sequences, n, d_hidden)
        Hidden states of the training sequences.
    tokens : array_like of int, shape (n_sequences, n)
        Their tokens.
    query : dict
        Starting weights, from :func:`init_query` (keys with or without their
        position); not modified.
    rng : numpy.random.Generator
        Draws the mini-batches and the readout's starting weights.
    steps : int
        Adam steps.
    batch_size : int
        Sequences per step (at most ``n_sequences``).
    lr : float
        Adam's learning rate.

    Returns
    -------
    query : dict
        The learned ``W_q`` and ``W_k``.
    losses : ndarray, shape (steps,)
        The training loss at each step (before the update).

    Examples
    --------
    >>> from attnlib.rnn import init_rnn
    >>> rng = np.random.default_rng(0)
    >>> tokens = random_tokens(64, 6, 4, rng)
    >>> states = encode_tokens(tokens, init_rnn(4, 16, rng))
    >>> learned, losses = train_query(states, tokens, init_query(16, rng, d_pe=8, d_k=8), rng, steps=40)
    >>> bool(losses[-5:].mean() < losses[:5].mean())
    True
    """
    _check_rng(rng)
    states, PE, F, W_q, W_k = _query_inputs(states, query)
    if states.ndim != 3:
        raise ValueError(f"states must have shape (n_sequences, n, d_hidden), got {states.shape}")
    tokens = np.asarray(tokens)
    if tokens.dtype == bool or not np.issubdtype(tokens.dtype, np.integer) or tokens.shape != states.shape[:2]:
        raise ValueError(f"tokens must be integer ids of shape {states.shape[:2]} to match the states, "
                         f"got dtype {tokens.dtype} and shape {tokens.shape}")
    if tokens.min() < 0:
        raise ValueError(f"tokens must be non-negative ids, got {tokens.min()}")
    steps = _positive_int(steps, "steps")
    batch_size = _positive_int(batch_size, "batch_size")
    if batch_size > len(states):
        raise ValueError(f"batch_size={batch_size} is larger than the {len(states)} training sequences")
    lr = _positive_number(lr, "lr")
    vocab_size = int(tokens.max()) + 1
    d_hidden = states.shape[-1]
    params = {"W_q": W_q.copy(), "W_k": W_k.copy(),
              "W_o": rng.normal(0.0, 1.0 / np.sqrt(d_hidden + 1), size=(d_hidden + 1, vocab_size))}
    adam = Adam(params, lr=lr)
    losses = np.empty(steps)
    for step in range(steps):
        batch = rng.choice(len(states), size=batch_size, replace=False)
        S_b, F_b, x_b = states[batch], F[batch], tokens[batch]  # (B, n, d_hidden), (B, n, d_key_in), (B, n)
        # forward
        Q = PE @ params["W_q"]  # (n, d_pe) @ (d_pe, d_k) -> (n, d_k)
        K = F_b @ params["W_k"]  # (B, n, d_key_in) @ (d_key_in, d_k) -> (B, n, d_k)
        A, weights = scaled_dot_product_attention(Q, K, S_b)  # (B, n, d_hidden), (B, n, n)
        A1 = with_bias(A)  # (B, n, d_hidden + 1)
        logits = A1 @ params["W_o"]  # (B, n, d_hidden + 1) @ (d_hidden + 1, vocab) -> (B, n, vocab)
        losses[step], d_logits = cross_entropy(logits, x_b)  # d_logits: (B, n, vocab)
        # backward
        d_W_o = np.einsum("bnd,bnv->dv", A1, d_logits, optimize=True)  # (d_hidden + 1, vocab)
        d_A = d_logits @ params["W_o"][:-1].T  # (B, n, vocab) @ (vocab, d_hidden) -> (B, n, d_hidden)
        d_Q, d_K, _ = attention_backward(Q, K, S_b, d_A, weights=weights)  # (n, d_k) summed over the batch, (B, n, d_k)
        grads = {"W_q": PE.T @ d_Q,  # (d_pe, n) @ (n, d_k) -> (d_pe, d_k)
                 "W_k": np.einsum("bnf,bnk->fk", F_b, d_K, optimize=True),  # (d_key_in, d_k)
                 "W_o": d_W_o}
        params = adam.step(params, grads)
    return {"W_q": params["W_q"], "W_k": params["W_k"]}, losses


def weight_on_target(weights) -> float:
    r"""Mean weight that the query for position ``p`` puts on state ``p``.

    .. math:: \frac{1}{n} \sum_p w_{pp}, \text{ averaged over the batch}

    Examples
    --------
    >>> weight_on_target(np.eye(3)[None])
    1.0
    """
    weights = as_float_array(weights, "weights", min_ndim=2)
    if weights.shape[-1] != weights.shape[-2]:
        raise ValueError(f"weights must be square in their last two axes (n, n), got {weights.shape}")
    return float(np.diagonal(weights, axis1=-2, axis2=-1).mean())
