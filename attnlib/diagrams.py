"""Diagrams of the computation, drawn from the arrays a page computes with.

Each function takes the page's own arrays and draws every matrix as a grid of
cells coloured by its numbers, labelled with its shape, so a diagram cannot
drift from the code next to it.  They return a matplotlib ``Figure``; the pages
glue it with alt text that begins with "Diagram:".
"""

from __future__ import annotations

import numpy as np

from attnlib.plotting import CMAP, COLORS, readable_text_colour

_EDGE = "#444444"

#: Font sizes (pt) of the diagrams' names and of their smaller notes (shapes, ranges).  A diagram is
#: drawn at most ``MAX_WIDTH`` inches wide, so that, shown in the book's 672 px column, its smallest
#: text is still at least 8 pt: 10 pt * 672 px / (8.75 in * 96 px/in) = 8 pt.  tests/test_diagrams.py
#: checks every diagram with tools/check_figures.py.
NAME_PT = 11
NOTE_PT = 10
MAX_WIDTH = 8.7


def _figure(width: float, height: float):
    """A blank drawing in inches; :func:`_fit` later crops it to what was drawn."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(width, height))
    ax.set_position([0, 0, 1, 1])
    ax.set_xlim(0, width)
    ax.set_ylim(0, height)
    ax.axis("off")
    return fig, ax


def _fit(fig, ax, margin: float = 0.25):
    """Size the figure to the drawing (one unit = one inch), so nothing is clipped or left empty."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    inverse = ax.transData.inverted()
    boxes = [a.get_window_extent(renderer).transformed(inverse) for a in ax.patches + ax.texts
             if a.get_visible() and (not hasattr(a, "get_text") or a.get_text() or getattr(a, "arrow_patch", None))]
    x0 = min(b.x0 for b in boxes) - margin
    x1 = max(b.x1 for b in boxes) + margin
    y0 = min(b.y0 for b in boxes) - margin
    y1 = max(b.y1 for b in boxes) + margin
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    fig.set_size_inches(x1 - x0, y1 - y0)
    return fig


def _matrix(ax, x: float, y: float, A, name: str, *, cell: float = 0.22, mask=None,
            colour: str | None = None, shape_text: str | None = None, norm=None):
    """Draw ``A (rows, cols)`` with its top-left corner at (x, y); return (left, right, bottom, top).

    Cells are coloured by value (cividis, on ``norm``, by default scaled to the matrix), or
    filled with one ``colour``; cells where ``mask`` is False are hatched.  The name sits
    above, the shape below.
    """
    import matplotlib
    from matplotlib.patches import Rectangle

    A = np.atleast_2d(np.asarray(A, dtype=float))
    rows, cols = A.shape
    norm = _norm(A) if norm is None else norm
    cmap = matplotlib.colormaps[CMAP]
    for i in range(rows):
        for j in range(cols):
            hidden = mask is not None and not mask[i, j]
            face = "white" if hidden else colour or cmap(norm(A[i, j]) if np.isfinite(A[i, j]) else 0.0)
            ax.add_patch(Rectangle((x + j * cell, y - (i + 1) * cell), cell, cell, facecolor=face,
                                   edgecolor=_EDGE, linewidth=0.4, hatch="////" if hidden else None))
    w, h = cols * cell, rows * cell
    ax.text(x + w / 2, y + 0.08, name, ha="center", va="bottom", fontsize=NAME_PT)
    ax.text(x + w / 2, y - h - 0.08, shape_text or f"{rows}×{cols}", ha="center", va="top", fontsize=NOTE_PT,
            color="#333333")
    return x, x + w, y - h, y


def _norm(*arrays):
    """One colour scale (cividis) spanning the finite values of all ``arrays``."""
    from matplotlib.colors import Normalize

    finite = np.concatenate([np.asarray(a, dtype=float).ravel() for a in arrays])
    finite = finite[np.isfinite(finite)]
    return Normalize(finite.min() if finite.size else 0.0, finite.max() if finite.size else 1.0)


def _arrow(ax, start, end, text: str = ""):
    ax.annotate("", xy=end, xytext=start, arrowprops={"arrowstyle": "->", "color": _EDGE, "lw": 1.2})
    if text:
        ax.text((start[0] + end[0]) / 2, (start[1] + end[1]) / 2 + 0.1, text, ha="center", va="bottom",
                fontsize=NOTE_PT)


