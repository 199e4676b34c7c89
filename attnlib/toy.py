"""Tiny hand-built examples for chapter 4 ("Types of attention").

Nothing here is trained.  The embeddings and projections are chosen by hand so that
the attention weights they produce can be read and checked by eye: each function
says how its numbers were chosen.  A trained model has to *learn* such projections
from data; these toys only show what attention can do once it has them.
"""

from __future__ import annotations

import numpy as np

from attnlib._validate import check_rng, positive_int, positive_number

#: The sentence of chapter 4.
TOY_SENTENCE = ("The", "cat", "sat", "on", "the", "mat")

#: The features of a toy embedding, one per column.
FEATURES = ("determiner", "noun", "verb", "preposition", "animal", "object")

#: The word classes: the first four features.
WORD_CLASSES = FEATURES[:4]

#: Every word the toy embeddings know, with the features it has.
TOY_LEXICON = {
    "the": ("determiner",),
    "a": ("determiner",),
    "cat": ("noun", "animal"),
    "dog": ("noun", "animal"),
    "mat": ("noun", "object"),
    "hat": ("noun", "object"),
    "sat": ("verb",),
    "saw": ("verb",),
    "on": ("preposition",),
    "under": ("preposition",),
}

#: A toy translation pair: French puts the colour adjective after the noun.
TOY_TRANSLATION = (
    ("the", "black", "cat", "saw", "a", "white", "dog"),
    ("le", "chat", "noir", "vit", "un", "chien", "blanc"),
)

#: For each French word of ``TOY_TRANSLATION``, the English word it translates.
TOY_DICTIONARY = {"le": "the", "chat": "cat", "noir": "black", "vit": "saw",
                  "un": "a", "chien": "dog", "blanc": "white"}

#: What each word class looks for in the hand-built self-attention of chapter 4.
LOOKS_FOR = {"determiner": "noun", "noun": "verb", "verb": "noun", "preposition": "noun"}


def _check_tokens(tokens) -> list[str]:
    if isinstance(tokens, str):
        raise TypeError(f"tokens must be a sequence of words, got the string {tokens!r}; use .split()")
    words = [str(t).lower() for t in tokens]
    if not words:
        raise ValueError("tokens is empty; expected at least one word")
    unknown = sorted({w for w in words if w not in TOY_LEXICON})
    if unknown:
        raise ValueError(f"unknown words {unknown}; the toy lexicon knows {sorted(TOY_LEXICON)}")
    return words


def toy_embeddings(tokens) -> np.ndarray:
    """Hand-built embeddings: one column per feature in :data:`FEATURES`.

    Entry ``[i, f]`` is 1 when word ``i`` has feature ``f`` (a cat is a noun and
    an animal), else 0.  Case is ignored, so "The" and "the" get the same row.

    Parameters
    ----------
    tokens : sequence of str, length n
        Words from :data:`TOY_LEXICON`.

    Returns
    -------
    X : ndarray, shape (n, len(FEATURES))

    Examples
    --------
    >>> toy_embeddings(["the", "cat"])
    array([[1., 0., 0., 0., 0., 0.],
           [0., 1., 0., 0., 1., 0.]])
    """
    words = _check_tokens(tokens)
    X = np.zeros((len(words), len(FEATURES)))  # (n, n_features)
    for i, word in enumerate(words):
        for feature in TOY_LEXICON[word]:
            X[i, FEATURES.index(feature)] = 1.0
    return X


def toy_self_attention_params(strength: float = 6.0) -> dict:
    r"""Hand-built ``W_q, W_k, W_v`` for self-attention on :func:`toy_embeddings`.

    Each word class asks for the class it is paired with in :data:`LOOKS_FOR`
    (a verb looks for nouns, a noun for the verb, ...):
    :math:`(W_q)_{c, \mathrm{LOOKS\_FOR}(c)} = \text{strength}`.  Keys show a word's
    features as they are (``W_k = I``), and so do values (``W_v = I``), so an
    output row is the average of the features of the words attended to.

    Parameters
    ----------
    strength : float
        Score of a matching pair before the ``1/sqrt(d_k)`` scaling; larger means
        sharper weights.

    Returns
    -------
    dict with ``W_q, W_k, W_v``, each of shape ``(d, d)`` with ``d = len(FEATURES)``.

    Examples
    --------
    >>> p = toy_self_attention_params()
    >>> X = toy_embeddings(["sat", "cat"])
    >>> float((X @ p["W_q"])[0] @ (X @ p["W_k"])[1])  # the verb's query meets the noun's key
    6.0
    """
    strength = positive_number(strength, "strength")
    d = len(FEATURES)
    W_q = np.zeros((d, d))
    for asker, wanted in LOOKS_FOR.items():
        W_q[FEATURES.index(asker), FEATURES.index(wanted)] = strength
    return {"W_q": W_q, "W_k": np.eye(d), "W_v": np.eye(d)}


def toy_embeddings_with_positions(tokens, n_slots: int | None = None) -> np.ndarray:
    """:func:`toy_embeddings` followed by a one-hot code of each word's position.

    Parameters
    ----------
    tokens : sequence of str, length n
    n_slots : int, optional
        Width of each half; defaults to ``max(n, len(FEATURES))``.

    Returns
    -------
    X : ndarray, shape (n, 2 * n_slots)
        Columns ``0:len(FEATURES)`` are the features; column ``n_slots + p`` is 1
        for the word at position ``p``.

    Examples
    --------
    >>> toy_embeddings_with_positions(["the", "cat"]).shape
    (2, 12)
    """
    features = toy_embeddings(tokens)  # (n, n_features)
    n = features.shape[0]
    smallest = max(n, len(FEATURES))
    n_slots = smallest if n_slots is None else positive_int(n_slots, "n_slots", minimum=smallest)
    X = np.zeros((n, 2 * n_slots))  # (n, d_model)
    X[:, : features.shape[1]] = features
    X[np.arange(n), n_slots + np.arange(n)] = 1.0
    return X


