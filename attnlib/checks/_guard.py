"""How a check runs the learner's code, so that the answer cannot fool it.

Every call of the learner's code goes through :func:`learner_call`, which

- hands the learner deep copies of the inputs, computes nothing from what it handed
  over, and reports an input changed in place;
- switches attnlib's reference implementations of the exercise off while the
  learner's code runs (:func:`refusing`): a direct call raises :class:`Refused`,
  "use your own implementation" (attnlib's own internal calls still work);
- substitutes attnlib's reference for an earlier exercise the answer builds on
  (``upstream``), so that one unsolved exercise does not cost the next one;
- stops the learner's code after a time limit (``signal.setitimer`` on the main
  thread, as in a Jupyter kernel; a watchdog thread elsewhere);
- turns the return value into plain numpy arrays while still guarded (an
  ``__array__`` is learner code too), with plain words for None, ragged lists and
  objects that are not arrays of numbers;
- afterwards puts back every name that the learner's code rebound in attnlib's
  modules (the checks among them), numpy, ``math`` and ``builtins``: patching a check's
  helper from inside an answer has no effect.
"""

from __future__ import annotations

import builtins
import contextlib
import copy
import ctypes
import functools
import importlib
import importlib.util
import inspect
import signal
import sys
import threading
import time
import types
import warnings

import numpy as np

TIME_LIMIT = 60.0  # seconds per call of the learner's code
MESSAGE_LIMIT = 300  # characters of a learner's exception message that a check repeats

#: What each kind of exercise asks the learner to write: attnlib's versions are refused meanwhile.
FORBID = {
    "softmax": ("softmax", "softmax_last_axis_", "softmax_rows_"),
    "scores": ("scaled_dot_product_scores", "dot_product_scores", "scaled_dot_product_attention",
               "multi_head_attention", "blockwise_attention"),
    "attention": ("scaled_dot_product_attention", "multi_head_attention", "blockwise_attention",
                  "nadaraya_watson", "head_attention"),
    "causal_mask": ("causal_mask",),
    "padding_mask": ("padding_mask",),
    "split_heads": ("split_heads", "multi_head_attention"),
    "merge_heads": ("merge_heads", "multi_head_attention"),
    "multi_head": ("multi_head_attention",),
}
REFERENCE_NAMES = tuple(sorted({n for names in FORBID.values() for n in names}))


class Refused(Exception):
    """Raised by one of attnlib's reference functions that the exercise asks the learner to write."""


class TimeUp(BaseException):
    """The learner's code ran past its time limit (a BaseException, so ``except Exception`` cannot swallow it)."""


class BadReturn(Exception):
    """The learner's return value is not what the check can compare."""


_state = threading.local()


def _get(attr, default):
    return getattr(_state, attr, default)


# --- 1. nothing the learner's code rebinds survives it -------------------------------------


def _guarded_module(name: str) -> bool:
    return name in ("math", "builtins", "numpy", "attnlib") or name.startswith(("numpy.", "attnlib."))


_MISSING_ = object()
_pristine: dict[str, tuple[types.ModuleType, dict]] = {}
_pristine_classes: list[tuple[type, dict]] = []


def freeze() -> None:
    """Remember the modules (and the checks' classes) as they are now: this is what :func:`restore` puts back."""
    for name, module in list(sys.modules.items()):
        if module is not None and _guarded_module(name) and name not in _pristine:
            _pristine[name] = (module, dict(module.__dict__))
            if name.startswith("attnlib.checks"):
                _pristine_classes.extend(
                    (obj, dict(vars(obj))) for obj in module.__dict__.values()
                    if isinstance(obj, type) and obj.__module__ == name)


def restore(*, _pristine=_pristine, _pristine_classes=_pristine_classes, _builtins=builtins.__dict__,
            _type=type, _freeze=freeze, _MISSING=_MISSING_) -> None:
    """Put back every name rebound in the remembered modules; drop names added to shadow a builtin.

    (Its own helpers are bound when it is defined, so rebinding them in this module cannot stop it.)
    """
    _freeze()  # modules imported since (attnlib.fast, the widgets) are remembered as they are now
    shadowable = _pristine["builtins"][1].keys() if "builtins" in _pristine else _builtins.keys()
    for name, (module, snapshot) in _pristine.items():
        current = module.__dict__
        private_ok = not name.startswith("attnlib")  # numpy's and IPython's own bookkeeping (builtins._)
        for key, value in snapshot.items():
            if current.get(key, _MISSING) is not value and not (private_ok and key.startswith("_")):
                current[key] = value
        if name != "builtins":
            for key in [k for k in current if k not in snapshot and k in shadowable and not k.startswith("_")]:
                del current[key]
    for cls, snapshot in _pristine_classes:
        for key, value in snapshot.items():
            if vars(cls).get(key, _MISSING) is not value and key not in ("__dict__", "__weakref__"):
                _type.__setattr__(cls, key, value)
        for key in [k for k in vars(cls) if k not in snapshot]:
            _type.__delattr__(cls, key)


