"""The few training parts a small transformer needs, each with its backward pass.

Token and position embeddings, the unembedding, the cross-entropy loss and the
Adam optimiser: enough, with :mod:`attnlib.backward`, to train an attention-only
transformer in plain numpy.  The residual stream needs nothing: ``x + f(x)`` passes
the gradient of ``x + f(x)`` to ``x`` unchanged and adds ``f``'s share.

Every backward function returns the gradient of ``sum(output * d_output)`` with
respect to its inputs, as in :mod:`attnlib.backward`; float64 inputs give float64
gradients (exact enough for central-difference checks), float32 stays float32.
Chapter 6's page "Watch a GPT learn to copy" uses them.
"""

from __future__ import annotations

import numpy as np

from attnlib._validate import as_float_array, check_finite, gradient_like, positive_number


def _check_tokens(tokens, n_vocab: int, name: str = "tokens") -> np.ndarray:
    """Return ``tokens`` as an integer array with values in ``0 .. n_vocab - 1``, or raise."""
    arr = np.asarray(tokens)
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"{name} must be integers (token ids), got dtype {arr.dtype}")
    if arr.size and (arr.min() < 0 or arr.max() >= n_vocab):
        raise ValueError(
            f"{name} must lie in 0 .. {n_vocab - 1} (the vocabulary has {n_vocab} tokens), "
            f"got values from {arr.min()} to {arr.max()}"
        )
    return arr


def _check_table(table, name: str) -> np.ndarray:
    """An embedding or unembedding matrix: a finite 2-d float array."""
    arr = as_float_array(table, name)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a matrix (2 dimensions), got shape {arr.shape}")
    check_finite(arr, name)
    return arr


# --- embeddings -------------------------------------------------------------------------------

def embed(E, tokens) -> np.ndarray:
    r"""Look up one row of ``E`` per token: :math:`X_{t} = E_{\text{tokens}_t}`.

    The same function embeds positions: ``embed(P, np.arange(n))`` gives the first
    ``n`` rows of a learned position table ``P``.

    Parameters
    ----------
    E : array_like, shape (n_vocab, d_model)
        The embedding table, one row per token (or per position).
    tokens : array_like of int, shape (...)
        Token ids in ``0 .. n_vocab - 1``.

    Returns
    -------
    ndarray, shape (..., d_model)

    Examples
    --------
    >>> E = np.array([[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]])  # 3 tokens, d_model = 2
    >>> embed(E, [[2, 0]])
    array([[[4., 5.],
            [0., 1.]]])
    """
    E = _check_table(E, "E")
    tokens = _check_tokens(tokens, E.shape[0])
    return E[tokens]  # (..., d_model)


def embed_backward(E, tokens, d_X) -> np.ndarray:
    r"""Gradient of :func:`embed` for the table: each token's row collects its gradients.

    .. math:: dE_v = \sum_{t:\ \text{tokens}_t = v} dX_t

    A token that appears twice gets the sum of both gradients (``np.add.at``, a
    scatter-add; ``dE[tokens] += d_X`` would keep only one of them).  ``tokens`` may
    broadcast against the leading dimensions of ``d_X``: positions ``np.arange(n)``
    against ``d_X`` of shape ``(batch, n, d_model)`` sum the batch.

    Parameters
    ----------
    E : array_like, shape (n_vocab, d_model)
        The table used in the forward call (for its shape and dtype).
    tokens : array_like of int, shape (...)
    d_X : array_like, shape (..., d_model)
        The gradient arriving at the embeddings.

    Returns
    -------
    dE : ndarray, shape (n_vocab, d_model)
        Zero for tokens that did not occur.

    Examples
    --------
    >>> E = np.zeros((3, 2))
    >>> embed_backward(E, [1, 0, 1], np.array([[1.0, 1.0], [5.0, 5.0], [2.0, 3.0]]))
    array([[5., 5.],
           [3., 4.],
           [0., 0.]])
    """
    E = _check_table(E, "E")
    tokens = _check_tokens(tokens, E.shape[0])
    d_X = as_float_array(d_X, "d_X", min_ndim=1)
    if d_X.shape[-1] != E.shape[1]:
        raise ValueError(f"d_X has d_model={d_X.shape[-1]} but E has d_model={E.shape[1]}; they must match")
    try:
        lead = np.broadcast_shapes(tokens.shape, d_X.shape[:-1])
    except ValueError:
        lead = None
    if lead != d_X.shape[:-1]:
        raise ValueError(
            f"d_X must have shape (*tokens.shape, d_model); tokens of shape {tokens.shape} do not match "
            f"d_X of shape {d_X.shape}"
        )
    check_finite(d_X, "d_X")
    dE = np.zeros(E.shape, dtype=np.result_type(E, d_X))  # (n_vocab, d_model)
    np.add.at(dE, np.broadcast_to(tokens, lead), d_X)  # dE[tokens[t]] += d_X[t], for every t
    return dE


