"""TrainingView: slide over training time and watch attention patterns form.

The induction-heads-evidence page (under chapter 6) uses it.  A slider picks a checkpoint; the
widget shows every layer's attention on a fixed probe sequence at that step, as
heatmap tables, and the loss curve up to that step.  All checkpoints are computed in
Python at training time and embedded in the widget's state, so the browser only picks
one: it works on the static book without a kernel.
"""

from __future__ import annotations

import anywidget
import numpy as np
import traitlets

from attnlib._validate import as_float_array, check_finite
from attnlib.widgets import _validate
from attnlib.widgets._assets import bundle, new_uid, read_asset


class TrainingView(anywidget.AnyWidget):
    """Attention patterns at a training checkpoint chosen with a slider, with the loss so far.

    Parameters
    ----------
    steps : array_like of int, shape (n_checkpoints,)
        The training step of each checkpoint, increasing.
    weights : array_like, shape (n_checkpoints, n_layers, T, T) or (n_checkpoints, n_layers, T, N)
        Each layer's attention weights on the probe sequence at each checkpoint (``N`` keys
        when they come from another sequence: cross-attention).
    tokens : list of str, length T
        Labels of the probe's positions (the queries; also the keys unless ``key_tokens``).
    loss_steps, losses : array_like, shape (n,)
        The loss curve (e.g. a running mean of the training loss), drawn up to the
        chosen checkpoint's step.
    layer_names : list of str, optional
        Titles of the layers (default ``layer 0 ... layer n-1``).
    reference : float, optional
        A loss level drawn as a dashed line (e.g. ``log(n_vocab)``, the loss of guessing).
    loss_label : str
        What the loss curve is, as the readout and the chart's caption name it (default
        ``"loss"``; e.g. ``"loss on the repeated half"``).
    checkpoint : int
        The checkpoint shown first (default the last).
    key_tokens : list of str, length N, optional
        Labels of the keys, when they are another sequence's (cross-attention).
    causal : bool
        Hide the weights above the diagonal (keys after the query), as in a GPT (default);
        ``False`` shows every weight.

    Attributes
    ----------
    checkpoint : int
        The chosen checkpoint (moved by the slider in the browser).
    weights : ndarray, shape (n_layers, T, T)
        The weights shown at that checkpoint, as the view holds them: rounded to 3 decimals
        (the view prints 2).

    Setting ``checkpoint`` from Python to one that does not exist raises a ``ValueError``,
    as every attnlib widget does.

    Examples
    --------
    >>> w = np.zeros((2, 1, 2, 2)); w[:, :, :, 0] = 1; w[1, 0, 1] = [0.5, 0.5]
    >>> v = TrainingView([0, 10], w, ["a", "b"], [0, 10], [3.0, 2.0], checkpoint=0)
    >>> v.checkpoint = 1
    >>> v.weights[0, 1]
    array([0.5, 0.5])
    >>> v.loss_label
    'loss'
    >>> TrainingView([0], w[:1], ["a", "b"], [0], [1.0], loss_label=" ")
    Traceback (most recent call last):
    ...
    TypeError: loss_label must be a non-empty string, got ' '
    """

    _esm = bundle("training_view.js")
    _css = read_asset("widgets.css") + "\n" + read_asset("training_view.css")

    uid = traitlets.Unicode().tag(sync=True)
    tokens = traitlets.List(traitlets.Unicode()).tag(sync=True)
    layer_names = traitlets.List(traitlets.Unicode()).tag(sync=True)
    steps = traitlets.List(traitlets.Int()).tag(sync=True)
    checkpoint_weights = traitlets.List().tag(sync=True)  # (n_checkpoints, n_layers, T, T)
    loss_steps = traitlets.List().tag(sync=True)
    losses = traitlets.List().tag(sync=True)
    reference = traitlets.Float(allow_none=True).tag(sync=True)
    checkpoint = traitlets.Int(0).tag(sync=True)
    key_tokens = traitlets.List(traitlets.Unicode()).tag(sync=True)  # empty: the keys are ``tokens``
    causal = traitlets.Bool(True).tag(sync=True)
    loss_label = traitlets.Unicode("loss").tag(sync=True)

    def __init__(self, steps, weights, tokens, loss_steps, losses, *, layer_names=None, reference=None,
                 checkpoint=None, key_tokens=None, causal=True, loss_label="loss", **kwargs):
        steps = np.asarray(steps)
        if steps.ndim != 1 or steps.size == 0 or not np.issubdtype(steps.dtype, np.integer):
            raise ValueError(f"steps must be a non-empty 1-D int array, got {steps.dtype} of shape {steps.shape}")
        if np.any(np.diff(steps) <= 0):
            raise ValueError("steps must be strictly increasing")
        W = _validate.attention_weights(weights, "weights", ("n_checkpoints", "n_layers", "T", "N"))
        if not isinstance(causal, (bool, np.bool_)):
            raise TypeError(f"causal must be True or False, got {causal!r}")
        square = key_tokens is None
        if W.shape[0] != steps.size or (square and W.shape[2] != W.shape[3]):
            raise ValueError(f"weights must have shape (n_checkpoints={steps.size}, n_layers, T, T) "
                             f"(or (..., T, N) with key_tokens), got {W.shape}")
        n_layers, T = W.shape[1], W.shape[2]
        if causal and W.shape[2] != W.shape[3]:
            raise ValueError(f"a causal view needs as many keys as queries, got weights of shape {W.shape}")
        loss_steps = np.asarray(loss_steps, dtype=float)
        losses = as_float_array(losses, "losses")
        if loss_steps.ndim != 1 or losses.shape != loss_steps.shape:
            raise ValueError(f"loss_steps and losses must be 1-D of one length, got shapes {loss_steps.shape} "
                             f"and {losses.shape}")
        check_finite(losses, "losses")
        if reference is not None:
            reference = _validate.positive_number(reference, "reference")
        if not isinstance(loss_label, str) or not loss_label.strip():
            raise TypeError(f"loss_label must be a non-empty string, got {loss_label!r}")
        checkpoint = steps.size - 1 if checkpoint is None else checkpoint
        super().__init__(
            uid=new_uid(),
            tokens=_validate.labels(tokens, T, "tokens", ""),
            layer_names=_validate.labels(layer_names, n_layers, "layer_names", "layer "),
            steps=[int(s) for s in steps],
            checkpoint_weights=_validate.shown(W),  # only shown (2 decimals): kept to 3
            loss_steps=_validate.shown(loss_steps, 2),
            losses=_validate.shown(losses),
            reference=reference,
            key_tokens=[] if square else _validate.labels(key_tokens, W.shape[3], "key_tokens", ""),
            causal=bool(causal),
            loss_label=loss_label.strip(),
            **kwargs,
        )
        self.checkpoint = checkpoint

    @traitlets.validate("checkpoint")
    def _valid_checkpoint(self, proposal):
        return _validate.index(proposal["value"], len(self.steps), "checkpoint")

    @property
    def step(self) -> int:
        """The training step of the chosen checkpoint."""
        return self.steps[self.checkpoint]

    @property
    def weights(self) -> np.ndarray:
        """The attention weights at the chosen checkpoint, shape (n_layers, T, T)."""
        return np.array(self.checkpoint_weights[self.checkpoint], dtype=float)

    def __repr__(self) -> str:
        return (f"TrainingView(n_checkpoints={len(self.steps)}, n_layers={len(self.layer_names)}, "
                f"T={len(self.tokens)}, step={self.step})")
