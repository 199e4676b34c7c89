"""Diagnosing checks for a learner's backward passes: softmax and attention (chapter 3, "Learning to attend")."""

from __future__ import annotations

import math

import numpy as np

from attnlib.backward import attention_backward, softmax_backward
from attnlib.checks._calls import FORBID
from attnlib.checks._result import (
    CheckResult,
    accepts,
    as_numbers,
    attempt,
    close,
    copies,
    difference,
    failed,
    graded,
    in_context,
    n_required,
    passed,
    with_hint,
)
from attnlib.masks import causal_mask
from attnlib.softmax import softmax

_SHAPE_HINT = ("A shape error in a matrix product usually means a transpose is missing or the two factors are "
               "swapped: write the shape of each factor beside the product.")
_AXIS_HINT = "Count axes from the end (axis=-1): then one row, a matrix and a batch all work."
_KEEPDIMS_HINT = ("If it comes from the softmax step: the sum over each row must keep its axis (keepdims=True), "
                  "so that it broadcasts against the row it came from.")


# --- softmax_backward --------------------------------------------------------------------------


def softmax_grad(P, dP, *, axis=-1, variant="right"):
    """The softmax's backward pass computed right, or wrong in one known way (the variants a diagnosis names).

    ``variant``: "right"; "no_subtraction" (``P * dP``); "no_P" (the factor ``P`` left
    out: ``dP - rowsum``); "sum_dP" (``rowsum(dP)`` instead of ``rowsum(dP * P)``);
    "sign" (``P * (rowsum - dP)``); "mean_dP" (the plain mean of ``dP`` for the weighted
    ``rowsum(dP * P)``); "no_keepdims" (the row sums broadcast along the
    wrong axis, for a square matrix); "sum_all" (one sum over the whole array).
    """
    if variant == "no_subtraction":
        return P * dP
    if variant == "sum_all":
        return P * (dP - np.sum(dP * P))
    if variant == "no_keepdims":
        return P * (dP - np.sum(dP * P, axis=axis))
    if variant == "mean_dP":
        return P * (dP - np.mean(dP, axis=axis, keepdims=True))
    rowsum = np.sum((dP if variant == "sum_dP" else dP * P), axis=axis, keepdims=True)
    if variant == "no_P":
        return dP - rowsum
    if variant == "sign":
        return P * (rowsum - dP)
    return P * (dP - rowsum)


_SOFTMAX_VARIANTS = {
    "no_subtraction": "you multiplied dA by the weights but did not subtract each row's sum of dA ⊙ A: raising one "
                      "weight lowers the others, and that term is where it shows.",
    "no_P": "the result lacks the factor A in front: a key with a small weight should get a small gradient "
            "(and a masked key, weight 0, none).",
    "sum_dP": "the row sum should be of dA ⊙ A (each gradient weighted by its key's weight), not of dA alone.",
    "sign": "the sign is flipped: the result is minus the gradient.",
    "mean_dP": "each row is shifted by the plain mean of dA; the shift must be the mean weighted by the weights, "
               "the row sum of dA ⊙ A (the two agree only when a row's dA entries, or its weights, are all equal).",
    "no_keepdims": "the row sums broadcast along the wrong axis: the sum over each row must keep its axis "
                   "(keepdims=True), or each row's sum lands in a column.",
    "sum_all": "you summed dA ⊙ A over the whole array; each row (one query's weights) needs its own sum.",
}


def _call_softmax_backward(name, fn, P, dP, context):
    """Run ``fn(P, dP)`` on copies; return ``(array, None)`` or ``(None, CheckResult)``."""
    got, problem = attempt(name, fn, *copies((P, dP)))
    if problem is not None:
        return None, in_context(problem, context)
    arr = as_numbers(got)
    if arr is None or arr.dtype == object:
        return None, failed(name, f"{context}, your function returned {type(got).__name__}, not an array of numbers.")
    if arr.shape != P.shape:
        hint = " That is the weights' shape transposed." if arr.shape == P.shape[::-1] and P.ndim == 2 else ""
        return None, failed(name, f"{context}, your function returned shape {arr.shape}; expected {P.shape}, the "
                                  f"shape of the scores (one gradient per score).{hint}")
    return arr, None


