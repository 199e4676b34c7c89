"""Diagnosing checks for a learner's masks (chapter 4).  True = this query may attend to this key."""

from __future__ import annotations

import numpy as np

from attnlib.checks._calls import FORBID, to_array
from attnlib.checks._result import CheckResult, attempt, failed, graded, in_context, parameters, passed
from attnlib.masks import causal_mask as _causal_mask
from attnlib.masks import padding_mask as _padding_mask


def _as_mask(name, value, context, expected_shape):
    """The learner's mask as a boolean array, or a CheckResult saying what is wrong with it."""
    arr = value
    if arr.shape != expected_shape:
        return None, failed(name, f"{context}, your mask has shape {arr.shape}; expected {expected_shape}.")
    if arr.dtype != bool:
        if np.issubdtype(arr.dtype, np.floating) and np.isneginf(arr).any():
            return None, failed(name, f"{context}, that is an additive mask of 0 and -inf; this book's masks "
                                      "are boolean: True = this query may attend to this key.")
        return None, failed(name, f"{context}, your mask holds {arr.dtype} numbers; a mask must be boolean "
                                  "(True = this query may attend to this key).")
    return arr, None


def _causal_diagnosis(got: np.ndarray, n_q: int, n_k: int) -> str:
    i, j = np.indices((n_q, n_k))
    if np.array_equal(got, ~_causal_mask(n_q, n_k)) or np.array_equal(got, j >= i):
        return ("the mask is the wrong way round: True should mark the keys a query MAY attend to "
                "(itself and the past, the lower triangle), False the future it must not see.")
    if got.all():
        return "the mask hides nothing, so the future leaks: query 0 may attend to every later key."
    if np.array_equal(got, j < i):
        return "the diagonal is hidden: a query must be allowed to attend to its own position."
    leak = np.argwhere(got & (j > i))
    if leak.size:
        q, k = leak[0]
        return f"future leaking: query {q} may attend to key {k}, which comes after it."
    hidden = np.argwhere(~got & (j <= i))
    q, k = hidden[0]
    return f"query {q} cannot attend to key {k}, although key {k} is not in its future."


@graded(forbid=FORBID["causal_mask"])
def check_causal_mask(fn, *, name: str = "Causal mask") -> CheckResult:
    """Check a learner's ``fn(n)`` (or ``fn(n_q, n_k)``): a boolean causal mask.

    ``mask[i, j]`` must be True exactly when ``j <= i`` (query i may attend to keys 0..i).
    The sizes are drawn afresh at every check (and n = 1), so an answer that remembers
    the masks of a few sizes fails.  attnlib's ``causal_mask`` refuses to run inside ``fn``.

    Examples
    --------
    >>> check_causal_mask(lambda n: np.tril(np.ones((n, n), dtype=bool))).passed
    True
    >>> "the mask is the wrong way round" in check_causal_mask(lambda n: np.triu(np.ones((n, n), dtype=bool))).message
    True
    """
    params = parameters(fn)
    two_sizes = params is not None and params.required == 2
    rng = np.random.default_rng()  # fresh sizes every time: nothing to memorise
    n, big = int(rng.integers(4, 10)), int(rng.integers(10, 17))
    sizes = [(n, n), (1, 1), (big, big)]
    if two_sizes:
        n_q = int(rng.integers(2, 7))
        n_k = n_q + int(rng.integers(1, 4))
        sizes += [(n_q, n_k), (n_k, n_q)]
    for n_q, n_k in sizes:
        args = (n_q, n_k) if two_sizes else (n_q,)
        context = f"for n_q = {n_q}, n_k = {n_k}" if two_sizes else f"for n = {n_q}"
        value, problem = attempt(name, fn, *args, convert=to_array, names=("n_q", "n_k") if two_sizes else ("n",),
                                 expected="fn(n_q, n_k)" if two_sizes else "fn(n)")
        if problem is not None:
            return in_context(problem, context)
        got, problem = _as_mask(name, value, context, (n_q, n_k))
        if problem is not None:
            return problem
        if not np.array_equal(got, _causal_mask(n_q, n_k)):
            return failed(name, f"{context}, {_causal_diagnosis(got, n_q, n_k)}")
    return passed(name, f"correct for {len(sizes)} sizes.")


@graded(forbid=FORBID["padding_mask"])
def check_padding_mask(fn, *, name: str = "Padding mask") -> CheckResult:
    """Check a learner's ``fn(lengths, n_k)``: a boolean padding mask of shape ``(batch, 1, n_k)``.

    Key j of sequence b is allowed where ``j < lengths[b]``.

    Examples
    --------
    >>> import attnlib
    >>> check_padding_mask(attnlib.padding_mask, forbid=()).passed
    True
    >>> check_padding_mask(lambda lengths, n_k: np.arange(n_k) < np.asarray(lengths)[:, None]).message[:52]
    'for lengths [3, 1, 4] and n_k = 4, your mask has sha'
    """
    for lengths, n_k in (([3, 1, 4], 4), ([0, 2], 3)):
        context = f"for lengths {lengths} and n_k = {n_k}"
        value, problem = attempt(name, fn, np.array(lengths), n_k, convert=to_array, names=("lengths", "n_k"),
                                 expected="fn(lengths, n_k)")
        if problem is not None:
            return in_context(problem, context)
        expected = _padding_mask(np.array(lengths), n_k)  # (batch, 1, n_k)
        if np.shape(value) == (len(lengths), n_k):
            return failed(name, f"{context}, your mask has shape {np.shape(value)}; expected {expected.shape}. "
                                "Add an axis for the queries, (batch, 1, n_k), so that the mask broadcasts "
                                "over every query.")
        got, problem = _as_mask(name, value, context, expected.shape)
        if problem is not None:
            return problem
        if not np.array_equal(got, expected):
            j = np.arange(n_k)
            length = np.array(lengths)[:, None, None]
            if np.array_equal(got, ~expected):
                message = "the mask is the wrong way round: True should mark the real tokens, False the padding."
            elif np.array_equal(got, j <= length):
                message = "off by one: key j is real when j < length (positions start at 0)."
            else:
                b = int(np.argwhere((got != expected).any(axis=(1, 2)))[0][0])
                message = f"sequence {b} (length {lengths[b]}) gets the wrong keys: {got[b, 0].tolist()}."
            return failed(name, f"{context}, {message}")
    return passed(name, "correct, including a sequence of length 0.")
