"""attnlib.induction: the two-layer attention-only model, its gradients, data and scores."""

from __future__ import annotations

import numpy as np
import pytest
from reference import central_differences

from attnlib import induction as ind
from attnlib import nn
from attnlib.masks import causal_mask


def small_model(rng, dtype=np.float64):
    return ind.init_params(rng, n_vocab=10, d_model=8, d_head=4, n_positions=10, dtype=dtype)


def loss_only(params, tokens):
    """The training loss from the forward pass alone (no gradients): what central differences need."""
    logits, _ = ind.forward(params, tokens)
    return nn.cross_entropy(logits[:, :-1], tokens[:, 1:])[0]




@pytest.mark.parametrize("length", [2, 5])
def test_whole_model_gradient_matches_central_differences(length):
    rng = np.random.default_rng(length)
    params = small_model(rng)
    tokens = ind.repeated_sequences(3, length, rng, n_vocab=10)
    _, _, grads = ind.loss_and_grads(params, tokens)
    assert set(grads) == set(params)
    for key in params:
        numeric = central_differences(lambda p: loss_only(p, tokens), params, key)
        scale = max(np.max(np.abs(numeric)), 1e-8)
        assert np.max(np.abs(grads[key] - numeric)) / scale < 1e-6, key
        assert grads[key].shape == params[key].shape and grads[key].dtype == np.float64


def test_unused_positions_get_zero_gradient():
    rng = np.random.default_rng(0)
    params = small_model(rng)
    _, _, grads = ind.loss_and_grads(params, ind.repeated_sequences(2, 3, rng, n_vocab=10))  # T = 6 of 10
    assert np.all(grads["P"][6:] == 0) and np.any(grads["P"][:6] != 0)


def test_forward_matches_a_plain_loop():
    rng = np.random.default_rng(1)
    params = small_model(rng)
    tokens = ind.repeated_sequences(2, 3, rng, n_vocab=10)
    logits, cache = ind.forward(params, tokens)
    for b in range(2):
        x = params["E"][tokens[b]] + params["P"][:6]
        for layer in (1, 2):
            q, k, v = (x @ params[f"W_{n}{layer}"] for n in "qkv")
            s = q @ k.T / np.sqrt(4)
            s[~causal_mask(6)] = -np.inf
            w = np.exp(s - s.max(1, keepdims=True))
            w /= w.sum(1, keepdims=True)
            np.testing.assert_allclose(cache["weights"][layer - 1, b], w, atol=1e-12)
            x = x + (w @ v) @ params[f"W_o{layer}"]
        np.testing.assert_allclose(logits[b], x @ params["U"], atol=1e-12)


def test_float32_stays_float32():
    rng = np.random.default_rng(2)
    params = ind.init_params(rng)
    tokens = ind.repeated_sequences(4, 8, rng)
    loss, _, grads = ind.loss_and_grads(params, tokens)
    assert all(g.dtype == np.float32 for g in grads.values())
    loss64, _, grads64 = ind.loss_and_grads({k: v.astype(np.float64) for k, v in params.items()}, tokens)
    assert loss == pytest.approx(loss64, rel=1e-5)
    for k in grads:
        np.testing.assert_allclose(grads[k], grads64[k], rtol=0, atol=1e-4 * np.abs(grads64[k]).max())


@pytest.mark.parametrize("length", [1, 8, 16, 32])
def test_repeated_sequences_are_r_plus_r_with_distinct_tokens(length):
    x = ind.repeated_sequences(50, length, np.random.default_rng(length))
    assert x.shape == (50, 2 * length) and np.issubdtype(x.dtype, np.integer)
    assert np.array_equal(x[:, :length], x[:, length:])
    assert all(len(set(row[:length])) == length for row in x)
    assert x.min() >= 0 and x.max() < ind.N_VOCAB


def test_repeated_sequences_cover_the_vocabulary_and_are_reproducible():
    a = ind.repeated_sequences(200, 8, np.random.default_rng(5))
    b = ind.repeated_sequences(200, 8, np.random.default_rng(5))
    assert np.array_equal(a, b)
    assert set(np.unique(a)) == set(range(ind.N_VOCAB))


