"""A plain recurrent encoder: the fixed-size memory that attention replaces.

A recurrent network reads a sequence one token at a time and keeps a single
hidden state ``h`` of fixed width ``d_hidden``.  Chapter 2 ("The problem
attention solves") measures what that costs: the final state forgets early
tokens, and the steps cannot run in parallel.
"""

from __future__ import annotations

import numpy as np

from attnlib._validate import as_float_array, check_finite, check_rng, positive_int, positive_number

_WEIGHTS = ("W_xh", "W_hh", "b_h")


def init_rnn(d_in: int, d_hidden: int, rng: np.random.Generator, *,
             spectral_radius: float = 0.9, input_scale: float = 1.0) -> dict:
    r"""Random parameters for a tanh recurrent network (an untrained encoder).

    ``W_hh`` is a random orthogonal matrix times ``spectral_radius``, so every
    eigenvalue has modulus exactly ``spectral_radius``: ``W_hh`` alone shrinks an
    old input's trace by that factor at every step, and tanh's slope (below 1)
    shrinks it further (:func:`trace_shrink` measures the two together).  ``W_xh`` is drawn from
    N(0, input_scale**2 / d_in); ``b_h`` starts at zero.

    .. math:: W_{hh} = \rho\, O, \quad O^\top O = I

    Chapter 2 uses it as the encoder whose final state is its only memory.

    Parameters
    ----------
    d_in : int
        Width of an input token vector.
    d_hidden : int
        Width of the hidden state.
    rng : numpy.random.Generator
    spectral_radius : float
        The largest eigenvalue modulus of ``W_hh`` (positive, finite).
    input_scale : float
        Standard deviation scale of the input weights (positive, finite).

    Returns
    -------
    dict with ``W_xh (d_in, d_hidden)``, ``W_hh (d_hidden, d_hidden)`` and ``b_h (d_hidden,)``.

    Examples
    --------
    >>> p = init_rnn(4, 3, np.random.default_rng(0), spectral_radius=0.5)
    >>> p["W_xh"].shape, p["W_hh"].shape, p["b_h"].shape
    ((4, 3), (3, 3), (3,))
    >>> np.abs(np.linalg.eigvals(p["W_hh"])).round(6)
    array([0.5, 0.5, 0.5])
    """
    check_rng(rng)
    d_in = positive_int(d_in, "d_in")
    d_hidden = positive_int(d_hidden, "d_hidden")
    spectral_radius = positive_number(spectral_radius, "spectral_radius")
    input_scale = positive_number(input_scale, "input_scale")
    G = rng.normal(size=(d_hidden, d_hidden))  # (d_hidden, d_hidden)
    O, R = np.linalg.qr(G)  # O (d_hidden, d_hidden) orthogonal
    O = O * np.sign(np.diag(R))  # fix the signs so O is uniformly distributed
    return {
        "W_xh": rng.normal(0.0, input_scale / np.sqrt(d_in), size=(d_in, d_hidden)),
        "W_hh": spectral_radius * O,
        "b_h": np.zeros(d_hidden),
    }


