"""The built book in headless Chromium: clean pages, accessibility, what a reader downloads.

Every page of the built book is opened from a plain local web server, under a sub-path
as on GitHub Pages, with every request to another host blocked (the network is off):
no console error, no failed or third-party request, and axe-core finds no serious or
critical violation; the bytes each widget page transfers (gzip-compressed) are printed.
The widgets are driven in tests/test_browser_widgets.py, and shown in dark mode and on a
390 px phone in tests/test_browser_looks.py (helpers for both live here).

Run only these:  .venv/bin/python -m pytest -m browser
(they build the book once per session; ATTN_BOOK_HTML=/path/to/_build/html reuses a
build, ATTN_BOOK_PREBUILT=1 the repository's _build/html).
"""

from __future__ import annotations

import gzip
import json
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
from conftest import CHROMIUM, CHROMIUM_ARGS, SUB_PATH, _SubPathHandler  # noqa: E402,F401

NOT_PAGES = ("_static/", "_sources/", "_images/", "_downloads/", "_panels_static/")
TOL = 1e-6
SHOWN = 5e-4 + 1e-9  # display-only views (ModelView, AttentionMap, TrainingView) keep weights to 3 decimals
HTML_BUDGET = 150_000  # gzip-compressed bytes of a page's HTML, its embedded widget state included
PHONE = 390  # px: the narrowest window the site is checked in (a phone held upright)


# The site, its server and the browser are session fixtures in conftest.py (shared by every browser test).


# --- loading a page and recording what went wrong ------------------------------------------

@dataclass
class PageReport:
    path: str
    problems: list[str] = field(default_factory=list)  # console errors, failed/third-party requests
    axe: list[dict] = field(default_factory=list)  # axe-core violations (all impacts)
    widgets: list[str] = field(default_factory=list)  # data-attnlib-widget names on the page
    n_views: int = 0  # widget views embedded in the page
    responses: dict[str, str] = field(default_factory=dict)  # URL -> content type of every response
    phone_width: int = 0  # the page's scroll width in a 390 px wide window (a phone)


def open_page(browser, base_url, path, problems):
    """A new page at ``path`` with the network off: requests to other hosts are blocked and recorded."""
    origin = base_url.split(SUB_PATH)[0]
    page = browser.new_page(viewport={"width": 1280, "height": 900})

    def route(r):
        url = r.request.url
        if url.startswith(origin) or url.startswith(("data:", "blob:")):
            r.continue_()
        else:
            problems.append(f"third-party request: {url}")
            r.abort()

    page.route("**/*", route)
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("requestfailed", lambda r: problems.append(f"failed request: {r.url} ({r.failure})"))
    page.on("response", lambda r: problems.append(f"HTTP {r.status}: {r.url}") if r.status >= 400 else None)
    page.goto(base_url + path, wait_until="load")
    return page


# Opens every closed box (a hide-cell cell, a dropdown) a view sits in, as a reader would click it open.
OPEN_BOXES_AROUND_VIEWS = """() => { for (const v of document.querySelectorAll('[data-attnlib-widget]'))
  for (let d = v.closest('details'); d; d = d.parentElement.closest('details')) d.open = true; }"""
COUNT_OUR_VIEWS = """() => {
    const s = document.querySelector('script[type="application/vnd.jupyter.widget-state+json"]');
    if (!s) return 0;
    const models = JSON.parse(s.textContent).state;
    const views = [...document.querySelectorAll('script[type="application/vnd.jupyter.widget-view+json"]')];
    return views.filter((v) => {
        const m = models[JSON.parse(v.textContent).model_id];
        return m && (m.state._anywidget_id || "").startsWith("attnlib.widgets.");
    }).length;
}"""

