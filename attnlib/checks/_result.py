"""The result of a check, and the helpers every check shares.

A check runs the learner's answer and returns a :class:`CheckResult`: ``.passed``
is True or False, ``.message`` says in plain words what is right or what is wrong,
and the result displays itself readably in a notebook.  A check never prints the
solution.  An exercise that still raises ``NotImplementedError`` is reported as
"not implemented yet" instead of crashing the notebook.  Every call of the learner's
code goes through :func:`attempt` (:mod:`attnlib.checks._calls`: copies of the inputs,
exceptions in words); :func:`graded` turns a function into a check (``forbid``, ``upstream``),
and :func:`assert_passed` raises on a failed result.  These checks are for practice: a grade
comes from :mod:`attnlib.grading`, outside the learner's kernel.
"""

from __future__ import annotations

import functools
import html
import inspect
import math
import textwrap
from dataclasses import dataclass

import numpy as np

from attnlib.checks import _calls

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


def assert_passed(result: CheckResult) -> None:
    """For grading cells: raise ``AssertionError`` with the whole diagnosis unless ``result`` passed.

    On success the result is displayed (as display data, not as the cell's value, so that
    nbgrader reads no score from it) and nothing is returned.  The message is wrapped into
    short lines, so that ``nbgrader validate``, which cuts long lines, shows all of it.

    Examples
    --------
    >>> assert_passed(failed("Exercise 1", "wrong."))
    Traceback (most recent call last):
    ...
    AssertionError: ✗ Exercise 1: wrong.
    """
    __tracebackhide__ = True  # IPython and pytest show the message, not this frame
    if not isinstance(result, CheckResult):
        raise AssertionError(f"expected the result of a check, got {type(result).__name__}.")
    if not result.passed:
        raise AssertionError(textwrap.fill(str(result), width=64, break_on_hyphens=False))
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:
        get_ipython = None
    if get_ipython is not None and get_ipython() is not None:
        display(result)
    else:
        print(result)


def graded(forbid=()):
    """Make a check out of ``body(fn_or_answer, ..., name=...)``.

    The check gains two keyword arguments: ``forbid`` (names of attnlib functions that the
    learner's code should not call; a call is reported; the check's own list by default), ``upstream``
    (``{"my_softmax": (attnlib.softmax, "Exercise 1")}``: while checking, the learner's
    ``my_softmax`` is replaced by attnlib's, so that an unsolved Exercise 1 does not cost
    this one; when only the learner's own ``my_softmax`` makes it fail, the result passes and
    names Exercise 1 as the cause).
    """

    def decorate(body):
        signature = inspect.signature(body)

        @functools.wraps(body)
        def check(*args, forbid=forbid, upstream=None, **kwargs):
            try:
                bound = signature.bind(*args, **kwargs)
            except TypeError as err:
                raise TypeError(f"{body.__name__}: {err}") from None
            bound.apply_defaults()
            name = str(bound.arguments.get("name", body.__name__))
            stand_ins = _stand_ins(upstream)
            with _calls.settings(forbid, stand_ins):
                result = _run_check(body, name, args, kwargs)
            if not result.passed and result.message.startswith(REFUSED):
                with _calls.settings((), stand_ins):  # wrong even with attnlib's help? say how too
                    helped = _run_check(body, name, args, kwargs)
                if not helped.passed and not helped.not_implemented:
                    return failed(name, f"{helped.message.rstrip('.')}. Also, {result.message}")
            if stand_ins and result.passed:
                with _calls.settings(forbid, None):
                    own = _run_check(body, name, args, kwargs)
                if not own.passed:
                    names = " and ".join(stand_ins)
                    exercises = " and ".join(dict.fromkeys(e for _, e in stand_ins.values() if e))
                    cause = f"{exercises} is the cause: fix it there." if exercises else "fix that first."
                    result = passed(name, f"{result.message.rstrip('.')} (with attnlib's version standing in "
                                          f"for your {names}). With your own {names} it fails, so {cause}")
            return result

        check.__signature__ = signature.replace(parameters=[
            *signature.parameters.values(),
            *(inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, default=d)
              for n, d in (("forbid", forbid), ("upstream", None))
              if n not in signature.parameters)])
        return check

    return decorate


