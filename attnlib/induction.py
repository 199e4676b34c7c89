"""A two-layer attention-only transformer that learns to copy: induction heads.

The page "Watch a GPT learn to copy" (under chapter 6) trains it while the reader
watches.  Each training sequence is a random run of distinct tokens ``r`` followed by
the same run again, ``r + r``.  The first half cannot be predicted; the second half
can, by a two-step circuit (Olsson et al. 2022):

1. a layer-0 head moves information between positions (a *previous-token* head:
   position j learns which token came before it; or a *duplicate-token* head:
   position i learns where the same token occurred before);
2. a layer-1 head (the *induction head*) attends from position i to the token
   right after the previous occurrence of token ``x_i`` (prefix matching:
   :func:`prefix_matching_score`), and copies it (its OV circuit raises the logit of
   the token it attends to: :func:`ov_circuit`, :func:`copying_share`).

:func:`forward_layer0_ablated` removes layer 0's output from chosen inputs of layer 1,
to test which of them the circuit needs.

Everything is plain numpy: the forward pass returns every attention weight, the
backward pass is composed from :mod:`attnlib.backward` (attention) and
:mod:`attnlib.nn` (embeddings, unembedding, cross-entropy, Adam).

Shapes: ``B`` batch, ``T`` sequence length (``2 L``), ``d`` model width, ``d_head``
the width of a head's queries, keys and values, ``n_vocab`` the vocabulary size.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from attnlib import nn
from attnlib._validate import check_rng, positive_int
from attnlib.attention import scaled_dot_product_attention
from attnlib.backward import attention_backward
from attnlib.masks import causal_mask

try:
    import fcntl  # file locks (POSIX); elsewhere two pages at once may both train, with the same result
except ImportError:  # pragma: no cover
    fcntl = None

N_VOCAB = 32
D_MODEL = 64
D_HEAD = 16
N_LAYERS = 2
LENGTHS = (8, 16)  # |r| is drawn per batch from 8..16 (inclusive)
EMBED_STD = 0.35  # the standard deviation of the embeddings' entries at the start


def _check_length(length, n_vocab: int) -> int:
    if isinstance(length, bool) or not isinstance(length, (int, np.integer)):
        raise TypeError(f"length must be an int, got {type(length).__name__}")
    if not 1 <= length <= n_vocab:
        raise ValueError(f"length must be in 1..{n_vocab} (distinct tokens from n_vocab={n_vocab}), got {length}")
    return int(length)


# --- data -------------------------------------------------------------------------------------

def repeated_sequences(batch: int, length: int, rng: np.random.Generator, n_vocab: int = N_VOCAB) -> np.ndarray:
    """A batch of sequences ``r + r``: ``length`` distinct random tokens, then the same again.

    Parameters
    ----------
    batch : int
        Number of sequences.
    length : int
        ``|r|``, the length of the run (at most ``n_vocab``, since its tokens are distinct).
    rng : numpy.random.Generator
    n_vocab : int
        Vocabulary size.

    Returns
    -------
    tokens : ndarray of int, shape (batch, 2 * length)
        ``tokens[b, i + length] == tokens[b, i]`` for ``i < length``.

    Examples
    --------
    >>> x = repeated_sequences(2, 4, np.random.default_rng(0))
    >>> x.shape, bool((x[:, :4] == x[:, 4:]).all())
    ((2, 8), True)
    """
    check_rng(rng)
    length = _check_length(length, n_vocab)
    if isinstance(batch, bool) or not isinstance(batch, (int, np.integer)) or batch < 1:
        raise ValueError(f"batch must be a positive int, got {batch!r}")
    r = np.argsort(rng.random((batch, n_vocab)), axis=1)[:, :length]  # (B, L): distinct per row
    return np.concatenate([r, r], axis=1)  # (B, 2L)


# --- the model --------------------------------------------------------------------------------

def init_params(rng: np.random.Generator, *, n_vocab: int = N_VOCAB, d_model: int = D_MODEL,
                d_head: int = D_HEAD, n_positions: int = 2 * LENGTHS[1], n_layers: int = N_LAYERS,
                embed_std: float = EMBED_STD, dtype=np.float32) -> dict[str, np.ndarray]:
    """Random parameters: embeddings, one head per layer, the unembedding.

    Keys: ``E (n_vocab, d)`` token embeddings, ``P (n_positions, d)`` learned positions,
    ``W_q1, W_k1, W_v1 (d, d_head)`` and ``W_o1 (d_head, d)`` for layer 0 (likewise
    ``...2``), and ``U (d, n_vocab)`` the unembedding.  Entries are normal with standard
    deviation ``1/sqrt(fan_in)``; the embeddings' entries have standard deviation
    ``embed_std``, so that the residual stream starts with a norm of about 4.  (In a
    sweep over 5 seeds, 1.0 sometimes left the model on its plateau for over 1,200 steps
    and 0.125 learned more slowly; 0.35 formed an induction head in every seed.)

    Examples
    --------
    >>> p = init_params(np.random.default_rng(0))
    >>> p["E"].shape, p["W_q1"].shape, p["W_o2"].shape, p["U"].shape
    ((32, 64), (64, 16), (16, 64), (64, 32))
    """
    check_rng(rng)
    d, h = d_model, d_head

    def normal(shape, std):
        return (std * rng.standard_normal(shape)).astype(dtype)

    params = {"E": normal((n_vocab, d), embed_std), "P": normal((n_positions, d), embed_std)}
    for layer in range(1, n_layers + 1):
        params[f"W_q{layer}"] = normal((d, h), d**-0.5)  # 1/sqrt(fan_in)
        params[f"W_k{layer}"] = normal((d, h), d**-0.5)
        params[f"W_v{layer}"] = normal((d, h), d**-0.5)
        params[f"W_o{layer}"] = normal((h, d), h**-0.5)
    params["U"] = normal((d, n_vocab), d**-0.5)
    return params


def n_layers_of(params: dict) -> int:
    """How many attention layers ``params`` holds."""
    n = 0
    while f"W_q{n + 1}" in params:
        n += 1
    return n


def _check_tokens(params: dict, tokens) -> np.ndarray:
    tokens = np.asarray(tokens)
    if tokens.ndim != 2 or not np.issubdtype(tokens.dtype, np.integer):
        raise ValueError(f"tokens must be a 2-D int array (batch, T), got {tokens.dtype} of shape {tokens.shape}")
    n_vocab, n_positions = params["E"].shape[0], params["P"].shape[0]
    if tokens.shape[1] > n_positions:
        raise ValueError(f"tokens have T={tokens.shape[1]} positions but the model has only {n_positions}")
    if tokens.size and (tokens.min() < 0 or tokens.max() >= n_vocab):
        raise ValueError(f"tokens must be in 0..{n_vocab - 1}, got {tokens.min()}..{tokens.max()}")
    return tokens


def forward(params: dict, tokens) -> tuple[np.ndarray, dict]:
    """Logits for the next token at every position, and everything the backward pass needs.

    .. math:: x^{(0)} = E[t] + P,\\quad x^{(l)} = x^{(l-1)} + \\operatorname{Attn}_l(x^{(l-1)})\\,W_o^{(l)},
              \\quad \\text{logits} = x^{(L)} U

    Parameters
    ----------
    params : dict
        From :func:`init_params`.
    tokens : array_like of int, shape (B, T)

    Returns
    -------
    logits : ndarray, shape (B, T, n_vocab)
        ``logits[b, i]`` predicts ``tokens[b, i + 1]``.
    cache : dict
        ``"x"``: the residual stream before each layer and at the end (list of ``(B, T, d)``);
        ``"weights"``: each layer's attention weights, shape ``(n_layers, B, T, T)``;
        ``"qkv"`` and ``"heads"``: each layer's Q, K, V and head output.

    Examples
    --------
    >>> p = init_params(np.random.default_rng(0))
    >>> logits, cache = forward(p, repeated_sequences(3, 5, np.random.default_rng(1)))
    >>> logits.shape, cache["weights"].shape
    ((3, 10, 32), (2, 3, 10, 10))
    """
    tokens = _check_tokens(params, tokens)
    T = tokens.shape[1]
    mask = causal_mask(T)  # (T, T): query i sees keys 0..i
    x = nn.embed(params["E"], tokens) + nn.embed(params["P"], np.arange(T))  # (B, T, d) + (T, d)
    xs, qkv, heads, weights = [x], [], [], []
    for layer in range(1, n_layers_of(params) + 1):
        Q = x @ params[f"W_q{layer}"]  # (B, T, d) @ (d, d_head) -> (B, T, d_head)
        K = x @ params[f"W_k{layer}"]  # (B, T, d_head)
        V = x @ params[f"W_v{layer}"]  # (B, T, d_head)
        head, w = scaled_dot_product_attention(Q, K, V, mask)  # (B, T, d_head), (B, T, T)
        x = x + head @ params[f"W_o{layer}"]  # (B, T, d_head) @ (d_head, d) -> (B, T, d)
        xs.append(x)
        qkv.append((Q, K, V))
        heads.append(head)
        weights.append(w)
    logits = nn.unembed(x, params["U"])  # (B, T, n_vocab)
    return logits, {"tokens": tokens, "mask": mask, "x": xs, "qkv": qkv, "heads": heads,
                    "weights": np.stack(weights)}


def _flat(x: np.ndarray) -> np.ndarray:
    """``(B, T, n)`` as ``(B*T, n)``: a sum over batch and positions becomes one matrix product."""
    return x.reshape(-1, x.shape[-1])


def backward(params: dict, cache: dict, d_logits: np.ndarray) -> dict[str, np.ndarray]:
    """Gradients of ``sum(logits * d_logits)`` for every parameter (same keys as ``params``).

    Runs the forward pass's steps in reverse: unembedding, then each layer from the
    last to the first (``W_o``, attention via :func:`attnlib.backward.attention_backward`,
    the three projections, and the residual connection that passes ``dx`` straight
    through), then the embeddings.
    """
    grads = {}
    xs = cache["x"]
    dx, grads["U"] = nn.unembed_backward(xs[-1], params["U"], d_logits)  # (B, T, d), (d, n_vocab)
    for layer in range(n_layers_of(params), 0, -1):
        x, (Q, K, V), head = xs[layer - 1], cache["qkv"][layer - 1], cache["heads"][layer - 1]
        grads[f"W_o{layer}"] = _flat(head).T @ _flat(dx)  # (d_head, B*T) @ (B*T, d) -> (d_head, d)
        d_head = dx @ params[f"W_o{layer}"].T  # (B, T, d) @ (d, d_head) -> (B, T, d_head)
        dQ, dK, dV = attention_backward(Q, K, V, d_head, cache["mask"],
                                        weights=cache["weights"][layer - 1])  # each (B, T, d_head)
        dx = dx.copy()  # the residual path: x feeds the next layer directly ...
        for name, dZ in (("W_q", dQ), ("W_k", dK), ("W_v", dV)):
            grads[f"{name}{layer}"] = _flat(x).T @ _flat(dZ)  # (d, B*T) @ (B*T, d_head) -> (d, d_head)
            dx += dZ @ params[f"{name}{layer}"].T  # (B, T, d_head) @ (d_head, d): ... and via Q, K, V
    T = cache["tokens"].shape[1]
    grads["E"] = nn.embed_backward(params["E"], cache["tokens"], dx)  # (n_vocab, d)
    grads["P"] = nn.embed_backward(params["P"], np.arange(T), dx.sum(axis=0))  # every sequence uses positions 0..T-1
    return {k: grads[k] for k in params}


def attention_patterns(params: dict, tokens) -> np.ndarray:
    """Every layer's attention weights on ``tokens``, shape ``(n_layers, B, T, T)``."""
    return forward(params, tokens)[1]["weights"]


