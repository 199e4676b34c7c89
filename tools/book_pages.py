"""The book's reading aids, a Sphinx extension (``_config.yml``: ``sphinx.local_extensions``).

* **Experiment index.** Every experiment box on a page is an admonition of class ``experiment``
  (``:class: note experiment dropdown``: closed until a reader opens it) whose items start
  **Compares:**, **Controls for:**, **Cannot show:** and **Tied by**. The ``{experiment-index}``
  directive on "How we know" collects the boxes of one chapter and its sub-pages into a table, so
  the page and the index cannot drift apart: the box on the page is the one source.
* **Reading time.** Each chapter's core page (``book/0N-*.md``) and each deeper page shows how long
  a newcomer takes to read it, counted from its words, the code, figures and displayed equations it
  shows (:func:`reading_minutes`); so does the intro, but not the reference pages (glossary, notation,
  …). Each lab shows a working time from its text and its number of exercises (:func:`lab_minutes`).
* **Forward references.** ``{ahead}`term``` links to a glossary term that a later page defines,
  and says so, so that a reader (and ``tests/test_glossary.py``) can tell it from a term used
  before it was explained.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

from docutils import nodes
from docutils.parsers.rst import directives
from sphinx import addnodes
from sphinx.errors import NoUri
from sphinx.util.docutils import SphinxDirective, SphinxRole, new_document

FIELDS = ("Compares", "Controls for", "Cannot show", "Tied by")
REFERENCE_PAGES = {"book/how-we-know", "book/glossary", "book/notation", "book/instructor-guide",
                   "book/bibliography"}

# A newcomer's careful first reading of technical prose, and the time a code line, a figure, a displayed
# equation and a number take.  Fitted to the estimates of 19 pages by fresh readers in the newcomer role
# (round r61; rounds r58-r60 said the same): words and code alone at the old rates (150 words, 15 lines a
# minute) gave 1.1 to 2.9 times too little, least on prose pages and most on pages dense with numbers;
# with 5 s for every number a reader meets (a token with a digit: "0.79", "64-wide", "1/16") the times
# came within 5 minutes of the readers' (root mean square), with no page's bias above 9 minutes.
# Refitted to rounds r88-r93 (26 pages, 10-14 readers each, the median reader per page): at 150 words a
# minute the shown times were 3.2 minutes short on average (the median reader took 1.2 times as long;
# root mean square 4.3 minutes); at 120 words a minute, the other rates unchanged, 0.7 minutes short (2.8).
WORDS_PER_MINUTE = 120
CODE_LINES_PER_MINUTE = 8
MINUTES_PER_FIGURE = 0.5
MINUTES_PER_EQUATION = 0.25
MINUTES_PER_NUMBER = 5 / 60
# A lab: reading its text (hints included) while running its cells, slower than a page, then a first attempt
# at each exercise plus one round with the check's diagnosis.  Fitted to fresh newcomer readers' estimates of
# the seven labs (rounds r73-r75): a flat 10 minutes to run plus 10 per exercise put Lab 2, the lab with the
# most text, 20-30 minutes short; these rates come within 10 minutes of the readers on every lab.
LAB_WORDS_PER_MINUTE = 100
MINUTES_PER_EXERCISE = 8
EXERCISE_TITLE = re.compile(r"Exercise \d+:")


# --- experiment boxes -------------------------------------------------------------------------

class experiment_index(nodes.General, nodes.Element):
    """Placeholder for the table of one chapter's experiments, filled when the page is resolved."""


class ExperimentIndex(SphinxDirective):
    """``{experiment-index} book/03-how-attention-works``: the chapter page and its sub-pages."""

    required_arguments = 1
    option_spec = {"class": directives.class_option}

    def run(self):
        node = experiment_index()
        node["chapter"] = self.arguments[0].strip().lstrip("/")
        return [node]


def _box_fields(box: nodes.admonition, docname: str) -> dict:
    """Title, anchor and the four labelled items of an experiment box; a clear error otherwise."""
    title = next(iter(box.findall(nodes.title)), None)
    if title is None or not title.astext().startswith("Experiment: "):
        raise ValueError(f"{docname}: an experiment box must be titled 'Experiment: …', got {title!r}")
    if not box["ids"]:
        raise ValueError(f"{docname}: the experiment box {title.astext()!r} needs a :name: (exp-…)")
    items = {}
    for item in box.findall(nodes.list_item):
        first = item.next_node(nodes.strong)
        if first is None:
            continue
        label = first.astext().strip().rstrip(":")
        if label in FIELDS:
            items[label] = item
    missing = [f for f in FIELDS if f not in items]
    if missing:
        raise ValueError(f"{docname}: the experiment box {title.astext()!r} has no item(s) {missing}; "
                         f"expected items starting **{'**, **'.join(FIELDS)}**")
    return {"title": title.astext()[len("Experiment: "):], "id": box["ids"][0], "items": items}


