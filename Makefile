# Attention, interactively. The quick start is two commands: `make book`, then `make test`.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
NODE_STAMP := node_modules/.installed
JB_FLAGS := --all -W -n --keep-going
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: book test unit lab serve lock browser-deps clean help student nbgrader grade execute release bench bench-widgets
.DEFAULT_GOAL := help

help:
	@echo "make book   build the HTML book into _build/html (sets up .venv first)"
	@echo "make test   run the whole test suite (unit, notebooks, book build, browser)"
	@echo "make unit   the library's tests and doctests only: no npm, Chromium, notebooks or book build (< 30 s)"
	@echo "make lab    open the labs in JupyterLab"
	@echo "make serve  serve the built book on http://localhost:8000"
	@echo "make student   regenerate the labs' student versions in notebooks/student (commit them)"
	@echo "make nbgrader  the labs as an nbgrader course source in _build/nbgrader"
	@echo "make execute NB=notebooks/NN-x.ipynb   re-run a lab (default: all) in a fresh kernel and store it"
	@echo "make release VERSION=0.2.0   pin the labs' Colab install to tag v0.2.0, commit and tag"
	@echo "make bench  time and measure the memory of attention: loops, plain, fast, blockwise (a few minutes)"
	@echo "make bench-widgets  median slider-to-redrawn-weights latency of the QueryKeyExplorer in headless Chromium"

