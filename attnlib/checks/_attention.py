"""A diagnosing check for a learner's scaled dot-product attention (chapters 3 and 4)."""

from __future__ import annotations

import math

import numpy as np

from attnlib.attention import scaled_dot_product_attention as _sdpa
from attnlib.checks._calls import FORBID, to_pair
from attnlib.checks._result import (
    CheckResult,
    attempt,
    close,
    difference,
    failed,
    graded,
    in_context,
    parameters,
    passed,
    with_hint,
)
from attnlib.masks import causal_mask as _causal_mask
from attnlib.masks import padding_mask as _padding_mask
from attnlib.softmax import softmax as _softmax


def attend(Q, K, V, mask=None, *, scale=None, axis=-1, masking="-inf"):
    """Attention computed right (attnlib's own function), or wrong in one known way (the variants a diagnosis names).

    ``axis=-2``: softmax over the queries.  ``masking``: "-inf" (right), "after" (weights
    zeroed after the softmax), "zero" (masked scores set to 0).
    """
    if axis == -1 and (mask is None or masking == "-inf"):
        return _sdpa(Q, K, V, mask, scale=scale)
    if masking == "after":
        _, weights = _sdpa(Q, K, V, scale=scale)
        weights = weights * mask  # (..., n_q, n_k)
        return weights @ V, weights
    s = 1 / math.sqrt(Q.shape[-1]) if scale is None else scale
    scores = (Q @ K.swapaxes(-1, -2)) * s  # (..., n_q, n_k)
    if mask is not None:
        scores = np.where(mask, scores, 0.0 if masking == "zero" else -np.inf)
    weights = _softmax(scores, axis=axis)  # (..., n_q, n_k)
    return weights @ V, weights  # (..., n_q, d_v), (..., n_q, n_k)


class _Learner:
    """Calls the learner's ``fn(Q, K, V[, mask])``: the mask by position (or as ``mask=``), results as arrays."""

    def __init__(self, name, fn):
        self.name, self.fn = name, fn
        params = parameters(fn)
        if params is None:  # no readable signature: pass the mask by position
            self.mask_by, self.mask_required = "position", False
        else:
            self.mask_by = "position" if params.capacity >= 4 else \
                "keyword" if ("mask" in params.keyword_only or params.var_keyword) else None
            self.mask_required = params.required >= 4 or "mask" in params.required_keyword_only
        self.takes_mask = self.mask_by is not None

    def __call__(self, context, Q, K, V, mask=None):
        if mask is None and self.mask_required:  # a mask without a default: "no mask" is all True
            mask = np.ones((Q.shape[-2], K.shape[-2]), dtype=bool)
        args, kwargs, names = (Q, K, V), {}, ("Q", "K", "V")
        if mask is not None and self.mask_by == "keyword":
            kwargs["mask"] = mask
        elif mask is not None:
            args, names = (*args, mask), (*names, "mask")
        expected = "fn(Q, K, V, mask)" if mask is not None else "fn(Q, K, V)"
        value, problem = attempt(self.name, self.fn, *args, convert=to_pair, names=names, expected=expected,
                                 **kwargs)
        if problem is not None:
            return None, None, in_context(problem, context)
        out, weights = value
        if out.dtype == bool or (weights is not None and weights.dtype == bool):
            return None, None, failed(self.name, f"{context}, your function returned booleans, not numbers.")
        out = out.astype(float)
        return out, (None if weights is None else weights.astype(float)), None


def _shape_problem(name, context, out, weights, n_q, n_k, d_k, d_v, lead=()):
    expected = (*lead, n_q, d_v)
    if weights is not None and weights.shape == expected and out.shape == (*lead, n_q, n_k) and n_k != d_v:
        return failed(name, f"{context}, your function gives back (weights, output); "
                            "the output should come first: (output, weights).")
    if out.shape != expected:
        hint = ""
        if out.shape == (*lead, n_q, d_k) and d_k != d_v:
            hint = " That is (n_q, d_k): the output should be a weighted average of the values V, not the keys."
        elif out.shape == (*lead, n_q, n_k):
            hint = " That is the shape of the weights (n_q, n_k): multiply the weights by V."
        return failed(name, f"{context}, your output has shape {out.shape}; expected {expected} = "
                            f"({'batch, ' if lead else ''}n_q, d_v).{hint}")
    expected = (*lead, n_q, n_k)
    if weights is not None and weights.shape != expected:
        hint = " It looks transposed: one row per query, one column per key." \
            if weights.shape == (*lead, n_k, n_q) else ""
        return failed(name, f"{context}, your weights have shape {weights.shape}; expected {expected} = "
                            f"({'batch, ' if lead else ''}n_q, n_k).{hint}")
    return None