def _link_tied_by(item: nodes.list_item, docname: str) -> None:
    """The label "Tied by:" of a box links to "How we know", which says what guarded, glued, cited … mean
    (a reader met "Tied by: guarded, glued" in every box with no word on what it meant: r61d)."""
    label = item.next_node(nodes.strong)
    text = label.astext()
    label.children = []
    label += addnodes.pending_xref("", nodes.inline(text, text), refdomain="std", reftype="doc",
                                   reftarget="/book/how-we-know", refexplicit=True, refwarn=True, refdoc=docname)


# what each word of a box's "Tied by" means, said in the box: readers rarely follow the label's link (r102e, r102c)
TIES = {"guarded": "an assert checks it at build", "glued": "its numbers come from the code",
        "shown": "code and output on the page", "illustration": "inputs or weights set by hand",
        "cited": "from a paper", "tested": "by the test suite", "recorded run": "one stored run"}


def _gloss_tied_by(item: nodes.list_item) -> None:
    """Say after each word of "Tied by: guarded, glued" what it means: "guarded (an assert checks it at build)"."""
    paragraph = item.next_node(nodes.paragraph)
    for i, child in enumerate(paragraph.children):
        if isinstance(child, nodes.Text) and child.astext().strip(" :"):
            words = [w.strip() for w in child.astext().strip(" :").split(",")]
            unknown = [w for w in words if w not in TIES]
            if unknown:
                raise ValueError(f"Tied by: {unknown} is not one of {sorted(TIES)} (book/how-we-know.md explains them)")
            paragraph[i] = nodes.Text(" " + ", ".join(f"{w} ({TIES[w]})" for w in words))


SOLUTION_MARKERS = ("### BEGIN SOLUTION", "### END SOLUTION")


def drop_solution_markers(app, doctree):
    """A lab's solution cell, as the site shows it, without nbgrader's markers and the stub's ``# Hint:`` line:
    readers took "### BEGIN SOLUTION" for part of the code (tools/student.py and nbgrader use them)."""
    if not app.env.docname.startswith("notebooks/"):
        return
    for block in doctree.findall(nodes.literal_block):
        lines = block.astext().split("\n")
        if not any(line.strip() in SOLUTION_MARKERS for line in lines):
            continue
        kept, after_begin = [], False
        for line in lines:
            if line.strip() in SOLUTION_MARKERS:
                after_begin = line.strip() == SOLUTION_MARKERS[0]
                continue
            if not (after_begin and line.strip().startswith("# Hint:")):
                kept.append(line)
            after_begin = False
        text = "\n".join(kept)
        block.children = [nodes.Text(text)]
        block.rawsource = text


def collect_experiments(app, doctree):
    env = app.env
    store = env.__dict__.setdefault("attnlib_experiments", {})
    boxes = []
    for box in doctree.findall(nodes.admonition):
        if "experiment" in box["classes"]:
            fields = _box_fields(box, env.docname)
            _link_tied_by(fields["items"]["Tied by"], env.docname)
            boxes.append({"title": fields["title"], "id": fields["id"],
                          "items": {k: v.deepcopy() for k, v in fields["items"].items()}})
            _gloss_tied_by(fields["items"]["Tied by"])  # in the box; the index on How we know keeps the bare words
    store[env.docname] = boxes


def purge_experiments(app, env, docname):
    env.__dict__.setdefault("attnlib_experiments", {}).pop(docname, None)


def merge_experiments(app, env, docnames, other):
    env.__dict__.setdefault("attnlib_experiments", {}).update(
        {d: other.attnlib_experiments[d] for d in docnames if d in getattr(other, "attnlib_experiments", {})})


def chapter_docs(env, chapter: str) -> list[str]:
    """The chapter page followed by its sub-pages, in the order of the table of contents."""
    if chapter not in env.found_docs:
        raise ValueError(f"experiment-index: no page {chapter!r}")
    order = [chapter]
    for child in env.toctree_includes.get(chapter, []):
        order += chapter_docs(env, child)
    return order


def _item_body(item: nodes.list_item) -> list[nodes.Node]:
    """The item's content without its bold label."""
    body = [child.deepcopy() for child in item.children]
    first = body[0] if body else None
    if isinstance(first, nodes.paragraph):
        while first.children and isinstance(first[0], nodes.Text) and not first[0].astext().strip():
            first.remove(first[0])  # MyST may leave an empty text node before the label
        if first.children and isinstance(first[0], nodes.strong):
            first.remove(first[0])
        if first.children and isinstance(first[0], nodes.Text):
            first[0] = nodes.Text(first[0].astext().lstrip(" :"))
    return body


