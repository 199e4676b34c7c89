"""Grade a lab's answers outside the learner's kernel.

:func:`grade_source` grades one exercise from its answer cell's source: the cell runs in a fresh
:class:`~attnlib.grading.sandbox.Sandbox` (numpy and the exercise's given helpers only), and the
exercise's grading function of :mod:`attnlib.grading.catalogue` compares what comes back with the
reference computed here.  :func:`grade_notebook` does it for every answer cell of a submitted
notebook, found by nbgrader's ``grade_id`` (``exercise-N``) or, in a plain lab, by the exercise
convention of ``tools/student.py``.
"""

from __future__ import annotations

import os
import re

import numpy as np

from attnlib.checks import CheckResult, failed
from attnlib.grading import catalogue
from attnlib.grading.sandbox import MEMORY_LIMIT, THREADS, TIME_LIMIT, GraderFault, Sandbox

ANSWER_ID = re.compile(r"^exercise-(\d+)$")
LAB_NAME = re.compile(r"(0[1-7])-[\w-]+")


def lab_of(name: str) -> str | None:
    """``"03-how-attention-works.ipynb"`` -> ``"03"`` (None when the name is not a lab's)."""
    match = LAB_NAME.search(os.path.basename(str(name)))
    return match.group(1) if match and match.group(1) in catalogue.LABS else None


def fresh_rng() -> np.random.Generator:
    """Hidden inputs come from fresh entropy at every grading run: no seed to find anywhere."""
    return np.random.default_rng()


def grade_source(lab: str, number: int, source: str, *, rng=None, time_limit: float = TIME_LIMIT) -> CheckResult:
    """The verdict on one answer cell's ``source`` for exercise ``number`` of lab ``lab``."""
    ex = catalogue.EXERCISES.get((lab, int(number)))
    name = catalogue.exercise_name(number)
    if ex is None:
        return failed(name, f"the grader knows no exercise {number} in lab {lab}.")
    rng = fresh_rng() if rng is None else rng
    data = ex.make_data(rng)
    try:  # a grader must report, never crash on an answer, whatever the answer's process sends
        with Sandbox(source, ex.function, helpers=ex.helpers, data=data, serve=ex.served(),
                     time_limit=time_limit, plain=ex.plain) as sandbox:
            if sandbox.problem is not None and not sandbox.problem.startswith("not implemented"):
                return failed(name, sandbox.problem)
            def threads():  # refused by the child's filter; said plainly, and this exercise scores 0 (adv13 F1)
                return failed(name, f"{THREADS} (your answer cell tried to start one). Write {ex.function} "
                              "without threads: it runs alone on one core while the class is graded.")
            if sandbox.threads:  # at once, when the cell's own lines tried: no call of the function is needed
                return threads()
            result = ex.grade(sandbox.function(), rng, data)
            if sandbox.threads:
                return threads()
            if sandbox.cell_error and sandbox.cell_stopped and isinstance(result, CheckResult):
                result = CheckResult(result.name, result.passed, (
                    f"{result.message} (Your answer cell raised {sandbox.cell_error} outside {ex.function}. A cell "
                    f"stops at its first error, in Jupyter and here: the rest of that cell did not run, so the grader "
                    f"graded {ex.function} as your notebook has it, as that line left it.)"))
            elif sandbox.cell_error and isinstance(result, CheckResult):
                result = CheckResult(result.name, result.passed, (
                    f"{result.message} (Your answer cell also raised {sandbox.cell_error} outside {ex.function}; "
                    f"the grader graded {ex.function} all the same. Try your function out in a cell of its own: "
                    f"the grader runs the answer cell alone, without the lab's other variables.)"))
    except GraderFault:  # the grading machine's fault, never the student's 0 (adv9 F1): stops this notebook
        raise
    except Exception as err:
        result = failed(name, f"the grader could not handle your answer ({type(err).__name__}: {str(err)[:300]}).")
    if not isinstance(result, CheckResult):
        return failed(name, "the grader could not judge your answer.")
    return _memory_explained(_earlier_function_named(ex, result))


def _earlier_function_named(ex, result: CheckResult) -> CheckResult:
    """A NameError for another exercise's function of the same lab, explained (adv11 F3): the grader runs
    the cell alone, and serves an earlier function only where that gives no exercise its own answer."""
    match = None if result.passed else re.search(r"NameError: name '(\w+)' is not defined", result.message)
    if match is None:
        return result
    other = [e for e in catalogue.EXERCISES.values() if e.lab == ex.lab and e.function == match.group(1)]
    if not other and not ex.plain and "the grader runs" not in result.message:  # a lab variable (adv15 F8)
        offered = ["numpy (np)", "math", *sorted(ex.helpers), *_data_names(ex)]
        return CheckResult(result.name, False, (
            f"{result.message} (The grader runs this answer cell alone, with {', '.join(offered)} only: "
            f"{match.group(1)} is not among them. Define it in this cell or compute it from the arguments.)"))
    if not other or other[0].number == ex.number:
        return result
    given = sorted(f"al.{n}" for n in ex.helpers.get("al", {})) if isinstance(ex.helpers.get("al"), dict) else []
    use = f" or use {', '.join(given)}" if given else ""
    return CheckResult(result.name, False, (
        f"{result.message} (The grader runs this answer cell alone: {match.group(1)} is your answer to "
        f"exercise {other[0].number}, in another cell. Define what you need in this cell{use}.)"))


_DATA_NAMES: dict = {}


def _data_names(ex) -> list[str]:
    """The names of the lab variables an exercise's answer is given (the data is made once, for its keys)."""
    if ex.key not in _DATA_NAMES:
        _DATA_NAMES[ex.key] = sorted(ex.make_data(np.random.default_rng(0)))
    return _DATA_NAMES[ex.key]


def _memory_explained(result: CheckResult) -> CheckResult:
    """A MemoryError in the answer's process, told what it means (adv15 F7)."""
    if result.passed or "MemoryError" not in result.message:
        return result
    return CheckResult(result.name, False, (
        f"{result.message} (The grader runs your answer with {MEMORY_LIMIT // 1024**3} GB of memory. If you built "
        "an array only to read its size, compute the size from the shape instead.)"))


def answer_cells(nb) -> dict[int, str]:
    """Exercise number -> answer-cell source, from nbgrader's metadata or the labs' convention."""
    found = {}
    for cell in nb.cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        match = ANSWER_ID.match(str(meta.get("grade_id", "")))
        if cell.get("cell_type") == "code" and meta.get("solution") and match:
            found[int(match.group(1))] = cell.source
    if found:
        return found
    import sys
    from pathlib import Path

    tools = Path(__file__).resolve().parents[2] / "tools"
    if str(tools) not in sys.path:
        sys.path.insert(0, str(tools))
    import student  # tools/student.py

    return {ex.number: nb.cells[ex.solution].source for ex in student.exercises(nb) if ex.solution is not None}


def grade_notebook(nb, lab: str, *, rng=None, only=None) -> dict[int, CheckResult]:
    """Every graded exercise of a submitted notebook: number -> verdict (an exercise with no answer cell fails)."""
    sources = answer_cells(nb)
    results = {}
    for (ex_lab, number) in sorted(catalogue.EXERCISES):
        if ex_lab != lab or (only is not None and number not in only):
            continue
        source = sources.get(number)
        if source is None:
            results[number] = failed(catalogue.exercise_name(number), "no answer cell for this exercise was found.")
            continue
        results[number] = grade_source(lab, number, source, rng=rng)
    return results
