"""Small plotting helpers. They take arrays; they never compute attention."""

from __future__ import annotations

import numpy as np

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
                 xlabel="key", ylabel="query", annotate=None, vmax=None):
    """Draw a weight matrix ``(n_q, n_k)`` as a heatmap with labelled axes.

    Returns the matplotlib ``Axes``.  ``annotate`` writes the numbers in the cells
    (default: when the matrix is at most 10 x 10).
    """
    import matplotlib.pyplot as plt

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
    ax.figure.colorbar(image, ax=ax, label="weight", fraction=0.046, pad=0.04)
    ax.set_xticks(range(W.shape[1]), x_labels if x_labels is not None else range(W.shape[1]),
                  rotation=45 if x_labels is not None else 0, ha="right" if x_labels is not None else "center")
    ax.set_yticks(range(W.shape[0]), y_labels if y_labels is not None else range(W.shape[0]))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    if annotate if annotate is not None else max(W.shape) <= 10:
        for (i, j), w in np.ndenumerate(W):
            ax.text(j, i, f"{w:.2f}", ha="center", va="center", fontsize=8,
                    color=readable_text_colour(image.cmap(image.norm(w))))
    return ax
