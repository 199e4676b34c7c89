"""How a self-check calls the learner's code: plain and fast, for practice, not for grades.

A self-check runs in the learner's own kernel and protects nothing: grades come from
:mod:`attnlib.grading`, which runs the answer cell in a separate process.  What this module
gives the checks is good diagnoses:

- the learner's function gets deep copies of the inputs, and an input changed in place is named;
- the names of attnlib's reference functions for the exercise (``forbid``) are watched with a
  profiler while the learner's code runs: a direct call is reported as "use your own
  implementation" (attnlib's own internal calls, and stand-ins for earlier exercises, are fine);
- an earlier exercise that this one builds on can be replaced by attnlib's version while the
  check runs (``upstream``), so that one unsolved exercise does not cost the next;
- the return value becomes a plain numpy array, with plain words for None, ragged lists and
  objects that are not arrays of numbers;
- exceptions are reported in one sentence (``NotImplementedError``: "not implemented yet").
"""

from __future__ import annotations

import contextlib
import copy
import functools
import inspect
import sys
import threading
import types
import warnings

import numpy as np

MESSAGE_LIMIT = 300  # characters of a learner's exception message that a check repeats

#: What each kind of exercise asks the learner to write: a call of attnlib's version is reported.
FORBID = {
    "softmax": ("softmax", "softmax_last_axis_", "softmax_rows_"),
    "scores": ("scaled_dot_product_scores", "dot_product_scores", "scaled_dot_product_attention",
               "multi_head_attention", "blockwise_attention"),
    "attention": ("scaled_dot_product_attention", "multi_head_attention", "blockwise_attention",
                  "nadaraya_watson", "head_attention"),
    "softmax_backward": ("softmax_backward", "attention_backward", "multi_head_attention_backward"),
    "attention_backward": ("attention_backward", "multi_head_attention_backward"),
    "causal_mask": ("causal_mask",),
    "padding_mask": ("padding_mask",),
    "split_heads": ("split_heads", "multi_head_attention"),
    "merge_heads": ("merge_heads", "multi_head_attention"),
    "multi_head": ("multi_head_attention",),
}


class BadReturn(Exception):
    """The learner's return value is not what the check can compare."""


class Problem(Exception):
    """What went wrong with a call of the learner's code, in words for the learner."""

    def __init__(self, message: str, not_implemented: bool = False):
        super().__init__(message)
        self.message, self.not_implemented = message, not_implemented


_state = threading.local()


def _get(attr, default):
    return getattr(_state, attr, default)


@contextlib.contextmanager
def settings(forbid=(), upstream=None):
    """The ``forbid`` names and ``upstream`` stand-ins for the learner calls of one check."""
    saved = (_get("forbid", ()), _get("upstream", None))
    _state.forbid, _state.upstream = tuple(forbid), upstream
    try:
        yield
    finally:
        _state.forbid, _state.upstream = saved


def trusted(reference):
    """``reference`` wrapped so that the attnlib functions it calls are never reported (an earlier answer)."""

    @functools.wraps(reference)
    def stand_in(*args, **kwargs):
        _state.trusted = _get("trusted", 0) + 1
        try:
            return reference(*args, **kwargs)
        finally:
            _state.trusted -= 1

    return stand_in


def _reference_codes(names) -> dict:
    """The code objects of attnlib's functions called ``names`` (in any loaded attnlib module)."""
    codes = {}
    for mod_name, module in list(sys.modules.items()):
        if module is None or not (mod_name == "attnlib" or mod_name.startswith("attnlib.")) \
                or mod_name.startswith(("attnlib.checks", "attnlib.grading")):
            continue
        for name in names:
            fn = getattr(module, "__dict__", {}).get(name)
            if isinstance(fn, types.FunctionType) and fn.__module__.startswith("attnlib"):
                codes[fn.__code__] = name
    return codes


