"""attnlib.recall: the recall experiment's pieces against plain loops, its claims, and its error messages."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import attnlib
from attnlib import sinusoidal_positional_encoding, softmax
from attnlib.backward import attention_backward
from attnlib.recall import (
    _accuracy_by_distance,
    encode_tokens,
    final_state_recall,
    init_query,
    one_hot,
    oracle_query,
    oracle_weights,
    position_recall,
    query_attention,
    random_tokens,
    ridge_fit,
    trace_size,
    train_query,
    weight_on_target,
    with_bias,
)
from attnlib.rnn import init_rnn, rnn_encode


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


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
    with pytest.raises(TypeError, match="Generator"):
        random_tokens(2, 3, 4, 0)


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


def test_ridge_fit_bad_input():
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


def test_position_recall_matches_one_ridge_fit_per_position(rng):
    V, n, d = 4, 5, 6
    train, test = random_tokens(80, n, V, rng), random_tokens(30, n, V, rng)
    F_train, F_test = rng.normal(size=(80, n, d)), rng.normal(size=(30, n, d))
    F_train[..., 0] += train  # make the features informative, so the test is not about ties
    F_test[..., 0] += test
    got = position_recall(F_train, F_test, train, test, alpha=0.1)
    expected = []
    for p in range(n):  # one readout per position, fitted separately on one example per sequence
        W = ridge_fit(with_bias(F_train[:, p]), one_hot(train[:, p], V), 0.1)
        expected.append(np.mean((with_bias(F_test[:, p]) @ W).argmax(axis=1) == test[:, p]))
    np.testing.assert_allclose(got, expected[::-1])


def test_final_state_recall_is_position_recall_on_the_last_state(rng):
    V, n, d = 4, 5, 12
    params = init_rnn(V, d, rng)
    train, test = random_tokens(200, n, V, rng), random_tokens(50, n, V, rng)
    got = final_state_recall(train, test, params, alpha=0.1)
    h_train = encode_tokens(train, params)[:, -1]
    h_test = encode_tokens(test, params)[:, -1]
    expected = []
    for p in range(n):
        W = ridge_fit(with_bias(h_train), one_hot(train[:, p], V), 0.1)
        expected.append(np.mean((with_bias(h_test) @ W).argmax(axis=1) == test[:, p]))
    np.testing.assert_allclose(got, expected[::-1])


def test_trace_size_matches_a_loop_over_sequences(rng):
    V, n, d = 5, 6, 10
    params = init_rnn(V, d, rng)
    tokens = random_tokens(40, n, V, rng)
    for k, fixed in ((1, 0), (4, 2), (n, 4)):
        sizes = []
        for seq in tokens:  # one sequence at a time, from the recurrence itself
            if seq[n - k] == fixed:
                continue
            other = seq.copy()
            other[n - k] = fixed
            h = [rnn_encode(one_hot(s, V), params)[-1] for s in (seq, other)]
            sizes.append(np.linalg.norm(h[0] - h[1]))
        assert trace_size(tokens, params, k, fixed=fixed) == pytest.approx(np.mean(sizes))


def test_trace_size_shrinks_with_distance_and_vanishes_without_recurrence(rng):
    V, n, d = 8, 12, 32
    params = init_rnn(V, d, rng)  # W_hh shrinks every vector: older traces are smaller
    tokens = random_tokens(200, n, V, rng)
    sizes = [trace_size(tokens, params, k) for k in range(1, n + 1)]
    assert all(a > b for a, b in zip(sizes, sizes[1:], strict=False)), sizes
    params["W_hh"][:] = 0  # no recurrence: only the last token reaches the final state
    assert trace_size(tokens, params, 1) > 0
    assert trace_size(tokens, params, 2) == 0


def test_trace_size_bad_input(rng):
    params = init_rnn(3, 4, rng)
    tokens = random_tokens(5, 4, 3, rng)
    for k in (0, 5):
        with pytest.raises(ValueError, match="k must"):
            trace_size(tokens, params, k)
    with pytest.raises(TypeError, match="k must"):
        trace_size(tokens, params, 1.0)
    with pytest.raises(ValueError, match="fixed must hold ids in 0..2"):
        trace_size(tokens, params, 1, fixed=3)
    with pytest.raises(TypeError, match="fixed must be"):
        trace_size(tokens, params, 1, fixed=0.5)
    with pytest.raises(ValueError, match="no trace to measure"):
        trace_size(np.zeros((5, 4), dtype=int), params, 2)
    with pytest.raises(ValueError, match="2-D"):
        trace_size(tokens[0], params, 1)
    with pytest.raises(ValueError, match="tokens must hold ids"):
        trace_size(tokens + 3, params, 1)


def test_position_recall_bad_input(rng):
    tokens = random_tokens(5, 3, 4, rng)
    with pytest.raises(ValueError, match="same length"):
        position_recall(np.zeros((5, 2)), np.zeros((5, 2)), tokens, tokens[:, :2])
    with pytest.raises(ValueError, match=r"F_test must have shape"):
        position_recall(np.zeros((5, 2)), np.zeros((4, 3, 2)), tokens, tokens)
    with pytest.raises(ValueError, match="same width"):
        position_recall(np.zeros((5, 2)), np.zeros((5, 3)), tokens, tokens)
    with pytest.raises(ValueError, match="integer ids"):
        position_recall(np.zeros((5, 2)), np.zeros((5, 2)), tokens * 1.0, tokens)


def test_query_attention_matches_a_loop(rng):
    H = rng.normal(size=(2, 5, 3))
    query = init_query(3, rng, d_pe=4, d_k=6)
    A, w = query_attention(H, query)
    PE = attnlib.sinusoidal_positional_encoding(5, 4)
    for b in range(2):
        for p in range(5):
            q = PE[p] @ query["W_q"]
            s = np.array([q @ (np.concatenate([H[b, j], PE[j]]) @ query["W_k"]) for j in range(5)]) / np.sqrt(6)
            expected_w = np.exp(s - s.max()) / np.exp(s - s.max()).sum()
            np.testing.assert_allclose(w[b, p], expected_w, atol=1e-12)
            np.testing.assert_allclose(A[b, p], sum(expected_w[j] * H[b, j] for j in range(5)), atol=1e-12)


def test_query_attention_bad_input(rng):
    H = rng.normal(size=(5, 3))
    with pytest.raises(ValueError, match="exactly W_q and W_k"):
        query_attention(H, {"W_q": np.eye(2)})
    with pytest.raises(ValueError, match=r"W_k must have shape \(d_hidden \+ d_pe, d_k\)"):
        query_attention(H, oracle_query(4, d_pe=2))
    with pytest.raises(ValueError, match="scale must be a positive"):
        oracle_query(3, scale=0.0)


@settings(max_examples=25, deadline=None)
@given(n=st.integers(2, 40), p=st.integers(0, 39))
def test_the_oracle_query_peaks_at_its_position(n, p):
    p = p % n
    _, w = query_attention(np.zeros((n, 1)), oracle_query(1))
    assert int(w[p].argmax()) == p
    np.testing.assert_allclose(w.sum(axis=-1), 1.0)
    np.testing.assert_allclose(oracle_weights(n), w)  # the shortcut the lab uses: the same weights


def test_oracle_weights_are_the_scaled_softmax_of_the_position_codes():
    PE = sinusoidal_positional_encoding(7, 16)
    np.testing.assert_allclose(oracle_weights(7, d_pe=16, scale=2.0), softmax(2.0 * PE @ PE.T), atol=1e-12)
    with pytest.raises(ValueError, match=r"n must be an integer >= 1, got 0"):
        oracle_weights(0)


def test_train_query_gradient_matches_central_differences(rng):
    """The gradient train_query follows, rebuilt here, against finite differences of the loss."""
    n, d, V = 4, 3, 3
    H = rng.normal(size=(2, n, d))
    tokens = rng.integers(0, V, size=(2, n))
    q = init_query(d, rng, d_pe=2, d_k=2)
    W_o = rng.normal(size=(d + 1, V))
    PE = attnlib.sinusoidal_positional_encoding(n, 2)
    F = np.concatenate([H, np.broadcast_to(PE, (2, n, 2))], axis=-1)

    def loss(W_q):
        A, _ = query_attention(H, {"W_q": W_q, "W_k": q["W_k"]})
        logits = with_bias(A) @ W_o
        logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
        return -np.take_along_axis(logp, tokens[..., None], -1).mean()

    A, P = query_attention(H, q)
    probs = np.exp(with_bias(A) @ W_o)
    probs /= probs.sum(-1, keepdims=True)
    d_logits = (probs - one_hot(tokens, V)) / tokens.size
    d_Q, _, _ = attention_backward(PE @ q["W_q"], F @ q["W_k"], H, d_logits @ W_o[:-1].T)
    grad = PE.T @ d_Q
    eps = 1e-6
    for i in range(2):
        for j in range(2):
            e = np.zeros((2, 2))
            e[i, j] = eps
            numeric = (loss(q["W_q"] + e) - loss(q["W_q"] - e)) / (2 * eps)
            assert abs(numeric - grad[i, j]) < 1e-7 * (1 + abs(numeric))


def test_the_learned_query_finds_its_state_and_the_final_state_forgets(rng):
    """The chapter's claims on a small instance: each arm can fail this test."""
    V, n, d = 8, 24, 32
    encoder = init_rnn(V, d, rng)
    train, test = random_tokens(400, n, V, rng), random_tokens(150, n, V, rng)
    H_tr, H_te = encode_tokens(train, encoder), encode_tokens(test, encoder)
    start = init_query(d, rng)
    start_copy = {k: v.copy() for k, v in start.items()}
    learned, losses = train_query(H_tr, train, start, rng, steps=60, lr=0.03, batch_size=16)
    for k in start:  # train_query leaves its starting point alone
        np.testing.assert_array_equal(start[k], start_copy[k])
    assert losses[-5:].mean() < 0.2 * losses[:5].mean()

    def recall_with(query):
        return position_recall(query_attention(H_tr, query)[0], query_attention(H_te, query)[0], train, test)

    final = position_recall(H_tr[:, -1], H_te[:, -1], train, test)
    assert final[0] > 0.95 and final[-5:].mean() < 0.3  # the last token is kept, the first ones are not
    assert recall_with(learned).min() > 0.9  # the learned query recalls every position
    assert recall_with(start).mean() < 0.5  # the same attention before training does not
    assert recall_with(oracle_query(d)).min() > 0.9  # the upper bound
    assert weight_on_target(query_attention(H_te, learned)[1]) > 0.8
    assert weight_on_target(query_attention(H_te, start)[1]) < 0.2


