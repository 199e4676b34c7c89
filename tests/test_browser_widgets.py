"""The book's widgets in headless Chromium, driven as a reader would: slider, drag, keyboard, clicks.

On every page of the built book that embeds a widget, the views are driven and what they show
(``data-weights`` and the readable numbers) must equal attnlib's weights within 1e-6; a standalone
page with each widget and a phone page are in tests/test_browser_standalone.py.
Screenshots go to test-artifacts/widgets/.  Which page has which widget is read from the built HTML,
so these tests do not wait for tests/test_browser.py's survey of the site (the two files run on
different xdist workers).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_browser import (
    ARTIFACTS,
    OPEN_BOXES_AROUND_VIEWS,
    SHOWN,
    TOL,
    embedded_state,
    first_widget,
    open_page,
    shot,
    wait_for_widgets,
    widget_map,
)

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
        page.evaluate(OPEN_BOXES_AROUND_VIEWS)
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


def test_model_view_on_the_real_model_weights_page(widgets, base_url, browser):
    """MiniLM's 72 heads: a click enlarges one, whose weights are attnlib's (MiniLM in numpy)."""
    path = "book/real-model-weights.html"
    assert "ModelView" in widgets.get(path, []), f"{path} shows no ModelView"
    attentions = attnlib.pretrained.load_minilm()("The cat sat on the mat.").attentions  # (6, 12, n, n)
    problems = []
    page, root, state = first_widget(browser, base_url, path, "ModelView", problems)
    assert len(state["layer_names"]) * len(state["head_names"]) == 72
    drive_model_view(page, root, state, path, expected=lambda layer, head: attentions[layer, head])
    root.screenshot(path=shot(path, "-modelview"))
    page.close()
    assert not problems, problems


def test_neuron_views_in_the_book(widgets, base_url, browser):
    pages = widget_pages(widgets, "NeuronView")
    assert "book/real-model-weights.html" in pages, "the real-model-weights page shows no NeuronView"
    assert {"book/03-how-attention-works.html", "book/04-types-of-attention.html"} & set(pages), \
        "neither chapter 3 nor 4 shows a NeuronView"
    drive_every_view(browser, base_url, pages, ["NeuronView"], "neuron",
                     lambda page, root, state, what: drive_neuron_view(root, state, what))
