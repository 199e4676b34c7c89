"""The result of a check, and the helpers every check shares.

A check runs the learner's answer and returns a :class:`CheckResult`: ``.passed``
is True or False, ``.message`` says in plain words what is right or what is wrong,
and the result displays itself readably in a notebook.  A check never prints the
solution.  An exercise that still raises ``NotImplementedError`` is reported as
"not implemented yet" instead of crashing the notebook.
"""

from __future__ import annotations

import html
import inspect
import warnings
from dataclasses import dataclass

import numpy as np

NOT_IMPLEMENTED = "not implemented yet"


@dataclass(frozen=True)
class CheckResult:
    """The outcome of a check: whether it passed and a diagnosis in plain words."""

    name: str
    passed: bool
    message: str

    @property
    def not_implemented(self) -> bool:
        return not self.passed and self.message.startswith(NOT_IMPLEMENTED)

    def __bool__(self) -> bool:
        return self.passed

    def __str__(self) -> str:
        mark = "✓" if self.passed else ("…" if self.not_implemented else "✗")
        return f"{mark} {self.name}: {self.message}"

    __repr__ = __str__

    def _repr_html_(self) -> str:
        if self.passed:
            colour, mark = "#009E73", "✓"
        elif self.not_implemented:
            colour, mark = "#56B4E9", "…"
        else:
            colour, mark = "#D55E00", "✗"
        return (
            f'<div role="status" style="border-left:4px solid {colour};padding:0.3em 0.7em;">'
            f"<strong>{mark} {html.escape(self.name)}</strong>: {html.escape(self.message)}</div>"
        )


def passed(name: str, message: str = "correct.") -> CheckResult:
    return CheckResult(name, True, message)


def failed(name: str, message: str) -> CheckResult:
    return CheckResult(name, False, message)


def run_answer(name: str, fn, *args, **kwargs):
    """Call the learner's ``fn``; return ``(value, None)`` or ``(None, CheckResult)`` on failure."""
    try:
        return fn(*args, **kwargs), None
    except NotImplementedError as err:
        hint = f" ({err})" if str(err) else ""
        return None, failed(name, f"{NOT_IMPLEMENTED}{hint}.")
    except Exception as err:  # the learner's code crashed: say where, without a traceback wall
        return None, failed(name, f"your code raised {type(err).__name__}: {err}")


def compare_arrays(name: str, got, expected, *, what: str = "your answer", atol: float = 1e-6) -> CheckResult:
    """Compare an array answer with the expected one: shape first, then values."""
    try:
        got = np.asarray(got, dtype=float)
    except (TypeError, ValueError):
        return failed(name, f"{what} should be an array of numbers, got {type(got).__name__}.")
    expected = np.asarray(expected, dtype=float)
    if got.shape != expected.shape:
        return failed(name, f"{what} has shape {got.shape}, expected {expected.shape}.")
    if np.isnan(got).any() and not np.isnan(expected).any():
        return failed(name, f"{what} contains NaN at {np.argwhere(np.isnan(got))[0].tolist()}.")
    if not np.allclose(got, expected, atol=atol, rtol=0):
        return failed(name, f"{what} has the right shape but different values ({difference(got, expected)}).")
    return passed(name)


def check_value(name: str, answer, expected, *, atol: float = 1e-6) -> CheckResult:
    """Check a computed value (number or array) against the expected one.

    ``answer`` may be a zero-argument function (called here, so that an exercise
    left as ``raise NotImplementedError`` reports "not implemented yet").

    Examples
    --------
    >>> check_value("exercise 1", 0.5, 0.5)
    ✓ exercise 1: correct.
    >>> check_value("exercise 1", [1.0, 2.0], [1.0, 2.0, 3.0]).message
    'your answer has shape (2,), expected (3,).'
    """
    if callable(answer):
        answer, problem = run_answer(name, answer)
        if problem is not None:
            return problem
    if answer is None or answer is Ellipsis:
        return failed(name, f"{NOT_IMPLEMENTED}: fill in your answer.")
    return compare_arrays(name, answer, expected, atol=atol)


