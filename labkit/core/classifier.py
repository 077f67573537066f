"""Core: a sentiment classifier on any BERT-style encoder, trained, scored, saved and cached.

`Classifier` puts a linear head on the mean-pooled token states (`models.mean_pool`) of an
encoder, so lab 02's small BERT (pretrained or from scratch) and the real pretrained MiniLM
are built (`small_classifier`, `minilm_classifier`), trained (`fine_tune`, through the one
loop `labkit.core.train.train`), scored (`predict_logits`, `predict_proba`, `accuracy`) and saved
(`save_classifier`, safetensors) the same way. It also takes ``inputs_embeds`` instead of
token ids, for lab 06's perturbed embeddings. `cached_fine_tune` keys a run by everything
that changes its result and keeps its weights and predictions in the run cache, so a run done
by one lab is never redone by the next. `load_best` reads what labs 03 and 05 saved.
Leaves out: hyper-parameter search and early stopping (labs choose settings on validation).
"""
from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from labkit.core import cache, checks, metrics
from labkit.core.env import release_memory, scale, seed_everything
from labkit.core.models import check_vocab, load_minilm, mean_pool
from labkit.core.text import check_texts, pad
from labkit.core.train import RECIPE, adamw, cross_entropy_loss, predict, train, warmup_linear


class Classifier(torch.nn.Module):
    """Linear head on the mean of the encoder's token states (padding left out).

    Example: ``Classifier(transformers.BertModel(cfg))(input_ids, attention_mask)`` ->
    logits of shape (batch, 2). ``inputs_embeds`` (batch, seq, hidden) replaces
    ``input_ids`` when the word embeddings are computed (and perturbed) outside.
    ``label_names``: the name of each class in id order (saved with the model and served
    as its answers; None: the ids as text).
    """

    def __init__(self, encoder, num_labels: int = 2, dropout: float = 0.1, label_names=None):
        super().__init__()
        self.encoder = encoder
        self.dropout = torch.nn.Dropout(dropout)
        self.head = torch.nn.Linear(encoder.config.hidden_size, num_labels)
        self.label_names = check_label_names(label_names, num_labels)
        self.max_len, self.temperature = None, 1.0  # a saved model's own, set by load_classifier

    def forward(self, input_ids=None, attention_mask=None, inputs_embeds=None):
        if attention_mask is None or (input_ids is None) == (inputs_embeds is None):
            raise TypeError("Classifier needs attention_mask and exactly one of input_ids and "
                            "inputs_embeds")
        hidden = self.encoder(input_ids=input_ids, inputs_embeds=inputs_embeds,
                              attention_mask=attention_mask).last_hidden_state  # (b, seq, h)
        return self.head(self.dropout(mean_pool(hidden, attention_mask)))       # (b, labels)

    def word_embeddings(self, input_ids):
        """The encoder's word embeddings of ``input_ids``: (batch, seq, hidden)."""
        return self.encoder.get_input_embeddings()(input_ids)


def check_label_names(names, num_labels: int) -> list[str] | None:
    """``names`` as a list of distinct strings, one per class (None stays None)."""
    if names is None:
        return None
    if isinstance(names, str):
        raise ValueError(f"label_names={names!r} is one string: give a list of {num_labels} names, one per class")
    names = list(names)
    if len(names) != num_labels or not all(isinstance(n, str) and n for n in names) or len(set(names)) != len(names):
        raise ValueError(f"label_names={names!r}: give {num_labels} distinct, non-empty names, one per class in id "
                         "order (a Dataset's ds.features['label'].names)")
    return names


