"""Each layer is a forward/backward pair behind one validation boundary (issue 21).

- the backward uses what the forward kept (a cache) and recomputes nothing;
- validation happens once, at the public call: the formula functions behind it never re-check;
- the backward accepts every params dict the forward accepts, under one rule;
- each failure the backward (or a training helper) used to let through raw or silently gets the
  behaviour its forward twin has: a clear named error, or the right answer (float16 in float32).
"""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest

import attnlib
from attnlib import assoc, attention, induction, multihead, nn
from attnlib.backward import attention_backward, multi_head_attention_backward, softmax_backward
from attnlib.transformer import layer_norm

ROOT = Path(__file__).resolve().parent.parent
softmax = importlib.import_module("attnlib.softmax")  # the module (attnlib.softmax is the function)


def _refuse(*args, **kwargs):
    raise AssertionError("called, but the cache should have made this unnecessary")


def _layer_params(rng, d_model=8, n_heads=2, d_ff=16):
    """An encoder layer's whole dict: the attention's parameters and the rest of the layer."""
    p = attnlib.init_multi_head(d_model, n_heads, rng, bias=True)
    p.update(ln_1_gamma=np.ones(d_model), ln_1_beta=np.zeros(d_model), ln_2_gamma=np.ones(d_model),
             ln_2_beta=np.zeros(d_model), W_1=rng.normal(size=(d_model, d_ff)), b_1=np.zeros(d_ff),
             W_2=rng.normal(size=(d_ff, d_model)), b_2=np.zeros(d_model))
    return p


# --- the cache: the backward recomputes nothing ------------------------------------------------

def test_attention_backward_with_the_forwards_weights_computes_no_forward(monkeypatch):
    rng = np.random.default_rng(0)
    Q, K, V = rng.normal(size=(2, 4, 3)), rng.normal(size=(5, 3)), rng.normal(size=(5, 2))
    mask = attnlib.causal_mask(4, 5)
    dO = rng.normal(size=(2, 4, 2))
    expected = attention_backward(Q, K, V, dO, mask)  # recomputes the forward
    _, weights = attnlib.scaled_dot_product_attention(Q, K, V, mask)
    monkeypatch.setattr(attention, "_attention", _refuse)
    got = attention_backward(Q, K, V, dO, mask, weights=weights)
    for g, e in zip(got, expected, strict=True):
        np.testing.assert_allclose(g, e, rtol=1e-12, atol=1e-14)


def test_multi_head_backward_with_the_cache_computes_no_forward(monkeypatch):
    rng = np.random.default_rng(1)
    X_q, X_kv = rng.normal(size=(3, 4, 8)), rng.normal(size=(6, 8))  # X_kv shared by the batch
    params = attnlib.init_multi_head(8, 2, rng, bias=True)
    mask = rng.random((3, 4, 6)) < 0.7
    dO = rng.normal(size=(3, 4, 8))
    expected = multi_head_attention_backward(X_q, X_kv, params, 2, dO, mask)
    out, weights, cache = attnlib.multi_head_attention(X_q, X_kv, params, 2, mask, return_cache=True)
    np.testing.assert_array_equal(out, attnlib.multi_head_attention(X_q, X_kv, params, 2, mask)[0])
    for name in ("_multi_head_attention", "_project", "check_multi_head"):
        monkeypatch.setattr(multihead, name, _refuse)
    monkeypatch.setattr(attention, "_attention", _refuse)
    dX_q, dX_kv, d_params = multi_head_attention_backward(X_q, X_kv, params, 2, dO, mask, cache=cache)
    np.testing.assert_allclose(dX_q, expected[0], rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(dX_kv, expected[1], rtol=1e-12, atol=1e-13)
    assert dX_kv.shape == X_kv.shape and sorted(d_params) == sorted(params)
    for name in params:
        np.testing.assert_allclose(d_params[name], expected[2][name], rtol=1e-12, atol=1e-13)


def test_a_cache_of_the_wrong_kind_is_refused():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(3, 4))
    params = attnlib.init_multi_head(4, 2, rng)
    with pytest.raises(TypeError, match="cache must be the MultiHeadCache"):
        multi_head_attention_backward(X, X, params, 2, np.ones((3, 4)), cache={"weights": None})
    with pytest.raises(ValueError, match=r"weights must have the shape of the forward's weights .*\(3, 3\)"):
        attention_backward(X, X, X, np.ones((3, 4)), weights=np.ones((3, 4)))


# --- validation once, at the public boundary -----------------------------------------------------

def test_internal_calls_skip_the_public_checks(monkeypatch):
    rng = np.random.default_rng(3)
    X = rng.normal(size=(5, 8))
    params = attnlib.init_multi_head(8, 2, rng)
    expected = attnlib.multi_head_attention(X, X, params, 2)
    # multi-head attention checks its own arguments once, then runs the formulas unchecked
    monkeypatch.setattr(attention, "check_attention", _refuse)
    monkeypatch.setattr(softmax, "check_softmax_input", _refuse)
    monkeypatch.setattr(softmax, "check_axis", _refuse)
    got = attnlib.multi_head_attention(X, X, params, 2)
    np.testing.assert_array_equal(got[0], expected[0])
    multi_head_attention_backward(X, X, params, 2, np.ones((5, 8)))


