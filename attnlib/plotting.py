"""Small plotting helpers. They take arrays; they never compute attention."""

from __future__ import annotations

import numpy as np

from attnlib._validate import as_bool

#: A sequential colour map that reads in grayscale and for colour-blind readers.
CMAP = "cividis"

#: Okabe–Ito colours, safe for the common forms of colour blindness.
COLORS = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")


def readable_text_colour(rgb) -> str:
    """Black or white, whichever contrasts more with the background colour ``rgb`` (0..1).

    Uses WCAG 2 relative luminance; the better of the two always reaches at least 4.58:1.

    Examples
    --------
    >>> readable_text_colour((0.0, 0.13, 0.3)), readable_text_colour((1.0, 0.9, 0.2))
    ('#fff', '#000')
    """
    def linear(c):
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (linear(float(c)) for c in rgb[:3])
    L = 0.2126 * r + 0.7152 * g + 0.0722 * b
    return "#fff" if 1.05 / (L + 0.05) > (L + 0.05) / 0.05 else "#000"


def plot_heatmap(weights, x_labels=None, y_labels=None, *, ax=None, title=None,
                 xlabel="key", ylabel="query", annotate=None, vmax=None, fontsize=8, colorbar=True):
    """Draw a weight matrix ``(n_q, n_k)`` as a heatmap with labelled axes.

    Returns the matplotlib ``Axes``.  ``annotate`` writes the numbers in the cells
    (default: when the matrix is at most 10 x 10), in ``fontsize`` points.  A boolean
    matrix (a mask) is drawn as 1 = True, 0 = False, its cells marked ✓ (allowed) and
    ✗ (masked).  ``colorbar=False`` leaves the colour bar out (for panels that share one,
    see :func:`heatmap_grid`).
    """
    import matplotlib.pyplot as plt

    is_mask = np.asarray(weights).dtype == bool
    W = np.asarray(weights, dtype=float)
    if W.ndim != 2:
        raise ValueError(f"weights must be 2-D (n_q, n_k), got shape {W.shape}")
    for name, labels, size in (("x_labels", x_labels, W.shape[1]), ("y_labels", y_labels, W.shape[0])):
        if labels is not None and len(labels) != size:
            raise ValueError(f"{name} has {len(labels)} labels but the matrix has {size} along that axis")
    if ax is None:
        _, ax = plt.subplots(figsize=(0.5 * W.shape[1] + 2.5, 0.45 * W.shape[0] + 1.5))
    vmax = float(np.nanmax(W)) if vmax is None else vmax
    image = ax.imshow(W, cmap=CMAP, vmin=0.0, vmax=vmax if vmax > 0 else 1.0, aspect="auto")
    if colorbar:
        ax.figure.colorbar(image, ax=ax, label="allowed" if is_mask else "weight", fraction=0.046, pad=0.04)
    ax.set_xticks(range(W.shape[1]), x_labels if x_labels is not None else range(W.shape[1]),
                  rotation=45 if x_labels is not None else 0, ha="right" if x_labels is not None else "center")
    ax.set_yticks(range(W.shape[0]), y_labels if y_labels is not None else range(W.shape[0]))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    if as_bool(annotate, "annotate") if annotate is not None else max(W.shape) <= 10:
        for (i, j), w in np.ndenumerate(W):
            text = ("✓" if w else "✗") if is_mask else f"{w:.2f}"
            ax.text(j, i, text, ha="center", va="center", fontsize=fontsize,
                    color=readable_text_colour(image.cmap(image.norm(w))))
    return ax


