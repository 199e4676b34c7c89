"""tools/book_site: the Sphinx extension's page fixes and the standalone widget page, without a build."""

import json
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
