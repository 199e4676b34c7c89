"""Grade a class: every submission of a lab, several at once, no grade lost or mixed up.

Usage (from the course folder that ``tools/nbgrader_export.py`` wrote, after ``nbgrader collect``)::

    python -m attnlib.grading.classroom 03-how-attention-works --jobs 2 [--no-execute] [--students a,b]

Each submission is graded by its own ``nbgrader autograde <lab> --student <id>`` process (with the
course's configuration, so :class:`~attnlib.grading.nbgrader_step.ExternalGrade` sets the grades);
``--jobs`` of them run at once.  The gradebook is SQLite: writers wait for each other (a busy timeout
of 120 s instead of SQLite's 5), and after the run every student's scores are read back from the
gradebook and compared with the verdicts written into that student's autograded notebook: a
submission whose gradebook entry is missing or disagrees is graded again, alone, and the command
fails if it still disagrees.  ``--no-execute`` leaves out nbgrader's Execute step (the student's
notebook is not run; only the external grader runs each answer cell): much faster, and the feedback
then holds the verdicts without the notebook's other outputs.

Prints one line per submission (seconds, points) and the totals.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

NO_EXECUTE = ("--Autograde.autograde_preprocessors=["
              "'nbgrader.preprocessors.IgnorePattern',"
              "'nbconvert.preprocessors.ClearMetadataPreprocessor',"
              "'nbgrader.preprocessors.LimitOutput',"
              "'attnlib.grading.nbgrader_step.ExternalGrade',"
              "'nbgrader.preprocessors.SaveAutoGrades',"
              "'nbgrader.preprocessors.AssignLatePenalties',"
              "'nbgrader.preprocessors.CheckCellMetadata']")


def db_url(course: Path) -> str:
    return f"sqlite:///{course / 'gradebook.db'}?timeout=120"


def nbgrader(course: Path, *args: str, timeout: float = 1800) -> subprocess.CompletedProcess:
    """Run nbgrader's command line in ``course`` (its own configuration, not the user's)."""
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
           "JUPYTER_CONFIG_DIR": str(course / ".jupyter"), "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    cmd = [str(bin_dir / "nbgrader"), *args, f"--CourseDirectory.root={course}",
           f"--CourseDirectory.db_url={db_url(course)}"]
    return subprocess.run(cmd, cwd=course, env=env, capture_output=True, text=True, timeout=timeout)


def submitted_students(course: Path, assignment: str) -> list[str]:
    root = course / "submitted"
    return sorted(p.name for p in root.iterdir() if (p / assignment).is_dir()) if root.is_dir() else []


def notebook_verdicts(course: Path, assignment: str, student: str) -> dict[str, dict[str, float]]:
    """Notebook -> {grading cell id: points} as the autograded notebook's outputs say (errors: 0)."""
    from nbformat import read

    out = {}
    folder = course / "autograded" / student / assignment
    for path in sorted(folder.glob("*.ipynb")):
        nb = read(path, as_version=4)
        cells = {}
        for cell in nb.cells:
            meta = cell.get("metadata", {}).get("nbgrader", {})
            if meta.get("grade") and not meta.get("solution") and cell.cell_type == "code":
                failed = any(o.get("output_type") == "error" for o in cell.get("outputs", []))
                cells[meta["grade_id"]] = 0.0 if failed else float(meta.get("points", 0))
        out[path.stem] = cells
    return out


def gradebook_scores(course: Path, assignment: str, student: str) -> dict[str, dict[str, float]]:
    """Notebook -> {grading cell id: auto score} from the gradebook (empty when the submission is missing)."""
    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook(db_url(course)) as gb:
        try:
            submission = gb.find_submission(assignment, student)
        except MissingEntry:
            return {}
        return {nb.name: {g.name: g.auto_score for g in nb.grades if g.auto_score is not None}
                for nb in submission.notebooks}


def grade_one(course: Path, assignment: str, student: str, execute: bool = True) -> dict:
    start = time.perf_counter()
    args = ["autograde", assignment, f"--student={student}", "--force"]
    if not execute:
        args.append(NO_EXECUTE)
    done = nbgrader(course, *args)
    seconds = time.perf_counter() - start
    return {"student": student, "seconds": seconds, "returncode": done.returncode,
            "log": (done.stdout + done.stderr)[-4000:]}


def consistent(course: Path, assignment: str, student: str) -> bool:
    written, stored = notebook_verdicts(course, assignment, student), gradebook_scores(course, assignment, student)
    if not written:
        return False
    return all(stored.get(nb, {}).get(cell) == points
               for nb, cells in written.items() for cell, points in cells.items())


def grade_class(course: Path, assignment: str, jobs: int = 2, students=None, execute: bool = True,
                echo=print) -> dict:
    """Grade every submission of ``assignment``; return per-student seconds and points, and the totals."""
    course = Path(course).resolve()
    students = list(students) if students else submitted_students(course, assignment)
    if not students:
        raise ValueError(f"no submissions of {assignment} in {course / 'submitted'}")
    start = time.perf_counter()
    cpu_start = _children_cpu()
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        runs = list(pool.map(lambda s: grade_one(course, assignment, s, execute), students))
    report = {}
    for run in runs:
        student = run["student"]
        if run["returncode"] != 0 or not consistent(course, assignment, student):
            echo(f"{student}: graded again, alone (exit code {run['returncode']})")
            run = grade_one(course, assignment, student, execute)
            if run["returncode"] != 0 or not consistent(course, assignment, student):
                raise RuntimeError(f"{student}: the gradebook does not hold the grades of the autograded notebook "
                                   f"after a second try:\n{run['log']}")
        scores = gradebook_scores(course, assignment, student)
        points = sum(sum(cells.values()) for cells in scores.values())
        report[student] = {"seconds": run["seconds"], "points": points, "scores": scores}
        echo(f"{student}: {points:g} points, {run['seconds']:.1f} s")
    total = time.perf_counter() - start
    cpu = _children_cpu() - cpu_start
    return {"students": report, "total_seconds": total, "cpu_seconds": cpu, "jobs": jobs, "execute": execute}


def _children_cpu() -> float:
    """CPU seconds (user + system) of every finished child process and its descendants so far."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("assignment")
    parser.add_argument("--course", default=".", help="the course folder (default: here)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="submissions graded at once")
    parser.add_argument("--students", help="comma-separated student ids (default: every submission)")
    parser.add_argument("--no-execute", action="store_true", help="grade the answer cells only (no kernel)")
    parser.add_argument("--json", help="write the report to this file")
    args = parser.parse_args(argv)
    students = args.students.split(",") if args.students else None
    report = grade_class(Path(args.course), args.assignment, args.jobs, students, not args.no_execute)
    n = len(report["students"])
    print(f"{n} submissions in {report['total_seconds']:.1f} s with {args.jobs} at once: "
          f"{report['total_seconds'] / n:.1f} s per submission, {report['cpu_seconds'] / n:.1f} CPU seconds each")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
