"""Shared fixtures: the built book is made once per test run; the hypothesis profile.

Under pytest-xdist (``make test`` runs ``-n 2 --dist loadfile``) the workers share one build: the
first worker to collect a test that needs the book starts it, and a worker that needs the built
book before then waits for the result that the builder writes to ``test-artifacts/``.
"""

from __future__ import annotations

import functools
import http.server
import os
import subprocess
import sys
import threading
import time
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


def _start_build(done: Path | None = None) -> subprocess.Popen:
    """Start building the whole book from clean with warnings as errors (the README's build).

    ``done``: when the build ends, write its return code there (for the other xdist workers).
    """
    jb = Path(sys.executable).with_name("jupyter-book")
    cmd = [str(jb), "build", str(ROOT), "--all", "-W", "-n", "--keep-going"]
    ARTIFACTS.mkdir(exist_ok=True)
    env = {"ATTNLIB_CACHE": str(ROOT / "_build" / "attnlib-cache"), **os.environ}  # as `make book` sets it
    with open(ARTIFACTS / "book-build.log", "w") as log:  # the child keeps its own copy of the handle
        build = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env)
    if done is not None:
        def report():
            returncode = build.wait()
            partial = done.with_suffix(".partial")
            partial.write_text(str(returncode))
            partial.replace(done)  # appears whole: the waiting workers never read half a file
        threading.Thread(target=report, daemon=True).start()
    return build


def _xdist_run(config) -> str | None:
    """The id that the xdist workers of one test run share (None without xdist)."""
    return getattr(config, "workerinput", {}).get("testrunuid")


def _claim_build(run: str) -> bool:
    """True for the first worker of the run to ask: it builds the book for all of them."""
    ARTIFACTS.mkdir(exist_ok=True)
    for old in ARTIFACTS.glob("book-build-*.*"):  # files of earlier runs
        if time.time() - old.stat().st_mtime > 3600:
            old.unlink(missing_ok=True)
    try:
        os.close(os.open(ARTIFACTS / f"book-build-{run}.claim", os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return False
    return True


def _needs_book(item) -> bool:
    """Marked build, or asks for the built book (a browser test of standalone pages or of JupyterLab
    does not: it runs while the book builds)."""
    return bool(item.get_closest_marker("build") or _BOOK_FIXTURES & set(getattr(item, "fixturenames", ())))


# The files that take longest, in the order to start them (pytest-xdist gives each worker whole files,
# in the collection's order under ``--no-loadscope-reorder``): long ones first, so that short ones fill
# in at the end and neither worker waits for the other.  Files not named keep their collection order.
LONG_FIRST = ["test_grading.py", "test_nbgrader_hostile.py", "test_student.py", "test_nbgrader.py",
              "test_browser_jupyterlab.py",
              # the built book's: the survey of every page, the widgets, the screenshots, the site
              "test_browser.py", "test_browser_widgets.py", "test_browser_looks.py", "test_book_site.py"]


def _start_order(item) -> tuple[bool, int]:
    name = item.path.name
    return _needs_book(item), LONG_FIRST.index(name) if name in LONG_FIRST else len(LONG_FIRST)


def pytest_collection_modifyitems(session, config, items):
    """Tests of the built book come last, so the build can run beside everything else (under xdist they start
    as soon as it is done: see pytest_xdist_make_scheduler); long files first."""
    items.sort(key=_start_order)  # a stable sort: the order is otherwise kept


def pytest_collection_finish(session):
    """Start the book build in the background when a collected test needs it: it takes one core
    for a few minutes while the other tests use the other one."""
    global _build
    if _prebuilt() or os.environ.get("ATTN_BOOK_HTML") or not any(map(_needs_book, session.items)):
        return
    run = _xdist_run(session.config)
    if run is None:
        _build = _start_build()
        return
    # for the controller's scheduler (below): the files whose tests wait for this run's build
    files = sorted({item.nodeid.split("::", 1)[0] for item in session.items if _needs_book(item)})
    ARTIFACTS.mkdir(exist_ok=True)
    listed = ARTIFACTS / f"book-build-{run}.files"
    partial = listed.with_suffix(f".{os.getpid()}.partial")
    partial.write_text("\n".join(files))
    partial.replace(listed)  # every worker writes the same list, each whole
    if _claim_build(run):
        _build = _start_build(done=ARTIFACTS / f"book-build-{run}.done")


@pytest.hookimpl(optionalhook=True)  # a hook of pytest-xdist's
def pytest_xdist_make_scheduler(config, log):
    """``--dist loadfile`` that starts the built book's files as soon as the book is built.

    xdist hands a worker its next file when it is nearly done with its last one, in the collection's order,
    where the built book's files come last (they wait for the build).  The non-book files' order is fixed
    before anyone knows when the build will end: in a fresh clone's ``make test`` the build ended 41 s
    before a worker reached the survey of every page (tests/test_browser.py, two minutes in one Chromium,
    the longest file after the build), which then ended the run.  This scheduler gives a worker the first
    of the book's files still queued as soon as the build is done, and the other files as before.
    """
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    dsession = config.pluginmanager.getplugin("dsession")

    class BookWhenBuilt(LoadFileScheduling):
        def _book_files(self) -> tuple[set[str], Path] | None:
            run = getattr(getattr(dsession, "nodemanager", None), "testrunuid", None)
            listed = ARTIFACTS / f"book-build-{run}.files"
            if run is None or not listed.exists():
                return None  # no build in this run (none needed, or a prebuilt book)
            return set(listed.read_text().split()), ARTIFACTS / f"book-build-{run}.done"

        def _assign_work_unit(self, node) -> None:
            book = self._book_files()
            if book is not None and book[1].exists():
                first = next((scope for scope in self.workqueue if scope in book[0]), None)
                if first is not None:
                    self.workqueue.move_to_end(first, last=False)
            super()._assign_work_unit(node)

    return BookWhenBuilt(config, log)


@pytest.fixture(scope="session")
def built_book(request) -> BuiltBook:
    """The book, built once for the whole test run (skip the build with ATTN_BOOK_PREBUILT=1)."""
    global _build
    if _prebuilt():
        return BuiltBook(ROOT / "_build" / "html", 0, "")
    run = _xdist_run(request.config)
    done = ARTIFACTS / f"book-build-{run}.done"
    if _build is None and run is not None and (ARTIFACTS / f"book-build-{run}.claim").exists():
        while not done.exists():  # another worker builds the book
            time.sleep(0.5)
        returncode = int(done.read_text())
    else:
        if _build is None:  # collected without the hook (e.g. a plugin reordered things)
            _build = _start_build()
        returncode = _build.wait()
    log = (ARTIFACTS / "book-build.log").read_text()
    return BuiltBook(ROOT / "_build" / "html", returncode, log)


def pytest_sessionfinish(session, exitstatus):
    """Never leave a build running behind an interrupted session; under xdist, the worker that builds
    the book waits for it to end, since the other workers may still need it."""
    if _build is not None and _build.poll() is None:
        if _xdist_run(session.config) is not None and exitstatus != pytest.ExitCode.INTERRUPTED:
            _build.wait()
        else:
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
