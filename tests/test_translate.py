"""attnlib.translate: the toy language, the encoder-decoder's gradients, training and scores."""

from __future__ import annotations

import numpy as np
import pytest
from reference import central_differences

from attnlib import translate as tr
from attnlib.masks import causal_mask


def small_model(rng, **kwargs):
    params = tr.init_params(rng, d_model=6, dtype=np.float64, **kwargs)
    params["enc.W_o"] = 0.4 * rng.standard_normal(params["enc.W_o"].shape)  # not zero: every path carries gradient
    return params




@pytest.mark.parametrize("variant", [{}, {"cross_attention": False}, {"source_positions": False}])
def test_whole_model_gradient_matches_central_differences(variant):
    rng = np.random.default_rng(3)
    params = small_model(rng, **variant)
    pairs = [tr.translate_words("the black cat sees a dog".split()),
             tr.translate_words("a fox and the red duck likes the green horse".split())]  # two lengths: padding
    batch = tr.make_batch(pairs)
    _, grads = tr.loss_and_grads(params, batch)
    assert set(grads) == set(params)
    for key in params:
        numeric = central_differences(lambda p: tr.loss(p, batch), params, key)
        scale = max(np.max(np.abs(numeric)), 1e-8)
        assert np.max(np.abs(grads[key] - numeric)) / scale < 1e-6, key
        assert grads[key].shape == params[key].shape and grads[key].dtype == np.float64


def test_padding_and_unused_rows_get_no_gradient():
    rng = np.random.default_rng(0)
    params = small_model(rng)
    batch = tr.make_batch([tr.translate_words("the black cat sees a dog".split())])  # 6 words of 15
    _, grads = tr.loss_and_grads(params, batch)
    assert np.all(grads["P_src"][6:] == 0) and np.all(grads["P_tgt"][7:] == 0)
    assert np.all(grads["E_src"][tr.SRC_ID["horse"]] == 0) and np.any(grads["E_src"][tr.SRC_ID["cat"]] != 0)


def test_padding_does_not_change_a_sentence():
    rng = np.random.default_rng(1)
    params = small_model(rng)
    short = tr.translate_words("a white dog bites the fish".split())
    long = tr.translate_words("the cat and a red fox sees the blue duck and a wolf".split())
    alone, _ = tr.forward(params, *(lambda b: (b.src, b.tgt_in))(tr.make_batch([short])))
    padded, cache = tr.forward(params, *(lambda b: (b.src, b.tgt_in))(tr.make_batch([short, long])))
    np.testing.assert_allclose(padded[0, :7], alone[0], atol=1e-12)
    assert np.all(cache["cross_weights"][0, :, 6:] == 0)  # no weight on the padding


def test_forward_matches_a_plain_loop():
    rng = np.random.default_rng(2)
    params = small_model(rng)
    pair = tr.translate_words("the green horse follows a cat".split())
    batch = tr.make_batch([pair])
    logits, cache = tr.forward(params, batch.src, batch.tgt_in)

    def attend(q_in, kv_in, name, mask=None):
        q, k, v = (a @ params[f"{name}.W_{w}"] for a, w in ((q_in, "q"), (kv_in, "k"), (kv_in, "v")))
        s = q @ k.T / np.sqrt(6)
        if mask is not None:
            s = np.where(mask, s, -np.inf)
        w = np.exp(s - s.max(1, keepdims=True))
        w /= w.sum(1, keepdims=True)
        return (w @ v) @ params[f"{name}.W_o"], w

    x0 = params["E_src"][batch.src[0]] + params["P_src"][:6]
    x = x0 + attend(x0, x0, "enc")[0]
    y = params["E_tgt"][batch.tgt_in[0]] + params["P_tgt"][:7]
    y = y + attend(y, y, "dec", causal_mask(7))[0]
    out, w = attend(y, x, "cross")
    np.testing.assert_allclose(cache["cross_weights"][0], w, atol=1e-12)
    np.testing.assert_allclose(logits[0], (y + out) @ params["U"], atol=1e-12)


def test_translation_moves_each_colour_behind_its_noun():
    p = tr.translate_words("a red fox and the cat sees the grey wolf".split())
    assert p.target == ("un", "renard", "rouge", "et", "le", "chat", "voit", "le", "loup", "gris")
    assert p.alignment == (0, 2, 1, 3, 4, 5, 6, 7, 9, 8)


def test_random_sentences_have_the_grammar():
    rng = np.random.default_rng(5)
    pairs = tr.sample_pairs(400, rng)
    lengths = {len(p.source) for p in pairs}
    assert min(lengths) == 6 and max(lengths) <= tr.MAX_SRC and len(lengths) >= 8  # varied lengths
    assert {p.n_adjectives for p in pairs} == {1, 2, 3, 4}
    for p in pairs:
        assert sum(tr.WORD_CLASS[w] == "verb" for w in p.source) == 1
        assert sorted(p.alignment) == list(range(len(p.source)))  # a permutation
        for i, j in enumerate(p.alignment):
            assert tr.DICTIONARY[p.source[j]] == p.target[i]
            if i != j:  # only a colour and its noun trade places
                assert abs(i - j) == 1 and {tr.WORD_CLASS[p.source[i]], tr.WORD_CLASS[p.source[j]]} == {"noun",
                                                                                                          "colour"}
        assert sum(i != j for i, j in enumerate(p.alignment)) == 2 * p.n_adjectives
    words = {w for p in pairs for w in p.source}
    assert words == set(tr.DICTIONARY)  # every word occurs


