"""The book's widgets in headless Chromium, driven as a reader would: slider, drag, keyboard, clicks.

On every page of the built book that embeds a widget, the views are driven and what they show
(``data-weights`` and the readable numbers) must equal attnlib's weights within 1e-6; a standalone
page holds each widget, and a phone page the widgets at their real sizes in a 340 px card.
Screenshots go to test-artifacts/widgets/.  Which page has which widget is read from the built HTML,
so these tests do not wait for tests/test_browser.py's survey of the site (the two files run on
different xdist workers).
"""

from __future__ import annotations

import functools
import http.server
import json
import threading

import numpy as np
import pytest
from conftest import SUB_PATH, _SubPathHandler
from test_browser import ARTIFACTS, SHOWN, TOL, embedded_state, open_page, run_axe, shot, wait_for_widgets, widget_map

import attnlib

pytestmark = pytest.mark.browser


@pytest.fixture(scope="session")
def widgets(site) -> dict[str, list[str]]:
    return widget_map(site)


def widget_pages(widgets, name):
    return sorted(p for p, names in widgets.items() if name in names)


def qke_expected(state, query, temperature, scaled) -> np.ndarray:
    """attnlib's weights for what the widget shows."""
    K = np.array(state["key_points"])
    scale = (1 / np.sqrt(K.shape[1]) if scaled else 1.0) / temperature
    return attnlib.softmax(attnlib.scaled_dot_product_scores(np.array([query]), K, scale=scale))[0]


def qke_read(root):
    weights_el = root.locator("[data-weights]")
    weights = np.array(json.loads(weights_el.get_attribute("data-weights")))
    query = json.loads(root.get_attribute("data-query"))
    return weights, query


def qke_check(root, state, what):
    """data-weights equals attnlib's weights and the table shows the same numbers."""
    weights, query = qke_read(root)
    temperature = float(root.locator('input[type="range"]').nth(2).input_value())
    box = root.locator('input[type="checkbox"]')  # the sqrt(d_k) box, on pages that have explained it
    scaled = box.is_checked() if box.count() else state["scaled"]
    expected = qke_expected(state, query, temperature, scaled)
    np.testing.assert_allclose(weights, expected, rtol=0, atol=TOL, err_msg=f"{what}: query {query}")
    text = [float(t) for t in root.locator("[data-weights] tbody td:nth-child(3)").all_text_contents()]
    np.testing.assert_allclose(text, weights, atol=5e-5 + 1e-12, err_msg=f"{what}: readable text")
    return weights, query


def test_query_key_explorer_follows_slider_drag_and_keyboard(widgets, base_url, browser):
    pages = widget_pages(widgets, "QueryKeyExplorer")
    assert pages, "no page shows a QueryKeyExplorer"
    (ARTIFACTS / "widgets").mkdir(parents=True, exist_ok=True)
    for path in pages:
        problems = []
        page = open_page(browser, base_url, path, problems)
        wait_for_widgets(page)
        page.screenshot(path=shot(path), full_page=True)  # as a reader first sees it
        roots = page.locator('[data-attnlib-widget="QueryKeyExplorer"]')
        for i in range(roots.count()):
            root = roots.nth(i)
            root.scroll_into_view_if_needed()
            state = embedded_state(page, root.get_attribute("data-uid"))
            w0, q0 = qke_check(root, state, f"{path} #{i} initially")
            np.testing.assert_allclose(w0, state["current_weights"], atol=TOL)  # Python's own weights

            # 1. the slider (an input event, as a reader dragging its thumb)
            x_slider, y_slider = root.locator('input[type="range"]').nth(0), root.locator('input[type="range"]').nth(1)
            target = float(x_slider.get_attribute("min")) * 0.5
            x_slider.fill(str(target))
            w1, q1 = qke_check(root, state, f"{path} #{i} slider")
            assert q1[0] == pytest.approx(target) and not np.allclose(w1, w0, atol=1e-9)

            # 2. dragging the query on the plane with the mouse
            box = root.locator("svg").first.bounding_box()
            page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.5)
            page.mouse.down()
            page.mouse.move(box["x"] + box["width"] * 0.8, box["y"] + box["height"] * 0.25, steps=5)
            page.mouse.up()
            w2, q2 = qke_check(root, state, f"{path} #{i} drag")
            assert q2[0] > 0 and q2[1] > 0 and not np.allclose(w2, w1, atol=1e-9)

            # 3. the keyboard: arrow keys on the focused slider
            y_slider.focus()
            for _ in range(4):
                page.keyboard.press("ArrowDown")
            w3, q3 = qke_check(root, state, f"{path} #{i} keyboard")
            assert q3[1] == pytest.approx(q2[1] - 4 * state["step"], abs=1e-9) or q3[1] < q2[1]
            assert not np.allclose(w3, w2, atol=1e-9)

            # temperature and the sqrt(d_k) switch
            root.locator('input[type="range"]').nth(2).fill("2.5")
            if state["show_scale"]:
                root.locator('input[type="checkbox"]').click()
            else:  # no sqrt(d_k) before the page explains it, and no output without values
                assert root.locator('input[type="checkbox"]').count() == 0, f"{path} #{i}: a sqrt(d_k) box"
            assert root.locator(".attnlib-output").count() == int(state["show_output"]), f"{path} #{i}: output"
            qke_check(root, state, f"{path} #{i} temperature and unscaled")

            root.screenshot(path=shot(path, f"-{i}"))  # after the moves
        page.close()
        assert not problems, problems


