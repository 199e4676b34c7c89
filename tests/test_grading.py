"""The grader outside the learner's kernel (issue 22; issue 20 item 4).

For every exercise of every lab, through :func:`attnlib.grading.grader.grade_source` (the answer
cell run in a fresh process with numpy and the exercise's given helpers only):

- the lab's own answer scores full marks; right answers written differently (a list for a tuple,
  float32, another order of operations) score full marks too;
- every mutant in the exercise's catalogue (drop a term, wrong axis, wrong scale, std for var,
  off-by-one, transposed output, a missing bias with nonzero-bias inputs, 1/sqrt(2 d_k), a softmax
  2 % off or cast to float16, ...) scores 0, and a mutant with a named diagnosis gets exactly it;
- the cheats of issue 22 score 0: patching the checks, walking frames to the expected value,
  ``return measured``, attnlib's reference by import, by file, by exec of its source, by ``reload``,
  a loop that catches the timeout, a detector that reads ``attend.__name__``.

Lab 1 also goes through real ``nbgrader autograde`` in tests/test_nbgrader.py.
"""

from __future__ import annotations

import functools
import time
from datetime import UTC
from pathlib import Path

import nbformat
import numpy as np
import pytest

import attnlib as al
from attnlib.checks import check_function, mistakes
from attnlib.grading import catalogue
from attnlib.grading.grader import grade_source
from attnlib.grading.sandbox import Sandbox

EXERCISES = sorted(catalogue.EXERCISES)


def _id(key):
    return f"lab{key[0]}-ex{key[1]}"


def _grade(key, source, seed=0, **kw):
    return grade_source(*key, source, rng=np.random.default_rng(seed), **kw)


@functools.cache
def _grade_mutant(key, number):
    """Mutant ``number`` of exercise ``key`` graded once per test run (several tests read its result: each grading
    starts a sandboxed Python with numpy, the bulk of this file's time, and the verdict on one source is one verdict).

    With a 5 s limit instead of the grader's 20 s: every mutant's work takes milliseconds, and the ones that
    must time out (finite differences on the large backward-pass inputs, minutes) need not wait 20 s."""
    source, _ = catalogue.EXERCISES[key].mistakes[number]
    return _grade(key, source, seed=10 + number, time_limit=5.0)


@pytest.mark.parametrize("key", EXERCISES, ids=_id)
def test_reference_and_right_but_different_answers_score_full_marks(key):
    ex = catalogue.EXERCISES[key]
    for number, source in enumerate([ex.reference, *ex.right]):
        result = _grade(key, source, seed=number)
        assert result.passed, f"{'reference' if number == 0 else f'right answer {number}'}: {result}"


@pytest.mark.parametrize("key", EXERCISES, ids=_id)
def test_every_mutant_scores_zero_and_named_mistakes_get_their_diagnosis(key):
    ex = catalogue.EXERCISES[key]
    assert ex.mistakes, "every exercise has a list of mutants"
    for number, (source, message) in enumerate(ex.mistakes):
        result = _grade_mutant(key, number)
        assert not result.passed, f"mutant {number} ({message}) passed:\n{source}"
        if message and len(message) >= 30:  # a named diagnosis, not just a label
            assert message in result.message, f"mutant {number}: {result.message}"


NAMED = [  # issue 20 item 4: the mistakes readers really made, each with its own diagnosis
    (("01", 1), "smallest weights"),
    (("01", 3), "sign of the scores is flipped"),
    (("01", 3), "divided by 2 sigma where 2 sigma**2 is expected"),
    (("03", 5), "divided by 2 sigma where 2 sigma**2 is expected"),
    (("02", 4), "the scale is missing"),
    (("03", 3), "standard deviation"),
    (("03", 3), "sqrt(2 d_k)"),
    (("01", 7), "exp overflows"),  # adv9: was told "not normalised" (the nan of inf / inf matched that mutant)
    (("07", 4), "a leak can lower an output"),  # adv10 F1: the leak detector without abs
    (("03", 7), "plain mean of dA"),  # a94d: Exercise 7's teammate, who passes a row of equal dA
    (("03", 6), "exp overflows"),  # b96c: a plain exp was told "you subtract the first score" (the same nan)
    (("01", 6), "exp overflows"),
    (("05", 6), "exp overflows"),
]


@pytest.mark.parametrize(("key", "words"), NAMED, ids=lambda v: v if isinstance(v, str) else _id(v))
def test_the_named_mistakes_of_issue_20_are_named(key, words):
    ex = catalogue.EXERCISES[key]
    results = [_grade_mutant(key, number).message for number in range(len(ex.mistakes))]
    assert any(words in message for message in results), results


def test_the_self_check_names_a_catalogue_mistake_in_the_learners_kernel():
    """The same catalogue drives the notebook's self-check (mistakes=...)."""
    import attnlib

    keys = np.arange(0.0, 11, 2)

    def least_sure(queries, k, s):  # the notebook's reference: the weights of attnlib's soft lookup
        return queries[attnlib.nadaraya_watson(queries, k, k, bandwidth=s)[1].max(axis=1).argmin()]

    cases = [(np.linspace(1.35, 7.15, 100).round(3), np.array([1.3, 2.5, 4.1, 4.6, 5.0, 7.2]), 0.7),
             (np.linspace(-1.0, 12.0, 131), keys, 1.0)]
    for source, message in catalogue.EXERCISES["01", 3].mistakes:
        if not message:  # a mutant for the hidden tests, no diagnosis of its own
            continue
        namespace = {"np": np, "al": attnlib}
        exec(source, namespace)  # noqa: S102 (the catalogue's own mutant)
        result = check_function("Exercise 3", namespace["least_sure_query"], least_sure, cases,
                                mistakes=mistakes("01", 3))
        assert not result.passed and message in result.message, result.message


# --- the cheats of issue 22, against the grader ---------------------------------------------

SOFTMAX_CHEATS = {
    "the checks replaced in sys.modules": '''
import sys, types
sys.modules["attnlib.checks"] = types.SimpleNamespace(check_function=lambda *a, **k: None)
def my_softmax(x):
    return x
''',
    "assert_passed's code swapped": '''
try:
    from attnlib.checks import assert_passed
    assert_passed.__code__ = (lambda result: None).__code__
except Exception:
    pass
def my_softmax(x):
    return x
''',
    "the expected value read from the caller's frame": '''
import sys
def my_softmax(x):
    frame = sys._getframe(1)
    while frame is not None:
        if "expected" in frame.f_locals:
            return frame.f_locals["expected"]
        frame = frame.f_back
    return x
''',
    "attnlib imported": '''
import attnlib
def my_softmax(x):
    return attnlib.softmax(x)
''',
    "attnlib found on disk and put on sys.path": '''
import sys, glob
for path in glob.glob("/work/**/attnlib/__init__.py", recursive=True)[:1]:
    sys.path.insert(0, path.rsplit("/attnlib/", 1)[0])
import attnlib
def my_softmax(x):
    return attnlib.softmax(x)
''',
    "attnlib's source read and exec'd": f'''
namespace = {{}}
exec(open({str(Path(al.__file__).parent / "softmax.py")!r}).read(), namespace)
def my_softmax(x):
    return namespace["softmax"](x)
''',
    "a FunctionType copy of a helper it is not given": '''
import types
f = types.FunctionType(al.softmax.__code__, {})
def my_softmax(x):
    return f(x)
''',
    "importlib.reload of a helper module": '''
import importlib
importlib.reload(al)
def my_softmax(x):
    return al.softmax(x)
''',
    "exp of attnlib.nn.log_softmax": '''
from attnlib import nn
def my_softmax(x):
    return np.exp(nn.log_softmax(x))
''',
    "a subprocess that runs attnlib": '''
import subprocess
def my_softmax(x):
    out = subprocess.run(["python", "-c", "import attnlib"], capture_output=True)
    return x
''',
    "ctypes to escape the audit hook": '''
import ctypes
ctypes.pythonapi.PySys_AddAuditHook
def my_softmax(x):
    return x
''',
}


@pytest.mark.parametrize("cheat", SOFTMAX_CHEATS, ids=lambda s: s.replace(" ", "-"))
def test_a_cheat_scores_zero(cheat):
    result = _grade(("03", 1), SOFTMAX_CHEATS[cheat])
    assert not result.passed, result


def test_a_loop_that_catches_the_timeout_is_stopped_from_outside():
    source = '''
def my_softmax(x):
    while True:
        try:
            pass
        except BaseException:
            pass
'''
    start = time.perf_counter()
    result = _grade(("03", 1), source, time_limit=1.5)
    assert not result.passed and "did not finish within 1.5 s" in result.message, result
    assert time.perf_counter() - start < 10


def test_predictions_are_graded_without_the_measurement():
    for key in [k for k, ex in catalogue.EXERCISES.items() if ex.function.startswith("predicted_")]:
        ex = catalogue.EXERCISES[key]
        cheats = [number for number, (src, _) in enumerate(ex.mistakes) if "measured" in src]
        assert len(cheats) == 2
        for number in cheats:  # mutants of the catalogue: their verdicts, graded once for the run
            result = _grade_mutant(key, number)
            assert not result.passed and "NameError" in result.message or "KeyError" in result.message, result


def test_a_leak_detector_that_reads_the_function_name_scores_zero():
    source = '''
def leaks_future(attend, X):
    return "causal" not in attend.__name__
'''
    assert not _grade(("07", 4), source).passed


def test_a_leak_detector_that_replays_the_verdicts_scores_zero():
    """The cases come in an order drawn from the grading generator (fresh entropy when grading):
    a detector that answers from a list, never calling attend, fails (found by an adversarial tester)."""
    source = '''
_seq = iter([False, True, True, True, True, False, True] * 2)
def leaks_future(attend, X):
    return next(_seq)
'''
    assert not any(_grade(("07", 4), source, seed=seed).passed for seed in range(3))


def test_a_forged_message_from_the_answers_process_does_not_crash_the_grader():
    for forged in ['{"op": "cell raised"}', '{"op": "raised"}', "[" * 100_000, '{"op": "returned"}']:
        source = f'''
import sys
def leaks_future(attend, X):
    sys.modules["__main__"]._out.write({forged!r} + "\\n"); sys.modules["__main__"]._out.flush()
    return True
'''
        result = _grade(("07", 4), source)
        assert not result.passed, (forged[:20], result)


ESCAPE = '''
import sys, os, importlib.util
_m = sys.modules["__main__"]
def _poke(s, new):  # numpy writes the audit hook's own strings: "socket.__new__" no longer matches
    class A: pass
    a = A()
    a.__array_interface__ = {"data": (id(s) + sys.getsizeof(s) - len(s) - 1, False), "shape": (len(s),),
                             "typestr": "|u1", "version": 3}
    np.array(a, copy=False)[:] = np.frombuffer(new.encode(), dtype=np.uint8)
for s in list(getattr(_m, "_BLOCKED", ())):  # adv11 F1: the hook now keeps private copies
    if s.startswith(("socket.", "os.fork")):
        _poke(s, "X" + s[1:])
def _load(name, path):  # the import check reads only the first part of a dotted name
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod
_dyn = os.path.dirname(os.__file__) + "/lib-dynload"
sys.modules["_socket"] = _load("x._socket", _dyn + "/" + [f for f in os.listdir(_dyn) if f.startswith("_socket.")][0])
_sk = _load("sock", os.path.dirname(os.__file__) + "/socket.py")
def my_softmax(x):
    WAY
    e = np.exp(x - np.max(x, axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)  # a right answer, returned only if the way out worked
'''


@pytest.mark.parametrize("way", ["_sk.socket(_sk.AF_INET, _sk.SOCK_DGRAM)", "_sk.socket(_sk.AF_UNIX)",
                                 "os.fork() or os._exit(0)"], ids=["udp", "unix", "fork"])
def test_past_the_audit_hook_there_is_still_no_socket_and_no_new_process(way):
    """The audit hook's strings can be rewritten through numpy and a module loaded under a dotted name;
    Landlock governs TCP only.  The system-call filter refuses sockets and new processes to native code
    too (an adversarial tester reached a UDP "oracle" and left a forked process behind before it)."""
    result = _grade(("03", 1), ESCAPE.replace("WAY", way))
    # since adv11 F1 the hook's blocked names are private copies, so the hook itself may refuse first;
    # the filter alone is tested below, in a process without the hook
    assert not result.passed and ("Operation not permitted" in result.message
                                  or "not allowed while grading" in result.message), result


@pytest.mark.parametrize("way", ["socket.socket(socket.AF_INET, socket.SOCK_DGRAM)", "socket.socket(socket.AF_UNIX)",
                                 "os.fork() or os._exit(0)"], ids=["udp", "unix", "fork"])
