"""Checks for the labs' experiment exercises, whose references used to sit in the labs' check cells.

Each check computes what it compares with here, after the learner's code has run and under
the plain calls of :mod:`attnlib.checks._calls`, so that no reference answer is printed in a
lab: the variance of scaled scores (chapter 3),
the permutation-equivariance gap (chapter 4), greedy generation and the image rows and text
columns of a DALL-E-style stream (chapter 6), the shapes and the memory of multi-head attention
and a future-leak detector (chapter 7), and :func:`check_prediction` for predict-then-measure
exercises.  Where the answer is a random number, the check tests its properties (close to
what theory says, reproducible from the generator it is given) rather than one value.
"""

from __future__ import annotations

import math
import numbers
import re

import numpy as np

from attnlib.attention import scaled_dot_product_attention as _attention
from attnlib.checks._calls import to_array
from attnlib.checks._result import (
    NOT_IMPLEMENTED,
    CheckResult,
    attempt,
    failed,
    graded,
    in_context,
    passed,
    with_hint,
)
from attnlib.masks import causal_mask as _causal_mask
from attnlib.multihead import init_multi_head as _init_multi_head
from attnlib.multihead import merge_heads as _merge_heads
from attnlib.multihead import multi_head_attention as _multi_head_attention
from attnlib.multihead import split_heads as _split_heads
from attnlib.positional import sinusoidal_positional_encoding as _positional_encoding
from attnlib.toy_lm import next_token_head as _next_token_head


def _number(name: str, value, context: str):
    """The learner's answer as one float, or a CheckResult saying why it is not one."""
    real = isinstance(value, numbers.Real) or (  # a Decimal is a Number but not a Real
        isinstance(value, numbers.Number) and not isinstance(value, numbers.Complex))
    if real and not isinstance(value, (bool, np.bool_)):  # a Fraction, a Decimal: one number (adv14 F3)
        try:
            value = float(value)
        except (TypeError, ValueError, OverflowError):
            pass
    arr = np.asarray(value)
    if arr.dtype.kind == "b" and arr.size == 1:
        return None, failed(name, f"{context}, your function should return a number (a count or a value), not "
                                  f"True/False: got {value!r}.")
    if arr.size != 1 or arr.dtype.kind not in "iuf" or arr.ndim > 0:
        return None, failed(name, f"{context}, your function should return one number, got "
                                  f"{type(value).__name__} of shape {arr.shape}.")
    return float(arr.reshape(())), None


# --- chapter 1: the most attended words ------------------------------------------------------

MARKERS = ("[CLS]", "[SEP]")


def _top_words(tokens, weights, k):
    order = np.argsort(-np.asarray(weights, dtype=float), kind="stable")
    return [tokens[j] for j in order if tokens[j] not in MARKERS][:k]


@graded()
def check_top_words(fn, cases=None, *, name: str = "The most attended words") -> CheckResult:
    """Check a learner's ``fn(tokens, weights, k)``: the k tokens of largest weight, largest first, no markers.

    ``cases`` are ``(tokens, weights, k)`` triples (a small sentence by default).  Tokens sorted
    smallest-first, markers kept, markers dropped after cutting to k, and the right tokens in the
    wrong order are each named.  Any sequence of strings (list, tuple, array) is accepted.

    Examples
    --------
    >>> def top_words(tokens, weights, k):
    ...     order = np.argsort(weights)[::-1]
    ...     return [tokens[j] for j in order if tokens[j] not in ("[CLS]", "[SEP]")][:k]
    >>> check_top_words(top_words).passed
    True
    >>> print(check_top_words(lambda t, w, k: [t[j] for j in np.argsort(w) if t[j] not in MARKERS][:k]).message)
    your tokens are the ones with the smallest weights: np.argsort sorts smallest first, so walk its order from the end.
    """
    if cases is None:
        cases = [(["[CLS]", "a", "b", "c", "d", "[SEP]"], [0.4, 0.05, 0.3, 0.1, 0.15, 0.1], 2)]
    for tokens, weights, k in cases:
        tokens, weights = list(tokens), np.asarray(weights, dtype=float)
        got, problem = attempt(name, fn, tokens, weights, k, names=("tokens", "weights", "k"),
                               expected="fn(tokens, weights, k)")
        if problem is not None:
            return problem
        if not isinstance(got, list | tuple | np.ndarray):
            return failed(name, f"expected a list of {k} tokens, got {type(got).__name__}.")
        got = [str(t) for t in got]
        expected = _top_words(tokens, weights, k)
        if got == expected:
            continue
        if any(t in MARKERS for t in got):
            return failed(name, "leave out the marker tokens [CLS] and [SEP].")
        smallest = [tokens[j] for j in np.argsort(weights, kind="stable") if tokens[j] not in MARKERS][:k]
        if got == smallest:
            return failed(name, "your tokens are the ones with the smallest weights: np.argsort sorts smallest "
                                "first, so walk its order from the end.")
        if sorted(got) == sorted(expected):
            return failed(name, "the right tokens in the wrong order: largest weight first.")
        if len(got) != k:
            return failed(name, f"expected {k} tokens, got {len(got)}: leave the markers out first, then keep k.")
        if any(t not in tokens for t in got):
            return failed(name, "return tokens of the sentence, as strings.")
        return failed(name, "these are not the k tokens with the largest weights.")
    return passed(name, f"the right tokens in the right order on {len(cases)} sentence(s).")


# --- chapter 3: the variance of scaled scores ----------------------------------------------


def _variances_from(d_k: int, n: int, seed: int) -> dict[str, float]:
    """What a generator of ``seed`` gives for the score variance, right and in the usual wrong ways.

    Queries and keys are drawn as ``(n, d_k)`` arrays, queries first; drawing both at once
    (``rng.normal(size=(2, n, d_k))``) or keys first gives the same numbers, and the
    transposed draw ``(d_k, n)`` is tried too.
    """
    out = {}
    for layout in ("rows", "columns"):
        rng = np.random.default_rng(seed)
        if layout == "rows":
            Q, K = rng.normal(size=(n, d_k)), rng.normal(size=(n, d_k))
        else:
            Q, K = rng.normal(size=(d_k, n)).T, rng.normal(size=(d_k, n)).T
        raw = Q @ K.T  # (n, n)
        out[layout] = float((raw / math.sqrt(d_k)).var())
        out[f"{layout} std"] = float((raw / math.sqrt(d_k)).std())
        out[f"{layout} unscaled"] = float(raw.var())
        out[f"{layout} by d_k"] = float((raw / d_k).var())
        out[f"{layout} sqrt 2d_k"] = float((raw / math.sqrt(2 * d_k)).var())
        out[f"{layout} ddof"] = float((raw / math.sqrt(d_k)).var(ddof=1))
    return out


