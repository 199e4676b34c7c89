"""Diagrams draw the arrays they are given, and refuse arrays that do not fit together."""

import matplotlib
import numpy as np
import pytest

import attnlib as al
from attnlib import diagrams

matplotlib.use("Agg")


@pytest.fixture
def example():
    rng = np.random.default_rng(0)
    Q, K, V = rng.normal(size=(3, 4)), rng.normal(size=(5, 4)), rng.normal(size=(5, 2))
    return Q, K, V


def texts(fig):
    return " ".join(t.get_text() for ax in fig.axes for t in ax.texts + [ax.title])


def test_pipeline_labels_the_shapes_of_its_arrays(example):
    Q, K, V = example
    mask = al.causal_mask(3, 5)
    _, weights = al.scaled_dot_product_attention(Q, K, V, mask)
    words = texts(diagrams.pipeline(Q, K, V, mask, weights=weights))
    for shape in ("3×4", "4×5", "3×5", "5×2", "3×2", "1/√4"):
        assert shape in words
    assert "masked" in words
    assert "A = softmax(masked S)" in words and "O = AV" in words  # the book's symbols: weights A, output O


def test_pipeline_refuses_weights_of_another_shape(example):
    Q, K, V = example
    with pytest.raises(ValueError, match=r"weights must have shape \(3, 5\)"):
        diagrams.pipeline(Q, K, V, weights=np.ones((5, 3)))
    with pytest.raises(ValueError, match="do not fit"):
        diagrams.pipeline(Q, K[:, :3], V, weights=np.ones((3, 5)))


def test_multi_head_shows_d_head():
    rng = np.random.default_rng(1)
    params = al.init_multi_head(12, 3, rng)
    X = rng.normal(size=(5, 12))
    _, weights = al.multi_head_attention(X, X, params, 3)
    words = texts(diagrams.multi_head(X, params, 3, weights))
    assert "d_head = d_model / H = 4" in words and "head 2" in words and "head 3" not in words
    with pytest.raises(ValueError, match="not divisible"):
        diagrams.multi_head(X, params, 5, weights)


def test_masks_mark_each_pair():
    fig = diagrams.masks(["a", "b", "c"], al.causal_mask(3), al.padding_mask([2], 3))
    causal, padding = fig.axes
    marks = [t.get_text() for t in causal.texts]
    assert marks.count("✓") == 6 and marks.count("✗") == 3  # the lower triangle with its diagonal
    assert [t.get_text() for t in padding.texts].count("✗") == 3  # the pad key, for every query
    with pytest.raises(TypeError, match="boolean"):
        diagrams.masks(["a"], np.ones((1, 1)), np.ones((1, 1), bool))


def test_rnn_and_blockwise_diagrams():
    words = texts(diagrams.rnn_versus_attention(["x", "y", "z"], 16))
    assert "h_3" in words and "16 numbers" in words and "all 3 states" in words
    s = np.array([0.5, 2.0, -1.0, 3.0])
    blocks = [slice(0, 2), slice(2, 4)]
    running = [(2.0, np.exp(-1.5) + 1.0), (3.0, np.exp(s - 3.0).sum())]
    assert "m = 3.00" in texts(diagrams.online_softmax(s, blocks, running))
    with pytest.raises(ValueError, match="after block 1"):
        diagrams.online_softmax(s, blocks, [running[0], (2.0, 1.0)])
    with pytest.raises(ValueError, match="at least two"):
        diagrams.rnn_versus_attention(["x"], 4)
