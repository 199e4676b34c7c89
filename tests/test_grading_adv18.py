"""The adversarial tester adv18's findings (issue 22): the grader runs an answer cell as Jupyter does.

F1: a cell stops at the first top-level statement that raises (except an error that comes from running the cell
alone: a lab variable, module or helper the grader does not give, where the notebook's line ran). F2: `%%timeit`
runs its body in a namespace of its own, so a `def` there defines nothing. F3: the line magics `%time stmt` and
`%prun stmt` run their statement in the answer's namespace (`x = %time expr` assigns the value).
"""

from __future__ import annotations

import numpy as np

from attnlib.grading.grader import grade_source

RIGHT_SOFTMAX = '''def my_softmax(scores):
    """Softmax of a 1-D array of scores."""
    scores = np.asarray(scores, dtype=float)
    e = np.exp(scores - scores.max() + SHIFT)
    return e / e.sum()
'''


def _grade(lab, number, source, seed=0):
    return grade_source(lab, number, source, rng=np.random.default_rng(seed))


def test_a_cell_stops_at_its_first_error_as_in_jupyter():
    """F1: right def, a raising try-out, a wrong def 'kept to compare' scores (the right one is in force); wrong def,
    a raising try-out, a right def that never ran scores 0; a prediction likewise; both say the cell stopped."""
    right_then_wrong = ("SHIFT = 0.0\n" + RIGHT_SOFTMAX + "\nmy_softmax(np.array([1.0, 2.0]), axis=0)\n\n"
                        "def my_softmax(scores):\n    e = np.exp(scores)\n    return e / e.sum()\n")
    result = _grade("01", 2, right_then_wrong)
    assert result.passed, result.message
    assert "stops at its first error" in result.message and "(line 8)" in result.message, result.message
    wrong_then_right = ("def nearest_key_lookup(query, keys, values):\n    return values[np.argmin(keys - query)]\n\n"
                        "nearest_key_lookup(5.0, keys, values, 1.0)\n\n"
                        "def nearest_key_lookup(query, keys, values):\n"
                        "    return values[np.argmin(np.abs(keys - query))]\n")
    result = _grade("01", 4, wrong_then_right)
    assert not result.passed, result.message
    assert "stops at its first error" in result.message, result.message
    prediction = ("def predicted_zero_weights():\n    return 6 * 5 // 2\n\nassert predicted_zero_weights() == 0\n\n"
                  "def predicted_zero_weights():\n    return 21\n")
    assert _grade("04", 6, prediction).passed
    mirror = ("def predicted_zero_weights():\n    return 21\n\nassert predicted_zero_weights() == 0\n\n"
              "def predicted_zero_weights():\n    return 6 * 5 // 2\n")
    assert not _grade("04", 6, mirror).passed
    # the function defined only after the error: never defined, and the feedback says why
    result = _grade("01", 2, "1 / 0\n" + RIGHT_SOFTMAX.replace(" + SHIFT", ""))
    assert not result.passed and "(line 1)" in result.message and "never defined" in result.message, result.message


def test_a_lab_variable_the_grader_does_not_give_does_not_stop_the_cell():
    """F1, what the grader relies on: a try-out line reading a lab variable (NameError here, fine in the notebook) or
    a module the grader does not serve; the definitions after it are graded, with the note that it ran alone."""
    for tryout in ("my_softmax(scores_from_the_lab)", "import pandas"):
        source = "SHIFT = 0.0\n" + tryout + "\n" + RIGHT_SOFTMAX
        result = _grade("01", 2, source)
        assert result.passed, (tryout, result.message)
        assert "graded my_softmax all the same" in result.message, result.message


def test_a_def_under_cell_timeit_defines_nothing():
    """F2: IPython runs a %%timeit body in a namespace of its own: the function is missing, the feedback says why."""
    result = _grade("01", 2, "%%timeit -n1 -r1\n" + RIGHT_SOFTMAX.replace(" + SHIFT", ""))
    assert not result.passed and "namespace of its own" in result.message, result.message


def test_line_magics_time_and_prun_run_their_statement():
    """F3: `%time NAME = ...`, `%prun -q NAME = ...` and `NAME = %time expr` define NAME as in IPython;
    `%timeit NAME = ...` does not; an error in a %%time body names its line in the cell."""
    for line in ("%time SHIFT = 0.0  # timed out of habit", "%prun -q SHIFT = 0.0", "SHIFT = %time float(0)"):
        result = _grade("01", 2, line + "\n" + RIGHT_SOFTMAX)
        assert result.passed, (line, result.message)
    assert not _grade("01", 2, "%timeit -n1 -r1 SHIFT = 0.0\n" + RIGHT_SOFTMAX).passed
    body = "%%time\nSHIFT = 0.0\n" + RIGHT_SOFTMAX + "my_softmax(np.array([1.0, 2.0]), axis=0)\n"
    result = _grade("01", 2, body)
    assert result.passed and "(line 8)" in result.message, result.message


def test_messages_say_what_the_answer_did():
    """Observations: 04-7 a wrong reduction is not told "clearly above 0" (its value is above 0); 07-4 a detector
    that sets row j to 0 is told the size of its change matters (the catalogue's "mean" mutant of leaks_future
    checks that message in tests/test_grading.py); an error in a %%time body names the body's line (above)."""
    from attnlib.checks._labs import check_equivariance_gap

    def row_max_mean(attend, X, perm):
        return float(np.abs(attend(X[perm]) - attend(X)[perm]).max(axis=-1).mean())

    result = check_equivariance_gap(row_max_mean)
    assert not result.passed and "clearly above 0" not in result.message, result.message
    assert "not the largest absolute difference" in result.message, result.message


def test_an_error_in_one_copied_cell_stops_that_copy_only():
    """F1 with copies: the copies of an answer cell are joined (nbgrader_step.run_all_source); Run All runs each copy
    as its own cell, so an error in the first copy does not stop the definition in the second."""
    import nbformat

    from attnlib.grading.nbgrader_step import run_all_source

    copies = [nbformat.v4.new_code_cell("np.array([1.0, 2.0]).reshape(3)"),
              nbformat.v4.new_code_cell(RIGHT_SOFTMAX.replace(" + SHIFT", "") + "1 / 0\n")]
    result = _grade("01", 2, run_all_source(copies))
    assert result.passed, result.message


def test_a_missing_timestamp_is_said_to_be_missing(tmp_path):
    """Observation: classroom said a submission without timestamp.txt "claimed an earlier time"; it says it is
    missing (the student's note, which the summary line reads)."""
    from attnlib.grading.classroom import check_timestamps

    lab = "01-what-is-attention"
    (tmp_path / "release" / lab).mkdir(parents=True)
    folder = tmp_path / "submitted" / "nostamp" / lab
    folder.mkdir(parents=True)
    (folder / f"{lab}.ipynb").write_text("{}")
    notes = check_timestamps(tmp_path, lab, ["nostamp"])
    assert notes["nostamp"].startswith("timestamp.txt is missing"), notes
    assert "said" not in notes["nostamp"], notes
