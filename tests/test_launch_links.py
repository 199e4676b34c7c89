"""Launch buttons open something runnable: each lab's student version, the solved lab only behind "solutions".

In headless Chromium, every lab page's Binder and Colab buttons must open
notebooks/student/<lab>.ipynb (a committed file), and its "solutions" buttons the solved lab.  No page
of the site may have a launch link to a MyST Markdown file (Colab cannot open one; Binder has no
jupytext); a chapter's prose page may open its lab's student version.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import test_browser  # noqa: E402  (its fixtures and helpers)

# site, base_url and browser are the session fixtures of tests/conftest.py.
open_page, pages_of = test_browser.open_page, test_browser.pages_of

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
LABS = sorted((ROOT / "notebooks").glob("*.ipynb"))
LAUNCH_LINKS = ".dropdown-launch-buttons a"
BINDER, COLAB = "https://mybinder.org/", "https://colab.research.google.com/"


def target(url: str) -> str:
    """The repository file a Binder or Colab URL opens."""
    if url.startswith(BINDER):
        urlpath = parse_qs(urlsplit(url).query)["urlpath"][0]
        return urlpath.removeprefix("lab/tree/")
    if url.startswith(COLAB):
        return re.sub(r"^/github/[^/]+/[^/]+/blob/[^/]+/", "", urlsplit(url).path)
    raise AssertionError(f"not a Binder or Colab URL: {url}")


def launch_links(page) -> dict[str, str]:
    """The launch menu's entries: visible text -> URL."""
    return {a.text_content().strip(): a.get_attribute("href") for a in page.locator(LAUNCH_LINKS).all()}


@pytest.fixture(scope="module")
def lab_menus(base_url, browser) -> dict[str, dict[str, str]]:
    """Each lab page's launch menu, read in Chromium (the session's browser, shared with the other browser
    tests: this file launched a Chromium of its own, in a thread of its own, for its seven pages)."""
    menus = {}
    for lab in LABS:
        problems: list[str] = []
        page = open_page(browser, base_url, f"notebooks/{lab.stem}.html", problems)
        menus[lab.stem] = launch_links(page)
        page.close()
    return menus


@pytest.mark.parametrize("lab", LABS, ids=lambda p: p.stem)
def test_lab_launch_buttons_open_the_student_version(lab, lab_menus):
    links = lab_menus[lab.stem]
    student = f"notebooks/student/{lab.name}"
    assert (ROOT / student).is_file(), f"{student} is not committed: run `make student`"
    assert set(links) == {"Binder", "Colab", "Binder: solutions", "Colab: solutions"}, links
    assert links["Binder"].startswith(BINDER) and links["Colab"].startswith(COLAB)
    assert target(links["Binder"]) == target(links["Colab"]) == student
    assert target(links["Binder: solutions"]) == target(links["Colab: solutions"]) == f"notebooks/{lab.name}"


def test_chapter_pages_open_their_lab_and_no_page_launches_markdown(site):
    opened = {}
    for path in pages_of(site):
        html = (site / path).read_text(encoding="utf-8")
        menu = re.search(r'<div class="dropdown dropdown-launch-buttons">(.*?)</ul>', html, re.S)
        urls = re.findall(r'<a href="([^"]+)"', menu.group(1)) if menu else []
        files = [target(url.replace("&amp;", "&")) for url in urls]
        assert all(f.endswith(".ipynb") for f in files), f"{path} launches {files}"
        assert all((ROOT / f).is_file() for f in files), f"{path} launches files that do not exist: {files}"
        opened[path] = set(files)
    for lab in LABS:
        assert opened[f"book/{lab.stem}.html"] == {f"notebooks/student/{lab.name}"}
    for page in ("book/blockwise-attention.html", "book/real-transformer.html", "book/instructor-guide.html"):
        assert opened[page] == set(), f"{page} has launch buttons: {opened[page]}"