def test_the_system_call_filter_alone_refuses_sockets_and_new_processes(way):
    """The filter without the audit hook (as native code would meet it): EPERM."""
    import platform
    import subprocess
    import sys

    if not sys.platform.startswith("linux") or platform.machine() not in ("x86_64", "aarch64"):
        pytest.skip("the filter is Linux x86_64/aarch64 only")
    script = "import os, sys, socket\n" + _filter_source() + f'''
assert _filter_syscalls()
try:
    {way}
    print("done")
except OSError as err:
    print(err.errno)
'''
    out = subprocess.run([sys.executable, "-I", "-c", script], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.split() == ["1"], (out.stdout, out.stderr)


def test_installed_packages_are_not_readable_though_the_standard_library_is():
    """site-packages sits inside the standard library's folders (a venv's, a Docker image's, conda's):
    with attnlib installed there, an answer read the catalogue's reference answers (an adversarial
    tester passed 46 of 50 exercises so).  Every file of the packages but numpy's is refused; the
    standard library still imports."""
    import site
    import sysconfig

    packages = [Path(p) for p in {*site.getsitepackages(), sysconfig.get_paths()["purelib"]} if Path(p).is_dir()]
    files = [str(next(f for f in folder.rglob("*.py") if "numpy" not in f.parts)) for folder in packages]
    assert files
    source = f'''
import statistics, fractions
def my_softmax(x):
    for f in {files!r}:
        try:
            open(f).read(10)
        except PermissionError:
            continue
        raise RuntimeError("read " + f)
    e = np.exp(x - np.max(x, axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)
'''
    result = _grade(("03", 1), source)
    assert result.passed, result  # passes only when every file was refused


def test_a_list_for_a_tuple_and_float32_score_full_marks():
    source = '''
def attention(Q, K, V, mask=None):
    Q, K, V = (np.asarray(a, dtype=np.float32) for a in (Q, K, V))
    scores = Q @ np.swapaxes(K, -1, -2) / np.float32(math.sqrt(K.shape[-1]))
    if mask is not None:
        scores = np.where(mask, scores, -np.inf)
    weights = al.softmax(scores, axis=-1).astype(np.float32)
    return [weights @ V, weights]
'''
    assert _grade(("07", 1), source).passed


def test_the_sandbox_has_numpy_and_only_the_given_helpers():
    source = '''
import sys
def probe():
    found = []
    for name in ("attnlib", "scipy", "torch"):
        try:
            module = __import__(name)
            found.append(name + ":" + ",".join(sorted(k for k in vars(module) if not k.startswith("_"))))
        except ImportError:
            pass
    return found + sorted(vars(al)) + [str(len(sys.path))]
'''
    with Sandbox(source, "probe", helpers={"al": {"softmax": "attnlib.softmax"}},
                 serve={"attnlib.softmax": lambda x: x}) as sandbox:
        found = sandbox.function()()
    # attnlib imports as a stand-in holding the served helpers only (an answer may import it as the lab does),
    # and the do-nothing stand-ins of the self-checks and plotting (a notebook cell may import them: adv7 F9)
    assert found[:-1] == ["attnlib:checks,plotting,softmax", "softmax"], found


def test_an_answer_cannot_write_files_or_open_sockets(tmp_path):
    target = tmp_path / "planted.py"
    source = f'''
def my_softmax(x):
    for attempt in (lambda: open({str(target)!r}, "w").write("x"),
                    lambda: __import__("socket").socket()):
        try:
            attempt()
        except Exception:
            pass
    return x
'''
    assert not _grade(("03", 1), source).passed
    assert not target.exists()


def test_the_audit_hook_cannot_be_switched_off_from_the_answer():
    source = '''
import sys
main = sys.modules["__main__"]
for name in list(vars(main)):
    value = getattr(main, name)
    if isinstance(value, list):
        value[:] = [False] * len(value)
try:
    import gc
    for obj in gc.get_objects():
        if callable(obj) and getattr(obj, "__name__", "") == "hook":
            obj.__code__ = (lambda event, args: None).__code__
except Exception:
    pass
import attnlib
def my_softmax(x):
    return attnlib.softmax(x)
'''
    result = _grade(("03", 1), source)
    assert not result.passed and "not available while grading" in result.message, result


def _graded_notebook(answer: str, number: int = 4):
    import nbformat

    answer_cell = nbformat.v4.new_code_cell(answer, metadata={"nbgrader": {
        "solution": True, "grade": False, "grade_id": f"exercise-{number}", "locked": False}})
    check = nbformat.v4.new_code_cell("check_something()", metadata={"nbgrader": {
        "solution": False, "grade": True, "grade_id": f"exercise-{number}-check", "points": 1, "locked": True}})
    check.outputs = [nbformat.v4.new_output("execute_result", data={"text/plain": "✓ passed in the kernel"},
                                            execution_count=1)]
    return nbformat.v4.new_notebook(cells=[answer_cell, check])


def test_the_preprocessor_sets_each_grading_cells_outcome():
    """Whatever the kernel showed, nbgrader's own determine_grade reads the external verdict."""
    from nbgrader.utils import determine_grade

    from attnlib.grading.nbgrader_step import ExternalGrade

    wrong = "def nearest_key_lookup(query, keys, values):\n    return values[0]"
    right = catalogue.EXERCISES["01", 4].reference
    for answer, points in ((wrong, 0), (right, 1)):
        nb, _ = ExternalGrade().preprocess(_graded_notebook(answer), {"nbgrader": {"notebook": "01-what-is-attention"}})
        check = nb.cells[1]
        assert determine_grade(check)[0] == points, check.outputs
        assert check.outputs[0]["output_type"] == "display_data", "the kernel's display stays, first"
    nb, _ = ExternalGrade().preprocess(_graded_notebook(right), {"nbgrader": {"notebook": "my-own-notebook"}})
    assert determine_grade(nb.cells[1])[0] == 0, "a notebook the grader does not know scores 0, never the kernel's say"


def test_a_helper_call_cannot_make_the_grader_compute_without_bound():
    source = '''
def position_weights(p, n, d_pe, scale):
    PE = al.sinusoidal_positional_encoding(10**7, 10**4)
    return al.softmax(scale * PE @ PE[p])
'''
    result = _grade(("02", 4), source)
    assert not result.passed and "larger than this exercise needs" in result.message, result


@pytest.mark.parametrize(("key", "call"), [
    (("06", 1), "al.causal_mask(30000)"),  # 35 s and 2.6 GB in the grader's process (an adversarial tester)
    (("06", 1), "al.softmax(np.ones((1, 12000)))"),
], ids=["square", "long-axis"])
def test_a_helper_is_refused_sizes_whose_cost_grows_past_the_time_limit(key, call):
    """A helper's worker process is bounded, and a size well past the labs' inputs is refused before it runs."""
    function = catalogue.EXERCISES[key].function
    source = f'''
def {function}(S):
    {call}
    return None
'''
    start = time.perf_counter()
    result = _grade(key, source)
    assert not result.passed and "larger than this exercise needs" in result.message, result
    assert time.perf_counter() - start < 10


# --- holes found by the adversarial review (each of these tests fails without its fix) ----------

def _probe(source, function="probe", **kw):
    with Sandbox(source, function, **kw) as sandbox:
        assert sandbox.problem is None, sandbox.problem
        return sandbox.function()(), sandbox


def test_an_answer_that_rewrites_the_hooks_settings_in_memory_still_cannot_read_attnlib():
    """numpy reads and writes the child's memory at any address: the audit hook's allowed roots can be
    rewritten (this answer scored full marks with attnlib's own softmax before the child confined itself)."""
    root = str(Path(al.__file__).resolve().parent)
    source = f'''
import sys, os, types, re
def _raw(address, n):
    class Raw:
        __array_interface__ = {{"data": (address, False), "shape": (n,), "typestr": "|u1", "version": 3}}
    return np.asarray(Raw())
main = sys.modules["__main__"]
empty = ""  # the hook's first allowed root becomes "": every absolute path starts with "" + "/"
_raw(id(main._ALLOWED) + 24, 8)[:] = np.frombuffer(id(empty).to_bytes(8, "little"), dtype=np.uint8)
root = {root!r}
pkg = types.ModuleType("attnlib"); pkg.__path__ = [root]; sys.modules["attnlib"] = pkg
def load(name):  # a module already in sys.modules raises no "import" audit event
    full = "attnlib." + name
    if full in sys.modules:
        return sys.modules[full]
    mod = types.ModuleType(full); mod.__file__ = os.path.join(root, name + ".py"); mod.__package__ = "attnlib"
    code = open(mod.__file__).read()
    for dep in re.findall(r"^from attnlib\\.(\\w+) import|^import attnlib\\.(\\w+)", code, re.M):
        load(dep[0] or dep[1])
    sys.modules[full] = mod
    exec(compile(code, mod.__file__, "exec"), mod.__dict__)
    return mod
softmax = load("softmax").softmax
def my_softmax(x, axis=-1):
    return softmax(x, axis=axis)
'''
    result = _grade(("03", 1), source)
    assert not result.passed, result


def test_native_code_from_outside_the_standard_library_and_numpy_is_not_loaded(tmp_path):
    """A shared library shipped beside the submission would run native code in the child."""
    import glob
    import shutil
    import sys

    base = Path(sys.base_prefix) / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}"
    library = sorted(glob.glob(str(base / "lib-dynload" / "_csv*.so")))
    if not library:
        pytest.skip("no _csv extension module to copy")
    copy = tmp_path / Path(library[0]).name
    shutil.copy(library[0], copy)
    source = f'''
import importlib.util
def probe():
    try:
        importlib.util.module_from_spec(importlib.util.spec_from_file_location("_csv", {str(copy)!r}))
        return "loaded"
    except Exception as err:
        return type(err).__name__
'''
    found, _ = _probe(source)
    assert found != "loaded"


def test_an_answer_cannot_signal_the_grader():
    """os.kill is audited, pidfd_send_signal is not: an answer could stop the grader (or a classmate's)."""
    import signal

    if not hasattr(signal, "pidfd_send_signal"):
        pytest.skip("no pidfd_send_signal here")
    source = '''
import os, signal
def probe():
    try:
        signal.pidfd_send_signal(os.pidfd_open(os.getppid()), 0)  # signal 0: a probe, harmless
        return "sent"
    except Exception as err:
        return type(err).__name__
'''
    found, sandbox = _probe(source)
    if getattr(sandbox, "isolated", None) is not None and sandbox.isolated < 6:
        pytest.skip("this kernel's Landlock cannot scope signals (ABI < 6)")
    assert found != "sent"


def test_half_a_line_then_silence_does_not_outlast_the_time_limit():
    """The grader read whole lines: a child that wrote half of one and slept held it for ever."""
    import threading

    source = '''
import sys, time
def my_softmax(x):
    sys.modules["__main__"]._out.write('{"op": "ret')
    sys.modules["__main__"]._out.flush()
    time.sleep(600)
'''
    results = []
    worker = threading.Thread(target=lambda: results.append(_grade(("03", 1), source, time_limit=1.5)), daemon=True)
    start = time.perf_counter()
    worker.start()
    worker.join(60)
    assert not worker.is_alive(), "the grader is still waiting for the rest of the line"
    assert not results[0].passed and "did not finish within 1.5 s" in results[0].message, results[0]
    assert time.perf_counter() - start < 20


def test_a_namedtuple_for_the_output_and_weights_scores_full_marks():
    """A right answer returning Result(output, weights) passes the self-check; the grader refused it."""
    source = '''
from collections import namedtuple
Result = namedtuple("Result", "output weights")
def attention(Q, K, V, mask=None):
    scores = Q @ np.swapaxes(K, -1, -2) / math.sqrt(K.shape[-1])
    if mask is not None:
        scores = np.where(mask, scores, -np.inf)
    weights = al.softmax(scores, axis=-1)
    return Result(weights @ V, weights)
'''
    result = _grade(("07", 1), source)
    assert result.passed, result


def test_a_range_the_grader_would_spend_its_own_time_on_is_refused():
    """The learner's time limit holds in the child; a returned range(10**8) was turned into a list here."""
    source = '''
def my_softmax(x):
    return range(10**8)
'''
    start = time.perf_counter()
    result = _grade(("03", 1), source)
    assert not result.passed and time.perf_counter() - start < 3, result


def test_two_sandboxes_called_at_once_keep_their_own_function_arguments():
    """adv5: the function arguments of a call were a module global, set around encoding, while
    ExternalGrade grades two exercises at once in threads.  Here sandbox A's call is paused in the
    middle of encoding its arguments (a dict whose items() waits) while sandbox B makes a whole call
    with a function argument; then A encodes its own function.  Each answer must call back its own
    function, and A's call must not fail with "a function cannot be sent"."""
    import threading

    source = "def probe(extra, f):\n    return f(2.0)\n"
    paused, go_on = threading.Event(), threading.Event()

    class Slow(dict):
        def items(self):
            paused.set()
            go_on.wait(30)
            return super().items()

    results = {}
    with Sandbox(source, "probe") as a, Sandbox(source, "probe") as b:
        def call_a():
            try:
                results["a"] = a.call(Slow(k=1), lambda x: x + 1)
            except Exception as err:  # the race's symptom
                results["a"] = err

        thread = threading.Thread(target=call_a)
        thread.start()
        assert paused.wait(30)
        results["b"] = b.call({}, lambda x: x * 10)
        go_on.set()
        thread.join(60)
    assert results == {"a": 3.0, "b": 20.0}, results


def test_lab3_exercise3_states_the_draw_order_its_check_requires():
    """adv6 F9: the check recomputes the answer from a generator of the same seed (an answer that does not
    compute cannot pass), so it needs the queries drawn first, then the keys: the statement says so."""
    import nbformat

    nb = nbformat.read(Path(__file__).resolve().parent.parent / "notebooks" / "03-how-attention-works.ipynb",
                       as_version=4)
    statement = next(c.source for c in nb.cells
                     if c.cell_type == "markdown" and c.source.startswith("### Exercise 3"))
    assert "queries first, then the keys" in statement and "rng.normal(size=(n, d_k))" in statement, statement