# --- the loss ---------------------------------------------------------------------------------

def repeated_half(T: int) -> slice:
    """The positions whose next token is a copy: ``i = L .. 2L-2`` predict ``tokens[i + 1]``.

    (Position ``L - 1`` predicts ``r[0]``, which no circuit can know in advance.)
    """
    L = T // 2
    return slice(L, T - 1)


def loss_and_grads(params: dict, tokens) -> tuple[float, float, dict]:
    """Mean next-token cross-entropy over all positions, the same on the repeated half, and gradients.

    Returns
    -------
    loss : float
        Averaged over every position ``0 .. T-2`` of every sequence.
    repeat_loss : float
        Averaged over the repeated half only (:func:`repeated_half`); reported, not trained on.
    grads : dict
        The gradient of ``loss`` for every parameter.
    """
    logits, cache = forward(params, tokens)
    tokens = cache["tokens"]
    pred, target = logits[:, :-1], tokens[:, 1:]  # (B, T-1, n_vocab), (B, T-1)
    loss, d_pred = nn.cross_entropy(pred, target)
    half = repeated_half(tokens.shape[1])
    repeat_loss, _ = nn.cross_entropy(logits[:, half], tokens[:, half.start + 1:half.stop + 1])
    d_logits = np.zeros_like(logits)
    d_logits[:, :-1] = d_pred  # the last position has no next token
    return float(loss), float(repeat_loss), backward(params, cache, d_logits)


