"""The top level shows the book's structure: the core in a sorted __all__, chapter helpers as modules."""

import pytest

import attnlib

CORE = {"softmax", "scaled_dot_product_attention", "causal_mask", "padding_mask", "multi_head_attention",
        "init_multi_head", "split_heads", "merge_heads", "sinusoidal_positional_encoding", "nadaraya_watson",
        "blockwise_attention", "softmax_backward", "attention_backward", "multi_head_attention_backward"}


def test_all_is_sorted_and_holds_the_core():
    assert attnlib.__all__ == sorted(attnlib.__all__)
    assert CORE <= set(attnlib.__all__)
    assert all(callable(getattr(attnlib, name)) for name in attnlib.__all__)


@pytest.mark.parametrize("module, name", [("rnn", "init_rnn"), ("toy", "toy_translation"), ("recall", "one_hot"),
                                          ("pretrained", "load_minilm"), ("toy_lm", "generate")])
def test_chapter_helpers_live_in_their_modules(module, name):
    assert callable(getattr(getattr(attnlib, module), name))
    assert name not in attnlib.__all__
    with pytest.raises(AttributeError, match=rf"use attnlib\.{module}\.{name}"):
        getattr(attnlib, name)


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        attnlib.nothing  # noqa: B018
