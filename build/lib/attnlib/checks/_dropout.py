"""A diagnosing check for a learner's (inverted) dropout on attention weights."""

from __future__ import annotations

import math

import numpy as np

from attnlib.checks._result import CheckResult, as_numbers, attempt, failed, in_context, passed


def check_dropout(fn, *, name: str = "Dropout") -> CheckResult:
    """Check a learner's ``fn(x, p, rng)``: inverted dropout with drop probability ``p``.

    Each entry is set to 0 with probability ``p`` and the kept ones are divided by the
    keep probability ``1 - p``, so that the expected value of every entry is unchanged.
    Randomness must come from ``rng`` (a ``numpy.random.Generator``) only.

    Examples
    --------
    >>> def dropout(x, p, rng):
    ...     return np.where(rng.random(np.shape(x)) < p, 0.0, x / (1 - p))
    >>> check_dropout(dropout).passed
    True
    >>> check_dropout(lambda x, p, rng: np.where(rng.random(np.shape(x)) < p, 0.0, x / p)).message[:40]
    'the kept entries are divided by p = 0.25'
    """
    p = 0.25
    x = np.ones((400, 500))  # 200,000 entries: the dropped fraction is measured to about 0.001
    context = f"with x of shape {x.shape} and p = {p}"
    state = np.random.get_state()
    value, problem = attempt(name, fn, x, p, np.random.default_rng(0))
    moved_global = not _same_state(state, np.random.get_state())
    np.random.set_state(state)
    if problem is not None:
        return in_context(problem, context)
    got = as_numbers(value)
    if got is None or got.shape != x.shape:
        return failed(name, f"{context}, your result has shape {None if got is None else got.shape}; "
                            f"expected {x.shape}, the shape of x.")
    if not np.array_equal(x, np.ones_like(x)):
        return failed(name, "your dropout changed its input array in place; compute a new array instead.")
    dropped = float(np.mean(got == 0))
    if math.isclose(dropped, 1 - p, abs_tol=0.01) and not math.isclose(dropped, p, abs_tol=0.01):
        return failed(name, f"{context}, {dropped:.1%} of the entries are dropped: p is the probability of "
                            f"dropping an entry, so about {p:.0%} should be.")
    if not math.isclose(dropped, p, abs_tol=0.01):
        return failed(name, f"{context}, {dropped:.1%} of the entries are dropped; expected about {p:.0%}.")
    kept = got[got != 0]
    scales = {
        1 / (1 - p): None,
        1 / p: f"the kept entries are divided by p = {p}; divide them by the keep probability 1 - p = {1 - p} "
               "so that the expected value of every entry stays the same.",
        1.0: "the kept entries are not rescaled, so the expected value shrinks by the factor 1 - p; "
             "divide them by 1 - p.",
        1 - p: "the kept entries are multiplied by 1 - p; divide by it instead.",
    }
    for scale, message in scales.items():
        if np.allclose(kept, scale):
            if message is not None:
                return failed(name, message)
            break
    else:
        return failed(name, f"{context}, the kept entries should all equal 1 / (1 - p) = {1 / (1 - p):.4g} "
                            f"for x = 1 (they range from {kept.min():.4g} to {kept.max():.4g}).")
    if moved_global:
        return failed(name, "your dropout draws from numpy's global random state; draw from the rng argument "
                            "(rng.random(...)), so that results are reproducible.")
    again, _ = attempt(name, fn, x.copy(), p, np.random.default_rng(0))
    other, _ = attempt(name, fn, x.copy(), p, np.random.default_rng(1))
    if not np.array_equal(np.asarray(again), got):
        return failed(name, "the same rng seed gives different results; draw only from the rng argument.")
    if np.array_equal(np.asarray(other), got):
        return failed(name, "different rng seeds give the same result; draw the random numbers from rng.")
    zero, problem = attempt(name, fn, x.copy(), 0.0, np.random.default_rng(0))
    if problem is not None:
        return in_context(problem, "with p = 0")
    if not np.array_equal(np.asarray(zero), x):
        return failed(name, "with p = 0 nothing should change, but your result differs from x.")
    return passed(name, "correct: the right fraction dropped, the rest rescaled by 1/(1 - p), reproducible.")


def _same_state(a, b) -> bool:
    return a[0] == b[0] and np.array_equal(a[1], b[1]) and a[2:] == b[2:]
