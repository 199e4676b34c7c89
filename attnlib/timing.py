"""Measuring time two ways: wall time on this machine, and steps that must wait.

Chapters 2 and 5 compare a recurrence with attention.  Wall time depends on the
machine; the number of *dependent* steps does not.  This module holds both
measurements and the three programs they are applied to:

* :func:`best_time`, :func:`best_times` and :func:`loglog_slope`: wall time, and how it
  grows with ``n``;
* :func:`count_steps`: runs a plain numpy function on arrays that remember how
  long a chain of operations produced them, and returns the longest chain (the
  *critical path*: the time on a machine with unlimited parallel units, where
  every numpy operation takes one step) and the number of operations issued;
* :func:`recurrence`, :func:`self_attention` and :func:`self_attention_rows`:
  the programs both measurements run, in the same plain numpy, with no input
  checks, so that a timing compares the computations and not the validation.
"""

from __future__ import annotations

import time
from typing import NamedTuple

import numpy as np
from numpy.lib.mixins import NDArrayOperatorsMixin


def best_time(fn, repeats: int = 5, *, min_seconds: float = 0.0, clock=time.process_time) -> float:
    """CPU seconds of one call of ``fn()``, from the fastest of ``repeats`` runs.

    The clock is this process's CPU time (``time.process_time``): with one thread it is what a
    stopwatch shows on an idle machine; other programs disturb it much less than a wall-clock
    time, since the time they hold the processor is not counted (they can still slow it a
    little, through shared caches and memory; pass ``clock=time.perf_counter`` for wall time).
    The minimum over repeats removes what noise is left (caches, interrupts): it can only make
    a run slower, never faster.

    A run is one call, or, with ``min_seconds``, as many calls back to back as take at least
    that long (a number of calls found first by doubling, as :mod:`timeit` does), the run's
    time divided by their number: a clock's noise of some microseconds is then small beside
    a run of short calls.

    Examples
    --------
    >>> best_time(lambda: sum(range(100)), repeats=3) > 0
    True
    >>> best_time(lambda: sum(range(100)), repeats=3, min_seconds=1e-3) > 0
    True
    """
    if not callable(fn):
        raise TypeError(f"fn must be callable (a function taking no arguments), got {type(fn).__name__}")
    return best_times({"fn": fn}, repeats, min_seconds=min_seconds, clock=clock)["fn"]


def best_times(fns, repeats: int = 5, *, min_seconds: float = 0.0, clock=time.process_time) -> dict:
    """:func:`best_time` for several programs, their runs interleaved.

    ``fns`` maps names to functions taking no arguments. Round ``r`` runs each function once,
    in order, and each keeps its fastest run: a slow spell of the machine then falls on every
    program alike, instead of on whichever was being timed when it came, so ratios between
    the programs are steadier than from separate calls of :func:`best_time`.

    Examples
    --------
    >>> t = best_times({"short": lambda: sum(range(10)), "long": lambda: sum(range(10**5))}, 3)
    >>> sorted(t), t["short"] < t["long"]
    (['long', 'short'], True)
    """
    if not hasattr(fns, "items"):
        raise TypeError(f"fns must map names to functions, got {type(fns).__name__}")
    if isinstance(repeats, bool) or not isinstance(repeats, (int, np.integer)) or repeats < 1:
        raise ValueError(f"repeats must be a positive integer, got {repeats!r}")
    if isinstance(min_seconds, bool) or not isinstance(min_seconds, (int, float)) or not min_seconds >= 0:
        raise ValueError(f"min_seconds must be a number >= 0, got {min_seconds!r}")
    for name, fn in fns.items():
        if not callable(fn):
            raise TypeError(f"fns[{name!r}] must be callable (a function taking no arguments), "
                            f"got {type(fn).__name__}")
    number = {name: _calls_to_fill(fn, min_seconds, clock) for name, fn in fns.items()}
    best = {name: np.inf for name in fns}
    for _ in range(int(repeats)):
        for name, fn in fns.items():
            start = clock()
            for _ in range(number[name]):
                fn()
            best[name] = min(best[name], (clock() - start) / number[name])
    return best


def _calls_to_fill(fn, seconds: float, clock) -> int:
    """How many back-to-back calls of ``fn`` take at least ``seconds`` (1 if ``seconds`` is 0)."""
    number = 1
    while seconds > 0:
        start = clock()
        for _ in range(number):
            fn()
        if clock() - start >= seconds or number >= 2**20:
            break
        number *= 2
    return number


