"""Student versions of the labs: every solution replaced by a stub that raises NotImplementedError.

Usage: python tools/student.py [--out _build/student] [notebooks/NN-name.ipynb ...]
(no notebook: every lab in notebooks/).  Stops with the list of problems if a lab breaks
the exercise convention below.

The exercise convention (every lab has at least three exercises):

1. a markdown cell starting ``### Exercise N: <title>`` states the task;
2. the next code cell, tagged ``solution`` and ``hide-input``, defines a function; the
   learner's part of its body sits between ``### BEGIN SOLUTION`` and ``### END SOLUTION``,
   and its first line is ``# Hint: <one-line hint>``;
3. the next code cell, tagged ``check``, ends with a call to a check from
   ``attnlib.checks`` that receives the learner's function (or a lambda calling it).

The student version replaces each region by ``raise NotImplementedError("Hint: ...")``,
shows the solution cells (no ``hide-input``) and clears every output.
"""

from __future__ import annotations

import argparse
import ast
import copy
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
MIN_EXERCISES = 3
HEADING = re.compile(r"^#{1,6}\s+Exercise\s+(\d+)\s*:\s*(\S.*)$", re.MULTILINE)
BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
HINT = re.compile(r"^\s*#\s*Hint:\s*(\S.*)$")
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
            ast.parse(student_source(source))
        except SyntaxError as err:
            problems.append(f"its student version is not valid Python: {err}")
    return problems, function, hint


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


def student_source(source: str) -> str:
    """The solution cell's source with its region replaced by a NotImplementedError stub."""
    begin, end = solution_region(source)
    lines = source.splitlines()
    indent = lines[begin][: len(lines[begin]) - len(lines[begin].lstrip())]
    match = HINT.match(lines[begin + 1]) if begin + 1 < end else None
    hint = f"Hint: {match.group(1).strip()}" if match else "write your code here"
    stub = [f"{indent}# Your code here: replace the line below.", f"{indent}raise NotImplementedError({hint!r})"]
    return "\n".join(lines[:begin] + stub + lines[end + 1:])


def student_version(nb):
    """A copy of the lab for learners: no solutions, solution cells shown, no outputs."""
    problems = convention_problems(nb)
    if problems:
        raise ValueError("the lab breaks the exercise convention:\n  " + "\n  ".join(problems))
    nb = copy.deepcopy(nb)
    for ex in exercises(nb):
        cell = nb.cells[ex.solution]
        cell.source = student_source(cell.source)
        cell.metadata["tags"] = [t for t in _tags(cell) if t != "hide-input"]
        cell.metadata.get("jupyter", {}).pop("source_hidden", None)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    nb.metadata.pop("widgets", None)
    first_md = next((i for i, c in enumerate(nb.cells) if c.cell_type == "markdown"), -1)
    nb.cells.insert(first_md + 1, nbformat.v4.new_markdown_cell(STUDENT_NOTE))
    for cell in nb.cells:
        cell.pop("id", None)
    nb.nbformat_minor = 4
    return nb


def labs(paths=None) -> list[Path]:
    return [Path(p) for p in paths] if paths else sorted((ROOT / "notebooks").glob("*.ipynb"))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", help="labs (default: every notebook in notebooks/)")
    parser.add_argument("--out", default=str(ROOT / "_build" / "student"), help="output folder")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    failures = 0
    for path in labs(args.notebooks):
        nb = nbformat.read(path, as_version=4)
        try:
            student = student_version(nb)
        except ValueError as err:
            print(f"{path.name}: {err}", file=sys.stderr)
            failures += 1
            continue
        nbformat.write(student, out / path.name)
        print(f"{out / path.name}: {len(exercises(nb))} exercises")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