@graded(forbid=("scaled_dot_product_scores", "dot_product_scores"))
def check_score_variance(fn, *, name: str = "Score variance", d_ks=(64, 4, 256), seed: int = 7) -> CheckResult:
    """Check a learner's ``fn(d_k, n, rng)``: the variance of ``q . k / sqrt(d_k)`` over n x n random pairs.

    The answer is random, but the generator is given, so the check recomputes the variance from
    a generator of the same seed (queries first, then keys, each ``(n, d_k)``; the same numbers
    come out of one draw of ``(2, n, d_k)``; ``var(ddof=1)`` is right too) and compares to a relative 1e-6
    (float32 arithmetic is right too; a wrong scale is off by far more): an answer that does not
    compute, the standard deviation in place of the variance, a scale of ``1/sqrt(2 d_k)``,
    ``1/d_k``, no scale and numbers drawn from ``np.random`` are each named.  The
    result must also be close to 1, the theory's value.  ``d_ks`` and ``seed`` choose the widths
    and the generators (the grader uses fresh ones).

    Examples
    --------
    >>> def score_variance(d_k, n, rng):
    ...     Q, K = rng.normal(size=(n, d_k)), rng.normal(size=(n, d_k))
    ...     return (Q @ K.T / np.sqrt(d_k)).var()
    >>> check_score_variance(score_variance).passed
    True
    >>> print(check_score_variance(lambda d_k, n, rng: score_variance(d_k, n, rng) * d_k).message)
    for d_k = 64, your variance is 61.8, about d_k: the scores are not scaled. Divide q . k by sqrt(d_k).
    >>> print(check_score_variance(lambda d_k, n, rng: np.sqrt(score_variance(d_k, n, rng))).message)
    ... # doctest: +NORMALIZE_WHITESPACE
    for d_k = 64, your answer is the standard deviation of the scaled scores (.std());
    the exercise asks for their variance (.var()).
    """
    n = 200
    for d_k in d_ks:
        d_k = int(d_k)
        context = f"for d_k = {d_k}"
        values = []
        for s in (seed, seed, seed + 1):
            value, problem = attempt(name, fn, d_k, n, np.random.default_rng(s), names=("d_k", "n", "rng"),
                                     expected="fn(d_k, n, rng)")
            if problem is not None:
                return in_context(problem, context)
            value, problem = _number(name, value, context)
            if problem is not None:
                return problem
            values.append(value)
        v = values[0]
        if not math.isfinite(v):
            return failed(name, f"{context}, your variance is {v}.")
        if v != values[1]:
            return failed(name, f"{context}, two calls with generators of the same seed gave different answers "
                                f"({values[0]:.4g}, {values[1]:.4g}): draw every random number from the rng "
                                "you are given (rng.normal), not from np.random.")
        if v == values[2]:
            return failed(name, f"{context}, generators of different seeds gave the same answer: your function "
                                "does not draw its queries and keys from rng.")
        known = _variances_from(d_k, n, seed)
        same = [label for label, value in known.items() if math.isclose(v, value, rel_tol=1e-6, abs_tol=1e-12)]
        if any(label in ("rows", "columns", "rows ddof", "columns ddof") for label in same):
            continue  # var(ddof=1), the unbiased estimate, is right too
        causes = {
            "std": "your answer is the standard deviation of the scaled scores (.std()); the exercise asks for "
                   "their variance (.var()).",
            "unscaled": f"your variance is {v:.3g}, about d_k: the scores are not scaled. Divide q . k by sqrt(d_k).",
            "by d_k": f"your variance is {v:.3g}, about 1/d_k: the scores are divided by d_k; divide by sqrt(d_k).",
            "sqrt 2d_k": f"your variance is {v:.3g}, about 1/2: the scores are divided by sqrt(2 d_k); divide by "
                         "sqrt(d_k).",
        }
        for label in same:
            cause = causes.get(label.split(" ", 1)[1] if " " in label else "")
            if cause:
                return failed(name, f"{context}, {cause}")
        spread = 6 * math.sqrt(2 / n + 2 / (n * n))
        if abs(v / d_k - 1) <= spread:
            return failed(name, f"{context}, {causes['unscaled']}")
        if abs(v * d_k - 1) <= spread:
            return failed(name, f"{context}, {causes['by d_k']}")
        near = "" if abs(v - 1) <= spread else (" (for standard normal queries and keys it is close to 1; yours is "
                                               f"{v:.3g})")
        return failed(name, f"{context}, your variance {v:.4g} is not the variance of the scaled scores of queries "
                            f"and keys drawn from rng{near}: draw the queries, then the keys, each of shape (n, d_k), "
                            "with rng.normal, and take the variance of all n * n scaled scores.")
    widths = ", ".join(str(int(d)) for d in sorted(d_ks))
    return passed(name, f"the variance of the scaled scores, reproducible from rng, for d_k = {widths}.")


# --- chapter 4: permutation equivariance ----------------------------------------------------


def _attends(rng: np.random.Generator, d_model: int):
    """Functions (n, d_model) -> (n, d_model): equivariant ones and ones that are not, with names."""
    params = _init_multi_head(d_model, 2, rng)
    shift = rng.normal(size=(64, d_model))

    def plain(X):
        return _multi_head_attention(X, X, params, 2)[0]

    def positional(X):
        Xp = X + _positional_encoding(len(X), d_model)  # (n, d_model)
        return _multi_head_attention(Xp, Xp, params, 2)[0]

    def position_bias(X):
        return np.tanh(X) + shift[: len(X)]

    def causal(X):
        return _multi_head_attention(X, X, params, 2, _causal_mask(len(X)))[0]

    return [("plain self-attention", plain), ("self-attention with positions", positional),
            ("an elementwise function plus a position bias", position_bias),
            ("causal self-attention", causal), ("reversing the rows", lambda X: X[::-1])]