# --- scores: what kind of head is this? ---------------------------------------------------------

def _check_pattern(weights) -> tuple[np.ndarray, int]:
    w = np.asarray(weights, dtype=float)
    if w.ndim < 2 or w.shape[-1] != w.shape[-2]:
        raise ValueError(f"weights must have shape (..., T, T), got {w.shape}")
    T = w.shape[-1]
    if T < 2 or T % 2:
        raise ValueError(f"weights must come from an r + r sequence (even T >= 2), got T={T}")
    return w, T // 2


def offset_score(weights, offset: int) -> np.ndarray:
    """Mean weight from each position i of the second copy to position ``i - offset``.

    .. math:: \\frac{1}{L}\\sum_{i=L}^{2L-1} w_{i,\\,i-\\text{offset}}

    ``offset = L - 1`` is the induction target, ``offset = L`` the earlier occurrence
    of the same token, ``offset = 1`` the previous position.

    Parameters
    ----------
    weights : array_like, shape (..., 2L, 2L)
    offset : int
        In ``0 .. L``.

    Examples
    --------
    >>> w = np.zeros((4, 4)); w[[2, 3], [1, 2]] = 1
    >>> float(offset_score(w, 1))
    1.0
    """
    w, L = _check_pattern(weights)
    if isinstance(offset, bool) or not isinstance(offset, (int, np.integer)) or not 0 <= offset <= L:
        raise ValueError(f"offset must be an int in 0..L={L}, got {offset!r}")
    i = np.arange(L, 2 * L)
    return w[..., i, i - offset].mean(axis=-1)


