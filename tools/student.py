"""Student versions of the labs: every solution replaced by a stub that raises NotImplementedError.

Usage: python tools/student.py [--out notebooks/student] [notebooks/NN-name.ipynb ...]
(no notebook: every lab in notebooks/; ``make student``).  Stops with the list of problems if a
lab breaks the exercise convention below.  The student versions are committed in
notebooks/student/ (the labs' launch buttons open them); tests/test_student.py fails when they
are not what this writes.

The exercise convention (every lab has at least three exercises):

1. a markdown cell starting ``### Exercise N: <title>`` states the task;
2. the next code cell, tagged ``solution`` and ``hide-input``, defines a function; the
   learner's part of its body sits between ``### BEGIN SOLUTION`` and ``### END SOLUTION``,
   and its first line is ``# Hint: <one-line hint>``;
3. the next code cell, tagged ``check``, ends with a call to a check from
   ``attnlib.checks`` that receives the learner's function (or a lambda calling it).

Between the statement and the solution cell the labs put a markdown cell of tiered hints,
each in a collapsed ``<details>`` (a nudge, the formula, the code); the ``# Hint:`` line is
the nudge.  A check cell imports its checks in its first line; it is a self-check for
practice.  Grades come from the grader in ``attnlib/grading`` (hidden inputs drawn there, the
answer cell run in a separate process), so no check cell holds hidden tests; a
``### BEGIN HIDDEN TESTS`` region, if one appears, is left out of the student versions.

nbgrader's ``generate_assignment`` makes the student version: it replaces each region by its
``raise NotImplementedError()`` stub, clears every output and puts a note on top.  This module
keeps only what nbgrader cannot do: check the convention, leave the check cells runnable on an
unsolved lab, and put each exercise's hint into its stub's message.
"""

from __future__ import annotations

import argparse
import ast
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
MIN_EXERCISES = 3
HEADING = re.compile(r"^#{1,6}\s+Exercise\s+(\d+)\s*:\s*(\S.*)$", re.MULTILINE)
BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
HINT = re.compile(r"^\s*#\s*Hint:\s*(\S.*)$")
PARENT_LINK = re.compile(r"(\]\(|src=\")\.\./")  # a Markdown link or image source into the labs' parent folder
STUDENT_NOTE = (
    "*Student version.* Each exercise's function raises `NotImplementedError` until you write "
    "your part where it says so; its check cell reports \"not implemented yet\" until then, and "
    "then tells you what is right or what is wrong."
)


@dataclass
class Exercise:
    number: int
    title: str
    heading: int  # index of the markdown cell
    solution: int | None = None  # index of the solution cell
    check: int | None = None  # index of the check cell
    function: str | None = None  # the function the learner writes
    hint: str | None = None


def _tags(cell) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def _next_code(nb, start: int) -> int | None:
    for i in range(start + 1, len(nb.cells)):
        if nb.cells[i].cell_type == "code":
            return i
        if HEADING.search(nb.cells[i].source):
            return None  # the next exercise starts before any code cell
    return None


def solution_region(source: str) -> tuple[int, int] | None:
    """Line numbers (0-based) of the BEGIN and END markers, or None."""
    lines = source.splitlines()
    begins = [i for i, line in enumerate(lines) if line.strip() == BEGIN]
    ends = [i for i, line in enumerate(lines) if line.strip() == END]
    if len(begins) != 1 or len(ends) != 1 or ends[0] <= begins[0]:
        return None
    return begins[0], ends[0]


def _solution_problems(source: str) -> tuple[list[str], str | None, str | None]:
    """Problems of one solution cell, the function it defines, and its hint."""
    problems: list[str] = []
    region = solution_region(source)
    if region is None:
        return [f"needs exactly one '{BEGIN}' line followed by one '{END}' line"], None, None
    begin, end = region
    lines = source.splitlines()
    hint_match = HINT.match(lines[begin + 1]) if begin + 1 < end else None
    hint = hint_match.group(1).strip() if hint_match else None
    if hint is None:
        problems.append(f"the first line after '{BEGIN}' must be '# Hint: <one-line hint>'")
    try:
        tree = ast.parse(source)
    except SyntaxError as err:
        return [*problems, f"is not valid Python: {err}"], None, hint
    function = None
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.lineno - 1 < begin and end < node.end_lineno + 1:
            function = node.name
    if function is None:
        problems.append("the solution region must sit inside the body of a function defined in the cell")
    else:
        indent = lines[begin][: len(lines[begin]) - len(lines[begin].lstrip())]
        if not indent:
            problems.append(f"'{BEGIN}' must be indented inside the function body")
        try:
            ast.parse(_stubbed(source, begin, end))
        except SyntaxError as err:
            problems.append(f"its student version is not valid Python: {err}")
    return problems, function, hint