_MISSING = _MISSING_


class ProtectedModule(types.ModuleType):
    """A module whose public names cannot be rebound (``attnlib.checks.check_x = ...`` raises)."""

    def __setattr__(self, name, value):
        if name in self.__dict__.get("__all__", ()) and self.__dict__.get(name, _MISSING) is not value:
            raise AttributeError(f"{self.__name__}.{name} cannot be replaced: the checks grade your answers.")
        super().__setattr__(name, value)

    def __delattr__(self, name):
        if name in self.__dict__.get("__all__", ()):
            raise AttributeError(f"{self.__name__}.{name} cannot be deleted: the checks grade your answers.")
        super().__delattr__(name)


# --- 2. attnlib's reference functions refuse while the learner's code runs ------------------

_STUB = """\
def {name}(*args, **kwargs):
    import sys
    return sys.modules["attnlib.checks._guard"].reference_called({key}, args, kwargs)
"""
_swapped: dict[int, tuple[types.FunctionType, types.CodeType, types.FunctionType]] = {}


def _reference_functions(names) -> list[types.FunctionType]:
    """attnlib's functions called ``names``, wherever an attnlib module holds them (attnlib.fast too)."""
    if "attnlib.fast" not in sys.modules and importlib.util.find_spec("attnlib.fast") is not None:
        importlib.import_module("attnlib.fast")  # so that its twins refuse too, even if imported inside the answer
    found = {}
    for mod_name, module in list(sys.modules.items()):
        if module is None or not (mod_name == "attnlib" or mod_name.startswith("attnlib.")) \
                or mod_name.startswith("attnlib.checks"):
            continue
        for name in names:
            fn = module.__dict__.get(name)
            if isinstance(fn, types.FunctionType) and fn.__module__.startswith("attnlib") \
                    and not fn.__module__.startswith("attnlib.checks") and fn.__closure__ is None:
                found[id(fn)] = fn
    return list(found.values())


def reference_called(key, args, kwargs):
    """What a switched-off reference function does: refuse a call from the learner's code, serve attnlib's own."""
    fn, _, original = _swapped[key]
    caller = sys._getframe(2).f_globals.get("__name__", "")
    inside_attnlib = (caller == "attnlib" or caller.startswith("attnlib.")) and not caller.startswith("attnlib.checks")
    if inside_attnlib or _get("trusted", 0):
        return original(*args, **kwargs)
    refused = _get("refused", None)
    if refused is not None and fn.__name__ not in refused:
        refused.append(fn.__name__)
    raise Refused(f"use your own implementation: this exercise asks you to write it yourself, so attnlib's "
                  f"{fn.__name__} is switched off while the check runs.")


@contextlib.contextmanager
def refusing(names):
    """Within the block, a call of attnlib's ``names`` from code outside attnlib raises :class:`Refused`.

    The function objects themselves change (their code is swapped), so an alias such as
    ``from attnlib import softmax as s`` refuses too; everything is put back on exit, even
    after an error or a timeout.
    """
    swapped = []
    try:
        for fn in _reference_functions(names):
            key = id(fn)
            if key in _swapped:
                continue
            original = types.FunctionType(fn.__code__, fn.__globals__, fn.__name__, fn.__defaults__,
                                          fn.__closure__)
            original.__kwdefaults__ = fn.__kwdefaults__
            namespace = {}
            exec(_STUB.format(name=fn.__name__, key=key), {}, namespace)  # noqa: S102 (a fixed template)
            _swapped[key] = (fn, fn.__code__, original)
            swapped.append(key)
            fn.__code__ = namespace[fn.__name__].__code__
        yield
    finally:
        for key in swapped:
            fn, code, _ = _swapped.pop(key)
            fn.__code__ = code


def trusted(reference):
    """``reference`` wrapped so that the attnlib functions it calls never refuse (stands in for an earlier answer)."""

    @functools.wraps(reference)
    def stand_in(*args, **kwargs):
        _state.trusted = _get("trusted", 0) + 1
        try:
            return reference(*args, **kwargs)
        finally:
            _state.trusted -= 1

    return stand_in


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


# --- 3. a time limit for every call ---------------------------------------------------------


@contextlib.contextmanager
def _alarm(seconds: float):
    """Raise :class:`TimeUp` in the main thread after ``seconds`` (and every 0.05 s after, if it is caught)."""
    expired = []

    def ring(signum, frame):
        expired.append(True)
        raise TimeUp

    previous = signal.signal(signal.SIGALRM, ring)
    old_delay, old_interval = signal.setitimer(signal.ITIMER_REAL, seconds, 0.05)
    start = time.monotonic()
    try:
        yield expired
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if old_delay:  # someone else's timer (pytest-timeout, say) keeps running
            signal.setitimer(signal.ITIMER_REAL, max(old_delay - (time.monotonic() - start), 1e-3), old_interval)


