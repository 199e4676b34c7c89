"""Served helpers run under the answer's own limits, not in the grader's process (adv15 F5).

A helper the grader serves to an answer (``al.scaled_dot_product_attention``, ``recall.position_recall``,
the ``attend`` functions of 04/7 and 07/4) used to run synchronously in the grader: an answer could make it
build gigabytes there (plain ``nbgrader autograde`` grades a whole class in one process) or hold it past the
time limit, checked only when the helper returned.  Each helper call now runs in a process of its own with
the answer's memory limit and deadline, and one that goes past them stops the exercise with a clear message.

Cheap on purpose: small limits set for the test (64 MB, half a second), not gigabytes and 20 s.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

import attnlib as al
from attnlib.grading import sandbox
from attnlib.grading.sandbox import Sandbox, Stopped

SDPA = {"al": {"scaled_dot_product_attention": "attnlib.scaled_dot_product_attention"}}
SERVE = {"attnlib.scaled_dot_product_attention": al.scaled_dot_product_attention}


def _grader_rss() -> int:
    """This process's resident memory now, in bytes."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * sandbox.os.sysconf("SC_PAGE_SIZE")


def test_a_helper_that_needs_more_memory_than_an_answer_gets_stops_the_exercise(monkeypatch):
    # the tester's cell: a try-out line at the top of the cell builds 2048 x 2048 weights (32 MB a copy, several
    # copies) in the helper; with 64 MB for the helper's work it cannot, and the grader's own memory stays put
    monkeypatch.setattr(sandbox, "HELPER_MEMORY_LIMIT", 64 * 1024**2)
    source = ("import numpy as np\nimport attnlib as al\n"
              "_Q = np.zeros((1, 2048, 1))\n"
              "_out, _w = al.scaled_dot_product_attention(_Q, _Q, _Q)\n"
              "def probe(x):\n    return al.scaled_dot_product_attention(x, x, x)[0]\n")
    before = _grader_rss()
    start = time.monotonic()
    with Sandbox(source, "probe", helpers=SDPA, serve=SERVE, time_limit=5.0) as box:
        assert box.problem is not None
        assert "a library call from your answer (al.scaled_dot_product_attention) used more than" in box.problem
        with pytest.raises(Stopped, match="a library call from your answer"):
            box.function()(np.zeros((1, 3, 2)))
    assert time.monotonic() - start < 4.0
    assert _grader_rss() - before < 30 * 1024**2

    # inside the function, on a call: the same, and a small call first is served as before
    source = ("import numpy as np\nimport attnlib as al\n"
              "def probe(n):\n    x = np.ones((1, n, 1))\n    return al.scaled_dot_product_attention(x, x, x)[0]\n")
    with Sandbox(source, "probe", helpers=SDPA, serve=SERVE, time_limit=5.0) as box:
        assert box.problem is None
        np.testing.assert_allclose(box.function()(3), np.ones((1, 3, 1)))
        with pytest.raises(Stopped, match=r"used more than the 0\.0625 GB"):
            box.function()(2048)
        with pytest.raises(Stopped):  # the exercise is over: no later call runs
            box.function()(3)


def test_a_slow_helper_is_stopped_at_the_deadline_not_when_it_returns():
    # a function the grader passes to the learner's (as attend in 04/7 and 07/4) that takes 3 s, with a time
    # limit of 0.5 s: the grader gives up at the deadline, not after the helper's 3 s
    def slow_attend(X):
        end = time.monotonic() + 3.0
        while time.monotonic() < end:  # computing (a helper that sleeps is taken for a stuck one: below)
            pass
        return X

    source = "def leaks_future(attend, X):\n    return bool(attend(X).sum() > 0)\n"
    with Sandbox(source, "leaks_future", time_limit=0.5) as box:
        start = time.monotonic()
        with pytest.raises(Stopped, match=r"a library call from your answer \(the function attend.*did not finish "
                                          r"within 0\.5 s"):
            box.function()(slow_attend, np.ones((2, 2)))
        assert time.monotonic() - start < 1.5


def test_a_worker_that_waits_without_computing_is_made_again(tmp_path):
    # A helper computes, it never waits: a worker that sleeps with no processor time used for a second was
    # forked while another grading thread held a lock of the C libraries, and is replaced (the answer is not
    # charged with it).  Here the first worker waits for ever and leaves a mark; the next one sees it and answers.
    mark = tmp_path / "first"

    def attend(X):
        if not mark.exists():
            mark.touch()
            time.sleep(60)
        return X

    source = "def leaks_future(attend, X):\n    return bool(attend(X).sum() > 0)\n"
    with Sandbox(source, "leaks_future", time_limit=5.0) as box:
        start = time.monotonic()
        assert box.function()(attend, np.ones((2, 2))) is True
        assert mark.exists() and 0.9 < time.monotonic() - start < 3.0