@graded()
def check_equivariance_gap(fn, *, name: str = "Equivariance gap") -> CheckResult:
    """Check a learner's ``fn(attend, X, perm)``: ``max |attend(X[perm]) - attend(X)[perm]|`` as one float.

    Tried on equivariant functions (gap 0 up to rounding) and on functions that are not
    (positions added, a causal mask, a reversal), with inputs drawn afresh at every check.
    Comparing with the inverse permutation, a signed maximum, a mean and a missing
    ``abs`` are named.

    Examples
    --------
    >>> check_equivariance_gap(lambda a, X, p: float(np.abs(a(X[p]) - a(X)[p]).max())).passed
    True
    >>> "mean" in check_equivariance_gap(lambda a, X, p: float(np.abs(a(X[p]) - a(X)[p]).mean())).message
    True
    """
    rng = np.random.default_rng()
    first_failure = None
    for n, d_model in ((5, 6), (int(rng.integers(6, 10)), 4)):
        X = rng.normal(size=(n, d_model))
        perm = rng.permutation(n)
        while np.array_equal(perm, np.arange(n)) or np.array_equal(perm, np.argsort(perm)):
            perm = rng.permutation(n)
        attends = _attends(rng, d_model)
        # each one negated too: a signed maximum (no abs) then misses the gap one way or the other (adv10 F1's kin)
        attends += [(f"minus ({label})", lambda X, a=attend: -a(X)) for label, attend in attends]
        for label, attend in attends:
            context = f"with attend = {label} and n = {n}"
            value, problem = attempt(name, fn, attend, X, perm, names=("attend", "X", "perm"),
                                     expected="fn(attend, X, perm)")
            if problem is not None:
                return in_context(problem, context)
            arr = np.asarray(value)
            if arr.shape == (n, d_model):
                return failed(name, f"{context}, your function returns an array of shape {arr.shape}: reduce the "
                                    "differences to one number, the largest absolute one.")
            got, problem = _number(name, value, context)
            if problem is not None:
                return problem
            diff = attend(X[perm]) - attend(X)[perm]
            expected = float(np.abs(diff).max())
            if math.isclose(got, expected, rel_tol=1e-6, abs_tol=1e-9):
                continue
            inverse = np.argsort(perm)
            variants = [
                (float(np.abs(attend(X[inverse]) - attend(X)[perm]).max()),
                 "it mixes two permutations: compare attend(X[perm]) with attend(X)[perm], the same perm on both."),
                (float(np.abs(attend(X[perm]) - attend(X)[inverse]).max()),
                 "it mixes two permutations: compare attend(X[perm]) with attend(X)[perm], the same perm on both."),
                (float(diff.max()), "take the absolute value before the maximum: a difference can be negative."),
                (float(np.abs(diff).mean()), "that is the mean of the absolute differences; the exercise asks for "
                                             "the largest one (max)."),
                (float(np.abs(diff).sum()), "that is the sum of the absolute differences; the exercise asks for "
                                            "the largest one (max)."),
            ]
            causes = list(dict.fromkeys(cause for other, cause in variants
                                        if math.isclose(got, other, rel_tol=1e-6, abs_tol=1e-9)))
            if len(causes) == 1:
                return failed(name, f"{context}, {causes[0]}")
            if causes:  # two mistakes give this same number here: a later case tells them apart
                first_failure = first_failure or failed(name, f"{context}, {causes[0]}")
                continue
            if expected < 1e-9:
                return failed(name, f"{context}, your gap is {got:.3g}; this attend is an equivariant function, so "
                                    "the gap is 0 up to rounding.")
            return failed(name, f"{context}, your gap is {got:.3g}, which is not the largest absolute difference "
                                "between attend(X[perm]) and attend(X)[perm] for this attend (not equivariant): "
                                "take np.abs of the difference, then its maximum over all entries.")
    if first_failure is not None:
        return first_failure
    return passed(name, "correct for equivariant and non-equivariant functions on fresh inputs.")


# --- chapter 6: greedy generation -----------------------------------------------------------


def _far_back_prompt(rng, vocab_size: int, filler_tokens: tuple[int, int] = (1100, 1301)) -> np.ndarray:
    """``[a, b, c] + filler + [a, b]``: 1,100 to 1,300 filler tokens by default (adv14 F2: longer than the block
    sizes 64 to 1024; the grader also asks for 2,100 to 2,300, past 2,048, adv15 F2) with neither ``b`` nor ``c``
    in them, so the next token (``c``) comes from the start of the prompt alone: a context window shorter than
    the prompt never sees ``c`` and cannot predict it (the head copies tokens it attends to), whatever the
    window's size."""
    a, b, c = (int(t) for t in rng.permutation(vocab_size)[:3])
    others = np.array([t for t in range(vocab_size) if t not in (b, c)])
    filler = others[rng.integers(0, len(others), size=int(rng.integers(*filler_tokens)))]
    return np.array([a, b, c, *filler.tolist(), a, b])


def _greedy(prompt, vocab_size: int, n_new: int, scale: float = 5.0) -> np.ndarray:
    """What :func:`attnlib.toy_lm.generate` returns, from the last row of the attention only (O(n) a step, not the
    (n, n) weights: a 2,200-token prompt took 0.3 s a step).  The last query scores key j by ``scale`` times the
    number of its two context tokens that match; on a near tie of the two most probable tokens (where rounding could
    pick either) the step is taken by ``next_token_head`` itself, so the result is generate's exactly."""
    ids = np.asarray(prompt, dtype=int)
    for _ in range(n_new):
        n = len(ids)
        if n < 3:
            probs = _next_token_head(ids, vocab_size, scale=scale)[0][-1]
        else:
            prev1 = np.concatenate([[-1], ids[:-1]])  # token j-1 (none for j = 0)
            prev2 = np.concatenate([[-1, -1], ids[:-2]])  # token j-2
            matches = (prev1 == ids[-1]).astype(float) + (prev2 == ids[-2]).astype(float)
            w = np.exp(scale * (matches - matches.max()))
            probs = np.bincount(ids, weights=w, minlength=vocab_size) / w.sum()
            top = np.sort(probs)[-2:]
            if top[1] - top[0] < 1e-9:
                probs = _next_token_head(ids, vocab_size, scale=scale)[0][-1]
        ids = np.append(ids, int(np.argmax(probs)))
    return ids


