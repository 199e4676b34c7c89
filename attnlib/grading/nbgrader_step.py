"""The autograde step of our own: an nbgrader preprocessor that sets each grading cell's outcome.

nbgrader's ``SaveAutoGrades`` reads each grading cell's outputs: an error means 0 points, anything
else full points.  Under our configuration (``nbgrader_config.py`` written by
``tools/nbgrader_export.py``) nbgrader's Execute step is not in the list, so the submitted notebook
never runs in a kernel, and :class:`ExternalGrade` runs before SaveAutoGrades, in nbgrader's own process:
for every grading cell ``exercise-N-check`` it takes the answer cell ``exercise-N`` from the
submitted notebook, grades it with :func:`attnlib.grading.grader.grade_source` (a fresh process,
numpy and the given helpers only, under seccomp and Landlock) and rewrites the cell's outputs: what
the student's own run printed stays (the self-check's display, so the learner sees the diagnosis they
know), every error, stderr and value output goes, and the external verdict is appended: an error
output when the answer fails, a line of text when it passes.  A submission's code runs nowhere else.

nbgrader puts its working folder (the course folder, which must stay writable) first on
``sys.path``, so a module someone wrote there (``threadpoolctl.py``, ``psutil.py``,
...) would be imported by this process and could rewrite every verdict.  The exported
``nbgrader_config.py`` removes the course folder from ``sys.path`` before it imports anything
of ours; this module does it again when it is imported inside nbgrader and before each notebook
is graded (:func:`clean_sys_path`), and imports at once what grading imports lazily.
"""

from __future__ import annotations

import os
import re
import sys
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
# What grading (or nbgrader) would otherwise import later, once the course folder was read:
# imported now, from where it is installed.
for _name in ("threadpoolctl", "psutil", "attnlib.translate", "attnlib.vision"):
    try:
        __import__(_name)
    except ImportError:  # pragma: no cover (optional)
        pass

from nbformat.v4 import new_output  # noqa: E402 (after the sys.path cleanup)
from traitlets import Float, Int  # noqa: E402 (after the sys.path cleanup)

from attnlib.checks import CheckResult, failed  # noqa: E402 (after the sys.path cleanup)
from attnlib.grading.grader import grade_source, lab_of  # noqa: E402 (after the sys.path cleanup)
from attnlib.grading.sandbox import TIME_LIMIT  # noqa: E402 (after the sys.path cleanup)

try:  # nbgrader is an instructor's dependency, not a learner's
    from nbgrader.preprocessors import NbGraderPreprocessor as _Base
except ImportError:  # pragma: no cover
    from nbconvert.preprocessors import Preprocessor as _Base

CHECK_ID = re.compile(r"^exercise-(\d+)-check$")
ANSWER_ID = re.compile(r"^exercise-(\d+)$")
VERDICT = "Graded outside your notebook"


def _meta(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {}) or {}


def verdicts(nb, lab: str, workers: int = 1, time_limit: float = TIME_LIMIT) -> dict[int, object]:
    """Exercise number -> external verdict, for every grading cell of ``nb`` (a lab's notebook)."""
    answers, copies = {}, {}
    for cell in nb.cells:
        match = ANSWER_ID.match(str(_meta(cell).get("grade_id", "")))
        if match and cell.cell_type == "code" and _meta(cell).get("solution"):
            note = cell.get("metadata", {}).get("attnlib", {})
            source = note.get("source")  # several changed copies, joined by OneCellPerGradeId
            answers[int(match.group(1))] = source if isinstance(source, str) else cell.source
            n = note.get("copies")
            if isinstance(n, int) and n > 1:
                copies[int(match.group(1))] = n
    numbers = []
    for cell in nb.cells:
        match = CHECK_ID.match(str(_meta(cell).get("grade_id", "")))
        if match and _meta(cell).get("grade"):
            numbers.append(int(match.group(1)))

    def one(number):
        source = answers.get(number)
        if source is None:
            return failed(f"Exercise {number}", "no answer cell for this exercise was found.")
        result = grade_source(lab, number, source, time_limit=time_limit)
        if number in copies:  # OneCellPerGradeId left one of several copied cells graded: say which
            result = CheckResult(result.name, result.passed, (
                f"{result.message} (Your notebook had {copies[number]} cells for Exercise {number}, copies of one "
                "another; the grader graded the code copies you changed, in notebook order, as Run All runs them. "
                "Keep one answer cell and delete the others.)"))
        return result

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        return dict(zip(numbers, pool.map(one, numbers), strict=True))


