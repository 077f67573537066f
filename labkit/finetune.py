"""Lab 03: fine-tuning for sentiment, and what pretraining is worth at each label budget.

A `Classifier` puts a linear head on the mean-pooled states of any BERT-style encoder, so
the small BERT of lab 02 (pretrained or from scratch) and the real pretrained MiniLM are
built, trained (`fine_tune`, through the one loop `labkit.train.train`), scored and saved
the same way. `frozen_accuracy` is the cheap alternative: logistic regression on frozen
features (MiniLM sentence embeddings, or `features` for a linear probe). `save_classifier` / `load_classifier` keep the best model of each kind
in the artifact cache for labs 04-06.
Leaves out: hyper-parameter search, early stopping, layer-wise learning rates.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import torch

from .env import scale as current_scale
from .text import CONTRAST, NEGATION, check_texts, pad


@dataclass
class FinetuneConfig:
    """Settings of lab 03. ``FinetuneConfig.for_scale()`` picks them for LABKIT_SCALE."""
    budgets: tuple = (100, 500, 2000, None)  # labels per run; None = the whole train split
    seeds: int = 3                 # label samples (and inits) per budget for the cheap models
    max_len: int = 64              # tokens per review (longer ones are cut; ~95% fit)
    small_batch_size: int = 32
    small_budgets: tuple = (100, 500, 2000)  # small BERTs: ~0.05 s a step here
    small_lr: float = 1e-3
    small_steps: int = 150         # optimizer steps per small-BERT run
    minilm_budgets: tuple = (500, 2000)      # fine-tuning MiniLM: ~0.4 s a step here
    minilm_lr: float = 1e-4
    minilm_epochs: int = 2
    minilm_batch_size: int = 16    # 32 needs ~0.5 GB more memory for no gain
    train_size: int | None = None  # cap on the training pool (None = the fixed train split)
    test_size: int | None = None   # cap on test reviews (None = the fixed test split)
    seed: int = 0

    @classmethod
    def for_scale(cls, scale: str | None = None) -> "FinetuneConfig":
        scale = scale or current_scale()
        if scale == "smoke":
            return cls(budgets=(50, 200), seeds=2, max_len=32, small_budgets=(50, 200),
                       small_steps=15, minilm_budgets=(64,), minilm_epochs=1,
                       train_size=1000, test_size=300)
        if scale == "gpu":
            return cls(seeds=5, max_len=128, small_budgets=(100, 500, 2000, None),
                       small_steps=600, minilm_budgets=(100, 500, 2000, None), minilm_epochs=3)
        return cls()


class Classifier(torch.nn.Module):
    """Linear head on the mean of the encoder's token states (padding left out).

    Example: ``Classifier(transformers.BertModel(cfg))(input_ids, attention_mask)`` ->
    logits of shape (batch, 2).
    """

    def __init__(self, encoder, num_labels: int = 2, dropout: float = 0.1):
        super().__init__()
        self.encoder = encoder
        self.dropout = torch.nn.Dropout(dropout)
        self.head = torch.nn.Linear(encoder.config.hidden_size, num_labels)

    def forward(self, input_ids, attention_mask, **_):
        hidden = self.encoder(input_ids=input_ids,
                              attention_mask=attention_mask).last_hidden_state  # (b, seq, h)
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)                    # (b, seq, 1)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)              # (b, h)
        return self.head(self.dropout(pooled))                                  # (b, labels)


# ---------------------------------------------------------------- data in, predictions out

def _check(texts, labels=None) -> tuple[list, np.ndarray | None]:
    texts = check_texts(texts, "no texts: give at least one review")
    if labels is None:
        return texts, None
    labels = np.asarray(labels)
    if len(labels) != len(texts):
        raise ValueError(f"{len(texts)} texts but {len(labels)} labels")
    if labels.dtype.kind not in "iu" or (labels < -1).any():
        raise ValueError(f"labels must be class numbers 0, 1, ... (-1: unlabelled); got dtype "
                         f"{labels.dtype} with values like {labels[:3].tolist()}")
    return texts, labels


def length_grouped_batches(lengths, batch_size: int, seed: int = 0, pool: int = 50) -> list:
    """Shuffled batches of indices whose items have similar lengths: shuffle, cut into pools
    of ``pool`` batches, sort each pool by length, batch it, shuffle the batches. Padding
    per batch drops ~2x on reviews, and so does the time of a step on a CPU.

    Example: ``length_grouped_batches([5, 1, 4, 2], 2)`` -> [[3, 1], [0, 2]].
    """
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(lengths))
    lengths = np.asarray(lengths)
    batches = []
    for start in range(0, len(order), batch_size * pool):
        chunk = order[start:start + batch_size * pool]
        chunk = chunk[np.argsort(-lengths[chunk], kind="stable")]
        batches += [chunk[i:i + batch_size].tolist() for i in range(0, len(chunk), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def loader(tokenizer, texts, labels=None, max_len: int = 64, batch_size: int = 32,
           shuffle: bool = False, seed: int = 0, targets=None):
    """A DataLoader of padded batches {input_ids, attention_mask[, labels][, targets]};
    with ``shuffle``, batches are drawn by `length_grouped_batches` (a new draw each epoch).
    ``targets`` (one row of numbers per text, e.g. a teacher's logits in lab 05) ride along
    as a float tensor; a label of -1 marks an unlabelled text."""
    from torch.utils.data import DataLoader
    texts, labels = _check(texts, labels)
    ids = tokenizer(texts, truncation=True, max_length=max_len)["input_ids"]
    if targets is not None and len(targets) != len(ids):
        raise ValueError(f"{len(targets)} target rows for {len(ids)} texts")
    items = list(zip(ids, labels.tolist() if labels is not None else [None] * len(ids),
                     np.asarray(targets, dtype=np.float32) if targets is not None
                     else [None] * len(ids)))
    pad_id = tokenizer.pad_token_id

    def collate(batch):
        input_ids = pad([x for x, _, _ in batch], pad_id)                # (b, longest)
        out = {"input_ids": input_ids, "attention_mask": (input_ids != pad_id).long()}
        if batch[0][1] is not None:
            out["labels"] = torch.tensor([y for _, y, _ in batch])
        if batch[0][2] is not None:
            out["targets"] = torch.from_numpy(np.stack([t for _, _, t in batch]))
        return out

    if not shuffle:
        return DataLoader(items, batch_size=batch_size, collate_fn=collate)
    return DataLoader(items, collate_fn=collate,
                      batch_sampler=_Grouped([len(x) for x in ids], batch_size, seed))


class _Grouped:
    """Batch sampler: a fresh `length_grouped_batches` draw on every pass."""

    def __init__(self, lengths, batch_size: int, seed: int):
        self.lengths, self.batch_size, self.seed, self.epoch = lengths, batch_size, seed, 0

    def __len__(self):
        return -(-len(self.lengths) // self.batch_size)

    def __iter__(self):
        self.epoch += 1
        return iter(length_grouped_batches(self.lengths, self.batch_size, self.seed * 1000 + self.epoch))


def _outputs(model, tokenizer, texts, max_len: int, batch_size: int = 64) -> np.ndarray:
    """``model``'s outputs for ``texts``, batched by length and returned in the order given."""
    from .train import predict
    texts, _ = _check(texts)
    order = np.argsort([len(t) for t in texts], kind="stable")
    out, _ = predict(model, loader(tokenizer, [texts[i] for i in order], max_len=max_len,
                                   batch_size=batch_size))
    result = np.empty_like(out)
    result[order] = out
    return result


def predict_proba(model, tokenizer, texts, max_len: int = 64) -> np.ndarray:
    """Class probabilities, shape (len(texts), labels)."""
    return torch.from_numpy(_outputs(model, tokenizer, texts, max_len)).softmax(-1).numpy()


def features(encoder, tokenizer, texts, max_len: int = 64) -> np.ndarray:
    """Mean-pooled token states of a frozen ``encoder``, shape (len(texts), hidden): what a
    `Classifier`'s head sees. Example: features for a linear probe of lab 02's model."""
    pool = Classifier(encoder)
    pool.head = torch.nn.Identity()
    return _outputs(pool, tokenizer, texts, max_len)


def accuracy(model, tokenizer, texts, labels, max_len: int = 64) -> float:
    """Share of ``texts`` whose most likely class is the label."""
    texts, labels = _check(texts, labels)
    return float((predict_proba(model, tokenizer, texts, max_len).argmax(-1) == labels).mean())


# ---------------------------------------------------------------- models and training

def small_classifier(mlm_model, pretrained: bool = True, seed: int = 0, num_labels: int = 2):
    """A `Classifier` on the lab-02 architecture: the pretrained encoder of ``mlm_model``
    (copied), or the same architecture freshly initialised (``pretrained=False``)."""
    import copy
    from transformers import BertModel
    from .env import seed_everything
    seed_everything(seed)
    encoder = (copy.deepcopy(mlm_model.bert) if pretrained
               else BertModel(mlm_model.config, add_pooling_layer=False))
    return Classifier(encoder, num_labels)


def minilm_classifier(seed: int = 0, num_labels: int = 2, train_word_embeddings: bool = False):
    """(tokenizer, `Classifier`) on the pretrained MiniLM encoder from the fetched weights.

    The word-embedding table (30,522 x 384: 11.7 M of MiniLM's 22.7 M weights) stays frozen
    unless ``train_word_embeddings``: its gradient is dense, so training it costs about a
    third more time a step and ~0.2 GB more memory here (batch 16: 0.50 vs 0.38 s), and with
    a few thousand labels it did not help (2,000 labels: 0.805 frozen at batch 16, 0.797
    with every weight trained at batch 32).
    """
    from .env import seed_everything
    from .models import load_minilm
    tokenizer, encoder = load_minilm()
    encoder.pooler = None  # the Classifier pools by itself: leave out BERT's unused pooler
    encoder.embeddings.word_embeddings.weight.requires_grad_(train_word_embeddings)
    seed_everything(seed)
    return tokenizer, Classifier(encoder, num_labels)


def fine_tune(model, tokenizer, texts, labels, lr: float, steps: int | None = None,
              epochs: int = 1, batch_size: int = 32, max_len: int = 64, seed: int = 0,
              progress: bool = True, loss_fn=None, targets=None):
    """Train ``model`` on (texts, labels) with AdamW, 10% linear warm-up then linear decay,
    for ``steps`` optimizer steps (default: ``epochs`` passes). Returns the History.
    ``loss_fn`` and ``targets`` go to `labkit.train.train` and `loader` (lab 05 passes a
    distillation loss and the teacher's logits)."""
    from .env import release_memory, seed_everything
    from .train import train
    dl = loader(tokenizer, texts, labels, max_len, batch_size, shuffle=True, seed=seed,
                targets=targets)
    total = steps or epochs * len(dl)
    warm = max(1, total // 10)
    seed_everything(seed)
    # fused: one kernel for the whole update, ~10% faster a small-BERT step on a CPU
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr,
                            weight_decay=0.01, fused=True)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warm, max(0.0, (total - s) / max(1, total - warm))))
    hist = train(model, dl, opt, loss_fn=loss_fn, scheduler=sched, epochs=10**6,
                 max_steps=total, progress=progress)
    model.zero_grad(set_to_none=True)  # free the gradients: a MiniLM's are ~90 MB
    release_memory()
    return hist


