"""The self-checks diagnose: each known bug, written on purpose, gets its own plain-words message.

Every buggy function below is a mistake learners make (several are reported in the issue trackers
of other attention tutorials); the test asserts that the check fails it with the right diagnosis,
and that correct implementations pass.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import attnlib
from attnlib.checks import (
    NOT_IMPLEMENTED,
    CheckResult,
    check_attention,
    check_causal_mask,
    check_dropout,
    check_function,
    check_merge_heads,
    check_multi_head,
    check_padding_mask,
    check_scores,
    check_softmax,
    check_split_heads,
    check_value,
)
from attnlib.checks._calls import trusted

# ---------------------------------------------------------------- learner-style building blocks

# attnlib's own functions refuse inside a learner's code during a check; the building blocks of
# the buggy versions below use them through trusted stand-ins (as an earlier exercise would be).
ref_softmax = trusted(attnlib.softmax)
ref_padding_mask = trusted(attnlib.padding_mask)


def stable_softmax(x):
    """A typical correct learner softmax (NaN on an all -inf row)."""
    e = np.exp(x - np.max(x, axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def T(A):
    return A.swapaxes(-1, -2)


def attention_with(scale=None, axis=-1, softmax=attnlib.softmax, values="V", masking="-inf"):
    """A learner's attention with one knob turned: the buggy versions are made from it."""

    def attention(Q, K, V, mask=None):
        d_k = Q.shape[-1]
        s = 1 / math.sqrt(d_k) if scale is None else scale(Q, K, V)
        scores = Q @ T(K) * s
        if mask is not None and masking == "-inf":
            scores = np.where(mask, scores, -np.inf)
        elif mask is not None and masking == "-1e9":
            scores = np.where(mask, scores, -1e9)
        elif mask is not None and masking == "zero":
            scores = np.where(mask, scores, 0.0)
        elif mask is not None and masking == "inverted":
            scores = np.where(mask, -np.inf, scores)
        elif mask is not None and masking == "shifted":  # off by one: sees one key too many
            n_q, n_k = scores.shape[-2:]
            scores = np.where(np.tril(np.ones((n_q, n_k), dtype=bool), k=1) | mask, scores, -np.inf)
        elif mask is not None and masking == "index":  # boolean indexing cannot broadcast a mask
            scores = scores.copy()
            scores[~mask] = -np.inf
        weights = softmax(scores, axis=axis) if axis != -1 else softmax(scores)
        if mask is not None and masking == "after":
            weights = weights * mask
        return weights @ (V if values == "V" else K), weights

    return attention


def multi_head_with(scale="head", split="transpose", merge="transpose", w_o=True, heads=None, swap_q_kv=False):
    """A learner's multi-head attention, correct by default, with one knob to break it."""

    def mha(X_q, X_kv, params, n_heads, mask=None):
        if swap_q_kv:
            X_q, X_kv = X_kv, X_q
        h = n_heads if heads is None else heads
        d_model = X_q.shape[-1]
        d_head = d_model // h

        def split_(Y):
            *lead, n, _ = Y.shape
            if split == "reshape":
                return Y.reshape(*lead, h, n, d_head)
            return Y.reshape(*lead, n, h, d_head).swapaxes(-3, -2)

        Q, K, V = split_(X_q @ params["W_q"]), split_(X_kv @ params["W_k"]), split_(X_kv @ params["W_v"])
        s = {"head": 1 / math.sqrt(d_head), "model": 1 / math.sqrt(d_model), "none": 1.0}[scale]
        scores = Q @ T(K) * s
        if mask is not None:
            scores = np.where(mask[..., None, :, :], scores, -np.inf)
        w = attnlib.softmax(scores)
        heads_out = w @ V
        *lead, _, n_q, _ = heads_out.shape
        if merge == "reshape":
            merged = heads_out.reshape(*lead, n_q, d_model)
        else:
            merged = heads_out.swapaxes(-3, -2).reshape(*lead, n_q, d_model)
        return (merged @ params["W_o"] if w_o else merged), w

    return mha


def attention_2d(Q, K, V, mask=None):
    """A learner's attention that only works for one sequence (K.T)."""
    scores = Q @ K.T / np.sqrt(Q.shape[-1])
    if mask is not None:
        scores = np.where(mask, scores, -np.inf)
    weights = attnlib.softmax(scores)
    return weights @ V, weights


def not_implemented(*args, **kwargs):
    raise NotImplementedError("Hint: start from the scores")


def crashes(*args, **kwargs):
    raise ValueError("operands could not be broadcast together")


