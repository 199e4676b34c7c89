"""ModelView: every head of every layer at a glance, as bertviz's model view shows them.

The real-transformer page uses it for all-MiniLM-L6-v2's 6 x 12 heads.  Each head is a small
heatmap of its weights on one sentence; a click (or Enter on the focused thumbnail, or the
two selectors) enlarges one head into a table of its weights.  The widget only shows the
weights it is given: it computes nothing.
"""

from __future__ import annotations

import anywidget
import numpy as np
import traitlets

from attnlib.widgets import _validate
from attnlib.widgets._assets import bundle, new_uid, read_asset


class ModelView(anywidget.AnyWidget):
    """Attention weights of every layer and head as thumbnails; one head enlarged.

    Parameters
    ----------
    weights : array_like, shape (n_layers, n_heads, n_q, n_k)
        Attention weights in [0, 1], e.g. ``attentions`` of :class:`attnlib.pretrained.MiniLM`.
    tokens : list of str, length n_q
        The query tokens (rows).
    tokens_k : list of str, length n_k, optional
        The key tokens (columns); default ``tokens`` (self-attention).
    layer, head : int
        The head shown enlarged at first (indices from 0).
    layer_names, head_names : list of str, optional
        Labels (default ``layer 0 ... layer L-1`` and ``head 0 ... head H-1``).

    Attributes
    ----------
    weights : ndarray, shape (n_q, n_k)
        The enlarged head's weights (follows clicks in the browser), as the view holds them:
        rounded to 3 decimals (the view prints 2).

    Setting ``layer`` or ``head`` from Python to one that does not exist raises a
    ``ValueError``, as every attnlib widget does.

    Examples
    --------
    >>> A = np.full((2, 3, 2, 2), 0.5)
    >>> v = ModelView(A, ["a", "b"], layer=1, head=2)
    >>> v.weights.shape, v.layer, v.head
    ((2, 2), 1, 2)
    """

    _esm = bundle("model_view.js")
    _css = read_asset("widgets.css")

    uid = traitlets.Unicode().tag(sync=True)
    tokens_q = traitlets.List(traitlets.Unicode()).tag(sync=True)
    tokens_k = traitlets.List(traitlets.Unicode()).tag(sync=True)
    layer_names = traitlets.List(traitlets.Unicode()).tag(sync=True)
    head_names = traitlets.List(traitlets.Unicode()).tag(sync=True)
    all_weights = traitlets.List().tag(sync=True)  # (n_layers, n_heads, n_q, n_k)
    layer = traitlets.Int(0).tag(sync=True)
    head = traitlets.Int(0).tag(sync=True)

    def __init__(self, weights, tokens, tokens_k=None, *, layer=0, head=0, layer_names=None,
                 head_names=None, **kwargs):
        W = _validate.attention_weights(weights, "weights", ("n_layers", "n_heads", "n_q", "n_k"))
        n_layers, n_heads, n_q, n_k = W.shape
        tokens_q = _validate.labels(tokens, n_q, "tokens", "")
        if tokens_k is None and n_q != n_k:
            raise ValueError(
                f"weights has n_q={n_q} queries but n_k={n_k} keys: pass tokens_k "
                "(cross-attention) or square matrices (self-attention)"
            )
        tokens_k = tokens_q if tokens_k is None else _validate.labels(tokens_k, n_k, "tokens_k", "")
        super().__init__(
            uid=new_uid(),
            tokens_q=tokens_q,
            tokens_k=tokens_k,
            layer_names=_validate.labels(layer_names, n_layers, "layer_names", "layer "),
            head_names=_validate.labels(head_names, n_heads, "head_names", "head "),
            all_weights=_validate.shown(W),  # only shown: rounded to 3 decimals
            layer=_validate.index(layer, n_layers, "layer"),
            head=_validate.index(head, n_heads, "head"),
            **kwargs,
        )

    @traitlets.validate("layer")
    def _valid_layer(self, proposal):
        return _validate.index(proposal["value"], len(self.layer_names) or 1, "layer")

    @traitlets.validate("head")
    def _valid_head(self, proposal):
        return _validate.index(proposal["value"], len(self.head_names) or 1, "head")

    @property
    def weights(self) -> np.ndarray:
        """The enlarged head's weights, shape (n_q, n_k)."""
        return np.array(self.all_weights[self.layer][self.head], dtype=float)

    def __repr__(self) -> str:
        return (f"ModelView(n_layers={len(self.layer_names)}, n_heads={len(self.head_names)}, "
                f"n_q={len(self.tokens_q)}, n_k={len(self.tokens_k)}, layer={self.layer}, head={self.head})")
