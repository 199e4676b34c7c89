"""Every widget on pages of their own, built like the book's but without it: a standalone page with
each widget, and a phone page with the widgets at their real sizes in a 340 px card.

These tests need Chromium but not the built book, so they run while the book builds (the tests of
the book's own widget pages are in tests/test_browser_widgets.py).
"""

from __future__ import annotations

import functools
import http.server
import json
import threading

import numpy as np
import pytest
from conftest import SUB_PATH, _SubPathHandler
from test_browser import ARTIFACTS, embedded_state, open_page, run_axe, shot
from test_browser_widgets import drive_attention_map, drive_model_view, drive_neuron_view, qke_check

import attnlib

pytestmark = pytest.mark.browser


# --- every widget on a standalone page built like the book's --------------------------

@pytest.fixture(scope="session")
def standalone(tmp_path_factory):
    """A page with each widget, its state embedded, the book's vendored scripts, no kernel."""
    from book_site.widget_page import write_widget_page

    from attnlib.widgets import AttentionMap, MaskExplorer, ModelView, NeuronView, QueryKeyExplorer

    rng = np.random.default_rng(0)
    tokens = "the cat sat on the mat".split()
    X = rng.normal(size=(6, 8))
    _, heads = attnlib.multi_head_attention(X, X, attnlib.init_multi_head(8, 2, rng), 2)
    widgets = [
        QueryKeyExplorer(rng.normal(size=(100, 2)), rng.normal(size=(100, 3)), query=[0.5, -0.5]),  # many keys
        AttentionMap(heads, tokens, head_names=["head A", "head B"]),
        MaskExplorer(attnlib.scaled_dot_product_scores(X, X), tokens, causal=True),
        ModelView(np.stack([heads, heads[::-1]]), tokens, layer=1, head=0),  # (2 layers, 2 heads, 6, 6)
        NeuronView(rng.normal(size=(2, 6, 4)), rng.normal(size=(2, 6, 4)), tokens, query=2),
    ]
    folder = tmp_path_factory.mktemp("standalone") / "site"
    write_widget_page(folder / "sub", widgets, title="attnlib widgets")  # a page in a sub-folder
    return folder


def test_standalone_page_every_widget(standalone, browser):
    handler = functools.partial(_SubPathHandler, directory=str(standalone))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}{SUB_PATH}"
    problems = []
    try:
        page = open_page(browser, base, "sub/index.html", problems)
        page.wait_for_function("document.querySelectorAll('[data-attnlib-widget] [data-weights]').length >= 5",
                               timeout=30_000)
        qke = page.locator('[data-attnlib-widget="QueryKeyExplorer"]')
        state = embedded_state(page, qke.get_attribute("data-uid"))
        qke_check(qke, state, "standalone initially")
        qke.locator('input[type="range"]').first.fill("1")
        qke_check(qke, state, "standalone slider")
        for name in ("AttentionMap", "MaskExplorer"):
            root = page.locator(f'[data-attnlib-widget="{name}"]')
            drive_attention_map(page, root, embedded_state(page, root.get_attribute("data-uid")), name)
        root = page.locator('[data-attnlib-widget="ModelView"]')
        drive_model_view(page, root, embedded_state(page, root.get_attribute("data-uid")), "standalone ModelView")
        root = page.locator('[data-attnlib-widget="NeuronView"]')
        drive_neuron_view(root, embedded_state(page, root.get_attribute("data-uid")), "standalone NeuronView")
        violations = [v for v in run_axe(page) if v["impact"] in ("serious", "critical")]
        (ARTIFACTS / "widgets").mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "widgets" / "standalone.png"), full_page=True)
        page.close()
    finally:
        server.shutdown()
        server.server_close()
    assert not problems, problems
    assert not violations, violations


# --- phones: a 340 px card on a 390 px screen ---------------------------------------------------

PHONE_CHECK = """root => {
  const card = root.getBoundingClientRect();
  const visible = (e) => { const b = e.getBoundingClientRect(); return b.width > 0 && b.height > 0
    && getComputedStyle(e).visibility !== 'hidden'; };
  const small = [...root.querySelectorAll('input, select, button')].filter(visible)
    .map((e) => [e.tagName.toLowerCase() + (e.type ? ':' + e.type : ''), e.getBoundingClientRect()])
    .filter(([, b]) => b.width < 24 - 0.01 || b.height < 24 - 0.01)
    .map(([name, b]) => `${name} ${b.width.toFixed(1)}x${b.height.toFixed(1)}`);
  // text a reader must read: every visible text node (0 px: a colour-only cell, its number in the readout)
  const tiny = [];
  const walk = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  for (let n = walk.nextNode(); n; n = walk.nextNode()) {
    const e = n.parentElement;
    if (!n.data.trim() || !visible(e) || e.closest('.attnlib-sr, svg')) continue;
    const size = parseFloat(getComputedStyle(e).fontSize);
    if (size > 0 && size < 11) tiny.push(`${size.toFixed(1)}px: ${n.data.trim().slice(0, 20)}`);
  }
  return { over: root.scrollWidth - root.clientWidth, right: card.right, small, tiny: tiny.slice(0, 8) };
}"""