def loglog_slope(n, y, k: int | None = None) -> float:
    r"""Slope of :math:`\log y` against :math:`\log n`: 1 means linear growth, 2 quadratic.

    Fitted by least squares over the ``k`` largest ``n`` (all of them by default),
    where the growth is least disturbed by fixed overheads.

    Examples
    --------
    >>> n = np.array([10, 20, 40, 80])
    >>> round(loglog_slope(n, 3.0 * n**2), 6)
    2.0
    """
    n = np.asarray(n, dtype=float)
    y = np.asarray(y, dtype=float)
    if n.ndim != 1 or n.shape != y.shape:
        raise ValueError(f"n and y must be 1-D of the same length, got shapes {n.shape} and {y.shape}")
    k = len(n) if k is None else k
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 2 <= k <= len(n):
        raise ValueError(f"k must be an integer from 2 to len(n)={len(n)}, got {k!r}")
    if np.any(n <= 0) or np.any(y <= 0):
        raise ValueError("n and y must be positive to take logarithms")
    order = np.argsort(n)[-k:]
    return float(np.polyfit(np.log(n[order]), np.log(y[order]), 1)[0])


# --- counting dependent steps ----------------------------------------------------------------------------------

# numpy functions that only move or view data: they cost no step.
_FREE = {np.stack, np.concatenate, np.reshape, np.transpose, np.swapaxes, np.moveaxis, np.broadcast_to,
         np.shape, np.ndim, np.size}


class Traced(NDArrayOperatorsMixin):
    """An array that remembers the longest chain of operations behind it.

    ``depth`` is 0 for an input; every numpy operation (a ufunc such as ``+``,
    ``@`` or ``np.exp``, or a function such as ``np.sum``) returns a result of
    depth ``1 + max(depth of its inputs)``, however many numbers it computes at
    once.  Indexing, reshaping and stacking only move data and cost nothing.
    ``log`` counts every operation issued, in a list shared by all arrays of one trace.
    """

    def __init__(self, value, depth: int = 0, log: list | None = None):
        self.value = np.asarray(value)
        self.depth = depth
        self.log = [] if log is None else log

    # numpy protocols: unwrap, compute, wrap with the new depth
    def _wrap(self, value, depth):
        return Traced(value, depth, self.log)

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        values = [x.value if isinstance(x, Traced) else x for x in inputs]
        depth = max(x.depth for x in inputs if isinstance(x, Traced))
        self.log.append(ufunc.__name__)
        return self._wrap(getattr(ufunc, method)(*values, **kwargs), depth + 1)

    def __array_function__(self, func, types, args, kwargs):
        found = []

        def unwrap(x):
            if isinstance(x, Traced):
                found.append(x.depth)
                return x.value
            if isinstance(x, (list, tuple)):
                return type(x)(unwrap(item) for item in x)
            return x

        result = func(*unwrap(args), **{k: unwrap(v) for k, v in kwargs.items()})
        if func in _FREE:
            cost = 0
        else:
            cost = 1
            self.log.append(func.__name__)
        return self._wrap(result, max(found) + cost) if isinstance(result, (np.ndarray, np.generic)) else result

    # the few ndarray methods and attributes the programs below use
    def __getitem__(self, index):
        return self._wrap(self.value[index], self.depth)

    def __len__(self):
        return len(self.value)

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    shape = property(lambda self: self.value.shape)
    ndim = property(lambda self: self.value.ndim)
    T = property(lambda self: self._wrap(self.value.T, self.depth))

    def max(self, axis=None, keepdims=False):
        return np.max(self, axis=axis, keepdims=keepdims)

    def sum(self, axis=None, keepdims=False):
        return np.sum(self, axis=axis, keepdims=keepdims)


class StepCount(NamedTuple):
    """What :func:`count_steps` measured."""

    sequential: int
    """The critical path: the longest chain of operations, each needing the one before."""
    operations: int
    """Every operation issued, whether or not it had to wait."""


def count_steps(fn, *arrays) -> StepCount:
    """Run ``fn(*arrays)`` on traced arrays; count its dependent steps and its operations.

    Every array argument starts at depth 0 (it is available from the start).
    ``sequential`` is the depth of the result: the number of steps a machine
    with unlimited parallel units would need, if each numpy operation took one
    step.  (Real hardware also needs about log2(m) steps to add up m numbers;
    that is ignored here.)  ``operations`` is how many numpy operations were
    issued in all.  ``fn`` must use only numpy operations on its arguments.

    Examples
    --------
    >>> def chain(x):  # each product needs the one before
    ...     for _ in range(5):
    ...         x = x @ np.eye(2)
    ...     return x
    >>> count_steps(chain, np.ones(2))
    StepCount(sequential=5, operations=5)
    >>> count_steps(lambda x: [x @ np.eye(2) for _ in range(5)][-1], np.ones(2))  # five independent products
    StepCount(sequential=1, operations=5)
    """
    log: list = []
    traced = [Traced(a, 0, log) if isinstance(a, np.ndarray) else a for a in arrays]
    result = fn(*traced)
    if not isinstance(result, Traced):
        raise TypeError(f"fn must return the result of numpy operations on its array arguments, "
                        f"got {type(result).__name__}")
    return StepCount(result.depth, len(log))


