"""Self-checks for the labs' exercises.

Each check runs the learner's answer and returns a :class:`CheckResult`: ``.passed``
is True or False, ``.message`` says in plain words what is right or, when something
is off, what and where (a wrong scale and which one it looks like, a mask applied
after the softmax, rows that do not sum to one, the future leaking, heads mixed up,
NaN on a fully masked row, a wrong shape, expected vs got).  The result displays
itself readably in a notebook.  A check never prints the solution.  An exercise that
still raises ``NotImplementedError`` is reported as "not implemented yet" instead of
crashing the notebook.

The diagnosing checks take the learner's *function*:

- :func:`check_softmax` ``fn(x)`` (chapter 3)
- :func:`check_scores` ``fn(Q, K)`` (chapter 3)
- :func:`check_attention` ``fn(Q, K, V)`` or ``fn(Q, K, V, mask)`` (chapters 3 and 4)
- :func:`check_causal_mask` ``fn(n)``, :func:`check_padding_mask` ``fn(lengths, n_k)`` (chapter 4)
- :func:`check_split_heads`, :func:`check_merge_heads`, :func:`check_multi_head` (chapter 4)
- :func:`check_dropout` ``fn(x, p, rng)``: inverted dropout

and :func:`check_value` / :func:`check_function` compare any answer with one computed by attnlib.
"""

from attnlib.checks._attention import check_attention
from attnlib.checks._dropout import check_dropout
from attnlib.checks._heads import check_merge_heads, check_multi_head, check_split_heads
from attnlib.checks._masks import check_causal_mask, check_padding_mask
from attnlib.checks._result import (
    NOT_IMPLEMENTED,
    CheckResult,
    check_function,
    check_value,
    compare_arrays,
    failed,
    passed,
    run_answer,
)
from attnlib.checks._softmax import check_scores, check_softmax

__all__ = [
    "NOT_IMPLEMENTED",
    "CheckResult",
    "check_attention",
    "check_causal_mask",
    "check_dropout",
    "check_function",
    "check_merge_heads",
    "check_multi_head",
    "check_padding_mask",
    "check_scores",
    "check_softmax",
    "check_split_heads",
    "check_value",
    "compare_arrays",
    "failed",
    "passed",
    "run_answer",
]
