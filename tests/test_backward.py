"""The backward passes against central differences of the forward functions (float64).

Each test takes the scalar ``L = sum(output * d_output)`` for a random ``d_output``,
differentiates it numerically, element by element, and compares with the analytic
gradient.  The relative error is measured on the whole gradient array,
``|g - g_num| / max(|g|, |g_num|, floor)`` (Frobenius norms), so entries that are nearly
zero do not blow it up.  The floor, 1e-3 (times |L| when |L| > 1), is for gradients
that are exactly zero (a key bias shifts every score of a query by the same amount,
which the softmax ignores): there the central differences' rounding noise, about
1e-16 |L| / h = 1e-11 |L|, is all there is.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import attnlib
from attnlib.backward import attention_backward, multi_head_attention_backward, softmax_backward

TOL = 1e-6


def numerical_gradient(f, x: np.ndarray, h: float = 1e-5) -> np.ndarray:
    """Central differences of the scalar ``f()`` with respect to every entry of ``x`` (changed in place)."""
    grad = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        kept = x[i]
        x[i] = kept + h
        up = f()
        x[i] = kept - h
        down = f()
        x[i] = kept
        grad[i] = (up - down) / (2 * h)
    return grad


def relative_error(got: np.ndarray, expected: np.ndarray, loss: float = 1.0) -> float:
    """``|got - expected| / max(|got|, |expected|, 1e-3 max(1, |loss|))``: see the module's docstring."""
    assert got.shape == expected.shape, (got.shape, expected.shape)
    scale = max(np.linalg.norm(got), np.linalg.norm(expected), 1e-3 * max(1.0, abs(loss)))
    return float(np.linalg.norm(got - expected) / scale)


# ---------------------------------------------------------------- softmax_backward

@given(shape=st.lists(st.integers(1, 4), min_size=1, max_size=3), seed=st.integers(0, 2**32 - 1), data=st.data())
def test_softmax_backward_matches_central_differences(shape, seed, data):
    rng = np.random.default_rng(seed)
    axis = data.draw(st.integers(-len(shape), len(shape) - 1), label="axis")
    scores = rng.normal(size=shape)
    masked = rng.random(shape) < 0.3  # these scores are -inf: weight 0, and gradient 0
    d_weights = rng.normal(size=shape)

    def loss():
        return np.sum(attnlib.softmax(np.where(masked, -np.inf, scores), axis=axis) * d_weights)

    weights = attnlib.softmax(np.where(masked, -np.inf, scores), axis=axis)
    got = softmax_backward(weights, d_weights, axis=axis)
    expected = numerical_gradient(loss, scores)
    assert not np.isnan(got).any()
    assert np.all(got[masked] == 0.0)
    assert relative_error(got, expected) < TOL


def test_softmax_backward_fully_masked_row_gets_zero_gradient():
    weights = attnlib.softmax(np.array([[1.0, 2.0, 0.5], [-np.inf, -np.inf, -np.inf]]))
    d_scores = softmax_backward(weights, np.array([[1.0, -2.0, 3.0], [4.0, 5.0, 6.0]]))
    assert np.array_equal(d_scores[1], np.zeros(3))
    assert np.all(d_scores[0] != 0.0)


def test_softmax_backward_rows_sum_to_zero():
    """Adding the same number to every score changes nothing, so each row of dS sums to 0."""
    rng = np.random.default_rng(0)
    weights = attnlib.softmax(rng.normal(size=(4, 6)))
    d_scores = softmax_backward(weights, rng.normal(size=(4, 6)))
    np.testing.assert_allclose(d_scores.sum(axis=-1), 0.0, atol=1e-15)


def test_softmax_backward_keeps_float32():
    rng = np.random.default_rng(0)
    weights = attnlib.softmax(rng.normal(size=(3, 5)).astype(np.float32))
    d_weights = rng.normal(size=(3, 5)).astype(np.float32)
    got = softmax_backward(weights, d_weights)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, softmax_backward(weights.astype(float), d_weights.astype(float)), atol=1e-6)


# ---------------------------------------------------------------- attention_backward

def _broadcastable(draw, batch: tuple[int, ...]) -> tuple[int, ...]:
    """A shape that broadcasts to ``batch``: some leading dimensions dropped, some set to 1."""
    kept = batch[draw(st.integers(0, len(batch))):]
    return tuple(n if draw(st.booleans()) else 1 for n in kept)