def heatmap_grid(matrices, x_labels=None, y_labels=None, *, titles=None, ncols: int = 2, width: float = 8.4,
                 vmax=None, xlabel="key", ylabel="query", annotate=None, fontsize=10, colorbar_label="weight"):
    """Weight matrices side by side (``ncols`` to a row) on **one** colour scale, with one colour bar.

    Panels that are compared share a scale (0 to ``vmax``, by default the largest weight of
    all), so equal colours mean equal weights.  The figure is ``width`` inches wide
    (8.4 by default: with 10 pt numbers, text stays at 8 pt or more in the book's 672 px
    column).  ``x_labels`` and ``y_labels`` are one list for every panel or a list per
    panel.  Returns the ``Figure``.

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> fig = heatmap_grid([np.eye(3), np.full((3, 3), 1 / 3)], ["a", "b", "c"], ["a", "b", "c"],
    ...                    titles=["one-hot", "uniform"])
    >>> len(fig.axes)  # two panels and one colour bar
    3
    """
    import matplotlib.pyplot as plt

    mats = [np.asarray(M, dtype=float) for M in matrices]
    if not mats or any(M.ndim != 2 for M in mats):
        raise ValueError(f"matrices must be a non-empty list of 2-D arrays, got shapes {[M.shape for M in mats]}")
    if isinstance(ncols, bool) or not isinstance(ncols, (int, np.integer)) or ncols < 1:
        raise ValueError(f"ncols must be a positive int, got {ncols!r}")
    if titles is not None and len(titles) != len(mats):
        raise ValueError(f"{len(titles)} titles for {len(mats)} matrices")

    def per_panel(labels):
        if labels is None or (len(labels) and isinstance(labels[0], str)):
            return [labels] * len(mats)
        if len(labels) != len(mats):
            raise ValueError(f"{len(labels)} lists of labels for {len(mats)} matrices")
        return list(labels)

    xs, ys = per_panel(x_labels), per_panel(y_labels)
    vmax = max(float(np.nanmax(M)) for M in mats) if vmax is None else float(vmax)
    ncols = min(ncols, len(mats))
    nrows = -(-len(mats) // ncols)
    panel = width / ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(width, 0.9 * panel * nrows + 0.4), layout="constrained",
                             squeeze=False)
    for k, ax in enumerate(axes.flat):
        if k >= len(mats):
            ax.set_visible(False)
            continue
        plot_heatmap(mats[k], xs[k], ys[k], ax=ax, title=titles[k] if titles else None, xlabel=xlabel,
                     ylabel=ylabel, annotate=annotate, vmax=vmax, fontsize=fontsize, colorbar=False)
    image = axes.flat[0].get_images()[0]
    fig.colorbar(image, ax=axes, label=colorbar_label + " (one scale for all panels)", shrink=0.8)
    return fig


#: Light to dark: the token strip's backgrounds, so that more ink means more weight.
#: One hue, monotone in lightness, so it reads in grayscale and for colour-blind readers.
STRIP_CMAP = "Blues"

#: Mask plots: allowed cells dark (Okabe–Ito blue), masked cells light grey.
MASK_COLORS = {"allowed": COLORS[0], "masked": "#E4E4E4"}