@contextlib.contextmanager
def watching(names):
    """Record (in the yielded list) the forbidden attnlib functions that code outside attnlib calls."""
    called: list[str] = []
    codes = _reference_codes(names) if names else {}
    if not codes:
        yield called
        return

    def profile(frame, event, arg):
        if event == "call" and frame.f_code in codes and not _get("trusted", 0):
            caller = frame.f_back.f_globals.get("__name__", "") if frame.f_back is not None else ""
            if not (caller == "attnlib" or caller.startswith("attnlib.")) or caller.startswith("attnlib.checks"):
                name = codes[frame.f_code]
                if name not in called:
                    called.append(name)

    previous = sys.getprofile()
    sys.setprofile(profile)
    try:
        yield called
    finally:
        sys.setprofile(previous)


@contextlib.contextmanager
def substituting(fn, upstream):
    """Within the block, the names in ``upstream`` that ``fn`` reads from its globals are attnlib's references."""
    namespace = getattr(fn, "__globals__", None)
    saved = {}
    try:
        if upstream and isinstance(namespace, dict):
            for name, (reference, _) in upstream.items():
                if name in namespace:
                    saved[name] = namespace[name]
                    namespace[name] = trusted(reference)
        yield
    finally:
        for name, value in saved.items():
            namespace[name] = value


def pristine_copy(value):
    """A deep copy (arrays, dicts, lists); objects that cannot be copied are handed over as they are."""
    try:
        return copy.deepcopy(value)
    except Exception:
        return value


def changed(before, after, path: str) -> str | None:
    """Where ``after`` differs from its copy ``before`` (arrays, dicts, lists, tuples), in words; else None."""
    if isinstance(before, np.ndarray):
        if not isinstance(after, np.ndarray) or after.shape != before.shape or after.dtype != before.dtype:
            return path
        nan = before.dtype.kind in "fc"
        return None if np.array_equal(before, after, equal_nan=nan) else path
    if isinstance(before, dict):
        if not isinstance(after, dict):
            return path
        added = [k for k in after if k not in before]
        removed = [k for k in before if k not in after]
        if added:
            return f"{path} (a key {added[0]!r} was added)"
        if removed:
            return f"{path} (the key {removed[0]!r} was removed)"
        for key in before:
            where = changed(before[key], after[key], f"{path}[{key!r}]")
            if where:
                return where
        return None
    if isinstance(before, list):
        if not isinstance(after, list) or len(after) != len(before):
            return path
        for i, (b, a) in enumerate(zip(before, after, strict=True)):
            where = changed(b, a, f"{path}[{i}]")
            if where:
                return where
    if isinstance(before, tuple) and isinstance(after, tuple) and len(before) == len(after):
        for i, (b, a) in enumerate(zip(before, after, strict=True)):
            where = changed(b, a, f"{path}[{i}]")
            if where:
                return where
    return None


def short(text: str, limit: int = MESSAGE_LIMIT) -> str:
    """``text`` cut to ``limit`` characters, saying how much was left out."""
    text = str(text)
    if len(text) <= limit:
        return text
    return f"{text[:limit].rstrip()}… ({len(text) - limit} more characters)"


def describe(err: BaseException) -> str:
    """``ValueError: message``, the message cut short (a learner's exception may print anything, or fail to)."""
    try:
        text = str(err)
    except Exception:
        text = "(its message could not be shown)"
    return f"{type(err).__name__}: {short(text)}" if text else type(err).__name__


def to_array(value, what: str = "your function") -> np.ndarray:
    """``value`` as a new numpy array of numbers (or booleans), or :class:`BadReturn` in plain words."""
    if value is None:
        raise BadReturn(f"{what} returned None (a missing return?).")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            arr = np.array(value)
    except ValueError as err:
        if "inhomogeneous" in str(err) or "sequence" in str(err):
            raise BadReturn(f"{what} returned a ragged {type(value).__name__} (rows of different lengths), "
                            "not an array of numbers.") from None
        raise BadReturn(f"{what} returned a {type(value).__name__} that is not an array of numbers "
                        f"({short(err, 120)}).") from None
    except Exception as err:
        raise BadReturn(f"{what} returned a {type(value).__name__} that could not be turned into an array "
                        f"({describe(err)}).") from None
    if arr.dtype.kind in "USa" or (arr.dtype.kind == "O" and any(isinstance(x, str | bytes) for x in arr.flat)):
        raise BadReturn(f"{what} returned text ({short(repr(value), 60)}), not numbers: return the numbers "
                        "themselves, not formatted strings.")
    if arr.dtype.kind not in "biuf":
        try:
            arr = arr.astype(float)
        except Exception:
            holding = f" holding {type(arr.flat[0]).__name__}" if arr.dtype.kind == "O" and arr.size else ""
            raise BadReturn(f"{what} returned {type(value).__name__}{holding}, not an array of numbers.") from None
    return arr