def map_check(root, state, what):
    W = np.array(json.loads(root.locator("[data-weights]").get_attribute("data-weights")))
    head = int(root.get_attribute("data-head"))
    if state["mode"] == "masks":
        S = np.array(state["head_scores"][head])
        n_q, n_k = S.shape
        mask = attnlib.padding_mask([int(root.get_attribute("data-n-valid"))], n_k)[0]
        if root.get_attribute("data-padding-side") == "left":
            mask = mask[:, ::-1]  # the real keys are the last n_valid
        if root.get_attribute("data-causal") == "true":
            mask = mask & attnlib.causal_mask(n_q, n_k)
        expected = attnlib.softmax(np.where(np.broadcast_to(mask, S.shape), S, -np.inf))
    else:
        expected = np.array(state["head_weights"][head])
    np.testing.assert_allclose(W, expected, rtol=0, atol=TOL, err_msg=what)
    cells = root.locator("[data-weights] tbody td")
    text = np.array([float(t.split()[0]) for t in cells.all_text_contents()])
    np.testing.assert_allclose(text.reshape(W.shape), W, atol=5e-3 + 1e-12, err_msg=f"{what}: readable text")
    if state["mode"] == "masks":  # masked cells say so (hatched, "masked" for screen readers), others do not
        masked = np.array(cells.evaluate_all("tds => tds.map((td) => td.classList.contains('attnlib-masked'))"))
        said = np.array(["masked" in t for t in cells.all_text_contents()])
        np.testing.assert_array_equal(masked, said, err_msg=f"{what}: masked cells")
        np.testing.assert_array_equal(W.ravel()[masked], 0.0, err_msg=f"{what}: masked cells have weight 0")
    return W


def drive_attention_map(page, root, state, what):
    W0 = map_check(root, state, f"{what} initially")
    if len(state["head_names"]) > 1:  # a head selector
        select = root.get_by_label("Head", exact=True)
        select.select_option(index=len(state["head_names"]) - 1)
        map_check(root, state, f"{what} last head")
    view = root.get_by_label("View", exact=True)
    view.select_option("lines")
    button = root.locator(".attnlib-tokens button").first
    button.focus()
    assert root.locator(".attnlib-hl").count() >= 1, f"{what}: focusing a token highlights nothing"
    assert root.locator(".attnlib-map-lines").is_visible(), f"{what}: the lines view shows no lines"
    view.select_option("heatmap")
    assert not root.locator(".attnlib-map-lines").is_visible(), f"{what}: the heatmap view still shows lines"
    if state["mode"] == "masks":
        root.locator('input[type="checkbox"]').click()
        map_check(root, state, f"{what} causal toggled")
        root.locator('input[type="number"]').fill("0")
        W = map_check(root, state, f"{what} all keys padding")
        assert not np.isnan(W).any() and np.all(W == 0)
        assert "fully masked" in root.inner_text()
        root.locator('input[type="number"]').fill(str(len(state["tokens_k"])))
        map_check(root, state, f"{what} no padding")
        root.locator('input[type="number"]').fill("2")
        root.get_by_label("Padding on the").select_option("left")
        map_check(root, state, f"{what} padding on the left")
        root.get_by_label("Padding on the").select_option("right")
    return W0