def test_held_out_sentences_are_distinct_reproducible_and_never_trained_on():
    held = tr.held_out_pairs(200)
    assert len({p.source for p in held}) == 200 and held == tr.held_out_pairs(200)
    exclude = frozenset(p.source for p in held)
    train = tr.sample_pairs(3000, np.random.default_rng(0), exclude=exclude)
    assert not exclude & {p.source for p in train}
    two = tr.sample_pairs(50, np.random.default_rng(1), n_adjectives=2)
    assert all(p.n_adjectives == 2 for p in two)


def test_scores_of_a_hand_made_perfect_alignment(monkeypatch):
    """alignment_scores reads the argmax of the cross-attention rows: feed it weights we know."""
    pairs = tr.sample_pairs(20, np.random.default_rng(4))
    batch = tr.make_batch(pairs)
    real_forward = tr.forward

    def forward_with(weights):
        def fake(params, src, tgt_in):
            logits, cache = real_forward(params, src, tgt_in)
            return logits, dict(cache, cross_weights=weights)
        return fake

    params = tr.init_params(np.random.default_rng(0))
    perfect = np.zeros((*batch.tgt_in.shape, batch.src.shape[1]))
    for b, p in enumerate(pairs):
        perfect[b, np.arange(len(p.alignment)), list(p.alignment)] = 1
    monkeypatch.setattr(tr, "forward", forward_with(perfect))
    assert tr.alignment_scores(params, pairs) == {k: 1.0 for k in
                                                 ("content", "crossing", "function", "noun", "colour", "verb")}
    diagonal = np.zeros_like(perfect)  # no crossing: each French word reads the English word at its own position
    for b, p in enumerate(pairs):
        diagonal[b, np.arange(len(p.alignment)), np.arange(len(p.alignment))] = 1
    monkeypatch.setattr(tr, "forward", forward_with(diagonal))
    s = tr.alignment_scores(params, pairs)
    assert s["crossing"] == 0.0 and s["function"] == 1.0 and s["verb"] == 1.0 and 0 < s["content"] < 1


def test_a_short_training_run_learns_to_translate_and_align():
    held = tr.held_out_pairs(100)
    run = tr.train(np.random.default_rng(3), 250, exclude=frozenset(p.source for p in held),
                   probe=held[0], checkpoint_every=50)
    assert run.losses[:10].mean() > 2.0 > 0.1 > run.losses[-10:].mean()
    assert tr.sentence_accuracy(run.params, held) >= 0.8
    scores = tr.alignment_scores(run.params, held)
    assert scores["content"] >= 0.8 and scores["crossing"] >= 0.8, scores
    assert list(run.checkpoint_steps) == [0, 50, 100, 150, 200, 250]
    assert run.checkpoints[-1].cross_weights.shape == (len(held[0].target), len(held[0].source))


def test_greedy_decoding_and_accuracy_of_an_untrained_model():
    held = tr.held_out_pairs(20)
    params = tr.init_params(np.random.default_rng(0))
    out = tr.greedy_decode(params, tr.make_batch(held).src)
    assert out.shape == (20, tr.MAX_SRC + 1)
    assert tr.sentence_accuracy(params, held) == 0.0


def test_bad_input_raises_clearly():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="unknown English words"):
        tr.translate_words(["the", "zebra"])
    with pytest.raises(TypeError, match="split"):
        tr.translate_words("the cat")
    with pytest.raises(ValueError, match="followed by a noun"):
        tr.translate_words("the black sees".split())
    with pytest.raises(ValueError, match="followed by a noun"):
        tr.translate_words("the cat sees black".split())
    with pytest.raises(TypeError, match="rng"):
        tr.sample_pairs(3, 0)
    with pytest.raises(ValueError, match=">= 1"):
        tr.sample_pairs(0, rng)
    with pytest.raises(ValueError, match="at most 4"):
        tr.sample_pairs(2, rng, n_adjectives=5)
    with pytest.raises(TypeError, match="Pair"):
        tr.make_batch([("the", "cat")])
    params = tr.init_params(rng)
    with pytest.raises(ValueError, match="2-D int"):
        tr.forward(params, np.zeros((1, 4)), np.zeros((1, 4), int))
    with pytest.raises(ValueError, match="only 15 positions"):
        tr.forward(params, np.ones((1, 16), int), np.ones((1, 3), int))
    with pytest.raises(ValueError, match="0..23"):
        tr.forward(params, np.full((1, 4), 24), np.ones((1, 3), int))
    with pytest.raises(ValueError, match="same batch size"):
        tr.forward(params, np.ones((2, 4), int), np.ones((1, 3), int))
    with pytest.raises(ValueError, match="all padding"):
        tr.forward(params, np.zeros((1, 4), int), np.ones((1, 3), int))
    with pytest.raises(ValueError, match="no cross-attention"):
        tr.alignment_scores(tr.init_params(rng, cross_attention=False), tr.held_out_pairs(2))
    with pytest.raises(ValueError, match="encoder_lr_scale"):
        tr.train(rng, 1, encoder_lr_scale=0)
    with pytest.raises(TypeError, match="n_steps"):
        tr.train(rng, 1.5)
    with pytest.raises(TypeError, match="probe"):
        tr.train(rng, 1, probe="the cat")


