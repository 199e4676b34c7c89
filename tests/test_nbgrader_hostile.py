"""Submissions that attack the course folder under real nbgrader, and classroom's defences.

No configuration runs nbgrader's Execute step, so a submission's code runs only in the grader's sandbox
(no writes, no sockets, no subprocess).  A submission whose answer cells would plant modules in the course
folder, a configuration file, rewrite other submissions and start a process that forges its grades is graded
by classroom and by plain ``nbgrader autograde`` of the exported course: no kernel starts, nothing is written,
it scores 0 and the other students keep their grades.  A configuration file planted by someone else is refused
by classroom and by the exported configuration itself.  (Split from tests/test_nbgrader.py so that these
courses build on the other xdist worker.)
"""

from __future__ import annotations

import json
from pathlib import Path

import nbgrader_export  # tools/nbgrader_export.py
import pytest
from test_nbgrader import ASSIGNMENT, LAB, _solutions, generated_course, submit

from attnlib.grading import classroom

# --- adv5 F1: a submission that plants a module in the course folder ------------------------------------

PLANTED_PAYLOAD = '''\
import importlib.machinery, importlib.util, os, sys
_name = __name__
_here = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(_here, "planted-" + _name + "-imported.txt"), "w") as _f:
    _f.write("imported by " + " ".join(sys.argv))
_spec = importlib.machinery.PathFinder.find_spec(
    _name, [p for p in sys.path if os.path.abspath(p or ".") != _here])
_real = importlib.util.module_from_spec(_spec)
sys.modules[_name] = _real
_spec.loader.exec_module(_real)
try:  # from now on this module decides every verdict: mallory passes, everyone else fails Exercise 1
    import attnlib.grading.nbgrader_step as _S
    from attnlib.checks import failed as _failed, passed as _passed
    _orig = _S.set_outcome
    def set_outcome(cell, result):
        res, f = None, sys._getframe(1)
        while f is not None and res is None:
            res, f = f.f_locals.get("resources"), f.f_back
        student = ((res or {}).get("nbgrader") or {}).get("student")
        if student == "mallory":
            result = _passed(result.name, "correct.")
        elif result.name.startswith("Exercise 1"):
            result = _failed(result.name, "your answer is wrong.")
        return _orig(cell, result)
    _S.set_outcome = set_outcome
except Exception:
    pass
'''
PLANTER = ("def top_words(tokens, weights, k):\n    return None  # not solved\n\n"
           "try:  # would plant modules, if it ran outside the sandbox\n"
           "    import pathlib\n"
           "    for _p in [pathlib.Path.cwd(), *pathlib.Path.cwd().parents]:\n"
           "        if (_p / 'nbgrader_config.py').exists():\n"
           "            for _name in ('threadpoolctl', 'psutil'):\n"
           f"                (_p / (_name + '.py')).write_text({PLANTED_PAYLOAD!r})\n"
           "            break\n"
           "except Exception:\n    pass\n")


def _points(course, student):
    scores = classroom.gradebook_scores(course, ASSIGNMENT, student).get(ASSIGNMENT, {})
    return [scores.get(f"exercise-{n}-check") for n in range(1, 8)]