def _softmax_diagnosis(got, P, dP, variants) -> str | None:
    for variant in variants:
        try:
            with np.errstate(all="ignore"):
                value = softmax_grad(P, dP, variant=variant)
        except ValueError:  # this mistake cannot happen with these shapes
            continue
        if close(got, value):
            return _SOFTMAX_VARIANTS[variant]
    return None


@graded(forbid=FORBID["softmax_backward"])
def check_softmax_backward(fn, *, name: str = "Softmax backward") -> CheckResult:
    r"""Check a learner's ``fn(weights, d_weights)``: the gradient through a softmax over the last axis.

    The expected answer is :math:`dS = P \odot (dP - \operatorname{rowsum}(dP \odot P))`
    for weights :math:`P` and incoming gradient :math:`dP`.  Tries one row, a square
    matrix (a sum without ``keepdims`` shows there), a batch, masked keys (weight 0:
    gradient 0) and a fully masked row (all zeros), and that the inputs are left as
    they were.

    Examples
    --------
    >>> import attnlib
    >>> check_softmax_backward(attnlib.softmax_backward, forbid=()).passed
    True
    >>> check_softmax_backward(lambda P, dP: P * dP).message.split(":")[0]
    "on one row of weights, you multiplied dA by the weights but did not subtract each row's sum of dA ⊙ A"
    """
    rng = np.random.default_rng(3)

    # 1. one row
    P, dP = softmax(np.array([1.0, 2.0, 0.5, -1.0])), np.array([0.5, -1.0, 2.0, 0.3])
    context = "on one row of weights"
    got, problem = _call_softmax_backward(name, fn, P, dP, context)
    if problem is not None:
        return with_hint(problem, _AXIS_HINT) if "axis" in problem.message else problem
    if not close(got, softmax_backward(P, dP)):
        message = _softmax_diagnosis(got, P, dP, ["no_subtraction", "no_P", "sum_dP", "mean_dP", "sign"])
        if message is None and np.isnan(got).any():
            message = "your gradient contains NaN."
        if message is None:
            message = f"the gradient is wrong ({difference(got, softmax_backward(P, dP))})."
            if not np.isclose(got.sum(), 0.0, atol=1e-9):  # b96c: the property Lab 3's Exercise 7 teaches
                message += (f" Your row adds up to {got.sum():.3g}; a right dS adds up to 0 in every row (adding one "
                            "number to every score moves no weight, so it cannot move the loss).")
        return failed(name, f"{context}, {message}")

    # 2. a square matrix: each row is one query's weights
    P, dP = softmax(rng.normal(size=(4, 4))), rng.normal(size=(4, 4))
    context = "on a 4 x 4 matrix of weights (one row per query)"
    got, problem = _call_softmax_backward(name, fn, P, dP, context)
    if problem is not None:
        return with_hint(problem, _KEEPDIMS_HINT)
    if not close(got, softmax_backward(P, dP)):
        message = _softmax_diagnosis(got, P, dP, ["no_keepdims", "sum_all"])
        if message is None and close(got, softmax_grad(P, dP, axis=0)):
            message = ("the sum runs over the wrong axis (down the columns): each query's row of weights sums to "
                       "one, so the sum must run over the last axis.")
        if message is None:
            message = f"the gradient is wrong although one row worked ({difference(got, softmax_backward(P, dP))})."
        return failed(name, f"{context}, {message}")

    # 3. a batch
    P, dP = softmax(rng.normal(size=(2, 3, 5))), rng.normal(size=(2, 3, 5))
    context = "on a batch of weights of shape (2, 3, 5)"
    got, problem = _call_softmax_backward(name, fn, P, dP, context)
    if problem is not None:
        return with_hint(problem, "Count axes from the end (axis=-1) so that batches work.")
    if not close(got, softmax_backward(P, dP)):
        return failed(name, f"{context}, the gradient is wrong although a single matrix worked "
                            f"({difference(got, softmax_backward(P, dP))}); sum over the last axis (axis=-1).")

    # 4. masked keys (weight 0) and a query with no allowed key (all weights 0)
    P = softmax(np.array([[0.3, -np.inf, 1.2, -np.inf], [-np.inf, -np.inf, -np.inf, -np.inf]]))
    dP = np.array([[1.0, 2.0, -1.0, 0.5], [0.7, -0.2, 1.5, 3.0]])
    context = "on weights with masked keys (weight 0) and a fully masked row (all weights 0)"
    got, problem = _call_softmax_backward(name, fn, P, dP, context)
    if problem is not None:
        return problem
    if not close(got, softmax_backward(P, dP)):
        if np.isnan(got).any():
            return failed(name, f"{context}, your gradient contains NaN; the weights are all finite, so nothing "
                                "should divide by zero.")
        leak = np.argwhere((P == 0) & (got != 0))
        if leak.size:
            i, j = map(int, leak[0])
            return failed(name, f"{context}, gradient flows through a masked entry: row {i}, key {j} has weight "
                                f"0 but gets gradient {got[i, j]:.3g}. A score that does not reach the weights "
                                "should get no gradient.")
        return failed(name, f"{context}, the gradient is wrong ({difference(got, softmax_backward(P, dP))}).")

    # 5. the inputs must not change
    P, dP = softmax(rng.normal(size=(2, 3))), rng.normal(size=(2, 3))
    P_in, dP_in = P.copy(), dP.copy()
    attempt(name, fn, P_in, dP_in)
    if not (np.array_equal(P_in, P) and np.array_equal(dP_in, dP)):
        which = "weights" if not np.array_equal(P_in, P) else "d_weights"
        return failed(name, f"your function changed its input ({which}) in place; compute into a new array instead.")
    return passed(name, "correct on one row, a matrix, a batch, masked keys and a fully masked row.")


