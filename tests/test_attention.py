"""attnlib's plain core against plain-loop references, with broadcasting and masks.

(The speed path, attnlib.fast, is tested equal to these functions in test_fast.py.)"""

import numpy as np
import pytest
from reference import attention_loop, multi_head_loop, softmax_loop

import attnlib as al


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def test_softmax_matches_loop(rng):
    x = rng.normal(size=(5, 7)) * 3
    x[1, 2] = -np.inf
    x[3] = -np.inf
    expected = np.array([softmax_loop(row) for row in x])
    np.testing.assert_allclose(al.softmax(x), expected, atol=1e-12)


def test_softmax_other_axis(rng):
    x = rng.normal(size=(4, 3))
    np.testing.assert_allclose(al.softmax(x, axis=0), al.softmax(x.T).T, atol=1e-15)


def test_attention_matches_loop_with_batches_and_mask(rng):
    Q = rng.normal(size=(2, 3, 5, 4))  # (batch, heads, n_q, d_k)
    K = rng.normal(size=(3, 6, 4))  # broadcast over batch
    V = rng.normal(size=(2, 1, 6, 2))  # broadcast over heads
    mask = rng.random((2, 1, 5, 6)) > 0.3
    mask[0, 0, 2] = False  # a fully masked row
    out, w = al.scaled_dot_product_attention(Q, K, V, mask)
    assert out.shape == (2, 3, 5, 2) and w.shape == (2, 3, 5, 6)
    for b in range(2):
        for h in range(3):
            ref_out, ref_w = attention_loop(Q[b, h], K[h], V[b, 0], mask[b, 0])
            np.testing.assert_allclose(out[b, h], ref_out, atol=1e-10)
            np.testing.assert_allclose(w[b, h], ref_w, atol=1e-10)
    assert np.all(w[0, :, 2] == 0) and np.all(out[0, :, 2] == 0)


def test_custom_scale(rng):
    Q, K, V = rng.normal(size=(3, 4)), rng.normal(size=(5, 4)), rng.normal(size=(5, 2))
    out, w = al.scaled_dot_product_attention(Q, K, V, scale=1.0)
    ref_out, ref_w = attention_loop(Q, K, V, scale=1.0)
    np.testing.assert_allclose(w, ref_w, atol=1e-10)
    np.testing.assert_allclose(out, ref_out, atol=1e-10)


def test_scores(rng):
    Q, K = rng.normal(size=(3, 8)), rng.normal(size=(5, 8))
    loop = np.array([[Q[i] @ K[j] for j in range(5)] for i in range(3)])
    np.testing.assert_allclose(al.dot_product_scores(Q, K), loop, atol=1e-12)
    np.testing.assert_allclose(al.scaled_dot_product_scores(Q, K), loop / np.sqrt(8), atol=1e-12)


def test_additive_scores_match_loop(rng):
    Q, K = rng.normal(size=(3, 4)), rng.normal(size=(5, 6))
    p = al.init_additive(4, 6, 7, rng)
    loop = np.array([[p["w_v"] @ np.tanh(Q[i] @ p["W_q"] + K[j] @ p["W_k"]) for j in range(5)]
                     for i in range(3)])
    np.testing.assert_allclose(al.additive_scores(Q, K, p), loop, atol=1e-12)


@pytest.mark.parametrize("bias", [False, True])
def test_multi_head_matches_loop(rng, bias):
    X_q, X_kv = rng.normal(size=(2, 5, 12)), rng.normal(size=(2, 7, 12))
    p = al.init_multi_head(12, 3, rng, bias=bias)
    if bias:
        p = {k: v + rng.normal(size=v.shape) if k.startswith("b_") else v for k, v in p.items()}
    mask = al.padding_mask([7, 4], 7)  # (2, 1, 7)
    out, w = al.multi_head_attention(X_q, X_kv, p, n_heads=3, mask=mask)
    assert out.shape == (2, 5, 12) and w.shape == (2, 3, 5, 7)
    for b in range(2):
        ref_out, ref_w = multi_head_loop(X_q[b], X_kv[b], p, 3, np.broadcast_to(mask[b], (5, 7)))
        np.testing.assert_allclose(out[b], ref_out, atol=1e-10)
        np.testing.assert_allclose(w[b], ref_w, atol=1e-10)
    assert np.all(w[1, :, :, 4:] == 0)


