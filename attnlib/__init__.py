"""attnlib: the small numpy library behind *Attention, interactively*.

Every function is pure numpy, does one thing, and is explained in a chapter of
the book.  Masks are boolean: True means "this query may attend to this key".

The top level holds the core, in the order the book builds it: softmax, scores,
attention, masks, multi-head attention, positional encodings, kernel regression,
blockwise attention and the backward passes.  Chapter helpers are modules, reached
as ``attnlib.rnn``, ``attnlib.toy`` and so on (imported on first use):

==================  ==========================================================
``fast``            the cache-blocked, multi-threaded twins of the core (chapter 5)
``rnn``             a recurrent encoder (chapter 2)
``recall``          what an RNN's state remembers, and attention's recall (chapters 2, 5)
``timing``          best-of-n timing and log-log slopes (chapters 2, 5)
``toy``             hand-built sentences, embeddings and projections (chapters 1, 4)
``toy_lm``          toy GPT- and BERT-style heads (chapter 6)
``vision``          images as patch tokens (chapter 6)
``transformer``     layer norm, feed-forward, an encoder layer (chapter 6)
``pretrained``      the real MiniLM model, run in numpy (chapters 1, 5, 6)
``nn``              embeddings, cross-entropy and Adam for training (chapters 3, 6)
``assoc``           learning W_q and W_k on associative recall (chapter 3)
``induction``       a two-layer attention-only transformer (chapter 6)
``plotting``        heatmaps and colours; ``diagrams``: diagrams of the computation
``widgets``         the interactive widgets; ``checks``: the labs' self-checks
==================  ==========================================================
"""

import re
from importlib import import_module
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from attnlib.attention import scaled_dot_product_attention
from attnlib.backward import attention_backward, multi_head_attention_backward, softmax_backward
from attnlib.blockwise import blockwise_attention, blockwise_plan
from attnlib.kernel import nadaraya_watson
from attnlib.masks import causal_mask, padding_mask
from attnlib.multihead import init_multi_head, merge_heads, multi_head_attention, split_heads
from attnlib.positional import sinusoidal_positional_encoding
from attnlib.scores import additive_scores, dot_product_scores, init_additive, scaled_dot_product_scores
from attnlib.softmax import softmax

try:
    __version__ = version("attnlib")  # one source: pyproject.toml's [project] version
except PackageNotFoundError:  # running from a checkout that was never installed
    __version__ = "0+unknown"

__all__ = [
    "additive_scores",
    "attention_backward",
    "blockwise_attention",
    "blockwise_plan",
    "causal_mask",
    "dot_product_scores",
    "init_additive",
    "init_multi_head",
    "merge_heads",
    "multi_head_attention",
    "multi_head_attention_backward",
    "nadaraya_watson",
    "padding_mask",
    "scaled_dot_product_attention",
    "scaled_dot_product_scores",
    "sinusoidal_positional_encoding",
    "softmax",
    "softmax_backward",
    "split_heads",
]

_MODULES = ("assoc", "checks", "diagrams", "fast", "induction", "nn", "plotting", "pretrained", "recall", "rnn",
            "timing", "toy", "toy_lm", "transformer", "vision", "widgets")


def __getattr__(name: str):
    """Import a chapter helper module on first use: ``attnlib.rnn.init_rnn(...)``.

    A name that is not here gets an AttributeError; if a chapter helper module defines
    it, the message says where (found by reading the modules' source, not importing them).
    """
    if name in _MODULES:
        return import_module(f"attnlib.{name}")
    if not name.startswith("_"):
        defined = re.compile(rf"^(?:def|class) {re.escape(name)}\b", re.MULTILINE)
        for module in ("rnn", "recall", "toy", "toy_lm", "vision", "transformer", "pretrained"):
            if defined.search((Path(__file__).parent / f"{module}.py").read_text(encoding="utf-8")):
                raise AttributeError(f"attnlib.{name} is a chapter helper: use attnlib.{module}.{name}")
    raise AttributeError(f"module 'attnlib' has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *_MODULES])
