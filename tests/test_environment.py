"""One source of truth for versions: environment.yml (Binder) agrees with requirements.txt."""

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

from sync_environment import normalize, read_lock, render  # noqa: E402


def binder_pins() -> dict[str, str]:
    text = (ROOT / "environment.yml").read_text()
    return {normalize(n): v for n, v in re.findall(r"^\s*-\s*([A-Za-z0-9_.\-]+)==(\S+)\s*$", text, re.M)}


def test_binder_pins_match_the_lock():
    lock, binder = read_lock(), binder_pins()
    assert binder, "environment.yml pins nothing"
    drift = {n: (v, lock.get(n)) for n, v in binder.items() if lock.get(n) != v}
    assert not drift, f"environment.yml vs requirements.txt differ (run `make lock`): {drift}"


def test_environment_yml_is_generated_from_the_lock():
    expected = render(read_lock()).split("\n", 2)[2]  # past the two header lines
    actual = (ROOT / "environment.yml").read_text().split("\n", 2)[2]
    assert re.sub(r"python=3\.\d+", "", actual) == re.sub(r"python=3\.\d+", "", expected)


def test_lock_pins_every_direct_dependency_exactly():
    lock = read_lock()
    direct = [normalize(re.split(r"[=<>~ ]", line)[0])
              for line in (ROOT / "requirements.in").read_text().splitlines()
              if line.strip() and not line.startswith("#")]
    missing = [name for name in direct if name not in lock]
    assert not missing, f"requirements.txt does not pin {missing}"
    assert lock["jupyter-book"] == "1.0.4.post1"


def test_binder_installs_attnlib_and_the_model():
    post = (ROOT / "postBuild").read_text()
    assert (ROOT / "postBuild").stat().st_mode & 0o111, "postBuild must be executable"
    assert "pip install --no-deps -e ." in post
    assert "requirements-nodeps.txt" in post
