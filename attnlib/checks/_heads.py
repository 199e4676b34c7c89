"""Diagnosing checks for a learner's multi-head attention (chapter 4)."""

from __future__ import annotations

import math

import numpy as np

from attnlib.attention import scaled_dot_product_attention as _sdpa
from attnlib.checks._calls import FORBID, to_array, to_pair
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
)
from attnlib.masks import causal_mask as _causal_mask
from attnlib.multihead import init_multi_head as _init_multi_head

_MIXED = ("heads mixed up: {where} straight between (..., n, d_model) and (..., n_heads, n, d_head), "
          "which puts pieces of different tokens into one head. Reshape to (..., n, n_heads, d_head) and swap "
          "the heads and sequence axes (a transpose).")


@graded(forbid=FORBID["split_heads"])
def check_split_heads(fn, *, name: str = "Split heads") -> CheckResult:
    """Check a learner's ``fn(X, n_heads)``: ``(..., n, d_model) -> (..., n_heads, n, d_head)``.

    Head h must own columns ``h*d_head:(h+1)*d_head`` of ``X``.

    Examples
    --------
    >>> import attnlib
    >>> check_split_heads(attnlib.split_heads, forbid=()).passed
    True
    >>> check_split_heads(lambda X, h: X.reshape(h, X.shape[0], -1)).message[:16]
    'heads mixed up: '
    """
    for shape, n_heads in (((4, 6), 3), ((2, 4, 6), 2), ((2, 3, 4, 6), 2)):  # any number of leading axes
        X = np.arange(math.prod(shape), dtype=float).reshape(shape)
        *lead, n, d_model = shape
        d_head = d_model // n_heads
        expected = X.reshape(*lead, n, n_heads, d_head).swapaxes(-3, -2)  # (..., n_heads, n, d_head)
        context = f"with X of shape {shape} and n_heads = {n_heads}"
        got, problem = attempt(name, fn, X, n_heads, convert=to_array, names=("X", "n_heads"),
                               expected="fn(X, n_heads)")
        if problem is not None:
            return in_context(problem, context)
        if got.shape != expected.shape:
            hint = ""
            if got.shape == (*lead, n, n_heads, d_head):
                hint = " The heads axis must come before the sequence axis, so that each head is a sequence."
            return failed(name, f"{context}, your result has shape {got.shape}; expected {expected.shape} "
                                f"= (..., n_heads, n, d_head).{hint}")
        if not close(got, expected):
            if close(got, X.reshape(*lead, n_heads, n, d_head)):
                return failed(name, _MIXED.format(where="your split reshapes"))
            if close(got, X.reshape(*lead, n, d_head, n_heads).swapaxes(-1, -2).swapaxes(-3, -2)):
                return failed(name, f"{context}, head h should own the consecutive columns h*d_head:(h+1)*d_head, "
                                    "not every n_heads-th column.")
            return failed(name, f"{context}, your heads are wrong ({difference(got, expected)}).")
    return passed(name, "correct, for one sequence and a batch.")


@graded(forbid=FORBID["merge_heads"])
def check_merge_heads(fn, *, name: str = "Merge heads") -> CheckResult:
    """Check a learner's ``fn(H)``: ``(..., n_heads, n, d_head) -> (..., n, n_heads * d_head)``.

    Examples
    --------
    >>> import attnlib
    >>> check_merge_heads(attnlib.merge_heads, forbid=()).passed
    True
    """
    for shape in ((3, 4, 2), (2, 2, 4, 3)):
        H = np.arange(math.prod(shape), dtype=float).reshape(shape)
        *lead, n_heads, n, d_head = shape
        expected = H.swapaxes(-3, -2).reshape(*lead, n, n_heads * d_head)  # (..., n, d_model)
        context = f"with heads of shape {shape}"
        got, problem = attempt(name, fn, H, convert=to_array, names=("H",), expected="fn(H)")
        if problem is not None:
            return in_context(problem, context)
        if got.shape != expected.shape:
            shape_got = got.shape
            return failed(name, f"{context}, your result has shape {shape_got}; expected {expected.shape} "
                                "= (..., n, n_heads * d_head).")
        if not close(got, expected):
            if close(got, H.reshape(*lead, n, n_heads * d_head)):
                return failed(name, _MIXED.format(where="your merge reshapes"))
            return failed(name, f"{context}, the merged result is wrong ({difference(got, expected)}).")
    return passed(name, "correct, for one sequence and a batch.")


