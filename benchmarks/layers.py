"""What validation and the backward passes cost, as ratios measured in one run (issue 21).

1. The price of the public boundary: ``attnlib.scaled_dot_product_attention`` (checks, then
   the formula) against the same formula in four bare numpy lines, at n = 8 (where the checks
   dominate) and n = 512 (where the arithmetic does).  Target: at most 3× at n = 8.
2. The price of the gradients: ``multi_head_attention_backward`` given the forward's cache,
   against ``multi_head_attention``, and the backward without a cache (it recomputes the
   forward).  Target: the backward with its cache at most 2.5× the forward.

Usage: ``.venv/bin/python benchmarks/layers.py`` (a few seconds).  Both arms run on one BLAS
thread and are timed in this process's CPU time (``time.process_time``), best of several
repeats: other programs on a shared machine disturb that least.  It prints ratios; it asserts
nothing.
"""

from __future__ import annotations

import argparse
import os
import time
import timeit

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before numpy is imported: both arms on one core

import numpy as np  # noqa: E402

import attnlib  # noqa: E402


def four_lines(Q, K, V):
    """The formula with no checks: scores, exponentials, weights, output."""
    S = Q @ K.T / np.sqrt(Q.shape[-1])
    E = np.exp(S - S.max(axis=-1, keepdims=True))
    A = E / E.sum(axis=-1, keepdims=True)
    return A @ V, A


def best(f, number: int, repeat: int) -> float:
    """The best time of one call, in seconds."""
    return min(timeit.repeat(f, number=number, repeat=repeat, timer=time.process_time)) / number


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=9)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)

    print("1. scaled_dot_product_attention (checked) / four numpy lines, d_k = d_v = 16, float64:")
    for n, number in ((8, 2000), (512, 20)):
        Q, K, V = (rng.standard_normal((n, 16)) for _ in range(3))
        np.testing.assert_allclose(attnlib.scaled_dot_product_attention(Q, K, V)[0], four_lines(Q, K, V)[0],
                                   rtol=1e-12, atol=1e-12)
        t_lib = best(lambda Q=Q, K=K, V=V: attnlib.scaled_dot_product_attention(Q, K, V), number, args.repeat)
        t_np = best(lambda Q=Q, K=K, V=V: four_lines(Q, K, V), number, args.repeat)
        target = " (target: at most 3)" if n == 8 else ""
        print(f"   n = {n:>3}: {t_lib * 1e6:9.1f} µs / {t_np * 1e6:9.1f} µs = {t_lib / t_np:.2f}{target}")

    print("2. multi-head attention, batch 4, n = 64, d_model = 64, 4 heads, with biases, float64:")
    X = rng.standard_normal((4, 64, 64))
    params = attnlib.init_multi_head(64, 4, rng, bias=True)
    d_output = rng.standard_normal((4, 64, 64))
    _, _, cache = attnlib.multi_head_attention(X, X, params, 4, return_cache=True)
    t_fwd = best(lambda: attnlib.multi_head_attention(X, X, params, 4), 20, args.repeat)
    t_fwd_cache = best(lambda: attnlib.multi_head_attention(X, X, params, 4, return_cache=True), 20, args.repeat)
    t_bwd = best(lambda: attnlib.multi_head_attention_backward(X, X, params, 4, d_output, cache=cache), 20,
                 args.repeat)
    t_bwd_alone = best(lambda: attnlib.multi_head_attention_backward(X, X, params, 4, d_output), 20, args.repeat)
    print(f"   forward {t_fwd * 1e3:.2f} ms; forward keeping its cache {t_fwd_cache * 1e3:.2f} ms")
    print(f"   backward with the cache / forward: {t_bwd / t_fwd:.2f} (target: at most 2.5)")
    print(f"   backward without a cache (forward recomputed) / forward: {t_bwd_alone / t_fwd:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
