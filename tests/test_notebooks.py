"""Every lab is stored executed, in order, and starts with the standard setup cell."""

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

from new_notebook import SETUP  # noqa: E402

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