def prefix_matching_score(weights) -> np.ndarray:
    """Mean weight from position i to the token after the previous occurrence of ``x_i``.

    Olsson et al. (2022) call a head an induction head when it does two things: it
    *matches prefixes* (attends to the token that followed an earlier occurrence of the
    current token) and it *copies* (raises the logit of the token it attends to).  This
    score measures the first half only, from the attention weights; :func:`ov_circuit`
    and :func:`copying_share` measure the second.

    In ``r + r`` with ``|r| = L``, token ``x_i`` (``i >= L``) occurred before at ``i - L``,
    so the target is ``i - L + 1``.

    .. math:: \\text{score} = \\frac{1}{L}\\sum_{i=L}^{2L-1} w_{i,\\,i-L+1}

    Parameters
    ----------
    weights : array_like, shape (..., 2L, 2L)

    Returns
    -------
    ndarray, shape (...)
        1 for a perfect prefix-matching head, about ``1/i`` for uniform causal weights.

    Examples
    --------
    >>> L = 3
    >>> w = np.zeros((6, 6)); w[np.arange(3, 6), np.arange(1, 4)] = 1
    >>> float(prefix_matching_score(w))
    1.0
    """
    return offset_score(weights, _check_pattern(weights)[1] - 1)


induction_score = prefix_matching_score  # the name this score had before: it measures attention only