def pipeline(Q, K, V, mask=None, *, scale=None, weights=None):
    """(a) The attention pipeline: S = QKᵀ → γS → (mask) → A = softmax → O = AV, with the example's shapes.

    Drawn in two rows: the scores, then the weights and the output.  ``weights`` are the
    page's softmax weights (computed by attnlib), drawn as they are.  Colour scales: S and
    γS share one, so that the scaling shows as paler colours; A on 0..its largest weight; Q, K, V
    and O each on their own.
    """
    Q, K, V = (np.asarray(a, dtype=float) for a in (Q, K, V))
    if Q.ndim != 2 or K.ndim != 2 or V.ndim != 2:
        raise ValueError(f"pipeline draws one example: Q, K, V must be 2-D, got {Q.shape}, {K.shape}, {V.shape}")
    if Q.shape[1] != K.shape[1] or K.shape[0] != V.shape[0]:
        raise ValueError(f"shapes do not fit together: Q {Q.shape}, K {K.shape}, V {V.shape}")
    scale = 1 / np.sqrt(Q.shape[1]) if scale is None else float(scale)
    scores = Q @ K.T  # (n_q, n_k)
    if weights is None:
        raise ValueError("pass the weights the page computed (attnlib.scaled_dot_product_attention)")
    weights = np.asarray(weights, dtype=float)
    if weights.shape != scores.shape:
        raise ValueError(f"weights must have shape {scores.shape} (n_q, n_k), got {weights.shape}")
    n_q, n_k = scores.shape
    def num(x):
        return f"{x:.1f}".replace("-", "−")

    fig, ax = _figure(MAX_WIDTH, 6.0)
    top = 5.6
    mid = top - 0.4
    qb = _matrix(ax, 0.2, top, Q, "Q", shape_text=f"n_q×d_k = {n_q}×{Q.shape[1]}")
    kb = _matrix(ax, qb[1] + 0.45, top, K.T, "Kᵀ", shape_text=f"d_k×n_k = {K.shape[1]}×{n_k}")
    shared = _norm(scores, scores * scale)  # S and γS on one colour scale
    left = kb[1] + 0.75
    _arrow(ax, (kb[1] + 0.1, mid), (left - 0.1, mid))
    sb = _matrix(ax, left, top, scores, "S = QKᵀ", norm=shared,
                 shape_text=f"n_q×n_k = {n_q}×{n_k}\nfrom {num(scores.min())} to {num(scores.max())}")
    left = sb[1] + 0.9
    _arrow(ax, (sb[1] + 0.1, mid), (left - 0.1, mid), "× γ")
    gb = _matrix(ax, left, top, scores * scale, f"γS, γ = 1/√{Q.shape[1]}", norm=shared,
                 shape_text=f"{n_q}×{n_k}\nfrom {num(scale * scores.min())} to {num(scale * scores.max())}")
    top2 = min(kb[2], sb[2] - 0.5) - 0.9  # the second row, below the first row's notes
    masked = "" if mask is None else "masked "
    top_w = float(weights.max())  # A on 0..its largest weight, so that each row's favourite key shows
    ab = _matrix(ax, 0.6, top2, weights, f"A = softmax({masked}γS)", mask=mask, norm=_norm([0.0, top_w]),
                 shape_text=f"n_q×n_k = {n_q}×{n_k}\ncolour 0 to {top_w:.2f}")
    ax.annotate("", xy=(ab[0] + (ab[1] - ab[0]) / 2, top2 + 0.45), xytext=(gb[0] + (gb[1] - gb[0]) / 2, gb[2] - 0.6),
                arrowprops={"arrowstyle": "->", "color": _EDGE, "lw": 1.2, "connectionstyle": "arc3,rad=-0.15"})
    ax.text((ab[1] + gb[0]) / 2 + 0.6, (top2 + gb[2]) / 2 - 0.1,
            "softmax of each row" + ("\n(masked pairs: −∞)" if mask is not None else ""), fontsize=NOTE_PT,
            ha="center", va="center")
    vb = _matrix(ax, ab[1] + 0.45, top2, V, "V", shape_text=f"n_k×d_v = {n_k}×{V.shape[1]}")
    left = vb[1] + 0.75
    _arrow(ax, (vb[1] + 0.1, top2 - 0.4), (left - 0.1, top2 - 0.4))
    out = weights @ V  # (n_q, d_v)
    ob = _matrix(ax, left, top2, out, "O = AV", shape_text=f"n_q×d_v = {n_q}×{out.shape[1]}")
    bottom = min(ab[2], vb[2], ob[2]) - 0.6
    ax.text(0.2, bottom, "Colour: each array on its own scale, except S and γS, which share one.",
            fontsize=NOTE_PT, va="top")
    if mask is not None:
        ax.text(0.2, bottom - 0.3, "hatched: masked pair (score −∞, weight exactly 0)", fontsize=NOTE_PT, va="top")
    return _fit(fig, ax)


