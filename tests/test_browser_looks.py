"""Every widget page of the built book in the theme's dark mode and on a 390 px phone.

For each look (dark mode at 1280 px and at 390 px) every book page that embeds a widget is opened:
the theme must be the one asked for, no widget may be wider than its card or the screen, a table too
wide for its card must scroll and show a cue, and axe-core must find no serious or critical
violation (light at 1280 px is tests/test_browser.py's survey, which runs axe-core on every page; at
390 px the colours are dark-desktop's, so axe's colour-contrast rule runs at 1280 px only).
Screenshots of the page and of each widget go to test-artifacts/widgets/.  The looks are visited a
few pages at a time in one pass; each look's test reports its own findings.
"""

from __future__ import annotations

import json

import pytest
from test_browser import (
    AXE,
    AXE_RUN,
    COUNT_OUR_VIEWS,
    OPEN_BOXES_AROUND_VIEWS,
    PHONE,
    a_few_at_a_time,
    shot,
    widget_map,
)

pytestmark = pytest.mark.browser

# Light mode at 1280 px is tests/test_browser.py's survey (axe-core on every page); the layout at 390 px
# does not depend on the colours, and the dark colours are checked at both widths.
LOOKS = {"dark-desktop": ("dark", 1280), "dark-390": ("dark", 390)}

OVERFLOWS_UNCUED = """r => [...r.querySelectorAll('.attnlib-map-heat, .attnlib-nv-box')].filter((box) =>
    box.scrollWidth > box.clientWidth + 1 && !box.classList.contains('attnlib-more-right')
    && !box.classList.contains('attnlib-more-left')).length"""
OVERFLOWS = """r => [...r.querySelectorAll('.attnlib-map-heat, .attnlib-nv-box')].some(
    (box) => box.scrollWidth > box.clientWidth + 1)"""


async def _look_at(contexts, base_url: str, path: str, look: str) -> dict:
    """One page in one look: its problems, widgets too wide for their card, and axe-core's violations."""
    mode, width = LOOKS[look]
    found = {"look": look, "path": path, "problems": [], "too_wide": {}, "axe": []}
    context = await contexts.get(f"localStorage.setItem('mode', '{mode}'); localStorage.setItem('theme', '{mode}');",
                                 viewport={"width": width, "height": 900}, device_scale_factor=1, color_scheme=mode)
    page = await context.new_page()
    page.set_default_timeout(90_000)  # a busy machine can be slow
    page.on("console", lambda m: found["problems"].append(f"console: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: found["problems"].append(f"page error: {e}"))
    try:
        await page.goto(base_url + path, wait_until="load")
        n_ours = await page.evaluate(COUNT_OUR_VIEWS)
        await page.wait_for_function(
            f"document.querySelectorAll('[data-attnlib-widget] [data-weights]').length >= {n_ours}")
        await page.wait_for_load_state("networkidle")
        theme = await page.evaluate("document.documentElement.dataset.theme")
        if theme != mode:
            found["problems"].append(f"the page is in {theme} mode, not {mode}")
        await page.evaluate(OPEN_BOXES_AROUND_VIEWS)
        roots = page.locator("[data-attnlib-widget]")
        await roots.first.scroll_into_view_if_needed()
        await page.screenshot(path=shot(path, f"-{look}"))  # the first widget within the themed page
        for i in range(await roots.count()):
            root = roots.nth(i)
            await root.scroll_into_view_if_needed()
            await root.screenshot(path=shot(path, f"-{look}-{i}"))
            # nothing sticks out of the widget's card (wide tables scroll inside it)
            over = await root.evaluate("r => r.scrollWidth - r.clientWidth")
            box = await root.bounding_box()
            if over > 1 or box["x"] + box["width"] > width + 1:
                found["too_wide"][f"#{i}"] = (over, box["x"] + box["width"])
            # a table too wide for the card scrolls, and says so: no column is silently cut off
            hints = await root.locator(".attnlib-scroll-hint:visible").count()
            if await root.evaluate(OVERFLOWS_UNCUED) or (await root.evaluate(OVERFLOWS) and not hints):
                found["too_wide"][f"#{i}"] = "a table overflows without a visible cue"
        await page.add_script_tag(content=AXE.read_text(encoding="utf-8"))  # inline: no request
        # the dark colours' contrast at 1280 px; at 390 px the same colours, so the rest of axe's rules
        colours = "all" if width > PHONE else "none"
        found["axe"] = [v for v in await page.evaluate(AXE_RUN, colours) if v["impact"] in ("serious", "critical")]
    except Exception as err:  # a page that never renders is a finding of that page and look
        found["problems"].append(f"{type(err).__name__}: {err}")
    finally:
        await page.close()
    return found


@pytest.fixture(scope="session")
def looks(site, base_url) -> dict[str, list[dict]]:
    """Every widget page of the book in every look, a few at a time: look -> one finding per page."""
    pages = sorted(p for p in widget_map(site) if p.startswith("book/"))
    assert pages, "no page of the book embeds a widget"
    found = a_few_at_a_time(_look_at, [(base_url, path, look) for look in LOOKS for path in pages])
    return {look: [f for f in found if f["look"] == look] for look in LOOKS}


@pytest.mark.parametrize("look", list(LOOKS))
def test_widget_pages_in_dark_mode_and_on_phones(looks, look):
    """Every widget page in the theme's dark mode and at 390 px: screenshots, no overflow, axe clean."""
    too_wide = {f"{f['path']} {i}": v for f in looks[look] for i, v in f["too_wide"].items()}
    bad = {f["path"]: f["axe"] + f["problems"] for f in looks[look] if f["axe"] or f["problems"]}
    assert not too_wide, f"{look}: widgets wider than their card or the screen: {too_wide}"
    assert not bad, f"{look}: " + json.dumps(bad, indent=1)[:6000]