OVERFLOWS = ("your output contains NaN or infinity: exp overflows. Subtract each row's maximum score before exp (the "
             "softmax does not change).")
UNDERFLOWS = ("your output contains NaN: every exp of a row underflows to 0 (0 / 0 is nan), because you subtracted one "
              "maximum over the whole score matrix, far above that row's scores. Subtract each row's own maximum "
              "(max(axis=-1, keepdims=True)).")
FIRST_SHIFTED = ("your output contains NaN: you subtract each row's first score before exp, not its largest, and a "
                 "later score more than about 709 above the first overflows. Subtract each row's maximum score.")
CLIPS = ("your softmax clips the scores (np.clip or np.minimum): every score above the clip gets the same weight, so "
         "two large scores 4 apart weigh the same. Subtract each row's maximum score before exp instead (the "
         "weights do not change).")


def _exp_variants(S, V):
    """What attention gives when its softmax handles large scores in a known wrong way (adv16 F1)."""
    def normalised(e):
        with np.errstate(all="ignore"):
            return (e / e.sum(axis=-1, keepdims=True)) @ V
    with np.errstate(all="ignore"):
        return [(normalised(np.exp(S)), OVERFLOWS),
                (normalised(np.exp(S - S.max())), UNDERFLOWS),
                (normalised(np.exp(S - S[..., :1])), FIRST_SHIFTED),
                (normalised(np.exp(np.clip(S, -30.0, 30.0))), CLIPS)]


def _large_score_diagnosis(out, Q, K, V) -> str | None:
    """The known wrong softmax whose attention gives ``out`` on these inputs, in words; else None."""
    S = Q @ np.swapaxes(K, -1, -2) / math.sqrt(K.shape[-1])
    got = np.asarray(out, dtype=float)
    for variant, message in _exp_variants(S, V):
        if variant.shape == got.shape and np.allclose(got, variant, rtol=1e-6, atol=1e-9, equal_nan=True):
            return message
    return None


def _spread_large_scores():
    """Q, K, V whose scaled scores are (row 0) a low first key and two keys at 800 and 796, (row 1) the first key
    alone high at 800, (row 2) small: a softmax without its maximum overflows in rows 0 and 1, one shifted by the first
    score in row 0, one shifted by the matrix's maximum underflows in row 2, and a clip weighs 800 and 796 the same
    (adv16 F1; check_softmax's [1000, 1001, 1002] for attention)."""
    S = np.array([[-800.0, 800.0, 796.0, -800.0, -790.0],
                  [800.0, -800.0, -790.0, -800.0, -795.0],
                  [0.5, -0.3, 0.1, 0.9, -1.2]])
    d_k = S.shape[1]
    K = 40.0 * np.eye(d_k)
    Q = S * math.sqrt(d_k) / 40.0
    V = np.array([[1.0, -2.0], [3.0, 0.5], [-1.0, 2.0], [0.0, 1.0], [2.0, -1.0]])
    return Q, K, V


def _matches(out, weights, variant) -> bool:
    v_out, v_weights = variant
    return close(out, v_out) and (weights is None or close(weights, v_weights))


def _scale_diagnosis(out, weights, Q, K, V, d_model) -> str | None:
    """If the answer is attention with some other scale, say which one it looks like."""
    d_k, n_q, n_k, d_v = Q.shape[-1], Q.shape[-2], K.shape[-2], V.shape[-1]
    named = [(1.0, "no scaling: divide the scores by sqrt(d_k) before the softmax."),
             (1 / d_k, f"you divided the scores by d_k = {d_k}; divide by its square root sqrt(d_k) instead."),
             (math.sqrt(d_k), "you multiplied the scores by sqrt(d_k); divide by it instead.")]
    sizes = {"d_model": d_model, "n_k": n_k, "n_q": n_q, "d_v": d_v}
    words = {"d_model": "the model width", "n_k": "the number of keys", "n_q": "the number of queries",
             "d_v": "the size of a value"}
    for size_name, size in sizes.items():
        if size is not None and size != d_k:
            named.append((1 / math.sqrt(size), f"wrong scale: it looks like sqrt({size_name}) ({words[size_name]}, "
                                               f"{size}) instead of sqrt(d_k) (the size of a key, {d_k})."))
    for scale, message in named:
        if _matches(out, weights, attend(Q, K, V, scale=scale)):
            return message
    for m in range(2, 1025):
        if m != d_k and _matches(out, weights, attend(Q, K, V, scale=1 / math.sqrt(m))):
            return (f"wrong scale: the scores look divided by sqrt({m}) instead of sqrt(d_k) with d_k = {d_k}, "
                    "the size of a query or key (is a global variable such as a model width in your code?).")
    return None


