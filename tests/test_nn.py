"""The training parts of attnlib.nn: backward passes against central differences, Adam against its formula."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_backward import TOL, numerical_gradient, relative_error

import attnlib
from attnlib import nn
from attnlib.backward import attention_backward


@given(seed=st.integers(0, 2**32 - 1), batch=st.lists(st.integers(1, 3), max_size=2),
       n_vocab=st.integers(1, 5), d_model=st.integers(1, 3))
def test_embed_backward_matches_central_differences(seed, batch, n_vocab, d_model):
    rng = np.random.default_rng(seed)
    E = rng.normal(size=(n_vocab, d_model))
    tokens = rng.integers(0, n_vocab, size=(*batch, 4))  # repeated tokens are likely
    d_X = rng.normal(size=(*batch, 4, d_model))
    got = nn.embed_backward(E, tokens, d_X)
    expected = numerical_gradient(lambda: np.sum(nn.embed(E, tokens) * d_X), E)
    assert relative_error(got, expected) < TOL


def test_embed_backward_repeated_tokens_add_up():
    """np.add.at, not dE[tokens] += d_X: a token used three times collects three gradients."""
    dE = nn.embed_backward(np.zeros((2, 1)), [1, 1, 1], np.array([[1.0], [2.0], [4.0]]))
    np.testing.assert_array_equal(dE, [[0.0], [7.0]])


def test_position_embeddings_sum_over_the_batch():
    rng = np.random.default_rng(0)
    P = rng.normal(size=(6, 3))  # room for 6 positions, 4 used
    positions = np.arange(4)
    d_X = rng.normal(size=(5, 4, 3))  # a batch of 5 sequences
    assert nn.embed(P, positions).shape == (4, 3)
    got = nn.embed_backward(P, positions, d_X)
    expected = numerical_gradient(lambda: np.sum(nn.embed(P, positions)[None] * d_X), P)
    assert relative_error(got, expected) < TOL
    np.testing.assert_array_equal(got[4:], 0.0)


@given(seed=st.integers(0, 2**32 - 1), batch=st.lists(st.integers(1, 3), max_size=2),
       n_vocab=st.integers(1, 5), d_model=st.integers(1, 4))
def test_unembed_backward_matches_central_differences(seed, batch, n_vocab, d_model):
    rng = np.random.default_rng(seed)
    X, U = rng.normal(size=(*batch, 3, d_model)), rng.normal(size=(d_model, n_vocab))
    d_logits = rng.normal(size=(*batch, 3, n_vocab))
    dX, dU = nn.unembed_backward(X, U, d_logits)

    def loss():
        return np.sum(nn.unembed(X, U) * d_logits)

    assert relative_error(dX, numerical_gradient(loss, X)) < TOL
    assert relative_error(dU, numerical_gradient(loss, U)) < TOL


@given(seed=st.integers(0, 2**32 - 1), batch=st.lists(st.integers(1, 3), min_size=1, max_size=2),
       n_vocab=st.integers(1, 6), weighted=st.sampled_from([None, "float", "bool"]))
def test_cross_entropy_gradient_matches_central_differences(seed, batch, n_vocab, weighted):
    rng = np.random.default_rng(seed)
    logits = 3 * rng.normal(size=(*batch, n_vocab))
    targets = rng.integers(0, n_vocab, size=batch)
    weights = None
    if weighted == "float":
        weights = rng.random(batch)
    elif weighted == "bool":
        weights = rng.random(batch) < 0.5
        weights.flat[0] = True
    loss, d_logits = nn.cross_entropy(logits, targets, weights)
    expected = numerical_gradient(lambda: nn.cross_entropy(logits, targets, weights)[0], logits)
    assert relative_error(d_logits, expected) < TOL


def test_cross_entropy_against_a_loop():
    rng = np.random.default_rng(1)
    logits, targets = rng.normal(size=(3, 4, 5)), rng.integers(0, 5, size=(3, 4))
    weights = rng.random((3, 4))
    nll = [-np.log(np.exp(logits[b, t, targets[b, t]]) / np.exp(logits[b, t]).sum())
           for b in range(3) for t in range(4)]
    expected = np.sum(np.array(nll) * weights.ravel()) / weights.sum()
    assert nn.cross_entropy(logits, targets, weights)[0] == pytest.approx(expected, rel=1e-12)
    assert nn.cross_entropy(logits, targets)[0] == pytest.approx(np.mean(nll), rel=1e-12)


def test_cross_entropy_zero_weight_positions_are_left_out():
    rng = np.random.default_rng(2)
    logits, targets = rng.normal(size=(4, 3)), np.array([0, 1, 2, 0])
    keep = np.array([True, False, True, False])
    loss, d_logits = nn.cross_entropy(logits, targets, keep)
    loss_kept, d_kept = nn.cross_entropy(logits[keep], targets[keep])
    assert loss == pytest.approx(loss_kept, rel=1e-14)
    np.testing.assert_array_equal(d_logits[~keep], 0.0)
    np.testing.assert_allclose(d_logits[keep], d_kept, rtol=1e-14)


def test_cross_entropy_is_stable_for_huge_logits():
    loss, d_logits = nn.cross_entropy(np.array([[1000.0, 0.0], [0.0, 1000.0]]), [0, 0])
    assert loss == pytest.approx(500.0)  # (0 + 1000) / 2
    assert np.isfinite(d_logits).all()
    np.testing.assert_allclose(d_logits, [[0.0, 0.0], [-0.5, 0.5]], atol=1e-12)


def test_float32_stays_float32():
    rng = np.random.default_rng(3)
    E = rng.normal(size=(5, 4)).astype(np.float32)
    U = rng.normal(size=(4, 5)).astype(np.float32)
    tokens = rng.integers(0, 5, size=(2, 3))
    X = nn.embed(E, tokens)
    logits = nn.unembed(X, U)
    loss, d_logits = nn.cross_entropy(logits, tokens)
    dX, dU = nn.unembed_backward(X, U, d_logits)
    dE = nn.embed_backward(E, tokens, dX)
    assert {a.dtype for a in (X, logits, d_logits, dX, dU, dE)} == {np.dtype(np.float32)}
    assert loss == pytest.approx(nn.cross_entropy(logits.astype(float), tokens)[0], rel=1e-5)
    params = nn.Adam({"E": E}, lr=0.01).step({"E": E}, {"E": dE})
    assert params["E"].dtype == np.float32


# --- Adam ----------------------------------------------------------------------------------------

def test_adam_follows_its_formula_for_three_steps():
    rng = np.random.default_rng(4)
    w0 = rng.normal(size=(2, 3))
    w0_before = w0.copy()
    grads = [rng.normal(size=(2, 3)) for _ in range(3)]
    adam = nn.Adam({"w": w0}, lr=0.01, betas=(0.8, 0.9), eps=1e-6)
    params = {"w": w0.copy()}
    m = v = np.zeros((2, 3))
    w = w0.copy()
    for t, g in enumerate(grads, start=1):
        params = adam.step(params, {"w": g})
        m, v = 0.8 * m + 0.2 * g, 0.9 * v + 0.1 * g * g
        w = w - 0.01 * (m / (1 - 0.8**t)) / (np.sqrt(v / (1 - 0.9**t)) + 1e-6)
        np.testing.assert_allclose(params["w"], w, rtol=1e-13)
    np.testing.assert_array_equal(w0, w0_before)  # step returns new arrays; the old ones are unchanged


def test_adam_minimises_a_quadratic():
    target = np.array([3.0, -2.0, 0.5])
    params = {"x": np.zeros(3)}
    adam = nn.Adam(params, lr=0.1)
    for _ in range(500):
        params = adam.step(params, {"x": 2 * (params["x"] - target)})  # gradient of |x - target|^2
    np.testing.assert_allclose(params["x"], target, atol=1e-3)


def test_a_one_layer_model_learns_with_these_parts():
    """End to end: embeddings, causal attention, residual, unembedding, cross-entropy, Adam.

    The task (predict the token before the current one) needs attention to the previous
    position; the loss must fall from log(n_vocab) to well below it.
    """
    rng = np.random.default_rng(5)
    n_vocab, d, T = 8, 16, 6
    params = {"E": rng.normal(0, 0.3, (n_vocab, d)), "P": rng.normal(0, 0.3, (T, d)),
              "W_q": rng.normal(0, d**-0.5, (d, d)), "W_k": rng.normal(0, d**-0.5, (d, d)),
              "W_v": rng.normal(0, d**-0.5, (d, d)), "U": rng.normal(0, d**-0.5, (d, n_vocab))}
    mask = attnlib.causal_mask(T)
    positions = np.arange(T)

    def loss_and_grads(params, tokens):
        x0 = nn.embed(params["E"], tokens) + nn.embed(params["P"], positions)  # (B, T, d)
        Q, K, V = (x0 @ params[w] for w in ("W_q", "W_k", "W_v"))  # (B, T, d)
        head, _ = attnlib.scaled_dot_product_attention(Q, K, V, mask)  # (B, T, d)
        x1 = x0 + head  # the residual stream
        logits = nn.unembed(x1, params["U"])  # (B, T, n_vocab)
        loss, d_logits = nn.cross_entropy(logits[:, 1:], tokens[:, :-1])  # predict the previous token
        d_all = np.zeros_like(logits)
        d_all[:, 1:] = d_logits
        dx1, dU = nn.unembed_backward(x1, params["U"], d_all)
        dQ, dK, dV = attention_backward(Q, K, V, dx1, mask)
        grads = {"U": dU}
        dx0 = dx1.copy()
        for w, dZ in (("W_q", dQ), ("W_k", dK), ("W_v", dV)):
            grads[w] = x0.reshape(-1, d).T @ dZ.reshape(-1, d)  # (d, B*T) @ (B*T, d)
            dx0 += dZ @ params[w].T
        grads["E"] = nn.embed_backward(params["E"], tokens, dx0)
        grads["P"] = nn.embed_backward(params["P"], positions, dx0)
        return loss, grads

    small = rng.integers(0, n_vocab, size=(2, T))
    _, grads = loss_and_grads(params, small)
    for name in params:  # the whole model's gradient, checked once
        expected = numerical_gradient(lambda: loss_and_grads(params, small)[0], params[name])
        assert relative_error(grads[name], expected) < TOL, name

    adam = nn.Adam(params, lr=0.02)
    losses = []
    for _ in range(300):
        loss, grads = loss_and_grads(params, rng.integers(0, n_vocab, size=(16, T)))
        params = adam.step(params, grads)
        losses.append(loss)
    assert losses[0] > 0.9 * np.log(n_vocab)
    assert np.mean(losses[-20:]) < 0.3 * np.log(n_vocab)


# --- errors ----------------------------------------------------------------------------------------

def test_errors_say_what_was_expected():
    E, U = np.zeros((4, 3)), np.zeros((3, 4))
    with pytest.raises(TypeError, match="tokens must be integers"):
        nn.embed(E, [0.5, 1.0])
    with pytest.raises(ValueError, match=r"tokens must lie in 0 \.\. 3 \(the vocabulary has 4 tokens\), got "
                                         r"values from 0 to 4"):
        nn.embed(E, [0, 4])
    with pytest.raises(ValueError, match=r"E must be a matrix \(2 dimensions\), got shape \(4,\)"):
        nn.embed(np.zeros(4), [0])
    with pytest.raises(ValueError, match="d_X has d_model=2 but E has d_model=3"):
        nn.embed_backward(E, [0, 1], np.zeros((2, 2)))
    with pytest.raises(ValueError, match=r"tokens of shape \(3,\) do not match d_X of shape \(2, 3\)"):
        nn.embed_backward(E, [0, 1, 2], np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"X has d_model=2 but U has 3 rows"):
        nn.unembed(np.zeros((5, 2)), U)
    with pytest.raises(ValueError, match=r"d_logits must have the shape of the logits .*\(5, 4\), but has "
                                         r"shape \(5, 3\)"):
        nn.unembed_backward(np.zeros((5, 3)), U, np.zeros((5, 3)))
    with pytest.raises(ValueError, match=r"targets must have shape \(2,\) \(one per row of logits \(2, 4\)\), "
                                         r"got \(3,\)"):
        nn.cross_entropy(np.zeros((2, 4)), [0, 1, 2])
    with pytest.raises(ValueError, match="targets must lie in 0 .. 3"):
        nn.cross_entropy(np.zeros((2, 4)), [0, 7])
    with pytest.raises(ValueError, match="at least one positive weight"):
        nn.cross_entropy(np.zeros((2, 4)), [0, 1], [False, False])
    with pytest.raises(ValueError, match=r"weights must have the targets' shape \(2,\), got \(3,\)"):
        nn.cross_entropy(np.zeros((2, 4)), [0, 1], [1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="logits must be finite"):
        nn.cross_entropy(np.array([[0.0, np.nan]]), [0])


def test_adam_errors():
    with pytest.raises(ValueError, match="lr must be a positive finite number"):
        nn.Adam({"w": np.zeros(2)}, lr=-1)
    with pytest.raises(ValueError, match=r"betas must be two numbers in \[0, 1\)"):
        nn.Adam({"w": np.zeros(2)}, betas=(0.9, 1.0))
    adam = nn.Adam({"w": np.zeros(2)})
    with pytest.raises(ValueError, match=r"grads must have the keys \['w'\], got \['v'\]"):
        adam.step({"w": np.zeros(2)}, {"v": np.zeros(2)})
    with pytest.raises(ValueError, match=r"w should have shape \(2,\), got parameter \(2,\) and gradient \(3,\)"):
        adam.step({"w": np.zeros(2)}, {"w": np.zeros(3)})
    with pytest.raises(ValueError, match="the gradient of w must be finite"):
        adam.step({"w": np.zeros(2)}, {"w": np.array([np.nan, 0.0])})
