# The student versions' exercises raise NotImplementedError until a learner solves them, so nbval
# must not run them as if solved; tests/test_student.py runs them and checks "not implemented yet".
collect_ignore_glob = ["*.ipynb"]
