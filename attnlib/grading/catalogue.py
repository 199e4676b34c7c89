"""Every graded exercise of the labs: what its answer may use, how it is graded, and its known mistakes.

An :class:`Exercise` names the lab (``"01"`` .. ``"07"``), the exercise number and the function the
learner writes, and says

- ``helpers``: what the answer cell may call besides numpy and ``math`` (the given helpers,
  served by the grader: ``{"al": {"softmax": "attnlib.softmax"}}`` makes ``al.softmax``); attnlib's
  reference for the exercise itself is never among them;
- ``data(rng)``: the lab's variables the answer reads (``values``, ``VOCAB``, ...), made in the grader;
- ``grade(fn, rng, data)``: the diagnosing self-check on the notebook's kind of inputs first (so
  that the feedback starts with the diagnosis the learner has seen), then fresh hidden inputs
  drawn from ``rng``; the expected values are computed here, in the grader's process;
- ``mistakes``: wrong answers as a learner writes them (source of an answer cell) with the
  diagnosis each one gets; the grader must fail every one (``tests/test_grading.py``) and the
  self-check names each one (:func:`mistakes`);
- ``right``: right answers written differently (a list for a tuple, float32, another order of
  operations); they must score full marks.

Hidden inputs are drawn from a generator seeded afresh at every grading run, so no seed of a
hidden test is written anywhere a learner can read.
"""

from __future__ import annotations

import functools
import math
import textwrap
from dataclasses import dataclass, field

import numpy as np

import attnlib as al
from attnlib import recall as _recall
from attnlib import rnn as _rnn
from attnlib.checks import (
    CheckResult,
    check_attention,
    check_causal_mask,
    check_crossing_rows,
    check_equivariance_gap,
    check_function,
    check_greedy_generate,
    check_image_to_text,
    check_leak_detector,
    check_mha_shapes,
    check_multi_head,
    check_prediction,
    check_score_variance,
    check_self_attention,
    check_softmax,
    check_softmax_backward,
    check_split_heads,
    check_top_words,
    check_value,
    failed,
    passed,
)
from attnlib.checks._result import ScoresNear
from attnlib.checks._softmax import MASKED_NOT_ZERO


@dataclass
class Exercise:
    lab: str
    number: int
    function: str
    grade: object  # (fn, rng, data) -> CheckResult
    helpers: dict = field(default_factory=dict)
    data: object = None  # rng -> dict of the lab's variables the answer reads
    mistakes: list = field(default_factory=list)  # (answer-cell source, diagnosis or None)
    right: list = field(default_factory=list)  # answer-cell sources that must pass
    reference: str = ""  # the lab's own answer (an answer-cell source)
    plain: bool = False  # a prediction: graded in plain Python, without numpy (sandbox.PLAIN_RULE)

    @property
    def key(self) -> tuple[str, int]:
        return self.lab, self.number

    def make_data(self, rng) -> dict:
        return dict(self.data(rng)) if self.data else {}

    def served(self) -> dict:
        """Served name -> the grader's function, for every helper this exercise gives."""
        out = {}
        for value in self.helpers.values():
            for path in ([value] if isinstance(value, str) else value.values()):
                out[path] = resolve(path)
        return out


EXERCISES: dict[tuple[str, int], Exercise] = {}
EXPLANATIONS: dict[tuple[str, int], str] = {}  # a prediction's "why the measurement is what it is"
LABS = {"01": "01-what-is-attention", "02": "02-the-problem-attention-solves", "03": "03-how-attention-works",
        "04": "04-types-of-attention", "05": "05-why-attention-is-revolutionary", "06": "06-real-world-impact",
        "07": "07-key-takeaway"}


def resolve(path: str):
    """``"attnlib.recall.ridge_fit"`` -> the function (the grader's own attnlib)."""
    import importlib

    module, _, name = path.rpartition(".")
    obj = importlib.import_module(module)
    return getattr(obj, name)


def src(text: str) -> str:
    return textwrap.dedent(text).strip() + "\n"


def _nudge_detector(leaked: str) -> str:
    """Lab 7 Ex 4 written as the usual loop (nudge token j, compare the outputs before it), with its own test
    ``leaked`` of whether an earlier output moved."""
    return src("""
        def leaks_future(attend, X):
            base = attend(X)
            for j in range(1, len(X)):
                X_changed = X.copy()
                X_changed[j] += 1.0
                if {leaked}:
                    return True
            return False
        """).replace("{leaked}", leaked)


def _removal_by_hand(exp_lines: str) -> str:
    """Lab 5 Ex 2 written out by hand, with its own ``e`` (unnormalised weights) from ``exp_lines``."""
    return src("""
        def removal_effects(q, K, V, u):
            {exp}
            y = (e / e.sum()) @ V @ u
            effects = []
            for j in range(len(K)):
                keep = np.arange(len(K)) != j
                effects.append(abs(y - (e[keep] / e[keep].sum()) @ V[keep] @ u))
            return np.array(effects)
        """).replace("{exp}", exp_lines)


def _fixed_batched_source(axis: int) -> str:
    """Lab 5 Ex 6's corrected function with its softmax over ``axis``: -1 (the keys) is the fix, the others
    the debugging mistakes it names."""
    return src(f"""
        def fixed_batched_attention(Q, K, V):
            scores = Q @ np.swapaxes(K, -1, -2) / np.sqrt(K.shape[-1])
            weights = al.softmax(scores, axis={axis})
            return weights @ V
        """)


def add(ex: Exercise) -> Exercise:
    EXERCISES[ex.key] = ex
    return ex


def al_helpers(*names, **extra) -> dict:
    """``{"al": {name: "attnlib.name"}}`` plus other namespaces (``recall={"one_hot": ...}``)."""
    helpers = {"al": {n: f"attnlib.{n}" for n in names}}
    for space, paths in extra.items():
        helpers[space] = paths
    return helpers


def then(*results) -> CheckResult:
    """The first failed result, else the last one (checks run lazily: pass callables)."""
    result = None
    for make in results:
        result = make()
        if not result.passed:
            return result
    return result


def exercise_name(number: int) -> str:
    return f"Exercise {number}"


def hidden(number: int) -> str:
    return f"Exercise {number} (hidden inputs)"


def with_bias_inputs(rng, *shape):
    """Random inputs with a nonzero mean (so that a dropped bias or offset shows)."""
    return rng.normal(size=shape) + rng.uniform(0.5, 1.5) * rng.choice([-1, 1])


# =========================================== Lab 1 ===========================================

MARKERS = ("[CLS]", "[SEP]")


def _grade_top_words(fn, rng, data):
    cases = []
    for n, k in ((8, 3), (int(rng.integers(6, 12)), 1), (10, 4)):
        tokens = ["[CLS]", *[f"w{i}" for i in range(n - 2)], "[SEP]"]
        weights = rng.permutation(np.linspace(0.01, 0.3, n))
        weights[[0, -1]] = weights.max() + rng.uniform(0.01, 0.1, size=2)  # the markers weigh most
        cases.append((tokens, list(map(float, weights / weights.sum())), k))
    # a word that appears twice, both times among the top k, with another word between its two weights
    # (one weight per word, by a dict or tokens.index, gets it wrong) ...
    others = [str(w) for w in rng.permutation(["cat", "sat", "on", "mat", "today"])]
    tokens = ["[CLS]", "the", others[0], others[1], "the", others[2], others[3], others[4], "[SEP]"]
    base = rng.uniform(0.01, 0.05, size=len(tokens))
    base[[1, 2, 4]] = [0.30, 0.20, 0.12]  # first "the" > another word > second "the" > the rest
    base[[0, -1]] = 0.35 + rng.uniform(0.01, 0.1, size=2)
    repeated = (tokens, list(map(float, base / base.sum())), 3)
    # ... and a pair of sentences, with a marker in the middle that weighs most (markers go by name, not place)
    pair = ["[CLS]", "a", "b", "[SEP]", "c", "d", "[SEP]"]
    weights = rng.permutation(np.linspace(0.02, 0.1, len(pair)))
    weights[3] = 0.5
    cases.append((pair, list(map(float, weights / weights.sum())), 2))

    def with_repeats():
        result = check_top_words(fn, [repeated], name=hidden(1))
        if result.passed:
            return result
        return failed(hidden(1), f"{result.message} In a sentence where a word appears twice, each occurrence is a "
                                 f"token of its own, with its own weight: go by position, not by word.")
    return then(lambda: check_top_words(fn, name=exercise_name(1)),
                lambda: check_top_words(fn, cases, name=hidden(1)), with_repeats)


add(Exercise("01", 1, "top_words", _grade_top_words, reference=src('''
    def top_words(tokens, weights, k):
        order = np.argsort(weights)[::-1]
        return [tokens[j] for j in order if tokens[j] not in ("[CLS]", "[SEP]")][:k]
    '''), mistakes=[
    (src('''
        def top_words(tokens, weights, k):
            order = np.argsort(weights)
            return [tokens[j] for j in order if tokens[j] not in ("[CLS]", "[SEP]")][:k]
        '''), "smallest weights"),
    (src('''
        def top_words(tokens, weights, k):
            order = np.argsort(weights)[::-1]
            return [tokens[j] for j in order][:k]
        '''), "marker tokens"),
    (src('''
        def top_words(tokens, weights, k):
            order = np.argsort(weights)[::-1][:k]
            return [tokens[j] for j in order if tokens[j] not in ("[CLS]", "[SEP]")]
        '''), "leave the markers out first"),
    (src('''
        def top_words(tokens, weights, k):
            order = np.argsort(weights)[::-1]
            return sorted([tokens[j] for j in order if tokens[j] not in ("[CLS]", "[SEP]")][:k])
        '''), "wrong order"),
    (src('''
        def top_words(tokens, weights, k):
            weight_of = dict(zip(tokens, weights))
            for marker in ("[CLS]", "[SEP]"):
                weight_of.pop(marker, None)
            return sorted(weight_of, key=weight_of.get, reverse=True)[:k]
        '''), "each occurrence is a token of its own"),  # adv7 F2: one weight per word
    (src('''
        def top_words(tokens, weights, k):
            words = [t for t in tokens if t not in ("[CLS]", "[SEP]")]
            return sorted(words, key=lambda t: weights[tokens.index(t)], reverse=True)[:k]
        '''), "each occurrence is a token of its own"),
    (src('''
        def top_words(tokens, weights, k):
            order = np.argsort(np.asarray(weights)[1:-1])[::-1] + 1  # the markers are first and last
            return [tokens[j] for j in order][:k]
        '''), "leave out the marker tokens"),
], right=[src('''
    def top_words(tokens, weights, k):
        pairs = sorted(zip(weights, tokens), reverse=True)
        return tuple(t for w, t in pairs if t not in ("[CLS]", "[SEP]"))[:k]
    ''')]))


def _softmax_1d(s):
    return al.softmax(np.asarray(s, dtype=float))


def _grade_softmax_1d(fn, rng, data):
    return then(
        lambda: check_function(exercise_name(2), fn, _softmax_1d,
                               [(np.array([2.0, 1000.0, 999.0, -3.0]),), (np.zeros(3),)],
                               mistakes=mistakes("01", 2)),
        lambda: check_function(hidden(2), fn, _softmax_1d,
                               [(with_bias_inputs(rng, 7),), (np.array([-1000.0, 0.0]),), (np.array([5.0]),),
                                (rng.normal(size=9) * 30,),
                                # a spread of 2000: exp overflows unless the largest score is subtracted
                                (np.array([0.0, 2000.0]) + rng.uniform(-5, 5),),
                                (np.array([-1500.0, 0.0, 1.0]) + rng.uniform(-5, 5),)],
                               mistakes=mistakes("01", 2)))


add(Exercise("01", 2, "my_softmax", _grade_softmax_1d, reference=src('''
    def my_softmax(scores):
        scores = np.asarray(scores, dtype=float)
        e = np.exp(scores - scores.max())
        return e / e.sum()
    '''), mistakes=[
    (src('''
        def my_softmax(scores):
            e = np.exp(np.asarray(scores, dtype=float))
            return e / e.sum()
        '''), "your exp overflows on a large score (exp(1000) is inf, and inf / inf is nan): subtract the "
              "largest score before exp, which changes no weight."),
    (src('''
        def my_softmax(scores):
            scores = np.asarray(scores, dtype=float)
            e = np.exp(scores - scores.max())
            return e / e.max()
        '''), "divided by the largest"),
    (src('''
        def my_softmax(scores):
            scores = np.asarray(scores, dtype=float)
            return (scores - scores.min()) / (scores - scores.min()).sum()
        '''), None),
    (src('''
        def my_softmax(scores):
            scores = np.asarray(scores, dtype=float)
            e = np.exp(scores - scores.max())
            return (e / e.sum()).astype(np.float16)
        '''), None),
    (src('''
        def my_softmax(scores):
            scores = np.asarray(scores, dtype=float)
            e = np.exp(scores - scores.max())
            return e / e.sum() * 1.02
        '''), None),
    (src('''
        def my_softmax(scores):
            scores = np.asarray(scores, dtype=float)
            e = np.exp(scores - scores.mean())  # the mean, not the largest: overflows for a spread above ~1420
            return e / e.sum()
        '''), None),
], right=[src('''
    def my_softmax(scores):
        scores = np.asarray(scores, dtype=np.float32)
        e = np.exp(scores - scores.max())
        return list(e / e.sum())
    '''), src('''
    def my_softmax(scores):
        s = np.asarray(scores, dtype=float)
        return np.exp(s - s.max() - np.log(np.exp(s - s.max()).sum()))
    ''')]))


def least_sure_reference(queries, keys, sigma):
    """Lab 1 Exercise 3's reference: the query whose largest soft-lookup weight is the smallest."""
    queries = np.asarray(queries, dtype=float)
    return queries[np.argmin([al.softmax(-((q - keys) ** 2) / (2 * sigma**2)).max() for q in queries])]


def _clear_winner(queries, keys, sigma) -> bool:
    """No near tie for the least sure query: a right answer computed another way picks the same one."""
    largest = np.sort([al.softmax(-((q - keys) ** 2) / (2 * sigma**2)).max() for q in queries])
    return bool(largest[1] - largest[0] > 1e-6)


# the statement's two inputs: keys with one cluster and uneven gaps (every mutant below lands on a query of
# its own there, so each is told its own diagnosis), then section 2's keys, the case the learner predicts
LEAST_SURE_KEYS = np.array([1.3, 2.5, 4.1, 4.6, 5.0, 7.2])
LEAST_SURE_CASES = [(np.linspace(1.35, 7.15, 100).round(3), LEAST_SURE_KEYS, 0.7),
                    (np.linspace(-1.0, 12.0, 131), np.arange(0.0, 11, 2), 1.0)]


def _least_sure_source(largest: str, pick: str = "queries[np.argmin(largest)]") -> str:
    return src(f'''
        def least_sure_query(queries, keys, sigma):
            largest = [{largest} for q in queries]
            return {pick}
        ''')


LEAST_SURE_MISTAKES = [
    (_least_sure_source("al.softmax(-((q - keys) ** 2) / (2 * sigma**2)).max()", "queries[np.argmax(largest)]"),
     "you returned the query where the lookup is most sure (its largest weight is the largest of all); the "
     "least sure query is the one whose largest weight is the smallest."),
    (_least_sure_source("al.softmax(-((q - keys) ** 2) / (2 * sigma**2)).min()"),
     "for each query you kept its smallest weight; how sure the lookup is shows in its largest weight (one key "
     "with almost all of the weight: sure)."),
    (_least_sure_source("al.softmax(-((q - keys) ** 2) / (2 * sigma**2)).max()", "np.argmin(largest)"),
     "you returned the position of the query in queries; return the query itself."),
    (_least_sure_source("np.exp(-((q - keys) ** 2) / (2 * sigma**2)).max()"),
     "your weights are not normalised: without the softmax the largest one only says how near the nearest key "
     "is, not how the weight is shared. Turn the scores into weights with a softmax (they must sum to 1)."),
    (_least_sure_source("al.softmax(((q - keys) ** 2) / (2 * sigma**2)).max()"),
     "the sign of the scores is flipped: the weights favour the keys farthest from the query. A score must fall "
     "as the distance grows: -(query - key)**2 / (2 sigma**2)."),
    (_least_sure_source("al.softmax(-((q - keys) ** 2) / (2 * sigma)).max()"),
     "your scores are divided by 2 sigma where 2 sigma**2 is expected: sigma is a width, and the squared "
     "distance is compared with its square."),
    (_least_sure_source("al.softmax(-np.abs(q - keys) / (2 * sigma**2)).max()"),
     "your scores use the distance |query - key| where its square is expected."),
    (src('''
        def least_sure_query(queries, keys, sigma):
            scores = -((queries[:, None] - keys[None, :]) ** 2) / (2 * sigma**2)  # (n_q, n_k)
            return queries[np.argmin(al.softmax(scores, axis=0).max(axis=1))]
        '''), "your softmax ran over the queries (axis 0): each query's weights over the keys must sum to 1, so "
              "the softmax runs along the keys (the last axis)."),
    # for the hidden inputs: a query far from every key (each exp underflows unless the largest score is
    # subtracted), and keys near and far at once (a shift by the mean overflows)
    (src('''
        def least_sure_query(queries, keys, sigma):
            largest = []
            for q in queries:
                w = np.exp(-((q - keys) ** 2) / (2 * sigma**2))  # no shift: every weight underflows far away
                largest.append((w / w.sum()).max())
            return queries[np.argmin(largest)]
        '''), None),
    (src('''
        def least_sure_query(queries, keys, sigma):
            largest = []
            for q in queries:
                s = -((q - keys) ** 2) / (2 * sigma**2)
                e = np.exp(s - s.mean())  # adv14 F5: the mean, not the largest
                largest.append((e / e.sum()).max())
            return queries[np.argmin(largest)]
        '''), None),
]


def _grade_least_sure(fn, rng, data):
    cases = []
    while len(cases) < 4:
        k = np.sort(rng.uniform(-3, 3, size=9))
        mixed = np.concatenate([k[:3], rng.uniform(60, 70, 6)])  # near three keys and far from six
        candidates = [(np.linspace(-4, 4, 81), k, 0.7), (np.linspace(-4, 4, 81), k, 2.0),
                      # two queries far from every key, among queries near them
                      (np.concatenate([np.linspace(-3, 3, 13), rng.uniform(50, 70, 2)]), k, 1.0),
                      (np.linspace(k[0], k[2], 21), mixed, 1.0)]
        if all(_clear_winner(*case) for case in candidates):
            cases = candidates
    return then(
        lambda: check_function(exercise_name(3), fn, least_sure_reference, LEAST_SURE_CASES,
                               mistakes=mistakes("01", 3)),
        lambda: check_function(hidden(3), fn, least_sure_reference, cases, mistakes=mistakes("01", 3)))


def _lab1_data(rng):
    squares = {x: x**2 for x in range(0, 11, 2)}
    return {"keys": np.array(list(squares), dtype=float), "values": np.array(list(squares.values()), dtype=float)}


add(Exercise("01", 3, "least_sure_query", _grade_least_sure, helpers=al_helpers("softmax"), data=_lab1_data,
             reference=src('''
    def least_sure_query(queries, keys, sigma):
        largest = []  # one number per query: its largest weight
        for q in queries:
            weights = al.softmax(-((q - keys) ** 2) / (2 * sigma**2))  # (n_k,)
            largest.append(weights.max())
        return queries[np.argmin(largest)]
    '''), mistakes=LEAST_SURE_MISTAKES, right=[src('''
    def least_sure_query(queries, keys, sigma):
        s = -((np.asarray(queries)[:, None] - keys[None, :]) ** 2) / (2 * sigma**2)  # (n_q, n_k)
        w = np.exp(s - s.max(axis=1, keepdims=True))
        w = w / w.sum(axis=1, keepdims=True)
        return float(queries[w.max(axis=1).argmin()])
    '''), src('''
    def least_sure_query(queries, keys, sigma):
        best, best_q = 2.0, None
        for q in list(queries):
            d = -((q - keys) ** 2) / (2 * sigma**2)
            w = np.exp(d - d.max())
            top = (w / w.sum()).max()
            if top < best:
                best, best_q = top, q
        return best_q
    ''')]))


def _grade_nearest(fn, rng, data):
    keys, values = data["keys"], data["values"]
    k = np.array([-4.0, -1.5, 0.0, 2.0, 7.0]) + rng.uniform(-0.2, 0.2)
    v = rng.normal(size=5) * 3 + 1
    ref = lambda q, k, v: v[np.argmin(np.abs(k - q))]  # noqa: E731
    # adv15 F12: keys in no order (the statement never says they are sorted), each with its value, and a query
    # whose nearest key is neither end (a binary search that assumes sorted keys lands elsewhere)
    order = np.array([3, 0, 4, 1, 2])
    shuffled = (k[order], v[order])
    return then(
        lambda: check_function(exercise_name(4), fn, ref, [(q, keys, values) for q in (0.2, 3.9, 6.6, 9.4, 12.0)],
                               mistakes=mistakes("01", 4)),
        lambda: check_function(hidden(4), fn, ref, [*[(q, k, v) for q in (-9.0, -1.0, 0.9, 4.2, 100.0)],
                                                    *[(q, *shuffled) for q in (-1.0, 4.2)]],
                               mistakes=mistakes("01", 4)))


add(Exercise("01", 4, "nearest_key_lookup", _grade_nearest, data=_lab1_data, reference=src('''
    def nearest_key_lookup(query, keys, values):
        return values[np.argmin(np.abs(keys - query))]
    '''), mistakes=[
    (src('''
        def nearest_key_lookup(query, keys, values):
            return values[np.argmax(np.abs(keys - query))]
        '''), "the farthest key"),
    (src('''
        def nearest_key_lookup(query, keys, values):
            return keys[np.argmin(np.abs(keys - query))]
        '''), "the key itself"),
    (src('''
        def nearest_key_lookup(query, keys, values):
            return values[np.argmin(keys - query)]
        '''), "absolute"),
    (src('''
        def nearest_key_lookup(query, keys, values):
            return np.argmin(np.abs(keys - query))
        '''), "position"),
    (src('''
        def nearest_key_lookup(query, keys, values):
            i = int(np.clip(np.searchsorted(keys, query), 1, len(keys) - 1))  # keys[i-1] <= query < keys[i]
            j = i - 1 if query - keys[i - 1] <= keys[i] - query else i
            return values[j]
        '''), "sorted keys (adv15 F12)"),
]))


