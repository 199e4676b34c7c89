"""Benchmark attnlib.pretrained: load time, forward time of a 16-token sentence, peak memory.

Run:  .venv/bin/python benchmarks/minilm.py

Every measurement runs in a fresh Python subprocess, so earlier work in this script does not
count towards memory.  Peak memory is reported two ways:
- peak RSS: ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` of the subprocess after importing
  attnlib, loading the model and running one forward pass (the whole process: Python, numpy,
  tokenizers and the weights);
- tracemalloc peak: the most memory Python and numpy allocated at once during load + forward
  (numpy reports its array buffers to tracemalloc), i.e. the model's own share.

The forward time is the median of repeated calls on the same sentence, first with the default
BLAS threading and then with one BLAS thread (on a small 2-core machine shared with other work,
BLAS threads can wait on each other: compare the two).
Targets (issue 7): forward < 0.2 s, peak memory < 400 MB.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

SENTENCE = "Unbelievably, transformers tokenize rare words into pieces!"  # 16 tokens with [CLS], [SEP]
REPEATS = 20

CHILD = r"""
import json, resource, statistics, sys, time, tracemalloc
mode, sentence, repeats = sys.argv[1], sys.argv[2], int(sys.argv[3])
if mode == "memory":
    tracemalloc.start()
t0 = time.perf_counter()
from attnlib.pretrained import load_minilm
model = load_minilm()
load_s = time.perf_counter() - t0
out = model(sentence)
result = {"load_s": load_s, "n_tokens": len(out.tokens)}
if mode == "memory":
    result["tracemalloc_peak_mb"] = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
else:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        model(sentence)
        times.append(time.perf_counter() - t)
    result.update(forward_median_s=statistics.median(times), forward_min_s=min(times))
print(json.dumps(result))
"""


def run_child(mode: str, env_extra: dict | None = None) -> dict:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", **(env_extra or {})}
    proc = subprocess.run([sys.executable, "-c", CHILD, mode, SENTENCE, str(REPEATS)],
                          capture_output=True, text=True, env=env, check=True)
    return json.loads(proc.stdout)


def main() -> None:
    print(f"all-MiniLM-L6-v2 in numpy (attnlib.pretrained), sentence: {SENTENCE!r}")
    print(f"load averages now: {os.getloadavg()[0]:.2f} (1 min), cores: {os.cpu_count()}")
    mem = run_child("memory")
    assert mem["n_tokens"] == 16, f"expected a 16-token sentence, got {mem['n_tokens']}"
    loads = [run_child("time")["load_s"] for _ in range(3)] + [mem["load_s"]]
    fast = {label: run_child("time", env) for label, env in
            (("default BLAS threads", {}), ("1 BLAS thread", {"OPENBLAS_NUM_THREADS": "1",
                                                                "OMP_NUM_THREADS": "1"}))}
    print(f"load time (fresh process, import + read weights + tokenizer): median of {len(loads)} runs "
          f"{sorted(loads)[len(loads) // 2]:.3f} s (min {min(loads):.3f} s)")
    for label, r in fast.items():
        verdict = "meets" if r["forward_median_s"] < 0.2 else "MISSES"
        print(f"forward, 16 tokens, {label}: median {r['forward_median_s'] * 1000:.1f} ms, "
              f"min {r['forward_min_s'] * 1000:.1f} ms over {REPEATS} calls ({verdict} the 0.2 s target)")
    verdict = "meets" if mem["peak_rss_mb"] < 400 else "MISSES"
    print(f"peak memory (getrusage ru_maxrss, whole process after load + forward): "
          f"{mem['peak_rss_mb']:.0f} MB ({verdict} the 400 MB target)")
    print(f"peak memory (tracemalloc, allocations during load + forward): {mem['tracemalloc_peak_mb']:.0f} MB")


if __name__ == "__main__":
    main()
