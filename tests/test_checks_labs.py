"""The labs' experiment checks (attnlib/checks/_labs.py): each passes a correct answer and names a buggy one."""

from __future__ import annotations

import numpy as np
import pytest

import attnlib as al
from attnlib.checks import (
    check_equivariance_gap,
    check_greedy_generate,
    check_image_to_text,
    check_leak_detector,
    check_mha_shapes,
    check_prediction,
    check_score_variance,
    check_weights_bytes,
)

# --- score variance (Lab 3) -----------------------------------------------------------------


def score_variance(d_k, n, rng):
    Q, K = rng.normal(size=(n, d_k)), rng.normal(size=(n, d_k))
    return (Q @ K.T / np.sqrt(d_k)).var()


def test_score_variance_passes_a_correct_answer_either_draw_order_and_ddof():
    assert check_score_variance(score_variance).passed
    keys_first = lambda d_k, n, rng: (rng.normal(size=(n, d_k)) @ rng.normal(size=(n, d_k)).T / np.sqrt(d_k)).var()
    assert check_score_variance(keys_first).passed
    unbiased = lambda d_k, n, rng: (rng.normal(size=(n, d_k)) @ rng.normal(size=(n, d_k)).T / np.sqrt(d_k)).var(ddof=1)
    assert check_score_variance(unbiased).passed


@pytest.mark.parametrize(("buggy", "words"), [
    (lambda d_k, n, rng: score_variance(d_k, n, rng) * d_k, "not scaled"),
    (lambda d_k, n, rng: score_variance(d_k, n, rng) / d_k, "divided by d_k"),
    (lambda d_k, n, rng: score_variance(d_k, n, np.random.default_rng()), "same seed"),
    (lambda d_k, n, rng: score_variance(d_k, n, np.random.default_rng(0)), "different seeds"),
    (lambda d_k, n, rng: 1.0, "different seeds"),  # the number theory gives, hard-coded
    (lambda d_k, n, rng: np.ones(3), "one number"),
    (lambda d_k, n, rng: (rng.uniform(size=(n, d_k)) @ rng.uniform(size=(n, d_k)).T / np.sqrt(d_k)).var(),
     "close to 1"),
])
def test_score_variance_names_the_bug(buggy, words):
    result = check_score_variance(buggy)
    assert not result.passed and words in result.message, result.message


def test_score_variance_refuses_attnlib_scores():
    cheat = lambda d_k, n, rng: al.scaled_dot_product_scores(rng.normal(size=(n, d_k)), rng.normal(size=(n, d_k))).var()
    result = check_score_variance(cheat)
    assert not result.passed and "use your own implementation" in result.message


# --- equivariance gap (Lab 4) ---------------------------------------------------------------


def gap(attend, X, perm):
    return float(np.abs(attend(X[perm]) - attend(X)[perm]).max())


def test_equivariance_gap_passes_a_correct_answer():
    assert check_equivariance_gap(gap).passed


@pytest.mark.parametrize(("buggy", "words"), [
    (lambda a, X, p: float(np.abs(a(X[p]) - a(X)[p]).mean()), "mean"),
    (lambda a, X, p: float((a(X[p]) - a(X)[p]).max()), "absolute value"),
    (lambda a, X, p: float(np.abs(a(X[p]) - a(X)[np.argsort(p)]).max()), "two permutations"),
    (lambda a, X, p: a(X[p]) - a(X)[p], "one number"),
    (lambda a, X, p: 0.0, "not equivariant"),  # hard-coded: "attention is equivariant"
])
def test_equivariance_gap_names_the_bug(buggy, words):
    result = check_equivariance_gap(buggy)
    assert not result.passed and words in result.message, result.message


# --- greedy generation (Lab 6) --------------------------------------------------------------


def greedy(ids, vocab_size, n_new):
    ids = np.asarray(ids)
    for _ in range(n_new):
        probs, _ = al.toy_lm.next_token_head(ids, vocab_size)
        ids = np.append(ids, int(np.argmax(probs[-1])))
    return ids