def prediction(lab: str, number: int, function: str, measure, reference: str, wrong: list, *, rtol=0.05,
               atol=0.0, explanation="", data=None, right=()):
    """A predict-then-measure exercise: the prediction runs without the measurement, compared here.

    ``explanation`` (why the measurement comes out as it does) is kept here, not in the lab's check cell,
    so that a learner reads it only after predicting: the check cell asks for it with ``explanation(lab, n)``.
    """
    EXPLANATIONS[(lab, number)] = explanation

    def grade(fn, rng, data):
        return check_prediction(exercise_name(number), fn, measure(), rtol=rtol, atol=atol, explanation=explanation,
                                mistakes=mistakes(lab, number), given=data)

    cheats = [src(f'''
        def {function}():
            return measured
        '''), src(f'''
        def {function}():
            import sys
            return sys._getframe(1).f_globals["measured"]
        ''')]
    measuring = src(f'''
        def {function}():
            import numpy
            return 1.0
        ''')  # numpy is out of reach: a measurement cannot be run in place of the prediction
    named = [w if isinstance(w, tuple) else (w, None) for w in wrong]  # a (source, message) pair is diagnosed
    return add(Exercise(lab, number, function, grade, data=data, reference=reference, plain=True,
                        mistakes=[*named, *[(w, None) for w in [*cheats, measuring]]], right=list(right)))


def _lab1_twice(rng):
    """The table of squares with its last entry (key 10, value 100) stored twice: Exercise 5's experiment."""
    data = _lab1_data(rng)
    return {name: np.append(array, array[-1]) for name, array in data.items()}


prediction("01", 5, "predicted_wide_lookup",
           lambda: al.nadaraya_watson([5.0], *_lab1_twice(None).values(), bandwidth=100.0)[0][0],
           src('''
    def predicted_wide_lookup():
        return (sum(values) + values[-1]) / (len(values) + 1)
    '''), [src('''
    def predicted_wide_lookup():
        return sum(values) / len(values)  # the six-entry table: the copy of key 10 left out
    '''), src('''
    def predicted_wide_lookup():
        return float(np.mean(values))
    '''), src('''
    def predicted_wide_lookup():
        return min(zip(keys, values), key=lambda kv: abs(kv[0] - 5.0))[1]
    '''), src('''
    def predicted_wide_lookup():
        return 25.0
    '''), src('''
    def predicted_wide_lookup():
        return 36.0  # adv7 F5: the value at the equally near key 6 (a hard lookup)
    '''), src('''
    def predicted_wide_lookup():
        return 100.0  # the value stored twice
    '''), src('''
    def predicted_wide_lookup():  # reads `keys`, which the grader does not give (NameError)
        sigma, q = 100.0, 5.0
        w = [math.exp(-(q - k) ** 2 / (2 * sigma ** 2)) for k in keys]
        return sum(wi * v for wi, v in zip(w, values)) / sum(w)
    ''')], right=[src('''
    def predicted_wide_lookup():  # adv12 F3: worked out by hand from the printed keys: accepted, as a prediction is
        sigma, q = 100.0, 5.0
        keys = [0.0, 2.0, 4.0, 6.0, 8.0, 10.0, 10.0]
        table = list(values) + [values[-1]]
        w = [math.exp(-(q - k) ** 2 / (2 * sigma ** 2)) for k in keys]
        return sum(wi * v for wi, v in zip(w, table)) / sum(w)
    '''), src('''
    def predicted_wide_lookup():
        return 320 / 7  # 0 + 4 + 16 + 36 + 64 + 100 + 100, seven entries
    ''')], data=lambda rng: {"values": _lab1_data(rng)["values"]}, rtol=0.01,
           explanation="With σ = 100 all scores are within 0.003 of 0, so each of the seven stored entries gets "
                       "almost 1/7 of the weight: the copy of key 10 counts as a key of its own, and the answer is "
                       "almost the plain average of the seven values.")


def _dot_lookup(q, K, V):
    return al.softmax(K @ q) @ V


def _grade_dot_lookup(fn, rng, data):
    return then(
        lambda: check_function(exercise_name(6), fn, _dot_lookup,
                               [(rng.normal(size=3), rng.normal(size=(6, 3)), rng.normal(size=(6, 2))),
                                (np.array([2.0, 0.0, 0.0]), np.eye(3), np.arange(6.0).reshape(3, 2))],
                               mistakes=mistakes("01", 6)),
        lambda: check_function(hidden(6), fn, _dot_lookup,
                               [(with_bias_inputs(rng, 5), rng.normal(size=(9, 5)), with_bias_inputs(rng, 9, 4)),
                                (rng.normal(size=4), rng.normal(size=(4, 4)), rng.normal(size=(4, 4))),
                                moderate_case(rng, rng.normal(size=3), rng.normal(size=(6, 3)),
                                              rng.normal(size=(6, 2))),
                                large_case(*with_large_scores(rng, rng.normal(size=3), rng.normal(size=(6, 3))),
                                 rng.normal(size=(6, 2)))],
                               mistakes=mistakes("01", 6)))


add(Exercise("01", 6, "dot_product_lookup", _grade_dot_lookup, helpers=al_helpers("softmax"), reference=src('''
    def dot_product_lookup(q, K, V):
        weights = al.softmax(K @ q)
        return weights @ V
    '''), mistakes=[
    (src('''
        def dot_product_lookup(q, K, V):
            s = K @ q
            e = np.exp(s - s.mean())
            return (e / e.sum()) @ V
        '''), None),  # adv14 F5: the mean, not the largest
    (src('''
        def dot_product_lookup(q, K, V):
            e = np.exp(K @ q)
            return (e / e.sum()) @ V
        '''), "overflow"),
    (src('''
        def dot_product_lookup(q, K, V):
            return al.softmax(K @ q / np.sqrt(len(q))) @ V
        '''), "scaled"),
    (src('''
        def dot_product_lookup(q, K, V):
            return (K @ q) @ V
        '''), "softmax"),
    (src('''
        def dot_product_lookup(q, K, V):
            return al.softmax(K @ q) @ K
        '''), "keys"),
    (src('''
        def dot_product_lookup(q, K, V):
            return al.softmax(K.T @ q) @ V
        '''), "transposed"),
], right=[src('''
    def dot_product_lookup(q, K, V):
        q, K, V = (np.asarray(a, dtype=np.float32) for a in (q, K, V))  # float32 arithmetic (adv9 F5)
        weights = al.softmax(K @ q)
        return weights @ V
    ''')]))

# =========================================== Lab 2 ===========================================


def _rnn_ref(x, h, W_xh, W_hh, b_h):
    return _rnn.rnn_step(x, h, {"W_xh": W_xh, "W_hh": W_hh, "b_h": b_h})


def _grade_rnn_step(fn, rng, data):
    params = _rnn.init_rnn(16, 8, rng)
    W = (params["W_xh"], params["W_hh"], params["b_h"])
    p = _rnn.init_rnn(3, 5, rng)
    Wh = (p["W_xh"], p["W_hh"], rng.normal(size=5))  # a nonzero bias: init_rnn's is zero
    return then(
        lambda: check_function(exercise_name(1), fn, _rnn_ref,
                               [(rng.normal(size=(5, 16)), rng.normal(size=(5, 8)), *W),
                                (rng.normal(size=16), rng.normal(size=8), *W)], mistakes=mistakes("02", 1)),
        lambda: check_function(hidden(1), fn, _rnn_ref,
                               [(rng.normal(size=(4, 3)), rng.normal(size=(4, 5)), *Wh),
                                (rng.normal(size=3), np.zeros(5), *Wh)], mistakes=mistakes("02", 1)))


add(Exercise("02", 1, "my_rnn_step", _grade_rnn_step, reference=src('''
    def my_rnn_step(x, h, W_xh, W_hh, b_h):
        return np.tanh(x @ W_xh + h @ W_hh + b_h)
    '''), mistakes=[
    (src('''
        def my_rnn_step(x, h, W_xh, W_hh, b_h):
            return np.tanh(x @ W_xh + h @ W_hh)
        '''), "bias"),
    (src('''
        def my_rnn_step(x, h, W_xh, W_hh, b_h):
            return x @ W_xh + h @ W_hh + b_h
        '''), "tanh"),
    (src('''
        def my_rnn_step(x, h, W_xh, W_hh, b_h):
            return 1 / (1 + np.exp(-(x @ W_xh + h @ W_hh + b_h)))
        '''), "sigmoid"),
    (src('''
        def my_rnn_step(x, h, W_xh, W_hh, b_h):
            return np.tanh(x @ W_xh + h @ W_hh.T + b_h)
        '''), "transposed"),
    (src('''
        def my_rnn_step(x, h, W_xh, W_hh, b_h):
            return np.tanh(x @ W_xh + b_h)
        '''), "state"),
], right=[src('''
    def my_rnn_step(x, h, W_xh, W_hh, b_h):
        z = np.einsum("...i,ij->...j", x, W_xh) + np.einsum("...i,ij->...j", h, W_hh) + b_h
        return (np.exp(2 * z) - 1) / (np.exp(2 * z) + 1)
    '''), src('''
    def my_rnn_step(x, h, W_xh, W_hh, b_h):
        # adv7 F7: column-vector form, right for the two shapes the exercise names, (d_in,) and (batch, d_in)
        z = W_xh.T @ x.T + W_hh.T @ h.T
        return np.tanh(z.T + b_h)
    ''')]))


def _grade_ridge(fn, rng, data):
    ref = lambda F, Y, a: _recall.ridge_fit(F, Y, a)  # noqa: E731
    return then(
        lambda: check_function(exercise_name(2), fn, ref,
                               [(rng.normal(size=(50, 6)), rng.normal(size=(50, 3)), 0.1),
                                (np.eye(4), np.arange(8.0).reshape(4, 2), 1.0)], mistakes=mistakes("02", 2)),
        lambda: check_function(hidden(2), fn, ref,
                               [(with_bias_inputs(rng, 30, 4), rng.normal(size=(30, 2)), 2.0),
                                (rng.normal(size=(8, 10)), rng.normal(size=(8, 1)), 0.5),
                                (rng.normal(size=(20, 3)), rng.normal(size=(20, 5)), 3.0)], mistakes=mistakes("02", 2)))


add(Exercise("02", 2, "my_ridge", _grade_ridge, reference=src('''
    def my_ridge(F, Y, alpha):
        gram = F.T @ F + alpha * np.eye(F.shape[1])
        return np.linalg.solve(gram, F.T @ Y)
    '''), mistakes=[
    (src('''
        def my_ridge(F, Y, alpha):
            return np.linalg.solve(F.T @ F, F.T @ Y)
        '''), "alpha"),
    (src('''
        def my_ridge(F, Y, alpha):
            return np.linalg.lstsq(F, Y, rcond=None)[0]
        '''), "least squares"),
    (src('''
        def my_ridge(F, Y, alpha):
            gram = F.T @ F + alpha**2 * np.eye(F.shape[1])
            return np.linalg.solve(gram, F.T @ Y)
        '''), "alpha squared"),
    (src('''
        def my_ridge(F, Y, alpha):
            gram = F.T @ F + alpha
            return np.linalg.solve(gram, F.T @ Y)
        '''), "alpha everywhere"),
    (src('''
        def my_ridge(F, Y, alpha):
            gram = F.T @ F + alpha * np.eye(F.shape[0])
            return np.linalg.solve(gram, F.T @ Y)
        '''), "identity of size n"),
], right=[src('''
    def my_ridge(F, Y, alpha):
        return np.linalg.inv(F.T @ F + alpha * np.eye(F.shape[1])) @ F.T @ Y
    ''')]))


def _recall_data(rng):
    vocab, length = 6, 10
    train, test = _recall.random_tokens(240, length, vocab, rng), _recall.random_tokens(80, length, vocab, rng)
    sizes = (16, 32, 64)  # the lab's widths: an answer that names one (encoded[64]) finds it, and the widest
    encoded = {}          # is not the only one
    for d in sizes:
        enc = _rnn.init_rnn(vocab, d, rng)
        encoded[d] = (_recall.encode_tokens(train, enc), _recall.encode_tokens(test, enc))
    return {"VOCAB": vocab, "HIDDEN_SIZES": sizes, "LENGTH": length, "train": train, "test": test,
            "N_TRAIN": len(train), "N_TEST": len(test), "encoded": encoded,  # N_*: the lab's names (adv11 F3)
            "d": sizes[-1]}  # adv15 F8: the statement of Exercise 6 names d = HIDDEN_SIZES[-1]


def _grade_recall_at_distance(fn, rng, data):
    train, test = data["train"], data["test"]
    H_tr, H_te = data["encoded"][data["HIDDEN_SIZES"][-1]]
    expected = _recall.position_recall(H_tr[:, -1], H_te[:, -1], train, test)
    ks = (1, 3, train.shape[1])
    # States shrunk until F^T F is of the order of the default alpha: there the regularisation (and its
    # strength) moves the predictions, so plain least squares or another alpha gives other accuracies.
    small_tr, small_te = (H[:, -1] * float(rng.uniform(0.004, 0.008)) for H in data["encoded"][data["HIDDEN_SIZES"][0]])
    small_ks = (1, 2, 3, 4)
    small = _recall.position_recall(small_tr, small_te, train, test)
    return then(
        lambda: check_value(exercise_name(3), lambda: [fn(H_tr[:, -1], H_te[:, -1], train, test, k) for k in ks],
                            expected[[k - 1 for k in ks]]),
        lambda: check_value(hidden(3), lambda: [fn(small_tr, small_te, train, test, k) for k in small_ks],
                            small[[k - 1 for k in small_ks]]))


RECALL_HELPERS = {"one_hot": "attnlib.recall.one_hot", "ridge_fit": "attnlib.recall.ridge_fit",
                  "with_bias": "attnlib.recall.with_bias"}
add(Exercise("02", 3, "recall_at_distance", _grade_recall_at_distance, helpers={"recall": RECALL_HELPERS},
             data=_recall_data, reference=src('''
    def recall_at_distance(h_train, h_test, train, test, k):
        Y = recall.one_hot(train[:, -k], VOCAB)
        W = recall.ridge_fit(recall.with_bias(h_train), Y)
        predicted = (recall.with_bias(h_test) @ W).argmax(axis=1)
        return np.mean(predicted == test[:, -k])
    '''), mistakes=[
    (src('''
        def recall_at_distance(h_train, h_test, train, test, k):
            Y = recall.one_hot(train[:, -k], VOCAB)
            W = recall.ridge_fit(recall.with_bias(h_train), Y)
            predicted = (recall.with_bias(h_test) @ W).argmax(axis=1)
            return f"{np.mean(predicted == test[:, -k]):.4f}"
        '''), "text"),
    (src('''
        def recall_at_distance(h_train, h_test, train, test, k):
            Y = recall.one_hot(train[:, -k - 1], VOCAB)
            W = recall.ridge_fit(recall.with_bias(h_train), Y)
            predicted = (recall.with_bias(h_test) @ W).argmax(axis=1)
            return np.mean(predicted == test[:, -k - 1])
        '''), "off by one"),
    (src('''
        def recall_at_distance(h_train, h_test, train, test, k):
            Y = recall.one_hot(train[:, k], VOCAB)
            W = recall.ridge_fit(recall.with_bias(h_train), Y)
            predicted = (recall.with_bias(h_test) @ W).argmax(axis=1)
            return np.mean(predicted == test[:, k])
        '''), "from the start"),
    (src('''
        def recall_at_distance(h_train, h_test, train, test, k):
            Y = recall.one_hot(train[:, -k], VOCAB)
            W = recall.ridge_fit(recall.with_bias(h_train), Y)
            predicted = (recall.with_bias(h_train) @ W).argmax(axis=1)
            return np.mean(predicted == train[:, -k])
        '''), "training data"),
    (src('''
        def recall_at_distance(h_train, h_test, train, test, k):
            Y = recall.one_hot(train[:, -k], VOCAB)
            W = recall.ridge_fit(recall.with_bias(h_train), Y)
            predicted = (recall.with_bias(h_test) @ W).argmax(axis=1)
            return np.sum(predicted == test[:, -k])
        '''), "a count"),
    (src('''
        def recall_at_distance(h_train, h_test, train, test, k):
            Y = recall.one_hot(train[:, -k], VOCAB)
            W = np.linalg.lstsq(recall.with_bias(h_train), Y, rcond=None)[0]  # no ridge term
            predicted = (recall.with_bias(h_test) @ W).argmax(axis=1)
            return np.mean(predicted == test[:, -k])
        '''), "least squares"),
    (src('''
        def recall_at_distance(h_train, h_test, train, test, k):
            Y = recall.one_hot(train[:, -k], VOCAB)
            W = recall.ridge_fit(recall.with_bias(h_train), Y, 0.001)  # not the default alpha
            predicted = (recall.with_bias(h_test) @ W).argmax(axis=1)
            return np.mean(predicted == test[:, -k])
        '''), "alpha"),
]))


def _oracle_row(p, n, d_pe, s):
    return _recall.oracle_weights(n, d_pe=d_pe, scale=s)[p]


def _grade_position_weights(fn, rng, data):
    return then(
        lambda: check_function(exercise_name(4), fn, _oracle_row, [(7, 20, 32, 2.0), (0, 5, 16, 4.0)],
                               mistakes=mistakes("02", 4)),
        lambda: check_function(hidden(4), fn, _oracle_row,
                               [(int(rng.integers(0, 13)), 13, 8, float(rng.uniform(0.2, 0.6))),
                                (int(rng.integers(0, 40)), 40, 64, 3.0), (2, 6, 4, 1.5)],
                               mistakes=mistakes("02", 4)))


add(Exercise("02", 4, "position_weights", _grade_position_weights,
             helpers=al_helpers("softmax", "sinusoidal_positional_encoding"), reference=src('''
    def position_weights(p, n, d_pe, scale):
        PE = al.sinusoidal_positional_encoding(n, d_pe)
        return al.softmax(scale * PE @ PE[p])
    '''), mistakes=[
    (src('''
        def position_weights(p, n, d_pe, scale):
            PE = al.sinusoidal_positional_encoding(n, d_pe)
            return al.softmax(PE @ PE[p])
        '''), "the scale is missing: your weights are those of scale 1. Multiply the scores by scale before the "
              "softmax."),
    (src('''
        def position_weights(p, n, d_pe, scale):
            PE = al.sinusoidal_positional_encoding(n, d_pe)
            return al.softmax(PE @ PE[p] / scale)
        '''), "your scores are divided by scale; multiply them by it (a larger scale makes the weights sharper)."),
    (src('''
        def position_weights(p, n, d_pe, scale):
            PE = al.sinusoidal_positional_encoding(n, d_pe)
            return scale * PE @ PE[p]
        '''), "these are scores, not weights: a softmax turns them into weights that sum to 1."),
    (src('''
        def position_weights(p, n, d_pe, scale):
            PE = al.sinusoidal_positional_encoding(n, d_pe)
            return al.softmax(scale * PE @ PE[p] / np.sqrt(d_pe))
        '''), "your scores are also divided by sqrt(d_pe); here the scale is the only factor."),
]))

prediction("02", 5, "predicted_neighbour_ratio",
           lambda: (lambda W: W[7, 8] / W[7, 6])(
               _recall.oracle_weights(20, d_pe=32, scale=1.0)),
           src('''
    def predicted_neighbour_ratio():
        return 1.0
    '''), [src('''
    def predicted_neighbour_ratio():
        return 2.0  # the state after p + 1 has read token p
    '''), src('''
    def predicted_neighbour_ratio():
        return 0.5
    '''), src('''
    def predicted_neighbour_ratio():
        return 0.0
    ''')], rtol=0.01,
           explanation="PE_p . PE_j depends only on how far apart p and j are, so the two neighbours get equal "
                       "scores and equal weights: the query cannot tell the state that has read token p from the "
                       "one that has not.")


@functools.lru_cache(maxsize=1)
def _soft_oracle_recall() -> float:
    """Exercise 6's experiment at the lab's default knobs (16 tokens, length 60, 800 + 200 sequences, the widest
    encoder, 64): the oracle's recall at scale 1, averaged over the distances, on sequences of the grader's own."""
    rng = np.random.default_rng(2)
    vocab, length, d = 16, 60, 64
    train, test = (_recall.random_tokens(n, length, vocab, rng) for n in (800, 200))
    encoder = _rnn.init_rnn(vocab, d, rng)
    H_tr, H_te = _recall.encode_tokens(train, encoder), _recall.encode_tokens(test, encoder)
    query = _recall.oracle_query(d, scale=1.0)
    A_tr, A_te = _recall.query_attention(H_tr, query)[0], _recall.query_attention(H_te, query)[0]
    return float(_recall.position_recall(A_tr, A_te, train, test).mean())


# r61a, r61c: Exercise 6 asked to reassemble section 4's comparison cell; now it asks the question alone.
prediction("02", 6, "predicted_soft_recall", _soft_oracle_recall,
           src('''
    def predicted_soft_recall():
        return 0.95  # most of the weight sits on states that have read token p
    '''), [(src('''
    def predicted_soft_recall():
        return 0.4  # the weight on the asked-for state
    '''), "0.4 is about the weight on the asked-for state, not the recall: the readout also finds token p in the "
          "states after it, which have read token p too. Add up the weight on every state that holds token p."),
    (src('''
    def predicted_soft_recall():
        return 0.6  # the weight on the asked-for state and the one after it
    '''), "0.6 is about the weight on the asked-for state and the next one, not the recall: a blend of states "
          "that all hold token p still lets the readout find it, so the recall can be higher than any weight."),
    (src('''
    def predicted_soft_recall():
        return 1 / 16  # chance
    '''), "1/16 is chance, the recall of a readout that learned nothing; at scale 1 most of the weight still "
          "sits on states that hold token p."),
    src('''
    def predicted_soft_recall():
        return 0.5
    ''')], atol=0.1, rtol=0.0, right=[src('''
    def predicted_soft_recall():
        return 1.0  # as good as scale 4: the blend holds token p
    ''')],
           explanation="At scale 1 the asked-for state gets less than half of the weight, but most of the rest sits "
                       "on the state after it, which holds token p as its second newest, and section 2's curve "
                       "reads that almost as well as the newest. The readout, fitted for position p, picks token p "
                       "out of the blend, so the mean recall stays close to scale 4's.")

# =========================================== Lab 3 ===========================================


def _grade_softmax(fn, rng, data):
    x = with_bias_inputs(rng, 2, 3, 5) * np.array([1.0, 300.0, 1e-3])[None, :, None]
    x[0, 1, 2] = -np.inf
    return then(lambda: check_softmax(fn, name=exercise_name(1)),
                lambda: check_function(hidden(1), fn, al.softmax, [(x,), (np.array([[0.0, 0.0], [1000.0, 1000.0]]),)],
                                       mistakes=mistakes("03", 1)),
                lambda: _masked_exactly_zero(fn, x, hidden(1)))


def _masked_exactly_zero(fn, x, name):
    """adv17 F2: the statement asks for weight exactly 0 on -inf entries; the comparisons above allow 1e-5."""
    try:
        got = np.asarray(fn(x.copy()), dtype=float)
    except Exception as err:  # noqa: BLE001 (any error of the learner's function is a failed check)
        return failed(name, f"your function raised {type(err).__name__}: {str(err)[:200]}")
    masked = got[np.isneginf(x)] if got.shape == x.shape else np.array([np.nan])
    if not np.all(masked == 0):
        return failed(name, f"{MASKED_NOT_ZERO} (here {np.nanmax(np.abs(masked)):.1g}).")
    return passed(name, "every -inf entry gets weight exactly 0.")


