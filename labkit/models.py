"""Model factories and artifacts: the real pretrained MiniLM from the cache, sentence
embeddings from it (cached as safetensors), small BERTs built from a config, and
safetensors save/load that checks the tokenizer fits the model.

Leaves out: training (`labkit.train`, `labkit.pretrain`).
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from . import fetch
from .env import cache_dir


def artifact_path(name: str) -> Path:
    """``<cache>/artifacts/<name>``; the folder is created."""
    folder = cache_dir() / "artifacts"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / name


def load_minilm():
    """(tokenizer, encoder) of all-MiniLM-L6-v2 from the fetched weights; no hub access."""
    from transformers import AutoModel, AutoTokenizer
    folder = fetch.path("minilm")
    return AutoTokenizer.from_pretrained(folder), AutoModel.from_pretrained(folder)


def _texts_key(texts, max_length: int) -> str:
    h = hashlib.sha256(f"minilm|{max_length}|".encode())
    for t in texts:
        h.update(t.encode("utf-8") + b"\0")
    return h.hexdigest()[:16]


def embed(texts, max_length: int = 64, batch_size: int = 64, cache: bool = True,
          progress: bool = True) -> np.ndarray:
    """Mean-pooled, L2-normalised MiniLM sentence embeddings, shape (len(texts), 384).

    Cached in the artifact cache by a hash of the texts, so a second call (or the next lab)
    is instant. Texts are sorted by length before batching, which halves padding on CPU.
    """
    import torch
    from safetensors.numpy import load_file, save_file
    from tqdm.auto import tqdm
    from .text import check_texts
    texts = check_texts(texts, "embed() got no texts")
    path = artifact_path(f"minilm-embeddings-{_texts_key(texts, max_length)}.safetensors")
    if cache and path.exists():
        return load_file(path)["embeddings"]
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
            mask = batch["attention_mask"].unsqueeze(-1).float()  # (batch, seq, 1)
            mean = (hidden * mask).sum(1) / mask.sum(1)
            out[idx] = torch.nn.functional.normalize(mean, dim=-1).numpy()
    if cache:
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        save_file({"embeddings": out}, str(tmp))
        os.replace(tmp, path)
    return out


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
    from .env import atomic_folder
    with atomic_folder(folder) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
    return Path(folder)


def load(folder: Path, cls=None):
    """(tokenizer, model) saved by `save`; refuses a model whose vocabulary does not match
    the tokenizer's. Only safetensors weights are read."""
    from transformers import AutoTokenizer, BertForMaskedLM
    folder = Path(folder)
    if not (folder / "model.safetensors").exists():
        raise FileNotFoundError(f"no model.safetensors in {folder}; save with labkit.models.save")
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
