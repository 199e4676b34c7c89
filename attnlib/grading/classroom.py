"""Grade a class: every submission of a lab, several at once, no grade lost or mixed up.

Usage (from the course folder that ``tools/nbgrader_export.py`` wrote, after ``nbgrader collect``)::

    python -m attnlib.grading.classroom 03-how-attention-works --jobs 2 [--students a,b]

Each submission is graded by its own ``nbgrader autograde <lab> --student <id>`` process (with the
course's configuration, so :class:`~attnlib.grading.nbgrader_step.ExternalGrade` sets the grades);
``--jobs`` of them run at once.  The gradebook is SQLite: writers wait for each other (a busy timeout
of 120 s instead of SQLite's 5), and after the run every student's scores are read back from the
gradebook and compared with the verdicts written into that student's autograded notebook: a
submission whose gradebook entry is missing or disagrees is graded again, alone, and the command
fails if it still disagrees.

nbgrader's Execute step is never run: the student's notebook does not run in a kernel, only the
external grader runs each answer cell (in a sandbox, in processes of its own), so no student code
runs with your rights.  nbgrader runs as ``python -P -m nbgrader``
(no working folder on ``sys.path`` at start; the exported configuration removes the course folder
that nbgrader itself adds).  Before the class and after each submission the course folder is
checked for importable files that do not belong there (``*.py`` other than ``nbgrader_config.py``,
``*.pth``, packages, ``sitecustomize``, ...) and for changes to the configuration: when one is found
the command stops, naming the file and the run that left it.

Prints one line per submission (seconds, points) and the totals.  A submission nbgrader cannot grade even
alone (a bogus grade cell, ...) does not stop the class: it is flagged, counted as 0 points, and the
command exits with status 1 after the report, listing those submissions.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import signal
import site
import subprocess
import sys
import sysconfig
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC
from pathlib import Path

from attnlib.grading.sandbox import TIME_LIMIT, GraderFault, check_grader_state, grader_state

# nbgrader's autograde steps as the exported configuration sets them (tools/nbgrader_export.py): no Execute
# step.  classroom passes them, and everything else that decides a grade, on
# nbgrader's command line: the command line beats every configuration file (a planted
# nbgrader_config.json, a jupyter config folder, ...), so no file can switch ExternalGrade off.
AUTOGRADE_STEPS = ["nbgrader.preprocessors.IgnorePattern",
                   "nbconvert.preprocessors.ClearMetadataPreprocessor",
                   "nbgrader.preprocessors.LimitOutput",
                   "attnlib.grading.nbgrader_step.EscapeStudentMarkdown",
                   "attnlib.grading.nbgrader_step.ExternalGrade",
                   "nbgrader.preprocessors.SaveAutoGrades",
                   "nbgrader.preprocessors.AssignLatePenalties",
                   "nbgrader.preprocessors.CheckCellMetadata"]
SANITIZE_STEPS = ["nbgrader.preprocessors.ClearOutput",
                  "attnlib.grading.nbgrader_step.OneCellPerGradeId",
                  "nbgrader.preprocessors.OverwriteKernelspec",
                  "nbgrader.preprocessors.OverwriteCells",
                  "nbgrader.preprocessors.CheckCellMetadata"]


def pinned_settings(time_limit: float = TIME_LIMIT) -> list[str]:
    """nbgrader command-line options that fix every setting a grade depends on (they beat config files)."""
    steps = AUTOGRADE_STEPS
    # every step on as nbgrader has it, but nbconvert's ClearMetadataPreprocessor, off by default (on, it
    # would wipe the cells' nbgrader metadata and with it the grades)
    names = {s.rsplit(".", 1)[1] for s in AUTOGRADE_STEPS + SANITIZE_STEPS}
    return [f"--Autograde.autograde_preprocessors={steps!r}",
            f"--Autograde.sanitize_preprocessors={SANITIZE_STEPS!r}",
            *(f"--{name}.enabled={name != 'ClearMetadataPreprocessor'}" for name in sorted(names)),
            f"--ExternalGrade.time_limit={float(time_limit)!r}"]


NO_EXECUTE = pinned_settings()[0]


def db_url(course: Path) -> str:
    return f"sqlite:///{course / 'gradebook.db'}?timeout=120"


def nbgrader(course: Path, *args: str, timeout: float = 1800) -> subprocess.CompletedProcess:
    """Run nbgrader's command line in ``course`` (its own configuration, not the user's).

    As ``python -P -m nbgrader``: ``-P`` keeps the working folder (the course, writable) off the start
    of ``sys.path``, and ``PYTHONPATH`` loses its entries in the course folder.  nbgrader then adds its
    working folder itself; the exported ``nbgrader_config.py`` takes it out again before it imports
    anything of ours.
    """
    course = Path(course).resolve()
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
           "JUPYTER_CONFIG_DIR": str(course / ".jupyter"), "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    if env.get("PYTHONPATH"):
        kept = [p for p in env["PYTHONPATH"].split(os.pathsep)
                if p not in ("", ".") and not _inside(Path(p).resolve(), course)]
        env["PYTHONPATH"] = os.pathsep.join(kept)
    cmd = [sys.executable, "-P", "-m", "nbgrader", *args, f"--CourseDirectory.root={course}",
           f"--CourseDirectory.db_url={db_url(course)}"]
    return run_stoppable(cmd, cwd=course, env=env, timeout=timeout)


def run_stoppable(cmd: list[str], *, cwd, env, timeout: float) -> subprocess.CompletedProcess:
    """``subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)``, but the command runs in a process
    group of its own, and at ``timeout`` the whole group is killed, not the command alone (adv13 F2: what nbgrader
    had started lived on).  An answer's process has a session of its own; it dies with its grader (its
    parent-death signal).  Raises :class:`subprocess.TimeoutExpired` with the output so far."""
    with subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          start_new_session=True) as proc:
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                proc.kill()
            try:  # the pipes close once every process holding them is gone
                out, err = proc.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                out, err = "", ""
            raise subprocess.TimeoutExpired(cmd, timeout, output=out, stderr=err) from None
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


# --- files someone could leave for nbgrader's process to read ---------------------------------------

# What an nbgrader course folder holds: the configuration, the gradebook (and SQLite's side files), the
# folders nbgrader's commands write (CourseDirectory's *_directory defaults, zip_collect's downloaded/),
# the configuration folder classroom gives nbgrader, and the checkpoints Jupyter writes when the
# instructor opens a notebook there.  Anything else (nbgrader_config.json, a module, ...) is refused.
COURSE_FILES = {"nbgrader_config.py", "gradebook.db", "gradebook.db-journal", "gradebook.db-wal", "gradebook.db-shm"}
COURSE_FOLDERS = {"source", "release", "source_with_tests", "submitted", "autograded", "feedback", "solution",
                  "downloaded", ".jupyter", ".ipynb_checkpoints"}
# In .jupyter: only the mark jupyter_core leaves at its first start (it only checks that it exists).
JUPYTER_FILES = {"migrated"}


class PlantedFiles(RuntimeError):
    """The course folder or the folders nbgrader imports from hold files that should not be there."""


def unexpected_entries(course: Path) -> list[str]:
    """Entries of the course folder (and of its ``.jupyter``) outside what an nbgrader course holds.

    A configuration file (``nbgrader_config.json``, ``jupyter_config.py``, ...) there would change how
    nbgrader grades; a module could be imported by it.  Names relative to the course folder.
    """
    course = Path(course)
    found = []
    for path in sorted(course.iterdir()):
        if path.is_dir() and not path.is_symlink():
            if path.name not in COURSE_FOLDERS:
                found.append(f"{path.name}/" + (" (a package)" if any(path.glob("__init__.*")) else ""))
        elif path.name not in COURSE_FILES or path.is_symlink():
            found.append(path.name)
    jupyter = course / ".jupyter"
    if jupyter.is_dir():
        for path in sorted(jupyter.rglob("*")):
            if path.relative_to(jupyter).as_posix() not in JUPYTER_FILES:
                found.append(path.relative_to(course).as_posix() + ("/" if path.is_dir() else ""))
    return found


def _hash(path: Path) -> str | None:
    """A file's content hash; a symbolic link's is the hash of where it points (never of what it points to,
    which grading itself may write: adv10 F4); None for anything else that is not a regular file."""
    try:
        if path.is_symlink():
            return "link:" + hashlib.sha256(os.fsencode(os.readlink(path))).hexdigest()
        if not path.is_file():  # a fifo or a device: reading it could block or never end
            return None
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def irregular_files(course: Path, student: str) -> list[str]:
    """What under ``submitted/<student>/`` is not a plain folder or a regular file: symbolic links, fifos,
    sockets, devices (paths relative to the course).  nbgrader's exchange and ``zip_collect`` copy files, so
    such entries come from submissions collected by hand (``cp -a``, ``rsync -a``, tar); a link could point
    at what grading writes (the gradebook) or read someone else's work, so that student is not graded."""
    import stat

    root = Path(course) / "submitted" / student
    found = []
    if root.is_symlink():
        return [root.relative_to(course).as_posix()]
    for folder, dirs, files in os.walk(root, followlinks=False):
        for name in [*dirs, *files]:
            path = Path(folder) / name
            try:
                mode = path.lstat().st_mode
            except OSError:
                continue
            if not (stat.S_ISDIR(mode) or stat.S_ISREG(mode)):
                kind = "a symbolic link" if stat.S_ISLNK(mode) else "a fifo" if stat.S_ISFIFO(mode) else \
                    "a socket" if stat.S_ISSOCK(mode) else "a device"
                found.append(f"{path.relative_to(course).as_posix()} ({kind})")
    return sorted(found)