@graded(forbid=("generate",))
def check_greedy_generate(fn, *, name: str = "Greedy generation", rng=None, short_prompts: int = 0,
                          long_prompts: int = 0) -> CheckResult:
    """Check a learner's ``fn(ids, vocab_size, n_new)`` against greedy generation with ``next_token_head``.

    Prompts are drawn afresh at every check; the message names the first generated
    position that differs and what a learner typically got wrong there, never the tokens
    it expected.  attnlib's ``generate`` refuses to run inside ``fn``.

    Examples
    --------
    >>> import attnlib
    >>> def greedy(ids, vocab_size, n_new):
    ...     ids = np.asarray(ids)
    ...     for _ in range(n_new):
    ...         probs, _ = attnlib.toy_lm.next_token_head(ids, vocab_size)
    ...         ids = np.append(ids, probs[-1].argmax())
    ...     return ids
    >>> check_greedy_generate(greedy).passed
    True
    """
    rng = np.random.default_rng() if rng is None else rng
    vocab_size = int(rng.integers(6, 10))
    motif = rng.permutation(vocab_size)[:4]
    prompts = [np.concatenate([motif, motif[:2]]), rng.integers(0, vocab_size, size=int(rng.integers(5, 9)))]
    # ``short_prompts`` more: few tokens, repeated, and more new tokens than the prompt has, so that an answer
    # that looks at only the last len(prompt) tokens (or any window) loses context it needs
    prompts += [rng.integers(0, 3, size=int(rng.integers(3, 6))) for _ in range(short_prompts)]
    # ``long_prompts`` more: 1,105 to 1,305 tokens whose continuation depends on the first three (a context
    # window of the last 16 to 1024 tokens, as nanoGPT's generate crops to its block size, cannot see them)
    # (adv15 F2: the last of them 2,100 to 2,300 tokens, past GPT-3's and LLaMA's 2,048-token window, with one new
    # token, the one that only the prompt's start predicts: a step on it costs about 1 s; with long_prompts=1 it is
    # the only one, which catches every window the shorter one does)
    first_long = len(prompts) + 1
    prompts += [_far_back_prompt(rng, vocab_size, (2100, 2301) if i == long_prompts - 1 else (1100, 1301))
                for i in range(long_prompts)]
    for number, prompt in enumerate(prompts, start=1):
        # 2 new tokens on a long prompt (the first is the one only the prompt's start predicts; the second shows that
        # it was appended): each step sends the grader a (n, n) weights array of 1,100+ rows, and 4 to 7 steps there
        # doubled the cost of grading this exercise for nothing more caught; 1 past 2,048 tokens (~1 s a step)
        n_new = int(rng.integers(4, 8)) if number <= 2 else 2 if number >= first_long else int(rng.integers(10, 15))
        n_new = 1 if len(prompt) > 2048 else n_new
        context = f"for prompt {number} of {len(prompts)} ({len(prompt)} tokens, {n_new} new)"
        value, problem = attempt(name, fn, prompt, vocab_size, n_new, convert=to_array,
                                 names=("ids", "vocab_size", "n_new"), expected="fn(ids, vocab_size, n_new)")
        if problem is not None:
            return in_context(problem, context)
        expected = _greedy(prompt, vocab_size, n_new)
        if value.shape == (n_new,):
            return failed(name, f"{context}, you returned only the {n_new} new tokens; return the prompt followed "
                                "by them (the full array of ids).")
        if value.shape != expected.shape:
            return failed(name, f"{context}, your array has shape {value.shape}; expected {expected.shape}: the "
                                f"{len(prompt)} prompt tokens followed by {n_new} new ones.")
        if not np.array_equal(value[: len(prompt)], prompt):
            return failed(name, f"{context}, your array does not start with the prompt unchanged.")
        wrong = np.flatnonzero(value != expected)
        if wrong.size:
            step = int(wrong[0]) - len(prompt) + 1
            far = (" This prompt's continuation depends on its first tokens: a context window (only the last "
                   "few tokens given to next_token_head) cannot see them." if number >= first_long else "")
            return failed(name, f"{context}, new token {step} differs from greedy generation (the earlier "
                                f"{step - 1} agree). At each step run next_token_head on the whole sequence "
                                f"so far, take the last row of the probabilities and append its argmax.{far}")
    count = "two" if len(prompts) == 2 else str(len(prompts))
    return passed(name, f"the same tokens as greedy generation on {count} fresh prompts.")


# --- chapter 6: a DALL-E-style stream's image rows and text columns --------------------------


def _unit_rows(X) -> np.ndarray:
    X = np.asarray(X, dtype=float)
    return X / np.linalg.norm(X, axis=-1, keepdims=True)


@graded()
def check_image_to_text(fn, *, streams=(), seed=None, scale: float = 10.0,
                        name: str = "Image rows, text columns") -> CheckResult:
    """Check a learner's ``fn(W_stream, n_text)`` -> ``(n_image, n_text)``: each image token's split of its text weight.

    For each stream (``streams``: pairs ``(text_tokens, image_tokens)``, then two drawn from
    ``seed``, afresh when it is None) the weights ``W_stream`` of causal self-attention over
    the text tokens followed by the image tokens are computed here, and the answer is
    compared with a separate cross-attention from the image tokens (queries) to the text
    tokens (keys): the two are the same numbers.  The words' rows, a block that is not
    renormalised and columns renormalised instead of rows are named.

    Examples
    --------
    >>> def image_to_text(W_stream, n_text):
    ...     block = W_stream[n_text:, :n_text]
    ...     return block / block.sum(axis=1, keepdims=True)
    >>> check_image_to_text(image_to_text).passed
    True
    >>> "sum to 1" in check_image_to_text(lambda W, n_text: W[n_text:, :n_text]).message
    True
    """
    rng = np.random.default_rng(seed)
    cases = [(np.asarray(T, dtype=float), np.asarray(E, dtype=float)) for T, E in streams]
    for n_text, n_image, d in ((3, 7, 5), (int(rng.integers(1, 6)), int(rng.integers(2, 12)), int(rng.integers(2, 9)))):
        cases.append((rng.normal(size=(n_text, d)), rng.normal(size=(n_image, d))))
    for number, (T, E) in enumerate(cases, start=1):
        T, E = _unit_rows(T), _unit_rows(E)
        n_text, n_image = len(T), len(E)
        n = n_text + n_image
        context = f"for stream {number} of {len(cases)} ({n_text} text tokens, then {n_image} image tokens)"
        stream = np.concatenate([T, E])  # (n, d): the words, then the image
        _, W_stream = _attention(stream, stream, stream, _causal_mask(n), scale=scale)  # (n, n)
        value, problem = attempt(name, fn, W_stream, n_text, convert=to_array, names=("W_stream", "n_text"),
                                 expected="fn(W_stream, n_text)")
        if problem is not None:
            return in_context(problem, context)
        _, expected = _attention(E, T, T, scale=scale)  # (n_image, n_text): image queries, text keys
        if value.shape == expected.shape and np.allclose(value, expected, atol=1e-9, rtol=1e-6):
            continue
        block = W_stream[n_text:, :n_text]  # (n_image, n_text)
        if value.shape == (n, n_text):
            return failed(name, f"{context}, your array has the rows of every token, shape {value.shape}; keep only "
                                f"the rows of the image tokens (from row n_text on): shape {expected.shape}.")
        if value.shape == (n_text, n_image):
            return failed(name, f"{context}, your array has shape {value.shape}: one row per word. The exercise asks "
                                f"for one row per image token and one column per word, shape {expected.shape}.")
        if value.shape != expected.shape:
            return failed(name, f"{context}, your array has shape {value.shape}; expected {expected.shape}: one row "
                                "per image token, one column per word.")
        if np.allclose(value, block, atol=1e-9, rtol=1e-6):
            return failed(name, f"{context}, your rows are the image tokens' weights on the words as they are; each "
                                "row should sum to 1: divide it by its sum, the weight that image token gives to "
                                "all the words.")
        if n_image > 1 and np.allclose(value, block / block.sum(axis=0, keepdims=True), atol=1e-9, rtol=1e-6):
            return failed(name, f"{context}, your columns sum to 1; each image token's row should (divide every "
                                "row by its own sum).")
        row = int(np.argmax(np.abs(value - expected).max(axis=1)))
        return failed(name, f"{context}, your row for image token {row} is not how it divides its text weight "
                            "among the words (its row of W_stream, the word columns, renormalised).")
    return passed(name, f"the same numbers as cross-attention from image to text on {len(cases)} streams.")


# --- chapter 7: shapes, memory, a future-leak detector --------------------------------------


