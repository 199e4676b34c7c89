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
- :func:`check_attention` ``fn(Q, K, V, mask=None)`` (or ``fn(Q, K, V)`` with ``masks=False``; chapters 3, 4)
- :func:`check_self_attention` ``fn(X, params)`` (chapter 4)
- :func:`check_causal_mask` ``fn(n)``, :func:`check_padding_mask` ``fn(lengths, n_k)`` (chapter 4)
- :func:`check_split_heads`, :func:`check_merge_heads`, :func:`check_multi_head` (chapter 4)
- :func:`check_dropout` ``fn(x, p, rng)``: inverted dropout
- the labs' experiments (``_labs.py``): :func:`check_least_sure_query` ``fn(queries, keys, sigma)``
  (chapter 1), :func:`check_score_variance` ``fn(d_k, n, rng)`` (chapter 3),
  :func:`check_equivariance_gap` ``fn(attend, X, perm)`` and :func:`check_crossing_rows` ``fn(alignment)``
  (chapter 4), :func:`check_greedy_generate`
  ``fn(ids, vocab_size, n_new)`` and :func:`check_image_to_text` ``fn(W_stream, n_text)`` (chapter 6),
  :func:`check_mha_shapes`, :func:`check_weights_bytes`,
  :func:`check_leak_detector` ``fn(attend, X)`` (chapter 7), and :func:`check_prediction` for
  predict-then-measure exercises
- :func:`check_softmax_backward` ``fn(weights, d_weights)``, :func:`check_attention_backward`
  ``fn(Q, K, V, d_output)`` or ``fn(Q, K, V, d_output, mask)`` (chapter 3, "Learning to attend")

and :func:`check_value` / :func:`check_function` compare any answer with one computed by attnlib.

These are self-checks, for practice: plain, fast functions that run in the learner's own
kernel and protect nothing.  The learner's code gets deep copies of the inputs (an input
changed in place is named); a call of attnlib's version of what the exercise asks for is
reported as "use your own implementation" (``forbid=`` names them); a wrong return value (None,
a ragged list) is named.  An exercise that builds on an earlier one is checked with attnlib's
reference in place of the earlier answer:
``check_attention(my_attention, upstream={"my_softmax": (attnlib.softmax, "Exercise 1")})``
passes a right attention whatever ``my_softmax`` does, and names Exercise 1 when it is
what breaks the learner's own version.

Grades do not come from here: :mod:`attnlib.grading` takes each answer cell's source, runs it
in a separate process with numpy and the exercise's given helpers only, and compares with the
reference in the grader's own process (``python -m attnlib.grading.classroom``, and an nbgrader
preprocessor that sets each grading cell's outcome).  :func:`assert_passed` raises
``AssertionError`` with the whole diagnosis for a failed result.
"""

import numpy as np  # noqa: F401 (the doctest of mistakes uses it)

from attnlib.checks._attention import check_attention, check_self_attention
from attnlib.checks._backward import check_attention_backward, check_softmax_backward
from attnlib.checks._dropout import check_dropout
from attnlib.checks._heads import check_merge_heads, check_multi_head, check_split_heads
from attnlib.checks._labs import (
    check_crossing_rows,
    check_equivariance_gap,
    check_greedy_generate,
    check_image_to_text,
    check_leak_detector,
    check_least_sure_query,
    check_mha_shapes,
    check_prediction,
    check_score_variance,
    check_top_words,
    check_weights_bytes,
)
from attnlib.checks._masks import check_causal_mask, check_padding_mask
from attnlib.checks._result import (
    NOT_IMPLEMENTED,
    CheckResult,
    assert_passed,
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
    "assert_passed",
    "check_attention",
    "check_attention_backward",
    "check_causal_mask",
    "check_crossing_rows",
    "check_dropout",
    "check_equivariance_gap",
    "check_function",
    "check_greedy_generate",
    "check_image_to_text",
    "check_leak_detector",
    "check_least_sure_query",
    "check_merge_heads",
    "check_mha_shapes",
    "check_multi_head",
    "check_padding_mask",
    "check_prediction",
    "check_score_variance",
    "check_scores",
    "check_self_attention",
    "check_softmax",
    "check_softmax_backward",
    "check_split_heads",
    "check_top_words",
    "check_value",
    "check_weights_bytes",
    "compare_arrays",
    "explanation",
    "failed",
    "mistakes",
    "passed",
    "run_answer",
]


def explanation(lab: str, number: int) -> str:
    """Why the measurement of predict-then-measure exercise ``number`` of lab ``lab`` comes out as it does.

    A check cell passes it to ``check_prediction(..., explanation=explanation("04", 6))``: the reason
    stays out of sight in the notebook until the learner has predicted and run the check.

    Examples
    --------
    >>> explanation("01", 5).startswith("With σ = 100 all scores")
    True
    >>> explanation("04", 1)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: exercise 1 of lab 04 is not a prediction; predictions: ...
    """
    from attnlib.grading.catalogue import EXPLANATIONS

    key = (str(lab), int(number))
    if key not in EXPLANATIONS:
        known = ", ".join(f"lab {lab_} exercise {n}" for lab_, n in sorted(EXPLANATIONS))
        raise ValueError(f"exercise {number} of lab {lab} is not a prediction; predictions: {known}")
    return EXPLANATIONS[key]


def mistakes(lab: str, number: int, **data) -> list:
    """The named mistakes of exercise ``number`` of lab ``lab`` (``"01"`` .. ``"07"``), for ``check_function``.

    ``check_function(..., mistakes=mistakes("01", 3))`` tells an answer that makes one of the
    mistakes in the grader's catalogue (:mod:`attnlib.grading.catalogue`) its own diagnosis.

    Examples
    --------
    >>> import attnlib
    >>> flipped = lambda qs, k, s: qs[np.argmin([attnlib.softmax((q - k) ** 2 / (2 * s**2)).max() for q in qs])]
    >>> least_sure = lambda qs, k, s: qs[attnlib.nadaraya_watson(qs, k, k, bandwidth=s)[1].max(axis=1).argmin()]
    >>> case = (np.linspace(1.35, 7.15, 100).round(3), np.array([1.3, 2.5, 4.1, 4.6, 5.0, 7.2]), 0.7)
    >>> result = check_function("Exercise 3", flipped, least_sure, [case], mistakes=mistakes("01", 3))
    >>> "sign of the scores is flipped" in result.message
    True
    """
    from attnlib.grading.catalogue import mistakes as catalogue_mistakes

    return catalogue_mistakes(lab, number, **data)