def _cell(*children) -> nodes.entry:
    entry = nodes.entry()
    for child in children:
        entry += child
    return entry


def fill_experiment_index(app, doctree, docname):
    env = app.env
    store = getattr(env, "attnlib_experiments", {})
    for node in list(doctree.findall(experiment_index)):
        table = nodes.table(classes=["experiment-index", "colwidths-given"])
        group = nodes.tgroup(cols=4)
        table += group
        for width in (22, 26, 24, 28):
            group += nodes.colspec(colwidth=width)
        head = nodes.thead()
        group += head
        row = nodes.row()
        for label in ("Experiment", "Compares", "Controls for", "Cannot show"):
            row += _cell(nodes.paragraph(text=label))
        head += row
        body = nodes.tbody()
        group += body
        count = 0
        for source in chapter_docs(env, node["chapter"]):
            for box in store.get(source, []):
                count += 1
                link = nodes.paragraph()
                ref = nodes.reference("", box["title"], internal=True)
                try:
                    ref["refuri"] = app.builder.get_relative_uri(docname, source) + "#" + box["id"]
                except NoUri:
                    pass
                link += ref
                tie = nodes.paragraph(classes=["experiment-tie"])
                tie += nodes.emphasis(text=" ".join(p.astext() for p in _item_body(box["items"]["Tied by"])))
                row = nodes.row()
                row += _cell(link, tie)
                for field in FIELDS[:3]:
                    row += _cell(*_item_body(box["items"][field]))
                body += row
        if count == 0:
            raise ValueError(f"experiment-index: {node['chapter']} and its sub-pages have no experiment box")
        # references inside the copied items are resolved as if they were written on this page,
        # in a document of their own (as sphinx.ext.todo does: resolving this page would recurse)
        holder = new_document("")
        holder += table
        for xref in holder.findall(addnodes.pending_xref):
            xref["refdoc"] = docname
        env.resolve_references(holder, docname, app.builder)
        holder.remove(table)
        node.replace_self(table)


# --- reading time -----------------------------------------------------------------------------

def reading_minutes(words: int, code_lines: int, figures: int, equations: int = 0, numbers: int = 0) -> int:
    """Minutes for a newcomer's first reading: prose at 120 words a minute, code at 8 lines, 30 s a
    figure, 15 s a displayed equation, 5 s a number."""
    return max(1, math.ceil(words / WORDS_PER_MINUTE + code_lines / CODE_LINES_PER_MINUTE
                            + figures * MINUTES_PER_FIGURE + equations * MINUTES_PER_EQUATION
                            + numbers * MINUTES_PER_NUMBER))


def lab_words(notebook_path) -> int:
    """The words of a lab's Markdown cells: its text, exercises and hints."""
    cells = json.loads(Path(notebook_path).read_text())["cells"]
    return sum(len("".join(c["source"]).split()) for c in cells if c["cell_type"] == "markdown")


def lab_minutes(exercises: int, words: int) -> int:
    """Minutes to work through a lab of ``words`` words of text and ``exercises`` exercises, rounded up to 5."""
    return 5 * math.ceil(max(1, words / LAB_WORDS_PER_MINUTE + MINUTES_PER_EXERCISE * exercises) / 5)


# Code cells the site shows closed ("Show code cell source"): not on the main path, like a closed box.
HIDDEN_CELLS = {"tag_hide-input", "tag_hide-cell"}


def _closed_dropdown(node) -> bool:
    """sphinx-design's ``{dropdown}``: a container marked by attributes, not classes; closed unless ``:open:``."""
    return isinstance(node, nodes.Element) and node.get("design_component") == "dropdown" and not node.get("opened")


def _skip(node) -> bool:
    classes = set(node.get("classes", [])) if isinstance(node, nodes.Element) else set()
    return _closed_dropdown(node) or isinstance(node, (nodes.literal_block, nodes.math_block, nodes.raw, nodes.comment,
                             nodes.citation, nodes.footnote)) or bool(classes & {"cell_output", "dropdown",
                                                                                  "toggle", "solution",
                                                                                  *HIDDEN_CELLS})


def _in_figure(node) -> bool:
    """Whether a node (an image, a glued figure's text form) sits anywhere inside a figure (a glued figure
    wraps it in a container)."""
    parent = node.parent
    while parent is not None:
        if isinstance(parent, nodes.figure):
            return True
        parent = parent.parent
    return False


NUMBER = re.compile(r"\d")  # a word with a digit in it is a number a reader reads: 0.79, 64-wide, 1/16, x_2


