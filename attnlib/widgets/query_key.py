"""QueryKeyExplorer: slide a query over keys in the plane and watch the weights move.

Chapter 3 ("How attention works") uses it.  The browser redraws the weights from
the query with the same formula as :func:`attnlib.scaled_dot_product_attention`;
the Python side keeps ``weights`` and ``output`` computed by attnlib itself.
"""

from __future__ import annotations

import math

import anywidget
import numpy as np
import traitlets

from attnlib._validate import as_bool
from attnlib.attention import scaled_dot_product_attention
from attnlib.widgets import _validate
from attnlib.widgets._assets import bundle, new_uid, read_asset

TEMPERATURE_RANGE = (0.1, 5.0)  # the temperature slider's range


class QueryKeyExplorer(anywidget.AnyWidget):
    r"""Keys as points in 2-D, a query you move, and the softmax weights over the keys.

    .. math:: w = \operatorname{softmax}\!\left(\frac{K q}{\sqrt{d_k}\,\tau}\right),
              \qquad \text{output} = w^\top V

    The query moves with two sliders (and their arrow keys) or by dragging it on the
    plane with a mouse, pen or finger.  A temperature ``tau`` divides the scores.  The
    widget shows only what the reader has met: the output (and the values) appear with
    ``show_output=True``, the checkbox for the division by :math:`\sqrt{d_k}` with
    ``show_scale=True``.  It never makes values up: without ``V`` there is no output.

    Parameters
    ----------
    K : array_like, shape (n_k, 2)
        The keys, as points in the plane.
    V : array_like, shape (n_k, d_v), optional
        The values.  With ``d_v = 2`` and ``show_output=True`` they are drawn in the
        plane (squares) next to the output (a black diamond).
    query : array_like, shape (2,), optional
        Where the query starts (default: the first key's position, scaled by 0.6); it
        must lie in the plane, ``[-extent, extent]`` on both axes.
    temperature : float
        Divides the scores (default 1); in ``TEMPERATURE_RANGE``, the slider's range.
    scaled : bool
        Divide the scores by :math:`\sqrt{d_k}` as well (default False: the plain
        ``softmax(q · k)`` of chapter 1; the Transformer divides).
    show_output : bool
        Show the values and the output ``Σ_j w_j v_j`` (default False); needs ``V``.
    show_scale : bool
        Show the checkbox that switches the division by :math:`\sqrt{d_k}` (default False).
    labels : list of str, optional
        A name per key (default ``k0 ... k{n-1}``).
    extent : float, optional
        The plane shows ``[-extent, extent]`` on both axes (default: fits the keys, and
        the values when they are drawn).
    step : float
        The sliders' step (default 0.05); dragging snaps to it too.

    Setting ``query`` or ``temperature`` from Python to a value the view cannot show
    (a query outside the plane, a temperature outside the slider's range) raises a
    ``ValueError`` that names the range, as every attnlib widget does.

    Attributes
    ----------
    query : ndarray, shape (2,)
        The current query (moved in the browser, or set from Python).
    weights : ndarray, shape (n_k,)
        attnlib's weights for the current query.
    output : ndarray, shape (d_v,)
        attnlib's output for the current query (only when ``V`` was given).

    Examples
    --------
    >>> w = QueryKeyExplorer([[1.0, 0.0], [0.0, 1.0]], query=[1.0, 0.0])
    >>> w.weights.round(3)
    array([0.731, 0.269])
    >>> w.query = [0.0, 0.0]
    >>> w.weights
    array([0.5, 0.5])
    """

    _esm = bundle("query_key_explorer.js")
    _css = read_asset("widgets.css")

    uid = traitlets.Unicode().tag(sync=True)
    key_points = traitlets.List().tag(sync=True)  # K as a nested list (n_k, 2); not `keys`, which Widget owns
    value_points = traitlets.List().tag(sync=True)  # V (n_k, d_v)
    key_labels = traitlets.List(traitlets.Unicode()).tag(sync=True)
    query_point = traitlets.List(traitlets.Float()).tag(sync=True)
    temperature = traitlets.Float(1.0).tag(sync=True)
    temperature_min = traitlets.Float(TEMPERATURE_RANGE[0]).tag(sync=True)  # the slider's range
    temperature_max = traitlets.Float(TEMPERATURE_RANGE[1]).tag(sync=True)
    scaled = traitlets.Bool(False).tag(sync=True)
    extent = traitlets.Float(1.0).tag(sync=True)
    step = traitlets.Float(0.05).tag(sync=True)
    show_output = traitlets.Bool(False).tag(sync=True)
    show_scale = traitlets.Bool(False).tag(sync=True)
    current_weights = traitlets.List().tag(sync=True)  # attnlib's, for the current query
    current_output = traitlets.List().tag(sync=True)

    def __init__(self, K, V=None, query=None, *, temperature=1.0, scaled=False, show_output=False,
                 show_scale=False, labels=None, extent=None, step=0.05, **kwargs):
        K = _validate.matrix(K, "K", "n_k", "d_k")
        if K.shape[1] != 2:
            raise ValueError(f"K must have shape (n_k, 2): the explorer draws keys in a plane; got {K.shape}")
        if V is not None:
            V = _validate.matrix(V, "V", "n_k", "d_v")
            if V.shape[0] != K.shape[0]:
                raise ValueError(
                    f"K has n_k={K.shape[0]} keys but V has {V.shape[0]} values; every key needs one value"
                )
        show_output = as_bool(show_output, "show_output")
        if show_output and V is None:
            raise ValueError("show_output=True needs the values V: the output is their weighted sum")
        step = _validate.positive_number(step, "step")
        if extent is None:  # fit the keys, and the values when they are drawn in the plane too
            drawn = [K] + ([V] if show_output and V.shape[1] == 2 else [])
            extent = max(1.0, math.ceil(1.2 * max(float(np.abs(a).max()) for a in drawn)))
        extent = _validate.positive_number(extent, "extent")
        query = 0.6 * K[0] if query is None else self._check_query(query)
        super().__init__(
            uid=new_uid(),
            key_points=K.tolist(),
            value_points=[] if V is None else V.tolist(),
            key_labels=_validate.labels(labels, K.shape[0], "labels", "k"),
            extent=extent,
            query_point=[float(x) for x in query],
            temperature=_validate.in_range(temperature, "temperature", *TEMPERATURE_RANGE,
                                           why="the temperature slider's range"),
            scaled=as_bool(scaled, "scaled"),
            step=step,
            show_output=show_output,
            show_scale=as_bool(show_scale, "show_scale"),
            **kwargs,
        )
        self._recompute()

    @staticmethod
    def _check_query(query) -> np.ndarray:
        q = np.asarray(query, dtype=float) if not isinstance(query, (str, bytes)) else None
        if q is None or q.shape != (2,):
            shape = getattr(q, "shape", type(query).__name__)
            raise ValueError(f"query must be a point (x, y) of shape (2,), got {shape}")
        if not np.all(np.isfinite(q)):
            raise ValueError(f"query must be finite, got {q.tolist()}")
        return q

    @traitlets.validate("temperature")
    def _valid_temperature(self, proposal):
        return _validate.in_range(proposal["value"], "temperature", *TEMPERATURE_RANGE,
                                  why="the temperature slider's range")

    @traitlets.validate("query_point")
    def _valid_query_point(self, proposal):
        q = self._check_query(proposal["value"])
        L = self.extent
        if np.any(np.abs(q) > L * (1 + 1e-12)):
            raise ValueError(
                f"query {q.tolist()} lies outside the plane [-{L:g}, {L:g}] x [-{L:g}, {L:g}] that the "
                f"explorer shows; move it inside, or make the plane larger with extent="
            )
        return [float(x) for x in q]

    @traitlets.observe("query_point", "temperature", "scaled")
    def _on_change(self, change):
        self._recompute()

    def _recompute(self) -> None:
        V = self.V if self.value_points else self.K  # without values, only the weights are used
        out, w = scaled_dot_product_attention(self.query[None, :], self.K, V, scale=self.scale)
        self.current_weights = w[0].tolist()  # (1, n_k) -> (n_k,)
        self.current_output = out[0].tolist() if self.value_points else []  # (1, d_v) -> (d_v,)

    @property
    def K(self) -> np.ndarray:
        """The keys, shape (n_k, 2)."""
        return np.array(self.key_points, dtype=float)

    @property
    def V(self) -> np.ndarray | None:
        """The values, shape (n_k, d_v), or None when none were given."""
        return np.array(self.value_points, dtype=float) if self.value_points else None

    @property
    def query(self) -> np.ndarray:
        """The current query, shape (2,)."""
        return np.array(self.query_point, dtype=float)

    @query.setter
    def query(self, value) -> None:
        self.query_point = [float(x) for x in self._check_query(value)]

    @property
    def scale(self) -> float:
        """What multiplies ``q · k``: ``1/(sqrt(d_k) * temperature)``, or ``1/temperature`` unscaled."""
        return (1.0 / math.sqrt(2) if self.scaled else 1.0) / self.temperature

    @property
    def weights(self) -> np.ndarray:
        """attnlib's attention weights for the current query, shape (n_k,)."""
        return np.array(self.current_weights, dtype=float)

    @property
    def output(self) -> np.ndarray:
        """attnlib's output (the weighted sum of the values), shape (d_v,); needs ``V``."""
        if not self.value_points:
            raise ValueError("this explorer has no values, so no output: pass V to get one")
        return np.array(self.current_output, dtype=float)

    def __repr__(self) -> str:
        q = ", ".join(f"{x:.2f}" for x in self.query_point)
        d_v = len(self.value_points[0]) if self.value_points else None
        return (f"QueryKeyExplorer(n_k={len(self.key_points)}, d_v={d_v}, "
                f"query=[{q}], temperature={self.temperature:g}, scaled={self.scaled})")