def multi_head(X, params, n_heads: int, weights):
    """(b) Multi-head attention: project, split into heads, attend, concatenate, W_o.

    ``weights (n_heads, n, n)`` are the page's attention weights.  The heads sit in a
    column; below them, their outputs are put side by side and multiplied by ``W_o``.
    """
    from matplotlib.patches import Rectangle

    X = np.asarray(X, dtype=float)
    n, d_model = X.shape
    if d_model % n_heads:
        raise ValueError(f"d_model={d_model} is not divisible by n_heads={n_heads}")
    weights = np.asarray(weights, dtype=float)
    if weights.shape != (n_heads, n, n):
        raise ValueError(f"weights must have shape {(n_heads, n, n)} (n_heads, n, n), got {weights.shape}")
    d_head = d_model // n_heads
    cell = 0.2
    step = cell * n + 1.05  # vertical room for one head's row
    fig, ax = _figure(MAX_WIDTH, step * n_heads + 4.5)
    top = step * n_heads + 4.0
    V = X @ params["W_v"] + params.get("b_v", 0.0)  # (n, d_model)
    heads = [weights[h] @ V[:, h * d_head:(h + 1) * d_head] for h in range(n_heads)]  # H × (n, d_head)
    output = np.concatenate(heads, axis=-1) @ params["W_o"] + params.get("b_o", 0.0)  # (n, d_model)
    y_mid = top - step * (n_heads - 1) / 2  # the middle head's row
    xb = _matrix(ax, 0.2, y_mid, X, "X", cell=cell, shape_text=f"n×d_model\n= {n}×{d_model}")
    left = xb[1] + 1.45
    _arrow(ax, (xb[1] + 0.1, y_mid - 0.5), (left - 0.1, y_mid - 0.5), "× W_q, W_k, W_v")
    ends = []
    for h in range(n_heads):
        y = top - step * h
        cols = slice(h * d_head, (h + 1) * d_head)
        colour = COLORS[h % len(COLORS)]
        vb = _matrix(ax, left, y, V[:, cols], f"V, head {h}", cell=cell, colour=colour,
                     shape_text=f"{n}×{d_head}")
        wb = _matrix(ax, vb[1] + 0.75, y, weights[h], f"A, head {h}", cell=cell, norm=_norm([0.0, 1.0]),
                     shape_text=f"{n}×{n}")
        _arrow(ax, (vb[1] + 0.1, y - 0.5), (wb[0] - 0.1, y - 0.5))
        ob = _matrix(ax, wb[1] + 0.75, y, heads[h], f"head {h} out", cell=cell, colour=colour,
                     shape_text=f"{n}×{d_head}")
        _arrow(ax, (wb[1] + 0.1, y - 0.5), (ob[0] - 0.1, y - 0.5))
        ends.append(ob)
    y_cat = top - step * n_heads - 0.9  # the bottom row: concatenate, then W_o
    cb = _matrix(ax, 0.2, y_cat, np.zeros((n, d_model)), "concatenate", cell=cell, colour="#dddddd",
                 shape_text=f"n×(H·d_head) = {n}×{d_model}")
    for h in range(n_heads):  # colour each head's block of columns
        ax.add_patch(Rectangle((0.2 + h * d_head * cell, y_cat - n * cell), d_head * cell, n * cell,
                               facecolor=COLORS[h % len(COLORS)], alpha=0.8, edgecolor=_EDGE, linewidth=0.6))
    last = ends[-1]  # a connector from the last head, down and left, into the concatenation
    x0, xc, y1 = (last[0] + last[1]) / 2, (cb[0] + cb[1]) / 2, y_cat + 0.75
    ax.plot([x0, x0, xc], [last[2] - 0.45, y1, y1], color=_EDGE, lw=1.2)
    ax.annotate("", xy=(xc, y_cat + 0.4), xytext=(xc, y1 + 0.01),
                arrowprops={"arrowstyle": "->", "color": _EDGE, "lw": 1.2})
    ax.text((x0 + xc) / 2, y1 + 0.08, "every head's output, side by side", ha="center", va="bottom", fontsize=NOTE_PT)
    out_left = cb[1] + 1.3
    _arrow(ax, (cb[1] + 0.1, y_cat - n * cell / 2), (out_left - 0.1, y_cat - n * cell / 2), "× W_o")
    _matrix(ax, out_left, y_cat, output, "output", cell=cell, shape_text=f"n×d_model = {n}×{d_model}")
    ax.text(0.2, y_cat - n * cell - 0.75, f"H = {n_heads} heads, d_model = {d_model}, d_head = d_model / H = {d_head};",
            fontsize=NOTE_PT, va="top")
    ax.text(0.2, y_cat - n * cell - 1.05,
            "each head scales its scores by 1/√d_head. Each head's colour marks its columns.",
            fontsize=NOTE_PT, va="top")
    return _fit(fig, ax)