AXE_RUN = """async (colours) => {
    // colours: "all" (every rule), "not code" (color-contrast skips highlighted code), "none" (no color-contrast)
    const found = (r) => r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help,
        nodes: v.nodes.slice(0, 3).map((n) => n.target.join(" ")) }));
    if (!colours || colours === "all") return found(await axe.run(document, { resultTypes: ["violations"] }));
    const rest = await axe.run(document, { resultTypes: ["violations"],
                                           rules: { "color-contrast": { enabled: false } } });
    if (colours === "none") return found(rest);
    const text = await axe.run({ include: [["html"]], exclude: [["div.highlight"]] },
                               { resultTypes: ["violations"], runOnly: { type: "rule", values: ["color-contrast"] } });
    return found(rest).concat(found(text));
}"""
# axe-core's colour-contrast rule is two thirds of its time, most of it on highlighted code, whose colours are
# one Pygments theme on every page: the survey checks them on these pages (the most code, a chapter's code
# cells), and the contrast of every other page's prose, tables, outputs and widgets (r66 timing: a lab's
# axe run 19 s, 14 s without the code's contrast).
CODE_COLOURS_CHECKED_ON = ("notebooks/02-the-problem-attention-solves.html", "book/03-how-attention-works.html")


def wait_for_widgets(page) -> int:
    """Wait until every embedded widget view of ours has rendered; return how many views there are."""
    n_views = page.locator('script[type="application/vnd.jupyter.widget-view+json"]').count()
    n_ours = page.evaluate(COUNT_OUR_VIEWS) if n_views else 0
    if n_ours:
        page.wait_for_function(
            f"document.querySelectorAll('[data-attnlib-widget] [data-weights]').length >= {n_ours}",
            timeout=30_000)
    return n_views


def run_axe(page) -> list[dict]:
    page.add_script_tag(content=AXE.read_text(encoding="utf-8"))  # inline: no request
    return page.evaluate(AXE_RUN)


def is_redirect(page: Path) -> bool:
    """A stub that only forwards the browser elsewhere (the site's index.html)."""
    return 'http-equiv="Refresh"' in page.read_text(encoding="utf-8")[:500]


def pages_of(site: Path) -> list[str]:
    """Every real page of the site; redirect stubs are checked by test_redirects_lead_to_pages."""
    return sorted(
        p.relative_to(site).as_posix() for p in site.rglob("*.html")
        if not p.relative_to(site).as_posix().startswith(NOT_PAGES) and not is_redirect(p)
    )


def test_redirects_lead_to_pages(site):
    stubs = [p for p in site.rglob("*.html") if is_redirect(p)]
    assert site / "index.html" in stubs, "index.html should forward the reader to the first page"
    for stub in stubs:
        target = re.search(r'url=([^"]+)"', stub.read_text(encoding="utf-8")).group(1)
        assert (stub.parent / target).is_file(), f"{stub.name} redirects to missing {target}"


CONCURRENT_PAGES = 3  # pages open at once while surveying the site


async def _settled(page, pending: set, quiet: float = 0.5, timeout: float = 90.0) -> None:
    """Wait until none of the page's own requests is in flight for ``quiet`` seconds.  (Chromium's
    "networkidle" timed out on random pages of a loaded machine with nothing left to load; this says
    which requests never finished when it is a real problem.)"""
    import time

    deadline, idle_since = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        if pending:
            idle_since = None
        elif idle_since is None:
            idle_since = time.monotonic()
        elif time.monotonic() - idle_since >= quiet:
            return
        await page.wait_for_timeout(100)
    raise TimeoutError(f"requests still in flight after {timeout:.0f} s: {sorted(r.url for r in pending)[:5]}")