IMPORTING_ANSWERS = {  # adv6 F8: right answers that import attnlib as the lab's first cell does
    ("01", 3): "import attnlib as al\n\ndef least_sure_query(queries, keys, sigma):\n"
               "    largest = [al.softmax(-((q - keys) ** 2) / (2 * sigma**2)).max() for q in queries]\n"
               "    return queries[np.argmin(largest)]\n",
    ("01", 6): "from attnlib import softmax\n\ndef dot_product_lookup(q, K, V):\n"
               "    return softmax(K @ q) @ V\n",
    ("02", 3): "from attnlib import recall\nimport attnlib.recall\n\n"
               "def recall_at_distance(h_train, h_test, train, test, k):\n"
               "    Y = recall.one_hot(train[:, -k], VOCAB)\n"
               "    W = attnlib.recall.ridge_fit(recall.with_bias(h_train), Y)\n"
               "    predicted = (recall.with_bias(h_test) @ W).argmax(axis=1)\n"
               "    return np.mean(predicted == test[:, -k])\n",
}


@pytest.mark.parametrize("key", IMPORTING_ANSWERS, ids=_id)
def test_a_right_answer_that_imports_attnlib_scores(key):
    result = _grade(key, IMPORTING_ANSWERS[key])
    assert result.passed, result


def test_an_imported_attnlib_holds_only_the_served_helpers():
    source = "import attnlib\n\ndef least_sure_query(queries, keys, sigma):\n" \
             "    w = attnlib.nadaraya_watson(queries, keys, keys, bandwidth=sigma)[1]\n" \
             "    return queries[w.max(axis=1).argmin()]\n"
    result = _grade(("01", 3), source)
    assert not result.passed and "not available while grading: attnlib.nadaraya_watson" in result.message, result


# --- adv7 -----------------------------------------------------------------------------------------

def test_an_oversized_helper_message_is_refused_before_it_is_parsed(monkeypatch):
    """adv7 F12: a line of 3 million numbers written straight to the grader's pipe is refused unread
    (json.loads in the grader's process never sees it), and the answer is told why."""
    import attnlib.grading.sandbox as sandbox_module

    seen = []
    real_loads = sandbox_module.json.loads

    def loads(text, *args, **kwargs):
        seen.append(len(text))
        return real_loads(text, *args, **kwargs)

    monkeypatch.setattr(sandbox_module.json, "loads", loads)
    source = '''
import sys
_m = sys.modules["__main__"]
def least_sure_query(queries, keys, sigma):
    _m._out.write('{"op": "helper", "name": "attnlib.softmax", "args": [[' + "0," * 3_000_000 + '0]], "kwargs": {}}\\n')
    _m._out.flush()
    _m._in.readline()
    return 0.0
'''
    result = _grade(("01", 3), source, time_limit=5.0)
    assert not result.passed and "larger than it reads" in result.message, result
    assert max(seen) < 1_000_000, f"the grader parsed a line of {max(seen)} bytes"


def test_one_submission_nbgrader_cannot_grade_does_not_stop_the_class(tmp_path, monkeypatch, capsys):
    """adv7 F11: a submission nbgrader refuses (a bogus grade cell: CheckCellMetadata fails, twice) is flagged
    with 0 points, the others are graded, and the command exits 1 naming it."""
    from attnlib.grading import classroom

    course = tmp_path / "course"
    for name in ("ann", "badmeta", "zed"):
        (course / "submitted" / name / "lab").mkdir(parents=True)
    runs = []

    def run(course_, assignment, student, time_limit=0):
        runs.append(student)
        return {"student": student, "seconds": 0.1, "returncode": 1 if student == "badmeta" else 0,
                "log": "[AutogradeApp | ERROR] Notebook JSON is invalid" if student == "badmeta" else ""}

    monkeypatch.setattr(classroom, "grade_one", run)
    monkeypatch.setattr(classroom, "refuse_if_planted", lambda course: {})
    monkeypatch.setattr(classroom, "planted", lambda course, before: [])
    monkeypatch.setattr(classroom, "consistent", lambda course, assignment, student: student != "badmeta")
    monkeypatch.setattr(classroom, "gradebook_scores", lambda course, assignment, student: {"lab": {"ex-1": 1.0}})
    report = classroom.grade_class(course, "lab", jobs=1, echo=lambda line: None)
    assert report["failed"] == ["badmeta"]
    assert report["students"]["badmeta"]["points"] == 0 and report["students"]["badmeta"]["failed"]
    assert report["students"]["zed"]["points"] == 1 and runs.count("badmeta") == 2
    assert classroom.main(["lab", "--course", str(course), "--jobs", "1"]) == 1
    err = capsys.readouterr().err
    assert "could not be graded" in err and "badmeta" in err, err


def test_an_nbgrader_run_past_its_time_is_reported_for_that_student(tmp_path, monkeypatch):
    """adv8: nbgrader's timeout does not crash the class: that student's run is stopped and reported."""
    import subprocess

    from attnlib.grading import classroom

    def slow(course, *args, timeout=0):
        raise subprocess.TimeoutExpired(["nbgrader", *args], timeout, output=b"[AutogradeApp] working")

    monkeypatch.setattr(classroom, "nbgrader", slow)
    run = classroom.grade_one(tmp_path, "lab", "slowpoke", timeout=2)
    assert run["returncode"] is None and run["student"] == "slowpoke"
    assert "did not finish in 2 s" in run["log"] and "working" in run["log"], run["log"]


def test_an_answer_cell_with_a_try_out_line_is_graded_and_told_about_it():
    """adv7 F9: the function is graded although a later top-level line fails (the lab's variables are not
    there), and the feedback says what failed."""
    source = catalogue.EXERCISES["01", 1].right[-1]
    assert "print(top_words(tokens" in source
    result = _grade(("01", 1), source)
    assert result.passed, result
    assert "NameError" in result.message and "graded top_words all the same" in result.message, result.message


def test_a_grade_that_changes_after_its_run_is_named_at_the_end(tmp_path, monkeypatch, capsys):
    """adv7 F1, second line of defence: the gradebook is read again at the end of the command; an entry that
    changed after its run was read back (a process of the instructor's account writing later) is named, exit 2."""
    from attnlib.grading import classroom

    course = tmp_path / "course"
    for name in ("ann", "forger"):
        (course / "submitted" / name / "lab").mkdir(parents=True)
    reads = {"ann": 0, "forger": 0}

    def scores(course_, assignment, student):
        reads[student] += 1
        forged = student == "forger" and reads[student] > 1
        return {"lab": {"ex-1": 1.0 if forged else 0.0}}

    monkeypatch.setattr(classroom, "grade_one", lambda c, a, student, time_limit=0:
                        {"student": student, "seconds": 0.1, "returncode": 0, "log": ""})
    monkeypatch.setattr(classroom, "refuse_if_planted", lambda course: {})
    monkeypatch.setattr(classroom, "planted", lambda course, before: [])
    monkeypatch.setattr(classroom, "consistent", lambda course, assignment, student: True)
    monkeypatch.setattr(classroom, "gradebook_scores", scores)
    report = classroom.grade_class(course, "lab", jobs=1, echo=lambda line: None)
    assert report["changed"] == ["forger"] and report["students"]["forger"]["points"] == 0
    reads.update(ann=0, forger=0)
    assert classroom.main(["lab", "--course", str(course), "--jobs", "1"]) == 2
    err = capsys.readouterr().err
    assert "forger" in err and "changed after" in err, err


# --- adv9 F1: an answer cell must not reach other processes of the grading user ---------------

def test_an_answer_cannot_change_other_processes_limits_priority_or_files_metadata(tmp_path):
    """adv9 F1: prlimit on another process (RLIMIT_AS lowered -> every later student 0; RLIMIT_CPU (1, 1)
    kills it), setpriority, sched_setaffinity / sched_setscheduler, pidfd_open, chown and utime on files
    were not covered by Landlock, the seccomp filter or the audit hook."""
    import os
    import resource
    import subprocess
    import sys

    victim = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    target = tmp_path / "victim.txt"
    target.write_text("someone else's file\n")
    os.utime(target, (2_000_000_000, 2_000_000_000))
    before = resource.prlimit(victim.pid, resource.RLIMIT_AS)
    source = f'''
import os, resource, signal
VICTIM, PATH = {victim.pid}, {str(target)!r}
ATTEMPTS = {{
    "prlimit AS": lambda: resource.prlimit(VICTIM, resource.RLIMIT_AS, (2**30, 2**30)),
    "prlimit parent": lambda: resource.prlimit(os.getppid(), resource.RLIMIT_NOFILE),  # only reads
    "setpriority": lambda: os.setpriority(os.PRIO_PROCESS, VICTIM, 19),
    "sched_setaffinity": lambda: os.sched_setaffinity(VICTIM, {{0}}),
    "sched_setscheduler": lambda: os.sched_setscheduler(VICTIM, os.SCHED_IDLE, os.sched_param(0)),
    "pidfd_open": lambda: os.pidfd_open(VICTIM),
    "chown": lambda: os.chown(PATH, 65534, 65534),
    "utime": lambda: os.utime(PATH, (0, 0)),
}}
def probe():
    found = {{}}
    for name, attempt in ATTEMPTS.items():
        try:
            attempt()
            found[name] = "done"
        except Exception as err:
            found[name] = type(err).__name__
    # the child's own limits keep working: glibc's getrlimit/setrlimit use prlimit64(0, ...)
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(soft, 200), hard))
        found["own limits"] = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    except Exception as err:
        found["own limits"] = type(err).__name__
    return found
'''
    try:
        found, sandbox = _probe(source)
        assert resource.prlimit(victim.pid, resource.RLIMIT_AS) == before
        assert victim.poll() is None
        stat = target.stat()
        assert (stat.st_uid, int(stat.st_mtime)) == (os.getuid(), 2_000_000_000)
    finally:
        victim.kill()
        victim.wait()
    assert found.pop("own limits") == 200, found
    assert all(outcome != "done" for outcome in found.values()), found


def test_an_answer_that_lowers_the_graders_limits_does_not_cost_the_next_student_their_points(tmp_path):
    """adv9 F1 (the real attack): Lab 3 Exercise 1's answer lowered its grader's hard RLIMIT_AS to just under the
    2 GB each answer gets, and every later student scored 0 with no flag.  Run in a process of its own."""
    import subprocess
    import sys

    script = tmp_path / "two_students.py"
    script.write_text('''
import nbformat
import numpy as np
from attnlib.grading import catalogue
from attnlib.grading.grader import grade_source
attack = """
import os, resource
try:
    resource.prlimit(os.getppid(), resource.RLIMIT_AS, (2 * 1024**3 - 4096, 2 * 1024**3 - 4096))
    _hit = "lowered"
except Exception as err:
    _hit = type(err).__name__
def my_softmax(x):
    raise ValueError(_hit)
"""
print("mallory:", grade_source("03", 1, attack, rng=np.random.default_rng(0)).message)
print("bob:", grade_source("03", 1, catalogue.EXERCISES["03", 1].reference, rng=np.random.default_rng(1)).passed)
''')
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "lowered" not in done.stdout and "PermissionError" in done.stdout, done.stdout
    assert "bob: True" in done.stdout, done.stdout


def test_a_sandbox_that_cannot_start_is_a_grader_fault_never_a_students_zero(monkeypatch):
    """adv9 F1: SubprocessError 'Exception occurred in preexec_fn' came back as "the grader could not handle
    your answer" and a 0 for the student; it is the grading machine's fault and must stop the run, loudly."""
    from attnlib.grading import nbgrader_step, sandbox

    def broken(*args):
        raise OSError("setrlimit refused")

    monkeypatch.setattr(sandbox, "_limit_child", broken)
    reference = catalogue.EXERCISES["03", 1].reference
    with pytest.raises(sandbox.GraderFault, match="not the answer"):
        _grade(("03", 1), reference)
    nb = _graded_notebook(catalogue.EXERCISES["01", 4].reference)
    with pytest.raises(sandbox.GraderFault):
        nbgrader_step.verdicts(nb, "01")


def test_the_answers_process_has_its_limits_and_its_own_session_before_the_answer_runs():
    """The limits are set from the grader before it writes the request (the child starts by vfork, without a
    preexec_fn): the answer's top-level lines, not only its function, run with 2 GB of address space, no file
    size, first in line for the memory killer, in a session of its own, unprivileged and filtered."""
    import os

    from attnlib.grading import sandbox

    source = '''
import os, resource
AT_TOP = [resource.getrlimit(resource.RLIMIT_AS), resource.getrlimit(resource.RLIMIT_FSIZE),
          os.getsid(0) == os.getpid(), os.getpgid(0) == os.getpid()]
def probe():
    return AT_TOP
'''
    with Sandbox(source, "probe") as box:
        assert box.problem is None, box.problem
        limit = sandbox.MEMORY_LIMIT
        assert box.function()() == [(limit, limit), (0, 0), True, True]
        with open(f"/proc/{box.process.pid}/oom_score_adj") as f:
            assert f.read().strip() == "1000"
        with open(f"/proc/{box.process.pid}/status") as f:
            status = dict(line.split(":\t", 1) for line in f.read().splitlines() if ":\t" in line)
        assert status["NoNewPrivs"].strip() == "1" and status["Seccomp"].strip() == "2"
        assert int(status["CapEff"], 16) == 0
        assert box.process.pid != os.getpgid(0)


