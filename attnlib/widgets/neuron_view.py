"""NeuronView: why a weight is large, dimension by dimension (like bertviz's neuron view).

For one head and one query token it shows the query vector q, every key vector k_j, their
elementwise product q∘k_j as coloured bars, the score ``scale * sum(q∘k_j)`` and the
softmax weight.  Chapter 3 and the real-transformer page use it.  The browser recomputes
the scores and weights with the mirror of attnlib's math (``_attnmath.js``); the Python
side reads them back with attnlib.
"""

from __future__ import annotations

import anywidget
import numpy as np
import traitlets

from attnlib._validate import as_float_array
from attnlib.scores import resolve_scale, scaled_dot_product_scores
from attnlib.softmax import softmax
from attnlib.widgets import _validate
from attnlib.widgets._assets import bundle, new_uid, read_asset


def _per_head(x, name: str, rows: str) -> np.ndarray:
    """``x`` as ``(n_heads, rows, d_k)``: a single ``(rows, d_k)`` matrix is one head."""
    arr = as_float_array(x, name)
    if arr.ndim not in (2, 3):
        raise ValueError(f"{name} must have shape ({rows}, d_k) or (n_heads, {rows}, d_k), got {arr.shape}")
    if arr.ndim == 2:
        arr = arr[None]  # (rows, d_k) -> (1, rows, d_k)
    return _validate.array_of_rank(arr, name, ("n_heads", rows, "d_k"))


class NeuronView(anywidget.AnyWidget):
    r"""q, each k, q∘k, the score and the weight, for one head and one query token.

    .. math:: s_j = \text{scale} \sum_d q_d\, k_{jd}, \qquad w = \operatorname{softmax}(s)

    Parameters
    ----------
    Q : array_like, shape (n_q, d_k) or (n_heads, n_q, d_k)
        The queries of one head, or of several heads.
    K : array_like, shape (n_k, d_k) or (n_heads, n_k, d_k)
        The keys, with the same heads and d_k.
    tokens : list of str, length n_q
        The query tokens.
    tokens_k : list of str, length n_k, optional
        The key tokens; default ``tokens`` (self-attention).
    query, head : int
        The query token and head shown first (indices from 0).
    scale : float, optional
        Multiplies ``q · k``; default ``1/sqrt(d_k)``, as in :func:`attnlib.scaled_dot_product_attention`.
    head_names : list of str, optional
        Names for the head selector (default ``head 0 ... head H-1``).

    Attributes
    ----------
    scores, weights : ndarray, shape (n_k,)
        attnlib's scores and weights for the current head and query.
    products : ndarray, shape (n_k, d_k)
        q∘k_j for every key.

    Examples
    --------
    >>> v = NeuronView([[1.0, 0.0]], [[1.0, 0.2], [0.0, 1.0]], ["q"], ["a", "b"], scale=1.0)
    >>> v.products
    array([[1., 0.],
           [0., 0.]])
    >>> v.weights.round(3)
    array([0.731, 0.269])
    """

    _esm = bundle("neuron_view.js")
    _css = read_asset("widgets.css")

    uid = traitlets.Unicode().tag(sync=True)
    tokens_q = traitlets.List(traitlets.Unicode()).tag(sync=True)
    tokens_k = traitlets.List(traitlets.Unicode()).tag(sync=True)
    head_names = traitlets.List(traitlets.Unicode()).tag(sync=True)
    head_queries = traitlets.List().tag(sync=True)  # (n_heads, n_q, d_k)
    head_keys = traitlets.List().tag(sync=True)  # (n_heads, n_k, d_k); not `keys`, which Widget owns
    scale = traitlets.Float().tag(sync=True)
    query = traitlets.Int(0).tag(sync=True)
    head = traitlets.Int(0).tag(sync=True)

    def __init__(self, Q, K, tokens, tokens_k=None, *, query=0, head=0, scale=None, head_names=None, **kwargs):
        Q = _per_head(Q, "Q", "n_q")
        K = _per_head(K, "K", "n_k")
        if Q.shape[0] != K.shape[0]:
            raise ValueError(f"Q has {Q.shape[0]} heads but K has {K.shape[0]}; give both the same heads")
        if Q.shape[2] != K.shape[2]:
            raise ValueError(f"Q has d_k={Q.shape[2]} but K has d_k={K.shape[2]}; queries and keys must match")
        n_heads, n_q, d_k = Q.shape
        n_k = K.shape[1]
        tokens_q = _validate.labels(tokens, n_q, "tokens", "")
        if tokens_k is None and n_q != n_k:
            raise ValueError(f"Q has n_q={n_q} queries but K has n_k={n_k} keys: pass tokens_k for the keys")
        tokens_k = tokens_q if tokens_k is None else _validate.labels(tokens_k, n_k, "tokens_k", "")
        super().__init__(
            uid=new_uid(),
            tokens_q=tokens_q,
            tokens_k=tokens_k,
            head_names=_validate.labels(head_names, n_heads, "head_names", "head "),
            head_queries=Q.tolist(),
            head_keys=K.tolist(),
            scale=resolve_scale(scale, d_k),
            query=_validate.index(query, n_q, "query"),
            head=_validate.index(head, n_heads, "head"),
            **kwargs,
        )

    @traitlets.validate("query")
    def _valid_query(self, proposal):
        return _validate.index(proposal["value"], len(self.tokens_q) or 1, "query")

    @traitlets.validate("head")
    def _valid_head(self, proposal):
        return _validate.index(proposal["value"], len(self.head_names) or 1, "head")

    @property
    def q(self) -> np.ndarray:
        """The current query vector, shape (d_k,)."""
        return np.array(self.head_queries[self.head][self.query], dtype=float)

    @property
    def K(self) -> np.ndarray:
        """The current head's keys, shape (n_k, d_k)."""
        return np.array(self.head_keys[self.head], dtype=float)

    @property
    def products(self) -> np.ndarray:
        """q∘k_j for every key, shape (n_k, d_k); each row sums to q · k_j."""
        return self.q[None, :] * self.K  # (1, d_k) * (n_k, d_k) -> (n_k, d_k)

    @property
    def scores(self) -> np.ndarray:
        """attnlib's scores ``scale * (q · k_j)``, shape (n_k,)."""
        return scaled_dot_product_scores(self.q[None, :], self.K, scale=self.scale)[0]  # (1, n_k) -> (n_k,)

    @property
    def weights(self) -> np.ndarray:
        """attnlib's softmax weights over the keys, shape (n_k,)."""
        return softmax(self.scores)

    def __repr__(self) -> str:
        return (f"NeuronView(n_heads={len(self.head_names)}, n_q={len(self.tokens_q)}, n_k={len(self.tokens_k)}, "
                f"d_k={len(self.head_queries[0][0])}, head={self.head}, query={self.query})")
