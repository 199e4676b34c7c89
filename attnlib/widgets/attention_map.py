"""AttentionMap and MaskExplorer: who attends to whom, token by token.

Chapters 4 to 6 use them.  AttentionMap shows given weights (one or several heads)
as lines between tokens, like bertviz's head view, or as a heatmap.  MaskExplorer
takes scores instead and lets the reader switch a causal mask and key padding on
and off; the browser renormalizes each row with the softmax that mirrors
:func:`attnlib.softmax`, and the Python side computes the same weights with attnlib.
"""

from __future__ import annotations

import anywidget
import numpy as np
import traitlets

from attnlib._validate import as_bool, as_float_array, check_finite
from attnlib.masks import causal_mask, padding_mask
from attnlib.softmax import softmax
from attnlib.widgets import _validate
from attnlib.widgets._assets import bundle, new_uid, read_asset

VIEWS = ("lines", "heatmap")
PADDING_SIDES = ("right", "left")


def _heads(x, name: str) -> np.ndarray:
    """``x`` as ``(n_heads, n_q, n_k)``: a single ``(n_q, n_k)`` matrix is one head."""
    arr = as_float_array(x, name)
    if arr.ndim == 2:
        arr = arr[None]  # (n_q, n_k) -> (1, n_q, n_k)
    if arr.ndim != 3:
        raise ValueError(f"{name} must have shape (n_q, n_k) or (n_heads, n_q, n_k), got {arr.shape}")
    if 0 in arr.shape:
        raise ValueError(f"{name} must not be empty, got shape {arr.shape}")
    check_finite(arr, name)
    return arr


class AttentionMap(anywidget.AnyWidget):
    """Attention weights between tokens: lines (hover a token) or a heatmap, one head at a time.

    Parameters
    ----------
    weights : array_like, shape (n_q, n_k) or (n_heads, n_q, n_k)
        Attention weights in [0, 1], e.g. from :func:`attnlib.multi_head_attention` (for
        scores, use :class:`MaskExplorer`, which applies the softmax).  The view prints
        them with 2 decimals; the widget keeps them to 3 (``_validate.DISPLAY_DIGITS``).
    tokens : list of str, length n_q
        The query tokens (rows).
    tokens_k : list of str, length n_k, optional
        The key tokens (columns) for cross-attention; default ``tokens`` (self-attention).
    head_names : list of str, optional
        Names for the head selector (default ``head 0 ... head H-1``).
    view : {"lines", "heatmap"}
        The view to start in.

    Attributes
    ----------
    head : int
        The selected head (changed by the selector in the browser).
    weights : ndarray, shape (n_q, n_k)
        The selected head's weights, as the view holds them (rounded to 3 decimals).

    Setting ``head`` or ``view`` from Python to a value the view cannot show raises a
    ``ValueError``, as every attnlib widget does.

    Examples
    --------
    >>> m = AttentionMap([[[1.0, 0.0], [0.5, 0.5]], [[0.2, 0.8], [0.0, 1.0]]], ["a", "b"])
    >>> m.head = 1
    >>> m.weights
    array([[0.2, 0.8],
           [0. , 1. ]])
    """

    _esm = bundle("attention_map.js")
    _css = read_asset("widgets.css")

    uid = traitlets.Unicode().tag(sync=True)
    mode = traitlets.Unicode("weights").tag(sync=True)
    tokens_q = traitlets.List(traitlets.Unicode()).tag(sync=True)
    tokens_k = traitlets.List(traitlets.Unicode()).tag(sync=True)
    head_names = traitlets.List(traitlets.Unicode()).tag(sync=True)
    head_weights = traitlets.List().tag(sync=True)  # (n_heads, n_q, n_k)
    head_scores = traitlets.List().tag(sync=True)  # MaskExplorer only
    head = traitlets.Int(0).tag(sync=True)
    view = traitlets.Unicode("lines").tag(sync=True)
    causal = traitlets.Bool(False).tag(sync=True)
    n_valid = traitlets.Int(0).tag(sync=True)
    padding_side = traitlets.Unicode("right").tag(sync=True)  # MaskExplorer only

    _matrix_name = "weights"

    def __init__(self, weights, tokens, tokens_k=None, *, head_names=None, view="lines", **kwargs):
        H = _heads(weights, self._matrix_name)
        if self._matrix_name == "weights":  # one rule with ModelView: weights in [0, 1], not scores
            H = _validate.attention_weights(H, "weights", ("n_heads", "n_q", "n_k"))
        n_heads, n_q, n_k = H.shape
        tokens_q = _validate.labels(tokens, n_q, "tokens", "")
        if tokens_k is None and n_q != n_k:
            raise ValueError(
                f"{self._matrix_name} has n_q={n_q} queries but n_k={n_k} keys: pass tokens_k "
                "(cross-attention) or a square matrix (self-attention)"
            )
        tokens_k = tokens_q if tokens_k is None else _validate.labels(tokens_k, n_k, "tokens_k", "")
        if view not in VIEWS:
            raise ValueError(f"view must be one of {VIEWS}, got {view!r}")
        # scores are recomputed in the browser (full floats); weights are only shown (rounded)
        matrix = {"head_scores": H.tolist()} if self._matrix_name == "scores" else {"head_weights": _validate.shown(H)}
        kwargs.setdefault("n_valid", n_k)
        super().__init__(
            uid=new_uid(),
            tokens_q=tokens_q,
            tokens_k=tokens_k,
            head_names=_validate.labels(head_names, n_heads, "head_names", "head "),
            view=view,
            **matrix,
            **kwargs,
        )

    @traitlets.validate("head")
    def _valid_head(self, proposal):
        return _validate.index(proposal["value"], len(self.head_names) or 1, "head")

    @traitlets.validate("view")
    def _valid_view(self, proposal):
        if proposal["value"] not in VIEWS:
            raise ValueError(f"view must be one of {VIEWS}, got {proposal['value']!r}")
        return proposal["value"]

    @property
    def weights(self) -> np.ndarray:
        """The selected head's weights, shape (n_q, n_k)."""
        return np.array(self.head_weights[self.head], dtype=float)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(n_heads={len(self.head_names)}, n_q={len(self.tokens_q)}, "
                f"n_k={len(self.tokens_k)}, head={self.head}, view={self.view!r})")