@graded(forbid=("multi_head_attention",))
def check_mha_shapes(fn, *, name: str = "Shapes of multi-head attention") -> CheckResult:
    """Check a learner's ``fn(batch, n_q, n_k, d_model, n_heads)`` -> three shape tuples.

    The shapes of the split queries, the weights and the output are measured here by running
    attnlib on sizes drawn afresh at every check; each of the three is judged on its own.

    Examples
    --------
    >>> def shapes(b, n_q, n_k, d, h):
    ...     return (b, h, n_q, d // h), (b, h, n_q, n_k), (b, n_q, d)
    >>> check_mha_shapes(shapes).passed
    True
    """
    rng = np.random.default_rng()
    sizes = [(2, 3, 5, 8, 2), (1, 7, 7, 12, 3)]
    n_heads = int(rng.integers(2, 5))
    sizes.append((int(rng.integers(2, 5)), int(rng.integers(1, 6)), int(rng.integers(6, 11)),
                  n_heads * int(rng.integers(2, 5)), n_heads))
    labels = ("the split queries", "the weights", "the output")
    for size in sizes:
        batch, n_q, n_k, d_model, n_heads = size
        context = f"for (batch, n_q, n_k, d_model, n_heads) = {size}"
        value, problem = attempt(name, fn, *size, names=("batch", "n_q", "n_k", "d_model", "n_heads"),
                                 expected="fn(batch, n_q, n_k, d_model, n_heads)")
        if problem is not None:
            return in_context(problem, context)
        X_q, X_kv = rng.normal(size=(batch, n_q, d_model)), rng.normal(size=(batch, n_k, d_model))
        params = _init_multi_head(d_model, n_heads, rng)
        out, weights = _multi_head_attention(X_q, X_kv, params, n_heads)
        measured = (_split_heads(X_q @ params["W_q"], n_heads).shape, weights.shape, out.shape)
        try:
            got = [tuple(shape) for shape in value]
        except TypeError:
            return failed(name, f"{context}, your function should return three tuples of integers, got {value!r:.80}.")
        if not all(isinstance(s, int | np.integer) and not isinstance(s, bool) for shape in got for s in shape):
            return failed(name, f"{context}, your function should return three tuples of integers, got {value!r:.80}: "
                                "a shape holds integers (use // to divide sizes).")
        got = [tuple(int(s) for s in shape) for shape in got]
        if len(got) != 3:
            return failed(name, f"{context}, your function should return three shapes, got {len(got)}.")
        for label, mine, true in zip(labels, got, measured, strict=True):
            if mine == true:
                continue
            hint = ""
            if len(mine) != len(true):
                hint = f" It should have {len(true)} axes."
            elif sorted(mine) == sorted(true):
                hint = " The right sizes in the wrong order."
            return failed(name, f"{context}, your shape of {label}, {mine}, is not the one attnlib produces.{hint}")
    return passed(name, "all three shapes right for three sizes (one drawn afresh).")


@graded()
def check_weights_bytes(fn, *, name: str = "Memory of the weights", itemsize: bool = True) -> CheckResult:
    """Check a learner's ``fn(batch, n_heads, n, itemsize=8)``: bytes of the ``(batch, n_heads, n, n)`` weights.

    The expected count is measured (``.nbytes`` of weights that attnlib computes, float64
    and float32) on sizes drawn afresh at every check.  With ``itemsize=False`` the
    function takes three arguments and counts float64 numbers.  Counting entries instead
    of bytes and ``n`` instead of ``n**2`` are named.

    Examples
    --------
    >>> check_weights_bytes(lambda b, h, n, itemsize=8: b * h * n * n * itemsize).passed
    True
    >>> print(check_weights_bytes(lambda b, h, n, itemsize=8: b * h * n * n).message)  # doctest: +NORMALIZE_WHITESPACE
    for (batch, n_heads, n, itemsize) = (1, 1, 10, 8), your answer is the number of entries;
    multiply by the bytes per number (itemsize).
    """
    rng = np.random.default_rng()
    larger = (1, 1, 10, 8)
    # batch * n_heads * n = 100 would give 800 bytes "per n", and a hard-coded visible answer (800) would read as
    # "grows like n": draw again
    while larger[0] * larger[1] * larger[2] in (10, 100):
        larger = (int(rng.integers(2, 4)), int(rng.integers(2, 5)), int(rng.integers(20, 40)), 8)
    sizes = [(1, 1, 10, 8), larger]
    if itemsize:
        sizes.append((int(rng.integers(1, 4)), int(rng.integers(1, 4)), int(rng.integers(5, 30)), 4))
    for batch, n_heads, n, size in sizes:
        args = (batch, n_heads, n, size) if itemsize else (batch, n_heads, n)
        context = f"for (batch, n_heads, n{', itemsize' if itemsize else ''}) = {args}"
        value, problem = attempt(name, fn, *args, names=("batch", "n_heads", "n", "itemsize")[: len(args)],
                                 expected="fn(batch, n_heads, n, itemsize=8)" if itemsize else "fn(batch, n_heads, n)")
        if problem is not None:
            return in_context(problem, context)
        got, problem = _number(name, value, context)
        if problem is not None:
            return problem
        Q = rng.normal(size=(batch, n_heads, n, 2)).astype(np.float32 if size == 4 else np.float64)
        _, weights = _attention(Q, Q, Q)  # (batch, n_heads, n, n)
        expected = weights.astype(np.float32 if size == 4 else np.float64).nbytes
        if got == expected:
            continue
        entries = batch * n_heads * n * n
        if got == entries:
            return failed(name, f"{context}, your answer is the number of entries; multiply by the bytes per "
                                "number (itemsize).")
        if got == batch * n_heads * n * size:
            return failed(name, f"{context}, your count grows like n; the weights hold one number per "
                                "(query, key) pair, n * n of them per head.")
        if got == entries * 8 and size == 4:
            return failed(name, f"{context}, your answer uses 8 bytes per number; use the itemsize argument.")
        return failed(name, f"{context}, your answer {got:g} is not the size of the weights array.")
    return passed(name, f"right for {len(sizes)} sizes, measured on arrays attnlib computes.")


