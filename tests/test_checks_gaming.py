"""The checks cannot be fooled: every way of gaming them reported in issue 15 (items 5 to 15) fails.

Each test reproduces one case: an answer that passed although wrong (or failed although right),
or a check that crashed, hung or misled.  Correct answers written the documented ways still pass.
"""

from __future__ import annotations

import math
import textwrap
import threading
import time
import warnings

import nbformat
import numpy as np
import pytest
from nbclient import NotebookClient

import attnlib
import attnlib.checks
import attnlib.checks._attention
import attnlib.checks._result
from attnlib.attention import scaled_dot_product_attention as sdpa_alias
from attnlib.checks import (
    assert_passed,
    check_attention,
    check_causal_mask,
    check_dropout,
    check_function,
    check_multi_head,
    check_self_attention,
    check_softmax,
    check_value,
    compare_arrays,
)
from attnlib.checks._guard import trusted

ref_softmax = trusted(attnlib.softmax)  # what an earlier exercise would provide


def T(A):
    return A.swapaxes(-1, -2)


def attention(Q, K, V, mask=None):
    """A learner's correct attention (numpy only)."""
    scores = Q @ T(K) / math.sqrt(Q.shape[-1])
    if mask is not None:
        scores = np.where(mask, scores, -np.inf)
    m = np.max(scores, axis=-1, keepdims=True)
    e = np.exp(scores - np.where(np.isfinite(m), m, 0.0))
    s = e.sum(axis=-1, keepdims=True)
    weights = np.divide(e, s, out=np.zeros_like(e), where=s > 0)
    return weights @ V, weights


def mha_with(prepare=None, scale_scores=True, zeros=False):
    """A learner's multi-head attention; ``prepare(params, d_head)`` runs first (the in-place tricks)."""

    def mha(X_q, X_kv, params, n_heads):
        d_model = X_q.shape[-1]
        d_head = d_model // n_heads
        if prepare is not None:
            prepare(params, d_head)
        if zeros:
            return np.zeros((*X_q.shape[:-1], d_model)), np.zeros((*X_q.shape[:-2], n_heads, X_q.shape[-2],
                                                                   X_kv.shape[-2]))

        def split(Y):
            return Y.reshape(*Y.shape[:-1], n_heads, d_head).swapaxes(-3, -2)

        Q, K, V = split(X_q @ params["W_q"]), split(X_kv @ params["W_k"]), split(X_kv @ params["W_v"])
        scores = Q @ T(K) / (math.sqrt(d_head) if scale_scores else 1.0)
        w = ref_softmax(scores)
        heads = w @ V
        merged = heads.swapaxes(-3, -2).reshape(*heads.shape[:-3], X_q.shape[-2], d_model)
        return merged @ params["W_o"], w

    return mha


# --- 5. inputs changed in place -------------------------------------------------------------


def _scale_w_q_in_place(params, d_head):
    params["W_q"] /= math.sqrt(d_head)


def _transpose_in_place(params, d_head):
    for key in ("W_q", "W_k", "W_v", "W_o"):
        params[key][...] = params[key].T.copy()


def _zero_in_place(params, d_head):
    for key in ("W_q", "W_k", "W_v", "W_o"):
        params[key][...] = 0.0


def _store_prescaled(params, d_head):
    params["W_q"] = params["W_q"] / math.sqrt(d_head)


IN_PLACE = {
    "W_q /= sqrt(d_head), scores scaled too": mha_with(_scale_w_q_in_place),
    "every weight transposed in place": mha_with(_transpose_in_place),
    "every weight zeroed, zeros returned": mha_with(_zero_in_place, zeros=True),
    "a pre-scaled W_q stored into the caller's params": mha_with(_store_prescaled, scale_scores=False),
}


@pytest.mark.parametrize("case", list(IN_PLACE))
def test_multi_head_inputs_changed_in_place_fail_with_a_clear_message(case):
    result = check_multi_head(IN_PLACE[case])
    assert not result.passed, f"{case}: passed"
    assert "your function changed its input params[" in result.message, result.message


