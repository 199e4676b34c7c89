"""The backward-pass checks: a right answer passes; each deliberate bug gets its own diagnosis."""

from __future__ import annotations

import numpy as np
import pytest

import attnlib
from attnlib.checks import check_attention_backward, check_softmax_backward


def _rowsum(x):
    return x.sum(axis=-1, keepdims=True)


# --- softmax_backward: a right one and bugs --------------------------------------------------------

def softmax_backward_right(P, dP):
    return P * (dP - _rowsum(dP * P))


SOFTMAX_BUGS = {
    "no subtraction": (lambda P, dP: P * dP, "did not subtract each row's sum"),
    "no factor P": (lambda P, dP: dP - _rowsum(dP * P), "lacks the factor A"),
    "sum of dP alone": (lambda P, dP: P * (dP - _rowsum(dP)), "not of dA alone"),
    "sign": (lambda P, dP: P * (_rowsum(dP * P) - dP), "the sign is flipped"),
    "wrong sum axis": (lambda P, dP: P * (dP - (dP * P).sum(axis=0, keepdims=True)), "the wrong axis"),
    "no keepdims": (lambda P, dP: P * (dP - (dP * P).sum(axis=-1)), "keepdims=True"),
    "sum over everything": (lambda P, dP: P * (dP - (dP * P).sum()), "over the whole array"),
    "axis 1": (lambda P, dP: P * (dP - (dP * P).sum(axis=1, keepdims=True)), "Count axes from the end (axis=-1)"),
    "the Jacobian, not its product with dP": (lambda P, dP: np.diag(P) - np.outer(P, P),
                                              "returned shape (4, 4); expected (4,)"),
    "NaN on a masked row": (lambda P, dP: P * (dP - _rowsum(dP * P)) / (P.sum(axis=-1, keepdims=True) != 0),
                            "contains NaN"),
    "gradient through masked entries": (lambda P, dP: P * (dP - _rowsum(dP * P)) + (P == 0) * dP,
                                        "gradient flows through a masked entry"),
    "changes its input": (lambda P, dP: np.multiply(P, dP - _rowsum(dP * P), out=P), "changed its input"),
}


def test_softmax_backward_check_passes_right_answers():
    assert check_softmax_backward(attnlib.softmax_backward, forbid=()).passed
    result = check_softmax_backward(softmax_backward_right)
    assert result.passed, result.message


@pytest.mark.parametrize("bug", list(SOFTMAX_BUGS))
def test_softmax_backward_check_diagnoses(bug):
    fn, expected = SOFTMAX_BUGS[bug]
    result = check_softmax_backward(fn)
    assert not result.passed
    assert expected in result.message, result.message


def test_softmax_backward_check_reports_not_implemented():
    def todo(P, dP):
        raise NotImplementedError("write softmax_backward")

    result = check_softmax_backward(todo)
    assert not result.passed and result.not_implemented


# --- attention backward: a right one and bugs ---------------------------------------------------------

def make_backward(*, scale=1.0, sum_axis=-1, keepdims=True, transpose_P=True, transpose_dS=True, transpose_V=True,
                  mask_in_backward=True, fill=-np.inf, scale_dV=False, shared_sum=True, order=(0, 1, 2)):
    """An attention backward pass written as a learner would, with one knob per possible mistake.

    ``scale``: the power of 1/sqrt(d_k) in dQ and dK (1 right, 0 forgotten, 2 twice).
    """

    def backward(Q, K, V, d_output, mask=None):
        s = 1 / np.sqrt(Q.shape[-1])
        scores = s * Q @ K.swapaxes(-1, -2)  # (..., n_q, n_k)
        if mask is not None and mask_in_backward:
            scores = np.where(mask, scores, fill)
        P = attnlib.softmax(scores)  # (..., n_q, n_k)
        dV = (P.swapaxes(-1, -2) if transpose_P else P) @ d_output
        dP = d_output @ (V.swapaxes(-1, -2) if transpose_V else V)
        dS = P * (dP - (dP * P).sum(axis=sum_axis, keepdims=keepdims))
        dQ = s**scale * dS @ K
        dK = s**scale * (dS.swapaxes(-1, -2) if transpose_dS else dS) @ Q
        if scale_dV:
            dV = s * dV
        if shared_sum:  # inputs shared by a batch: sum their gradients over it
            dK = dK.reshape(-1, *K.shape).sum(axis=0) if dK.shape != K.shape else dK
            dV = dV.reshape(-1, *V.shape).sum(axis=0) if dV.shape != V.shape else dV
        grads = (dQ, dK, dV)
        return tuple(grads[i] for i in order)

    return backward


