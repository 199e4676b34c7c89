"""Hypothesis properties of softmax and attention."""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import attnlib as al

finite = st.floats(-10, 10, allow_nan=False, allow_infinity=False)


@st.composite
def qkv(draw, same_length=False):
    n_q = draw(st.integers(1, 6))
    n_k = n_q if same_length else draw(st.integers(1, 6))
    d_k, d_v = draw(st.integers(1, 5)), draw(st.integers(1, 4))
    Q = draw(arrays(np.float64, (n_q, d_k), elements=finite))
    K = draw(arrays(np.float64, (n_k, d_k), elements=finite))
    V = draw(arrays(np.float64, (n_k, d_v), elements=finite))
    return Q, K, V


@given(qkv(), st.data())
def test_rows_sum_to_one_or_zero(t, data):
    Q, K, V = t
    mask = data.draw(arrays(bool, (Q.shape[0], K.shape[0])))
    _, w = al.scaled_dot_product_attention(Q, K, V, mask)
    sums = w.sum(axis=-1)
    expected = np.where(mask.any(axis=-1), 1.0, 0.0)
    np.testing.assert_allclose(sums, expected, atol=1e-12)
    assert np.all(w >= 0)


@given(qkv(), st.data())
def test_masked_keys_get_exactly_zero(t, data):
    Q, K, V = t
    mask = data.draw(arrays(bool, (Q.shape[0], K.shape[0])))
    out, w = al.scaled_dot_product_attention(Q, K, V, mask)
    assert np.all(w[~mask] == 0.0)
    assert np.all(np.isfinite(out))


@given(st.integers(1, 7), st.integers(1, 4), st.data())
def test_self_attention_is_permutation_equivariant(n, d_model_per_head, data):
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    X = rng.normal(size=(n, 2 * d_model_per_head))
    p = al.init_multi_head(2 * d_model_per_head, 2, rng)
    perm = rng.permutation(n)
    out, w = al.multi_head_attention(X, X, p, n_heads=2)
    out_p, w_p = al.multi_head_attention(X[perm], X[perm], p, n_heads=2)
    np.testing.assert_allclose(out_p, out[perm], atol=1e-10)
    np.testing.assert_allclose(w_p, w[:, perm][:, :, perm], atol=1e-10)


@given(qkv(same_length=True), st.data())
def test_causal_mask_never_leaks_the_future(t, data):
    Q, K, V = t
    n = Q.shape[0]
    i = data.draw(st.integers(0, n - 1))
    K2, V2 = K.copy(), V.copy()
    K2[i + 1:] = data.draw(arrays(np.float64, K2[i + 1:].shape, elements=finite))
    V2[i + 1:] = data.draw(arrays(np.float64, V2[i + 1:].shape, elements=finite))
    mask = al.causal_mask(n)
    out, w = al.scaled_dot_product_attention(Q, K, V, mask)
    out2, w2 = al.scaled_dot_product_attention(Q, K2, V2, mask)
    assert np.array_equal(out[: i + 1], out2[: i + 1])  # bit-identical
    assert np.array_equal(w[: i + 1], w2[: i + 1])


@given(arrays(np.float64, st.tuples(st.integers(1, 4), st.integers(1, 6)), elements=finite),
       st.floats(-1e3, 1e3, allow_nan=False))
def test_softmax_is_shift_invariant(x, c):
    np.testing.assert_allclose(al.softmax(x + c), al.softmax(x), atol=1e-9)


@given(arrays(np.float64, st.integers(1, 8), elements=st.floats(-1e4, 1e4)))
def test_large_logits_stay_finite(x):
    w = al.softmax(x * 1.0)
    assert np.all(np.isfinite(w))
    assert abs(w.sum() - 1.0) < 1e-12


def test_logits_of_1e4_stay_finite():
    Q = np.full((2, 4), 100.0)
    out, w = al.scaled_dot_product_attention(Q, Q * np.array([[1.0], [-1.0]]), np.eye(2, 3), scale=1.0)
    assert np.all(np.isfinite(w)) and np.all(np.isfinite(out))
    np.testing.assert_allclose(w, [[1.0, 0.0], [1.0, 0.0]])