def page_counts(doctree) -> tuple[int, int, int, int, int]:
    """Words of prose, lines of code, figures, displayed equations and numbers (words with a digit, inline
    maths included) a page shows (outputs, solutions and closed boxes excluded)."""
    words = code = figures = equations = numbers = 0

    def walk(node):
        nonlocal words, code, figures, equations, numbers
        if isinstance(node, nodes.math_block):
            equations += 1
            return
        if isinstance(node, nodes.literal_block):
            if not _in_figure(node):  # a glued figure keeps its text form ("<Figure size …>") beside the image
                code += len(node.astext().strip().splitlines())
            return
        if isinstance(node, nodes.inline) and {"xref", "cite"} <= set(node["classes"]):
            words, numbers = words + 3, numbers + 1  # the key "devlin2018bert" shows as "[Devlin et al., 2018]"
            return
        if isinstance(node, nodes.figure) or (isinstance(node, nodes.image) and not _in_figure(node)):
            figures += 1
        if _skip(node):
            return
        if isinstance(node, nodes.Text):
            tokens = node.astext().split()
            words += len(tokens)
            numbers += sum(1 for token in tokens if NUMBER.search(token))
            return
        for child in node.children:
            walk(child)

    walk(doctree)
    return words, code, figures, equations, numbers


def _closed_box(node) -> bool:
    """A box the site shows folded (an admonition dropdown, a toggle, a sphinx-design dropdown); not a closed
    code cell, which is the page's code, not more to read."""
    classes = set(node.get("classes", [])) if isinstance(node, nodes.Element) else set()
    return _closed_dropdown(node) or bool(classes & {"dropdown", "toggle"})


def box_counts(doctree) -> tuple[int, int, int, int, int]:
    """What a reader who opens every closed box reads besides the main path, counted like ``page_counts``
    (a box inside a box on its own turn; readers said the shown times fit the main path only: r64a-c)."""
    totals = [0, 0, 0, 0, 0]
    for box in doctree.findall(_closed_box):
        for child in box.children:  # page_counts skips the closed boxes inside: they come on their own turn
            totals = [t + c for t, c in zip(totals, page_counts(child), strict=True)]
    return tuple(totals)


def shows_reading_time(docname: str) -> bool:
    """A chapter's core page or a deeper page: every page of the book's prose but the reference pages."""
    return docname.startswith("book/") and docname not in REFERENCE_PAGES


def is_lab(docname: str) -> bool:
    return docname.startswith("notebooks/") and docname.count("/") == 1


def add_reading_time(app, doctree):
    docname = app.env.docname
    if not (shows_reading_time(docname) or is_lab(docname)):
        return
    section = doctree.next_node(nodes.section)
    if section is None:
        return
    note = nodes.paragraph(classes=["reading-time"])
    if is_lab(docname):
        n = sum(1 for title in doctree.findall(nodes.title) if EXERCISE_TITLE.match(title.astext()))
        minutes = lab_minutes(n, lab_words(app.env.doc2path(docname)))
        note += nodes.emphasis(text=f"Working time: about {minutes} minutes ({n} exercises).")
    else:
        text = f"Reading time: about {reading_minutes(*page_counts(doctree))} minutes"
        in_boxes = box_counts(doctree)
        if any(in_boxes):  # the boxes' figures, numbers … count, but no page gets a free minute
            text += f"; the closed boxes add about {reading_minutes(*in_boxes)} more"
        note += nodes.emphasis(text=text + ".")
    title = section.next_node(nodes.title)
    section.insert(section.index(title) + 1, note)


# --- forward references to the glossary -------------------------------------------------------

class AheadRole(SphinxRole):
    """``{ahead}`term``` or ``{ahead}`text <term>```: a glossary link, marked as explained later."""

    pattern = re.compile(r"^(?P<text>.+?)\s*<(?P<term>[^<>]+)>$", re.S)

    def run(self):
        match = self.pattern.match(self.text)
        text, term = (match["text"], match["term"]) if match else (self.text, self.text)
        xref = addnodes.pending_xref("", nodes.inline(text, text, classes=["xref", "std", "std-term"]),
                                     refdomain="std", reftype="term", reftarget=term.lower(),
                                     refexplicit=True, refwarn=True, refdoc=self.env.docname)
        later = nodes.inline("", " (explained later)", classes=["ahead"])
        return [xref, later], []


def setup(app):
    app.add_node(experiment_index)
    app.add_directive("experiment-index", ExperimentIndex)
    app.connect("doctree-read", collect_experiments)
    app.connect("doctree-read", drop_solution_markers)
    app.connect("doctree-read", add_reading_time)
    app.connect("env-purge-doc", purge_experiments)
    app.connect("env-merge-info", merge_experiments)
    app.connect("doctree-resolved", fill_experiment_index)
    app.add_role("ahead", AheadRole())
    return {"parallel_read_safe": True, "parallel_write_safe": True, "env_version": 1}