def set_outcome(cell, result) -> None:
    """Keep the student's own displays, drop what nbgrader would score, append the external verdict.

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
    """Before SaveAutoGrades: each grading cell's outcome from the external grader."""

    workers = Int(2, help="exercises graded at once (each in its own process)").tag(config=True)
    time_limit = Float(TIME_LIMIT, help="seconds for one call of a learner's function").tag(config=True)

    def __call__(self, nb, resources):
        """Never skipped: a configuration that lists this step but disables it is refused, loudly.

        (nbconvert skips a disabled preprocessor silently, and SaveAutoGrades would then score the
        grading cells from the outputs stored in the submission.)  Nor does it run after nbgrader's
        Execute step (the student's notebook in a kernel with the grader's rights).
        """
        if not self.enabled:
            raise RuntimeError(
                "ExternalGrade is disabled (ExternalGrade.enabled = False) by a configuration file or option: "
                "the grades would come from the outputs stored in the student's notebook, so nothing is graded.  "
                "Look for nbgrader_config.json or another configuration file in the course folder, the jupyter "
                "configuration folders and the working folder, remove it, and check the grades given since it "
                "appeared (python -m attnlib.grading.classroom pins the setting on the command line).")
        steps = [getattr(s, "__name__", str(s)) for s in
                 self.config.get("Autograde", {}).get("autograde_preprocessors", []) or []]
        if any(str(s).rsplit(".", 1)[-1].endswith("Execute") for s in steps):
            raise RuntimeError(
                f"the autograde steps include nbgrader's Execute ({steps}): it would run the student's notebook in a "
                "kernel with your rights.  Grading never needs it (ExternalGrade runs each answer cell in a sandbox); "
                "remove the configuration file that adds it (nbgrader_config.json, ...) and grade again.")
        return self.preprocess(nb, resources)

    def preprocess(self, nb, resources):
        removed = clean_sys_path()  # again: something may have put it back since this module was imported
        if removed:
            self.log.warning("ExternalGrade: removed %s from sys.path (the course folder)", removed)
        notebook = resources.get("nbgrader", {}).get("notebook", "")
        lab = lab_of(notebook)
        if lab is None:  # fail safe: nothing is graded from the outputs the student stored
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


# --- copy-pasted cells (adv9 F2) ------------------------------------------------------------


def _unchanged(cell) -> bool:
    """The cell as released: nbgrader's checksum, stored at generate_assignment, still matches."""
    from nbgrader.utils import compute_checksum

    stored = _meta(cell).get("checksum")
    try:
        return stored is not None and compute_checksum(cell) == stored
    except (KeyError, ValueError, TypeError):
        return False


def _released_type(cells, grade_id: str) -> str:
    """The cell type the course released for ``grade_id``: an unchanged copy's (the checksum covers the
    type), else code for an exercise's answer cell (``exercise-N``, always code in the labs), else the first's."""
    for cell in cells:
        if _unchanged(cell):
            return cell.cell_type
    return "code" if ANSWER_ID.match(grade_id) else cells[0].cell_type


def _parses(source: str) -> bool:
    import ast

    from attnlib.grading.sandbox import python_source

    try:
        ast.parse(python_source(source))
    except (SyntaxError, ValueError):
        return False
    return True