def self_and_cross(source_tokens, target_tokens):
    """(c) Where Q, K and V come from: self-attention (one sequence) vs cross-attention (two)."""
    source_tokens, target_tokens = list(map(str, source_tokens)), list(map(str, target_tokens))
    if not source_tokens or not target_tokens:
        raise ValueError("self_and_cross needs at least one source and one target token")
    n = max(len(source_tokens), len(target_tokens))
    fig, ax = _figure(MAX_WIDTH, 0.42 * n + 2.2)
    from matplotlib.patches import FancyBboxPatch

    box_w, row = 1.05, 0.42
    top = row * n + 1.0

    def column(x, tokens, colour):
        for i, t in enumerate(tokens):
            y = top - 0.15 - row * i
            ax.add_patch(FancyBboxPatch((x, y - 0.32), box_w, 0.32, boxstyle="round,pad=0.02", facecolor=colour,
                                        edgecolor=_EDGE, linewidth=0.6))
            ax.text(x + box_w / 2, y - 0.16, t, ha="center", va="center", fontsize=NOTE_PT,
                    color=readable_text_colour(_rgb(colour)))

    def roles(x, text):
        ax.text(x, top, text, ha="center", va="bottom", fontsize=NOTE_PT)

    bottom = top - 0.15 - row * n - 0.25
    column(0.2, source_tokens, COLORS[4])
    roles(0.2 + box_w / 2, "sequence X")
    ax.text(1.45, top - 0.5, "Q = X W_q\nK = X W_k\nV = X W_v", fontsize=NOTE_PT, va="top")
    ax.text(1.5, bottom, "self-attention:\nQ, K, V from\none sequence", ha="center", va="top", fontsize=NOTE_PT)
    ax.plot([3.05, 3.05], [bottom - 0.8, top + 0.3], color="#999999", lw=0.8)  # the two halves
    column(3.4, target_tokens, COLORS[1])
    roles(3.4 + box_w / 2, "decoder X_tgt")
    column(6.75, source_tokens, COLORS[4])
    roles(6.75 + box_w / 2, "encoder X_src")
    ax.text(4.65, top - 0.5, "Q = X_tgt W_q", fontsize=NOTE_PT, va="top")
    ax.text(5.35, top - 1.25, "K = X_src W_k\nV = X_src W_v", fontsize=NOTE_PT, va="top")
    _arrow(ax, (6.65, top - 2.05), (5.35, top - 2.05))
    ax.text(5.6, bottom, "cross-attention: Q from X_tgt,\nK and V from X_src", ha="center", va="top", fontsize=NOTE_PT)
    return _fit(fig, ax)