def check_rnn_params(params) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validate RNN parameters; return ``(W_xh, W_hh, b_h)`` as float arrays.

    Raises ``TypeError``/``ValueError`` that say what was expected and what arrived.
    """
    if not isinstance(params, dict):
        raise TypeError(f"params must be a dict with W_xh, W_hh, b_h, got {type(params).__name__}")
    missing = [name for name in _WEIGHTS if name not in params]
    if missing:
        raise ValueError(f"params is missing {missing}; expected W_xh, W_hh and b_h (see init_rnn)")
    unknown = sorted(set(params) - set(_WEIGHTS), key=str)
    if unknown:
        raise ValueError(f"params has unknown keys {unknown}; the RNN uses W_xh, W_hh and b_h")
    W_xh = as_float_array(params["W_xh"], "W_xh")
    W_hh = as_float_array(params["W_hh"], "W_hh")
    b_h = as_float_array(params["b_h"], "b_h")
    if W_xh.ndim != 2:
        raise ValueError(f"W_xh must have shape (d_in, d_hidden), got {W_xh.shape}")
    d_hidden = W_xh.shape[1]
    if W_hh.shape != (d_hidden, d_hidden):
        raise ValueError(f"W_hh should have shape {(d_hidden, d_hidden)} for d_hidden={d_hidden}, "
                         f"got {W_hh.shape}")
    if b_h.shape != (d_hidden,):
        raise ValueError(f"b_h should have shape {(d_hidden,)} for d_hidden={d_hidden}, got {b_h.shape}")
    for name, arr in (("W_xh", W_xh), ("W_hh", W_hh), ("b_h", b_h)):
        check_finite(arr, name)
    return W_xh, W_hh, b_h


def rnn_step(x, h, params: dict) -> np.ndarray:
    r"""One step of the recurrence: mix the new input into the hidden state.

    .. math:: h_t = \tanh(x_t W_{xh} + h_{t-1} W_{hh} + b_h)

    Chapter 2 explains why this step is the bottleneck.

    Parameters
    ----------
    x : array_like, shape (..., d_in)
        The input at step t.
    h : array_like, shape (..., d_hidden)
        The previous hidden state (broadcasts against ``x``'s leading dimensions).
    params : dict
        ``W_xh (d_in, d_hidden)``, ``W_hh (d_hidden, d_hidden)``, ``b_h (d_hidden,)``.

    Returns
    -------
    ndarray, shape (..., d_hidden)

    Examples
    --------
    >>> p = {"W_xh": np.eye(2), "W_hh": np.zeros((2, 2)), "b_h": np.zeros(2)}
    >>> rnn_step(np.array([0.5, 0.0]), np.zeros(2), p).round(4)
    array([0.4621, 0.    ])
    """
    W_xh, W_hh, b_h = check_rnn_params(params)
    x = as_float_array(x, "x", min_ndim=1)
    h = as_float_array(h, "h", min_ndim=1)
    if x.shape[-1] != W_xh.shape[0]:
        raise ValueError(f"x has d_in={x.shape[-1]} but W_xh expects d_in={W_xh.shape[0]}")
    if h.shape[-1] != W_hh.shape[0]:
        raise ValueError(f"h has d_hidden={h.shape[-1]} but W_hh expects d_hidden={W_hh.shape[0]}")
    # (..., d_in) @ (d_in, d_hidden) + (..., d_hidden) @ (d_hidden, d_hidden) -> (..., d_hidden)
    return np.tanh(x @ W_xh + h @ W_hh + b_h)


def rnn_encode(X, params: dict, h0=None, *, activation: str = "tanh") -> np.ndarray:
    r"""Run the recurrence over a whole sequence; return every hidden state.

    .. math:: h_t = \tanh(x_t W_{xh} + h_{t-1} W_{hh} + b_h), \quad t = 1, \dots, n

    The loop is the point: step t needs step t - 1, so the n steps run one after
    another.  The last row, ``states[..., -1, :]``, is all a classic encoder passes on.
    Chapter 2 measures how much of the sequence it still holds.  With
    ``activation="linear"`` the squashing is left out,
    :math:`h_t = x_t W_{xh} + h_{t-1} W_{hh} + b_h`: the control arm of chapter 2's
    page on how forgetting was measured, where only ``W_hh`` shrinks old inputs.

    Parameters
    ----------
    X : array_like, shape (..., n, d_in)
        A sequence of input vectors (leading dimensions are a batch of sequences).
    params : dict
        From :func:`init_rnn`.
    h0 : array_like, shape (..., d_hidden), optional
        The initial state; zeros by default.
    activation : {"tanh", "linear"}
        The squashing applied at every step; ``"linear"`` applies none.

    Returns
    -------
    states : ndarray, shape (..., n, d_hidden)
        ``states[..., t, :]`` is the state after reading ``X[..., t, :]``.

    Examples
    --------
    >>> p = {"W_xh": np.eye(2), "W_hh": 0.5 * np.eye(2), "b_h": np.zeros(2)}
    >>> rnn_encode(np.array([[1.0, 0.0], [0.0, 0.0]]), p).round(4)
    array([[0.7616, 0.    ],
           [0.3634, 0.    ]])
    """
    W_xh, W_hh, b_h = check_rnn_params(params)
    if activation not in ("tanh", "linear"):
        raise ValueError(f"activation must be 'tanh' or 'linear', got {activation!r}")
    squash = np.tanh if activation == "tanh" else (lambda z: z)
    X = as_float_array(X, "X", min_ndim=2)
    n, d_in = X.shape[-2], X.shape[-1]
    if d_in != W_xh.shape[0]:
        raise ValueError(f"X has d_in={d_in} but W_xh expects d_in={W_xh.shape[0]}")
    if n == 0:
        raise ValueError(f"X has n=0 steps (shape {X.shape}); the encoder needs at least one token")
    check_finite(X, "X")
    d_hidden = W_xh.shape[1]
    lead = X.shape[:-2]
    if h0 is None:
        h = np.zeros((*lead, d_hidden))
    else:
        h = as_float_array(h0, "h0", min_ndim=1)
        if h.shape[-1] != d_hidden:
            raise ValueError(f"h0 has d_hidden={h.shape[-1]} but the network has d_hidden={d_hidden}")
        check_finite(h, "h0")
        try:
            h = np.broadcast_to(h, (*lead, d_hidden))
        except ValueError:
            raise ValueError(f"h0 of shape {h.shape} does not broadcast to the batch of states "
                             f"{(*lead, d_hidden)}") from None
    inputs = X @ W_xh + b_h  # (..., n, d_in) @ (d_in, d_hidden) -> (..., n, d_hidden): all steps at once
    states = np.empty((*lead, n, d_hidden))
    for t in range(n):  # sequential: step t needs h from step t - 1
        h = squash(inputs[..., t, :] + h @ W_hh)  # (..., d_hidden) @ (d_hidden, d_hidden) -> (..., d_hidden)
        states[..., t, :] = h
    return states


def trace_shrink(X, params: dict, rng: np.random.Generator, *, start: int = 0) -> float:
    r"""Measured factor by which a small change in the state shrinks per step, on real inputs.

    An input's trace in the state is a change to :math:`h_t` that later steps
    carry along.  For a small change :math:`\delta h_{t-1}`, one step of the
    tanh recurrence gives

    .. math:: \delta h_t = (\delta h_{t-1} W_{hh}) \odot (1 - h_t^2)

    so the trace shrinks both by ``W_hh`` (a factor ``spectral_radius`` for the
    orthogonal matrices of :func:`init_rnn`) and by tanh's slope
    :math:`1 - h_t^2 \le 1`.  This function runs the encoder on ``X``, follows
    a random unit change from step ``start`` to the end, and returns the
    geometric mean of :math:`\lVert \delta h_t \rVert / \lVert \delta h_{t-1} \rVert`
    over steps and sequences.  Chapter 2 uses it to separate decay from the
    squashing of tanh.

    Parameters
    ----------
    X : array_like, shape (n_sequences, n, d_in)
    params : dict
        From :func:`init_rnn`.
    rng : numpy.random.Generator
        Draws the starting directions.
    start : int
        The step (0-based) whose state receives the change; at least one step must follow.

    Returns
    -------
    float
        The per-step factor; ``spectral_radius`` exactly for a network without tanh.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> p = init_rnn(4, 8, rng, spectral_radius=0.5)
    >>> tiny = 1e-6 * rng.normal(size=(3, 10, 4))  # inputs so small that tanh is linear
    >>> round(trace_shrink(tiny, p, rng), 4)
    0.5
    """
    check_rng(rng)
    states = rnn_encode(X, params)  # (..., n, d_hidden)
    if states.ndim != 3:
        raise ValueError(f"X must have shape (n_sequences, n, d_in), got {np.shape(X)}")
    n = states.shape[1]
    if isinstance(start, bool) or not isinstance(start, (int, np.integer)) or not 0 <= start < n - 1:
        raise ValueError(f"start must be an integer step with 0 <= start < n - 1 = {n - 1}, got {start!r}")
    W_hh = check_rnn_params(params)[1]
    delta = rng.normal(size=(states.shape[0], states.shape[2]))  # (n_seq, d_hidden)
    delta /= np.linalg.norm(delta, axis=-1, keepdims=True)
    logs = []
    for t in range(start + 1, n):
        new = (delta @ W_hh) * (1.0 - states[:, t] ** 2)  # (n_seq, d_hidden): the change one step later
        norm = np.linalg.norm(new, axis=-1, keepdims=True)  # (n_seq, 1)
        logs.append(np.log(norm[:, 0]))
        delta = new / norm  # keep unit length; the factor is recorded
    return float(np.exp(np.mean(logs)))