def test_the_grader_refuses_to_grade_once_its_own_limits_were_lowered(tmp_path):
    """adv9 F1, second line: the grader compares its own limits and priority with what it started with (and
    with the 2 GB it gives each answer) before it starts each answer's process."""
    import subprocess
    import sys

    script = tmp_path / "lowered.py"
    script.write_text('''
import os, resource
import nbformat
import numpy as np
from attnlib.grading import catalogue, sandbox
from attnlib.grading.grader import grade_source
resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
try:
    grade_source("03", 1, catalogue.EXERCISES["03", 1].reference, rng=np.random.default_rng(0))
    print("graded")
except sandbox.GraderFault as err:
    print("fault:", err)
''')
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert "fault:" in done.stdout and "RLIMIT_NOFILE" in done.stdout, done.stdout + done.stderr


# --- adv9 F3: a generation loop with a context window ------------------------------------------

@pytest.mark.parametrize("window", [4, 8, 10, 16, 64, 128, 256, 1024])
def test_greedy_generation_with_a_context_window_never_scores(window):
    """adv9 F3: cropping the context to the last 10 tokens (nanoGPT's block size) scored 50 of 50 runs, the last 8
    82 %: the prompts were short.  The hidden prompts now include long ones whose continuation depends on a token
    far back; every window fails on every one of 10 fresh draws, and the reference passes them all.  adv14 F2:
    windows of 64 to 1024 scored on the 35-65-token prompts; now 1,105 to 1,305 tokens whose next token (c) is
    nowhere but at the start, so a window cannot predict it at all (no chance agreement left to sample).
    Draws: 3 (40, then 10 before; each now runs next_token_head on 1,200 tokens, and the prompt's construction,
    not the sample, is what makes every window fail)."""
    draws = 3
    def windowed(ids, vocab_size, n_new):
        ids = list(np.asarray(ids))
        for _ in range(n_new):
            probs, _ = al.toy_lm.next_token_head(np.array(ids[-window:]), vocab_size)
            ids.append(int(probs[-1].argmax()))
        return ids

    greedy = _compiled(catalogue.EXERCISES["06", 3].reference, "greedy_generate")
    grade = catalogue.EXERCISES["06", 3].grade
    passes = [grade(windowed, np.random.default_rng(seed), None).passed for seed in range(draws)]
    assert not any(passes), f"window {window} passed {sum(passes)} of {draws}"
    if window == 4:
        assert all(grade(greedy, np.random.default_rng(seed), None).passed for seed in range(draws))
    assert sum(m == "context window" for _, m in catalogue.EXERCISES["06", 3].mistakes) == 8, "catalogued"


# --- adv9 F5: float32 arithmetic on the large-score hidden cases --------------------------------

FLOAT32_EXERCISES = [("01", 6), ("01", 7), ("03", 6), ("05", 2), ("05", 6), ("06", 1)]


def _compiled(source, function):
    """The function an answer's source defines, run here (not in the sandbox): for arms of a test."""
    import attnlib

    namespace = {"np": np, "math": __import__("math"), "al": attnlib}
    exec(compile(source, "<reference>", "exec"), namespace)
    return namespace[function]


def _in_float32(key):
    """The exercise's reference answer run on float32 copies of its float array arguments (float32 arithmetic)."""

    ex = catalogue.EXERCISES[key]
    reference = _compiled(ex.reference.replace("dtype=float)", "dtype=np.float32)"), ex.function)

    def answer(*args, **kwargs):
        cast = [a.astype(np.float32) if isinstance(a, np.ndarray) and a.dtype.kind == "f" else a for a in args]
        return reference(*cast, **kwargs)

    return answer


@pytest.mark.parametrize("key", FLOAT32_EXERCISES, ids=_id)
def test_a_right_answer_in_float32_passes_on_every_hidden_draw(key):
    """adv9 F5: a float32 computation of a right answer lost 01/6 half the time (15/30), 06/1 always: on the
    hidden cases with scores near 1600 (or -10000) float32 keeps ~1e-4 of a score.  The tolerance of such a
    case now grows with the magnitude of its scores (4 float32 epsilons of it, taken from the case, never
    from the answer); 30 fresh draws each."""
    ex = catalogue.EXERCISES[key]
    answer = _in_float32(key)
    failures = []
    for seed in range(30):
        rng = np.random.default_rng(1000 + seed)
        result = ex.grade(answer, rng, ex.make_data(rng))
        if not result.passed:
            failures.append(result.message)
    assert not failures, f"{len(failures)} of 30 failed: {failures[0]}"


def test_student_markdown_is_escaped_and_links_to_scripts_blocked():
    """adv9 F4, the rule itself (tests/test_nbgrader.py renders the formgrader's page of a real submission)."""
    from attnlib.grading.nbgrader_step import escape_markdown

    text = ("x < y and <img src=x onerror=alert(1)> <!-- c --> <svg/onload=alert(2)>\n"
            "[a](javascript:alert(3)) [b](&#106;avascript:alert(4)) [c](https://example.org) [d](notes.md)\n"
            "[e]: data:text/html,<script>alert(5)</script>\n")
    safe = escape_markdown(text)
    assert "<img" not in safe and "<!--" not in safe and "<svg" not in safe and "<script" not in safe
    assert "x < y" in safe and "](https://example.org)" in safe and "](notes.md)" in safe
    assert "](#blocked:javascript\u200b:" in safe and "](#blocked:&#106;avascript:" in safe
    assert "[e]\\: data\u200b:" in safe  # no definition any more, and no scheme


ADV14_LINKS = {  # adv14 F4: reference definitions the line-start regex missed, and other forms
    "blockquote": "> [d]: javascript:alert(1)\n\nsee [my derivation][d]\n",
    "list": "- [d]: javascript:alert(1)\n\nsee [my derivation][d]\n",
    "numbered": "1. [d]: javascript:alert(1)\n\nsee [my derivation][d]\n",
    "next line": "[d]:\n  javascript:alert(document.cookie)\n\n[click][d]\n",
    "data": "> [d]: data:text/html,x\n\n[click][d] and ![img][d]\n",
    "label over lines": "[d\ne]: javascript:alert(1)\n\n[click][d e]\n",
    "upper case": "- [D]: JaVaScRiPt:alert(1)\n\n[click][D]\n",
    "inline parens": "[x](java(x)script:alert(1)) [y](javascript:alert(1)) [z](\n  javascript:alert(1))\n",
    "inline angle": "[x](< javascript:alert(1)>) [y](<java\tscript:alert(1)>)\n",
    "entity": "- [d]: &#106;avascript:alert(1)\n\n[x](j&#97;vascript:alert(1)) [click][d]\n",
    "vbscript": "[x](vbscript:msgbox(1)) ![y](data:image/svg+xml,abc)\n",
}


@pytest.mark.parametrize("form", sorted(ADV14_LINKS))
def test_no_script_link_survives_escape_markdown_in_any_form(form):
    """adv14 F4: rendered by nbconvert's markdown filter (the formgrader's and the feedback's), no href or src
    holds a script or data scheme, whatever container or line the definition sits in."""
    import re

    from nbconvert.filters.markdown_mistune import markdown2html_mistune

    from attnlib.grading.nbgrader_step import escape_markdown

    html = markdown2html_mistune(escape_markdown(ADV14_LINKS[form]))
    for attr in re.findall(r'(?:href|src)="([^"]*)"', html):
        low = re.sub(r"[\s\x00-\x1f]", "", attr).lower()
        assert not low.startswith(("javascript:", "vbscript:", "data:", "&#")), (form, attr)
    assert "javascript:" not in html.lower().replace("\u200b", "-") or form == "entity", html


def test_ordinary_links_and_pasted_images_survive_escape_markdown():
    from nbconvert.filters.markdown_mistune import IPythonRenderer, MarkdownWithMath

    from attnlib.grading.nbgrader_step import escape_markdown

    renderer = IPythonRenderer(escape=False, attachments={"image.png": {"image/png": "iVBORw0KGgo="}})
    markdown2html_mistune = MarkdownWithMath(renderer=renderer).render
    text = ("[a](https://example.org/x_(y)) [b](notes.md#part) ![img](attachment:image.png) "
            "[m](mailto:me@example.org)\n\nratio: 3, `d[i]: x` and x[0]: y\n")
    html = markdown2html_mistune(escape_markdown(text))
    assert 'href="https://example.org/x_(y)"' in html and 'href="notes.md#part"' in html
    assert 'src="data:image/png;base64,iVBORw0KGgo="' in html and 'href="mailto:me@example.org"' in html
    assert "x[0]: y" in html


def test_copied_cells_keep_the_answer_the_student_changed_last():
    """adv9 F2, the rule itself: the last changed copy of an answer, the first copy of a locked cell."""
    import nbformat
    from nbgrader.utils import compute_checksum

    from attnlib.grading.nbgrader_step import keep_one_cell_per_grade_id

    def cell(source, grade_id, **flags):
        c = nbformat.v4.new_code_cell(source, metadata={"nbgrader": {"grade_id": grade_id, "solution": False,
                                                                      "grade": False, "locked": False, **flags}})
        c.metadata.nbgrader["checksum"] = compute_checksum(c)
        return c

    stub = cell("raise NotImplementedError()", "exercise-1", solution=True)
    first = nbformat.v4.new_code_cell("wrong", metadata={"nbgrader": dict(stub.metadata.nbgrader)})
    second = nbformat.v4.new_code_cell("right", metadata={"nbgrader": dict(stub.metadata.nbgrader)})
    untouched = nbformat.v4.new_code_cell(stub.source, metadata={"nbgrader": dict(stub.metadata.nbgrader)})
    check = cell("check()", "exercise-1-check", grade=True, locked=True, points=1)
    check_copy = nbformat.v4.new_code_cell("check()", metadata={"nbgrader": dict(check.metadata.nbgrader)})
    nb = nbformat.v4.new_notebook(cells=[first, second, untouched, check, check_copy])
    assert keep_one_cell_per_grade_id(nb) == {"exercise-1": 3, "exercise-1-check": 2}
    graded = [c.source for c in nb.cells if "nbgrader" in c.metadata]
    assert graded == ["right", "check()"] and "nbgrader" in nb.cells[3].metadata
    from attnlib.grading.sandbox import CELL_BREAK  # adv18: an error stops its own copy only, as in Run All
    assert second.metadata.attnlib == {"copies": 3, "source": f"wrong\n\n{CELL_BREAK!r}\nright\n"}


def _released_answer(source="raise NotImplementedError()", grade_id="exercise-1"):
    import nbformat
    from nbgrader.utils import compute_checksum

    c = nbformat.v4.new_code_cell(source, metadata={"nbgrader": {"grade_id": grade_id, "solution": True,
                                                                  "grade": False, "locked": False}})
    c.metadata.nbgrader["checksum"] = compute_checksum(c)
    return c


def _copy(cell, source, cell_type="code"):
    import copy

    import nbformat

    new = copy.deepcopy(cell)
    new.source = source
    new.id = nbformat.v4.new_code_cell().id
    if cell_type == "markdown":
        new = nbformat.v4.new_markdown_cell(source, metadata=new.metadata)
    return new


TOP_WORDS = ("def top_words(tokens, weights, k):\n    order = np.argsort(weights)[::-1]\n"
             "    return [tokens[j] for j in order if tokens[j] not in ('[CLS]', '[SEP]')][:k]\n")


@pytest.mark.parametrize("case", ["copytry", "split", "mdnote", "splithelper"])
def test_copied_answer_cells_are_graded_as_run_all_leaves_them(case):
    """adv10 F2: four ordinary ways a solved answer ends up in several copies of its cell (metadata and all);
    the grader must see what Run All leaves in force, not the last changed copy alone."""
    import nbformat

    from attnlib.grading.nbgrader_step import keep_one_cell_per_grade_id, verdicts

    stub = _released_answer()
    solved = _copy(stub, TOP_WORDS)
    check = nbformat.v4.new_code_cell("check()", metadata={"nbgrader": {
        "grade_id": "exercise-1-check", "grade": True, "solution": False, "locked": True, "points": 1}})
    tryout = "top_words(['[CLS]', 'the', 'cat', 'sat', '[SEP]'], np.array([0.3, 0.1, 0.4, 0.15, 0.05]), 2)"
    if case == "copytry":  # copied below the check and turned into a try-out line
        cells = [solved, check, _copy(stub, tryout)]
    elif case == "split":  # JupyterLab's Split cell: both halves keep the metadata
        cells = [solved, _copy(stub, tryout), check]
    elif case == "mdnote":  # a copy turned into a markdown note (OverwriteCells would make it code again)
        cells = [solved, _copy(stub, "My notes: argsort, then reverse.\n\n" + TOP_WORDS, "markdown"), check]
    else:  # split at a helper's def
        cells = [_copy(stub, "def ranked(weights):\n    return np.argsort(weights)[::-1]\n"),
                 _copy(stub, "def top_words(tokens, weights, k):\n    return [tokens[j] for j in ranked(weights)"
                             " if tokens[j] not in ('[CLS]', '[SEP]')][:k]\n"), check]
    nb = nbformat.v4.new_notebook(cells=cells)
    assert keep_one_cell_per_grade_id(nb) == {"exercise-1": 2}
    kept = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "exercise-1"]
    assert len(kept) == 1 and kept[0].cell_type == "code"
    result = verdicts(nb, "01")[1]
    assert result.passed, result


