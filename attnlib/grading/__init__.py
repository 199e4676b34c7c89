"""Grades for the labs, from outside the learner's kernel.

- :mod:`attnlib.grading.sandbox`: a fresh Python process per answer cell, with numpy and the
  exercise's given helpers only (served from here), inputs in and values back, a time limit
  enforced by killing the process;
- :mod:`attnlib.grading.catalogue`: every exercise of the labs, how it is graded (the self-check's
  diagnosis first, then fresh hidden inputs), its mutants and its right-but-different answers;
- :mod:`attnlib.grading.grader`: one answer cell, or a whole notebook, graded;
- :mod:`attnlib.grading.nbgrader_step`: the nbgrader preprocessor that sets each grading cell's
  outcome from the grader's verdict;
- :mod:`attnlib.grading.classroom`: a class graded in parallel (``make grade``).
"""
