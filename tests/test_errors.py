"""Bad input gets a clear error that says what was expected and what arrived."""

import numpy as np
import pytest

import attnlib as al
from attnlib._validate import as_bool, check_rng, positive_int, positive_number

rng = np.random.default_rng(0)
GENERATOR = np.random.default_rng(1)
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
        (lambda: al.causal_mask(0), ValueError, r"n_q must be an integer >= 1, got 0"),
        (lambda: al.causal_mask(2.5), TypeError, r"n_q must be an integer"),
        (lambda: al.padding_mask([1, 5], 4), ValueError, r"lengths must lie in 0..n_k=4, got \[1, 5\]"),
        (lambda: al.padding_mask([[1]], 4), ValueError, r"lengths must be a 1-D array of integers"),
        (lambda: al.sinusoidal_positional_encoding(0, 4), ValueError, r"n_positions must be an integer >= 1"),
        (lambda: al.sinusoidal_positional_encoding(4.0, 4), TypeError, r"n_positions must be an integer, got 4.0"),
        (lambda: al.padding_mask([1.5, 2.0], 4), TypeError, r"lengths must be integers"),
        (lambda: al.init_multi_head(8, 2, rng, bias="yes"), TypeError, r"bias must be a bool"),
        (lambda: al.init_multi_head(8, 2.0, rng), TypeError, r"n_heads must be an integer"),
        (lambda: al.multi_head_attention(Q, K, al.init_multi_head(8, 2, rng), n_heads=0), ValueError,
         r"n_heads must be an integer >= 1"),
        (lambda: al.init_additive(2, 2, 0, rng), ValueError, r"d_hidden must be an integer >= 1"),
        (lambda: al.init_additive(2, 2, 2, None), TypeError, r"rng must be a numpy.random.Generator"),
        (lambda: al.scaled_dot_product_attention(Q, K, V, scale="2"), TypeError, r"scale must be a real number"),
        (lambda: al.scaled_dot_product_attention(Q, K, V, scale=np.inf), ValueError, r"scale must be a positive"),
        (lambda: al.additive_scores(Q, K, {"W_q": np.eye(8)}), ValueError, r"missing \['W_k', 'w_v'\]"),
        (lambda: al.additive_scores(Q, K, {"W_q": np.eye(8), "W_k": np.eye(8), "w_v": np.ones(3)}), ValueError,
         r"expected W_q \(8, d_hidden\)"),
        (lambda: al.nadaraya_watson([0.0], [0.0, 1.0], [1.0]), ValueError, r"y_values must have shape"),
        (lambda: al.nadaraya_watson([0.0], [0.0], [1.0], bandwidth=0), ValueError,
         r"bandwidth must be a positive finite number, got 0"),
        (lambda: al.nadaraya_watson([0.0], [0.0], [1.0], bandwidth="wide"), TypeError,
         r"bandwidth must be a real number"),
    ],
)
def test_bad_input_says_what_was_expected(call, error, match):
    with pytest.raises(error, match=match):
        call()


# The argument checks of attnlib/_validate.py, one table: what is accepted (and returned), what is
# refused, and with which error.  Wrong kind of thing -> TypeError; right kind, wrong value -> ValueError.
@pytest.mark.parametrize(
    "check, value, expected",
    [
        (positive_int, 3, 3),
        (positive_int, np.int64(2), 2),
        (positive_int, 0, ValueError),
        (positive_int, -4, ValueError),
        (positive_int, 2.0, TypeError),
        (positive_int, True, TypeError),
        (positive_int, "3", TypeError),
        (positive_int, None, TypeError),
        (lambda v, name: positive_int(v, name, minimum=0), 0, 0),
        (lambda v, name: positive_int(v, name, minimum=None), -7, -7),
        (positive_number, 0.5, 0.5),
        (positive_number, 2, 2.0),
        (positive_number, np.float32(0.25), 0.25),
        (positive_number, 0, ValueError),
        (positive_number, -1.0, ValueError),
        (positive_number, np.nan, ValueError),
        (positive_number, np.inf, ValueError),
        (positive_number, False, TypeError),
        (positive_number, "1.0", TypeError),
        (positive_number, [1.0], TypeError),
        (lambda v, name: check_rng(v, name), GENERATOR, GENERATOR),
        (lambda v, name: check_rng(v, name), 0, TypeError),
        (lambda v, name: check_rng(v, name), np.random.RandomState(0), TypeError),
        (as_bool, True, True),
        (as_bool, np.bool_(False), False),
        (as_bool, "no", TypeError),
        (as_bool, 1, TypeError),
        (as_bool, None, TypeError),
    ],
)
def test_argument_checks(check, value, expected):
    if isinstance(expected, type) and issubclass(expected, Exception):
        with pytest.raises(expected, match="the_argument"):
            check(value, "the_argument")
    else:
        result = check(value, "the_argument")
        assert result == expected and type(result) is type(expected)