def test_a_try_out_line_that_raises_does_not_cost_the_joined_answer():
    """adv10 F2: a try-out copy after the answer calls it with inputs that raise; the joined copies still
    define the function, the grader grades it and names the try-out's error."""
    import nbformat

    from attnlib.grading.nbgrader_step import keep_one_cell_per_grade_id, verdicts

    stub = _released_answer()
    raises = "top_words(['a'], np.array([1.0, 2.0]), 1)"  # IndexError
    nb = nbformat.v4.new_notebook(cells=[_copy(stub, TOP_WORDS), _copy(stub, raises),
                                         _copy(stub, "def top_words(:\n"),  # and one that does not parse
                                         nbformat.v4.new_code_cell("check()", metadata={"nbgrader": {
                                             "grade_id": "exercise-1-check", "grade": True, "solution": False,
                                             "locked": True, "points": 1}})])
    keep_one_cell_per_grade_id(nb)
    result = verdicts(nb, "01")[1]
    assert result.passed and "stops at its first error" in result.message, result  # adv18: it stops that copy
    assert "had 3 cells for Exercise 1" in result.message


def test_a_try_out_line_that_calls_a_helper_in_the_answer_cell_is_served():
    """adv10 F2 (the split cell): `least_sure_query(grid, keys, 1.0)` below the answer calls al.softmax while
    the cell runs; the grader served helpers only during its own calls, so the cell "could not be run"."""
    source = ("def least_sure_query(queries, keys, sigma):\n"
              "    largest = [al.softmax(-((q - keys) ** 2) / (2 * sigma**2)).max() for q in queries]\n"
              "    return queries[np.argmin(largest)]\n\n"
              "least_sure_query(np.linspace(-1, 12, 131), keys, 1.0)\n")
    result = _grade(("01", 3), source)
    assert result.passed, result


# --- adv11 F1: an answer rewrote a standard-library file through a shared writable mapping ---------

def _probe_text(source):
    """What a probe reports in the message of the exception it raises (the child sends no strings back)."""
    from attnlib.grading.sandbox import LearnerRaised

    with pytest.raises(LearnerRaised) as raised:
        _probe(source)
    return str(raised.value)


_STDLIB_WRITE = '''
import os, sys, builtins
def probe():
    import textwrap
    path = textwrap.__file__
    found = []
    try:  # the audit hook with its flags and builtins taken from under it
        os.O_WRONLY = os.O_RDWR = os.O_CREAT = os.O_APPEND = 0
        builtins.any = lambda it: "root" in getattr(getattr(it, "gi_code", None), "co_varnames", ())  # paths: yes
    except Exception as err:
        found.append("patch:" + type(err).__name__)
    for flags in (1, 2):  # O_WRONLY, O_RDWR as literals
        try:
            fd = os.open(path, flags)
            found.append(f"opened {flags}")
            try:
                import mmap
                m = mmap.mmap(fd, 0, flags=1, prot=3)  # MAP_SHARED, PROT_READ | PROT_WRITE
                m[0:1] = m[0:1]  # the same byte back: harmless even when it works
                m.close()
                found.append("mapped")
            except Exception as err:
                found.append("map refused: " + str(err))
            os.close(fd)
        except Exception as err:
            found.append(type(err).__name__ + ": " + str(err))
    raise RuntimeError("|".join(found))  # the message carries the report back
'''


def test_no_standard_library_file_can_be_opened_for_writing_from_the_sandbox():
    """Landlock gave every file root write access and the hook read os.O_* and builtins.any at call time:
    with them patched, textwrap.py opened O_RDWR and a MAP_SHARED mapping rewrote it (adv11 F1)."""
    import hashlib
    import textwrap

    before = hashlib.sha256(Path(textwrap.__file__).read_bytes()).hexdigest()
    found = _probe_text(_STDLIB_WRITE).split("|")
    assert not any(f.startswith("opened") or f == "mapped" for f in found), found
    # the hook still holds with its module's flags and builtins patched
    assert all("not allowed while grading: writing" in f for f in found if not f.startswith("patch")), found
    assert hashlib.sha256(Path(textwrap.__file__).read_bytes()).hexdigest() == before
    # the next student's grade is the grader's as usual
    assert _grade(("03", 1), catalogue.EXERCISES["03", 1].reference).passed


def test_the_blocked_events_are_not_strings_the_answer_can_reach():
    """The hook's blocked set held the very str objects of __main__._BLOCKED (numpy can rewrite them)."""
    source = '''
import sys
def probe():
    m = sys.modules["__main__"]
    raise RuntimeError(",".join(name for name in ("_BLOCKED", "_NO_IMPORT") if hasattr(m, name)))
'''
    found = _probe_text(source)
    assert found == "", found


def _filter_source():
    from attnlib.grading import sandbox

    start = sandbox.CHILD.index("def _filter_syscalls")
    return sandbox.CHILD[start:sandbox.CHILD.index("_ISOLATED = _isolate")]