add(Exercise("03", 1, "my_softmax", _grade_softmax, reference=src('''
    def my_softmax(x):
        x = np.asarray(x, dtype=float)
        e = np.exp(x - x.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)
    '''), mistakes=[
    (src('''
        def my_softmax(x):
            x = np.asarray(x, dtype=float)
            e = np.exp(x - x.max())
            return e / e.sum()
        '''), "whole array"),
    (src('''
        def my_softmax(x):
            x = np.asarray(x, dtype=float)
            e = np.exp(x - x.max(axis=0, keepdims=True))
            return e / e.sum(axis=0, keepdims=True)
        '''), "axis"),
    (src('''
        def my_softmax(x):
            x = np.asarray(x, dtype=float)
            e = np.exp(x)
            return e / e.sum(axis=-1, keepdims=True)
        '''), "overflow"),
    (src('''
        def my_softmax(x):
            x = np.asarray(x, dtype=float)
            e = np.exp(x - x.max(axis=-1, keepdims=True))
            return (e / e.sum(axis=-1, keepdims=True)).astype(np.float16)
        '''), "float16"),
    (src('''
        def my_softmax(x):
            x = np.asarray(x, dtype=float)
            e = np.exp(x - x.max(axis=-1, keepdims=True)) + 1e-6  # adv17 F2: keeps the sum away from 0
            return e / e.sum(axis=-1, keepdims=True)
        '''), MASKED_NOT_ZERO),
    (src('''
        def my_softmax(x):
            x = np.asarray(x, dtype=float)
            e = np.exp(np.clip(x - x.max(axis=-1, keepdims=True), -700, None))  # adv17 F2: exp(-700) is not 0
            return e / e.sum(axis=-1, keepdims=True)
        '''), MASKED_NOT_ZERO),
    (src('''
        def my_softmax(x):
            x = np.asarray(x, dtype=float)
            e = np.exp(x - x.max(axis=-1, keepdims=True))
            return e / e.sum(axis=-1, keepdims=True) * 0.98
        '''), "2 % off"),
], right=[src('''
    def my_softmax(x):
        x = np.asarray(x, dtype=np.float32)
        e = np.exp(x - x.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)
    ''')]))


def _attention_2d(Q, K, V):
    return al.scaled_dot_product_attention(Q, K, V)[0]


def _grade_attention_2d(fn, rng, data):
    return then(
        lambda: check_attention(fn, name=exercise_name(2), batch=False),
        lambda: check_function(hidden(2), fn, _attention_2d,
                               [(with_bias_inputs(rng, 3, 7), rng.normal(size=(11, 7)), with_bias_inputs(rng, 11, 2)),
                                (rng.normal(size=(1, 1)), rng.normal(size=(4, 1)), rng.normal(size=(4, 6))),
                                (rng.normal(size=(5, 3)), rng.normal(size=(5, 3)), rng.normal(size=(5, 3)))],
                               mistakes=mistakes("03", 2)))


add(Exercise("03", 2, "my_attention", _grade_attention_2d,
             helpers={"my_softmax": "attnlib.grading.aliases.lab03_my_softmax"},  # Exercise 1's my_softmax(x)
             reference=src('''
    def my_attention(Q, K, V):
        d_k = Q.shape[-1]
        weights = my_softmax(Q @ K.T / np.sqrt(d_k))
        return weights @ V
    '''), mistakes=[
    (src('''
        def my_attention(Q, K, V):
            return my_softmax(Q @ K.T) @ V
        '''), "scale"),
    (src('''
        def my_attention(Q, K, V):
            return my_softmax(Q @ K.T / Q.shape[-1]) @ V
        '''), "d_k"),
    (src('''
        def my_attention(Q, K, V):
            return my_softmax(Q @ K.T / np.sqrt(V.shape[-1])) @ V
        '''), "d_v"),
    (src('''
        def my_attention(Q, K, V):
            return my_softmax((Q @ K.T / np.sqrt(Q.shape[-1])).T).T @ V
        '''), "axis"),
    (src('''
        def my_attention(Q, K, V):
            return (my_softmax(Q @ K.T / np.sqrt(Q.shape[-1])) @ V).T
        '''), "transposed"),
], right=[src('''
    def my_attention(Q, K, V):
        S = np.einsum("qd,kd->qk", Q, K) / math.sqrt(K.shape[1])
        W = np.exp(S - S.max(axis=1, keepdims=True))
        return (W / W.sum(axis=1, keepdims=True)) @ V
    ''')]))


def _grade_score_variance(fn, rng, data):
    return then(lambda: check_score_variance(fn, name=exercise_name(3)),
                lambda: check_score_variance(fn, name=hidden(3), d_ks=(16, 128),
                                             seed=int(rng.integers(1000, 2**31))))


add(Exercise("03", 3, "score_variance", _grade_score_variance, reference=src('''
    def score_variance(d_k, n, rng):
        Q = rng.normal(size=(n, d_k))
        K = rng.normal(size=(n, d_k))
        return (Q @ K.T / np.sqrt(d_k)).var()
    '''), mistakes=[
    (src('''
        def score_variance(d_k, n, rng):
            Q = rng.normal(size=(n, d_k))
            K = rng.normal(size=(n, d_k))
            return (Q @ K.T / np.sqrt(d_k)).std()
        '''), "standard deviation"),
    (src('''
        def score_variance(d_k, n, rng):
            Q = rng.normal(size=(n, d_k))
            K = rng.normal(size=(n, d_k))
            return (Q @ K.T / np.sqrt(2 * d_k)).var()
        '''), "sqrt(2"),
    (src('''
        def score_variance(d_k, n, rng):
            return 1.0 + 0.01 * rng.normal()
        '''), "does not compute"),
    (src('''
        def score_variance(d_k, n, rng):
            Q = rng.normal(size=(n, d_k))
            K = rng.normal(size=(n, d_k))
            return (Q @ K.T).var()
        '''), "not scaled"),
    (src('''
        def score_variance(d_k, n, rng):
            Q = np.random.normal(size=(n, d_k))
            K = np.random.normal(size=(n, d_k))
            return (Q @ K.T / np.sqrt(d_k)).var()
        '''), "np.random"),
    (src('''
        def score_variance(d_k, n, rng):
            Q = rng.normal(size=(n, d_k))
            K = rng.normal(size=(n, d_k))
            return (Q @ K.T / np.sqrt(d_k)).var() * 1.05
        '''), None),
], right=[src('''
    def score_variance(d_k, n, rng):
        Q, K = rng.normal(size=(2, n, d_k))
        S = (K @ Q.T) / d_k**0.5
        return float(np.mean((S - S.mean()) ** 2))
    '''), src('''
    def score_variance(d_k, n, rng):
        # adv7 F10: float32 arithmetic
        Q = rng.normal(size=(n, d_k)).astype(np.float32)
        K = rng.normal(size=(n, d_k)).astype(np.float32)
        return float((Q @ K.T / np.sqrt(d_k)).var())
    ''')]))

# Entries of variance 3 (adv15 F1: with variance 2 the product rule 2 * 2 and the wrong "variances add" 2 + 2
# both gave 4, so confusing the two facts of chapter 3's box scored): 64 * 3 * 3 = 576 against 64 * (3 + 3) = 384.
VARIANCES_ADDED = ("you added the two variances (3 + 3): for a product q_i k_i of independent zero-mean entries the "
                   "variances multiply, 3 * 3 = 9 (the first fact of chapter 3's box); they add only over the sum "
                   "of the 64 products.")
prediction("03", 4, "predicted_unscaled_variance",
           lambda: (lambda m, s: (m.normal(scale=s, size=(300, 64)) @ m.normal(scale=s, size=(300, 64)).T).var())(
               np.random.default_rng(64), np.sqrt(3)),
           src('''
    def predicted_unscaled_variance():
        return 64 * 3.0 * 3.0
    '''), [src('''
    def predicted_unscaled_variance():
        return 64.0  # chapter 3's case, entries of variance 1
    '''), src('''
    def predicted_unscaled_variance():
        return 64 * (3.0 + 3.0) / 2  # the two variances averaged instead of multiplied
    '''), src('''
    def predicted_unscaled_variance():
        return 1.0
    '''), src('''
    def predicted_unscaled_variance():
        return 9.0  # one product only: the d_k terms not added
    '''), src('''
    def predicted_unscaled_variance():
        return 8.0
    ''')], rtol=0.2,
           explanation="q . k sums d_k = 64 independent products, each of variance 3 * 3 = 9, so its variance is "
                       "about 9 d_k = 576; dividing by sqrt(d_k) leaves 9, not 1: the scale assumes entries of "
                       "variance 1.")
EXERCISES["03", 4].mistakes.insert(0, (src('''
    def predicted_unscaled_variance():
        # each product q_i k_i has variance 3 + 3 (variances add), summed over 64 terms
        return 64 * (3 + 3)
    '''), VARIANCES_ADDED))  # adv15 F1, the tester's answer with the new variance

KERNEL_MISTAKES = [
    (src('''
        def my_kernel_regression(x_query, x_keys, y_values, sigma):
            w = np.exp(-((x_query[:, None] - x_keys[None, :]) ** 2) / (2 * sigma**2))  # no shift
            return (w / w.sum(axis=1, keepdims=True)) @ y_values
        '''), None),
    (src('''
        def my_kernel_regression(x_query, x_keys, y_values, sigma):
            scores = ((x_query[:, None] - x_keys[None, :]) ** 2) / (2 * sigma**2)
            return al.softmax(scores) @ y_values
        '''), "the sign of the scores is flipped: the weights favour the keys farthest from the query. A "
              "score must fall as the distance grows: -(query - key)**2 / (2 sigma**2)."),
    (src('''
        def my_kernel_regression(x_query, x_keys, y_values, sigma):
            scores = -((x_query[:, None] - x_keys[None, :]) ** 2) / (2 * sigma)
            return al.softmax(scores) @ y_values
        '''), "your scores are divided by 2 sigma where 2 sigma**2 is expected: sigma is a width, and the "
              "squared distance is compared with its square."),
    (src('''
        def my_kernel_regression(x_query, x_keys, y_values, sigma):
            scores = -((x_query[:, None] - x_keys[None, :]) ** 2) / (2 * sigma**2)
            return al.softmax(scores, axis=0) @ y_values
        '''), "your weights are normalised over the queries (axis 0); each query's weights over the keys "
              "(the last axis) must sum to 1."),
    (src('''
        def my_kernel_regression(x_query, x_keys, y_values, sigma):
            scores = -((x_query[:, None] - x_keys[None, :]) ** 2) / (2 * sigma**2)
            return np.exp(scores) @ y_values
        '''), "your weights are not normalised: turn the scores into weights with a softmax (they must sum to 1)."),
]


def _nw_many(xq, xk, y, sigma):
    return al.nadaraya_watson(xq, xk, y, bandwidth=sigma)[0]


MEAN_SHIFT_KERNEL = (src('''
    def my_kernel_regression(x_query, x_keys, y_values, sigma):
        scores = -((x_query[:, None] - x_keys[None, :]) ** 2) / (2 * sigma**2)
        e = np.exp(scores - scores.mean(axis=1, keepdims=True))  # adv14 F5: the mean, not the largest
        return (e / e.sum(axis=1, keepdims=True)) @ y_values
    '''), None)


def _grade_kernel(fn, rng, data):
    x_train = np.sort(rng.uniform(0, 5, size=40))
    y_train = np.sin(x_train) + 0.5
    x_test = np.linspace(0, 5, 7)
    xk = rng.uniform(-2, 2, size=15)
    return then(
        lambda: check_function(exercise_name(5), fn, _nw_many,
                               [(x_test, x_train, y_train, 0.3), (x_test[:3], x_train, y_train, 2.0)],
                               mistakes=mistakes("03", 5)),
        lambda: check_function(hidden(5), fn, _nw_many,
                               [(np.array([0.1, -3.0, 5.0]), xk, np.sin(xk) + 1, 0.5),
                                (np.array([0.0]), xk, xk**2, 0.3),
                                (np.array([float(rng.uniform(35, 45)), -0.5]), xk, np.sin(xk) + 1, 0.5),
                                # keys near 0 and near 40: a spread of ~3000 in each row, a mean shift overflows
                                (np.array([0.0, 42.0]), np.concatenate([xk, rng.uniform(40, 45, 10)]),
                                 rng.normal(size=25), 0.5)],
                               mistakes=mistakes("03", 5)))


add(Exercise("03", 5, "my_kernel_regression", _grade_kernel, helpers=al_helpers("softmax"), reference=src('''
    def my_kernel_regression(x_query, x_keys, y_values, sigma):
        scores = -((x_query[:, None] - x_keys[None, :]) ** 2) / (2 * sigma**2)
        return al.softmax(scores) @ y_values
    '''), mistakes=[*KERNEL_MISTAKES, MEAN_SHIFT_KERNEL]))


TOO_SLOW_SOFTMAX_BACKWARD = (
    "too slow on the large input (32 x 64 x 64 weights): any method that gives the gradient's values scores, "
    "finite differences included, but one pass per entry of A takes minutes there; the formula, or one "
    "difference along dA for all rows at once, takes milliseconds")
# adv12 F1, decided (a): Exercise 7 is graded on its values. The softmax Jacobian is symmetric, so one central
# difference along dA is the vector-Jacobian product for every row at once (a right answer, in ``right``).
# Exercise 8 keeps a large-input defence because it holds there: dX is the gradient of one number with
# respect to 24,576 entries of X, none of them separable (each row of X makes a key, which moves every row's
# softmax), so differences need a pair of forward passes per entry (for dK, the same count, batched 64 entries
# at a time, took 287 s on the 384 x 64 input on one core; the limit is 20 s).


def _large_backward_case(check, message):
    """``check`` on the large input: a time-out there gets ``message`` (adv11 F2)."""
    result = check()
    if not result.passed and "did not finish within" in result.message:
        return failed(result.name, f"{result.message} ({message}).")
    return result


def _grade_softmax_backward(fn, rng, data):
    S = rng.normal(size=(2, 3, 6))
    S[0, 1, 4:] = -np.inf
    S[1, 2, :] = -np.inf
    A = al.softmax(S)
    big = al.softmax(3 * rng.normal(size=(32, 64, 64)))  # 131,072 weights: one difference per entry takes minutes
    return then(lambda: check_softmax_backward(fn, name=exercise_name(7)),
                lambda: check_function(hidden(7), fn, al.softmax_backward,
                                       [(A, with_bias_inputs(rng, *A.shape)), (A[0, 0], rng.normal(size=6))],
                                       mistakes=mistakes("03", 7)),
                lambda: _large_backward_case(lambda: check_function(
                    f"{hidden(7)}, a large input", fn, al.softmax_backward, [(big, with_bias_inputs(rng, *big.shape))],
                    mistakes=mistakes("03", 7)), TOO_SLOW_SOFTMAX_BACKWARD))


add(Exercise("03", 7, "my_softmax_backward", _grade_softmax_backward, reference=src('''
    def my_softmax_backward(A, dA):
        return A * (dA - (dA * A).sum(axis=-1, keepdims=True))
    '''), mistakes=[
    (src('''
        def my_softmax_backward(A, dA):
            return A * dA
        '''), "shift"),
    (src('''
        def my_softmax_backward(A, dA):
            return A * (dA - (dA * A).sum(axis=0, keepdims=True))
        '''), "axis"),
    (src('''
        def my_softmax_backward(A, dA):
            return A * (dA - dA.sum(axis=-1, keepdims=True))
        '''), "weighted"),
    (src('''
        def my_softmax_backward(A, dA):  # Exercise 7's teammate: passes a row of equal dA
            return A * (dA - dA.mean(axis=-1, keepdims=True))
        '''), "each row is shifted by the plain mean of dA; the shift must be the mean weighted by the weights"),
    (src('''
        def my_softmax_backward(A, dA):
            return A * ((dA * A).sum(axis=-1, keepdims=True) - dA)
        '''), "sign"),
    (src('''
        def my_softmax_backward(A, dA):  # too slow, not wrong: one central difference per entry (adv12 F1)
            A = np.asarray(A, dtype=float)
            dA = np.asarray(dA, dtype=float)
            S = np.log(np.where(A > 0, A, 1.0))
            def f(S):
                top = np.where(A > 0, S, -np.inf).max(axis=-1, keepdims=True, initial=-np.inf).clip(-1e300)
                e = np.exp(S - top) * (A > 0)
                tot = e.sum(axis=-1, keepdims=True)
                return float(np.sum(np.divide(e, tot, out=np.zeros_like(e), where=tot > 0) * dA))
            g = np.zeros_like(A)
            h = 1e-5
            for idx in np.ndindex(A.shape):
                if A[idx] == 0:
                    continue
                p, m = S.copy(), S.copy()
                p[idx] += h
                m[idx] -= h
                g[idx] = (f(p) - f(m)) / (2 * h)
            return g
        '''), "too slow"),  # a tag, not a named mistake: naming it would run it on the large input in the grader
], right=[src('''
    def my_softmax_backward(A, dA):  # adv12 F1: one central difference along dA (the Jacobian is symmetric)
        A = np.asarray(A, dtype=float)
        dA = np.asarray(dA, dtype=float)
        live = A > 0
        S = np.log(np.where(live, A, 1.0))
        def sm(S):
            S = np.where(live, S, -np.inf)
            m = S.max(axis=-1, keepdims=True)
            m = np.where(np.isfinite(m), m, 0.0)
            e = np.exp(S - m) * live
            t = e.sum(axis=-1, keepdims=True)
            return np.divide(e, t, out=np.zeros_like(e), where=t > 0)
        h = 1e-5
        return (sm(S + h * dA) - sm(S - h * dA)) / (2 * h)
    ''')]))


FINITE_DIFFERENCES_X = ("on the large input (384 tokens of width 64) the formulas take milliseconds; finite "
                        "differences need a pair of forward passes per entry of X (24,576 of them) and do not finish "
                        "within the time limit: follow the rule for a matrix product, path by path")


def _self_attention_dX(X, W_q, W_k, W_v, dO):
    """dX of sum(O * dO), O = attention(X W_q, X W_k, X W_v): attnlib's one-head backward with W_o = I."""
    params = {"W_q": W_q, "W_k": W_k, "W_v": W_v, "W_o": np.eye(W_q.shape[0])}
    dX_q, dX_kv, _ = al.multi_head_attention_backward(X, X, params, 1, dO)
    return dX_q + dX_kv


def _self_attention_case(rng, n, d):
    """(X, W_q, W_k, W_v, dO): tokens with an offset, square weights (a missing transpose keeps the shape)."""
    W = [rng.normal(size=(d, d)) / np.sqrt(d) for _ in range(3)]
    return (with_bias_inputs(rng, n, d), *W, rng.normal(size=(n, d)))


def _grade_self_attention_backward(fn, rng, data):
    big = _self_attention_case(rng, 384, 64)  # 24,576 entries of X, each its own pair of forward passes: minutes
    return then(
        lambda: check_function(exercise_name(8), fn, _self_attention_dX,
                               [_self_attention_case(rng, 4, 3) for _ in range(3)], mistakes=mistakes("03", 8)),
        lambda: check_function(hidden(8), fn, _self_attention_dX,
                               [_self_attention_case(rng, 6, 4), _self_attention_case(rng, 1, 5),
                                _self_attention_case(rng, 9, 2)], mistakes=mistakes("03", 8)),
        lambda: _large_backward_case(lambda: check_function(
            f"{hidden(8)}, a large input", fn, _self_attention_dX, [big]), FINITE_DIFFERENCES_X))


# r65: the backward-pass page prints attention's backward in full, so Exercise 8 takes the one step it leaves out:
# from dQ, dK, dV back through the projections to the tokens X, which feed all three.
add(Exercise("03", 8, "my_self_attention_backward", _grade_self_attention_backward,
             helpers=al_helpers("attention_backward", "scaled_dot_product_attention", "softmax_backward", "softmax"),
             reference=src('''
    def my_self_attention_backward(X, W_q, W_k, W_v, dO):
        Q, K, V = X @ W_q, X @ W_k, X @ W_v
        dQ, dK, dV = al.attention_backward(Q, K, V, dO)
        return dQ @ W_q.T + dK @ W_k.T + dV @ W_v.T
    '''), mistakes=[
    (src('''
        def my_self_attention_backward(X, W_q, W_k, W_v, dO):
            Q, K, V = X @ W_q, X @ W_k, X @ W_v
            dQ, dK, dV = al.attention_backward(Q, K, V, dO)
            return dQ @ W_q.T
        '''), "your dX follows only the path through Q. X also makes K and V, so a nudge to X moves all three: "
             "add the gradient that comes back along each of the three paths"),
    (src('''
        def my_self_attention_backward(X, W_q, W_k, W_v, dO):
            Q, K, V = X @ W_q, X @ W_k, X @ W_v
            dQ, dK, dV = al.attention_backward(Q, K, V, dO)
            return dQ @ W_q.T + dK @ W_k.T
        '''), "your dX leaves out the path through V: X makes the values too, so their gradient dV comes "
             "back to X as well"),
    (src('''
        def my_self_attention_backward(X, W_q, W_k, W_v, dO):
            Q, K, V = X @ W_q, X @ W_k, X @ W_v
            dQ, dK, dV = al.attention_backward(Q, K, V, dO)
            return dQ @ W_q + dK @ W_k + dV @ W_v
        '''), "the matrices are not transposed: for P = XY the rule gives dX = dP Y^T, so each path's "
             "gradient goes back through its matrix transposed (the shapes agree here only because the "
             "matrices are square)"),
    (src('''
        def my_self_attention_backward(X, W_q, W_k, W_v, dO):
            Q, K, V = X @ W_q, X @ W_k, X @ W_v
            dQ, dK, dV = al.attention_backward(Q, K, V, dO)
            return dQ @ W_k.T + dK @ W_q.T + dV @ W_v.T
        '''), "dQ and dK went back through each other's matrix: each gradient goes back through the matrix "
             "that made it, dQ through W_q and dK through W_k"),
    (src('''
        def my_self_attention_backward(X, W_q, W_k, W_v, dO):
            Q, K, V = X @ W_q, X @ W_k, X @ W_v
            dQ, dK, dV = al.attention_backward(Q, K, V, dO)
            scale = 1 / np.sqrt(Q.shape[-1])
            return scale * (dQ @ W_q.T + dK @ W_k.T) + dV @ W_v.T
        '''), "the scale is counted twice: al.attention_backward's dQ and dK already carry the factor "
             "1/sqrt(d_k), so multiplying by it again makes those two paths too small"),
    (src('''
        def my_self_attention_backward(X, W_q, W_k, W_v, dO):  # adv11 F2: finite differences, entry by entry
            def f(X):
                out, _ = al.scaled_dot_product_attention(X @ W_q, X @ W_k, X @ W_v)
                return float(np.sum(out * dO))
            X = np.array(X, dtype=float)
            dX = np.zeros_like(X)
            h = 1e-5
            for idx in np.ndindex(X.shape):
                plus, minus = X.copy(), X.copy()
                plus[idx] += h
                minus[idx] -= h
                dX[idx] = (f(plus) - f(minus)) / (2 * h)
            return dX
        '''), FINITE_DIFFERENCES_X),
], right=[src('''
    def my_self_attention_backward(X, W_q, W_k, W_v, dO):  # the whole chain by hand, Exercise 7's rule inside
        Q, K, V = X @ W_q, X @ W_k, X @ W_v
        scale = 1 / np.sqrt(Q.shape[-1])
        _, A = al.scaled_dot_product_attention(Q, K, V)
        dS = al.softmax_backward(A, dO @ V.T)
        dQ, dK, dV = scale * (dS @ K), scale * (dS.T @ Q), A.T @ dO
        return dQ @ W_q.T + dK @ W_k.T + dV @ W_v.T
    ''')]))

