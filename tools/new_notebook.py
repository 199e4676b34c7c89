"""Create a lab notebook from a list of (kind, source) cells, with the standard setup cell.

Used as a library by authors: ``write_lab(path, cells)``, then store it executed with
``jupyter execute --inplace --timeout=120 path`` (``make execute NB=path``).
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from release import setup_source  # noqa: E402  (tools/release.py: the setup cell names the release)

SETUP = setup_source()


def write_lab(path: Path, title_md: str, cells: list[tuple[str, str]], tags: dict[int, list[str]] | None = None):
    """Write a notebook: a title, the setup cell, then ``cells`` as ("md"|"code", source)."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    nb.cells.append(nbformat.v4.new_markdown_cell(title_md))
    nb.cells.append(nbformat.v4.new_code_cell(SETUP))
    for i, (kind, source) in enumerate(cells):
        cell = nbformat.v4.new_markdown_cell(source) if kind == "md" else nbformat.v4.new_code_cell(source)
        if tags and i in tags:
            cell.metadata["tags"] = tags[i]
        nb.cells.append(cell)
    for cell in nb.cells:  # stable ids keep diffs small
        cell.pop("id", None)
    nb.nbformat_minor = 4
    nbformat.write(nb, Path(path))
