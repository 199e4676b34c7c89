"""Train the translator for several seeds: held-out accuracy, alignment, seconds.

Usage:  .venv/bin/python benchmarks/translate.py [--seeds 0 1 2 3 4] [--steps 400] [--encoder-lr-scale 0.3]
                                                 [--no-zero-init]

For each seed (the settings of the page "Watch a translator learn to align": float32,
one BLAS thread, d = 64, one head, Adam lr 3e-3, betas (0.9, 0.98), batch 64, the
encoder's attention at lr x encoder-lr-scale) it prints
- the share of held-out sentences translated exactly by greedy decoding,
- alignment: the share of French words whose largest cross-attention weight (the
  query that predicts the word, correct prefix given) falls on the English word it
  translates, for content words (nouns, colours, verbs), for the words of the swapped
  adjective-noun pairs (crossing) and for function words,
- training seconds (wall time, checkpoints included) and CPU seconds of this process.
Targets (issue 24): accuracy >= 0.95, content and crossing alignment >= 0.9, for at least
4 of 5 seeds.  The machine's load is printed too: times are only comparable on an idle machine.

Recorded (2026-12-05; the numbers the page quotes are in benchmarks/translate-record.json,
which the page reads: a shared 2-core machine under load 10-15: wall seconds 57-130, CPU
seconds 6.6-7.4 per seed; accuracy / content / crossing / function / noun alignment):

  settings of the page (encoder lr scale 0.3, encoder W_o from zero): 5 of 5 seeds
    seeds 0-4: 0.998 / 1 / 1 / 1 / 1, then 1 / 1 / 1 / 1 / 1 for seeds 1-4
  --encoder-lr-scale 1: 4 of 5 (seed 1 fails); nouns' alignment 0.994, 0.618, 1.000, 1.000, 0.815
    seed 1: 1.000 / 0.796 / 0.832 / 1.000 / 0.618;  seed 4: 1.000 / 0.902 / 0.903 / 1.000 / 0.815
  --no-zero-init: 5 of 5; seed 0's function words 0.756, seed 4's nouns 0.881
  --encoder-lr-scale 0.1: 4 of 5 (seed 2: accuracy 0.818 after 400 steps)
  settings of the page, fresh seeds 5-9 (run once after the settings were chosen; 2026-12-05, load 3): 5 of 5
    seeds 5, 6, 9: all 1;  seed 7: function 0.973;  seed 8: 1.000 / 0.966 / 1.000 / 0.940 / 1.000, verbs 0.808
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
from threadpoolctl import threadpool_limits

from attnlib import translate as tr


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--steps", type=int, default=tr.N_STEPS)
    parser.add_argument("--encoder-lr-scale", type=float, default=tr.ENCODER_LR_SCALE)
    parser.add_argument("--held-out", type=int, default=tr.N_HELD_OUT)
    parser.add_argument("--no-zero-init", action="store_true", help="start the encoder's W_o at random, not at zero")
    args = parser.parse_args()

    held = tr.held_out_pairs(args.held_out)
    exclude = frozenset(p.source for p in held)
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} cores")
    print(f"{len(held)} held-out sentences; {args.steps} steps; encoder lr scale {args.encoder_lr_scale}; "
          f"encoder W_o starts {'random' if args.no_zero_init else 'at zero'}")
    print(f"{'seed':>4} {'accuracy':>9} {'content':>8} {'crossing':>9} {'function':>9} {'noun':>6} {'colour':>7} "
          f"{'verb':>6} {'seconds':>8} {'CPU s':>6} {'targets':>8}")
    met = 0
    for seed in args.seeds:
        cpu = time.process_time()
        with threadpool_limits(limits=1, user_api="blas"):
            run = tr.train(np.random.default_rng(seed), args.steps, exclude=exclude,
                           encoder_lr_scale=args.encoder_lr_scale, zero_encoder_output=not args.no_zero_init)
        cpu = time.process_time() - cpu
        acc = tr.sentence_accuracy(run.params, held)
        a = tr.alignment_scores(run.params, held)
        ok = acc >= 0.95 and a["content"] >= 0.9 and a["crossing"] >= 0.9
        met += ok
        print(f"{seed:>4} {acc:>9.3f} {a['content']:>8.3f} {a['crossing']:>9.3f} {a['function']:>9.3f} "
              f"{a['noun']:>6.3f} {a['colour']:>7.3f} {a['verb']:>6.3f} {run.seconds:>8.1f} {cpu:>6.1f} "
              f"{'yes' if ok else 'no':>8}", flush=True)
    print(f"both targets met by {met} of {len(args.seeds)} seeds")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
