"""Model factories and artifacts: the real pretrained MiniLM from the cache, sentence
embeddings from it (cached as safetensors), and atomic artifact writes.

Leaves out: training (`labkit.train`) and small BERTs built from a config (lab 02).
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
    texts = list(texts)
    if not texts:
        raise ValueError("embed() got no texts")
    bad = [i for i, t in enumerate(texts) if not isinstance(t, str)]
    if bad:
        raise TypeError(f"embed() needs strings; items {bad[:5]} are {type(texts[bad[0]]).__name__}")
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