def drive_every_view(browser, base_url, pages, names, label, drive):
    """On each page, ``drive(page, root, embedded state, what)`` every view of the widgets ``names``, then
    screenshot it; the page must log no problem."""
    selector = ", ".join(f'[data-attnlib-widget="{name}"]' for name in names)
    for path in pages:
        problems = []
        page = open_page(browser, base_url, path, problems)
        wait_for_widgets(page)
        roots = page.locator(selector)
        for i in range(roots.count()):
            root = roots.nth(i)
            root.scroll_into_view_if_needed()
            drive(page, root, embedded_state(page, root.get_attribute("data-uid")), f"{path} #{i}")
            root.screenshot(path=shot(path, f"-{label}{i}"))
        page.close()
        assert not problems, problems


def test_attention_maps_in_the_book(widgets, base_url, browser):
    pages = widget_pages(widgets, "AttentionMap") + widget_pages(widgets, "MaskExplorer")
    if not pages:
        pytest.skip("no chapter uses AttentionMap or MaskExplorer yet (tested on a standalone page below)")
    drive_every_view(browser, base_url, sorted(set(pages)), ["AttentionMap", "MaskExplorer"], "map",
                     drive_attention_map)


def mv_check(root, state, what):
    """The enlarged head's data-weights are the embedded weights of the selected layer and head."""
    layer, head = int(root.get_attribute("data-layer")), int(root.get_attribute("data-head"))
    W = np.array(json.loads(root.locator(".attnlib-mv-big [data-weights]").get_attribute("data-weights")))
    expected = np.array(state["all_weights"][layer][head])
    np.testing.assert_allclose(W, expected, rtol=0, atol=TOL, err_msg=f"{what}: layer {layer}, head {head}")
    text = [float(t) for t in root.locator(".attnlib-mv-big [data-weights] tbody td").all_text_contents()]
    np.testing.assert_allclose(np.reshape(text, W.shape), W, atol=5e-3 + 1e-12, err_msg=f"{what}: readable text")
    pressed = root.locator('.attnlib-mv-thumb[aria-pressed="true"]')
    assert pressed.count() == 1, f"{what}: {pressed.count()} thumbnails pressed"
    assert pressed.get_attribute("aria-label") == f"{state['layer_names'][layer]}, {state['head_names'][head]}"
    return layer, head, W


def drive_model_view(page, root, state, what, expected=None):
    """Click a thumbnail, then move with the keyboard: the enlarged weights follow, equal to attnlib's.

    ``expected(layer, head)``, when given, is attnlib's own weights for that head.
    """
    n_layers, n_heads = len(state["layer_names"]), len(state["head_names"])
    thumbs = root.locator(".attnlib-mv-thumb")
    assert thumbs.count() == n_layers * n_heads, f"{what}: {thumbs.count()} thumbnails"
    l0, h0, _ = mv_check(root, state, f"{what} initially")
    assert (l0, h0) == (state["layer"], state["head"])
    target = (n_layers - 1, n_heads - 1) if (l0, h0) != (n_layers - 1, n_heads - 1) else (0, 0)
    thumbs.nth(target[0] * n_heads + target[1]).click()  # 1. a click enlarges that head
    layer, head, W = mv_check(root, state, f"{what} after a click")
    assert (layer, head) == target, f"{what}: clicked {target}, enlarged {(layer, head)}"
    if expected is not None:
        np.testing.assert_allclose(W, expected(layer, head), rtol=0, atol=SHOWN, err_msg=f"{what}: attnlib's weights")
    # 2. the keyboard: arrows move the focus in the grid, Enter enlarges
    page.keyboard.press("ArrowUp" if target[0] > 0 else "ArrowDown")
    page.keyboard.press("Enter")
    layer2, head2, W2 = mv_check(root, state, f"{what} after the keyboard")
    assert (layer2, head2) == (target[0] - 1 if target[0] > 0 else 1, target[1]) or n_layers == 1
    if expected is not None:
        np.testing.assert_allclose(W2, expected(layer2, head2), rtol=0, atol=SHOWN, err_msg=f"{what}: keyboard")
    # 3. the labelled selectors
    root.get_by_label("Layer", exact=True).select_option(index=0)
    root.get_by_label("Head", exact=True).select_option(index=0)
    assert mv_check(root, state, f"{what} after the selectors")[:2] == (0, 0)