# --- attention backward ------------------------------------------------------------------------


def attention_grads(Q, K, V, dO, mask=None, *, scale_power=1, scale_dV=False, axis=-1, transpose_P=True,
                    transpose_V=True, transpose_dS=True, masked_backward=True, softmax_step="right"):
    """``(dQ, dK, dV)`` of attention, right or wrong in one known way (the variants a diagnosis names).

    ``scale_power``: the scale in ``dQ`` and ``dK`` is ``s ** scale_power`` (0: forgotten,
    2: applied twice); ``scale_dV``: ``dV`` multiplied by ``s`` too; ``axis``: the axis of
    the softmax step's row sum; ``transpose_*``: a transpose left out; ``masked_backward``
    False: the backward pass uses weights computed without the mask; ``softmax_step``: a
    variant of :func:`softmax_grad`.
    """
    s = 1 / math.sqrt(Q.shape[-1])
    scores = s * (Q @ K.swapaxes(-1, -2))  # (..., n_q, n_k)
    if mask is not None and masked_backward:
        scores = np.where(mask, scores, -np.inf)
    P = softmax(scores)  # (..., n_q, n_k)

    def t(x, do):
        return x.swapaxes(-1, -2) if do else x

    dV = t(P, transpose_P) @ dO  # (..., n_k, n_q) @ (..., n_q, d_v)
    dP = dO @ t(V, transpose_V)  # (..., n_q, d_v) @ (..., d_v, n_k)
    dS = softmax_grad(P, dP, axis=axis, variant=softmax_step)  # (..., n_q, n_k)
    dQ = s**scale_power * (dS @ K)  # (..., n_q, n_k) @ (..., n_k, d_k)
    dK = s**scale_power * (t(dS, transpose_dS) @ Q)  # (..., n_k, n_q) @ (..., n_q, d_k)
    if scale_dV:
        dV = s * dV
    return dQ, dK, dV


