"""Self-checks for the labs' exercises.

Each check runs the learner's answer and returns a :class:`CheckResult`: ``.passed``
is True or False, ``.message`` says in plain words what is right or what is wrong,
and the result displays itself readably in a notebook.  A check never prints the
solution.  An exercise that still raises ``NotImplementedError`` is reported as
"not implemented yet" instead of crashing the notebook.
"""

from __future__ import annotations

import html
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
        where = np.unravel_index(np.argmax(np.abs(got - expected)), got.shape)
        return failed(
            name,
            f"{what} has the right shape but different values "
            f"(largest difference {np.max(np.abs(got - expected)):.3g} at index {list(map(int, where))}).",
        )
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
