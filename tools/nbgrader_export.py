"""Export the labs as an nbgrader course source, so that instructors can assign and autograde them.

Usage: python tools/nbgrader_export.py [--out _build/nbgrader] [--points 1] [notebooks/NN-name.ipynb ...]
(no notebook: every lab in notebooks/ that follows the exercise convention; see tools/student.py).

Writes ``<out>/nbgrader_config.py`` and ``<out>/source/<lab>/<lab>.ipynb``, one assignment per lab:

- each solution cell becomes an nbgrader *autograded answer* cell (``solution: true``); its
  ``# Hint:`` line moves above ``### BEGIN SOLUTION`` so that students keep it, and nbgrader
  replaces the region with its own ``raise NotImplementedError()`` stub;
- each check cell becomes a locked *autograded test* cell worth ``--points`` points.  It stays the
  plain self-check the Binder version has (it shows its diagnosis and never raises, so the released
  notebook runs to the end on Run All): its outcome in the kernel is not the grade.

The configuration replaces nbgrader's Execute step by our own autograde step,
:class:`attnlib.grading.nbgrader_step.ExternalGrade`, before SaveAutoGrades (the submitted notebook never
runs in a kernel): it grades each answer cell's source in a fresh process
(numpy and the exercise's given helpers only, hidden inputs drawn afresh, references computed in the
grader) and sets each grading cell's outcome from that verdict.  Then, from ``<out>``:
``nbgrader generate_assignment <lab>``, release, collect, and ``nbgrader autograde <lab>`` (or
``python -m attnlib.grading.classroom`` for a whole class in parallel; see the instructor guide).
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

import nbformat
import student  # noqa: E402  (tools/student.py: the exercise convention)

from attnlib.grading import catalogue
from attnlib.grading.grader import lab_of

ROOT = Path(__file__).resolve().parent.parent
SCHEMA_VERSION = 3
CONFIG = '''\
"""nbgrader configuration for the labs of "Attention, interactively" (written by tools/nbgrader_export.py).

Run nbgrader from this folder: nbgrader generate_assignment <lab>, nbgrader autograde <lab>, ...
"""

# First, before anything is imported: nbgrader puts its working folder first on sys.path, and this
# folder must stay writable (gradebook.db, autograded/, ...), so a module someone left here would be
# imported by this process.  Remove '', '.', the working folder, and this folder and everything inside
# it from sys.path.
import os
import sys

_here = os.path.realpath(os.path.dirname(os.path.abspath(__file__)))
_cwd = os.path.realpath(os.getcwd())


def _writable_here(entry):
    path = os.path.realpath(entry) if entry not in ("", ".") else _cwd
    return entry in ("", ".") or path in (_here, _cwd) or path.startswith(_here + os.sep)


sys.path[:] = [p for p in sys.path if not _writable_here(p)]

# nbgrader reads nbgrader_config.json after this file: one here could put nbgrader's Execute step back
# (the student's notebook run in a kernel with your rights) or leave ExternalGrade out (grades from the
# outputs stored in the submission).  Refuse to run at all while one is there.
for _folder in sorted({_here, _cwd}):
    _json = os.path.join(_folder, "nbgrader_config.json")
    if os.path.lexists(_json):
        raise SystemExit(
            f"refusing to run: {_json} would override this course's nbgrader_config.py (which autograde steps run, "
            f"and whether the external grader sets the grades).  This course is configured by nbgrader_config.py "
            f"alone: look at the file, delete it, and check the grades given since it appeared.")

from nbconvert.preprocessors import ClearMetadataPreprocessor  # noqa: E402
from nbgrader.preprocessors import (AssignLatePenalties, CheckCellMetadata, ClearOutput,  # noqa: E402
                                    IgnorePattern, LimitOutput, OverwriteCells, OverwriteKernelspec,
                                    SaveAutoGrades)

from attnlib.grading.nbgrader_step import EscapeStudentMarkdown, ExternalGrade, OneCellPerGradeId  # noqa: E402

c = get_config()  # noqa: F821 (nbgrader provides it)
c.CourseDirectory.course_id = "attention-interactively"
# The grade of every exercise comes from ExternalGrade: each answer cell run on its own in a sandbox
# (a fresh process, numpy and the exercise's helpers only, seccomp and Landlock: no sockets, no
# subprocess, no writes).  nbgrader's Execute step is not in the list: the submitted notebook never runs
# in a kernel, so no student code runs with your rights.  The feedback shows the student's own outputs
# (from their run) and the grader's diagnoses.
c.Autograde.autograde_preprocessors = [IgnorePattern, ClearMetadataPreprocessor, LimitOutput, EscapeStudentMarkdown,
                                       ExternalGrade, SaveAutoGrades, AssignLatePenalties, CheckCellMetadata]
# nbgrader's default sanitize steps, with its DeduplicateIds replaced: a copy-pasted cell (same grade_id)
# made DeduplicateIds blank the copies' metadata, which CheckCellMetadata then refuses (nbgrader#1083), so a
# solved notebook went ungraded.  OneCellPerGradeId grades an answer's copies as Run All leaves them (the code
# copies the student changed, joined in notebook order), keeps a grading cell's first copy, and makes the
# other copies ordinary cells.
c.Autograde.sanitize_preprocessors = [ClearOutput, OneCellPerGradeId, OverwriteKernelspec, OverwriteCells,
                                      CheckCellMetadata]
# The formgrader's Manual Grading page and the feedback render markdown as raw HTML: EscapeStudentMarkdown
# turns the raw HTML of every markdown cell the student wrote or changed into text.
'''
SELF_CHECK = "# a self-check: your grade comes from the grader, which runs your answer cell on its own"
NBSP = "\u00a0"  # keeps nbgrader from reading a mention of the markers in prose as a solution region


def answer_metadata(grade_id: str) -> dict:
    return {"solution": True, "grade": False, "locked": False, "grade_id": grade_id,
            "schema_version": SCHEMA_VERSION}


def test_metadata(grade_id: str, points: float) -> dict:
    return {"solution": False, "grade": True, "locked": True, "points": points, "grade_id": grade_id,
            "schema_version": SCHEMA_VERSION}


def answer_source(source: str) -> str:
    """Move the ``# Hint:`` line above the region, so that the student version keeps it."""
    begin, end = student.solution_region(source)
    lines = source.splitlines()
    if begin + 1 < end and student.HINT.match(lines[begin + 1]):
        lines[begin], lines[begin + 1] = lines[begin + 1], lines[begin]
    return "\n".join(lines)