def test_one_head_is_plain_attention(rng):
    X = rng.normal(size=(6, 8))
    p = al.init_multi_head(8, 1, rng)
    out, w = al.multi_head_attention(X, X, p, n_heads=1)
    ref_heads, ref_w = al.scaled_dot_product_attention(X @ p["W_q"], X @ p["W_k"], X @ p["W_v"])
    np.testing.assert_allclose(w[0], ref_w, atol=1e-12)
    np.testing.assert_allclose(out, ref_heads @ p["W_o"], atol=1e-12)


def test_split_merge_roundtrip_and_columns(rng):
    X = rng.normal(size=(2, 5, 12))
    H = al.split_heads(X, 4)
    assert H.shape == (2, 4, 5, 3)
    np.testing.assert_array_equal(H[:, 2], X[..., 6:9])
    np.testing.assert_array_equal(al.merge_heads(H), X)


def test_masks():
    np.testing.assert_array_equal(al.causal_mask(2, 3), [[True, False, False], [True, True, False]])
    m = al.padding_mask(np.array([0, 2]), 3)
    assert m.shape == (2, 1, 3) and not m[0].any() and m[1, 0].tolist() == [True, True, False]


def test_positional_encoding_formula():
    pe = al.sinusoidal_positional_encoding(50, 16)
    for pos in (0, 7, 49):
        for i in range(8):
            angle = pos / 10000 ** (2 * i / 16)
            assert pe[pos, 2 * i] == pytest.approx(np.sin(angle), abs=1e-12)
            assert pe[pos, 2 * i + 1] == pytest.approx(np.cos(angle), abs=1e-12)
    assert al.sinusoidal_positional_encoding(3, 5).shape == (3, 5)


def test_nadaraya_watson_is_attention(rng):
    x, xk, y = rng.normal(size=4), rng.normal(size=9), rng.normal(size=9)
    y_hat, w = al.nadaraya_watson(x, xk, y, bandwidth=0.5)
    scores = -((x[:, None] - xk[None, :]) ** 2) / (2 * 0.25)
    np.testing.assert_allclose(w, np.array([softmax_loop(r) for r in scores]), atol=1e-12)
    np.testing.assert_allclose(y_hat, w @ y, atol=1e-12)


def test_float32_stays_float32(rng):
    Q = rng.normal(size=(4, 8)).astype(np.float32)
    out, w = al.scaled_dot_product_attention(Q, Q, Q)
    assert out.dtype == np.float32 and w.dtype == np.float32


def test_float16_is_computed_in_float32_and_returned_as_float16(rng):
    Q, K, V = (rng.normal(size=(4, 8)).astype(np.float16) for _ in range(3))
    out, w = al.scaled_dot_product_attention(Q, K, V)
    assert out.dtype == np.float16 and w.dtype == np.float16
    ref_out, ref_w = attention_loop(*(x.astype(float) for x in (Q, K, V)))
    np.testing.assert_allclose(w.astype(float), ref_w, atol=2e-3)
    np.testing.assert_allclose(out.astype(float), ref_out, atol=5e-3)


def test_large_batched_inputs_match_loops(rng):
    # Big enough for the weights to span many pages; a few rows against the loops.
    Q = rng.normal(size=(2, 2, 301, 16))
    K = rng.normal(size=(2, 1, 200, 16))  # broadcast over heads
    V = rng.normal(size=(1, 2, 200, 3))  # broadcast over batch
    mask = rng.random((2, 1, 301, 200)) > 0.2
    mask[1, 0, 150] = False  # a fully masked row
    out, w = al.scaled_dot_product_attention(Q, K, V, mask)
    rows = [0, 150, 299, 300]
    for b in range(2):
        for h in range(2):
            ref_out, ref_w = attention_loop(Q[b, h, rows], K[b, 0], V[0, h], mask[b, 0, rows])
            np.testing.assert_allclose(out[b, h, rows], ref_out, atol=1e-10)
            np.testing.assert_allclose(w[b, h, rows], ref_w, atol=1e-10)
    assert np.all(w[1, :, 150] == 0) and np.all(out[1, :, 150] == 0)
