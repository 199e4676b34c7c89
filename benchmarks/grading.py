"""How long grading a class takes: per submission and for the whole class, with real nbgrader.

Usage: python benchmarks/grading.py [--lab 01-what-is-attention] [--students 60] [--jobs 2]
        [--external-only] [--record]

Builds a course in a temporary folder (tools/nbgrader_export.py, ``nbgrader generate_assignment``),
submits ``--students`` copies of the lab (every second one with a wrong answer per exercise, so
that both verdicts are exercised), grades them with ``attnlib.grading.classroom`` (``--jobs`` at once)
and prints the seconds per submission and for the class.  ``--external-only`` times only our grader
(every answer cell in its own process) on one submission, without nbgrader.  ``--record`` adds the
numbers to benchmarks/grading-times.json, which the instructor guide shows.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

import nbgrader_export  # noqa: E402

from attnlib.grading import catalogue, classroom  # noqa: E402
from attnlib.grading.grader import grade_notebook  # noqa: E402


def build(course: Path, lab: Path, students: int) -> str:
    assignment = lab.stem
    nbgrader_export.export([lab], course)
    done = classroom.nbgrader(course, "generate_assignment", assignment, "--force")
    if done.returncode:
        raise RuntimeError(done.stdout + done.stderr)
    released = course / "release" / assignment / lab.name
    source = nbformat.read(course / "source" / assignment / lab.name, as_version=4)
    solutions = {c.metadata["nbgrader"]["grade_id"]: c.source for c in source.cells
                 if c.metadata.get("nbgrader", {}).get("solution") and c.cell_type == "code"}
    wrong = {f"exercise-{n}": ex.mistakes[0][0] for (l, n), ex in catalogue.EXERCISES.items()
             if l == lab.name[:2]}
    for i in range(students):
        nb = nbformat.read(released, as_version=4)
        answers = wrong if i % 2 else solutions
        for cell in nb.cells:
            meta = cell.metadata.get("nbgrader", {})
            if meta.get("solution") and cell.cell_type == "code":
                cell.source = answers.get(meta["grade_id"], solutions[meta["grade_id"]])
        folder = course / "submitted" / f"student{i:03d}" / assignment
        folder.mkdir(parents=True)
        nbformat.write(nb, folder / lab.name)
    return assignment


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lab", default="01-what-is-attention")
    parser.add_argument("--students", type=int, default=60)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--external-only", action="store_true")
    parser.add_argument("--record", action="store_true", help="add the numbers to benchmarks/grading-times.json")
    args = parser.parse_args(argv)
    record = {}
    lab = ROOT / "notebooks" / f"{args.lab}.ipynb"
    print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    if args.external_only:
        nb = nbformat.read(lab, as_version=4)
        start = time.perf_counter()
        cpu_start = classroom._children_cpu()
        results = grade_notebook(nb, lab.name[:2])
        seconds = time.perf_counter() - start
        record["grading_external_cpu"] = classroom._children_cpu() - cpu_start
        print(f"external grader, {args.lab}: {len(results)} exercises in {seconds:.1f} s "
              f"({sum(r.passed for r in results.values())} right)")
        record["grading_external_seconds"] = seconds
        _record(args, record)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        course = Path(tmp)
        assignment = build(course, lab, args.students)
        report = classroom.grade_class(course, assignment, jobs=args.jobs,
                                       echo=lambda line: None)
    n = len(report["students"])
    runs = [s["seconds"] for s in report["students"].values()]
    print(f"{args.lab}: {n} submissions, {args.jobs} at once")
    print(f"  one submission: {sum(runs) / n:.1f} s (min {min(runs):.1f}, max {max(runs):.1f})")
    cpu = report["cpu_seconds"] / n
    load = os.getloadavg()[0]
    print(f"  the class: {report['total_seconds']:.1f} s ({report['total_seconds'] / n:.1f} s per submission) "
          f"at load average {load:.1f}")
    print(f"  CPU: {cpu:.1f} s per submission (nbgrader and grader processes)")
    print(f"  60 submissions on {args.jobs} otherwise idle cores: {60 * cpu / args.jobs / 60:.1f} min "
          f"(from the CPU time); at this load: {60 * report['total_seconds'] / n / 60:.1f} min")
    prefix = "grading_noexec"
    record[f"{prefix}_per"] = report["total_seconds"] / n
    record[f"{prefix}_cpu"] = cpu
    record[f"{prefix}_60_idle"] = 60 * cpu / args.jobs / 60
    record[f"{prefix}_60"] = 60 * report["total_seconds"] / n / 60
    record[f"{prefix}_students"] = n
    record[f"{prefix}_load"] = load
    _record(args, record)
    return 0


def _record(args, numbers: dict) -> None:
    if not args.record:
        return
    path = ROOT / "benchmarks" / "grading-times.json"
    stored = json.loads(path.read_text()) if path.exists() else {}
    stored.update({k: round(v, 2) for k, v in numbers.items()}, load_average=round(os.getloadavg()[0], 1),
                  jobs=args.jobs, cores=os.cpu_count())
    path.write_text(json.dumps(stored, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    sys.exit(main())