def test_greedy_generate_passes_a_correct_answer_and_prints_no_tokens():
    result = check_greedy_generate(greedy)
    assert result.passed, result.message


def first_row(ids, vocab_size, n_new):  # reads the first row of the probabilities, not the last
    ids = np.asarray(ids)
    for _ in range(n_new):
        probs, _ = al.toy_lm.next_token_head(ids, vocab_size)
        ids = np.append(ids, int(np.argmax(probs[0])))
    return ids


def prompt_once(ids, vocab_size, n_new):  # runs the head once on the prompt and repeats its guess
    probs, _ = al.toy_lm.next_token_head(np.asarray(ids), vocab_size)
    return np.append(ids, [int(np.argmax(probs[-1]))] * n_new)


@pytest.mark.parametrize(("buggy", "words"), [
    (first_row, "differs from greedy generation"),
    (prompt_once, "differs from greedy generation"),
    (lambda ids, v, n_new: greedy(ids, v, n_new)[len(ids):], "only the"),
    (lambda ids, v, n_new: greedy(ids, v, n_new)[:-1], "shape"),
    (lambda ids, v, n_new: al.toy_lm.generate(ids, v, n_new)[0], "use your own implementation"),
])
def test_greedy_generate_names_the_bug(buggy, words):
    result = check_greedy_generate(buggy)
    assert not result.passed and words in result.message, result.message


# --- image rows and text columns of a DALL-E-style stream (Lab 6) ---------------------------


def image_to_text(W_stream, n_text):
    block = W_stream[n_text:, :n_text]  # (n_image, n_text)
    return block / block.sum(axis=1, keepdims=True)


def test_image_to_text_passes_a_correct_answer_on_given_and_drawn_streams():
    rng = np.random.default_rng(1)
    result = check_image_to_text(image_to_text, streams=[(rng.normal(size=(4, 6)), rng.normal(size=(9, 6)))], seed=2)
    assert result.passed and "3 streams" in result.message, result.message
    assert check_image_to_text(image_to_text).passed  # streams drawn afresh


@pytest.mark.parametrize(("buggy", "words"), [
    (lambda W, n_text: W[n_text:, :n_text], "sum to 1"),
    (lambda W, n_text: W[:, :n_text] / W[:, :n_text].sum(axis=1, keepdims=True), "rows of every token"),
    (lambda W, n_text: W[:n_text, n_text:], "one row per word"),
    (lambda W, n_text: W[n_text:, :n_text] / W[n_text:, :n_text].sum(axis=0, keepdims=True), "columns sum to 1"),
    (lambda W, n_text: W[n_text:, :n_text] / W[n_text:].sum(axis=1, keepdims=True), "sum to 1"),  # = the block
    (lambda W, n_text: W[n_text - 1:-1, :n_text] / W[n_text - 1:-1, :n_text].sum(axis=1, keepdims=True),
     "image token"),  # rows shifted by one
    (lambda W, n_text: W[n_text:, :n_text + 1], "shape"),
])
def test_image_to_text_names_the_bug(buggy, words):
    result = check_image_to_text(buggy, seed=0)
    assert not result.passed and words in result.message, result.message


def test_image_to_text_reports_an_input_changed_in_place():
    def in_place(W, n_text):
        W /= 2
        return image_to_text(W, n_text)
    assert not check_image_to_text(in_place, seed=0).passed


# --- shapes, bytes, leaks (Lab 7) -----------------------------------------------------------