# --- unembedding -----------------------------------------------------------------------------

def _check_x_and_U(X, U) -> tuple[np.ndarray, np.ndarray]:
    X = as_float_array(X, "X", min_ndim=1)
    U = _check_table(U, "U")
    if X.shape[-1] != U.shape[0]:
        raise ValueError(f"X has d_model={X.shape[-1]} but U has {U.shape[0]} rows; U must be (d_model, n_vocab)")
    check_finite(X, "X")
    return X, U


def unembed(X, U) -> np.ndarray:
    r"""Logits, one score per vocabulary token: :math:`\text{logits} = X U`.

    Parameters
    ----------
    X : array_like, shape (..., d_model)
        The residual stream at the end of the model.
    U : array_like, shape (d_model, n_vocab)
        The unembedding matrix.

    Returns
    -------
    logits : ndarray, shape (..., n_vocab)

    Examples
    --------
    >>> unembed(np.array([[1.0, 2.0]]), np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]]))
    array([[1., 2., 3.]])
    """
    X, U = _check_x_and_U(X, U)
    return X @ U  # (..., d_model) @ (d_model, n_vocab) -> (..., n_vocab)


def unembed_backward(X, U, d_logits) -> tuple[np.ndarray, np.ndarray]:
    r"""Gradients of :func:`unembed`: :math:`dX = d\text{logits}\, U^\top`, :math:`dU = \sum X^\top d\text{logits}`.

    The sum for ``dU`` runs over every position of every batch entry.

    Parameters
    ----------
    X : array_like, shape (..., d_model)
    U : array_like, shape (d_model, n_vocab)
    d_logits : array_like, shape (..., n_vocab)
        The gradient arriving at the logits.

    Returns
    -------
    dX : ndarray, shape (..., d_model)
    dU : ndarray, shape (d_model, n_vocab)

    Examples
    --------
    >>> dX, dU = unembed_backward(np.array([[1.0, 2.0]]), np.eye(2), np.array([[1.0, -1.0]]))
    >>> dX, dU
    (array([[ 1., -1.]]), array([[ 1., -1.],
           [ 2., -2.]]))
    """
    X, U = _check_x_and_U(X, U)
    d_logits = gradient_like(d_logits, (*X.shape[:-1], U.shape[1]), "d_logits", "the logits (..., n_vocab)")
    dX = d_logits @ U.T  # (..., n_vocab) @ (n_vocab, d_model) -> (..., d_model)
    dU = X.reshape(-1, X.shape[-1]).T @ d_logits.reshape(-1, U.shape[1])  # (d_model, rows) @ (rows, n_vocab)
    return dX, dU


# --- the loss ----------------------------------------------------------------------------------

