"""Input validation for attnlib's public functions: the one place where arguments are checked.

Every public function checks its inputs here first, so that a learner who passes
the wrong thing sees what was expected and what arrived, instead of a traceback
from deep inside numpy.  Validation happens once, at the public call: the formula
functions behind it (``attnlib.attention._attention`` and the like) trust their
arguments, and library code calls those, not the public functions.  One helper per
rule (:func:`positive_int`, :func:`positive_number`, :func:`check_rng`, ...), used by
every module.  One rule for the error type: the wrong *kind* of thing (a float where
an integer belongs, a string for a flag) is a ``TypeError``; the right kind with a
wrong value (0 heads, a negative scale) is a ``ValueError``.
"""

from __future__ import annotations

import math
import numbers
import os
from pathlib import Path

import numpy as np

# --------------------------------------------------------------------------- scalars


def positive_int(value, name: str, *, minimum: int | None = 1) -> int:
    """Return ``value`` as an ``int`` if it is an integer ``>= minimum``, or raise.

    ``minimum=0`` accepts zero too; ``minimum=None`` any integer.
    ``True``/``False`` and floats such as ``2.0`` are not integers here (TypeError).

    >>> positive_int(3, "n_heads")
    3
    >>> positive_int(0, "n_heads")
    Traceback (most recent call last):
    ...
    ValueError: n_heads must be an integer >= 1, got 0
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Integral, np.integer)):
        raise TypeError(f"{name} must be an integer, got {value!r} ({type(value).__name__})")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value}")
    return int(value)


def positive_number(value, name: str) -> float:
    """Return ``value`` as a ``float`` if it is a finite real number > 0, or raise.

    >>> positive_number(0.5, "bandwidth")
    0.5
    >>> positive_number("1", "bandwidth")
    Traceback (most recent call last):
    ...
    TypeError: bandwidth must be a real number, got '1' (str)
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Real, np.integer, np.floating)):
        raise TypeError(f"{name} must be a real number, got {value!r} ({type(value).__name__})")
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return float(value)


def check_rng(rng, name: str = "rng") -> np.random.Generator:
    """Return ``rng`` if it is a ``numpy.random.Generator``, else raise TypeError.

    >>> check_rng(0)
    Traceback (most recent call last):
    ...
    TypeError: rng must be a numpy.random.Generator (e.g. np.random.default_rng(0)), got int
    """
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"{name} must be a numpy.random.Generator (e.g. np.random.default_rng(0)), "
                        f"got {type(rng).__name__}")
    return rng


def as_bool(value, name: str) -> bool:
    """Return a flag as a ``bool``; only ``True`` and ``False`` (or numpy's) are flags.

    ``causal="no"`` would be truthy and switch the mask on, so strings, numbers and
    ``None`` are a TypeError.

    >>> as_bool("no", "causal")
    Traceback (most recent call last):
    ...
    TypeError: causal must be a bool (True or False), got 'no' (str)
    """
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool (True or False), got {value!r} ({type(value).__name__})")
    return bool(value)


def check_axis(axis, ndim: int, shape: tuple[int, ...]) -> int:
    """Return ``axis`` as a non-negative int for an array of ``ndim`` dimensions, or raise."""
    if axis is None:
        raise TypeError("axis must be an integer, got None; for one softmax over every entry, "
                        "flatten first: softmax(x.ravel())")
    if isinstance(axis, (bool, np.bool_)) or not isinstance(axis, (numbers.Integral, np.integer)):
        raise TypeError(f"axis must be an integer, got {axis!r} ({type(axis).__name__})")
    if not -ndim <= axis < ndim:
        raise ValueError(f"axis {axis} is out of range for an array of shape {shape}")
    return int(axis) % ndim


# --------------------------------------------------------------------------- arrays


def check_softmax_input(x: np.ndarray, axis: int) -> None:
    """Raise unless every slice along ``axis`` is non-empty and holds only finite numbers or -inf."""
    if x.shape[axis] == 0:
        raise ValueError(f"softmax needs at least one score along axis {axis}, got shape {x.shape}")
    top = np.max(x) if x.size else 0.0  # NaN if any entry is NaN
    if np.isnan(top) or top == np.inf:
        raise ValueError("softmax expects finite scores or -inf (masked), got NaN or +inf")


