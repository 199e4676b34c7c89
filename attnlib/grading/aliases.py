"""The learner's earlier functions as the grader serves them to a later exercise (adv16 F4).

A later exercise may call the learner's own function of an earlier one (``my_rnn_step``,
``my_causal_mask``, ...), as the notebook lets it; the grader runs each answer cell alone, so it serves
that name itself, computed by attnlib.  Each function here has the signature and the parameter names of
the exercise that defines it (``tests/test_grading.py`` compares them with the catalogue's reference),
so a call that works in the notebook works while grading, by position or by keyword; after them come the
optional parameters of the attnlib function it stands for (``axis``, ``n_k``: adv17 F6), which a learner's
own version may well have, as the lab's ``al.softmax(x, axis=-1)`` does.  Which exercises
get which of them: :data:`attnlib.grading.catalogue.EARLIER_FUNCTIONS`.
"""

from __future__ import annotations

import attnlib as _al
from attnlib import rnn as _rnn


def lab01_my_softmax(scores, axis=-1):
    """Lab 1 Exercise 2: softmax of a 1-D array of scores (``axis`` as attnlib.softmax takes it)."""
    return _al.softmax(scores, axis=axis)


def lab02_my_rnn_step(x, h, W_xh, W_hh, b_h):
    """Lab 2 Exercise 1: the next hidden state, from input x and previous state h."""
    return _rnn.rnn_step(x, h, {"W_xh": W_xh, "W_hh": W_hh, "b_h": b_h})


def lab03_my_softmax(x, axis=-1):
    """Lab 3 Exercise 1: softmax of x along the last axis (``axis`` as attnlib.softmax takes it)."""
    return _al.softmax(x, axis=axis)


def lab03_my_softmax_backward(A, dA, axis=-1):
    """Lab 3 Exercise 7: gradient through a softmax over the last axis (or ``axis``)."""
    return _al.softmax_backward(A, dA, axis=axis)


def lab04_split(X, n_heads):
    """Lab 4 Exercise 3: (..., n, d_model) -> (..., n_heads, n, d_head)."""
    return _al.split_heads(X, n_heads)


def lab04_my_causal_mask(n, n_k=None):
    """Lab 4 Exercise 5: boolean (n, n), True where query i may attend to key j (j <= i); (n, n_k) as
    attnlib.causal_mask takes it."""
    return _al.causal_mask(n, n_k)


for _fn in (lab01_my_softmax, lab02_my_rnn_step, lab03_my_softmax, lab03_my_softmax_backward, lab04_split,
            lab04_my_causal_mask):  # a TypeError names the function as the learner calls it: my_rnn_step()
    _fn.__name__ = _fn.__qualname__ = _fn.__name__.split("_", 1)[1]
    _fn.__code__ = _fn.__code__.replace(co_name=_fn.__name__, co_qualname=_fn.__name__)
del _fn
