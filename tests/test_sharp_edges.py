"""Issue 12, section 7: every sharp edge, reproduced as it was reported, in every path.

Each test runs the reported call (plain, fast and blockwise where they apply) and checks
that it now gives the right answer or a clear error instead of a silently wrong one.
"""

import tracemalloc

import numpy as np
import pytest

import attnlib as al
import attnlib.fast as fast
from attnlib._validate import available_memory
from attnlib.attention import scaled_dot_product_attention as plain_sdpa
from attnlib.softmax import softmax as plain_softmax

SDPA = {"plain": plain_sdpa, "fast": fast.scaled_dot_product_attention}
SOFTMAX = {"plain": plain_softmax, "fast": fast.softmax}


def output_of(path, Q, K, V, mask=None):
    """The attention output of one path: plain, fast or blockwise."""
    if path == "blockwise":
        return al.blockwise_attention(Q, K, V, mask, block_size=2)
    return SDPA[path](Q, K, V, mask)[0]


PATHS = ["plain", "fast", "blockwise"]

# --------------------------------------------------------------------------- overflowing scores


@pytest.mark.filterwarnings("ignore:overflow encountered")
@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize(
    "dtype, big",
    [(np.float64, 1e200), (np.float32, 1e20)],
)
def test_scores_that_overflow_to_minus_inf_are_not_taken_for_masked_keys(path, dtype, big):
    # Reported: output 0 and weights [0, 0] (both scores overflow to -inf), where the answer is 2.
    Q = np.full((1, 4), big, dtype)
    K = np.array([[-big] * 4, [-0.9 * big] * 4], dtype)
    V = np.array([[1.0], [2.0]], dtype)
    with pytest.raises(ValueError, match=f"overflow {np.dtype(dtype)}"):
        output_of(path, Q, K, V)


@pytest.mark.filterwarnings("ignore:overflow encountered")
@pytest.mark.parametrize("path", PATHS)
def test_scores_that_overflow_to_plus_inf_raise(path):
    # Reported: the vectorized path raised, blockwise_attention silently returned 0.
    Q, K, V = np.full((1, 4), 1e200), np.full((2, 4), 1e200), np.array([[1.0], [3.0]])
    with pytest.raises(ValueError, match="overflow float64"):
        output_of(path, Q, K, V)


@pytest.mark.parametrize("path", PATHS)
def test_float16_scores_of_200_are_computed_in_float32(path):
    # Reported: float16 inputs at |x| = 200 overflowed their scores (200 * 200 * 4 / 2 > 65504).
    Q = np.full((1, 4), 200.0, np.float16)
    K = np.array([[-200.0] * 4, [-180.0] * 4], np.float16)
    V = np.array([[1.0], [2.0]], np.float16)
    out = output_of(path, Q, K, V)
    assert out.dtype == np.float16
    np.testing.assert_array_equal(out, [[2.0]])


@pytest.mark.filterwarnings("ignore:overflow encountered")
@pytest.mark.parametrize("path", PATHS)
def test_an_overflow_that_the_mask_hides_changes_nothing(path):
    # Only allowed scores matter: the same answer as if the hidden key were not there.
    Q = np.full((2, 4), 1e200)
    K = np.vstack([np.full((1, 4), 1e200), np.zeros((3, 4))])  # key 0 overflows for every query
    V = np.arange(4.0)[:, None]
    mask = np.array([False, True, True, True])  # key 0 hidden
    out = output_of(path, Q, K, V, mask)
    np.testing.assert_allclose(out, np.full((2, 1), 2.0), rtol=0, atol=1e-12)


@pytest.mark.filterwarnings("ignore:overflow encountered")
def test_score_functions_refuse_overflow_too():
    Q, K = np.full((1, 2), 1e200), np.array([[-1e200, -1e200], [-0.9e200, -0.9e200]])
    with pytest.raises(ValueError, match="overflow"):
        al.dot_product_scores(Q, K)
    with pytest.raises(ValueError, match="overflow"):
        al.scaled_dot_product_scores(Q, K)
    with pytest.raises(ValueError, match="overflow"):
        plain_sdpa(np.full((1, 2), 1e200), np.ones((2, 2)), np.ones((2, 1)), scale=1e200)  # Q * scale