def test_bad_input_raises_clearly():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="length must be in 1..32"):
        ind.repeated_sequences(2, 33, rng)
    with pytest.raises(TypeError, match="rng"):
        ind.repeated_sequences(2, 4, 0)
    params = ind.init_params(rng)
    with pytest.raises(ValueError, match="positions"):
        ind.forward(params, np.zeros((1, 40), int))
    with pytest.raises(ValueError, match="0..31"):
        ind.forward(params, np.full((1, 4), 32))
    with pytest.raises(ValueError, match="2-D int"):
        ind.forward(params, np.zeros((1, 4)))
    with pytest.raises(ValueError, match="T, T"):
        ind.induction_score(np.ones((4, 3)))
    with pytest.raises(ValueError, match="even T"):
        ind.induction_score(np.ones((5, 5)))


def hand_made(L, offset_rows):
    """A (2L, 2L) pattern: each query i puts all weight on offset_rows(i)."""
    T = 2 * L
    w = np.zeros((T, T))
    for i in range(T):
        w[i, max(0, min(i, offset_rows(i, L)))] = 1.0
    return w


def test_scores_on_hand_made_patterns():
    L = 5
    induction = hand_made(L, lambda i, L: i - L + 1)
    previous = hand_made(L, lambda i, L: i - 1)
    duplicate = hand_made(L, lambda i, L: i - L if i >= L else i)  # first copy: itself
    uniform = np.tril(np.ones((2 * L, 2 * L)))
    uniform /= uniform.sum(1, keepdims=True)
    assert ind.induction_score(induction) == 1.0
    assert ind.previous_token_score(previous) == 1.0
    assert ind.duplicate_token_score(duplicate) == 1.0
    # each pattern scores 0 on the others' targets (they differ for L > 1)
    assert ind.induction_score(previous) == 0 and ind.induction_score(duplicate) == 0
    assert ind.duplicate_token_score(previous) == 0 and ind.previous_token_score(duplicate) == 0
    expected = np.mean([1 / (i + 1) for i in range(L, 2 * L)])
    assert ind.induction_score(uniform) == pytest.approx(expected)
    stacked = np.stack([induction, previous])  # batch dimensions are kept
    np.testing.assert_array_equal(ind.induction_score(stacked), [1.0, 0.0])


def test_steps_to():
    v = np.r_[np.full(100, 3.0), np.full(100, 0.05)]
    assert ind.steps_to(v, 0.1, window=10) == 110
    assert ind.steps_to(v, 0.01, window=10) is None


def test_training_records_checkpoints_and_lowers_the_loss():
    run = ind.train(np.random.default_rng(0), 60, checkpoint_every=20)
    assert list(run.checkpoint_steps) == [0, 20, 40, 60]
    T = len(run.probe)
    assert all(c.weights.shape == (2, T, T) for c in run.checkpoints)
    np.testing.assert_allclose(run.checkpoints[-1].weights.sum(-1), 1, atol=1e-5)
    assert np.mean(run.losses[-10:]) < np.mean(run.losses[:10])  # learning, not the full phase change
    assert run.scores(2, ind.induction_score).shape == (4,)


def test_train_shared_trains_once_and_gives_the_run_train_gives(tmp_path, monkeypatch):
    fresh = ind.train(np.random.default_rng(3), 20, checkpoint_every=10, lengths=5)
    first = ind.train_shared(3, 20, checkpoint_every=10, lengths=5, cache_dir=tmp_path)
    assert len(list(tmp_path.glob("*.npz"))) == 1
    monkeypatch.setattr(ind, "train", lambda *a, **k: pytest.fail("trained again"))
    again = ind.train_shared(3, 20, checkpoint_every=10, lengths=5, cache_dir=tmp_path)
    for run in (first, again):
        np.testing.assert_array_equal(run.losses, fresh.losses)
        np.testing.assert_array_equal(run.probe, fresh.probe)
        assert run.params.keys() == fresh.params.keys()
        assert all(np.array_equal(run.params[k], fresh.params[k]) for k in fresh.params)
        assert list(run.checkpoint_steps) == [0, 10, 20]
        np.testing.assert_array_equal(run.checkpoints[-1].weights, fresh.checkpoints[-1].weights)
    monkeypatch.undo()
    other = ind.train_shared(3, 20, checkpoint_every=10, lengths=6, cache_dir=tmp_path)  # other options: trained
    assert len(list(tmp_path.glob("*.npz"))) == 2 and len(other.probe) == 12
    with pytest.raises(ValueError, match="params"):
        ind.train_shared(3, 20, params=fresh.params, cache_dir=tmp_path)


