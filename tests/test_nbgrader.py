"""The labs export as an nbgrader course, and nbgrader grades them: full marks solved, zero unsolved.

Runs ``nbgrader generate_assignment`` and ``nbgrader autograde`` offline in a temporary course
folder with its own sqlite gradebook.  Autograding executes every notebook twice, so by default it
covers a synthetic lab and the first lab that follows the exercise convention; set
``ATTN_NBGRADER_LABS=all`` (or a comma-separated list of lab names) to grade more.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent

import nbgrader_export  # noqa: E402  (tools/nbgrader_export.py)
import student  # noqa: E402
from test_student import synthetic_lab  # noqa: E402

LABS = sorted((ROOT / "notebooks").glob("*.ipynb"))
ASSIGNMENT = "labs"


def _follows(lab: Path) -> bool:
    return not student.convention_problems(nbformat.read(lab, as_version=4))


def _graded_labs() -> list[Path]:
    chosen = os.environ.get("ATTN_NBGRADER_LABS", "")
    ready = [lab for lab in LABS if _follows(lab)]
    if chosen == "all":
        return ready
    if chosen:
        return [lab for lab in ready if lab.stem in chosen.split(",")]
    return ready[:1]


@pytest.mark.parametrize("lab", LABS, ids=lambda p: p.stem)
def test_export_uses_nbgrader_metadata(lab):
    nb = nbformat.read(lab, as_version=4)
    if student.convention_problems(nb):
        pytest.skip("the lab does not follow the exercise convention yet (see test_student.py)")
    graded = nbgrader_export.nbgrader_version(nb, points=2)
    for ex in student.exercises(nb):
        answer, test = graded.cells[ex.solution], graded.cells[ex.check]
        assert answer.metadata["nbgrader"] == {
            "solution": True, "grade": False, "locked": False, "grade_id": f"exercise-{ex.number}",
            "schema_version": 3}
        assert test.metadata["nbgrader"] == {
            "solution": False, "grade": True, "locked": True, "points": 2,
            "grade_id": f"exercise-{ex.number}-check", "schema_version": 3}
        lines = answer.source.splitlines()
        begin = lines.index(next(line for line in lines if line.strip() == student.BEGIN))
        assert student.HINT.match(lines[begin - 1]), "the hint stays above the region, for students"
        first = test.source.splitlines()[0]
        assert first.startswith("from attnlib.checks import assert_passed, ") and nbgrader_export.PROTECTED in first
        last = ast.parse(test.source).body[-1]
        assert isinstance(last, ast.Expr) and last.value.func.id == "assert_passed", "no value for nbgrader to read"
    others = [c.source for i, c in enumerate(graded.cells) if i not in
              {e.solution for e in student.exercises(nb)}]
    assert not any("BEGIN SOLUTION" in s or "END SOLUTION" in s for s in others)


def _nbgrader(course: Path, *args: str) -> subprocess.CompletedProcess:
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",  # nbgrader calls alembic
           "JUPYTER_CONFIG_DIR": str(course / ".jupyter")}  # ignore the user's own nbgrader config
    cmd = [str(bin_dir / "nbgrader"), *args, f"--CourseDirectory.db_url=sqlite:///{course / 'gradebook.db'}",
           f"--CourseDirectory.root={course}"]
    return subprocess.run(cmd, cwd=course, env=env, capture_output=True, text=True, timeout=600)


def _fill_solutions(release: Path, source: Path, target: Path, answers: dict | None = None) -> None:
    """A submission that solves every exercise: the source's solution cells in the released notebook.

    ``answers`` replaces some of them (by grade id) with other answers.
    """
    solutions = {c.metadata["nbgrader"]["grade_id"]: c.source for c in nbformat.read(source, as_version=4).cells
                 if c.metadata.get("nbgrader", {}).get("solution")}
    solutions.update(answers or {})
    nb = nbformat.read(release, as_version=4)
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("solution"):
            cell.source = solutions[meta["grade_id"]]
    nbformat.write(nb, target)


SUBMISSIONS = ("solved", "unsolved", "buggy", "gaming", "gaming-lab")


@pytest.fixture(scope="module")
def gradebook(tmp_path_factory):
    """Export, generate, submit (solved and unsolved), autograde; return the scores by student and lab."""
    from nbgrader.api import Gradebook

    course = tmp_path_factory.mktemp("course")
    labs = [synthetic_lab(tmp_path_factory.mktemp("synthetic")), *_graded_labs()]
    nbgrader_export.export(labs, course, points=1, assignment=ASSIGNMENT)
    assert (course / "nbgrader_config.py").exists()
    done = _nbgrader(course, "generate_assignment", ASSIGNMENT, "--force")
    assert done.returncode == 0, done.stdout + done.stderr
    release = course / "release" / ASSIGNMENT
    chosen = {"buggy": labs[:1], "gaming": labs[:1], "gaming-lab": [lab for lab in labs if lab.stem == GAMED_LAB]}
    submitted = [name for name in SUBMISSIONS if chosen.get(name, labs)]
    for name in submitted:
        folder = course / "submitted" / name / ASSIGNMENT
        folder.mkdir(parents=True)
        for lab in chosen.get(name, labs):
            released = release / lab.name
            assert "BEGIN SOLUTION" not in released.read_text(), "the release must not contain solutions"
            assert "HIDDEN TESTS" not in released.read_text(), "the release must not contain hidden tests"
            if name == "solved":
                _fill_solutions(released, course / "source" / ASSIGNMENT / lab.name, folder / lab.name)
            elif name == "buggy":  # the synthetic lab solved, but with a softmax that overflows
                _fill_solutions(released, course / "source" / ASSIGNMENT / lab.name, folder / lab.name,
                                {"exercise-2": OVERFLOWING_SOFTMAX})
            elif name == "gaming":  # wrong answers that try to fool the checks instead
                _fill_solutions(released, course / "source" / ASSIGNMENT / lab.name, folder / lab.name, GAMING)
            elif name == "gaming-lab":  # Lab 1 solved, except four answers that try to fool its checks
                _fill_solutions(released, course / "source" / ASSIGNMENT / lab.name, folder / lab.name, GAMING_LAB)
            else:
                (folder / lab.name).write_text(released.read_text())
    started = time.perf_counter()
    done = _nbgrader(course, "autograde", ASSIGNMENT, "--force")
    elapsed = time.perf_counter() - started
    assert done.returncode == 0, done.stdout + done.stderr
    scores, manual = {}, {}
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        for name in submitted:
            for nb in gb.find_submission(ASSIGNMENT, name).notebooks:
                scores[name, nb.name] = {g.name: (g.score, g.max_score) for g in nb.grades
                                         if g.name.endswith("-check")}  # the autograded tests
                manual[name, nb.name] = {g.name: (g.score, g.needs_manual_grade) for g in nb.grades
                                         if not g.name.endswith("-check")}  # the open questions
    return {"labs": labs, "scores": scores, "manual": manual, "course": course, "log": done.stdout + done.stderr,
            "seconds": elapsed}


OVERFLOWING_SOFTMAX = ("def my_softmax(x):\n    x = np.asarray(x, dtype=float)\n"
                       "    return np.exp(x) / np.exp(x).sum(axis=-1, keepdims=True)")


GAMING = {
    # a wrong double, and the check patched from the answer cell
    "exercise-1": "import attnlib.checks._result as m\n"
                  "m.compare_arrays = lambda name, *a, **k: m.passed(name)\n"
                  "def double(x):\n    return x",
    # attnlib's softmax instead of one's own, and the check and assert_passed redefined
    "exercise-2": "import attnlib\nfrom attnlib.checks import passed\n"
                  "def my_softmax(x):\n    return attnlib.softmax(x)\n"
                  "check_softmax = lambda fn, name='': passed(name)\n"
                  "assert_passed = lambda result: None",
    # the input squared in place
    "exercise-3": "def square(x):\n    x *= x\n    return x",
}


def test_a_submission_that_games_the_checks_scores_zero(gradebook):
    synthetic = gradebook["labs"][0].stem
    grades = gradebook["scores"]["gaming", synthetic]
    assert grades and all(score == 0 for score, _ in grades.values()), grades


def test_autograding_reads_no_score_from_the_check_output(gradebook):
    """A passing grading cell shows its result as display data, not as a value nbgrader tries to read as a score."""
    log = " ".join(gradebook["log"].split())  # nbgrader wraps its log lines
    assert "cannot be converted to a float" not in log
    assert "treating other output as full credit" not in log


def test_a_wrong_answer_scores_zero_on_its_exercise_only(gradebook):
    synthetic = gradebook["labs"][0].stem
    grades = gradebook["scores"]["buggy", synthetic]
    assert {g: s for g, (s, _) in grades.items()} == {
        "exercise-1-check": 1, "exercise-2-check": 0, "exercise-3-check": 1}


def test_nbgrader_validate_shows_the_whole_diagnosis(gradebook):
    """``nbgrader validate`` cuts every line at 87 characters: the diagnosis comes in short lines, all of it."""
    synthetic = gradebook["labs"][0].name
    course = gradebook["course"]
    submission = course / "submitted" / "buggy" / ASSIGNMENT / synthetic
    done = _nbgrader(course, "validate", str(submission))
    shown = done.stdout + done.stderr
    assert "Exercise 2" in shown, shown
    expected = ("with large scores such as [1000.0, 1001.0, 1002.0] your softmax gives NaN: exp overflows. "
                "Subtracting the row's maximum before exp changes nothing mathematically and keeps the numbers "
                "finite.")
    assert " ".join(expected.split()) in " ".join(shown.replace("AssertionError: ", "").split()), shown


def _open_questions(lab: Path) -> list[str]:
    """Grade ids of the lab's open questions: markdown answers that nbgrader leaves for grading by hand."""
    return sorted(c.metadata["nbgrader"]["grade_id"] for c in nbformat.read(lab, as_version=4).cells
                  if c.metadata.get("nbgrader", {}).get("grade") and c.cell_type == "markdown")


