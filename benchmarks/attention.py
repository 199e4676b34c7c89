"""Attention four ways, measured in one run: Python loops, plain numpy, the fast path, blockwise.

Prints a Markdown table: for n queries = n keys from 256 to 16384, d_k = d_v = 64,
float32, the median wall time and the peak extra memory of

- naive Python loops (the formula written out; run only at the sizes where it
  finishes in reasonable time, and the table says where it was not run),
- ``attnlib.scaled_dot_product_attention``, the plain numpy version the chapters read
  (returns the n x n weights),
- ``attnlib.fast.scaled_dot_product_attention``, the same contract in cache-sized blocks
  on every core (returns the n x n weights),
- ``attnlib.blockwise_attention`` (tiles with an online softmax; never forms them),
  without a mask and with ``causal=True`` (tiles above the diagonal are skipped),

plus the FLOP rate of the plain and the fast version (4 n^2 d flops) as a fraction of
this machine's own float32 matrix-multiply rate measured in the same run (what the
engineering of the fast path buys, side by side), and, when PyTorch is importable, the
ratio of attnlib's time to ``torch.nn.functional.scaled_dot_product_attention`` on the CPU.

Usage::

    python benchmarks/attention.py                 # the full table (a few minutes)
    python benchmarks/attention.py --sizes 256 1024 --repeats 3
    python benchmarks/attention.py --record benchmarks/results.md   # also save it, dated

Peak memory is measured with ``tracemalloc`` (numpy reports its array buffers to
it) in a separate, untimed call: the largest amount of memory allocated on top of
the inputs while the function ran, its result included.
"""

from __future__ import annotations

import argparse
import ctypes
import datetime
import gc
import glob
import importlib.util
import math
import os
import platform
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

if "--blas-threads" in sys.argv:  # must be set before numpy (and its OpenBLAS) is loaded
    os.environ["OPENBLAS_NUM_THREADS"] = sys.argv[sys.argv.index("--blas-threads") + 1]

import numpy as np  # noqa: E402

import attnlib  # noqa: E402
import attnlib.fast  # noqa: E402
from attnlib._parallel import cpu_count, thread_budget  # noqa: E402

D = 64  # d_k = d_v
DTYPE = np.float32
SIZES = (256, 512, 1024, 2048, 4096, 8192, 16384)
TARGET_N = 4096  # where the fast path's FLOP-rate target (>= 0.5 of matmul) is checked
NAIVE_BUDGET_S = 20.0  # run the loops at a size only if the estimate from the last size fits this
BLAS_SPIN_PAUSE_S = 0.3  # after a reference product: longer than OpenBLAS's threads spin
MIB = 2**20


# --------------------------------------------------------------------------- the contenders


def naive_attention(Q, K, V):
    """Attention with Python loops over lists of floats: the formula, one number at a time."""
    d_k = len(Q[0])
    scale = 1.0 / math.sqrt(d_k)
    out = []
    for q in Q:
        scores = [scale * sum(a * b for a, b in zip(q, k, strict=True)) for k in K]
        m = max(scores)
        e = [math.exp(s - m) for s in scores]
        total = sum(e)
        row = [0.0] * len(V[0])
        for w, v in zip(e, V, strict=True):
            w /= total
            for t, v_t in enumerate(v):
                row[t] += w * v_t
        out.append(row)
    return out


def plain(Q, K, V):
    return attnlib.scaled_dot_product_attention(Q, K, V)[0]


def fast_path(Q, K, V):
    """attnlib.fast (the "vectorized" column of tables recorded before the plain path was split off)."""
    return attnlib.fast.scaled_dot_product_attention(Q, K, V)[0]


def blockwise(Q, K, V):
    return attnlib.blockwise_attention(Q, K, V)


def blockwise_causal(Q, K, V):
    return attnlib.blockwise_attention(Q, K, V, causal=True)


# --------------------------------------------------------------------------- measuring