def test_offset_score_is_the_general_score():
    w = np.random.default_rng(0).dirichlet(np.ones(8), size=(3, 8))  # (3, 8, 8), rows sum to 1
    L = 4
    np.testing.assert_allclose(ind.offset_score(w, L - 1), ind.induction_score(w))
    np.testing.assert_allclose(ind.offset_score(w, L), ind.duplicate_token_score(w))
    loop = [np.mean([w[b, i, i - 2] for i in range(L, 2 * L)]) for b in range(3)]
    np.testing.assert_allclose(ind.offset_score(w, 2), loop)
    with pytest.raises(ValueError, match="offset"):
        ind.offset_score(w, 5)


# --- the TrainingView widget (Python side; tests/test_browser_training.py drives the browser) ---

def test_training_view_holds_the_checkpoints_of_a_run():
    from attnlib.widgets import TrainingView

    run = ind.train(np.random.default_rng(1), 20, checkpoint_every=10)
    W = np.stack([c.weights for c in run.checkpoints])  # (3, 2, T, T)
    tokens = [str(t) for t in run.probe]
    view = TrainingView(run.checkpoint_steps, W, tokens, np.arange(1, 21), run.losses, reference=np.log(32))
    assert view.checkpoint == 2 and view.step == 20  # the last checkpoint by default
    np.testing.assert_allclose(view.weights, W[-1], atol=5e-4)  # rounded to 3 decimals for the page
    view.checkpoint = 0
    np.testing.assert_allclose(view.weights, W[0], atol=5e-4)
    with pytest.raises(Exception, match="checkpoint must be in 0..2"):
        view.checkpoint = 3
    assert "TrainingView(n_checkpoints=3" in repr(view)


def test_training_view_rejects_bad_input():
    from attnlib.widgets import TrainingView

    W = np.full((2, 1, 2, 2), 0.5)
    with pytest.raises(ValueError, match="strictly increasing"):
        TrainingView([5, 5], W, ["a", "b"], [0, 1], [1.0, 0.5])
    with pytest.raises(ValueError, match="n_checkpoints=3"):
        TrainingView([0, 1, 2], W, ["a", "b"], [0, 1], [1.0, 0.5])
    with pytest.raises(ValueError, match="tokens has 3 entries"):
        TrainingView([0, 1], W, ["a", "b", "c"], [0, 1], [1.0, 0.5])
    with pytest.raises(ValueError, match="one length"):
        TrainingView([0, 1], W, ["a", "b"], [0, 1, 2], [1.0, 0.5])
    with pytest.raises(ValueError, match="finite"):
        TrainingView([0, 1], np.full((2, 1, 2, 2), np.nan), ["a", "b"], [0, 1], [1.0, 0.5])


# --- prefix matching, copying and ablation: the measurements of the induction-heads page ---

def test_prefix_matching_score_keeps_its_old_name():
    w = np.random.default_rng(3).dirichlet(np.ones(6), size=6)
    np.testing.assert_array_equal(ind.prefix_matching_score(w), ind.induction_score(w))
    np.testing.assert_array_equal(ind.prefix_matching_score(w), ind.offset_score(w, 2))


def test_ov_circuit_is_the_product_of_four_matrices():
    rng = np.random.default_rng(4)
    p = small_model(rng)
    for layer in (1, 2):
        loop = np.array([[p["E"][s] @ p[f"W_v{layer}"] @ p[f"W_o{layer}"] @ p["U"][:, t] for t in range(10)]
                         for s in range(10)])
        np.testing.assert_allclose(ind.ov_circuit(p, layer), loop, atol=1e-12)
    with pytest.raises(ValueError, match="layer must be an int in 1..2"):
        ind.ov_circuit(p, 3)