def as_float_array(x, name: str, *, min_ndim: int = 0) -> np.ndarray:
    """Return ``x`` as a floating-point array, or raise a clear error.

    Integers become float64; float16, float32 and float64 are kept.  numpy masked
    arrays are refused: numpy's functions would ignore their mask silently.
    """
    if type(x) is np.ndarray and x.dtype.kind == "f" and x.ndim >= min_ndim:  # the common case, at once
        return x
    if isinstance(x, np.ma.MaskedArray):
        raise TypeError(
            f"{name} is a numpy masked array, whose mask attnlib would ignore; pass a plain array: "
            "np.ma.filled(x, value) (for softmax scores, value=-np.inf gives the masked entries weight 0; "
            "attention functions take a boolean mask argument, True = may attend)"
        )
    if isinstance(x, np.ndarray) and x.dtype == object or isinstance(x, (str, bytes)):
        raise TypeError(f"{name} must be an array of numbers, got {type(x).__name__}")
    try:
        arr = np.asarray(x)
    except Exception as err:  # ragged lists and the like
        raise TypeError(f"{name} must be an array of numbers: {err}") from None
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.number):
        raise TypeError(f"{name} must be an array of numbers, got dtype {arr.dtype}")
    if np.iscomplexobj(arr):
        raise TypeError(f"{name} must be real, got complex dtype {arr.dtype}")
    if not np.issubdtype(arr.dtype, np.floating):
        arr = arr.astype(np.float64)
    if arr.ndim < min_ndim:
        raise ValueError(
            f"{name} must have at least {min_ndim} dimensions, got shape {arr.shape}"
        )
    return arr


def working_dtype(*arrays: np.ndarray) -> np.dtype:
    """The dtype to compute in: the inputs' common float type, but float32 for float16.

    float16 tops out at 65504: a sum of 70,000 weights of 1 overflows, and so do
    scores of about 200 x 200.  attnlib computes such inputs in float32 and returns
    float16 results.
    """
    dtype = np.result_type(*arrays)
    return np.dtype(np.float32) if dtype == np.float16 else dtype


def check_finite(arr: np.ndarray, name: str) -> None:
    """Raise if ``arr`` holds NaN or infinity."""
    if not np.isfinite(arr).all():
        bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
        raise ValueError(f"{name} must be finite, but {bad} entries are NaN or infinite")


def check_nonempty(arr: np.ndarray, name: str, axes_names: tuple[str, ...]) -> None:
    """Raise if one of the trailing axes of ``arr`` has length 0."""
    tail = arr.shape[-len(axes_names):]
    for axis_name, size in zip(axes_names, tail, strict=True):
        if size == 0:
            raise ValueError(
                f"{name} has {axis_name}=0 (shape {arr.shape}); "
                f"attention needs at least one {axis_name.split('_')[-1]}"
            )


def broadcast_batch(shapes: dict[str, tuple[int, ...]]) -> tuple[int, ...]:
    """Broadcast the leading (batch) shapes of several arrays, or raise."""
    first, *others = shapes.values()
    if all(shape == first for shape in others):  # nothing to broadcast
        return tuple(first)
    try:
        return np.broadcast_shapes(*shapes.values())
    except ValueError:
        listed = ", ".join(f"{k} {v}" for k, v in shapes.items())
        raise ValueError(f"leading (batch) dimensions do not broadcast: {listed}") from None