def _leak(learner, Q, K, V, mask, out):
    """Does changing a value the mask hides change some query's output?  Returns (i, j) or None."""
    n_q, n_k = mask.shape[-2:]
    for i in range(n_q):
        for j in range(n_k):
            if mask[..., i, j].all():
                continue
            V2 = V.copy()
            V2[..., j, :] += 10.0
            out2, _, problem = learner("", Q, K, V2, mask)
            if problem is None and out2 is not None and out2.shape == out.shape \
                    and not np.allclose(out2[..., i, :], out[..., i, :], atol=1e-6):
                return i, j
    return None


@graded(forbid=FORBID["attention"])
def check_attention(fn, *, name: str = "Attention", d_model: int | None = None,
                    fully_masked_rows: bool = True, batch: bool = True, masks: bool | None = None) -> CheckResult:
    r"""Check a learner's ``fn(Q, K, V, mask=None)`` or ``fn(Q, K, V)``: scaled dot-product attention.

    ``fn`` may return the output ``(..., n_q, d_v)`` or ``(output, weights)``.  Masks
    (boolean, True = may attend) are passed by position, whatever the parameter is called
    (or as ``mask=`` to a function that takes it only by keyword): a causal mask, a padding
    mask that must broadcast over a batch, a mask that hides the largest scores and, unless
    ``fully_masked_rows=False``, a query with no allowed key (zero weights, zero output).
    ``masks=True`` (for an exercise that asks for masks): a function with no mask parameter
    fails; ``masks=False``: no masks are tried; ``None`` (default): masks are tried whenever
    the function can take a fourth argument.  A required mask is accepted: where no mask is
    meant, it gets one that allows everything.  attnlib's attention functions refuse to run
    inside ``fn`` (the softmax is allowed).
    Large scores come in two steps: a row with two scores 4 apart above 709 (a softmax without each
    row's maximum overflows or underflows, one that clips the scores weighs the two alike; each is
    named), then Q and K multiplied by 30.
    ``d_model`` names a model width the diagnosis may recognise as a wrong scale.
    With ``batch=False`` only single sequences ``(n, d)`` are tried (for exercises that
    ask for no batch dimension).

    Examples
    --------
    >>> import attnlib
    >>> check_attention(attnlib.scaled_dot_product_attention, forbid=()).passed
    True
    >>> check_attention(attnlib.scaled_dot_product_attention).message[:28]
    'use your own implementation:'
    >>> def no_scale(Q, K, V):
    ...     return attnlib.softmax(Q @ K.swapaxes(-1, -2)) @ V
    >>> check_attention(no_scale).message
    'no scaling: divide the scores by sqrt(d_k) before the softmax.'
    """
    learner = _Learner(name, fn)
    rng = np.random.default_rng(2)
    n_q, n_k, d_k, d_v = 3, 5, 6, 2
    Q, K, V = rng.normal(size=(n_q, d_k)), rng.normal(size=(n_k, d_k)), rng.normal(size=(n_k, d_v))

    # 1. one sequence, no mask
    context = f"with Q {Q.shape}, K {K.shape}, V {V.shape}"
    out, weights, problem = learner(context, Q, K, V)
    if problem is not None:
        return problem
    problem = _shape_problem(name, context, out, weights, n_q, n_k, d_k, d_v)
    if problem is not None:
        return problem
    message = _diagnosis(context, out, weights, Q, K, V, d_model)
    if message is not None:
        return failed(name, message)

    # 2. a batch of sequences
    Qb, Kb, Vb = rng.normal(size=(2, n_q, d_k)), rng.normal(size=(2, n_k, d_k)), rng.normal(size=(2, n_k, d_v))
    if batch:
        context = f"with a batch (Q {Qb.shape}, K {Kb.shape}, V {Vb.shape})"
        out, weights, problem = learner(context, Qb, Kb, Vb)
        if problem is not None:
            return with_hint(problem, "Count axes from the end (for example swapaxes(-1, -2)) so that batches "
                                      "work; .T reverses every axis.")
        problem = _shape_problem(name, context, out, weights, n_q, n_k, d_k, d_v, lead=(2,))
        if problem is not None:
            return problem
        expected = attend(Qb, Kb, Vb)
        if not _matches(out, weights, expected):
            return failed(name, f"{context}, the output is wrong although one sequence worked "
                                f"({difference(out, expected[0])}); count axes from the end.")
    else:  # one padded sequence instead of a batch below
        Qb, Kb, Vb = Qb[1], Kb[1], Vb[1]
    tried = "one sequence, a batch" if batch else "one sequence"

    # 3. large scores: a softmax that does not subtract each row's maximum overflows (or underflows); first two
    # large scores 4 apart, then Q and K multiplied by 30
    Qs, Ks, Vs = _spread_large_scores()
    for context, (Qbig, Kbig, Vbig) in [("with large scores (800 and 796 in one row)", (Qs, Ks, Vs)),
                                        ("with large scores (Q and K multiplied by 30)", (30.0 * Q, 30.0 * K, V))]:
        out, weights, problem = learner(context, Qbig, Kbig, Vbig)
        if problem is not None:
            return problem
        expected = attend(Qbig, Kbig, Vbig)
        if not _matches(out, weights, expected):
            named = _large_score_diagnosis(out, Qbig, Kbig, Vbig)
            if named is not None:
                return failed(name, f"{context}, {named}")
            if not np.isfinite(out).all():
                return failed(name, f"{context}, your output contains NaN or infinity: exp overflows or underflows. "
                                    "Subtract each row's maximum score before exp (the softmax does not change).")
            return failed(name, f"{context}, the output is wrong ({difference(out, expected[0])}).")

    if masks is False or (masks is None and not learner.takes_mask):
        return passed(name, f"correct on {tried} and large scores.")
    if not learner.takes_mask:
        return failed(name, f"correct on {tried} and large scores, but your function has no mask parameter: this "
                            "exercise asks for fn(Q, K, V, mask=None), where mask is boolean, True = this query "
                            "may attend to this key.")

    # 4. a causal mask
    mask = _causal_mask(n_q, n_k)  # (n_q, n_k): query i sees keys 0..i
    context = f"with a causal mask of shape {mask.shape}"
    out, weights, problem = learner(context, Q, K, V, mask)
    if problem is not None:
        return problem
    problem = _shape_problem(name, context, out, weights, n_q, n_k, d_k, d_v)
    if problem is not None:
        return problem
    expected = attend(Q, K, V, mask)
    if not _matches(out, weights, expected):
        variants = [
            (attend(Q, K, V), "the mask is ignored: every query still looks at every key."),
            (attend(Q, K, V, ~mask), "the mask is used the wrong way round: True means this query MAY attend "
                                     "to this key, False hides it."),
            (attend(Q, K, V, mask, masking="after"),
             "mask applied after the softmax: the hidden keys get weight 0, but the remaining weights no longer "
             "sum to one. Hide the keys in the scores (with -inf) before the softmax."),
            (attend(Q, K, V, mask, masking="zero"),
             "the hidden keys' scores were set to 0, but a score of 0 still gets a positive weight; "
             "a hidden key needs a score of -inf (weight exactly 0)."),
        ]
        for variant, message in variants:
            if _matches(out, weights, variant):
                return failed(name, message)
        if np.isnan(out).any():
            return failed(name, f"{context}, your output contains NaN.")
        leak = _leak(learner, Q, K, V, mask, out)
        if leak:
            return failed(name, f"future leaking: the output of query {leak[0]} changes when the value of key "
                                f"{leak[1]} changes, but the mask hides key {leak[1]} from query {leak[0]}.")
        return failed(name, f"{context}, the output is wrong ({difference(out, expected[0])}).")

    # 5. a padding mask that must broadcast over a batch
    mask = _padding_mask([n_k, 2], n_k) if batch else _padding_mask([2], n_k)[0]  # (2, 1, n_k) or (1, n_k)
    scores_shape = (*Qb.shape[:-1], n_k)
    context = f"with {'a batch and ' if batch else ''}a padding mask of shape {mask.shape}"
    out, weights, problem = learner(context, Qb, Kb, Vb, mask)
    if problem is not None:
        return with_hint(problem, "A mask must broadcast to the scores' shape (..., n_q, n_k); "
                                  f"here {mask.shape} against {scores_shape}.")
    problem = _shape_problem(name, context, out, weights, n_q, n_k, d_k, d_v, lead=(2,) if batch else ())
    if problem is not None:
        return problem
    if not _matches(out, weights, attend(Qb, Kb, Vb, mask)):
        return failed(name, f"{context}, the output is wrong ({difference(out, attend(Qb, Kb, Vb, mask)[0])}).")
    # 6. the hidden keys have the largest scores: a softmax over all keys underflows for the allowed ones
    Qh = np.array([[30.0, 0.0], [0.0, 30.0]])  # (n_q=2, d_k=2)
    Kh = np.array([[40.0, 40.0], [1.0, 0.0], [0.0, 1.0]])  # (n_k=3, d_k=2): key 0 scores far above the others
    Vh = np.array([[5.0, -5.0], [1.0, 2.0], [3.0, -1.0]])  # (n_k=3, d_v=2)
    mask = np.array([[False, True, True], [False, True, True]])  # key 0 is hidden from both queries
    context = "with a mask that hides the keys with the largest scores"
    out, weights, problem = learner(context, Qh, Kh, Vh, mask)
    if problem is not None:
        return problem
    expected = attend(Qh, Kh, Vh, mask)
    if not _matches(out, weights, expected):
        return failed(name, f"{context}, {_after_softmax_diagnosis(out, weights, Qh, Kh, Vh, mask, expected)}")
    if not fully_masked_rows:
        return passed(name, f"correct on {tried}, large scores, a causal and a padding mask.")

    # 6. a query that may attend to no key at all
    mask = np.array([[True, False, True, True, False],
                     [False, False, False, False, False],  # query 1 sees nothing
                     [True, True, True, True, True]])
    context = "with a fully masked row (query 1 may attend to no key)"
    out, weights, problem = learner(context, Q, K, V, mask)
    if problem is not None:
        return problem
    expected = attend(Q, K, V, mask)
    if not _matches(out, weights, expected):
        row_out = out[1]
        row_w = None if weights is None else weights[1]
        if np.isnan(row_out).any() or (row_w is not None and np.isnan(row_w).any()):
            return failed(name, f"{context}, your attention gives NaN for that query: its weights come out as "
                                "0 / 0 (a softmax of a row that is all -inf, or weights renormalised after "
                                "every key was hidden). A query with no allowed key should get zero weights "
                                "and a zero output.")
        if close(row_out, V.mean(axis=0)) or (row_w is not None and close(row_w, np.full(n_k, 1 / n_k))):
            return failed(name, f"{context}, that query gets uniform weights (it averages all values), as "
                                "masking with a large negative number like -1e9 does. A query with no allowed "
                                "key should get zero weights and a zero output; use -inf and a softmax that "
                                "turns an all -inf row into zeros.")
        return failed(name, f"{context}, the output is wrong ({difference(out, expected[0])}); a query with no "
                            "allowed key should get zero weights and a zero output.")
    return passed(name, f"correct on {tried}, large scores, causal and padding masks, "
                        "and a query with no allowed key.")


