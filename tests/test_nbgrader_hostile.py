"""Submissions that attack the course folder under real nbgrader, and classroom's defences.

A course has a submission whose answer cell, in the Execute kernel, writes ``psutil.py`` and
``threadpoolctl.py`` into the course folder (modules nbgrader's own process would import): it scores 0,
another student graded after it keeps full marks, and classroom names the files and the run.  Another
plants a configuration file and rewrites another student's submission: classroom stops and names the
run, and the configuration cannot switch the external grader off.  (Split from tests/test_nbgrader.py
so that these courses build on the other xdist worker.)
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
           "try:  # runs in nbgrader's Execute kernel, as the grader\n"
           "    import pathlib\n"
           "    for _p in [pathlib.Path.cwd(), *pathlib.Path.cwd().parents]:\n"
           "        if (_p / 'nbgrader_config.py').exists():\n"
           "            for _name in ('threadpoolctl', 'psutil'):\n"
           f"                (_p / (_name + '.py')).write_text({PLANTED_PAYLOAD!r})\n"
           "            break\n"
           "except Exception:\n    pass\n")


@pytest.fixture(scope="module")
def planted_course(tmp_path_factory):
    """Lab 1 with mallory's planting submission graded by classroom with --execute, then alice's and
    mallory's graded again by plain nbgrader (Execute on) while the planted modules are still there."""
    course = generated_course(tmp_path_factory.mktemp("planted"))
    solutions = _solutions(course / "source" / ASSIGNMENT / LAB.name)
    submit(course, "mallory", {"exercise-1": PLANTER})
    for name in ("alice", "zed"):
        submit(course, name, solutions)
    try:
        classroom.grade_class(course, ASSIGNMENT, jobs=1, students=["mallory"], execute=True,
                              echo=lambda line: None, time_limit=3.0)
        error = None
    except Exception as err:  # noqa: BLE001 (the test below says which error it must be)
        error = err
    planted = sorted(p.name for p in course.glob("*.py") if p.name != "nbgrader_config.py")
    if not planted:  # the confined kernel could not write them: planted here, as an unconfined kernel would
        for name in ("threadpoolctl", "psutil"):
            (course / f"{name}.py").write_text(PLANTED_PAYLOAD)
    # plain nbgrader, Execute on, with the planted files in place (classroom would refuse): alice after
    # mallory, as in a class graded one after another, and mallory again
    runs = {s: classroom.nbgrader(course, "autograde", ASSIGNMENT, f"--student={s}", "--force")
            for s in ("alice", "mallory")}
    return {"course": course, "error": error, "planted": planted, "runs": runs}


def test_the_execute_kernel_cannot_plant_a_module(planted_course):
    """Under classroom --execute mallory's kernel runs confined: it writes no module into the course folder."""
    from attnlib.grading.nbgrader_step import landlock_abi

    if not landlock_abi():
        pytest.skip("this Linux kernel has no Landlock: the Execute kernel cannot be confined (a warning says so)")
    assert planted_course["planted"] == [], planted_course["planted"]
    assert planted_course["error"] is None, repr(planted_course["error"])


def _points(course, student):
    scores = classroom.gradebook_scores(course, ASSIGNMENT, student).get(ASSIGNMENT, {})
    return [scores.get(f"exercise-{n}-check") for n in range(1, 8)]


def test_a_planted_module_is_not_imported_by_nbgrader_and_changes_no_grade(planted_course):
    course = planted_course["course"]
    assert sorted(p.name for p in course.glob("*.py") if p.name != "nbgrader_config.py") == \
        ["psutil.py", "threadpoolctl.py"], "the modules are there (written by the kernel or, confined, by the test)"
    for run in planted_course["runs"].values():
        assert run.returncode == 0, run.stdout + run.stderr
    imported = sorted(p.name for p in course.glob("planted-*-imported.txt"))
    assert imported == [], f"nbgrader's process imported the planted modules: {imported}"
    assert _points(course, "alice") == [1] * 7, "another student's grade was changed"
    assert _points(course, "mallory") == [0] * 7


def test_classroom_names_the_planted_files_and_the_run_that_left_them(planted_course):
    """Where the kernel is not confined (no Landlock) mallory's run writes the modules and classroom names them."""
    if not planted_course["planted"]:
        pytest.skip("the confined kernel wrote nothing (see test_the_execute_kernel_cannot_plant_a_module); "
                    "classroom's naming of a run is tested with a run that writes, in "
                    "test_classroom_stops_at_a_planted_config_or_a_rewritten_submission_naming_the_run")
    error = planted_course["error"]
    assert isinstance(error, classroom.PlantedFiles), repr(error)
    text = str(error)
    assert "psutil.py" in text and "threadpoolctl.py" in text and "mallory" in text, text


