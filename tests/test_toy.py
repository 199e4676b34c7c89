"""The hand-built toys of chapter 4 do what the chapter says they do."""

import numpy as np
import pytest

import attnlib as al
from attnlib import toy


def self_attention_weights(tokens, strength=6.0):
    X = toy.toy_embeddings(tokens)
    p = toy.toy_self_attention_params(strength)
    return al.scaled_dot_product_attention(X @ p["W_q"], X @ p["W_k"], X @ p["W_v"])[1]


def test_embeddings_are_feature_indicators():
    X = toy.toy_embeddings(toy.TOY_SENTENCE)
    assert X.shape == (6, len(toy.FEATURES))
    assert np.array_equal(X[0], X[4])  # "The" and "the": case is ignored
    cat = X[1]
    assert cat[toy.FEATURES.index("noun")] == 1 and cat[toy.FEATURES.index("animal")] == 1
    assert cat.sum() == 2


def test_sat_attends_to_the_nouns_cat_and_mat():
    w = self_attention_weights(toy.TOY_SENTENCE)
    sat = w[toy.TOY_SENTENCE.index("sat")]
    top_two = set(np.argsort(sat)[-2:].tolist())
    assert top_two == {1, 5}  # cat, mat
    assert sat[1] == pytest.approx(sat[5])  # no position information: a tie
    assert sat[1] > 5 * sat[0]


def test_stronger_projection_means_sharper_weights():
    soft = self_attention_weights(toy.TOY_SENTENCE, 2.0)[2, 1]
    sharp = self_attention_weights(toy.TOY_SENTENCE, 10.0)[2, 1]
    assert sharp > soft


def test_two_heads_previous_token_and_same_kind():
    tokens = ["the", "dog", "saw", "a", "cat", "on", "the", "hat"]
    X = toy.toy_embeddings_with_positions(tokens)
    _, w = al.multi_head_attention(X, X, toy.toy_two_head_params(8), n_heads=2)
    assert w.shape == (2, 8, 8)
    assert w[0, 1:].argmax(axis=-1).tolist() == list(range(7))  # position p looks at p - 1
    kinds = [toy.TOY_LEXICON[t][0] for t in tokens]
    for i, row in enumerate(w[1]):
        best = np.flatnonzero(np.isclose(row, row.max()))
        assert all(kinds[j] == kinds[i] for j in best)


def test_translation_alignment_is_recovered_for_many_seeds():
    for seed in range(20):
        t = toy.toy_translation(np.random.default_rng(seed))
        Q = t["X_tgt"] @ t["W_q"]  # (n_tgt, d_model)
        K = t["X_src"] @ t["W_k"]  # (n_src, d_model)
        _, w = al.scaled_dot_product_attention(Q, K, t["X_src"] @ t["W_v"])
        assert w.argmax(axis=-1).tolist() == t["alignment"].tolist(), seed
    assert t["alignment"].tolist() != list(range(len(t["target"])))  # a real reordering


def test_translation_raw_embeddings_do_not_align():
    t = toy.toy_translation(np.random.default_rng(0))
    raw = t["X_tgt"] @ t["X_src"].T  # (n_tgt, n_src)
    assert raw.argmax(axis=-1).tolist() != t["alignment"].tolist()


@pytest.mark.parametrize(
    "call, error, words",
    [
        (lambda: toy.toy_embeddings("the cat"), TypeError, "sequence of words"),
        (lambda: toy.toy_embeddings(["the", "unicorn"]), ValueError, "unknown words ['unicorn']"),
        (lambda: toy.toy_embeddings([]), ValueError, "empty"),
        (lambda: toy.toy_self_attention_params(0), ValueError, "positive"),
        (lambda: toy.toy_self_attention_params("big"), TypeError, "number"),
        (lambda: toy.toy_two_head_params(3), ValueError, ">= 6"),
        (lambda: toy.toy_embeddings_with_positions(["the"] * 7, n_slots=6), ValueError,
         "n_slots must be an integer >= 7"),
        (lambda: toy.toy_translation(0), TypeError, "Generator"),
        (lambda: toy.toy_translation(np.random.default_rng(0), d_model=1), ValueError,
         "d_model must be an integer >= 2"),
        (lambda: toy.toy_translation(np.random.default_rng(0), d_model=4.0), TypeError, "d_model must be an integer"),
    ],
)
def test_bad_input_says_what_was_expected(call, error, words):
    with pytest.raises(error) as info:
        call()
    assert words in str(info.value)