def previous_token_score(weights) -> np.ndarray:
    """Mean weight from position j to position ``j - 1``, over the first copy ``j = 1 .. L``.

    Those are the positions the induction head reads as keys (its target ``i - L + 1``
    lies in ``1 .. L``), so that is where a previous-token head must work.

    .. math:: \\frac{1}{L}\\sum_{j=1}^{L} w_{j,\\,j-1}

    Examples
    --------
    >>> w = np.eye(4, k=-1); w[0, 0] = 1
    >>> float(previous_token_score(w))
    1.0
    """
    w, L = _check_pattern(weights)
    j = np.arange(1, L + 1)
    return w[..., j, j - 1].mean(axis=-1)


def duplicate_token_score(weights) -> np.ndarray:
    """Mean weight from position i to the previous occurrence of the same token, ``i - L``.

    .. math:: \\frac{1}{L}\\sum_{i=L}^{2L-1} w_{i,\\,i-L}

    Examples
    --------
    >>> w = np.zeros((4, 4)); w[[2, 3], [0, 1]] = 1
    >>> float(duplicate_token_score(w))
    1.0
    """
    return offset_score(weights, _check_pattern(weights)[1])


# --- copying: what a head writes when it attends to a token ------------------------------------

def ov_circuit(params: dict, layer: int) -> np.ndarray:
    """The logits a head adds, per token, when it puts all its weight on that token: ``E W_v W_o U``.

    Row ``t`` is what layer ``layer`` (1-based) writes into the logits when it attends
    fully to a position holding token ``t``, through the token embedding alone (the
    position embedding and the earlier layers' output are left out).  A head that
    *copies* raises the logit of the token it attends to: its row ``t`` is largest at
    column ``t``.  Elhage et al. (2021) call ``W_v W_o`` between embedding and
    unembedding the head's OV circuit.

    Parameters
    ----------
    params : dict
        From :func:`init_params` or :func:`train`.
    layer : int
        1 .. the number of layers.

    Returns
    -------
    ndarray, shape (n_vocab, n_vocab), float64

    Examples
    --------
    >>> ov_circuit(init_params(np.random.default_rng(0)), 2).shape
    (32, 32)
    """
    n = n_layers_of(params)
    if isinstance(layer, bool) or not isinstance(layer, (int, np.integer)) or not 1 <= layer <= n:
        raise ValueError(f"layer must be an int in 1..{n}, got {layer!r}")
    E, W_v, W_o, U = (params[k].astype(np.float64) for k in ("E", f"W_v{layer}", f"W_o{layer}", "U"))
    return E @ W_v @ W_o @ U  # (n_vocab, d) @ (d, d_head) @ (d_head, d) @ (d, n_vocab)


def _check_square(ov) -> np.ndarray:
    m = np.asarray(ov, dtype=np.float64)
    if m.ndim != 2 or m.shape[0] != m.shape[1] or m.shape[0] < 1:
        raise ValueError(f"ov must be a square (n_vocab, n_vocab) matrix, got shape {m.shape}")
    return m


def copying_share(ov) -> float:
    """The share of tokens whose own logit is the largest in their row of the OV circuit.

    1 for a head that copies every token; about ``1/n_vocab`` for a random matrix.

    Examples
    --------
    >>> copying_share(np.eye(4)), copying_share(np.eye(4)[::-1])
    (1.0, 0.0)
    """
    m = _check_square(ov)
    return float(np.mean(m.argmax(axis=1) == np.arange(len(m))))


def eigenvalue_copying(ov) -> float:
    """How positive the OV circuit's eigenvalues are: ``sum(Re λ) / sum(|λ|)``, in -1 .. 1.

    A matrix that copies (maps each token towards itself) has mostly positive
    eigenvalues, as Elhage et al. (2021) use to find copying heads; +1 when all are
    positive, -1 when all are negative, near 0 for a random matrix.

    Examples
    --------
    >>> eigenvalue_copying(np.diag([1.0, 2.0])), eigenvalue_copying(-np.eye(3))
    (1.0, -1.0)
    """
    lam = np.linalg.eigvals(_check_square(ov))
    return float(lam.real.sum() / np.abs(lam).sum())