def median_time(f, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        gc.collect()
        t0 = time.perf_counter()
        f()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def peak_memory(f) -> int:
    """Peak bytes allocated by ``f()`` on top of what existed before (tracemalloc)."""
    gc.collect()
    tracemalloc.start()
    try:
        f()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak


REFERENCE_M = 2048  # the reference product: (2048, 2048) @ (2048, 2048) in float32
REFERENCE_FLOPS = 2 * REFERENCE_M**3
_A, _B = (np.random.default_rng(1).standard_normal((REFERENCE_M, REFERENCE_M), dtype=DTYPE) for _ in range(2))


def REFERENCE_PRODUCT():  # noqa: N802 (a constant-like callable)
    return _A @ _B


def matmul_rate(repeats: int = 5) -> float:
    """This machine's float32 matrix-multiply rate in FLOP/s (median of a few products)."""
    REFERENCE_PRODUCT()  # warm up the BLAS threads
    return REFERENCE_FLOPS / median_time(REFERENCE_PRODUCT, repeats)


def repeats_for(n: int) -> int:
    return 9 if n <= 1024 else 7 if n <= 4096 else 5 if n <= 8192 else 3


def repeats_text(sizes, repeats: int | None) -> str:
    """How many timed runs each size had, for the sizes this run measured: "9 at 256, 7 at 4096"."""
    if repeats is not None:
        return f"{repeats} at every size"
    return ", ".join(f"{repeats_for(n)} at {n}" for n in sizes)


# --------------------------------------------------------------------------- the machine


def _openblas():
    """numpy's bundled OpenBLAS, to read (never set) its thread count and kernel."""
    folder = Path(np.__file__).resolve().parent.parent / "numpy.libs"
    for path in sorted(glob.glob(str(folder / "libscipy_openblas*.so*"))):
        try:
            return ctypes.CDLL(path)
        except OSError:
            pass
    return None


def machine_description() -> dict[str, str]:
    info = {}
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info["CPU"] = f"{model}, {os.cpu_count()} logical CPUs ({cpu_count()} usable by this process)"
    try:
        meminfo = Path("/proc/meminfo").read_text().splitlines()
        kb = int(next(ln for ln in meminfo if ln.startswith("MemTotal")).split()[1])
        info["memory"] = f"{kb / 2**20:.1f} GiB"
    except (OSError, StopIteration):
        pass
    info["system"] = (
        f"{platform.system()} {platform.release()}, Python {platform.python_version()}, numpy {np.__version__}"
    )
    lib = _openblas()
    blas = "unknown"
    if lib is not None:
        try:
            lib.scipy_openblas_get_config64_.restype = ctypes.c_char_p
            lib.scipy_openblas_get_corename64_.restype = ctypes.c_char_p
            blas = (
                f"{lib.scipy_openblas_get_config64_().decode()}; kernel "
                f"{lib.scipy_openblas_get_corename64_().decode()}; "
                f"{lib.scipy_openblas_get_num_threads64_()} threads"
            )
        except AttributeError:
            pass
    info["BLAS"] = blas
    info["code"] = _git_revision()
    env = {k: os.environ[k] for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS",
                                      "OMP_NUM_THREADS") if k in os.environ}
    info["environment"] = ", ".join(f"`{k}={v}`" for k, v in env.items()) or "no `OPENBLAS_*`/`OMP_*` variables set"
    info["threads"] = (
        f"matrix products and attnlib's plain attention: the BLAS threads above; attnlib.fast: blocks of query rows "
        f"on {thread_budget()} threads (BLAS held to one thread each) for 1M scores or more; "
        "blockwise: one Python thread calling the BLAS (tiles of 512 × 512)"
    )
    info["load average before"] = " ".join(f"{x:.2f}" for x in os.getloadavg()) + " (1, 5, 15 minutes)"
    return info


