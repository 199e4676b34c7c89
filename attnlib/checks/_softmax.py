"""Diagnosing checks for a learner's softmax and score function (chapter 3)."""

from __future__ import annotations

import math

import numpy as np

from attnlib.checks._calls import FORBID, to_array
from attnlib.checks._result import (
    CheckResult,
    attempt,
    close,
    difference,
    failed,
    first_match,
    graded,
    in_context,
    passed,
    with_hint,
)
from attnlib.softmax import softmax

_OVERFLOW = (
    "with large scores such as {x} your softmax gives {bad}: exp overflows. "
    "Subtracting the row's maximum before exp changes nothing mathematically and keeps the numbers finite."
)


def _call(name, fn, x, context):
    """Run ``fn(x)`` on a copy; return ``(array, None)`` or ``(None, CheckResult)``."""
    arr, problem = attempt(name, fn, np.array(x), convert=to_array, names=("x",), expected="fn(x)")
    if problem is not None:
        return None, in_context(problem, context)
    arr = arr.astype(float)
    if arr.shape != np.shape(x):
        return None, failed(
            name, f"{context}, your softmax returned shape {arr.shape}; expected {np.shape(x)}, "
            "the same shape as its input (one weight per score)."
        )
    return arr, None


def _bad_values(arr) -> str | None:
    if np.isnan(arr).any():
        return "NaN"
    if np.isinf(arr).any():
        return "infinity"
    return None


MASKED_NOT_ZERO = ("a key scored -inf must get weight exactly 0, not a small number: exp(-inf) is exactly 0, so "
                   "add nothing to the exponentials (an epsilon) and do not clip the scores")


