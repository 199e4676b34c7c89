"""Associative recall: learn W_q and W_k so that a query tag finds its pair (chapter 3).

The page "Learning to attend" (under chapter 3) trains it.  A context holds ``n``
tag→value pairs; then a query tag arrives, and the model must answer that tag's value.
(*Tag*, not key: "key" keeps meaning the attention key ``K = X W_k``.)

- A tag is a random direction ``t`` in :math:`\\mathbb{R}^{16}` (unit length); a value
  is one of 32 symbols.
- Each pair is one token ``x_j = [t_j ; onehot(v_j)]`` of width ``d = 16 + 32 = 48``;
  the query token is ``[t ; 0]``.
- One attention layer reads the context: ``Q = x_q W_q``, ``K = X W_k`` (both learned,
  ``(48, 16)`` each: 1,536 parameters), and the values are the last 32 entries of the
  tokens (fixed).  So the output *is* a probability for each value symbol:
  :math:`p(c) = \\sum_j w_j [v_j = c]`.
- The loss is :math:`-\\log p(v^*)`, the accuracy how often ``argmax p`` is the right value.

Before training, ``W_q`` and ``W_k`` are random, and the query spreads its weight over
all pairs.  To solve the task, ``W_q W_k^T`` has to compare the tag parts of the two
tokens and ignore the value part.

``D_TAG`` is the width of a tag; ``D_KEY`` is an older name for the same number, kept so
that existing code keeps working.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from attnlib import nn
from attnlib._validate import check_rng, positive_int, positive_number
from attnlib.attention import scaled_dot_product_attention
from attnlib.backward import attention_backward

D_TAG = 16  # the width of a tag: a token's first D_TAG entries are its tag
D_KEY = D_TAG  # the older name of D_TAG (same value), kept for existing code
N_VALUES = 32
D_MODEL = D_TAG + N_VALUES  # 48
D_K = 16
PAIRS = (8, 24)  # the number of pairs is drawn per batch from 8..24 (inclusive)


@dataclass
class RecallBatch:
    """A batch of recall problems: the context tokens, the query token and the answer."""

    X: np.ndarray  # (B, n, d): one token per tag -> value pair
    x_query: np.ndarray  # (B, 1, d): the query tag, value half zero
    target: np.ndarray  # (B,): the value of the queried tag
    where: np.ndarray  # (B,): the position of the queried pair in the context


def recall_batch(batch: int, n_pairs: int, rng: np.random.Generator) -> RecallBatch:
    """Random recall problems with ``n_pairs`` tag→value pairs each.

    Examples
    --------
    >>> b = recall_batch(4, 10, np.random.default_rng(0))
    >>> b.X.shape, b.x_query.shape, b.target.shape
    ((4, 10, 48), (4, 1, 48), (4,))
    >>> bool((b.X[np.arange(4), b.where, D_TAG:].argmax(-1) == b.target).all())
    True
    """
    check_rng(rng)
    for name, value in (("batch", batch), ("n_pairs", n_pairs)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    tags = rng.standard_normal((batch, n_pairs, D_TAG))  # (B, n, 16)
    tags /= np.linalg.norm(tags, axis=-1, keepdims=True)  # unit length: no tag outshines the right one by size
    values = rng.integers(0, N_VALUES, size=(batch, n_pairs))  # (B, n)
    X = np.concatenate([tags, np.eye(N_VALUES)[values]], axis=-1)  # (B, n, 48)
    where = rng.integers(0, n_pairs, size=batch)  # (B,)
    rows = np.arange(batch)
    x_query = np.zeros((batch, 1, D_MODEL))
    x_query[:, 0, :D_TAG] = tags[rows, where]  # (B, 1, 48): the tag, no value
    return RecallBatch(X, x_query, values[rows, where], where)


def init_params(rng: np.random.Generator, d_model: int = D_MODEL, d_k: int = D_K, *,
                std: float | None = None) -> dict[str, np.ndarray]:
    """Random ``W_q`` and ``W_k``, each ``(d_model, d_k)``, entries normal with std ``std``.

    ``std`` defaults to ``1/sqrt(d_model)``.  With ``std=1`` a query tag (unit length)
    gives ``q = x_q W_q`` entries of variance 1, the unit-variance setting of chapter 3's
    "why divide by √d_k".
    """
    check_rng(rng)
    std = 1 / np.sqrt(d_model) if std is None else positive_number(std, "std")
    return {"W_q": rng.standard_normal((d_model, d_k)) * std,
            "W_k": rng.standard_normal((d_model, d_k)) * std}



def forward(params: dict, data: RecallBatch, *, scale: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The probability of each value symbol, and the query's attention over the pairs.

    .. math:: p = \\operatorname{softmax}\\!\\left(\\gamma\\,(x_q W_q)(X W_k)^\\top\\right) X_{\\text{value}}

    with the scale :math:`\\gamma` = ``scale``, by default :math:`1/\\sqrt{d_k}`.

    Returns
    -------
    p : ndarray, shape (B, N_VALUES)
        Sums to 1 over the values.
    weights : ndarray, shape (B, n)
        The query's attention weight on each pair.
    """
    Q = data.x_query @ params["W_q"]  # (B, 1, 48) @ (48, d_k) -> (B, 1, d_k)
    K = data.X @ params["W_k"]  # (B, n, 48) @ (48, d_k) -> (B, n, d_k)
    V = data.X[..., D_TAG:]  # (B, n, 32): the one-hot values, not learned
    p, weights = scaled_dot_product_attention(Q, K, V, scale=scale)  # (B, 1, 32), (B, 1, n)
    return p[:, 0], weights[:, 0]