# --- the programs that chapters 2 and 5 time and count ----------------------------------------------------------


def recurrence(X, W_xh, W_hh, b_h):
    r"""A tanh recurrence over one sequence, in plain numpy: all its hidden states.

    .. math:: h_t = \tanh(x_t W_{xh} + h_{t-1} W_{hh} + b_h), \qquad h_0 = 0

    The same computation as :func:`attnlib.rnn.rnn_encode` without its input
    checks: the input products of all steps are one matrix product, then the
    ``n`` steps run in a loop, because step ``t`` needs ``h_{t-1}``.

    Parameters
    ----------
    X : ndarray, shape (n, d_in)
    W_xh : ndarray, shape (d_in, d_hidden)
    W_hh : ndarray, shape (d_hidden, d_hidden)
    b_h : ndarray, shape (d_hidden,)

    Returns
    -------
    H : ndarray, shape (n, d_hidden)

    Examples
    --------
    >>> recurrence(np.array([[1.0], [0.0]]), np.eye(1), 0.5 * np.eye(1), np.zeros(1)).round(4)
    array([[0.7616],
           [0.3634]])
    """
    inputs = X @ W_xh + b_h  # (n, d_in) @ (d_in, d_hidden) -> (n, d_hidden): every step's input at once
    h = np.zeros(W_hh.shape[0])  # (d_hidden,)
    states = []
    for x_t in inputs:  # step t needs h from step t - 1
        h = np.tanh(x_t + h @ W_hh)  # (d_hidden,) @ (d_hidden, d_hidden) -> (d_hidden,)
        states.append(h)
    return np.stack(states)  # (n, d_hidden)


def self_attention(X, W_q, W_k, W_v):
    r"""Self-attention over one sequence, all rows at once, in plain numpy.

    .. math:: \operatorname{softmax}\!\left(\frac{Q K^\top}{\sqrt{d_k}}\right) V,
              \qquad Q = X W_q,\; K = X W_k,\; V = X W_v

    The same computation as :func:`attnlib.scaled_dot_product_attention` without
    its input checks and masks.

    Parameters
    ----------
    X : ndarray, shape (n, d_model)
    W_q, W_k : ndarray, shape (d_model, d_k)
    W_v : ndarray, shape (d_model, d_v)

    Returns
    -------
    ndarray, shape (n, d_v)

    Examples
    --------
    >>> X = np.eye(3)
    >>> self_attention(X, X, X, X).sum(axis=1).round(6)  # each row averages rows of the identity
    array([1., 1., 1.])
    """
    Q, K, V = X @ W_q, X @ W_k, X @ W_v  # (n, d_k), (n, d_k), (n, d_v)
    S = Q @ K.T / np.sqrt(Q.shape[-1])  # (n, d_k) @ (d_k, n) -> (n, n)
    W = np.exp(S - S.max(axis=-1, keepdims=True))  # (n, n)
    W = W / W.sum(axis=-1, keepdims=True)  # (n, n): rows sum to 1
    return W @ V  # (n, n) @ (n, d_v) -> (n, d_v)


def self_attention_rows(X, W_q, W_k, W_v):
    """:func:`self_attention` computed one query row at a time, in a Python loop.

    The rows do not depend on each other, but this program refuses to use that:
    it issues the work of each row separately, one after another.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X, W = rng.normal(size=(5, 4)), rng.normal(size=(4, 4))
    >>> bool(np.allclose(self_attention_rows(X, W, W, W), self_attention(X, W, W, W)))
    True
    """
    Q, K, V = X @ W_q, X @ W_k, X @ W_v  # (n, d_k), (n, d_k), (n, d_v)
    rows = []
    for q in Q:  # q: (d_k,); no row waits for another, but they run one by one
        s = K @ q / np.sqrt(q.shape[-1])  # (n, d_k) @ (d_k,) -> (n,)
        w = np.exp(s - s.max())  # (n,)
        rows.append((w / w.sum()) @ V)  # (n,) @ (n, d_v) -> (d_v,)
    return np.stack(rows)  # (n, d_v)