def log_softmax(x, axis: int = -1) -> np.ndarray:
    r"""The logarithm of the softmax, computed without overflow: :math:`x_i - m - \log \sum_j e^{x_j - m}`.

    Examples
    --------
    >>> log_softmax(np.array([1000.0, 1000.0]))  # log(1/2) each; exp(1000) would overflow
    array([-0.69314718, -0.69314718])
    """
    x = as_float_array(x, "x", min_ndim=1)
    check_finite(x, "x")
    z = x - np.max(x, axis=axis, keepdims=True)  # the largest entry is 0: exp cannot overflow
    return z - np.log(np.sum(np.exp(z), axis=axis, keepdims=True))


def cross_entropy(logits, targets, weights=None) -> tuple[float, np.ndarray]:
    r"""Mean softmax cross-entropy of integer targets, and its gradient for the logits.

    With :math:`p = \operatorname{softmax}(\text{logits})` at each position :math:`t`
    and weights :math:`w_t` (all 1 by default):

    .. math:: L = \frac{\sum_t w_t\,(-\log p_{t, y_t})}{\sum_t w_t}, \qquad
              \frac{\partial L}{\partial \text{logits}_t} = \frac{w_t}{\sum_s w_s}\,(p_t - \text{onehot}(y_t))

    The gradient is so short that it comes with the loss.  A weight of 0 leaves a
    position out (for example padding, or positions with nothing to predict).

    Parameters
    ----------
    logits : array_like, shape (..., n_vocab)
    targets : array_like of int, shape (...)
        The correct token at each position, in ``0 .. n_vocab - 1``.
    weights : array_like, shape (...), optional
        Non-negative weights (or a boolean mask) per position; at least one positive.

    Returns
    -------
    loss : float
        The (weighted) mean of :math:`-\log p_{t, y_t}`, in nats.
    d_logits : ndarray, shape (..., n_vocab)
        :math:`\partial L / \partial \text{logits}`.

    Examples
    --------
    >>> loss, d_logits = cross_entropy(np.zeros((2, 4)), [1, 3])  # uniform guesses over 4 tokens
    >>> round(loss, 4)  # log 4
    1.3863
    >>> d_logits
    array([[ 0.125, -0.375,  0.125,  0.125],
           [ 0.125,  0.125,  0.125, -0.375]])
    """
    logits = as_float_array(logits, "logits", min_ndim=1)
    check_finite(logits, "logits")
    targets = _check_tokens(targets, logits.shape[-1], "targets")
    if targets.shape != logits.shape[:-1]:
        raise ValueError(
            f"targets must have shape {logits.shape[:-1]} (one per row of logits {logits.shape}), "
            f"got {targets.shape}"
        )
    if weights is None:
        w = np.ones(targets.shape, dtype=logits.dtype)  # (...)
    else:
        w = np.asarray(weights)
        if w.shape != targets.shape:
            raise ValueError(f"weights must have the targets' shape {targets.shape}, got {w.shape}")
        w = as_float_array(w.astype(logits.dtype) if w.dtype == bool else w, "weights")  # (...)
        check_finite(w, "weights")
        if (w < 0).any() or not w.sum() > 0:
            raise ValueError("weights must be >= 0 with at least one positive weight")
    total = w.sum()

    log_p = log_softmax(logits)  # (..., n_vocab)
    log_p_target = np.take_along_axis(log_p, targets[..., None], axis=-1)[..., 0]  # (...): log p_{t, y_t}
    loss = -np.sum(w * log_p_target) / total

    onehot = np.eye(logits.shape[-1], dtype=logits.dtype)[targets]  # (..., n_vocab)
    d_logits = (np.exp(log_p) - onehot) * (w / total)[..., None]  # (..., n_vocab)
    return float(loss), d_logits


# --- the optimiser -----------------------------------------------------------------------------

