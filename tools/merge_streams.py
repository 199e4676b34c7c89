"""Merge a stored notebook's back-to-back outputs to the same stream into one, as Jupyter shows them.

A kernel may send one printed line in several pieces (``print(..., end="")`` then more, or a flush in
between); the notebook file then holds one stream output per piece, and the book draws each as its own
grey box, so a label and its value land in different boxes. ``make execute`` runs this after executing
a lab; nbval merges streams the same way before it compares, so nothing it checks changes.

Usage: python tools/merge_streams.py NOTEBOOK [NOTEBOOK ...]
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat


def merge_streams(outputs: list) -> list:
    """The outputs with each run of back-to-back stream outputs of one name joined into the first."""
    merged = []
    for output in outputs:
        last = merged[-1] if merged else None
        if (output.get("output_type") == "stream" and last is not None and last.get("output_type") == "stream"
                and last.get("name") == output.get("name")):
            last["text"] = last["text"] + output["text"]
        else:
            merged.append(output)
    return merged


def main(paths: list[str]) -> int:
    for path in map(Path, paths):
        nb = nbformat.read(path, as_version=nbformat.NO_CONVERT)
        before = sum(len(c.get("outputs", [])) for c in nb.cells)
        for cell in nb.cells:
            if cell.cell_type == "code":
                cell.outputs = merge_streams(cell.outputs)
        after = sum(len(c.get("outputs", [])) for c in nb.cells)
        if after != before:
            nbformat.write(nb, path)
        print(f"{path}: {before - after} stream outputs merged")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