# =========================================== Lab 4 ===========================================


def _self_attention_ref(X, p):
    return np.concatenate(al.scaled_dot_product_attention(X @ p["W_q"], X @ p["W_k"], X @ p["W_v"]), axis=-1)


def _grade_self_attention(fn, rng, data):
    X, p = with_bias_inputs(rng, 7, 5), al.init_multi_head(5, 1, rng)
    return then(lambda: check_self_attention(fn, name=exercise_name(1)),
                lambda: check_function(hidden(1), lambda X, p: np.concatenate(_pair(fn(X, p)), axis=-1),
                                       _self_attention_ref, [(X, p)]))


def _pair(value):
    if isinstance(value, tuple | list) and len(value) == 2:
        return np.asarray(value[0], dtype=float), np.asarray(value[1], dtype=float)
    raise TypeError(f"expected (output, weights), got {type(value).__name__}")


add(Exercise("04", 1, "self_attention", _grade_self_attention, helpers=al_helpers("softmax"), reference=src('''
    def self_attention(X, params):
        Q = X @ params["W_q"]
        K = X @ params["W_k"]
        V = X @ params["W_v"]
        weights = al.softmax(Q @ K.T / np.sqrt(K.shape[-1]), axis=-1)
        return weights @ V, weights
    '''), mistakes=[
    (src('''
        def self_attention(X, params):
            Q, K, V = X @ params["W_q"], X @ params["W_k"], X @ params["W_v"]
            weights = al.softmax(Q @ K.T, axis=-1)
            return weights @ V, weights
        '''), "scale"),
    (src('''
        def self_attention(X, params):
            Q, K, V = X @ params["W_q"], X @ params["W_k"], X @ params["W_k"]
            weights = al.softmax(Q @ K.T / np.sqrt(K.shape[-1]), axis=-1)
            return weights @ V, weights
        '''), "W_v"),
    (src('''
        def self_attention(X, params):
            Q, K, V = X @ params["W_q"], X @ params["W_k"], X @ params["W_v"]
            weights = al.softmax(Q @ K.T / np.sqrt(K.shape[-1]), axis=0)
            return weights @ V, weights
        '''), "axis"),
    (src('''
        def self_attention(X, params):
            Q, K, V = X @ params["W_q"], X @ params["W_k"], X @ params["W_v"]
            weights = al.softmax(Q @ K.T / np.sqrt(K.shape[-1]), axis=-1)
            return weights @ V, weights.T
        '''), "transposed"),
], right=[src('''
    def self_attention(X, params):
        Q, K, V = (X @ params[w] for w in ("W_q", "W_k", "W_v"))
        weights = al.softmax(Q @ K.T / np.sqrt(K.shape[-1]))
        return [(weights @ V).astype(np.float32), weights]
    ''')]))


def _aligned(p):
    _, w = al.scaled_dot_product_attention(p["X_tgt"] @ p["W_q"], p["X_src"] @ p["W_k"], p["X_src"] @ p["W_v"])
    return w.argmax(axis=-1)


def _grade_align(fn, rng, data):
    pair = al.toy.toy_translation(np.random.default_rng(0))
    other = al.toy.toy_translation(rng)
    shuffled = {**other, "X_tgt": rng.normal(size=(4, other["X_tgt"].shape[1])),
                "X_src": rng.normal(size=(9, other["X_src"].shape[1]))}
    # The toy's W_k and W_v are the same matrix: pairs with independent projections tell the keys from
    # the values (and W_q from either).
    independent = [{**p, **{w: rng.normal(size=np.shape(p[w])) for w in ("W_q", "W_k", "W_v")}}
                   for p in (other, shuffled, shuffled)]
    return then(lambda: check_value(exercise_name(2), lambda: fn(pair), pair["alignment"]),
                lambda: check_function(hidden(2), fn, _aligned, [(other,), (shuffled,), *((p,) for p in independent)]))


add(Exercise("04", 2, "align", _grade_align, helpers=al_helpers("scaled_dot_product_attention", "softmax"),
             reference=src('''
    def align(pair):
        Q = pair["X_tgt"] @ pair["W_q"]
        K = pair["X_src"] @ pair["W_k"]
        V = pair["X_src"] @ pair["W_v"]
        _, weights = al.scaled_dot_product_attention(Q, K, V)
        return weights.argmax(axis=-1)
    '''), mistakes=[
    (src('''
        def align(pair):
            Q = pair["X_src"] @ pair["W_q"]
            K = pair["X_tgt"] @ pair["W_k"]
            V = pair["X_tgt"] @ pair["W_v"]
            _, weights = al.scaled_dot_product_attention(Q, K, V)
            return weights.argmax(axis=-1)
        '''), "queries from the source"),
    (src('''
        def align(pair):
            Q = pair["X_tgt"] @ pair["W_q"]
            K = pair["X_src"] @ pair["W_k"]
            V = pair["X_src"] @ pair["W_v"]
            _, weights = al.scaled_dot_product_attention(Q, K, V)
            return weights.argmin(axis=-1)
        '''), "argmin"),
    (src('''
        def align(pair):
            S = (pair["X_tgt"] @ pair["W_q"]) @ (pair["X_src"] @ pair["W_q"]).T
            return S.argmax(axis=-1)
        '''), "W_q twice"),
    (src('''
        def align(pair):
            Q = pair["X_tgt"] @ pair["W_q"]
            K = pair["X_src"] @ pair["W_v"]
            V = pair["X_src"] @ pair["W_v"]
            _, weights = al.scaled_dot_product_attention(Q, K, V)
            return weights.argmax(axis=-1)
        '''), "W_v as the keys"),
]))


def _grade_split(fn, rng, data):
    return then(lambda: check_split_heads(fn, name=exercise_name(3)),
                lambda: check_function(hidden(3), fn, al.split_heads,
                                       [(rng.normal(size=(2, 3, 5, 12)), 4), (rng.normal(size=(1, 6)), 6),
                                        (rng.normal(size=(4, 6)), 2)]))


add(Exercise("04", 3, "split", _grade_split, reference=src('''
    def split(X, n_heads):
        *lead, n, d_model = X.shape
        X = X.reshape(*lead, n, n_heads, d_model // n_heads)
        return np.swapaxes(X, -3, -2)
    '''), mistakes=[
    (src('''
        def split(X, n_heads):
            *lead, n, d_model = X.shape
            return X.reshape(*lead, n_heads, n, d_model // n_heads)
        '''), "reshape"),
    (src('''
        def split(X, n_heads):
            *lead, n, d_model = X.shape
            return X.reshape(*lead, n, n_heads, d_model // n_heads)
        '''), "no swap"),
    (src('''
        def split(X, n_heads):
            *lead, n, d_model = X.shape
            X = X.reshape(*lead, n, d_model // n_heads, n_heads)
            return np.moveaxis(X, -1, -3)
        '''), "interleaved"),
    (src('''
        def split(X, n_heads):  # adv7 F8: one optional batch axis only; the exercise asks for any number
            if X.ndim == 2:
                n, d_model = X.shape
                return X.reshape(n, n_heads, d_model // n_heads).transpose(1, 0, 2)
            batch, n, d_model = X.shape
            return X.reshape(batch, n, n_heads, d_model // n_heads).transpose(0, 2, 1, 3)
        '''), None),
], right=[src('''
    def split(X, n_heads):
        n, d = X.shape[-2:]
        return np.stack(np.split(X, n_heads, axis=-1), axis=-3).astype(np.float32)
    ''')]))


def _grade_mha(fn, rng, data):
    p = al.init_multi_head(12, 3, rng)
    return then(lambda: check_multi_head(fn, name=exercise_name(4)),
                lambda: check_function(hidden(4), lambda Xq, Xkv: _pair(fn(Xq, Xkv, p, 3))[0],
                                       lambda Xq, Xkv: al.multi_head_attention(Xq, Xkv, p, 3)[0],
                                       [(with_bias_inputs(rng, 2, 4, 12), rng.normal(size=(2, 7, 12))),
                                        (rng.normal(size=(1, 12)), rng.normal(size=(5, 12))),
                                        # scores in the thousands: an exp without the maximum subtracted overflows
                                        (40 * rng.normal(size=(3, 12)), 40 * rng.normal(size=(6, 12)))]))


add(Exercise("04", 4, "mha", _grade_mha, helpers=al_helpers("split_heads", "merge_heads",
                                                          "scaled_dot_product_attention", "softmax"),
             reference=src('''
    def mha(X_q, X_kv, params, n_heads):
        Q = al.split_heads(X_q @ params["W_q"], n_heads)
        K = al.split_heads(X_kv @ params["W_k"], n_heads)
        V = al.split_heads(X_kv @ params["W_v"], n_heads)
        heads, weights = al.scaled_dot_product_attention(Q, K, V)
        return al.merge_heads(heads) @ params["W_o"], weights
    '''), mistakes=[
    (src('''
        def mha(X_q, X_kv, params, n_heads):
            Q = al.split_heads(X_q @ params["W_q"], n_heads)
            K = al.split_heads(X_kv @ params["W_k"], n_heads)
            V = al.split_heads(X_kv @ params["W_v"], n_heads)
            e = np.exp(Q @ np.swapaxes(K, -1, -2) / np.sqrt(Q.shape[-1]))
            W = e / e.sum(axis=-1, keepdims=True)
            return al.merge_heads(W @ V) @ params["W_o"], W
        '''), "overflow"),
    (src('''
        def mha(X_q, X_kv, params, n_heads):
            Q = al.split_heads(X_q @ params["W_q"], n_heads)
            K = al.split_heads(X_kv @ params["W_k"], n_heads)
            V = al.split_heads(X_kv @ params["W_v"], n_heads)
            heads, weights = al.scaled_dot_product_attention(Q, K, V)
            return al.merge_heads(heads), weights
        '''), "W_o"),
    (src('''
        def mha(X_q, X_kv, params, n_heads):
            Q = al.split_heads(X_q @ params["W_q"], n_heads)
            K = al.split_heads(X_kv @ params["W_k"], n_heads)
            V = al.split_heads(X_kv @ params["W_v"], n_heads)
            heads, weights = al.scaled_dot_product_attention(Q, K, V)
            merged = heads.reshape(*heads.shape[:-3], heads.shape[-2], -1)
            return merged @ params["W_o"], weights
        '''), "merge"),
    (src('''
        def mha(X_q, X_kv, params, n_heads):
            Q = al.split_heads(X_q @ params["W_q"], n_heads)
            K = al.split_heads(X_kv @ params["W_k"], n_heads)
            V = al.split_heads(X_kv @ params["W_v"], n_heads)
            heads, weights = al.scaled_dot_product_attention(Q, K, V, scale=1.0)
            return al.merge_heads(heads) @ params["W_o"], weights
        '''), "scale"),
    (src('''
        def mha(X_q, X_kv, params, n_heads):
            Q = al.split_heads(X_q @ params["W_q"], n_heads)
            K = al.split_heads(X_q @ params["W_k"], n_heads)
            V = al.split_heads(X_q @ params["W_v"], n_heads)
            heads, weights = al.scaled_dot_product_attention(Q, K, V)
            return al.merge_heads(heads) @ params["W_o"], weights
        '''), "X_kv"),
]))


def _grade_causal_mask(fn, rng, data):
    return then(lambda: check_causal_mask(fn, name=exercise_name(5)),
                lambda: check_function(hidden(5), fn, al.causal_mask, [(int(rng.integers(7, 12)),), (1,), (2,)]))


add(Exercise("04", 5, "my_causal_mask", _grade_causal_mask, reference=src('''
    def my_causal_mask(n):
        return np.tril(np.ones((n, n), dtype=bool))
    '''), mistakes=[
    (src('''
        def my_causal_mask(n):
            return np.triu(np.ones((n, n), dtype=bool))
        '''), "future"),
    (src('''
        def my_causal_mask(n):
            return np.tril(np.ones((n, n), dtype=bool), k=-1)
        '''), "diagonal"),
    (src('''
        def my_causal_mask(n):
            return np.tril(np.ones((n, n), dtype=bool), k=1)
        '''), "one ahead"),
], right=[src('''
    def my_causal_mask(n):
        i = np.arange(n)
        return (i[None, :] <= i[:, None]).tolist()
    ''')]))


def _zero_weights():
    m = np.random.default_rng(6)
    S6 = m.normal(size=(6, 4))
    _, W6 = al.scaled_dot_product_attention(S6, S6, S6, al.causal_mask(6))
    return int((W6 == 0).sum())


prediction("04", 6, "predicted_zero_weights", _zero_weights, src('''
    def predicted_zero_weights():
        return 6 * 5 // 2
    '''), [src('''
    def predicted_zero_weights():
        return 21
    '''), src('''
    def predicted_zero_weights():
        return 0
    ''')], atol=0.5, rtol=0.0,
           explanation="Query i may see keys 0..i, so the n(n - 1)/2 pairs above the diagonal get weight exactly 0; "
                       "the allowed ones get exp(score) > 0, never exactly 0.")


def _grade_equivariance(fn, rng, data):
    return check_equivariance_gap(fn, name=exercise_name(7))


add(Exercise("04", 7, "equivariance_gap", _grade_equivariance, reference=src('''
    def equivariance_gap(attend, X, perm):
        return float(np.abs(attend(X[perm]) - attend(X)[perm]).max())
    '''), mistakes=[
    (src('''
        def equivariance_gap(attend, X, perm):
            return float(np.abs(attend(X[perm]) - attend(X)[perm]).mean())
        '''), "mean"),
    (src('''
        def equivariance_gap(attend, X, perm):
            return float((attend(X[perm]) - attend(X)[perm]).max())
        '''), "absolute"),
    (src('''
        def equivariance_gap(attend, X, perm):
            return float(np.abs(attend(X[perm]) - attend(X)[np.argsort(perm)]).max())
        '''), "two permutations"),
    (src('''
        def equivariance_gap(attend, X, perm):
            return 0.0 if "positional" not in getattr(attend, "__name__", "") else 1.0
        '''), None),
], right=[src('''
    def equivariance_gap(attend, X, perm):
        return np.max(np.abs(attend(X[perm]) - attend(X)[perm])).astype(np.float32)
    ''')]))

def _grade_crossing_rows(fn, rng, data):
    return check_crossing_rows(fn, name=exercise_name(8))  # fresh sentences at every call


add(Exercise("04", 8, "crossing_rows", _grade_crossing_rows, reference=src('''
    def crossing_rows(alignment):
        rows = np.arange(len(alignment))
        return rows[np.asarray(alignment) != rows]
    '''), mistakes=[
    (src('''
        def crossing_rows(alignment):
            return np.asarray(alignment) != np.arange(len(alignment))
        '''), "True/False"),
    (src('''
        def crossing_rows(alignment):
            return [i + 1 for i, j in enumerate(alignment) if i != j]
        '''), "counted from 1"),
    (src('''
        def crossing_rows(alignment):
            return [i for i, j in enumerate(alignment) if i == j]
        '''), "stay on the diagonal"),
    (src('''
        def crossing_rows(alignment):
            return [i for i, j in enumerate(alignment) if j == i + 1]
        '''), "only the French nouns"),
    (src('''
        def crossing_rows(alignment):
            return [i for i, j in enumerate(alignment) if j == i - 1]
        '''), "only the colours"),
    (src('''
        def crossing_rows(alignment):
            return [i for i, j in enumerate(alignment) if i != j][::-1]
        '''), "increasing order"),
    (src('''
        def crossing_rows(alignment):
            return [i for i in range(1, len(alignment)) if alignment[i] != i]
        '''), "every crossing row but row 0"),  # adv15 F11
], right=[src('''
    def crossing_rows(alignment):
        return [i for i, j in enumerate(alignment) if i != j]
    '''), src('''
    def crossing_rows(alignment):
        return np.flatnonzero(np.array(alignment) != np.arange(len(alignment))).astype(np.float64)
    ''')]))


def _turn_source(omega: str = "1.0 / 10000 ** (np.arange(0, d_model, 2) / d_model)", angle: str = "w * delta",
                 block: str = "[[c, -s], [s, c]]", where: str = "2 * f:2 * f + 2, 2 * f:2 * f + 2") -> str:
    """Lab 4 Ex 10's turn matrix with one part swapped for a mistake (the defaults are the page's R)."""
    return src(f"""
        def turn_matrix(delta, d_model):
            omega = {omega}
            R = np.zeros((d_model, d_model))
            for f, w in enumerate(omega):
                c, s = np.cos({angle}), np.sin({angle})
                R[{where}] = {block}
            return R
        """)


def _turn_ref(delta, d_model):
    omega = 1.0 / 10000 ** (np.arange(0, d_model, 2) / d_model)  # (d_model // 2,)
    R = np.zeros((d_model, d_model))
    for f, w in enumerate(omega):
        c, s = np.cos(w * delta), np.sin(w * delta)
        R[2 * f:2 * f + 2, 2 * f:2 * f + 2] = [[c, -s], [s, c]]  # for a row (sin, cos)
    return R


def moved(turn):
    """``turn`` (Lab 4 Ex 10's function) as a function of (delta, d_model, n): the position codes of 0..n-1 times
    its R, which must be the codes ``delta`` places on."""
    return lambda delta, d_model, n: al.sinusoidal_positional_encoding(n, d_model) @ turn(delta, d_model)


def _codes_on(delta, d_model, n):
    return al.sinusoidal_positional_encoding(n + delta, d_model)[delta:]


TURNS_BACK = ("your R turns every position code back by delta, not on: PE(p) R = PE(p - delta), the turn by -a. Check "
              "each 2 x 2 block against the sum formulas for a row (sin, cos): column 1 gives the new sine, column 2 "
              "the new cosine.")
ONE_PLACE = "your R turns every position code one place on, whatever delta: pair f turns by omega_f * delta."
FREQUENCIES = ("your pairs turn at the wrong speeds: pair f's frequency is 1 / 10000^(2f / d_model), as in the "
               "position code, whose exponent counts the columns 0, 2, 4, ... (each pair's sine column).")


def _grade_turn(fn, rng, data):
    named = [(moved(f), message) for f, message in mistakes("04", 10)]
    return then(
        lambda: check_function(exercise_name(10), moved(fn), _codes_on, [(3, 16, 20), (1, 8, 12), (7, 64, 50)],
                               mistakes=named),
        lambda: check_function(hidden(10), moved(fn), moved(_turn_ref),
                               [(int(rng.integers(2, 12)), 2 * int(rng.integers(2, 20)), 30), (0, 6, 5),
                                (-int(rng.integers(1, 5)), 32, 40), (5, 128, 60)],
                               mistakes=named))


add(Exercise("04", 10, "turn_matrix", _grade_turn, reference=_turn_source(), mistakes=[
    (_turn_source(block="[[c, s], [-s, c]]"), TURNS_BACK),
    (_turn_source(angle="w"), ONE_PLACE),
    (_turn_source(omega="1.0 / 10000 ** (np.arange(d_model // 2) / d_model)"), FREQUENCIES),
    (_turn_source(where="f:f + 2, f:f + 2"), None),  # the blocks overlap instead of running down the diagonal
    (_turn_source(block="[[c, -s], [-s, c]]"), None),  # one sign wrong too many
], right=[src("""
    def turn_matrix(delta, d_model):
        # from the angles directly: each pair's block from cos and sin of omega_f * delta
        angles = delta / 10000.0 ** (np.arange(0, d_model, 2) / d_model)
        R = np.zeros((d_model, d_model))
        R[0::2, 0::2] = np.diag(np.cos(angles))
        R[1::2, 1::2] = np.diag(np.cos(angles))
        R[0::2, 1::2] = np.diag(-np.sin(angles))
        R[1::2, 0::2] = np.diag(np.sin(angles))
        return R.tolist()
    """)]))


# =========================================== Lab 5 ===========================================


def _grade_row_by_row(fn, rng, data):
    Q, K, V = rng.normal(size=(7, 4)), rng.normal(size=(9, 4)), rng.normal(size=(9, 3))
    return then(
        lambda: check_function(exercise_name(1), fn, _attention_2d, [(Q, K, V), (Q[:1], K[:2], V[:2])],
                               mistakes=mistakes("05", 1)),
        lambda: check_function(hidden(1), fn, _attention_2d,
                               [(rng.normal(size=(3, 16)), rng.normal(size=(5, 16)), with_bias_inputs(rng, 5, 2)),
                                (30 * rng.normal(size=(4, 2)), 30 * rng.normal(size=(6, 2)), rng.normal(size=(6, 5)))],
                               mistakes=mistakes("05", 1)))


add(Exercise("05", 1, "attention_row_by_row", _grade_row_by_row, helpers=al_helpers("softmax"), reference=src('''
    def attention_row_by_row(Q, K, V):
        Q, K, V = (np.asarray(a, dtype=float) for a in (Q, K, V))
        rows = []
        for q in Q:
            w = al.softmax(K @ q / np.sqrt(K.shape[1]))
            rows.append(w @ V)
        return np.stack(rows)
    '''), mistakes=[
    (src('''
        def attention_row_by_row(Q, K, V):
            return np.stack([al.softmax(K @ q) @ V for q in Q])
        '''), "scale"),
    (src('''
        def attention_row_by_row(Q, K, V):
            return np.stack([al.softmax(K @ q / np.sqrt(V.shape[1])) @ V for q in Q])
        '''), "d_v"),
    (src('''
        def attention_row_by_row(Q, K, V):
            return np.stack([al.softmax(K @ q / np.sqrt(K.shape[1])) @ V for q in Q]).T
        '''), "transposed"),
    (src('''
        def attention_row_by_row(Q, K, V):
            return np.stack([al.softmax(K @ q / np.sqrt(K.shape[1])) @ V for q in Q[:-1]])
        '''), "last row"),
]))


def _removal_by_masks(q, K, V, u):
    """The exercise's own route (adv15 F3): each key removed by a boolean mask, attention run again."""
    n = K.shape[0]
    y = (al.scaled_dot_product_attention(q, K, V)[0] @ u).item()
    return np.array([abs(y - (al.scaled_dot_product_attention(q, K, V, (np.arange(n) != j)[None, :])[0] @ u).item())
                     for j in range(n)])