def _variants(d_k: int):
    root = f"sqrt(d_k) = {math.sqrt(d_k):g}"
    return [
        ({"scale_power": 0}, f"the scale was forgotten in the backward pass: dQ and dK are {root} times too large. "
                             "The forward pass multiplied the scores by 1/sqrt(d_k), so the chain rule brings that "
                             "factor into the gradients of Q and K."),
        ({"scale_power": 2}, f"dQ and dK are {root} times too small: the scale 1/sqrt(d_k) is applied twice."),
        ({"scale_dV": True}, "dV is multiplied by the scale, but V does not enter the scores: only dQ and dK carry "
                             "the factor 1/sqrt(d_k)."),
        ({"axis": -2}, "the softmax step sums over the wrong axis: the sum of dA ⊙ A must run over each query's "
                       "keys (the last axis), the axis the softmax normalised."),
        ({"softmax_step": "no_keepdims"}, "the softmax step's row sums broadcast along the wrong axis: keep the "
                                          "summed axis (keepdims=True)."),
        ({"softmax_step": "no_subtraction"}, "the softmax step lacks the subtraction of each row's sum of dA ⊙ A."),
        ({"softmax_step": "sum_dP"}, "the softmax step's row sum should be of dA ⊙ A, not of dA alone."),
        ({"softmax_step": "no_P"}, "the softmax step lacks the factor A in front."),
        ({"masked_backward": False}, "gradient flows through masked entries: your backward pass uses weights "
                                     "computed without the mask. Use the masked weights (0 where masked), the "
                                     "ones the forward pass used."),
        ({"transpose_P": False}, "dV is missing a transpose: value j collects the gradient of every query i, "
                                 "weighted by A[i, j], a column of the weights."),
        ({"transpose_dS": False}, "dK is missing a transpose: key j collects the gradient of every query i, "
                                  "weighted by dS[i, j], a column of dS."),
        ({"transpose_V": False}, "dA is missing a transpose: dA[i, j] is the dot product of dO's row i with "
                                 "value j."),
    ]


class _Learner:
    """Calls the learner's backward pass with or without a mask and unpacks ``(dQ, dK, dV)``."""

    def __init__(self, name, fn):
        self.name, self.fn = name, fn
        self.mask_keyword = accepts(fn, "mask")
        required = n_required(fn)
        self.takes_mask = self.mask_keyword or (required is not None and required >= 5)

    def __call__(self, context, Q, K, V, dO, mask=None):
        args = copies((Q, K, V, dO))
        if mask is None:
            value, problem = attempt(self.name, self.fn, *args)
        elif self.mask_keyword:
            value, problem = attempt(self.name, self.fn, *args, mask=mask.copy())
        else:
            value, problem = attempt(self.name, self.fn, *args, mask.copy())
        if problem is not None:
            return None, in_context(problem, context)
        if not isinstance(value, (tuple, list)) or len(value) != 3:
            got = f"{len(value)} things" if isinstance(value, (tuple, list)) else type(value).__name__
            return None, failed(self.name, f"{context}, your function returned {got}; expected three gradients "
                                           "(dQ, dK, dV).")
        grads = [as_numbers(g) for g in value]
        for label, g in zip(("dQ", "dK", "dV"), grads, strict=True):
            if g is None or g.dtype == object:
                return None, failed(self.name, f"{context}, your {label} is not an array of numbers.")
        return grads, None


def _shape_problem(name, context, grads, inputs) -> CheckResult | None:
    shapes = [x.shape for x in inputs]
    if [g.shape for g in grads] != shapes and sorted(g.shape for g in grads) == sorted(shapes) \
            and len(set(shapes)) == 3:
        return failed(name, f"{context}, your gradients come in the wrong order: return (dQ, dK, dV), in the "
                            "order of the inputs (Q, K, V).")
    for label, g, x in zip(("dQ", "dK", "dV"), grads, inputs, strict=True):
        if g.shape == x.shape:
            continue
        what = f"{context}, your {label} has shape {g.shape}; expected {x.shape}, the shape of {label[1:]}"
        if g.ndim == x.ndim == 2 and g.shape == x.shape[::-1]:
            return failed(name, f"{what}. That is its transpose: a transpose is missing, or the factors of a "
                                "product are swapped.")
        if g.ndim == x.ndim + 1 and g.shape[1:] == x.shape:
            return failed(name, f"{what}. {label[1:]} is shared by every entry of the batch (broadcast), so its "
                                "gradient is the sum over the batch of each entry's gradient.")
        return failed(name, f"{what} (a gradient has the shape of what it is the gradient of).")
    return None


def _diagnose(grads, inputs, dO, mask) -> str | None:
    """Name the known mistake that ``grads`` equals, if any."""
    Q, K, V = inputs
    for kwargs, message in _variants(Q.shape[-1]):
        try:
            with np.errstate(all="ignore"):
                variant = attention_grads(Q, K, V, dO, mask, **kwargs)
        except ValueError:  # the mistake is impossible with these shapes (a product would not fit)
            continue
        if all(close(g, v) for g, v in zip(grads, variant, strict=True)):
            return message
    return None