def _rgb(hex_colour: str):
    h = hex_colour.lstrip("#")
    return tuple(int(h[k:k + 2], 16) / 255 for k in (0, 2, 4))


def masks(tokens, causal, padding, *, padding_tokens=None):
    """(d) Causal and padding masks as grids over the example's tokens (✓ may attend, ✗ may not)."""
    causal, padding = np.asarray(causal), np.asarray(padding)
    if causal.dtype != bool or padding.dtype != bool:
        raise TypeError("masks must be boolean (True = this query may attend to this key)")
    padding_tokens = tokens if padding_tokens is None else padding_tokens
    panels = [(causal, tokens, "causal mask:\nquery i sees keys 0..i"),
              (padding, padding_tokens, "padding mask:\nno query sees a pad key")]
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(7.4, 0.42 * max(len(tokens), len(padding_tokens)) + 1.9))
    for ax, (M, labels, title) in zip(axes, panels, strict=True):
        M = M.reshape(-1, *M.shape[-2:])[0]  # the first batch entry, (n_q or 1, n_k)
        M = np.broadcast_to(M, (len(labels), M.shape[-1]))  # a padding mask is the same for every query
        ax.imshow(M, cmap="Greys_r", vmin=-0.6, vmax=1.2, aspect="equal")
        for (i, j), allowed in np.ndenumerate(M):
            ax.text(j, i, "✓" if allowed else "✗", ha="center", va="center", fontsize=NOTE_PT,
                    color="#000" if allowed else "#fff")
        ax.set_xticks(range(M.shape[1]), labels, rotation=45, ha="right", fontsize=NOTE_PT)
        ax.set_yticks(range(M.shape[0]), labels, fontsize=NOTE_PT)
        ax.set_xlabel("key", fontsize=NAME_PT)
        ax.set_ylabel("query", fontsize=NAME_PT)
        ax.set_title(title, fontsize=NAME_PT)
    fig.tight_layout()
    return fig


def rnn_versus_attention(tokens, d_hidden: int):
    """(e) An RNN squeezes the sequence into h_n; attention reads every state h_1..h_n."""
    tokens = [str(t) for t in tokens]
    n = len(tokens)
    if n < 2:
        raise ValueError(f"rnn_versus_attention needs at least two tokens, got {n}")
    step = 0.95  # from one token's column to the next
    fig, ax = _figure(step * n + 3.0, 4.8)
    from matplotlib.patches import FancyBboxPatch

    def box(x, y, text, colour, w=0.75, h=0.45):
        ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.02", facecolor=colour, edgecolor=_EDGE,
                                    linewidth=0.6))
        ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=NOTE_PT,
                color=readable_text_colour(_rgb(colour)))

    for row, (y0, title) in enumerate(((2.7, "RNN encoder: only h_n reaches the output"),
                                       (0.3, "RNN + attention: the output reads every state"))):
        ax.text(0.2, y0 + 1.75, title, fontsize=NAME_PT)
        for i, t in enumerate(tokens):
            x = 0.3 + step * i
            box(x, y0, t, "#eeeeee")
            box(x, y0 + 0.8, f"h_{i + 1}", COLORS[4])
            _arrow(ax, (x + 0.375, y0 + 0.47), (x + 0.375, y0 + 0.78))
            if i:
                _arrow(ax, (x - 0.19, y0 + 1.02), (x - 0.02, y0 + 1.02))
        xo = 0.3 + step * n + 0.5
        box(xo, y0 + 0.8, "output", COLORS[1], w=1.1)
        if row == 0:
            _arrow(ax, (xo - 0.69, y0 + 1.02), (xo - 0.02, y0 + 1.02), "")
            ax.text(xo - 0.3, y0 + 1.35, f"h_{n} = h_n: {d_hidden} numbers", ha="center", fontsize=NOTE_PT)
        else:
            for i in range(n):
                x = 0.3 + step * i + 0.375
                ax.annotate("", xy=(xo + 0.55, y0 + 1.27), xytext=(x, y0 + 1.27),
                            arrowprops={"arrowstyle": "->", "color": COLORS[5], "lw": 0.9,
                                        "connectionstyle": "arc3,rad=-0.12"})
            ax.text(xo + 0.55, y0 + 0.5, f"weights over all {n} states", ha="center", va="top", fontsize=NOTE_PT)
    return _fit(fig, ax)