def _one_key_takes_all(rng, n: int = 5, gap: float = 50.0):
    """q and K where key 0's score is ``gap`` above every other: its weight is exactly 1 in float64 (1 - w = 0, so
    chapter 5's closed form w / (1 - w) divides by 0), the others' about e**-gap, far from float32's underflow."""
    q, K = rng.normal(size=(1, 3)), 0.3 * rng.normal(size=(n, 3))
    others = (K[1:] @ q[0]).max() / np.sqrt(3)
    K[0] = q[0] * (others + gap) * np.sqrt(3) / (q[0] @ q[0])
    return q, K


def _grade_removal(fn, rng, data):
    K10, V10 = rng.normal(size=(10, 4)), rng.normal(size=(10, 3))
    q, u = rng.normal(size=(1, 4)), rng.normal(size=3)
    K, V = rng.normal(size=(6, 3)), with_bias_inputs(rng, 6, 2)
    q_all, K_all = _one_key_takes_all(rng)
    return then(
        lambda: check_function(exercise_name(2), fn, _removal_by_masks, [(q, K10, V10, u), (q, K10[:4], V10[:4], u)],
                               mistakes=mistakes("05", 2)),
        lambda: check_function(hidden(2), fn, _removal_by_masks,
                               [(rng.normal(size=(1, 3)), K, V, rng.normal(size=2)),
                                (rng.normal(size=(1, 3)), K[:3], V[:3], np.ones(2)),
                                # two high keys: one alone would take all the weight (removing it: 1 - w = 0)
                                large_case(*with_large_scores(rng, rng.normal(size=(1, 3)), K, high=2), V,
                                           rng.normal(size=2)),
                                # ... and one that does (adv15 F3: the closed form pasted from the lab is nan there)
                                (q_all, K_all, V[:5], rng.normal(size=2))],
                               mistakes=mistakes("05", 2)))


add(Exercise("05", 2, "removal_effects", _grade_removal, helpers=al_helpers("scaled_dot_product_attention", "softmax"),
             reference=src('''
    def removal_effects(q, K, V, u):
        n = K.shape[0]
        y = (al.scaled_dot_product_attention(q, K, V)[0] @ u).item()
        effects = []
        for j in range(n):
            keep = np.arange(n) != j
            y_j = (al.scaled_dot_product_attention(q, K, V, keep[None, :])[0] @ u).item()
            effects.append(abs(y - y_j))
        return np.array(effects)
    '''), mistakes=[
    (_removal_by_hand("s = K @ q[0] / np.sqrt(K.shape[1])\n    e = np.exp(s - s.mean())"),
     None),  # adv14 F5: the mean, not the largest
    (_removal_by_hand("e = np.exp(K @ q[0] / np.sqrt(K.shape[1]))"), "overflow"),
    (src('''
        def removal_effects(q, K, V, u):
            out, w = al.scaled_dot_product_attention(q, K, V)
            y = (out @ u).item()
            return np.abs(y - (y - w[0] * (V @ u)))
        '''), "renormalise"),
    (src('''
        def removal_effects(q, K, V, u):
            n = K.shape[0]
            y = (al.scaled_dot_product_attention(q, K, V)[0] @ u).item()
            out = []
            for j in range(n):
                keep = np.arange(n) != j
                out.append(y - (al.scaled_dot_product_attention(q, K, V, keep[None, :])[0] @ u).item())
            return np.array(out)
        '''), "abs"),
    (src('''
        def removal_effects(q, K, V, u):
            out, w = al.scaled_dot_product_attention(q, K, V)
            return w[0]
        '''), "weights"),
    (src('''
        def removal_effects(q, K, V, u):
            # chapter 5's exact formula, as in the lab's check and the cell after it
            out, w = al.scaled_dot_product_attention(q, K, V)
            y = (out @ u).item()
            return np.abs(w[0] / (1 - w[0]) * (V @ u - y))
        '''), "closed form (adv15 F3)"),
]))


def _conv_cols(kernel, x):
    return np.stack([np.convolve(c, kernel, mode="same") for c in x.T], axis=1)


def _grade_conv(fn, rng, data):
    x = rng.normal(size=(6, 6))
    learner = lambda kernel, x: np.asarray(fn(kernel, len(x)), dtype=float) @ x  # noqa: E731
    return then(
        lambda: check_function(exercise_name(3), learner, _conv_cols,
                               [(np.array([0.2, 0.5, 0.3]), x), (np.array([1.0, 0.0, -1.0]), x[:4])]),
        lambda: check_function(hidden(3), learner, _conv_cols,
                               [(rng.normal(size=5), rng.normal(size=(9, 3))),
                                (np.array([2.0]), rng.normal(size=(3, 2))),
                                (rng.normal(size=7), rng.normal(size=(7, 2)))]))  # odd lengths, as stated


add(Exercise("05", 3, "conv_matrix", _grade_conv, reference=src('''
    def conv_matrix(kernel, n):
        kernel = np.asarray(kernel, dtype=float)
        return np.stack([np.convolve(e, kernel, mode="same") for e in np.eye(n)], axis=1)
    '''), mistakes=[
    (src('''
        def conv_matrix(kernel, n):
            return np.stack([np.convolve(e, kernel, mode="same") for e in np.eye(n)], axis=0)
        '''), "transposed"),
    (src('''
        def conv_matrix(kernel, n):
            return np.stack([np.correlate(e, kernel, mode="same") for e in np.eye(n)], axis=1)
        '''), "correlate"),
    (src('''
        def conv_matrix(kernel, n):
            return np.stack([np.convolve(e, kernel, mode="full")[:n] for e in np.eye(n)], axis=1)
        '''), "full"),
], right=[src('''
    def conv_matrix(kernel, n):
        # adv7 F6: the centre tap at len(kernel) // 2, right for every odd kernel (the exercise's contract)
        kernel = np.asarray(kernel, dtype=float)
        c = len(kernel) // 2
        C = np.zeros((n, n))
        for i in range(n):
            for m in range(len(kernel)):
                j = i + c - m
                if 0 <= j < n:
                    C[i, j] = kernel[m]
        return C
    ''')]))


def _grade_bytes3(fn, rng, data):
    return then(lambda: check_weights_bytes(fn, name=exercise_name(4), itemsize=False),
                lambda: check_function(hidden(4), fn, lambda b, h, n: 8 * b * h * n * n,
                                       [(7, 3, 100), (1, 16, 1), (4, 1, 2048)]))


from attnlib.checks import check_weights_bytes  # noqa: E402

add(Exercise("05", 4, "weights_bytes", _grade_bytes3, reference=src('''
    def weights_bytes(batch, n_heads, n):
        return batch * n_heads * n * n * 8
    '''), mistakes=[
    (src('''
        def weights_bytes(batch, n_heads, n):
            return batch * n_heads * n * n
        '''), "entries"),
    (src('''
        def weights_bytes(batch, n_heads, n):
            return batch * n_heads * n * 8
        '''), "n"),
    (src('''
        def weights_bytes(batch, n_heads, n):
            return batch * n_heads * n * n * 4
        '''), "float32"),
]))


def _growth():
    m = np.random.default_rng(5)
    nbytes = {n: al.scaled_dot_product_attention(*[m.normal(size=(n, d_k))] * 3)[1].nbytes
              for n, d_k in ((500, 64), (1000, 16))}  # n doubles and d_k shrinks: the weights are n x n
    return nbytes[1000] / nbytes[500]


prediction("05", 5, "predicted_growth", _growth, src('''
    def predicted_growth():
        return 4.0
    '''), [src('''
    def predicted_growth():
        return 2.0
    '''), src('''
    def predicted_growth():
        return 8.0
    '''), src('''
    def predicted_growth():
        return 1.0
    ''')], explanation="Every query has one weight per key: n * n weights, whatever d_k is, so twice the tokens need "
                        "four times the memory; a narrower d_k makes each score cheaper to compute but leaves their "
                        "number unchanged.")

# =========================================== Lab 6 ===========================================


def _causal_ref(S):
    return al.scaled_dot_product_attention(S, np.eye(len(S)), np.eye(len(S)), al.causal_mask(len(S)), scale=1.0)[1]


def _grade_causal_weights(fn, rng, data):
    return then(
        lambda: check_function(exercise_name(1), fn, _causal_ref, [(rng.normal(size=(6, 6)),), (np.zeros((3, 3)),)],
                               mistakes=mistakes("06", 1)),
        lambda: _future_exactly_zero(fn, with_bias_inputs(rng, 7, 7), hidden(1)),
        lambda: check_function(hidden(1), fn, _causal_ref,
                               [(with_bias_inputs(rng, 9, 9),), (np.array([[3.0]]),), (50 * rng.normal(size=(4, 4)),),
                                (future_dominates(rng),)],
                               mistakes=mistakes("06", 1)),
        lambda: _far_below(fn, rng),
        lambda: _below_any_fill(fn, rng, hidden(1)),
        lambda: _already_masked(fn, rng, hidden(1)))


FINITE_FILL = ("These scores are all near -1e35: a finite number put on the future scores (-1e9, -1e30, ...) is "
               "above them, so the future takes the weight. Use -np.inf")


def _below_any_fill(fn, rng, name):
    """adv10 F3: allowed scores far below every finite fill in use (-1e9, -1e30; still finite in float32), so that
    only -inf keeps the weights above the diagonal exactly 0."""
    result = _future_exactly_zero(fn, with_bias_inputs(rng, 6, 6) - 1e35, name)
    return result if result.passed else failed(name, f"{FINITE_FILL}.")


ALREADY_MASKED = ("Here a row's allowed scores are all -inf already (keys masked before, such as padding): a finite "
                  "number put on the future scores (np.finfo(float).min, -1e30, ...) is then that row's largest score, "
                  "and the future takes the weight. Use -np.inf")


def _already_masked(fn, rng, name):
    """adv17 F1: no finite score lies below np.finfo(float).min, so only a row whose allowed scores are all -inf tells
    that fill from -inf: with -inf no weight above the diagonal is a nonzero number (0 from attnlib's softmax, NaN
    from one written by hand, both fine there); with the finite fill the future gets all of that row's weight.
    Such a row is outside the inputs the statement promises (its weights cannot sum to 1), so an answer that raises
    there (a sanity check of its own, such as `np.testing.assert_allclose(W.sum(-1), 1)`: adv17 F7) is not failed:
    only weight given to the future is."""
    S = with_bias_inputs(rng, 6, 6)
    k = int(rng.integers(1, 5))
    S[0, 0] = -np.inf
    S[k, : k + 1] = -np.inf
    try:
        W = np.asarray(fn(S.copy()), dtype=float)
    except Exception:  # noqa: BLE001 (refusing such a row is fair; giving the future weight is not)
        return passed(name, "every weight above the diagonal is exactly 0.")
    if W.shape != S.shape:
        return failed(name, f"on scores of shape {S.shape}, your weights have shape {W.shape}.")
    above = W[np.triu_indices(len(S), 1)]
    if np.any(np.nan_to_num(above, nan=0.0) != 0):
        return failed(name, f"{ALREADY_MASKED}.")
    return passed(name, "no weight above the diagonal, even where the allowed scores are -inf already.")


def _far_below(fn, rng):
    """Scores shifted far down: a finite "very negative" fill for the future now outweighs the allowed scores."""
    result = check_function(hidden(1), fn, _causal_ref, [ScoresNear(1.1e4, with_bias_inputs(rng, 5, 5) - 1e4)])
    if result.passed:
        return result
    return failed(hidden(1), f"{result.message} These scores are all near -10000: a finite number put on the future "
                             f"scores (-100, -1e4, ...) is then no longer small next to them. Use -np.inf.")


def _future_exactly_zero(fn, S, name):
    """The exercise asks for weights exactly 0 above the diagonal (-inf, not a large negative number)."""
    try:
        W = np.asarray(fn(S), dtype=float)
    except Exception as err:  # noqa: BLE001 (any error of the learner's function is a failed check)
        return failed(name, f"your function raised {type(err).__name__}: {str(err)[:200]}")
    above = W[np.triu_indices(len(S), 1)] if W.shape == S.shape else np.array([np.nan])
    if not np.all(above == 0):
        return failed(name, f"a weight above the diagonal is {np.nanmax(np.abs(above)):.3g}, not exactly 0: the "
                            f"future scores got a large negative number, not -inf (exp of a finite score is never 0, "
                            f"and where the allowed scores are lower still the future takes the weight). Use -np.inf.")
    return passed(name, "every weight above the diagonal is exactly 0.")


add(Exercise("06", 1, "causal_weights", _grade_causal_weights, helpers=al_helpers("softmax", "causal_mask"),
             reference=src('''
    def causal_weights(S):
        S = np.asarray(S, dtype=float)
        n = S.shape[0]
        return al.softmax(np.where(al.causal_mask(n), S, -np.inf), axis=-1)
    '''), mistakes=[
    (src('''
        def causal_weights(S):
            S = np.asarray(S, dtype=float)
            W = np.exp(S - S.max(axis=-1, keepdims=True)) * np.tri(len(S))
            return W / W.sum(axis=-1, keepdims=True)
        '''), "max over the future"),
    (src('''
        def causal_weights(S):
            n = S.shape[0]
            return al.softmax(S, axis=-1) * al.causal_mask(n)
        '''), "after the softmax: the allowed weights no longer sum to 1. Put -inf on the future scores before "
              "the softmax."),
    (src('''
        def causal_weights(S):
            n = S.shape[0]
            return al.softmax(np.where(al.causal_mask(n), S, 0.0), axis=-1)
        '''), "the future scores are set to 0, not -inf: exp(0) = 1, so the future still gets weight. Use -inf."),
    (src('''
        def causal_weights(S):
            n = S.shape[0]
            return al.softmax(np.where(al.causal_mask(n).T, S, -np.inf), axis=-1)
        '''), "your weights look at the future and hide the past: the mask is transposed (keys j <= i are "
              "allowed, the lower triangle)."),
    (src('''
        def causal_weights(S):
            n = S.shape[0]
            return al.softmax(np.where(np.tril(np.ones((n, n), bool), -1), S, -np.inf), axis=-1)
        '''), None),
    (src('''
        def causal_weights(S):
            S = np.asarray(S, dtype=float)
            n = S.shape[0]
            return al.softmax(np.where(al.causal_mask(n), S, -100.0), axis=-1)  # adv7 F3: a "very negative" score
        '''), "not exactly 0: the future scores got a large negative number"),
    (src('''
        def causal_weights(S):
            S = np.asarray(S, dtype=float)
            n = S.shape[0]
            return al.softmax(np.where(al.causal_mask(n), S, -1e4), axis=-1)  # exp(-1e4) is 0.0 in float64
        '''), "These scores are all near -10000"),
    (src('''
        def causal_weights(S):
            S = np.asarray(S, dtype=float)
            n = S.shape[0]
            return al.softmax(np.where(al.causal_mask(n), S, -1e9), axis=-1)  # adv10 F3: masked_fill(-1e9)
        '''), FINITE_FILL),
    (src('''
        def causal_weights(S):
            S = np.asarray(S, dtype=float)
            n = S.shape[0]
            return al.softmax(np.where(al.causal_mask(n), S, np.finfo(S.dtype).min), axis=-1)  # adv17 F1
        '''), ALREADY_MASKED),
], right=[src('''
    def causal_weights(S):
        S = np.asarray(S, dtype=float)
        return al.softmax(S + np.where(al.causal_mask(len(S)), 0.0, -np.inf), axis=-1)
    '''), src('''
    def causal_weights(S):
        S = np.array(S, dtype=float)  # masked_fill style
        S[~al.causal_mask(len(S))] = -np.inf
        return al.softmax(S, axis=-1)
    '''), src('''
    def causal_weights(S):
        S = np.asarray(S, dtype=np.float32)  # float32 arithmetic (adv9 F5)
        n = S.shape[0]
        return al.softmax(np.where(al.causal_mask(n), S, -np.inf), axis=-1)
    ''')]))


def _grade_generate(fn, rng, data):
    return then(lambda: check_greedy_generate(fn, name=exercise_name(3)),
                lambda: check_greedy_generate(fn, name=hidden(3), rng=rng, short_prompts=6, long_prompts=1))


def _windowed(last: int) -> str:
    return src(f'''
        def greedy_generate(ids, vocab_size, n_new):
            ids = list(np.asarray(ids))
            for _ in range(n_new):  # a context window: the model sees the last {last} tokens (nanoGPT's block size)
                probs, _ = al.toy_lm.next_token_head(np.array(ids[-{last}:]), vocab_size)
                ids.append(int(probs[-1].argmax()))
            return ids
        ''')


add(Exercise("06", 3, "greedy_generate", _grade_generate,
             helpers={"al": {"toy_lm.next_token_head": "attnlib.toy_lm.next_token_head"}}, reference=src('''
    def greedy_generate(ids, vocab_size, n_new):
        ids = np.asarray(ids)
        for _ in range(n_new):
            probs, _ = al.toy_lm.next_token_head(ids, vocab_size)
            ids = np.append(ids, int(np.argmax(probs[-1])))
        return ids
    '''), mistakes=[
    (src('''
        def greedy_generate(ids, vocab_size, n_new):
            ids = np.asarray(ids)
            for _ in range(n_new):
                probs, _ = al.toy_lm.next_token_head(ids, vocab_size)
                ids = np.append(ids, int(np.argmax(probs[0])))
            return ids
        '''), "first row"),
    (src('''
        def greedy_generate(ids, vocab_size, n_new):
            ids = np.asarray(ids)
            new = []
            for _ in range(n_new):
                probs, _ = al.toy_lm.next_token_head(ids, vocab_size)
                new.append(int(np.argmax(probs[-1])))
            return np.concatenate([ids, new])
        '''), "never appended"),
    (src('''
        def greedy_generate(ids, vocab_size, n_new):
            ids = np.asarray(ids)
            out = []
            for _ in range(n_new):
                probs, _ = al.toy_lm.next_token_head(ids, vocab_size)
                ids = np.append(ids, int(np.argmax(probs[-1])))
                out.append(ids[-1])
            return np.array(out)
        '''), "only new"),
    (src('''
        def greedy_generate(ids, vocab_size, n_new):
            ids = np.asarray(ids)
            prompt_len = len(ids)
            for _ in range(n_new):  # a context window the length of the prompt
                probs, _ = al.toy_lm.next_token_head(ids[-prompt_len:], vocab_size)
                ids = np.append(ids, int(np.argmax(probs[-1])))
            return ids
        '''), "window"),
    *[(_windowed(last), "context window") for last in (4, 8, 10, 16, 64, 128, 256, 1024)],  # adv14 F2
], right=[src('''
    def greedy_generate(ids, vocab_size, n_new):
        ids = [int(i) for i in ids]
        for _ in range(n_new):
            probs, _ = al.toy_lm.next_token_head(np.array(ids), vocab_size)
            ids.append(int(probs[-1].argmax()))
        return ids
    ''')]))


def _grade_patches(fn, rng, data):
    ref = lambda image, P: al.vision.image_to_patches(image, P)  # noqa: E731
    return then(
        lambda: check_function(exercise_name(4), fn, ref,
                               [(rng.random((32, 48, 3)), 16), (np.arange(48.0).reshape(4, 4, 3), 2)],
                               mistakes=mistakes("06", 4)),
        lambda: check_function(hidden(4), fn, ref,
                               [(rng.normal(size=(6, 9, 1)), 3), (rng.normal(size=(8, 4, 2)), 4),
                                (rng.normal(size=(5, 5, 3)), 1)], mistakes=mistakes("06", 4)))


add(Exercise("06", 4, "my_patches", _grade_patches, reference=src('''
    def my_patches(image, P):
        image = np.asarray(image, dtype=float)
        H, W, C = image.shape
        grid = image.reshape(H // P, P, W // P, P, C).transpose(0, 2, 1, 3, 4)
        return grid.reshape(-1, P * P * C)
    '''), mistakes=[
    (src('''
        def my_patches(image, P):
            H, W, C = image.shape
            return image.reshape(-1, P * P * C)
        '''), "a reshape alone cuts strips of rows, not P x P squares: move the patch-row and patch-column "
              "axes in front (transpose) before flattening."),
    (src('''
        def my_patches(image, P):
            H, W, C = image.shape
            grid = image.reshape(H // P, P, W // P, P, C).transpose(2, 0, 1, 3, 4)
            return grid.reshape(-1, P * P * C)
        '''), "your patches are in column order; reading order goes along each row of patches first."),
    (src('''
        def my_patches(image, P):
            H, W, C = image.shape
            grid = image.reshape(H // P, P, W // P, P, C).transpose(0, 2, 3, 1, 4)
            return grid.reshape(-1, P * P * C)
        '''), "each patch is flattened column by column; keep its pixel rows in order."),
]))

def _patch_weight_growth():
    """Lab 6 Exercise 5's experiment: one head's weights over a 224 x 224 image's patches, 8 x 8 against 16 x 16."""
    sizes = {}
    for P in (16, 8):
        tokens = al.vision.image_to_patches(np.zeros((224, 224, 3)), P)  # (n, P * P * 3)
        sizes[P] = al.scaled_dot_product_attention(tokens, tokens, tokens)[1].size  # n * n weights
    return sizes[8] / sizes[16]


prediction("06", 5, "predicted_weight_growth", _patch_weight_growth, src('''
    def predicted_weight_growth():
        return ((224 // 8) ** 2 / (224 // 16) ** 2) ** 2
    '''), [(src('''
    def predicted_weight_growth():
        return 4.0
    '''), "4 is how much the number of tokens grows. One head computes a weight for every (query, key) pair: "
         "n x n weights, so the bill grows with the square of the token count"),
    (src('''
    def predicted_weight_growth():
        return 2.0
    '''), "halving the patch side doubles the patches along each side of the image, and an image has two sides; "
         "then one head computes n x n weights for n tokens"),
    (src('''
    def predicted_weight_growth():
        return 1 / 16
    '''), "smaller patches cut the image into more tokens, not fewer: the bill grows"),
], atol=0.5, rtol=0.0,
           explanation="halving the patch side gives 4 times the tokens, and one head computes n x n weights, "
                       "so 4 x 4 times the weights.")


def _grade_image_to_text(fn, rng, data):
    return then(lambda: check_image_to_text(fn, name=exercise_name(6)),
                lambda: check_image_to_text(fn, seed=int(rng.integers(2**31)), name=hidden(6)))


add(Exercise("06", 6, "image_to_text", _grade_image_to_text, reference=src('''
    def image_to_text(W_stream, n_text):
        W_stream = np.asarray(W_stream, dtype=float)
        block = W_stream[n_text:, :n_text]
        return block / block.sum(axis=1, keepdims=True)
    '''), mistakes=[
    (src('''
        def image_to_text(W_stream, n_text):
            return W_stream[n_text:, :n_text]
        '''), "sum to 1"),
    (src('''
        def image_to_text(W_stream, n_text):
            block = W_stream[n_text:, :n_text]
            return block / block.sum(axis=0, keepdims=True)
        '''), "columns"),
    (src('''
        def image_to_text(W_stream, n_text):
            block = W_stream[:, :n_text]
            return block / block.sum(axis=1, keepdims=True)
        '''), "every token"),
    (src('''
        def image_to_text(W_stream, n_text):
            block = W_stream[n_text - 1:-1, :n_text]
            return block / block.sum(axis=1, keepdims=True)
        '''), None),
]))


