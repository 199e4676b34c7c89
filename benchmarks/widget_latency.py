"""How fast does the QueryKeyExplorer redraw when the reader moves the query?

Prints, for 8, 64 and 512 keys, the median time from an ``input`` event on the query's
slider to the redrawn weights (``data-weights``, the table and the bars updated, with the
browser's style and layout work forced), measured inside headless Chromium on a static
page built exactly like the book's (state embedded, the same widget host, no kernel).
The target is under 16 ms, one frame at 60 Hz, at 64 keys.

Run it with ``make bench-widgets`` (or ``.venv/bin/python benchmarks/widget_latency.py``).
It needs ``node_modules`` (``npm ci``) and Debian's ``chromium``.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import statistics
import sys
import tempfile
import threading
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent

from book_site.widget_page import write_widget_page  # noqa: E402

from attnlib.widgets import QueryKeyExplorer  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]

# Runs in the page: move the query's x slider `reps` times and time each redraw.
MEASURE = """
async ([reps, warmup]) => {
  const root = document.querySelector('[data-attnlib-widget="QueryKeyExplorer"]');
  const slider = root.querySelector('input[type="range"]');  // the query's x
  const weights = root.querySelector('[data-weights]');
  const min = Number(slider.min), step = Number(slider.step);
  const positions = Math.round((Number(slider.max) - min) / step);
  const update = [], frame = [];
  let unchanged = 0;
  for (let i = 0; i < reps + warmup; i++) {
    const before = weights.getAttribute('data-weights');
    const value = min + ((i * 37) % positions) * step;
    const t0 = performance.now();
    slider.value = value;
    slider.dispatchEvent(new Event('input', { bubbles: true }));
    void weights.offsetHeight;  // force style and layout of what was redrawn
    const t1 = performance.now();
    await new Promise((resolve) => requestAnimationFrame(() => resolve()));
    const t2 = performance.now();
    if (weights.getAttribute('data-weights') === before) unchanged++;
    if (i >= warmup) { update.push(t1 - t0); frame.push(t2 - t0); }
  }
  return { update, frame, unchanged };
}
"""


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def measure(sizes=(8, 64, 512), reps=200, warmup=20, seed=0) -> list[dict]:
    from playwright.sync_api import sync_playwright

    rng = np.random.default_rng(seed)
    results = []
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for n in sizes:
            site = Path(tmp) / f"n{n}"
            K, V = rng.normal(size=(n, 2)), rng.normal(size=(n, 2))
            explorer = QueryKeyExplorer(K, V, show_output=True, show_scale=True)  # the whole view redraws
            write_widget_page(site, [explorer], title=f"QueryKeyExplorer, {n} keys")
            handler = functools.partial(_QuietHandler, directory=str(site))
            with http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) as server:
                threading.Thread(target=server.serve_forever, daemon=True).start()
                page = browser.new_page(viewport={"width": 1200, "height": 900})
                page.goto(f"http://127.0.0.1:{server.server_address[1]}/index.html")
                page.wait_for_selector('[data-attnlib-widget="QueryKeyExplorer"] [data-weights]', timeout=30_000)
                out = page.evaluate(MEASURE, [reps, warmup])
                page.close()
                server.shutdown()
            results.append({
                "n_keys": n,
                "median_ms": statistics.median(out["update"]),
                "p90_ms": float(np.percentile(out["update"], 90)),
                "frame_median_ms": statistics.median(out["frame"]),
                "unchanged": out["unchanged"],
                "reps": reps,
            })
        version = browser.version
        browser.close()
    for r in results:
        r["chromium"] = version
    return results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=200, help="slider moves per size (default 200)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[8, 64, 512])
    args = parser.parse_args(argv)
    results = measure(tuple(args.sizes), reps=args.reps)
    print(f"QueryKeyExplorer: slider input event -> redrawn weights, headless Chromium {results[0]['chromium']}")
    print(f"({args.reps} moves per size; style and layout included; 'next frame' also waits for the frame)")
    print(f"{'keys':>6} {'median ms':>10} {'p90 ms':>8} {'next frame ms':>14}")
    for r in results:
        print(f"{r['n_keys']:>6} {r['median_ms']:>10.2f} {r['p90_ms']:>8.2f} {r['frame_median_ms']:>14.2f}")
        if r["unchanged"]:
            print(f"       warning: {r['unchanged']} moves left the weights unchanged")
    at64 = [r for r in results if r["n_keys"] == 64]
    if at64:
        ok = at64[0]["median_ms"] < 16.0
        print(f"target at 64 keys: median < 16 ms (one frame at 60 Hz): {'met' if ok else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
