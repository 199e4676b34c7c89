"""Fixes to stock Jupyter Book pages: two console errors, the theme's accessibility faults, and
embedded widget state that a ``</SCRIPT>`` in the data could break out of.

Each fix is for a console error or an axe-core rule of serious or critical impact that stock
pages of the pinned theme (pydata-sphinx-theme 0.17, sphinx-book-theme 1.3) fail.  Where the
markup comes from a template, ``templates/`` overrides it; where it comes from Python code
(the sidebar's toctree, myst-nb's hidden cells, docutils' bibliography), the page's HTML is
corrected in memory before it is written (Sphinx's ``html-page-context``), never afterwards.
"""

from __future__ import annotations

import re
from pathlib import Path

TEMPLATES = Path(__file__).resolve().parent / "templates"

# Template overrides in templates/ (same names as the theme's components, found first):
#   search-button-field.html  "Search Ctrl+K" was named only "Search"  (label-content-name-mismatch)
#   theme-switcher.html       icon titles clashed with "Color mode"    (label-content-name-mismatch)

# Markup made by code, fixed in the page's HTML: (pattern, replacement, axe rule)
TOCTREE_FIXES = [
    # The navigation's expand/collapse toggles have only an icon.
    (re.compile(r"<summary>(<span class=\"toctree-toggle\")"), r'<summary aria-label="Show or hide sections">\1',
     "summary-name"),
]
BODY_FIXES = [
    # myst-nb's hidden-cell toggles are named "Toggle hidden content" but show "Show code cell source".
    (re.compile(r'<summary aria-label="Toggle hidden content">'), "<summary>", "label-content-name-mismatch"),
    # The bibliography is a role="list" whose entries use the deprecated doc-biblioentry role.
    (re.compile(r'(<div class="citation" id="[^"]+") role="doc-biblioentry"'), r'\1 role="listitem"',
     "aria-required-children"),
]


WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
WIDGET_VIEW = re.compile(r'(<script type="application/vnd\.jupyter\.widget-view\+json">)(.*?)(</script>)', re.S)
def escape_script_json(text: str) -> str:
    """JSON that cannot end its ``<script>`` early: every ``</`` becomes ``<\\/``, ``<!--`` ``\\u003C!--``.

    myst-nb escapes only a lowercase ``</script>``, but the HTML parser ends a script at
    ``</script`` in any case (``</SCRIPT >`` too), and ``<!--`` can make it miss the real end.
    Inside a JSON string ``<\\/`` reads as ``</`` and ``\\u003C`` as ``<``; outside strings JSON
    has no ``<``, so the data is unchanged.
    """
    return text.replace("</", "<\\/").replace("<!--", "\\u003C!--")


def escape_widget_scripts(context) -> None:
    """Escape the page's embedded widget state and views (see :func:`escape_script_json`)."""
    scripts = context.get("script_files") or []
    for k, js in enumerate(scripts):
        attributes = getattr(js, "attributes", None) or {}
        if attributes.get("type") == WIDGET_STATE and "body" in attributes:
            escaped = escape_script_json(attributes["body"])
            if escaped != attributes["body"]:  # Sphinx's script objects are immutable: replace it
                scripts[k] = type(js)(js.filename, priority=js.priority, **{**attributes, "body": escaped})
    if "body" in context:
        context["body"] = WIDGET_VIEW.sub(lambda m: m[1] + escape_script_json(m[2]) + m[3], context["body"])


def _apply(fixes, html: str) -> str:
    for pattern, replacement, _rule in fixes:
        html = pattern.sub(replacement, html)
    return html


def add_templates(app, config) -> None:
    """Sphinx ``config-inited``: our templates come before the theme's."""
    config.templates_path = [str(TEMPLATES), *config.templates_path]


def fix_page(app, pagename, templatename, context, doctree) -> None:
    """Sphinx ``html-page-context``: drop repeated inline scripts, name no favicon, fix the markup,
    and escape every ``</`` in the embedded widget state.

    sphinx-thebe registers the same inline ``const THEBE_JS_URL = ...`` twice, and the second
    copy throws "Identifier 'THEBE_JS_URL' has already been declared".  The browser asks for
    ``/favicon.ico`` (a 404) unless the page names an icon.
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
    escape_widget_scripts(context)
    if "body" in context:
        context["body"] = _apply(BODY_FIXES, context["body"])
    toctree = context.get("generate_toctree_html")
    if toctree is not None and not getattr(toctree, "_attnlib_fixed", False):
        def fixed_toctree(*args, **kwargs):
            out = toctree(*args, **kwargs)
            if isinstance(out, str):
                return _apply(TOCTREE_FIXES, out)
            for summary in out.select("summary"):  # the theme's BeautifulSoup tree ("raw")
                children = summary.find_all(True, recursive=False)
                only_icon = len(children) == 1 and "toctree-toggle" in children[0].get("class", [])
                if only_icon and not summary.get("aria-label"):
                    summary["aria-label"] = "Show or hide sections"
            return out

        fixed_toctree._attnlib_fixed = True
        context["generate_toctree_html"] = fixed_toctree