def test_solved_submissions_get_full_marks(gradebook):
    for lab in gradebook["labs"]:
        grades = gradebook["scores"]["solved", lab.stem]
        n = len(student.exercises(nbformat.read(lab, as_version=4)))
        assert len(grades) == n >= student.MIN_EXERCISES
        assert all(score == max_score == 1 for score, max_score in grades.values()), (lab.name, grades)
        assert gradebook["manual"]["solved", lab.stem] == {q: (0, True) for q in _open_questions(lab)}, \
            "an answered open question waits for a grader"


def test_unsolved_submissions_get_zero(gradebook):
    for lab in gradebook["labs"]:
        grades = gradebook["scores"]["unsolved", lab.stem]
        assert grades and all(score == 0 and max_score == 1 for score, max_score in grades.values()), \
            (lab.name, grades)
        assert gradebook["manual"]["unsolved", lab.stem] == {q: (0, False) for q in _open_questions(lab)}, \
            "nbgrader gives 0 to an open question left as released"


# Lab 1 answers that pass a visible check or try to fool the grading; each must score 0 under autograde.
GAMED_LAB = "01-what-is-attention"
GAMING_LAB = {
    # the visible case hard-coded: right there, wrong on the hidden inputs
    "exercise-2": ("def my_softmax(scores):\n"
                   "    if len(scores) == 4:\n"
                   "        return np.array([0.0, 0.7310585786300049, 0.2689414213699951, 0.0])\n"
                   "    return np.full(len(scores), 1 / len(scores))"),
    # a wrong answer, and the check replaced by one that always passes
    "exercise-3": ("def soft_lookup(query, keys, values, h):\n"
                   "    return 0.0\n\n"
                   "def check_function(*args, **kwargs):\n"
                   "    from attnlib.checks import passed\n"
                   "    return passed('Exercise 3', 'correct.')"),
    # a wrong answer, and the checks' comparison patched from inside the answer
    "exercise-4": ("import attnlib.checks._result as m\n"
                   "m.compare_arrays = lambda name, *a, **k: m.passed(name)\n"
                   "m.close = lambda *a, **k: True\n\n"
                   "def nearest_key_lookup(query, keys, values):\n"
                   "    return values[0]"),
    # attnlib's own function, which the exercise asks the learner to write
    "exercise-6": ("def dot_product_lookup(q, K, V):\n"
                   "    return al.scaled_dot_product_attention(q[None], K, V, scale=1.0)[0][0]"),
}


