"""Copy the site's browser assets into the built book: MathJax from npm, and our widget host.

No page of the built book loads anything from a third-party host.  MathJax comes from
``node_modules/`` (installed by ``npm ci`` from ``package-lock.json``; the Makefile does it);
the widgets need only ``widget_host.js`` next to this file, a few kilobytes that replace
require.js and the 3.6 MB ipywidgets HTML manager (see that file).

From the command line, ``python tools/book_site/assets.py DEST`` copies the same files to ``DEST``.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
NODE_MODULES = ROOT / "node_modules"
VENDOR = "npm"  # under the site's _static/ (the theme already owns _static/vendor/)
WIDGET_HOST = "attnlib-widget-host.js"  # under the site's _static/
BOOK_CSS = "attnlib-book.css"  # under the site's _static/: the book's own styles (book.css)

# destination under _static/npm/  <-  source under node_modules/
FILES = {
    "mathjax/tex-mml-chtml.js": "mathjax/es5/tex-mml-chtml.js",
    "mathjax/LICENSE": "mathjax/LICENSE",
}
# whole folders MathJax loads on demand (fonts, TeX extensions, the menu, a11y)
FOLDERS = {f"mathjax/{d}": f"mathjax/es5/{d}" for d in ("input", "output", "ui", "a11y", "adaptors", "sre")}


class MissingNodeModules(RuntimeError):
    """node_modules/ was not installed."""


def vendor(static: Path, node_modules: Path = NODE_MODULES) -> list[Path]:
    """Copy MathJax to ``static/npm/`` and the widget host to ``static/``; return what was written."""
    missing = [src for src in list(FILES.values()) + list(FOLDERS.values()) if not (node_modules / src).exists()]
    if missing:
        raise MissingNodeModules(
            f"the site's scripts come from npm packages, but {node_modules} lacks {missing[:3]}; "
            "install them with `make node_modules/.installed` (runs `npm ci`)"
        )
    static = Path(static)
    dest = static / VENDOR
    written = []
    for out, src in FILES.items():
        target = dest / out
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(node_modules / src, target)
        written.append(target)
    for out, src in FOLDERS.items():
        shutil.copytree(node_modules / src, dest / out, dirs_exist_ok=True)
        written.append(dest / out)
    written.append(copy_widget_host(static))
    written.append(Path(shutil.copyfile(HERE / "book.css", Path(static) / BOOK_CSS)))
    return written


def copy_widget_host(static: Path) -> Path:
    """Copy ``widget_host.js`` to ``static/attnlib-widget-host.js``."""
    target = Path(static) / WIDGET_HOST
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(HERE / "widget_host.js", target)
    return target


def copy_assets(app) -> None:
    """Sphinx ``builder-inited``: copy the assets into the HTML output's ``_static/``."""
    if app.builder.format != "html":
        return
    from sphinx.errors import ExtensionError

    try:
        vendor(Path(app.outdir) / "_static")
    except MissingNodeModules as err:
        raise ExtensionError(str(err)) from None


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python tools/book_site/assets.py DEST")
    files = vendor(Path(sys.argv[1]))
    print(f"copied {len(files)} files and folders to {sys.argv[1]}")
