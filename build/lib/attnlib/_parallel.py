"""Running independent pieces of array work on all the CPU cores.

numpy releases Python's GIL inside its loops and matrix products, so plain
threads run at the same time.  While they run, the BLAS library behind ``@`` is
held to one thread per call, so that two of our threads do not each start a
team of BLAS threads and fight over the same cores.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import cache

from threadpoolctl import ThreadpoolController


def cpu_count() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@cache
def _blas() -> ThreadpoolController:
    return ThreadpoolController()  # finds the loaded BLAS once (about a millisecond)


def thread_budget() -> int:
    """How many threads attnlib may use: the BLAS's own thread count, at most the cores.

    So one setting rules both: ``OPENBLAS_NUM_THREADS=1`` (or threadpoolctl's
    ``threadpool_limits(1)``) makes attnlib single-threaded too.
    """
    counts = [lib.num_threads for lib in _blas().select(user_api="blas").lib_controllers]
    return max(1, min(max(counts, default=cpu_count()), cpu_count()))


def run_tasks(tasks: Sequence[Callable[[], None]], *, parallel: bool) -> None:
    """Call every task; with ``parallel``, split them between the CPU cores.

    Each thread gets a run of neighbouring tasks (tasks should be of similar size).
    An exception in a task is raised here, in the caller's thread.
    """
    workers = min(len(tasks), thread_budget()) if parallel else 1
    if workers <= 1:
        for task in tasks:
            task()
        return
    per_worker = -(-len(tasks) // workers)  # ceil
    groups = [tasks[k : k + per_worker] for k in range(0, len(tasks), per_worker)]
    with _blas().limit(limits=1, user_api="blas"), ThreadPoolExecutor(max_workers=len(groups)) as pool:
        for done in [pool.submit(_run_all, group) for group in groups]:
            done.result()


def _run_all(tasks: Sequence[Callable[[], None]]) -> None:
    for task in tasks:
        task()