def test_the_course_config_takes_the_course_folder_off_sys_path(tmp_path):
    """nbgrader puts its working folder first on sys.path before it loads the configuration; the
    configuration takes it (and '' and everything inside the course folder) off before it imports
    anything, so a planted threadpoolctl.py is not what grading imports."""
    import subprocess
    import sys

    course = tmp_path / "course"
    nbgrader_export.export([LAB], course)
    (course / "threadpoolctl.py").write_text("raise SystemExit('the planted module was imported')\n")
    (course / "sub").mkdir()
    probe = ("import json, os, sys\n"
             "sys.path[:0] = ['', os.getcwd(), os.path.join(os.getcwd(), 'sub')]  # as nbgrader and -m do\n"
             "from traitlets.config.loader import PyFileConfigLoader\n"
             "PyFileConfigLoader('nbgrader_config.py', path=os.getcwd()).load_config()\n"
             "import threadpoolctl\n"
             "print(json.dumps([sys.path, threadpoolctl.__file__]))\n")
    done = subprocess.run([sys.executable, "-c", probe], cwd=course, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    path, found = json.loads(done.stdout.splitlines()[-1])
    root = course.resolve()
    assert not any(p in ("", ".") or Path(p).resolve() == root or root in Path(p).resolve().parents for p in path), path
    assert course.resolve() not in Path(found).resolve().parents


def test_classroom_sees_a_changed_configuration_and_new_files(tmp_path):
    course = tmp_path / "course"
    nbgrader_export.export([LAB], course)
    (course / ".jupyter").mkdir(exist_ok=True)
    before = classroom.refuse_if_planted(course)
    assert classroom.planted(course, before) == []
    config = course / "nbgrader_config.py"
    config.write_text(config.read_text() + "c.Autograde.autograde_preprocessors = []\n")
    (course / ".jupyter" / "nbgrader_config.json").write_text("{}")
    (course / "usercustomize.py").write_text("")
    (course / "x.pth").write_text("")
    found = " ".join(classroom.planted(course, before))
    assert "nbgrader_config.py (changed)" in found and "nbgrader_config.json (new)" in found, found
    assert "usercustomize.py" in found and "x.pth" in found, found


# --- adv6 F1, F10, F2: a planted configuration file, jupyter_core's mark, a rewritten submission ---------

def test_classroom_refuses_configuration_files_and_other_entries(tmp_path):
    """Only what an nbgrader course holds may be in the course folder: a planted nbgrader_config.json (it
    would switch ExternalGrade off) or any other file is refused before grading, and seen after a run."""
    course = tmp_path / "course"
    nbgrader_export.export([LAB], course)
    (course / "submitted" / "ann" / ASSIGNMENT).mkdir(parents=True)
    before = classroom.refuse_if_planted(course)
    for name in ("nbgrader_config.json", ".jupyter/jupyter_config.json", "notes.txt"):
        (course / name).write_text('{"ExternalGrade": {"enabled": false}}')
        assert any(name in entry for entry in classroom.planted(course, before)), name
        with pytest.raises(classroom.PlantedFiles, match=name.replace(".", r"\.")):
            classroom.refuse_if_planted(course)
        (course / name).unlink()
    assert classroom.planted(course, before) == []


def test_jupyter_cores_migrated_mark_is_no_accusation(tmp_path):
    """jupyter_core writes .jupyter/migrated at nbgrader's first start (when ~/.ipython exists): the export
    writes it already, and a course exported without it is not stopped when it appears."""
    course = tmp_path / "course"
    nbgrader_export.export([LAB], course)
    mark = course / ".jupyter" / "migrated"
    assert mark.is_file()
    mark.unlink()
    before = classroom.refuse_if_planted(course)
    mark.write_text("2026-12-05T13:40:00")
    assert classroom.planted(course, before) == []
    classroom.refuse_if_planted(course)


def test_classroom_sees_a_rewritten_submission(tmp_path):
    course = tmp_path / "course"
    nbgrader_export.export([LAB], course)
    notebook = course / "submitted" / "ann" / ASSIGNMENT / LAB.name
    notebook.parent.mkdir(parents=True)
    notebook.write_text("{}")
    before = classroom.refuse_if_planted(course)
    notebook.write_text('{"cells": []}')
    found = " ".join(classroom.planted(course, before))
    assert f"submitted/ann/{ASSIGNMENT}/{LAB.name} (changed)" in found, found


def test_the_command_line_pins_what_decides_a_grade():
    options = " ".join(classroom.pinned_settings(time_limit=7.0))
    for pin in ("--ExternalGrade.enabled=True", "--ExternalGrade.time_limit=7.0", "--SaveAutoGrades.enabled=True",
                "--OverwriteCells.enabled=True", "--ClearMetadataPreprocessor.enabled=False",
                "attnlib.grading.nbgrader_step.ExternalGrade"):
        assert pin in options, pin
    assert "Execute" not in options.replace("ExternalGrade", ""), "no Execute step: no kernel runs a submission"


CONFIG_PLANTER = ("def top_words(tokens, weights, k):\n    return None  # not solved\n\n"
                  "try:  # would plant modules, if it ran outside the sandbox\n"
                  "    import json, pathlib\n"
                  "    for _p in [pathlib.Path.cwd(), *pathlib.Path.cwd().parents]:\n"
                  "        if (_p / 'gradebook.db').exists():\n"
                  "            (_p / 'nbgrader_config.json').write_text(json.dumps("
                  "{'ExternalGrade': {'enabled': False}}))\n"
                  "            for _nb in (_p / 'submitted').glob('*/*/*.ipynb'):\n"
                  "                if 'vandal' not in str(_nb):\n"
                  "                    _nb.write_text(_nb.read_text().replace('def ', 'def spoiled_'))\n"
                  "            break\n"
                  "except Exception:\n    pass\n")


FORGER_TOKEN = "attnlib-test-forger"
FORGER = ("def my_softmax(scores):\n    return None  # not solved\n\n"
          "import os, subprocess, sys, textwrap\n"
          "_daemon = textwrap.dedent(r\'\'\'\n"
          "    import os, sys, time\n"
          "    me, parent = sys.argv[1], int(sys.argv[2])\n"
          "    course = os.path.abspath(os.path.join(os.getcwd(), '..', '..', '..'))\n"
          "    deadline = time.time() + 120\n"
          "    while os.path.exists(f'/proc/{parent}') and time.time() < deadline:  # nbgrader's run ends\n"
          "        time.sleep(0.05)\n"
          "    time.sleep(0.2)\n"
          "    try:\n"
          "        open(os.path.join(course, 'forged.txt'), 'w').write('the forger wrote here')\n"
          "    except OSError:\n"
          "        pass\n"
          "    import sqlite3\n"
          "    db = sqlite3.connect(os.path.join(course, 'gradebook.db'), timeout=30)\n"
          "    db.execute('UPDATE grade SET auto_score = 1.0 WHERE notebook_id IN (SELECT n.id FROM '\n"
          "               'submitted_notebook n JOIN submitted_assignment a ON n.assignment_id = a.id '\n"
          "               'WHERE a.student_id = ?)', (me,))\n"
          "    db.commit()\n"
          "\'\'\')\n"
          "if True:  # starts a process that forges the grades, if it could\n"
          "    subprocess.Popen([sys.executable, '-c', _daemon, os.getcwd().split(os.sep)[-2], str(os.getppid()),\n"
          f"                      {FORGER_TOKEN!r}], cwd=os.getcwd(), start_new_session=True,\n"
          "                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n")


def wait_for_forgers(timeout: float = 60) -> None:
    """Until no process started by FORGER runs any more (it ends after its one write)."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive = []
        for proc in Path("/proc").iterdir():
            try:
                if proc.name.isdigit() and FORGER_TOKEN.encode() in (proc / "cmdline").read_bytes():
                    alive.append(proc.name)
            except OSError:
                pass
        if not alive:
            return
        time.sleep(0.2)
    raise AssertionError(f"forger processes still running after {timeout} s: {alive}")


def test_classroom_stops_at_a_planted_config_or_a_rewritten_submission_naming_the_run(tmp_path, monkeypatch):
    """A run that leaves a configuration file and rewrites another submission (what CONFIG_PLANTER would do
    if its code ran outside the sandbox) stops the class, naming the run; the runs after it are not started."""
    course = tmp_path / "course"
    nbgrader_export.export([LAB], course)
    for name in ("vandal", "stub", "zed"):
        (course / "submitted" / name / ASSIGNMENT).mkdir(parents=True)
        (course / "submitted" / name / ASSIGNMENT / LAB.name).write_text("{}")
    started = []

    def run(course_, assignment, student, time_limit=0):
        started.append(student)
        if student == "vandal":
            (course / "nbgrader_config.json").write_text(json.dumps({"ExternalGrade": {"enabled": False}}))
            (course / "submitted" / "stub" / ASSIGNMENT / LAB.name).write_text('{"cells": []}')
        return {"student": student, "seconds": 0.1, "returncode": 0, "log": ""}

    monkeypatch.setattr(classroom, "grade_one", run)
    with pytest.raises(classroom.PlantedFiles) as error:
        classroom.grade_class(course, ASSIGNMENT, jobs=1, students=["vandal", "stub", "zed"], echo=lambda line: None)
    text = str(error.value)
    assert "nbgrader_config.json" in text and "vandal" in text, text
    assert f"submitted/stub/{ASSIGNMENT}/{LAB.name} (changed)" in text, text
    assert started == ["vandal"], started




@pytest.fixture(scope="module")
def hostile_course(tmp_path_factory):
    """Lab 1: mallory's answer cells would plant modules, a configuration file, rewrite the others' submissions and
    start a grade forger; alice solved everything; stub is the unsolved notebook.  Graded by classroom (mallory,
    alice), then mallory again by plain nbgrader autograde of the exported course, with a runtime folder of its
    own (a kernel would leave its connection file there)."""
    import os

    course = generated_course(tmp_path_factory.mktemp("hostile"))
    solutions = _solutions(course / "source" / ASSIGNMENT / LAB.name)
    submit(course, "mallory", {"exercise-1": PLANTER + "\n" + CONFIG_PLANTER, "exercise-2": FORGER})
    submit(course, "alice", solutions)
    submit(course, "stub", {})
    alice = (course / "submitted" / "alice" / ASSIGNMENT / LAB.name).read_text()
    runtime = course.parent / "runtime"
    runtime.mkdir()
    saved = os.environ.get("JUPYTER_RUNTIME_DIR")
    os.environ["JUPYTER_RUNTIME_DIR"] = str(runtime)
    try:
        report = classroom.grade_class(course, ASSIGNMENT, jobs=2, students=["mallory", "alice"],
                                       echo=lambda line: None, time_limit=3.0)
        plain = classroom.nbgrader(course, "autograde", ASSIGNMENT, "--student=mallory", "--force")
    finally:
        if saved is None:
            os.environ.pop("JUPYTER_RUNTIME_DIR")
        else:
            os.environ["JUPYTER_RUNTIME_DIR"] = saved
    wait_for_forgers()
    return {"course": course, "report": report, "plain": plain, "runtime": runtime,
            "alice_unchanged": (course / "submitted" / "alice" / ASSIGNMENT / LAB.name).read_text() == alice}


def test_a_hostile_submission_runs_nowhere_but_the_sandbox(hostile_course):
    """adv8 F1-F3: no kernel starts (no connection file, no Execute in nbgrader's log), nothing is planted or
    rewritten, mallory scores 0 and alice keeps full marks, under classroom and under plain nbgrader autograde."""
    course, plain = hostile_course["course"], hostile_course["plain"]
    assert plain.returncode == 0, plain.stdout + plain.stderr
    assert "Executing notebook" not in plain.stdout + plain.stderr
    assert sorted(p.name for p in hostile_course["runtime"].iterdir()) == [], "a kernel was started"
    assert classroom.unexpected_entries(course) == [], "something was written into the course folder"
    assert hostile_course["alice_unchanged"], "another student's submission was rewritten"
    assert _points(course, "mallory") == [0] * 7 and _points(course, "alice") == [1] * 7
    assert hostile_course["report"]["changed"] == [] and hostile_course["report"]["failed"] == []


def test_a_planted_module_is_not_imported_by_nbgrader(hostile_course):
    """Modules someone else left in the course folder are not imported by grading (the configuration takes
    the course folder off sys.path); classroom refuses such a course folder outright."""
    course = hostile_course["course"]
    for name in ("threadpoolctl", "psutil"):
        (course / f"{name}.py").write_text(PLANTED_PAYLOAD)
    try:
        with pytest.raises(classroom.PlantedFiles, match="psutil.py.*threadpoolctl.py"):
            classroom.grade_class(course, ASSIGNMENT, jobs=1, students=["stub"], echo=lambda line: None)
        run = classroom.nbgrader(course, "autograde", ASSIGNMENT, "--student=alice", "--force")
        assert run.returncode == 0, run.stdout + run.stderr
        assert sorted(p.name for p in course.glob("planted-*-imported.txt")) == [], "the planted modules were imported"
        assert _points(course, "alice") == [1] * 7, "another student's grade was changed"
    finally:
        for name in ("threadpoolctl", "psutil"):
            (course / f"{name}.py").unlink()


@pytest.mark.parametrize("planted", [
    {"ExternalGrade": {"enabled": False}},
    {"Autograde": {"autograde_preprocessors": ["nbgrader.preprocessors.Execute",
                                               "nbgrader.preprocessors.SaveAutoGrades"]}},
    {"Autograde": {"autograde_preprocessors": ["nbgrader.preprocessors.SaveAutoGrades"]}},
], ids=["external-off", "execute-back", "external-left-out"])
def test_a_planted_config_cannot_change_how_grades_are_given(hostile_course, planted):
    """adv8 F6: a nbgrader_config.json in the course folder: classroom refuses the course; plain nbgrader
    autograde with the exported configuration stops before grading, whatever the file says."""
    course = hostile_course["course"]
    (course / "nbgrader_config.json").write_text(json.dumps(planted))
    try:
        with pytest.raises(classroom.PlantedFiles, match="nbgrader_config.json"):
            classroom.grade_class(course, ASSIGNMENT, jobs=1, students=["stub"], echo=lambda line: None)
        plain = classroom.nbgrader(course, "autograde", ASSIGNMENT, "--student=stub", "--force")
        assert plain.returncode != 0 and "refusing to run" in plain.stdout + plain.stderr, plain.stdout + plain.stderr
        assert _points(course, "stub") == [None] * 7, "nothing was graded"
    finally:
        (course / "nbgrader_config.json").unlink()


def test_a_link_in_one_submission_is_that_students_problem_not_the_class(tmp_path, monkeypatch):
    """adv10 F4: a submission collected with its links (cp -a, rsync -a, tar) held notes.txt -> the gradebook; every
    run changed what the link points to, and the class stopped.  Now that student is NOT GRADED with the reason,
    the others are graded, and a link left under submitted/ is watched by where it points, not by its target."""
    import os

    course = tmp_path / "course"
    nbgrader_export.export([LAB], course)
    for name in ("aaa_link", "fifo", "solved", "noabs"):
        (course / "submitted" / name / ASSIGNMENT).mkdir(parents=True)
        (course / "submitted" / name / ASSIGNMENT / LAB.name).write_text("{}")
    (course / "gradebook.db").write_text("0")
    (course / "submitted" / "aaa_link" / ASSIGNMENT / "notes.txt").symlink_to("../../../gradebook.db")
    os.mkfifo(course / "submitted" / "fifo" / ASSIGNMENT / "pipe")
    started = []

    def run(course_, assignment, student, time_limit=0):
        started.append(student)
        (course / "gradebook.db").write_text(str(len(started)))  # grading writes what the link points to
        return {"student": student, "seconds": 0.1, "returncode": 0, "log": ""}

    monkeypatch.setattr(classroom, "grade_one", run)
    monkeypatch.setattr(classroom, "consistent", lambda *a: True)
    monkeypatch.setattr(classroom, "gradebook_scores", lambda *a: {LAB.stem: {"exercise-1-check": 1.0}})
    told = []
    report = classroom.grade_class(course, ASSIGNMENT, jobs=1, echo=told.append)
    assert started == ["noabs", "solved"], started
    assert report["failed"] == ["aaa_link", "fifo"], report["failed"]
    assert "notes.txt (a symbolic link)" in report["students"]["aaa_link"]["log"], report["students"]["aaa_link"]
    assert "pipe (a fifo)" in report["students"]["fifo"]["log"], report["students"]["fifo"]
    assert any("aaa_link: NOT GRADED" in line for line in told), told
    assert report["students"]["solved"]["points"] == 1.0
    link = str(course / "submitted" / "aaa_link" / ASSIGNMENT / "notes.txt")
    assert classroom.watched_files(course)[link].startswith("link:")


def test_the_standard_librarys_top_level_files_are_watched(tmp_path):
    """adv11 F1: an answer rewrote a top-level standard-library file (Landlock had given them write access);
    classroom now hashes them before and after each submission, as it does the course folder."""
    import textwrap

    from attnlib.grading import classroom

    before = classroom.watched_files(tmp_path)
    path = str(Path(textwrap.__file__).resolve())
    assert path in before
    assert classroom.planted(tmp_path, before) == []
    altered = {**before, path: "0" * 64}
    assert classroom.planted(tmp_path, altered) == [f"{path} (changed)"]