def test_a_local_pre_scaled_copy_passes():
    def mha(X_q, X_kv, params, n_heads):
        d_head = X_q.shape[-1] // n_heads
        local = {**params, "W_q": params["W_q"] / math.sqrt(d_head)}
        return mha_with(scale_scores=False)(X_q, X_kv, local, n_heads)

    assert check_multi_head(mha).passed


def test_check_function_leaves_the_notebooks_variables_alone():
    params = {"W": np.eye(3)}
    kept = params["W"].copy()

    def answer(X, p):
        p["W"] *= 2.0  # in place: the caller's dict would change
        return X @ p["W"]

    result = check_function("ex", answer, lambda X, p: X @ p["W"], [(np.ones((2, 3)), params)])
    assert np.array_equal(params["W"], kept), "the notebook's params changed"
    assert not result.passed and "changed its input p['W'] in place" in result.message


def test_attention_scaling_q_in_place_fails():
    def sneaky(Q, K, V, mask=None):
        Q /= math.sqrt(Q.shape[-1])  # in place, then the scores are scaled again
        return attention(Q, K, V, mask)

    result = check_attention(sneaky)
    assert not result.passed and "changed its input Q in place" in result.message


# --- 6. dropout must look at x --------------------------------------------------------------


def test_dropout_that_ignores_x_fails():
    result = check_dropout(lambda x, p, rng: np.where(rng.random(np.shape(x)) < p, 0.0, 1 / (1 - p)))
    assert not result.passed and "ignores x" in result.message


# --- 7. softmax with the maximum of the whole array -----------------------------------------


def test_softmax_with_the_global_maximum_fails():
    def global_max(x):
        e = np.exp(x - np.max(x))
        return e / e.sum(axis=-1, keepdims=True)

    result = check_softmax(global_max)
    assert not result.passed and "maximum of the whole array" in result.message


# --- 8. mask tests never skipped -------------------------------------------------------------


def _unmasked(Q, K, V):
    return attention(Q, K, V)


MASK_IGNORED = {
    "mask parameter named attn_mask": lambda Q, K, V, attn_mask=None: _unmasked(Q, K, V),
    "mask taken through *args": lambda *args: _unmasked(*args[:3]),
}


@pytest.mark.parametrize("case", list(MASK_IGNORED))
def test_a_mask_under_another_name_is_still_tested(case):
    result = check_attention(MASK_IGNORED[case])
    assert not result.passed and "the mask is ignored" in result.message, result.message


def test_masks_by_position_pass_when_right():
    assert check_attention(lambda Q, K, V, attn_mask=None: attention(Q, K, V, attn_mask)).passed
    assert check_attention(lambda *args: attention(*args)).passed


def test_no_mask_parameter_fails_where_the_exercise_asks_for_masks():
    result = check_attention(_unmasked, masks=True)
    assert not result.passed and "your function has no mask parameter" in result.message
    assert check_attention(_unmasked, masks=False).passed
    result = check_multi_head(lambda X_q, X_kv, p, h: mha_with()(X_q, X_kv, p, h), masks=True)
    assert not result.passed and "your function has no mask parameter" in result.message


# --- 9. the documented signatures --------------------------------------------------------------


def test_multi_head_with_a_default_n_heads_passes():
    def mha(X_q, X_kv, params, n_heads=2):
        return mha_with()(X_q, X_kv, params, n_heads)

    assert check_multi_head(mha).passed, check_multi_head(mha).message


def test_multi_head_with_keyword_only_n_heads_passes():
    def mha(X_q, X_kv, params, *, n_heads):
        return mha_with()(X_q, X_kv, params, n_heads)

    assert check_multi_head(mha).passed


def test_attention_with_a_required_mask_passes():
    def attn(Q, K, V, mask):
        return attention(Q, K, V, mask)

    result = check_attention(attn)
    assert result.passed, result.message


def test_a_function_that_cannot_be_called_names_the_expected_signature():
    result = check_attention(lambda Q, K: Q)
    assert not result.passed and "cannot be called as fn(Q, K, V" in result.message
    result = check_multi_head(lambda X: X)
    assert not result.passed and "cannot be called as fn(" in result.message