def watched_files(course: Path) -> dict[str, str]:
    """Path -> content hash of what decides which code nbgrader runs besides its installation, and of submissions.

    The course's ``nbgrader_config.py``, every file of the course's ``.jupyter`` folder (the
    configuration folder classroom gives nbgrader) but jupyter_core's ``migrated`` mark, the
    ``*.pth``, ``sitecustomize`` and ``usercustomize`` files of the site-packages folders (run at
    every start of Python), every file under ``submitted/`` (a process of the instructor's account
    could rewrite another student's submission), and the files at the top of the standard library's
    folders (adv11 F1: an answer rewrote one, which every later grading process would have run).
    """
    course = Path(course)
    paths = [course / "nbgrader_config.py"]
    if (course / ".jupyter").is_dir():
        paths += [p for p in (course / ".jupyter").rglob("*")
                  if p.is_file() and p.relative_to(course / ".jupyter").as_posix() not in JUPYTER_FILES]
    if (course / "submitted").is_dir():  # links are not followed (os.walk), and hashed by where they point
        paths += [Path(folder) / name for folder, dirs, files in os.walk(course / "submitted") for name in
                  [*files, *(d for d in dirs if (Path(folder) / d).is_symlink())]]
    sites = [*site.getsitepackages(), site.getusersitepackages()]
    for folder in map(Path, sites):
        if folder.is_dir():
            paths += [p for p in folder.iterdir() if p.suffix == ".pth" or
                      p.name.startswith(("sitecustomize", "usercustomize"))]
    for key in ("stdlib", "platstdlib"):
        folder = Path(sysconfig.get_paths()[key]).resolve()
        if folder.is_dir():
            paths += [p for p in folder.iterdir() if p.is_file()]
    out = {}
    for path in dict.fromkeys(paths):
        digest = _hash(path)
        if digest is not None:
            out[str(path)] = digest
    return out