async def _survey_page(contexts, base_url, path) -> PageReport:
    """Open one page (async API) and record its problems, axe-core violations and widgets."""
    report = PageReport(path)
    origin = base_url.split(SUB_PATH)[0]
    page = await (await contexts.get(viewport={"width": 1280, "height": 900})).new_page()
    page.set_default_timeout(90_000)  # a busy machine (CI, a shared 2-core box) can be slow to settle

    async def route(r):
        url = r.request.url
        if url.startswith(origin) or url.startswith(("data:", "blob:")):
            await r.continue_()
        else:
            report.problems.append(f"third-party request: {url}")
            await r.abort()

    pending = set()  # requests sent and neither finished nor failed
    page.on("request", lambda r: pending.add(r))
    page.on("requestfinished", lambda r: pending.discard(r))
    page.on("requestfailed", lambda r: pending.discard(r))
    await page.route("**/*", route)
    page.on("console", lambda m: report.problems.append(f"console {m.type}: {m.text}")
            if m.type == "error" else None)
    page.on("pageerror", lambda e: report.problems.append(f"page error: {e}"))
    page.on("requestfailed", lambda r: report.problems.append(f"failed request: {r.url} ({r.failure})"))
    page.on("response", lambda r: report.problems.append(f"HTTP {r.status}: {r.url}") if r.status >= 400 else None)
    page.on("response", lambda r: report.responses.setdefault(r.url, r.headers.get("content-type", "")))
    try:
        await page.goto(base_url + path, wait_until="load")
        report.n_views = await page.locator('script[type="application/vnd.jupyter.widget-view+json"]').count()
        n_ours = await page.evaluate(COUNT_OUR_VIEWS)
        if n_ours:
            await page.wait_for_function(
                f"document.querySelectorAll('[data-attnlib-widget] [data-weights]').length >= {n_ours}",
                timeout=30_000)
        await _settled(page, pending)
        report.widgets = await page.eval_on_selector_all(
            "[data-attnlib-widget]", "els => els.map((e) => e.dataset.attnlibWidget)")
        await page.add_script_tag(content=AXE.read_text(encoding="utf-8"))  # inline: no request
        report.axe = await page.evaluate(AXE_RUN, "all" if path in CODE_COLOURS_CHECKED_ON else "not code")
        await page.set_viewport_size({"width": PHONE, "height": 900})
        report.phone_width = await page.evaluate("document.documentElement.scrollWidth")
    except Exception as err:  # a page that never settles is a problem of that page
        report.problems.append(f"{type(err).__name__}: {err}")
    finally:
        await page.close()
    return report


class Contexts:
    """One browser context per set of options, shared by the pages visited with those options: like a
    reader's browser, the pages share its cache, so the site's scripts (MathJax's above all) are
    fetched and compiled once rather than for every page."""

    def __init__(self, browser):
        self.browser, self.made = browser, {}

    async def get(self, init_script: str = "", **options):
        key = json.dumps([init_script, options], sort_keys=True)
        if key not in self.made:
            context = await self.browser.new_context(**options)
            if init_script:
                await context.add_init_script(init_script)
            self.made[key] = context
        return self.made[key]


def a_few_at_a_time(visit, jobs: list, concurrent: int = CONCURRENT_PAGES) -> list:
    """``await visit(contexts, *job)`` for every job, ``concurrent`` at once, in a Chromium of its own
    (async API) on a thread of its own (the session's sync browser keeps its own event loop)."""
    import asyncio

    from playwright.async_api import async_playwright

    async def main():
        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            contexts, gate = Contexts(browser), asyncio.Semaphore(concurrent)

            async def one(job):
                async with gate:
                    return await visit(contexts, *job)

            results = await asyncio.gather(*(one(job) for job in jobs))
            await browser.close()
            return results

    results = []
    thread = threading.Thread(target=lambda: results.extend(asyncio.run(main())))
    thread.start()
    thread.join()
    if len(results) != len(jobs):
        raise RuntimeError("the browser's thread stopped before every page was visited")
    return results


def survey(site: Path, base_url: str) -> dict[str, PageReport]:
    """Every page of the site, a few at a time."""
    reports = a_few_at_a_time(_survey_page, [(base_url, path) for path in pages_of(site)])
    return {r.path: r for r in reports}


@pytest.fixture(scope="session")
def reports(site, base_url) -> dict[str, PageReport]:
    """Open every page once: record problems, axe-core violations and the widgets found."""
    if not AXE.exists():
        pytest.fail(f"{AXE} is missing: run `npm ci` (make node_modules/.installed)")
    out = survey(site, base_url)
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "browser-report.json").write_text(json.dumps(
        {p: {"problems": r.problems, "axe": r.axe, "widgets": r.widgets} for p, r in out.items()}, indent=1))
    return out


