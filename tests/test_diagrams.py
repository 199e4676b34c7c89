"""Diagrams draw the arrays they are given, and refuse arrays that do not fit together."""

import matplotlib
import numpy as np
import pytest

import attnlib as al
from attnlib import diagrams
from attnlib.plotting import heatmap_grid

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
    for shape in ("3×4", "4×5", "3×5", "5×2", "3×2"):
        assert shape in words
    assert "masked" in words
    assert "A = softmax(masked γS)" in words and "O = AV" in words  # the book's symbols: weights A, output O
    assert "γS, γ = 1/√4" in words and "softmax(S)" not in words  # the panel after scaling is γS


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


def test_pipeline_draws_s_and_gamma_s_on_one_colour_scale(example):
    Q, K, V = example
    _, weights = al.scaled_dot_product_attention(Q, K, V)
    fig = diagrams.pipeline(Q, K, V, weights=weights)
    cells = [p.get_facecolor()[:3] for p in fig.axes[0].patches]
    # drawn in order: Q (3×4), Kᵀ (4×5), S (3×5), γS (3×5), A (3×5), ...
    drawn_S, drawn_gS = np.array(cells[32:47]), np.array(cells[47:62])
    S = Q @ K.T
    lo, hi = min(S.min(), S.min() / 2), max(S.max(), S.max() / 2)  # γ = 1/√4 = 1/2: one range for both
    cmap = matplotlib.colormaps["cividis"]
    np.testing.assert_allclose(drawn_S, cmap((S.ravel() - lo) / (hi - lo))[:, :3], atol=1e-6)
    np.testing.assert_allclose(drawn_gS, cmap((S.ravel() / 2 - lo) / (hi - lo))[:, :3], atol=1e-6)
    A_cells = np.array(cells[62:77])
    np.testing.assert_allclose(A_cells, cmap(weights.ravel() / weights.max())[:, :3], atol=1e-6)  # 0..max


def _page_diagrams():
    """Every diagram, drawn from inputs of the size its page uses."""
    rng = np.random.default_rng(3)
    Q, K, V = rng.normal(size=(4, 8)), rng.normal(size=(6, 8)), rng.normal(size=(6, 5))  # chapter 3
    _, W = al.scaled_dot_product_attention(Q, K, V)
    mask = al.causal_mask(4, 6)
    _, W_masked = al.scaled_dot_product_attention(Q, K, V, mask)
    params = al.init_multi_head(12, 3, rng)  # chapter 4: d_model 12, 3 heads, 5 tokens
    X = rng.normal(size=(5, 12))
    _, W_heads = al.multi_head_attention(X, X, params, 3)
    words = al.toy.toy_translation(np.random.default_rng(0))
    tokens = list(al.toy.TOY_SENTENCE)
    padding = al.padding_mask(np.array([3]), len(tokens))
    s = rng.normal(size=6)
    blocks = (slice(0, 3), slice(3, 6))
    running = [(s[:b.stop].max(), np.exp(s[:b.stop] - s[:b.stop].max()).sum()) for b in blocks]
    return {
        "pipeline": lambda: diagrams.pipeline(Q, K, V, weights=W),
        "pipeline, masked": lambda: diagrams.pipeline(Q, K, V, mask, weights=W_masked),
        "multi_head": lambda: diagrams.multi_head(X, params, 3, W_heads),
        "self_and_cross": lambda: diagrams.self_and_cross(words["source"], words["target"]),
        "masks": lambda: diagrams.masks(tokens, al.causal_mask(len(tokens)), padding,
                                        padding_tokens=tokens[:3] + ["<pad>"] * (len(tokens) - 3)),
        "rnn_versus_attention": lambda: diagrams.rnn_versus_attention([f"x{t + 1}" for t in range(6)], 32),
        "online_softmax": lambda: diagrams.online_softmax(s, blocks, running),
        "induction_circuit": lambda: diagrams.induction_circuit(*_repeated(12), 13),
        "induction_circuit, duplicate": lambda: diagrams.induction_circuit(*_repeated(12), 13,
                                                                         circuit="duplicate-token"),
        "heatmap_grid": lambda: heatmap_grid([W, W_masked], titles=["plain", "causal"]),
    }


def _repeated(L):
    """A sequence of L tokens (two-digit numbers) repeated once, with ideal layer-0 and layer-1 weights."""
    tokens = [10 + k for k in range(L)] * 2
    w0, w1 = np.zeros((2 * L, 2 * L)), np.zeros((2 * L, 2 * L))
    w0[np.arange(1, 2 * L), np.arange(2 * L - 1)] = 1.0  # previous token
    w1[np.arange(L, 2 * L), np.arange(1, L + 1)] = 1.0  # the token after the earlier copy
    return tokens, w0, w1


def test_induction_circuit_draws_the_weights_it_is_given():
    tokens, w0, w1 = _repeated(8)
    w0[4, 3], w1[11, 4] = 0.37, 0.81  # key = 11 - 8 + 1 = 4 reads its previous token 3
    words = texts(diagrams.induction_circuit(tokens, w0, w1, 11))
    assert "layer 0: 0.37 (previous token)" in words and "layer 1: 0.81" in words
    assert f"predicts {tokens[4]}" in words and "position 4" in words
    with pytest.raises(ValueError, match="second copy"):
        diagrams.induction_circuit(tokens, w0, w1, 3)
    with pytest.raises(ValueError, match="shape"):
        diagrams.induction_circuit(tokens, w0[:4], w1, 11)
    with pytest.raises(ValueError, match="circuit"):
        diagrams.induction_circuit(tokens, w0, w1, 11, circuit="copying")


@pytest.mark.parametrize("name", list(_page_diagrams()))
def test_every_diagram_is_readable_in_the_column(name):
    """Shown in the book's column, no text of a diagram is smaller than 8 pt (tools/check_figures.py)."""
    import check_figures as tool  # tools/check_figures.py
    import matplotlib.pyplot as plt
    plt.rcParams["figure.dpi"] = 110  # as the pages set it
    try:
        fig = _page_diagrams()[name]()
        (smallest, text), problems = tool.check_figure(fig, tool.COLUMN_PX["book"])
        assert smallest >= tool.MIN_PT and not problems, (name, smallest, text, problems)
        plt.close(fig)
    finally:
        matplotlib.rcdefaults()