def test_a_submission_that_games_a_labs_checks_scores_zero_on_those_exercises(gradebook):
    if ("gaming-lab", GAMED_LAB) not in gradebook["scores"]:
        pytest.skip(f"{GAMED_LAB} is not among the graded labs")
    grades = gradebook["scores"]["gaming-lab", GAMED_LAB]
    gamed = {f"{grade_id}-check" for grade_id in GAMING_LAB}
    assert {g for g, (s, _) in grades.items() if s == 0} == gamed, grades
    assert all(s == 1 for g, (s, _) in grades.items() if g not in gamed), grades


def test_hidden_tests_are_graded(gradebook):
    """generate_assignment strips the hidden tests; autograde puts them back into the graded notebook."""
    graded = (gradebook["course"] / "autograded" / "solved" / ASSIGNMENT / gradebook["labs"][-1].name).read_text()
    assert "### BEGIN HIDDEN TESTS" in graded and "(hidden inputs)" in graded


def test_autograding_one_lab_takes_under_15_seconds(gradebook):
    """Autograde runs every submitted notebook; per notebook it must stay under 15 s on this machine."""
    submitted = sum(1 for _ in (gradebook["course"] / "submitted").glob(f"*/{ASSIGNMENT}/*.ipynb"))
    per_notebook = gradebook["seconds"] / submitted
    print(f"autograde: {gradebook['seconds']:.1f} s for {submitted} notebooks, {per_notebook:.1f} s each")
    assert per_notebook < 15


def test_the_course_config_is_plain_python(tmp_path):
    nbgrader_export.export([synthetic_lab(tmp_path)], tmp_path / "course")
    config = (tmp_path / "course" / "nbgrader_config.py").read_text()
    compile(config, "nbgrader_config.py", "exec")
    assert 'course_id = "attention-interactively"' in config
    assert json.loads((tmp_path / "course" / "source" / "99-synthetic" / "99-synthetic.ipynb").read_text())
