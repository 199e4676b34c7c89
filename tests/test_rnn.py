"""attnlib.rnn against plain-loop references, and its error messages."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from attnlib.rnn import init_rnn, rnn_encode, rnn_step, trace_shrink


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


def test_linear_activation_leaves_out_the_squash(rng):
    p = init_rnn(3, 4, rng, spectral_radius=0.9)
    X = rng.normal(size=(6, 3))
    h, expected = np.zeros(4), []
    for x in X:
        h = x @ p["W_xh"] + h @ p["W_hh"] + p["b_h"]
        expected.append(h)
    np.testing.assert_allclose(rnn_encode(X, p, activation="linear"), np.array(expected), atol=1e-12)
    with pytest.raises(ValueError, match="activation must be 'tanh' or 'linear'"):
        rnn_encode(X, p, activation="relu")


@pytest.mark.parametrize("radius", [0.5, 0.9, 1.0])
def test_trace_shrink_is_the_radius_where_tanh_is_linear_and_less_where_it_bends(rng, radius):
    p = init_rnn(4, 16, rng, spectral_radius=radius)
    tiny = 1e-6 * rng.normal(size=(5, 30, 4))  # tanh(z) = z to 1e-12 here
    assert trace_shrink(tiny, p, rng) == pytest.approx(radius, rel=1e-6)
    big = 3.0 * rng.normal(size=(5, 30, 4))  # large inputs: tanh's slope 1 - h^2 well below 1
    assert trace_shrink(big, p, rng) < 0.8 * radius


def test_trace_shrink_bad_input(rng):
    p = init_rnn(4, 8, rng)
    with pytest.raises(ValueError, match="start must be an integer step"):
        trace_shrink(rng.normal(size=(2, 5, 4)), p, rng, start=4)
    with pytest.raises(ValueError, match=r"X must have shape \(n_sequences, n, d_in\)"):
        trace_shrink(rng.normal(size=(5, 4)), p, rng)
    with pytest.raises(TypeError):
        trace_shrink(rng.normal(size=(2, 5, 4)), p, "seed")
