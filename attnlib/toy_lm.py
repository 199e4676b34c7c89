"""Tiny language models made of one hand-set attention head.

No training: the queries, keys and values are one-hot vectors of neighbouring
tokens, chosen by hand so that you can read what each head does.

- :func:`next_token_head` (GPT-style) looks only to the left (a causal mask).  It is
  an *induction head*: it finds earlier places where the current context occurred and
  copies the token that came next there.
- :func:`masked_token_head` (BERT-style) looks both ways (no attention mask at all,
  ``[MASK]`` tokens included) and fills a hidden token from its left and right
  neighbours.

Chapter 6 ("Real-world impact") uses them.
"""

from __future__ import annotations

import numpy as np

from attnlib._validate import positive_int
from attnlib.attention import scaled_dot_product_attention
from attnlib.masks import causal_mask


def _check_ids(ids, vocab_size) -> np.ndarray:
    vocab_size = positive_int(vocab_size, "vocab_size")
    arr = np.asarray(ids)
    if arr.size == 0:
        raise ValueError(f"ids is empty (shape {arr.shape}); expected a 1-D array of at least one token id")
    if not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"ids must be integers (token ids), got dtype {arr.dtype}")
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"ids must be a non-empty 1-D array of integers, got shape {arr.shape}")
    if arr.min() < 0 or arr.max() >= vocab_size:
        raise ValueError(f"ids must lie in 0..{vocab_size - 1} (vocab_size={vocab_size}), "
                         f"got values from {arr.min()} to {arr.max()}")
    return arr


def shifted_one_hot(ids, vocab_size: int, offset: int) -> np.ndarray:
    """One-hot vectors of the token ``offset`` places away from each position.

    Row ``i`` is the one-hot vector of ``ids[i + offset]``, or all zeros where
    ``i + offset`` falls outside the sequence.

    Parameters
    ----------
    ids : array_like of int, shape (n,)
    vocab_size : int
    offset : int
        ``0`` for the token itself, ``-1`` for the one before, ``+1`` for the one after.

    Returns
    -------
    ndarray, shape (n, vocab_size)

    Examples
    --------
    >>> shifted_one_hot([0, 2, 1], 3, -1)
    array([[0., 0., 0.],
           [1., 0., 0.],
           [0., 0., 1.]])
    """
    ids = _check_ids(ids, vocab_size)
    offset = positive_int(offset, "offset", minimum=None)
    n = ids.size
    out = np.zeros((n, vocab_size))  # (n, vocab_size)
    source = np.arange(n) + offset  # (n,): the position each row copies its token from
    inside = (source >= 0) & (source < n)
    out[np.flatnonzero(inside), ids[source[inside]]] = 1.0
    return out


def next_token_head(ids, vocab_size: int, *, scale: float = 5.0):
    """GPT-style: a causal induction head that predicts the next token at every position.

    Query ``i`` describes the context ``(token i-1, token i)``, in reading order; key ``j``
    describes the context that *preceded* token ``j``, ``(token j-2, token j-1)``; the value of
    key ``j`` is token ``j`` itself.  A query therefore finds earlier places where
    its context occurred and copies what came next there.

    .. math:: p(\\cdot \\mid t_{\\le i}) = \\operatorname{softmax}\\big(\\gamma\\, q_i K^\\top
              + \\text{causal mask}\\big)\\, V

    Parameters
    ----------
    ids : array_like of int, shape (n,)
        The token ids of the sequence so far.
    vocab_size : int
    scale : float
        Multiplies the scores (the scale, written gamma in the book): a full match
        scores ``2 * scale``, half a match ``scale``.

    Returns
    -------
    probs : ndarray, shape (n, vocab_size)
        Row ``i`` is the predicted distribution of token ``i + 1``.
    weights : ndarray, shape (n, n)
        The attention weights; zero above the diagonal.

    Examples
    --------
    >>> probs, weights = next_token_head([0, 1, 2, 0, 1], 3)
    >>> int(probs[-1].argmax())  # after "0 1" came "2" earlier in the sequence
    2
    """
    ids = _check_ids(ids, vocab_size)
    Q = np.concatenate([shifted_one_hot(ids, vocab_size, -1),
                        shifted_one_hot(ids, vocab_size, 0)], axis=1)  # (n, 2 * vocab_size)
    K = np.concatenate([shifted_one_hot(ids, vocab_size, -2),
                        shifted_one_hot(ids, vocab_size, -1)], axis=1)  # (n, 2 * vocab_size)
    V = shifted_one_hot(ids, vocab_size, 0)  # (n, vocab_size): what token j is
    return scaled_dot_product_attention(Q, K, V, causal_mask(ids.size), scale=scale)


