"""Every glossary term is explained before the reading path uses it.

The glossary (``book/glossary.md``) says for each term which page explains it ("Explained in
{doc}`…`"). This test walks the pages in the order of ``_toc.yml`` (prose pages and the labs'
Markdown cells) and fails when a page before that one uses the term in its prose. A forward
reference on purpose is written ``{ahead}`term``` (the page then says "explained later") and is
not counted, and neither are the (up to four) words before a pointer such as "(chapter 3)", nor
a sentence that names a later chapter ("chapter 4 explains these vectors"), nor the intro's
preview of the chapters, between ``<!-- preview -->`` and ``<!-- /preview -->``.
Code, math, outputs, citations and link targets are not prose.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
GLOSSARY = ROOT / "book" / "glossary.md"
CODE_FENCES = {"code-cell", "python", "ipython3", "text", "bash", "console", "math", "glue:figure", "glue:math",
               "mermaid", "{code-cell}", "{math}", "json", "yaml"}


def reading_order() -> list[str]:
    """The files of the book in the order a reader meets them (``_toc.yml``, depth first)."""
    return list(chapter_of())


def chapter_of() -> dict[str, int]:
    """``{file: number of the chapter it belongs to}`` in reading order (0 before chapter 1;
    reference pages after the chapters get 99)."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    chapters = {toc["root"]: 0}

    def walk(entries, number):
        for entry in entries:
            own = re.match(r"book/(\d\d)-", entry["file"])
            chapters[entry["file"]] = int(own.group(1)) if own else number
            walk(entry.get("sections", []), chapters[entry["file"]])

    for part in toc["parts"]:
        walk(part["chapters"], 99)
    return chapters


def without_pointers_ahead(text: str, chapter: int) -> str:
    """Drop the sentences that point to a later chapter ("chapter 4 explains these vectors"):
    a term named there is a forward reference on purpose."""
    sentences = re.split(r"(?<=[.!?])\s+", text)
    later = [s for s in sentences
             if not any(int(n) > chapter for n in re.findall(r"\b[Cc]hapters? (\d)\b", s))]
    return " ".join(later)


def _source(name: str) -> tuple[Path, str]:
    for suffix in (".md", ".ipynb"):
        path = ROOT / (name + suffix)
        if path.exists():
            if suffix == ".md":
                return path, path.read_text()
            cells = json.loads(path.read_text())["cells"]
            return path, "\n\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    raise FileNotFoundError(f"_toc.yml names {name!r}, which is neither .md nor .ipynb")


def prose(text: str) -> str:
    """The words a reader reads: fenced code, math, roles' targets, comments and URLs removed."""
    text = re.sub(r"^---\n.*?\n---\n", "", text, flags=re.S)  # front matter
    text = re.sub(r"<!-- preview -->.*?<!-- /preview -->", " ", text, flags=re.S)  # a preview of the book
    text = re.sub(r"<!--.*?-->", " ", text, flags=re.S)
    kept, fence = [], None
    for line in text.split("\n"):
        opening = re.match(r"^\s*(`{3,}|~{3,}|:{3,})\s*(\{?[\w:.-]*\}?)", line)
        if fence is None and opening:
            info = opening.group(2).strip()
            fence = (opening.group(1), info.strip("{}") in {f.strip("{}") for f in CODE_FENCES} or info == "")
            continue
        if fence is not None and line.strip() == fence[0]:
            fence = None
            continue
        if fence is not None and (fence[1] or re.match(r"^\s*:[\w-]+:", line)):
            continue  # code, or a directive's option line
        kept.append(line)
    text = "\n".join(kept)
    text = re.sub(r"\$\$.*?\$\$", " ", text, flags=re.S)
    text = re.sub(r"\$[^$\n]+\$", " ", text)
    text = re.sub(r"\{ahead\}`[^`]*`", " ", text)  # forward references on purpose
    # "... kernel regression (chapter 3)": the words before a pointer to a later chapter
    text = re.sub(r"(?:[\w–-]+[ \t]+){0,3}[\w–-]+[ \t]*\((?:see |explained in |in )?chapter \d[^)]*\)", " ", text)
    text = re.sub(r"\{(glue:\w+|glue|cite|cite:\w+|numref|eq|download|image)\}`[^`]*`", " ", text)
    text = re.sub(r"\{[\w:-]+\}`([^`<]*?)\s*(<[^`]*>)?`", r"\1", text)  # a role's text, not its target
    text = re.sub(r"`[^`]*`", " ", text)  # inline code
    text = re.sub(r"\]\([^)]*\)", "]", text)  # link targets
    text = re.sub(r"^\([\w-]+\)=\s*$", " ", text, flags=re.M)  # labels
    return text


