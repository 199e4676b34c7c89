"""A diagnosing check for a learner's (inverted) dropout on attention weights."""

from __future__ import annotations

import math

import numpy as np

from attnlib.checks._calls import to_array
from attnlib.checks._result import CheckResult, attempt, failed, graded, in_context, passed


@graded()
def check_dropout(fn, *, name: str = "Dropout") -> CheckResult:
    """Check a learner's ``fn(x, p, rng)``: inverted dropout with drop probability ``p``.

    Each entry is set to 0 with probability ``p`` and the kept ones are divided by the
    keep probability ``1 - p``, so that the expected value of every entry is unchanged.
    Randomness must come from ``rng`` (a ``numpy.random.Generator``) only.  The input is
    not constant (a function that ignores ``x`` fails) and must not change in place.

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
    x = np.random.default_rng(7).uniform(0.5, 1.5, size=(400, 500))  # 200,000 entries, none 0
    context = f"with x of shape {x.shape} (numbers between 0.5 and 1.5) and p = {p}"
    names, expected = ("x", "p", "rng"), "fn(x, p, rng)"
    state = np.random.get_state()
    got, problem = attempt(name, fn, x, p, np.random.default_rng(0), convert=to_array, names=names,
                           expected=expected)
    moved_global = not _same_state(state, np.random.get_state())
    np.random.set_state(state)
    if problem is not None:
        return in_context(problem, context)
    if got.shape != x.shape:
        return failed(name, f"{context}, your result has shape {got.shape}; expected {x.shape}, the shape of x.")
    got = got.astype(float)
    dropped = float(np.mean(got == 0))
    if math.isclose(dropped, 1 - p, abs_tol=0.01) and not math.isclose(dropped, p, abs_tol=0.01):
        return failed(name, f"{context}, {dropped:.1%} of the entries are dropped: p is the probability of "
                            f"dropping an entry, so about {p:.0%} should be.")
    if not math.isclose(dropped, p, abs_tol=0.01):
        return failed(name, f"{context}, {dropped:.1%} of the entries are dropped; expected about {p:.0%}.")
    kept = got != 0
    ratio = got[kept] / x[kept]  # what each kept entry was multiplied by
    scales = {
        1 / (1 - p): None,
        1 / p: f"the kept entries are divided by p = {p}; divide them by the keep probability 1 - p = {1 - p} "
               "so that the expected value of every entry stays the same.",
        1.0: "the kept entries are not rescaled, so the expected value shrinks by the factor 1 - p; "
             "divide them by 1 - p.",
        1 - p: "the kept entries are multiplied by 1 - p; divide by it instead.",
    }
    for scale, message in scales.items():
        if np.allclose(ratio, scale):
            if message is not None:
                return failed(name, message)
            break
    else:
        for scale in scales:
            if np.allclose(got[kept], scale):
                return failed(name, f"{context}, every kept entry equals {scale:.4g}, whatever x holds: your result "
                                    "ignores x. A kept entry should be that entry of x divided by 1 - p.")
        return failed(name, f"{context}, a kept entry should be x / (1 - p), that entry of x times "
                            f"{1 / (1 - p):.4g} (yours are x times {ratio.min():.4g} to {ratio.max():.4g}).")
    if moved_global:
        return failed(name, "your dropout draws from numpy's global random state; draw from the rng argument "
                            "(rng.random(...)), so that results are reproducible.")
    again, _ = attempt(name, fn, x, p, np.random.default_rng(0), convert=to_array, names=names)
    other, _ = attempt(name, fn, x, p, np.random.default_rng(1), convert=to_array, names=names)
    if not np.array_equal(np.asarray(again, dtype=float), got):
        return failed(name, "the same rng seed gives different results; draw only from the rng argument.")
    if np.array_equal(np.asarray(other, dtype=float), got):
        return failed(name, "different rng seeds give the same result; draw the random numbers from rng.")
    zero, problem = attempt(name, fn, x, 0.0, np.random.default_rng(0), convert=to_array, names=names)
    if problem is not None:
        return in_context(problem, "with p = 0")
    if not np.allclose(zero, x, rtol=1e-12, atol=0):
        return failed(name, "with p = 0 nothing should change, but your result differs from x.")
    return passed(name, "correct: the right fraction dropped, the rest rescaled by 1/(1 - p), reproducible.")


def _same_state(a, b) -> bool:
    return a[0] == b[0] and np.array_equal(a[1], b[1]) and a[2:] == b[2:]
