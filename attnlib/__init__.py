"""attnlib: the small numpy library behind *Attention, interactively*.

Every function is pure numpy, does one thing, and is explained in a chapter of
the book.  Masks are boolean: True means "this query may attend to this key".
"""

from attnlib.attention import check_qkv, scaled_dot_product_attention
from attnlib.backward import attention_backward, multi_head_attention_backward, softmax_backward
from attnlib.blockwise import blockwise_attention, blockwise_plan
from attnlib.kernel import nadaraya_watson
from attnlib.masks import causal_mask, padding_mask
from attnlib.multihead import init_multi_head, merge_heads, multi_head_attention, split_heads
from attnlib.positional import sinusoidal_positional_encoding
from attnlib.pretrained import head_attention, load_minilm
from attnlib.rnn import check_rnn_params, init_rnn, rnn_encode, rnn_step
from attnlib.scores import (
    additive_scores,
    dot_product_scores,
    init_additive,
    scaled_dot_product_scores,
)
from attnlib.softmax import softmax
from attnlib.toy import (
    TOY_SENTENCE,
    TOY_TRANSLATION,
    random_rotation,
    toy_embeddings,
    toy_embeddings_with_positions,
    toy_self_attention_params,
    toy_translation,
    toy_two_head_params,
)
from attnlib.toy_lm import generate, masked_token_head, next_token_head, shifted_one_hot
from attnlib.transformer import encoder_layer, feed_forward, gelu, layer_norm, token_embeddings
from attnlib.vision import embed_patches, image_to_patches, patches_to_image, pca_patch_projection

__version__ = "0.1.0"

__all__ = [
    "additive_scores",
    "attention_backward",
    "blockwise_attention",
    "blockwise_plan",
    "causal_mask",
    "check_qkv",
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
    "TOY_SENTENCE",
    "TOY_TRANSLATION",
    "random_rotation",
    "toy_embeddings",
    "toy_embeddings_with_positions",
    "toy_self_attention_params",
    "toy_translation",
    "toy_two_head_params",
    "generate",
    "masked_token_head",
    "next_token_head",
    "shifted_one_hot",
    "embed_patches",
    "image_to_patches",
    "patches_to_image",
    "pca_patch_projection",
    "load_minilm",
    "head_attention",
    "layer_norm",
    "gelu",
    "feed_forward",
    "token_embeddings",
    "encoder_layer",
    "init_rnn",
    "rnn_step",
    "rnn_encode",
    "check_rnn_params",
]