def token_strip_html(tokens, weights, focus=None) -> str:
    """The tokens as an HTML strip, each on a background whose darkness shows its weight.

    Darker means more weight (``STRIP_CMAP``, scaled from 0 to the largest weight); each
    token also shows its weight as a number, and a visible legend under the strip says
    how to read it. ``focus`` (an index) outlines the token that gives the weights.

    Parameters
    ----------
    tokens : sequence of str, length n
    weights : array_like, shape (n,), non-negative
    focus : int, optional

    Examples
    --------
    >>> html = token_strip_html(["a", "cat"], [0.2, 0.8], focus=1)
    >>> "darker = more weight" in html and html.count('title="weight') == 2
    True
    """
    import html as _html

    from matplotlib import colormaps

    w = np.asarray(weights, dtype=float)
    tokens = [str(t) for t in tokens]
    if w.ndim != 1 or len(w) != len(tokens):
        raise ValueError(f"weights must have shape ({len(tokens)},), one per token, got shape {w.shape}")
    if not np.all(np.isfinite(w)) or (w < 0).any():
        raise ValueError("weights must be finite and non-negative")
    if focus is not None and not 0 <= focus < len(tokens):
        raise ValueError(f"focus must index a token (0 .. {len(tokens) - 1}), got {focus}")
    cmap = colormaps[STRIP_CMAP]
    top = w.max() if w.max() > 0 else 1.0

    def css(x):
        r, g, b, _ = cmap(x)
        return f"rgb({r * 255:.0f},{g * 255:.0f},{b * 255:.0f})", readable_text_colour((r, g, b))

    spans = []
    for j, (tok, wj) in enumerate(zip(tokens, w, strict=True)):
        background, text = css(wj / top)
        border = "3px solid #D55E00" if j == focus else "3px solid transparent"
        spans.append(
            f'<span style="display:inline-block;text-align:center;margin:2px;padding:2px 5px;'
            f'border-radius:4px;border:{border};background:{background};color:{text}" '
            f'title="weight {wj:.3f}"><span style="font-size:1.1em">{_html.escape(tok)}</span><br>'
            f'<span style="font-size:0.8em">{wj:.2f}</span></span>')
    ramp = ", ".join(css(x)[0] for x in np.linspace(0, 1, 9))
    who = f"&ldquo;{_html.escape(tokens[focus])}&rdquo;" if focus is not None else "the query"
    label = (f"Tokens of the sentence on backgrounds shaded by the attention weight that {who} gives them; "
             f"darker backgrounds mean more weight, from white for 0 to dark blue for {top:.2f}.")
    legend = (
        '<div class="attn-strip-legend" style="display:flex;flex-wrap:wrap;align-items:center;'
        'gap:0.3em 0.6em;font-size:0.9em;margin-top:0.2em">'
        '<span>Background: darker = more weight.</span>'
        '<span style="display:inline-flex;align-items:center;gap:0.4em"><span>0</span>'
        f'<span aria-hidden="true" style="display:inline-block;width:8em;height:0.9em;'
        f'border:1px solid currentColor;background:linear-gradient(to right, {ramp})"></span>'
        f'<span>{top:.2f}</span></span>'
        + (f'<span><span aria-hidden="true" style="display:inline-block;width:1em;height:0.9em;'
           f'vertical-align:middle;border:3px solid #D55E00;border-radius:3px"></span> '
           f'outlined: {who}, the token whose weights these are.</span>' if focus is not None else "")
        + '<span>The number under each token is its weight.</span></div>')
    return (f'<div class="attn-strip"><div role="img" aria-label="{label}" style="line-height:2.6">'
            + "".join(spans) + "</div>" + legend + "</div>")


def plot_mask(mask, labels=None, *, ax=None, title=None, xlabel="key", ylabel="query", legend=True):
    """Draw a boolean mask ``(n_q, n_k)`` as a grid: allowed cells dark, masked cells light.

    ``mask[i, j]`` is True when query i may attend to key j. Ticks sit on whole positions
    (or carry ``labels``, one per position) and a legend names the two colours.
    ``legend=False`` leaves the legend out (for the second of two panels side by side).
    Returns the matplotlib ``Axes``.

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> ax = plot_mask(np.tril(np.ones((3, 3), dtype=bool)), ["a", "b", "c"])
    >>> [t.get_text() for t in ax.get_legend().get_texts()]
    ['allowed (True)', 'masked (False)']
    """
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch
    from matplotlib.ticker import MaxNLocator

    M = np.asarray(mask)
    if M.ndim != 2 or M.dtype != bool:
        raise ValueError(f"mask must be a 2-D boolean array (n_q, n_k), got dtype {M.dtype} and shape {M.shape}")
    if labels is not None and (len(labels) != M.shape[0] or len(labels) != M.shape[1]):
        raise ValueError(f"labels has {len(labels)} entries but the mask has shape {M.shape}")
    if ax is None:
        _, ax = plt.subplots(figsize=(min(0.3 * M.shape[1] + 2.5, 8), min(0.3 * M.shape[0] + 1.5, 7)))
    cmap = ListedColormap([MASK_COLORS["masked"], MASK_COLORS["allowed"]])
    ax.imshow(M.astype(float), cmap=cmap, vmin=0, vmax=1, interpolation="nearest")
    # thin white lines between cells, so single cells can be counted
    ax.set_xticks(np.arange(-0.5, M.shape[1]), minor=True)
    ax.set_yticks(np.arange(-0.5, M.shape[0]), minor=True)
    ax.grid(which="minor", color="white", linewidth=0.6)
    ax.tick_params(which="minor", length=0)
    if labels is not None:
        ax.set_xticks(range(M.shape[1]), labels, rotation=90)
        ax.set_yticks(range(M.shape[0]), labels)
    else:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    if not legend:
        return ax
    handles = [Patch(facecolor=MASK_COLORS["allowed"], edgecolor="0.3", label="allowed (True)"),
               Patch(facecolor=MASK_COLORS["masked"], edgecolor="0.3", label="masked (False)")]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False, borderaxespad=0)
    return ax