def test_classroom_refuses_a_course_folder_with_importable_files(planted_course):
    course = planted_course["course"]
    with pytest.raises(classroom.PlantedFiles, match="psutil.py.*threadpoolctl.py"):
        classroom.grade_class(course, ASSIGNMENT, jobs=1, students=["zed"], echo=lambda line: None)
    assert _points(course, "zed") == [None] * 7, "nothing was graded"
    package = course / "attnlib"
    package.mkdir()
    (package / "__init__.py").write_text("")
    assert "attnlib/ (a package)" in classroom.unexpected_entries(course)


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
    options = " ".join(classroom.pinned_settings(execute=True, time_limit=7.0))
    for pin in ("--ExternalGrade.enabled=True", "--ExternalGrade.time_limit=7.0", "--SaveAutoGrades.enabled=True",
                "--OverwriteCells.enabled=True", "--ClearMetadataPreprocessor.enabled=False",
                "attnlib.grading.nbgrader_step.ExternalGrade",
                "attnlib.grading.nbgrader_step.ConfinedExecute", "--ConfinedExecute.enabled=True"):
        assert pin in options, pin
    assert "nbgrader.preprocessors.Execute'" not in options, "the unconfined Execute step is not used"
    assert "ConfinedExecute'" not in " ".join(classroom.pinned_settings(execute=False))


