"""A standalone page of widgets, built like the book's pages, for benchmarks and browser tests.

The page embeds the widgets' state as Jupyter Book does and loads the same widget host
(``widget_host.js``), so it works from a plain local web server with no kernel and no network.
"""

from __future__ import annotations

import json
from pathlib import Path

from book_site.assets import WIDGET_HOST, copy_widget_host

PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8" />
<meta name="viewport" content="width=device-width, initial-scale=1" />
<title>{title}</title>
<link rel="icon" href="data:," />
<script type="application/vnd.jupyter.widget-state+json">{state}</script>
<script src="{host}"></script>
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
    return json.dumps(data).replace("</", "<\\/")  # never close the <script> early


def write_widget_page(dest: Path, widgets, title: str = "attnlib widgets") -> Path:
    """Write ``dest/index.html`` showing ``widgets`` with their state embedded, as the book does."""
    from ipywidgets.embed import embed_data

    dest = Path(dest)
    copy_widget_host(dest / "_static")
    data = embed_data(views=list(widgets), drop_defaults=False)
    views = "\n".join(
        f'<div><script type="application/vnd.jupyter.widget-view+json">{_script_json(spec)}</script></div>'
        for spec in data["view_specs"]
    )
    page = dest / "index.html"
    page.write_text(PAGE.format(title=title, host=f"_static/{WIDGET_HOST}",
                                state=_script_json(data["manager_state"]), views=views), encoding="utf-8")
    return page