def frozen_accuracy(train_x, train_y, test_x, test_y, C: float = 4.0,
                    standardize: bool = False) -> float:
    """Test accuracy of a logistic regression on frozen features (`labkit.models.embed`,
    `features`); ``standardize`` rescales each feature to mean 0, variance 1 first."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    clf = LogisticRegression(C=C, max_iter=3000)
    clf = make_pipeline(StandardScaler(), clf) if standardize else clf
    return float(clf.fit(train_x, train_y).score(test_x, test_y))


# ---------------------------------------------------------------- the artifact cache

def save_classifier(model: Classifier, tokenizer, folder, info: dict | None = None):
    """Encoder (safetensors, ``save_pretrained``), tokenizer, head and ``info`` into
    ``folder``, atomically."""
    from pathlib import Path
    from safetensors.torch import save_file
    from .env import atomic_folder
    with atomic_folder(Path(folder)) as tmp:
        model.encoder.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        save_file({k: v.contiguous() for k, v in model.head.state_dict().items()},
                  str(tmp / "head.safetensors"))
        (tmp / "classifier.json").write_text(json.dumps(
            {"num_labels": model.head.out_features, "info": info or {}}, indent=1))
    return Path(folder)


def load_classifier(folder):
    """(tokenizer, `Classifier`, info) saved by `save_classifier`; safetensors only."""
    from pathlib import Path
    from safetensors.torch import load_file
    from transformers import AutoModel, AutoTokenizer
    from .models import check_vocab
    folder = Path(folder)
    if not (folder / "head.safetensors").exists():
        raise FileNotFoundError(f"no fine-tuned classifier in {folder}: run lab 03 "
                                "(03_fine_tuning.ipynb) first, or `labkit run 03_fine_tuning`")
    meta = json.loads((folder / "classifier.json").read_text())
    tokenizer = AutoTokenizer.from_pretrained(folder)
    encoder = AutoModel.from_pretrained(folder, use_safetensors=True, add_pooling_layer=False)
    check_vocab(encoder, tokenizer)
    model = Classifier(encoder, meta["num_labels"])
    model.head.load_state_dict(load_file(str(folder / "head.safetensors")))
    return tokenizer, model.eval(), meta["info"]


def run_key(**settings) -> str:
    """A short hash of a run's settings (and data), to name its cache folder."""
    import hashlib
    blob = json.dumps(settings, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:10]


