"""Write environment.yml (Binder) from requirements.txt, the single source of versions.

Binder gets the runtime a learner needs to run the labs (python, numpy, the widgets,
JupyterLab, the model's readers); every version is copied from requirements.txt.
tests/test_environment.py fails when the two files drift; run `make lock` to fix.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUNTIME = [
    "numpy", "threadpoolctl", "matplotlib", "ipywidgets", "anywidget", "ipykernel", "jupyterlab",
    "jupyterlab_widgets", "widgetsnbextension", "safetensors", "tokenizers",
]


def read_lock(path: Path = ROOT / "requirements.txt") -> dict[str, str]:
    """Map normalized package name -> exact version from a pip lock file."""
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, version = line.split("==")
            pins[normalize(name)] = version.strip()
    return pins


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower().strip()


def render(pins: dict[str, str]) -> str:
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    lines = [
        "# Binder's environment. Generated from requirements.txt by tools/sync_environment.py",
        "# (`make lock`); tests/test_environment.py checks that the versions agree.",
        "name: attention-interactively",
        "channels:",
        "  - conda-forge",
        "dependencies:",
        f"  - python={python}",
        "  - pip",
        "  - pip:",
    ]
    lines += [f"      - {name}=={pins[normalize(name)]}" for name in RUNTIME]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    (ROOT / "environment.yml").write_text(render(read_lock()))
    print("wrote environment.yml")