def check_inputs(texts, labels=None, classes: int | None = None, unlabelled: bool = False,
                 why: str = "cross entropy", fix: str | None = None) -> tuple[list, np.ndarray | None]:
    """(texts as a list, labels as an int64 array) after checking both (`labkit.core.checks.labels`):
    one label per text, each in 0..classes-1 (``classes`` None: 2), or -1 (unlabelled) where
    ``unlabelled`` (the loss can take it; ``why`` names the one that cannot); ``fix`` replaces
    "pass classes=K" where the class count comes from a model."""
    texts = check_texts(texts, "texts is empty: give at least one review")
    if labels is None:
        return texts, None
    if np.ndim(labels) != 1 or len(labels) != len(texts):
        raise ValueError(f"texts and labels must align: {len(texts)} texts but labels of shape {np.shape(labels)}")
    return texts, checks.labels(labels, classes=classes, unlabelled=unlabelled, why=why, fix=fix)


def num_labels(model) -> int | None:
    """The classes ``model`` predicts: a `Classifier`'s head, a transformers model's
    ``config.num_labels``; None when it does not say."""
    if isinstance(model, Classifier):
        return model.head.out_features
    if isinstance(getattr(model, "num_labels", None), int):  # lab 07's Head
        return model.num_labels
    return getattr(getattr(model, "config", None), "num_labels", None)


# ---------------------------------------------------------------- data in, predictions out

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
    as a float tensor; a label of -1 marks an unlabelled text. The caller checks the labels'
    range against its model (`check_inputs` with ``classes``); here only their form."""
    texts, labels = check_inputs(texts, labels, classes=checks.ANY, unlabelled=True)
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


def predict_logits(model, tokenizer, texts, max_len: int = 64, batch_size: int = 64) -> np.ndarray:
    """``model``'s outputs for ``texts``, shape (len(texts), classes), in the order given
    (batched by length inside, so padding stays small)."""
    texts, _ = check_inputs(texts)
    order = np.argsort([len(t) for t in texts], kind="stable")
    out, _ = predict(model, loader(tokenizer, [texts[i] for i in order], max_len=max_len,
                                   batch_size=batch_size))
    result = np.empty_like(out)
    result[order] = out
    return result


def cached_logits(model, tokenizer, texts, max_len: int = 64, kind: str = "teacher-logits") -> np.ndarray:
    """`predict_logits` computed once per model (its weights' hash), vocabulary and texts, kept
    in the run cache as ``kind`` (``teacher-logits``, lab 05's name: lab 08 scores the fp32
    teacher and student with it, and lab 09 reads those back where both score at the models'
    own max_len, as at cpu and smoke; lab 08 keeps its other variants' scores as
    ``variant-logits``, so that a `labkit run --fresh --keep teacher-logits` of lab 08 still
    scores those afresh, though no longer its two fp32 models). The kind names the folder, not
    the key: one model's logits of one set of texts are the same under either. The model is
    left on the device it was on (`predict_logits` computes on the default one)."""
    texts, _ = check_inputs(texts)
    return _logits(model, tokenizer, texts, max_len, kind)["logits"]


@cache.cached("teacher-logits", kind_arg="kind")
def _logits(model, tokenizer, texts, max_len, kind) -> dict:
    device = next(model.parameters()).device
    try:
        return {"logits": predict_logits(model.eval(), tokenizer, texts, max_len)}
    finally:
        model.to(device)


def predict_proba(model, tokenizer, texts, max_len: int = 64) -> np.ndarray:
    """Class probabilities, shape (len(texts), classes)."""
    return torch.from_numpy(predict_logits(model, tokenizer, texts, max_len)).softmax(-1).numpy()


def accuracy(model, tokenizer, texts, labels, max_len: int = 64) -> float:
    """Share of ``texts`` whose most likely class is the label."""
    texts, labels = check_inputs(texts, labels, classes=num_labels(model) or checks.ANY)
    return metrics.accuracy(predict_logits(model, tokenizer, texts, max_len), labels)


def features(encoder, tokenizer, texts, max_len: int = 64) -> np.ndarray:
    """Mean-pooled token states of a frozen ``encoder``, shape (len(texts), hidden): what a
    `Classifier`'s head sees, kept in the run cache (kind ``features``) by the encoder's weights,
    vocabulary and texts, so lab 03 reads lab 02's probes' features back. Example: features for
    a linear probe of lab 02's model."""
    pool = Classifier(encoder)
    pool.head = torch.nn.Identity()
    return cached_logits(pool, tokenizer, texts, max_len, kind="features")


def predictor(model, tokenizer, max_len: int = 64):
    """``texts -> logits`` on the CPU, tokenizing included and no gradients: what
    `labkit.core.measure.benchmark` times. Example: ``predictor(m, tok)(["great"]).shape`` -> (1, 2)."""
    model = model.to("cpu").eval()

    def predict_fn(texts):
        enc = tokenizer(list(texts), truncation=True, max_length=max_len, padding=True,
                        return_tensors="pt")
        with torch.inference_mode():
            return model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).numpy()
    return predict_fn


