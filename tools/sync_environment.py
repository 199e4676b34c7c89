"""After pip-compile (`make lock`): put the header back on both locks and write environment.yml.

pip-compile writes requirements.txt (everything the book, labs and tests use) from requirements.in,
and requirements-runtime.txt (only what the labs need to run) from requirements-runtime.in, whose
versions are constrained to the full lock's.  This script adds the header that says so to each
lock (pip-compile runs with --no-header) and writes Binder's environment.yml from the runtime lock.
tests/test_environment.py fails when the three files disagree.
"""

from __future__ import annotations

import sys
from pathlib import Path

from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
FULL, RUNTIME = ROOT / "requirements.txt", ROOT / "requirements-runtime.txt"
HEADERS = {
    FULL: """\
# The lock: exact versions of everything the book, its labs and its tests use.
# This file is the single source of truth for versions: the Makefile installs it,
# requirements-runtime.txt (Binder, hubs) repeats the runtime subset, and tests/test_environment.py
# fails if they drift. Regenerate with `make lock` (pip-compile) after editing requirements.in.
""",
    RUNTIME: """\
# The runtime lock: only what the labs need to run (Binder's environment.yml, JupyterHub images),
# each at the full lock's version (requirements.txt). Regenerate with `make lock` (pip-compile)
# after editing requirements-runtime.in; tests/test_environment.py fails if it drifts.
""",
}


def read_lock(path: Path = FULL) -> dict[str, str]:
    """Map canonical package name -> exact version from a pip lock file."""
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, version = line.split("==")
            pins[canonicalize_name(name)] = version.strip()
    return pins


def with_header(path: Path) -> str:
    """The lock file's text with its header on top (and no other leading comment lines)."""
    lines = path.read_text().splitlines(keepends=True)
    while lines and (lines[0].startswith("#") or not lines[0].strip()):
        lines.pop(0)
    return HEADERS[path] + "".join(lines)


def render(pins: dict[str, str]) -> str:
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    lines = [
        "# Binder's environment. Generated from requirements-runtime.txt by tools/sync_environment.py",
        "# (`make lock`); tests/test_environment.py checks that the versions agree.",
        "name: attention-interactively",
        "channels:",
        "  - conda-forge",
        "dependencies:",
        f"  - python={python}",
        "  - pip",
        "  - pip:",
    ]
    lines += [f"      - {name}=={version}" for name, version in sorted(pins.items())]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    for lock in (FULL, RUNTIME):
        lock.write_text(with_header(lock))
    (ROOT / "environment.yml").write_text(render(read_lock(RUNTIME)))
    print("wrote the headers of requirements.txt and requirements-runtime.txt, and environment.yml")
