"""The adversarial tester adv17's findings (issue 22), each replayed through the real grading path.

Right answers that scored 0 (F4 a cell magic whose body has IPython lines, F5 tqdm, F6 an earlier function
called with the parameters of the attnlib function it stands for, F7 numpy.testing) now score full marks; honest
mistakes that scored (F1, F2, F3, F8) are mutants in the catalogue (tests/test_grading.py grades every mutant) and,
where they hinge on the draw, graded here on many draws without the sandbox.
"""

from __future__ import annotations

import inspect

import numpy as np
import pytest

import attnlib as al
from attnlib.grading import catalogue
from attnlib.grading.grader import grade_source
from attnlib.grading.sandbox import python_source


def _grade(key, source, seed=0, **kw):
    return grade_source(*key, source, rng=np.random.default_rng(seed), **kw)


def _compiled(source, function):
    namespace = {"np": np, "math": __import__("math"), "al": al}
    exec(compile(source, "<answer>", "exec"), namespace)
    return namespace[function]


def test_a_cell_magic_body_is_turned_into_python_as_ipython_does():
    """F4: `%%time` / `%%capture` / `%%prun` bodies are transformed like the cell (recursively), so `%timeit`,
    `name?`, `!cmd` and a body indented as a whole compile; the body stays the magic's (run by the stand-in shell)."""
    for magic in ("%%time", "%%capture", "%%prun -q"):
        source = (f"{magic}\n    def weights_bytes(batch, n_heads, n):\n        return batch * n_heads * n * n * 8\n\n"
                  "    %timeit weights_bytes(1, 1, 10)\n    weights_bytes?\n    files = !ls\n    !echo hi\n")
        body = _magic_body(python_source(source))
        compile(body, "<body>", "exec")  # raised SyntaxError (IndentationError) before the fix
        assert "run_line_magic" in body and "getoutput" in body, body
    inner = _magic_body(_magic_body(python_source("%%capture\n%%time\nx = !ls\nx?\n")))
    compile(inner, "<body>", "exec")


def _magic_body(code: str) -> str:
    """The body string of the cell magic the transformed cell calls."""
    import ast

    (statement,) = ast.parse(code).body
    assert statement.value.func.attr == "run_cell_magic", code
    return statement.value.args[2].value


RIGHT = [  # (exercise, answer cell): right answers that scored 0
    (("05", 4), '''%%time
def weights_bytes(batch, n_heads, n):
    return batch * n_heads * n * n * 8

%timeit weights_bytes(1, 1, 10)
weights_bytes?
'''),  # F4
    (("06", 1), '''from tqdm.auto import tqdm, trange
import tqdm as tqdm_module


def causal_weights(S):
    S = np.asarray(S, dtype=float)
    n = S.shape[0]
    for _ in trange(1, leave=False):
        pass
    with tqdm_module.tqdm(total=1) as bar:
        bar.update(1)
        bar.set_description("masking")
    rows = [S[i] for i in tqdm(range(n), desc="rows")]
    W = al.softmax(np.where(al.causal_mask(n), np.array(rows), -np.inf), axis=-1)
    np.testing.assert_allclose(W.sum(axis=-1), 1.0)  # F7: numpy's own testing API inside the answer
    return W
'''),  # F5 and F7
    (("03", 2), '''
def my_attention(Q, K, V):
    scores = Q @ K.T / np.sqrt(K.shape[-1])
    return my_softmax(scores, axis=-1) @ V
'''),  # F6
    (("04", 9), '''
def fixed_causal_self_attention(X, params):
    n = X.shape[0]
    Q, K, V = X @ params["W_q"], X @ params["W_k"], X @ params["W_v"]
    output, weights = al.scaled_dot_product_attention(Q, K, V, mask=my_causal_mask(n, n))
    return output
'''),  # F6
]


@pytest.mark.parametrize(("key", "source"), RIGHT, ids=[f"lab{k[0]}-ex{k[1]}" for k, _ in RIGHT])
def test_right_answers_of_adv17_score_full_marks(key, source):
    result = _grade(key, source, seed=17)
    assert result.passed, result


def test_numpy_testing_in_an_answer_opens_no_subprocess():
    """F7: numpy.testing is loaded for an answer that uses it, but `import subprocess` (or socket) still fails."""
    source = '''
import numpy.testing
try:
    import subprocess
    OPENED = "subprocess"
except ImportError:
    OPENED = None


def weights_bytes(batch, n_heads, n):
    np.testing.assert_equal(1, 1)
    if OPENED:
        raise RuntimeError(OPENED)
    return batch * n_heads * n * n * 8
'''
    result = _grade(("05", 4), source)
    assert result.passed, result


def test_served_earlier_functions_take_the_parameters_of_the_attnlib_function_they_stand_for():
    """F6: the served alias keeps the defining exercise's parameters first and adds the optional ones of the attnlib
    function it stands for (axis, n_k), computing with them."""
    for lab, names in catalogue.EARLIER_FUNCTIONS.items():
        for name, (adapter, path) in names.items():
            alias, stands_for = catalogue.resolve(adapter), catalogue.resolve(path)
            got = inspect.signature(alias).parameters
            theirs = inspect.signature(stands_for).parameters
            optional = [p for p in list(theirs.values())[1:] if p.default is not p.empty]
            for p in optional:
                assert p.name in got and got[p.name].default == p.default, (lab, name, inspect.signature(alias))
    x = np.random.default_rng(0).normal(size=(3, 4))
    for adapter in ("lab01_my_softmax", "lab03_my_softmax"):
        alias = catalogue.resolve(f"{catalogue.ALIASES}.{adapter}")
        np.testing.assert_allclose(alias(x, axis=0), al.softmax(x, axis=0))
    mask = catalogue.resolve(f"{catalogue.ALIASES}.lab04_my_causal_mask")
    np.testing.assert_array_equal(mask(3, 5), al.causal_mask(3, 5))
    back = catalogue.resolve(f"{catalogue.ALIASES}.lab03_my_softmax_backward")
    A = al.softmax(x, axis=0)
    np.testing.assert_allclose(back(A, x, axis=0), al.softmax_backward(A, x, axis=0))


RELATIVE_DETECTORS = {  # F3: the tester's two leak detectors with a threshold relative to the outputs
    "largest output": "np.abs(attend(X_changed)[:j] - base[:j]).max() > 1e-9 * np.abs(base).max()",
    "each output": "(np.abs(attend(X_changed)[:j] - base[:j]) / np.abs(base[:j])).max() > 1e-9",
}


@pytest.mark.parametrize("test", RELATIVE_DETECTORS.values(), ids=RELATIVE_DETECTORS.keys())
def test_a_leak_detector_with_a_relative_threshold_fails_on_every_draw(test):
    """F3: both passed about 90 % of the draws; now they fail on each of 20 draws (and the lab's own detector passes
    all 20), with a message asking for the absolute 1e-9."""
    from attnlib.checks import check_leak_detector

    relative = _compiled(catalogue._nudge_detector(test), "leaks_future")
    reference = _compiled(catalogue.EXERCISES["07", 4].reference, "leaks_future")
    for seed in range(20):
        result = check_leak_detector(relative, rng=np.random.default_rng(seed))
        assert not result.passed, (seed, result)
        assert "1e-9 itself" in result.message or "1e-9 times" in result.message, (seed, result.message)
        assert check_leak_detector(reference, rng=np.random.default_rng(seed)).passed, seed