# --- ablation: which of layer 1's inputs needs layer 0? ------------------------------------------

ABLATION_INPUTS = ("queries", "keys", "values", "residual")


def forward_layer0_ablated(params: dict, tokens, *, replace: str = "zero", positions=None,
                           into=ABLATION_INPUTS) -> tuple[np.ndarray, np.ndarray]:
    """The two-layer model's forward pass with layer 0's output removed from some of layer 1's inputs.

    Layer 0 adds ``o = Attn_0(x) W_o^{(0)}`` to the residual stream.  Here ``o`` is replaced
    by zeros (``replace="zero"``) or by its mean over the batch at each position
    (``replace="mean"``, a *mean-ablation*: it keeps what layer 0 writes on average and
    removes only what depends on the sequence), at the chosen ``positions`` only, and only
    in the inputs named in ``into``: layer 1's ``"queries"``, ``"keys"``, ``"values"``, and
    the ``"residual"`` path that carries ``o`` straight to the unembedding.  With every input
    and every position this is the model with layer 0 silenced.

    Parameters
    ----------
    params : dict
        A two-layer model (:func:`init_params`).
    tokens : array_like of int, shape (B, T)
    replace : {"zero", "mean"}
    positions : array_like of bool, shape (T,), optional
        Where to replace ``o``; default every position.
    into : sequence of str
        Any of :data:`ABLATION_INPUTS`.

    Returns
    -------
    logits : ndarray, shape (B, T, n_vocab)
    weights : ndarray, shape (2, B, T, T)
        Both layers' attention weights (layer 0's are unchanged by the ablation).

    Examples
    --------
    >>> p = init_params(np.random.default_rng(0))
    >>> x = repeated_sequences(4, 5, np.random.default_rng(1))
    >>> kept, _ = forward_layer0_ablated(p, x, positions=np.zeros(10, bool))
    >>> bool(np.allclose(kept, forward(p, x)[0]))
    True
    """
    tokens = _check_tokens(params, tokens)
    if n_layers_of(params) != 2:
        raise ValueError(f"params must hold a two-layer model, got {n_layers_of(params)} layers")
    if replace not in ("zero", "mean"):
        raise ValueError(f'replace must be "zero" or "mean", got {replace!r}')
    into = (into,) if isinstance(into, str) else tuple(into)
    unknown = set(into) - set(ABLATION_INPUTS)
    if unknown or not into:
        raise ValueError(f"into must name some of {ABLATION_INPUTS}, got {into!r}")
    T = tokens.shape[1]
    positions = np.ones(T, bool) if positions is None else np.asarray(positions)
    if positions.shape != (T,) or positions.dtype != bool:
        raise ValueError(f"positions must be a bool array of shape ({T},), got {positions.dtype} {positions.shape}")
    mask = causal_mask(T)  # (T, T)
    x0 = nn.embed(params["E"], tokens) + nn.embed(params["P"], np.arange(T))  # (B, T, d)
    head0, w0 = scaled_dot_product_attention(x0 @ params["W_q1"], x0 @ params["W_k1"], x0 @ params["W_v1"], mask)
    o = head0 @ params["W_o1"]  # (B, T, d_head) @ (d_head, d) -> (B, T, d): what layer 0 writes
    stand_in = np.zeros_like(o) if replace == "zero" else np.broadcast_to(o.mean(axis=0), o.shape)  # (B, T, d)
    ablated = x0 + np.where(positions[:, None], stand_in, o)  # (B, T, d)
    whole = x0 + o
    x_q, x_k, x_v, x_r = (ablated if name in into else whole for name in ABLATION_INPUTS)
    head1, w1 = scaled_dot_product_attention(x_q @ params["W_q2"], x_k @ params["W_k2"], x_v @ params["W_v2"], mask)
    x = x_r + head1 @ params["W_o2"]  # (B, T, d)
    return nn.unembed(x, params["U"]), np.stack([w0, w1])