def planted(course: Path, before: dict[str, str]) -> list[str]:
    """What is wrong now: entries a course does not hold; watched files added, changed or removed since ``before``."""
    found = [str(Path(course) / name) for name in unexpected_entries(course)]
    now = watched_files(course)
    found += [f"{p} (new)" for p in sorted(set(now) - set(before))]
    found += [f"{p} (changed)" for p in sorted(set(now) & set(before)) if now[p] != before[p]]
    found += [f"{p} (removed)" for p in sorted(set(before) - set(now))]
    return found


def refuse_if_planted(course: Path) -> dict[str, str]:
    """Before grading: :class:`PlantedFiles` if the course folder holds what a course does not; else watched files."""
    clean = watched_files(course)
    found = planted(course, clean)  # nothing has run yet: only entries a course does not hold
    if found:
        raise PlantedFiles(
            f"refusing to grade: the course folder holds entries an nbgrader course does not (a module Python "
            f"could import into nbgrader's grading process, or a configuration file that changes how it grades): "
            f"{', '.join(found)}.  Only nbgrader_config.py, gradebook.db, nbgrader's folders (source/, release/, "
            f"submitted/, autograded/, feedback/, ...) and .jupyter/migrated belong there.  Look at them, delete "
            f"them, and check the grades given since they appeared.")
    return clean


# --- when a submission came in: never from the student's own timestamp.txt (adv16 F2) ---------------------

