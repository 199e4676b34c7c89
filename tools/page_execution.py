"""Run the book's pages a few at a time before Sphinx reads them; myst-nb runs them one by one.

myst-nb executes each page while Sphinx reads it, so a build runs its pages one after another on
one core.  This extension runs them first, all at once over the machine's cores, exactly as
myst-nb's own execution would (the same reader, the same ``single_nb_execution`` call, the page's
folder as working directory; one BLAS thread per page, since the pages run side by side) and stores
each executed page in myst-nb's jupyter-cache.  With
``execute_notebooks: cache`` in ``_config.yml``, myst-nb then finds every page's outputs there.

Every page Sphinx is about to read is executed again, whatever the cache holds, so the book still
behaves as with ``force``: a change to attnlib shows in the next build.  A page that fails here is not
stored; myst-nb then runs it itself and reports the error with its traceback, as it always did.
"""

from __future__ import annotations

import multiprocessing
import os
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path, PurePosixPath

from sphinx.util import logging

logger = logging.getLogger(__name__)
THREADS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def _execute(notebook, cwd: str, timeout, allow_errors: bool):
    """Run one page in a kernel of its own (in a worker process); return it and how it went.

    The kernel talks over Unix sockets in a folder of its own, not TCP ports: jupyter_client picks a
    TCP port by binding port 0 and letting it go, so kernels started at once by other processes (the
    test suite runs its own beside the build) can be handed the same port, and a kernel whose
    heartbeat loses that race prints a traceback to the build's log.
    """
    from jupyter_cache.executors.utils import single_nb_execution
    from traitlets.config import Config

    for name in THREADS:  # the kernel inherits them: pages side by side, one BLAS thread each
        os.environ[name] = "1"

    with tempfile.TemporaryDirectory(prefix="page-kernel-") as sockets:
        config = Config({"KernelManager": {"transport": "ipc", "ip": os.path.join(sockets, "kernel")}})
        result = single_nb_execution(notebook, cwd=cwd, allow_errors=allow_errors, timeout=timeout,
                                     meta_override=True, config=config)
    return notebook, result.time, (None if result.err is None else f"{type(result.err).__name__}: {result.err}")


def _pages(env, docnames):
    """(docname, path, notebook, its configuration) of every page to read that myst-nb would execute."""
    from myst_nb.core.read import create_nb_reader

    nb_config = env.mystnb_config
    for docname in docnames:
        path = Path(env.doc2path(docname))
        if not path.is_file() or any(PurePosixPath(path.as_posix()).match(p)
                                     for p in nb_config.execution_excludepatterns):
            continue
        text = path.read_text(encoding="utf-8")
        reader = create_nb_reader(str(path), env.myst_config, nb_config, text)
        if reader is None:
            continue
        notebook = reader.read(text)
        if not any(cell.cell_type == "code" for cell in notebook.cells):
            continue
        config = nb_config
        if nb_config.metadata_key in notebook.metadata:  # a page's own settings (myst-nb applies them too)
            overrides = dict(notebook.metadata[nb_config.metadata_key])
            overrides.pop("output_folder", None)
            config = nb_config.copy(**overrides)
        yield docname, path, notebook, config


def execute_pages(app, env, docnames) -> None:
    nb_config = env.mystnb_config
    if nb_config.execution_mode != "cache" or nb_config.execution_in_temp:
        return
    from jupyter_cache import get_cache
    from jupyter_cache.base import CacheBundleIn

    pages = list(_pages(env, docnames))
    if not pages:
        return
    cache = get_cache(nb_config.execution_cache_path or ".jupyter_cache")
    workers = min(len(pages), os.cpu_count() or 1)
    logger.info(f"[page_execution] running {len(pages)} pages, {workers} at a time")
    started = time.perf_counter()
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("fork")) as pool:
        runs = {docname: pool.submit(_execute, notebook, str(path.parent), config.execution_timeout,
                                     config.execution_allow_errors)
                for docname, path, notebook, config in pages}
        for docname, path, _, _ in pages:
            notebook, seconds, error = runs[docname].result()
            if error is not None:
                logger.info(f"[page_execution] {docname} failed ({error}); myst-nb will run it and report")
                continue
            cache.cache_notebook_bundle(CacheBundleIn(notebook, str(path), data={"execution_seconds": seconds}),
                                        check_validity=False, overwrite=True)
            logger.info(f"[page_execution] {docname}: executed in {seconds:.2f} s")
    logger.info(f"[page_execution] all pages in {time.perf_counter() - started:.1f} s")


def setup(app):
    app.connect("env-before-read-docs", execute_pages)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