def _diagnosis(context, out, weights, Q, K, V, d_model) -> str | None:
    """None if ``(out, weights)`` is attention of one sequence, else what looks wrong, in words."""
    expected = attend(Q, K, V)
    if _matches(out, weights, expected):
        return None
    d_k = Q.shape[-1]
    if np.isnan(out).any():
        return f"{context}, your output contains NaN."
    message = _scale_diagnosis(out, weights, Q, K, V, d_model)
    if message is None and _matches(out, weights, attend(Q, K, V, axis=-2)):
        message = "softmax over the wrong axis: each query's weights (a row) should sum to one, not each column."
    if message is None and close(out, (Q @ K.T / math.sqrt(d_k)) @ V):
        message = "there is no softmax: turn the scores into weights that are positive and sum to one."
    if message is None and weights is not None:
        sums = weights.sum(axis=-1)
        bad = np.flatnonzero(~np.isclose(sums, 1.0, atol=1e-6))
        if bad.size:
            message = f"the weights of query {bad[0]} sum to {sums[bad[0]]:.4g}, not to one."
    if message is None:
        message = f"{context}, the output differs from the expected one ({difference(out, expected[0])})."
    return message


def _after_softmax_diagnosis(out, weights, Q, K, V, mask, expected) -> str:
    """Why the answer is wrong when the hidden keys have the largest scores."""
    _, full = _sdpa(Q, K, V)  # (n_q, n_k): the softmax over every key, hidden ones included
    kept = full * mask
    if np.isnan(out).any() or (weights is not None and np.isnan(weights).any()) or \
            close(out, kept @ V) or np.allclose(kept, 0.0):
        return ("mask applied after the softmax: the softmax over all keys gives the allowed keys weights that "
                "underflow to 0 when a hidden key has a much larger score, so renormalising them afterwards "
                "divides 0 by 0 (or the weights no longer sum to one). Hide the keys in the scores (with -inf) "
                "before the softmax.")
    if close(out, attend(Q, K, V)[0]):
        return "the mask is ignored: every query still looks at every key."
    return f"the output is wrong ({difference(out, expected[0])})."


