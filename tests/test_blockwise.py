"""Blockwise attention equals the full computation, masks included, in a fraction of the memory."""

import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import attnlib as al
from attnlib.attention import scaled_dot_product_attention
from attnlib.blockwise import FULL, MASKED, SKIPPED, blockwise_plan

TOL = {np.float64: 1e-10, np.float32: 1e-5}


@st.composite
def problems(draw, dtype=np.float64):
    """Random Q, K, V (sometimes with a batch axis), a block size and maybe a mask."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    n_q, n_k = draw(st.integers(1, 13)), draw(st.integers(1, 13))
    d_k, d_v = draw(st.integers(1, 6)), draw(st.integers(1, 4))
    batch = draw(st.sampled_from([(), (2,), (2, 3)]))
    low_high = draw(st.sampled_from([1.0, 3.0]))
    Q = rng.uniform(-low_high, low_high, size=(*batch, n_q, d_k)).astype(dtype)
    K = rng.uniform(-low_high, low_high, size=(*batch, n_k, d_k)).astype(dtype)
    V = rng.uniform(-low_high, low_high, size=(*batch, n_k, d_v)).astype(dtype)
    kind = draw(st.sampled_from(["none", "random", "sparse", "causal", "padding"]))
    if kind == "none":
        mask = None
    elif kind == "random":
        mask = rng.random((*batch, n_q, n_k)) < 0.5
    elif kind == "sparse":  # many fully masked rows and tiles
        mask = rng.random((n_q, n_k)) < 0.1
    elif kind == "causal":
        mask = al.causal_mask(n_q, n_k)
    else:  # one length per sequence of the first batch axis, shared by the others (heads)
        n_seq = batch[0] if batch else 1
        mask = al.padding_mask(rng.integers(0, n_k + 1, size=n_seq), n_k)  # (n_seq, 1, n_k)
        mask = mask.reshape(n_seq, *[1] * (len(batch) - 1), 1, n_k) if batch else mask[0]
    block_size = draw(st.integers(1, 15))
    return Q, K, V, mask, block_size


def _reference(Q, K, V, mask):
    """The formula: attnlib's plain scaled_dot_product_attention (itself tested against loops)."""
    return scaled_dot_product_attention(Q, K, V, mask)[0]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_equals_scaled_dot_product_attention(dtype, data):
    Q, K, V, mask, block_size = data.draw(problems(dtype))
    out = al.blockwise_attention(Q, K, V, mask, block_size=block_size)
    expected = _reference(Q, K, V, mask)
    assert out.shape == expected.shape and out.dtype == dtype
    np.testing.assert_allclose(out, expected, rtol=0, atol=TOL[dtype])


@settings(max_examples=80, deadline=None)
@given(problems(np.float64))
def test_causal_flag_equals_causal_mask(p):
    Q, K, V, mask, block_size = p
    n_q, n_k = Q.shape[-2], K.shape[-2]
    out = al.blockwise_attention(Q, K, V, mask, block_size=block_size, causal=True)
    both = al.causal_mask(n_q, n_k) if mask is None else mask & al.causal_mask(n_q, n_k)
    np.testing.assert_allclose(out, _reference(Q, K, V, both), rtol=0, atol=1e-10)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 10), st.integers(1, 6))
def test_fully_masked_rows_give_exact_zeros(seed, n, block_size):
    rng = np.random.default_rng(seed)
    Q, K, V = rng.normal(size=(n, 3)), rng.normal(size=(n, 3)), rng.normal(size=(n, 2))
    mask = rng.random((n, n)) < 0.5
    hidden = rng.random(n) < 0.5
    mask[hidden] = False  # these queries may see nothing
    out = al.blockwise_attention(Q, K, V, mask, block_size=block_size)
    assert np.all(out[hidden] == 0.0)
    assert np.all(np.isfinite(out))


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 9), st.integers(1, 5))
def test_permuting_keys_and_values_changes_nothing(seed, n, block_size):
    rng = np.random.default_rng(seed)
    Q, K, V = rng.normal(size=(4, 3)), rng.normal(size=(n, 3)), rng.normal(size=(n, 2))
    perm = rng.permutation(n)
    a = al.blockwise_attention(Q, K, V, block_size=block_size)
    b = al.blockwise_attention(Q, K[perm], V[perm], block_size=block_size)
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)


def test_matches_the_formula_with_a_mask():
    rng = np.random.default_rng(3)
    Q, K, V = rng.normal(size=(7, 4)), rng.normal(size=(9, 4)), rng.normal(size=(9, 3))
    mask = rng.random((7, 9)) < 0.6
    expected = _reference(Q, K, V, mask)
    out = al.blockwise_attention(Q, K, V, mask, block_size=2)
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-12)