def _leaky_attends(rng: np.random.Generator, n: int, d_model: int, n_heads: int = 2):
    """Functions (n, d_model) -> (n, d_model) with whether each leaks the future."""
    p = _init_multi_head(d_model, n_heads, rng)
    mask = _causal_mask(n)

    def causal(X):
        return _multi_head_attention(X, X, p, n_heads, mask)[0]

    def bidirectional(X):
        return _multi_head_attention(X, X, p, n_heads)[0]

    def wrong_split(X):  # the view-instead-of-transpose bug
        Q, K, V = ((X @ p[w]).reshape(n_heads, n, d_model // n_heads) for w in ("W_q", "W_k", "W_v"))
        heads, _ = _attention(Q, K, V, mask)
        return _merge_heads(heads) @ p["W_o"]

    def last_leaks_to_first(sign):  # only the last token reaches the first one's output
        def last_leaks_to_first(X):
            out = causal(X)
            out[0] += sign * 1e-3 * X[-1]
            return out
        return last_leaks_to_first

    def running_mean(X):  # causal, no attention at all
        return np.cumsum(X, axis=0) / np.arange(1, n + 1)[:, None]

    def rounding_only(X):  # adv15 F4: later tokens move earlier outputs by 1e-12, far under the 1e-9 threshold,
        out = causal(X)    # as float rounding does; a detector that asks for bit-identical outputs calls it a leak
        out[:-1] += 1e-12 * X[1:]
        return out

    # The subtle leak's size, drawn between 1e-8 and 3e-8: ten times the statement's 1e-9 threshold at
    # least, and clearly under the loose tolerances 1e-7 and 1e-6 (adv11 F5: a leak of exactly 1e-6 let
    # atol=1e-6 pass, float rounding at 10 pushing some differences just above it).
    tiny = float(10.0 ** rng.uniform(-8.0, -7.5))

    def tiny_leak(sign):  # a leak well above 1e-9 but easy to miss by eye
        def tiny_leak(X):
            # Outputs kept away from 0 (shifted by 10): a relative tolerance such as np.allclose's rtol=1e-5
            # is then at least 1e-4 everywhere, far above the leak, and misses it as a loose threshold does.
            out = causal(X) + 10.0
            out[:-1] += sign * tiny * X[1:]
            return out
        return tiny_leak

    def large_tiny_leak(shift):  # adv17 F3: the same leak on outputs near 1000, or (the contrast) near 1:
        def large_tiny_leak(X):  # a threshold relative to the outputs (1e-9 x 1000 = 1e-6) misses it there only
            out = causal(X) + shift
            out[:-1] += tiny * X[1:]
            return out
        return large_tiny_leak

    def rounding_near_zero(X):  # adv17 F3: causal, outputs near 0 (1e-6) moved by rounding only (1e-12): a
        out = 1e-6 * causal(X)  # threshold relative to the outputs (or each output) calls that a leak
        out[:-1] += 1e-12 * X[1:]
        return out

    def middle_leaks_back(sign):  # token n // 2 reaches the output before it; the last token leaks nowhere
        def middle_leaks_back(X):
            out = causal(X)
            out[n // 2 - 1] += sign * 1e-3 * X[n // 2]
            return out
        return middle_leaks_back

    c = int(rng.integers(0, d_model))

    def one_entry_leak(spread):  # adv16 F3: the last token moves ONE number of the first output by `tiny`: the mean
        def one_entry_leak(X):   # change over the j * d_model earlier entries (up to 56) falls below 1e-9
            out = causal(X)
            if spread:  # the contrast: the same leak in every entry of that output (a mean finds it)
                out[0] += tiny * X[-1]
            else:
                out[0, c] += tiny * X[-1, c]
            return out
        return one_entry_leak

    j = int(rng.integers(1, n))  # a leak from a random later token j into a random earlier output i
    i = int(rng.integers(0, j))

    def leak(source: int, target: int):
        def make(sign):
            def leaky(X):
                out = causal(X)
                out[target] += sign * 1e-3 * X[source]
                return out
            return leaky
        return make

    # A leak can raise an output or lower it: each additive leak gets a random sign, and one always lowers
    # (adv10 F1: a detector comparing the signed difference, without abs, missed every leak here).
    # A case is (label, function, leaks, the same leak raising the outputs when this one lowers them, else None).
    additive = [(f"a causal function where token {j} leaks into output {i} only", leak(j, i), None),
                ("a causal function where token 1 lowers output 0 only", leak(1, 0), -1.0),
                (f"a causal function where token {n - 1} leaks into output {n - 2} only", leak(n - 1, n - 2), None),
                ("a causal function where a middle token leaks into the output before it", middle_leaks_back, None),
                ("a causal function where only the last token leaks into the first output", last_leaks_to_first,
                 None),
                ("a function whose leak changes outputs by about 1e-8", tiny_leak, None)]
    leaky = []
    for label, make, sign in additive:
        sign = float(rng.choice([-1.0, 1.0])) if sign is None else sign
        leaky.append((label, make(sign), True, (make(1.0), LEAK_ABS_MISSED) if sign < 0 else None))
    return [("causal attention", causal, False, None), ("attention without a mask", bidirectional, True, None),
            *leaky[:5], ("causal attention with the reshape-instead-of-transpose bug", wrong_split, True, None),
            ("a running mean", running_mean, False, None),
            ("a causal function whose earlier outputs move by rounding only (about 1e-12)", rounding_only, False, None),
            leaky[5],
            (f"a causal function where the last token moves one number of the first output by about {tiny:.0e}",
             one_entry_leak(False), True, (one_entry_leak(True), LEAK_MEAN)),
            ("a function whose outputs are near 1000 and whose leak changes them by about 1e-8", large_tiny_leak(1e3),
             True, (large_tiny_leak(0.0), LEAK_RELATIVE)),
            ("a causal function whose earlier outputs move by rounding only (about 1e-12) and are near 0 (about 1e-6)",
             rounding_near_zero, False, None)]


LEAK_RELATIVE = ("it finds this leak on outputs near 1 and misses it on outputs near 1000. Compare the largest "
                 "absolute change with 1e-9 itself, not with 1e-9 times the size of the outputs: the threshold is "
                 "absolute")


LEAK_MEAN = ("a leak may move one number of one output, by little: add 1 to every number of the later token's "
             "row, as the exercise says (setting it to 0 or a smaller nudge moves that number less), and compare "
             "the largest absolute change with 1e-9, not the average change (a mean over all the earlier outputs "
             "divides it by their count)")


LEAK_ABS = "Take the absolute value of the difference: a leak can lower an output"
LEAK_ABS_MISSED = f"it finds this leak when it raises the output and misses it when it lowers it. {LEAK_ABS}"


@graded()
def check_leak_detector(fn, *, name: str = "Future-leak detector", rng=None, n: int | None = None) -> CheckResult:
    """Check a learner's ``fn(attend, X)`` -> bool: True when some output depends on a later token.

    Tried on causal functions (one of them moving earlier outputs by rounding only, 1e-12) and on
    leaky ones (no mask, the reshape bug, a leak from the last token into the first output only, a
    leak of size 1e-8 to 3e-8, and one of that size into a single number of the first output, which a
    detector averaging the change misses), with inputs drawn afresh: ``n`` tokens (drawn from 5..7 when None).

    Examples
    --------
    >>> def leaks_future(attend, X):
    ...     base = attend(X)
    ...     for j in range(1, len(X)):
    ...         Xj = X.copy(); Xj[j] += 1.0
    ...         if np.abs(attend(Xj)[:j] - base[:j]).max() > 1e-9:
    ...             return True
    ...     return False
    >>> check_leak_detector(leaks_future).passed
    True
    >>> check_leak_detector(lambda attend, X: False).passed
    False
    """
    rng = np.random.default_rng() if rng is None else rng
    n, d_model = (int(rng.integers(5, 8)) if n is None else int(n)), 8
    X = rng.normal(size=(n, d_model))
    cases = list(_leaky_attends(rng, n, d_model))
    for i in rng.permutation(len(cases)):  # a fresh order each time: an answer cannot replay the verdicts
        label, attend, leaks, raising = cases[i]
        context = f"with {label}"
        value, problem = attempt(name, fn, attend, X, names=("attend", "X"), expected="fn(attend, X)")
        if problem is not None:
            return in_context(problem, context)
        if not isinstance(value, (bool, np.bool_)):
            return failed(name, f"{context}, your function returned {type(value).__name__}; return True or False.")
        if bool(value) == leaks:
            continue
        if leaks:
            if raising is not None:  # does the detector see a plainer form of the same leak? (which one, and what
                contrast, why = raising  # missing this one then means: LEAK_ABS_MISSED or LEAK_MEAN)
                again, problem = attempt(name, fn, contrast, X, names=("attend", "X"), expected="fn(attend, X)")
                if problem is None and isinstance(again, (bool, np.bool_)) and bool(again):
                    return failed(name, f"{context}, your detector says no leak, but there is one: {why}.")
            return failed(name, f"{context}, your detector says no leak, but there is one. Change every later "
                                "token in turn and compare every earlier output, with the 1e-9 threshold.")
        if label.endswith("near 0 (about 1e-6)"):
            return failed(name, f"{context}, your detector reports a leak where there is none: differences below "
                                "1e-9 are rounding, not a leak, however small the outputs are. Compare the largest "
                                "absolute difference with 1e-9 itself, not with 1e-9 times the outputs.")
        if label.startswith("a causal function whose earlier outputs move by rounding"):
            return failed(name, f"{context}, your detector reports a leak where there is none: differences below "
                                "1e-9 are rounding, not a leak. Compare the largest absolute difference with 1e-9 "
                                "itself, instead of asking for identical outputs or for a change relative to them.")
        return failed(name, f"{context}, your detector reports a leak where there is none: compare only the "
                            "outputs of tokens before the one you changed (changing token j may move output j).")
    return passed(name, "right on causal and leaky functions, the subtle leaks included.")


# --- predict, then measure ------------------------------------------------------------------


PLAIN_RULE = ("a prediction is written in plain Python, numbers and arithmetic (math is there): it is graded "
              "without numpy, so that it is a prediction and not the measurement")
_MEASURING = {"np", "numpy", "al", "attnlib", "scipy", "torch"}


def _names_used(code) -> set[str]:
    """The global and attribute names a function's code (and the code nested in it) refers to."""
    names = set(code.co_names)
    for const in code.co_consts:
        if hasattr(const, "co_names"):
            names |= _names_used(const)
    return names


def _cell_names(code) -> set[str] | None:
    """The names bound at the top level of the cell (or file) that defined ``code``, None when its source is
    not found: the names the grader, which runs the answer cell alone, also has."""
    import ast
    import linecache

    lines = linecache.getlines(code.co_filename)
    if not lines:
        return None
    try:
        tree = ast.parse("".join(lines))
    except SyntaxError:
        return None
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign, ast.For, ast.With)):
            for sub in ast.walk(node):
                if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store):
                    names.add(sub.id)
    return names


