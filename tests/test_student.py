"""Every lab follows the exercise convention, and its committed student version is current and runs.

The student versions (``make student``, tools/student.py, made by nbgrader's generate_assignment)
are committed in notebooks/student/: each solution is replaced by a stub that raises
NotImplementedError.  They must be what the tool writes today; run top to bottom in a fresh kernel
they must not crash, and every check cell must say "not implemented yet".  nbval does not run them
(notebooks/student/conftest.py): their checks are meant to fail until a learner solves them.
A synthetic lab proves the validator can fail.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent

import student  # noqa: E402  (tools/student.py)
from new_notebook import write_lab  # noqa: E402

LABS = sorted((ROOT / "notebooks").glob("*.ipynb"))
STUDENT = ROOT / "notebooks" / "student"


def _run(nb, cwd: Path):
    """Execute a notebook in a fresh kernel; the working directory is ``cwd`` (the labs' folder)."""
    NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}).execute()
    return nb


def _shown(cell) -> str:
    """The text a code cell shows as its result."""
    return "\n".join(
        out.get("data", {}).get("text/plain", "") for out in cell.outputs if out.get("output_type") == "execute_result"
    )


def _check_cells(nb):
    return [cell for cell in nb.cells if "check" in cell.metadata.get("tags", [])]


@pytest.mark.parametrize("lab", LABS, ids=lambda p: p.stem)
def test_lab_follows_the_exercise_convention(lab):
    nb = nbformat.read(lab, as_version=4)
    problems = student.convention_problems(nb)
    assert not problems, f"{lab.name} breaks the exercise convention:\n  " + "\n  ".join(problems)


@pytest.mark.parametrize("lab", LABS, ids=lambda p: p.stem)
def test_stored_lab_checks_pass(lab):
    """In the source lab (solutions in place) every check cell reports success."""
    nb = nbformat.read(lab, as_version=4)
    if student.convention_problems(nb):
        pytest.skip("the lab does not follow the exercise convention yet (reported by the test above)")
    for cell in _check_cells(nb):
        shown = _shown(cell)
        assert shown, f"{lab.name}: a check cell has no result; store the lab executed " \
                      "(make execute NB=...)"
        assert shown.startswith("✓"), f"{lab.name}: a check cell shows {shown!r}, not a passed check"


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory) -> Path:
    """The student versions as ``make student`` (``tools/student.py --out``) writes them now, in a temporary folder."""
    out = tmp_path_factory.mktemp("student")
    assert student.main(["--out", str(out)]) == 0
    return out


def test_committed_student_versions_are_current(regenerated):
    assert sorted(p.name for p in STUDENT.glob("*.ipynb")) == [lab.name for lab in LABS], \
        "notebooks/student/ needs one student version per lab: run `make student`"
    stale = [lab.name for lab in LABS if (STUDENT / lab.name).read_text() != (regenerated / lab.name).read_text()]
    assert not stale, f"notebooks/student/ is not current for {stale}: run `make student` and commit the result"


@pytest.mark.parametrize("lab", LABS, ids=lambda p: p.stem)
def test_student_version_has_no_solutions(lab):
    nb = nbformat.read(lab, as_version=4)
    stu = nbformat.read(STUDENT / lab.name, as_version=4)
    text = "\n".join(cell.source for cell in stu.cells if cell.cell_type == "code")
    assert student.BEGIN not in text and student.END not in text
    for ex in student.exercises(nb):
        source = nb.cells[ex.solution].source
        begin, end = student.solution_region(source)
        solution_lines = [line for line in source.splitlines()[begin + 2:end] if line.strip()]
        cell = stu.cells[ex.solution + 1]  # one note cell is inserted at the top
        assert f"raise NotImplementedError('Hint: {ex.hint}')" in cell.source
        for line in solution_lines:
            assert line not in cell.source.splitlines(), f"{lab.name}: solution line left in: {line!r}"
        assert "hide-input" not in cell.metadata.get("tags", [])
        assert "mystnb" not in cell.metadata, "a stub is no solution: no 'Show the solution' prompt"
    assert all(not c.get("outputs") for c in stu.cells if c.cell_type == "code")
    assert "widgets" not in stu.metadata