# ---------------------------------------------------------------- the table of diagnoses

BUGS = {
    # softmax --------------------------------------------------------------------------
    "softmax: exp without normalising": (
        check_softmax, lambda x: np.exp(x), "do not sum to one"),
    "softmax: divides by the sum without exp": (
        check_softmax, lambda x: x / x.sum(axis=-1, keepdims=True), "exponentiate them first"),
    "softmax over the wrong axis": (
        check_softmax, lambda x: ref_softmax(x, axis=0), "softmax over the wrong axis"),
    "softmax normalised over the whole array": (
        check_softmax, lambda x: np.exp(x - x.max()) / np.exp(x - x.max()).sum(), "over the whole array"),
    "softmax with a hard-coded axis=1 fails on a batch": (
        check_softmax, lambda x: ref_softmax(x, axis=1) if np.ndim(x) > 1 else ref_softmax(x),
        "normalises over axis 1"),
    "softmax: non-stable exp overflows on large logits": (
        check_softmax, lambda x: np.exp(x) / np.exp(x).sum(axis=-1, keepdims=True), "exp overflows"),
    "softmax: wrong output shape": (
        check_softmax, lambda x: np.atleast_2d(stable_softmax(x)), "returned shape (1, 4); expected (4,)"),
    "softmax: -inf replaced by 0": (
        check_softmax, lambda x: stable_softmax(np.where(np.isneginf(x), 0.0, x)), "weight exactly 0"),
    "softmax: NaN on a fully masked row": (
        lambda fn: check_softmax(fn, fully_masked_rows=True), stable_softmax, "gives NaN"),
    "softmax: -1e9 gives uniform weights on a fully masked row": (
        lambda fn: check_softmax(fn, fully_masked_rows=True),
        lambda x: stable_softmax(np.where(np.isneginf(x), -1e9, x)), "uniform weights"),
    # scores ---------------------------------------------------------------------------
    "scores: no scaling": (
        check_scores, lambda Q, K: Q @ T(K), "no scaling"),
    "scores: divided by d_k instead of sqrt(d_k)": (
        check_scores, lambda Q, K: Q @ T(K) / Q.shape[-1], "you divided by d_k = 6"),
    "scores: multiplied by sqrt(d_k)": (
        check_scores, lambda Q, K: Q @ T(K) * math.sqrt(Q.shape[-1]), "you multiplied by sqrt(d_k)"),
    "scores: scaled by sqrt(n_k), the number of keys": (
        check_scores, lambda Q, K: Q @ T(K) / math.sqrt(K.shape[-2]), "sqrt(n_k)"),
    "scores: transposed (K Q^T)": (
        check_scores, lambda Q, K: K @ T(Q) / math.sqrt(Q.shape[-1]), "looks transposed"),
    "scores: .T breaks batches": (
        check_scores, lambda Q, K: Q @ K.T / math.sqrt(Q.shape[-1]), ".T reverses every axis"),
    "scores: scaled when raw dot products are asked for": (
        lambda fn: check_scores(fn, scaled=False), lambda Q, K: Q @ T(K) / math.sqrt(Q.shape[-1]),
        "these are the scaled scores"),
    # attention ------------------------------------------------------------------------
    "attention: no scaling": (
        check_attention, attention_with(scale=lambda Q, K, V: 1.0), "no scaling"),
    "attention: divided by d_k": (
        check_attention, attention_with(scale=lambda Q, K, V: 1 / Q.shape[-1]), "divided the scores by d_k"),
    "attention: sqrt(d_model) instead of sqrt(d_k)": (
        lambda fn: check_attention(fn, d_model=16), attention_with(scale=lambda Q, K, V: 1 / math.sqrt(16)),
        "sqrt(d_model) (the model width, 16) instead of sqrt(d_k)"),
    "attention: a global width used as the scale": (
        check_attention, attention_with(scale=lambda Q, K, V: 1 / math.sqrt(64)), "divided by sqrt(64)"),
    "attention: scaled by sqrt(n_k)": (
        check_attention, attention_with(scale=lambda Q, K, V: 1 / math.sqrt(K.shape[-2])), "sqrt(n_k)"),
    "attention: softmax over the query axis": (
        check_attention, attention_with(axis=-2), "softmax over the wrong axis"),
    "attention: no softmax": (
        check_attention, lambda Q, K, V: (Q @ T(K) / math.sqrt(Q.shape[-1])) @ V, "there is no softmax"),
    "attention: averages the keys instead of the values": (
        check_attention, attention_with(values="K"), "not the keys"),
    "attention: returns the weights instead of the output": (
        check_attention, lambda Q, K, V: attnlib.softmax(Q @ T(K) / math.sqrt(Q.shape[-1])),
        "That is the shape of the weights"),
    "attention: returns (weights, output)": (
        check_attention, lambda Q, K, V: attention_with()(Q, K, V)[::-1], "the output should come first"),
    "attention: transposed weights": (
        check_attention, lambda Q, K, V: (attention_with()(Q, K, V)[0], T(attention_with()(Q, K, V)[1])),
        "It looks transposed"),
    "attention: .T breaks batches (2-D only)": (
        check_attention, attention_2d, "Count axes from the end"),
    "attention: .T breaks batches": (
        check_attention, lambda Q, K, V: attnlib.softmax(Q @ K.T / math.sqrt(Q.shape[-1])) @ V,
        "Count axes from the end"),
    "attention: non-stable softmax overflows": (
        check_attention, attention_with(softmax=lambda s: np.exp(s) / np.exp(s).sum(-1, keepdims=True)),
        "exp overflows"),
    "attention: mask ignored": (
        check_attention, lambda Q, K, V, mask=None: attention_with()(Q, K, V), "the mask is ignored"),
    "attention: mask the wrong way round": (
        check_attention, attention_with(masking="inverted"), "wrong way round"),
    "attention: mask applied after the softmax": (
        check_attention, attention_with(masking="after"), "mask applied after the softmax"),
    "attention: masked scores set to 0": (
        check_attention, attention_with(masking="zero"), "a score of 0 still gets a positive weight"),
    "attention: future leaking (mask off by one)": (
        check_attention, attention_with(masking="shifted"), "future leaking: the output of query 0 changes"),
    "attention: mask that does not broadcast": (
        check_attention, attention_with(masking="index"), "A mask must broadcast"),
    "attention: -1e9 masking gives uniform weights on a fully masked row": (
        check_attention, attention_with(masking="-1e9"), "uniform weights"),
    "attention: NaN on a fully masked row": (
        check_attention, attention_with(softmax=stable_softmax), "gives NaN for that query"),
    # masks ----------------------------------------------------------------------------
    "causal mask: the wrong way round": (
        check_causal_mask, lambda n: np.triu(np.ones((n, n), dtype=bool), k=1), "wrong way round"),
    "causal mask: hides nothing": (
        check_causal_mask, lambda n: np.ones((n, n), dtype=bool), "hides nothing, so the future leaks"),
    "causal mask: upper triangle, np.triu (wrong way round)": (
        check_causal_mask, lambda n: np.triu(np.ones((n, n), dtype=bool)), "the mask is the wrong way round"),
    "causal mask: diagonal hidden": (
        check_causal_mask, lambda n: np.tril(np.ones((n, n), dtype=bool), k=-1), "the diagonal is hidden"),
    "causal mask: numbers instead of booleans": (
        check_causal_mask, lambda n: np.tril(np.ones((n, n))), "must be boolean"),
    "causal mask: additive -inf mask": (
        check_causal_mask, lambda n: np.where(np.tril(np.ones((n, n))) > 0, 0.0, -np.inf), "additive mask"),
    "causal mask: wrong shape": (
        check_causal_mask, lambda n: np.tril(np.ones((n, n + 1), dtype=bool)), "your mask has shape"),
    "padding mask: missing the query axis": (
        check_padding_mask, lambda lengths, n_k: np.arange(n_k) < np.asarray(lengths)[:, None],
        "Add an axis for the queries"),
    "padding mask: the wrong way round": (
        check_padding_mask, lambda lengths, n_k: ~ref_padding_mask(lengths, n_k), "wrong way round"),
    "padding mask: off by one": (
        check_padding_mask, lambda lengths, n_k: (np.arange(n_k) <= np.asarray(lengths)[:, None])[:, None, :],
        "off by one"),
    # dropout --------------------------------------------------------------------------
    "dropout scaled by 1/p": (
        check_dropout, lambda x, p, rng: np.where(rng.random(x.shape) < p, 0.0, x / p), "divided by p = 0.25"),
    "dropout not rescaled": (
        check_dropout, lambda x, p, rng: np.where(rng.random(x.shape) < p, 0.0, x), "not rescaled"),
    "dropout keeps with probability p": (
        check_dropout, lambda x, p, rng: np.where(rng.random(x.shape) < p, x / (1 - p), 0.0),
        "p is the probability of dropping"),
    "dropout from the global random state": (
        check_dropout, lambda x, p, rng: np.where(np.random.random(x.shape) < p, 0.0, x / (1 - p)),
        "global random state"),
    "dropout in place": (
        check_dropout, lambda x, p, rng: np.multiply(x, (rng.random(x.shape) >= p) / (1 - p), out=x),
        "your function changed its input x in place"),
    # heads ----------------------------------------------------------------------------
    "split heads: reshape instead of transpose": (
        check_split_heads, lambda X, h: X.reshape(*X.shape[:-2], h, X.shape[-2], -1), "heads mixed up"),
    "split heads: heads axis not moved": (
        check_split_heads, lambda X, h: X.reshape(*X.shape[:-1], h, -1), "heads axis must come before"),
    "split heads: strided columns": (
        check_split_heads, lambda X, h: np.moveaxis(X.reshape(*X.shape[:-1], -1, h), -1, -3),
        "consecutive columns"),
    "merge heads: reshape instead of transpose": (
        check_merge_heads, lambda H: H.reshape(*H.shape[:-3], H.shape[-2], -1), "heads mixed up"),
    "multi-head: sqrt(d_model) instead of sqrt(d_head)": (
        check_multi_head, multi_head_with(scale="model"), "divided by sqrt(d_model) = sqrt(8)"),
    "multi-head: no scaling": (
        check_multi_head, multi_head_with(scale="none"), "no scaling"),
    "multi-head: split with a reshape": (
        check_multi_head, multi_head_with(split="reshape"), "heads mixed up: your split"),
    "multi-head: merge with a reshape": (
        check_multi_head, multi_head_with(merge="reshape"), "heads mixed up: your merge"),
    "multi-head: split and merge with reshapes": (
        check_multi_head, multi_head_with(split="reshape", merge="reshape"),
        "heads mixed up: both your split and your merge"),
    "multi-head: W_o missing": (
        check_multi_head, multi_head_with(w_o=False), "W_o is missing"),
    "multi-head: one big head": (
        check_multi_head, lambda *args: multi_head_with(heads=1)(*args)[0], "single head of size d_model"),
    "multi-head: queries and keys swapped in cross-attention": (
        check_multi_head, multi_head_with(swap_q_kv=True), "queries come from X_q"),
    "multi-head: mask ignored": (
        check_multi_head, lambda X_q, X_kv, p, n_heads, mask=None: multi_head_with()(X_q, X_kv, p, n_heads),
        "the mask is ignored"),
    "multi-head: mask the wrong way round": (
        check_multi_head,
        lambda X_q, X_kv, p, n_heads, mask=None: multi_head_with()(X_q, X_kv, p, n_heads,
                                                                    None if mask is None else ~mask),
        "wrong way round"),
}


