"""attnlib.rnn and attnlib.memory against plain-loop references, and their error messages."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import attnlib
from attnlib.memory import (
    _accuracy_by_distance,
    attend_to_positions,
    attention_recall,
    encode_tokens,
    final_state_recall,
    one_hot,
    random_tokens,
    ridge_fit,
    time_recurrence_and_attention,
    with_bias,
)
from attnlib.rnn import init_rnn, rnn_encode, rnn_step


def loop_rnn(X, W_xh, W_hh, b_h):
    """The recurrence written with scalar loops only."""
    n, d_in = X.shape
    d_hidden = W_hh.shape[0]
    h = [0.0] * d_hidden
    states = []
    for t in range(n):
        new = []
        for j in range(d_hidden):
            z = b_h[j]
            z += sum(X[t, i] * W_xh[i, j] for i in range(d_in))
            z += sum(h[k] * W_hh[k, j] for k in range(d_hidden))
            new.append(np.tanh(z))
        h = new
        states.append(h)
    return np.array(states)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


# --- the recurrence ------------------------------------------------------------------------------------


def test_rnn_encode_matches_scalar_loop(rng):
    params = init_rnn(3, 5, rng)
    params["b_h"] = rng.normal(size=5)
    X = rng.normal(size=(7, 3))
    expected = loop_rnn(X, params["W_xh"], params["W_hh"], params["b_h"])
    np.testing.assert_allclose(rnn_encode(X, params), expected, atol=1e-12)


def test_rnn_encode_is_repeated_rnn_step(rng):
    params = init_rnn(4, 6, rng)
    X = rng.normal(size=(2, 5, 4))
    h = np.zeros((2, 6))
    states = []
    for t in range(5):
        h = rnn_step(X[:, t], h, params)
        states.append(h)
    np.testing.assert_allclose(rnn_encode(X, params), np.stack(states, axis=1), atol=1e-12)


def test_rnn_encode_batch_equals_one_by_one(rng):
    params = init_rnn(3, 4, rng)
    X = rng.normal(size=(2, 3, 6, 3))
    H = rnn_encode(X, params)
    assert H.shape == (2, 3, 6, 4)
    for a in range(2):
        for b in range(3):
            np.testing.assert_allclose(H[a, b], rnn_encode(X[a, b], params), atol=1e-12)


def test_rnn_encode_initial_state(rng):
    params = init_rnn(2, 3, rng)
    X = rng.normal(size=(4, 2))
    h0 = rng.normal(size=3)
    H = rnn_encode(X, params, h0=h0)
    np.testing.assert_allclose(H[0], rnn_step(X[0], h0, params), atol=1e-12)
    assert not np.allclose(H, rnn_encode(X, params))


def test_state_depends_only_on_the_past(rng):
    params = init_rnn(3, 4, rng)
    X = rng.normal(size=(8, 3))
    Y = X.copy()
    Y[5:] = rng.normal(size=(3, 3))  # change the future
    np.testing.assert_array_equal(rnn_encode(X, params)[:5], rnn_encode(Y, params)[:5])


def test_init_rnn_spectral_radius_and_seed():
    p = init_rnn(5, 8, np.random.default_rng(0), spectral_radius=0.7)
    np.testing.assert_allclose(np.abs(np.linalg.eigvals(p["W_hh"])), 0.7, atol=1e-9)
    q = init_rnn(5, 8, np.random.default_rng(0), spectral_radius=0.7)
    for name in p:
        np.testing.assert_array_equal(p[name], q[name])
    assert p["W_xh"].shape == (5, 8) and p["b_h"].shape == (8,)


@pytest.mark.parametrize(
    "kwargs, error, text",
    [
        (dict(d_in=0, d_hidden=3), ValueError, "d_in must be an integer >= 1, got 0"),
        (dict(d_in=2, d_hidden=2.5), TypeError, "d_hidden must be an integer, got 2.5"),
        (dict(d_in=2, d_hidden=3, spectral_radius=-1.0), ValueError, "spectral_radius"),
        (dict(d_in=2, d_hidden=3, input_scale=np.nan), ValueError, "input_scale"),
    ],
)
def test_init_rnn_bad_input(kwargs, error, text):
    with pytest.raises(error, match=text):
        init_rnn(rng=np.random.default_rng(0), **kwargs)


def test_init_rnn_needs_a_generator():
    with pytest.raises(TypeError, match="numpy.random.Generator"):
        init_rnn(2, 3, 0)


def test_rnn_bad_shapes_say_expected_and_received(rng):
    params = init_rnn(3, 4, rng)
    with pytest.raises(ValueError, match="X has d_in=2 but W_xh expects d_in=3"):
        rnn_encode(np.zeros((5, 2)), params)
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        rnn_encode(np.zeros(3), params)
    with pytest.raises(ValueError, match="n=0"):
        rnn_encode(np.zeros((0, 3)), params)
    with pytest.raises(ValueError, match="h0 has d_hidden=5"):
        rnn_encode(np.zeros((2, 3)), params, h0=np.zeros(5))
    with pytest.raises(ValueError, match="does not broadcast"):
        rnn_encode(np.zeros((2, 4, 3)), params, h0=np.zeros((3, 4)))
    with pytest.raises(ValueError, match="finite"):
        rnn_encode(np.full((2, 3), np.nan), params)
    with pytest.raises(ValueError, match="h has d_hidden=3 but W_hh expects d_hidden=4"):
        rnn_step(np.zeros(3), np.zeros(3), params)
    with pytest.raises(ValueError, match="missing"):
        rnn_encode(np.zeros((2, 3)), {"W_xh": params["W_xh"]})
    with pytest.raises(ValueError, match="W_hh should have shape"):
        rnn_encode(np.zeros((2, 3)), {**params, "W_hh": np.eye(3)})
    with pytest.raises(TypeError, match="dict"):
        rnn_encode(np.zeros((2, 3)), [1, 2, 3])


# --- the memory experiment -----------------------------------------------------------------------------


def test_one_hot_and_tokens(rng):
    tokens = random_tokens(4, 6, 5, rng)
    assert tokens.shape == (4, 6) and tokens.min() >= 0 and tokens.max() < 5
    X = one_hot(tokens, 5)
    assert X.shape == (4, 6, 5)
    for s in range(4):
        for t in range(6):
            assert X[s, t].sum() == 1 and X[s, t, tokens[s, t]] == 1
    with pytest.raises(ValueError, match=r"ids in 0..4"):
        one_hot([0, 5], 5)
    with pytest.raises(TypeError, match="integer token ids"):
        one_hot([0.5, 1.0], 5)


def test_ridge_fit_matches_normal_equations_by_loops(rng):
    F = rng.normal(size=(20, 3))
    Y = rng.normal(size=(20, 2))
    alpha = 0.3
    # normal equations written out entry by entry
    G = [[sum(F[s, i] * F[s, j] for s in range(20)) + (alpha if i == j else 0.0) for j in range(3)]
         for i in range(3)]
    B = [[sum(F[s, i] * Y[s, k] for s in range(20)) for k in range(2)] for i in range(3)]
    expected = np.linalg.inv(np.array(G)) @ np.array(B)
    np.testing.assert_allclose(ridge_fit(F, Y, alpha), expected, atol=1e-10)


def test_ridge_fit_minimises_the_penalised_loss(rng):
    F = rng.normal(size=(30, 4))
    Y = rng.normal(size=30)
    W = ridge_fit(F, Y, 0.5)

    def loss(w):
        return np.sum((F @ w - Y) ** 2) + 0.5 * np.sum(w**2)

    for _ in range(20):
        assert loss(W) <= loss(W + 1e-3 * rng.normal(size=4))


def test_ridge_fit_bad_input(rng):
    with pytest.raises(ValueError, match="n_samples=3"):
        ridge_fit(np.zeros((3, 2)), np.zeros((4, 1)))
    with pytest.raises(ValueError, match="alpha must be a non-negative"):
        ridge_fit(np.zeros((3, 2)), np.zeros(3), alpha=-1.0)
    with pytest.raises(ValueError, match="F must be 2-D"):
        ridge_fit(np.zeros((3, 2, 1)), np.zeros(3))


def test_with_bias():
    np.testing.assert_array_equal(with_bias(np.array([[2.0], [3.0]])), [[2.0, 1.0], [3.0, 1.0]])


def test_accuracy_by_distance_orders_from_the_end():
    tokens = np.array([[1, 2, 3], [1, 2, 3]])
    pred = np.array([[0, 2, 3], [1, 2, 0]])
    # distance 1 = last position (right in 1 of 2), distance 3 = first position (right in 1 of 2)
    np.testing.assert_allclose(_accuracy_by_distance(pred, tokens), [0.5, 1.0, 0.5])


def test_final_state_recall_matches_per_position_loop(rng):
    V, n, d = 4, 5, 12
    params = init_rnn(V, d, rng)
    train, test = random_tokens(200, n, V, rng), random_tokens(50, n, V, rng)
    got = final_state_recall(train, test, params, alpha=0.1)
    h_train = encode_tokens(train, params)[:, -1]
    h_test = encode_tokens(test, params)[:, -1]
    expected = []
    for p in range(n):  # one readout per position, fitted separately
        W = ridge_fit(with_bias(h_train), one_hot(train[:, p], V), 0.1)
        expected.append(np.mean((with_bias(h_test) @ W).argmax(axis=1) == test[:, p]))
    np.testing.assert_allclose(got, expected[::-1])


def test_final_state_forgets_and_attention_does_not(rng):
    V, n = 8, 30
    params = init_rnn(V, 32, rng)
    train, test = random_tokens(600, n, V, rng), random_tokens(200, n, V, rng)
    final = final_state_recall(train, test, params)
    att = attention_recall(train, test, params, d_pe=64, scale=4.0)
    assert final[0] > 0.95  # the last token is remembered
    assert final[-5:].mean() < 0.3  # the first ones are not (chance is 1/8)
    assert att.min() > 0.9  # attention recalls every position


def test_attend_to_positions_matches_loop(rng):
    H = rng.normal(size=(3, 6, 2))
    positions = np.array([0, 4])
    out, w = attend_to_positions(H, positions, d_pe=8, scale=2.0)
    PE = attnlib.sinusoidal_positional_encoding(6, 8)
    for i, p in enumerate(positions):
        s = np.array([2.0 * PE[p] @ PE[j] for j in range(6)])
        expected_w = np.exp(s - s.max()) / np.exp(s - s.max()).sum()
        np.testing.assert_allclose(w[i], expected_w, atol=1e-12)
        for b in range(3):
            np.testing.assert_allclose(out[b, i], sum(expected_w[j] * H[b, j] for j in range(6)), atol=1e-12)
    assert (w.argmax(axis=1) == positions).all()


def test_attend_to_positions_bad_input(rng):
    H = rng.normal(size=(5, 2))
    with pytest.raises(ValueError, match=r"positions must lie in 0..4"):
        attend_to_positions(H, [5])
    with pytest.raises(TypeError, match="1-D array of integers"):
        attend_to_positions(H, [0.5])
    with pytest.raises(ValueError, match="scale must be a positive"):
        attend_to_positions(H, [0], scale=0.0)


def test_recall_bad_input(rng):
    params = init_rnn(4, 8, rng)
    with pytest.raises(ValueError, match="same length"):
        final_state_recall(random_tokens(10, 5, 4, rng), random_tokens(10, 6, 4, rng), params)
    with pytest.raises(ValueError, match=r"ids in 0..3"):
        attention_recall(random_tokens(10, 5, 9, rng), random_tokens(10, 5, 4, rng), params)


def test_timing_returns_positive_seconds(rng):
    t_rnn, t_att = time_recurrence_and_attention([2, 4], 4, rng, repeats=1)
    assert t_rnn.shape == t_att.shape == (2,)
    assert (t_rnn > 0).all() and (t_att > 0).all()
    with pytest.raises(ValueError, match="each length"):
        time_recurrence_and_attention([0], 4, rng)


def test_public_names_are_reexported():
    for name in ("init_rnn", "rnn_step", "rnn_encode", "ridge_fit", "final_state_recall", "attention_recall"):
        assert name in attnlib.__all__ and hasattr(attnlib, name)


# --- properties ----------------------------------------------------------------------------------------

@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 12), d_in=st.integers(1, 5), d_hidden=st.integers(1, 6), seed=st.integers(0, 2**16),
       scale=st.floats(0.01, 100.0))
def test_states_stay_inside_the_tanh_range(n, d_in, d_hidden, seed, scale):
    rng = np.random.default_rng(seed)
    params = init_rnn(d_in, d_hidden, rng)
    H = rnn_encode(scale * rng.normal(size=(n, d_in)), params)
    assert H.shape == (n, d_hidden)
    assert np.all(np.abs(H) <= 1.0)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(2, 30), d=st.integers(1, 6), d_out=st.integers(1, 3), seed=st.integers(0, 2**16),
       alpha=st.floats(1e-3, 10.0))
def test_ridge_gradient_vanishes(n, d, d_out, seed, alpha):
    rng = np.random.default_rng(seed)
    F = rng.normal(size=(n, d))
    Y = rng.normal(size=(n, d_out))
    W = ridge_fit(F, Y, alpha)
    gradient = F.T @ (F @ W - Y) + alpha * W  # half the gradient of |FW - Y|^2 + alpha |W|^2
    np.testing.assert_allclose(gradient, 0.0, atol=1e-8 * (1 + np.abs(F).max() ** 2 * n))


@settings(max_examples=25, deadline=None)
@given(n=st.integers(2, 40), p=st.integers(0, 39))
def test_positional_query_peaks_at_its_position(n, p):
    p = p % n
    _, w = attend_to_positions(np.zeros((n, 1)), [p])
    assert int(w[0].argmax()) == p
    np.testing.assert_allclose(w.sum(), 1.0)
