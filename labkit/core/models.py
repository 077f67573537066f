"""Core: model factories and checkpoints. The real pretrained MiniLM from the cache,
sentence embeddings from it (`embed`, cached), `mean_pool` (the one pooling every labkit
model uses), small BERTs built from a config, and safetensors `save` / `load` that check
the tokenizer fits the model.

Leaves out: classification heads (`labkit.core.classifier`) and training (`labkit.core.train`).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from labkit.core import cache, fetch
from labkit.core.text import check_texts


def load_minilm():
    """(tokenizer, encoder) of all-MiniLM-L6-v2 from the fetched weights; no hub access."""
    from transformers import AutoModel, AutoTokenizer
    folder = fetch.path("minilm")
    with fetch.reading("minilm"):
        return AutoTokenizer.from_pretrained(folder), AutoModel.from_pretrained(folder)


def minilm_word_table() -> tuple[list, np.ndarray]:
    """(vocabulary, input word-embedding table with unit-length rows) of the fetched MiniLM,
    read from its safetensors without building the model: lab 04 ranks synonyms by it, lab
    06's attacks take nearest words from it."""
    from safetensors import safe_open
    folder = fetch.path("minilm")
    vocab = (folder / "vocab.txt").read_text(encoding="utf-8").split("\n")
    with safe_open(str(folder / "model.safetensors"), "np") as f:
        table = f.get_tensor(next(k for k in f.keys() if k.endswith("word_embeddings.weight")))
    return vocab[:len(table)], table / np.linalg.norm(table, axis=1, keepdims=True)


def mean_pool(hidden, attention_mask):
    """Mean of the token states where ``attention_mask`` is 1 (padding left out).

    Shapes: hidden (batch, seq, h), attention_mask (batch, seq) -> (batch, h).
    Example: states [[1], [3], [pad]] with mask [1, 1, 0] -> [2].
    """
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)         # (batch, seq, 1)
    return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)       # (batch, h)


def embed(texts, max_length: int = 64, batch_size: int = 64, progress: bool = True) -> np.ndarray:
    """Mean-pooled, L2-normalised MiniLM sentence embeddings, shape (len(texts), 384).

    Cached in the run cache by a hash of the texts, so a second call (or the next lab) is
    instant. Texts are sorted by length before batching, which halves padding on CPU.
    """
    texts = check_texts(texts, "embed() got no texts")
    return _embeddings(texts, max_length, batch_size, progress)["embeddings"]


@cache.cached("minilm-embeddings", exclude=("batch_size", "progress"),
              depends=lambda: {"minilm": fetch.REGISTRY["minilm"].archive.sha256})
def _embeddings(texts, max_length, batch_size, progress) -> dict:
    import torch
    from tqdm.auto import tqdm
    tok, model = load_minilm()
    model.eval()
    order = np.argsort([len(t) for t in texts])
    out = np.zeros((len(texts), model.config.hidden_size), dtype=np.float32)
    with torch.inference_mode():
        for start in tqdm(range(0, len(texts), batch_size), desc="MiniLM embeddings",
                          disable=not progress, leave=False):
            idx = order[start:start + batch_size]
            batch = tok([texts[i] for i in idx], padding=True, truncation=True,
                        max_length=max_length, return_tensors="pt")
            hidden = model(**batch).last_hidden_state           # (batch, seq, 384)
            pooled = mean_pool(hidden, batch["attention_mask"])  # (batch, 384)
            out[idx] = torch.nn.functional.normalize(pooled, dim=-1).numpy()
    return {"embeddings": out}


# ---------------------------------------------------------------- small BERTs (lab 02 on)

def small_bert(vocab_size: int, hidden: int = 128, layers: int = 2, heads: int = 2,
               max_len: int = 128, num_labels: int | None = None, pad_token_id: int = 0):
    """A small BERT from a config: ``BertForMaskedLM``, or with ``num_labels`` a
    ``BertForSequenceClassification``. Example: ``small_bert(8000)`` has ~1.5 M parameters."""
    from transformers import BertConfig, BertForMaskedLM, BertForSequenceClassification
    if hidden % heads:
        raise ValueError(f"hidden={hidden} must be divisible by heads={heads}")
    cfg = BertConfig(vocab_size=vocab_size, hidden_size=hidden, num_hidden_layers=layers,
                     num_attention_heads=heads, intermediate_size=4 * hidden,
                     max_position_embeddings=max_len, pad_token_id=pad_token_id,
                     num_labels=num_labels or 2)
    return BertForSequenceClassification(cfg) if num_labels else BertForMaskedLM(cfg)


def save(model, tokenizer, folder: Path) -> Path:
    """Save model (safetensors) and tokenizer into ``folder``, atomically."""
    with cache.atomic_folder(folder) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
    return Path(folder)


def load(folder: Path, cls=None):
    """(tokenizer, model) saved by `save`; refuses a model whose vocabulary does not match
    the tokenizer's. Only safetensors weights are read."""
    from transformers import AutoTokenizer, BertForMaskedLM
    folder = Path(folder)
    if not (folder / "model.safetensors").exists():
        raise FileNotFoundError(f"no model.safetensors in {folder}; save with labkit.core.models.save")
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = (cls or BertForMaskedLM).from_pretrained(folder, use_safetensors=True)
    check_vocab(model, tokenizer)
    return tokenizer, model


def check_vocab(model, tokenizer) -> None:
    """Raise ValueError when the model's embedding table does not fit the tokenizer."""
    rows = model.get_input_embeddings().num_embeddings
    if rows != len(tokenizer):
        raise ValueError(f"the model has {rows} token embeddings but the tokenizer has "
                         f"{len(tokenizer)} tokens: they were not trained together. Load the "
                         "tokenizer saved with this checkpoint.")