def nv_expected(state, head, query) -> tuple[np.ndarray, np.ndarray]:
    """attnlib's scores and weights for the NeuronView's head and query."""
    q = np.array(state["head_queries"][head][query])[None, :]  # (1, d_k)
    K = np.array(state["head_keys"][head])  # (n_k, d_k)
    scores = attnlib.scaled_dot_product_scores(q, K, scale=state["scale"])[0]  # (n_k,)
    return scores, attnlib.softmax(scores)


def nv_check(root, state, what):
    head, query = int(root.get_attribute("data-head")), int(root.get_attribute("data-query"))
    table = root.locator("[data-weights]")
    w = np.array(json.loads(table.get_attribute("data-weights")))
    s = np.array(json.loads(table.get_attribute("data-scores")))
    scores, weights = nv_expected(state, head, query)
    np.testing.assert_allclose(s, scores, rtol=0, atol=TOL, err_msg=f"{what}: scores")
    np.testing.assert_allclose(w, weights, rtol=0, atol=TOL, err_msg=f"{what}: weights")
    text = [float(t) for t in root.locator(".attnlib-nv-weight").all_text_contents()]
    np.testing.assert_allclose(text, w, atol=5e-4 + 1e-12, err_msg=f"{what}: readable weights")
    bars = root.locator("tbody rect").evaluate_all("rs => rs.map((r) => Number(r.getAttribute('height')))")
    return head, query, w, np.array(bars)


def drive_neuron_view(root, state, what):
    """Choose another query token (and head): the bars and weights change, equal to attnlib's."""
    head, query, w0, bars0 = nv_check(root, state, f"{what} initially")
    assert (head, query) == (state["head"], state["query"])
    n_q = len(state["tokens_q"])
    if n_q > 1:
        other = (query + 1) % n_q
        root.get_by_label("Query token").select_option(index=other)
        _, q1, w1, bars1 = nv_check(root, state, f"{what} query {other}")
        assert q1 == other and not np.allclose(bars1, bars0), f"{what}: the bars did not change with the query"
        assert not np.allclose(w1, w0, atol=1e-9), f"{what}: the weights did not change with the query"
    if len(state["head_names"]) > 1:
        root.get_by_label("Head", exact=True).select_option(index=len(state["head_names"]) - 1)
        h2, _, _, _ = nv_check(root, state, f"{what} last head")
        assert h2 == len(state["head_names"]) - 1


def test_model_view_on_the_real_transformer_page(widgets, base_url, browser):
    """MiniLM's 72 heads: a click enlarges one, whose weights are attnlib's (MiniLM in numpy)."""
    path = "book/real-transformer.html"
    assert "ModelView" in widgets.get(path, []), f"{path} shows no ModelView"
    attentions = attnlib.pretrained.load_minilm()("The cat sat on the mat.").attentions  # (6, 12, n, n)
    problems = []
    page = open_page(browser, base_url, path, problems)
    wait_for_widgets(page)
    root = page.locator('[data-attnlib-widget="ModelView"]').first
    root.scroll_into_view_if_needed()
    state = embedded_state(page, root.get_attribute("data-uid"))
    assert len(state["layer_names"]) * len(state["head_names"]) == 72
    drive_model_view(page, root, state, path, expected=lambda layer, head: attentions[layer, head])
    root.screenshot(path=shot(path, "-modelview"))
    page.close()
    assert not problems, problems


def test_neuron_views_in_the_book(widgets, base_url, browser):
    pages = widget_pages(widgets, "NeuronView")
    assert "book/real-transformer.html" in pages, "the real-transformer page shows no NeuronView"
    assert {"book/03-how-attention-works.html", "book/04-types-of-attention.html"} & set(pages), \
        "neither chapter 3 nor 4 shows a NeuronView"
    drive_every_view(browser, base_url, pages, ["NeuronView"], "neuron",
                     lambda page, root, state, what: drive_neuron_view(root, state, what))


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