@st.composite
def attention_cases(draw):
    batch = tuple(draw(st.lists(st.integers(1, 3), max_size=2)))
    n_q, n_k, d_k, d_v = (draw(st.integers(1, 4)) for _ in range(4))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    Q = rng.normal(size=(*_broadcastable(draw, batch), n_q, d_k))
    K = rng.normal(size=(*_broadcastable(draw, batch), n_k, d_k))
    V = rng.normal(size=(*_broadcastable(draw, batch), n_k, d_v))
    if draw(st.booleans()):  # no batch axes, or one per batch axis of the scores (length 1 or theirs)
        scores_batch = np.broadcast_shapes(Q.shape[:-2], K.shape[:-2], V.shape[:-2])
        mask_batch = tuple(n if draw(st.booleans()) else 1 for n in scores_batch) if draw(st.booleans()) else ()
        mask = rng.random((*mask_batch, n_q, n_k)) < draw(st.sampled_from([0.5, 0.8]))
        if draw(st.booleans()):
            mask[..., 0, :] = False  # query 0 may attend to no key
    else:
        mask = None
    scale = draw(st.sampled_from([None, 0.3, 1.7]))
    return Q, K, V, mask, scale


def _attention_gradcheck(Q, K, V, mask, scale):
    output, _ = attnlib.scaled_dot_product_attention(Q, K, V, mask, scale=scale)
    d_output = np.random.default_rng(1).normal(size=output.shape)
    dQ, dK, dV = attention_backward(Q, K, V, d_output, mask, scale=scale)

    def loss():
        return np.sum(attnlib.scaled_dot_product_attention(Q, K, V, mask, scale=scale)[0] * d_output)

    for name, x, got in (("Q", Q, dQ), ("K", K, dK), ("V", V, dV)):
        assert got.shape == x.shape, name
        assert not np.isnan(got).any(), name
        error = relative_error(got, numerical_gradient(loss, x), loss())
        assert error < TOL, f"d{name}: relative error {error:.2e}"
    return dQ, dK, dV


@given(case=attention_cases())
def test_attention_backward_matches_central_differences(case):
    _attention_gradcheck(*case)


def test_attention_backward_shared_keys_and_broadcast_mask():
    """K and V shared by a batch of 3, a padding mask (3, 1, n_k) broadcast over the queries."""
    rng = np.random.default_rng(2)
    Q, K, V = rng.normal(size=(3, 4, 5)), rng.normal(size=(6, 5)), rng.normal(size=(6, 2))
    mask = attnlib.padding_mask([6, 3, 1], 6)  # (3, 1, 6)
    dQ, dK, dV = _attention_gradcheck(Q, K, V, mask, None)
    assert dK.shape == (6, 5) and dV.shape == (6, 2)
    # the sum over the batch: the same as adding each entry's gradient of unshared copies
    per_entry = [attention_backward(Q[b], K, V, np.ones((4, 2)), mask[b]) for b in range(3)]
    dK_ones = attention_backward(Q, K, V, np.ones((3, 4, 2)), mask)[1]
    np.testing.assert_allclose(dK_ones, sum(g[1] for g in per_entry), atol=1e-14)


@pytest.mark.parametrize("mask_shape", [(3, 5), (5,), (2, 3, 5), (2, 1, 5), (1, 3, 5), (4, 2, 3, 5), (3, 3, 5)])
def test_attention_backward_takes_the_masks_the_forward_takes(mask_shape):
    """A mask the forward call accepts gets checked gradients; one it refuses gets the same error."""
    rng = np.random.default_rng(3)
    Q, K, V = rng.normal(size=(2, 3, 4)), rng.normal(size=(2, 5, 4)), rng.normal(size=(2, 5, 2))
    mask = rng.random(mask_shape) < 0.7
    try:
        output, _ = attnlib.scaled_dot_product_attention(Q, K, V, mask)
    except ValueError as err:
        with pytest.raises(ValueError, match=re.escape(str(err))):
            attention_backward(Q, K, V, np.ones((2, 3, 2)), mask)
        return
    _attention_gradcheck(Q, K, V, mask, 0.5)