def proba_predictor(model, tokenizer, max_len: int = 64, batch_size: int = 64):
    """``texts -> probabilities`` (n, classes), in batches of ``batch_size``, on the CPU
    with no gradients: what lab 06's attacks query."""
    predict_fn = predictor(model, tokenizer, max_len)

    def fn(texts):
        out = [predict_fn(texts[i:i + batch_size]) for i in range(0, len(texts), batch_size)]
        return torch.from_numpy(np.concatenate(out)).softmax(-1).numpy()
    return fn


# ---------------------------------------------------------------- models and training

def small_classifier(mlm_model, pretrained: bool = True, seed: int = 0, num_labels: int = 2):
    """A `Classifier` on the lab-02 architecture: the pretrained encoder of ``mlm_model``
    (copied), or the same architecture freshly initialised (``pretrained=False``)."""
    import copy

    from transformers import BertModel
    seed_everything(seed)
    encoder = (copy.deepcopy(mlm_model.bert) if pretrained
               else BertModel(mlm_model.config, add_pooling_layer=False))
    return Classifier(encoder, num_labels)


def minilm_classifier(seed: int = 0, num_labels: int = 2, train_word_embeddings: bool = False, source=None):
    """(tokenizer, `Classifier`) on the pretrained MiniLM encoder from the fetched weights,
    or on ``source`` = (tokenizer, encoder) such as lab 02's adapted MiniLM. The word-embedding
    table (30,522 x 384: 11.7 M of MiniLM's 22.7 M weights) stays frozen unless
    ``train_word_embeddings``: its gradient is dense, so training it costs about a third more
    time a step and ~0.2 GB more memory, for a few thousand labels' worth of signal spread
    over 30,522 rows."""
    tokenizer, encoder = source or load_minilm()
    encoder.pooler = None  # the Classifier pools by itself: leave out BERT's unused pooler
    encoder.embeddings.word_embeddings.weight.requires_grad_(train_word_embeddings)
    seed_everything(seed)
    return tokenizer, Classifier(encoder, num_labels)


def _check_training_labels(model, labels, loss_fn) -> int | None:
    """Refuse labels the model or the loss cannot take, before any training: a class beyond
    the model's head, or -1 (unlabelled) for a loss that needs every label (only a loss that
    says ``.unlabelled``, such as `labkit.core.kd.kd_loss_fn`, takes it). Returns the model's
    class count."""
    k = num_labels(model)
    spec = getattr(loss_fn, "spec", None) or {"loss": "cross entropy"}
    checks.labels(labels, classes=k or checks.ANY, unlabelled=getattr(loss_fn, "unlabelled", False),
                  why=f"the loss {spec.get('loss')!r}", fix=f"The model has {k} outputs: build it with as many as "
                  "there are classes (e.g. minilm_classifier(num_labels=K))")
    return k