def _which_wrong(grads, expected) -> str:
    wrong = [label for label, g, e in zip(("dQ", "dK", "dV"), grads, expected, strict=True) if not close(g, e)]
    right = [label for label in ("dQ", "dK", "dV") if label not in wrong]
    first = wrong[0]
    i = ("dQ", "dK", "dV").index(first)
    start = f"{' and '.join(right)} {'is' if len(right) == 1 else 'are'} right, but " if right else ""
    return f"{start}{' and '.join(wrong)} {'is' if len(wrong) == 1 else 'are'} wrong ({first}: " \
           f"{difference(grads[i], expected[i])})."


@graded(forbid=FORBID["attention_backward"])
def check_attention_backward(fn, *, name: str = "Attention backward", batch: bool = True,
                             broadcast: bool = False, fully_masked_rows: bool = True) -> CheckResult:
    r"""Check a learner's ``fn(Q, K, V, d_output)`` or ``fn(Q, K, V, d_output, mask)``: attention's backward pass.

    ``fn`` returns ``(dQ, dK, dV)``, the gradients of ``sum(output * d_output)`` for
    ``output = softmax(Q K^T / sqrt(d_k)) V`` (masked keys scored ``-inf``).  Tries one
    sequence with different sizes (shapes show a missing transpose), a square case
    (where a missing transpose changes the numbers instead), a batch unless
    ``batch=False``, keys and values shared by a batch (``broadcast=True``: their
    gradients must be summed over the batch) and, if ``fn`` takes a mask, a causal
    mask, a key hidden from every query and (unless ``fully_masked_rows=False``) a query
    with no allowed key.  A diagnosis names a forgotten scale, a wrong sum axis, a
    missing transpose, gradient flowing through masked entries and wrong shapes.

    Examples
    --------
    >>> import attnlib
    >>> check_attention_backward(attnlib.attention_backward, broadcast=True, forbid=()).passed
    True
    >>> def no_scale(Q, K, V, dO):
    ...     P = attnlib.softmax(Q @ K.T / np.sqrt(Q.shape[-1]))
    ...     dS = attnlib.softmax_backward(P, dO @ V.T)
    ...     return dS @ K, dS.T @ Q, P.T @ dO
    >>> check_attention_backward(no_scale, batch=False).message[:62]
    'the scale was forgotten in the backward pass: dQ and dK are sq'
    """
    learner = _Learner(name, fn)
    rng = np.random.default_rng(4)

    def run(context, Q, K, V, dO, mask=None, hint=None):
        """The learner's gradients, or the CheckResult that says what went wrong."""
        grads, problem = learner(context, Q, K, V, dO, mask)
        if problem is not None:
            return with_hint(problem, hint) if hint else problem
        problem = _shape_problem(name, context, grads, (Q, K, V))
        if problem is not None:
            return problem
        expected = attention_backward(Q, K, V, dO, mask)
        if all(close(g, e) for g, e in zip(grads, expected, strict=True)):
            return None
        if any(np.isnan(g).any() for g in grads):
            return failed(name, f"{context}, your gradients contain NaN.")
        message = _diagnose(grads, (Q, K, V), dO, mask)
        if message is None and mask is not None:
            message = _mask_leak(grads, mask)
        return failed(name, message or f"{context}, {_which_wrong(grads, expected)}")

    def shape_hint(problem):
        if "broadcast" in problem.message:
            return with_hint(problem, _KEEPDIMS_HINT)
        if "matmul" in problem.message or "shape" in problem.message or "align" in problem.message:
            return with_hint(problem, _SHAPE_HINT)
        return problem

    # 1. one sequence, every size different: a missing transpose shows as a wrong shape
    n_q, n_k, d_k, d_v = 3, 5, 4, 2
    Q, K, V = rng.normal(size=(n_q, d_k)), rng.normal(size=(n_k, d_k)), rng.normal(size=(n_k, d_v))
    dO = rng.normal(size=(n_q, d_v))
    context = f"with Q {Q.shape}, K {K.shape}, V {V.shape} and d_output {dO.shape}"
    problem = run(context, Q, K, V, dO)
    if problem is not None:
        return shape_hint(problem)

    # 2. a square case: n_q = n_k = d_k = d_v, where a missing transpose still fits
    Q, K, V, dO = (rng.normal(size=(4, 4)) for _ in range(4))
    problem = run("with Q, K, V and d_output all of shape (4, 4)", Q, K, V, dO)
    if problem is not None:
        return problem
    tried = "one sequence"

    # 3. a batch
    if batch:
        Qb, Kb, Vb = rng.normal(size=(2, n_q, d_k)), rng.normal(size=(2, n_k, d_k)), rng.normal(size=(2, n_k, d_v))
        dOb = rng.normal(size=(2, n_q, d_v))
        problem = run(f"with a batch (Q {Qb.shape}, K {Kb.shape}, V {Vb.shape})", Qb, Kb, Vb, dOb,
                      hint="Count axes from the end (for example swapaxes(-1, -2)) so that batches work; "
                           ".T reverses every axis.")
        if problem is not None:
            return problem
        tried += ", a batch"

    # 4. keys and values shared by the batch
    if broadcast:
        Qb, dOb = rng.normal(size=(3, n_q, d_k)), rng.normal(size=(3, n_q, d_v))
        Ks, Vs = rng.normal(size=(n_k, d_k)), rng.normal(size=(n_k, d_v))  # one set for the whole batch
        problem = run(f"with a batch of queries Q {Qb.shape} and K {Ks.shape}, V {Vs.shape} shared by the batch",
                      Qb, Ks, Vs, dOb)
        if problem is not None:
            return problem
        tried += ", keys and values shared by a batch"

    if not learner.takes_mask:
        return passed(name, f"correct on {tried}.")

    # 5. a causal mask
    n = 4
    Q, K, V, dO = (rng.normal(size=(n, n)) for _ in range(4))
    problem = run(f"with a causal mask of shape {(n, n)}", Q, K, V, dO, causal_mask(n))
    if problem is not None:
        return problem

    # 6. a key hidden from every query
    Q, K, V, dO = rng.normal(size=(n_q, d_k)), rng.normal(size=(n_k, d_k)), rng.normal(size=(n_k, d_v)), \
        rng.normal(size=(n_q, d_v))
    mask = np.ones((n_q, n_k), bool)
    mask[:, 2] = False  # key 2 is hidden from every query
    mask[0, 4] = False
    problem = run("with a mask that hides key 2 from every query", Q, K, V, dO, mask)
    if problem is not None:
        return problem
    tried += ", a causal mask, a key hidden from every query"
    if not fully_masked_rows:
        return passed(name, f"correct on {tried}.")

    # 7. a query with no allowed key
    mask = np.ones((n_q, n_k), bool)
    mask[1] = False  # query 1 may attend to no key
    context = "with a fully masked row (query 1 may attend to no key)"
    grads, problem = learner(context, Q, K, V, dO, mask)
    if problem is not None:
        return problem
    problem = _shape_problem(name, context, grads, (Q, K, V))
    if problem is not None:
        return problem
    expected = attention_backward(Q, K, V, dO, mask)
    if not all(close(g, e) for g, e in zip(grads, expected, strict=True)):
        if any(np.isnan(g).any() for g in grads):
            return failed(name, f"{context}, your gradients contain NaN. A query with no allowed key has zero "
                                "weights and a zero output, so nothing flows back through it.")
        if not close(grads[0][1], np.zeros(d_k)):
            return failed(name, f"{context}, query 1 gets gradient dQ[1] = {np.round(grads[0][1], 3).tolist()}, "
                                "but its output is zero whatever Q is, so its gradient is zero too (uniform "
                                "weights, as masking with a large negative number gives, are a common cause).")
        return failed(name, f"{context}, {_which_wrong(grads, expected)}")
    return passed(name, f"correct on {tried} and a query with no allowed key.")


def _mask_leak(grads, mask) -> str | None:
    """A key hidden from every query must get no gradient; say so if it does."""
    dQ, dK, dV = grads
    hidden = np.flatnonzero(~mask.any(axis=0))  # keys that no query may see
    for j in hidden:
        for label, g in (("dK", dK), ("dV", dV)):
            if not close(g[j], np.zeros(g.shape[-1])):
                return (f"gradient flows through masked entries: the mask hides key {j} from every query, yet "
                        f"{label}[{j}] is not zero. Use the masked weights (0 where masked) in the backward pass.")
    return None