def toy_two_head_params(n_slots: int, strength: float = 6.0) -> dict:
    """Hand-built parameters for :func:`attnlib.multi_head_attention` with two heads.

    For inputs made by :func:`toy_embeddings_with_positions` (``d_model = 2 * n_slots``):

    - head 0 is a *previous-token* head: the query of position p asks for the
      position code of p - 1 (position 0, which has no predecessor, asks for itself);
    - head 1 is a *same-kind-of-word* head: the query asks for the word's own class.

    ``W_v`` and ``W_o`` are identities, so the output shows what each head copied.

    Parameters
    ----------
    n_slots : int
        Half of ``d_model``; at least ``len(FEATURES)``.
    strength : float
        Score of a match before the ``1/sqrt(d_head)`` scaling.

    Returns
    -------
    dict with ``W_q, W_k, W_v, W_o`` of shape ``(2 * n_slots, 2 * n_slots)``.

    Examples
    --------
    >>> from attnlib.multihead import multi_head_attention
    >>> X = toy_embeddings_with_positions(["the", "cat", "saw", "the", "dog"])
    >>> _, w = multi_head_attention(X, X, toy_two_head_params(6), n_heads=2)
    >>> w.shape, int(w[0, 3].argmax()), int(w[1, 1].argmax()) in (1, 4)
    ((2, 5, 5), 2, True)
    """
    n_slots = positive_int(n_slots, "n_slots", minimum=len(FEATURES))
    strength = positive_number(strength, "strength")
    d_model = 2 * n_slots
    W_q = np.zeros((d_model, d_model))
    W_k = np.zeros((d_model, d_model))
    # head 0 owns columns 0:n_slots: previous token, read from the position code.
    for p in range(n_slots):
        W_k[n_slots + p, p] = 1.0
        W_q[n_slots + p, max(p - 1, 0)] = strength
    # head 1 owns columns n_slots:2*n_slots: same word class, read from the features.
    for c in range(len(WORD_CLASSES)):
        W_k[c, n_slots + c] = 1.0
        W_q[c, n_slots + c] = strength
    return {"W_q": W_q, "W_k": W_k, "W_v": np.eye(d_model), "W_o": np.eye(d_model)}


def _random_rotation(d: int, rng: np.random.Generator) -> np.ndarray:
    """A random orthogonal matrix ``(d, d)`` (QR of a Gaussian matrix, signs fixed)."""
    Q, R = np.linalg.qr(rng.normal(size=(d, d)))  # (d, d), (d, d)
    return Q * np.sign(np.diag(R))  # flip columns so the result is uniformly distributed


def toy_translation(rng: np.random.Generator, d_model: int = 16, strength: float = 12.0) -> dict:
    """Embeddings and projections for cross-attention on :data:`TOY_TRANSLATION`.

    How they are built: every word pair of :data:`TOY_DICTIONARY` shares one random
    *meaning* vector (unit length).  English embeddings are the meanings turned by a
    random rotation ``R_en``, French ones by another rotation ``R_fr``, so raw English
    and French vectors do not line up.  The projections undo the rotations:
    ``W_q = strength * R_fr.T`` for the French queries and ``W_k = R_en.T`` for the
    English keys, so a query meets a key in the shared meaning space.

    Parameters
    ----------
    rng : numpy.random.Generator
    d_model : int
        Width of the embeddings.
    strength : float
        Scales the queries; larger means sharper alignments.

    Returns
    -------
    dict with
        ``source``, ``target`` : tuples of words (English, French);
        ``X_src (n_src, d_model)``, ``X_tgt (n_tgt, d_model)``, ``W_q``, ``W_k``, ``W_v``
        ``(d_model, d_model)``; ``alignment`` : ndarray of int, shape (n_tgt,), the index
        of the source word that each target word translates.

    Examples
    --------
    >>> t = toy_translation(np.random.default_rng(0))
    >>> t["alignment"].tolist()
    [0, 2, 1, 3, 4, 6, 5]
    """
    check_rng(rng)
    d_model = positive_int(d_model, "d_model", minimum=2)
    strength = positive_number(strength, "strength")
    source, target = TOY_TRANSLATION
    meanings = rng.normal(size=(len(source), d_model))  # (n_src, d_model): one per English word
    meanings /= np.linalg.norm(meanings, axis=1, keepdims=True)
    R_en = _random_rotation(d_model, rng)
    R_fr = _random_rotation(d_model, rng)
    alignment = np.array([source.index(TOY_DICTIONARY[w]) for w in target])  # (n_tgt,)
    X_src = meanings @ R_en  # (n_src, d_model) @ (d_model, d_model) -> (n_src, d_model)
    X_tgt = meanings[alignment] @ R_fr  # (n_tgt, d_model) @ (d_model, d_model) -> (n_tgt, d_model)
    return {
        "source": source, "target": target, "X_src": X_src, "X_tgt": X_tgt,
        "W_q": strength * R_fr.T, "W_k": R_en.T, "W_v": R_en.T, "alignment": alignment,
    }