# --- every page ------------------------------------------------------------------------------

def test_every_page_loads_cleanly_with_the_network_off(reports):
    assert len(reports) >= 10, f"only {len(reports)} pages found"
    bad = {p: r.problems for p, r in reports.items() if r.problems}
    assert not bad, json.dumps(bad, indent=1)[:6000]


def test_axe_finds_no_serious_or_critical_violation(reports):
    bad = {p: [v for v in r.axe if v["impact"] in ("serious", "critical")] for p, r in reports.items()}
    bad = {p: v for p, v in bad.items() if v}
    assert not bad, json.dumps(bad, indent=1)[:6000]


def test_every_page_fits_a_phone(reports):
    """No page scrolls sideways in a 390 px window: a long name, address or table wraps or scrolls inside itself
    (the bibliography was 426 px wide: a quoted `nn.functional.scaled_dot_product_attention`)."""
    wide = {p: r.phone_width for p, r in reports.items() if r.phone_width > PHONE}
    assert not wide, f"pages wider than a {PHONE} px phone (scroll width in px): {wide}"


def test_every_embedded_widget_renders(reports):
    missing = {p: (r.n_views, r.widgets) for p, r in reports.items() if r.n_views and not r.widgets}
    assert not missing, f"pages whose widgets did not render (views, rendered): {missing}"


def test_chapter_3_and_its_lab_have_the_query_key_explorer(reports):
    for path in ("book/03-how-attention-works.html", "notebooks/03-how-attention-works.html"):
        assert path in reports, f"{path} was not built"
        assert "QueryKeyExplorer" in reports[path].widgets, f"{path} shows no QueryKeyExplorer"


# --- helpers for the widget tests (tests/test_browser_widgets.py, _looks.py, _training.py) ---------

def widget_map(site: Path) -> dict[str, list[str]]:
    """Page -> the names of attnlib's widgets embedded in it, read from the built HTML (no browser)."""
    out = {}
    for path in pages_of(site):
        text = (site / path).read_text(encoding="utf-8")
        state = re.search(r'<script type="application/vnd.jupyter.widget-state\+json">(.*?)</script>', text, re.S)
        if not state:
            continue
        models = json.loads(state.group(1))["state"]
        names = []
        for view in re.findall(r'<script type="application/vnd.jupyter.widget-view\+json">(.*?)</script>', text, re.S):
            model = models.get(json.loads(view)["model_id"], {}).get("state", {})
            if str(model.get("_anywidget_id", "")).startswith("attnlib.widgets."):
                names.append(model["_anywidget_id"].rsplit(".", 1)[1])
        if names:
            out[path] = names
    return out


def shot(path: str, suffix: str = "") -> str:
    """Where a screenshot of page ``path`` goes: test-artifacts/widgets/<path with _>[suffix].png."""
    folder = ARTIFACTS / "widgets"
    folder.mkdir(parents=True, exist_ok=True)
    return str(folder / f"{Path(path).with_suffix('').as_posix().replace('/', '_')}{suffix}.png")


def embedded_state(page, uid) -> dict:
    """The model state that Python embedded in the page for the widget with this uid."""
    models = json.loads(page.locator('script[type="application/vnd.jupyter.widget-state+json"]')
                        .first.text_content())["state"]
    for m in models.values():
        if m["state"].get("uid") == uid:
            return m["state"]
    raise AssertionError(f"no embedded state for widget {uid}")


def first_widget(browser, base_url, path, name, problems):
    """Open ``path``, wait for its widgets, and return the page, the first ``name`` widget (scrolled into
    view) and the model state Python embedded for it."""
    page = open_page(browser, base_url, path, problems)
    wait_for_widgets(page)
    root = page.locator(f'[data-attnlib-widget="{name}"]').first
    root.scroll_into_view_if_needed()
    return page, root, embedded_state(page, root.get_attribute("data-uid"))