def test_attention_backward_masked_pairs_and_rows_contribute_nothing():
    rng = np.random.default_rng(4)
    Q, K, V = rng.normal(size=(3, 4)), rng.normal(size=(4, 4)), rng.normal(size=(4, 2))
    mask = np.array([[True, True, False, False],
                     [False, False, False, False],  # query 1: no allowed key
                     [True, False, True, False]])  # key 3: hidden from every query
    dQ, dK, dV = attention_backward(Q, K, V, rng.normal(size=(3, 2)), mask)
    assert np.array_equal(dQ[1], np.zeros(4))
    assert np.array_equal(dK[3], np.zeros(4)) and np.array_equal(dV[3], np.zeros(2))
    everything_masked = attention_backward(Q, K, V, np.ones((3, 2)), np.zeros((3, 4), bool))
    for grad in everything_masked:
        assert np.array_equal(grad, np.zeros_like(grad))


def test_attention_backward_default_scale_is_one_over_sqrt_dk():
    rng = np.random.default_rng(5)
    Q, K, V = rng.normal(size=(2, 9)), rng.normal(size=(3, 9)), rng.normal(size=(3, 2))
    d_output = rng.normal(size=(2, 2))
    for got, expected in zip(attention_backward(Q, K, V, d_output),
                             attention_backward(Q, K, V, d_output, scale=1 / 3), strict=True):
        np.testing.assert_array_equal(got, expected)


def test_attention_backward_float32():
    rng = np.random.default_rng(6)
    Q, K, V = (rng.normal(size=(2, 3, 4)).astype(np.float32) for _ in range(3))
    d_output = rng.normal(size=(2, 3, 4)).astype(np.float32)
    mask = attnlib.causal_mask(3)
    grads32 = attention_backward(Q, K, V, d_output, mask)
    grads64 = attention_backward(*(x.astype(float) for x in (Q, K, V, d_output)), mask)
    for g32, g64 in zip(grads32, grads64, strict=True):
        assert g32.dtype == np.float32
        np.testing.assert_allclose(g32, g64, atol=1e-5)


# ---------------------------------------------------------------- multi_head_attention_backward

@st.composite
def multi_head_cases(draw):
    n_heads = draw(st.integers(1, 3))
    d_model = n_heads * draw(st.integers(1, 2))
    n_q, n_k = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    batch = tuple(draw(st.lists(st.integers(1, 2), max_size=1)))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    X_q = rng.normal(size=(*batch, n_q, d_model))
    X_kv = rng.normal(size=(*_broadcastable(draw, batch), n_k, d_model))
    params = attnlib.init_multi_head(d_model, n_heads, rng, bias=draw(st.booleans()))
    params = {name: rng.normal(size=w.shape) for name, w in params.items()}  # nonzero biases too
    mask = None
    if draw(st.booleans()):
        mask = rng.random((n_q, n_k)) < 0.6
        mask[0] = draw(st.booleans())  # sometimes a fully masked row
    return X_q, X_kv, params, n_heads, mask


def _multi_head_gradcheck(X_q, X_kv, params, n_heads, mask):
    output, _ = attnlib.multi_head_attention(X_q, X_kv, params, n_heads, mask)
    d_output = np.random.default_rng(1).normal(size=output.shape)
    dX_q, dX_kv, d_params = multi_head_attention_backward(X_q, X_kv, params, n_heads, d_output, mask)
    assert sorted(d_params) == sorted(params)

    def loss():
        return np.sum(attnlib.multi_head_attention(X_q, X_kv, params, n_heads, mask)[0] * d_output)

    checks = [("X_q", X_q, dX_q), ("X_kv", X_kv, dX_kv)] + [(n, params[n], d_params[n]) for n in params]
    for name, x, got in checks:
        assert got.shape == x.shape, name
        error = relative_error(got, numerical_gradient(loss, x), loss())
        assert error < TOL, f"d{name}: relative error {error:.2e}"


@given(case=multi_head_cases())
@settings(max_examples=25)
def test_multi_head_attention_backward_matches_central_differences(case):
    _multi_head_gradcheck(*case)


@pytest.mark.parametrize("bias", [False, True])
def test_multi_head_self_attention_causal(bias):
    """Self-attention: the gradient for X is dX_q + dX_kv."""
    rng = np.random.default_rng(7)
    X = rng.normal(size=(2, 5, 6))
    params = attnlib.init_multi_head(6, 3, rng, bias=bias)
    params = {name: rng.normal(size=w.shape) for name, w in params.items()}
    mask = attnlib.causal_mask(5)
    _multi_head_gradcheck(X, X.copy(), params, 3, mask)
    d_output = rng.normal(size=(2, 5, 6))
    dX_q, dX_kv, _ = multi_head_attention_backward(X, X, params, 3, d_output, mask)

    def loss():
        return np.sum(attnlib.multi_head_attention(X, X, params, 3, mask)[0] * d_output)

    assert relative_error(dX_q + dX_kv, numerical_gradient(loss, X), loss()) < TOL


