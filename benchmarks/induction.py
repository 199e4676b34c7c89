"""Train the induction-heads model for several seeds: steps to threshold, final scores, ms per step.

Usage:  .venv/bin/python benchmarks/induction.py [--seeds 0 1 2 3 4] [--steps 1500]

For each seed (the settings of the page "Watch a GPT learn to copy": float32, one BLAS
thread, Adam lr 3e-3, betas (0.9, 0.98), batch 32, |r| from 8 to 16) it prints
- the step at which the loss on the repeated half (running mean of 25 steps) first
  falls below 1 nat and below 0.1,
- the final layer-1 prefix-matching score, the share of tokens layer 1's OV circuit copies,
  and layer-0 previous-token and duplicate-token
  scores on the probe sequence, and which layer-0 circuit appeared,
- milliseconds per training step: wall time over all steps, checkpoints included, and
  the CPU time this process used (less sensitive to other programs on a busy machine).
Target (issue 13): a prefix-matching score of at least 0.9 for at least 4 of 5 seeds.
The machine's load is printed too: the times are only comparable on an idle machine.
"""

from __future__ import annotations

import argparse
import os
import time

from threadpoolctl import threadpool_limits

from attnlib import induction as ind


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--threshold", type=float, default=0.9, help="the prefix-matching score that counts as formed")
    args = parser.parse_args()

    import numpy as np

    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} cores")
    print(f"{'seed':>4} {'loss<1 at':>10} {'loss<0.1 at':>12} {'prefix-match':>12} {'L1 copies':>9} {'prev-token':>11} "
          f"{'dup-token':>10} {'layer 0':>16} {'ms/step':>8} {'CPU ms/step':>12}")
    formed = 0
    for seed in args.seeds:
        cpu = time.process_time()
        with threadpool_limits(limits=1, user_api="blas"):
            run = ind.train(np.random.default_rng(seed), args.steps)
        cpu_ms = 1000 * (time.process_time() - cpu) / args.steps
        w = run.checkpoints[-1].weights
        induction = float(ind.prefix_matching_score(w[1]))
        copies = ind.copying_share(ind.ov_circuit(run.params, 2))  # share of tokens layer 1 copies
        prev, dup = float(ind.previous_token_score(w[0])), float(ind.duplicate_token_score(w[0]))
        formed += induction >= args.threshold
        circuit = "none yet" if max(prev, dup) < 0.3 else "previous-token" if prev > dup else "duplicate-token"
        drop, done = ind.steps_to(run.repeat_losses, 1.0), ind.steps_to(run.repeat_losses, 0.1)
        print(f"{seed:>4} {str(drop):>10} {str(done):>12} {induction:>12.3f} {copies:>9.2f} {prev:>11.3f} {dup:>10.3f} "
              f"{circuit:>16} {run.ms_per_step:>8.1f} {cpu_ms:>12.1f}", flush=True)
    print(f"prefix-matching score >= {args.threshold} for {formed} of {len(args.seeds)} seeds "
          f"({args.steps} steps each)")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