def shapes(batch, n_q, n_k, d_model, n_heads):
    return (batch, n_heads, n_q, d_model // n_heads), (batch, n_heads, n_q, n_k), (batch, n_q, d_model)


def test_mha_shapes_passes_a_correct_answer():
    assert check_mha_shapes(shapes).passed


@pytest.mark.parametrize(("buggy", "words"), [
    (lambda b, n_q, n_k, d, h: ((b, n_q, h, d // h), *shapes(b, n_q, n_k, d, h)[1:]), "wrong order"),
    (lambda b, n_q, n_k, d, h: (shapes(b, n_q, n_k, d, h)[0], (b, h, n_q, n_q), shapes(b, n_q, n_k, d, h)[2]),
     "the weights"),
    (lambda b, n_q, n_k, d, h: shapes(b, n_q, n_k, d, h)[:2] + ((b, n_q, d // h),), "the output"),
    (lambda b, n_q, n_k, d, h: shapes(2, 3, 5, 8, 2), "not the one attnlib produces"),  # the visible case
    (lambda b, n_q, n_k, d, h: 3, "three tuples"),
])
def test_mha_shapes_names_the_bug(buggy, words):
    result = check_mha_shapes(buggy)
    assert not result.passed and words in result.message, result.message


def test_weights_bytes_passes_correct_answers():
    assert check_weights_bytes(lambda b, h, n, itemsize=8: b * h * n * n * itemsize).passed
    assert check_weights_bytes(lambda b, h, n: 8 * b * h * n * n, itemsize=False).passed


@pytest.mark.parametrize(("buggy", "words"), [
    (lambda b, h, n, itemsize=8: b * h * n * n, "number of entries"),
    (lambda b, h, n, itemsize=8: b * h * n * itemsize, "grows like n"),
    (lambda b, h, n, itemsize=8: b * h * n * n * 8, "itemsize argument"),
    (lambda b, h, n, itemsize=8: 800, "not the size"),  # the visible case (1, 1, 10) hard-coded
])
def test_weights_bytes_names_the_bug(buggy, words):
    result = check_weights_bytes(buggy)
    assert not result.passed and words in result.message, result.message


def leaks_future(attend, X):
    base = attend(X)
    for j in range(1, len(X)):
        X_changed = X.copy()
        X_changed[j] += 1.0
        if np.abs(attend(X_changed)[:j] - base[:j]).max() > 1e-9:
            return True
    return False


def next_token_only(attend, X):  # compares each output with the next token's change only
    base = attend(X)
    for j in range(1, len(X)):
        X_changed = X.copy()
        X_changed[j] += 1.0
        if np.abs(attend(X_changed)[j - 1] - base[j - 1]).max() > 1e-9:
            return True
    return False


def includes_itself(attend, X):  # compares outputs up to and including the changed token
    base = attend(X)
    for j in range(1, len(X)):
        X_changed = X.copy()
        X_changed[j] += 1.0
        if np.abs(attend(X_changed)[: j + 1] - base[: j + 1]).max() > 1e-9:
            return True
    return False


def loose(attend, X):  # a threshold of 1e-3
    base = attend(X)
    return any(np.abs(attend(X + np.eye(len(X))[j][:, None])[:j] - base[:j]).max() > 1e-3 for j in range(1, len(X)))


def signed_difference(attend, X):  # adv10 F1: no abs, so a leak that lowers an output goes unseen
    base = attend(X)
    for j in range(1, len(X)):
        X_changed = X.copy()
        X_changed[j] += 1.0
        if (attend(X_changed)[:j] - base[:j]).max() > 1e-9:
            return True
    return False


def test_leak_detector_names_a_missing_abs_every_time():
    """adv10 F1: every additive leak raised its output, so the signed max passed 10 of 10 self-checks."""
    for seed in range(10):
        result = check_leak_detector(signed_difference, rng=np.random.default_rng(seed))
        assert not result.passed and "a leak can lower an output" in result.message, result.message


def test_leak_detector_passes_a_correct_answer():
    assert check_leak_detector(leaks_future).passed


@pytest.mark.parametrize(("buggy", "words"), [
    (next_token_only, "says no leak"),
    (includes_itself, "reports a leak where there is none"),
    (loose, "says no leak"),
    (lambda attend, X: True, "reports a leak where there is none"),
    (lambda attend, X: 1, "True or False"),
])
def test_leak_detector_names_the_bug(buggy, words):
    result = check_leak_detector(buggy)
    assert not result.passed and words in result.message, result.message


# --- predictions ----------------------------------------------------------------------------


def test_prediction_within_tolerance_passes_and_says_both_numbers():
    result = check_prediction("guess", lambda: 60.0, 64.0)
    assert result.passed and "60" in result.message and "64" in result.message


def test_prediction_far_off_fails_with_the_ratio_and_the_explanation():
    result = check_prediction("guess", lambda: 8.0, 64.0, explanation="Each of the d_k products adds variance 1.")
    assert not result.passed
    assert "8 times smaller" in result.message and "adds variance 1" in result.message


def test_prediction_not_written_yet():
    def unsolved():
        raise NotImplementedError("write your prediction")
    assert check_prediction("guess", unsolved, 1.0).not_implemented
    assert check_prediction("guess", None, 1.0).not_implemented


def test_prediction_with_an_absolute_floor():
    assert check_prediction("guess", 0.02, 0.0, atol=0.05).passed
    result = check_prediction("guess", -1.0, 0.5, atol=0.05)
    assert not result.passed and "below" in result.message


def test_one_number_gets_no_constant_factor_message():
    """adv10 side note: for a one-number result, "the expected value times r everywhere" named no pattern and gave
    the expected value away (got / r); an array keeps the message."""
    from attnlib.checks._result import likely_cause

    assert likely_cause(np.array(2.5), np.array(1.25), "your value") is None
    assert likely_cause(np.array([2.5]), np.array([1.25]), "your value") is None
    assert "times 2 everywhere" in likely_cause(np.array([2.0, 4.0]), np.array([1.0, 2.0]), "your value")


def test_the_leak_detector_check_refuses_loose_tolerances_on_every_draw():
    """adv11 F5: the subtle leak was exactly 1e-6, so atol=1e-6 (and > 1e-6, > 1e-7) passed 25 of 25 runs.
    Now the leak is 1e-8 to 3e-8: the statement's 1e-9 passes on every draw, the loose ones on none."""
    import numpy as np

    from attnlib.checks import check_leak_detector

    def detector(threshold, allclose=False):
        def leaks_future(attend, X):
            base = attend(X)
            for j in range(1, len(X)):
                X_changed = X.copy()
                X_changed[j] += 1.0
                if allclose:
                    if not np.allclose(attend(X_changed)[:j], base[:j], rtol=0, atol=threshold):
                        return True
                elif np.abs(attend(X_changed)[:j] - base[:j]).max() > threshold:
                    return True
            return False
        return leaks_future

    for seed in range(40):
        assert check_leak_detector(detector(1e-9), rng=np.random.default_rng(seed)).passed, seed
        for loose in (detector(1e-6, allclose=True), detector(1e-6), detector(1e-7)):
            assert not check_leak_detector(loose, rng=np.random.default_rng(seed)).passed, seed


def test_the_greedy_check_computes_what_generate_returns_from_the_last_row_only():
    """check_greedy_generate's expected continuation (the last row of the attention, O(n) a step) equals
    attnlib.toy_lm.generate's on random prompts (ties included: small vocabularies) and on a far-back prompt."""
    from attnlib.checks._labs import _far_back_prompt, _greedy
    from attnlib.toy_lm import generate

    rng = np.random.default_rng(0)
    for _ in range(100):
        vocab = int(rng.integers(2, 10))
        prompt = rng.integers(0, int(rng.integers(1, vocab + 1)), size=int(rng.integers(1, 30)))
        n_new = int(rng.integers(0, 10))
        np.testing.assert_array_equal(_greedy(prompt, vocab, n_new), generate(prompt, vocab, n_new)[0])
    prompt = _far_back_prompt(rng, 8, (300, 301))
    np.testing.assert_array_equal(_greedy(prompt, 8, 3), generate(prompt, 8, 3)[0])