def to_pair(value, what: str = "your function"):
    """``(output, weights)`` from a return value that is either the output or such a pair (tuple or list)."""
    if isinstance(value, tuple | list) and len(value) == 2 and not _is_row_of_numbers(value):
        return to_array(value[0], what), None if value[1] is None else to_array(value[1], what)
    return to_array(value, what), None


def _is_row_of_numbers(value) -> bool:
    return all(isinstance(v, int | float | np.number) for v in value)


def _names_of(fn, args, kwargs, names):
    if names is not None:
        return list(names) + [f"argument {i + 1}" for i in range(len(names), len(args))]
    try:
        bound = inspect.signature(fn).bind_partial(*args, **kwargs)
        positional = [n for n, v in bound.arguments.items()]
        if len(positional) >= len(args):
            return positional[:len(args)]
    except (TypeError, ValueError):
        pass
    return [f"argument {i + 1}" for i in range(len(args))]


def call(fn, args=(), kwargs=None, *, names=None, expected: str | None = None, convert=None):
    """Run the learner's ``fn(*args, **kwargs)`` on copies of the inputs; return the (converted) value.

    Raises :class:`Problem` with the words to show; ``NotImplementedError`` passes through
    as ``Problem(not_implemented=True)``.
    """
    from attnlib.grading.sandbox import InputChanged, Stopped  # the grader's stand-in may raise these

    kwargs = dict(kwargs or {})
    if expected is not None:
        try:
            inspect.signature(fn).bind(*args, **kwargs)
        except TypeError as err:
            raise Problem(f"your function cannot be called as {expected}: {short(err, 160)}. "
                          f"Keep the signature the exercise gives: {expected}.") from None
        except ValueError:
            pass
    kept_args, kept_kwargs = pristine_copy(args), pristine_copy(kwargs)
    given_args, given_kwargs = pristine_copy(args), pristine_copy(kwargs)
    try:
        with np.errstate(all="ignore"), warnings.catch_warnings(), watching(_get("forbid", ())) as refused, \
                substituting(fn, _get("upstream", None)):
            warnings.simplefilter("ignore", RuntimeWarning)
            value = fn(*given_args, **given_kwargs)
            value = value if convert is None else convert(value)
    except NotImplementedError as err:
        raise Problem(str(err), not_implemented=True) from None
    except (BadReturn, Stopped) as err:
        raise Problem(str(err)) from None
    except InputChanged as err:
        raise Problem(_changed_message(str(err))) from None
    except RecursionError:
        raise Problem("your code raised RecursionError: a function calls itself without end.") from None
    except Exception as err:
        raise Problem(f"your code raised {describe(err)}") from None
    if refused:
        raise Problem(f"use your own implementation: your code calls attnlib's {refused[0]}, which this "
                      "exercise asks you to write yourself.")
    names = _names_of(fn, args, kwargs, names)
    for name, before, after in [*zip(names, kept_args, given_args, strict=False),
                                *((k, kept_kwargs[k], given_kwargs[k]) for k in kept_kwargs)]:
        where = changed(before, after, name)
        if where:
            raise Problem(_changed_message(where))
    return value


def _changed_message(where: str) -> str:
    return (f"your function changed its input {where} in place, so the caller's data is no longer "
            "what it was (calling it twice gives a different result). Compute into new arrays "
            "instead (for example W = W / s, not W /= s).")