def loss_and_grads(params: dict, data: RecallBatch, *, scale: float | None = None) -> tuple[float, float, dict]:
    """Mean ``-log p(v*)``, the accuracy, and the gradients for ``W_q`` and ``W_k``.

    The loss's gradient with respect to the output ``p`` is ``-1 / (B p(v*))`` at the
    right value and 0 elsewhere; :func:`attnlib.backward.attention_backward` carries it
    back to ``Q`` and ``K``, and the projections' gradients are ``x^T dQ`` and ``X^T dK``.
    """
    B = len(data.target)
    rows = np.arange(B)
    Q = data.x_query @ params["W_q"]  # (B, 1, d_k)
    K = data.X @ params["W_k"]  # (B, n, d_k)
    V = data.X[..., D_TAG:]  # (B, n, 32)
    p, weights = scaled_dot_product_attention(Q, K, V, scale=scale)  # (B, 1, 32), (B, 1, n)
    p_right = p[rows, 0, data.target]  # (B,), > 0: the right pair always has some weight
    loss = -np.mean(np.log(p_right))
    accuracy = np.mean(p[:, 0].argmax(-1) == data.target)
    d_p = np.zeros_like(p)
    d_p[rows, 0, data.target] = -1.0 / (B * p_right)  # d loss / d p
    dQ, dK, _ = attention_backward(Q, K, V, d_p, scale=scale, weights=weights)  # (B, 1, d_k), (B, n, d_k)
    d = data.X.shape[-1]
    grads = {"W_q": data.x_query.reshape(-1, d).T @ dQ.reshape(-1, dQ.shape[-1]),  # (48, B) @ (B, d_k)
             "W_k": data.X.reshape(-1, d).T @ dK.reshape(-1, dK.shape[-1])}  # (48, B*n) @ (B*n, d_k)
    return float(loss), float(accuracy), grads


def accuracy(params: dict, data: RecallBatch, *, scale: float | None = None) -> float:
    """How often the most probable value is the right one."""
    p, _ = forward(params, data, scale=scale)
    return float(np.mean(p.argmax(-1) == data.target))