def cached_fine_tune(name: str, make_model, texts, labels, progress: bool = True, **settings):
    """Fine-tune ``make_model() -> (tokenizer, model)`` on (texts, labels) with `fine_tune`
    ``settings``, or load the result of the same run from the artifact cache.
    Returns (tokenizer, model, info); ``info`` has the training time, steps and the folder."""
    from .models import artifact_path
    texts, labels = _check(texts, labels)
    key = run_key(texts=run_key(texts=texts, labels=labels.tolist()), **settings)
    folder = artifact_path(f"{name}-{key}")
    if (folder / "head.safetensors").exists():
        tokenizer, model, info = load_classifier(folder)
    else:
        tokenizer, model = make_model()
        hist = fine_tune(model, tokenizer, texts, labels, progress=progress, **settings)
        info = {"seconds": round(hist.seconds, 1), "steps": len(hist.step),
                "examples": len(texts), "loss": hist.loss}
        save_classifier(model, tokenizer, folder, info)
    return tokenizer, model.eval(), dict(info, folder=str(folder))


def best_dir(kind: str):
    """Where lab 03 keeps its best fine-tuned model of a kind ('small', 'minilm') for the
    current scale; `load_best` reads it back."""
    from .env import scale
    from .models import artifact_path
    return artifact_path(f"finetuned-{kind}-{scale()}")