def test_train_query_bad_input(rng):
    H = rng.normal(size=(4, 3, 2))
    tokens = rng.integers(0, 3, size=(4, 3))
    q = init_query(2, rng, d_pe=2, d_k=2)
    with pytest.raises(ValueError, match="batch_size=8 is larger"):
        train_query(H, tokens, q, rng, batch_size=8)
    with pytest.raises(ValueError, match="tokens must be integer ids of shape"):
        train_query(H, tokens[:, :2], q, rng, batch_size=2)
    with pytest.raises(ValueError, match="states must have shape"):
        train_query(H[0], tokens, q, rng, batch_size=2)
    with pytest.raises(ValueError, match="lr must be a positive"):
        train_query(H, tokens, q, rng, batch_size=2, lr=-1.0)
    with pytest.raises(TypeError, match="Generator"):
        train_query(H, tokens, q, 0, batch_size=2)


def test_weight_on_target():
    assert weight_on_target(np.full((2, 3, 3), 1 / 3)) == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="square"):
        weight_on_target(np.zeros((2, 3)))


def test_recall_bad_input(rng):
    params = init_rnn(4, 8, rng)
    with pytest.raises(ValueError, match="same length"):
        final_state_recall(random_tokens(10, 5, 4, rng), random_tokens(10, 6, 4, rng), params)
    with pytest.raises(ValueError, match=r"ids in 0..3"):
        final_state_recall(random_tokens(10, 5, 9, rng), random_tokens(10, 5, 4, rng), params)


