"""The book builds from clean with zero warnings (the README's `make book`)."""

import re

import pytest

pytestmark = pytest.mark.build

WARNING = re.compile(r"\b(WARNING|ERROR|CRITICAL)\b|Traceback")


def test_book_builds_without_warnings(built_book):
    lines = built_book.log.splitlines()
    problems = [k for k, line in enumerate(lines) if WARNING.search(line)]
    assert built_book.returncode == 0, built_book.log[-3000:]
    # each problem with the lines after it: a traceback's last line names the error
    assert not problems, "\n---\n".join("\n".join(lines[k:k + 25]) for k in problems[:8])


def test_every_chapter_and_lab_is_a_page(built_book):
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    for prose in sorted((root / "book").glob("0*.md")):
        assert (built_book.html / "book" / f"{prose.stem}.html").exists(), prose.name
        lab = root / "notebooks" / f"{prose.stem}.ipynb"
        assert lab.exists(), f"chapter {prose.stem} has no lab"
        assert (built_book.html / "notebooks" / f"{lab.stem}.html").exists(), lab.name