def load_best(kind: str):
    """(tokenizer, `Classifier`, info) of lab 03's best fine-tuned model of ``kind``."""
    return load_classifier(best_dir(kind))


# ---------------------------------------------------------------- error analysis

def slices(texts) -> dict:
    """Boolean masks of the reviews with a negation, a contrast, both, or neither.

    Example: ``slices(["not bad", "good but long"])["negation"]`` -> [True, False].
    """
    import re
    texts, _ = _check(texts)
    neg = np.array([bool(re.search(NEGATION, t, re.I)) for t in texts])
    con = np.array([bool(re.search(CONTRAST, t, re.I)) for t in texts])
    return {"negation": neg, "contrast": con, "both": neg & con, "neither": ~neg & ~con}


def confident_mistakes(texts, labels, probs, k: int = 5) -> list[tuple[float, int, int, str]]:
    """The ``k`` wrong predictions made with the highest confidence:
    (confidence, predicted, true label, text), most confident first."""
    texts, labels = _check(texts, labels)
    pred = probs.argmax(-1)
    wrong = np.flatnonzero(pred != labels)
    top = wrong[np.argsort(-probs[wrong].max(-1), kind="stable")][:k]
    return [(float(probs[i].max()), int(pred[i]), int(labels[i]), texts[i]) for i in top]