def test_the_system_call_filter_refuses_shared_writable_file_mappings(tmp_path):
    """RLIMIT_FSIZE does not cover mmap: a MAP_SHARED, PROT_WRITE mapping of a file writes it in place.
    The filter refuses it (EPERM, where the kernel would say EBADF for fd -1); private and anonymous
    shared mappings (numpy, the allocator) still work."""
    import platform
    import subprocess
    import sys

    if not sys.platform.startswith("linux") or platform.machine() not in ("x86_64", "aarch64"):
        pytest.skip("the filter is Linux x86_64/aarch64 only")
    script = "import os, sys\n" + _filter_source() + '''
import ctypes
assert _filter_syscalls()
libc = ctypes.CDLL(None, use_errno=True)
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
def errno_of(prot, flags, fd):
    p = libc.mmap(None, 4096, prot, flags, fd, 0)
    return 0 if p not in (None, ctypes.c_void_p(-1).value) else ctypes.get_errno()
print(errno_of(3, 1, -1), errno_of(3, 3, -1), errno_of(3, 0x21, -1), errno_of(3, 0x22, -1), errno_of(1, 1, -1))
'''
    out = subprocess.run([sys.executable, "-I", "-c", script], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    shared, validate, anonymous_shared, anonymous_private, read_only = map(int, out.stdout.split())
    assert shared == 1 and validate == 1  # EPERM from the filter
    assert anonymous_shared == 0 and anonymous_private == 0
    assert read_only == 9  # EBADF: the kernel's own answer, the filter let it through


def test_a_kernel_without_landlock_abi_3_is_a_grader_fault_never_a_grade(monkeypatch):
    """On Landlock ABI 1-2 O_TRUNC is not governed (an answer emptied tempfile.py in a simulation); without
    Landlock only the audit hook stood.  The child refuses to run the cell and the grader raises."""
    from attnlib.grading import sandbox

    child = sandbox.CHILD.replace("_ISOLATED = _isolate(_ALLOWED, _LIST_ONLY)",
                                  "_ISOLATED = min(2, _isolate(_ALLOWED, _LIST_ONLY))")
    assert child != sandbox.CHILD
    monkeypatch.setattr(sandbox, "CHILD", child)
    source = "import os\nos.open(__import__('tempfile').__file__, 1 | 512)\ndef my_softmax(x):\n    return x\n"
    with pytest.raises(sandbox.GraderFault, match="Landlock"):
        with Sandbox(source, "my_softmax"):
            pass



FORGED_REPORTS = {  # adv14 F1: an answer writes the old "unconfined" report, or the new one, itself
    "cell, old op": 'import sys\nsys.modules["__main__"]._send({"op": "unconfined", "abi": 0, "filtered": False})\n',
    "cell, new op": 'import sys\nsys.modules["__main__"]._send({"op": "confinement", "abi": 0, "filtered": False})\n',
}


@pytest.mark.parametrize("where", sorted(FORGED_REPORTS))
def test_an_answer_cannot_forge_the_confinement_report(where):
    """adv14 F1: the report is the child's first message, sent before any line of the answer runs; one the
    answer writes later is its own malformed message (0 for that exercise), never a GraderFault."""
    source = ("import numpy as np\ndef my_softmax(x):\n    e = np.exp(np.asarray(x, dtype=float) - np.max(x))\n"
              "    return e / e.sum()\n" + FORGED_REPORTS[where])
    result = grade_source("01", 2, source, rng=np.random.default_rng(0), time_limit=5.0)
    assert not result.passed and "grader's channel" in result.message, result.message


def test_an_answer_forging_the_report_inside_its_function_scores_zero_there():
    source = ("import sys\ndef my_softmax(x):\n"
              "    sys.modules['__main__']._send({'op': 'confinement', 'abi': 0, 'filtered': False})\n"
              "    return [1.0]\n")
    result = grade_source("01", 2, source, rng=np.random.default_rng(0), time_limit=5.0)
    assert not result.passed, result.message


@pytest.mark.parametrize("value", ["Fraction(0 + 4 + 16 + 36 + 64 + 100 + 100, 7)", "Decimal(320) / Decimal(7)"])
def test_a_prediction_returned_as_a_fraction_or_a_decimal_is_a_number(value):
    """adv14 F3: a prediction is plain Python, numbers and arithmetic; an exact Fraction or a Decimal counts."""
    from attnlib.checks import check_prediction

    source = (f"from fractions import Fraction\nfrom decimal import Decimal\n"
              f"def predicted_wide_lookup():\n    return {value}\n")
    result = grade_source("01", 5, source, rng=np.random.default_rng(0), time_limit=5.0)
    assert result.passed, result.message
    from decimal import Decimal
    from fractions import Fraction
    assert check_prediction("p", Fraction(1, 3), 1 / 3).passed and check_prediction("p", Decimal("0.5"), 0.5).passed
    assert not check_prediction("p", True, 1.0).passed

# --- adv11 F3: a later exercise that calls the learner's own earlier function ----------------------

CALLS_AN_EARLIER_EXERCISE = [
    (("01", 3), '''
def least_sure_query(queries, keys, sigma):
    return queries[np.argmin([my_softmax(-((q - keys) ** 2) / (2 * sigma**2)).max() for q in queries])]
'''),
    (("01", 6), '''
def dot_product_lookup(q, K, V):
    weights = my_softmax(K @ q)
    return weights @ V
'''),
    (("01", 7), '''
def fixed_lookup(q, K, V):
    return my_softmax(K @ q) @ V
'''),
    (("03", 8), '''
def my_self_attention_backward(X, W_q, W_k, W_v, dO):
    Q, K, V = X @ W_q, X @ W_k, X @ W_v
    scale = 1 / np.sqrt(Q.shape[-1])
    _, A = al.scaled_dot_product_attention(Q, K, V)
    dS = my_softmax_backward(A, dO @ V.T)
    dQ, dK, dV = scale * (dS @ K), scale * (dS.T @ Q), A.T @ dO
    return dQ @ W_q.T + dK @ W_k.T + dV @ W_v.T
'''),
    (("03", 6), '''
def fixed_attention(Q, K, V):
    return my_softmax(Q @ K.T / np.sqrt(K.shape[-1])) @ V  # Exercise 1's my_softmax(x) has no axis (adv16 F4)
'''),
    (("04", 4), '''
def mha(X_q, X_kv, params, n_heads):
    Q = split(X_q @ params["W_q"], n_heads)
    K = split(X_kv @ params["W_k"], n_heads)
    V = split(X_kv @ params["W_v"], n_heads)
    heads, weights = al.scaled_dot_product_attention(Q, K, V)
    return al.merge_heads(heads) @ params["W_o"], weights
'''),
    (("04", 9), '''
def fixed_causal_self_attention(X, params):
    Q, K, V = X @ params["W_q"], X @ params["W_k"], X @ params["W_v"]
    allowed = my_causal_mask(len(X))
    output, weights = al.scaled_dot_product_attention(Q, K, V, mask=allowed)
    return output
'''),
    (("02", 3), '''
def recall_at_distance(h_train, h_test, train, test, k):
    Y = np.zeros((N_TRAIN, VOCAB))
    Y[np.arange(N_TRAIN), train[:, -k]] = 1
    W = recall.ridge_fit(recall.with_bias(h_train), Y)
    predicted = (recall.with_bias(h_test) @ W).argmax(axis=1)
    assert len(predicted) == N_TEST
    return np.mean(predicted == test[:, -k])
'''),
]


@pytest.mark.parametrize(("key", "source"), CALLS_AN_EARLIER_EXERCISE,
                         ids=[_id(k) for k, _ in CALLS_AN_EARLIER_EXERCISE])
def test_an_answer_may_call_the_labs_earlier_exercise_functions(key, source):
    """Each answer cell is graded alone: my_softmax, split, my_causal_mask... were a NameError (adv11 F3).
    They are served as attnlib's own (only where attnlib's version is already a helper of the exercise,
    so no exercise's answer is given away), and Lab 2's N_TRAIN/N_TEST are in the data."""
    for seed in range(2):
        result = _grade(key, source, seed=seed)
        assert result.passed, result


def test_an_earlier_function_that_would_be_this_exercises_answer_is_not_served_but_explained():
    """05/6 (fixing a batched attention) calling attention_row_by_row (Ex 1): it is not served; the NameError
    says why and names al.softmax instead (adv11 F3)."""
    source = "def fixed_batched_attention(Q, K, V):\n    return attention_row_by_row(Q, K, V)\n"
    result = _grade(("05", 6), source)
    assert not result.passed and "runs this answer cell alone" in result.message and "al.softmax" in result.message


def test_landlock_alone_gives_file_roots_read_access_only():
    """Without the audit hook (as native code meets it): a standard-library file root reads, but does not
    open for writing (adv11 F1: every file root had write_file); /dev/null still opens for writing."""
    import subprocess
    import sys
    import textwrap

    from attnlib.grading import sandbox

    if not sys.platform.startswith("linux"):
        pytest.skip("Landlock is Linux only")
    start = sandbox.CHILD.index("def _isolate")
    script = "import os, sys\n" + sandbox.CHILD[start:sandbox.CHILD.index("def _filter_syscalls")] + f'''
path = {str(Path(textwrap.__file__).resolve())!r}
assert _isolate((path, "/dev/null")) >= 3
os.close(os.open(path, os.O_RDONLY))
os.close(os.open("/dev/null", os.O_RDWR))
for flags in (os.O_WRONLY, os.O_RDWR):
    try:
        os.close(os.open(path, flags))
        print("opened", flags)
    except PermissionError:
        print("refused")
'''
    out = subprocess.run([sys.executable, "-I", "-c", script], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["refused", "refused"], out.stdout


def test_the_grading_process_keeps_blas_to_one_thread_before_it_forks():
    """adv12 F2: a fork (Popen's preexec_fn) while another grading thread is inside a multi-threaded OpenBLAS
    product left that product waiting forever for workers the fork had stopped; plain nbgrader autograde hung."""
    from threadpoolctl import threadpool_info, threadpool_limits

    threadpool_limits(limits=2, user_api="blas")  # as in an nbgrader process without OPENBLAS_NUM_THREADS=1
    grade_source("01", 2, catalogue.EXERCISES["01", 2].reference, rng=np.random.default_rng(0))
    blas = [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]
    assert blas and max(blas) == 1, threadpool_info()


def test_lab3_exercise7_is_graded_on_values_so_a_directional_difference_scores():
    """adv12 F1, decided (a): the softmax Jacobian is symmetric, so one central difference along dA gives the
    vector-Jacobian product for every row at once; the grader sees values only, so any method that gives the
    gradient accurately scores, and the catalogue does not call numerical differentiation a mistake there."""
    ex = catalogue.EXERCISES["03", 7]
    directional = [source for source in ex.right if "sm(S + h * dA)" in source]  # the report's answer, as it stands
    assert directional, "the directional difference is a right answer"
    result = _grade(("03", 7), directional[0], seed=3)
    assert result.passed, result
    for _, message in ex.mistakes:
        assert "derive the gradient" not in (message or ""), message
    statement = nbformat.read(Path(__file__).parents[1] / "notebooks/03-how-attention-works.ipynb", 4)
    cell = next(c.source for c in statement.cells if c.source.startswith("### Exercise 7"))
    assert "any method" in cell or "any accurate and fast method" in cell, cell


def test_lab1_exercise5_does_not_claim_to_catch_a_lookup_worked_out_by_hand():
    """adv12 F3: with the keys typed in (the statement prints them), the lookup in plain Python is a number
    worked out by hand; the grader cannot tell it from a prediction and accepts it, and nothing says otherwise."""
    ex = catalogue.EXERCISES["01", 5]
    typed = [source for source in ex.right if "keys = [0.0, 2.0" in source]  # the report's answer, as it stands
    assert typed and _grade(("01", 5), typed[0]).passed
    assert not any("the lookup itself" in source for source, _ in ex.mistakes)
    for number, (source, _) in enumerate(ex.mistakes):  # what stays in the catalogue is still refused
        assert not _grade_mutant(("01", 5), number).passed, source
    nb = nbformat.read(Path(__file__).parents[1] / "notebooks/01-what-is-attention.ipynb", 4)
    cell = next(c.source for c in nb.cells if c.source.startswith("### Exercise 5"))
    assert "no lookup" not in cell and "the number you worked out" in cell, cell


_PATH_HELPERS_PATCHED = '''
import os, posixpath, sys
def probe():
    target = {target!r}  # outside every root the hook allows
    allowed = os.__file__  # a file of the standard library: allowed, read only
    found = []
    class Sly(str):  # a str whose str() says something else than the name the kernel opens
        def __str__(self):
            return allowed
    class Twofaced:
        def __fspath__(self):
            return target
        def __str__(self):
            return allowed
    for way in ("posixpath", "os.path", "str subclass", "path-like"):
        saved = dict(vars(posixpath)), dict(vars(os))
        try:
            if way == "posixpath":  # realpath's own module globals, which it looks up at every call
                posixpath._joinrealpath = lambda path, rest, strict, seen: (allowed, True)
                posixpath.abspath = lambda path: allowed
            elif way == "os.path":
                posixpath.realpath = os.path.realpath = lambda path, **kw: allowed
                os.lstat = lambda path: (_ for _ in ()).throw(OSError())
                os.getcwd = lambda: "/"
            name = Sly(target) if way == "str subclass" else Twofaced() if way == "path-like" else target
            with open(name, "rb") as f:
                f.read(1)
            found.append(way + ": opened")
        except Exception as err:
            found.append(way + ": " + str(err))
        finally:
            vars(posixpath).update(saved[0]); vars(os).update(saved[1])
    raise RuntimeError("|".join(found))
'''


def test_the_audit_hook_resolves_paths_with_nothing_the_answer_can_replace():
    """os.path.realpath reads posixpath's and os's module globals at every call: an answer that replaced them
    made the hook see an allowed path for one it refuses (Landlock still refused it: defence in depth)."""
    target = str(Path(al.__file__).resolve())
    found = _probe_text(_PATH_HELPERS_PATCHED.replace("{target!r}", repr(target))).split("|")
    assert len(found) == 4, found
    for f in found:
        assert "not allowed while grading: opening" in f, f


def test_a_lab3_ex7_answer_wrong_only_on_the_large_input_costs_the_grader_no_minutes():
    """The grader names a wrong answer by running the catalogue's mistakes on the same input in its own process
    (no time limit there): the per-entry finite difference, run on the 32 x 64 x 64 input, took about 5 minutes.
    It is a tagged too-slow case now, not a named mistake, and the time-out's message says why."""
    source = '''
def my_softmax_backward(A, dA):
    out = A * (dA - (dA * A).sum(axis=-1, keepdims=True))
    return out if A.size < 10000 else out * 1.01
'''
    start = time.perf_counter()
    result = _grade(("03", 7), source)
    assert not result.passed and "a large input" in str(result), result
    assert time.perf_counter() - start < 30
    number = next(i for i, (s, _) in enumerate(catalogue.EXERCISES["03", 7].mistakes) if "np.ndindex" in s)
    assert catalogue.TOO_SLOW_SOFTMAX_BACKWARD in _grade_mutant(("03", 7), number).message


# --- adv13: one submission must not hold up or slow down the others -----------------------------------------

def _alive(pid: int) -> bool:
    """Whether process ``pid`` still runs (a zombie, dead but not yet reaped, does not)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def _kill_group(pid: int) -> None:
    import os
    import signal

    for kill in (os.killpg, os.kill):
        try:
            kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


@pytest.fixture
def child_pids(monkeypatch):
    """The pid of every answer's process that grade_source starts (each killed at teardown, should one be left)."""
    from attnlib.grading import grader as grader_module

    pids = []

    class Recording(Sandbox):
        def _write(self, *args, **kwargs):  # the first write comes right after the process starts
            if self.process is not None and self.process.pid not in pids:
                pids.append(self.process.pid)
            return super()._write(*args, **kwargs)

    monkeypatch.setattr(grader_module, "Sandbox", Recording)
    yield pids
    for pid in pids:
        _kill_group(pid)


def _graded_within(key, source, seconds, time_limit=1.5):
    """grade_source in a thread: its verdict, or None when it has not returned after ``seconds``."""
    import threading

    results = []
    worker = threading.Thread(target=lambda: results.append(_grade(key, source, time_limit=time_limit)), daemon=True)
    worker.start()
    worker.join(seconds)
    return results[0] if results else None


_UNREAD_REPLIES = {  # adv13 F2: the answer asks for a reply larger than a pipe holds and never reads it
    "helper request by hand": (("07", 1), '''
def attention(Q, K, V, mask=None):
    import __main__ as m, time
    m._send({"op": "helper", "name": "attnlib.softmax", "args": m._enc([np.zeros((1000, 1000))]),
             "kwargs": m._enc({})})
    time.sleep(3600)
'''),
    "helper request on the descriptor": (("07", 1), '''
def attention(Q, K, V, mask=None):
    import json, base64, os, time
    z = np.zeros((1000, 1000))
    enc = {"__nd__": [z.dtype.str, list(z.shape), base64.b64encode(z.tobytes()).decode(), False]}
    os.write(3, (json.dumps({"op": "helper", "name": "attnlib.softmax", "args": [enc],
                             "kwargs": {"__dict__": []}}) + "\\n").encode())
    time.sleep(3600)
'''),
    "the function argument on a large input": (("04", 7), '''
def equivariance_gap(attend, X, perm):
    import json, base64, os, time
    z = np.zeros((4096, X.shape[1]))
    enc = {"__nd__": [z.dtype.str, list(z.shape), base64.b64encode(z.tobytes()).decode(), False]}
    line = json.dumps({"op": "helper", "name": "#0", "args": [enc], "kwargs": {"__dict__": []}}) + "\\n"
    os.write(3, line.encode())
    time.sleep(3600)
'''),
}


@pytest.mark.parametrize("case", sorted(_UNREAD_REPLIES))
def test_an_answer_that_never_reads_its_reply_is_stopped_at_the_time_limit(case, child_pids):
    """adv13 F2: the grader wrote a helper's reply with a blocking write and no deadline; a child that never read
    it held the grading run (classroom 30 min, plain nbgrader for ever), and outlived it."""
    key, source = _UNREAD_REPLIES[case]
    start = time.perf_counter()
    result = _graded_within(key, source, 25)
    assert result is not None, "the grader is still blocked writing to the answer's process"
    assert time.perf_counter() - start < 15
    assert not result.passed and "did not finish within 1.5 s" in result.message, result
    assert child_pids and not any(_alive(pid) for pid in child_pids), child_pids


def test_an_answers_process_dies_with_its_grader():
    """adv13 F2: the answer's process has its own session, so a grader killed (classroom's timeout, a Ctrl-C'd
    nbgrader) left it running, reparented to PID 1; it now gets SIGKILL when its grader dies."""
    import os
    import signal
    import subprocess
    import sys

    script = '''
import sys
from attnlib.grading.sandbox import Sandbox
box = Sandbox("import time\\ndef probe():\\n    time.sleep(600)\\n", "probe", time_limit=600)
box.start()
print(box.process.pid, flush=True)
box.function()()
'''
    grader = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                              start_new_session=True)
    child = None
    try:
        child = int(grader.stdout.readline())
        assert _alive(child)
        os.kill(grader.pid, signal.SIGKILL)
        grader.wait()
        deadline = time.monotonic() + 10
        while _alive(child) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(child), "the answer's process outlived its grader"
    finally:
        _kill_group(grader.pid)
        if child is not None:
            _kill_group(child)
        grader.wait()


def test_classroom_kills_a_run_past_its_time_and_every_process_it_started(tmp_path):
    """adv13 F2: on its timeout classroom killed nbgrader alone; what nbgrader had started lived on."""
    import sys

    from attnlib.grading import classroom

    script = '''
import subprocess, sys
from attnlib.grading.sandbox import Sandbox
box = Sandbox("import time\\ndef probe():\\n    time.sleep(600)\\n", "probe", time_limit=600)
box.start()
helper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
print(box.process.pid, helper.pid, flush=True)
box.function()()
'''
    start = time.perf_counter()
    with pytest.raises(subprocess_timeout()) as stopped:
        classroom.run_stoppable([sys.executable, "-c", script], cwd=tmp_path, env=None, timeout=8)
    assert time.perf_counter() - start < 30
    pids = [int(p) for p in (stopped.value.stdout or "").split()]
    try:
        assert len(pids) == 2, stopped.value.stdout
        deadline = time.monotonic() + 10
        while any(map(_alive, pids)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(map(_alive, pids)), [p for p in pids if _alive(p)]
    finally:
        for pid in pids:
            _kill_group(pid)


def subprocess_timeout():
    import subprocess

    return subprocess.TimeoutExpired


def test_the_system_call_filter_alone_refuses_threads():
    """adv13 F1: threads in the answer's process (numpy lets go of the GIL) starved other submissions graded at
    the same time; the filter now refuses them too, native code included."""
    import platform
    import subprocess
    import sys

    if not sys.platform.startswith("linux") or platform.machine() not in ("x86_64", "aarch64"):
        pytest.skip("the filter is Linux x86_64/aarch64 only")
    script = "import os, sys, _thread\n" + _filter_source() + '''
assert _filter_syscalls()
try:
    _thread.start_new_thread(print, ("a thread ran",))
    import time; time.sleep(0.5)
    print("started")
except RuntimeError as err:
    print("refused")
'''
    out = subprocess.run([sys.executable, "-I", "-c", script], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.split() == ["refused"], (out.stdout, out.stderr)


THREADS = "the grader runs answers on one thread: starting a thread is not allowed"


@pytest.mark.parametrize("where", ["cell", "function", "caught"])
def test_an_answer_that_starts_a_thread_scores_zero_on_that_exercise_with_a_clear_message(where, child_pids):
    """adv13 F1: starting a thread fails in the answer's process (the filter refuses it); the verdict says why."""
    start = "threading.Thread(target=time.sleep, args=(5,), daemon=True).start()"
    body = {"cell": f"{start}\n", "function": "", "caught": ""}[where]
    inside = {"cell": "", "function": f"    {start}\n",
              "caught": f"    try:\n        {start}\n    except Exception:\n        pass\n"}[where]
    source = f'''
import threading, time
{body}
def weights_bytes(batch, n_heads, n):
{inside}    return batch * n_heads * n * n * 8
'''
    result = _grade(("05", 4), source, time_limit=5.0)
    assert not result.passed and THREADS in result.message, result
    assert not any(_alive(pid) for pid in child_pids)
    # that exercise only: the next one is graded as usual
    assert _grade(("07", 1), catalogue.EXERCISES["07", 1].reference).passed


def test_numpy_in_the_answers_process_runs_on_one_blas_thread():
    """With threads refused, a BLAS that started worker threads would fail: it is told to use one."""
    source = '''
def probe():
    A = np.arange(250000.0).reshape(500, 500) / 250000
    return float((A @ A).sum()), float(np.linalg.solve(A + 500 * np.eye(500), np.ones(500)).sum())
'''
    found, _ = _probe(source)
    A = np.arange(250000.0).reshape(500, 500) / 250000
    assert np.isclose(found[0], (A @ A).sum())


def test_an_answers_process_killed_by_the_system_is_not_reported_as_too_slow(child_pids):
    """adv13 (cosmetic): a process that died at once was reported "did not finish within 20 s".  A SIGKILL that
    the grader did not send comes from the system (the kernel's out-of-memory killer, e.g. under a container's
    memory limit; simulated here by the answer sending it to itself): it is reported as too much memory."""
    source = '''
import signal
def weights_bytes(batch, n_heads, n):
    signal.raise_signal(signal.SIGKILL)
'''
    start = time.perf_counter()
    result = _grade(("05", 4), source, time_limit=10.0)
    assert not result.passed and "memory" in result.message and "did not finish" not in result.message, result
    assert time.perf_counter() - start < 8
    crash = '''
import os
def weights_bytes(batch, n_heads, n):
    os._exit(3)
'''
    result = _grade(("05", 4), crash, time_limit=10.0)
    assert not result.passed and "exited or crashed" in result.message, result


# --- adv15: honest mistakes that scored, right answers that failed, self-check and grade disagreeing ------------

def _in_process(key, source):
    """The function an answer cell defines, run here with numpy, math, attnlib and the exercise's data: the grading
    logic alone, without the sandbox (milliseconds), for mistakes whose verdict does not depend on the process."""
    namespace = {"np": np, "math": __import__("math"), "al": al}
    exec(compile(source, "<answer cell>", "exec"), namespace)  # noqa: S102 (the tester's answer)
    return namespace[catalogue.EXERCISES[key].function]


def test_lab3_exercise4_tells_multiplied_variances_from_added_ones():
    """adv15 F1: with entries of variance 2, 2 * 2 = 2 + 2, so "variances add" (the box's second fact applied to
    the product) scored. With variance 3: 576 against 384; the tester's answer fails, and the same slip with the
    new variance gets its own message, in the grader and in the self-check (the catalogue's named mistake)."""
    tester = ("def predicted_unscaled_variance():\n"
              "    # each product q_i k_i has variance 2 + 2 (variances add), summed over 64 terms\n"
              "    return 64 * (2 + 2)\n")
    assert not _grade(("03", 4), tester).passed
    added = catalogue.EXERCISES["03", 4].mistakes[0]
    assert "64 * (3 + 3)" in added[0] and added[1] == catalogue.VARIANCES_ADDED
    from attnlib.checks import check_prediction

    grade = catalogue.EXERCISES["03", 4].grade  # the grader's own measurement and comparison
    result = grade(_in_process(("03", 4), added[0]), np.random.default_rng(0), {})
    assert not result.passed and catalogue.VARIANCES_ADDED in result.message
    assert check_prediction("Exercise 4", 64 * (3 + 3), 577.0, rtol=0.2,
                            mistakes=mistakes("03", 4)).message.endswith(catalogue.VARIANCES_ADDED)


def test_a_greedy_generation_with_a_2048_token_window_fails_the_hidden_prompts():
    """adv15 F2: the far-back prompts were 1,105-1,305 tokens, so GPT-3's 2,048-token window never cropped. The
    hidden stage's last far-back prompt now has 2,100-2,300 tokens (one new token: ~1 s per step in the grader).
    Windows past every prompt (4,096) cannot be told from no window: the instructor guide says so."""
    from attnlib.checks import check_greedy_generate

    source = '''
def greedy_generate(ids, vocab_size, n_new):
    block_size = 2048  # the context window, as nanoGPT's generate crops the sequence (GPT-3's 2048)
    ids = list(np.asarray(ids))
    for _ in range(n_new):
        probs, _ = al.toy_lm.next_token_head(np.array(ids[-block_size:]), vocab_size)
        ids.append(int(probs[-1].argmax()))
    return ids
'''
    # the hidden stage's long prompts (the grader asks for 2), without its six short ones: the same prompt kinds
    result = check_greedy_generate(_in_process(("06", 3), source), rng=np.random.default_rng(0), long_prompts=2)
    assert not result.passed and "tokens, 1 new)" in result.message and "context window" in result.message, result


@pytest.mark.parametrize("seed", range(12))
def test_a_leak_detector_with_the_labs_six_tokens_typed_in_never_scores(seed):
    """adv15 F13: both stages drew n from {5, 6, 7}, so range(1, 6) scored when both drew 6 (1 run in 9). The hidden
    stage now never reuses the first stage's size."""
    ex = catalogue.EXERCISES["07", 4]
    source = next(s for s, message in ex.mistakes if "range(1, 6)" in s)  # the report's answer, catalogued
    assert not ex.grade(_in_process(("07", 4), source), np.random.default_rng(seed), None).passed


def test_a_leak_detector_that_asks_for_identical_outputs_is_told_about_rounding():
    """adv15 F4: every causal function gave bit-identical earlier outputs, so np.array_equal (no 1e-9 threshold)
    scored; a causal function that moves earlier outputs by 1e-12 now tells the two apart."""
    from attnlib.checks import check_leak_detector

    source = next(s for s, message in catalogue.EXERCISES["07", 4].mistakes if "np.array_equal" in s)
    exact = _in_process(("07", 4), source)
    result = check_leak_detector(exact, rng=np.random.default_rng(1))
    assert not result.passed and "below 1e-9 are rounding" in result.message, result
    assert check_leak_detector(_in_process(("07", 4), catalogue.EXERCISES["07", 4].reference)).passed


def _cell(source, filename, **kernel):
    """``source`` defined as IPython defines a notebook cell: its text in linecache under the cell's file name,
    its globals the kernel's (the lab's variables)."""
    import linecache

    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    namespace = {"__name__": "__main__", **kernel}
    exec(compile(source, filename, "exec"), namespace)  # noqa: S102
    return namespace


def test_a_prediction_reading_a_lab_variable_fails_the_self_check_as_it_fails_the_grade():
    """adv15 F9: the self-check ran a prediction with the kernel's globals (P = 16, n = 6, tokens), the grader with
    none of them: ✓ in the notebook, 0 in the grade. The self-check now runs it with what the grader gives (math,
    the names its own cell defines, the statement's variables), and says why."""
    from attnlib.checks import check_prediction

    reads_p = _cell("def predicted_weight_growth():\n    # P = 16 as in the cell above: half of it, 4 times the "
                    "tokens\n    return ((P // 8) ** 2) ** 2\n", "/tmp/ipykernel_0/adv15-f9a.py", P=16)
    result = check_prediction("Exercise 5", reads_p["predicted_weight_growth"], 16, atol=0.5, rtol=0.0)
    assert not result.passed and "name 'P' is not defined" in result.message
    assert "not the lab's other variables" in result.message
    graded = _grade(("06", 5), "def predicted_weight_growth():\n    return ((P // 8) ** 2) ** 2\n")
    assert not graded.passed and "not the lab's other variables" in graded.message, graded
    # the same number defined in the answer cell itself is the grader's too: both accept it
    own = _cell("P = 16\n\n\ndef predicted_weight_growth():\n    return ((P // 8) ** 2) ** 2\n",
                "/tmp/ipykernel_0/adv15-f9b.py", P=99)
    assert check_prediction("Exercise 5", own["predicted_weight_growth"], 16, atol=0.5, rtol=0.0).passed
    reads_n = _cell("def predicted_changed_outputs():\n    return sum(1 for i in range(n) if 2 <= i)\n",
                    "/tmp/ipykernel_0/adv15-f9c.py", n=6)  # token 2 of 6 changed: 4 outputs, read from the lab's n
    assert not check_prediction("Exercise 5", reads_n["predicted_changed_outputs"], 4, atol=0.5, rtol=0.0).passed


def test_a_prediction_calling_an_array_method_on_values_fails_the_self_check_as_it_fails_the_grade():
    """adv15 F6: `values.sum()` passed the self-check (an array in the kernel) and raised in the grader (a list
    there: the prediction's process has no numpy). The self-check now gives the prediction `values` as the grader
    does, a list, and both say why; sum(values) passes both."""
    from attnlib.checks import check_prediction

    values = np.arange(0.0, 11, 2) ** 2
    tester = ("def predicted_wide_lookup():\n    # sigma = 100: all seven weights are about equal, so the plain "
              "average of the seven stored values\n    return (values.sum() + values[-1]) / (len(values) + 1)\n")
    kernel = _cell(tester, "/tmp/ipykernel_0/adv15-f6.py", values=values)
    here = check_prediction("Exercise 5", kernel["predicted_wide_lookup"], 45.71, rtol=0.01, given={"values": values})
    there = _grade(("01", 5), tester)
    for result in (here, there):
        assert not result.passed and "as plain Python lists" in result.message and "sum(" in result.message, result
    right = _cell(catalogue.EXERCISES["01", 5].reference, "/tmp/ipykernel_0/adv15-f6b.py", values=values)
    assert check_prediction("Exercise 5", right["predicted_wide_lookup"], 45.71, rtol=0.01,
                            given={"values": values}).passed


RIGHT_ANSWERS_ADV15 = {
    "F7": (("05", 4), '''
def weights_bytes(batch, n_heads, n):
    weights = np.empty((batch, n_heads, n, n))  # float64, 8 bytes per number
    return weights.nbytes
'''),
}


@pytest.mark.parametrize("finding", sorted(RIGHT_ANSWERS_ADV15))
def test_right_answers_that_failed_the_grader_score(finding):
    """adv15 F7 (a lazy float64 array of the hidden sizes needed 4 GiB; now 512 MiB: 16 heads of 2,048 tokens) and
    F8 (the statement's `d` was not given; that exercise, 02/6, is a prediction since r61). F10 (rnn.rnn_step in
    02/7) is a right answer of the catalogue."""
    key, source = RIGHT_ANSWERS_ADV15[finding]
    result = _grade(key, source)
    assert result.passed, result


def test_a_name_the_grader_does_not_give_is_explained_inside_the_function_too():
    """adv15 F8: a NameError of a lab variable inside the function came without the "runs the cell alone" hint."""
    result = _grade(("02", 3), catalogue.EXERCISES["02", 3].reference.replace("VOCAB)", "N_VOCAB)"))
    assert not result.passed and "runs this answer cell alone" in result.message and "N_VOCAB" in result.message


# --- adv16: honest mistakes that scored, and a right answer that failed ----------------------------

MEAN_LEAK_DETECTOR = '''
def leaks_future(attend, X):
    base = attend(X)
    for j in range(1, len(X)):
        X_changed = X.copy()
        X_changed[j] += 1.0
        if np.abs(attend(X_changed)[:j] - base[:j]).mean() > 1e-9:  # the average change
            return True
    return False
'''


def test_a_leak_detector_comparing_the_mean_change_scores_zero_and_is_told_why():
    """adv16 F3: the grader's subtle leak moved every entry of a row, so the mean over the earlier outputs
    stayed above 1e-9; a leak into one number of one output (1e-8 to 3e-8) does not."""
    ex = catalogue.EXERCISES["07", 4]  # in-process (the catalogue's mutant goes through the sandbox)
    rng = np.random.default_rng(3)
    result = ex.grade(_compiled(MEAN_LEAK_DETECTOR, ex.function), rng, ex.make_data(rng))
    assert not result.passed and "not the average change" in result.message, result.message


def test_every_served_earlier_function_takes_the_arguments_of_the_exercise_that_defines_it():
    """adv16 F4: an alias served with attnlib's signature (rnn_step(x, h, params) for my_rnn_step(x, h, W_xh, W_hh,
    b_h); causal_mask(n_q, n_k) for my_causal_mask(n)) failed a right answer.  Each served alias has the defining
    exercise's parameters, names, kinds and defaults included, and computes what that exercise's reference does."""
    import inspect

    served = {(ex.lab, name, path) for ex in catalogue.EXERCISES.values() for name, path in ex.helpers.items()
              if isinstance(path, str) and path.startswith(catalogue.ALIASES)}
    expected = {(lab, name, adapter) for lab, names in catalogue.EARLIER_FUNCTIONS.items()
                for name, (adapter, _) in names.items()}
    assert {s[1:] for s in served} >= {("my_rnn_step", f"{catalogue.ALIASES}.lab02_my_rnn_step"),
                                       ("my_causal_mask", f"{catalogue.ALIASES}.lab04_my_causal_mask")}
    assert served <= expected | {("03", "my_softmax", f"{catalogue.ALIASES}.lab03_my_softmax")}
    rng = np.random.default_rng(0)
    for lab, name, path in sorted(served):
        defining = min((e for e in catalogue.EXERCISES.values() if e.lab == lab and e.function == name),
                       key=lambda e: e.number)
        reference = _compiled(defining.reference, name)
        alias = catalogue.resolve(path)
        got = [(p.name, p.kind, p.default) for p in inspect.signature(alias).parameters.values()]
        want = [(p.name, p.kind, p.default) for p in inspect.signature(reference).parameters.values()]
        extra = got[len(want):]  # adv17 F6: then the optional parameters of the attnlib function it stands for
        stands_for = inspect.signature(catalogue.resolve(catalogue.EARLIER_FUNCTIONS[lab][name][1])).parameters
        assert all(p[2] is not inspect.Parameter.empty and p[0] in stands_for for p in extra), got
        got = got[:len(want)]
        assert got == want, (f"{path} serves {name}{inspect.signature(alias)}, "
                             f"lab {lab} defines {name}{inspect.signature(reference)}")
        assert alias.__name__ == name
        args = {"my_softmax": lambda: (rng.normal(size=(3, 4)),), "my_causal_mask": lambda: (5,),
                "my_softmax_backward": lambda: (al.softmax(rng.normal(size=(3, 4))), rng.normal(size=(3, 4))),
                "split": lambda: (rng.normal(size=(2, 5, 6)), 3),
                "my_rnn_step": lambda: (rng.normal(size=3), rng.normal(size=4), rng.normal(size=(3, 4)),
                                        rng.normal(size=(4, 4)), rng.normal(size=4))}[name]()
        if lab == "01":
            args = (args[0][0],)  # Lab 1's my_softmax takes a 1-D array
        kwargs = dict(zip([p[0] for p in want], args, strict=True))
        np.testing.assert_allclose(alias(**kwargs), reference(*args), atol=1e-12)


def test_a_helper_error_names_the_alias_the_answer_called():
    """adv16 F4: "_HelperError: TypeError: rnn_step() takes 3 positional arguments but 5 were given" named neither
    my_rnn_step nor the cause."""
    source = ("def fixed_encode(X, W_xh, W_hh, b_h):\n    h = np.zeros(W_hh.shape[0])\n"
              "    return np.stack([my_rnn_step(x, h, {'W_xh': W_xh}) for x in X])\n")
    result = _grade(("02", 7), source)
    assert not result.passed and "TypeError: my_rnn_step()" in result.message and "raised in my_rnn_step" in \
        result.message, result.message


ALIAS_CALLS = [  # adv16 F4: right answers that call an earlier function as the notebook lets them
    (("04", 9), '''
def fixed_causal_self_attention(X, params):
    n = X.shape[0]
    Q, K, V = X @ params["W_q"], X @ params["W_k"], X @ params["W_v"]
    output, weights = al.scaled_dot_product_attention(Q, K, V, mask=my_causal_mask(n=n))  # adv16 F4: by keyword
    return output
'''),
    (("02", 7), '''
def fixed_encode(X, W_xh, W_hh, b_h):
    h = np.zeros(W_hh.shape[0])
    states = []
    for x in X:
        h = my_rnn_step(x, h, W_xh, W_hh, b_h)  # my answer to Exercise 1
        states.append(h)
    return np.stack(states)
'''),  # adv16 F4: the tester's answer; my_rnn_step was served as rnn_step(x, h, params)
]


@pytest.mark.parametrize(("key", "source"), ALIAS_CALLS, ids=[_id(k) for k, _ in ALIAS_CALLS])
def test_an_earlier_function_is_served_with_its_exercises_signature(key, source):
    result = _grade(key, source, seed=5)
    assert result.passed, result


CLIPPED_SOFTMAX = {  # adv16 F1: the tester's answer cells, each scored a point before
    ("01", 6): '''
def dot_product_lookup(q, K, V):
    scores = np.minimum(K @ q, 700.0)  # exp(710) overflows
    weights = np.exp(scores) / np.exp(scores).sum()
    return weights @ V
''',
    ("01", 7): '''
def fixed_lookup(q, K, V):
    scores = np.clip(K @ q, -30, 30)
    weights = np.exp(scores) / np.exp(scores).sum()
    return weights @ V
''',
    ("03", 6): '''
def fixed_attention(Q, K, V):                      # Lab 3, exercise-6
    S = np.clip(Q @ K.T / np.sqrt(K.shape[-1]), -500, 500)  # keep exp from overflowing
    W = np.exp(S)
    W = W / W.sum(axis=-1, keepdims=True)
    return W @ V
''',
    ("05", 6): '''
def fixed_batched_attention(Q, K, V):              # Lab 5, exercise-6
    s = np.clip(Q @ np.swapaxes(K, -1, -2) / np.sqrt(K.shape[-1]), -500, 500)
    w = np.exp(s) / np.exp(s).sum(axis=-1, keepdims=True)
    return w @ V
''',
    ("07", 1): '''
def attention(Q, K, V, mask=None):                 # Lab 7, exercise-1
    S = Q @ np.swapaxes(K, -1, -2) / np.sqrt(K.shape[-1])
    S = np.clip(S, -500, 500)  # exp overflows above ~709
    e = np.exp(S)
    if mask is not None:
        e = np.where(mask, e, 0.0)
    total = e.sum(axis=-1, keepdims=True)
    W = np.divide(e, total, out=np.zeros_like(e), where=total > 0)
    return W @ V, W
''',
    ("03", 2): '''
def my_attention(Q, K, V):
    S = np.clip(Q @ K.T / np.sqrt(Q.shape[-1]), -500, 500)
    W = np.exp(S)
    W = W / W.sum(axis=-1, keepdims=True)
    return W @ V
''',
}
FIRST_SCORE_SHIFT = {  # adv16 F1, second symptom: the shift by the first score, not the largest
    ("01", 7): '''
def fixed_lookup(q, K, V):
    scores = K @ q
    e = np.exp(scores - scores[0])
    return (e / e.sum()) @ V
''',
    ("03", 6): '''
def fixed_attention(Q, K, V):
    S = Q @ K.T / np.sqrt(K.shape[-1])
    e = np.exp(S - S[:, :1])
    return (e / e.sum(axis=-1, keepdims=True)) @ V
''',
    ("03", 2): '''
def my_attention(Q, K, V):
    S = Q @ K.T / np.sqrt(Q.shape[-1])
    e = np.exp(S - S[:, :1])
    return (e / e.sum(axis=-1, keepdims=True)) @ V
''',
}
FIRST_SCORE_SHIFT[("01", 6)] = FIRST_SCORE_SHIFT[("01", 7)].replace("fixed_lookup", "dot_product_lookup")


@pytest.mark.parametrize(("kind", "key"), [*(("clip", k) for k in CLIPPED_SOFTMAX),
                                           *(("first", k) for k in FIRST_SCORE_SHIFT)],
                         ids=lambda v: v if isinstance(v, str) else _id(v))
def test_a_clipped_or_first_shifted_softmax_scores_zero_and_is_named(kind, key):
    """adv16 F1: the large-score case had one high key, first: a clip at 30, 500 or 700 and a shift by the first
    score gave the right weights [1, 0, ...].  Two high keys 4 apart at random places (and a row like check_softmax's
    [1000, 1001, 1002] in check_attention) now show them; each is named.  In-process, five draws each."""
    ex = catalogue.EXERCISES[key]
    source = (CLIPPED_SOFTMAX if kind == "clip" else FIRST_SCORE_SHIFT)[key]
    fn = _compiled(source, ex.function)
    if key == ("03", 2):  # the exercise serves Exercise 1's my_softmax; not used by these answers
        fn.__globals__["my_softmax"] = al.softmax
    words = ("clips the scores" if kind == "clip" else "first score")
    for seed in range(5):
        rng = np.random.default_rng(40 + seed)
        result = ex.grade(fn, rng, ex.make_data(rng))
        assert not result.passed and words in result.message, result.message


def test_a_shift_by_the_global_maximum_is_told_it_underflows():
    """adv16 side note: Lab 3 Ex 2 with one maximum over the whole matrix was told "exp overflows"."""
    ex = catalogue.EXERCISES["03", 2]
    fn = _compiled("def my_attention(Q, K, V):\n    S = Q @ K.T / np.sqrt(Q.shape[-1])\n"
                   "    e = np.exp(S - S.max())\n    return (e / e.sum(axis=-1, keepdims=True)) @ V\n", ex.function)
    result = ex.grade(fn, np.random.default_rng(0), {})
    assert not result.passed and "underflows" in result.message and "overflows" not in result.message, result.message


def test_classroom_does_not_take_a_students_own_timestamp_for_the_submission_time(tmp_path):
    """adv16 F2: timestamp.txt is written on the student's side; a late student wrote an early one and escaped the
    late penalty.  classroom rewrites a claim the file system contradicts: earlier than the exchange's inbound
    folder (with --exchange), or, without the exchange, earlier than the assignment's release."""
    import time as _time
    from datetime import datetime

    from attnlib.grading.classroom import check_timestamps

    lab = "01-what-is-attention"
    (tmp_path / "course" / "release" / lab).mkdir(parents=True)
    exchange = tmp_path / "exchange"
    now = _time.time()

    def stamp(seconds):
        return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S.%f %Z")

    def submit(student, claimed, inbound=True):
        folder = tmp_path / "course" / "submitted" / student / lab
        folder.mkdir(parents=True)
        (folder / f"{lab}.ipynb").write_text("{}")
        (folder / "timestamp.txt").write_text(claimed)
        if inbound:
            box = exchange / "course101" / "inbound" / f"{student}+{lab}+{claimed[:10]} 00:00:00.000000 UTC+x"
            box.mkdir(parents=True)
            (box / "timestamp.txt").write_text(claimed)

    submit("late2", "2020-01-01 00:00:00.000000 UTC", inbound=False)  # before the release: impossible
    submit("plausible", stamp(now - 10), inbound=False)  # cannot be told without the exchange
    submit("late1", stamp(now - 3600))  # an hour before the exchange says it was written
    submit("honest", stamp(now))
    course = tmp_path / "course"
    students = ["late2", "plausible", "late1", "honest"]
    before = {s: (course / "submitted" / s / lab / "timestamp.txt").read_text() for s in students}

    notes = check_timestamps(course, lab, students, exchange=exchange)
    after = {s: (course / "submitted" / s / lab / "timestamp.txt").read_text() for s in students}
    assert sorted(notes) == ["late1", "late2"], notes
    assert "released only at" in notes["late2"] and "inbound folder was written" in notes["late1"], notes
    for student in ("late1", "late2"):
        rewritten = datetime.strptime(after[student], "%Y-%m-%d %H:%M:%S.%f %Z").replace(tzinfo=UTC)
        assert abs(rewritten.timestamp() - now) < 60, (student, after[student])
    assert after["plausible"] == before["plausible"] and after["honest"] == before["honest"]
    assert check_timestamps(course, lab, students, exchange=exchange) == {}  # a second run finds nothing to change


def test_lab5_exercise7s_self_check_names_each_merge_mistake_in_the_learners_kernel():
    """Lab 5 Ex 7 (r102c/g: the blockwise page's running softmax practised): the notebook's check wraps the learner's
    merge_blocks (two blocks' (m, l, a) in, the row's output out) and names each catalogue mistake on its inputs."""
    import attnlib

    cases = catalogue.merge_cases(np.random.default_rng(0))
    named = [(catalogue.split_and_merge(f), message) for f, message in mistakes("05", 7)]
    assert len(named) >= 4
    for source, message in catalogue.EXERCISES["05", 7].mistakes:
        if not message:
            continue
        namespace = {"np": np, "al": attnlib}
        exec(source, namespace)  # noqa: S102 (the catalogue's own mutant)
        result = check_function("Exercise 7", catalogue.split_and_merge(namespace["merge_blocks"]),
                                lambda s, V, k: attnlib.softmax(s) @ V, cases, mistakes=named)
        assert not result.passed and message in result.message, result.message


def test_lab4_exercise10s_self_check_names_each_turn_matrix_mistake_in_the_learners_kernel():
    """Lab 4 Ex 10 (r102c: the positions page's turn practised): the notebook's check moves the position codes with
    the learner's R and names each catalogue mistake, the colleague's transposed block first."""
    import attnlib

    cases = [(3, 16, 20), (1, 8, 12), (7, 64, 50)]  # the notebook's
    named = [(catalogue.moved(f), message) for f, message in mistakes("04", 10)]
    assert named[0][1] == catalogue.TURNS_BACK
    for source, message in catalogue.EXERCISES["04", 10].mistakes:
        if not message:
            continue
        namespace = {"np": np, "al": attnlib}
        exec(source, namespace)  # noqa: S102 (the catalogue's own mutant)
        result = check_function("Exercise 10", catalogue.moved(namespace["turn_matrix"]), catalogue._codes_on, cases,
                                mistakes=named)
        assert not result.passed and message in result.message, result.message