ATTENTION_BUGS = {
    "scale forgotten": (make_backward(scale=0), "the scale was forgotten in the backward pass"),
    "scale twice": (make_backward(scale=2), "applied twice"),
    "scale on dV": (make_backward(scale_dV=True), "dV is multiplied by the scale"),
    "wrong sum axis": (make_backward(sum_axis=-2), "the softmax step sums over the wrong axis"),
    "no keepdims": (make_backward(keepdims=False), "keepdims=True"),
    "missing transpose in dV": (make_backward(transpose_P=False), "transpose"),
    "missing transpose in dK": (make_backward(transpose_dS=False), "transpose"),
    "missing transpose in dP": (make_backward(transpose_V=False), "transpose"),
    "mask ignored in the backward pass": (make_backward(mask_in_backward=False),
                                          "gradient flows through masked entries"),
    "-1e9 instead of -inf": (make_backward(fill=-1e9), "query 1 gets gradient"),
    "shared keys not summed": (make_backward(shared_sum=False), "sum over the batch"),
    "wrong order": (make_backward(order=(2, 1, 0)), "wrong order"),
}
# with every size different, a missing transpose breaks the shapes: the check names the transpose
TRANSPOSE_BY_SHAPE = {"missing transpose in dV", "missing transpose in dK", "missing transpose in dP"}


def test_attention_backward_check_passes_right_answers():
    result = check_attention_backward(attnlib.attention_backward, broadcast=True, forbid=())
    assert result.passed, result.message
    result = check_attention_backward(make_backward(), broadcast=True)
    assert result.passed, result.message
    assert "query with no allowed key" in result.message


@pytest.mark.parametrize("bug", list(ATTENTION_BUGS))
def test_attention_backward_check_diagnoses(bug):
    fn, expected = ATTENTION_BUGS[bug]
    result = check_attention_backward(fn, broadcast=True)
    assert not result.passed
    assert expected in result.message, result.message


@pytest.mark.parametrize("bug", sorted(TRANSPOSE_BY_SHAPE))
def test_a_missing_transpose_is_named_where_it_fits(bug):
    """Square inputs: the shapes fit, so the diagnosis comes from the numbers and names the gradient."""
    fn, _ = ATTENTION_BUGS[bug]
    which = {"missing transpose in dV": "dV is missing a transpose",
             "missing transpose in dK": "dK is missing a transpose",
             "missing transpose in dP": "dA is missing a transpose"}[bug]

    def square_first(Q, K, V, d_output, mask=None):  # pretend the rectangular case worked
        if Q.shape != (4, 4):
            return attnlib.attention_backward(Q, K, V, d_output, mask)
        return fn(Q, K, V, d_output, mask)

    result = check_attention_backward(square_first)
    assert not result.passed and which in result.message, result.message


def test_attention_backward_check_wrong_shapes():
    def one_too_many(Q, K, V, d_output, mask=None):
        return (*attnlib.attention_backward(Q, K, V, d_output, mask), None)

    assert "expected three gradients (dQ, dK, dV)" in check_attention_backward(one_too_many).message

    def transposed_dV(Q, K, V, d_output, mask=None):
        dQ, dK, dV = attnlib.attention_backward(Q, K, V, d_output, mask)
        return dQ, dK, dV.T

    message = check_attention_backward(transposed_dV).message
    assert "your dV has shape (2, 5); expected (5, 2), the shape of V. That is its transpose" in message


def test_attention_backward_check_without_mask_or_batch():
    def no_mask(Q, K, V, d_output):
        return attnlib.attention_backward(Q, K, V, d_output)

    result = check_attention_backward(no_mask, batch=False, forbid=())
    assert result.passed and result.message == "correct on one sequence."


def test_attention_backward_check_reports_a_crash_with_a_hint():
    def crashes(Q, K, V, d_output, mask=None):
        return Q @ K, K, V  # (3, 4) @ (5, 4): shapes do not fit

    result = check_attention_backward(crashes)
    assert not result.passed and "transpose is missing" in result.message, result.message


def test_attention_backward_check_does_not_let_the_learner_change_the_inputs():
    seen = []

    def scribbles(Q, K, V, d_output, mask=None):
        grads = attnlib.attention_backward(Q, K, V, d_output, mask)
        seen.append(Q.copy())
        Q[...] = 0.0
        return grads

    result = check_attention_backward(scribbles, forbid=())
    assert not result.passed and "changed its input Q in place" in result.message, result.message


def test_backward_checks_refuse_attnlibs_own_gradients():
    def borrows(Q, K, V, d_output, mask=None):
        return attnlib.attention_backward(Q, K, V, d_output, mask)

    result = check_attention_backward(borrows)
    assert not result.passed and "your own implementation" in result.message, result.message
    result = check_softmax_backward(lambda P, dP: attnlib.softmax_backward(P, dP))
    assert not result.passed and "your own implementation" in result.message, result.message