class MaskExplorer(AttentionMap):
    """Scores between tokens with masks you switch on and off; the weights renormalize.

    ``mask[i, j]`` True means query i may attend to key j: the causal mask allows
    ``j <= i``, and key padding allows the ``n_valid`` real keys: ``j < n_valid`` when the
    padding is on the right, ``j >= n_k - n_valid`` when it is on the left (as when a
    batch of prompts is padded for generation: with the causal mask, the pad queries
    then have no key at all).  A query with no allowed key gets
    all-zero weights (never NaN), as :func:`attnlib.softmax` defines.

    Parameters
    ----------
    scores : array_like, shape (n_q, n_k) or (n_heads, n_q, n_k)
        Scores before the softmax, e.g. from :func:`attnlib.scaled_dot_product_scores`.
    tokens, tokens_k, head_names, view
        As for :class:`AttentionMap`.
    causal : bool
        Start with the causal mask on.
    n_valid : int, optional
        How many keys are real (the rest is padding); default all of them.
    padding_side : {"right", "left"}
        Where the padding keys are (default "right"); the view switches it too.

    Attributes
    ----------
    mask : ndarray of bool, shape (n_q, n_k)
        The current mask.
    weights : ndarray, shape (n_q, n_k)
        attnlib's weights of the selected head under the current mask.

    Examples
    --------
    >>> m = MaskExplorer([[0.0, 0.0], [0.0, 0.0]], ["a", "b"], causal=True)
    >>> m.weights
    array([[1. , 0. ],
           [0.5, 0.5]])
    >>> m.n_valid, m.padding_side = 1, "left"
    >>> m.weights
    array([[0., 0.],
           [0., 1.]])
    """

    _esm = bundle("attention_map.js")
    _matrix_name = "scores"

    def __init__(self, scores, tokens, tokens_k=None, *, head_names=None, view="heatmap",
                 causal=False, n_valid=None, padding_side="right", **kwargs):
        if n_valid is not None:
            kwargs["n_valid"] = n_valid
        super().__init__(scores, tokens, tokens_k, head_names=head_names, view=view, mode="masks",
                         causal=as_bool(causal, "causal"), padding_side=padding_side, **kwargs)

    @traitlets.validate("n_valid")
    def _valid_n_valid(self, proposal):
        n_k = len(self.tokens_k)
        return _validate.index(proposal["value"], n_k + 1, "n_valid (the number of real keys)")

    @traitlets.validate("padding_side")
    def _valid_padding_side(self, proposal):
        if proposal["value"] not in PADDING_SIDES:
            raise ValueError(f"padding_side must be one of {PADDING_SIDES}, got {proposal['value']!r}")
        return proposal["value"]

    @property
    def scores(self) -> np.ndarray:
        """The selected head's scores, shape (n_q, n_k)."""
        return np.array(self.head_scores[self.head], dtype=float)

    @property
    def mask(self) -> np.ndarray:
        """The current boolean mask, shape (n_q, n_k): True = this query may attend to this key."""
        n_q, n_k = len(self.tokens_q), len(self.tokens_k)
        allowed = padding_mask([self.n_valid], n_k)[0]  # (1, n_k): the first n_valid keys
        if self.padding_side == "left":
            allowed = allowed[:, ::-1]  # the last n_valid keys
        if self.causal:
            allowed = allowed & causal_mask(n_q, n_k)  # (n_q, n_k)
        return np.broadcast_to(allowed, (n_q, n_k)).copy()

    @property
    def weights(self) -> np.ndarray:
        """attnlib's weights under the current mask, shape (n_q, n_k)."""
        return softmax(np.where(self.mask, self.scores, -np.inf))