def _entries(path: Path = GLOSSARY) -> list[tuple[list[str], str]]:
    """The glossary's entries as ``([term and synonyms], definition text)``, read from book/glossary.md."""
    block = re.search(r"```\{glossary\}\n(.*?)\n```", path.read_text(), re.S)
    assert block, f"{path} has no ```{{glossary}} block"
    entries, terms, definition = [], [], []
    for line in block.group(1).split("\n") + [""]:
        if line.strip() and not line[0].isspace():  # a term line
            if definition:
                entries.append((terms, "\n".join(definition)))
                terms, definition = [], []
            terms.append(line.strip())
        elif line.strip():  # a definition line
            definition.append(line)
    if definition:
        entries.append((terms, "\n".join(definition)))
    return entries


def _page_named(text: str, phrase: str) -> str | None:
    where = re.search(phrase + r" \{doc\}`(?:[^`<]*<)?/?([^`>]+)>?`", text)
    return where.group(1) if where else None


def glossary(path: Path = GLOSSARY) -> dict[str, tuple[list[str], str]]:
    """``{main term: ([term and synonyms], page that explains it)}`` read from book/glossary.md."""
    return {terms[0]: (terms, page) for terms, text in _entries(path)
            if (page := _page_named(text, "Explained in"))}


def pattern(term: str) -> re.Pattern:
    """The term as a whole word, in any case, singular or plural (hyphen or space alike)."""
    words = [re.escape(w) for w in re.split(r"[\s-]+", term)]
    body = r"[\s-]+".join(words)
    return re.compile(r"(?<![\w\[])" + body + r"(?:s|es)?(?![\w\]])", re.I)


def uses_before_explained(path: Path = GLOSSARY) -> list[str]:
    chapters = chapter_of()
    order = list(chapters)
    raw = {name: prose(_source(name)[1]) for name in order if name != "book/glossary"}
    texts = {name: without_pointers_ahead(text, chapters[name]) for name, text in raw.items()}
    problems = []
    for main, (terms, page) in glossary(path).items():
        if page not in order:
            problems.append(f"{main!r}: explained in {page!r}, which is not in _toc.yml")
            continue
        if not any(pattern(t).search(raw[page]) for t in terms):
            problems.append(f"{main!r}: {page} is named as explaining it but never uses it")
        for name in order[: order.index(page)]:
            if name == "book/glossary":
                continue
            for t in terms:
                hit = pattern(t).search(texts[name])
                if hit:
                    start = max(0, hit.start() - 60)
                    context = " ".join(texts[name][start: hit.end() + 40].split())
                    problems.append(f"{main!r} is used in {name} before {page} explains it: …{context}…")
                    break
    return problems


def met_on_chapter_path(path: Path = GLOSSARY) -> dict[str, str]:
    """``{main term: chapter page}`` for the terms whose glossary entry says where a reader who skips
    the deeper pages meets them ("Without the deeper pages, you meet it in {doc}`…`")."""
    return {terms[0]: page for terms, text in _entries(path) if (page := _page_named(text, "you meet it in"))}