@graded(forbid=FORBID["softmax"])
def check_softmax(fn, *, name: str = "Softmax", fully_masked_rows: bool = False) -> CheckResult:
    """Check a learner's ``fn(x)``: a softmax over the last axis of ``x``.

    Tries a vector, a matrix (each row must sum to one), a batch, large scores
    (overflow), rows of very different sizes in one matrix (a maximum taken over the
    whole array instead of each row), ``-inf`` entries (weight exactly 0) and, with
    ``fully_masked_rows=True``, a row that is entirely ``-inf`` (must give zeros).
    An input changed in place fails.  attnlib's softmax refuses to run inside ``fn``.

    Examples
    --------
    >>> import attnlib
    >>> check_softmax(attnlib.softmax, fully_masked_rows=True, forbid=()).passed
    True
    >>> print(check_softmax(lambda x: np.exp(x) / np.exp(x).sum(axis=0)).message)
    on a matrix of scores (3 rows of 5), softmax over the wrong axis:
    your columns sum to one, but each row (the last axis) should.
    """
    # 1. a vector
    x = np.array([1.0, 2.0, 3.0, 0.5])
    context = f"on the scores {x.tolist()}"
    got, problem = _call(name, fn, x, context)
    if problem is not None:
        return problem
    expected = softmax(x)
    if not close(got, expected):
        message = first_match(got, [
            (np.exp(x), "the outputs are exp(x) but they do not sum to one: divide by their sum."),
            (x / x.sum(), "you divided the scores by their sum; exponentiate them first, "
                          "so that every weight is positive."),
        ])
        if message is None:
            if _bad_values(got):
                message = f"your softmax gives {_bad_values(got)}."
            elif (got < 0).any():
                message = f"some weights are negative ({got.round(3).tolist()}); weights must be >= 0."
            elif not math.isclose(got.sum(), 1.0, abs_tol=1e-6):
                message = f"the weights sum to {got.sum():.4g}, not to one."
            else:
                message = f"the weights differ from a softmax ({difference(got, expected)})."
        return failed(name, f"{context}, {message}")

    # 2. a matrix: each row is one query's scores
    rng = np.random.default_rng(0)
    X = rng.normal(size=(3, 5))
    context = "on a matrix of scores (3 rows of 5)"
    got, problem = _call(name, fn, X, context)
    if problem is not None:
        return problem
    expected = softmax(X, axis=-1)
    if not close(got, expected):
        exp = np.exp(X)
        message = first_match(got, [
            (softmax(X, axis=0), "softmax over the wrong axis: your columns sum to one, "
                                 "but each row (the last axis) should."),
            (exp / exp.sum(), "you normalised over the whole array; each row (the last axis) "
                              "should sum to one on its own."),
        ])
        if message is None:
            sums = got.sum(axis=-1)
            bad = np.flatnonzero(~np.isclose(sums, 1.0, atol=1e-6))
            if bad.size:
                message = f"the rows do not sum to one (row {bad[0]} sums to {sums[bad[0]]:.4g})."
            else:
                message = f"the values differ from a softmax ({difference(got, expected)})."
        return failed(name, f"{context}, {message}")

    # 3. a batch of matrices
    B = rng.normal(size=(2, 3, 4))
    context = "on a batch of shape (2, 3, 4)"
    got, problem = _call(name, fn, B, context)
    if problem is not None:
        return problem
    if not close(got, softmax(B, axis=-1)):
        message = first_match(got, [
            (softmax(B, axis=1), "it normalises over axis 1; use the last axis so that batches work too."),
            (softmax(B, axis=0), "it normalises over the first axis; use the last axis (axis=-1)."),
        ]) or f"the result is wrong although a single matrix worked ({difference(got, softmax(B))})."
        return failed(name, f"{context}, {message}")

    # 5. large scores: a naive exp overflows
    for big in ([1000.0, 1001.0, 1002.0], [-1000.0, -1001.0, -1002.0]):
        context = f"on the scores {big}"
        got, problem = _call(name, fn, np.array(big), context)
        if problem is not None:
            return problem
        if _bad_values(got):
            return failed(name, _OVERFLOW.format(x=big, bad=_bad_values(got)))
        if not close(got, softmax(big)):
            return failed(name, f"{context}, the weights are wrong ({difference(got, softmax(big))}); "
                                "a softmax does not change when the same number is added to every score.")

    # 5b. rows of very different sizes together: each row needs its own maximum
    x = np.array([[0.0, 0.0, 1.0], [1000.0, 1000.0, 999.0], [-1000.0, -1001.0, -999.0]])
    context = f"on rows of very different sizes together ({x.tolist()})"
    got, problem = _call(name, fn, x, context)
    if problem is not None:
        return problem
    if not close(got, softmax(x)):
        e = np.exp(x - x.max())  # the whole array's maximum: rows far below it underflow to 0 / 0
        with np.errstate(all="ignore"):
            global_max = e / e.sum(axis=-1, keepdims=True)
        if _bad_values(got) and np.array_equal(np.isnan(got), np.isnan(global_max)):
            message = ("your softmax gives NaN for the rows far below the largest score: it looks like you "
                       "subtracted the maximum of the whole array. Subtract each row's own maximum (along the "
                       "last axis, keeping its dimension), so that every row's largest score becomes 0.")
        elif _bad_values(got):
            message = f"your softmax gives {_bad_values(got)}."
        else:
            message = f"the weights are wrong ({difference(got, softmax(x))})."
        return failed(name, f"{context}, {message}")

    # 6. -inf marks a masked key: weight exactly 0
    x = np.array([[0.5, -np.inf, 1.0], [-np.inf, 2.0, 2.0]])
    context = "on scores with -inf entries (masked keys)"
    got, problem = _call(name, fn, x, context)
    if problem is not None:
        return problem
    if not close(got, softmax(x)):
        if _bad_values(got):
            message = f"your softmax gives {_bad_values(got)}; a score of -inf should simply get weight 0."
        else:
            message = f"a key scored -inf should get weight exactly 0 ({difference(got, softmax(x))})."
        return failed(name, f"{context}, {message}")
    masked = got[np.isneginf(x)]
    if not np.all(masked == 0):  # adv17 F2: exactly, as the statement says (close() allowed 1e-6)
        return failed(name, f"{context}, {MASKED_NOT_ZERO} (here {np.max(np.abs(masked)):.1g}).")

    tried = "a vector, a matrix, a batch, large scores and -inf entries"
    # 7. optional: a row with no allowed key gives zeros, not NaN
    if fully_masked_rows:
        x = np.array([[1.0, 2.0, 0.0], [-np.inf, -np.inf, -np.inf]])
        context = "on a row whose scores are all -inf (a query with no allowed key)"
        got, problem = _call(name, fn, x, context)
        if problem is not None:
            return problem
        row = got[1]
        if np.isnan(row).any():
            return failed(name, f"{context}, your softmax gives NaN (exp(-inf) / 0); "
                                "such a row should give all zeros.")
        if close(row, np.full(3, 1 / 3)):
            return failed(name, f"{context}, your softmax gives uniform weights (1/3 each), as a large "
                                "negative number like -1e9 would; such a row should give all zeros.")
        if not close(got, softmax(x)):
            return failed(name, f"{context}, expected all zeros in that row ({difference(got, softmax(x))}).")
        tried += ", and a fully masked row"
    return passed(name, f"correct on {tried}.")