# --- 10. passing without writing the answer -------------------------------------------------


def test_attnlib_itself_refuses_inside_the_answer():
    def self_attention(X, params):
        Q, K, V = (X @ params[w] for w in ("W_q", "W_k", "W_v"))
        return attnlib.scaled_dot_product_attention(Q, K, V)

    result = check_self_attention(self_attention)
    assert not result.passed and result.message.startswith("use your own implementation")
    assert "scaled_dot_product_attention" in result.message


def test_a_wrong_answer_through_attnlib_gets_its_diagnosis_and_the_refusal():
    def no_scaling(Q, K, V, mask=None):
        return attnlib.scaled_dot_product_attention(Q, K, V, mask, scale=1.0)

    result = check_attention(no_scaling)
    assert not result.passed and result.message.startswith("no scaling")
    assert "use your own implementation" in result.message


def test_an_alias_and_a_caught_refusal_still_fail():
    def aliased(Q, K, V, mask=None, f=sdpa_alias):
        return f(Q, K, V, mask)

    def caught(Q, K, V, mask=None):
        try:
            return attnlib.attention.scaled_dot_product_attention(Q, K, V, mask)
        except Exception:
            return attention(Q, K, V, mask)

    for answer in (aliased, caught):
        result = check_attention(answer)
        assert not result.passed and "use your own implementation" in result.message


def test_attnlib_works_again_after_a_check_even_after_a_timeout():
    def slow(Q, K, V, mask=None):
        attnlib.scaled_dot_product_attention(Q, K, V)  # refused
        while True:
            pass

    check_attention(slow, time_limit=0.3)
    check_attention(lambda Q, K, V, mask=None: 1 / 0)
    out, weights = attnlib.scaled_dot_product_attention(np.ones((2, 3)), np.ones((4, 3)), np.ones((4, 1)))
    assert out.shape == (2, 1) and np.allclose(weights, 0.25)


def test_the_exercise_may_use_attnlibs_other_parts():
    """Lab 4 Ex 4 asks for multi-head attention from attnlib's split, attention and merge."""

    def mha(X_q, X_kv, params, n_heads):
        Q = attnlib.split_heads(X_q @ params["W_q"], n_heads)
        K = attnlib.split_heads(X_kv @ params["W_k"], n_heads)
        V = attnlib.split_heads(X_kv @ params["W_v"], n_heads)
        heads, weights = attnlib.scaled_dot_product_attention(Q, K, V)
        return attnlib.merge_heads(heads) @ params["W_o"], weights

    assert check_multi_head(mha).passed
    assert not check_multi_head(lambda *a: attnlib.multi_head_attention(*a)).passed


def test_patching_the_check_from_inside_the_answer_has_no_effect():
    def patching(Q, K, V, mask=None):
        attnlib.checks._attention.close = lambda *a, **k: True
        attnlib.checks._attention._matches = lambda *a, **k: True
        attnlib.checks._result.close = lambda *a, **k: True
        np.allclose = lambda *a, **k: True
        return Q[..., :1] * 0.0 + V[..., :1, :] * 0.0 + 1.0, None

    result = check_attention(patching)
    assert not result.passed
    assert attnlib.checks._attention.close is attnlib.checks._result.close
    assert not np.allclose(0.0, 1.0)


def test_patching_the_check_before_it_runs_has_no_effect():
    saved = attnlib.checks._attention.close
    attnlib.checks._attention.close = lambda *a, **k: True  # an answer cell, before the check cell
    try:
        assert not check_attention(lambda Q, K, V, mask=None: (Q @ T(K)) @ V).passed
    finally:
        attnlib.checks._attention.close = saved
    with pytest.raises(AttributeError, match="cannot be replaced"):
        attnlib.checks.check_attention = lambda *a, **k: True


def test_hard_coded_causal_masks_fail():
    known = {n: np.tril(np.ones((n, n), dtype=bool)) for n in (4, 1, 7)}
    result = check_causal_mask(lambda n: known[n])
    assert not result.passed


