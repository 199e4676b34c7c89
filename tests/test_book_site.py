"""tools/book_site: the Sphinx extension's page fixes and the standalone widget page, without a build."""

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
from bs4 import BeautifulSoup

ROOT = Path(__file__).resolve().parent.parent

from book_site import page_fixes  # noqa: E402
from book_site.assets import WIDGET_HOST  # noqa: E402
from book_site.widget_page import write_widget_page  # noqa: E402

TOGGLE = ('<summary><span class="toctree-toggle" role="presentation">'
          '<i class="fa-solid fa-chevron-down"></i></span></summary>')
CAPTION = '<summary><p class="caption">Chapters</p><span class="toctree-toggle"></span></summary>'


def test_page_fixes_name_toggles_fix_roles_and_drop_repeated_scripts():
    thebe = SimpleNamespace(filename=None, attributes={"body": "const THEBE_JS_URL = 1"})
    context = {
        "script_files": ["a.js", thebe, "a.js", SimpleNamespace(filename=None, attributes=dict(thebe.attributes))],
        "body": '<summary aria-label="Toggle hidden content">Show code cell source</summary>'
                '<div class="citation" id="c1" role="doc-biblioentry">',
        "generate_toctree_html": lambda kind, **kw: TOGGLE + CAPTION if kind == "sidebar"
        else BeautifulSoup(TOGGLE + CAPTION, "html.parser"),
    }
    page_fixes.fix_page(None, "p", "page.html", context, None)
    assert len(context["script_files"]) == 2  # the repeated inline script is gone
    assert context["body"] == '<summary>Show code cell source</summary><div class="citation" id="c1" role="listitem">'
    assert '<link rel="icon" href="data:," />' in context["metatags"]
    html = context["generate_toctree_html"]("sidebar")
    assert html.count('aria-label="Show or hide sections"') == 1  # only the toggle without a visible name
    soup = context["generate_toctree_html"]("raw")
    assert [s.get("aria-label") for s in soup.select("summary")] == ["Show or hide sections", None]


def test_template_overrides_come_first_and_drop_the_mismatched_names():
    config = SimpleNamespace(templates_path=["_templates"])
    page_fixes.add_templates(None, config)
    assert config.templates_path == [str(page_fixes.TEMPLATES), "_templates"]
    search = (page_fixes.TEMPLATES / "search-button-field.html").read_text()
    switcher = (page_fixes.TEMPLATES / "theme-switcher.html").read_text()
    assert "search-button__button" in search and 'aria-label="{{' not in search
    assert 'data-mode="dark"' in switcher and "title=" not in switcher.split("#}")[-1].split("<i", 1)[1]


def test_widget_page_embeds_state_and_loads_only_the_host(tmp_path):
    from attnlib.widgets import NeuronView

    page = write_widget_page(tmp_path, [NeuronView(np.eye(2), np.eye(2), ["a", "b"])])
    html = page.read_text()
    assert (tmp_path / "_static" / WIDGET_HOST).read_text() == (ROOT / "tools/book_site/widget_host.js").read_text()
    assert html.count("<script src=") == 1 and f'src="_static/{WIDGET_HOST}"' in html
    state = json.loads(html.split('widget-state+json">')[1].split("</script>")[0])
    assert any(m["state"].get("_anywidget_id", "").endswith("NeuronView") for m in state["state"].values())


# --- embedded widget state that no token can break out of -------------------------------------

TOKEN = '</SCRIPT ><img src=x onerror="window.__attnlib_pwned = 1">'
CONF = """
import sys
sys.path.insert(0, {tools!r})
extensions = ["myst_nb", "book_site"]
nb_execution_mode = "off"
exclude_patterns = ["_build"]
"""


def _notebook_with_token() -> dict:
    """A notebook whose stored widget state holds TOKEN in a label, as a saved lab could."""
    model_id = "0123456789abcdef0123456789abcdef"
    state = {"model_name": "AnyModel", "model_module": "anywidget", "model_module_version": "~0.9.*",
             "state": {"_esm": "export default { render({ model, el }) { el.textContent = model.get('label'); } };",
                       "label": TOKEN, "_anywidget_id": "test.Token"}}
    view = {"version_major": 2, "version_minor": 0, "model_id": model_id}
    return {
        "cells": [
            {"cell_type": "markdown", "metadata": {}, "source": "# A token in the state"},
            {"cell_type": "code", "execution_count": 1, "metadata": {}, "source": "w",
             "outputs": [{"output_type": "display_data", "metadata": {},
                          "data": {"application/vnd.jupyter.widget-view+json": view, "text/plain": "w"}}]},
        ],
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
                     "widgets": {"application/vnd.jupyter.widget-state+json": {
                         "version_major": 2, "version_minor": 0, "state": {model_id: state}}}},
        "nbformat": 4, "nbformat_minor": 5,
    }


def _build_token_page(tmp_path) -> Path:
    src = tmp_path / "src"
    src.mkdir()
    (src / "conf.py").write_text(CONF.format(tools=str(ROOT / "tools")))
    (src / "index.ipynb").write_text(json.dumps(_notebook_with_token()))
    out = tmp_path / "html"
    run = subprocess.run([sys.executable, "-m", "sphinx", "-b", "html", "-q", str(src), str(out)],
                         capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0, run.stderr[-3000:]
    return out / "index.html"


def _breaks_out(browser, html: str, folder: Path) -> tuple[bool, str]:
    """Load ``html`` in Chromium: did the token's <img> get parsed (and its onerror run)?  And the label
    the widget state holds, as the page's own JSON.parse reads it."""
    page_file = folder / "probe.html"
    page_file.write_text(html, encoding="utf-8")
    page = browser.new_page()
    try:
        page.goto(page_file.as_uri())
        page.wait_for_load_state("load")
        escaped = page.evaluate("document.querySelectorAll('img[src=x]').length > 0 || !!window.__attnlib_pwned")
        label = page.evaluate("""() => {
            const tag = document.querySelector('script[type="application/vnd.jupyter.widget-state+json"]');
            try { return Object.values(JSON.parse(tag.textContent).state)[0].state.label; }
            catch (err) { return 'unparsable: ' + err; } }""")
    finally:
        page.close()
    return escaped, label


def test_embedded_widget_state_cannot_break_out_of_its_script(tmp_path, browser):
    """A page built by myst-nb with our extension keeps a ``</SCRIPT >`` token inside its state.

    Controls: the same page with the token un-escaped (what myst-nb alone writes, since it escapes
    only a lowercase ``</script>``) does break out in the same browser, so the check can fail.
    """
    index = _build_token_page(tmp_path)
    html = index.read_text(encoding="utf-8")
    assert "</SCRIPT" not in html.split('widget-state+json">', 1)[1].split("</script>", 1)[0]
    escaped, label = _breaks_out(browser, html, index.parent)
    assert not escaped, "the token's <img> was parsed: the state broke out of its <script>"
    assert label == TOKEN, f"the state no longer holds the token as data: {label!r}"
    unescaped = html.replace("<\\/SCRIPT", "</SCRIPT")  # the control: as without page_fixes
    assert _breaks_out(browser, unescaped, index.parent)[0], "the control did not break out: the check is blind"