@pytest.fixture(scope="session")
def phone_page(tmp_path_factory):
    """The widgets a phone struggled with, at their real sizes: 6 x 12 heads, 2 layers x 24 positions."""
    from book_site.widget_page import write_widget_page

    from attnlib.widgets import MaskExplorer, ModelView, QueryKeyExplorer, TrainingView

    rng = np.random.default_rng(1)
    tokens = "[CLS] the cat sat on the mat . [SEP]".split()
    T = 24
    causal = np.where(attnlib.causal_mask(T), 0.0, -np.inf)
    widgets = [
        ModelView(attnlib.softmax(rng.normal(size=(6, 12, 9, 9))), tokens, layer=2, head=3),
        TrainingView([0, 100, 200], attnlib.softmax(rng.normal(size=(3, 2, T, T)) + causal),
                     [str(t) for t in rng.integers(0, 32, T)], np.arange(0, 201, 20.0), np.linspace(3.4, 1, 11),
                     layer_names=["Layer 0", "Layer 1"], reference=float(np.log(32))),
        MaskExplorer(rng.normal(size=(6, 6)), "<pad> <pad> the cat sat down".split(), causal=True, n_valid=4),
        QueryKeyExplorer(rng.normal(size=(4, 2)), rng.normal(size=(4, 2)), show_output=True, show_scale=True),
    ]
    folder = tmp_path_factory.mktemp("phone") / "site"
    write_widget_page(folder / "sub", widgets, title="attnlib widgets on a phone")
    return folder


def test_widgets_fit_a_phone_card(phone_page, browser):
    """At 390 px (a 340 px card): no control under 24 px, no widget wider than its card, no text under
    11 px; ModelView's thumbnails are 24 px targets; TrainingView's heatmaps fit and print one row's
    numbers readably; MaskExplorer pads on the left and shows the empty rows of the causal + left-padding
    case; a number typed beyond the keys shows what Python will hold."""
    handler = functools.partial(_SubPathHandler, directory=str(phone_page))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    problems = []
    try:
        context = browser.new_context(viewport={"width": 390, "height": 900}, device_scale_factor=1)
        page = context.new_page()
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.goto(f"http://127.0.0.1:{server.server_address[1]}{SUB_PATH}sub/index.html", wait_until="load")
        page.add_style_tag(content="main { width: 340px; margin: 0 auto; } body { margin: 0; }")
        page.wait_for_function("document.querySelectorAll('[data-attnlib-widget] [data-weights]').length >= 4")
        page.wait_for_timeout(200)  # the ResizeObservers have run
        report = {}
        for name in ("ModelView", "TrainingView", "MaskExplorer", "QueryKeyExplorer"):
            root = page.locator(f'[data-attnlib-widget="{name}"]')
            root.screenshot(path=shot(f"phone-{name}"))
            check = root.evaluate(PHONE_CHECK)
            if check["over"] > 1 or check["right"] > 390 or check["small"] or check["tiny"]:
                report[name] = check
        assert not report, f"at 390 px: {json.dumps(report, indent=1)}"
        thumbs = page.locator(".attnlib-mv-thumb").evaluate_all(
            "bs => bs.map(b => [b.getBoundingClientRect().width, b.getBoundingClientRect().height])")
        assert len(thumbs) == 72 and min(min(t) for t in thumbs) >= 24, f"thumbnails {min(map(min, thumbs))} px"
        tv = page.locator('[data-attnlib-widget="TrainingView"]')
        widths = tv.locator(".attnlib-train-heat").evaluate_all("ts => ts.map(t => t.getBoundingClientRect().width)")
        assert max(widths) <= 340, f"TrainingView's heatmaps are {widths} px wide in a 340 px card"
        tv.get_by_label("Query position").select_option("5")
        readout = tv.locator(".attnlib-train-readout").first.text_content()
        assert readout.startswith("Layer 0, query 5: key ") and readout.count("key") == 3, readout
        W = np.array(json.loads(tv.locator("[data-weights]").first.get_attribute("data-weights")))
        top = int(np.argmax(W[0][5][:6]))
        assert f"key {top} " in readout and f"{W[0][5][top]:.2f}" in readout, (readout, W[0][5])
        # MaskExplorer: left padding + causal leaves the pad queries nothing to attend to
        mask = page.locator('[data-attnlib-widget="MaskExplorer"]')
        mask.get_by_label("Padding on the").select_option("left")
        W = np.array(json.loads(mask.locator("[data-weights]").get_attribute("data-weights")))
        assert mask.get_attribute("data-padding-side") == "left"
        np.testing.assert_array_equal(W[:2], 0.0)  # the two pad queries: all zero, never NaN
        np.testing.assert_allclose(W[2:].sum(axis=1), 1.0, atol=1e-12)
        assert W[2:, :2].max() == 0.0  # nobody attends to the pads on the left
        assert mask.locator("text=(fully masked)").count() == 2
        box = mask.get_by_label("Real keys (the rest are padding)")
        box.fill("9")  # beyond the 6 keys: the box shows the 6 that Python will hold
        assert box.input_value() == "6" and mask.get_attribute("data-n-valid") == "6"
        context.close()
    finally:
        server.shutdown()
        server.server_close()
    assert not problems, problems