def _stand_ins(upstream) -> dict | None:
    if not upstream:
        return None
    if not isinstance(upstream, dict):
        raise TypeError("upstream must be a dict such as {'my_softmax': (attnlib.softmax, 'Exercise 1')}, "
                        f"got {type(upstream).__name__}.")
    stand_ins = {}
    for name, value in upstream.items():
        reference, exercise = value if isinstance(value, tuple) else (value, "")
        if not callable(reference):
            raise TypeError(f"upstream[{name!r}] should be attnlib's reference function (and the exercise's "
                            f"name), got {type(reference).__name__}.")
        stand_ins[name] = (reference, exercise)
    return stand_ins


def _run_check(body, name, args, kwargs) -> CheckResult:
    try:
        return body(*args, **kwargs)
    except Exception as err:  # a check must report, never crash the notebook
        return failed(name, f"the check could not handle your answer ({_calls.describe(err)}).")


def run_answer(name: str, fn, *args, **kwargs):
    """Call the learner's ``fn`` under the checks' guards; return ``(value, None)`` or ``(None, CheckResult)``.

    Copies of the inputs (an input changed in place is reported), exceptions reported in a
    sentence, a missing return named.
    """
    return attempt(name, fn, *args, convert=_not_none, **kwargs)


def _not_none(value):
    if value is None:
        raise _calls.BadReturn("your function returned None (a missing return?).")
    return value


FLOAT32_EPS = float(np.finfo(np.float32).eps)


class ScoresNear(tuple):
    """A case (a tuple of arguments) whose computation goes through scores of about ``magnitude``.

    In float32 such a score is known to ``eps32 * magnitude`` only, so a right answer computed in float32
    (which the checks accept) is off by a few times ``eps32 * magnitude`` relative: :func:`check_function`
    widens the relative tolerance of this case to ``4 * eps32 * magnitude`` (from the case, never from the
    answer's dtype).  Used for the hidden cases with scores near 1600 (an exp without its maximum overflows)
    and near -10000 (a finite fill for the future outweighs the allowed scores).
    """

    magnitude: float

    def __new__(cls, magnitude: float, *args):
        case = super().__new__(cls, args)
        case.magnitude = float(magnitude)
        return case


def compare_arrays(name: str, got, expected, *, what: str = "your answer", atol: float = 1e-6,
                   rtol: float | None = None, magnitude: float = 0.0) -> CheckResult:
    """Compare an array answer with the expected one: shape first, then values.

    Values match within ``atol + rtol * |expected|`` (a relative tolerance with an absolute
    floor).  The tolerance comes from the *expected* value's precision, never from the
    answer's: ``rtol`` defaults to 100 machine epsilons of the expected value's float type,
    at least 1e-5 (a float32 answer computed the right way is that close; a float16 one, or
    a float32 one 0.1 % off, is not), and the floor is that much of the largest expected
    magnitude (sums lose digits to cancellation).  ``magnitude``: the size of the largest intermediate
    (a score) of the computation, from the inputs (see :class:`ScoresNear`); the default ``rtol`` is then at
    least ``4 * eps32 * magnitude``, the error of a right float32 computation.

    Examples
    --------
    >>> compare_arrays("ex", np.float32(1234.5678), 1234.5678).passed
    True
    >>> compare_arrays("ex", np.float16(1234.5678), 1234.5678).passed
    False
    >>> print(compare_arrays("ex", 2.0 * 100 / 99, 2.0).message)
    your answer is the expected value times 100/99: an n - 1 where n is expected (for example var(ddof=1), the
    unbiased estimate, where the population variance, ddof=0, is expected).
    """
    if not isinstance(got, np.ndarray):
        try:
            got = _calls.to_array(got, what)
        except _calls.BadReturn as err:
            return failed(name, str(err))
    try:
        got = got.astype(float)
    except (TypeError, ValueError):
        return failed(name, f"{what} should be an array of numbers, got {got.dtype} values.")
    reference = np.asarray(expected)
    precision = reference.dtype if reference.dtype.kind == "f" else np.dtype(float)
    expected = reference.astype(float)
    if got.shape != expected.shape:
        return failed(name, f"{what} has shape {got.shape}, expected {expected.shape}.")
    if np.isnan(got).any() and not np.isnan(expected).any():
        return failed(name, f"{what} contains NaN at {np.argwhere(np.isnan(got))[0].tolist()}.")
    if rtol is None:
        rtol = max(1e-5, 100 * float(np.finfo(precision).eps), 4 * FLOAT32_EPS * float(magnitude))
        finite = np.abs(expected[np.isfinite(expected)])
        atol = max(atol, rtol * float(finite.max(initial=0.0)))
    if not np.allclose(got, expected, atol=atol, rtol=rtol, equal_nan=True):
        cause = likely_cause(got, expected, what)
        if cause is not None:
            return failed(name, cause)
        return failed(name, f"{what} has the right shape but different values ({difference(got, expected)}).")
    return passed(name)