# --- 11. float32 answers --------------------------------------------------------------------


def test_float32_answers_pass():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20, 8)) * 50
    assert check_value("ex", X.astype(np.float32), X).passed
    assert check_value("ex", np.float32(12345.678), 12345.678).passed
    assert check_function("ex", lambda A: (A.astype(np.float32) @ A.T.astype(np.float32)), lambda A: A @ A.T,
                          [(X,)]).passed
    assert compare_arrays("ex", np.float32(1e6 / 3), 1e6 / 3).passed
    assert not check_value("ex", X * (1 + 1e-4), X).passed  # a real difference still fails


# --- 12. exercises are not chained ------------------------------------------------------------


def my_softmax(x):  # Exercise 1, not done
    raise NotImplementedError("Hint: subtract the maximum")


def my_attention(Q, K, V, mask=None):  # Exercise 2, right, built on Exercise 1
    scores = Q @ T(K) / math.sqrt(Q.shape[-1])
    if mask is not None:
        scores = np.where(mask, scores, -np.inf)
    weights = my_softmax(scores)
    return weights @ V, weights


def test_an_unsolved_upstream_exercise_does_not_cost_the_next():
    result = check_attention(my_attention, name="Exercise 2", upstream={"my_softmax": (attnlib.softmax, "Exercise 1")})
    assert result.passed, result.message
    assert "Exercise 1 is the cause" in result.message and "Hint" not in result.message
    assert my_softmax.__name__ == "my_softmax" and globals()["my_softmax"] is my_softmax  # put back


def test_a_wrong_downstream_exercise_still_fails():
    def unscaled(Q, K, V, mask=None):
        return my_attention(Q * math.sqrt(Q.shape[-1]), K, V, mask)

    result = check_attention(unscaled, upstream={"my_softmax": (attnlib.softmax, "Exercise 1")})
    assert not result.passed and "no scaling" in result.message


# --- 13. robustness -----------------------------------------------------------------------------


class Unconvertible:
    def __array__(self, *args, **kwargs):
        raise RuntimeError("no")


def test_none_ragged_and_unconvertible_returns_get_plain_words():
    def no_return(Q, K, V, mask=None):
        attention(Q, K, V, mask)

    assert "returned None (a missing return?)" in check_attention(no_return).message
    assert "returned None (a missing return?)" in check_function("ex", lambda x: None, lambda x: x,
                                                                 [(np.ones(2),)]).message
    assert "returned None (a missing return?)" in check_value("ex", lambda: None, 1.0).message
    ragged = check_value("ex", lambda: [[1.0, 2.0], [3.0]], np.ones((2, 2)))
    assert not ragged.passed and "ragged" in ragged.message
    assert "ragged" in check_softmax(lambda x: [[1.0], [1.0, 2.0]]).message
    odd = check_attention(lambda Q, K, V, mask=None: Unconvertible())
    assert not odd.passed and "could not be turned into an array" in odd.message


def test_an_endless_loop_is_stopped_with_a_message():
    def endless(x):
        while True:
            pass

    start = time.monotonic()
    result = check_softmax(endless, time_limit=0.5)
    assert time.monotonic() - start < 5
    assert not result.passed and "did not finish within 0.5 s" in result.message


def test_the_time_limit_works_off_the_main_thread():
    def endless(x):
        while True:
            pass

    box = {}
    worker = threading.Thread(target=lambda: box.setdefault("result", check_softmax(endless, time_limit=0.3)))
    worker.start()
    worker.join(10)
    assert "did not finish within 0.3 s" in box["result"].message


def test_a_long_exception_message_is_cut():
    def loud(x):
        raise ValueError("x" * 100_000)

    result = check_softmax(loud)
    assert not result.passed and len(result.message) < 600 and "more characters" in result.message


def test_the_time_limit_works_in_a_jupyter_kernel(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(textwrap.dedent("""\
        from attnlib.checks import check_softmax
        def endless(x):
            while True:
                pass
        result = check_softmax(endless, time_limit=1)
        print(result.passed, result.message)"""))])
    NotebookClient(nb, timeout=60, kernel_name="python3").execute()
    text = nb.cells[0].outputs[0]["text"]
    assert text.startswith("False") and "did not finish within 1 s" in text