def _head_weights(rng, n, below=0.0):
    """Random weights of one head (n, n), rows summing to 1; ``below`` adds weight on the previous token."""
    W = rng.random((n, n)) ** 3
    W[np.arange(1, n), np.arange(n - 1)] += below
    return W / W.sum(axis=1, keepdims=True)


def _previous_token_ref(W):
    return float(np.diagonal(np.asarray(W, dtype=float), offset=-1).mean())


def _grade_previous_token(fn, rng, data):
    return then(
        lambda: check_function(exercise_name(7), fn, _previous_token_ref,
                               [(_head_weights(rng, 7),), (_head_weights(rng, 9, 2.0),)], mistakes=mistakes("06", 7)),
        lambda: check_function(hidden(7), fn, _previous_token_ref,
                               [(_head_weights(rng, 2),), (_head_weights(rng, 13, 5.0),), (np.eye(5),),
                                (_head_weights(rng, 30),)], mistakes=mistakes("06", 7)))


add(Exercise("06", 7, "previous_token_score", _grade_previous_token, reference=src('''
    def previous_token_score(W):
        W = np.asarray(W, dtype=float)
        return float(np.diagonal(W, offset=-1).mean())
    '''), mistakes=[
    (src('''
        def previous_token_score(W):
            return float(np.diagonal(W, offset=1).mean())
        '''), "you averaged W[i, i + 1], the weight on the next token; the token before token i is i - 1, on the "
              "diagonal just below the main one"),
    (src('''
        def previous_token_score(W):
            return float(np.diagonal(W).mean())
        '''), "you averaged the main diagonal, the weight each token puts on itself; the token before it sits one "
              "column to the left"),
    (src('''
        def previous_token_score(W):
            return float(np.diagonal(W, offset=-1).sum() / len(W))
        '''), "you divided by n, the number of tokens; only the n - 1 tokens after the first have a token before "
              "them, so average over those"),
    (src('''
        def previous_token_score(W):
            return float(np.diagonal(W, offset=-1).sum())
        '''), "a sum, not an average: the score is the mean weight over the tokens that have a token before them"),
    (src('''
        def previous_token_score(W):
            return float(np.mean([W[i][i - 1] for i in range(len(W))]))
        '''), "you included token 0, which has no token before it: W[0, -1] is not a weight on a previous token "
              "(index -1 wraps round to the last column); average over tokens 1 to n - 1 only"),  # b96c
    (src('''
        def previous_token_score(W):
            W = np.asarray(W)
            return float(np.mean(W[1:].argmax(axis=1) == np.arange(len(W) - 1)))
        '''), "you counted the tokens whose largest weight is on the previous token; the score averages the weight "
              "itself (a token that puts 0.4 there adds 0.4)"),
], right=[src('''
    def previous_token_score(W):
        return sum(W[i][i - 1] for i in range(1, len(W))) / (len(W) - 1)
    ''')]))


FIXED_LENGTH = 10  # Lab 6 section 6 trains on |r| = 10 only; its cell asserts the strongest head looks L - 1 back


SHORTCUT_QUERY, SHORTCUT_TEST_LENGTH = 12, 8  # Exercise 8: where the query at position 12 reads when |r| = 8

prediction("06", 8, "predicted_position", lambda: SHORTCUT_QUERY - (FIXED_LENGTH - 1), src('''
    def predicted_position():
        trained_length, i = 10, 12
        return i - (trained_length - 1)
    '''), [(src('''
    def predicted_position():
        return 5
    '''), "position 5 is where the token to predict sits for |r| = 8 (12 - 8 + 1), but the head never learned to "
         "find that token: it learned a distance, set by the training sequences, where |r| was always 10"),
    (src('''
    def predicted_position():
        return 4
    '''), "position 4 holds the earlier copy of the query's own token (12 - 8); the head learned a distance from "
         "sequences with |r| = 10, not to look for a token"),
    (src('''
    def predicted_position():
        return 9
    '''), "9 is how many places back the head looks; the question asks for the position it lands on, counted "
         "from 0, starting from the query at position 12"),
    (src('''
    def predicted_position():
        return 1
    '''), "position 1 is 11 places back, the distance of the book's run, which was trained on |r| = 12; this "
         "lab's model was trained on |r| = 10"),
    (src('''
    def predicted_position():
        return 2
    '''), "position 2 is 10 places back: the token that was predicted at |r| = 10 came one place after the "
         "earlier copy, so the head learned to look one place less far back"),
], atol=0.5, rtol=0.0,
    explanation="The head learned a distance, not a token: trained on |r| = 10, it reads 10 - 1 = 9 places back "
                "at every length, so from position 12 it reads position 3, not the target 12 - 8 + 1 = 5.")

FAR_BELOW_MASKED = ("These allowed scores are all far below 0 (about -1000 to -1e35) and the masked ones are not: "
                    "a finite fill on the masked scores (0, -1e9, ...) still sets the row's maximum, so the allowed "
                    "exponentials underflow to 0, and multiplying by the mask afterwards cannot bring them back. Fill "
                    "the masked scores with -np.inf before the softmax")


def _far_below_case(rng, depth: float):
    """adv17 F8: queries whose allowed keys all score exactly ``-depth`` (two equal keys, or one: the right weights are
    1/2 or 1 in any precision), next to masked keys with ordinary scores."""
    d = 3
    Q = rng.normal(size=(3, d))
    Q[:, 0] = 1.0
    K = rng.normal(size=(5, d))
    K[0] = K[1] = [-depth * np.sqrt(d), 0.0, 0.0]
    mask = np.zeros((3, 5), dtype=bool)
    mask[:, :2] = True
    mask[1, 1] = False  # query 1 sees key 0 only
    return Q, K, with_bias_inputs(rng, 5, 2), mask


def _allowed_far_below(name, fn, reference, rng):
    cases = [_far_below_case(rng, depth) for depth in (1e3, 1e12, 1e35)]
    result = check_function(name, fn, reference, cases)
    return result if result.passed else failed(name, f"{result.message} {FAR_BELOW_MASKED}.")


# =========================================== Lab 7 ===========================================


def _grade_attention(fn, rng, data):
    m = np.array([[True, False, True], [False, False, False]])
    cases = [(rng.normal(size=(2, 1, 2, 5)), rng.normal(size=(2, 1, 3, 5)), with_bias_inputs(rng, 2, 1, 3, 4), m),
             (rng.normal(size=(4, 3)), rng.normal(size=(7, 3)), rng.normal(size=(7, 2)), None)]
    def both(*a):
        return np.concatenate(_pair(fn(*a)), axis=-1)

    return then(lambda: check_attention(fn, name=exercise_name(1)),
                lambda: check_function(hidden(1), both,
                                       lambda *a: np.concatenate(al.scaled_dot_product_attention(*a), axis=-1), cases),
                lambda: _allowed_far_below(hidden(1), both,
                                           lambda *a: np.concatenate(al.scaled_dot_product_attention(*a), axis=-1),
                                           rng))


add(Exercise("07", 1, "attention", _grade_attention, helpers=al_helpers("softmax"), reference=src('''
    def attention(Q, K, V, mask=None):
        scores = Q @ np.swapaxes(K, -1, -2) / math.sqrt(K.shape[-1])
        if mask is not None:
            scores = np.where(mask, scores, -np.inf)
        weights = al.softmax(scores, axis=-1)
        return weights @ V, weights
    '''), mistakes=[
    (src('''
        def attention(Q, K, V, mask=None):
            scores = Q @ np.swapaxes(K, -1, -2)
            if mask is not None:
                scores = np.where(mask, scores, -np.inf)
            weights = al.softmax(scores, axis=-1)
            return weights @ V, weights
        '''), "scale"),
    (src('''
        def attention(Q, K, V, mask=None):
            scores = Q @ np.swapaxes(K, -1, -2) / math.sqrt(K.shape[-1])
            weights = al.softmax(scores, axis=-1)
            if mask is not None:
                weights = weights * mask
            return weights @ V, weights
        '''), "after"),
    (src('''
        def attention(Q, K, V, mask=None):
            scores = Q @ np.swapaxes(K, -1, -2) / math.sqrt(K.shape[-1])
            if mask is not None:
                scores = np.where(mask, scores, 0.0)
            weights = al.softmax(scores, axis=-1)
            return weights @ V, weights
        '''), "zero"),
    (src('''
        def attention(Q, K, V, mask=None):
            scores = Q @ np.swapaxes(K, -1, -2) / math.sqrt(K.shape[-1])
            if mask is not None:
                scores = np.where(mask, scores, -1e9)
            weights = al.softmax(scores, axis=-1)
            return weights @ V, weights
        '''), "fully masked"),
    (src('''
        def attention(Q, K, V, mask=None):
            scores = Q @ np.swapaxes(K, -1, -2) / math.sqrt(K.shape[-1])
            if mask is None:
                weights = al.softmax(scores, axis=-1)
            else:  # adv17 F8: the 0 fill kept, the weights masked and renormalised
                weights = al.softmax(np.where(mask, scores, 0.0), axis=-1) * mask
                s = weights.sum(axis=-1, keepdims=True)
                weights = weights / np.where(s == 0, 1, s)
            return weights @ V, weights
        '''), FAR_BELOW_MASKED),
    (src('''
        def attention(Q, K, V, mask=None):
            scores = Q @ np.swapaxes(K, -1, -2) / math.sqrt(K.shape[-1])
            if mask is not None:
                scores = np.where(mask, scores, -1e9)
            weights = al.softmax(scores, axis=-1)
            if mask is not None:  # adv17 F8: -1e9, then masked and renormalised
                weights = weights * mask
                s = weights.sum(axis=-1, keepdims=True)
                weights = weights / np.where(s == 0, 1, s)
            return weights @ V, weights
        '''), FAR_BELOW_MASKED),
    (src('''
        def attention(Q, K, V, mask=None):
            scores = Q @ np.swapaxes(K, -1, -2) / math.sqrt(K.shape[-1])
            if mask is not None:
                scores = np.where(mask, scores, -np.inf)
            weights = al.softmax(scores, axis=-2)
            return weights @ V, weights
        '''), "axis"),
], right=[src('''
    def attention(Q, K, V, mask=None):
        scores = np.einsum("...qd,...kd->...qk", Q, K) / np.sqrt(K.shape[-1])
        if mask is not None:
            scores = np.where(mask, scores, -np.inf)
        weights = al.softmax(scores, axis=-1)
        return [(weights @ V).astype(np.float32), weights]
    ''')]))


