"""Check the figures of book pages and labs for text too small to read and unlabelled axes.

Runs each page's (or lab's) code, catches every figure it glues or shows, and reports the
smallest text as the reader sees it: the book shows a figure at most 672 px wide on a page
(688 px in a lab), so a wide figure is scaled down, and its text with it.

    .venv/bin/python tools/check_figures.py book/06-real-world-impact.md notebooks/06-real-world-impact.ipynb

Exit status 1 when some text is below 8 pt as displayed, or an axis with tick labels has no label.
Each line also reports the smallest text on a 390 px phone (a 358 px column), for information:
a figure that fills the desktop column shrinks there by about half.
"""

from __future__ import annotations

import io
import json
import os
import re
import sys
import types

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from PIL import Image  # noqa: E402

MIN_PT = 8.0
COLUMN_PX = {"book": 672, "lab": 688}  # width of the content column at a desktop viewport
PHONE_COLUMN_PX = 358  # the content column of a 390 px wide phone
CSS_DPI = 96


def page_cells(path):
    """The code of a MyST page's code cells, or a notebook's code cells."""
    if path.endswith(".md"):
        cells = re.findall(r"```\{code-cell\}[^\n]*\n(.*?)```", open(path).read(), re.S)
        return ["\n".join(line for line in c.splitlines() if not line.startswith(":")) for c in cells], "book"
    nb = json.load(open(path))
    return ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"], "lab"


def collect_figures(path):
    """Run the page and return [(name, Figure)] for every figure glued or shown."""
    matplotlib.rcdefaults()  # one page's settings must not leak into the next
    figures = []
    fake = types.ModuleType("myst_nb")
    fake.glue = lambda name, obj, display=True: (
        figures.append((name, obj)) if isinstance(obj, matplotlib.figure.Figure) else None)
    sys.modules["myst_nb"] = fake

    def show(*args, **kwargs):
        for number in plt.get_fignums():
            figures.append((f"shown figure {len(figures) + 1}", plt.figure(number)))
        plt.close("all")

    plt.show = show
    cells, kind = page_cells(path)
    namespace = {"__name__": "__main__"}
    for code in cells:
        code = "\n".join(line for line in code.splitlines() if not line.lstrip().startswith(("%", "!")))
        exec(compile(code, path, "exec"), namespace)
    return figures, kind


def check_figure(fig, column_px):
    """(smallest displayed text in pt, its text, problems) for one figure."""
    FigureCanvasAgg(fig)  # a closed figure has lost its canvas
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", bbox_inches="tight", dpi=fig.dpi)
    scale = min(1.0, column_px / Image.open(buffer).size[0])
    renderer = fig.canvas.get_renderer()
    sizes = sorted((t.get_fontsize() * fig.dpi / CSS_DPI * scale, t.get_text()[:30])
                   for t in fig.findobj(matplotlib.text.Text)
                   if t.get_visible() and t.get_text().strip() and t.get_window_extent(renderer).width > 0)
    problems = [f"{n} texts below {MIN_PT:g} pt" for n in [sum(s < MIN_PT for s, _ in sizes)] if n]
    for k, ax in enumerate(fig.axes):
        if not (ax.get_visible() and ax.axison):
            continue
        for axis, label in (("x", ax.get_xlabel()), ("y", ax.get_ylabel())):
            ticks = ax.get_xticklabels() if axis == "x" else ax.get_yticklabels()
            is_colorbar = hasattr(ax, "_colorbar")
            if not label and not is_colorbar and any(t.get_text() for t in ticks):
                problems.append(f"axes {k} has {axis} tick labels but no {axis} label")
    return sizes[0] if sizes else (float("inf"), ""), problems


def main(paths):
    failed = False
    for path in paths:
        figures, kind = collect_figures(path)
        for name, fig in figures:
            (smallest, text), problems = check_figure(fig, COLUMN_PX[kind])
            (phone, _), _ = check_figure(fig, PHONE_COLUMN_PX)
            print(f"{path}: {name}: smallest text {smallest:.1f} pt ({text!r}), {phone:.1f} pt on a phone"
                  + ("; " + "; ".join(problems) if problems else ""))
            failed |= bool(problems)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