def test_scaled_dot_product_attention_does_not_call_the_public_softmax(monkeypatch):
    rng = np.random.default_rng(4)
    Q, K, V = (rng.normal(size=(4, 3)) for _ in range(3))
    expected = attnlib.scaled_dot_product_attention(Q, K, V)
    monkeypatch.setattr(softmax, "check_softmax_input", _refuse)
    np.testing.assert_array_equal(attnlib.scaled_dot_product_attention(Q, K, V)[1], expected[1])


@pytest.mark.parametrize("bad, name", [(0, "Q"), (1, "K"), (2, "V")])
@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_nan_or_inf_inputs_are_still_named_though_checked_on_the_results(bad, name, value):
    rng = np.random.default_rng(5)
    arrays = [rng.normal(size=(3, 4)) for _ in range(3)]
    arrays[bad][1, 2] = value
    with pytest.raises(ValueError, match=f"{name} must be finite, but 1 entries are NaN or infinite"):
        attnlib.scaled_dot_product_attention(*arrays)


def test_validation_lives_in_one_module_named_for_it():
    assert not (ROOT / "attnlib" / "_checks.py").exists()
    for path in (ROOT / "attnlib").glob("*.py"):
        text = path.read_text()
        assert "def _check_rng" not in text and "def _positive_int" not in text, path.name
    assert "LAYER_KEYS" not in (ROOT / "attnlib" / "multihead.py").read_text()  # the transformer's own names


# --- one params rule for the forward and the backward --------------------------------------------

def test_the_backward_accepts_an_encoder_layers_whole_dict():
    rng = np.random.default_rng(6)
    layer = _layer_params(rng)
    attention_only = {k: layer[k] for k in ("W_q", "W_k", "W_v", "W_o", "b_q", "b_k", "b_v", "b_o")}
    X, dO = rng.normal(size=(5, 8)), rng.normal(size=(5, 8))
    out_layer, _ = attnlib.multi_head_attention(X, X, layer, 2)
    np.testing.assert_array_equal(out_layer, attnlib.multi_head_attention(X, X, attention_only, 2)[0])
    dX_q, dX_kv, d_params = multi_head_attention_backward(X, X, layer, 2, dO)
    ref = multi_head_attention_backward(X, X, attention_only, 2, dO)
    np.testing.assert_array_equal(dX_q, ref[0])
    assert sorted(d_params) == sorted(attention_only)  # no entry for W_1 ...: grads.update(d_params) is safe
    for name in attention_only:
        np.testing.assert_array_equal(d_params[name], ref[2][name])


@pytest.mark.parametrize("key, meant", [("b_O", "b_o"), ("Wq", "W_q"), ("w_k", "W_k")])
def test_a_misspelt_attention_key_is_refused_by_both_passes(key, meant):
    rng = np.random.default_rng(7)
    X = rng.normal(size=(3, 8))
    p = {**_layer_params(rng), key: np.eye(8)}
    message = rf"unknown keys \['{key}'\]; did you mean \['{meant}'\]"
    with pytest.raises(ValueError, match=message):
        attnlib.multi_head_attention(X, X, p, 2)
    with pytest.raises(ValueError, match=message):
        multi_head_attention_backward(X, X, p, 2, np.ones((3, 8)))


# --- the backward does what the forward does: float16 in float32, clear errors --------------------

def test_float16_attention_backward_is_computed_in_float32():
    # dA = dO V^T = 300 * 300 overflows float16 (65504), but dS, dQ, dK and dV are small
    Q = K = np.zeros((2, 1), np.float16)
    V = np.full((2, 1), 300, np.float16)
    dO = np.full((2, 1), 300, np.float16)
    dQ, dK, dV = attention_backward(Q, K, V, dO)
    assert dQ.dtype == dK.dtype == dV.dtype == np.float16
    ref = attention_backward(*(a.astype(np.float64) for a in (Q, K, V, dO)))
    for g, r in zip((dQ, dK, dV), ref, strict=True):
        np.testing.assert_allclose(g, r, rtol=1e-3)
    np.testing.assert_array_equal(dV, [[300.0], [300.0]])  # each value gets half of both queries' 300


def test_float16_softmax_backward_is_computed_in_float32():
    A = np.array([0.5, 0.5], np.float16)
    dA = np.array([60000.0, 60000.0], np.float16)  # dA * A sums to 60000; in float16 the sum is fine,
    got = softmax_backward(A, dA)  # but 2 x 60000 in a float16 accumulation is not
    assert got.dtype == np.float16
    np.testing.assert_array_equal(got, [0.0, 0.0])