# --------------------------------------------------------------------------- float16 sums


@pytest.mark.parametrize("path", PATHS)
def test_float16_weights_of_70000_equal_scores_sum_to_one(path):
    # Reported: the weights summed to 0 (sdpa) or were NaN (blockwise): the float16 sum overflowed.
    n = 70_000
    Q, K = np.zeros((1, 4), np.float16), np.zeros((n, 4), np.float16)
    V = np.ones((n, 1), np.float16)
    out = output_of(path, Q, K, V)
    assert out.dtype == np.float16
    np.testing.assert_array_equal(out, [[1.0]])
    if path != "blockwise":
        w = SDPA[path](Q, K, V)[1]
        assert w.dtype == np.float16 and np.all(w == w[0, 0]) and w[0, 0] > 0
        assert abs(w.astype(np.float64).sum() - 1.0) < 1e-2  # 1/70000 rounded to float16


@pytest.mark.parametrize("path", ["plain", "fast"])
def test_softmax_of_100000_float16_zeros(path):
    w = SOFTMAX[path](np.zeros(100_000, np.float16))
    assert w.dtype == np.float16 and np.all(w == w[0]) and w[0] > 0
    assert abs(w.astype(np.float64).sum() - 1.0) < 1e-2


# --------------------------------------------------------------------------- masks that add batch dimensions


@pytest.mark.parametrize("path", PATHS)
def test_a_pytorch_layout_mask_does_not_add_a_batch_dimension(path):
    # Reported: Q (B, n, d) with mask (B, 1, n, n) returned shape (B, B, n, d).
    rng = np.random.default_rng(0)
    Q = rng.normal(size=(2, 3, 4))
    with pytest.raises(ValueError, match=r"\(2, 1, 3, 3\) would add batch dimensions.*\(2, 3, 3\)"):
        output_of(path, Q, Q, Q, np.ones((2, 1, 3, 3), bool))
    with pytest.raises(ValueError, match="would add batch dimensions"):
        al.multi_head_attention(Q, Q, al.init_multi_head(4, 2, rng), 2, mask=np.ones((2, 1, 3, 3), bool))
    with pytest.raises(ValueError, match="would add batch dimensions"):  # an unbatched query, a batch of masks
        output_of(path, Q[0], Q[0], Q[0], al.padding_mask([1, 2], 3))


@pytest.mark.parametrize("path", PATHS)
def test_a_padding_mask_is_not_lined_up_with_the_heads(path):
    # Reported: padding_mask([1, 4], n) against Q (B, H, n, d) paired batch b with head b, so that
    # batch 0 attended to every key in head 1.
    rng = np.random.default_rng(1)
    n = 4
    Q, K, V = rng.normal(size=(2, 2, n, 3)), rng.normal(size=(2, 2, n, 3)), rng.normal(size=(2, 2, n, 2))
    mask = al.padding_mask([1, 4], n)  # (2, 1, 4)
    with pytest.raises(ValueError, match=r"1 batch axis.*have 2.*mask\[:, None\] of shape \(2, 1, 1, 4\)"):
        output_of(path, Q, K, V, mask)
    out = output_of(path, Q, K, V, mask[:, None])  # the fix the message gives
    np.testing.assert_allclose(out[0], V[0, :, :1].repeat(n, axis=1), rtol=0, atol=1e-12)  # key 0 only


# --------------------------------------------------------------------------- flags, params, softmax input


def test_causal_flags_must_be_real_booleans():
    X = np.ones((3, 2))
    with pytest.raises(TypeError, match="causal must be a bool.*'no'"):
        al.blockwise_attention(X, X, X, causal="no")
    from attnlib.widgets import MaskExplorer

    with pytest.raises(TypeError, match="causal must be a bool.*'no'"):
        MaskExplorer([[0.0, 0.0], [0.0, 0.0]], ["a", "b"], causal="no")


def test_an_unknown_params_key_is_an_error():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(3, 4))
    params = al.init_multi_head(4, 2, rng)
    with pytest.raises(ValueError, match=r"unknown keys \['b_O'\]"):
        al.multi_head_attention(X, X, {**params, "b_O": np.ones(4)}, 2)
    with pytest.raises(ValueError, match=r"unknown keys \['w_q'\]"):
        al.multi_head_attention(X, X, {**params, "w_q": np.eye(4)}, 2)


