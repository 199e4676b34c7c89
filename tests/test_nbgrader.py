"""Lab 1 end to end under real nbgrader: export, generate, release, submit, autograde a class in parallel.

The grades come from our own autograde step (ExternalGrade, configured by tools/nbgrader_export.py),
which grades each answer cell in a fresh process; the notebook itself is never run.  Submissions:
solved, unsolved, two with the cheats of issue 22, one with honest mistakes and one with right
answers written differently.  They are graded two at a time by ``attnlib.grading.classroom``, and
every student's gradebook entry must be exactly that student's expected scores (no grade lost or
mixed up).  No kernel runs a submission: nbgrader's Execute step is in no configuration, so the
cheats' code runs only in the grader's sandbox.  Submissions that attack the course folder itself
are in tests/test_nbgrader_hostile.py (a file of its own, so its courses build on the other xdist
worker).  The other labs' exercises go through the same grader in tests/test_grading.py.
"""

from __future__ import annotations

import ast
import json
import time
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent

import nbgrader_export  # noqa: E402  (tools/nbgrader_export.py)
import student  # noqa: E402

from attnlib.grading import classroom  # noqa: E402

LABS = sorted((ROOT / "notebooks").glob("*.ipynb"))
LAB = ROOT / "notebooks" / "01-what-is-attention.ipynb"
ASSIGNMENT = LAB.stem


@pytest.mark.parametrize("lab", LABS, ids=lambda p: p.stem)
def test_export_uses_nbgrader_metadata(lab):
    nb = nbformat.read(lab, as_version=4)
    graded = nbgrader_export.nbgrader_version(nb, points=2, lab=lab.name[:2])
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
        assert test.source.splitlines()[0] == nbgrader_export.SELF_CHECK
        assert "HIDDEN TESTS" not in test.source and "assert_passed" not in test.source
        last = ast.parse(test.source).body[-1]
        assert isinstance(last, ast.Expr) and last.value.func.id.startswith("check_"), "a plain self-check"
    others = [c.source for i, c in enumerate(graded.cells) if i not in
              {e.solution for e in student.exercises(nb)}]
    assert not any("BEGIN SOLUTION" in s or "END SOLUTION" in s for s in others)


def test_a_lab_the_grader_does_not_know_is_not_exported(tmp_path):
    from test_student import synthetic_lab

    with pytest.raises(ValueError, match="not one of the labs"):
        nbgrader_export.export([synthetic_lab(tmp_path)], tmp_path / "course")


def _solutions(source: Path) -> dict[str, str]:
    return {c.metadata["nbgrader"]["grade_id"]: c.source for c in nbformat.read(source, as_version=4).cells
            if c.metadata.get("nbgrader", {}).get("solution") and c.cell_type == "code"}


def generated_course(path: Path, *, test_limits: bool = True) -> Path:
    """Lab 1 exported to ``path`` and its assignment generated; ``test_limits``: short time limits."""
    nbgrader_export.export([LAB], path, points=1)
    if test_limits:
        config = path / "nbgrader_config.py"
        config.write_text(config.read_text() + "c.ExternalGrade.time_limit = 3.0\n")
    done = classroom.nbgrader(path, "generate_assignment", ASSIGNMENT, "--force")
    assert done.returncode == 0, done.stdout + done.stderr
    return path


def submit(course: Path, name: str, sources: dict[str, str]) -> None:
    """Student ``name`` hands in the released Lab 1 with ``sources`` (grade_id -> code) in those answer
    cells; the other answer cells stay as released."""
    folder = course / "submitted" / name / ASSIGNMENT
    folder.mkdir(parents=True)
    nb = nbformat.read(course / "release" / ASSIGNMENT / LAB.name, as_version=4)
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("solution") and cell.cell_type == "code" and meta["grade_id"] in sources:
            cell.source = sources[meta["grade_id"]]
    nbformat.write(nb, folder / LAB.name)