def test_copying_scores_on_known_matrices():
    rng = np.random.default_rng(5)
    assert ind.copying_share(3 * np.eye(8) + 0.1 * rng.random((8, 8))) == 1.0
    assert ind.copying_share(np.roll(np.eye(8), 1, axis=1)) == 0.0
    assert ind.eigenvalue_copying(np.diag([1.0, 3.0, 0.5])) == pytest.approx(1.0)
    assert ind.eigenvalue_copying(-2 * np.eye(4)) == pytest.approx(-1.0)
    assert abs(ind.eigenvalue_copying(np.diag([1.0, -1.0]))) < 1e-12
    q, _ = np.linalg.qr(rng.standard_normal((8, 8)))
    similar = q @ np.diag(np.arange(1.0, 9.0)) @ q.T  # positive eigenvalues in another basis
    assert ind.eigenvalue_copying(similar) == pytest.approx(1.0)
    random = [ind.eigenvalue_copying(rng.standard_normal((32, 32))) for _ in range(20)]
    assert abs(np.mean(random)) < 0.2
    with pytest.raises(ValueError, match="square"):
        ind.copying_share(np.ones((3, 4)))


def test_ablation_that_removes_nothing_is_the_forward_pass():
    rng = np.random.default_rng(6)
    p = small_model(rng)
    x = ind.repeated_sequences(5, 4, rng, n_vocab=10)
    logits, cache = ind.forward(p, x)
    for replace in ("zero", "mean"):
        kept, w = ind.forward_layer0_ablated(p, x, replace=replace, positions=np.zeros(8, bool))
        np.testing.assert_allclose(kept, logits, atol=1e-12)
        np.testing.assert_allclose(w, cache["weights"], atol=1e-12)
    # the mean over a batch of one sequence is that sequence: a mean-ablation changes nothing
    one, _ = ind.forward_layer0_ablated(p, x[:1], replace="mean")
    np.testing.assert_allclose(one, logits[:1], atol=1e-12)


def test_zero_ablation_everywhere_is_silencing_layer_0():
    rng = np.random.default_rng(7)
    p = small_model(rng)
    x = ind.repeated_sequences(3, 5, rng, n_vocab=10)
    silenced = dict(p, W_o1=np.zeros_like(p["W_o1"]))
    logits, w = ind.forward_layer0_ablated(p, x)
    expected, cache = ind.forward(silenced, x)
    np.testing.assert_allclose(logits, expected, atol=1e-12)
    np.testing.assert_allclose(w, cache["weights"], atol=1e-12)


def test_ablation_reaches_only_the_named_inputs_and_positions():
    rng = np.random.default_rng(8)
    p = small_model(rng)
    x = ind.repeated_sequences(3, 5, rng, n_vocab=10)
    _, cache = ind.forward(p, x)
    # removed from the values or the residual only: layer 1's weights are unchanged
    for into in ("values", "residual"):
        logits, w = ind.forward_layer0_ablated(p, x, into=into)
        np.testing.assert_allclose(w, cache["weights"], atol=1e-12)
    # removed from the keys only: queries unchanged, so row i of layer 1 changes only through keys
    _, w_keys = ind.forward_layer0_ablated(p, x, into="keys")
    assert not np.allclose(w_keys[1], cache["weights"][1])
    # removed at the last position only: every earlier query row of layer 1 is unchanged (causal)
    last = np.zeros(10, bool)
    last[-1] = True
    logits, w = ind.forward_layer0_ablated(p, x, positions=last)
    np.testing.assert_allclose(w[1, :, :-1], cache["weights"][1, :, :-1], atol=1e-12)
    np.testing.assert_allclose(logits[:, :-1], ind.forward(p, x)[0][:, :-1], atol=1e-12)


def test_ablation_rejects_bad_input():
    rng = np.random.default_rng(9)
    p = small_model(rng)
    x = ind.repeated_sequences(2, 3, rng, n_vocab=10)
    with pytest.raises(ValueError, match='replace must be "zero" or "mean"'):
        ind.forward_layer0_ablated(p, x, replace="random")
    with pytest.raises(ValueError, match="into must name"):
        ind.forward_layer0_ablated(p, x, into=("keys", "heads"))
    with pytest.raises(ValueError, match=r"shape \(6,\)"):
        ind.forward_layer0_ablated(p, x, positions=np.ones(5, bool))
    one_layer = {k: v for k, v in p.items() if not k.endswith("2")}
    with pytest.raises(ValueError, match="two-layer"):
        ind.forward_layer0_ablated(one_layer, x)


def test_repeat_loss_matches_loss_and_grads():
    rng = np.random.default_rng(10)
    p = small_model(rng)
    x = ind.repeated_sequences(4, 4, rng, n_vocab=10)
    assert ind.repeat_loss(ind.forward(p, x)[0], x) == pytest.approx(ind.loss_and_grads(p, x)[1])