def _stubbed(source: str, begin: int, end: int) -> str:
    """The source with lines ``begin..end`` replaced by a stub, as nbgrader's ClearSolutions does."""
    lines = source.splitlines()
    indent = lines[begin][: len(lines[begin]) - len(lines[begin].lstrip())]
    return "\n".join([*lines[:begin], f"{indent}raise NotImplementedError()", *lines[end + 1:]])


def _check_problems(source: str, function: str | None) -> list[str]:
    try:
        tree = ast.parse(source)
    except SyntaxError as err:
        return [f"is not valid Python: {err}"]
    if not tree.body or not isinstance(tree.body[-1], ast.Expr) or not isinstance(tree.body[-1].value, ast.Call):
        return ["must end with a call to a check (e.g. check_value(...)) as its last expression"]
    call = tree.body[-1].value
    callee = call.func.attr if isinstance(call.func, ast.Attribute) else getattr(call.func, "id", "")
    if not callee.startswith("check_"):
        return [f"must end with a call to a check from attnlib.checks, not {callee or 'this expression'}"]
    if function is None:
        return []
    names = {n.id for n in ast.walk(call) if isinstance(n, ast.Name)}
    if function not in names:
        return [f"its check must receive the learner's function {function} (or a lambda calling it)"]
    for arg in [*call.args, *(k.value for k in call.keywords)]:
        if isinstance(arg, ast.Call) and getattr(arg.func, "id", None) == function:
            return [f"passes the result of {function}(...) to the check; pass the function "
                    "(or a lambda), so that an unsolved exercise reports 'not implemented yet'"]
    return []


def exercises(nb) -> list[Exercise]:
    """The exercises of a lab, in order, with the cells that make each one."""
    found = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "markdown":
            continue
        for match in HEADING.finditer(cell.source):
            ex = Exercise(int(match.group(1)), match.group(2).strip(), i)
            ex.solution = _next_code(nb, i)
            ex.check = None if ex.solution is None else _next_code(nb, ex.solution)
            if ex.solution is not None:
                _, ex.function, ex.hint = _solution_problems(nb.cells[ex.solution].source)
            found.append(ex)
    return found


def convention_problems(nb) -> list[str]:
    """Every way a lab breaks the exercise convention (an empty list when it follows it)."""
    problems = []
    found = exercises(nb)
    if len(found) < MIN_EXERCISES:
        problems.append(f"has {len(found)} exercise(s) ('### Exercise N: <title>' cells); "
                        f"every lab needs at least {MIN_EXERCISES}")
    numbers = [ex.number for ex in found]
    if numbers != list(range(1, len(found) + 1)):
        problems.append(f"exercises should be numbered 1, 2, 3, ... in order; found {numbers}")
    used = set()
    for ex in found:
        where = f"Exercise {ex.number}"
        if ex.solution is None:
            problems.append(f"{where}: no code cell follows its heading")
            continue
        used.add(ex.solution)
        cell = nb.cells[ex.solution]
        missing = [t for t in ("solution", "hide-input") if t not in _tags(cell)]
        if missing:
            problems.append(f"{where}: the solution cell (cell {ex.solution}) lacks the tag(s) {missing}")
        cell_problems, _, _ = _solution_problems(cell.source)
        problems += [f"{where}: the solution cell (cell {ex.solution}) {p}" for p in cell_problems]
        if ex.check is None:
            problems.append(f"{where}: no check cell follows its solution cell")
            continue
        used.add(ex.check)
        check = nb.cells[ex.check]
        if "check" not in _tags(check):
            problems.append(f"{where}: the cell after the solution (cell {ex.check}) lacks the tag 'check'")
        problems += [f"{where}: the check cell (cell {ex.check}) {p}"
                     for p in _check_problems(check.source, ex.function)]
    for i, cell in enumerate(nb.cells):
        if i in used:
            continue
        if "solution" in _tags(cell) or "check" in _tags(cell):
            problems.append(f"cell {i} is tagged {_tags(cell)} but does not belong to an exercise")
        if cell.cell_type == "code" and BEGIN in cell.source:
            problems.append(f"cell {i} has a solution region but does not belong to an exercise")
    return problems


