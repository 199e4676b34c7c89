"""Launch buttons that open something runnable: the student version of a lab, or nothing.

sphinx-book-theme gives every executed page a Binder and a Colab button that open the page's own
source file (its ``add_launch_buttons`` handler, ``html-page-context`` at priority 501).  For this
book that is wrong twice: a lab's buttons would open the solved lab, and a prose page's buttons open
a MyST Markdown file, which Colab cannot open and Binder (no jupytext) shows as text.  This Sphinx
extension runs after the theme's handler and rewrites its launch group:

- a lab page ``notebooks/NN-slug``: the buttons open ``notebooks/student/NN-slug.ipynb``; an
  explicit "solutions" button per service opens the solved lab;
- a chapter's prose page ``book/NN-slug`` whose lab exists: the buttons open that lab's student version;
- any other page: no launch buttons.
"""

from __future__ import annotations

import copy
from pathlib import Path

LABS, STUDENT = "notebooks", "notebooks/student"


def lab_of(pagename: str, srcdir: Path) -> str | None:
    """The lab (``NN-slug``) that a page's launch buttons should open, or None."""
    folder, _, stem = pagename.rpartition("/")
    if folder in (LABS, "book") and (srcdir / LABS / f"{stem}.ipynb").is_file():
        return stem
    return None


def _retarget(button: dict, pagename: str, target: str) -> dict:
    """A copy of a theme button whose URL ends in ``target`` instead of the page's own source file."""
    button = copy.deepcopy(button)
    head, sep, tail = button["url"].rpartition(pagename)
    if not sep or "/" in tail:
        raise ValueError(f"cannot find {pagename!r} at the end of the launch URL {button['url']!r}")
    button["url"] = head + target
    return button


def _relaunch(app, pagename, templatename, context, doctree) -> None:
    buttons = context.get("header_buttons") or []
    group = next((b for b in buttons if b.get("label") == "launch-buttons"), None)
    if group is None:
        return
    lab = lab_of(pagename, Path(app.srcdir))
    if lab is None:
        buttons.remove(group)
        return
    student, solved = [], []
    for button in group["buttons"]:
        if button.get("type") != "link":
            continue
        service = button["text"]
        to_student = _retarget(button, pagename, f"{STUDENT}/{lab}.ipynb")
        to_student["tooltip"] = f"Open the lab (student version, exercises to do) on {service}"
        student.append(to_student)
        if pagename.startswith(LABS + "/"):
            to_solved = _retarget(button, pagename, f"{LABS}/{lab}.ipynb")
            to_solved["text"] = f"{service}: solutions"
            to_solved["tooltip"] = f"Open the solved lab on {service}"
            solved.append(to_solved)
    group["buttons"] = student + solved


def setup(app):
    app.connect("html-page-context", _relaunch, priority=502)  # after the theme's add_launch_buttons (501)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