# The virtual environment is (re)made whenever the pins change.  Its modules are compiled to bytecode
# once, as pip does and uv does not by default: every kernel, nbgrader run and build then imports
# them without compiling (with PYTHONDONTWRITEBYTECODE set, Python would compile them in every process).
# rfc3987-syntax (pinned because jupyter-events asks for it) is removed again: jsonschema builds a Lark
# grammar from it at import, about 1.6 s of CPU in every process that imports nbformat (nbgrader runs,
# Jupyter's server, the book build); it only checks "iri" formats, which jsonschema skips without it.
$(STAMP): requirements.txt requirements-nodeps.txt pyproject.toml
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet "$$(grep '^uv==' requirements.txt)"  # uv, at the lock's version, installs the rest
	$(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python -r requirements.txt
	$(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python --no-deps -r requirements-nodeps.txt
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	$(BIN)/uv pip uninstall --quiet --python $(BIN)/python rfc3987-syntax
	$(BIN)/python tools/lab_settings/install_settings.py  # JupyterLab saves widget state in the labs
	touch $(STAMP)

# The site's MathJax and the browser tests' axe-core, pinned in package-lock.json; tools/book_site/
# copies MathJax and attnlib's widget host into the built site at every build.
$(NODE_STAMP): package.json package-lock.json
	@command -v npm >/dev/null 2>&1 || { \
	  echo "Installing Debian's nodejs and npm for the site's pinned browser scripts"; \
	  $(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null; }
	npm ci --no-audit --no-fund
	touch $(NODE_STAMP)

# The induction pages share one training run, saved beside the build (a fresh clone trains it once).
book: $(STAMP) $(NODE_STAMP)
	ATTNLIB_CACHE=$(CURDIR)/_build/attnlib-cache $(BIN)/jupyter-book build . $(JB_FLAGS)
	@echo "The book is in $(CURDIR)/_build/html/index.html (make serve to view it)"

# Two pytest-xdist workers, each taking whole files (a lab's cells stay in one kernel, in order) in the
# order tests/conftest.py gives them (xdist would otherwise start the files with most tests first);
# the book builds beside them from the moment they have collected, and its tests start once it is built.
test: $(STAMP) $(NODE_STAMP) browser-deps
	$(BIN)/ruff check attnlib tests tools benchmarks
	$(BIN)/python -m pytest -n 2 --dist loadfile --no-loadscope-reorder --durations=12

# The library alone: attnlib's doctests and the tests that need neither the built book, nor Chromium,
# nor the labs, nor a Jupyter kernel (the tests marked build/browser/slow are deselected; tests/ files
# about notebooks, the site, coursework and its grader are left out), on two xdist workers of one BLAS thread each
# (2 x 2 BLAS threads on 2 cores cost a quarter more CPU time).  Prints its wall time.
UNIT_IGNORE := $(addprefix --ignore=tests/,test_book.py test_book_site.py test_browser.py test_browser_training.py \
	test_launch_links.py test_notebooks.py test_student.py test_nbgrader.py test_coursework.py test_checks_labs.py \
	test_widgets.py test_environment.py test_browser_jupyterlab.py test_grading.py test_glossary.py \
	test_nbgrader_hostile.py test_browser_standalone.py test_browser_looks.py test_browser_widgets.py test_page_execution.py)
unit: $(STAMP)
	@start=$$(date +%s.%N); \
	OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q -n 2 -p no:nbval -o addopts="--doctest-modules -p no:cacheprovider" \
	  -m "not build and not browser and not slow" $(UNIT_IGNORE) tests attnlib --ignore=attnlib/widgets; \
	status=$$?; echo "make unit: $$(echo "$$(date +%s.%N) - $$start" | bc) s"; exit $$status

# Coursework: student versions of the labs (nbgrader's stubs instead of solutions), committed in
# notebooks/student/ for the launch buttons (a test fails when they are stale), and an nbgrader course source.
student: $(STAMP)
	$(BIN)/python tools/student.py --out notebooks/student

nbgrader: $(STAMP)
	$(BIN)/python tools/nbgrader_export.py --out _build/nbgrader

# Grade every collected submission of a lab, JOBS at once, outside the students' kernels (instructor guide):
# make grade LAB=03-how-attention-works [COURSE=_build/nbgrader] [JOBS=2]
COURSE ?= _build/nbgrader
JOBS ?= 2
grade: $(STAMP)
	@test -n "$(LAB)" || { echo "usage: make grade LAB=03-how-attention-works [COURSE=...] [JOBS=2]"; exit 1; }
	$(BIN)/python -m attnlib.grading.classroom $(LAB) --course $(COURSE) --jobs $(JOBS)

# Store labs executed (nbclient's `jupyter execute`): after editing one, then `make student`.
NB ?= notebooks/*.ipynb
execute: $(STAMP)
	$(BIN)/jupyter execute --inplace --timeout=120 $(NB)
	$(BIN)/python tools/merge_streams.py $(NB)

release: $(STAMP)
	@test -n "$(VERSION)" || { echo "usage: make release VERSION=0.2.0"; exit 1; }
	$(BIN)/python tools/release.py $(VERSION)

lab: $(STAMP)
	$(BIN)/jupyter lab notebooks/ $(if $(SUDO),,--allow-root)

# Benchmark attention (benchmarks/README.md).  OpenBLAS's CORETYPE/L2_SIZE overrides, set on some
# machines for older builds, slow a current numpy: they are dropped for this command only.
bench: $(STAMP)
	env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $(BIN)/python benchmarks/attention.py $(BENCH_ARGS)

bench-widgets: $(STAMP) $(NODE_STAMP) browser-deps
	PYTHONPATH=tools $(BIN)/python benchmarks/widget_latency.py

serve:
	@test -f _build/html/index.html || { echo "Build the book first: make book"; exit 1; }
	$(BIN)/python -m http.server --directory _build/html 8000

# After editing requirements.in or requirements-runtime.in: re-resolve both locks with pip-compile
# (pins already in a lock are kept unless the change needs others) and regenerate environment.yml.
PIP_COMPILE := $(BIN)/pip-compile --quiet --no-header --strip-extras --no-emit-index-url --no-emit-find-links
lock: $(STAMP)
	$(PIP_COMPILE) --output-file requirements.txt requirements.in
	$(PIP_COMPILE) --output-file requirements-runtime.txt requirements-runtime.in
	$(BIN)/python tools/sync_environment.py

# Debian's chromium for the browser tests (Playwright drives it; it cannot download its own).
browser-deps:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "Installing Debian's chromium for the browser tests"; \
	  $(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

clean:
	rm -rf _build
