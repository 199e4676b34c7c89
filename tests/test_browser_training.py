"""The TrainingView widget on the built induction-heads-evidence page, driven in headless Chromium.

The slider picks a checkpoint; ``data-weights`` must change and equal that checkpoint's
weights as stored in the page's embedded widget state within 1e-6, the heatmap tables
must show the same numbers, and the page must log no console error.  The site, the
server and the browser are the fixtures of tests/test_browser.py.

Run only these:  .venv/bin/python -m pytest tests/test_browser_training.py -m browser
(ATTN_BOOK_HTML=/path/to/_build/html reuses a build).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_browser import TOL, embedded_state, first_widget, open_page, shot, wait_for_widgets

# site, base_url and browser are the session fixtures of tests/conftest.py, shared with test_browser.py.

pytestmark = pytest.mark.browser

PAGE = "book/induction-heads-evidence.html"


def shown(root) -> tuple[int, np.ndarray]:
    """The checkpoint the widget says it shows, and its data-weights (n_layers, T, T)."""
    return int(root.get_attribute("data-checkpoint")), np.array(
        json.loads(root.locator("[data-weights]").get_attribute("data-weights")))


def check_checkpoint(root, state, what) -> np.ndarray:
    k, W = shown(root)
    stored = np.array(state["checkpoint_weights"][k])
    np.testing.assert_allclose(W, stored, rtol=0, atol=TOL, err_msg=f"{what}: checkpoint {k}")
    assert root.get_attribute("data-step") == str(state["steps"][k]), what
    # the readable text: each layer's table shows the same weights (2 decimals, blank above the diagonal)
    T = W.shape[-1]
    for layer, table in enumerate(root.locator("table").all()):
        text = table.locator("tbody td").all_text_contents()
        got = np.array([float(t) if t else np.nan for t in text]).reshape(T, T)
        lower = np.tril(np.ones((T, T), bool))
        np.testing.assert_allclose(got[lower], W[layer][lower], atol=5e-3 + 1e-12, err_msg=f"{what}: table {layer}")
        assert np.isnan(got[~lower]).all(), f"{what}: the future is shown in table {layer}"
    return W


def test_training_view_follows_its_slider(site, base_url, browser):  # noqa: F811
    assert (site / PAGE).exists(), f"{PAGE} was not built"
    problems = []
    page = open_page(browser, base_url, PAGE, problems)
    wait_for_widgets(page)
    roots = page.locator('[data-attnlib-widget="TrainingView"]')
    assert roots.count() == 1, f"{PAGE} should show one TrainingView, found {roots.count()}"
    root = roots.first
    root.scroll_into_view_if_needed()
    state = embedded_state(page, root.get_attribute("data-uid"))
    n = len(state["steps"])
    assert n >= 10 and len(state["checkpoint_weights"]) == n
    slider = root.locator('input[type="range"]')
    label = root.locator(f'label[for="{slider.get_attribute("id")}"]')
    assert label.count() == 1 and label.inner_text().strip(), "the slider has no label"

    start_k, W0 = shown(root)
    assert start_k == state["checkpoint"]
    check_checkpoint(root, state, "initially")

    slider.fill("0")  # the start of training
    k, W_first = shown(root)
    assert k == 0 and not np.allclose(W_first, W0, atol=1e-3), "moving the slider changed nothing"
    check_checkpoint(root, state, "first checkpoint")

    slider.fill(str(n - 1))  # the end of training
    k, W_last = shown(root)
    assert k == n - 1 and not np.allclose(W_last, W_first, atol=1e-3)
    check_checkpoint(root, state, "last checkpoint")

    slider.focus()  # the keyboard: one checkpoint back
    page.keyboard.press("ArrowLeft")
    assert shown(root)[0] == n - 2
    check_checkpoint(root, state, "keyboard")
    assert "step" in root.locator("output").inner_text()

    root.screenshot(path=shot(PAGE, "-training"))
    page.close()
    assert not problems, problems


def test_cross_attention_readout_names_each_key_by_its_own_token(site, base_url, browser):  # noqa: F811
    """On the translator page the keys are the source words and every key is allowed: the readout under a
    table lists a row's three largest weights over all keys, each named by its key's token (a reader's report,
    c59e: it named keys by the query labels and kept only keys up to the row's index, as if causal)."""
    problems = []
    page, root, state = first_widget(browser, base_url, "book/translator.html", "TrainingView", problems)
    key_tokens = state["key_tokens"]
    assert key_tokens and not state["causal"], "the translator's view should be cross-attention"
    select = root.locator("select")
    for i in (0, len(select.locator("option").all()) - 1):
        select.select_option(str(i))
        _, W = shown(root)
        line = root.locator(".attnlib-train-readout").first.inner_text()
        top = np.argsort(-W[0][i], kind="stable")[:3]
        for j in top:
            assert f"key {j} ({key_tokens[j]})" in line, (i, line, top)
    page.close()
    assert not problems, problems