# --- 14. messages that mislead ------------------------------------------------------------------


def test_var_ddof_1_is_named():
    rng = np.random.default_rng(42)
    S = rng.normal(size=(300, 300))
    result = check_value("Exercise 3", lambda: S.var(ddof=1), S.var())
    assert not result.passed and "var(ddof=1)" in result.message


def test_mask_after_softmax_then_renormalised_is_named():
    def renormalised(Q, K, V, mask=None):
        scores = Q @ T(K) / math.sqrt(Q.shape[-1])
        weights = ref_softmax(scores)
        if mask is not None:
            weights = weights * mask
            weights = weights / weights.sum(axis=-1, keepdims=True)
        return weights @ V, weights

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = check_attention(renormalised)
    assert not result.passed and "mask applied after the softmax" in result.message, result.message
    assert "-inf row" not in result.message


def test_an_upper_triangle_causal_mask_is_the_wrong_way_round():
    result = check_causal_mask(lambda n: np.triu(np.ones((n, n), dtype=bool)))
    assert not result.passed and "the mask is the wrong way round" in result.message
    leaky = check_causal_mask(lambda n: np.tril(np.ones((n, n), dtype=bool), k=1))
    assert "future leaking" in leaky.message


def test_self_attention_gets_a_diagnosis_not_internal_shapes():
    def no_scale(X, params):
        Q, K, V = (X @ params[w] for w in ("W_q", "W_k", "W_v"))
        w = ref_softmax(Q @ K.T)
        return w @ V, w

    def weights_only(X, params):
        Q, K = X @ params["W_q"], X @ params["W_k"]
        return ref_softmax(Q @ K.T / 2.0)

    assert check_self_attention(no_scale).message.startswith("no scaling")
    assert "That is the shape of the weights" in check_self_attention(weights_only).message


# --- 15. grading cells --------------------------------------------------------------------------


def test_assert_passed_raises_the_whole_diagnosis_in_short_lines(capsys):
    result = check_softmax(lambda x: np.exp(x) / np.exp(x).sum(axis=-1, keepdims=True))
    with pytest.raises(AssertionError) as info:
        assert_passed(result)
    text = str(info.value)
    assert " ".join(text.split()) == " ".join(str(result).split())
    assert max(len(line) for line in text.splitlines()) <= 64
    assert assert_passed(check_softmax(lambda x: ref_softmax(x))) is None
    assert capsys.readouterr().out.startswith("✓")


def test_switching_off_the_guard_from_inside_the_answer_has_no_effect():
    import attnlib.checks._guard as guard

    def sabotage(Q, K, V, mask=None):
        guard.restore = lambda *a, **k: None
        guard._pristine = {}
        attnlib.checks._attention._matches = lambda *a, **k: True
        return (Q @ T(K)) @ V

    assert not check_attention(sabotage).passed
    assert not check_attention(sabotage).passed  # and again: nothing stayed switched off
    assert guard._pristine and guard.restore.__name__ == "restore"


def test_a_fast_twin_refuses_too(monkeypatch):
    """attnlib.fast holds the same functions, tuned; a twin of the exercise's function refuses as well."""
    import sys
    import types

    fast = types.ModuleType("attnlib.fast")
    exec("import numpy as np\n"  # noqa: S102 (a stand-in for attnlib/fast.py)
         "def softmax(x, axis=-1):\n"
         "    e = np.exp(x - x.max(axis=axis, keepdims=True))\n"
         "    return e / e.sum(axis=axis, keepdims=True)\n", fast.__dict__)
    fast.__dict__["softmax"].__module__ = "attnlib.fast"
    monkeypatch.setitem(sys.modules, "attnlib.fast", fast)
    result = check_softmax(lambda x: fast.softmax(np.asarray(x, dtype=float)))
    assert not result.passed and "use your own implementation" in result.message
