"""The speed path, attnlib.fast, equals the plain functions the chapters read.

attnlib.fast computes softmax and attention in cache-sized blocks, in place, on every
core; attnlib.softmax and attnlib.attention are the plain numpy versions (themselves
tested against Python loops in test_attention.py).  Here the two are compared on drawn
shapes, batches, broadcasting, masks and dtypes.  While everything fits in one block,
the fast path does the same numpy operations on the same numbers, so the results must be
bit-identical; when the query rows are split into blocks, the product with V is formed
block by block and may round differently in the last bit, so there the comparison
allows 1e-12 (float64).
"""

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from threadpoolctl import threadpool_info, threadpool_limits

import attnlib as al
import attnlib.fast as fast
from attnlib.attention import scaled_dot_product_attention as plain_sdpa
from attnlib.softmax import softmax as plain_softmax

BENCHMARK = Path(__file__).resolve().parent.parent / "benchmarks" / "attention.py"


@st.composite
def attention_inputs(draw):
    """Q, K, V with broadcast batch dimensions, maybe a mask, a dtype and a scale."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    dtype = draw(st.sampled_from([np.float64, np.float32, np.float16]))
    n_q, n_k = draw(st.integers(1, 12)), draw(st.integers(1, 12))
    d_k, d_v = draw(st.integers(1, 6)), draw(st.integers(1, 5))
    batch = draw(st.sampled_from([(), (3,), (2, 3)]))

    def lead():  # each input gets the batch shape, a broadcastable part of it, or none
        kind = draw(st.sampled_from(["full", "ones", "none"]))
        return batch if kind == "full" else tuple(1 for _ in batch) if kind == "ones" else ()

    spread = draw(st.sampled_from([0.5, 3.0]))
    Q = rng.normal(0, spread, size=(*lead(), n_q, d_k)).astype(dtype)
    K = rng.normal(0, spread, size=(*lead(), n_k, d_k)).astype(dtype)
    V = rng.normal(0, 1, size=(*lead(), n_k, d_v)).astype(dtype)
    full = np.broadcast_shapes(Q.shape[:-2], K.shape[:-2], V.shape[:-2])
    mask_kind = draw(st.sampled_from(["none", "shared", "per entry", "causal", "padding", "empty rows"]))
    if mask_kind == "none":
        mask = None
    elif mask_kind == "shared":
        mask = rng.random((n_q, n_k)) < 0.6
    elif mask_kind == "per entry":
        mask = rng.random((*full, n_q, n_k)) < 0.6
    elif mask_kind == "causal":
        mask = al.causal_mask(n_q, n_k)
    elif mask_kind == "padding":
        n_seq = full[0] if full else 1
        mask = al.padding_mask(rng.integers(0, n_k + 1, size=n_seq), n_k)  # (n_seq, 1, n_k)
        mask = mask.reshape(n_seq, *[1] * (len(full) - 1), 1, n_k) if full else mask[0]
    else:  # many rows with no allowed key
        mask = rng.random((n_q, n_k)) < 0.15
    scale = draw(st.sampled_from([None, 1.0, 0.1]))
    return Q, K, V, mask, scale


@settings(max_examples=200)
@given(attention_inputs())
def test_fast_attention_is_bit_identical_to_the_plain_one(inputs):
    Q, K, V, mask, scale = inputs
    out, w = plain_sdpa(Q, K, V, mask, scale=scale)
    out_f, w_f = fast.scaled_dot_product_attention(Q, K, V, mask, scale=scale)
    assert out_f.shape == out.shape and w_f.shape == w.shape
    assert out_f.dtype == out.dtype == Q.dtype and w_f.dtype == Q.dtype
    np.testing.assert_array_equal(w_f, w)
    np.testing.assert_array_equal(out_f, out)


@given(st.integers(0, 2**32 - 1), st.sampled_from([np.float64, np.float32, np.float16]),
       st.sampled_from([(7,), (3, 5), (2, 3, 4)]), st.data())
def test_fast_softmax_equals_the_plain_one(seed, dtype, shape, data):
    rng = np.random.default_rng(seed)
    x = (rng.normal(size=shape) * 5).astype(dtype)
    x[rng.random(shape) < 0.2] = -np.inf  # masked entries, sometimes whole slices
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    got, expected = fast.softmax(x, axis=axis), plain_softmax(x, axis=axis)
    assert got.dtype == expected.dtype == dtype
    if axis % len(shape) == len(shape) - 1:
        np.testing.assert_array_equal(got, expected)
    else:  # fast moves the axis last first: the sums may be added in another order
        np.testing.assert_allclose(got, expected, rtol={np.float64: 1e-15, np.float32: 1e-6, np.float16: 1e-3}[dtype],
                                   atol=0)


@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-12), (np.float32, 1e-6)])
def test_large_inputs_in_blocks_on_all_cores_equal_the_plain_path(dtype, tol):
    # 2 x 2 x 701 x 600 = 1.7M scores: query rows in blocks, shared between threads.
    rng = np.random.default_rng(3)
    Q = rng.normal(size=(2, 2, 701, 16)).astype(dtype)
    K = rng.normal(size=(2, 1, 600, 16)).astype(dtype)  # broadcast over heads
    V = rng.normal(size=(1, 2, 600, 3)).astype(dtype)  # broadcast over batch
    mask = rng.random((2, 1, 701, 600)) > 0.2
    mask[1, 0, 350] = False  # a fully masked row
    out, w = plain_sdpa(Q, K, V, mask)
    out_f, w_f = fast.scaled_dot_product_attention(Q, K, V, mask)
    assert out_f.dtype == w_f.dtype == dtype
    np.testing.assert_allclose(w_f, w, rtol=0, atol=tol)
    np.testing.assert_allclose(out_f, out, rtol=0, atol=tol)
    assert np.all(w_f[1, :, 350] == 0) and np.all(out_f[1, :, 350] == 0)


@pytest.mark.parametrize("n_batch", [300, 700])  # 0.96M scores in one block; 2.2M shared between threads
def test_many_small_batch_entries_equal_the_plain_path(n_batch):
    rng = np.random.default_rng(4)
    Q = rng.normal(size=(n_batch, 2, 40, 8))
    K = rng.normal(size=(n_batch, 1, 40, 8))
    V = rng.normal(size=(1, 2, 40, 3))
    mask = rng.random((n_batch, 1, 40, 40)) > 0.3
    mask[5, 0, 7] = False
    out, w = plain_sdpa(Q, K, V, mask)
    out_f, w_f = fast.scaled_dot_product_attention(Q, K, V, mask)
    np.testing.assert_allclose(w_f, w, rtol=0, atol=1e-12)
    np.testing.assert_allclose(out_f, out, rtol=0, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_large_softmax_in_chunks_on_all_cores_equals_the_plain_one(dtype):
    rng = np.random.default_rng(8)
    x = rng.normal(size=(3, 700, 600)).astype(dtype)  # 1.26M entries: chunked, shared between threads
    x[0, 5] = -np.inf  # a fully masked row
    x[2, :, ::3] = -np.inf
    before = x.copy()
    np.testing.assert_array_equal(fast.softmax(x), plain_softmax(x))
    np.testing.assert_allclose(fast.softmax(x, axis=1), plain_softmax(x, axis=1),
                               rtol=1e-5 if dtype == np.float32 else 1e-13, atol=0)
    np.testing.assert_array_equal(x, before)  # the input is not overwritten


def test_the_number_of_threads_does_not_change_a_bit():
    """The blocks depend only on the shapes: one thread and all threads give the same bits."""
    rng = np.random.default_rng(5)
    Q, K, V = rng.normal(size=(1100, 8)), rng.normal(size=(1000, 8)), rng.normal(size=(1000, 4))
    with threadpool_limits(1, user_api="blas"):  # attnlib then uses one thread too
        out_1, w_1 = fast.scaled_dot_product_attention(Q, K, V)
        s_1 = fast.softmax(w_1 * 50)
    out_n, w_n = fast.scaled_dot_product_attention(Q, K, V)
    np.testing.assert_array_equal(w_1, w_n)
    np.testing.assert_array_equal(out_1, out_n)
    np.testing.assert_array_equal(s_1, fast.softmax(w_n * 50))


def test_threads_leave_the_blas_as_they_found_it():
    before = [lib["num_threads"] for lib in threadpool_info()]
    Q = np.random.default_rng(6).normal(size=(1100, 8))
    fast.scaled_dot_product_attention(Q, Q, Q)  # 1.2M scores: the threaded path
    assert [lib["num_threads"] for lib in threadpool_info()] == before


@pytest.mark.filterwarnings("ignore:overflow encountered")
def test_an_error_in_a_worker_thread_reaches_the_caller():
    Q = np.random.default_rng(7).normal(size=(1100, 8)).astype(np.float32)
    Q[700, 0] = 1e30  # its scores overflow float32, in the second block
    with pytest.raises(ValueError, match="overflow float32"):
        fast.scaled_dot_product_attention(Q, Q, Q)
    with pytest.raises(ValueError, match="overflow float32"):
        plain_sdpa(Q, Q, Q)


X3 = np.ones((3, 2))


@pytest.mark.parametrize(
    "args, kwargs",
    [
        ((X3, np.ones((3, 3)), X3), {}),
        ((X3, X3, X3[:2]), {}),
        ((X3, X3, X3), {"mask": np.ones((3, 3))}),
        ((X3, X3, X3), {"mask": np.ones((3, 4), bool)}),
        ((X3, X3, X3), {"mask": np.ones((2, 3, 3), bool)}),
        ((X3, X3, X3), {"scale": 0.0}),
        ((X3, X3, X3), {"scale": "1"}),
        ((np.full((3, 2), np.nan), X3, X3), {}),
        ((X3[:0], X3, X3), {}),
        (("abc", X3, X3), {}),
    ],
)
def test_fast_attention_refuses_what_the_plain_one_refuses(args, kwargs):
    with pytest.raises((TypeError, ValueError)) as plain_error:
        plain_sdpa(*args, **kwargs)
    with pytest.raises(type(plain_error.value)) as fast_error:
        fast.scaled_dot_product_attention(*args, **kwargs)
    assert str(fast_error.value) == str(plain_error.value)


def test_blockwise_attention_is_beside_the_fast_path():
    assert fast.blockwise_attention is al.blockwise_attention
    assert fast.blockwise_plan is al.blockwise_plan


# --------------------------------------------------------------------------- the benchmark script


@pytest.mark.slow
def test_benchmark_script_prints_both_paths(tmp_path):
    """A tiny run of benchmarks/attention.py (what `make bench` runs in full)."""
    record = tmp_path / "results.md"
    proc = subprocess.run(
        [sys.executable, str(BENCHMARK), "--sizes", "32", "64", "--repeats", "1", "--no-torch",
         "--record", str(record)],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    for expected in ("Median time of one call:", "Peak memory of one call:", "| 64 |", "matmul rate",
                     "plain FLOP rate / matmul rate", "fast FLOP rate / matmul rate"):
        assert expected in proc.stdout
    assert record.read_text().startswith("<!-- Written by benchmarks/attention.py --record")


@pytest.mark.slow
def test_benchmark_skips_naive_loops_that_would_take_too_long():
    """The estimate scales with n², also when the sizes jump by more than a doubling."""
    spec = importlib.util.spec_from_file_location("attention_benchmark", BENCHMARK)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    assert bench.naive_estimate([], 256, 9) == 0.0
    last = [{"n": 256, "naive_time": 0.5}]
    assert bench.naive_estimate(last, 512, 9) == pytest.approx(0.5 * 4 * 3)  # runs: 6 s
    assert bench.naive_estimate(last, 4096, 7) == pytest.approx(0.5 * 256 * 3)  # skipped: 384 s
    assert bench.naive_estimate([{"n": 512, "naive_time": None}], 1024, 9) == float("inf")