def _scale_in_words(ratio: float, sizes: dict[str, int]) -> str | None:
    """Name the scale that ``ratio`` (your scores / raw dot products) looks like."""
    d_k = sizes["d_k"]
    candidates = [
        (1.0, "no scaling: the scores are the raw dot products; divide them by sqrt(d_k)."),
        (1 / d_k, f"you divided by d_k = {d_k}; divide by its square root sqrt(d_k) instead."),
        (math.sqrt(d_k), "you multiplied by sqrt(d_k); divide by it instead."),
    ]
    for size_name in ("d_model", "n_k", "n_q", "d_v"):
        if size_name in sizes and sizes[size_name] != d_k:
            what = {"d_model": "the model width", "n_k": "the number of keys",
                    "n_q": "the number of queries", "d_v": "the size of a value"}[size_name]
            candidates.append((1 / math.sqrt(sizes[size_name]),
                               f"wrong scale: it looks like sqrt({size_name}) ({what}, {sizes[size_name]}) "
                               f"instead of sqrt(d_k) (the size of a key, {d_k})."))
    for value, message in candidates:
        if math.isclose(ratio, value, rel_tol=1e-6):
            return message
    return None


@graded(forbid=FORBID["scores"])
def check_scores(fn, *, name: str = "Scores", scaled: bool = True, batch: bool = True) -> CheckResult:
    r"""Check a learner's ``fn(Q, K)``: the scores :math:`Q K^\top / \sqrt{d_k}`, shape ``(..., n_q, n_k)``.

    With ``scaled=False`` the expected scores are the raw dot products :math:`Q K^\top`;
    with ``batch=False`` only single sequences ``(n, d_k)`` are tried.

    Examples
    --------
    >>> check_scores(lambda Q, K: Q @ K.T / np.sqrt(Q.shape[-1])).message[:40]
    'with a batch (Q of shape (2, 3, 6) and K'
    >>> check_scores(lambda Q, K: Q @ K.T).message
    'no scaling: the scores are the raw dot products; divide them by sqrt(d_k).'
    """
    rng = np.random.default_rng(1)
    n_q, n_k, d_k = 3, 5, 6
    Q, K = rng.normal(size=(n_q, d_k)), rng.normal(size=(n_k, d_k))
    raw = Q @ K.T  # (n_q, n_k)
    factor = 1 / math.sqrt(d_k) if scaled else 1.0
    context = f"with Q of shape {Q.shape} and K of shape {K.shape}"
    got, problem = attempt(name, fn, Q, K, convert=to_array, names=("Q", "K"), expected="fn(Q, K)")
    if problem is not None:
        return in_context(problem, context)
    got = got.astype(float)
    if got.shape != (n_q, n_k):
        hint = ""
        if got.shape == (n_k, n_q):
            hint = " It looks transposed: rows should be queries and columns keys."
        return failed(name, f"{context}, your scores have shape {got.shape}; "
                            f"expected {(n_q, n_k)} = (n_q, n_k).{hint}")
    if not close(got, raw * factor):
        if np.isnan(got).any():
            return failed(name, f"{context}, your scores contain NaN.")
        ratio = float(np.sum(got * raw) / np.sum(raw * raw))
        if close(got, ratio * raw):
            if scaled:
                message = _scale_in_words(ratio, {"d_k": d_k, "n_k": n_k, "n_q": n_q})
            else:
                message = "these are the scaled scores; this exercise asks for the raw dot products."
            if message is None:
                message = (f"your scores are the dot products times {ratio:.4g}; "
                           f"the scale should be 1/sqrt(d_k) with d_k = {d_k}.")
            return failed(name, message)
        return failed(name, f"{context}, your scores differ from the expected ones ({difference(got, raw * factor)}).")

    if not batch:
        return passed(name, "correct.")
    Qb, Kb = rng.normal(size=(2, n_q, d_k)), rng.normal(size=(2, n_k, d_k))
    context = f"with a batch (Q of shape {Qb.shape} and K of shape {Kb.shape})"
    expected = (Qb @ Kb.swapaxes(-1, -2)) * factor  # (2, n_q, n_k)
    got, problem = attempt(name, fn, Qb, Kb, convert=to_array, names=("Q", "K"), expected="fn(Q, K)")
    if problem is not None:
        return with_hint(in_context(problem, context),
                         ".T reverses every axis of a stack of matrices; swap only the last two.")
    if got.shape != expected.shape:
        shape = got.shape
        return failed(name, f"{context}, your scores have shape {shape}; expected {expected.shape} = "
                            "(batch, n_q, n_k). For a stack of matrices, .T reverses every axis; "
                            "swap only the last two.")
    if not close(got, expected):
        return failed(name, f"{context}, the scores are wrong although one sequence worked "
                            f"({difference(got, expected)}).")
    return passed(name, "correct, for one sequence and for a batch.")