def stub_with_hint(source: str, hint: str | None) -> str:
    """Put the exercise's hint into nbgrader's ``raise NotImplementedError()`` stub.

    nbgrader has one stub for every cell; the learner's check reports the exception's message,
    so each exercise's own hint goes there.
    """
    message = f"Hint: {hint}" if hint else "write your code here"
    return source.replace("raise NotImplementedError()", f"raise NotImplementedError({message!r})", 1)


def _nbgrader(course: Path, *args: str) -> None:
    """Run the nbgrader command line in ``course``, ignoring the user's own Jupyter configuration."""
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
           "JUPYTER_CONFIG_DIR": str(course / ".jupyter")}
    done = subprocess.run([str(bin_dir / "nbgrader"), *args, f"--CourseDirectory.root={course}"],
                          cwd=course, env=env, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"nbgrader {args[0]} failed:\n{done.stdout}{done.stderr}")


def student_versions(nbs: dict[str, nbformat.NotebookNode]) -> dict[str, nbformat.NotebookNode]:
    """Student versions of labs (name -> notebook), made by nbgrader's ``generate_assignment``.

    nbgrader clears the solution regions and the outputs and puts the note on top (its header);
    this adds what it cannot: the check cells stay plain (no assertion, so that an unsolved lab
    runs to the end) and each stub raises with its exercise's hint.
    """
    import nbgrader_export  # tools/nbgrader_export.py (it imports this module)

    problems = [f"{name}: " + "\n  ".join(p) for name, nb in nbs.items() if (p := convention_problems(nb))]
    if problems:
        raise ValueError("the lab breaks the exercise convention:\n  " + "\n".join(problems))
    with tempfile.TemporaryDirectory() as tmp:
        course = Path(tmp)
        (course / "source" / "student").mkdir(parents=True)
        header = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(STUDENT_NOTE)])
        nbformat.write(header, course / "header.ipynb")
        for name, nb in nbs.items():
            nbformat.write(nbgrader_export.nbgrader_version(nb, graded_checks=False),
                           course / "source" / "student" / name)
        _nbgrader(course, "generate_assignment", "student", "--no-db", "--force",
                  "--IncludeHeaderFooter.header=header.ipynb",
                  "--ClearHiddenTests.enforce_metadata=False",  # the check cells' hidden tests go, ungraded
                  *(f"--ClearOutput.remove_metadata_fields={field}"  # run timings too: sources only
                    for field in ("collapsed", "scrolled", "execution")))
        released = {name: nbformat.read(course / "release" / "student" / name, as_version=4) for name in nbs}
    for name, nb in released.items():
        for ex in exercises(nbs[name]):
            cell = nb.cells[ex.solution + 1]  # nbgrader's header adds one cell on top
            cell.source = stub_with_hint(cell.source, ex.hint)
            cell.metadata.pop("mystnb", None)  # the site's "Show the solution" prompt: no solution here
        for cell in nb.cells:
            cell.pop("id", None)
            if cell.cell_type == "markdown":  # the student versions sit one folder deeper
                cell.source = PARENT_LINK.sub(r"\1../../", cell.source)
        nb.nbformat_minor = 4
    return released


def student_version(nb):
    """The student version of one lab (see :func:`student_versions`)."""
    return student_versions({"lab.ipynb": nb})["lab.ipynb"]


def labs(paths=None) -> list[Path]:
    return [Path(p) for p in paths] if paths else sorted((ROOT / "notebooks").glob("*.ipynb"))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", help="labs (default: every notebook in notebooks/)")
    parser.add_argument("--out", default=str(ROOT / "notebooks" / "student"), help="output folder")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    paths = labs(args.notebooks)
    try:
        written = student_versions({p.name: nbformat.read(p, as_version=4) for p in paths})
    except ValueError as err:
        print(err, file=sys.stderr)
        return 1
    for name, nb in written.items():
        nbformat.write(nb, out / name)
        print(f"{out / name}: {sum('nbgrader' in c.metadata and c.cell_type == 'code' for c in nb.cells)} exercises")
    return 0


if __name__ == "__main__":
    sys.exit(main())