def check_function(name: str, fn, reference, cases, *, atol: float = 1e-6) -> CheckResult:
    """Compare ``fn(*case)`` with ``reference(*case)`` on every case.

    A generic check for exercises that have no dedicated diagnosing check.
    Each case is a tuple of positional arguments; copies are passed, so the
    learner's function cannot change the inputs of the next case.

    Examples
    --------
    >>> check_function("double", lambda x: 2 * x, lambda x: x + x, [(np.ones(3),), (np.arange(4.0),)])
    ✓ double: correct on 2 inputs.
    >>> check_function("double", lambda x: x * x, lambda x: x + x, [(np.arange(4.0),)]).passed
    False
    """
    cases = list(cases)
    for number, case in enumerate(cases, start=1):
        expected = reference(*copies(case))
        got, problem = attempt(name, fn, *copies(case))
        if problem is not None:
            return in_context(problem, f"on input {number} of {len(cases)}")
        result = compare_arrays(name, got, expected, what=f"your result for input {number}", atol=atol)
        if not result.passed:
            return result
    return passed(name, f"correct on {len(cases)} inputs.")


# --- helpers shared by the diagnosing checks ------------------------------------------------


def copies(args) -> tuple:
    """Copies of the array arguments, so that a learner's in-place edit harms nothing."""
    return tuple(np.array(a) if isinstance(a, np.ndarray) else a for a in args)


def attempt(name: str, fn, *args, **kwargs):
    """:func:`run_answer` with numpy's overflow/invalid warnings silenced (the check reports them)."""
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return run_answer(name, fn, *args, **kwargs)


def in_context(problem: CheckResult, context: str) -> CheckResult:
    """Prefix a crash report with the input that caused it (not for "not implemented yet")."""
    if problem.not_implemented:
        return problem
    return failed(problem.name, f"{context}, {problem.message}")


def with_hint(problem: CheckResult, hint: str) -> CheckResult:
    """Add a hint after a crash report (not after "not implemented yet")."""
    if problem.not_implemented:
        return problem
    message = problem.message.rstrip()
    return failed(problem.name, f"{message}{'' if message.endswith('.') else '.'} {hint}")


def as_numbers(value) -> np.ndarray | None:
    """``value`` as a float array, or None when it is not an array of numbers."""
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        return None
    return arr


def close(a, b, atol: float = 1e-6) -> bool:
    """Same shape and the same numbers (NaN never matches)."""
    if a is None or b is None:
        return False
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and bool(np.allclose(a, b, atol=atol, rtol=1e-6))


def difference(got: np.ndarray, expected: np.ndarray) -> str:
    """Where two arrays of the same shape differ most, in words."""
    gap = np.abs(np.nan_to_num(got - expected, nan=np.inf))
    where = np.unravel_index(int(np.argmax(gap)), got.shape)
    return f"largest difference {float(gap[where]):.3g} at index {list(map(int, where))}"


def first_match(got, variants) -> str | None:
    """The message of the first ``(array, message)`` variant that ``got`` equals, else None."""
    for value, message in variants:
        if close(got, value):
            return message
    return None


def accepts(fn, parameter: str) -> bool:
    """Does ``fn`` take an argument called ``parameter`` (or ``**kwargs``)?"""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == parameter or p.kind is p.VAR_KEYWORD for p in params)


def n_required(fn) -> int | None:
    """How many positional arguments ``fn`` needs (None when it cannot be told)."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return None
    return sum(
        p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty for p in params
    )


def output_and_weights(value):
    """Split a learner's return value into ``(output, weights or None)``."""
    if isinstance(value, tuple) and len(value) == 2:
        return as_numbers(value[0]), as_numbers(value[1])
    return as_numbers(value), None
