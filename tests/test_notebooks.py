"""Every lab is stored executed, in order, and starts with the standard setup cell, pinned by the release tool."""

import json
import tomllib
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent

import release  # noqa: E402  (tools/release.py)
from new_notebook import SETUP, write_lab  # noqa: E402

LABS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def code_cells(path):
    return [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]


def test_there_is_a_lab_per_chapter():
    chapters = sorted(p.stem for p in (ROOT / "book").glob("0*.md"))
    assert [p.stem for p in LABS] == chapters


@pytest.mark.parametrize("path", LABS, ids=lambda p: p.stem)
def test_stored_executed_in_order_without_errors(path):
    cells = code_cells(path)
    counts = [c["execution_count"] for c in cells]
    assert counts == list(range(1, len(cells) + 1)), f"{path.name}: re-run it top to bottom in a fresh kernel"
    errors = [o for c in cells for o in c["outputs"] if o["output_type"] == "error"]
    assert not errors, f"{path.name} stores an error output"


@pytest.mark.parametrize("path", LABS, ids=lambda p: p.stem)
def test_starts_with_the_setup_cell_that_prints_nothing(path):
    first = code_cells(path)[0]
    assert "".join(first["source"]) == SETUP, f"{path.name}: the first code cell must be the standard setup cell"
    assert first["outputs"] == []


# --- the release tool pins the setup cell (tools/release.py, `make release VERSION=...`) -------------

def test_the_setup_cell_names_the_current_release():
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert release.RELEASE in (None, f"v{version}"), "RELEASE must be the tag of pyproject's version"
    config = (ROOT / "_config.yml").read_text()
    assert f"url: {release.REPOSITORY}\n" in config, "the setup cell must install from the book's repository"


def test_release_pins_only_the_setup_cell(tmp_path):
    lab = tmp_path / "99-lab.ipynb"
    write_lab(lab, "# Lab 99", [("code", "x = 1"), ("md", "Text")])
    before = lab.read_text().splitlines()
    assert release.pin_lab(lab, "v9.8.7") is True
    after = lab.read_text().splitlines()
    changed = [(a, b) for a, b in zip(before, after, strict=True) if a != b]
    assert 2 <= len(changed) <= 3, changed  # the comment lines (one if already released) and the package line
    assert 'package = f"attnlib @ {source}@v9.8.7"' in "".join(code_cells(lab)[0]["source"])
    assert "".join(code_cells(lab)[0]["source"]) == release.setup_source("v9.8.7", None)
    assert release.pin_lab(lab, "v9.8.7") is False  # already pinned: the file is left alone
    sha = "0123456789abcdef0123456789abcdef01234567"
    assert release.pin_lab(lab, "v9.8.7", sha) is True  # a release installs from the commit it was made from
    assert f'package = f"attnlib @ {{source}}@{sha}"' in "".join(code_cells(lab)[0]["source"])


def test_release_refuses_a_bad_version_or_a_lab_without_setup_cell(tmp_path):
    with pytest.raises(ValueError, match="must look like 1.2.3"):
        release.release("v1.2", commit=False)
    lab = tmp_path / "99-lab.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("import numpy")]), lab)
    with pytest.raises(ValueError, match="not the setup cell"):
        release.pin_lab(lab, "v1.0.0")


CODE_WIDTH = 88  # what a lab's code column shows at a desktop width (tools/book_site/book.css)


@pytest.mark.parametrize("path", LABS, ids=lambda p: p.stem)
def test_code_lines_fit_the_page(path):
    """Code lines fit the page; a comment may run longer (the page wraps it, and hints stay one line)."""
    long = [line for cell in code_cells(path) for line in "".join(cell["source"]).split("\n")
            if len(line.split("  # ")[0]) > CODE_WIDTH and not line.lstrip().startswith("#")]
    assert not long, f"{path.name}: {len(long)} code lines longer than {CODE_WIDTH} characters: {long[:3]}"


@pytest.mark.parametrize("path", LABS + sorted((ROOT / "notebooks" / "student").glob("*.ipynb")), ids=lambda p: p.stem)
def test_every_lab_is_valid_for_its_nbformat_version(path):
    """A cell added with a newer nbformat (a cell ``id`` in a 4.4 file) makes Jupyter call the notebook invalid."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    nbformat.validate(nb)


@pytest.mark.parametrize("path", LABS, ids=lambda p: p.stem)
def test_no_printed_line_is_split_across_output_boxes(path):
    """Back-to-back outputs to one stream show as separate boxes in the book (a label in one, its value in the
    next); ``make execute`` merges them (tools/merge_streams.py), as Jupyter and nbval do."""
    nb = nbformat.read(path, as_version=4)
    split = [i for i, cell in enumerate(nb.cells) if cell.cell_type == "code"
             for a, b in zip(cell.outputs, cell.outputs[1:], strict=False)
             if a.output_type == b.output_type == "stream" and a.name == b.name]
    assert not split, f"cells {split} print one stream in several outputs: run tools/merge_streams.py {path.name}"
