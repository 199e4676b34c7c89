"""Export the labs as an nbgrader course source, so that instructors can assign and autograde them.

Usage: python tools/nbgrader_export.py [--out _build/nbgrader] [--points 1] [notebooks/NN-name.ipynb ...]
(no notebook: every lab in notebooks/ that follows the exercise convention; see tools/student.py).

Writes ``<out>/nbgrader_config.py`` and ``<out>/source/<lab>/<lab>.ipynb``, one assignment per lab:

- each solution cell becomes an nbgrader *autograded answer* cell (``solution: true``); its
  ``# Hint:`` line moves above ``### BEGIN SOLUTION`` so that students keep it, and nbgrader
  replaces the region with its own ``raise NotImplementedError()`` stub;
- each check cell becomes a locked *autograded test* cell worth ``--points`` points: it imports
  the checks it uses in that cell (an answer cell cannot replace them) and wraps the check in
  ``assert_passed(...)``, which raises ``AssertionError`` with the whole diagnosis on failure and
  shows the result without returning it on success (nbgrader reads no score from the output).

Then, from ``<out>``: ``nbgrader generate_assignment <lab>``, release, collect, and
``nbgrader autograde <lab>`` (see the instructor guide).
"""

from __future__ import annotations

import argparse
import ast
import copy
import sys
from pathlib import Path

import nbformat
import student  # noqa: E402  (tools/student.py: the exercise convention)

import attnlib.checks

ROOT = Path(__file__).resolve().parent.parent
SCHEMA_VERSION = 3
CONFIG = '''\
"""nbgrader configuration for the labs of "Attention, interactively" (written by tools/nbgrader_export.py).

Run nbgrader from this folder: nbgrader generate_assignment <lab>, nbgrader autograde <lab>, ...
"""

c = get_config()  # noqa: F821 (nbgrader provides it)
c.CourseDirectory.course_id = "attention-interactively"
c.ExecutePreprocessor.timeout = 300  # seconds per cell; the labs run in well under a minute
'''
CHECK_NAMES = frozenset(attnlib.checks.__all__)
PROTECTED = "# imported here, so that no answer cell can replace them"
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
    """The check cell as a grading cell: the checks imported right there, the check wrapped in ``assert_passed``.

    Importing in the grading cell means that no answer cell (they run before) can replace
    a check by its own function.  ``assert_passed`` raises ``AssertionError`` with the whole
    diagnosis, wrapped to short lines (``nbgrader validate`` cuts long ones), and on success
    displays the result without making it the cell's value, so nbgrader reads no score from it.
    """
    tree = ast.parse(source)
    last = tree.body[-1]
    lines = source.splitlines()
    before = lines[: last.lineno - 1]
    expression = ast.get_source_segment(source, last.value)
    used = sorted({node.id for node in ast.walk(tree) if isinstance(node, ast.Name) and node.id in CHECK_NAMES})
    imports = f"from attnlib.checks import {', '.join(['assert_passed', *used])}  {PROTECTED}"
    return "\n".join([imports, *before, f"assert_passed({expression})"])


def nbgrader_version(nb, points: float = 1, graded_checks: bool = True):
    """The lab with nbgrader's cell metadata on its exercises (raises ValueError if it breaks the convention).

    With ``graded_checks=False`` only the answer cells are marked and the check cells stay as they
    are, so that an unsolved notebook still runs to the end (the published student versions).
    """
    problems = student.convention_problems(nb)
    if problems:
        raise ValueError("the lab breaks the exercise convention:\n  " + "\n  ".join(problems))
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
        try:
            graded = nbgrader_version(nb, points)
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