@pytest.mark.parametrize("lab", LABS, ids=lambda p: p.stem)
def test_the_open_questions_model_answer_is_folded(lab):
    """The site shows the solution notebook: a model answer in plain view sat right under its question (r38b)."""
    nb = nbformat.read(lab, as_version=4)
    answers = [c.source for c in nb.cells
               if c.metadata.get("nbgrader", {}).get("grade_id", "").startswith("open-question")]
    assert answers, f"{lab.name}: no model answer"
    for source in answers:
        assert source.startswith("<details>") and source.rstrip().endswith("</details>"), source[:80]


@pytest.mark.parametrize("lab", LABS, ids=lambda p: p.stem)
def test_the_site_labels_each_hidden_solution_as_a_solution(lab):
    """On the site a solution is folded under a prompt; myst-nb's default, "Show code cell source", reads like the
    starting code, so a learner opened the answer by accident (reader r36b)."""
    nb = nbformat.read(lab, as_version=4)
    for ex in student.exercises(nb):
        prompt = nb.cells[ex.solution].metadata.get("mystnb", {}).get("code_prompt_show", "")
        assert "solution" in prompt.lower(), f"{lab.name}, cell {ex.solution}: prompt {prompt!r}"


@pytest.mark.parametrize("lab", LABS, ids=lambda p: p.stem)
def test_student_version_links_resolve_from_its_folder(lab):
    """The student versions sit one folder below the labs: their relative links must still lead somewhere."""
    stu = nbformat.read(STUDENT / lab.name, as_version=4)
    text = "\n".join(cell.source for cell in stu.cells if cell.cell_type == "markdown")
    targets = re.findall(r"\]\(([^)\s#]+)", text)
    relative = [t for t in targets if "://" not in t and not t.startswith("mailto:")]
    broken = [t for t in relative if not (STUDENT / t).exists()]
    assert not broken, f"{lab.name}: links that lead nowhere from notebooks/student/: {broken}"


@pytest.mark.parametrize("lab", LABS, ids=lambda p: p.stem)
def test_student_version_runs_and_says_not_implemented(lab):
    nb = nbformat.read(lab, as_version=4)
    stu = _run(nbformat.read(STUDENT / lab.name, as_version=4), STUDENT)  # raises if a cell crashes
    checks = _check_cells(stu)
    assert len(checks) == len(student.exercises(nb))
    for cell in checks:
        shown = _shown(cell)
        assert "not implemented yet" in shown, f"{lab.name}: a check cell shows {shown!r}"
        assert shown.startswith("…")


