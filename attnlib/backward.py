"""The backward passes of softmax, attention and multi-head attention, gathered in one place.

Each is defined beside its forward function, which can hand it what it needs (a
cache), so that the backward recomputes nothing:

- :func:`softmax_backward` beside :func:`attnlib.softmax.softmax`; its cache is the
  weights, the forward's output;
- :func:`attention_backward` beside :func:`attnlib.scaled_dot_product_attention`; pass the
  forward's weights as ``weights=``;
- :func:`multi_head_attention_backward` beside :func:`attnlib.multi_head_attention`; pass
  ``cache=``, the third result of the forward called with ``return_cache=True``.

Each returns the gradient of ``sum(output * d_output)`` with respect to the inputs of
its forward function, where ``d_output`` is the gradient arriving from above (for a
loss L, ``d_output = dL/d output``): the chain rule written out step by step, in the
order opposite to the forward pass.  Chapter 3's page "Learning to attend" derives them.
Without a cache each recomputes the forward pass, so it takes the forward's
arguments plus ``d_output`` and raises the same errors for bad input.
"""

from attnlib.attention import attention_backward
from attnlib.multihead import MultiHeadCache, multi_head_attention_backward
from attnlib.softmax import softmax_backward

__all__ = ["MultiHeadCache", "attention_backward", "multi_head_attention_backward", "softmax_backward"]