def test_multi_head_backward_bias_given_as_none():
    rng = np.random.default_rng(8)
    X = rng.normal(size=(3, 4))
    params = {**attnlib.init_multi_head(4, 2, rng), "b_q": None}
    _, _, d_params = multi_head_attention_backward(X, X, params, 2, np.ones((3, 4)))
    assert d_params["b_q"] is None and d_params["W_q"].shape == (4, 4)


# ---------------------------------------------------------------- errors, as in the forward calls

def test_softmax_backward_errors():
    with pytest.raises(ValueError, match=r"d_weights must have the shape of the weights, \(2, 3\), but has "
                                         r"shape \(3, 2\)"):
        softmax_backward(np.full((2, 3), 1 / 3), np.ones((3, 2)))
    with pytest.raises(ValueError, match="axis 2 is out of range"):
        softmax_backward(np.full((2, 3), 1 / 3), np.ones((2, 3)), axis=2)
    with pytest.raises(ValueError, match="weights must be finite"):
        softmax_backward([np.nan, 1.0], [1.0, 1.0])
    with pytest.raises(TypeError, match="d_weights must be an array of numbers"):
        softmax_backward([0.5, 0.5], "ab")


def test_attention_backward_errors():
    rng = np.random.default_rng(0)
    Q, K, V = rng.normal(size=(2, 3, 4)), rng.normal(size=(5, 4)), rng.normal(size=(5, 2))
    with pytest.raises(ValueError, match=r"d_output must have the shape of the attention output .*\(2, 3, 2\), "
                                         r"but has shape \(3, 2\)"):
        attention_backward(Q, K, V, np.ones((3, 2)))
    with pytest.raises(ValueError, match="Q has d_k=4 but K has d_k=6"):
        attention_backward(Q, rng.normal(size=(5, 6)), V, np.ones((2, 3, 2)))
    with pytest.raises(ValueError, match="K has n_k=5 keys but V has 4 values"):
        attention_backward(Q, K, V[:4], np.ones((2, 3, 2)))
    with pytest.raises(TypeError, match="mask must be boolean"):
        attention_backward(Q, K, V, np.ones((2, 3, 2)), np.ones((3, 5)))
    with pytest.raises(ValueError, match="does not broadcast to the scores' shape"):
        attention_backward(Q, K, V, np.ones((2, 3, 2)), np.ones((3, 4), bool))
    with pytest.raises(ValueError, match="scale must be a positive finite number"):
        attention_backward(Q, K, V, np.ones((2, 3, 2)), scale=-1.0)
    with pytest.raises(ValueError, match="d_output must be finite"):
        attention_backward(Q, K, V, np.full((2, 3, 2), np.inf))


def test_multi_head_attention_backward_errors():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(3, 4))
    params = attnlib.init_multi_head(4, 2, rng)
    with pytest.raises(ValueError, match=r"d_output must have the shape of the output .*\(3, 4\), but has "
                                         r"shape \(4, 3\)"):
        multi_head_attention_backward(X, X, params, 2, np.ones((4, 3)))
    with pytest.raises(ValueError, match="d_model=4 is not divisible by n_heads=3"):
        multi_head_attention_backward(X, X, params, 3, np.ones((3, 4)))
    with pytest.raises(ValueError, match="X_q has d_model=4 but X_kv has d_model=5"):
        multi_head_attention_backward(X, rng.normal(size=(3, 5)), params, 2, np.ones((3, 4)))
    with pytest.raises(ValueError, match=r"params is missing \['W_o'\]"):
        multi_head_attention_backward(X, X, {k: v for k, v in params.items() if k != "W_o"}, 2, np.ones((3, 4)))
    with pytest.raises(ValueError, match=r"params has unknown keys \['W_Q'\]; did you mean \['W_q'\]"):
        multi_head_attention_backward(X, X, {**params, "W_Q": np.eye(4)}, 2, np.ones((3, 4)))
    with pytest.raises(ValueError, match="does not broadcast to the scores' shape"):
        multi_head_attention_backward(X, X, params, 2, np.ones((3, 4)), np.ones((3, 2), bool))
