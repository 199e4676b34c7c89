"""attnlib.timing: the step counter against known chains, the plain programs against attnlib, the timers' errors."""

from __future__ import annotations

import numpy as np
import pytest

from attnlib import timing
from attnlib.attention import scaled_dot_product_attention
from attnlib.rnn import init_rnn, rnn_encode


@pytest.fixture
def rng():
    return np.random.default_rng(7)


def test_plain_programs_equal_the_library(rng):
    n, d = 9, 5
    X = rng.normal(size=(n, d))
    p = init_rnn(d, d, rng)
    np.testing.assert_allclose(timing.recurrence(X, p["W_xh"], p["W_hh"], p["b_h"]), rnn_encode(X, p), atol=1e-12)
    W_q, W_k, W_v = (rng.normal(size=(d, d)) for _ in range(3))
    expected, _ = scaled_dot_product_attention(X @ W_q, X @ W_k, X @ W_v)
    np.testing.assert_allclose(timing.self_attention(X, W_q, W_k, W_v), expected, atol=1e-12)
    np.testing.assert_allclose(timing.self_attention_rows(X, W_q, W_k, W_v), expected, atol=1e-12)


@pytest.mark.parametrize("n", [1, 2, 7, 40])
def test_critical_paths(rng, n):
    d = 4
    X = rng.normal(size=(n, d))
    W = rng.normal(size=(d, d))
    b = np.zeros(d)
    rec = timing.count_steps(timing.recurrence, X, W, W, b)
    assert rec.sequential == 3 * n + 1  # X @ W_xh + b, then (matmul, add, tanh) per step; the first h @ W_hh waits
    att = timing.count_steps(timing.self_attention, X, W, W, W)
    rows = timing.count_steps(timing.self_attention_rows, X, W, W, W)
    assert att.sequential == rows.sequential == 9  # the same chain, whatever n
    assert att.operations == 11 and rows.operations == 3 + 8 * n  # one call against n row-sized calls
    both = timing.count_steps(lambda X: timing.self_attention(timing.recurrence(X, W, W, b), W, W, W), X)
    assert both.sequential == rec.sequential + att.sequential  # attention waits for the last state


def test_count_steps_sees_independent_work():
    def tree_sum(x):  # pairwise sums: log2(n) levels
        while len(x) > 1:
            x = x[0::2] + x[1::2]
        return x

    assert timing.count_steps(tree_sum, np.ones(16)).sequential == 4
    assert timing.count_steps(lambda x: np.stack([x * 2, x + 1]), np.ones(3)) == (1, 2)  # stacking is free
    with pytest.raises(TypeError, match="numpy operations"):
        timing.count_steps(lambda x: 3.0, np.ones(2))


def test_best_time_and_slope():
    assert timing.best_time(lambda: None, repeats=2) >= 0
    n = np.array([8.0, 16, 32, 64])
    assert timing.loglog_slope(n, n) == pytest.approx(1.0)
    assert timing.loglog_slope(n, np.r_[100.0, 1, 4, 16], k=3) == pytest.approx(2.0)  # only the 3 largest n
    with pytest.raises(ValueError, match="repeats"):
        timing.best_time(lambda: None, repeats=0)
    with pytest.raises(TypeError, match="callable"):
        timing.best_time(3)
    # best_times interleaves the programs' runs and keeps each one's fastest, on a fake clock
    now, calls = [0.0], []
    costs = {"a": iter([3.0, 1.0, 2.0]), "b": iter([5.0, 6.0, 4.0])}

    def run(name):
        calls.append(name)
        now[0] += next(costs[name])

    best = timing.best_times({"a": lambda: run("a"), "b": lambda: run("b")}, 3, clock=lambda: now[0])
    assert calls == ["a", "b"] * 3 and best == {"a": 1.0, "b": 4.0}
    # with min_seconds, a run is as many calls as fill it (found by doubling), timed per call
    now, calls = [0.0], []
    costs = {"a": iter([1.0] * 19)}
    best = timing.best_times({"a": lambda: run("a")}, 3, min_seconds=3.5, clock=lambda: now[0])
    assert len(calls) == (1 + 2 + 4) + 4 * 3 and best == {"a": 1.0}  # 1, 2, 4 calls to find 4
    with pytest.raises(ValueError, match="min_seconds"):
        timing.best_time(lambda: None, min_seconds=-1)
    with pytest.raises(TypeError, match="map names"):
        timing.best_times([lambda: None])
    with pytest.raises(ValueError, match="repeats"):
        timing.best_times({"a": lambda: None}, 0)
    with pytest.raises(ValueError, match="k must be"):
        timing.loglog_slope(n, n, k=1)
    with pytest.raises(ValueError, match="same length"):
        timing.loglog_slope(n, n[:3])
    with pytest.raises(ValueError, match="positive"):
        timing.loglog_slope(n, -n)
