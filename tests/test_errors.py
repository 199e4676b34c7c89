"""Bad input gets a clear error that says what was expected and what arrived."""

import numpy as np
import pytest

import attnlib as al

rng = np.random.default_rng(0)
Q, K, V = rng.normal(size=(3, 8)), rng.normal(size=(5, 8)), rng.normal(size=(5, 2))


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: al.scaled_dot_product_attention(Q, K[:, :6], V), ValueError, r"Q has d_k=8 but K has d_k=6"),
        (lambda: al.scaled_dot_product_attention(Q, K, V[:4]), ValueError, r"K has n_k=5 keys but V has 4"),
        (lambda: al.scaled_dot_product_attention(Q, K, V, mask=np.ones((3, 5))), TypeError,
         r"mask must be boolean .* got dtype float64"),
        (lambda: al.scaled_dot_product_attention(Q, K, V, mask=np.ones((3, 4), bool)), ValueError,
         r"mask of shape \(3, 4\) does not broadcast to the scores' shape \(3, 5\)"),
        (lambda: al.scaled_dot_product_attention(Q, K, V, mask=np.ones((2, 1), bool)), ValueError,
         r"does not broadcast"),
        (lambda: al.scaled_dot_product_attention(np.full((3, 8), np.nan), K, V), ValueError,
         r"Q must be finite, but 24 entries are NaN or infinite"),
        (lambda: al.scaled_dot_product_attention(Q[:0], K, V), ValueError, r"Q has n_q=0"),
        (lambda: al.scaled_dot_product_attention(Q, K[:0], V[:0]), ValueError, r"K has n_k=0"),
        (lambda: al.scaled_dot_product_attention(Q[0], K, V), ValueError, r"Q must have at least 2 dimensions"),
        (lambda: al.scaled_dot_product_attention(Q, K, V, scale=-1.0), ValueError, r"scale must be a positive"),
        (lambda: al.scaled_dot_product_attention("abc", K, V), TypeError, r"Q must be an array of numbers"),
        (lambda: al.scaled_dot_product_attention(rng.normal(size=(2, 3, 8)), rng.normal(size=(4, 5, 8)),
                                                 rng.normal(size=(4, 5, 2))), ValueError,
         r"leading \(batch\) dimensions do not broadcast"),
        (lambda: al.softmax([1.0, np.nan]), ValueError, r"finite scores or -inf"),
        (lambda: al.softmax([1.0, 2.0], axis=3), ValueError, r"axis 3 is out of range"),
        (lambda: al.init_multi_head(10, 3, rng), ValueError, r"d_model=10 is not divisible by n_heads=3"),
        (lambda: al.init_multi_head(8, 2, 0), TypeError, r"rng must be a numpy.random.Generator"),
        (lambda: al.multi_head_attention(Q, K, al.init_multi_head(8, 2, rng), n_heads=3), ValueError,
         r"d_model=8 is not divisible by n_heads=3"),
        (lambda: al.multi_head_attention(Q, K, {"W_q": np.eye(8)}, n_heads=2), ValueError,
         r"params is missing \['W_k', 'W_v', 'W_o'\]"),
        (lambda: al.multi_head_attention(Q, K, {**al.init_multi_head(8, 2, rng), "W_o": np.eye(4)}, 2),
         ValueError, r"W_o should have shape \(8, 8\) for d_model=8, got \(4, 4\)"),
        (lambda: al.multi_head_attention(Q, K[:, :4], al.init_multi_head(8, 2, rng), 2), ValueError,
         r"X_q has d_model=8 but X_kv has d_model=4"),
        (lambda: al.multi_head_attention(Q, K, al.init_multi_head(8, 2, rng), 2, mask=np.ones((3, 4), bool)),
         ValueError, r"mask of shape \(3, 4\) does not broadcast"),
        (lambda: al.causal_mask(0), ValueError, r"n_q must be >= 1, got 0"),
        (lambda: al.causal_mask(2.5), TypeError, r"n_q must be an integer"),
        (lambda: al.padding_mask([1, 5], 4), ValueError, r"lengths must lie in 0..n_k=4, got \[1, 5\]"),
        (lambda: al.padding_mask([[1]], 4), ValueError, r"lengths must be a 1-D array of integers"),
        (lambda: al.sinusoidal_positional_encoding(0, 4), ValueError, r"n_positions must be a positive integer"),
        (lambda: al.additive_scores(Q, K, {"W_q": np.eye(8)}), ValueError, r"missing \['W_k', 'w_v'\]"),
        (lambda: al.additive_scores(Q, K, {"W_q": np.eye(8), "W_k": np.eye(8), "w_v": np.ones(3)}), ValueError,
         r"expected W_q \(8, d_hidden\)"),
        (lambda: al.nadaraya_watson([0.0], [0.0, 1.0], [1.0]), ValueError, r"y_values must have shape"),
        (lambda: al.nadaraya_watson([0.0], [0.0], [1.0], bandwidth=0), ValueError,
         r"bandwidth must be a positive number, got 0"),
    ],
)
def test_bad_input_says_what_was_expected(call, error, match):
    with pytest.raises(error, match=match):
        call()