TIMESTAMP_SLACK = 60.0  # seconds timestamp.txt may lie before the received time (nbgrader submit writes it first)


def _ctime(path: Path) -> float:
    """The latest change time (ctime) of ``path`` and everything under it but timestamp.txt: set by the kernel when
    a file is written or copied, and no one can set it back (``touch`` sets mtime, never ctime)."""
    times = [path.lstat().st_ctime]
    for folder, dirs, files in os.walk(path, followlinks=False):
        times += [(Path(folder) / n).lstat().st_ctime for n in [*dirs, *files] if n != "timestamp.txt"]
    return max(times)


def inbound_time(assignment: str, student: str, exchange: Path) -> float | None:
    """When the student wrote their submissions of ``assignment`` to nbgrader's exchange (``exchange`` is its root,
    the folder holding ``<course_id>/inbound``): the latest change time of those inbound folders, None if none."""
    inbound = [p for p in Path(exchange).glob(f"*/inbound/{student}+{assignment}+*") if p.is_dir()]
    return max(_ctime(p) for p in inbound) if inbound else None


def _utc(seconds: float) -> str:
    from datetime import datetime

    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def check_timestamps(course: Path, assignment: str, students, exchange: Path | None = None) -> dict[str, str]:
    """Student -> what was done, for every submission whose ``timestamp.txt`` (written on the student's side, by
    ``nbgrader submit`` or by hand) claims a time the file system contradicts; the file is rewritten with the later,
    true time, which nbgrader's late penalty then uses.

    With ``exchange``: a claim earlier than the change time of the student's inbound folders (written by ``nbgrader
    submit`` at the moment of submitting) is replaced by that time.  Without it only impossible claims can be told:
    a time before the assignment's release (the change time of ``release/<assignment>``, or a missing or
    unreadable timestamp.txt) is replaced by the change time of the collected copy in ``submitted/`` (when
    ``nbgrader collect`` wrote it, a time the submission surely came by)."""
    from datetime import datetime

    from dateutil.parser import parse  # what nbgrader.utils.parse_utc reads timestamp.txt with (nbgrader takes 2 s)

    def parse_utc(text):
        when = parse(text)
        return when.astimezone(UTC).replace(tzinfo=None) if when.tzinfo else when

    notes = {}
    released = [_ctime(p) for p in (Path(course) / "release" / assignment,) if p.is_dir()]
    for student in students:
        folder = Path(course) / "submitted" / student / assignment
        if not folder.is_dir():
            continue
        path = folder / "timestamp.txt"
        try:
            claimed = parse_utc(path.read_text().strip()).replace(tzinfo=UTC).timestamp() \
                if path.is_file() and not path.is_symlink() else None
        except (OSError, ValueError, TypeError, OverflowError):
            claimed = None
        submitted = inbound_time(assignment, student, exchange) if exchange is not None else None
        if submitted is not None:
            if claimed is not None and claimed >= submitted - TIMESTAMP_SLACK:
                continue
            true, why = submitted, f"the exchange's inbound folder was written at {_utc(submitted)}"
        else:
            if claimed is not None and not (released and claimed < released[0] - TIMESTAMP_SLACK):
                continue
            true = _ctime(folder)
            why = ("the assignment was released only at " + _utc(released[0]) if released and claimed is not None
                   else "it is missing or unreadable") + f"; the collected copy was written at {_utc(true)}"
        if path.is_symlink():
            path.unlink()
        path.write_text(datetime.fromtimestamp(true, UTC).strftime("%Y-%m-%d %H:%M:%S.%f %Z"))
        if claimed is None:  # adv18: nothing was claimed, the file is missing
            when = "the exchange received it" if submitted is not None else "the collected copy was written"
            notes[student] = f"timestamp.txt is missing or unreadable: graded as submitted at {_utc(true)}, when {when}"
        else:
            notes[student] = (f"timestamp.txt said {_utc(claimed)}, but {why}: graded as submitted at {_utc(true)} "
                              "(timestamp.txt comes from the student's side)")
    return notes


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


NBGRADER_TIMEOUT = 1800  # seconds for one student's nbgrader autograde run


