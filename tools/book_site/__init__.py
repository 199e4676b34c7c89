"""The book's Sphinx extension (``_config.yml``: ``sphinx.local_extensions``), one module per job.

* ``assets``: copy MathJax (pinned npm package) and the widget host into the built site
  (``_static/attnlib-widget-host.js``, which _config.yml's ``nb_ipywidgets_js`` names);
* ``widget_host.js``: shows the widgets on the static site without a kernel (``widget_page``
  writes a standalone page with it, for benchmarks and tests);
* ``page_fixes``: template overrides and in-memory fixes for console errors and accessibility.
"""

from book_site import assets, page_fixes


def setup(app):
    app.connect("config-inited", page_fixes.add_templates)
    app.connect("builder-inited", assets.copy_assets)
    app.add_css_file(assets.BOOK_CSS)
    app.connect("html-page-context", page_fixes.fix_page, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