def repeat_loss(logits: np.ndarray, tokens) -> float:
    """Mean cross-entropy on the repeated half (:func:`repeated_half`) of ``r + r`` sequences."""
    tokens = np.asarray(tokens)
    half = repeated_half(tokens.shape[1])
    return float(nn.cross_entropy(logits[:, half], tokens[:, half.start + 1:half.stop + 1])[0])


# --- training ---------------------------------------------------------------------------------

@dataclass
class Checkpoint:
    """The model at one step: its loss and both layers' attention on the probe sequence."""

    step: int
    loss: float
    repeat_loss: float
    weights: np.ndarray  # (n_layers, T, T) on the probe


@dataclass
class TrainingRun:
    """What :func:`train` returns: the final parameters and the history."""

    params: dict
    probe: np.ndarray  # (T,) the fixed probe sequence
    losses: np.ndarray  # (n_steps,) training loss of each step's batch
    repeat_losses: np.ndarray  # (n_steps,)
    checkpoints: list[Checkpoint] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def checkpoint_steps(self) -> np.ndarray:
        return np.array([c.step for c in self.checkpoints])

    def scores(self, layer: int, score) -> np.ndarray:
        """``score`` (e.g. :func:`prefix_matching_score`) of layer ``layer`` (1-based) at each checkpoint."""
        return np.array([float(score(c.weights[layer - 1])) for c in self.checkpoints])

    @property
    def ms_per_step(self) -> float:
        return 1000 * self.seconds / max(len(self.losses), 1)


def steps_to(values, threshold: float, *, window: int = 25) -> int | None:
    """The first step at which the running mean of ``window`` values falls below ``threshold``."""
    v = np.asarray(values, dtype=float)
    if len(v) < window:
        return None
    running = np.convolve(v, np.ones(window) / window, mode="valid")  # running[k]: steps k .. k+window-1
    below = np.flatnonzero(running < threshold)
    return int(below[0] + window) if below.size else None