def grade_one(course: Path, assignment: str, student: str, time_limit: float = TIME_LIMIT,
              timeout: float | None = None) -> dict:
    """One ``nbgrader autograde`` run; a run past ``timeout`` is killed and reported (return code None)."""
    start = time.perf_counter()
    args = ["autograde", assignment, f"--student={student}", "--force", *pinned_settings(time_limit)]
    try:
        done = nbgrader(course, *args, timeout=NBGRADER_TIMEOUT if timeout is None else timeout)
    except subprocess.TimeoutExpired as err:
        out = err.stdout.decode(errors="replace") if isinstance(err.stdout, bytes) else (err.stdout or "")
        return {"student": student, "seconds": time.perf_counter() - start, "returncode": None,
                "log": (out + f"\nclassroom: nbgrader autograde did not finish in {err.timeout:g} s and was "
                        "stopped")[-4000:]}
    seconds = time.perf_counter() - start
    return {"student": student, "seconds": seconds, "returncode": done.returncode,
            "log": (done.stdout + done.stderr)[-4000:]}


def consistent(course: Path, assignment: str, student: str) -> bool:
    written, stored = notebook_verdicts(course, assignment, student), gradebook_scores(course, assignment, student)
    if not written:
        return False
    return all(stored.get(nb, {}).get(cell) == points
               for nb, cells in written.items() for cell, points in cells.items())