CHEATS_A = {
    # the checks module replaced by no-ops, and a wrong answer
    "exercise-1": "import sys, types\n"
                  "sys.modules['attnlib.checks'] = types.SimpleNamespace(\n"
                  "    check_top_words=lambda *a, **k: None, assert_passed=lambda *a: None)\n"
                  "def top_words(tokens, weights, k):\n    return tokens[:k]",
    # assert_passed's code swapped, and a wrong answer
    "exercise-2": "from attnlib.checks import assert_passed\n"
                  "assert_passed.__code__ = (lambda result: None).__code__\n"
                  "def my_softmax(scores):\n    return scores",
    # the expected value taken from the checking function's frame
    "exercise-3": "import sys\n"
                  "def least_sure_query(queries, keys, sigma):\n"
                  "    f = sys._getframe(1)\n"
                  "    while f is not None:\n"
                  "        if 'expected' in f.f_locals:\n"
                  "            return f.f_locals['expected']\n"
                  "        f = f.f_back\n"
                  "    return 0.0",
    # a FunctionType copy of attnlib's own function
    "exercise-4": "import types, attnlib\n"
                  "_nw = types.FunctionType(attnlib.nadaraya_watson.__code__, attnlib.nadaraya_watson.__globals__)\n"
                  "def nearest_key_lookup(query, keys, values):\n"
                  "    return _nw([query], keys, values, bandwidth=0.01)[0][0]",
    # the measurement, which the grading cell computes before calling the prediction
    "exercise-5": "def predicted_wide_lookup():\n    return measured",
    # attnlib's reference for the exercise itself
    "exercise-6": "import attnlib\n"
                  "def dot_product_lookup(q, K, V):\n"
                  "    return attnlib.scaled_dot_product_attention(q[None], K, V, scale=1.0)[0][0]",
}
CHEATS_B = {
    # exp of log_softmax, attnlib's own
    "exercise-2": "from attnlib import nn\n"
                  "def my_softmax(scores):\n    return np.exp(nn.log_softmax(np.asarray(scores, dtype=float)))",
    # reload, then the reference
    "exercise-3": "import importlib, attnlib\nimportlib.reload(attnlib)\n"
                  "def least_sure_query(queries, keys, sigma):\n"
                  "    w = attnlib.nadaraya_watson(queries, keys, keys, bandwidth=sigma)[1]\n"
                  "    return queries[w.max(axis=1).argmin()]",
    # a loop that catches everything, the timeout included
    "exercise-4": "def nearest_key_lookup(query, keys, values):\n"
                  "    while True:\n        try:\n            pass\n        except BaseException:\n            pass",
    # the old guard switched off, then the reference
    "exercise-6": "try:\n    from attnlib.checks import _guard\n    _guard._state.trusted = 1\nexcept Exception:\n"
                  "    pass\n"
                  "def dot_product_lookup(q, K, V):\n"
                  "    return al.scaled_dot_product_attention(q[None], K, V, scale=1.0)[0][0]",
}
MISTAKES = {
    "exercise-1": "def top_words(tokens, weights, k):\n"
                  "    order = np.argsort(weights)\n"
                  "    return [tokens[j] for j in order if tokens[j] not in ('[CLS]', '[SEP]')][:k]",
    "exercise-2": "def my_softmax(scores):\n    s = np.asarray(scores, dtype=float)\n"
                  "    e = np.exp(s - s.max())\n    return (e / e.sum()).astype(np.float16)",
    "exercise-3": "def least_sure_query(queries, keys, sigma):\n"
                  "    largest = [al.softmax((q - keys) ** 2 / (2 * sigma**2)).max() for q in queries]\n"
                  "    return queries[np.argmin(largest)]",
    "exercise-4": "def nearest_key_lookup(query, keys, values):\n    return values[np.argmax(np.abs(keys - query))]",
    "exercise-5": "def predicted_wide_lookup():\n    return 25.0",
    "exercise-6": "def dot_product_lookup(q, K, V):\n    return al.softmax(K @ q) @ K",
    "exercise-7": "def fixed_lookup(q, K, V):\n    s = K @ q\n    return (s / s.sum()) @ V",  # the given bug kept
}
DIFFERENT = {
    "exercise-1": "def top_words(tokens, weights, k):\n"
                  "    pairs = sorted(zip(weights, tokens), reverse=True)\n"
                  "    return tuple(t for w, t in pairs if t not in ('[CLS]', '[SEP]'))[:k]",
    "exercise-2": "def my_softmax(scores):\n    s = np.asarray(scores, dtype=np.float32)\n"
                  "    e = np.exp(s - s.max())\n    return list(e / e.sum())",
    "exercise-3": "def least_sure_query(queries, keys, sigma):\n"
                  "    d = -((np.asarray(queries)[:, None] - keys) ** 2) / (2 * sigma**2)\n"
                  "    w = np.exp(d - d.max(axis=1, keepdims=True))\n"
                  "    return float(queries[(w / w.sum(axis=1, keepdims=True)).max(axis=1).argmin()])",
}
LIMITS = {  # adv9 F1: lower the grading process's hard address-space limit to just under what each answer
    # gets (every later sandbox of that nbgrader then failed to start: 0 points, unflagged), and renice it
    "exercise-1": "import os, resource\n"
                  "_low = (2**31 - 4096, 2**31 - 4096)\n"
                  "for _attack in (lambda: resource.prlimit(os.getppid(), resource.RLIMIT_AS, _low),\n"
                  "                lambda: os.setpriority(os.PRIO_PROCESS, os.getppid(), 19)):\n"
                  "    try:\n        _attack()\n    except Exception:\n        pass\n"
                  "def top_words(tokens, weights, k):\n    return tokens[:k]",
}
SUBMISSIONS = {"solved": {}, "cheats-a": CHEATS_A, "cheats-b": CHEATS_B, "mistakes": MISTAKES,
               "different": DIFFERENT, "limits": LIMITS}
