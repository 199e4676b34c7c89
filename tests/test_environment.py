"""One source of truth for versions: the runtime lock and environment.yml (Binder) agree with requirements.txt."""

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent

from sync_environment import FULL, HEADERS, RUNTIME, read_lock, render  # noqa: E402

# Build and test tools: none of them belongs in the labs' runtime (Binder, hubs).
DEVELOPMENT = ["jupyter-book", "sphinx", "pytest", "nbval", "hypothesis", "playwright", "ruff", "nbgrader",
               "pip-tools", "sphinx-exercise", "sphinxcontrib-bibtex"]


def binder_pins() -> dict[str, str]:
    text = (ROOT / "environment.yml").read_text()
    return {canonicalize_name(n): v for n, v in re.findall(r"^\s*-\s*([A-Za-z0-9_.\-]+)==(\S+)\s*$", text, re.M)}


def direct(path: Path) -> list[str]:
    """The package names a requirements .in file asks for (options such as -c skipped)."""
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return [canonicalize_name(Requirement(line).name) for line in lines if line and not line.startswith("-")]


def test_runtime_lock_uses_the_full_locks_versions():
    full, runtime = read_lock(FULL), read_lock(RUNTIME)
    assert runtime, "requirements-runtime.txt pins nothing"
    drift = {n: (v, full.get(n)) for n, v in runtime.items() if full.get(n) != v}
    assert not drift, f"requirements-runtime.txt vs requirements.txt differ (run `make lock`): {drift}"
    assert "-c requirements.txt" in (ROOT / "requirements-runtime.in").read_text().splitlines()


def test_runtime_lock_has_what_the_labs_need_and_no_build_tools():
    runtime = read_lock(RUNTIME)
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    attnlib_deps = [*project["dependencies"], *project["optional-dependencies"]["pretrained"]]
    needed = {canonicalize_name(Requirement(d).name) for d in attnlib_deps} | {"jupyterlab", "ipykernel"}
    missing = sorted(needed - set(runtime))
    assert not missing, f"requirements-runtime.txt lacks {missing}"
    extra = [name for name in DEVELOPMENT if name in runtime]
    assert not extra, f"requirements-runtime.txt installs build or test tools: {extra}"
    assert len(runtime) < len(read_lock(FULL))


def test_binder_pins_exactly_the_runtime_lock():
    assert binder_pins() == read_lock(RUNTIME), "environment.yml is not the runtime lock (run `make lock`)"


def test_environment_yml_is_generated_from_the_runtime_lock():
    expected = render(read_lock(RUNTIME)).split("\n", 2)[2]  # past the two header lines
    actual = (ROOT / "environment.yml").read_text().split("\n", 2)[2]
    assert re.sub(r"python=3\.\d+", "", actual) == re.sub(r"python=3\.\d+", "", expected)


def test_locks_pin_every_direct_dependency_exactly():
    for lock, wanted in ((FULL, ROOT / "requirements.in"), (RUNTIME, ROOT / "requirements-runtime.in")):
        pins = read_lock(lock)
        missing = [name for name in direct(wanted) if name not in pins]
        assert not missing, f"{lock.name} does not pin {missing} of {wanted.name}"
        assert lock.read_text().startswith(HEADERS[lock]), f"{lock.name} lost its header (run `make lock`)"
    assert read_lock(FULL)["jupyter-book"] == "1.0.4.post1"


def test_read_lock_uses_canonical_names(tmp_path):
    lock = tmp_path / "lock.txt"
    lock.write_text("# header\nJupyter_Book==1.0\n    # via -r requirements.in\nzope.interface==7.0  # comment\n")
    assert read_lock(lock) == {"jupyter-book": "1.0", "zope-interface": "7.0"}


def test_binder_installs_attnlib_and_the_model():
    post = (ROOT / "postBuild").read_text()
    assert (ROOT / "postBuild").stat().st_mode & 0o111, "postBuild must be executable"
    assert "pip install --no-deps -e ." in post
    assert "requirements-nodeps.txt" in post
