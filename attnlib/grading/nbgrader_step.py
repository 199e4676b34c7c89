"""The autograde step of our own: an nbgrader preprocessor that sets each grading cell's outcome.

nbgrader's ``autograde`` runs the submitted notebook in one kernel (the learner's cells and the
grading cells together), then ``SaveAutoGrades`` reads each grading cell's outputs: an error means
0 points, anything else full points.  Under our configuration (``nbgrader_config.py`` written by
``tools/nbgrader_export.py``) :class:`ExternalGrade` runs between the two, in nbgrader's own process:
for every grading cell ``exercise-N-check`` it takes the answer cell ``exercise-N`` from the
submitted notebook, grades it with :func:`attnlib.grading.grader.grade_source` (a fresh process,
numpy and the given helpers only) and rewrites the cell's outputs: what the kernel printed stays
(the self-check's display, so the learner sees the diagnosis they know), every error, stderr and
value output goes, and the external verdict is appended: an error output when the answer fails,
a line of text when it passes.  Nothing an answer cell does in the kernel decides a grade.

nbgrader puts its working folder (the course folder, which must stay writable) first on
``sys.path``, so a module a submission's kernel wrote there (``threadpoolctl.py``, ``psutil.py``,
...) would be imported by this process and could rewrite every verdict.  The exported
``nbgrader_config.py`` removes the course folder from ``sys.path`` before it imports anything
of ours; this module does it again when it is imported inside nbgrader and before each notebook
is graded (:func:`clean_sys_path`), and imports at once what grading imports lazily.
"""

from __future__ import annotations

import atexit
import os
import re
import shutil
import sys
import tempfile
import textwrap
from concurrent.futures import ThreadPoolExecutor


def course_roots() -> list[str]:
    """The folders of the running nbgrader application (course root and working folder); [] outside nbgrader."""
    try:
        from nbgrader.apps.baseapp import NbGrader
    except ImportError:  # pragma: no cover
        return []
    if not NbGrader.initialized():
        return []
    roots = [os.getcwd()]
    coursedir = getattr(NbGrader.instance(), "coursedir", None)
    if coursedir is not None and getattr(coursedir, "root", None):
        roots.append(coursedir.root)
    return roots


def clean_sys_path(roots=None) -> list[str]:
    """Remove from ``sys.path`` '' and '.', and every entry that is one of ``roots`` or inside one; return them.

    ``roots`` defaults to :func:`course_roots` (nothing but '' and '.' outside nbgrader).
    """
    roots = [os.path.realpath(r) for r in (course_roots() if roots is None else roots)]

    def inside(entry: str) -> bool:
        if entry in ("", "."):
            return True
        path = os.path.realpath(entry)
        return any(path == r or path.startswith(r.rstrip(os.sep) + os.sep) for r in roots)

    removed = [p for p in sys.path if inside(p)]
    sys.path[:] = [p for p in sys.path if not inside(p)]
    return removed


clean_sys_path()
# What grading (or nbgrader) would otherwise import later, when a submission's kernel has run:
# imported now, from where it is installed.
for _name in ("threadpoolctl", "psutil", "attnlib.translate", "attnlib.vision"):
    try:
        __import__(_name)
    except ImportError:  # pragma: no cover (optional)
        pass

from nbformat.v4 import new_output  # noqa: E402 (after the sys.path cleanup)
from traitlets import Float, Int  # noqa: E402 (after the sys.path cleanup)

from attnlib.checks import failed  # noqa: E402 (after the sys.path cleanup)
from attnlib.grading.grader import grade_source, lab_of  # noqa: E402 (after the sys.path cleanup)
from attnlib.grading.sandbox import TIME_LIMIT  # noqa: E402 (after the sys.path cleanup)

try:  # nbgrader is an instructor's dependency, not a learner's
    from jupyter_client.manager import AsyncKernelManager
    from nbgrader.preprocessors import Execute as _Execute
    from nbgrader.preprocessors import NbGraderPreprocessor as _Base
except ImportError:  # pragma: no cover
    from nbconvert.preprocessors import Preprocessor as _Base
    _Execute = AsyncKernelManager = None

LAUNCHER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "kernel_launcher.py")


def landlock_abi() -> int:
    """The Landlock ABI of the running Linux kernel (0: none, nothing can be confined)."""
    if not sys.platform.startswith("linux"):
        return 0
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    return max(int(libc.syscall(444, None, ctypes.c_size_t(0), ctypes.c_uint32(1))), 0)


if AsyncKernelManager is not None:
    class ConfinedKernelManager(AsyncKernelManager):
        """A kernel manager whose kernels start under :mod:`attnlib.grading.kernel_launcher`.

        The kernel (and every process it starts, a detached one included) can write only in a private
        temporary folder made for it, removed when nbgrader exits; IPython's history is off.
        """

        _scratch = None

        def format_kernel_cmd(self, extra_arguments=None):
            cmd = super().format_kernel_cmd(extra_arguments)
            if self._scratch is None:
                self._scratch = tempfile.mkdtemp(prefix="attnlib-kernel-")
                atexit.register(shutil.rmtree, self._scratch, True)
            return [sys.executable, "-I", "-S", LAUNCHER, self._scratch, "--", *cmd,
                    "--HistoryManager.enabled=False"]

    class ConfinedExecute(_Execute):
        """nbgrader's Execute step with the kernel confined (:class:`ConfinedKernelManager`).

        The submission's cells still run (their outputs are the feedback), but nothing they start can
        write the gradebook, ``autograded/`` or anything else outside the kernel's temporary folder.
        """

        def __init__(self, *args, **kwargs):
            kwargs["kernel_manager_class"] = ConfinedKernelManager
            super().__init__(*args, **kwargs)

        def preprocess(self, nb, resources, *args, **kwargs):
            if not landlock_abi():
                self.log.warning("ConfinedExecute: this kernel has no Landlock (Linux 5.13+): the Execute kernel "
                                 "runs the submission with your rights and can write the gradebook; grade "
                                 "without the Execute step (classroom's default) or on a newer kernel")
            return super().preprocess(nb, resources, *args, **kwargs)

