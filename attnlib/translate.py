"""A tiny encoder–decoder that learns to translate a toy English into a toy French.

The page "Watch a translator learn to align" (under chapter 4) trains it while the book
is built.  The language is small on purpose: 8 nouns, 6 colours, 4 verbs and the
function words "the", "a", "and".  French translates word for word, except that a
colour adjective moves behind its noun: "the black cat" becomes "le chat noir".  So the
alignment between the two sentences is known exactly, and it *crosses* at every
adjective–noun pair.

The model (one head everywhere, no feed-forward layers, no layer norm):

- encoder: :math:`x = E_{src}[s] + P_{src}`, then :math:`x \\leftarrow x + \\operatorname{MHA}(x, x)`
  (self-attention over the source, padding masked);
- decoder: :math:`y = E_{tgt}[t] + P_{tgt}`, then :math:`y \\leftarrow y + \\operatorname{MHA}(y, y)`
  (causal self-attention), then :math:`y \\leftarrow y + \\operatorname{MHA}(y, x)` (cross-attention:
  queries from the French prefix, keys and values from the encoder's output), and
  :math:`\\text{logits} = y\\,U`.

Every attention is one head, :func:`attend` (equal to :func:`attnlib.multi_head_attention`
with ``n_heads=1``), and its gradient goes through :func:`attnlib.backward.attention_backward`;
embeddings, the unembedding, the loss and Adam come from :mod:`attnlib.nn`.

Shapes: ``B`` batch, ``n`` source length, ``m`` target length (with the start token),
``d`` model width.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
from threadpoolctl import threadpool_limits

from attnlib import nn
from attnlib._validate import check_rng, positive_int
from attnlib.attention import scaled_dot_product_attention
from attnlib.backward import attention_backward
from attnlib.masks import causal_mask, padding_mask

# --- the language -----------------------------------------------------------------------------

#: English noun -> French noun (all masculine, so that "the" is always "le").
NOUNS = {"cat": "chat", "dog": "chien", "duck": "canard", "horse": "cheval",
         "fish": "poisson", "wolf": "loup", "rabbit": "lapin", "fox": "renard"}
#: English colour -> French colour (masculine forms).
COLOURS = {"black": "noir", "white": "blanc", "red": "rouge", "green": "vert", "blue": "bleu", "grey": "gris"}
#: English verb -> French verb.
VERBS = {"sees": "voit", "follows": "suit", "likes": "aime", "bites": "mord"}
#: Function words: English -> French.
FUNCTION_WORDS = {"the": "le", "a": "un", "and": "et"}

PAD, BOS, EOS = "<pad>", "<s>", "</s>"
SPECIALS = (PAD, BOS, EOS)
#: Token ids: the special tokens first (PAD = 0), then the words.
SRC_VOCAB = SPECIALS + tuple(FUNCTION_WORDS) + tuple(NOUNS) + tuple(COLOURS) + tuple(VERBS)
TGT_VOCAB = SPECIALS + tuple(FUNCTION_WORDS.values()) + tuple(NOUNS.values()) + tuple(COLOURS.values()) \
    + tuple(VERBS.values())
SRC_ID = {w: i for i, w in enumerate(SRC_VOCAB)}
TGT_ID = {w: i for i, w in enumerate(TGT_VOCAB)}
DICTIONARY = {**NOUNS, **COLOURS, **VERBS, **FUNCTION_WORDS}

#: The class of each English word: what the alignment scores are split by.
WORD_CLASS = {**{w: "noun" for w in NOUNS}, **{w: "colour" for w in COLOURS},
              **{w: "verb" for w in VERBS}, **{w: "function" for w in FUNCTION_WORDS}}

MAX_PHRASES = 2  # noun phrases on each side of the verb, joined by "and"
MAX_SRC = 2 * (3 * MAX_PHRASES + MAX_PHRASES - 1) + 1  # 15 words: "the black cat and a red fox sees ..."
D_MODEL = 64
EMBED_STD = 0.35
LR = 3e-3
ENCODER_LR_SCALE = 0.3  # the encoder's attention learns at 0.3 times the rate (see train)




@dataclass(frozen=True)
class Pair:
    """One sentence and its translation, with the alignment.

    ``alignment[i]`` is the position in ``source`` of the English word that
    ``target[i]`` translates.
    """

    source: tuple[str, ...]
    target: tuple[str, ...]
    alignment: tuple[int, ...]

    @property
    def n_adjectives(self) -> int:
        """How many adjective–noun pairs the sentence has (each one crosses)."""
        return sum(WORD_CLASS[w] == "colour" for w in self.source)


def translate_words(source) -> Pair:
    """The French of an English sentence of this language, word for word with the adjectives moved.

    Examples
    --------
    >>> p = translate_words("the black cat sees a dog".split())
    >>> " ".join(p.target), p.alignment
    ('le chat noir voit un chien', (0, 2, 1, 3, 4, 5))
    """
    if isinstance(source, str):
        raise TypeError(f"source must be a sequence of words, got the string {source!r}; use .split()")
    source = tuple(source)
    unknown = [w for w in source if w not in DICTIONARY]
    if unknown:
        raise ValueError(f"unknown English words {unknown}; the vocabulary is {sorted(DICTIONARY)}")
    order = list(range(len(source)))
    for j in range(len(source) - 1):
        if WORD_CLASS[source[j]] == "colour":
            if WORD_CLASS[source[j + 1]] != "noun":
                raise ValueError(f"a colour must be followed by a noun, got {source[j]!r} {source[j + 1]!r}")
            order[j], order[j + 1] = j + 1, j  # French: noun, then colour
    if source and WORD_CLASS[source[-1]] == "colour":
        raise ValueError(f"a colour must be followed by a noun, got {source[-1]!r} at the end")
    return Pair(source, tuple(DICTIONARY[source[j]] for j in order), tuple(order))


def random_sentence(rng: np.random.Generator, *, n_adjectives: int | None = None) -> Pair:
    """One random sentence: subject, verb, object; each side one or two noun phrases joined by "and".

    A noun phrase is a determiner, sometimes a colour, and a noun.  Every sentence has at
    least one colour (so at least one crossing); ``n_adjectives`` fixes how many.

    Examples
    --------
    >>> p = random_sentence(np.random.default_rng(0), n_adjectives=2)
    >>> p.n_adjectives, len(p.source) == len(p.target)
    (2, True)
    """
    check_rng(rng)
    while True:
        words = []
        for side in range(2):
            for k in range(int(rng.integers(1, MAX_PHRASES + 1))):
                if k:
                    words.append("and")
                words.append(("the", "a")[rng.integers(2)])
                if rng.random() < 0.5:
                    words.append(tuple(COLOURS)[rng.integers(len(COLOURS))])
                words.append(tuple(NOUNS)[rng.integers(len(NOUNS))])
            if side == 0:
                words.append(tuple(VERBS)[rng.integers(len(VERBS))])
        pair = translate_words(words)
        wanted = pair.n_adjectives >= 1 if n_adjectives is None else pair.n_adjectives == n_adjectives
        if wanted:
            return pair


def sample_pairs(n: int, rng: np.random.Generator, *, exclude=frozenset(), n_adjectives: int | None = None,
                 distinct: bool = False) -> list[Pair]:
    """``n`` random sentence pairs, none of whose English sentences is in ``exclude``.

    With ``distinct=True`` no sentence occurs twice (for a held-out set).
    """
    n = positive_int(n, "n")
    check_rng(rng)
    if n_adjectives is not None:
        positive_int(n_adjectives, "n_adjectives")
        if n_adjectives > 2 * MAX_PHRASES:
            raise ValueError(f"n_adjectives must be at most {2 * MAX_PHRASES} (one per noun phrase), "
                             f"got {n_adjectives}")
    pairs, seen = [], set()
    while len(pairs) < n:
        p = random_sentence(rng, n_adjectives=n_adjectives)
        if p.source in exclude or (distinct and p.source in seen):
            continue
        seen.add(p.source)
        pairs.append(p)
    return pairs


@dataclass
class Batch:
    """Token ids of a batch of pairs, padded with ``PAD`` (id 0) at the end.

    ``src (B, n)``; ``tgt_in (B, m)`` = start token + French; ``tgt_out (B, m)`` = French +
    end token (what each decoder position must predict); ``src_len (B,)``; ``tgt_len (B,)``
    the number of predicted tokens (French words + 1); ``alignment (B, m)`` the source
    position each predicted word translates (-1 for the end token and padding).
    """

    src: np.ndarray
    tgt_in: np.ndarray
    tgt_out: np.ndarray
    src_len: np.ndarray
    tgt_len: np.ndarray
    alignment: np.ndarray
    pairs: list


def make_batch(pairs) -> Batch:
    """Token ids for a list of :class:`Pair` (see :class:`Batch`)."""
    pairs = list(pairs)
    if not pairs or not all(isinstance(p, Pair) for p in pairs):
        raise TypeError("pairs must be a non-empty list of Pair (from sample_pairs or translate_words)")
    B = len(pairs)
    n = max(len(p.source) for p in pairs)
    m = max(len(p.target) for p in pairs) + 1
    src = np.zeros((B, n), dtype=np.int64)
    tgt_in = np.zeros((B, m), dtype=np.int64)
    tgt_out = np.zeros((B, m), dtype=np.int64)
    alignment = np.full((B, m), -1, dtype=np.int64)
    for b, p in enumerate(pairs):
        src[b, :len(p.source)] = [SRC_ID[w] for w in p.source]
        ids = [TGT_ID[w] for w in p.target]
        tgt_in[b, :len(ids) + 1] = [TGT_ID[BOS], *ids]
        tgt_out[b, :len(ids) + 1] = [*ids, TGT_ID[EOS]]
        alignment[b, :len(ids)] = p.alignment
    src_len = np.array([len(p.source) for p in pairs])
    tgt_len = np.array([len(p.target) + 1 for p in pairs])
    return Batch(src, tgt_in, tgt_out, src_len, tgt_len, alignment, pairs)


# --- the model --------------------------------------------------------------------------------

ATTENTIONS = ("enc", "dec", "cross")  # encoder self-attention, decoder self-attention, cross-attention


def init_params(rng: np.random.Generator, *, d_model: int = D_MODEL, cross_attention: bool = True,
                source_positions: bool = True, zero_encoder_output: bool = True, embed_std: float = EMBED_STD,
                dtype=np.float32) -> dict:
    """Random parameters of the translator.

    Keys: ``E_src (n_src_vocab, d)``, ``P_src (MAX_SRC, d)`` (left out when
    ``source_positions=False``), ``E_tgt (n_tgt_vocab, d)``, ``P_tgt (MAX_SRC + 1, d)``,
    ``<attn>.W_q, .W_k, .W_v, .W_o (d, d)`` for ``attn`` in ``enc``, ``dec`` and ``cross``
    (``cross`` left out when ``cross_attention=False``), and ``U (d, n_tgt_vocab)``.
    Entries are normal with standard deviation ``1/sqrt(fan_in)`` (embeddings:
    ``embed_std``), except ``enc.W_o``, which starts at zero (unless
    ``zero_encoder_output=False``): at step 0 the encoder's output is its input, each
    source position holding its own word and position.

    Examples
    --------
    >>> p = init_params(np.random.default_rng(0))
    >>> p["E_src"].shape, p["cross.W_q"].shape, p["U"].shape
    ((24, 64), (64, 64), (64, 24))
    """
    check_rng(rng)
    d = positive_int(d_model, "d_model")

    def normal(shape, std):
        return (std * rng.standard_normal(shape)).astype(dtype)

    params = {"E_src": normal((len(SRC_VOCAB), d), embed_std)}
    if source_positions:
        params["P_src"] = normal((MAX_SRC, d), embed_std)
    params["E_tgt"] = normal((len(TGT_VOCAB), d), embed_std)
    params["P_tgt"] = normal((MAX_SRC + 1, d), embed_std)
    for attn in ATTENTIONS:
        if attn == "cross" and not cross_attention:
            continue
        for w in ("W_q", "W_k", "W_v", "W_o"):
            params[f"{attn}.{w}"] = normal((d, d), d**-0.5)
    if zero_encoder_output:
        params["enc.W_o"] = np.zeros((d, d), dtype=dtype)  # the encoder starts as the identity: x = x0
    params["U"] = normal((d, len(TGT_VOCAB)), d**-0.5)
    return params


def _flat(x: np.ndarray) -> np.ndarray:
    """``(B, T, k)`` as ``(B*T, k)``: a sum over batch and positions becomes one matrix product."""
    return x.reshape(-1, x.shape[-1])


def attend(params: dict, name: str, X_q: np.ndarray, X_kv: np.ndarray, mask) -> tuple[np.ndarray, dict]:
    """One attention head with its output projection: ``Attention(X_q W_q, X_kv W_k, X_kv W_v) W_o``.

    The same as :func:`attnlib.multi_head_attention` with one head (a test checks it),
    written out so that the backward pass can reuse ``Q, K, V`` and the head's output.

    Returns
    -------
    out : ndarray, shape (B, n_q, d)
    saved : dict
        What :func:`attend_backward` needs: the inputs, ``Q, K, V``, the head's output, the
        mask and the weights ``(B, n_q, n_k)``.
    """
    Q = X_q @ params[f"{name}.W_q"]  # (B, n_q, d) @ (d, d) -> (B, n_q, d)
    K = X_kv @ params[f"{name}.W_k"]  # (B, n_k, d)
    V = X_kv @ params[f"{name}.W_v"]  # (B, n_k, d)
    head, weights = scaled_dot_product_attention(Q, K, V, mask)  # (B, n_q, d), (B, n_q, n_k)
    out = head @ params[f"{name}.W_o"]  # (B, n_q, d) @ (d, d) -> (B, n_q, d)
    return out, {"X_q": X_q, "X_kv": X_kv, "Q": Q, "K": K, "V": V, "head": head, "mask": mask, "weights": weights}


def attend_backward(params: dict, name: str, saved: dict, d_out: np.ndarray, grads: dict):
    """Gradients of :func:`attend`: store ``dW_q, dW_k, dW_v, dW_o`` in ``grads``, return ``dX_q, dX_kv``.

    Each linear map ``Y = X W`` goes back as ``dX = dY W^T``, ``dW = X^T dY`` (summed over
    the batch and the positions); the attention itself through
    :func:`attnlib.backward.attention_backward`.
    """
    grads[f"{name}.W_o"] = _flat(saved["head"]).T @ _flat(d_out)  # (d, B*n_q) @ (B*n_q, d) -> (d, d)
    d_head = d_out @ params[f"{name}.W_o"].T  # (B, n_q, d)
    dQ, dK, dV = attention_backward(saved["Q"], saved["K"], saved["V"], d_head, saved["mask"],
                                    weights=saved["weights"])  # the forward's weights: nothing recomputed
    grads[f"{name}.W_q"] = _flat(saved["X_q"]).T @ _flat(dQ)  # (d, B*n_q) @ (B*n_q, d) -> (d, d)
    grads[f"{name}.W_k"] = _flat(saved["X_kv"]).T @ _flat(dK)  # (d, B*n_k) @ (B*n_k, d) -> (d, d)
    grads[f"{name}.W_v"] = _flat(saved["X_kv"]).T @ _flat(dV)
    dX_q = dQ @ params[f"{name}.W_q"].T  # (B, n_q, d)
    dX_kv = dK @ params[f"{name}.W_k"].T + dV @ params[f"{name}.W_v"].T  # (B, n_k, d): keys and values
    return dX_q, dX_kv


def _check_ids(ids, vocab, name: str, max_len: int) -> np.ndarray:
    ids = np.asarray(ids)
    if ids.ndim != 2 or not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(f"{name} must be a 2-D int array (batch, length), got {ids.dtype} of shape {ids.shape}")
    if ids.shape[1] > max_len:
        raise ValueError(f"{name} has length {ids.shape[1]} but the model has only {max_len} positions")
    if ids.size and (ids.min() < 0 or ids.max() >= len(vocab)):
        raise ValueError(f"{name} must be token ids in 0..{len(vocab) - 1}, got {ids.min()}..{ids.max()}")
    return ids


def forward(params: dict, src, tgt_in) -> tuple[np.ndarray, dict]:
    """Logits for every target position, and everything the backward pass needs.

    Parameters
    ----------
    params : dict
        From :func:`init_params`.
    src : array_like of int, shape (B, n)
        Source token ids, padded with 0 (``PAD``) at the end.
    tgt_in : array_like of int, shape (B, m)
        The start token followed by the French prefix (teacher forcing).

    Returns
    -------
    logits : ndarray, shape (B, m, n_tgt_vocab)
        ``logits[b, i]`` predicts target word ``i`` (the token after ``tgt_in[b, i]``).
    cache : dict
        The residual streams, masks and attention weights: ``"cross_weights"`` has shape
        ``(B, m, n)`` (absent without cross-attention), ``"enc_weights"`` ``(B, n, n)``,
        ``"dec_weights"`` ``(B, m, m)``.

    Examples
    --------
    >>> p = init_params(np.random.default_rng(0))
    >>> b = make_batch(sample_pairs(3, np.random.default_rng(1)))
    >>> logits, cache = forward(p, b.src, b.tgt_in)
    >>> B, n, m = b.src.shape[0], b.src.shape[1], b.tgt_in.shape[1]
    >>> logits.shape == (B, m, len(TGT_VOCAB)), cache["cross_weights"].shape == (B, m, n)
    (True, True)
    """
    src = _check_ids(src, SRC_VOCAB, "src", MAX_SRC)
    tgt_in = _check_ids(tgt_in, TGT_VOCAB, "tgt_in", MAX_SRC + 1)
    if src.shape[0] != tgt_in.shape[0]:
        raise ValueError(f"src and tgt_in must have the same batch size, got {src.shape[0]} and {tgt_in.shape[0]}")
    n, m = src.shape[1], tgt_in.shape[1]
    src_len = (src != 0).sum(axis=1)  # (B,): padding only at the end
    if np.any(src_len == 0):
        raise ValueError("every source sentence needs at least one word (a row of src is all padding)")
    src_mask = padding_mask(src_len, n)  # (B, 1, n): key j is a real word
    dec_mask = causal_mask(m)  # (m, m): target position i sees 0..i

    x0 = nn.embed(params["E_src"], src)  # (B, n, d)
    if "P_src" in params:
        x0 = x0 + nn.embed(params["P_src"], np.arange(n))  # + (n, d)
    enc_out, enc = attend(params, "enc", x0, x0, src_mask)  # (B, n, d): source positions look at each other
    x = x0 + enc_out  # (B, n, d): the encoder's output

    y0 = nn.embed(params["E_tgt"], tgt_in) + nn.embed(params["P_tgt"], np.arange(m))  # (B, m, d)
    dec_out, dec = attend(params, "dec", y0, y0, dec_mask)  # (B, m, d): the French prefix looks at itself
    y1 = y0 + dec_out
    cache = {"src": src, "tgt_in": tgt_in, "x": x, "y2": y1, "enc": enc, "dec": dec,
             "enc_weights": enc["weights"], "dec_weights": dec["weights"]}
    if "cross.W_q" in params:
        cross_out, cross = attend(params, "cross", y1, x, src_mask)  # (B, m, d): French asks, English answers
        cache.update(cross=cross, cross_weights=cross["weights"], y2=y1 + cross_out)
    logits = nn.unembed(cache["y2"], params["U"])  # (B, m, n_tgt_vocab)
    return logits, cache


def backward(params: dict, cache: dict, d_logits: np.ndarray) -> dict[str, np.ndarray]:
    """Gradients of ``sum(logits * d_logits)`` for every parameter (same keys as ``params``).

    The forward pass in reverse: unembedding; cross-attention (its gradient splits into
    the decoder's stream, ``dX_q``, and the encoder's output, ``dX_kv``); decoder
    self-attention (``dX_q + dX_kv``: the same stream asks and answers); the target
    embeddings; then the encoder's self-attention and the source embeddings.  Each
    residual connection passes its gradient through unchanged and adds the branch's.
    """
    grads = {}
    dy2, grads["U"] = nn.unembed_backward(cache["y2"], params["U"], d_logits)  # (B, m, d)
    dy1, dx = dy2, np.zeros_like(cache["x"])  # the encoder's output gets its gradient only from cross-attention
    if "cross.W_q" in params:
        dq, dkv = attend_backward(params, "cross", cache["cross"], dy2, grads)
        dy1, dx = dy2 + dq, dkv  # residual + branch; keys and values came from the encoder
    dq, dkv = attend_backward(params, "dec", cache["dec"], dy1, grads)
    dy0 = dy1 + dq + dkv  # (B, m, d): the same stream asked and answered
    m = cache["tgt_in"].shape[1]
    grads["E_tgt"] = nn.embed_backward(params["E_tgt"], cache["tgt_in"], dy0)
    grads["P_tgt"] = nn.embed_backward(params["P_tgt"], np.arange(m), dy0.sum(axis=0))

    dq, dkv = attend_backward(params, "enc", cache["enc"], dx, grads)
    dx0 = dx + dq + dkv  # (B, n, d)
    grads["E_src"] = nn.embed_backward(params["E_src"], cache["src"], dx0)
    if "P_src" in params:
        grads["P_src"] = nn.embed_backward(params["P_src"], np.arange(cache["src"].shape[1]), dx0.sum(axis=0))
    return {k: grads[k] for k in params}


def loss(params: dict, batch: Batch) -> float:
    """Mean cross-entropy of the target words and end tokens (padding left out), forward pass only."""
    logits, _ = forward(params, batch.src, batch.tgt_in)
    return nn.cross_entropy(logits, batch.tgt_out, _target_weights(batch))[0]


def _target_weights(batch: Batch) -> np.ndarray:
    m = batch.tgt_in.shape[1]
    return (np.arange(m)[None, :] < batch.tgt_len[:, None]).astype(float)  # (B, m): 1 on real targets


def loss_and_grads(params: dict, batch: Batch) -> tuple[float, dict]:
    """The mean cross-entropy over every predicted token (French words and the end token), and its gradients."""
    logits, cache = forward(params, batch.src, batch.tgt_in)
    value, d_logits = nn.cross_entropy(logits, batch.tgt_out, _target_weights(batch))
    return value, backward(params, cache, d_logits.astype(logits.dtype, copy=False))


# --- using the model ----------------------------------------------------------------------------

def greedy_decode(params: dict, src) -> np.ndarray:
    """Translate by always taking the likeliest next word; returns ids ``(B, MAX_SRC + 1)``.

    Each row holds the French word ids and then the end token; after the end token it is padding.
    """
    src = _check_ids(src, SRC_VOCAB, "src", MAX_SRC)
    B = src.shape[0]
    out = np.zeros((B, MAX_SRC + 1), dtype=np.int64)
    tgt_in = np.full((B, 1), TGT_ID[BOS], dtype=np.int64)
    done = np.zeros(B, bool)
    for i in range(MAX_SRC + 1):
        logits, _ = forward(params, src, tgt_in)
        nxt = logits[:, -1].argmax(axis=-1)  # (B,)
        nxt[done] = 0
        out[:, i] = nxt
        done |= nxt == TGT_ID[EOS]
        if done.all() or i == MAX_SRC:
            break
        tgt_in = np.concatenate([tgt_in, nxt[:, None]], axis=1)  # (B, i + 2)
    return out


def ids_to_words(ids) -> list[str]:
    """French words of one decoded row, up to (not including) the end token."""
    words = []
    for t in ids:
        if t == TGT_ID[EOS] or t == 0:
            break
        words.append(TGT_VOCAB[t])
    return words


def sentence_accuracy(params: dict, pairs) -> float:
    """The share of sentences whose greedy translation is exactly right (every word, then the end)."""
    batch = make_batch(pairs)
    decoded = greedy_decode(params, batch.src)
    right = [list(row[:len(p.target) + 1]) == [TGT_ID[w] for w in p.target] + [TGT_ID[EOS]]
             for row, p in zip(decoded, pairs, strict=True)]  # every word, then the end token
    return float(np.mean(right))


def word_accuracy(params: dict, pairs) -> dict[str, float]:
    """The share of French words predicted right when the decoder is given the correct prefix.

    Split by the class of the English word each French word translates: ``"content"``
    (nouns, colours, verbs) and ``"function"`` ("le", "un", "et").  For a decoder without
    cross-attention this measures what the French prefix alone can predict.
    """
    batch = make_batch(pairs)
    logits, _ = forward(params, batch.src, batch.tgt_in)
    right = logits.argmax(axis=-1) == batch.tgt_out  # (B, m)
    hits = {"content": [], "function": []}
    for b, p in enumerate(pairs):
        for i, j in enumerate(p.alignment):
            hits["function" if WORD_CLASS[p.source[j]] == "function" else "content"].append(bool(right[b, i]))
    return {k: float(np.mean(v)) for k, v in hits.items()}


def alignment_scores(params: dict, pairs) -> dict[str, float]:
    """How often cross-attention's largest weight falls on the aligned source word.

    For each French word ``target[i]`` of each pair, the decoder is given the correct
    prefix (teacher forcing), and we take the row of the cross-attention weights of the
    query that predicts that word.  The word counts as aligned if the source position
    with the largest weight in that row is ``alignment[i]``, the English word it
    translates (the position, not just the same word elsewhere).

    Returns
    -------
    dict
        ``"content"``: over nouns, colours and verbs; ``"crossing"``: over the words of the
        swapped adjective–noun pairs (both the noun and the colour); ``"function"``: over
        "le", "un" and "et"; and one entry per word class (``"noun"``, ``"colour"``,
        ``"verb"``).
    """
    batch = make_batch(pairs)
    if "cross.W_q" not in params:
        raise ValueError("this model has no cross-attention (params without cross.W_q): no alignment to score")
    _, cache = forward(params, batch.src, batch.tgt_in)
    found = cache["cross_weights"].argmax(axis=-1)  # (B, m): the source position each query reads most
    hits = {"content": [], "crossing": [], "function": [], "noun": [], "colour": [], "verb": []}
    for b, p in enumerate(pairs):
        for i, j in enumerate(p.alignment):
            ok = bool(found[b, i] == j)
            cls = WORD_CLASS[p.source[j]]
            hits["function" if cls == "function" else "content"].append(ok)
            if cls != "function":
                hits[cls].append(ok)
            if j != i:  # the word moved: it is part of a swapped pair
                hits["crossing"].append(ok)
    return {k: float(np.mean(v)) if v else float("nan") for k, v in hits.items()}


# --- training ---------------------------------------------------------------------------------

@dataclass
class Checkpoint:
    """The model at one step: its training loss and the cross-attention on the probe sentence."""

    step: int
    loss: float
    cross_weights: np.ndarray  # (len(probe.target), len(probe.source)): rows French words, columns English


@dataclass
class TrainingRun:
    """What :func:`train` returns: the final parameters and the history."""

    params: dict
    probe: Pair
    losses: np.ndarray
    checkpoints: list[Checkpoint] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def checkpoint_steps(self) -> np.ndarray:
        return np.array([c.step for c in self.checkpoints])


def probe_weights(params: dict, probe: Pair) -> np.ndarray:
    """Cross-attention weights on one pair, rows the French words, columns the English words."""
    batch = make_batch([probe])
    _, cache = forward(params, batch.src, batch.tgt_in)
    return cache["cross_weights"][0, :len(probe.target), :len(probe.source)]


def train(rng: np.random.Generator, n_steps: int, *, batch: int = 64, lr: float = LR, betas=(0.9, 0.98),
          encoder_lr_scale: float = ENCODER_LR_SCALE,
          exclude=frozenset(), checkpoint_every: int = 25, probe: Pair | None = None, params: dict | None = None,
          d_model: int = D_MODEL, cross_attention: bool = True, source_positions: bool = True,
          zero_encoder_output: bool = True) -> TrainingRun:
    """Train the translator with Adam on fresh random sentences, recording checkpoints.

    Parameters
    ----------
    rng : numpy.random.Generator
        Draws the initial parameters (unless given) and every batch.
    n_steps : int
        Adam steps; each draws ``batch`` new sentences, none of them in ``exclude``.
    lr, betas : float, (float, float)
        Adam's settings.
    encoder_lr_scale : float
        The encoder's self-attention (``enc.*``) learns with ``lr * encoder_lr_scale``.  With
        the full rate the encoder soon copies each noun into its neighbours' states, and in
        some seeds the decoder learns to read nouns there: it still translates, but its
        largest cross-attention weight is off the noun (``benchmarks/translate.py`` measures both).
    exclude : set of tuple of str
        English sentences never trained on (the held-out set's).
    checkpoint_every : int
        Record the cross-attention on ``probe`` at step 0 and every ``checkpoint_every`` steps
        (only for models with cross-attention and when a probe is given).
    cross_attention, source_positions : bool
        The controls: a decoder that cannot read the source, an encoder without positions.
    zero_encoder_output : bool
        Start the encoder's ``W_o`` at zero (see :func:`init_params`).
    """
    check_rng(rng)
    n_steps = positive_int(n_steps, "n_steps", minimum=0)
    batch = positive_int(batch, "batch")
    checkpoint_every = positive_int(checkpoint_every, "checkpoint_every")
    if probe is not None and not isinstance(probe, Pair):
        raise TypeError(f"probe must be a Pair, got {type(probe).__name__}")
    if params is None:
        params = init_params(rng, d_model=d_model, cross_attention=cross_attention, source_positions=source_positions,
                             zero_encoder_output=zero_encoder_output)
    else:
        params = {k: v.copy() for k, v in params.items()}
    if isinstance(encoder_lr_scale, bool) or not isinstance(encoder_lr_scale, (int, float)) \
            or not 0 < encoder_lr_scale <= 1:
        raise ValueError(f"encoder_lr_scale must be a number in (0, 1], got {encoder_lr_scale!r}")
    slow = [k for k in params if k.startswith("enc.")]  # the encoder's attention
    fast = [k for k in params if k not in slow]
    adam_fast = nn.Adam({k: params[k] for k in fast}, lr=lr, betas=betas)
    adam_slow = nn.Adam({k: params[k] for k in slow}, lr=lr * encoder_lr_scale, betas=betas)
    losses, checkpoints = np.zeros(n_steps), []
    record = probe is not None and "cross.W_q" in params
    start = time.perf_counter()
    if record:
        checkpoints.append(Checkpoint(0, float("nan"), probe_weights(params, probe)))
    with threadpool_limits(limits=1, user_api="blas"):  # small matrices: one BLAS thread is faster than several
        for step in range(n_steps):
            losses[step], grads = loss_and_grads(params, make_batch(sample_pairs(batch, rng, exclude=exclude)))
            params = {**adam_fast.step({k: params[k] for k in fast}, {k: grads[k] for k in fast}),
                      **adam_slow.step({k: params[k] for k in slow}, {k: grads[k] for k in slow})}
            if record and (step + 1) % checkpoint_every == 0:
                checkpoints.append(Checkpoint(step + 1, float(losses[step]), probe_weights(params, probe)))
    return TrainingRun(params, probe, losses, checkpoints, time.perf_counter() - start)


N_STEPS = 400
N_HELD_OUT = 500
HELD_OUT_SEED = 10_000


def held_out_pairs(n: int = N_HELD_OUT, seed: int = HELD_OUT_SEED) -> list[Pair]:
    """The held-out test sentences: ``n`` distinct pairs from their own seed; training excludes them."""
    return sample_pairs(n, np.random.default_rng(seed), distinct=True)