def grade_class(course: Path, assignment: str, jobs: int = 2, students=None,
                echo=print, time_limit: float = TIME_LIMIT, exchange: Path | None = None) -> dict:
    """Grade every submission of ``assignment``; return per-student seconds and points, and the totals.

    A submission that cannot be graded even alone is flagged (``"failed": True``, 0 points) and listed in
    the report's ``"failed"``; the others are graded.  At the end every graded student's entry is read
    again; those that changed since their run was read back are listed in ``"changed"``.

    Raises :class:`PlantedFiles` before grading when the course folder holds importable files, and
    as soon as a run leaves some (or changes the configuration), naming the runs that were under way
    since the last clean check; the runs not started yet are not started.
    """
    course = Path(course).resolve()
    students = list(students) if students else submitted_students(course, assignment)
    if not students:
        raise ValueError(f"no submissions of {assignment} in {course / 'submitted'}")
    refused = {student: found for student in students if (found := irregular_files(course, student))}
    students = [student for student in students if student not in refused]
    late_claims = check_timestamps(course, assignment, students, exchange)  # before the files are watched
    for student, note in late_claims.items():
        echo(f"{student}: {note}")
    clean = refuse_if_planted(course)
    baseline = grader_state()  # checked before each nbgrader run, which inherits it (adv9 F1)
    lock = threading.Lock()
    running: set[str] = set()
    suspects: set[str] = set()  # runs under way since the last clean check
    problems: list[str] = []

    def check() -> None:
        with lock:
            found = planted(course, clean)
            if found and not problems:
                who = sorted(suspects | running) or ["(no run of this class: it was there before)"]
                problems.append(f"{', '.join(found)}: left during the nbgrader run of {who[0]}" if len(who) == 1
                                else f"{', '.join(found)}: left during the nbgrader runs of {', '.join(who)} "
                                     "(under way at the same time; grade them one at a time to tell which)")
            if not found:
                suspects.clear()
                suspects.update(running)

    def graded(student: str) -> dict:
        check()  # before each run too: a process a finished run left behind may write later
        check_grader_state(baseline)  # GraderFault: limits or priority lowered from outside; grade nothing more
        with lock:
            if problems:
                return {"student": student, "seconds": 0.0, "returncode": None, "log": "not graded", "skipped": True}
            running.add(student)
            suspects.add(student)
        try:
            return grade_one(course, assignment, student, time_limit)
        finally:
            with lock:
                running.discard(student)
            check()

    def stop_if_planted() -> None:
        if problems:
            raise PlantedFiles(
                f"stopped grading {assignment}: files that Python could import into nbgrader's grading process (the "
                f"standard library's included), configuration files, or submissions appeared or changed: "
                f"{problems[0]}.  Only what nbgrader "
                f"writes belongs in the course folder, and no run changes submitted/.  Delete them (keep a copy to "
                f"look at), restore the submissions from the exchange, check the grades given since they "
                f"appeared.")

    start = time.perf_counter()
    cpu_start = _children_cpu()
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        runs = list(pool.map(graded, students))
    stop_if_planted()
    report = {}
    failed: list[str] = []
    for student, found in refused.items():  # that student's problem, not the class's (adv10 F4)
        failed.append(student)
        reason = (f"the submission holds what is not a regular file: {', '.join(found)}. Replace each link by a copy "
                  "of the file (or delete it) and grade this student again")
        report[student] = {"seconds": 0.0, "points": 0, "scores": {}, "failed": True, "log": reason}
        echo(f"{student}: NOT GRADED: {reason}.")
    for run in runs:
        student = run["student"]
        if run["returncode"] != 0 or not consistent(course, assignment, student):
            echo(f"{student}: graded again, alone (exit code {run['returncode']})")
            run = graded(student)
            stop_if_planted()
            if run["returncode"] != 0 or not consistent(course, assignment, student):
                # one bad submission (a bogus grade cell, ...) does not stop the class: flagged, 0 points
                failed.append(student)
                report[student] = {"seconds": run["seconds"], "points": 0, "scores": {}, "failed": True,
                                   "log": run["log"]}
                echo(f"{student}: NOT GRADED (nbgrader exit code {run['returncode']}, or the gradebook does not hold "
                     f"the autograded notebook's grades after a second try): counted as 0 points; nbgrader said:\n"
                     + "\n".join("    " + line for line in run["log"].strip().splitlines()[-8:]))
                continue
        scores = gradebook_scores(course, assignment, student)
        points = sum(sum(cells.values()) for cells in scores.values())
        report[student] = {"seconds": run["seconds"], "points": points, "scores": scores}
        if student in late_claims:
            report[student]["timestamp"] = late_claims[student]
        echo(f"{student}: {points:g} points, {run['seconds']:.1f} s")
    # at the end, once more: a grade that changed after its run was read back (a process a run left behind,
    # writing the gradebook later) is named, with the run it belongs to
    changed = [student for student, entry in report.items()
               if not entry.get("failed") and gradebook_scores(course, assignment, student) != entry["scores"]]
    for student in changed:
        echo(f"{student}: the gradebook changed after this student's run was graded and read back: look at it")
    total = time.perf_counter() - start
    cpu = _children_cpu() - cpu_start
    return {"students": report, "total_seconds": total, "cpu_seconds": cpu, "jobs": jobs,
            "failed": failed, "changed": changed, "timestamps": late_claims}


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
    parser.add_argument("--time-limit", type=float, default=TIME_LIMIT,
                        help="seconds for one call of a learner's function (default: %(default)s)")
    parser.add_argument("--json", help="write the report to this file")
    parser.add_argument("--exchange", help="nbgrader's exchange root (Exchange.root): the submission times are read "
                        "from the change times of its inbound folders (default: the collected copies' change times)")
    args = parser.parse_args(argv)
    students = args.students.split(",") if args.students else None
    try:
        report = grade_class(Path(args.course), args.assignment, args.jobs, students,
                             time_limit=args.time_limit, exchange=Path(args.exchange) if args.exchange else None)
    except PlantedFiles as err:
        print(f"classroom: {err}", file=sys.stderr)
        return 2
    except GraderFault as err:
        print(f"classroom: stopped, a fault of the grading machine (not of a submission): {err}", file=sys.stderr)
        return 3
    n = len(report["students"])
    print(f"{n} submissions in {report['total_seconds']:.1f} s with {args.jobs} at once: "
          f"{report['total_seconds'] / n:.1f} s per submission, {report['cpu_seconds'] / n:.1f} CPU seconds each")
    missing = [s for s, note in report["timestamps"].items() if note.startswith("timestamp.txt is missing")]
    earlier = [s for s in report["timestamps"] if s not in missing]
    if earlier:
        print(f"classroom: {len(earlier)} submissions claimed an earlier time in timestamp.txt than they "
              f"were received; graded at the received time: {', '.join(earlier)} (lines above)")
    if missing:  # adv18: a missing timestamp.txt claims nothing
        print(f"classroom: {len(missing)} submissions have no readable timestamp.txt (missing or unreadable); "
              f"graded at the time they were received: {', '.join(missing)} (lines above)")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))
    if report["changed"]:
        print(f"classroom: the gradebook entries of {', '.join(report['changed'])} changed after their runs were read "
              f"back (by a process a run left behind?): their grades are not what the grader gave; grade them again "
              f"and look at their submissions", file=sys.stderr)
        return 2
    if report["failed"]:
        print(f"classroom: {len(report['failed'])} submissions could not be graded and count as 0 points: "
              f"{', '.join(report['failed'])} (their nbgrader output is above)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