def likely_cause(got: np.ndarray, expected: np.ndarray, what: str) -> str | None:
    """Name a constant factor between the answer and the expected one (n/(n - 1): ddof), if there is one."""
    nonzero = (expected != 0) & np.isfinite(expected) & np.isfinite(got)
    if not nonzero.any() or (got[~nonzero & np.isfinite(expected)] != 0).any():
        return None
    ratio = got[nonzero] / expected[nonzero]
    r = float(ratio.flat[0])
    if not np.allclose(ratio, r, rtol=1e-9, atol=0) or r <= 0 or math.isclose(r, 1.0, rel_tol=1e-12):
        return None
    n = r / (r - 1) if r > 1 else 1 / (1 - r)  # r = n/(n - 1), or r = (n - 1)/n
    if n >= 10 and abs(n - round(n)) < 1e-6 * n:
        n = round(n)
        if r > 1:
            return (f"{what} is the expected value times {n}/{n - 1}: an n - 1 where n is expected (for example "
                    "var(ddof=1), the unbiased estimate, where the population variance, ddof=0, is expected).")
        return (f"{what} is the expected value times {n - 1}/{n}: a division by n where n - 1 is expected "
                "(ddof=1).")
    if ratio.size < 2:  # one number (a scalar result too): no pattern to name, and got / r would be the answer
        return None
    if r == -1.0:
        return f"{what} has the opposite sign of the expected value everywhere."
    return f"{what} is the expected value times {r:.6g} everywhere: a constant factor (a scale or a normalisation?)."


@graded()
def check_value(name: str, answer, expected, *, atol: float = 1e-6, rtol: float | None = None) -> CheckResult:
    """Check a computed value (number or array) against the expected one.

    ``answer`` may be a zero-argument function (called here, under the guards of
    :func:`check_function`, so that an exercise left as ``raise NotImplementedError``
    reports "not implemented yet").  Tolerance: see :func:`compare_arrays`.

    Examples
    --------
    >>> check_value("exercise 1", 0.5, 0.5)
    ✓ exercise 1: correct.
    >>> check_value("exercise 1", [1.0, 2.0], [1.0, 2.0, 3.0]).message
    'your answer has shape (2,), expected (3,).'
    """
    if callable(answer):
        answer, problem = attempt(name, answer, convert=_calls.to_array)
        if problem is not None:
            return problem
    elif answer is None or answer is Ellipsis:
        return failed(name, f"{NOT_IMPLEMENTED}: fill in your answer.")
    return compare_arrays(name, answer, expected, atol=atol, rtol=rtol)