def generate(ids, vocab_size: int, n_new: int, *, scale: float = 5.0):
    """Greedy generation with :func:`next_token_head`, one token at a time.

    At each step the whole sequence is run again under a causal mask that is one
    row and one column larger than before; the last row predicts the next token,
    and the most probable one (the lowest id on a tie) is appended.

    Returns
    -------
    ids : ndarray of int, shape (len(ids) + n_new,)
    steps : list of (probs (vocab_size,), weights (n_t, n_t))
        For each step: the predicted distribution and the attention weights.

    Examples
    --------
    >>> out, steps = generate([0, 1, 2, 0], 3, 2)
    >>> out.tolist(), len(steps), steps[1][1].shape
    ([0, 1, 2, 0, 1, 2], 2, (5, 5))
    """
    ids = _check_ids(ids, vocab_size)
    n_new = positive_int(n_new, "n_new", minimum=0)
    steps = []
    for _ in range(n_new):
        probs, weights = next_token_head(ids, vocab_size, scale=scale)  # (n_t, V), (n_t, n_t)
        steps.append((probs[-1], weights))
        ids = np.append(ids, int(np.argmax(probs[-1])))
    return ids, steps


def masked_token_head(ids, vocab_size: int, mask_id: int, *, scale: float = 5.0):
    """BERT-style: a bidirectional head that fills in hidden (``mask_id``) tokens.

    Queries and keys both describe a position by its two neighbours,
    ``(token i-1, token i+1)``; the value is the token itself.  There is no
    attention mask at all: every position attends to every position, left and
    right, ``[MASK]`` tokens included, as in BERT.  A ``[MASK]`` token only tells
    nobody what it hides, so its value is the zero vector: it takes weight but casts
    no vote, and each row's vote is renormalised over the tokens that do vote.

    .. math:: p(t_i \\mid t_{\\ne i}) \\propto \\operatorname{softmax}\\big(\\gamma\\, q_i K^\\top\\big)\\, V

    Parameters
    ----------
    ids : array_like of int, shape (n,)
        Token ids, with ``mask_id`` where a token is hidden.
    vocab_size : int
    mask_id : int
        The id of the ``[MASK]`` token.
    scale : float
        Multiplies the scores (the scale, written gamma in the book).

    Returns
    -------
    probs : ndarray, shape (n, vocab_size)
        Row ``i`` is the predicted distribution of token ``i`` (all zeros in the
        degenerate case where a row gives all of its weight to ``[MASK]`` tokens).
    weights : ndarray, shape (n, n)
        The attention weights over every key, ``[MASK]`` keys included.

    Examples
    --------
    >>> probs, weights = masked_token_head([0, 1, 2, 0, 3, 2], 4, mask_id=3)
    >>> int(probs[4].argmax())  # "0 ? 2" was "0 1 2" before
    1
    >>> bool(weights[4, 4] > 0)  # the blank attends to itself, like any token
    True
    """
    ids = _check_ids(ids, vocab_size)
    mask_id = positive_int(mask_id, "mask_id", minimum=0)
    if mask_id >= vocab_size:
        raise ValueError(f"mask_id must lie in 0..{vocab_size - 1}, got {mask_id}")
    features = np.concatenate([shifted_one_hot(ids, vocab_size, -1),
                               shifted_one_hot(ids, vocab_size, +1)], axis=1)  # (n, 2 * vocab_size)
    V = shifted_one_hot(ids, vocab_size, 0)  # (n, vocab_size)
    V[ids == mask_id] = 0.0  # a [MASK] token carries no answer: no vote
    votes, weights = scaled_dot_product_attention(features, features, V, scale=scale)  # (n, V), (n, n)
    total = votes.sum(axis=-1, keepdims=True)  # (n, 1): weight on tokens that vote
    probs = np.divide(votes, total, out=np.zeros_like(votes), where=total > 0)
    return probs, weights