@pytest.mark.parametrize("path", ["plain", "fast"])
def test_softmax_input_errors(path):
    f = SOFTMAX[path]
    with pytest.raises(TypeError, match="masked array"):
        f(np.ma.masked_array([1.0, 2.0, 3.0], mask=[False, True, False]))
    with pytest.raises(ValueError, match=r"at least one score along axis 1, got shape \(3, 0\)"):
        f(np.zeros((3, 0)))
    with pytest.raises(TypeError, match="axis must be an integer, got 1.0"):
        f(np.zeros((3, 2)), axis=1.0)
    with pytest.raises(TypeError, match=r"axis must be an integer, got None.*ravel"):
        f(np.zeros((3, 2)), axis=None)
    with pytest.raises(TypeError, match="axis must be an integer"):
        f(np.zeros((3, 2)), axis=True)
    with pytest.raises(ValueError, match="out of range"):
        f(np.zeros((3, 2)), axis=-3)
    assert f(np.zeros((0, 3))).shape == (0, 3)  # no rows: nothing to normalise, no error


@pytest.mark.parametrize("path", PATHS)
def test_masked_arrays_are_refused_by_attention(path):
    X = np.ma.masked_array(np.ones((2, 2)), mask=[[False, True], [False, False]])
    with pytest.raises(TypeError, match="Q is a numpy masked array"):
        output_of(path, X, np.ones((2, 2)), np.ones((2, 1)))
    with pytest.raises(TypeError, match="mask is a numpy masked array"):
        output_of(path, np.ones((2, 2)), np.ones((2, 2)), np.ones((2, 1)), np.ma.masked_array([True, True]))


# --------------------------------------------------------------------------- memory


@pytest.mark.parametrize("path", ["plain", "fast"])
def test_weights_that_cannot_fit_raise_before_allocating(path):
    # Reported: n = 30,000 raised numpy's MemoryError with no pointer to blockwise_attention.
    # A batch of 8 makes the weights 54 GiB in float64, beyond this machine and any CI runner.
    X = np.broadcast_to(np.zeros((30_000, 4)), (8, 30_000, 4))
    tracemalloc.start()
    try:
        with pytest.raises(MemoryError, match="blockwise_attention") as info:
            SDPA[path](X, X, X)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert isinstance(info.value, ValueError)  # also a ValueError: bad input for this function
    assert "8 x 30000 x 30000 float64" in str(info.value)
    assert peak < 2**26  # nothing of the size of the weights was allocated


def test_n_30000_raises_on_a_machine_that_cannot_hold_it():
    """The reported call itself: three 30,000 x 30,000 float64 arrays are 20 GiB."""
    free = available_memory()
    if free is None or 3 * 30_000**2 * 8 <= 0.8 * free:
        pytest.skip("this machine could hold the plain path's arrays")
    X = np.zeros((30_000, 4))
    with pytest.raises(MemoryError, match="blockwise_attention"):
        al.scaled_dot_product_attention(X, X, X)