EXPECTED = {  # points per grading cell (1 each) for exercises 1 to 7; unsolved scores 0 everywhere
    "solved": [1] * 7, "cheats-a": [0] * 6 + [1], "cheats-b": [1, 0, 0, 0, 1, 0, 1], "mistakes": [0] * 7,
    "different": [1] * 7, "unsolved": [0] * 7, "copies": [1] * 7, "html": [1] * 7, "runall": [1] * 7,
    "limits": [0] + [1] * 6}
HOSTILE_MARKDOWN = (
    "Without the scale the softmax saturates.\n\n"
    "<img src=\"x\" style=\"display:none\" onerror=\"document.title='XSS ran in '+location.origin\">\n\n"
    "<script>alert('in the formgrader')</script>\n\n"
    "[see my working](javascript:alert(document.cookie)) and x < y, `a<b`\n\n"
    "> [q]: javascript:alert('quote')\n\n- [l]: javascript:alert('list')\n\n1. [n]: javascript:alert('numbered')\n\n"
    "[d]:\n  javascript:alert('next line')\n\n[e]: data:text/html,x\n\n"
    "See [one][q], [two][l], [three][n], [four][d] and [five][e].\n")  # adv14 F4: definitions anywhere


def submit_copies(course: Path, solutions: dict[str, str]) -> None:
    """adv9 F2: a solved notebook in which the student copy-pasted cells (metadata and all): a copy of the
    released Exercise 3 stub left below the solved cell, a wrong first try of Exercise 6 above the right one,
    and Exercise 2's check cell twice.  nbgrader's DeduplicateIds made the whole notebook NOT GRADED."""
    submit(course, "copies", solutions)
    path = course / "submitted" / "copies" / ASSIGNMENT / LAB.name
    nb = nbformat.read(path, as_version=4)
    released = {c.metadata["nbgrader"]["grade_id"]: c for c in
                nbformat.read(course / "release" / ASSIGNMENT / LAB.name, as_version=4).cells
                if "nbgrader" in c.metadata}
    cells = []
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id == "exercise-6":
            wrong = nbformat.from_dict(json.loads(json.dumps(cell)))
            wrong.source = "def dot_product_lookup(q, K, V):\n    return al.softmax(K @ q) @ K"
            cells.append(wrong)
        cells.append(cell)
        if grade_id == "exercise-3":
            cells.append(nbformat.from_dict(json.loads(json.dumps(released["exercise-3"]))))
        if grade_id == "exercise-2-check":
            cells.append(nbformat.from_dict(json.loads(json.dumps(cell))))
    nb.cells = cells
    nbformat.write(nb, path)