class Adam:
    r"""The Adam optimiser (Kingma and Ba, 2015) for a dict of parameter arrays.

    For each parameter :math:`\theta` with gradient :math:`g`, at step :math:`t = 1, 2, \dots`:

    .. math::
        m \leftarrow \beta_1 m + (1 - \beta_1) g, \quad
        v \leftarrow \beta_2 v + (1 - \beta_2) g^2, \quad
        \theta \leftarrow \theta - \text{lr}\,\frac{m / (1 - \beta_1^t)}{\sqrt{v / (1 - \beta_2^t)} + \varepsilon}

    The moments :math:`m, v` start at zero; dividing by :math:`1 - \beta^t` undoes
    that start's pull towards zero.  The optimiser keeps only the moments and
    :math:`t`; :meth:`step` returns new parameter arrays and leaves the old ones as
    they were.

    Parameters
    ----------
    params : dict of array_like
        The parameters to be trained (for their names and shapes).
    lr : float
        The learning rate: about the largest change of a parameter per step.
    betas : tuple of two floats in [0, 1)
        Decay rates of the moments :math:`m` and :math:`v`.
    eps : float
        Keeps the division finite when :math:`v` is 0.

    Examples
    --------
    >>> adam = Adam({"w": np.array([1.0, -1.0])}, lr=0.1)
    >>> adam.step({"w": np.array([1.0, -1.0])}, {"w": np.array([3.0, -0.01])})["w"].round(6)
    array([ 0.9, -0.9])

    The first step moves every parameter by about ``lr``, whatever the size of its gradient.
    """

    def __init__(self, params: dict, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8):
        if not isinstance(params, dict) or not params:
            raise TypeError(f"params must be a non-empty dict of arrays, got {type(params).__name__}")
        lr, eps = positive_number(lr, "lr"), positive_number(eps, "eps")
        if not (isinstance(betas, (tuple, list)) and len(betas) == 2):
            raise TypeError(f"betas must be two numbers in [0, 1), got {betas!r}")
        betas = tuple(positive_number(b, f"betas[{i}]") if b != 0 else 0.0 for i, b in enumerate(betas))
        if not all(b < 1 for b in betas):
            raise ValueError(f"betas must be two numbers in [0, 1), got {betas!r}")
        self.lr, self.betas, self.eps = lr, betas, eps
        arrays = {name: as_float_array(p, name) for name, p in params.items()}
        self.shapes = {name: p.shape for name, p in arrays.items()}
        self.m = {name: np.zeros_like(p) for name, p in arrays.items()}  # first moments
        self.v = {name: np.zeros_like(p) for name, p in arrays.items()}  # second moments
        self.t = 0  # steps taken

    def step(self, params: dict, grads: dict) -> dict:
        """One Adam update: return new parameters ``{name: params[name] - update}``.

        ``params`` and ``grads`` must have the names and shapes the optimiser was made
        with.  The dtype of each parameter is kept (float32 stays float32).  Every argument
        is checked before anything changes: a refused step leaves ``t`` and the moments as they were.
        """
        for label, d in (("params", params), ("grads", grads)):
            if not isinstance(d, dict) or set(d) != set(self.shapes):
                got = sorted(d, key=str) if isinstance(d, dict) else type(d).__name__
                raise ValueError(f"{label} must have the keys {sorted(self.shapes)}, got {got}")
        checked = {}
        for name, shape in self.shapes.items():
            p = as_float_array(params[name], name)
            g = as_float_array(grads[name], f"the gradient of {name}")
            if p.shape != shape or g.shape != shape:
                raise ValueError(f"{name} should have shape {shape}, got parameter {p.shape} and gradient {g.shape}")
            check_finite(g, f"the gradient of {name}")
            checked[name] = p, g
        beta1, beta2 = self.betas
        self.t += 1
        new = {}
        for name, (p, g) in checked.items():
            self.m[name] = beta1 * self.m[name] + (1 - beta1) * g
            self.v[name] = beta2 * self.v[name] + (1 - beta2) * g**2
            m_hat = self.m[name] / (1 - beta1**self.t)  # bias-corrected moments
            v_hat = self.v[name] / (1 - beta2**self.t)
            new[name] = (p - self.lr * m_hat / (np.sqrt(v_hat) + self.eps)).astype(p.dtype, copy=False)
        return new
