"""The reading aids of tools/book_pages.py, in the built book: the experiment index on "How we know"
is made of every experiment box on the pages, and each chapter's core page shows a reading time
of about twenty minutes."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

pytestmark = pytest.mark.build

ROOT = Path(__file__).resolve().parent.parent
MAX_MINUTES = 25  # "about 20 minutes" for a newcomer's first reading of a chapter's core page
NOT_EXPERIMENTS = {"intro", "notation", "glossary", "bibliography", "how-we-know", "instructor-guide"}


class _Collect(HTMLParser):
    """Ids of experiment boxes, links, and the reading-time line of one page."""

    def __init__(self):
        super().__init__()
        self.boxes, self.links, self.reading, self._in_reading = [], [], None, False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        classes = (attrs.get("class") or "").split()
        if "experiment" in classes and "admonition" in classes and attrs.get("id"):
            self.boxes.append(attrs["id"])
        if tag == "a" and attrs.get("href"):
            self.links.append(attrs["href"])
        if "reading-time" in classes:
            self._in_reading = True

    def handle_data(self, data):
        if self._in_reading and data.strip():
            self.reading = (self.reading or "") + data

    def handle_endtag(self, tag):
        if tag == "p":
            self._in_reading = False


def _page(html: Path) -> _Collect:
    parser = _Collect()
    parser.feed(html.read_text())
    return parser


def test_every_experiment_box_is_in_the_index(built_book):
    index = _page(built_book.html / "book" / "how-we-know.html")
    indexed = {href.split("#", 1)[1] for href in index.links if "#exp-" in href}
    boxes = {}
    for html in sorted((built_book.html / "book").glob("*.html")):
        for box in _page(html).boxes:
            boxes[box] = html.stem
    assert boxes, "no page has an experiment box"
    missing = sorted(f"{page}#{box}" for box, page in boxes.items() if box not in indexed)
    assert not missing, f"experiment boxes that 'How we know' does not list: {missing}"
    stale = sorted(indexed - set(boxes))
    assert not stale, f"'How we know' links to boxes that no page has: {stale}"


def test_every_experiment_box_says_where_tied_by_is_explained(built_book):
    """Each box's "Tied by:" label links to "How we know", whose list says what guarded, glued, cited … mean,
    and the box says after each word what it means ("guarded (an assert checks it at build)")."""
    label = re.compile(r'<strong><a class="reference internal" href="how-we-know.html">'
                       r'<span class="doc">Tied by:?</span></a>')
    glossed = re.compile(r'Tied by:?</span></a></strong> [a-z ]+ \([a-z ]+')
    for pattern, what in ((label, "is not linked"), (glossed, "words are not explained in the box")):
        short = {}  # page -> (boxes, boxes that match)
        for html in sorted((built_book.html / "book").glob("*.html")):
            n_boxes, found = len(_page(html).boxes), len(pattern.findall(html.read_text()))
            if n_boxes and found < n_boxes:
                short[html.stem] = (n_boxes, found)
        assert not short, f"pages whose experiment boxes' Tied by {what} (boxes, matching): {short}"


def test_every_page_that_measures_has_an_experiment_box(built_book):
    """A prose page that computes with code carries at least one experiment box."""
    lacking = []
    for md in sorted((ROOT / "book").glob("*.md")):
        if md.stem in NOT_EXPERIMENTS or "```{code-cell}" not in md.read_text():
            continue
        if not _page(built_book.html / "book" / f"{md.stem}.html").boxes:
            lacking.append(md.stem)
    assert not lacking, f"pages with code but no experiment box: {lacking}"


def test_chapter_pages_show_a_reading_time_of_about_twenty_minutes(built_book):
    times = {}
    for html in sorted((built_book.html / "book").glob("0*.html")):
        line = _page(html).reading
        assert line, f"{html.name} shows no reading time"
        minutes = int(re.search(r"about (\d+) minutes", line).group(1))
        times[html.stem] = minutes
    print("reading times (minutes):", times)
    too_long = {page: m for page, m in times.items() if m > MAX_MINUTES}
    assert not too_long, f"chapter pages longer than {MAX_MINUTES} minutes to read: {too_long}"


def test_deeper_pages_show_a_reading_time_and_reference_pages_do_not(built_book):
    """Readers asked how long a deeper page takes before starting one (r36a, r37a)."""
    from book_pages import REFERENCE_PAGES

    for html in sorted((built_book.html / "book").glob("*.html")):
        docname = f"book/{html.stem}"
        if html.stem.startswith("0"):
            continue
        shown = bool(_page(html).reading)
        assert shown == (docname not in REFERENCE_PAGES), f"{docname}: reading time shown = {shown}"


RAW_MARKUP = ("```{", "{glue:", "{term}`", "{ref}`", ":class: dropdown")


def test_no_page_shows_raw_myst_markup(built_book):
    """A directive whose fence line MyST cannot read (a backtick in a ``` fence's title) is printed as text,
    silently, with no build warning: a reader saw four such boxes on the real-transformer page (r42b)."""
    pages = sorted([*(built_book.html / "book").glob("*.html"), *(built_book.html / "notebooks").glob("*.html")])
    assert pages
    shown = {html.name: [m for m in RAW_MARKUP if m in html.read_text(encoding="utf-8")] for html in pages}
    assert not {name: found for name, found in shown.items() if found}


def test_reading_minutes_counts_prose_code_figures_equations_and_numbers():
    from book_pages import reading_minutes

    assert reading_minutes(1500, 0, 0) == 13  # 12.5, rounded up
    assert reading_minutes(1500, 80, 4) == 25
    assert reading_minutes(1500, 80, 4, 4) == 26
    assert reading_minutes(1500, 80, 4, 4, 60) == 31  # 5 s a number
    assert reading_minutes(0, 0, 0) == 1


def test_a_citation_counts_as_shown_and_a_figure_text_form_not_at_all():
    """A citation key (``devlin2018bert``) is read as "[Devlin et al., 2018]": 3 words, 1 number; a glued figure's
    text form ("<Figure size 640x480 with 1 Axes>") is never shown beside its image."""
    from book_pages import page_counts
    from docutils import nodes

    cite = nodes.inline("", "devlin2018bert", classes=["xref", "cite"])
    figure = nodes.figure("", nodes.container("", nodes.literal_block("", "<Figure size 640x480 with 1 Axes>"),
                                              nodes.image(uri="a.png")))
    assert page_counts(nodes.section("", nodes.paragraph("", "As shown ", cite), figure)) == (5, 0, 1, 0, 1)


def test_a_number_is_a_word_with_a_digit():
    from book_pages import page_counts
    from docutils import nodes

    text = "Recall 0.79 at width 64-wide, one in 1/16, and x_2 but not two."
    assert page_counts(nodes.section("", nodes.paragraph("", text))) == (13, 0, 0, 0, 4)


def test_lab_minutes_count_the_exercises_and_the_text():
    from book_pages import lab_minutes

    assert lab_minutes(0, 0) == 5
    assert lab_minutes(7, 2000) == 80  # 56 minutes of exercises, 20 of reading: 76, rounded up to 5
    assert lab_minutes(7, 4400) == 100
    assert lab_minutes(8, 2000) > lab_minutes(7, 2000)


def test_every_lab_shows_its_working_time(built_book):
    """Readers asked how long a lab takes (r58a-d): the line counts the lab's own exercises."""
    import nbformat
    import student
    from book_pages import lab_minutes, lab_words

    labs = sorted((built_book.html / "notebooks").glob("0*.html"))
    assert labs
    for html in labs:
        line = _page(html).reading
        assert line, f"{html.name} shows no working time"
        source = ROOT / "notebooks" / f"{html.stem}.ipynb"
        n = len(student.exercises(nbformat.read(source, 4)))
        assert line.strip() == f"Working time: about {lab_minutes(n, lab_words(source))} minutes ({n} exercises).", line


def test_a_glued_figure_counts_once():
    """myst-nb's glued figure wraps its image in a container inside the figure: one figure, not two."""
    from book_pages import page_counts
    from docutils import nodes

    figure = nodes.figure("", nodes.container("", nodes.image(uri="a.png")), nodes.caption("", "Two words."))
    loose = nodes.image(uri="b.png")
    doctree = nodes.section("", nodes.paragraph("", "One two three."), figure, loose)
    assert page_counts(doctree) == (5, 0, 2, 0, 0)


def test_a_closed_design_dropdown_is_not_counted():
    """sphinx-design's ``{dropdown}`` marks its container with attributes, not a class: closed, its words are off
    the main path like a closed admonition's; opened (``:open:``), they count."""
    from book_pages import page_counts
    from docutils import nodes

    def box(opened):
        return nodes.container("", nodes.paragraph("", "Four words in here."), design_component="dropdown",
                               opened=opened)

    assert page_counts(nodes.section("", nodes.paragraph("", "One two."), box(False))) == (2, 0, 0, 0, 0)
    assert page_counts(nodes.section("", nodes.paragraph("", "One two."), box(True))) == (6, 0, 0, 0, 0)


def test_code_the_site_shows_closed_is_not_counted():
    """A cell tagged hide-input or hide-cell is closed until a reader opens it: its code is no more on the
    main path than a closed box's."""
    from book_pages import page_counts
    from docutils import nodes

    def cell(tag):
        return nodes.container("", nodes.literal_block("", "a = 1\nb = 2"), classes=["cell", *tag])

    shown, closed = cell([]), cell(["tag_hide-input"])
    doctree = nodes.section("", nodes.paragraph("", "One two."), shown, closed, cell(["tag_hide-cell"]))
    assert page_counts(doctree) == (2, 2, 0, 0, 0)


def test_the_closed_boxes_are_counted_apart_from_the_main_path():
    """A reader who opens the boxes reads more than the main path's time says: ``box_counts`` counts what
    the closed boxes hold (a box inside a box once), and nothing of the main path."""
    from book_pages import box_counts, page_counts
    from docutils import nodes

    inner = nodes.container("", nodes.paragraph("", "Three more words."), design_component="dropdown", opened=False)
    outer = nodes.admonition("", nodes.paragraph("", "Four words, 2 numbers."), inner, classes=["dropdown"])
    doctree = nodes.section("", nodes.paragraph("", "One two."), outer, nodes.math_block("", "x"))
    assert page_counts(doctree) == (2, 0, 0, 1, 0)
    assert box_counts(doctree) == (7, 0, 0, 0, 1)
    assert box_counts(nodes.section("", nodes.paragraph("", "No box."))) == (0, 0, 0, 0, 0)


def test_labs_on_the_site_show_solutions_without_nbgrader_markers(built_book):
    """The site's labs show each solution as plain code: no "### BEGIN SOLUTION" markers, no stub hint line in it."""
    marked = []
    for html in sorted((built_book.html / "notebooks").glob("*.html")):
        text = html.read_text()
        if "BEGIN SOLUTION" in text or "END SOLUTION" in text:
            marked.append(html.stem)
    assert not marked, f"labs whose site pages show nbgrader's solution markers: {marked}"
    lab3 = (built_book.html / "notebooks" / "03-how-attention-works.html").read_text()
    assert "my_softmax" in lab3 and "keepdims" in lab3, "the solutions themselves are still on the page"