def online_softmax(scores, blocks, running):
    """(f) Blockwise attention for one query: its scores cut into blocks of keys, with the running
    maximum m and sum ℓ after each block, as the page's loop computed them.

    ``running`` holds one ``(m, l)`` pair per block; they are checked against ``scores``, so the
    picture cannot show numbers the online softmax would not produce.
    """
    scores = np.asarray(scores, dtype=float)
    if scores.ndim != 1:
        raise ValueError(f"scores must be one query's scores, shape (n_k,), got {scores.shape}")
    if len(running) != len(blocks):
        raise ValueError(f"one (m, l) pair per block: {len(blocks)} blocks but {len(running)} pairs")
    for b, (m, l) in enumerate(running):
        seen = scores[: blocks[b].stop]
        if not np.isclose(m, seen.max()) or not np.isclose(l, np.exp(seen - seen.max()).sum()):
            raise ValueError(f"(m, l) after block {b} is ({m:.4g}, {l:.4g}), but the scores give "
                             f"({seen.max():.4g}, {np.exp(seen - seen.max()).sum():.4g})")
    fig, ax = _figure(2.0 + 1.2 * scores.size, 2.4)
    x, cell, top = 0.3, 0.55, 1.9
    for b, block in enumerate(blocks):
        left = x
        part = scores[block]
        _matrix(ax, x, top, part[None, :], f"block {b}: keys {block.start}–{block.stop - 1}", cell=cell,
                colour="#dddddd", shape_text=" ")
        for j, v in enumerate(part):
            ax.text(x + (j + 0.5) * cell, top - cell / 2, f"{v:.2f}", ha="center", va="center", fontsize=NOTE_PT)
        x += part.size * cell
        m, l = running[b]
        ax.text((left + x) / 2, top - cell - 0.25, f"m = {m:.2f}\nℓ = {l:.3f}", ha="center", va="top", fontsize=NAME_PT)
        if b + 1 < len(blocks):
            _arrow(ax, (x + 0.08, top - cell / 2), (x + 0.72, top - cell / 2), "")
            f = np.exp(m - running[b + 1][0])  # e^(m - m'): what the sum so far is multiplied by
            ax.text(x + 0.4, top - cell - 0.25, f"rescale ℓ\nby e^(m−m′):\n{l:.3f} × {f:.4f}\n= {l * f:.3f}",
                    ha="center", va="top", fontsize=NOTE_PT)
            x += 0.8
    ax.text(0.3, 0.2, "scores of one query; only one block is in memory at a time", fontsize=NOTE_PT)
    return _fit(fig, ax)