def plot_traces_and_readout(traces, w, names, *, ax=None, colors=None, line_length: float = 0.66):
    """Draw 2-number traces as arrows and a readout ``w`` as a line through the origin.

    Each trace's dot product with ``w`` is where its tip lands when dropped onto the line at a right
    angle (dotted, a small square at the foot), times the length of ``w``: the score ``w`` gives it.
    Each landing point is a dot named in a legend with its score (the highest filled); traces that land
    on the same point share one. ``traces`` is ``(n, 2)``, ``w`` is ``(2,)``,
    ``names`` one label per trace. Returns the matplotlib ``Axes``.
    """
    import matplotlib.pyplot as plt

    traces, w = np.asarray(traces, dtype=float), np.asarray(w, dtype=float)
    if traces.ndim != 2 or traces.shape[1] != 2 or w.shape != (2,) or not np.any(w):
        raise ValueError(f"traces must be (n, 2) and w a nonzero (2,), got {traces.shape} and {w.shape}")
    if len(names) != len(traces):
        raise ValueError(f"names must give one label per trace: {len(names)} for {len(traces)}")
    if ax is None:
        _, ax = plt.subplots(figsize=(5.6, 2.9))
    colors = colors or (COLORS[0], COLORS[1], COLORS[5], COLORS[2], COLORS[3])
    scores = traces @ w  # (n,)
    feet = np.outer(scores, w) / (w @ w)  # (n, 2): the foot of each drop-line
    unit = w / np.linalg.norm(w)  # along the readout's line
    across = np.array([unit[1], -unit[0]])  # at a right angle to it
    end = line_length * unit
    ax.plot([0, end[0]], [0, end[1]], color="0.55", lw=2.5, solid_capstyle="round", zorder=1)
    ax.annotate(f"direction of the readout $w$ = [{w[0]:.2f}, {w[1]:.2f}]", xy=end,
                xytext=(end[0] + 0.04, end[1] + 0.04), fontsize=9, color="0.35", va="center")
    for i, (trace, foot, name) in enumerate(zip(traces, feet, names, strict=True)):
        color = colors[i % len(colors)]
        ax.annotate("", xy=trace, xytext=(0, 0), arrowprops=dict(arrowstyle="-|>", color=color, lw=2), zorder=3)
        ax.plot([trace[0], foot[0]], [trace[1], foot[1]], ls=":", color=color, lw=1.3, zorder=2)
        left = trace[0] < foot[0]  # label on the side away from the line
        ax.annotate(name, xy=trace, xytext=(-5 if left else 4, 3), textcoords="offset points", fontsize=9,
                    color=color, ha="right" if left else "left")
        if np.linalg.norm(trace - foot) > 1e-9:  # a small square where the drop meets the line: a right angle
            side = 0.025
            corner = np.array([foot - side * unit, foot - side * unit + side * across, foot + side * across])
            ax.plot(*corner.T, color="0.3", lw=0.8, zorder=2)
    groups = []  # one label per landing point, lowest score first
    for i in np.argsort(scores, kind="stable"):
        if not any(np.allclose(feet[i], feet[g[0]]) for g in groups):
            groups.append([j for j in range(len(feet)) if np.allclose(feet[j], feet[i])])
    marks = []  # one marker per landing point, named in a legend: no leader lines to cross the drawing
    for k, group in enumerate(reversed(groups)):  # the highest score first
        foot, who = feet[group[0]], ", ".join(names[j].split(" [")[0] for j in group)
        style = dict(color="0.15") if k == 0 else dict(markerfacecolor="white", markeredgecolor="0.15")
        marks += ax.plot(*foot, ls="none", marker="o", ms=5, zorder=4, mew=1.2,
                         label=f"{who}: score {scores[group[0]]:.2g}",
                         **style)
    ax.legend(handles=marks, loc="center right", frameon=False, fontsize=8.5, title="where each lands",
              title_fontsize=8.5)
    ax.set_aspect("equal")  # equal scales on both axes, so that right angles look right
    ax.set(xlabel="first number of the state", ylabel="second number")
    return ax