def _mha(X_q, X_kv, p, n_heads, mask=None, *, scale=None, split_ok=True, merge_ok=True, w_o=True):
    """Multi-head attention computed right, or wrong in one known way."""
    *lead, n_q, d_model = X_q.shape
    n_k = X_kv.shape[-2]
    d_head = d_model // n_heads

    def split(Y, n):
        if split_ok:
            return Y.reshape(*Y.shape[:-2], n, n_heads, d_head).swapaxes(-3, -2)  # (..., n_heads, n, d_head)
        return Y.reshape(*Y.shape[:-2], n_heads, n, d_head)  # wrong: mixes tokens and heads

    Q = split(X_q @ p["W_q"], n_q)  # (..., n_heads, n_q, d_head)
    K = split(X_kv @ p["W_k"], n_k)  # (..., n_heads, n_k, d_head)
    V = split(X_kv @ p["W_v"], n_k)  # (..., n_heads, n_k, d_head)
    if mask is not None:
        mask = mask[..., None, :, :]  # the same mask for every head
    heads, weights = _sdpa(Q, K, V, mask, scale=scale)  # (..., n_heads, n_q, d_head)
    if merge_ok:
        merged = heads.swapaxes(-3, -2).reshape(*heads.shape[:-3], n_q, d_model)  # (..., n_q, d_model)
    else:
        merged = heads.reshape(*heads.shape[:-3], n_q, d_model)
    return (merged @ p["W_o"] if w_o else merged), weights


class _LearnerMHA:
    """Calls the learner's ``fn(X_q, X_kv, params, n_heads[, mask])`` or ``fn(X, params, n_heads)``.

    ``n_heads`` (and ``mask``) go by keyword when the function takes them only by keyword;
    everything else by position, so parameter names do not matter.
    """

    def __init__(self, name, fn):
        self.name, self.fn = name, fn
        params = parameters(fn)
        self.n_heads_keyword = params is not None and "n_heads" in params.keyword_only
        core = 3 if self.n_heads_keyword else 4  # positional slots for X_q, X_kv, params[, n_heads]
        capacity = 5 if params is None else params.capacity
        self.self_only = capacity == core - 1 and not (params is not None and params.var_positional)
        slots = core - 1 if self.self_only else core
        if capacity > slots:
            self.mask_by = "position"
        elif params is not None and ("mask" in params.keyword_only or params.var_keyword):
            self.mask_by = "keyword"
        else:
            self.mask_by = None
        self.takes_mask = self.mask_by is not None
        self.mask_required = params is not None and (params.required > slots or "mask" in params.required_keyword_only)
        forms = "fn(X, params, n_heads)" if self.self_only else "fn(X_q, X_kv, params, n_heads)"
        self.expected = forms.replace("n_heads)", "n_heads=...)") if self.n_heads_keyword else forms

    def __call__(self, context, X_q, X_kv, p, n_heads, mask=None):
        if mask is None and self.mask_required:  # a mask without a default: "no mask" is all True
            mask = np.ones((X_q.shape[-2], X_kv.shape[-2]), dtype=bool)
        args, names = ((X_q, p), ("X", "params")) if self.self_only else ((X_q, X_kv, p), ("X_q", "X_kv", "params"))
        kwargs = {}
        if self.n_heads_keyword:
            kwargs["n_heads"] = n_heads
        else:
            args, names = (*args, n_heads), (*names, "n_heads")
        if mask is not None and self.mask_by == "keyword":
            kwargs["mask"] = mask
        elif mask is not None:
            args, names = (*args, mask), (*names, "mask")
        expected = self.expected if mask is None else self.expected[:-1] + ", mask)"
        value, problem = attempt(self.name, self.fn, *args, convert=to_pair, names=names, expected=expected,
                                 **kwargs)
        if problem is not None:
            return None, None, in_context(problem, context)
        out, weights = (None if v is None else v.astype(float) for v in value)
        return out, weights, None


