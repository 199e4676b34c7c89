#!/usr/bin/env python3
"""Print a built book page as plain text, the way a reader meets it.

usage: page2text.py <path/to/page.html>

Headings are marked with #, figures as [FIGURE: file | alt text] (open the file to look at it),
closed boxes (dropdowns) as [CLOSED BOX "title" ... END BOX] (a reader sees the title and may open it),
code cells as ```code``` blocks, their outputs as [OUTPUT] blocks. Math stays as its TeX source.
"""
import html.parser
import os
import sys

SKIP = {"script", "style", "nav", "footer", "button", "svg", "noscript"}
BLOCK = {"p", "div", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "pre", "table", "dt", "dd",
         "blockquote", "section", "details", "summary", "figure", "figcaption", "br"}


class P(html.parser.HTMLParser):
    def __init__(self, base):
        super().__init__(convert_charrefs=True)
        self.base = base
        self.out = []
        self.skip = 0
        self.in_main = 0
        self.stack = []
        self.pre = 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        cls = a.get("class", "") or ""
        if tag == "article" and "bd-article" in cls:
            self.in_main += 1
            self.stack.append(("main", tag))
            return
        if not self.in_main:
            return
        if tag in SKIP or "headerlink" in cls or "toggle-details__summary" in cls and False:
            self.skip += 1
            self.stack.append(("skip", tag))
            return
        if self.skip:
            self.stack.append(("", tag))
            return
        mark = ""
        if tag in ("h1", "h2", "h3", "h4"):
            self.out.append("\n\n" + "#" * int(tag[1]) + " ")
        elif tag == "div" and "dropdown" in cls.split() and "admonition" in cls.split():
            self.out.append("\n[CLOSED BOX (title, then what opening it shows): ")
            mark = "details"
        elif tag == "p" and "expanded" in cls.split():
            self.skip += 1
            self.stack.append(("skip", tag))
            return
        elif tag == "details":
            self.out.append("\n[CLOSED BOX ")
            mark = "details"
        elif tag == "summary":
            self.out.append('"')
            mark = "summary"
        elif tag == "pre":
            self.pre += 1
            self.out.append("\n```\n" if "output" not in cls else "\n[OUTPUT]\n")
        elif tag == "img":
            src = a.get("src", "")
            path = os.path.normpath(os.path.join(self.base, src)) if not src.startswith("data:") else "(inline)"
            self.out.append(f"\n[FIGURE: {path} | {a.get('alt', '')}]\n")
        elif tag == "td" or tag == "th":
            self.out.append(" | ")
        elif tag == "li":
            self.out.append("\n- ")
        elif tag in BLOCK:
            self.out.append("\n")
        self.stack.append((mark, tag))

    def handle_endtag(self, tag):
        # pop to the matching tag
        for i in range(len(self.stack) - 1, -1, -1):
            if self.stack[i][1] == tag:
                break
        else:
            return
        while len(self.stack) > i:
            mark, t = self.stack.pop()
            if mark == "main":
                self.in_main -= 1
            elif mark == "skip":
                self.skip -= 1
            elif not self.skip and self.in_main:
                if mark == "summary":
                    self.out.append('"\n')
                elif mark == "details":
                    self.out.append("\nEND BOX]\n")
                elif t == "pre":
                    self.pre -= 1
                    self.out.append("\n```\n")
                elif t in BLOCK:
                    self.out.append("\n")

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag == "img" or tag == "br":
            self.handle_endtag(tag)

    def handle_data(self, data):
        if self.in_main and not self.skip:
            self.out.append(data if self.pre else (" " if data[:1].isspace() else "") + " ".join(data.split())
                            + (" " if data[-1:].isspace() and data.strip() else ""))


path = sys.argv[1]
p = P(os.path.dirname(path))
p.feed(open(path, encoding="utf-8").read())
text = "".join(p.out)
lines = [ln.rstrip() for ln in text.splitlines()]
outl, blank = [], 0
for ln in lines:
    blank = blank + 1 if not ln.strip() else 0
    if blank <= 1:
        outl.append(ln)
print("\n".join(outl).strip())