def cpu_seconds() -> tuple[float, float]:
    """(CPU seconds the whole machine spent busy or stolen, CPU seconds of this process) so far."""
    import resource

    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    machine = (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")
    own = resource.getrusage(resource.RUSAGE_SELF)
    return machine, own.ru_utime + own.ru_stime


def _git_revision() -> str:
    """The commit of attnlib that was measured (and whether the checkout had local changes)."""
    import subprocess

    root = Path(__file__).resolve().parent.parent
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True,
                             text=True, check=True).stdout.strip()
        measured = ["attnlib/attention.py", "attnlib/softmax.py", "attnlib/fast.py", "attnlib/blockwise.py",
                    "attnlib/_validate.py", "attnlib/scores.py", "attnlib/_parallel.py", "benchmarks/attention.py"]
        dirty = subprocess.run(["git", "status", "--porcelain", "--", *measured],
                               cwd=root, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "not a git checkout"
    return f"git commit {rev}" + (" with local changes to the measured code" if dirty else "")


# --------------------------------------------------------------------------- the run


def fmt_time(t: float | None) -> str:
    if t is None:
        return "not run"
    return f"{t * 1e3:.3g} ms" if t < 1 else f"{t:.3g} s"


def fmt_mem(b: int | None) -> str:
    if b is None:
        return "not run"
    return f"{b / MIB:.3g} MiB" if b < 2**30 else f"{b / 2**30:.3g} GiB"


def measure_size(n: int, r: int, run_naive: bool) -> dict:
    """Every cell of the table's row for n."""
    rng = np.random.default_rng(n)
    Q, K, V = (rng.standard_normal((n, D), dtype=DTYPE) for _ in range(3))
    row = {"n": n, "repeats": r, "naive_time": None, "naive_mem": None}

    if run_naive:
        Ql, Kl, Vl = Q.tolist(), K.tolist(), V.tolist()
        row["naive_mem"] = peak_memory(lambda: naive_attention(Ql, Kl, Vl))
        row["naive_repeats"] = naive_repeats(r)
        row["naive_time"] = median_time(lambda: naive_attention(Ql, Kl, Vl), row["naive_repeats"])
        check = np.asarray(naive_attention(Ql[:4], Kl, Vl), dtype=np.float64)
        row["naive_error"] = float(np.abs(check - fast_path(Q[:4], K, V)).max())

    for name, f in (("plain", plain), ("vec", fast_path), ("block", blockwise), ("causal", blockwise_causal)):
        row[f"{name}_mem"] = peak_memory(lambda f=f: f(Q, K, V))  # also the warm-up
        if name not in ("vec", "plain"):  # timed below, in alternation with the reference product
            row[f"{name}_time"] = median_time(lambda f=f: f(Q, K, V), r)
    # The plain and fast runs alternate with runs of the reference matrix product, so that both
    # see the same conditions (other programs on the machine come and go).  After a product,
    # OpenBLAS's helper threads keep spinning for a while, waiting for more work (about 2**28
    # cycles, 0.1 s here): the pause lets them sleep, so that they don't take a core from the
    # attention run that follows (which holds the BLAS to one thread and uses every core itself).
    t_vec, t_plain, t_mm = [], [], []
    for _ in range(r):
        t_mm.append(median_time(REFERENCE_PRODUCT, 1))
        time.sleep(BLAS_SPIN_PAUSE_S)
        t_vec.append(median_time(lambda: fast_path(Q, K, V), 1))
        t_plain.append(median_time(lambda: plain(Q, K, V), 1))  # its BLAS threads spin: the product is next
    row["vec_time"] = statistics.median(t_vec)
    row["plain_time"] = statistics.median(t_plain)
    row["mm_rate"] = REFERENCE_FLOPS / statistics.median(t_mm)
    row["block_error"] = float(np.abs(blockwise(Q, K, V) - fast_path(Q, K, V)).max())
    row["plain_error"] = float(np.abs(plain(Q, K, V) - fast_path(Q, K, V)).max())

    return row


def measure_torch(row: dict, torch_sdpa) -> None:
    """PyTorch's time on the same inputs as the row (its own random numbers, same seed)."""
    import torch

    n, r = row["n"], row["repeats"]
    rng = np.random.default_rng(n)
    # (batch 1, 1 head, n, d): PyTorch's fused CPU kernel (flash attention) takes only 4-d inputs;
    # given (n, d) it falls back to its unfused "math" version, about 4 times slower here.
    Qt, Kt, Vt = (torch.from_numpy(rng.standard_normal((n, D), dtype=DTYPE))[None, None] for _ in range(3))
    with torch.inference_mode():
        torch_sdpa(Qt, Kt, Vt)  # warm up
        row["torch_time"] = median_time(lambda: torch_sdpa(Qt, Kt, Vt), r)


def naive_estimate(rows: list[dict], n: int, repeats: int) -> float:
    """Seconds the naive loops would take at n, from the last size (n² d steps); 0 for the first."""
    if not rows:
        return 0.0
    last = rows[-1]
    if last["naive_time"] is None:
        return math.inf
    return last["naive_time"] * (n / last["n"]) ** 2 * naive_repeats(repeats)


def naive_repeats(repeats: int) -> int:
    """The naive loops are timed at most 3 times."""
    return max(1, min(repeats, 3))


def run(sizes, repeats: int | None, with_torch: bool) -> tuple[list[dict], dict]:
    rate_before = matmul_rate()
    # First, in a fresh process: after the gigabyte arrays of n = 16384 (or PyTorch's first
    # call), the same steps ran up to 1.6x slower in the same process on the recorded machine.
    steps = breakdown() if TARGET_N in sizes else None
    rows = []
    for n in sizes:
        r = repeats or repeats_for(n)
        row = measure_size(n, r, naive_estimate(rows, n, r) <= NAIVE_BUDGET_S)
        rows.append(row)
        print(f"  n = {n:>5}: done", file=sys.stderr, flush=True)
    rate_after = matmul_rate()
    for row in rows:
        n = row["n"]
        for name in ("vec", "plain"):
            row[f"{name}_flops"] = 4 * n * n * D / row[f"{name}_time"]
            row[f"{name}_ratio"] = row[f"{name}_flops"] / row["mm_rate"]
    # PyTorch last: after its first call, numpy's own steps ran up to 1.6x slower in the same
    # process on the machine of the recorded run, so nothing of attnlib is timed after it.
    torch_version = None
    if with_torch:
        import torch
        import torch.nn.functional as F

        torch_version = torch.__version__
        for row in rows:
            measure_torch(row, F.scaled_dot_product_attention)
            print(f"  n = {row['n']:>5}: torch done", file=sys.stderr, flush=True)
    one_core = one_core_versus_torch() if with_torch and TARGET_N in sizes else None
    return rows, {"rate_before": rate_before, "rate_after": rate_after, "breakdown": steps,
                  "torch_version": torch_version, "one_core": one_core}


def one_core_versus_torch(n: int = TARGET_N, repeats: int = 7) -> str:
    """plain, fast, blockwise, PyTorch's SDPA, the reference product and ``exp`` on one core, in alternation.

    Each arm is timed in this process's CPU time (one thread everywhere: threadpoolctl for the
    BLAS and attnlib.fast, ``torch.set_num_threads(1)``), the arms taking turns, so that a
    shared machine's load falls on all of them alike and hardly on the ratios.  ``exp`` is
    numpy's float32 exp over the n x n scores, in place, in blocks of 256 rows: with the two
    products at the matmul rate it bounds what numpy can do.
    """
    import torch
    import torch.nn.functional as F
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(n)
    Q, K, V = (rng.standard_normal((n, D), dtype=DTYPE) for _ in range(3))
    Qt, Kt, Vt = (torch.from_numpy(x)[None, None] for x in (Q, K, V))  # 4-d: its fused kernel (see measure_torch)
    block = rng.standard_normal((256, n), dtype=DTYPE)

    def exp_of_all_scores():
        for _ in range(n // 256):
            np.exp(block, out=block)
            block.fill(0.5)  # keep the inputs in range for the next pass (a cheap write)

    arms = {"plain": lambda: plain(Q, K, V), "fast": lambda: fast_path(Q, K, V),
            "blockwise": lambda: blockwise(Q, K, V), "torch": lambda: F.scaled_dot_product_attention(Qt, Kt, Vt),
            "matmul": REFERENCE_PRODUCT, "exp": exp_of_all_scores}
    times = {name: [] for name in arms}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(1), torch.inference_mode():
            for f in arms.values():
                f()  # warm up
            for _ in range(repeats):
                for name, f in arms.items():
                    gc.collect()
                    t0 = time.process_time()
                    f()
                    times[name].append(time.process_time() - t0)
    finally:
        torch.set_num_threads(threads)
    t = {name: statistics.median(v) for name, v in times.items()}
    rate = REFERENCE_FLOPS / t["matmul"]
    flops = 4 * n * n * D
    body = [[name, fmt_time(t[name]), f"{flops / t[name] / rate:.2f}", f"{t[name] / t['torch']:.2f}"]
            for name in ("plain", "fast", "blockwise", "torch")]
    table = _markdown(["arm", "CPU time", "FLOP rate / matmul rate", "time / torch"], body)
    products = flops / rate  # the two products, at the matmul rate
    exp_ns = t["exp"] / (n * n) * 1e9
    return (f"All on one core, in alternation, n = {n}, median CPU time of {repeats} calls each "
            f"(matmul rate on one core: {rate / 1e9:.1f} GFLOP/s; float32 `exp`: {exp_ns:.2f} ns per score):\n\n"
            f"{table}\n\n"
            f"- A bound for any numpy version that forms the weights: the two products at the matmul rate, "
            f"{fmt_time(products)}, plus one `exp` per score, {fmt_time(t['exp'])}: {fmt_time(products + t['exp'])} "
            f"= {(products + t['exp']) / t['torch']:.2f}× torch's time. The fast path takes "
            f"{t['fast'] / (products + t['exp']):.2f}× that bound; the rest is the softmax's other passes over the "
            "scores (max, subtract, sum, divide) and writing the n × n weights out to memory, which torch, "
            "returning only the output, fuses or skips.")


def _markdown(head: list[str], body: list[list[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(cells) + " |" for cells in body]
    return "\n".join(lines)


def tables(rows: list[dict], torch_version: str | None) -> str:
    """Markdown tables: median times (with the FLOP-rate ratio), peak memory, and PyTorch if present."""
    head = ["n", "naive loops", "plain", "plain FLOP rate / matmul rate", "fast",
            "fast FLOP rate / matmul rate", "blockwise", "blockwise, causal"]
    body = [[str(r["n"]), fmt_time(r["naive_time"]), fmt_time(r["plain_time"]), f"{r['plain_ratio']:.2f}",
             fmt_time(r["vec_time"]), f"{r['vec_ratio']:.2f}", fmt_time(r["block_time"]), fmt_time(r["causal_time"])]
            for r in rows]
    parts = [f"Median time of one call:\n\n{_markdown(head, body)}"]
    head = ["n", "naive loops", "plain", "fast", "blockwise", "blockwise, causal", "blockwise / n² float32 scores"]
    body = [[str(r["n"]), fmt_mem(r["naive_mem"]), fmt_mem(r["plain_mem"]), fmt_mem(r["vec_mem"]),
             fmt_mem(r["block_mem"]), fmt_mem(r["causal_mem"]), f"{r['block_mem'] / (r['n'] ** 2 * 4):.4f}"]
            for r in rows]
    parts.append(f"Peak memory of one call:\n\n{_markdown(head, body)}")
    if torch_version:
        head = ["n", "torch (median time)", "torch FLOP rate / matmul rate", "attnlib plain / torch",
                "attnlib fast / torch", "attnlib blockwise / torch"]
        body = [[str(r["n"]), fmt_time(r["torch_time"]), f"{4 * r['n'] ** 2 * D / r['torch_time'] / r['mm_rate']:.2f}",
                 f"{r['plain_time'] / r['torch_time']:.2f}", f"{r['vec_time'] / r['torch_time']:.2f}",
                 f"{r['block_time'] / r['torch_time']:.2f}"] for r in rows]
        parts.append("attnlib against `torch.nn.functional.scaled_dot_product_attention` on the CPU "
                     f"(time ratios: below 1 means attnlib is faster):\n\n{_markdown(head, body)}")
    return "\n\n".join(parts)


def summary(rows: list[dict], rates: dict, torch_version: str | None, machine: dict) -> list[str]:
    out = [
        "- Matrix-multiply rate of this machine (float32, 2048 x 2048 @ 2048 x 2048, median of 5): "
        f"{rates['rate_before'] / 1e9:.1f} GFLOP/s before the table, {rates['rate_after'] / 1e9:.1f} after. "
        "Each row's FLOP-rate ratio divides by the median rate of the same product timed in "
        "alternation with that row's plain and fast runs: "
        + ", ".join(f"n={x['n']}: {x['mm_rate'] / 1e9:.1f}" for x in rows)
        + " GFLOP/s."
    ]
    by_n = {r["n"]: r for r in rows}
    if TARGET_N in by_n:
        r = by_n[TARGET_N]
        verdict = "meets" if r["vec_ratio"] >= 0.5 else "misses"
        out.append(
            f"- Fast attention (attnlib.fast) at n = {TARGET_N}: {r['vec_flops'] / 1e9:.1f} GFLOP/s "
            f"(4·n²·d flops in {fmt_time(r['vec_time'])}) = **{r['vec_ratio']:.2f}** of the matmul rate "
            f"({r['mm_rate'] / 1e9:.1f} GFLOP/s) "
            f"({verdict} the target of 0.5); the plain version the chapters read: {fmt_time(r['plain_time'])} "
            f"= **{r['plain_ratio']:.2f}** of the matmul rate, {r['plain_time'] / r['vec_time']:.1f} times "
            "the fast path's time."
        )
    big = max(by_n)
    r = by_n[big]
    share = r["block_mem"] / (big * big * 4)
    verdict = "meets" if share < 0.1 else "misses"
    out.append(
        f"- Blockwise peak extra memory at n = {big}: {fmt_mem(r['block_mem'])} = **{share:.4f}** of the "
        f"{big * big * 4 / MIB:.0f} MiB float32 score matrix ({verdict} the target of < 0.1); "
        f"plain: {fmt_mem(r['plain_mem'])}; fast: {fmt_mem(r['vec_mem'])}."
    )
    out.append(
        "- Largest difference of the outputs, float32: plain vs fast: "
        + ", ".join(f"n={x['n']}: {x['plain_error']:.1e}" for x in rows)
        + "; blockwise vs fast: "
        + ", ".join(f"n={x['n']}: {x['block_error']:.1e}" for x in rows)
        + "; naive loops vs fast (first 4 queries): "
        + ", ".join(f"n={x['n']}: {x['naive_error']:.1e}" for x in rows if "naive_error" in x)
        + "."
    )
    skipped = [str(x["n"]) for x in rows if x["naive_time"] is None]
    if skipped:
        last = max(x["n"] for x in rows if x["naive_time"] is not None)
        out.append(
            f"- Naive loops were not run at n = {', '.join(skipped)}: their n²·d Python steps would take "
            f"more than {NAIVE_BUDGET_S:.0f} s per size (n = {last} took {fmt_time(by_n[last]['naive_time'])}, "
            "and each doubling of n multiplies the work by 4). No number is extrapolated into the table."
        )
    others = machine.get("_others_share")
    if others is not None and others > 0.1:
        out.append(
            f"- Other programs (and the hypervisor) took {100 * others:.0f}% of this machine's CPU time during "
            "the run: the times are inflated and noisy, multi-threaded matrix products most of all (a thread "
            "waits for its partner to be scheduled)."
        )
    if torch_version:
        out.append(f"- PyTorch {torch_version} on the CPU with {_torch_threads()} threads, timed after all of "
                   "attnlib's measurements (its FLOP-rate ratio divides by the row's matmul rate). It returns "
                   "the output only; attnlib's plain and fast paths also return the n × n weights, which "
                   "blockwise, like torch, never forms.")
        if TARGET_N in by_n:
            r = by_n[TARGET_N]
            out.append(f"- At n = {TARGET_N}: attnlib fast takes **{r['vec_time'] / r['torch_time']:.2f}×** "
                       f"torch's time, plain {r['plain_time'] / r['torch_time']:.2f}×, blockwise "
                       f"{r['block_time'] / r['torch_time']:.2f}×.")
    else:
        out.append("- PyTorch was not installed for this run: no torch column.")
    return out


def _torch_threads() -> int:
    import torch

    return torch.get_num_threads()


def breakdown(n: int = TARGET_N, rows: int = 256, repeats: int = 9) -> str:
    """Where one call of the fast path spends its time: each step timed on its own, on one core.

    The steps of attnlib.fast's attention, run over blocks of ``rows`` query rows
    with the BLAS held to one thread: the sum is the time of a call on one core, and the
    sum divided by attnlib's threads the time if they shared the work perfectly.
    """
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(0)
    Q, K, V = (rng.standard_normal((n, D), dtype=DTYPE) for _ in range(3))
    Q *= DTYPE(1 / math.sqrt(D))
    S = np.empty((rows, n), DTYPE)
    blocks = n // rows
    m, total = S.max(-1, keepdims=True), S.sum(-1, keepdims=True)

    def per_call(step):  # milliseconds for all n query rows
        return 1e3 * blocks * median_time(step, repeats)

    def fresh_pages():  # first writes to fresh memory vs writes to memory already in use
        W = np.empty((n, n), DTYPE)
        t0 = time.perf_counter()
        W.fill(1.0)
        t1 = time.perf_counter()
        W.fill(2.0)
        return (t1 - t0) - (time.perf_counter() - t1)

    with threadpool_limits(1, user_api="blas"):
        scores = Q[:rows] @ K.T  # kept unchanged: every step reads it or a fresh copy of it
        steps = {
            "scores: `Q_block @ K.T`": per_call(lambda: np.matmul(Q[:rows], K.T, out=S)),
            "`exp`": per_call(lambda: np.exp(scores, out=S)),
            "max, subtract, sum, divide by the sum": per_call(lambda: (
                np.max(scores, axis=-1, keepdims=True, out=m), np.subtract(scores, m, out=S),
                np.sum(S, axis=-1, keepdims=True, out=total), np.divide(S, total, out=S))),
            "`weights_block @ V`": per_call(lambda: scores @ V),
            "first writes to fresh memory for the weights": 1e3 * statistics.median(
                fresh_pages() for _ in range(repeats)),
        }
    one_core = sum(steps.values())
    lines = [f"One call at n = {n} (float32, d = {D}), each step timed alone on one core "
             f"over blocks of {rows} query rows:", "", "| step | one core | per score |", "|---|---|---|"]
    lines += [f"| {k} | {v:.1f} ms | {v * 1e6 / (n * n):.2f} ns |" for k, v in steps.items()]
    time.sleep(BLAS_SPIN_PAUSE_S)
    rate = matmul_rate()
    budget = 1e3 * 4 * n * n * D / (0.5 * rate)
    threads = thread_budget()
    cores = f"{threads} core" + ("s" if threads > 1 else "")
    lines += ["", f"Sum: {one_core:.1f} ms on one core; {one_core / threads:.1f} ms if {cores} shared it "
              f"perfectly. The target, half of this machine's matrix-product rate ({rate / 1e9:.0f} GFLOP/s "
              f"with {cores}), allows {budget:.1f} ms."]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES), help="values of n")
    parser.add_argument("--repeats", type=int, default=None, help="timed runs per cell (default: 9 down to 3)")
    parser.add_argument("--record", type=Path, default=None, help="also write the dated table to this file")
    parser.add_argument("--no-torch", action="store_true", help="leave PyTorch out even if installed")
    parser.add_argument("--versus-torch", action="store_true",
                        help=f"only the one-core comparison with PyTorch at n = {TARGET_N}, in alternation")
    parser.add_argument("--breakdown", action="store_true",
                        help=f"only time the steps of one fast-path call at n = {TARGET_N}, one by one")
    parser.add_argument("--blas-threads", type=int, default=None,
                        help="set OPENBLAS_NUM_THREADS for this run (default: OpenBLAS's own choice)")
    args = parser.parse_args(argv)
    if args.breakdown:
        print(breakdown())
        return 0
    if args.versus_torch:
        if importlib.util.find_spec("torch") is None:
            print("PyTorch is not installed: pip install torch==2.13.0 (it is not in the book's locks)")
            return 1
        print(one_core_versus_torch())
        return 0

    # PyTorch is imported only after attnlib has been measured: importing it made numpy's own
    # work about 5% slower in the same process on the machine of the recorded run.
    with_torch = not args.no_torch and importlib.util.find_spec("torch") is not None

    machine = machine_description()
    started = datetime.datetime.now(datetime.UTC)
    t0 = time.perf_counter()
    busy0, own0 = cpu_seconds()
    rows, rates = run(sorted(args.sizes), args.repeats, with_torch)
    torch_version = rates["torch_version"]
    busy1, own1 = cpu_seconds()
    machine["load average after"] = " ".join(f"{x:.2f}" for x in os.getloadavg()) + " (1, 5, 15 minutes)"
    elapsed = time.perf_counter() - t0
    others = max(0.0, (busy1 - busy0) - (own1 - own0)) / (elapsed * (os.cpu_count() or 1))
    machine["CPU time of other programs"] = (
        f"{100 * others:.0f}% of the machine's CPU time during the run (from /proc/stat, "
        "this process's own time taken out; the hypervisor's steal time counts as other)"
    )
    summary_machine = dict(machine, _others_share=others)

    text = [
        f"Attention benchmark, run on {started:%Y-%m-%d %H:%M} UTC ({elapsed:.0f} s in all); "
        f"n = {', '.join(str(n) for n in sorted(args.sizes))}; d_k = d_v = {D}, float32, median of the timed "
        f"runs ({repeats_text(sorted(args.sizes), args.repeats)}; naive loops at most 3). Peak memory: "
        "tracemalloc, on top of the inputs, result included.",
        "",
        *[f"- {k}: {v}" for k, v in machine.items()],
        "",
        tables(rows, torch_version),
        "",
        *summary(rows, rates, torch_version, summary_machine),
    ]
    if rates["one_core"]:
        text += ["", "attnlib beside PyTorch with the load taken out. " + rates["one_core"]]
    if rates["breakdown"]:
        text += ["", "Where the time of the fast path goes. " + rates["breakdown"]]
    text = "\n".join(text)
    print(text)
    if args.record:
        args.record.write_text(
            "<!-- Written by benchmarks/attention.py --record: a recorded run, not recomputed at build time. -->\n"
            + text
            + "\n"
        )
        print(f"\n(recorded in {args.record})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