def test_the_site_uses_no_third_party_script(site):
    """Belt and braces for the request log: no page even names a script or stylesheet on another host."""
    pattern = re.compile(r'<(?:script|link)[^>]+(?:src|href)="(https?:)?//(?!127\.0\.0\.1)[^"]+"[^>]*>')
    offenders = {}
    for path in pages_of(site):
        text = (site / path).read_text(encoding="utf-8")
        found = [m.group(0)[:120] for m in pattern.finditer(text) if 'rel="canonical"' not in m.group(0)]
        if found:
            offenders[path] = found
    assert not offenders, offenders


# --- page weight: what a reader downloads, gzip-compressed --------------------------------------

WEIGHT_BUDGET = 150_000  # bytes: a widget page may transfer at most this much more than a plain page
PLAIN_PAGE = "book/02-the-problem-attention-solves.html"  # a chapter without widgets


def _category(url: str, content_type: str) -> str:
    if "/mathjax/" in url:
        return "mathjax"
    if "html" in content_type:
        return "html"
    if "javascript" in content_type or url.endswith(".js"):
        return "scripts"
    if "css" in content_type:
        return "styles"
    if "font" in content_type or url.endswith((".woff2", ".woff", ".ttf", ".eot")):
        return "fonts"
    if content_type.startswith("image/"):
        return "images"
    return "other"


def transfer_bytes(report: PageReport, base_url: str, site: Path) -> dict[str, int]:
    """Bytes the surveyed page transferred once rendered, by kind, as a server that gzips would send them.

    Every response the survey saw (scripts loaded on demand included) is read from the site folder
    and compressed with gzip level 6; data: and blob: URLs cost nothing.
    """
    totals: dict[str, int] = {}
    for url, content_type in report.responses.items():
        if not url.startswith(base_url):
            continue
        file = site / unquote(urlsplit(url).path)[len(SUB_PATH):]
        if file.is_dir():
            file = file / "index.html"
        size = len(gzip.compress(file.read_bytes(), compresslevel=6))
        kind = _category(url, content_type)
        totals[kind] = totals.get(kind, 0) + size
    totals["total"] = sum(totals.values())
    totals["assets"] = totals["total"] - totals.get("html", 0) - totals.get("images", 0) - totals.get("mathjax", 0)
    return totals


def test_widget_pages_weigh_about_what_plain_pages_do(reports, site, base_url):
    """Scripts, styles and fonts (MathJax aside) of a widget page: within 150 kB of a plain page's."""
    pages = sorted(p for p, r in reports.items() if r.widgets)
    assert pages and PLAIN_PAGE in reports
    weights = {path: transfer_bytes(reports[path], base_url, site) for path in [PLAIN_PAGE, *pages]}
    plain = weights[PLAIN_PAGE]
    kinds = ["html", "scripts", "styles", "fonts", "images", "mathjax", "assets", "total"]
    lines = [f"{'page (gzip-compressed bytes)':44s}" + "".join(f"{k:>9s}" for k in kinds)]
    for path, w in weights.items():
        lines.append(f"{path:44s}" + "".join(f"{w.get(k, 0):9d}" for k in kinds))
    table = "\n".join(lines)
    print("\n" + table)
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "page-weight.txt").write_text(table + "\n")
    extra = {p: w["assets"] - plain["assets"] for p, w in weights.items()}
    heavy = {p: e for p, e in extra.items() if e > WEIGHT_BUDGET}
    assert not heavy, f"widget pages whose scripts, styles and fonts outweigh {PLAIN_PAGE}'s by > 150 kB: {heavy}"
    # every page's own HTML (its embedded widget state included): at most 150 kB gzip-compressed
    html = {f.relative_to(site).as_posix(): len(gzip.compress(f.read_bytes(), 9)) for f in site.rglob("*.html")
            if not f.relative_to(site).as_posix().startswith(NOT_PAGES)}
    biggest = sorted(html.items(), key=lambda kv: -kv[1])[:5]
    print("largest pages' HTML (gzip bytes): " + ", ".join(f"{p} {n}" for p, n in biggest))
    too_big = {p: n for p, n in html.items() if n > HTML_BUDGET}
    assert not too_big, f"pages whose HTML is over {HTML_BUDGET} bytes gzip-compressed: {too_big}"
