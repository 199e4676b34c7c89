"""Shared fixtures: the built book is made once per test session; the hypothesis profile."""

from __future__ import annotations

import functools
import http.server
import os
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from hypothesis import settings

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]
SUB_PATH = "/attention-book/"  # the site is served like a GitHub Pages project site
ARTIFACTS = ROOT / "test-artifacts"

# Every property test draws 60 examples unless it says otherwise; no deadline, since the
# machine is shared and a slow draw is not a failure.
settings.register_profile("book", max_examples=60, deadline=None)
settings.load_profile("book")


@dataclass(frozen=True)
class BuiltBook:
    html: Path  # the _build/html folder
    returncode: int
    log: str  # everything the build printed


_BOOK_FIXTURES = {"built_book", "site"}  # the build itself, and the browser tests' built site
_build: subprocess.Popen | None = None  # the book build, started as soon as the tests are collected


def _prebuilt() -> bool:
    return os.environ.get("ATTN_BOOK_PREBUILT") == "1" and (ROOT / "_build/html/index.html").exists()


def _start_build() -> subprocess.Popen:
    """Start building the whole book from clean with warnings as errors (the README's build)."""
    jb = Path(sys.executable).with_name("jupyter-book")
    cmd = [str(jb), "build", str(ROOT), "--all", "-W", "-n", "--keep-going"]
    ARTIFACTS.mkdir(exist_ok=True)
    with open(ARTIFACTS / "book-build.log", "w") as log:  # the child keeps its own copy of the handle
        return subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=os.environ.copy())


def _needs_book(item) -> bool:
    marked = item.get_closest_marker("build") or item.get_closest_marker("browser")
    return bool(marked or _BOOK_FIXTURES & set(getattr(item, "fixturenames", ())))


def pytest_collection_modifyitems(session, config, items):
    """Tests of the built book run last, so the build can run beside everything else."""
    items.sort(key=_needs_book)  # a stable sort: the order is otherwise kept


def pytest_collection_finish(session):
    """Start the book build in the background when a collected test needs it: it takes one core
    for a few minutes while the other tests use the other one."""
    global _build
    if not _prebuilt() and not os.environ.get("ATTN_BOOK_HTML") and any(map(_needs_book, session.items)):
        _build = _start_build()


@pytest.fixture(scope="session")
def built_book() -> BuiltBook:
    """The book, built once for the whole session (skip the build with ATTN_BOOK_PREBUILT=1)."""
    global _build
    if _prebuilt():
        return BuiltBook(ROOT / "_build" / "html", 0, "")
    if _build is None:  # collected without the hook (e.g. a plugin reordered things)
        _build = _start_build()
    returncode = _build.wait()
    log = (ARTIFACTS / "book-build.log").read_text()
    return BuiltBook(ROOT / "_build" / "html", returncode, log)


def pytest_sessionfinish(session, exitstatus):
    """Never leave a build running behind an interrupted session."""
    if _build is not None and _build.poll() is None:
        _build.kill()


# --- serving the site ---------------------------------------------------------------------

class _SubPathHandler(http.server.SimpleHTTPRequestHandler):
    """Serve ``directory`` under ``SUB_PATH`` only (anything else is a 404)."""

    def translate_path(self, path):
        clean = unquote(urlsplit(path).path)
        if not clean.startswith(SUB_PATH):
            return str(Path(self.directory) / "__outside_the_site__")
        return super().translate_path("/" + clean[len(SUB_PATH):])

    def log_message(self, *args):
        pass


@pytest.fixture(scope="session")
def site(request) -> Path:
    """The built book's HTML folder (the session's build, or ATTN_BOOK_HTML)."""
    if os.environ.get("ATTN_BOOK_HTML"):
        html = Path(os.environ["ATTN_BOOK_HTML"])
    else:
        html = request.getfixturevalue("built_book").html
    assert (html / "index.html").exists(), f"no built book in {html}"
    return html


@pytest.fixture(scope="session")
def base_url(site) -> str:
    handler = functools.partial(_SubPathHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)  # a free port
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}{SUB_PATH}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (make browser-deps)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()