@pytest.mark.parametrize("bug", list(BUGS))
def test_each_bug_gets_its_diagnosis(bug, capsys):
    check, fn, expected = BUGS[bug]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a check must not spray numpy warnings into the notebook
        result = check(fn)
    assert isinstance(result, CheckResult)
    assert not result.passed, f"{bug}: the check passed a buggy implementation"
    assert expected in result.message, f"{bug}: got {result.message!r}"
    assert capsys.readouterr().out == "", "checks report through their result, never print"


CORRECT = {
    "softmax (attnlib)": (lambda fn: check_softmax(fn, fully_masked_rows=True, forbid=()), attnlib.softmax),
    "softmax (learner's stable one)": (check_softmax, stable_softmax),
    "scores": (check_scores, lambda Q, K: Q @ T(K) / math.sqrt(Q.shape[-1])),
    "raw scores": (lambda fn: check_scores(fn, scaled=False), lambda Q, K: Q @ T(K)),
    "attention (attnlib)": (lambda fn: check_attention(fn, forbid=()), attnlib.scaled_dot_product_attention),
    "attention (learner's, masked)": (check_attention, attention_with()),
    "attention returning only the output": (check_attention, lambda Q, K, V: attention_with()(Q, K, V)[0]),
    "attention with a NaN-prone softmax, fully masked rows not asked": (
        lambda fn: check_attention(fn, fully_masked_rows=False), attention_with(softmax=stable_softmax)),
    "causal mask (attnlib)": (lambda fn: check_causal_mask(fn, forbid=()), attnlib.causal_mask),
    "causal mask (learner's)": (check_causal_mask, lambda n: np.tril(np.ones((n, n), dtype=bool))),
    "causal mask (n_q, n_k)": (check_causal_mask, lambda n_q, n_k: np.arange(n_k) <= np.arange(n_q)[:, None]),
    "padding mask": (lambda fn: check_padding_mask(fn, forbid=()), attnlib.padding_mask),
    "split heads": (lambda fn: check_split_heads(fn, forbid=()), attnlib.split_heads),
    "merge heads": (lambda fn: check_merge_heads(fn, forbid=()), attnlib.merge_heads),
    "multi-head (attnlib)": (lambda fn: check_multi_head(fn, forbid=()), attnlib.multi_head_attention),
    "multi-head (learner's)": (check_multi_head, multi_head_with()),
    "dropout": (check_dropout, lambda x, p, rng: np.where(rng.random(np.shape(x)) < p, 0.0, x / (1 - p))),
    "attention without batches, batch=False": (
        lambda fn: check_attention(fn, batch=False), attention_2d),
    "scores with .T, batch=False": (lambda fn: check_scores(fn, batch=False), lambda Q, K: Q @ K.T / np.sqrt(6)),
    "multi-head without batches, batch=False": (
        lambda fn: check_multi_head(fn, batch=False),
        lambda X_q, X_kv, p, h, mask=None: multi_head_with()(X_q, X_kv, p, h, mask) if np.ndim(X_q) == 2 else 1 / 0),
    "multi-head, self-attention only": (
        check_multi_head, lambda X, params, n_heads: multi_head_with()(X, X, params, n_heads)),
}


