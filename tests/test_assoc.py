"""attnlib.assoc: associative recall learned with W_q and W_k."""

from __future__ import annotations

import numpy as np
import pytest

from attnlib import assoc


def test_recall_batch_properties():
    b = assoc.recall_batch(64, 10, np.random.default_rng(0))
    assert b.X.shape == (64, 10, 48) and b.x_query.shape == (64, 1, 48)
    np.testing.assert_allclose(np.linalg.norm(b.X[..., :16], axis=-1), 1)  # unit keys
    assert np.all(b.X[..., 16:].sum(-1) == 1)  # one-hot values
    rows = np.arange(64)
    np.testing.assert_array_equal(b.x_query[:, 0, :16], b.X[rows, b.where, :16])
    assert np.all(b.x_query[:, 0, 16:] == 0)
    np.testing.assert_array_equal(b.X[rows, b.where, 16:].argmax(-1), b.target)


def test_tag_width_names():
    # D_TAG is the tag width; D_KEY, its older name, keeps working with the same value
    assert assoc.D_TAG == assoc.D_KEY == 16 and assoc.D_MODEL == assoc.D_TAG + assoc.N_VALUES
    b = assoc.recall_batch(3, 5, np.random.default_rng(2))
    np.testing.assert_allclose(np.linalg.norm(b.X[..., :assoc.D_TAG], axis=-1), 1)


def test_gradients_match_central_differences():
    rng = np.random.default_rng(1)
    params = assoc.init_params(rng)
    data = assoc.recall_batch(5, 7, rng)
    _, _, grads = assoc.loss_and_grads(params, data)
    h = 1e-6
    for key in params:
        # 120 random entries of each matrix, from the key rows and the value rows alike
        flat = rng.choice(params[key].size, size=120, replace=False)
        numeric, analytic = [], []
        for idx in zip(*np.unravel_index(flat, params[key].shape), strict=True):
            plus = {k: v.copy() for k, v in params.items()}
            minus = {k: v.copy() for k, v in params.items()}
            plus[key][idx] += h
            minus[key][idx] -= h
            numeric.append((assoc.loss_and_grads(plus, data)[0] - assoc.loss_and_grads(minus, data)[0]) / (2 * h))
            analytic.append(grads[key][idx])
        numeric, analytic = np.array(numeric), np.array(analytic)
        assert np.max(np.abs(analytic - numeric)) / np.max(np.abs(numeric)) < 1e-6, key


def test_the_oracle_comparison_solves_the_task_and_training_learns_it():
    data = assoc.recall_batch(300, 24, np.random.default_rng(2))
    oracle = np.zeros((48, 16))
    oracle[:16] = 4 * np.eye(16)  # compare key halves only, scaled: the rule to be learned
    assert assoc.accuracy({"W_q": oracle, "W_k": oracle}, data) > 0.99
    held_out = assoc.held_out(np.random.default_rng(3), per_size=50)
    run = assoc.train(np.random.default_rng(0), 200, evaluate=held_out, checkpoint_steps=(0, 200))
    assert run.accuracies[0] < 0.5 and run.accuracies[-1] > 0.97
    assert [s for s, _ in run.checkpoints] == [0, 200]
    assert assoc.steps_to_accuracy(run.accuracies, 0.9) is not None


def test_bad_input():
    with pytest.raises(ValueError, match="n_pairs"):
        assoc.recall_batch(2, 0, np.random.default_rng(0))
    with pytest.raises(TypeError, match="rng"):
        assoc.recall_batch(2, 3, None)


def test_scale_and_init_std_reach_the_scores():
    rng = np.random.default_rng(4)
    params = assoc.init_params(rng, d_k=64, std=1.0)
    assert params["W_q"].shape == (48, 64) and 0.9 < params["W_q"].std() < 1.1
    data = assoc.recall_batch(50, 12, rng)
    _, w_scaled = assoc.forward(params, data)  # the default scale, 1/sqrt(64)
    _, w_explicit = assoc.forward(params, data, scale=1 / 8)
    _, w_unscaled = assoc.forward(params, data, scale=1.0)
    np.testing.assert_allclose(w_scaled, w_explicit)
    assert w_unscaled.max(-1).mean() > w_scaled.max(-1).mean() + 0.2  # eight times larger scores: sharper
    h = 1e-6  # the gradient of the unscaled loss is the gradient of the unscaled forward
    _, _, grads = assoc.loss_and_grads(params, data, scale=1.0)
    plus, minus = {k: v.copy() for k, v in params.items()}, {k: v.copy() for k, v in params.items()}
    plus["W_k"][3, 5] += h
    minus["W_k"][3, 5] -= h
    loss_plus, loss_minus = (assoc.loss_and_grads(w, data, scale=1.0)[0] for w in (plus, minus))
    numeric = (loss_plus - loss_minus) / (2 * h)
    assert abs(numeric - grads["W_k"][3, 5]) < 1e-6 * max(1.0, abs(numeric))
    with pytest.raises(ValueError, match="scale"):
        assoc.train(np.random.default_rng(0), 1, scale=0.0)
    with pytest.raises(ValueError, match="std"):
        assoc.init_params(np.random.default_rng(0), std=-1.0)
