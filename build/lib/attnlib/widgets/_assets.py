"""The widgets' browser code: JavaScript and CSS files shipped as package data.

Each widget's ES module is ``_attnmath.js`` (the browser's mirror of attnlib's math)
followed by the widget's own file, so that every widget is one self-contained module
that works in Jupyter and, with its state embedded, on the static book.
"""

from __future__ import annotations

import uuid
from functools import cache
from importlib import resources


@cache
def read_asset(name: str) -> str:
    """The text of one file of this package (``attnlib/widgets/<name>``)."""
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


def bundle(widget_file: str) -> str:
    """The ES module of a widget: the shared math, then the widget's ``render``."""
    return read_asset("_attnmath.js") + "\n" + read_asset(widget_file)


def new_uid() -> str:
    """A short id that ties a widget's root element to its model (used by the browser tests)."""
    return "attn-" + uuid.uuid4().hex[:12]