def chapter_path_problems(path: Path = GLOSSARY) -> list[str]:
    """The intro promises that the chapter pages alone are a path: a term explained on a deeper page
    may appear on a chapter page only from the page its glossary entry names as where a reader who
    skips the deeper pages meets it (that page says in a few words what it means)."""
    chapters = chapter_of()
    order = list(chapters)
    on_path = [n for n in order if n == order[0] or re.match(r"book/\d\d-", n)]
    deeper = {n for n in order if n.startswith("book/") and n not in on_path and chapters[n] != 99}
    texts = {n: without_pointers_ahead(prose(_source(n)[1]), chapters[n]) for n in on_path}
    met = met_on_chapter_path(path)
    problems = []
    for main, (terms, page) in glossary(path).items():
        if page not in deeper:
            if main in met:
                problems.append(f"{main!r} is explained on the chapter path ({page}): drop its 'you meet it in'")
            continue
        first = met.get(main)
        if first is not None and first not in on_path:
            problems.append(f"{main!r}: 'you meet it in' names {first}, which is not a chapter page")
            continue
        if first is not None and not any(pattern(t).search(_source(first)[1]) for t in terms):
            problems.append(f"{main!r}: 'you meet it in' names {first}, which never uses it")
        for name in on_path[: on_path.index(first)] if first else on_path:
            hit = next((h for t in terms if (h := pattern(t).search(texts[name]))), None)
            if hit:
                context = " ".join(texts[name][max(0, hit.start() - 60): hit.end() + 40].split())
                problems.append(f"{main!r} (explained on the deeper page {page}) is used on the chapter path in "
                                f"{name}: …{context}… (say what it means there and name that page in the glossary)")
                break
    return problems


def test_glossary_lists_terms_with_their_pages():
    entries = glossary()
    assert len(entries) >= 30, f"only {len(entries)} glossary entries with an 'Explained in' page"


def test_no_term_is_used_before_the_page_that_explains_it():
    problems = uses_before_explained()
    assert not problems, "\n".join(problems)


def test_the_check_can_fail(tmp_path):
    """A term said to be explained later in the book is reported on the page that uses it first."""
    order = reading_order()
    main, (terms, page) = next((m, (t, p)) for m, (t, p) in glossary().items()
                               if order.index(p) > 3 and any(pattern(x).search(prose(_source(p)[1])) for x in t))
    text = GLOSSARY.read_text()
    start = text.index(f"\n{main}\n")  # the entry of that term, then its "Explained in"
    later = "Explained in {doc}`/book/how-we-know`"
    moved = text[:start] + text[start:].replace(f"Explained in {{doc}}`/{page}`", later, 1)
    assert moved != text, f"could not move {main!r} in the copy"
    (tmp_path / "glossary.md").write_text(moved)
    problems = uses_before_explained(tmp_path / "glossary.md")
    assert any(p.startswith(f"{main!r} is used in {page} before book/how-we-know") for p in problems), problems[:3]


def test_chapter_pages_alone_are_a_path():
    problems = chapter_path_problems()
    assert not problems, "\n".join(problems)


def test_the_chapter_path_check_can_fail(tmp_path):
    """Dropping a term's 'you meet it in' line makes its use on that chapter page a problem."""
    main, page = next(iter(met_on_chapter_path().items()))
    text = GLOSSARY.read_text()
    entry = text[text.index(f"\n{main}\n"):]
    line = re.search(r"\n[^\n]*you meet it in \{doc\}`/" + re.escape(page) + "`[^\n]*", entry)
    (tmp_path / "glossary.md").write_text(text.replace(line.group(0), "", 1))
    problems = chapter_path_problems(tmp_path / "glossary.md")
    assert any(p.startswith(f"{main!r} (explained on the deeper page") and page in p for p in problems), problems[:3]


if __name__ == "__main__":  # a report for authors: python tests/test_glossary.py
    for problem in uses_before_explained() + chapter_path_problems():
        print(problem)
    pytest.main([__file__, "-q", "-o", "addopts="])