def induction_circuit(tokens, w_layer0, w_layer1, i: int, *, circuit: str = "previous-token"):
    """(g) The two-layer induction circuit on a sequence repeated once, for the query at position ``i``.

    ``tokens`` has length ``T = 2L`` (a sequence of ``L`` tokens, then the same again);
    ``w_layer0`` and ``w_layer1`` are the two layers' attention weights ``(T, T)`` (one head
    each, as the page measured them).  ``circuit`` names what layer 0 does:
    ``"previous-token"`` (position ``k`` attends to ``k - 1``) or ``"duplicate-token"``
    (the second copy attends to the first).  Layer 1's arrow goes from the key right after
    the query's earlier copy, ``k = i - L + 1``, to the query ``i``.  The arrows carry the
    weights they draw.
    """
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    tokens = [str(t) for t in tokens]
    T = len(tokens)
    if T < 4 or T % 2:
        raise ValueError(f"tokens must be a sequence repeated once (an even length of at least 4), got {T}")
    L = T // 2
    w_layer0, w_layer1 = np.asarray(w_layer0, dtype=float), np.asarray(w_layer1, dtype=float)
    for name, w in (("w_layer0", w_layer0), ("w_layer1", w_layer1)):
        if w.shape != (T, T):
            raise ValueError(f"{name} must have shape {(T, T)} (query, key), got {w.shape}")
    if circuit not in ("previous-token", "duplicate-token"):
        raise ValueError(f"circuit must be 'previous-token' or 'duplicate-token', got {circuit!r}")
    if isinstance(i, bool) or not isinstance(i, (int, np.integer)) or not L <= i < T:
        raise ValueError(f"i must be a position of the second copy ({L} .. {T - 1}), got {i!r}")
    i = int(i)
    key = i - L + 1
    dx = min(0.36, (MAX_WIDTH - 1.6) / T)  # inches from one position to the next
    x0 = 1.45  # room for the row names on the left
    fig, ax = _figure(MAX_WIDTH, 4.4)
    rows = {0: "tokens", 1: "after layer 0", 2: "after layer 1"}
    y_of = {0: 0.9, 1: 1.9, 2: 3.2}
    box_w, box_h = 0.8 * dx, 0.34

    def px(j):
        return x0 + j * dx

    for r, name in rows.items():
        ax.text(x0 - 0.15, y_of[r], name, ha="right", va="center", fontsize=NOTE_PT, color="#333333")
        for j in range(T):
            ax.add_patch(FancyBboxPatch((px(j) - box_w / 2, y_of[r] - box_h / 2), box_w, box_h,
                                        boxstyle="round,pad=0.01", fc="white", ec="0.6", lw=0.6))
    for j in range(T):
        ax.text(px(j), y_of[0], tokens[j], ha="center", va="center", fontsize=NOTE_PT)
        if j % 2 == 0 or T <= 16:
            ax.text(px(j), y_of[0] - 0.36, str(j), ha="center", va="center", fontsize=NOTE_PT, color="#555555")
    ax.text(x0 - 0.15, y_of[0] - 0.36, "position", ha="right", va="center", fontsize=NOTE_PT, color="#555555")
    for j, colour in ((i, COLORS[5]), (key, COLORS[0])):  # the query and the key it should find
        ax.add_patch(FancyBboxPatch((px(j) - box_w / 2, y_of[0] - box_h / 2), box_w, box_h,
                                    boxstyle="round,pad=0.01", fc="none", ec=colour, lw=1.8))

    def arrow(src, dst, colour, text, rad, y_text, at_end=False):
        ax.add_patch(FancyArrowPatch((px(src[0]), y_of[src[1]] + box_h / 2), (px(dst[0]), y_of[dst[1]] - box_h / 2),
                                     arrowstyle="-|>", mutation_scale=10, color=colour, lw=1.5,
                                     connectionstyle=f"arc3,rad={rad}"))
        if at_end:  # beside the arrow's head, clear of the curve
            ax.text(px(dst[0]) + 0.25, y_of[dst[1]] - box_h / 2 - 0.12, text, ha="left", va="top",
                    fontsize=NOTE_PT, color=colour)
        else:
            ax.text((px(src[0]) + px(dst[0])) / 2, y_text, text, ha="center", va="bottom", fontsize=NOTE_PT,
                    color=colour)

    if circuit == "previous-token":
        arrow((key - 1, 0), (key, 1), COLORS[2], f"layer 0: {w_layer0[key, key - 1]:.2f} (previous token)",
              -0.3, y_of[1] + 0.25)
        note = (f"Layer 0 writes into position {key}: “the token before me was {tokens[key - 1]}”.\n"
                f"The query at position {i} is token {tokens[i]}: layer 1 matches the two.")
    else:
        arrow((i - L, 0), (i, 1), COLORS[3], f"layer 0: {w_layer0[i, i - L]:.2f} (same token earlier)",
              0.12, y_of[0] + 0.3, at_end=True)
        note = (f"Layer 0 writes into position {i}: “my token was at position {i - L}”.\n"
                f"Layer 1 looks for the position right after it, {key}.")
    arrow((key, 1), (i, 2), COLORS[0], f"layer 1: {w_layer1[i, key]:.2f}\n(prefix matching)", -0.12, 0.0, at_end=True)
    ax.annotate(f"predicts {tokens[key]}", (px(i), y_of[2] + box_h / 2), (px(i), y_of[2] + 0.7), ha="center",
                fontsize=NAME_PT, arrowprops={"arrowstyle": "<|-", "color": "0.2"})
    ax.text(x0 + (T - 1) * dx / 2, y_of[0] - 0.65, note, ha="center", va="top", fontsize=NOTE_PT, color="#222222")
    return _fit(fig, ax)