def run_all_source(cells) -> str:
    """What Run All leaves in force from several changed code copies of one answer cell: their sources in
    notebook order, each as plain Python (IPython's ``%%time`` and the like work per cell), the copies that
    cannot be parsed left out (Run All defines nothing from them).  Each copy after the first begins with the
    sandbox's CELL_BREAK: a line that raises stops its own copy only, as a cell does in Run All (adv18 F1)."""
    from attnlib.grading.sandbox import CELL_BREAK, python_source

    parsed = [c for c in cells if _parses(c.source)]
    if not parsed:
        return cells[-1].source
    return f"\n\n{CELL_BREAK!r}\n".join(python_source(c.source).rstrip("\n") for c in parsed) + "\n"


def keep_one_cell_per_grade_id(nb) -> dict[str, int]:
    """Leave one cell with each ``grade_id``; the other copies become ordinary cells (their ``nbgrader``
    metadata removed).  Return ``{grade_id: number of copies}`` for the ids that had more than one.

    An answer cell (a solution cell) is graded as Run All would leave it (adv10 F2).  Only copies of the
    released cell type count (a copy turned into a markdown note is a note, not an answer); of those, the
    copies the student changed are joined in notebook order and graded together (stored in the kept cell's
    ``metadata.attnlib.source``): a solved cell copied into a try-out line, split in two by JupyterLab's
    *Split cell* (both halves keep the metadata), or split at a helper's ``def`` is graded with everything
    its copies define, and a later changed definition overrides an earlier one, as on Run All.  A copy of the
    untouched stub never counts when another copy was changed; when none was, the first copy is graded.  The
    cell that keeps the metadata is the last changed copy of the released type (the first copy when none).
    For a locked cell (a grading cell), the first: nbgrader restores its source anyway.  nbgrader's own
    DeduplicateIds keeps the last copy of every kind and sets the others' metadata to ``{}``, which its
    CheckCellMetadata then rejects (nbgrader#1083), so the whole notebook went ungraded.
    """
    groups: dict[str, list] = {}
    for cell in nb.cells:
        meta = _meta(cell)
        if meta.get("solution"):  # only this step writes what the grader reads here, never the submission
            for key in ("copies", "source"):
                cell.get("metadata", {}).get("attnlib", {}).pop(key, None)
        if meta.get("grade_id") is not None and (meta.get("grade") or meta.get("solution") or meta.get("locked")):
            groups.setdefault(str(meta["grade_id"]), []).append(cell)
    copies = {}
    for grade_id, cells in groups.items():
        if len(cells) < 2:
            continue
        keep = cells[0]
        if any(_meta(c).get("solution") for c in cells):
            kind = _released_type(cells, grade_id)
            same = [c for c in cells if c.cell_type == kind] or cells
            changed = [c for c in same if not _unchanged(c)]
            keep = changed[-1] if changed else same[0]
            note = {"copies": len(cells)}  # for the feedback
            if kind == "code" and len(changed) > 1:
                note["source"] = run_all_source(changed)
            keep.metadata["attnlib"] = {**keep.metadata.get("attnlib", {}), **note}
        for cell in cells:
            if cell is not keep:
                del cell.metadata["nbgrader"]
        copies[grade_id] = len(cells)
    return copies


class OneCellPerGradeId(_Base):
    """Replaces nbgrader's DeduplicateIds in the sanitize steps (see :func:`keep_one_cell_per_grade_id`)."""

    def __call__(self, nb, resources):  # never skipped, even if a configuration disables it
        return self.preprocess(nb, resources)

    def preprocess(self, nb, resources):
        for grade_id, n in keep_one_cell_per_grade_id(nb).items():
            self.log.warning("Cell with id '%s' exists %d times (copied cells): an answer is graded from the code "
                             "copies the student changed, joined in notebook order as Run All runs them; a grading "
                             "cell from the first copy; the other copies are ordinary cells now", grade_id, n)
        return nb, resources


# --- raw HTML in a student's markdown (adv9 F4) ----------------------------------------------