def submit_run_all(course: Path, solutions: dict[str, str]) -> None:
    """adv10 F2: a solved notebook whose answers sit in copies of their cells, as Run All leaves them in force:
    Exercise 1's cell copied below its check and turned into a try-out line, Exercise 2's copied and turned
    into a markdown note, Exercise 3's split (JupyterLab's Split cell) with a try-out line in the lower half,
    Exercise 4's split at a helper's def.  The last changed copy alone lost each of these points."""
    submit(course, "runall", solutions)
    path = course / "submitted" / "runall" / ASSIGNMENT / LAB.name
    nb = nbformat.read(path, as_version=4)

    def copy(cell, source, cell_type="code"):
        new = nbformat.from_dict(json.loads(json.dumps(cell)))
        new.source, new.id = source, nbformat.v4.new_code_cell().id
        return nbformat.v4.new_markdown_cell(source, metadata=new.metadata) if cell_type == "markdown" else new

    answers = {c.metadata["nbgrader"]["grade_id"]: c for c in nb.cells
               if c.metadata.get("nbgrader", {}).get("solution") and c.cell_type == "code"}
    cells = []
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id == "exercise-4":
            cells.append(copy(cell, "def distances(query, keys):\n    return np.abs(keys - query)\n"))
            cell.source = ("def nearest_key_lookup(query, keys, values):\n"
                           "    return values[np.argmin(distances(query, keys))]\n")
        cells.append(cell)
        if grade_id == "exercise-1-check":
            cells.append(copy(answers["exercise-1"], "top_words(['[CLS]', 'the', 'cat', 'sat', "
                              "'[SEP]'], np.array([0.3, 0.1, 0.4, 0.15, 0.05]), 2)"))
        if grade_id == "exercise-2":
            cells.append(copy(cell, "My notes: subtract the max first.\n\n" + cell.source, "markdown"))
        if grade_id == "exercise-3":
            cells.append(copy(cell, "least_sure_query(np.linspace(-1, 12, 131), keys, 1.0)"))
    nb.cells = cells
    nbformat.write(nb, path)


def submit_html(course: Path, solutions: dict[str, str]) -> None:
    """adv9 F4: raw HTML (an <img onerror>, a <script>) and a javascript: link in the open question's answer,
    and in a prose cell the student edited."""
    submit(course, "html", solutions)
    path = course / "submitted" / "html" / ASSIGNMENT / LAB.name
    nb = nbformat.read(path, as_version=4)
    prose = next(c for c in nb.cells if c.cell_type == "markdown" and "nbgrader" not in c.metadata)
    prose.source += "\n\n<img src=x onerror=alert(2)>"
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == "open-question-1":
            cell.source = HOSTILE_MARKDOWN
    nbformat.write(nb, path)


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    """Lab 1 exported, generated, released, submitted by six students, graded two at a time."""
    course = generated_course(tmp_path_factory.mktemp("course"))
    text = (course / "release" / ASSIGNMENT / LAB.name).read_text()
    assert "BEGIN SOLUTION" not in text and "HIDDEN TESTS" not in text and "hidden inputs" not in text
    solutions = _solutions(course / "source" / ASSIGNMENT / LAB.name)
    for name, answers in SUBMISSIONS.items():
        submit(course, name, {**solutions, **answers})
    submit(course, "unsolved", {})
    submit_copies(course, solutions)
    submit_run_all(course, solutions)
    submit_html(course, solutions)
    started = time.perf_counter()
    report = classroom.grade_class(course, ASSIGNMENT, jobs=2, echo=lambda line: None, time_limit=3.0)
    report["wall"] = time.perf_counter() - started
    return {"course": course, "report": report}


@pytest.mark.parametrize("name", list(EXPECTED))
def test_each_student_gets_exactly_their_grades(course, name):
    scores = course["report"]["students"][name]["scores"][ASSIGNMENT]
    got = [scores[f"exercise-{n}-check"] for n in range(1, 8)]
    assert got == EXPECTED[name], (name, got)


