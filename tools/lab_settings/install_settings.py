"""Make JupyterLab save widget state in notebooks: install ``overrides.json`` into an environment.

A lab saved without its widget state shows "Error displaying widget: model not found" when it is
reopened.  The ipywidgets manager for JupyterLab saves the state only when its ``saveState``
setting is on (off by default); JupyterLab reads defaults for every user of an environment from
``<prefix>/share/jupyter/lab/settings/overrides.json``.  This script merges our
``overrides.json`` (next to it) into that file, keeping any other setting already there.

    python tools/lab_settings/install_settings.py            # this Python's environment (sys.prefix)
    python tools/lab_settings/install_settings.py --prefix /opt/conda

Binder runs it from ``postBuild``; ``make`` runs it when it sets up ``.venv``; a JupyterHub
installs it into the single-user image's environment (or copies the file there).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

OVERRIDES = Path(__file__).resolve().parent / "overrides.json"


def settings_file(prefix: Path) -> Path:
    """JupyterLab's environment-wide overrides: ``<prefix>/share/jupyter/lab/settings/overrides.json``."""
    return Path(prefix) / "share" / "jupyter" / "lab" / "settings" / "overrides.json"


def install(prefix: Path = Path(sys.prefix)) -> Path:
    """Merge our overrides into ``prefix``'s ``overrides.json`` (plugin by plugin); return its path."""
    target = settings_file(prefix)
    current = json.loads(target.read_text(encoding="utf-8")) if target.exists() else {}
    if not isinstance(current, dict):
        raise ValueError(f"{target} must hold a JSON object, got {type(current).__name__}")
    for plugin, values in json.loads(OVERRIDES.read_text(encoding="utf-8")).items():
        current[plugin] = {**current.get(plugin, {}), **values}
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(current, indent=2) + "\n", encoding="utf-8")
    return target


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prefix", type=Path, default=Path(sys.prefix), help="the environment (default: sys.prefix)")
    print(f"JupyterLab saves widget state: wrote {install(parser.parse_args().prefix)}")
