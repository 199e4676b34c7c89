"""Tests for attnlib.toy_lm: the hand-set GPT-style and BERT-style heads (chapter 6)."""

import numpy as np
import pytest

from attnlib import causal_mask
from attnlib.toy_lm import generate, masked_token_head, next_token_head, shifted_one_hot


def encode(text):
    words = text.split()
    vocab = sorted(set(words))
    return np.array([vocab.index(w) for w in words]), vocab


def test_shifted_one_hot_matches_a_loop():
    ids = np.array([3, 0, 2, 2, 1])
    for offset in (-2, -1, 0, 1, 3):
        got = shifted_one_hot(ids, 4, offset)
        for i in range(len(ids)):
            expected = np.zeros(4)
            if 0 <= i + offset < len(ids):
                expected[ids[i + offset]] = 1.0
            np.testing.assert_array_equal(got[i], expected)


def test_next_token_head_is_causal():
    ids, vocab = encode("a b c a b d a b")
    probs, weights = next_token_head(ids, len(vocab))
    assert np.all(weights[~causal_mask(len(ids))] == 0.0)
    np.testing.assert_allclose(weights.sum(axis=1), 1.0)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)
    # changing a future token never changes an earlier prediction
    changed = ids.copy()
    changed[-1] = vocab.index("c")
    probs2, _ = next_token_head(changed, len(vocab))
    np.testing.assert_allclose(probs2[:-1], probs[:-1])


def test_next_token_head_copies_what_followed_the_same_context():
    ids, vocab = encode("x the cat sat . y the cat")
    probs, _ = next_token_head(ids, len(vocab))
    assert vocab[int(np.argmax(probs[-1]))] == "sat"
    assert probs[-1, vocab.index("sat")] > 0.9


def test_generate_grows_the_mask_one_step_at_a_time():
    ids, vocab = encode("the cat sat on the mat . the cat")
    out, steps = generate(ids, len(vocab), 4)
    assert [vocab[i] for i in out[len(ids):]] == ["sat", "on", "the", "mat"]
    for t, (probs, weights) in enumerate(steps):
        assert weights.shape == (len(ids) + t, len(ids) + t)
        assert np.all(weights[~causal_mask(len(ids) + t)] == 0.0)
        assert int(np.argmax(probs)) == out[len(ids) + t]


def test_masked_token_head_uses_the_right_context():
    ids, vocab = encode(". the dog sat . the cat ate . the [MASK] sat .")
    mask_id = vocab.index("[MASK]")
    blank = int(np.flatnonzero(ids == mask_id)[0])
    probs, weights = masked_token_head(ids, len(vocab), mask_id)
    assert vocab[int(np.argmax(probs[blank]))] == "dog"
    # it looks to the right of the blank too, and, as in BERT, every token attends to [MASK]
    assert weights[blank, blank + 1:].sum() > 0
    assert np.all(weights[:, ids == mask_id] > 0.0)
    # a [MASK] key takes weight but casts no vote: the probabilities are the other keys' votes
    np.testing.assert_allclose(probs.sum(axis=-1), 1.0)
    assert np.all(probs[:, mask_id] == 0.0)
    # the causal head, seeing only the left, cannot tell dog from cat
    left, _ = next_token_head(ids, len(vocab))
    np.testing.assert_allclose(left[blank - 1, vocab.index("dog")], left[blank - 1, vocab.index("cat")])


def test_bad_inputs():
    with pytest.raises(ValueError, match="ids must lie in 0..2"):
        next_token_head([0, 3], 3)
    with pytest.raises(ValueError, match="1-D array of integers"):
        shifted_one_hot([[0, 1]], 2, 0)
    with pytest.raises(TypeError, match="offset must be an integer"):
        shifted_one_hot([0, 1], 2, 0.5)
    with pytest.raises(ValueError, match="n_new"):
        generate([0, 1], 2, -1)
    with pytest.raises(ValueError, match="mask_id"):
        masked_token_head([0, 1], 2, 5)
    with pytest.raises(TypeError, match="mask_id must be an integer"):
        masked_token_head([0, 1], 2, 1.0)