@dataclass
class RecallRun:
    """What :func:`train` returns: final parameters and the history."""

    params: dict
    losses: np.ndarray  # (n_steps,) training loss per step
    accuracies: np.ndarray  # (n_steps + 1,) accuracy on the held-out set before each step and at the end
    probe: RecallBatch  # one context whose attention is recorded
    checkpoints: list = field(default_factory=list)  # (step, weights (n,)) on the probe
    seconds: float = 0.0


def steps_to_accuracy(accuracies, threshold: float = 0.99) -> int | None:
    """The first step after which the held-out accuracy is at least ``threshold``."""
    above = np.flatnonzero(np.asarray(accuracies) >= threshold)
    return int(above[0]) if above.size else None


def held_out(rng: np.random.Generator, per_size: int = 200, sizes=(8, 16, 24)) -> list[RecallBatch]:
    """A fixed evaluation set: ``per_size`` problems for each number of pairs in ``sizes``."""
    return [recall_batch(per_size, n, rng) for n in sizes]


def train(rng: np.random.Generator, n_steps: int, *, batch: int = 64, pairs=PAIRS, lr: float = 1e-2,
          betas=(0.9, 0.999), evaluate=None, probe_pairs: int = 12, checkpoint_steps=(),
          scale: float | None = None, d_k: int = D_K, init_std: float | None = None) -> RecallRun:
    """Adam on W_q and W_k, with the held-out accuracy after every step.

    Parameters
    ----------
    rng : numpy.random.Generator
        Draws the parameters, the held-out set (unless given), the probe and every batch.
    n_steps : int
    batch : int
    pairs : (int, int)
        The number of pairs is drawn per batch from ``pairs[0] .. pairs[1]``.
    lr, betas : Adam's settings.
    evaluate : list of RecallBatch, optional
        The held-out set (default :func:`held_out`).
    probe_pairs : int
        Pairs in the probe context whose attention is recorded.
    checkpoint_steps : iterable of int
        Steps at which to record the probe's attention (step 0 = before training).
    scale : float, optional
        The scale of the scores, by default ``1/sqrt(d_k)``; ``scale=1.0`` trains without it.
    d_k : int
        The width of the queries and keys (the columns of ``W_q`` and ``W_k``).
    init_std : float, optional
        The standard deviation of the initial entries (:func:`init_params`).
    """
    check_rng(rng)
    n_steps = positive_int(n_steps, "n_steps", minimum=0)
    if not (isinstance(pairs, (tuple, list)) and len(pairs) == 2):
        raise TypeError(f"pairs must be two integers (low, high), got {pairs!r}")
    low, high = (positive_int(p, f"pairs[{i}]") for i, p in enumerate(pairs))
    if low > high:
        raise ValueError(f"pairs must be (low, high) with low <= high, got {pairs!r}")
    if scale is not None:
        scale = positive_number(scale, "scale")
    params = init_params(rng, d_k=d_k, std=init_std)
    evaluate = held_out(rng) if evaluate is None else evaluate
    probe = recall_batch(1, probe_pairs, rng)
    adam = nn.Adam(params, lr=lr, betas=betas)
    wanted = set(checkpoint_steps)
    losses, accuracies, checkpoints = np.zeros(n_steps), np.zeros(n_steps + 1), []

    def held_out_accuracy():
        return float(np.mean([accuracy(params, data, scale=scale) for data in evaluate]))

    start = time.perf_counter()
    for step in range(n_steps + 1):
        accuracies[step] = held_out_accuracy()
        if step in wanted:
            checkpoints.append((step, forward(params, probe, scale=scale)[1][0]))
        if step == n_steps:
            break
        data = recall_batch(batch, int(rng.integers(pairs[0], pairs[1] + 1)), rng)
        losses[step], _, grads = loss_and_grads(params, data, scale=scale)
        params = adam.step(params, grads)
    seconds = time.perf_counter() - start
    return RecallRun(params, losses, accuracies, probe, checkpoints, seconds)