def check_qkv(Q, K, V, *, finite: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validate ``Q (..., n_q, d_k)``, ``K (..., n_k, d_k)``, ``V (..., n_k, d_v)``.

    Returns the three as float arrays; raises ``ValueError``/``TypeError`` that
    say what was expected and what arrived.  ``finite=False`` leaves out the test for
    NaN and infinity, for a caller that finds them in its results (:func:`check_scores`).
    """
    Q = as_float_array(Q, "Q", min_ndim=2)
    K = as_float_array(K, "K", min_ndim=2)
    V = as_float_array(V, "V", min_ndim=2)
    if 0 in Q.shape[-2:] or 0 in K.shape[-2:] or 0 in V.shape[-2:]:
        check_nonempty(Q, "Q", ("n_q", "d_k"))
        check_nonempty(K, "K", ("n_k", "d_k"))
        check_nonempty(V, "V", ("n_k", "d_v"))
    if Q.shape[-1] != K.shape[-1]:
        raise ValueError(
            f"Q has d_k={Q.shape[-1]} but K has d_k={K.shape[-1]}; "
            "queries and keys must have the same size"
        )
    if K.shape[-2] != V.shape[-2]:
        raise ValueError(
            f"K has n_k={K.shape[-2]} keys but V has {V.shape[-2]} values; "
            "every key needs exactly one value"
        )
    if finite:
        for name, arr in (("Q", Q), ("K", K), ("V", V)):
            check_finite(arr, name)
    return Q, K, V


def check_scores(S: np.ndarray, mask, Q, K) -> None:
    """Raise if a score is NaN or infinite: Q or K held NaN or infinity, or the score overflowed.

    Testing the scores stands for testing Q and K (a NaN or infinity in either makes a
    score non-finite): callers that pass ``finite=False`` to :func:`check_qkv` call this
    on their scores, and :func:`check_output` on their output for V.
    """
    if not np.isfinite(S).all():
        check_finite(Q, "Q")
        check_finite(K, "K")
        check_no_overflow(S, mask)  # an infinite score would pass for a masked key


def check_output(output: np.ndarray, V) -> None:
    """Raise if the output of attention is not finite: V held NaN or infinity (0 x inf is NaN)."""
    if not np.isfinite(output).all():
        check_finite(V, "V")


def resolve_scale(scale, d_k: int) -> float:
    """Return ``scale``, defaulting to ``1/sqrt(d_k)``; reject nonsense."""
    if scale is None:
        return 1.0 / math.sqrt(d_k)
    return positive_number(scale, "scale")


def check_attention(Q, K, V, mask, scale, *, copies: int = 0, what: str = "", finite: bool = True):
    """Everything scaled dot-product attention checks before it computes anything.

    Returns ``(Q, K, V, mask, scale, out_dtype)``: Q broadcast to the batch shape of all
    three inputs (a view) so that the scores and weights get every batch dimension; Q, K
    and V in the dtype to compute in (float32 for float16); the mask checked and broadcast
    to ``(*batch, n_q, n_k)`` (or None); the scale as a float; the dtype of the results.
    ``copies`` arrays of the weights' size must fit in memory (0: no check).  ``finite=False``:
    as in :func:`check_qkv`.
    """
    Q, K, V = check_qkv(Q, K, V, finite=finite)
    scale = resolve_scale(scale, Q.shape[-1])
    batch = broadcast_batch({"Q": Q.shape[:-2], "K": K.shape[:-2], "V": V.shape[:-2]})
    scores_shape = (*batch, Q.shape[-2], K.shape[-2])
    if mask is not None:
        mask = check_mask(mask, scores_shape)
    out_dtype = np.result_type(Q, K, V)
    dtype = np.dtype(np.float32) if out_dtype == np.float16 else out_dtype  # as working_dtype()
    if copies:
        check_fits_in_memory(scores_shape, dtype, copies, what)
    if Q.shape[:-2] != batch:
        Q = np.broadcast_to(Q, (*batch, *Q.shape[-2:]))
    return Q.astype(dtype, copy=False), K.astype(dtype, copy=False), V.astype(dtype, copy=False), mask, scale, out_dtype


def as_bool_mask(mask, name: str = "mask") -> np.ndarray:
    """Return ``mask`` as a boolean array, or raise a clear error."""
    if isinstance(mask, np.ma.MaskedArray):
        raise TypeError(f"{name} is a numpy masked array; pass a plain boolean array (True = may attend)")
    try:
        arr = np.asarray(mask)
    except ValueError as err:  # ragged nested lists
        raise TypeError(f"{name} must be a boolean array (True = may attend): {err}") from None
    if arr.dtype != bool:
        raise TypeError(
            f"{name} must be boolean (True = this query may attend to this key), "
            f"got dtype {arr.dtype}"
        )
    return arr


def check_mask(mask, scores_shape: tuple[int, ...], name: str = "mask") -> np.ndarray:
    """Check a boolean mask against scores of shape ``(*batch, n_q, n_k)``; return it broadcast.

    The mask may leave out dimensions (a ``(n_q, n_k)`` mask is shared by the whole
    batch) or have length 1 in them, but it must not change the scores' shape: a
    mask that adds batch dimensions would silently add them to the output.  A mask
    with batch dimensions must have one axis per batch dimension of the scores,
    since numpy lines axes up from the right: a ``(B, 1, n_k)`` padding mask against
    ``(B, H, n_q, n_k)`` scores would pair its B sequences with the H heads.
    """
    arr = as_bool_mask(mask, name)
    scores_shape = tuple(scores_shape)
    batch = scores_shape[:-2]
    try:
        joint = np.broadcast_shapes(scores_shape, arr.shape)
    except ValueError:
        joint = None
    if joint is None or joint[-2:] != scores_shape[-2:]:
        raise ValueError(
            f"{name} of shape {arr.shape} does not broadcast to the scores' shape {scores_shape} (..., n_q, n_k)"
        )
    if joint != scores_shape:
        raise ValueError(
            f"{name} of shape {arr.shape} would add batch dimensions that Q, K and V lack: the scores have "
            f"shape {scores_shape} (batch {batch}, then n_q, n_k), and the output would grow to the batch "
            f"{joint[:-2]}. Give Q, K and V those batch dimensions, or give the mask the scores' batch shape "
            f"(a mask of shape {scores_shape[-2:]} serves every batch entry)"
        )
    mask_batch = arr.shape[:-2]
    if 0 < len(mask_batch) < len(batch) and any(m != 1 for m in mask_batch):
        fix = (f"{name}[:, None] of shape {(arr.shape[0], 1, *arr.shape[1:])}" if len(batch) == len(mask_batch) + 1
               else f"{name}.reshape({(*mask_batch, *[1] * (len(batch) - len(mask_batch)), *arr.shape[-2:])})")
        raise ValueError(
            f"{name} of shape {arr.shape} has {len(mask_batch)} batch axis(es) but the scores {scores_shape} have "
            f"{len(batch)}: numpy would line the mask's batch axes up with the last ones of the scores (the heads "
            f"of (B, H, n_q, n_k)), not the first. Give the mask one axis per batch dimension, e.g. {fix} "
            "for one mask per sequence, shared by the heads"
        )
    return np.broadcast_to(arr, scores_shape)


# --------------------------------------------------------------------------- scores and memory


def check_no_overflow(scores: np.ndarray, mask=None) -> None:
    """Raise if a score that a query may attend to is not finite.

    Q and K are finite, so an infinite or NaN score is an overflow of the dtype.
    It must not pass for a masked key (-inf) or poison the softmax.
    """
    finite = np.isfinite(scores)
    if finite.all():
        return
    bad = ~finite if mask is None else ~finite & mask  # may broadcast: the mask can have more batch dimensions
    if bad.any():
        raise ValueError(overflow_message(int(np.count_nonzero(bad)), scores.dtype))


def overflow_message(count, dtype) -> str:
    dtype = np.dtype(dtype)
    wider = " or compute in float64 (Q.astype(np.float64))" if dtype.itemsize < 8 else ""
    return (f"{count} attention score(s) Q·K·scale overflow {dtype} (beyond ±{np.finfo(dtype).max:.3g}): "
            "an infinite score would be mistaken for a masked key or make the weights NaN. "
            f"Scale Q or K down{wider}")


def may_overflow(Q: np.ndarray, K: np.ndarray, scale: float, dtype) -> bool:
    """True unless a bound proves that no score ``Q·K·scale`` (nor a partial sum of one) can overflow.

    Each product and partial sum is at most ``d_k * max|Q| * max|K|`` in size.
    """
    if Q.size == 0 or K.size == 0:  # an empty batch: no scores at all
        return False
    bound = Q.shape[-1] * float(np.max(np.abs(Q))) * float(np.max(np.abs(K))) * max(scale, 1.0)
    return not bound < float(np.finfo(dtype).max) / 2


def available_memory() -> int | None:
    """Bytes of memory this process could still allocate (Linux: MemAvailable and the cgroup limit)."""
    limits = []
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                limits.append(int(line.split()[1]) * 1024)
    except (OSError, ValueError):
        pass
    try:
        cgroup = Path("/sys/fs/cgroup")
        limit = (cgroup / "memory.max").read_text().strip()
        if limit != "max":
            limits.append(int(limit) - int((cgroup / "memory.current").read_text()))
    except (OSError, ValueError):
        pass
    if not limits:
        try:
            limits.append(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
        except (ValueError, OSError, AttributeError):
            return None
    return max(0, min(limits))


class TooLargeError(MemoryError, ValueError):
    """An array that would not fit in the memory that is left (a ``MemoryError`` and a ``ValueError``)."""


BLOCKWISE_HINT = ("attnlib.blockwise_attention computes the same output tile by tile without ever "
                  "holding the weights: its memory grows with n, not n²")


def check_fits_in_memory(shape: tuple[int, ...], dtype, copies: int, what: str, *,
                         arrays: str = "the weights", hint: str = BLOCKWISE_HINT) -> None:
    """Raise before allocating when ``copies`` arrays of ``shape`` would not fit in memory.

    "Fit" keeps a fifth of the available memory free, for the temporaries beside the
    arrays counted and for whatever else runs.  The message says what would be needed,
    what is available, and (``hint``) what to do instead: by default, use
    :func:`attnlib.blockwise_attention`, which never forms the weights.
    """
    one = math.prod(shape) * np.dtype(dtype).itemsize
    need = copies * one
    if need < 2**28:  # 256 MiB: not worth reading the system's memory figures for
        return
    free = available_memory()
    if free is not None and need > 0.8 * free:
        raise TooLargeError(
            f"{what} would need about {_gib(need)} for {arrays} ({copies} x {_gib(one)}, "
            f"{' x '.join(map(str, shape))} {np.dtype(dtype)}), more than 80% of the {_gib(free)} of memory "
            f"available. {hint}"
        )


def _gib(n_bytes: float) -> str:
    return f"{n_bytes / 2**30:.3g} GiB"


# --------------------------------------------------------------------------- gradients


def gradient_like(d_output, expected_shape: tuple[int, ...], name: str, of_what: str) -> np.ndarray:
    """Return an incoming gradient as a finite float array of exactly ``expected_shape``, or raise."""
    d_output = as_float_array(d_output, name)
    if d_output.shape != tuple(expected_shape):
        raise ValueError(
            f"{name} must have the shape of {of_what}, {tuple(expected_shape)}, but has shape {d_output.shape}"
        )
    check_finite(d_output, name)
    return d_output


# --------------------------------------------------------------------------- multi-head attention

ATTENTION_WEIGHTS = ("W_q", "W_k", "W_v", "W_o")
ATTENTION_BIASES = ("b_q", "b_k", "b_v", "b_o")
_SPELLINGS = {name.replace("_", "").lower(): name for name in ATTENTION_WEIGHTS + ATTENTION_BIASES}


def check_heads(d_model: int, n_heads) -> int:
    """Return ``n_heads`` as an int if it is a positive integer that divides ``d_model``, or raise."""
    n_heads = positive_int(n_heads, "n_heads")
    if d_model % n_heads:
        raise ValueError(
            f"d_model={d_model} is not divisible by n_heads={n_heads}; "
            "each head needs d_model / n_heads columns"
        )
    return n_heads


def check_attention_params(params, d_model: int, dtype=None) -> dict:
    """The attention parameters of ``params``, checked: ``{name: array}`` for the weights and given biases.

    The rule, the same for the forward and the backward pass: ``params`` must hold
    ``W_q, W_k, W_v, W_o`` ``(d_model, d_model)`` and may hold biases ``b_q, b_k, b_v, b_o``
    ``(d_model,)`` (``None`` = no bias).  Other keys belong to the rest of a layer (a
    transformer layer's dict may be passed whole) and are not used, except a key that
    differs from an attention parameter's name only in case or underscores (``b_O``,
    ``Wq``): that is a misspelling, and an error.  ``dtype``: convert the arrays to it.
    """
    if not isinstance(params, dict):
        raise TypeError(f"params must be a dict with W_q, W_k, W_v, W_o, got {type(params).__name__}")
    misspelt = sorted((key for key in params if isinstance(key, str) and key not in _SPELLINGS.values()
                       and key.replace("_", "").lower() in _SPELLINGS), key=str)
    if misspelt:
        meant = [_SPELLINGS[key.replace("_", "").lower()] for key in misspelt]
        raise ValueError(f"params has unknown keys {misspelt}; did you mean {meant}? Multi-head attention uses "
                         "W_q, W_k, W_v, W_o and the optional biases b_q, b_k, b_v, b_o (names are case-sensitive)")
    missing = [name for name in ATTENTION_WEIGHTS if params.get(name) is None]
    if missing:
        raise ValueError(f"params is missing {missing}; expected W_q, W_k, W_v, W_o (and optional biases)")
    checked = {}
    for name in ATTENTION_WEIGHTS + ATTENTION_BIASES:
        if params.get(name) is None:
            continue
        arr = as_float_array(params[name], name)
        expected = (d_model, d_model) if name in ATTENTION_WEIGHTS else (d_model,)
        if arr.shape != expected:
            raise ValueError(f"{name} should have shape {expected} for d_model={d_model}, got {arr.shape}")
        check_finite(arr, name)
        checked[name] = arr if dtype is None else arr.astype(dtype, copy=False)
    return checked


def check_multi_head(X_q, X_kv, params, n_heads, mask):
    """Everything multi-head attention checks: returns ``(X_q, X_kv, p, n_heads, mask, out_dtype)``.

    ``X_q`` and ``X_kv`` and the parameters ``p`` come back in the dtype to compute in
    (float32 for float16); the mask broadcast to ``(*batch, 1, n_q, n_k)`` (the same for
    every head) or None.
    """
    X_q = as_float_array(X_q, "X_q", min_ndim=2)
    X_kv = as_float_array(X_kv, "X_kv", min_ndim=2)
    if X_q.shape[-1] != X_kv.shape[-1]:
        raise ValueError(
            f"X_q has d_model={X_q.shape[-1]} but X_kv has d_model={X_kv.shape[-1]}; they must match"
        )
    for name, X in (("X_q", X_q), ("X_kv", X_kv)):
        if 0 in X.shape[-2:]:
            raise ValueError(f"{name} has shape {X.shape}; multi-head attention needs at least one token "
                             "and d_model >= 1")
    check_finite(X_q, "X_q")
    check_finite(X_kv, "X_kv")
    d_model = X_q.shape[-1]
    n_heads = check_heads(d_model, n_heads)
    out_dtype = np.result_type(X_q, X_kv)
    dtype = np.dtype(np.float32) if out_dtype == np.float16 else out_dtype
    p = check_attention_params(params, d_model, dtype)
    batch = broadcast_batch({"X_q": X_q.shape[:-2], "X_kv": X_kv.shape[:-2]})
    if mask is not None:
        mask = check_mask(mask, (*batch, X_q.shape[-2], X_kv.shape[-2]))  # (..., n_q, n_k)
        mask = mask[..., None, :, :]  # (..., 1, n_q, n_k): the same mask for every head
    return X_q.astype(dtype, copy=False), X_kv.astype(dtype, copy=False), p, n_heads, mask, out_dtype
