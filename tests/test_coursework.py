"""The labs' exercises hold up as coursework (issue 15, items 2, 3, 4, 10 and 16).

- no reference solution in a visible check cell, no check that prints the expected answer;
- tiered hints, each collapsed, and a stub that carries only the nudge;
- no hidden tests in a notebook: every exercise is in the grader's catalogue
  (attnlib/grading/catalogue.py), which grades outside the learner's kernel (issue 22);
- the checks imported in the check cell that uses them;
- a predict-then-measure exercise and a hand-graded open question in every lab.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent

import student  # noqa: E402  (tools/student.py)

LABS = sorted((ROOT / "notebooks").glob("*.ipynb"))
STUDENT = ROOT / "notebooks" / "student"
HIDDEN = re.compile(r"^### BEGIN HIDDEN TESTS$(.*?)^### END HIDDEN TESTS$\n?", re.S | re.M)
SUMMARIES = ["Hint 1: a nudge", "Hint 2: the formula", "Hint 3: the code"]


def _lab(path):
    nb = nbformat.read(path, as_version=4)
    return nb, student.exercises(nb)


def _visible(source: str) -> str:
    return HIDDEN.sub("", source)


def _is_prediction(nb, ex) -> bool:
    return "check_prediction(" in nb.cells[ex.check].source


@pytest.mark.parametrize("lab", LABS, ids=lambda p: p.stem)
def test_no_reference_solution_in_a_visible_check_cell(lab):
    nb, found = _lab(lab)
    for ex in found:
        visible = _visible(nb.cells[ex.check].source)
        defined = [n.name for n in ast.walk(ast.parse(visible)) if isinstance(n, ast.FunctionDef)]
        assert not [d for d in defined if d.startswith(("reference_", "measured_"))], (lab.name, ex.number, defined)
        assert "print(" not in visible, f"{lab.name} Exercise {ex.number}: a check cell prints"
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert not re.search(r"\b(reference_(variance|self_attention|gap|leaks)|measured_(shapes|bytes))\b", text)


@pytest.mark.parametrize("lab", LABS, ids=lambda p: p.stem)
def test_tiered_collapsed_hints_and_a_nudge_in_the_stub(lab):
    nb, found = _lab(lab)
    for ex in found:
        between = [nb.cells[i] for i in range(ex.heading + 1, ex.solution) if nb.cells[i].cell_type == "markdown"]
        hints = [c.source for c in between if "<details>" in c.source]
        assert len(hints) == 1, f"{lab.name} Exercise {ex.number}: one hint cell between statement and solution"
        summaries = re.findall(r"<summary>(.*?)</summary>", hints[0])
        assert summaries == SUMMARIES
        assert "<details open" not in hints[0], "every hint starts collapsed"
        nudge = re.search(r"<summary>Hint 1: a nudge</summary>\s*(.*?)\s*</details>", hints[0], re.S).group(1)
        assert nudge.lower() == ex.hint.lower(), "the stub's hint is the first tier"
        source = nb.cells[ex.solution].source
        begin, end = student.solution_region(source)
        solution = [line.split("#")[0].strip() for line in source.splitlines()[begin + 2:end]]
        assert not any(line and line in ex.hint for line in solution), f"{lab.name} Ex {ex.number}: hint = answer"
        assert not re.search(r"\bfor \w+ in\b|np\.linalg\.solve\(", ex.hint), f"{lab.name} Ex {ex.number}: {ex.hint}"


CONTROL = re.compile(r"^(for |if |elif |else:|while |def |try:|except)")


@pytest.mark.parametrize("lab", LABS, ids=lambda p: p.stem)
def test_no_hint_shows_a_line_of_the_answer(lab):
    """Issue 20 item 3: the last tier may show the shape of the code (names, `...`), not the code."""
    nb, found = _lab(lab)
    for ex in found:
        hints = "\n".join(nb.cells[i].source for i in range(ex.heading + 1, ex.solution)
                          if nb.cells[i].cell_type == "markdown")
        source = nb.cells[ex.solution].source
        begin, end = student.solution_region(source)
        lines = {line.split("#")[0].strip() for line in source.splitlines()[begin + 2:end]}
        shown = [line for line in lines if line and not CONTROL.match(line)
                 and (len(line) > 6 or line.startswith("return")) and line in hints]
        assert not shown, f"{lab.name} Exercise {ex.number}: a hint shows {shown}"


@pytest.mark.parametrize("lab", LABS, ids=lambda p: p.stem)
def test_every_lab_has_a_debug_exercise(lab):
    nb, found = _lab(lab)
    assert any(ex.title.startswith("debug") for ex in found), f"{lab.name}: no debug exercise"


@pytest.mark.parametrize("lab", LABS, ids=lambda p: p.stem)
def test_check_cells_import_their_checks_and_the_grader_knows_every_exercise(lab):
    from attnlib.grading import catalogue

    nb, found = _lab(lab)
    for ex in found:
        source = nb.cells[ex.check].source
        tree = ast.parse(source)
        first = tree.body[0]
        assert isinstance(first, ast.ImportFrom) and first.module == "attnlib.checks", \
            f"{lab.name} Exercise {ex.number}: {source.splitlines()[0]}"
        callee = tree.body[-1].value.func.id
        imported = [alias.asname or alias.name for alias in first.names]
        assert callee in imported or f"def {callee}(" in source, \
            f"{lab.name} Exercise {ex.number}: {callee} is neither imported nor defined in its check cell"
        assert not HIDDEN.search(source), f"{lab.name} Exercise {ex.number}: hidden tests belong to the grader"
        graded = catalogue.EXERCISES.get((lab.name[:2], ex.number))
        assert graded is not None and graded.function == ex.function, \
            f"{lab.name} Exercise {ex.number} ({ex.function}) is not in the grader's catalogue"
        assert len(graded.mistakes) >= 3 or _is_prediction(nb, ex), f"{lab.name} Ex {ex.number}: too few mutants"


@pytest.mark.parametrize("lab", LABS, ids=lambda p: p.stem)
def test_student_versions_strip_the_hidden_tests(lab):
    stu = (STUDENT / lab.name).read_text()
    assert "HIDDEN TESTS" not in stu and "(hidden inputs)" not in stu


@pytest.mark.parametrize("lab", LABS, ids=lambda p: p.stem)
def test_every_lab_has_a_prediction_and_a_hand_graded_open_question(lab):
    nb, found = _lab(lab)
    assert any(_is_prediction(nb, ex) for ex in found), f"{lab.name}: no predict-then-measure exercise"
    answers = [(i, c) for i, c in enumerate(nb.cells) if c.metadata.get("nbgrader", {}).get("grade")
               and c.cell_type == "markdown"]
    assert len(answers) == 1, f"{lab.name}: one open question"
    i, cell = answers[0]
    meta = cell.metadata["nbgrader"]
    assert {k: meta[k] for k in ("solution", "grade", "task", "locked")} == \
        {"solution": True, "grade": True, "task": False, "locked": False}
    assert meta["points"] > 0 and meta["grade_id"].startswith("open-question-")
    assert nb.cells[i - 1].source.startswith("### Open question:")
    stu = nbformat.read(STUDENT / lab.name, as_version=4)
    released = [c for c in stu.cells if c.metadata.get("nbgrader", {}).get("grade_id") == meta["grade_id"]]
    assert len(released) == 1 and "YOUR ANSWER HERE" in released[0].source and "Model answer" not in released[0].source


def test_every_open_question_has_a_rubric():
    guide = (ROOT / "book" / "instructor-guide.md").read_text()
    rubrics = guide.split("## Rubrics for the open questions", 1)[1]
    for lab in LABS:
        nb, _ = _lab(lab)
        titles = [c.source.splitlines()[0].removeprefix("### Open question: ") for c in nb.cells
                  if c.cell_type == "markdown" and c.source.startswith("### Open question:")]
        for title in titles:
            assert f'"{title}"' in rubrics, f"no rubric for {lab.name}'s open question {title!r}"