def test_softmax_backward_axis_none_is_a_clear_error():
    with pytest.raises(TypeError, match="axis must be an integer, got None"):
        softmax_backward([0.5, 0.5], [1.0, 0.0], axis=None)
    with pytest.raises(ValueError, match="axis 2 is out of range"):
        softmax_backward([0.5, 0.5], [1.0, 0.0], axis=2)


def test_a_refused_adam_step_changes_nothing():
    adam = nn.Adam({"w": np.zeros(3), "b": np.zeros(2)}, lr=0.1)
    params = {"w": np.ones(3), "b": np.ones(2)}
    adam.step(params, {"w": np.ones(3), "b": np.ones(2)})
    t, m, v = adam.t, {k: x.copy() for k, x in adam.m.items()}, {k: x.copy() for k, x in adam.v.items()}
    with pytest.raises(ValueError, match="the gradient of b must be finite"):
        adam.step(params, {"w": np.ones(3), "b": np.array([1.0, np.nan])})  # w comes first: it was updated before
    with pytest.raises(ValueError, match="b should have shape"):
        adam.step(params, {"w": np.ones(3), "b": np.ones(3)})
    assert adam.t == t
    for name in m:
        np.testing.assert_array_equal(adam.m[name], m[name])
        np.testing.assert_array_equal(adam.v[name], v[name])


def test_adam_takes_numpy_scalars_and_names_bad_settings():
    adam = nn.Adam({"w": np.zeros(2)}, lr=np.float32(1e-3), betas=(np.float64(0.9), 0.999))
    assert adam.lr == pytest.approx(1e-3) and type(adam.lr) is float
    with pytest.raises(TypeError, match="lr must be a real number, got '0.1'"):
        nn.Adam({"w": np.zeros(2)}, lr="0.1")
    with pytest.raises(ValueError, match="lr must be a positive finite number"):
        nn.Adam({"w": np.zeros(2)}, lr=-1.0)
    with pytest.raises(ValueError, match=r"betas must be two numbers in \[0, 1\)"):
        nn.Adam({"w": np.zeros(2)}, betas=(0.9, 1.0))
    with pytest.raises(TypeError, match="betas must be two numbers"):
        nn.Adam({"w": np.zeros(2)}, betas=0.9)


@pytest.mark.parametrize("X, dtype", [([300.0, -300.0, 0.0, 0.0], np.float16),
                                      ([1e200, -1e200, 0.0, 0.0], np.float64),
                                      ([1.7e308, -1.7e308, 0.0, 0.0], np.float64)])
def test_layer_norm_of_rows_whose_variance_overflows(X, dtype):
    X = np.array(X, dtype)
    gamma, beta = np.ones(4, dtype), np.zeros(4, dtype)
    got = layer_norm(X, gamma, beta)
    assert got.dtype == dtype
    expected = layer_norm(np.array([1.0, -1.0, 0.0, 0.0]), np.ones(4), np.zeros(4))  # the same row, scaled
    np.testing.assert_allclose(got, expected, rtol=1e-3 if dtype == np.float16 else 1e-12)
    assert np.abs(got).max() > 1  # not the zeros it used to return


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_layer_norm_refuses_nan_and_infinity(value):
    with pytest.raises(ValueError, match="X must be finite, but 1 entries are NaN or infinite"):
        layer_norm(np.array([[1.0, value, 0.0]]), np.ones(3), np.zeros(3))


def test_training_helpers_name_bad_step_counts_and_pair_ranges():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="n_steps must be an integer >= 0, got -1"):
        induction.train(rng, -1)
    with pytest.raises(ValueError, match="checkpoint_every must be an integer >= 1, got 0"):
        induction.train(rng, 2, checkpoint_every=0)
    with pytest.raises(TypeError, match="n_steps must be an integer, got 2.5"):
        induction.train(rng, 2.5)
    with pytest.raises(ValueError, match=r"pairs must be \(low, high\) with low <= high, got \(5, 2\)"):
        assoc.train(rng, 2, pairs=(5, 2))
    with pytest.raises(TypeError, match="pairs must be two integers"):
        assoc.train(rng, 2, pairs=5)
    with pytest.raises(ValueError, match="n_steps must be an integer >= 0, got -3"):
        assoc.train(rng, -3)


# --- the package itself ---------------------------------------------------------------------------

def test_a_failed_attribute_lookup_imports_nothing():
    code = ("import sys, attnlib; before = set(sys.modules); hasattr(attnlib, '__wrapped__'); "
            "hasattr(attnlib, 'no_such_name'); print(sorted(m for m in set(sys.modules) - before "
            "if m.startswith('attnlib')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    with pytest.raises(AttributeError, match="attnlib.rnn_encode is a chapter helper: use attnlib.rnn.rnn_encode"):
        attnlib.rnn_encode  # noqa: B018


def test_the_version_comes_from_pyproject():
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert attnlib.__version__ == version
    assert not re.search(r'__version__ = "\d+\.\d+', (ROOT / "attnlib" / "__init__.py").read_text())
    release = (ROOT / "tools" / "release.py").read_text()
    assert "_set(Path(__file__)" not in release and "written = [ROOT / \"pyproject.toml\", *labs" in release