def test_one_head_equals_attnlib_multi_head_attention_and_its_backward():
    import attnlib
    from attnlib.backward import multi_head_attention_backward

    rng = np.random.default_rng(7)
    params = small_model(rng)
    X_q, X_kv = rng.normal(size=(2, 4, 6)), rng.normal(size=(2, 5, 6))
    mask = attnlib.padding_mask([5, 3], 5)  # (2, 1, 5)
    out, saved = tr.attend(params, "cross", X_q, X_kv, mask)
    sub = {w: params[f"cross.{w}"] for w in ("W_q", "W_k", "W_v", "W_o")}
    ref, ref_w = attnlib.multi_head_attention(X_q, X_kv, sub, 1, mask)
    np.testing.assert_allclose(out, ref, atol=1e-12)
    np.testing.assert_allclose(saved["weights"], ref_w[:, 0], atol=1e-12)
    d_out = rng.normal(size=out.shape)
    grads = {}
    dX_q, dX_kv = tr.attend_backward(params, "cross", saved, d_out, grads)
    ref_dq, ref_dkv, ref_dp = multi_head_attention_backward(X_q, X_kv, sub, 1, d_out, mask)
    np.testing.assert_allclose(dX_q, ref_dq, atol=1e-12)
    np.testing.assert_allclose(dX_kv, ref_dkv, atol=1e-12)
    for w in sub:
        np.testing.assert_allclose(grads[f"cross.{w}"], ref_dp[w], atol=1e-12)


def test_training_view_shows_cross_attention_without_a_causal_mask():
    from attnlib.widgets import TrainingView

    w = np.full((2, 1, 3, 4), 0.25)  # 2 checkpoints, 1 layer, 3 French queries, 4 English keys
    view = TrainingView([0, 10], w, ["le", "chat", "noir"], [0, 10], [3.0, 1.0], key_tokens=["the", "black", "cat",
                                                                                              "sees"], causal=False)
    assert view.key_tokens == ["the", "black", "cat", "sees"] and view.causal is False
    assert view.weights.shape == (1, 3, 4)
    with pytest.raises(ValueError, match="causal view needs"):
        TrainingView([0, 10], w, ["le", "chat", "noir"], [0, 10], [3.0, 1.0], key_tokens=list("abcd"))
    with pytest.raises(ValueError, match="key_tokens has 3 entries"):
        TrainingView([0, 10], w, ["le", "chat", "noir"], [0, 10], [3.0, 1.0], key_tokens=list("abc"), causal=False)
    with pytest.raises(TypeError, match="causal"):
        TrainingView([0, 10], w[:, :, :3, :3], ["a", "b", "c"], [0, 10], [3.0, 1.0], causal="no")
    square = TrainingView([0, 10], w[:, :, :3, :3], ["a", "b", "c"], [0, 10], [3.0, 1.0])
    assert square.key_tokens == [] and square.causal is True  # the induction page's call is unchanged


# --- Lab 4's check of Exercise 8 (crossing rows) ------------------------------------------------

def _rows(a):
    return [i for i, j in enumerate(a) if i != j]


@pytest.mark.parametrize("buggy, words", [
    (lambda a: np.array(a) != np.arange(len(a)), "True/False"),
    (lambda a: [i + 1 for i in _rows(a)], "counted from 1"),
    (lambda a: [i for i, j in enumerate(a) if i == j], "stay on the diagonal"),
    (lambda a: [i for i, j in enumerate(a) if j == i + 1], "only the French nouns"),
    (lambda a: [i for i, j in enumerate(a) if j == i - 1], "only the colours"),
    (lambda a: _rows(a)[::-1], "increasing order"),
    (lambda a: None, "None"),
])
def test_crossing_rows_check_names_the_mistake(buggy, words):
    from attnlib.checks import check_crossing_rows

    for _ in range(3):  # fresh sentences at every check
        result = check_crossing_rows(buggy)
        assert not result.passed and words in result.message, result.message


def test_crossing_rows_check_passes_right_answers_and_never_prints_the_rows():
    from attnlib.checks import check_crossing_rows

    assert check_crossing_rows(_rows).passed
    assert check_crossing_rows(lambda a: np.flatnonzero(np.array(a) != np.arange(len(a)))).passed
    wrong = check_crossing_rows(lambda a: [0])
    assert not wrong.passed and "rows here" in wrong.message and "[0]" in wrong.message