def test_the_gradebook_holds_the_external_verdicts(course):
    """SaveAutoGrades read what ExternalGrade wrote: an error output for each lost point, with its diagnosis."""
    graded = nbformat.read(course["course"] / "autograded" / "mistakes" / ASSIGNMENT / LAB.name, as_version=4)
    errors = [o for c in graded.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert len(errors) == 7 and all(o["ename"] == "Graded outside your notebook" for o in errors)
    text = " ".join(o["evalue"] for o in errors)
    assert "smallest weights" in text and "sign of the scores is flipped" in text and "without exp" in text


def test_feedback_shows_the_diagnosis_and_no_hidden_tests(course):
    root = course["course"]
    done = classroom.nbgrader(root, "generate_feedback", ASSIGNMENT, "--student=mistakes", "--force")
    assert done.returncode == 0, done.stdout + done.stderr
    html = next((root / "feedback" / "mistakes" / ASSIGNMENT).glob("*.html")).read_text()
    assert "sign of the scores is flipped" in html
    for leak in ("HIDDEN TESTS", "hidden inputs", "default_rng(15", "assert_passed"):
        assert leak not in html, leak
    graded = nbformat.read(root / "autograded" / "mistakes" / ASSIGNMENT / LAB.name, as_version=4)
    for cell in graded.cells:
        kinds = [o["output_type"] for o in cell.get("outputs", [])]
        if cell.metadata.get("nbgrader", {}).get("grade") and cell.cell_type == "code":
            # the notebook was not run by the grader: the grader's verdict, with its diagnosis, is the output
            assert kinds == ["error"], kinds


def test_copy_pasted_cells_do_not_stop_a_solved_notebook_from_being_graded(course):
    """adv9 F2: the copies scored full marks (the solved copy of Exercise 3 over the untouched stub below it,
    the later, right Exercise 6 over the wrong try above it), and the copies lost their nbgrader metadata."""
    assert not course["report"]["students"]["copies"].get("failed"), course["report"]["students"]["copies"]
    graded = nbformat.read(course["course"] / "autograded" / "copies" / ASSIGNMENT / LAB.name, as_version=4)
    ids = [c.metadata.get("nbgrader", {}).get("grade_id") for c in graded.cells]
    assert ids.count("exercise-3") == ids.count("exercise-6") == ids.count("exercise-2-check") == 1
    told = " ".join(" ".join(o.get("text", "").split()) for c in graded.cells for o in c.get("outputs", []))
    assert "had 2 cells for Exercise 3" in told and "had 2 cells for Exercise 6" in told, told


def test_raw_html_in_a_students_markdown_never_reaches_the_manual_grading_page(course):
    """adv9 F4: the formgrader renders the autograded notebook with its 'formgrade' template, markdown as raw
    HTML; the student's <img onerror>, <script> and javascript: link must arrive as text."""
    from nbconvert.exporters import HTMLExporter
    from nbgrader.server_extensions.formgrader import handlers
    from traitlets.config import Config

    config = Config()
    config.HTMLExporter.template_name = "formgrade"
    config.HTMLExporter.extra_template_basedirs = [handlers.template_path]
    resources = {"assignment_id": ASSIGNMENT, "notebook_id": LAB.stem, "submission_id": "x", "index": 0,
                 "total": 1, "base_url": "", "student": "html", "last_name": "", "first_name": "",
                 "notebook_path": "x"}
    path = course["course"] / "autograded" / "html" / ASSIGNMENT / LAB.name
    html, _ = HTMLExporter(config=config).from_filename(str(path), resources=resources)
    assert "XSS ran in" in html and "in the formgrader" in html, "the answer is still shown, as text"
    for live in ("<img src=\"x\"", "<img src=x", "<script>alert", "href=\"javascript:", "href=\"data:"):
        assert live not in html, live
    assert "&lt;img src=\"x\"" in html and "&lt;script&gt;alert" in html, "shown as text"
    assert "<details>" in html or "<summary>" in html, "the lab's own HTML (unchanged cells) stays HTML"


def test_the_released_notebook_runs_to_the_end(course):
    from nbclient import NotebookClient

    nb = nbformat.read(course["course"] / "release" / ASSIGNMENT / LAB.name, as_version=4)
    NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(LAB.parent)}}).execute()
    shown = json.dumps([c.get("outputs", []) for c in nb.cells])
    assert "not implemented yet" in shown


def test_a_class_is_graded_in_parallel(course):
    """Two submissions at a time, every one graded once (the speed-up is benchmarks/grading.py's to show:
    a timed assert would fail on a loaded machine)."""
    report = course["report"]
    n = len(report["students"])
    alone = sum(s["seconds"] for s in report["students"].values())
    print(f"classroom: {n} submissions of Lab 1 in {report['wall']:.1f} s with 2 at once "
          f"({alone:.1f} s of autograde runs, {report['wall'] / n:.1f} s per submission)")
    assert report["jobs"] == 2 and n >= 2 and all(s["seconds"] > 0 for s in report["students"].values())


def test_the_course_config_is_plain_python(tmp_path):
    nbgrader_export.export([LAB], tmp_path / "course")
    config = (tmp_path / "course" / "nbgrader_config.py").read_text()
    compile(config, "nbgrader_config.py", "exec")
    assert 'course_id = "attention-interactively"' in config and "ExternalGrade" in config
    steps = next(line for line in config.splitlines() if line.startswith("c.Autograde.autograde_preprocessors"))
    assert "Execute" not in steps, "the exported course never runs a submission in a kernel"