def _grade_mha_shapes(fn, rng, data):
    def flat(shapes):
        shapes = [tuple(s) for s in shapes]
        if not all(isinstance(n, int | np.integer) and not isinstance(n, bool) for s in shapes for n in s):
            raise TypeError(f"a shape holds integers (use // to divide sizes), got {shapes!r:.80}")
        return np.concatenate([np.asarray(s, dtype=np.int64) for s in shapes])

    return then(lambda: check_mha_shapes(fn, name=exercise_name(2)),
                lambda: check_function(hidden(2), lambda *s: flat(fn(*s)),
                                       lambda b, nq, nk, d, h: flat(((b, h, nq, d // h), (b, h, nq, nk), (b, nq, d))),
                                       [(5, 2, 11, 20, 4), (1, 1, 1, 4, 4), (3, 9, 2, 6, 1)]))


add(Exercise("07", 2, "mha_shapes", _grade_mha_shapes, reference=src('''
    def mha_shapes(batch, n_q, n_k, d_model, n_heads):
        d_head = d_model // n_heads
        return (batch, n_heads, n_q, d_head), (batch, n_heads, n_q, n_k), (batch, n_q, d_model)
    '''), mistakes=[
    (src('''
        def mha_shapes(batch, n_q, n_k, d_model, n_heads):
            d_head = d_model // n_heads
            return (batch, n_q, n_heads, d_head), (batch, n_heads, n_q, n_k), (batch, n_q, d_model)
        '''), "order"),
    (src('''
        def mha_shapes(batch, n_q, n_k, d_model, n_heads):
            d_head = d_model // n_heads
            return (batch, n_heads, n_q, d_head), (batch, n_q, n_k), (batch, n_q, d_model)
        '''), "heads"),
    (src('''
        def mha_shapes(batch, n_q, n_k, d_model, n_heads):
            d_head = d_model // n_heads
            return (batch, n_heads, n_q, d_head), (batch, n_heads, n_q, n_k), (batch, n_heads, n_q, d_head)
        '''), "merged"),
    (src('''
        def mha_shapes(batch, n_q, n_k, d_model, n_heads):
            d_head = d_model / n_heads
            return (batch, n_heads, n_q, d_head), (batch, n_heads, n_q, n_k), (batch, n_q, d_model)
        '''), "integers"),
], right=[src('''
    def mha_shapes(batch, n_q, n_k, d_model, n_heads):
        return [[batch, n_heads, n_q, d_model // n_heads], [batch, n_heads, n_q, n_k], [batch, n_q, d_model]]
    '''), src('''
    from __future__ import annotations


    def mha_shapes(batch: int, n_q: int, n_k: int, d_model: int, n_heads: int) -> tuple[Shape, Shape, Shape]:
        d_head = d_model // n_heads
        return (batch, n_heads, n_q, d_head), (batch, n_heads, n_q, n_k), (batch, n_q, d_model)


    Shape = tuple[int, ...]
    display(mha_shapes(2, 3, 5, 8, 2))  # a leftover display(): IPython's, a no-op in the grader
    ''')]))


def _max_tokens_16gib():
    """Lab 7 Exercise 3's experiment: the weights of 32 heads in float32, measured at 64 and 128 tokens, extended to
    16 GiB (the check cannot build 16 GiB)."""
    m = np.random.default_rng(23)
    nbytes = {}
    for n in (64, 128):
        Q = m.normal(size=(1, 32, n, 8)).astype(np.float32)  # (batch, heads, n, d_k)
        nbytes[n] = al.scaled_dot_product_attention(Q, Q, Q)[1].nbytes
    if nbytes[128] != 4 * nbytes[64]:
        raise RuntimeError(f"the weights should grow like n squared: {nbytes}")
    return int((16 * 2**30 / (nbytes[64] / 64**2)) ** 0.5)


prediction("07", 3, "predicted_max_tokens", _max_tokens_16gib, src('''
    def predicted_max_tokens():
        return int((16 * 2**30 / (1 * 32 * 4)) ** 0.5)
    '''), [(src('''
    def predicted_max_tokens():
        return int((16 * 2**30 / 4) ** 0.5)
    '''), "this is the length for one head. Each of the 32 heads keeps its own n x n weights"),
    (src('''
    def predicted_max_tokens():
        return int((16 * 2**30 / 32) ** 0.5)
    '''), "this counts numbers, not bytes: each float32 number takes 4 bytes"),
    (src('''
    def predicted_max_tokens():
        return int((16 * 2**30 / (32 * 8)) ** 0.5)
    '''), "8 bytes is a float64 number; the layer runs in float32, 4 bytes per number"),
    (src('''
    def predicted_max_tokens():
        return int((16e9 / (32 * 4)) ** 0.5)
    '''), "a GiB is 2**30 bytes (1,073,741,824), not 10**9"),
    (src('''
    def predicted_max_tokens():
        return 16 * 2**30 // (32 * 4)
    '''), "the weights hold n x n numbers per head, one for every (query, key) pair: take a square root"),
], rtol=0.01, explanation="32 heads * n * n * 4 bytes must stay within 16 * 2**30 bytes: solve for n, and round down.")


def _grade_leaks(fn, rng, data):
    # adv15 F13: the hidden stage never reuses the first stage's number of tokens, so a loop bound typed in (the
    # lab's 6) is wrong on one of the two, whatever the draws
    n = int(rng.integers(5, 8))
    other = int(rng.choice([m for m in (5, 6, 7, 8) if m != n]))
    return then(lambda: check_leak_detector(fn, name=exercise_name(4), rng=rng, n=n),
                lambda: check_leak_detector(fn, name=hidden(4), rng=rng, n=other))


add(Exercise("07", 4, "leaks_future", _grade_leaks, reference=src('''
    def leaks_future(attend, X):
        base = attend(X)
        for j in range(1, len(X)):
            X_changed = X.copy()
            X_changed[j] += 1.0
            if np.abs(attend(X_changed)[:j] - base[:j]).max() > 1e-9:
                return True
        return False
    '''), mistakes=[
    (src('''
        def leaks_future(attend, X):
            name = getattr(attend, "__name__", "")
            return not name.startswith("causal")
        '''), "name"),
    (_nudge_detector("np.abs(attend(X_changed)[: j + 1] - base[: j + 1]).max() > 1e-9"), "includes j"),
    (src('''
        def leaks_future(attend, X):
            base = attend(X)
            X_changed = X.copy()
            X_changed[-1] += 1.0
            return bool(np.abs(attend(X_changed)[:-1] - base[:-1]).max() > 1e-9)
        '''), "only the last"),
    (_nudge_detector("np.abs(attend(X_changed)[:j] - base[:j]).mean() > 1e-9"),  # adv16 F3: the average change
     "compare the largest absolute change with 1e-9, not the average change"),
    (_nudge_detector("np.abs(attend(X_changed)[:j] - base[:j]).max() > 1e-3"), "threshold"),
    (_nudge_detector("np.abs(attend(X_changed)[:j] - base[:j]).max() > 1e-9 * np.abs(base).max()"),
     "relative (adv17 F3)"),
    (_nudge_detector("(np.abs(attend(X_changed)[:j] - base[:j]) / np.abs(base[:j])).max() > 1e-9"),
     "relative per output"),
    (_nudge_detector("not np.allclose(attend(X_changed)[:j], base[:j])"), "np.allclose"),
    (_nudge_detector("not np.allclose(attend(X_changed)[:j], base[:j], rtol=0, atol=1e-6)"), "atol 1e-6 (adv11 F5)"),
    (_nudge_detector("np.abs(attend(X_changed)[:j] - base[:j]).max() > 1e-6"), "threshold 1e-6 (adv11 F5)"),
    (_nudge_detector("np.abs(attend(X_changed)[:j] - base[:j]).max() > 1e-7"), "threshold 1e-7 (adv11 F5)"),
    (src('''
        def leaks_future(attend, X):
            base = attend(X)
            n = len(X)
            for j in (n // 2, n - 1):  # only two tokens are ever changed
                X_changed = X.copy()
                X_changed[j] += 1.0
                if np.abs(attend(X_changed)[:j] - base[:j]).max() > 1e-9:
                    return True
            return False
        '''), "two tokens"),
    (src('''
        def leaks_future(attend, X):
            half = len(X) // 2
            X_changed = X.copy()
            X_changed[half:] += 1.0  # the second half changed; only the first half's outputs compared
            return bool(np.abs(attend(X_changed)[:half] - attend(X)[:half]).max() > 1e-9)
        '''), "halves"),
    (src('''
        def leaks_future(attend, X):
            base = attend(X)
            for j in range(1, len(X)):
                X_changed = X.copy()
                X_changed[j] += 1.0
                if (attend(X_changed)[:j] - base[:j]).max() > 1e-9:  # no abs (adv10 F1)
                    return True
            return False
        '''), "Take the absolute value of the difference: a leak can lower an output"),
    (src('''
        def leaks_future(attend, X):
            base = attend(X)
            for j in range(1, len(X)):
                X_changed = X.copy()
                X_changed[j] += 1.0
                if not np.array_equal(attend(X_changed)[:j], base[:j]):
                    return True
            return False
        '''), "differences below 1e-9 are rounding, not a leak"),  # adv15 F4: exact comparison
    (src('''
        def leaks_future(attend, X):
            base = attend(X)
            for j in range(1, 6):  # the lab's 6 tokens
                X_changed = X.copy()
                X_changed[j] += 1.0
                if np.abs(attend(X_changed)[:j] - base[:j]).max() > 1e-9:
                    return True
            return False
        '''), "6 tokens (adv15 F13)"),
], right=[src('''
    def leaks_future(attend, X):
        base = np.asarray(attend(X))
        changed = []
        for j in range(len(X)):
            Y = np.array(X, copy=True)
            Y[j] = Y[j] + 0.5
            changed.append(np.abs(np.asarray(attend(Y)) - base).max(axis=-1) > 1e-9)
        return any(changed[j][:j].any() for j in range(len(X)))
    ''')]))


CHANGED_TOKEN = 2  # Lab 7 Exercise 5: which of the 6 tokens the check changes


def _changed_outputs():
    m = np.random.default_rng(7)
    p = al.init_multi_head(8, 2, m)
    X = m.normal(size=(6, 8))
    X2 = X.copy()
    X2[CHANGED_TOKEN] += 1.0
    out = [al.multi_head_attention(x, x, p, 2, al.causal_mask(6))[0] for x in (X, X2)]
    return int((np.abs(out[1] - out[0]).max(axis=-1) > 1e-9).sum())


prediction("07", 5, "predicted_changed_outputs", _changed_outputs, src('''
    def predicted_changed_outputs():
        return 4
    '''), [(src('''
    def predicted_changed_outputs():
        return 3
    '''), "queries 3, 4 and 5 see key 2, and so does query 2 itself: its allowed keys 0..2 include its own"),
    (src('''
    def predicted_changed_outputs():
        return 1
    '''), "not only token 2's own output moves: every later query may attend to key 2 as well"),
    (src('''
    def predicted_changed_outputs():
        return 6
    '''), "under the causal mask, queries 0 and 1 may not look at key 2, so their outputs stay"),
    (src('''
    def predicted_changed_outputs():
        return 2
    '''), "queries 0 and 1 are the ones that may not see key 2: their outputs are the ones that stay"),
    src('''
    def predicted_changed_outputs():
        return True  # yes, an output changes: a yes/no, not the count
    '''), src('''
    def predicted_changed_outputs():
        return [4]
    ''')], atol=0.5, rtol=0.0,
           explanation="Under a causal mask query i may attend to keys 0..i, so key 2 reaches queries 2, 3, 4 and 5: "
                       "four outputs move and outputs 0 and 1 stay; without a mask all 6 would.")

LARGE_SCORES = 1.25 * 40.0**2  # the size of with_large_scores' scores (1600 and the rest), for ScoresNear


def large_case(*args) -> ScoresNear:
    """A case (arguments) made with :func:`with_large_scores`: float32's error on its scores is allowed for."""
    return ScoresNear(LARGE_SCORES, *args)


def with_large_scores(rng, *arrays, last: float = 40.0, high: int = 2, gap: float = 4.0):
    """Copies of ``arrays`` (queries first, then keys) with their last feature set so that the scores are
    large AND spread out: the queries' last feature is ``last`` (a 2-D query array's second row 0); ``high`` keys
    at random positions, never the first, score about ``last**2`` (+-1600), the rest about ``-last**2``.  So an exp
    without the maximum subtracted overflows (inf / inf = nan); the row's mean lies far below its maximum, so one
    shifted by the mean overflows too (adv14 F5); a query row near 0 beside rows near 1600 makes one maximum over
    the whole score matrix underflow that row (0 / 0 = nan); and a shift by the first score (a low one) overflows.
    The high keys share their other features and their last ones differ by ``gap / last``, so that their scores
    differ by ``gap`` (1600, 1596, ...; adv16 F1): a softmax that clips the scores (at 30, 500 or 700) gives them
    equal weights where the right ones are about 0.98 and 0.02."""
    out = []
    for i, a in enumerate(arrays):
        a = np.array(a, dtype=float)
        if i == 0:
            a[..., -1] = last
            if a.ndim == 2 and a.shape[0] >= 2:
                a[1, -1] = 0.0
        else:
            n = a.shape[-2]
            top = rng.choice(np.arange(1, n), size=min(high, n - 1), replace=False)
            a[..., -1] = -last
            for rank, j in enumerate(top):
                a[..., j, :-1] = a[..., top[0], :-1]
                a[..., j, -1] = last - rank * gap / last
        out.append(a)
    return tuple(out)


def moderate_last(d_k: float | None = None) -> float:
    """The ``last`` of :func:`with_large_scores` that gives scores of about +-450 (after the 1/sqrt(d_k) scale): an
    exp without the maximum subtracted is fine there, a shift by the first (a low) score overflows (e**900), and a
    clip at 30 flattens the high keys (adv16 F1)."""
    return math.sqrt(450.0 * (math.sqrt(d_k) if d_k else 1.0))


def moderate_case(rng, q, K, *rest, d_k: float | None = None) -> ScoresNear:
    """A case whose scores are about +-450 (:func:`moderate_last`), made as :func:`with_large_scores` makes its own."""
    last = moderate_last(d_k)
    return ScoresNear(last**2, *with_large_scores(rng, q, K, last=last), *rest)


def future_dominates(rng, n: int = 6):
    """Scores whose future entries are 1000 above the allowed ones: a softmax over the allowed scores is
    unaffected, but a maximum taken over the whole row (mask after exp) makes every allowed exp underflow."""
    S = rng.normal(size=(n, n))
    S[np.triu_indices(n, 1)] += 1e3
    return S


# ==================================== debug exercises ====================================
# Each lab gives a function with a realistic bug; the learner writes the fixed version.  The given
# bug is the first mutant, with the diagnosis the self-check gives it.

NO_EXP = ("your weights are the scores divided by their sum: without exp they can be negative (and the sum can be "
          "0). A softmax (exp, then divide by the sum) makes them positive and sum to 1.")


OVERFLOW = ("your exp overflows on large scores (exp(1600) is inf, and inf / inf is nan): subtract the largest "
            "score from every score before exp (the weights do not change), or use al.softmax.")


def _grade_fixed_lookup(fn, rng, data):
    cases = [(with_bias_inputs(rng, 3), rng.normal(size=(6, 3)), rng.normal(size=(6, 2))) for _ in range(3)]
    cases.append(moderate_case(rng, rng.normal(size=3), rng.normal(size=(6, 3)), rng.normal(size=(6, 2))))
    cases.append(large_case(*with_large_scores(rng, rng.normal(size=3), rng.normal(size=(6, 3))),
                            rng.normal(size=(6, 2))))
    return check_function(exercise_name(7), fn, _dot_lookup, cases, mistakes=mistakes("01", 7))


add(Exercise("01", 7, "fixed_lookup", _grade_fixed_lookup, helpers=al_helpers("softmax"), reference=src('''
    def fixed_lookup(q, K, V):
        scores = K @ q
        weights = al.softmax(scores)
        return weights @ V
    '''), mistakes=[
    (src('''
        def fixed_lookup(q, K, V):
            scores = K @ q
            e = np.exp(scores - scores.mean())
            return (e / e.sum()) @ V
        '''), None),  # adv14 F5: the mean, not the largest
    (src('''
        def fixed_lookup(q, K, V):
            e = np.exp(K @ q)
            return (e / e.sum()) @ V
        '''), OVERFLOW),
    (src('''
        def fixed_lookup(q, K, V):
            scores = K @ q
            weights = scores / scores.sum()
            return weights @ V
        '''), NO_EXP),
    (src('''
        def fixed_lookup(q, K, V):
            return np.exp(K @ q) @ V
        '''), "your weights are not normalised: divide exp(scores) by their sum (a softmax), so that they sum "
              "to 1."),
    (src('''
        def fixed_lookup(q, K, V):
            scores = K @ q
            weights = np.abs(scores) / np.abs(scores).sum()
            return weights @ V
        '''), "your weights are |score| over their sum: positive, but a score of -3 now weighs as much as +3, "
              "so the most unlike key can win. A weight must grow with its score: use exp (a softmax)."),
    (src('''
        def fixed_lookup(q, K, V):
            scores = K @ q
            shifted = scores - scores.min()
            return (shifted / shifted.sum()) @ V
        '''), "your weights shift the scores up until none is negative, then divide by their sum: positive and "
              "summing to 1, but the lowest-scoring key gets exactly 0 and the rest grow in a straight line. "
              "The dot-product lookup's weights are exp(score) over their sum (a softmax)."),
]))

STORED_TOO_EARLY = ("your state at position t is the one from before token t was read (row 0 is the zero start "
                    "state, and the last token is never read): store each state after its update.")


def _encode_ref(X, W_xh, W_hh, b_h):
    return _rnn.rnn_encode(X, {"W_xh": W_xh, "W_hh": W_hh, "b_h": b_h})


def _grade_fixed_encode(fn, rng, data):
    p = _rnn.init_rnn(5, 4, rng)
    W = (p["W_xh"], p["W_hh"], rng.normal(size=4))  # a nonzero bias: init_rnn's is zero
    cases = [(rng.normal(size=(6, 5)), *W), (with_bias_inputs(rng, 3, 5), *W), (rng.normal(size=(1, 5)), *W)]
    return check_function(exercise_name(7), fn, _encode_ref, cases, mistakes=mistakes("02", 7))


# adv15 F10: the library's step is served (the statement forbids only rnn_encode, this exercise's reference): fixing
# the bug with rnn.rnn_step, as the check cell allows, scores as it passes there
add(Exercise("02", 7, "fixed_encode", _grade_fixed_encode, helpers={"rnn": {"rnn_step": "attnlib.rnn.rnn_step"}},
             reference=src("""
    def fixed_encode(X, W_xh, W_hh, b_h):
        h = np.zeros(W_hh.shape[0])
        states = []
        for x in X:
            h = np.tanh(x @ W_xh + h @ W_hh + b_h)
            states.append(h)
        return np.stack(states)
    """), mistakes=[
    (src("""
        def fixed_encode(X, W_xh, W_hh, b_h):
            h = np.zeros(W_hh.shape[0])
            states = []
            for x in X:
                states.append(h)
                h = np.tanh(x @ W_xh + h @ W_hh + b_h)
            return np.stack(states)
        """), STORED_TOO_EARLY),
    (src("""
        def fixed_encode(X, W_xh, W_hh, b_h):
            h = np.zeros(W_hh.shape[0])
            states = []
            for x in X:
                h = np.tanh(x @ W_xh + h @ W_hh)
                states.append(h)
            return np.stack(states)
        """), "your states leave out the bias b_h: add it inside the tanh at every step."),
    (src("""
        def fixed_encode(X, W_xh, W_hh, b_h):
            return np.stack([np.tanh(x @ W_xh + b_h) for x in X])
        """), "each of your states sees only its own token: feed the previous state into every step (h @ W_hh)."),
    (src("""
        def fixed_encode(X, W_xh, W_hh, b_h):
            h = np.zeros(W_hh.shape[0])
            states = []
            for x in X:
                h = np.tanh(x @ W_xh + h @ W_hh.T + b_h)
                states.append(h)
            return np.stack(states)
        """), "W_hh transposed"),
    (src("""
        def fixed_encode(X, W_xh, W_hh, b_h):
            h = np.zeros(W_hh.shape[0])
            for x in X:
                h = np.tanh(x @ W_xh + h @ W_hh + b_h)
            return np.stack([h] * len(X))
        """), "the final state only"),
], right=[src("""
    def fixed_encode(X, W_xh, W_hh, b_h):
        h = np.zeros(W_hh.shape[0])
        states = []
        for x in X:
            states.append(h)
            h = np.tanh(x @ W_xh + h @ W_hh + b_h)
        return np.stack(states[1:] + [h])
    """), src("""
    def fixed_encode(X, W_xh, W_hh, b_h):
        inputs = np.einsum("ti,ij->tj", X, W_xh) + b_h
        states = np.zeros((len(X), W_hh.shape[0]))
        h = states[0]
        for t in range(len(X)):
            h = np.tanh(inputs[t] + h @ W_hh)
            states[t] = h
        return states.tolist()
    """), src("""
    def fixed_encode(X, W_xh, W_hh, b_h):
        params = {"W_xh": W_xh, "W_hh": W_hh, "b_h": b_h}
        h = np.zeros(W_hh.shape[0])
        states = []
        for x in X:
            h = rnn.rnn_step(x, h, params)  # update first ...
            states.append(h)  # ... then store
        return np.stack(states)
    """)]))  # adv15 F10: the tester's answer, with the library's step

AXIS_0 = ("your weights are normalised over the queries (axis 0); each query's weights over the keys (the last "
          "axis) must sum to 1.")


def _grade_fixed_attention(fn, rng, data):
    cases = [(rng.normal(size=(3, 4)), rng.normal(size=(5, 4)), with_bias_inputs(rng, 5, 2)),
             (rng.normal(size=(6, 2)), rng.normal(size=(4, 2)), rng.normal(size=(4, 3))),
             moderate_case(rng, rng.normal(size=(3, 4)), rng.normal(size=(5, 4)), rng.normal(size=(5, 2)), d_k=4),
             large_case(*with_large_scores(rng, rng.normal(size=(3, 4)), rng.normal(size=(5, 4))),
                        rng.normal(size=(5, 2)))]
    return check_function(exercise_name(6), fn, _attention_2d, cases, mistakes=mistakes("03", 6))


add(Exercise("03", 6, "fixed_attention", _grade_fixed_attention, helpers=al_helpers("softmax"),
             reference=src('''
    def fixed_attention(Q, K, V):
        d_k = K.shape[-1]
        weights = al.softmax(Q @ K.T / np.sqrt(d_k), axis=-1)
        return weights @ V
    '''), mistakes=[
    (src('''
        def fixed_attention(Q, K, V):
            S = Q @ K.T / np.sqrt(K.shape[-1])
            e = np.exp(S - S.max())  # one maximum over the whole matrix
            return (e / e.sum(axis=-1, keepdims=True)) @ V
        '''), None),  # adv14 F5: the mean, not the largest
    (src('''
        def fixed_attention(Q, K, V):
            S = Q @ K.T / np.sqrt(K.shape[-1])
            e = np.exp(S - S.mean(axis=-1, keepdims=True))
            return (e / e.sum(axis=-1, keepdims=True)) @ V
        '''), None),  # adv14 F5: the mean, not the largest
    (src('''
        def fixed_attention(Q, K, V):
            e = np.exp(Q @ K.T / np.sqrt(K.shape[-1]))
            return (e / e.sum(axis=-1, keepdims=True)) @ V
        '''), "overflow"),
    (src('''
        def fixed_attention(Q, K, V):
            d_k = K.shape[-1]
            weights = al.softmax(Q @ K.T / np.sqrt(d_k), axis=0)
            return weights @ V
        '''), AXIS_0),
    (src('''
        def fixed_attention(Q, K, V):
            weights = al.softmax(Q @ K.T, axis=-1)
            return weights @ V
        '''), "your scores are not scaled: divide Q K^T by sqrt(d_k) before the softmax."),
    (src('''
        def fixed_attention(Q, K, V):
            weights = al.softmax(Q @ K.T / K.shape[-1], axis=-1)
            return weights @ V
        '''), "your scores are divided by d_k; the scale is sqrt(d_k)."),
]))

FUTURE_ALLOWED = ("your mask allows the keys after each query and hides the rest (the last query has no allowed key, "
                  "so its output is 0): in attnlib True means may attend, so allow the keys at and before each "
                  "query.")


def _causal_self_attention_ref(X, params):
    Q, K, V = (X @ params[w] for w in ("W_q", "W_k", "W_v"))
    return al.scaled_dot_product_attention(Q, K, V, al.causal_mask(len(X)))[0]


def _grade_fixed_causal_self_attention(fn, rng, data):
    def params(d, d_k, d_v):
        return {"W_q": rng.normal(size=(d, d_k)), "W_k": rng.normal(size=(d, d_k)), "W_v": rng.normal(size=(d, d_v))}
    # d_k differs from d_model in two cases, so that scaling by sqrt(d_model) (the width of X) is caught
    cases = [(rng.normal(size=(5, 4)), params(4, 4, 3)), (with_bias_inputs(rng, 3, 2), params(2, 6, 5)),
             (rng.normal(size=(6, 3)), params(3, 8, 3))]
    # every later key scores about 450 more than the one before (features 1 and the position): the future
    # dominates each row's maximum, and the last query's allowed scores reach about 2250 (exp overflows)
    X, p = rng.normal(size=(6, 4)), params(4, 4, 3)
    X[:, -2], X[:, -1] = 1.0, np.arange(6.0)
    p["W_q"][:, -1], p["W_k"][:, -1] = 0.0, 0.0
    p["W_q"][-2, -1], p["W_k"][-1, -1] = 30.0, 30.0
    cases.append((X, p))
    return check_function(exercise_name(9), fn, _causal_self_attention_ref, cases, mistakes=mistakes("04", 9))


add(Exercise("04", 9, "fixed_causal_self_attention", _grade_fixed_causal_self_attention,
             helpers=al_helpers("scaled_dot_product_attention", "softmax", "causal_mask"), reference=src("""
    def fixed_causal_self_attention(X, params):
        n = X.shape[0]
        Q, K, V = X @ params["W_q"], X @ params["W_k"], X @ params["W_v"]
        allowed = np.tril(np.ones((n, n), dtype=bool))
        output, weights = al.scaled_dot_product_attention(Q, K, V, mask=allowed)
        return output
    """), mistakes=[
    (src("""
        def fixed_causal_self_attention(X, params):
            n = X.shape[0]
            Q, K, V = X @ params["W_q"], X @ params["W_k"], X @ params["W_v"]
            S = Q @ K.T / np.sqrt(K.shape[-1])
            W = np.exp(S - S.max(axis=-1, keepdims=True)) * np.tri(n)
            return (W / W.sum(axis=-1, keepdims=True)) @ V
        """), "max over the future"),
    (src("""
        def fixed_causal_self_attention(X, params):
            n = X.shape[0]
            Q, K, V = X @ params["W_q"], X @ params["W_k"], X @ params["W_v"]
            e = np.exp(np.where(np.tri(n, dtype=bool), Q @ K.T / np.sqrt(K.shape[-1]), -np.inf))
            return (e / e.sum(axis=-1, keepdims=True)) @ V
        """), "overflow"),
    (src("""
        def fixed_causal_self_attention(X, params):
            n = X.shape[0]
            Q, K, V = X @ params["W_q"], X @ params["W_k"], X @ params["W_v"]
            future = np.triu(np.ones((n, n), dtype=bool), k=1)
            output, weights = al.scaled_dot_product_attention(Q, K, V, mask=future)
            return output
        """), FUTURE_ALLOWED),
    (src("""
        def fixed_causal_self_attention(X, params):
            n = X.shape[0]
            Q, K, V = X @ params["W_q"], X @ params["W_k"], X @ params["W_v"]
            allowed = np.triu(np.ones((n, n), dtype=bool))
            output, weights = al.scaled_dot_product_attention(Q, K, V, mask=allowed)
            return output
        """), "your mask lets each query see itself and the words after it; causal attention sees itself and the "
              "words before it (True on and below the diagonal)."),
    (src("""
        def fixed_causal_self_attention(X, params):
            n = X.shape[0]
            Q, K, V = X @ params["W_q"], X @ params["W_k"], X @ params["W_v"]
            allowed = np.tril(np.ones((n, n), dtype=bool), k=-1)
            output, weights = al.scaled_dot_product_attention(Q, K, V, mask=allowed)
            return output
        """), "your mask hides each query's own position (the first query has no allowed key, so its output is "
              "0): a query may attend to itself, so keep the diagonal."),
    (src("""
        def fixed_causal_self_attention(X, params):
            Q, K, V = X @ params["W_q"], X @ params["W_k"], X @ params["W_v"]
            output, weights = al.scaled_dot_product_attention(Q, K, V)
            return output
        """), "your attention has no mask: every query still sees the words after it."),
    (src("""
        def fixed_causal_self_attention(X, params):
            n = X.shape[0]
            Q, K, V = X @ params["W_q"], X @ params["W_k"], X @ params["W_v"]
            scores = Q @ K.T / np.sqrt(X.shape[1])
            allowed = np.tril(np.ones((n, n), dtype=bool))
            weights = al.softmax(np.where(allowed, scores, -np.inf), axis=-1)
            return weights @ V
        """), "sqrt(d_model)"),
], right=[src("""
    def fixed_causal_self_attention(X, params):
        n = X.shape[0]
        Q, K, V = X @ params["W_q"], X @ params["W_k"], X @ params["W_v"]
        future = np.triu(np.ones((n, n), dtype=bool), k=1)
        output, weights = al.scaled_dot_product_attention(Q, K, V, mask=~future)
        return output
    """), src("""
    def fixed_causal_self_attention(X, params):
        Q, K, V = (X @ params[w] for w in ("W_q", "W_k", "W_v"))
        return al.scaled_dot_product_attention(Q, K, V, al.causal_mask(len(X)))[0].astype(np.float32)
    """), src("""
    def fixed_causal_self_attention(X, params):
        n = len(X)
        i = np.arange(n)
        S = (X @ params["W_q"]) @ (X @ params["W_k"]).T / np.sqrt(params["W_k"].shape[1])
        W = al.softmax(np.where(i[None, :] <= i[:, None], S, -np.inf), axis=-1)
        return W @ (X @ params["W_v"])
    """)]))

SQRT_DV = ("your scores are divided by sqrt(d_v), the width of the values; the scale is sqrt(d_k), the width of the "
           "queries and keys.")


def _batched_attention(Q, K, V):
    return al.scaled_dot_product_attention(Q, K, V)[0]


def _grade_fixed_batched(fn, rng, data):
    """A batch first (the buggy axis shows), two leading axes next (axis 2 is the queries there), then single
    sequences with large scores (a softmax without the maximum subtracted, clipped or shifted by the first score)."""
    cases = [(rng.normal(size=(2, 4, 9)), rng.normal(size=(2, 6, 9)), with_bias_inputs(rng, 2, 6, 2)),
             (rng.normal(size=(2, 3, 4, 5)), rng.normal(size=(2, 3, 6, 5)), rng.normal(size=(2, 3, 6, 3))),
             (rng.normal(size=(2, 3)), rng.normal(size=(5, 3)), rng.normal(size=(5, 7))),
             moderate_case(rng, rng.normal(size=(3, 4)), rng.normal(size=(5, 4)), rng.normal(size=(5, 2)), d_k=4),
             large_case(*with_large_scores(rng, rng.normal(size=(3, 4)), rng.normal(size=(5, 4))),
                        rng.normal(size=(5, 2)))]
    return check_function(exercise_name(6), fn, _batched_attention, cases, mistakes=mistakes("05", 6))


AXIS_1 = ("your softmax runs over axis 1. For one sequence, scores of shape (n_q, n_k), that is the keys; on a batch, "
          "(batch, n_q, n_k), axis 1 holds the queries, so each key's weights over the queries sum to 1. Name the "
          "keys' axis counting from the end, so that it stays the keys whatever stands in front.")
AXIS_2 = ("your softmax runs over axis 2: that is the keys only when exactly one batch axis stands in front. With two "
          "leading axes, (batch, heads, n_q, n_k), axis 2 holds the queries (and one sequence has no axis 2). Name "
          "the keys' axis counting from the end.")

add(Exercise("05", 6, "fixed_batched_attention", _grade_fixed_batched, helpers=al_helpers("softmax"),
             reference=_fixed_batched_source(-1), mistakes=[
    (_fixed_batched_source(1), AXIS_1),
    (_fixed_batched_source(2), AXIS_2),
    (_fixed_batched_source(0), "your softmax runs over axis 0, the batch (or, for one sequence, the queries): "
                               "each query's weights must sum to 1 over its keys. Name the keys' axis counting "
                               "from the end."),
    (src('''
        def fixed_batched_attention(Q, K, V):
            s = Q @ np.swapaxes(K, -1, -2) / np.sqrt(K.shape[-1])
            e = np.exp(s - s.mean(axis=-1, keepdims=True))
            return (e / e.sum(axis=-1, keepdims=True)) @ V
        '''), None),  # adv14 F5: the mean, not the largest
    (src('''
        def fixed_batched_attention(Q, K, V):
            e = np.exp(Q @ np.swapaxes(K, -1, -2) / np.sqrt(K.shape[-1]))
            return (e / e.sum(axis=-1, keepdims=True)) @ V
        '''), "overflow"),
    (src('''
        def fixed_batched_attention(Q, K, V):
            scores = Q @ np.swapaxes(K, -1, -2) / np.sqrt(V.shape[-1])
            return al.softmax(scores, axis=-1) @ V
        '''), SQRT_DV),
    (src('''
        def fixed_batched_attention(Q, K, V):
            return al.softmax(Q @ np.swapaxes(K, -1, -2), axis=-1) @ V
        '''), "your scores are not scaled: divide each q . k by sqrt(d_k) before the softmax."),
    (src('''
        def fixed_batched_attention(Q, K, V):
            return al.softmax(Q @ np.swapaxes(K, -1, -2) / np.sqrt(Q.shape[-2]), axis=-1) @ V
        '''), None),
]))


def block_partial(s, V):
    """One block of keys' (m, l, a) for one query, as on the blockwise page: the block's largest score m,
    l = sum of e^(s - m), a = e^(s - m) @ V (d_v,).  Lab 5's cell before Exercise 7 defines the same."""
    m = float(np.max(s))
    e = np.exp(s - m)  # (n_block,)
    return m, float(e.sum()), e @ V


def split_and_merge(merge):
    """``merge`` (Lab 5 Ex 7's function) as a function of one query's scores ``s``, values ``V`` and a split ``k``:
    it gets the (m, l, a) of keys 0..k-1 and of keys k.. ."""
    return lambda s, V, k: merge(*block_partial(s[:k], V[:k]), *block_partial(s[k:], V[k:]))


def _whole_row(s, V, k):
    return al.softmax(s) @ V


def merge_cases(rng):
    """The self-check's kinds of split, drawn from ``rng``: the larger maximum in the second block, then in the
    first, then two maxima about 800 apart (a factor e^(m_big - m_small) overflows there)."""
    s, V = 3 * rng.normal(size=10), rng.normal(size=(10, 2))
    s[[1, 7]] = s.max() + np.array([0.5, 2.0])  # key 7, in the second block, holds the row's largest score
    far = rng.normal(size=8)
    far[5:] += 800.0  # the second block's scores far above the first's
    return [(s, V, 4), (s[::-1].copy(), V[::-1].copy(), 6), (far, rng.normal(size=(8, 3)), 5)]


def _merge_source(body: str) -> str:
    return src("""
        def merge_blocks(m1, l1, a1, m2, l2, a2):
            {body}
        """).replace("{body}", textwrap.indent(textwrap.dedent(body).strip(), " " * 4).lstrip())


NO_RESCALE = ("you added the two blocks' sums as they are, with no rescale. Each block measured its terms against "
              "its own maximum, so the block with the smaller maximum counts e^(m_big - m_small) times too much. "
              "Multiply each block's l and a by e^(its m - the row's m) before adding them.")
FLIPPED_RESCALE = ("your rescale factor is upside down: e^(m - m_block) is 1 or more. Re-expressing a block's terms "
                   "against the row's larger maximum m makes them smaller: the factor is e^(m_block - m), at most 1.")
ONLY_A = ("you rescaled the weighted sums a but not the sums l (or the other way round): l and a of one block were "
          "measured against the same maximum, so each needs the same factor.")
NOT_DIVIDED = "you returned the merged a without dividing it by the merged l: the output is a / l."
MERGE_OVERFLOW = ("your result overflows (inf or nan) where the two blocks' maxima are far apart: an exponential such "
                  "as e^(m_big - m_small), or e^m on its own, is too large for float64. Rescale both blocks to the "
                  "larger maximum m, each factor one exp of a difference, e^(m_block - m), so that every factor is at "
                  "most 1 (the blockwise page's reason for subtracting the largest score).")


def _grade_merge(fn, rng, data):
    named = mistakes("05", 7)
    wrapped = [(split_and_merge(f), message) for f, message in named]
    hidden_s = 40 * rng.normal(size=16)  # scores spread widely: a block's weights far from even
    return then(
        lambda: check_function(exercise_name(7), split_and_merge(fn), _whole_row, merge_cases(rng), mistakes=wrapped),
        lambda: check_function(hidden(7), split_and_merge(fn), _whole_row,
                               [(hidden_s, rng.normal(size=(16, 4)), 1),  # one key in the first block
                                (hidden_s, with_bias_inputs(rng, 16, 1), 15),
                                (-hidden_s, rng.normal(size=(16, 4)), 9),
                                (rng.normal(size=3), rng.normal(size=(3, 5)), 2),
                                # the first block's maximum about 800 above the second's: a factor e^(m1 - m2)
                                # overflows there
                                (np.r_[800 + rng.normal(size=3), rng.normal(size=5)], rng.normal(size=(8, 2)), 3)],
                               mistakes=wrapped))


add(Exercise("05", 7, "merge_blocks", _grade_merge, reference=_merge_source("""
    m = max(m1, m2)
    f1, f2 = np.exp(m1 - m), np.exp(m2 - m)
    return (f1 * a1 + f2 * a2) / (f1 * l1 + f2 * l2)
    """), mistakes=[
    (_merge_source("return (a1 + a2) / (l1 + l2)"), NO_RESCALE),
    # before the flipped factor: both give nan where the maxima are far apart
    (_merge_source("""
        m = min(m1, m2)
        f1, f2 = np.exp(m1 - m), np.exp(m2 - m)
        return (f1 * a1 + f2 * a2) / (f1 * l1 + f2 * l2)
        """), MERGE_OVERFLOW),
    (_merge_source("""
        m = max(m1, m2)
        f1, f2 = np.exp(m - m1), np.exp(m - m2)
        return (f1 * a1 + f2 * a2) / (f1 * l1 + f2 * l2)
        """), FLIPPED_RESCALE),
    (_merge_source("""
        m = max(m1, m2)
        f1, f2 = np.exp(m1 - m), np.exp(m2 - m)
        return (f1 * a1 + f2 * a2) / (l1 + l2)
        """), ONLY_A),
    (_merge_source("""
        m = max(m1, m2)
        f1, f2 = np.exp(m1 - m), np.exp(m2 - m)
        return (a1 + a2) / (f1 * l1 + f2 * l2)
        """), ONLY_A),  # b96c: the other way round, which ONLY_A also names
    (_merge_source("""
        m = max(m1, m2)
        f1, f2 = np.exp(m1 - m), np.exp(m2 - m)
        return f1 * a1 + f2 * a2
        """), NOT_DIVIDED),
    (_merge_source("""
        f = np.exp(m1 - m2)
        return (f * a1 + a2) / (f * l1 + l2)
        """), None),  # rescaled to the second block's maximum: exact until the first block holds a far larger one
], right=[_merge_source("""
    # the blockwise page's running update: block 1's state, then block 2 folded in
    m, l, a = m1, l1, a1
    m_new = max(m, m2)
    l = np.exp(m - m_new) * l + np.exp(m2 - m_new) * l2
    a = np.exp(m - m_new) * a + np.exp(m2 - m_new) * a2
    return list(a / l)
    """)]))

def _copy_head_ref(ids, vocab_size):
    return al.toy_lm.next_token_head(ids, vocab_size)[0]


def _copy_head_inputs(rng, n_cases: int):
    """Token sequences with repeated contexts (a few distinct tokens), so that a copy head has matches to find."""
    cases = []
    for _ in range(n_cases):
        vocab_size = int(rng.integers(3, 7))
        cases.append((rng.integers(0, vocab_size, size=int(rng.integers(8, 20))), vocab_size))
    return cases


COPY_SENTENCE = "the cat sat on the mat . the dog sat on the rug . the cat".split()


def _grade_copy_head(fn, rng, data):
    vocab = sorted(set(COPY_SENTENCE))
    sentence = (np.array([vocab.index(w) for w in COPY_SENTENCE]), len(vocab))
    return then(lambda: check_function(exercise_name(2), fn, _copy_head_ref, [sentence, (np.array([2, 0, 1, 2, 0]), 3)],
                                       mistakes=mistakes("06", 2)),
                lambda: check_function(hidden(2), fn, _copy_head_ref,
                                       [*_copy_head_inputs(rng, 4), (np.array([1]), 2), (np.array([0, 1]), 2)],
                                       mistakes=mistakes("06", 2)))


def _copy_head(query: str, key: str, value: str = "one_hot(0)", mask: str = "al.causal_mask(n)") -> str:
    """Lab 6 Exercise 2 written with the given query and key blocks, value and mask."""
    return src(f"""
        def fixed_copy_head(ids, vocab_size):
            n = len(ids)

            def one_hot(offset):
                return al.toy_lm.shifted_one_hot(ids, vocab_size, offset)

            Q = np.concatenate([{query}], axis=1)
            K = np.concatenate([{key}], axis=1)
            V = {value}
            probs, _ = al.scaled_dot_product_attention(Q, K, V, {mask}, scale=5.0)
            return probs
        """)


ECHO = ("your head predicts the token each position already holds (\"cat\" after \"the cat\"): key j describes token j "
        "and the one before it, the same pair as query j, so every query matches itself and copies its own token. "
        "Key j must describe the two tokens just before j (offsets -2 and -1), so that a match means \"token j "
        "followed this context\"")

add(Exercise("06", 2, "fixed_copy_head", _grade_copy_head,
             helpers={"al": {"causal_mask": "attnlib.causal_mask", "softmax": "attnlib.softmax",
                             "scaled_dot_product_attention": "attnlib.scaled_dot_product_attention",
                             "toy_lm.shifted_one_hot": "attnlib.toy_lm.shifted_one_hot"}},
             reference=_copy_head("one_hot(-1), one_hot(0)", "one_hot(-2), one_hot(-1)"), mistakes=[
    (_copy_head("one_hot(-1), one_hot(0)", "one_hot(-1), one_hot(0)"), ECHO),
    (_copy_head("one_hot(-1), one_hot(0)", "one_hot(-2), one_hot(-1)", mask="None"),
     "without the causal mask, key i + 1 describes exactly query i's pair (token i-1, token i), so the head copies "
     "the true next token: a perfect score on text it already has, and a leak of the future. Keep al.causal_mask(n)"),
    (_copy_head("one_hot(-1), one_hot(0)", "one_hot(-1), one_hot(-2)"),
     "the two blocks of your key are in the other order from the query's: the query's first block (token i-1) "
     "must meet the key's first block (token j-2), and its second (token i) the key's second (token j-1, the "
     "token just before j)"),
    (_copy_head("one_hot(-1), one_hot(0)", "one_hot(-2), one_hot(-1)", value="one_hot(-1)"),
     "your values hold the token before each key, the one the query already matched: the head copies the context "
     "back, not what came after it. The value of key j is token j itself (offset 0)"),
    (_copy_head("one_hot(-1), one_hot(0)", "one_hot(0), one_hot(1)"), None),
    (_copy_head("one_hot(-1), one_hot(0)", "one_hot(-1), one_hot(-1)"), None),
], right=[src("""
    def fixed_copy_head(ids, vocab_size):
        ids = np.asarray(ids)
        n = len(ids)
        eye = np.eye(vocab_size)
        def shifted(offset):  # row i: token i + offset, zeros outside the sequence
            out = np.zeros((n, vocab_size))
            for i in range(n):
                if 0 <= i + offset < n:
                    out[i] = eye[ids[i + offset]]
            return out
        Q = np.hstack([shifted(-1), shifted(0)])
        K = np.hstack([shifted(-2), shifted(-1)])
        S = 5.0 * Q @ K.T
        S = np.where(np.tri(n, dtype=bool), S, -np.inf)
        return al.softmax(S, axis=-1) @ shifted(0)
    """)]))

def _kv_cache_ref(n_q, n_k):
    return al.causal_mask(n_k)[n_k - n_q:]  # the last n_q rows of the full causal mask


def _grade_kv_cache_mask(fn, rng, data):
    shown = [(1, 4), (2, 5), (3, 3), (4, 7)]  # (1, 4) first: at (2, 5) the n_q shift and the strict < give one mask
    n_q = int(rng.integers(2, 6))
    more = [(n_q, n_q + int(rng.integers(1, 6))), (1, 1), (5, 6), (int(rng.integers(1, 4)), 9)]
    return then(lambda: check_function(exercise_name(6), fn, _kv_cache_ref, shown, mistakes=mistakes("07", 6)),
                lambda: check_function(hidden(6), fn, _kv_cache_ref, more, mistakes=mistakes("07", 6)))


KV_FROM_ZERO = ("your query i sees keys 0..i, as if the new tokens were the first n_q of the sequence (what "
                "causal_mask(n_q, n_k) or the first n_q rows of the full mask give). They are the last n_q: query i "
                "is token n_k - n_q + i, and it may see every key up to that token.")
KV_TRANSPOSED = ("the mask is the wrong way round: each query sees its own token and the tokens after it. A token "
                 "may see itself and the tokens before it (key j <= its token).")
KV_STRICT = ("each query is hidden from its own token: a token may attend to itself. Use <= (key j up to and "
             "including the query's token), not <.")
KV_SHIFT_NEW = ("your rows are shifted by n_q, the number of new tokens, which is right only when the cache holds "
                "as many tokens as there are new ones. Shift each query by the number of tokens before the first "
                "new one.")

add(Exercise("07", 6, "kv_cache_mask", _grade_kv_cache_mask, helpers=al_helpers("causal_mask"), reference=src('''
    def kv_cache_mask(n_q, n_k):
        i = np.arange(n_q)[:, None]
        j = np.arange(n_k)[None, :]
        return j <= n_k - n_q + i
    '''), mistakes=[
    (src('''
        def kv_cache_mask(n_q, n_k):
            return al.causal_mask(n_q, n_k)
        '''), KV_FROM_ZERO),
    (src('''
        def kv_cache_mask(n_q, n_k):
            return al.causal_mask(n_k)[:, n_k - n_q:].T
        '''), KV_TRANSPOSED),
    (src('''
        def kv_cache_mask(n_q, n_k):
            i = np.arange(n_q)[:, None]
            j = np.arange(n_k)[None, :]
            return j < n_k - n_q + i
        '''), KV_STRICT),
    (src('''
        def kv_cache_mask(n_q, n_k):
            return al.causal_mask(n_k)[:n_q, :]
        '''), "the first rows"),
    (src('''
        def kv_cache_mask(n_q, n_k):
            i = np.arange(n_q)[:, None]
            return np.arange(n_k)[None, :] <= n_q - 1 + i
        '''), "offset by n_q"),
    (src('''
        def kv_cache_mask(n_q, n_k):
            i = np.arange(n_q)[:, None]
            j = np.arange(n_k)[None, :]
            return j <= i + n_q
        '''), KV_SHIFT_NEW),  # Lab 7's buggy_kv_cache_mask: it passes a test with n_q = n_k - n_q
], right=[src('''
    def kv_cache_mask(n_q, n_k):
        return al.causal_mask(n_k)[-n_q:]
    '''), src('''
    def kv_cache_mask(n_q, n_k):
        return np.tril(np.ones((n_q, n_k), dtype=bool), k=n_k - n_q)
    '''), src('''
    def kv_cache_mask(n_q, n_k):
        mask = np.zeros((n_q, n_k), dtype=bool)
        for i in range(n_q):
            mask[i, : n_k - n_q + i + 1] = True  # query i is token n_k - n_q + i
        return mask
    ''')]))



# --- the catalogue as the self-checks use it ------------------------------------------------

_MISTAKE_FUNCTIONS: dict = {}


def mistakes(lab: str, number: int, **data) -> list:
    """The named mistakes of an exercise as ``(function, message)`` pairs, for ``check_function(mistakes=...)``.

    Each function is the mistaken answer cell run here with ``np``, ``math``, ``al`` (attnlib) and the
    exercise's helpers, plus ``data`` (the lab's variables it reads).  Mistakes without a message of their
    own (the generic one fits) are left out.
    """
    key = (str(lab), int(number))
    if key not in EXERCISES:
        raise ValueError(f"no exercise {number} in lab {lab}; known: {sorted(EXERCISES)}")
    if key in _MISTAKE_FUNCTIONS and not data:
        return _MISTAKE_FUNCTIONS[key]
    ex = EXERCISES[key]
    out = []
    for source, message in ex.mistakes:
        if not message or len(message) < 30:  # a short tag names the mutant for the tests, not a diagnosis
            continue
        namespace = {"np": np, "math": math, "al": al, "recall": _recall, "rnn": _rnn, **data}
        exec(compile(source, f"<mistake of lab {lab} exercise {number}>", "exec"), namespace)  # noqa: S102
        out.append((namespace[ex.function], message))
    if not data:
        _MISTAKE_FUNCTIONS[key] = out
    return out


# --- right answers as they stand in a notebook cell (adv7 F9) -----------------------------------
# The grader runs the answer cell alone: IPython syntax becomes Python (magics and shell lines do nothing,
# %%time runs its body), the self-checks, matplotlib and attnlib.plotting are stand-ins that do nothing, and a
# top-level line that fails after the function is defined (a try-out on the lab's variables) is reported in
# the feedback while the function is graded.
EXERCISES["01", 1].right.append(src('''
    def top_words(tokens, weights, k):
        """The k tokens with the largest weights, largest first, without markers."""
        order = np.argsort(weights)[::-1]
        return [tokens[j] for j in order if tokens[j] not in ("[CLS]", "[SEP]")][:k]


    print(top_words(tokens, weights, 3))  # try it on the sentence above
    '''))
EXERCISES["03", 5].right.append(src('''
    import matplotlib.pyplot as plt

    def my_kernel_regression(x_query, x_keys, y_values, sigma):
        scores = -((x_query[:, None] - x_keys[None, :]) ** 2) / (2 * sigma**2)
        return al.softmax(scores) @ y_values

    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    '''))
EXERCISES["04", 1].right.append(src('''
    from attnlib.checks import check_self_attention

    def self_attention(X, params):
        Q, K, V = X @ params["W_q"], X @ params["W_k"], X @ params["W_v"]
        weights = al.softmax(Q @ K.T / np.sqrt(K.shape[-1]), axis=-1)
        return weights @ V, weights

    check_self_attention(self_attention)
    '''))
EXERCISES["05", 1].right.append(src('''
    %%time
    def attention_row_by_row(Q, K, V):
        Q, K, V = (np.asarray(a, dtype=float) for a in (Q, K, V))
        return np.stack([al.softmax(K @ q / np.sqrt(K.shape[1])) @ V for q in Q])
    '''))
EXERCISES["05", 1].right.append(src('''
    def attention_row_by_row(Q, K, V):
        Q, K, V = (np.asarray(a, dtype=float) for a in (Q, K, V))
        return np.stack([al.softmax(K @ q / np.sqrt(K.shape[1])) @ V for q in Q])

    %timeit attention_row_by_row(np.ones((4, 2)), np.ones((4, 2)), np.ones((4, 2)))
    !echo done
    '''))
EXERCISES["04", 4].mistakes.append((src('''
    def mha(X_q, X_kv, params, n_heads):
        Q = al.split_heads(X_q @ params["W_q"], n_heads)
        K = al.split_heads(X_kv @ params["W_k"], n_heads)
        V = al.split_heads(X_kv @ params["W_v"], n_heads)
        heads, weights = al.scaled_dot_product_attention(Q, K, V)
        return al.merge_heads(heads) @ params["W_o"], np.swapaxes(weights, -1, -2)
    '''), "your output is right but your weights differ from the expected ones"))  # adv7: named "the output"


# adv16 F1: a softmax that clips the scores (the "fix" a learner told "exp overflows" often finds) or shifts them by the
# first score passed the large-score cases, whose one high key came first.  Now two high keys score 1600 and 1596 at
# random positions (with_large_scores) and a case with scores near +-450 comes before (moderate_case), where only the
# first-score shift overflows: each gets its own diagnosis.
CLIPPED = ("your softmax clips the scores (np.clip or np.minimum) to keep exp from overflowing: every score above the "
           "clip then gets the same weight, so two large scores 4 apart weigh the same. Subtract the largest score "
           "from every score before exp instead (the weights do not change), or use al.softmax.")
FIRST_SHIFT = ("you subtract the first score before exp, not the largest: a later score more than about 709 above "
               "the first still overflows (inf / inf is nan). Subtract the largest score of each row (max, "
               "keepdims=True), or use al.softmax.")
_SHIFTED = {
    ("01", 6): ('''
        def dot_product_lookup(q, K, V):
            scores = np.minimum(K @ q, 700.0)  # exp(710) overflows
            weights = np.exp(scores) / np.exp(scores).sum()
            return weights @ V
        ''', '''
        def dot_product_lookup(q, K, V):
            scores = K @ q
            e = np.exp(scores - scores[0])
            return (e / e.sum()) @ V
        '''),
    ("01", 7): ('''
        def fixed_lookup(q, K, V):
            scores = np.clip(K @ q, -30, 30)
            weights = np.exp(scores) / np.exp(scores).sum()
            return weights @ V
        ''', '''
        def fixed_lookup(q, K, V):
            scores = K @ q
            e = np.exp(scores - scores[0])
            return (e / e.sum()) @ V
        '''),
    ("03", 6): ('''
        def fixed_attention(Q, K, V):
            S = np.clip(Q @ K.T / np.sqrt(K.shape[-1]), -30, 30)  # keep exp from overflowing
            W = np.exp(S)
            W = W / W.sum(axis=-1, keepdims=True)
            return W @ V
        ''', '''
        def fixed_attention(Q, K, V):
            S = Q @ K.T / np.sqrt(K.shape[-1])
            e = np.exp(S - S[:, :1])
            return (e / e.sum(axis=-1, keepdims=True)) @ V
        '''),
    ("05", 6): ('''
        def fixed_batched_attention(Q, K, V):
            s = np.clip(Q @ np.swapaxes(K, -1, -2) / np.sqrt(K.shape[-1]), -30, 30)
            w = np.exp(s) / np.exp(s).sum(axis=-1, keepdims=True)
            return w @ V
        ''', '''
        def fixed_batched_attention(Q, K, V):
            s = Q @ np.swapaxes(K, -1, -2) / np.sqrt(K.shape[-1])
            e = np.exp(s - s[..., :1])
            return (e / e.sum(axis=-1, keepdims=True)) @ V
        '''),
}
for _key, (_clipped, _first) in _SHIFTED.items():
    # b96c: an exp with nothing subtracted gives the nan that the first-score shift gives on the large case, so it
    # was told "you subtract the first score"; named (and listed before that shift), it gets its own diagnosis
    EXERCISES[_key].mistakes = [(source, OVERFLOW if message == "overflow" else message)
                                for source, message in EXERCISES[_key].mistakes]
    EXERCISES[_key].mistakes += [(src(_clipped), CLIPPED), (src(_first), FIRST_SHIFT)]
_MISTAKE_FUNCTIONS.clear()

# A later exercise may call the learner's own function of an earlier one, as the notebook lets it (adv11 F3:
# split, my_causal_mask, my_softmax were a NameError, each answer cell being graded alone).  The earlier
# function is served under its notebook name as attnlib's own, and only to exercises that already have that
# attnlib function as a helper (under al.): an alias, so no exercise gets an answer it did not have (the
# fix-the-bug exercises whose answer is an earlier function, 06/7, 07/6, 03/6's my_attention, get
# none; grader.py explains their NameError).
# adv16 F4: each name is served as an adapter of attnlib.grading.aliases with the signature and parameter names of
# the exercise that defines it (attnlib's rnn_step(x, h, params) as my_rnn_step(x, h, W_xh, W_hh, b_h) failed a
# right answer); name -> (the adapter, the attnlib function it computes with, which the exercise must already give).
ALIASES = "attnlib.grading.aliases"
EARLIER_FUNCTIONS = {
    "01": {"my_softmax": (f"{ALIASES}.lab01_my_softmax", "attnlib.softmax")},
    "02": {"my_rnn_step": (f"{ALIASES}.lab02_my_rnn_step", "attnlib.rnn.rnn_step")},  # 02/7 (adv15 F10)
    "03": {"my_softmax": (f"{ALIASES}.lab03_my_softmax", "attnlib.softmax"),
           "my_softmax_backward": (f"{ALIASES}.lab03_my_softmax_backward", "attnlib.softmax_backward")},
    "04": {"split": (f"{ALIASES}.lab04_split", "attnlib.split_heads"),
           "my_causal_mask": (f"{ALIASES}.lab04_my_causal_mask", "attnlib.causal_mask")},
}


def _serve_earlier_functions() -> None:
    for ex in EXERCISES.values():
        if ex.plain:
            continue
        given = {path for space in ex.helpers.values() if isinstance(space, dict) for path in space.values()}
        for name, (adapter, path) in EARLIER_FUNCTIONS.get(ex.lab, {}).items():
            defined_in = [e.number for e in EXERCISES.values() if e.lab == ex.lab and e.function == name]
            if defined_in and ex.number > min(defined_in) and path in given and name not in ex.helpers:
                ex.helpers = {**ex.helpers, name: adapter}


_serve_earlier_functions()