def test_large_scores_do_not_overflow():
    """The running max keeps exp() in range even when scores are in the thousands."""
    rng = np.random.default_rng(4)
    Q, K, V = 40 * rng.normal(size=(20, 8)), 40 * rng.normal(size=(20, 8)), rng.normal(size=(20, 2))
    out = al.blockwise_attention(Q, K, V, block_size=3)
    np.testing.assert_allclose(out, _reference(Q, K, V, None), rtol=0, atol=1e-10)


def test_block_size_larger_than_sequence_is_one_tile():
    rng = np.random.default_rng(5)
    Q, K, V = rng.normal(size=(3, 2)), rng.normal(size=(4, 2)), rng.normal(size=(4, 2))
    np.testing.assert_allclose(
        al.blockwise_attention(Q, K, V, block_size=1000), _reference(Q, K, V, None), atol=1e-12
    )


def test_plan_skips_the_tiles_above_the_diagonal():
    plan = blockwise_plan(64, 64, 16, causal=True)
    n_blocks = 4
    assert plan.shape == (n_blocks, n_blocks)
    assert np.all(plan[np.triu_indices(n_blocks, 1)] == SKIPPED)
    assert np.all(np.diag(plan) == MASKED)
    assert np.all(plan[np.tril_indices(n_blocks, -1)] == FULL)
    np.testing.assert_array_equal(plan, blockwise_plan(64, 64, 16, al.causal_mask(64)))


def test_plan_of_a_padding_mask_skips_padded_key_blocks():
    mask = al.padding_mask(np.array([5, 20]), 32)  # (2, 1, 32)
    plan = blockwise_plan(8, 32, 8, mask)
    # key blocks 0..2 hold a real key for the second sequence; block 3 (keys 24..31) for neither
    np.testing.assert_array_equal(plan[0], [MASKED, MASKED, MASKED, SKIPPED])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_extra_memory_grows_with_n_not_n_squared(dtype):
    """The peak of new allocations stays far below one n x n score matrix."""
    n, d, block_size = 2048, 16, 128
    rng = np.random.default_rng(7)
    Q, K, V = (rng.normal(size=(n, d)).astype(dtype) for _ in range(3))
    tracemalloc.start()
    try:
        al.blockwise_attention(Q, K, V, block_size=block_size, causal=True)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    score_matrix = n * n * np.dtype(dtype).itemsize
    assert peak < score_matrix / 10, (peak, score_matrix)


def test_float32_stays_float32():
    X = np.ones((3, 2), dtype=np.float32)
    assert al.blockwise_attention(X, X, X).dtype == np.float32


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"block_size": 0}, ValueError, "block_size must be an integer >= 1, got 0"),
        ({"block_size": 2.5}, TypeError, "block_size must be an integer"),
        ({"block_size": True}, TypeError, "block_size must be an integer"),
        ({"mask": np.ones((3, 4), dtype=bool)}, ValueError, "does not broadcast"),
        ({"mask": np.ones((3, 3))}, TypeError, "must be boolean"),
        ({"scale": -1.0}, ValueError, "scale must be a positive"),
        ({"causal": "no"}, TypeError, "causal must be a bool"),
        ({"causal": 1}, TypeError, "causal must be a bool"),
        ({"mask": np.ones((2, 3, 3), dtype=bool)}, ValueError, "would add batch dimensions"),
    ],
)
def test_bad_arguments_say_what_was_expected(kwargs, error, message):
    X = np.ones((3, 2))
    with pytest.raises(error, match=message):
        al.blockwise_attention(X, X, X, **kwargs)


def test_mismatched_shapes_are_rejected():
    with pytest.raises(ValueError, match="Q has d_k=2 but K has d_k=3"):
        al.blockwise_attention(np.ones((2, 2)), np.ones((2, 3)), np.ones((2, 1)))


def test_plan_flags_are_real_booleans():
    with pytest.raises(TypeError, match="causal must be a bool"):
        blockwise_plan(4, 4, 2, causal="no")
    with pytest.raises(TypeError, match="n_q must be an integer"):
        blockwise_plan(4.0, 4, 2)


def test_float16_sums_do_not_overflow():
    """Issue 12: 70,000 equal float16 scores made the running sum overflow (NaN)."""
    n = 70_000
    V = np.ones((n, 1), np.float16)
    out = al.blockwise_attention(np.zeros((1, 4), np.float16), np.zeros((n, 4), np.float16), V)
    assert out.dtype == np.float16
    np.testing.assert_array_equal(out, [[1.0]])