# --------------------------------------------------------------------------- more of the same kind


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: al.causal_mask(3.0), TypeError, "n_q must be an integer"),
        (lambda: al.padding_mask([True, False], 3), TypeError, "lengths must be integers"),
        (lambda: al.split_heads(np.ones((2, 4)), True), TypeError, "n_heads must be an integer"),
        (lambda: al.blockwise_attention(np.ones((2, 2)), np.ones((2, 2)), np.ones((2, 1)), block_size=2.0),
         TypeError, "block_size must be an integer"),
        (lambda: al.blockwise_plan(4, 4, 2, np.ones((4, 4))), TypeError, "must be boolean"),
        (lambda: al.toy_lm.generate([0, 1], 2, 2.0), TypeError, "n_new must be an integer"),
        (lambda: al.toy_lm.shifted_one_hot([0, 1], 2, 0.5), TypeError, "offset must be an integer"),
        (lambda: al.toy_lm.next_token_head([0.0, 1.0], 2), TypeError, "ids must be integers"),
        (lambda: al.toy_lm.masked_token_head([0, 1], 2, mask_id=2), ValueError, "mask_id must lie in 0..1"),
        (lambda: al.transformer.layer_norm(np.ones((2, 3)), np.ones(3), np.zeros(3), eps=0.0), ValueError,
         "eps must be"),
        (lambda: al.rnn.init_rnn(2, 3, np.random.default_rng(0), spectral_radius=True), TypeError,
         "spectral_radius must be a real number"),
        (lambda: al.rnn.rnn_step(np.ones(2), np.zeros(3),
                                 {**al.rnn.init_rnn(2, 3, np.random.default_rng(0)), "W_hx": 1}),
         ValueError, r"unknown keys \['W_hx'\]"),
        (lambda: al.additive_scores(np.ones((1, 2)), np.ones((1, 2)),
                                    {**al.init_additive(2, 2, 2, np.random.default_rng(0)), "b": 0}),
         ValueError, r"unknown keys \['b'\]"),
        (lambda: al.transformer.token_embeddings([], np.eye(3), np.eye(3)), TypeError,
         "token_ids must be an array of integers"),
        (lambda: al.transformer.token_embeddings(np.zeros(0, int), np.eye(3), np.eye(3)), ValueError, "n >= 1 tokens"),
        (lambda: al.transformer.token_embeddings([0, 1], np.eye(3), np.eye(3), np.eye(3)[:2], [0, 2]), ValueError,
         "type_ids"),
        (lambda: al.vision.pca_patch_projection(np.zeros((3, 5)), 2.0), TypeError, "d_model must be an integer"),
        (lambda: al.toy.toy_self_attention_params(np.inf), ValueError, "strength must be a positive finite number"),
        (lambda: al.sinusoidal_positional_encoding(3, True), TypeError, "d_model must be an integer"),
    ],
)
def test_more_edges_of_the_same_kind(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_offset_scores_needs_an_integer_offset():
    from attnlib.pretrained import offset_scores

    with pytest.raises(TypeError, match="offset must be an integer"):
        offset_scores(np.eye(3), 1.5)


@pytest.mark.parametrize("path", PATHS)
def test_an_empty_batch_gives_empty_results(path):
    Q = np.zeros((0, 3, 2))
    assert output_of(path, Q, Q, Q).shape == (0, 3, 2)


def test_a_causal_mask_too_large_for_memory_points_to_blockwise():
    with pytest.raises(MemoryError, match=r"causal=True\) applies the causal mask without building it"):
        al.causal_mask(10**6)  # 10^12 booleans


def test_empty_token_ids_say_so():
    with pytest.raises(ValueError, match="ids is empty"):
        al.toy_lm.next_token_head([], 3)


@pytest.mark.filterwarnings("ignore:overflow encountered")
def test_kernel_regression_scores_that_overflow_are_not_taken_for_masked_keys():
    # The same edge as attention's: every score -inf would give weights 0 and a prediction of 0.
    with pytest.raises(ValueError, match="overflow"):
        al.nadaraya_watson([1e200], [0.0, 1.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="overflow"):
        al.nadaraya_watson([3.0], [0.0, 1.0], [1.0, 2.0], bandwidth=1e-160)


@pytest.mark.filterwarnings("ignore:overflow encountered")
def test_multi_head_projections_that_overflow_say_so():
    rng = np.random.default_rng(3)
    X = np.full((2, 4), 1e200)
    params = al.init_multi_head(4, 2, rng)
    params["W_q"] = np.full((4, 4), 1e200)
    with pytest.raises(ValueError, match="projection X @ W_q overflows"):
        al.multi_head_attention(X, X, params, 2)
    with pytest.raises(ValueError, match="X_q must be finite"):
        al.multi_head_attention(np.full((2, 4), np.nan), X, al.init_multi_head(4, 2, rng), 2)


def test_a_ragged_mask_is_a_clear_type_error():
    with pytest.raises(TypeError, match="mask must be a boolean array"):
        al.scaled_dot_product_attention(np.ones((2, 2)), np.ones((2, 2)), np.ones((2, 1)),
                                        mask=[[True], [True, False]])