def test_nbval_does_not_collect_the_student_versions(request):
    """The student versions' checks fail by design: nbval must not run them as if solved."""
    collected = [item.nodeid for item in request.session.items]
    if not any(n.startswith("notebooks/") for n in collected):  # this run has no labs: collect them now
        args = [str(ROOT / "notebooks"), "--collect-only", "-q", "-p", "no:cacheprovider"]
        done = subprocess.run([sys.executable, "-m", "pytest", *args], cwd=ROOT, capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr
        collected = done.stdout.splitlines()
    assert not [n for n in collected if n.startswith("notebooks/student")]
    assert all(any(n.startswith(f"notebooks/{lab.name}") for n in collected) for lab in LABS)


# --- the tools themselves, on a small synthetic lab -------------------------------------------

EXERCISES = [
    ("md", "### Exercise 1: Double\n\nWrite `double(x)`."),
    ("code", "def double(x):\n    ### BEGIN SOLUTION\n    # Hint: add x to itself\n    return x + x\n"
             "    ### END SOLUTION"),
    ("code", "from attnlib.checks import check_function, check_softmax, check_value\n"
             "check_value('Exercise 1', lambda: double(np.arange(3.0)), 2 * np.arange(3.0))"),
    ("md", "### Exercise 2: Softmax\n\nWrite `my_softmax(x)`."),
    ("code", "def my_softmax(x):\n    x = np.asarray(x, dtype=float)\n    ### BEGIN SOLUTION\n"
             "    # Hint: subtract the maximum first\n    e = np.exp(x - x.max(axis=-1, keepdims=True))\n"
             "    return e / e.sum(axis=-1, keepdims=True)\n    ### END SOLUTION"),
    ("code", "check_softmax(my_softmax, name='Exercise 2')"),
    ("md", "### Exercise 3: Square\n\nWrite `square(x)`."),
    ("code", "def square(x):\n    ### BEGIN SOLUTION\n    # Hint: multiply\n    return x * x\n    ### END SOLUTION"),
    ("code", "check_function('Exercise 3', square, np.square, [(np.arange(4.0),)])"),
]
TAGS = {1: ["solution", "hide-input"], 2: ["check"], 4: ["solution", "hide-input"], 5: ["check"],
        7: ["solution", "hide-input"], 8: ["check"]}


def synthetic_lab(tmp_path: Path, cells=EXERCISES, tags=TAGS) -> Path:
    path = tmp_path / "99-synthetic.ipynb"
    write_lab(path, "# Lab 99", [("code", "import numpy as np")] + list(cells),
              {i + 1: t for i, t in tags.items()})
    return path


def test_synthetic_lab_student_version(tmp_path):
    nb = nbformat.read(synthetic_lab(tmp_path), as_version=4)
    assert student.convention_problems(nb) == []
    assert [(e.number, e.function, e.hint) for e in student.exercises(nb)] == [
        (1, "double", "add x to itself"), (2, "my_softmax", "subtract the maximum first"), (3, "square", "multiply")]
    solved = _run(nb, tmp_path)
    assert [_shown(c)[:1] for c in _check_cells(solved)] == ["✓"] * 3
    unsolved = _run(student.student_version(nb), tmp_path)
    shown = [_shown(c) for c in _check_cells(unsolved)]
    assert shown[0] == "… Exercise 1: not implemented yet (Hint: add x to itself)."
    assert all("not implemented yet" in s for s in shown)


BROKEN = {
    "too few exercises": (EXERCISES[:6], TAGS, "has 2 exercise(s)"),
    "missing tags": (EXERCISES, {**TAGS, 4: ["solution"]}, "lacks the tag(s) ['hide-input']"),
    "missing check tag": (EXERCISES, {**TAGS, 8: []}, "lacks the tag 'check'"),
    "no hint": (EXERCISES[:7] + [("code", EXERCISES[7][1].replace("# Hint: multiply\n", ""))] + EXERCISES[8:],
                TAGS, "must be '# Hint: <one-line hint>'"),
    "region outside a function": (
        EXERCISES[:7] + [("code", "### BEGIN SOLUTION\n# Hint: x\nsquare = np.square\n### END SOLUTION")]
        + EXERCISES[8:], TAGS, "inside the body of a function"),
    "result passed instead of the function": (
        EXERCISES[:8] + [("code", "check_value('Exercise 3', square(np.arange(3.0)), np.arange(3.0) ** 2)")],
        TAGS, "passes the result of square(...)"),
    "no check at the end": (EXERCISES[:8] + [("code", "print(square(2.0))")], TAGS, "must end with a call"),
    "bad numbering": ([(k, s.replace("Exercise 3", "Exercise 4")) for k, s in EXERCISES], TAGS,
                      "numbered 1, 2, 3"),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_convention_violations_are_reported(tmp_path, case):
    cells, tags, expected = BROKEN[case]
    nb = nbformat.read(synthetic_lab(tmp_path, cells, tags), as_version=4)
    problems = student.convention_problems(nb)
    assert any(expected in p for p in problems), problems
    with pytest.raises(ValueError, match="breaks the exercise convention"):
        student.student_version(nb)
