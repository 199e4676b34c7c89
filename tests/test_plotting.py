"""attnlib.plotting: the token strip reads darker = more weight and has a legend; mask plots
have whole-number ticks and a legend."""

import re

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")

from attnlib.plotting import MASK_COLORS, plot_mask, readable_text_colour, token_strip_html  # noqa: E402


def _backgrounds(html):
    """(r, g, b) of each token's background, in token order."""
    return [tuple(int(c) for c in m) for m in re.findall(r"background:rgb\((\d+),(\d+),(\d+)\)", html)]


def _luminance(rgb):
    return 0.2126 * rgb[0] + 0.7152 * rgb[1] + 0.0722 * rgb[2]


def test_strip_darker_means_more_weight():
    weights = np.array([0.05, 0.4, 0.0, 0.25, 0.3])
    html = token_strip_html(list("abcde"), weights, focus=1)
    lum = [_luminance(rgb) for rgb in _backgrounds(html)]
    assert len(lum) == len(weights)
    order = np.argsort(weights)
    assert all(np.diff(np.array(lum)[order]) < 0), "a heavier token must sit on a darker background"
    assert lum[2] > 240, "zero weight is (nearly) white: no ink"


def test_strip_has_visible_legend_and_readable_text():
    html = token_strip_html(["<b>", "cat"], [0.2, 0.8], focus=0)
    legend = html[html.index("attn-strip-legend"):]
    assert "darker = more weight" in legend and "0.80" in legend and "outlined" in legend
    assert "&lt;b&gt;" in html and "<b>" not in html  # tokens are escaped
    for (r, g, b), colour in zip(_backgrounds(html), re.findall(r";color:(#[0-9a-f]+)\"", html),
                                 strict=True):
        assert colour == readable_text_colour((r / 255, g / 255, b / 255))


@pytest.mark.parametrize("weights, focus, message", [
    ([0.5], None, "shape"), ([0.5, -0.1], None, "non-negative"), ([0.5, 0.5], 2, "focus")])
def test_strip_rejects_bad_input(weights, focus, message):
    with pytest.raises(ValueError, match=message):
        token_strip_html(["a", "b"], weights, focus=focus)


def test_mask_plot_ticks_legend_and_colours():
    n = 21
    ax = plot_mask(np.tril(np.ones((n, n), dtype=bool)))
    ticks = [t for t in ax.get_xticks() if 0 <= t <= n - 1]
    assert ticks and all(float(t).is_integer() for t in ticks), ticks
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["allowed (True)", "masked (False)"]
    image = ax.get_images()[0]
    rgba = image.to_rgba(image.get_array())
    allowed, masked = rgba[n - 1, 0, :3], rgba[0, n - 1, :3]
    assert _luminance(allowed) < _luminance(masked) - 0.4, "the two states must differ in grayscale"
    assert matplotlib.colors.to_hex(allowed) == MASK_COLORS["allowed"].lower()
    ax = plot_mask(np.ones((3, 3), dtype=bool), ["x", "y", "z"])
    assert [t.get_text() for t in ax.get_xticklabels()] == ["x", "y", "z"]


def test_mask_plot_rejects_non_boolean():
    with pytest.raises(ValueError, match="boolean"):
        plot_mask(np.ones((3, 3)))
    with pytest.raises(ValueError, match="labels"):
        plot_mask(np.ones((3, 3), dtype=bool), ["a"])


def test_mask_plot_without_legend():
    ax = plot_mask(np.ones((2, 2), dtype=bool), legend=False)
    assert ax.get_legend() is None


def test_check_figures_flags_text_shrunk_below_8pt():
    import check_figures as tool  # tools/check_figures.py
    import matplotlib.pyplot as plt
    for width, fontsize, ok in ((11, 7, False), (8, 11, True)):
        fig, ax = plt.subplots(figsize=(width, 3), dpi=110)
        ax.plot([0, 1], [0, 1])
        ax.set_xlabel("x", fontsize=fontsize)
        ax.set_ylabel("y", fontsize=fontsize)
        ax.tick_params(labelsize=fontsize)
        (smallest, _), problems = tool.check_figure(fig, 672)
        # displayed size: points * (dpi / 96 css px) * (column / figure width in px)
        assert (smallest >= 8) == ok and (not problems) == ok, (width, fontsize, smallest, problems)
        plt.close(fig)
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.plot([0, 1], [0, 1])
    _, problems = tool.check_figure(fig, 672)
    assert any("no x label" in p for p in problems) and any("no y label" in p for p in problems)
    plt.close(fig)


def test_traces_and_readout_drops_each_tip_at_its_score():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from attnlib.plotting import plot_traces_and_readout

    traces, w = np.array([[1.0, 0.0], [0.0, 0.3], [0.3, 0.3]]), np.array([1 / 1.3, 10 / 3 - 1 / 1.3])
    ax = plot_traces_and_readout(traces, w, ("newest", "middle", "oldest"))
    legend = {t.get_text() for t in ax.get_legend().get_texts()}
    # the newest and the middle land on the same point (score 0.77), the oldest on its own (score 1)
    assert legend == {"newest, middle: score 0.77", "oldest: score 1"}, legend
    marks = {line.get_label(): line.get_xydata()[0] for line in ax.lines if line.get_label() in legend}
    assert np.allclose(marks["oldest: score 1"], w / (w @ w)), "the dot sits where the oldest's tip lands"
    plt.close(ax.figure)
    with pytest.raises(ValueError, match="one label per trace"):
        plot_traces_and_readout(traces, w, ("newest",))
    with pytest.raises(ValueError, match="nonzero"):
        plot_traces_and_readout(traces, np.zeros(2), ("a", "b", "c"))