def fine_tune(model, tokenizer, texts, labels, lr: float, steps: int | None = None,
              epochs: int | None = None, batch_size: int = 32, max_len: int = 64,
              seed: int = 0, progress: bool = True, loss_fn=None, targets=None):
    """Train ``model`` on (texts, labels) with the course recipe (`train.adamw`, 10% warm-up
    then linear decay, `train.warmup_linear`) for ``steps`` optimizer steps or ``epochs``
    passes (default: 1 epoch). Returns the History. ``loss_fn`` and ``targets`` go to
    `labkit.core.train.train` and `loader` (lab 05 passes a distillation loss and teacher logits)."""
    texts, labels = check_inputs(texts, labels, classes=checks.ANY, unlabelled=True)
    checks.schedule(lr, steps, epochs, batch_size)
    k = _check_training_labels(model, labels, loss_fn)
    if targets is not None and np.shape(targets) != (len(texts), k or np.shape(targets)[-1]):
        raise ValueError(f"targets must have one row of {k} logits per text: shape {np.shape(targets)} for "
                         f"{len(texts)} texts")
    dl = loader(tokenizer, texts, labels, max_len, batch_size, shuffle=True, seed=seed,
                targets=targets)
    total = steps or (epochs or 1) * len(dl)
    seed_everything(seed)
    opt = adamw(model, lr)
    hist = train(model, dl, opt, loss_fn=loss_fn, scheduler=warmup_linear(opt, max(1, total // 10), total),
                 steps=total, progress=progress)
    model.zero_grad(set_to_none=True)  # free the gradients: a MiniLM's are ~90 MB
    release_memory()
    return hist


# ---------------------------------------------------------------- checkpoints

CONTRACT = "classifier.json"  # what a saved model is: its classes, max length, temperature, files


def _write(model: Classifier, tokenizer, folder: Path, info: dict | None, max_len: int, onnx: bool) -> None:
    from safetensors.torch import save_file
    model.encoder.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    save_file({k: v.contiguous() for k, v in model.head.state_dict().items()},
              str(folder / "head.safetensors"))
    if onnx:  # the whole model (encoder, mean pooling, head) for ONNX Runtime: docs/models.md
        from labkit.core.export import ONNX, cached_onnx
        _link_or_copy(cached_onnx(model, tokenizer, max_len), folder / ONNX)
    cache.write_json(folder / CONTRACT, {
        "num_labels": model.head.out_features, "label_names": getattr(model, "label_names", None),
        "max_len": max_len, "temperature": 1.0, "fitted_on": None, "weights": cache.fingerprint(model),
        "onnx": "model.onnx" if onnx else None, "info": info or {}})


def _link_or_copy(source: Path, target: Path) -> None:
    """``target`` as a hard link to ``source`` (no second copy on disk), else a copy."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def save_classifier(model: Classifier, tokenizer, folder, info: dict | None = None, label_names=None,
                    max_len: int = 64, onnx: bool = True) -> Path:
    """Save a classifier as one folder, atomically: what `load_classifier`, ``labkit serve
    --model FOLDER`` and ONNX Runtime outside the course (docs/models.md) read back.

    The folder holds the encoder (safetensors, ``save_pretrained``), the tokenizer, the head,
    ``model.onnx`` (the whole model for ONNX Runtime; ``onnx=False`` leaves it out) and
    ``classifier.json``: the class names (``label_names``, else the model's own), the
    ``max_len`` the model reads reviews at, the temperature its probabilities are divided by
    (1.0 until `set_temperature` fits one), the weights' fingerprint and ``info``. The ONNX
    export takes seconds (about 10 for a MiniLM): labs 03 and 05 save with ``onnx=False`` and
    lab 09 adds the file to the models it serves (`add_onnx`), once."""
    if label_names is not None:
        model.label_names = check_label_names(label_names, model.head.out_features)
    if isinstance(max_len, bool) or not isinstance(max_len, (int, np.integer)) or max_len < 3:
        raise ValueError(f"max_len={max_len!r}: the number of tokens the model reads per review, an integer "
                         "of at least 3 ([CLS], a token, [SEP]); pass the max_len it was trained with")
    with cache.atomic_folder(Path(folder)) as tmp:
        _write(model, tokenizer, tmp, info, int(max_len), onnx)
    return Path(folder)


def set_temperature(folder, model: Classifier, temperature: float, fitted_on: str = "validation") -> Path:
    """Give the model saved in ``folder`` the temperature fitted for it (lab 09): written into
    its ``classifier.json``, which `load_classifier` and the service read. ``model`` is the
    model the temperature was fitted on; it must be the one saved there (same weights), else
    the temperature is refused: it was fitted for another model."""
    folder = Path(folder)
    t = checks.temperature(temperature)
    meta = _contract(folder, strict=True)
    if meta.get("weights") != cache.fingerprint(model):
        raise ValueError(f"the temperature was fitted for other weights than the model saved in {folder} "
                         "(retrained since?): fit it again on the model loaded from that folder "
                         "(load_classifier), or save that model there first")
    cache.write_json(folder / CONTRACT, {**meta, "temperature": t, "fitted_on": fitted_on})
    return folder


def add_onnx(folder) -> Path:
    """The ONNX file of the model saved in ``folder``, exported into the folder first if it
    has none (saved with ``onnx=False``); ``classifier.json`` then names it. Returns its path."""
    from labkit.core.export import ONNX, cached_onnx
    folder = Path(folder)
    meta = _contract(folder, strict=True)
    if meta.get("onnx") and (folder / meta["onnx"]).is_file():
        return folder / meta["onnx"]
    tokenizer, model, _ = load_classifier(folder, strict=True)
    tmp = folder / f".{ONNX}.{os.getpid()}.tmp"
    try:
        _link_or_copy(cached_onnx(model, tokenizer, meta["max_len"]), tmp)
        os.replace(tmp, folder / ONNX)
    finally:
        tmp.unlink(missing_ok=True)
    cache.write_json(folder / CONTRACT, {**_contract(folder), "onnx": ONNX})  # read again: another writer
    return folder / ONNX


def _lab(folder: Path) -> str | None:
    """The lab whose saved model ``folder`` is ('03_fine_tuning'), or None."""
    return next((v[1] for v in SAVED.values() if Path(folder).name.startswith(v[0])), None)


def _fix(folder: Path) -> str:
    if (lab := _lab(folder)) is not None:
        return f"rerun lab {lab[:2]} (`labkit run notebooks/{lab}.ipynb`)"
    if (cache.cache_dir() / "runs").resolve() in Path(folder).resolve().parents:
        return cache.rebuild_hint(Path(folder) / CONTRACT)
    return "save it again (save_classifier)"


FULL_CONTRACT = ("num_labels", "label_names", "max_len", "temperature", "weights", "onnx", "info")


def _contract(folder: Path, strict: bool = False) -> dict:
    """A saved model's ``classifier.json``, checked; a missing, damaged or wrong one is a
    `CheckpointError` naming the file and the fix. ``strict``: a folder saved by a labkit
    older than the contract (no ``max_len``, temperature or weights' fingerprint) is refused
    too (the service, `set_temperature` and `add_onnx` need them); otherwise they default to
    64 tokens and temperature 1 (cached runs from before)."""
    if not (folder / "head.safetensors").exists():
        raise FileNotFoundError(f"no classifier saved in {folder} (no head.safetensors); save "
                                "one with labkit.core.classifier.save_classifier")
    path = folder / CONTRACT
    try:
        meta = json.loads(path.read_text())
        if not isinstance(meta.get("num_labels"), int) or meta["num_labels"] < 2:
            raise ValueError(f"num_labels={meta.get('num_labels')!r} is not a class count")
        checks.temperature(meta.get("temperature", 1.0))
        if not isinstance(meta.get("max_len", 64), int) or meta.get("max_len", 64) < 3:
            raise ValueError(f"max_len={meta.get('max_len')!r} is not a token count")
    except (OSError, ValueError, AttributeError) as e:
        raise CheckpointError(f"cannot read the saved classifier: {path} is damaged or was edited "
                              f"({type(e).__name__}: {str(e)[:200]}). Fix: {_fix(folder)}") from e
    missing = [k for k in FULL_CONTRACT if k not in meta]
    if strict and missing:
        raise CheckpointError(f"{path} was written by an older labkit: it has no {', '.join(missing)} (the max "
                              f"length, temperature and weights a saved model now carries). Fix: {_fix(folder)}")
    return meta


def load_classifier(folder, strict: bool = False):
    """(tokenizer, `Classifier`, info) saved by `save_classifier`; safetensors only. The model
    carries its ``label_names``, ``max_len`` and ``temperature`` from ``classifier.json``.
    ``strict``: refuse a folder saved before labkit kept those (see `_contract`)."""
    from safetensors.torch import load_file
    from transformers import AutoModel, AutoTokenizer
    folder = Path(folder)
    meta, fix = _contract(folder, strict), _fix(folder)
    try:
        step = folder
        tokenizer = AutoTokenizer.from_pretrained(folder)
        step = folder / "model.safetensors"
        encoder = AutoModel.from_pretrained(folder, use_safetensors=True, add_pooling_layer=False)
        step = folder / "head.safetensors"
        head = load_file(str(step))
    except Exception as e:  # a truncated or damaged file: say which and how to get a good one
        raise CheckpointError(f"cannot read the saved classifier: {step} is damaged or truncated "
                              f"({type(e).__name__}: {str(e)[:200]}). Fix: {fix}") from e
    check_vocab(encoder, tokenizer)
    names = meta.get("label_names")
    if names is None and _lab(folder) and meta["num_labels"] == 2:
        from labkit.core.data import LABEL_NAMES  # a course model saved before names were kept
        names = LABEL_NAMES
    try:
        model = Classifier(encoder, meta["num_labels"], label_names=names)
        model.head.load_state_dict(head)
    except (ValueError, RuntimeError) as e:  # names or head that do not fit the class count
        raise CheckpointError(f"{folder / CONTRACT} does not match {folder / 'head.safetensors'}: "
                              f"{str(e)[:200]}. Fix: {fix}") from e
    model.max_len, model.temperature = meta.get("max_len", 64), float(meta.get("temperature", 1.0))
    return tokenizer, model.eval(), meta.get("info", {})


# What labs save for later labs: kind -> (folder name, the lab that makes it)
SAVED = {"minilm": ("finetuned-minilm", "03_fine_tuning"),
         "small": ("finetuned-small", "03_fine_tuning"),
         "student": ("distilled-student", "05_distillation")}


def best_dir(kind: str) -> Path:
    """Where the lab that makes a ``kind`` of model ('minilm', 'small': lab 03; 'student':
    lab 05) keeps it for later labs, at the current scale."""
    if kind not in SAVED:
        raise ValueError(f"unknown kind {kind!r}; use one of {', '.join(SAVED)}")
    return cache.model_dir(f"{SAVED[kind][0]}-{scale()}")


def load_best(kind: str):
    """(tokenizer, `Classifier`, info) of the model a lab saved as ``kind``."""
    folder = best_dir(kind)
    if not (folder / "head.safetensors").exists():
        lab = SAVED[kind][1]
        raise FileNotFoundError(f"no {kind!r} model at scale {scale()} in {folder}: run lab "
                                f"{lab[:2]} first (notebooks/{lab}.ipynb, or `labkit run "
                                f"notebooks/{lab}.ipynb`)")
    return load_classifier(folder)


# ---------------------------------------------------------------- cached runs

class CheckpointError(OSError):
    """A saved model that exists but cannot be read; the message names the file and the fix."""


@dataclass
class Run:
    """One cached training run: its folder, its info (time, steps, losses), its tokenizer,
    and whether it came from the cache. The model is read on first use; its predictions on
    a set of texts are computed once and kept with it (`logits`, `accuracy`)."""
    folder: Path
    info: dict
    tokenizer: object
    hit: bool
    trained: object = None  # the model, when this process trained it

    @property
    def model(self) -> Classifier:
        if self.trained is None:
            self.trained = load_classifier(self.folder)[1]
        return self.trained

    def unload(self) -> None:
        """Let go of the model (a MiniLM's is ~90 MB): `model` reads it back from the run folder
        when next used. Its kept predictions stay."""
        self.trained = None

    def logits(self, texts, max_len: int = 64) -> np.ndarray:
        """The model's logits for ``texts``, computed once per run and set of texts and kept
        in the run cache (a second lab that scores the same run on the same reviews reads
        them back)."""
        texts, _ = check_inputs(texts)
        created = cache.read_json(self.folder / cache.DONE)["created"]
        return _run_logits(self.folder.name, created, texts, max_len, self)["logits"]

    def proba(self, texts, max_len: int = 64) -> np.ndarray:
        """Class probabilities from `logits`, shape (len(texts), classes)."""
        return torch.from_numpy(self.logits(texts, max_len)).softmax(-1).numpy()

    def accuracy(self, texts, labels, max_len: int = 64) -> float:
        """Share of ``texts`` whose most likely class (from `logits`) is the label."""
        texts, labels = check_inputs(texts, labels, classes=checks.ANY)
        return metrics.accuracy(self.logits(texts, max_len), labels)


@cache.cached("run-logits", exclude=("run",))
def _run_logits(run_folder: str, created: float, texts, max_len, run) -> dict:
    """``run``'s logits; its folder's name (which holds its key) and the time it was made
    (a run trained again gets new logits) stand for it."""
    return {"logits": predict_logits(run.model, run.tokenizer, texts, max_len)}


def cached_fine_tune(make_model, texts, labels, *, name: str, lr: float, steps: int | None = None,
                     epochs: int | None = None, batch_size: int = 32, max_len: int = 64,
                     seed: int = 0, loss_fn=None, targets=None, progress: bool = False) -> Run:
    """`fine_tune` the model of ``make_model() -> (tokenizer, Classifier)``, or return the
    same run from the run cache. The key covers the initial weights (`cache.fingerprint`),
    the tokenizer's vocabulary, the texts, labels and targets, every setting, the loss
    (``loss_fn.spec``) and the training recipe (`train.RECIPE`): change any of them and
    the run is redone. Example: lab 04's un-augmented runs are lab 03's, read back."""
    texts, labels = check_inputs(texts, labels, classes=checks.ANY, unlabelled=True)
    checks.schedule(lr, steps, epochs, batch_size)
    tokenizer, model = make_model()
    _check_training_labels(model, labels, loss_fn)
    loss_fn = loss_fn or cross_entropy_loss
    if not isinstance(getattr(loss_fn, "spec", None), dict):
        raise TypeError("a cached run's loss_fn needs a .spec dict naming it and its settings "
                        "(e.g. {'loss': 'kd', 'temperature': 2.0}) so the cache can tell runs apart")
    return _fine_tune_run(model, tokenizer, texts, labels, name, lr, steps, epochs, batch_size, max_len, seed,
                          loss_fn, None if targets is None else np.asarray(targets, np.float32), progress)


@cache.keyed("fine-tune", kind_arg="name", exclude=("progress",), depends=lambda: {"recipe": RECIPE})
def _fine_tune_run(model, tokenizer, texts, labels, name, lr, steps, epochs, batch_size, max_len, seed, loss_fn,
                   targets, progress, *, folder) -> Run:
    """`fine_tune` from ``model``'s initial weights, kept in the run ``folder`` as a `Run`."""
    if cache.is_done(folder):
        return Run(folder, cache.done_info(folder), tokenizer, hit=True)
    hist = fine_tune(model, tokenizer, texts, labels, lr, steps, epochs, batch_size, max_len,
                     seed, progress, loss_fn, targets)
    model.max_len = max_len  # as a run read back from its folder carries it
    with cache.artifact(folder) as (tmp, info):
        _write(model, tokenizer, tmp, None, max_len, onnx=False)  # a run: no ONNX file
        info.update(seconds=round(hist.seconds, 1), steps=len(hist.step), examples=len(texts),
                    loss=[round(x, 4) for x in hist.loss])
    return Run(folder, dict(info), tokenizer, hit=False, trained=model.eval())