def test_source(source: str) -> str:
    """The check cell as a grading cell: the same self-check, with a first line saying where grades come from.

    The cell does not raise (so that Run All goes on past a failed check, as on Binder); the
    grade comes from :class:`attnlib.grading.nbgrader_step.ExternalGrade`, which replaces the
    cell's outcome (the notebook itself is never run by the grader).  Hidden-test regions are dropped: the
    grader's hidden inputs live in :mod:`attnlib.grading.catalogue`, never in a notebook.
    """
    lines = source.splitlines()
    kept, hidden = [], False
    for line in lines:
        if line.strip() == "### BEGIN HIDDEN TESTS":
            hidden = True
            continue
        if line.strip() == "### END HIDDEN TESTS":
            hidden = False
            continue
        if not hidden:
            kept.append(line)
    return "\n".join([SELF_CHECK, *kept])


def nbgrader_version(nb, points: float = 1, graded_checks: bool = True, lab: str | None = None):
    """The lab with nbgrader's cell metadata on its exercises (raises ValueError if it breaks the convention).

    With ``graded_checks=False`` only the answer cells are marked and the check cells stay as they
    are, so that an unsolved notebook still runs to the end (the published student versions).
    ``lab`` (``"01"`` .. ``"07"``) makes sure the grader's catalogue covers every exercise.
    """
    problems = student.convention_problems(nb)
    if problems:
        raise ValueError("the lab breaks the exercise convention:\n  " + "\n  ".join(problems))
    if graded_checks and lab is not None:
        missing = [ex.number for ex in student.exercises(nb) if (lab, ex.number) not in catalogue.EXERCISES]
        if missing:
            raise ValueError(f"the grader's catalogue (attnlib/grading/catalogue.py) has no exercise {missing} "
                             f"of lab {lab}: add them there before the lab can be graded")
    nb = copy.deepcopy(nb)
    exercise_cells = set()
    for ex in student.exercises(nb):
        answer, test = nb.cells[ex.solution], nb.cells[ex.check]
        answer.source = answer_source(answer.source)
        answer.metadata["nbgrader"] = answer_metadata(f"exercise-{ex.number}")
        answer.metadata["tags"] = [t for t in answer.metadata.get("tags", []) if t != "hide-input"]
        answer.metadata.get("jupyter", {}).pop("source_hidden", None)
        if graded_checks:
            test.source = test_source(test.source)
            test.metadata["nbgrader"] = test_metadata(f"exercise-{ex.number}-check", points)
        exercise_cells |= {ex.solution, ex.check}
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        if i not in exercise_cells:
            for marker in (student.BEGIN, student.END):
                words = marker.removeprefix("### ")
                cell.source = cell.source.replace(words, words.replace(" ", NBSP))
    nb.metadata.pop("widgets", None)
    return nb


def export(paths, out: Path, points: float = 1, assignment: str | None = None) -> list[str]:
    """Write the course source to ``out``; return the assignment names.

    One assignment per lab, named after it, or all labs in one ``assignment``.
    """
    written, failures = [], []
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        lab = lab_of(path.name)
        try:
            if lab is None:
                raise ValueError("not one of the labs the grader knows (attnlib/grading/catalogue.py LABS)")
            graded = nbgrader_version(nb, points, lab=lab)
        except ValueError as err:
            failures.append(f"{path.name}: {err}")
            continue
        folder = out / "source" / (assignment or path.stem)
        folder.mkdir(parents=True, exist_ok=True)
        nbformat.write(graded, folder / path.name)
        if (assignment or path.stem) not in written:
            written.append(assignment or path.stem)
    out.mkdir(parents=True, exist_ok=True)
    (out / "nbgrader_config.py").write_text(CONFIG)
    # jupyter_core writes this mark at its first start with this configuration folder (classroom's
    # JUPYTER_CONFIG_DIR) when ~/.ipython exists; written now, no grading run leaves a new file there.
    (out / ".jupyter").mkdir(exist_ok=True)
    migrated = out / ".jupyter" / "migrated"
    if not migrated.exists():
        migrated.write_text("written by tools/nbgrader_export.py\n")
    if failures:
        raise ValueError("\n".join(failures))
    return written


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", help="labs (default: every notebook in notebooks/)")
    parser.add_argument("--out", default=str(ROOT / "_build" / "nbgrader"), help="the course folder")
    parser.add_argument("--points", type=float, default=1, help="points per exercise")
    parser.add_argument("--assignment", help="put every lab into this one assignment (default: one per lab)")
    args = parser.parse_args(argv)
    out = Path(args.out)
    try:
        names = export(student.labs(args.notebooks), out, args.points, args.assignment)
    except ValueError as err:
        print(f"Some labs were not exported:\n{err}", file=sys.stderr)
        return 1
    print(f"{out}: nbgrader course source with {len(names)} assignments: {', '.join(names)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