_TAG = re.compile(r"<(?=[A-Za-z/!?])")  # where HTML would start a tag, a comment or a declaration
# an inline link or image destination: after "](", blanks (a line break too), then either <...> (may hold
# blanks) or the run up to the next blank, parentheses and all ("](java(x)script:" is one destination)
_LINK = re.compile(r"(\]\(\s*)(<[^>\n]*>?|[^\s<]*)")
_DEFINITION = re.compile(r"\]:")  # "[label]:" starts a reference definition, in any container, any line
_SCHEME = re.compile(r"(?i)\b(javascript|vbscript|data|livescript)(\s*):")
_SAFE_SCHEMES = ("http://", "https://", "mailto:", "attachment:")


def escape_markdown(text: str) -> str:
    """``text`` with no raw HTML left and no link to anything but http(s)/mailto/attachment or a relative address.

    Render-independent (adv14 F4): every ``<`` that would open a tag, comment or declaration becomes
    ``&lt;``; every ``]:`` becomes ``]\\:``, so no reference definition exists anywhere (inside a blockquote
    or a list, destination on the next line: none), the text still shows ``]:``; an inline link or image
    whose destination holds a colon or an entity and is not http(s)/mailto/attachment gets ``#blocked:`` in
    front; and the words ``javascript``/``vbscript``/``data``/``livescript`` followed by a colon get a
    zero-width space before the colon wherever they stand, which no browser reads as a scheme.
    """
    def link(match):
        dest = match.group(2)
        bare = dest.lstrip("<").lstrip()
        if (":" in dest or "&" in dest or "\\" in dest) and not bare.lower().startswith(_SAFE_SCHEMES):
            return match.group(1) + "#blocked:" + dest.lstrip("<")
        return match.group(0)

    text = _TAG.sub("&lt;", text)
    text = _DEFINITION.sub(r"]\\:", text)
    text = _LINK.sub(link, text)
    return _SCHEME.sub("\\1\\2\u200b:", text)


def _trusted_markdown(resources) -> set[str]:
    """The markdown of the course's own notebook (source/<assignment>/<notebook>.ipynb): cells the student
    left as they were stay as written (the labs' hints use <details>)."""
    import nbformat

    try:
        from nbgrader.apps.baseapp import NbGrader
    except ImportError:  # pragma: no cover
        return set()
    info = resources.get("nbgrader", {})
    if not NbGrader.initialized() or not info.get("assignment") or not info.get("notebook"):
        return set()
    coursedir = getattr(NbGrader.instance(), "coursedir", None)
    if coursedir is None:
        return set()
    trusted = set()
    for step in (coursedir.source_directory, coursedir.release_directory):
        try:
            folder = coursedir.format_path(step, ".", info["assignment"])
            source = nbformat.read(os.path.join(folder, info["notebook"] + ".ipynb"), as_version=4)
        except (OSError, ValueError, KeyError, TypeError):
            continue
        trusted |= {c.source for c in source.cells if c.cell_type == "markdown"}
    return trusted


class EscapeStudentMarkdown(_Base):
    """An autograde step: every markdown cell the student wrote or changed holds no raw HTML afterwards.

    nbgrader's formgrader (Manual Grading) and the feedback render the autograded notebook's markdown as
    HTML, unsanitized, in the instructor's Jupyter server: an ``<img onerror>`` in an open question's answer
    would run as the instructor there.  Cells identical to one of the course's own notebook stay as they are.
    """

    def __call__(self, nb, resources):  # never skipped, even if a configuration disables it
        return self.preprocess(nb, resources)

    def preprocess(self, nb, resources):
        trusted = _trusted_markdown(resources)
        changed = 0
        for cell in nb.cells:
            if cell.cell_type != "markdown" or cell.source in trusted:
                continue
            safe = escape_markdown(cell.source)
            if safe != cell.source:
                cell.source = safe
                changed += 1
        if changed:
            self.log.info("EscapeStudentMarkdown: raw HTML or unsafe links escaped in %d markdown cells", changed)
        return nb, resources