@pytest.mark.parametrize("case", list(CORRECT))
def test_correct_implementations_pass(case):
    check, fn = CORRECT[case]
    result = check(fn)
    assert result.passed, f"{case}: {result.message}"
    assert result.message.startswith("correct")


ALL_CHECKS = [check_softmax, check_scores, check_attention, check_causal_mask, check_padding_mask,
              check_split_heads, check_merge_heads, check_multi_head, check_dropout]


@pytest.mark.parametrize("check", ALL_CHECKS, ids=lambda c: c.__name__)
def test_not_implemented_is_reported_with_its_hint(check):
    result = check(not_implemented)
    assert not result.passed and result.not_implemented
    assert result.message == f"{NOT_IMPLEMENTED} (Hint: start from the scores)."
    assert str(result).startswith("…")


@pytest.mark.parametrize("check", ALL_CHECKS, ids=lambda c: c.__name__)
def test_a_crash_is_reported_not_raised(check):
    result = check(crashes)
    assert not result.passed and not result.not_implemented
    assert "your code raised ValueError: operands could not be broadcast together" in result.message


def test_value_and_function_checks():
    assert check_value("ex", lambda: np.ones(3), np.ones(3)).passed
    assert check_value("ex", not_implemented, 1.0).not_implemented
    assert check_value("ex", ..., 1.0).not_implemented
    assert "contains NaN" in check_value("ex", [np.nan, 1.0], [0.0, 1.0]).message
    assert "largest difference 0.5 at index [1]" in check_value("ex", [0.0, 1.5], [0.0, 1.0]).message
    cases = [(np.arange(3.0),), (np.ones((2, 2)),)]
    assert check_function("ex", np.square, lambda x: x * x, cases).passed
    result = check_function("ex", lambda x: x.sum(), lambda x: x * x, cases)
    assert "your result for input 1 has shape ()" in result.message
    assert check_function("ex", not_implemented, lambda x: x, cases).not_implemented