CHECK_ID = re.compile(r"^exercise-(\d+)-check$")
ANSWER_ID = re.compile(r"^exercise-(\d+)$")
VERDICT = "Graded outside your notebook"


def _meta(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {}) or {}


def verdicts(nb, lab: str, workers: int = 1, time_limit: float = TIME_LIMIT) -> dict[int, object]:
    """Exercise number -> external verdict, for every grading cell of ``nb`` (a lab's notebook)."""
    answers = {}
    for cell in nb.cells:
        match = ANSWER_ID.match(str(_meta(cell).get("grade_id", "")))
        if match and cell.cell_type == "code" and _meta(cell).get("solution"):
            answers[int(match.group(1))] = cell.source
    numbers = []
    for cell in nb.cells:
        match = CHECK_ID.match(str(_meta(cell).get("grade_id", "")))
        if match and _meta(cell).get("grade"):
            numbers.append(int(match.group(1)))

    def one(number):
        source = answers.get(number)
        if source is None:
            return failed(f"Exercise {number}", "no answer cell for this exercise was found.")
        return grade_source(lab, number, source, time_limit=time_limit)

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        return dict(zip(numbers, pool.map(one, numbers), strict=True))


def set_outcome(cell, result) -> None:
    """Keep the kernel's displays, drop what nbgrader would score, append the external verdict.

    The self-check's result (the cell's value) becomes display data, so the learner still sees
    its diagnosis first; nbgrader scores values and errors, not displays.
    """
    kept = []
    for o in cell.get("outputs", []):
        kind = o.get("output_type")
        if kind == "execute_result":
            kept.append(new_output("display_data", data=o.get("data", {}), metadata=o.get("metadata", {})))
        elif kind == "display_data" or (kind == "stream" and o.get("name") == "stdout"):
            kept.append(o)
    text = textwrap.fill(str(result), width=72, break_on_hyphens=False)
    if result.passed:
        kept.append(new_output("stream", name="stdout", text=f"{VERDICT}: {text}\n"))
    else:
        kept.append(new_output("error", ename=VERDICT, evalue=str(result),
                               traceback=[f"{VERDICT}:", *text.splitlines()]))
    cell["outputs"] = kept


class ExternalGrade(_Base):
    """Between nbgrader's Execute and SaveAutoGrades: each grading cell's outcome from the external grader."""

    workers = Int(2, help="exercises graded at once (each in its own process)").tag(config=True)
    time_limit = Float(TIME_LIMIT, help="seconds for one call of a learner's function").tag(config=True)

    def __call__(self, nb, resources):
        """Never skipped: a configuration that lists this step but disables it is refused, loudly.

        (nbconvert skips a disabled preprocessor silently, and SaveAutoGrades would then score the
        grading cells from what they did in the kernel that ran the student's code.)
        """
        if not self.enabled:
            raise RuntimeError(
                "ExternalGrade is disabled (ExternalGrade.enabled = False) by a configuration file or option: "
                "the grades would come from the kernel that ran the student's code, so nothing is graded.  "
                "Look for nbgrader_config.json or another configuration file in the course folder, the jupyter "
                "configuration folders and the working folder, remove it, and check the grades given since it "
                "appeared (python -m attnlib.grading.classroom pins the setting on the command line).")
        return self.preprocess(nb, resources)

    def preprocess(self, nb, resources):
        removed = clean_sys_path()  # again: the submission's kernel ran since this module was imported
        if removed:
            self.log.warning("ExternalGrade: removed %s from sys.path (the course folder)", removed)
        notebook = resources.get("nbgrader", {}).get("notebook", "")
        lab = lab_of(notebook)
        if lab is None:  # fail safe: nothing is graded in the kernel that ran the student's code
            self.log.error("ExternalGrade: %s is not one of the labs; its grading cells score 0", notebook)
            for cell in nb.cells:
                match = CHECK_ID.match(str(_meta(cell).get("grade_id", "")))
                if match and _meta(cell).get("grade"):
                    set_outcome(cell, failed(f"Exercise {match.group(1)}", "the grader knows no such notebook."))
            return nb, resources
        results = verdicts(nb, lab, self.workers, self.time_limit)
        for cell in nb.cells:
            match = CHECK_ID.match(str(_meta(cell).get("grade_id", "")))
            if match and int(match.group(1)) in results:
                set_outcome(cell, results[int(match.group(1))])
        lost = [n for n, r in results.items() if not r.passed]
        self.log.info("ExternalGrade: %s, %d of %d exercises right%s", notebook, len(results) - len(lost),
                      len(results), f" (not: {lost})" if lost else "")
        return nb, resources