@graded(forbid=FORBID["attention"])
def check_self_attention(fn, *, name: str = "Self-attention") -> CheckResult:
    """Check a learner's ``fn(X, params)``: self-attention of ``X`` projected with ``params["W_q"]``, ``W_k``, ``W_v``.

    ``Q = X @ W_q``, ``K = X @ W_k``, ``V = X @ W_v``; ``fn`` returns the output ``(n, d_v)`` or
    ``(output, weights)`` with weights ``(n, n)``, and gets the same diagnoses as
    :func:`check_attention` (scale, softmax axis, shapes).  The projections are not square
    (``d_model`` = 6, ``d_k`` = 4, ``d_v`` = 3), so a mix-up shows in the shapes.  attnlib's
    attention functions refuse to run inside ``fn`` (the softmax is allowed).

    Examples
    --------
    >>> import attnlib
    >>> def self_attention(X, params):
    ...     Q, K, V = (X @ params[w] for w in ("W_q", "W_k", "W_v"))
    ...     return attnlib.softmax(Q @ K.T / np.sqrt(K.shape[-1])) @ V
    >>> check_self_attention(self_attention).message
    'correct on two inputs and large inputs.'
    """
    rng = np.random.default_rng(4)
    n, d_model, d_k, d_v = 5, 6, 4, 3
    cases = [("with X of shape (5, 6) and W_q, W_k (6, 4), W_v (6, 3)", rng.normal(size=(n, d_model))),
             ("with another X of shape (5, 6)", rng.normal(size=(n, d_model)))]
    params = {"W_q": rng.normal(size=(d_model, d_k)) / math.sqrt(d_model),
              "W_k": rng.normal(size=(d_model, d_k)) / math.sqrt(d_model),
              "W_v": rng.normal(size=(d_model, d_v))}
    cases.append(("with large inputs (X times 30)", 30.0 * cases[0][1]))
    for context, X in cases:
        Q, K, V = X @ params["W_q"], X @ params["W_k"], X @ params["W_v"]  # (n, d_k), (n, d_k), (n, d_v)
        value, problem = attempt(name, fn, X, params, convert=to_pair, names=("X", "params"),
                                 expected="fn(X, params)")
        if problem is not None:
            return in_context(problem, context)
        out, weights = (None if v is None else v.astype(float) for v in value)
        if out.shape == X.shape:
            return failed(name, f"{context}, your output has shape {out.shape}, the shape of X; expected {(n, d_v)} "
                                "= (n, d_v): the output averages the values V = X @ W_v.")
        problem = _shape_problem(name, context, out, weights, n, n, d_k, d_v)
        if problem is not None:
            return problem
        if "large" in context and not np.isfinite(out).all():
            return failed(name, f"{context}, your output contains NaN or infinity: exp overflows. "
                                "Subtract each row's maximum score before exp (the softmax does not change).")
        message = _diagnosis(context, out, weights, Q, K, V, d_model)
        if message is not None:
            return failed(name, message)
    return passed(name, "correct on two inputs and large inputs.")