CONFIG_PLANTER = ("def top_words(tokens, weights, k):\n    return None  # not solved\n\n"
                  "try:  # runs in nbgrader's Execute kernel, as the grader\n"
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
          "if os.getcwd().split(os.sep)[-3:-2] == ['autograded']:  # only while nbgrader executes it\n"
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


@pytest.fixture(scope="module")
def hostile_course(tmp_path_factory):
    """Lab 1: vandal's answer cell, in nbgrader's Execute kernel, writes nbgrader_config.json (ExternalGrade off)
    and rewrites the other submissions; stub is the unsolved released notebook."""
    course = generated_course(tmp_path_factory.mktemp("hostile"), test_limits=False)
    submit(course, "vandal", {"exercise-1": CONFIG_PLANTER, "exercise-2": FORGER})
    for name in ("stub", "stub2"):
        submit(course, name, {})
    stub = (course / "submitted" / "stub" / ASSIGNMENT / LAB.name).read_text()
    try:
        classroom.grade_class(course, ASSIGNMENT, jobs=1, students=["vandal"], execute=True,
                              echo=lambda line: None, time_limit=3.0)
        error = None
    except Exception as err:  # noqa: BLE001 (the tests below say which error it must be)
        error = err
    wait_for_forgers()
    forged = {"classroom": _points(course, "vandal")}
    rewritten = (course / "submitted" / "stub" / ASSIGNMENT / LAB.name).read_text() != stub
    (course / "submitted" / "stub" / ASSIGNMENT / LAB.name).write_text(stub)
    (course / "submitted" / "stub2" / ASSIGNMENT / LAB.name).write_text(stub)
    by_kernel = sorted(p.name for p in course.iterdir() if p.name in ("nbgrader_config.json", "forged.txt"))
    for name in by_kernel:
        (course / name).unlink()
    # plain nbgrader autograde with the exported configuration (Execute on), as an instructor runs it
    plain_execute = classroom.nbgrader(course, "autograde", ASSIGNMENT, "--student=vandal", "--force")
    wait_for_forgers()
    forged["nbgrader autograde"] = _points(course, "vandal")
    by_kernel += [p.name for p in course.iterdir() if p.name in ("nbgrader_config.json", "forged.txt")]
    # the configuration file an unconfined kernel writes (CONFIG_PLANTER), written here when the kernel could
    # not: the command-line pins must beat it either way
    (course / "nbgrader_config.json").write_text(json.dumps({"ExternalGrade": {"enabled": False}}))
    planted = True
    # with the planted file still there: one run as classroom makes it (pinned options), one plain nbgrader
    pinned = classroom.grade_one(course, ASSIGNMENT, "stub", time_limit=3.0)
    plain = classroom.nbgrader(course, "autograde", ASSIGNMENT, "--student=stub2", "--force",
                               classroom.NO_EXECUTE)
    from attnlib.grading.nbgrader_step import landlock_abi

    return {"course": course, "error": error, "rewritten": rewritten, "planted": planted, "pinned": pinned,
            "plain": plain, "forged": forged, "landlock": landlock_abi(), "by_kernel": by_kernel,
            "plain_execute": plain_execute}


def test_a_process_left_by_the_execute_kernel_changes_no_grade(hostile_course):
    """adv7 F1: vandal's answer cell, in nbgrader's Execute kernel, starts a detached process that waits for
    nbgrader to exit and then sets every grade of vandal's to full marks.  The kernel runs confined
    (ConfinedExecute), so the process cannot write the gradebook: under classroom --execute and under plain
    nbgrader autograde with the exported configuration, vandal keeps 0 on every exercise."""
    if not hostile_course["landlock"]:
        pytest.skip("this Linux kernel has no Landlock: the Execute kernel cannot be confined (a warning says so)")
    run = hostile_course["plain_execute"]
    assert run.returncode == 0, run.stdout + run.stderr
    assert hostile_course["forged"] == {"classroom": [0] * 7, "nbgrader autograde": [0] * 7}, hostile_course["forged"]
    assert hostile_course["by_kernel"] == [], "the kernel or its process wrote into the course folder"
    assert not hostile_course["rewritten"], "the kernel rewrote another student's submission"
    assert hostile_course["error"] is None, repr(hostile_course["error"])


def test_classroom_stops_at_a_planted_config_or_a_rewritten_submission_naming_the_run(tmp_path, monkeypatch):
    """A run that leaves a configuration file and rewrites another submission (what an unconfined Execute
    kernel could do: CONFIG_PLANTER) stops the class, naming the run; the runs after it are not started."""
    course = tmp_path / "course"
    nbgrader_export.export([LAB], course)
    for name in ("vandal", "stub", "zed"):
        (course / "submitted" / name / ASSIGNMENT).mkdir(parents=True)
        (course / "submitted" / name / ASSIGNMENT / LAB.name).write_text("{}")
    started = []

    def run(course_, assignment, student, execute=False, time_limit=0):
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


def test_a_planted_config_cannot_switch_the_external_grader_off(hostile_course):
    """classroom's command line beats the planted nbgrader_config.json: the unsolved notebook scores 0; plain
    nbgrader with the file in force stops with ExternalGrade's error instead of grading from the kernel."""
    course = hostile_course["course"]
    assert hostile_course["pinned"]["returncode"] == 0, hostile_course["pinned"]["log"]
    assert _points(course, "stub") == [0] * 7
    plain = hostile_course["plain"]
    assert plain.returncode != 0 and "ExternalGrade is disabled" in plain.stdout + plain.stderr, \
        plain.stdout + plain.stderr
    assert _points(course, "stub2") in ([None] * 7, [0] * 7)


def test_the_kernel_launcher_confines_the_kernel_and_what_it_starts(tmp_path):
    """The Execute kernel's launcher: writes only into its scratch folder, also from a detached child started
    in a new session after the launcher has become the kernel (Landlock is inherited and cannot be undone)."""
    import os
    import subprocess
    import sys

    from attnlib.grading.nbgrader_step import LAUNCHER, landlock_abi

    if not landlock_abi():
        pytest.skip("this Linux kernel has no Landlock: the launcher warns and starts the kernel unconfined")
    scratch, outside = tmp_path / "scratch", tmp_path / "course"
    scratch.mkdir()
    outside.mkdir()
    probe = (
        "import os, subprocess, sys\n"
        "def attempt(path):\n"
        "    try:\n"
        "        open(path, 'w').write('x')\n"
        "        return 'wrote'\n"
        "    except OSError:\n"
        "        return 'refused'\n"
        f"here = [attempt({str(outside / 'a')!r}), attempt({str(scratch / 'a')!r})]\n"
        "child = subprocess.run([sys.executable, '-c', 'import sys; exec(sys.argv[1])', "
        "'try:\\n    open(' + repr(" + repr(str(outside / "b")) + ") + ', \"w\").write(\"x\")\\n    print(\"wrote\")\\n"
        "except OSError:\\n    print(\"refused\")'], start_new_session=True, capture_output=True, text=True)\n"
        "try:\n"
        f"    os.kill({os.getpid()}, 0)\n"
        "    signal = 'sent'\n"
        "except OSError:\n"
        "    signal = 'refused'\n"
        "print(here, child.stdout.strip(), signal, os.environ['ATTNLIB_KERNEL_LANDLOCK'])\n")
    done = subprocess.run([sys.executable, "-I", "-S", LAUNCHER, str(scratch), "--", sys.executable, "-c", probe],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    words = done.stdout.split()
    assert words[:3] == ["['refused',", "'wrote']", "refused"], done.stdout
    if int(words[4]) >= 6:  # Landlock's scoped signals (Linux 6.12+): the kernel cannot signal nbgrader or classroom
        assert words[3] == "refused", done.stdout
    assert sorted(p.name for p in outside.iterdir()) == []
