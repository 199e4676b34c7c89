"""Shared fixtures: the built book is made once per test session; the hypothesis profile."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import settings

ROOT = Path(__file__).resolve().parent.parent
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


def _build_book() -> BuiltBook:
    """Build the whole book from clean with warnings as errors (the README's build)."""
    jb = Path(sys.executable).with_name("jupyter-book")
    cmd = [str(jb), "build", str(ROOT), "--all", "-W", "-n", "--keep-going"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=os.environ.copy())
    ARTIFACTS.mkdir(exist_ok=True)
    log = proc.stdout + proc.stderr
    (ARTIFACTS / "book-build.log").write_text(log)
    return BuiltBook(ROOT / "_build" / "html", proc.returncode, log)


@pytest.fixture(scope="session")
def built_book() -> BuiltBook:
    """The book, built once for the whole session (skip the build with ATTN_BOOK_PREBUILT=1)."""
    if os.environ.get("ATTN_BOOK_PREBUILT") == "1" and (ROOT / "_build/html/index.html").exists():
        return BuiltBook(ROOT / "_build" / "html", 0, "")
    return _build_book()
