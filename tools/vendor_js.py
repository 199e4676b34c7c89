"""Serve the book's browser scripts from the site itself, copied from pinned npm packages.

No page of the built book loads anything from a third-party host: require.js, the
ipywidgets HTML manager, the anywidget front end and MathJax come from
``node_modules/`` (installed by ``npm ci`` from ``package-lock.json``; the Makefile
does it) and are copied to ``<html>/_static/npm/`` at every build.

Two ways to use this module:

* as a Sphinx extension (``_config.yml``: ``sphinx.local_extensions``), which copies
  the files when the HTML builder starts, fixes two console errors of stock Jupyter
  Book pages and five accessibility faults of the theme's markup (``A11Y_FIXES``);
* from the command line, ``python tools/vendor_js.py DEST`` copies the same files to
  ``DEST`` (the widget benchmark uses it).

Why a small setup script (``npm/widgets-setup.js``) runs between require.js and the
HTML manager: the manager looks for the anywidget module with ``require(["anywidget"])``
first and only then on a CDN, and it resolves its icon fonts against the page.  The
script points both at the folder it was loaded from, which works on pages in
sub-folders and on a site served under a sub-path.
"""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NODE_MODULES = ROOT / "node_modules"
VENDOR = "npm"  # under the site's _static/ (the theme already owns _static/vendor/)

# destination under vendor/  <-  source under node_modules/
FILES = {
    "require.js": "requirejs/require.js",
    "html-manager/dist/embed-amd.js": "@jupyter-widgets/html-manager/dist/embed-amd.js",
    "html-manager/dist/LICENSE.txt": "@jupyter-widgets/html-manager/dist/embed.js.LICENSE.txt",
    "anywidget/index.js": "anywidget/dist/index.js",
    "anywidget/LICENSE": "anywidget/LICENSE",
    "mathjax/tex-mml-chtml.js": "mathjax/es5/tex-mml-chtml.js",
    "mathjax/LICENSE": "mathjax/LICENSE",
}
# whole folders MathJax loads on demand (fonts, TeX extensions, the menu, a11y)
FOLDERS = {f"mathjax/{d}": f"mathjax/es5/{d}" for d in ("input", "output", "ui", "a11y", "adaptors", "sre")}
# The HTML manager's icon fonts: its bundled webpack runtimes look for them next to its script
# (html-manager/dist/) or next to its module's address (the vendor folder itself), so both get them.
FONT_SUFFIXES = (".woff2", ".woff", ".ttf", ".eot")
FONT_DIRS = ("html-manager/dist", ".")

SETUP_JS = """\
// Written by tools/vendor_js.py. Runs after require.js and before the ipywidgets HTML
// manager: the manager asks require.js for "anywidget" before any CDN, so point it at
// the copy next to this file; the manager's icon fonts are found next to its script.
(function () {
  var src = document.currentScript.src;
  var here = src.slice(0, src.lastIndexOf("/") + 1);
  window.__jupyter_widgets_assets_path__ = here + "html-manager/dist/";
  window.require.config({
    paths: {
      anywidget: here + "anywidget/index",
      // The manager's own modules: its webpack runtime finds its fonts from their address.
      "@jupyter-widgets/html-manager": here + "html-manager",
    },
  });
})();
"""

# What myst-nb puts on a page with widgets (_config.yml's nb_ipywidgets_js), in order.
PAGE_SCRIPTS = ["npm/require.js", "npm/widgets-setup.js", "npm/html-manager/dist/embed-amd.js"]


class MissingNodeModules(RuntimeError):
    """node_modules/ was not installed."""


def vendor(dest: Path, node_modules: Path = NODE_MODULES) -> list[Path]:
    """Copy the pinned browser assets into ``dest`` (created if needed); return the files written."""
    missing = [src for src in list(FILES.values()) + list(FOLDERS.values()) if not (node_modules / src).exists()]
    if missing:
        raise MissingNodeModules(
            f"the site's scripts come from npm packages, but {node_modules} lacks {missing[:3]}; "
            "install them with `make node_modules/.installed` (runs `npm ci`)"
        )
    dest = Path(dest)
    written = []
    for out, src in FILES.items():
        target = dest / out
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(node_modules / src, target)
        written.append(target)
    for out, src in FOLDERS.items():
        shutil.copytree(node_modules / src, dest / out, dirs_exist_ok=True)
        written.append(dest / out)
    html_manager = node_modules / "@jupyter-widgets/html-manager/dist"
    for font in sorted(html_manager.iterdir()):
        if font.suffix in FONT_SUFFIXES:
            for folder in FONT_DIRS:
                shutil.copyfile(font, dest / folder / font.name)
                written.append(dest / folder / font.name)
    (dest / "widgets-setup.js").write_text(SETUP_JS, encoding="utf-8")
    written.append(dest / "widgets-setup.js")
    return written


# --- a standalone page, for the widget benchmark and browser tests outside the book ------

PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8" />
<title>{title}</title>
<link rel="icon" href="data:," />
{scripts}
<script type="application/vnd.jupyter.widget-state+json">{state}</script>
</head>
<body>
<main>
<h1>{title}</h1>
{views}
</main>
</body>
</html>
"""


def _script_json(data) -> str:
    import json

    return json.dumps(data).replace("</", "<\\/")  # never close the <script> early


def write_widget_page(dest: Path, widgets, title: str = "attnlib widgets") -> Path:
    """Write ``dest/index.html`` showing ``widgets`` with their state embedded, as the book does.

    The page loads the same vendored scripts as the book (copied to ``dest/npm``), so it
    works from a plain local web server with no kernel and no network.
    """
    from ipywidgets.embed import embed_data

    dest = Path(dest)
    vendor(dest / VENDOR)
    data = embed_data(views=list(widgets), drop_defaults=False)
    scripts = "\n".join(f'<script src="{src}"></script>' for src in PAGE_SCRIPTS)
    views = "\n".join(
        f'<script type="application/vnd.jupyter.widget-view+json">{_script_json(spec)}</script>'
        for spec in data["view_specs"]
    )
    page = dest / "index.html"
    page.write_text(PAGE.format(title=title, scripts=scripts, state=_script_json(data["manager_state"]),
                                views=views), encoding="utf-8")
    return page


# --- the Sphinx extension --------------------------------------------------------------

def _copy_assets(app) -> None:
    if app.builder.format != "html":
        return
    from sphinx.errors import ExtensionError

    try:
        vendor(Path(app.outdir) / "_static" / VENDOR)
    except MissingNodeModules as err:
        raise ExtensionError(str(err)) from None


def _tidy_page(app, pagename, templatename, context, doctree) -> None:
    """Drop repeated inline scripts and ask for no favicon.ico.

    sphinx-thebe registers the same inline ``const THEBE_JS_URL = ...`` twice, and the
    second copy throws "Identifier 'THEBE_JS_URL' has already been declared".  The
    browser asks for ``/favicon.ico`` (a 404) unless the page names an icon.
    """
    scripts = context.get("script_files")
    if scripts:
        seen, unique = set(), []
        for js in scripts:
            filename = getattr(js, "filename", js) or ""  # inline scripts: None or ""
            key = (str(filename), tuple(sorted(getattr(js, "attributes", {}).items())))
            if key not in seen:
                seen.add(key)
                unique.append(js)
        scripts[:] = unique
    context["metatags"] = context.get("metatags", "") + '\n    <link rel="icon" href="data:," />'


# Accessibility fixes for the pinned theme's (pydata-sphinx-theme 0.17, sphinx-book-theme 1.3)
# markup, each for an axe-core rule of serious or critical impact that stock pages fail:
# (pattern, replacement, axe rule)
A11Y_FIXES = [
    # The search field shows "Search Ctrl+K" but is named only "Search": let its text name it.
    (re.compile(r'(<button class="btn search-button-field search-button__button[^"]*" title="Search") '
                r'aria-label="Search"'), r"\1", "label-content-name-mismatch"),
    # The colour-mode button is named "Color mode" but its icons carry titles ("Light", ...)
    # that become visible names; without the titles Font Awesome hides the icons from readers.
    (re.compile(r'(<i class="theme-switch [^"]*" data-mode="\w+")\s+title="[^"]*"'), r"\1",
     "label-content-name-mismatch"),
    # The navigation's expand/collapse toggles have only an icon.
    (re.compile(r"<summary>(<span class=\"toctree-toggle\")"), r'<summary aria-label="Show or hide sections">\1',
     "summary-name"),
    # myst-nb's hidden-cell toggles are named "Toggle hidden content" but show "Show code cell source".
    (re.compile(r'<summary aria-label="Toggle hidden content">'), "<summary>", "label-content-name-mismatch"),
    # The bibliography is a role="list" whose entries use the deprecated doc-biblioentry role.
    (re.compile(r'(<div class="citation" id="[^"]+") role="doc-biblioentry"'), r'\1 role="listitem"',
     "aria-required-children"),
]


def _fix_accessibility(app, exception) -> None:
    """Apply A11Y_FIXES to every page written by the HTML builder."""
    if exception is not None or app.builder.format != "html":
        return
    outdir = Path(app.outdir)
    for page in outdir.rglob("*.html"):
        if page.relative_to(outdir).parts[0] in ("_static", "_sources"):
            continue
        text = page.read_text(encoding="utf-8")
        fixed = text
        for pattern, replacement, _rule in A11Y_FIXES:
            fixed = pattern.sub(replacement, fixed)
        if fixed != text:
            page.write_text(fixed, encoding="utf-8")


def setup(app):
    app.connect("builder-inited", _copy_assets)
    app.connect("html-page-context", _tidy_page, priority=900)
    app.connect("build-finished", _fix_accessibility)
    return {"parallel_read_safe": True, "parallel_write_safe": True}


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python tools/vendor_js.py DEST")
    files = vendor(Path(sys.argv[1]))
    print(f"copied {len(files)} files and folders to {sys.argv[1]}")