def train(rng: np.random.Generator, n_steps: int, *, batch: int = 32, lengths=LENGTHS, lr: float = 3e-3,
          betas=(0.9, 0.98), checkpoint_every: int = 25, probe=None, params=None) -> TrainingRun:
    """Train the two-layer model on ``r + r`` sequences with Adam, recording checkpoints.

    Parameters
    ----------
    rng : numpy.random.Generator
        Draws the initial parameters (unless given), every batch and the probe.
    n_steps : int
        Adam steps.
    batch : int
        Sequences per step.
    lengths : int or (int, int)
        ``|r|``: drawn per batch from ``lengths[0] .. lengths[1]`` (inclusive), or fixed.
    lr, betas : float, (float, float)
        Adam's settings.
    checkpoint_every : int
        Record a :class:`Checkpoint` at step 0 and every ``checkpoint_every`` steps.
    probe : array_like of int, shape (2L,), optional
        The sequence whose attention is recorded; default an ``r + r`` of the middle length.

    Returns
    -------
    TrainingRun
    """
    check_rng(rng)
    n_steps = positive_int(n_steps, "n_steps", minimum=0)
    checkpoint_every = positive_int(checkpoint_every, "checkpoint_every")
    lo, hi = (lengths, lengths) if isinstance(lengths, (int, np.integer)) else lengths
    if not 1 <= lo <= hi:
        raise ValueError(f"lengths must be 1 <= low <= high, got {lengths!r}")
    params = init_params(rng) if params is None else {k: v.copy() for k, v in params.items()}
    if probe is None:
        probe = repeated_sequences(1, (lo + hi) // 2, rng)[0]
    probe = np.asarray(probe)
    adam = nn.Adam(params, lr=lr, betas=betas)
    losses, repeat_losses, checkpoints = np.zeros(n_steps), np.zeros(n_steps), []

    def record(step, loss, repeat_loss):
        w = attention_patterns(params, probe[None])[:, 0]  # (n_layers, T, T)
        checkpoints.append(Checkpoint(step, loss, repeat_loss, w))

    start = time.perf_counter()
    record(0, np.nan, np.nan)
    for step in range(n_steps):
        tokens = repeated_sequences(batch, int(rng.integers(lo, hi + 1)), rng)
        losses[step], repeat_losses[step], grads = loss_and_grads(params, tokens)
        params = adam.step(params, grads)
        if (step + 1) % checkpoint_every == 0:
            record(step + 1, losses[step], repeat_losses[step])
    seconds = time.perf_counter() - start
    return TrainingRun(params, probe, losses, repeat_losses, checkpoints, seconds)


# --- one training run, shared by the pages that show it ----------------------------------------


def _source_digest() -> str:
    """A digest of attnlib's source and numpy's version: a cached run is reused only by the same code."""
    root = Path(__file__).resolve().parent
    digest = hashlib.sha256(np.__version__.encode())
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _save_run(run: TrainingRun, path: Path) -> None:
    arrays = {f"param_{k}": v for k, v in run.params.items()}
    arrays.update(probe=run.probe, losses=run.losses, repeat_losses=run.repeat_losses,
                  seconds=np.array(run.seconds),
                  ck_step=np.array([c.step for c in run.checkpoints]),
                  ck_loss=np.array([c.loss for c in run.checkpoints]),
                  ck_repeat_loss=np.array([c.repeat_loss for c in run.checkpoints]),
                  ck_weights=np.stack([c.weights for c in run.checkpoints]))
    partial = path.with_name(f"{path.name}.{os.getpid()}.partial")
    with open(partial, "wb") as f:
        np.savez(f, **arrays)
    os.replace(partial, path)  # readers see the whole file or none


def _load_run(path: Path) -> TrainingRun:
    with np.load(path, allow_pickle=False) as z:
        params = {k.removeprefix("param_"): z[k] for k in z.files if k.startswith("param_")}
        checkpoints = [Checkpoint(int(s), float(loss), float(rep), w) for s, loss, rep, w
                       in zip(z["ck_step"], z["ck_loss"], z["ck_repeat_loss"], z["ck_weights"], strict=True)]
        return TrainingRun(params, z["probe"], z["losses"], z["repeat_losses"], checkpoints, float(z["seconds"]))


def train_shared(seed: int, n_steps: int, *, cache_dir=None, **options) -> TrainingRun:
    """``train(np.random.default_rng(seed), n_steps, **options)``, trained once and then read from disk.

    Two book pages show the same run; each runs in its own kernel, at the same time. The first
    call trains and saves the run; a call that arrives meanwhile waits for it (a file lock), and
    later calls read it. A saved run is used only for the same arguments, the same attnlib source
    and the same numpy version, so it is always the run that ``train`` would give.

    Parameters
    ----------
    seed : int
        Seeds the generator that :func:`train` draws everything from.
    n_steps : int
        Adam steps.
    cache_dir : str or Path, optional
        Where runs are saved; default ``$ATTNLIB_CACHE``, else ``attnlib-cache`` in the temp folder.
    **options
        Passed to :func:`train` (``batch``, ``lengths``, ``lr``, ``betas``, ``checkpoint_every``, ``probe``).

    Returns
    -------
    TrainingRun
        ``seconds`` is the time the training took when it ran.
    """
    seed = positive_int(seed, "seed", minimum=0)
    if "params" in options:
        raise ValueError("train_shared starts from the seed's own initial parameters; got params")
    key = repr((seed, n_steps, sorted((k, np.asarray(v).tolist()) for k, v in options.items()), _source_digest()))
    name = f"induction-{hashlib.sha256(key.encode()).hexdigest()[:24]}.npz"
    folder = Path(cache_dir or os.environ.get("ATTNLIB_CACHE") or Path(tempfile.gettempdir()) / "attnlib-cache")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    with open(folder / f"{name}.lock", "w") as lock:
        if fcntl is not None:
            fcntl.flock(lock, fcntl.LOCK_EX)  # one trains; the others wait, then read
        if path.exists():
            try:
                return _load_run(path)
            except (OSError, ValueError, KeyError):  # a damaged file: train again and replace it
                pass
        run = train(np.random.default_rng(seed), n_steps, **options)
        _save_run(run, path)
        return run