def test_content_only_keys_match_a_loop(rng):
    """k_j = h_{j+1} W_k: the keys are not told their position; only the query is."""
    states = rng.normal(size=(2, 5, 3))
    query = init_query(3, rng, d_pe=4, d_k=6, key_position=False)
    assert query["W_k"].shape == (3, 6)
    A, w = query_attention(states, query)
    PE = attnlib.sinusoidal_positional_encoding(5, 4)
    for b in range(2):
        for p in range(5):
            s = np.array([(PE[p] @ query["W_q"]) @ (states[b, j] @ query["W_k"]) for j in range(5)]) / np.sqrt(6)
            expected_w = np.exp(s - s.max()) / np.exp(s - s.max()).sum()
            np.testing.assert_allclose(w[b, p], expected_w, atol=1e-12)
            np.testing.assert_allclose(A[b, p], expected_w @ states[b], atol=1e-12)
    # permuting the states permutes a content-only key's weights with them: the key has no position
    perm = rng.permutation(5)
    _, w_perm = query_attention(states[:, perm], query)
    np.testing.assert_allclose(w_perm, w[:, :, perm], atol=1e-12)
    with pytest.raises(TypeError, match="key_position must be True or False"):
        init_query(3, rng, key_position="no")


def test_train_query_learns_with_content_only_keys(rng):
    tokens = random_tokens(64, 6, 4, rng)
    states = encode_tokens(tokens, init_rnn(4, 16, rng))
    start = init_query(16, rng, d_pe=8, d_k=8, key_position=False)
    learned, losses = train_query(states, tokens, start, rng, steps=40, lr=0.03)
    assert learned["W_k"].shape == (16, 8)
    assert losses[-5:].mean() < losses[:5].mean()