@graded()
def check_function(name: str, fn, reference, cases, *, atol: float = 1e-6, rtol: float | None = None,
                   mistakes=()) -> CheckResult:
    """Compare ``fn(*case)`` with ``reference(*case)`` on every case.

    A generic check for exercises that have no dedicated diagnosing check.  Each case
    is a tuple of positional arguments.  The learner's function and the reference each
    get deep copies (arrays, dicts of arrays): the expected answer comes from inputs
    the learner never touched, the notebook's variables stay as they are, and an input
    that the learner's function changes in place is reported.  ``mistakes`` are
    ``(function, message)`` pairs, known wrong versions of the answer (see
    :func:`attnlib.checks.mistakes`): an answer that gives what one of them gives is told its
    message instead of a generic "different values".

    Examples
    --------
    >>> check_function("double", lambda x: 2 * x, lambda x: x + x, [(np.ones(3),), (np.arange(4.0),)])
    ✓ double: correct on 2 inputs.
    >>> check_function("double", lambda x: x * x, lambda x: x + x, [(np.arange(4.0),)]).passed
    False
    """
    cases = list(cases)
    for number, case in enumerate(cases, start=1):
        if not isinstance(case, tuple):
            case = (case,)
        expected = reference(*_calls.pristine_copy(case))
        got, problem = attempt(name, fn, *case, convert=_calls.to_array)
        if problem is not None:
            return in_context(problem, f"on input {number} of {len(cases)}")
        result = compare_arrays(name, got, expected, what=f"your result for input {number}", atol=atol, rtol=rtol,
                                magnitude=getattr(case, "magnitude", 0.0))
        if not result.passed:
            named = named_mistake(got, case, mistakes)
            return failed(name, f"on input {number} of {len(cases)}, {named}") if named else result
    return passed(name, f"correct on {len(cases)} input{'' if len(cases) == 1 else 's'}.")


# --- helpers shared by the diagnosing checks ------------------------------------------------


def named_mistake(got, case, mistakes) -> str | None:
    """The message of the first known mistake that gives ``got`` on ``case`` (None when none does)."""
    for wrong, message in mistakes or ():
        try:
            with np.errstate(all="ignore"):
                value = _calls.to_array(wrong(*_calls.pristine_copy(case)))
        except Exception:
            continue
        if value.shape == np.shape(got) and np.allclose(np.asarray(got, dtype=float), value.astype(float),
                                                        rtol=1e-7, atol=1e-10, equal_nan=True):
            return message
    return None


def copies(args) -> tuple:
    """Deep copies of the arguments (arrays, dicts of arrays), so that a learner's in-place edit harms nothing."""
    return tuple(_calls.pristine_copy(a) for a in args)


def attempt(name: str, fn, *args, convert=None, names=None, expected=None, **kwargs):
    """Run the learner's ``fn`` (see :mod:`._calls`): ``(value, None)`` or ``(None, CheckResult)``.

    ``convert`` (for example :func:`._calls.to_array`) runs on the return value; ``names``
    name the arguments in messages; ``expected`` is the signature to name when ``fn`` cannot
    be called with these arguments.
    """
    try:
        return _calls.call(fn, args, kwargs, names=names, expected=expected, convert=convert), None
    except _calls.Problem as problem:
        if problem.not_implemented:
            hint = f" ({_calls.short(problem.message)})" if problem.message else ""
            return None, failed(name, f"{NOT_IMPLEMENTED}{hint}.")
        return None, failed(name, problem.message)


def in_context(problem: CheckResult, context: str) -> CheckResult:
    """Prefix a crash report with the input that caused it (not for "not implemented yet")."""
    if problem.not_implemented or problem.message.startswith(_STANDALONE):
        return problem
    return failed(problem.name, f"{context}, {problem.message}")


# messages that say all there is to say, with no input to point at
REFUSED = "use your own implementation"
_STANDALONE = (REFUSED, "your function cannot be called as", "your function has no",
               "your function did not finish")


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
    except Exception:
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


@dataclass(frozen=True)
class Parameters:
    """How a learner's function takes its arguments (from its signature)."""

    positional: tuple[str, ...]  # positional parameters, in order
    required: int  # how many of them have no default
    var_positional: bool  # *args
    keyword_only: tuple[str, ...]
    required_keyword_only: tuple[str, ...]
    var_keyword: bool  # **kwargs

    @property
    def capacity(self) -> float:
        """How many positional arguments the function can take."""
        return math.inf if self.var_positional else len(self.positional)


def parameters(fn) -> Parameters | None:
    """The parameters of ``fn``, or None when its signature cannot be read."""
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return None
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    keyword_only = [p for p in params if p.kind is p.KEYWORD_ONLY]
    return Parameters(tuple(p.name for p in positional), sum(p.default is p.empty for p in positional),
                      any(p.kind is p.VAR_POSITIONAL for p in params), tuple(p.name for p in keyword_only),
                      tuple(p.name for p in keyword_only if p.default is p.empty),
                      any(p.kind is p.VAR_KEYWORD for p in params))