@graded(forbid=FORBID["multi_head"])
def check_multi_head(fn, *, name: str = "Multi-head attention", batch: bool = True,
                     masks: bool | None = None) -> CheckResult:
    """Check a learner's multi-head attention.

    ``fn(X_q, X_kv, params, n_heads)`` (or ``fn(X, params, n_heads)`` for
    self-attention only; with a ``mask`` argument, masks are tried too) must follow
    :func:`attnlib.multi_head_attention`: ``params`` holds ``W_q, W_k, W_v, W_o``
    ``(d_model, d_model)`` used as ``X @ W``, head h owns columns ``h*d_head:(h+1)*d_head``,
    each head scales by ``1/sqrt(d_head)``.  ``fn`` returns the output ``(..., n_q, d_model)``
    or ``(output, weights)`` with weights ``(..., n_heads, n_q, n_k)``.  With ``batch=False``
    only single sequences ``(n, d_model)`` are tried.  ``n_heads`` may have a default and may be
    keyword-only.  Masks (a fifth argument, by position, or ``mask=``) are tried with
    ``masks=True`` (a function with no mask parameter fails) and, by default, whenever the
    function takes one.  ``multi_head_attention`` refuses to run inside ``fn``; attnlib's
    attention, ``split_heads`` and ``merge_heads`` may be used.

    Examples
    --------
    >>> import attnlib
    >>> check_multi_head(attnlib.multi_head_attention, forbid=()).passed
    True
    """
    learner = _LearnerMHA(name, fn)
    if masks is None:
        masks = learner.takes_mask
    rng = np.random.default_rng(3)
    d_model, n_heads, n = 8, 2, 5
    d_head = d_model // n_heads
    p = _init_multi_head(d_model, n_heads, rng)
    X = rng.normal(size=(n, d_model))

    context = f"with X of shape {X.shape}, d_model = {d_model} and n_heads = {n_heads}"
    out, weights, problem = learner(context, X, X, p, n_heads)
    if problem is not None:
        return problem
    if out.shape != (n, d_model):
        return failed(name, f"{context}, your output has shape {out.shape}; expected {(n, d_model)} = (n, d_model).")
    if weights is not None and weights.shape != (n_heads, n, n):
        return failed(name, f"{context}, your weights have shape {weights.shape}; expected {(n_heads, n, n)} "
                            "= (n_heads, n_q, n_k).")
    expected = _mha(X, X, p, n_heads)
    if not (close(out, expected[0]) and (weights is None or close(weights, expected[1]))):
        if np.isnan(out).any():
            return failed(name, f"{context}, your output contains NaN.")
        if close(out, expected[0]):  # the output is right: it is the weights that differ
            hint = ""
            if close(np.swapaxes(weights, -1, -2), expected[1]):
                hint = " They are transposed: weights[h, i, j] is how much query i attends to key j."
            return failed(name, f"{context}, your output is right but your weights differ from the expected ones "
                                f"({difference(weights, expected[1])}).{hint}")
        variants = [
            (_mha(X, X, p, n_heads, scale=1 / math.sqrt(d_model)),
             f"wrong scale: the scores are divided by sqrt(d_model) = sqrt({d_model}); each head should divide "
             f"by sqrt(d_head) = sqrt({d_head}), the size of its own keys."),
            (_mha(X, X, p, n_heads, scale=1.0), "no scaling: each head should divide its scores by sqrt(d_head)."),
            (_mha(X, X, p, n_heads, split_ok=False), _MIXED.format(where="your split reshapes")),
            (_mha(X, X, p, n_heads, merge_ok=False), _MIXED.format(where="your merge reshapes")),
            (_mha(X, X, p, n_heads, split_ok=False, merge_ok=False),
             _MIXED.format(where="both your split and your merge reshape")),
            (_mha(X, X, p, n_heads, w_o=False), "the output projection W_o is missing: after merging the "
                                                 "heads, multiply by W_o."),
            (_mha(X, X, p, 1), f"this is a single head of size d_model: split into n_heads = {n_heads} heads "
                               f"of size d_head = {d_head}."),
        ]
        for (v_out, _), message in variants:
            if close(out, v_out):
                return failed(name, message)
        return failed(name, f"{context}, the output differs from the expected one ({difference(out, expected[0])}).")

    Xb = rng.normal(size=(2, n, d_model))
    tried = "one sequence"
    if batch:
        context = f"with a batch (X of shape {Xb.shape})"
        out, weights, problem = learner(context, Xb, Xb, p, n_heads)
        if problem is not None:
            return problem
        expected = _mha(Xb, Xb, p, n_heads)
        if not close(out, expected[0]):
            detail = difference(out, expected[0]) if out.shape == expected[0].shape else \
                f"shape {out.shape}, expected {expected[0].shape}"
            return failed(name, f"{context}, the output is wrong although one sequence worked ({detail}); "
                                "count axes from the end.")
        tried += " and a batch"

    if not learner.self_only:
        X_kv = rng.normal(size=(n + 2, d_model))
        X_q = X[:3]
        context = f"for cross-attention (X_q of shape {X_q.shape}, X_kv of shape {X_kv.shape})"
        out, weights, problem = learner(context, X_q, X_kv, p, n_heads)
        if problem is not None:
            return problem
        expected = _mha(X_q, X_kv, p, n_heads)
        if not close(out, expected[0]):
            if out.shape == (n + 2, d_model):
                return failed(name, f"{context}, your output has one row per key; queries come from X_q, "
                                    "keys and values from X_kv.")
            detail = difference(out, expected[0]) if out.shape == expected[0].shape else \
                f"shape {out.shape}, expected {expected[0].shape}"
            return failed(name, f"{context}, the output is wrong ({detail}).")
        tried += ", cross-attention"

    if masks and not learner.takes_mask:
        return failed(name, f"correct on {tried}, but your function has no mask parameter: this exercise asks "
                            "for fn(X_q, X_kv, params, n_heads, mask=None).")
    if masks:
        mask = _causal_mask(n)
        context = f"with a causal mask of shape {mask.shape}"
        out, weights, problem = learner(context, X, X, p, n_heads, mask)
        if problem is not None:
            return problem
        expected = _mha(X, X, p, n_heads, mask)
        if not close(out, expected[0]):
            if close(out, _mha(X, X, p, n_heads)[0]):
                return failed(name, "the mask is ignored: every query still looks at every key.")
            if close(out, _mha(X, X, p, n_heads, ~mask)[0]):
                return failed(name, "the mask is used the wrong way round: True means this query MAY attend "
                                    "to this key.")
            return failed(name, f"{context}, the output is wrong ({difference(out, expected[0])}).")
        tried += ", a causal mask"
    return passed(name, f"correct on {tried}.")