def test_results_display_readably():
    ok = check_softmax(attnlib.softmax, forbid=())
    bad = check_softmax(lambda x: np.exp(x))
    todo = check_softmax(not_implemented)
    assert bool(ok) and not bool(bad) and not bool(todo)
    assert 'role="status"' in ok._repr_html_() and "✓" in ok._repr_html_()
    assert "✗" in bad._repr_html_() and "#D55E00" in bad._repr_html_()
    assert "…" in todo._repr_html_()
    evil = CheckResult("<b>x</b>", False, "a < b & c")
    assert "&lt;b&gt;" in evil._repr_html_() and "a &lt; b &amp; c" in evil._repr_html_()


def test_messages_never_show_code():
    """A diagnosis names the mistake; it does not hand out the solution's code."""
    for check, fn, _ in BUGS.values():
        message = check(fn).message
        for code in ("np.", "def ", "return ", "np.where", "@ V", "tril"):
            assert code not in message, f"{code!r} in {message!r}"


def test_checks_leave_the_global_random_state_alone():
    np.random.seed(123)
    before = np.random.random()
    np.random.seed(123)
    check_attention(attnlib.scaled_dot_product_attention, forbid=())
    check_multi_head(attnlib.multi_head_attention, forbid=())
    assert np.random.random() == before
