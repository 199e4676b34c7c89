"""Release: pin every lab's Colab install of attnlib to a tag, and tag the commit.

Usage: python tools/release.py VERSION [--no-commit]        (``make release VERSION=0.2.0``)

1. writes VERSION into pyproject.toml (``[project] version``, the one place the version lives:
   ``attnlib.__version__`` reads it from the installed package's metadata) and the commit the
   release is made from into ``[tool.attnlib.release] commit``;
2. rewrites the setup cell (the first code cell) of every lab so that, where attnlib is missing
   (Colab), it installs attnlib from that tag.  The setup cell prints nothing and does nothing where
   attnlib is installed, so the stored outputs stay valid: the labs need not be re-executed;
3. regenerates the student versions (notebooks/student/), which start with the same cell;
4. commits these files and tags the commit ``vVERSION`` (``--no-commit``: only write them).

The setup cell installs attnlib from the commit the release was made from (``RELEASE_COMMIT``,
read from pyproject.toml): a commit of main is immutable and exists wherever main was pushed, so the pin works
even before the tag is published, and it is the same attnlib as the tagged commit, which changes only
the labs' setup cells, the student versions and the version numbers.  Publish with
``git push origin main vVERSION``.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REPOSITORY = "https://github.com/attention-interactively/book"  # _config.yml's repository.url
_PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
# The release the labs' setup cell names, and the commit it was made from (None: not released yet)
RELEASE_COMMIT: str | None = _PYPROJECT["tool"]["attnlib"]["release"].get("commit") or None
RELEASE: str | None = f"v{_PYPROJECT['project']['version']}" if RELEASE_COMMIT else None
VERSION = re.compile(r"^\d+\.\d+\.\d+$")


def setup_source(release: str | None = RELEASE, commit: str | None = RELEASE_COMMIT) -> str:
    """The labs' first code cell: on Colab (no attnlib), install attnlib ``release``, from ``commit``
    (or from the tag ``release`` when no commit is given)."""
    if release is None:
        comment, ref = "install it\n# from the book's repository", ""
    else:
        comment, ref = f"install\n# attnlib {release}, the release this lab was written for", f"@{commit or release}"
    return f'''\
# Setup: where attnlib is not installed (e.g. on Colab), {comment}.
import importlib.util
import subprocess
import sys

if importlib.util.find_spec("attnlib") is None:
    source = "git+{REPOSITORY}"
    package = f"attnlib @ {{source}}{ref}"
    command = [sys.executable, "-m", "pip", "install", "--quiet", package]
    subprocess.run(command, check=True)

# Colab shows custom widgets such as attnlib's only with its custom widget manager.
if "google.colab" in sys.modules:
    from google.colab import output

    output.enable_custom_widget_manager()'''


def pin_lab(path: Path, release: str, commit: str | None = None) -> bool:
    """Rewrite the lab's setup cell for ``release``; change nothing else.  Return whether it changed.

    The notebook is edited as JSON, so that the file keeps its exact formatting elsewhere.
    """
    text = path.read_text(encoding="utf-8")
    nb = json.loads(text)
    cell = next(c for c in nb["cells"] if c["cell_type"] == "code")
    source = "".join(cell["source"])
    if not source.startswith("# Setup: where attnlib is not installed"):
        raise ValueError(f"{path.name}: the first code cell is not the setup cell")
    new = setup_source(release, commit)
    if source == new:
        return False
    cell["source"] = new.splitlines(keepends=True)
    path.write_text(json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")
    return True


def _set(path: Path, pattern: str, replacement: str) -> None:
    text = path.read_text(encoding="utf-8")
    new, n = re.subn(pattern, replacement, text, count=1, flags=re.M)
    if n != 1:
        raise ValueError(f"{path}: found no line matching {pattern!r}")
    path.write_text(new, encoding="utf-8")


def release(version: str, commit: bool = True) -> list[Path]:
    """Write the release into the project's files (see the module docstring); return the files written."""
    if not VERSION.match(version):
        raise ValueError(f"VERSION must look like 1.2.3, not {version!r}")
    tag = f"v{version}"
    if commit and subprocess.run(["git", "rev-parse", "-q", "--verify", f"refs/tags/{tag}"],
                                 cwd=ROOT, capture_output=True).returncode == 0:
        raise ValueError(f"the tag {tag} exists already")
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                          check=True).stdout.strip()  # the code this release is made from
    _set(ROOT / "pyproject.toml", r'^version = ".*"$', f'version = "{version}"')
    _set(ROOT / "pyproject.toml", r'^commit = ".*"$', f'commit = "{head}"')  # [tool.attnlib.release]
    labs = sorted((ROOT / "notebooks").glob("*.ipynb"))
    for lab in labs:
        pin_lab(lab, tag, head)
    subprocess.run([sys.executable, str(ROOT / "tools" / "student.py")], cwd=ROOT, check=True)
    written = [ROOT / "pyproject.toml", *labs, ROOT / "notebooks" / "student"]
    if commit:
        subprocess.run(["git", "add", *map(str, written)], cwd=ROOT, check=True)
        subprocess.run(["git", "commit", "-m", f"Release {tag}: the labs install attnlib {tag} on Colab"],
                       cwd=ROOT, check=True)
        subprocess.run(["git", "tag", "-a", tag, "-m", f"attnlib {version}"], cwd=ROOT, check=True)
    return written


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("version", help="the new version, e.g. 0.2.0 (tagged v0.2.0)")
    parser.add_argument("--no-commit", action="store_true", help="write the files but do not commit or tag")
    args = parser.parse_args(argv)
    try:
        release(args.version, commit=not args.no_commit)
    except ValueError as err:
        print(err, file=sys.stderr)
        return 1
    print(f"released v{args.version}" + ("" if args.no_commit else f": push with git push origin main v{args.version}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