def _plain(value):
    """A lab variable as the grader gives it to a prediction: arrays become lists of numbers."""
    if isinstance(value, (np.ndarray, np.generic)):
        return np.asarray(value).tolist()
    return value


def _as_graded(fn, given: dict):
    """The learner's prediction ``fn`` with the globals the grader gives it (adv15 F6, F9): builtins, math, the
    names its own cell defines and ``given`` (the statement's variables, arrays as plain lists), never the rest
    of the lab's kernel, so that the self-check and the grade say the same."""
    import builtins
    import types

    if not isinstance(fn, types.FunctionType):
        return fn
    own = _cell_names(fn.__code__)
    kernel = fn.__globals__
    if own is None:  # no source to read: keep the functions, classes and modules it may call, never data
        own = {k for k in _names_used(fn.__code__) if k in kernel and (isinstance(kernel[k], (type, types.ModuleType))
                                                                        or callable(kernel[k]))}
    namespace = {"__builtins__": builtins, "__name__": kernel.get("__name__", "__main__"), "math": math}
    namespace.update({k: kernel[k] for k in own if k in kernel and k not in _MEASURING})
    namespace.update({k: _plain(v) for k, v in given.items()})
    return types.FunctionType(fn.__code__, namespace, fn.__name__, fn.__defaults__, fn.__closure__)


def _explain_plain(problem: CheckResult, given) -> CheckResult:
    """A prediction that reached for a lab variable or an array method, told why (adv15 F6, F9)."""
    names = sorted(given)
    offered = f"math and {', '.join(names)}" if names else "math"
    if re.search(r"NameError: name '\w+' is not defined", problem.message):
        return with_hint(problem, f"A prediction is graded alone, in plain Python, with {offered} only: not the "
                                  "lab's other variables. Write the numbers the statement gives into your function.")
    if re.search(r"'(list|float|int)' object has no attribute", problem.message):
        return with_hint(problem, f"A prediction gets {', '.join(names) or 'its data'} as plain Python lists "
                                  "(numpy is not there when it is graded): use sum(...), len(...), max(...) and "
                                  "indexing instead of array methods.")
    return problem


def _shown(x: float) -> str:
    """A number as a prediction's message shows it: a whole number in full (11585, not 1.16e+04), else 3 digits."""
    return f"{int(x)}" if float(x).is_integer() and abs(x) < 1e15 else f"{x:.3g}"


def check_least_sure_query(fn, *, name: str = "Exercise 3") -> CheckResult:
    """Check Lab 1 Exercise 3's ``fn(queries, keys, sigma)``: the query whose largest soft-lookup weight is smallest.

    The reference is the grader's (:mod:`attnlib.grading.catalogue`), computed here so that the
    lab's check cell shows no answer; the cases are the statement's two (keys with a cluster and
    uneven gaps, then section 2's keys), and every mistake of the grader's catalogue is named.

    Examples
    --------
    >>> import attnlib
    >>> least_sure = lambda qs, k, s: qs[np.argmin([attnlib.softmax(-(q - k) ** 2 / (2 * s**2)).max() for q in qs])]
    >>> check_least_sure_query(least_sure).passed
    True
    >>> check_least_sure_query(lambda qs, k, s: qs[0]).passed
    False
    """
    from attnlib.checks import mistakes
    from attnlib.checks._result import check_function
    from attnlib.grading.catalogue import LEAST_SURE_CASES, least_sure_reference

    return check_function(name, fn, least_sure_reference, LEAST_SURE_CASES, forbid=["nadaraya_watson"],
                          mistakes=mistakes("01", 3))