def _can_alarm() -> bool:
    return hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()


def run_limited(call, seconds: float | None):
    """``call()``, stopped with :class:`TimeUp` after ``seconds`` (None or 0: no limit)."""
    if not seconds:
        return call()
    if _can_alarm():
        with _alarm(seconds) as expired:
            value = call()
        if expired:
            raise TimeUp
        return value
    box = {}

    def target():
        try:
            box["value"] = call()
        except BaseException as err:  # handed to the calling thread
            box["error"] = err

    worker = threading.Thread(target=target, daemon=True, name="attnlib-check")
    worker.start()
    worker.join(seconds)
    if worker.is_alive():  # stop a pure-Python loop; numpy code stops when it returns to Python
        ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(worker.ident), ctypes.py_object(TimeUp))
        raise TimeUp
    if "error" in box:
        raise box["error"]
    return box["value"]


# --- 4. the learner's inputs and return values ----------------------------------------------


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
    if arr.dtype.kind not in "biuf":
        try:
            arr = arr.astype(float)
        except Exception:
            holding = f" holding {type(arr.flat[0]).__name__}" if arr.dtype.kind == "O" and arr.size else ""
            raise BadReturn(f"{what} returned {type(value).__name__}{holding}, not an array of numbers.") from None
    return arr


def to_pair(value, what: str = "your function"):
    """``(output, weights)`` from a return value that is either the output or such a pair."""
    if isinstance(value, tuple) and len(value) == 2:
        return to_array(value[0], what), None if value[1] is None else to_array(value[1], what)
    return to_array(value, what), None


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


def call(fn, args=(), kwargs=None, *, names=None, expected: str | None = None, convert=None, _restore=restore):
    """Run the learner's ``fn(*args, **kwargs)`` under every guard; return the (converted) value.

    Raises :class:`Problem` with the words to show; ``NotImplementedError`` passes through
    as ``Problem(not_implemented=True)``.
    """
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
    refused: list[str] = []
    _state.refused = refused
    try:
        with np.errstate(all="ignore"), warnings.catch_warnings(), refusing(_get("forbid", ())), \
                substituting(fn, _get("upstream", None)):
            warnings.simplefilter("ignore", RuntimeWarning)

            def run():
                value = fn(*given_args, **given_kwargs)
                return value if convert is None else convert(value)

            value = run_limited(run, _get("time_limit", TIME_LIMIT))
    except TimeUp:
        raise Problem(f"your function did not finish within {_get('time_limit', TIME_LIMIT):g} s "
                      "(an endless loop?).") from None
    except NotImplementedError as err:
        raise Problem(str(err), not_implemented=True) from None
    except Refused as err:
        raise Problem(str(err)) from None
    except BadReturn as err:
        raise Problem(str(err)) from None
    except RecursionError:
        raise Problem("your code raised RecursionError: a function calls itself without end.") from None
    except Exception as err:
        raise Problem(f"your code raised {describe(err)}") from None
    finally:
        _restore()  # first: whatever the learner's code rebound (this module included) is put back
        _state.refused = None
    if refused:
        raise Problem(f"use your own implementation: your code calls attnlib's {refused[0]}, which this "
                      "exercise asks you to write yourself.")
    names = _names_of(fn, args, kwargs, names)
    for name, before, after in [*zip(names, kept_args, given_args, strict=False),
                                *((k, kept_kwargs[k], given_kwargs[k]) for k in kept_kwargs)]:
        where = changed(before, after, name)
        if where:
            raise Problem(f"your function changed its input {where} in place, so the caller's data is no longer "
                          "what it was (calling it twice gives a different result). Compute into new arrays "
                          "instead (for example W = W / s, not W /= s).")
    return value


class Problem(Exception):
    """What went wrong with a call of the learner's code, in words for the learner."""

    def __init__(self, message: str, not_implemented: bool = False):
        super().__init__(message)
        self.message, self.not_implemented = message, not_implemented


@contextlib.contextmanager
def settings(forbid=(), upstream=None, time_limit=None):
    """The guards for the learner calls of one check (nested checks keep their own)."""
    saved = (_get("forbid", ()), _get("upstream", None), _get("time_limit", TIME_LIMIT))
    _state.forbid = tuple(forbid)
    _state.upstream = upstream
    _state.time_limit = TIME_LIMIT if time_limit is None else time_limit
    try:
        yield
    finally:
        _state.forbid, _state.upstream, _state.time_limit = saved