@graded()
def check_prediction(name: str, prediction, measured, *, rtol: float = 0.25, atol: float = 0.0,
                     explanation: str = "", mistakes=(), given: dict | None = None) -> CheckResult:
    """Compare a learner's prediction (a number, or a function returning one) with a measurement.

    Passes when ``|prediction - measured| <= atol + rtol * |measured|``.  A function is a
    prediction in plain Python: one that uses numpy or attnlib fails (the grader runs it without
    them), whatever it returns.  The message
    states both numbers, how far apart they are (a ratio when both are positive) and,
    when they disagree, ``explanation``: why the measurement comes out as it does, or the message of
    a known mistake in ``mistakes`` (pairs of a value, or a function returning one, and a message)
    when the prediction is that mistake's value.

    A function runs as the grader runs it: with ``math``, the names its own cell defines and
    ``given`` (the lab's variables the statement offers, arrays as plain lists), and nothing else
    from the notebook, so that a prediction reading another lab variable fails here as in the grade.

    Examples
    --------
    >>> check_prediction("guess", 10.0, 9.0).passed
    True
    >>> print(check_prediction("guess", 1.0, 8.0, explanation="Each of the 8 terms adds 1.").message)
    your prediction 1 is 8 times smaller than the measured 8 (tolerance 25%). Each of the 8 terms adds 1.
    """
    if callable(prediction):
        code = getattr(prediction, "__code__", None)
        used = sorted(_names_used(code) & _MEASURING) if code is not None else []
        if used:
            return failed(name, f"your prediction uses {', '.join(used)}: {PLAIN_RULE}.")
        given = {} if given is None else dict(given)
        prediction, problem = attempt(name, _as_graded(prediction, given))
        if problem is not None:
            return _explain_plain(problem, given)
    if prediction is None or prediction is Ellipsis:
        return failed(name, f"{NOT_IMPLEMENTED}: write your prediction first.")
    got, problem = _number(name, prediction, "as a prediction")
    if problem is not None:
        return problem
    value = float(np.asarray(measured, dtype=float).reshape(()))
    tolerance = atol + rtol * abs(value)
    if atol == 0:
        within = f"tolerance {rtol:.0%}"
    else:
        within = f"tolerance {atol:g}" if rtol == 0 else f"tolerance {atol:g} + {rtol:.0%}"
    if abs(got - value) <= tolerance:
        return passed(name, f"your prediction {_shown(got)} agrees with the measured {_shown(value)} ({within}).")
    if got > 0 and value > 0:
        ratio = max(got, value) / min(got, value)
        gap = f"{ratio:.3g} times {'larger' if got > value else 'smaller'} than"
    else:
        gap = f"{abs(got - value):.3g} {'above' if got > value else 'below'}"
    for wrong, message in mistakes:
        wrong = float(wrong() if callable(wrong) else wrong)
        if abs(got - wrong) <= 0.01 * abs(wrong) + 1e-12:
            explanation = message
            break
    return failed(name, f"your prediction {_shown(got)} is {gap} the measured {_shown(value)} ({within}). "
                        f"{explanation}".rstrip())



# --- chapter 4: which rows of a translation's cross-attention cross ---------------------------


@graded()
def check_crossing_rows(fn, *, name: str = "Crossing rows") -> CheckResult:
    """Check a learner's ``fn(alignment)``: the French positions whose English word sits elsewhere.

    ``alignment`` is a :class:`attnlib.translate.Pair`'s ``alignment`` (a list: French position
    ``i`` translates English position ``alignment[i]``); the answer is the increasing row numbers
    ``i`` with ``alignment[i] != i`` (the rows of the cross-attention heatmap whose
    aligned cell is off the diagonal).  Sentences are drawn afresh at every check, plus
    one with no colour (no row crosses) and an alignment whose first two words swap (row 0
    crosses, which never happens in the toy language).  Named mistakes: a True/False per row
    instead of row numbers, rows counted from 1, row 0 skipped, the rows that stay on the
    diagonal, only the nouns' rows or only the colours' rows, rows out of order.

    Examples
    --------
    >>> check_crossing_rows(lambda a: [i for i, j in enumerate(a) if i != j]).passed
    True
    >>> "colour" in check_crossing_rows(lambda a: [i for i, j in enumerate(a) if j == i + 1]).message
    True
    """
    from attnlib import translate as _tr

    rng = np.random.default_rng()
    pairs = [_tr.random_sentence(rng, n_adjectives=int(rng.integers(1, 4))) for _ in range(3)]
    pairs.append(_tr.translate_words("the cat sees a dog".split()))
    cases = [(f"for \"{' '.join(pair.source)}\" -> \"{' '.join(pair.target)}\"", list(pair.alignment))
             for pair in pairs]
    # adv15 F11: in the toy language every sentence starts with an article, so row 0 never crosses; an alignment
    # of another language, whose first two words swap places, shows a loop that skips row 0
    swapped = [1, 0, *range(2, int(rng.integers(4, 7)))]
    swapped[-2:] = swapped[-2:][::-1]
    cases.append((f"for the alignment {swapped} (another language: its first two words swap places)", swapped))
    for context, given in cases:
        value, problem = attempt(name, fn, list(given), convert=to_array, names=("alignment",),
                                 expected="fn(alignment)")
        if problem is not None:
            return in_context(problem, context)
        n = len(given)
        alignment = np.array(given)
        rows = np.arange(n)
        expected = rows[alignment != rows]
        if value.dtype == bool:
            if value.shape == (n,) and np.array_equal(value, alignment != rows):
                return failed(name, f"{context}, you returned True/False for each row; return the row numbers "
                                    "where it is True (np.flatnonzero turns one into the other).")
            return failed(name, f"{context}, you returned True/False values; return the row numbers (ints).")
        if value.ndim != 1 or value.dtype.kind not in "iuf" or not np.all(value == np.round(value)):
            return failed(name, f"{context}, return a 1-D array of row numbers (ints), got {value.dtype} "
                                f"of shape {value.shape}.")
        got = value.astype(int)
        if np.array_equal(got, expected):
            continue
        if sorted(got.tolist()) == expected.tolist():
            return failed(name, f"{context}, you have the right rows but not in increasing order.")
        if np.array_equal(got, expected + 1) and expected.size:
            return failed(name, f"{context}, your rows are counted from 1; rows (and positions) count from 0.")
        if np.array_equal(got, rows[alignment == rows]):
            return failed(name, f"{context}, those are the rows that stay on the diagonal; the exercise asks for "
                                "the ones whose English word sits at another position.")
        if expected.size and expected[0] == 0 and np.array_equal(got, expected[1:]):
            return failed(name, f"{context}, you have every crossing row but row 0: your loop starts at 1. Rows "
                                "count from 0, and the first row can cross too.")
        nouns, colours = rows[alignment == rows + 1], rows[alignment == rows - 1]
        if expected.size and np.array_equal(got, nouns):
            return failed(name, f"{context}, you found only the French nouns, which read one position to the right; "
                                "the colour written after each noun reads one position back: its row crosses too.")
        if expected.size and np.array_equal(got, colours):
            return failed(name, f"{context}, you found only the colours, which read one position back; the noun "
                                "written before each colour reads one position to the right: its row crosses too.")
        return failed(name, f"{context}, your rows {got.tolist()} are not the rows whose English word sits at "
                            f"another position ({expected.size} rows here).")
    return passed(name, f"correct on {len(pairs)} sentences, one of them without a colour, and on an alignment "
                        "whose first row crosses.")
