"""The one training loop, and `evaluate()`.

`train()` knows nothing about BERT, distillation or attacks: it moves each batch (a dict of
tensors) to the device, asks ``loss_fn(model, batch)`` for a scalar loss, steps the
optimizer (and scheduler), evaluates every ``eval_every`` steps and returns a `History`.
Later labs change *what* is optimised by passing their own ``loss_fn`` (soft targets in
lab 05, perturbed embeddings in lab 06, a proximal term in lab 07).
Leaves out: mixed precision, gradient accumulation, distributed training.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np


@dataclass
class History:
    step: list = field(default_factory=list)       # optimizer step of each train loss
    loss: list = field(default_factory=list)       # train loss per step
    eval_step: list = field(default_factory=list)
    eval: list = field(default_factory=list)       # dicts returned by evaluate()
    seconds: float = 0.0
    examples: int = 0

    def last(self, key: str = "accuracy"):
        return self.eval[-1][key] if self.eval else None


def cross_entropy_loss(model, batch):
    """Default loss: cross entropy of ``model(**inputs).logits`` against ``batch['labels']``."""
    import torch.nn.functional as F
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    return F.cross_entropy(_logits(model(**inputs)), batch["labels"])


def _logits(out):
    return out.logits if hasattr(out, "logits") else out


def _to(batch, device):
    if not isinstance(batch, dict):
        raise TypeError(f"batches must be dicts of tensors (input_ids, labels, ...), got "
                        f"{type(batch).__name__}; use labkit's collate functions or return dicts")
    return {k: v.to(device) if hasattr(v, "to") else v for k, v in batch.items()}


def train(model, train_loader, optimizer, loss_fn=None, scheduler=None, epochs: int = 1,
          max_steps: int | None = None, eval_loader=None, eval_every: int | None = None,
          eval_fn=None, device=None, progress: bool = True, clip_grad: float | None = 1.0):
    """Train ``model`` and return a History.

    ``loss_fn(model, batch) -> scalar tensor`` (default: cross entropy on ``labels``);
    ``eval_fn(model, loader) -> dict`` (default: `evaluate`), run every ``eval_every``
    steps and at the end when ``eval_loader`` is given. Stops after ``epochs`` passes or
    ``max_steps`` steps, whichever comes first. Raises if the loss becomes NaN or inf.
    """
    import torch
    from tqdm.auto import tqdm
    from .env import device as default_device
    device = device or default_device()
    loss_fn = loss_fn or cross_entropy_loss
    eval_fn = eval_fn or evaluate
    if epochs < 1 and not max_steps:
        raise ValueError(f"epochs={epochs}: train for at least one epoch or give max_steps")
    n_batches = len(train_loader)
    if n_batches == 0:
        raise ValueError("train_loader is empty: no batches to train on")
    total = min(epochs * n_batches, max_steps or math.inf)
    model.to(device)
    hist, step, start = History(), 0, time.perf_counter()
    bar = tqdm(total=int(total), desc="train", disable=not progress, leave=False)
    while step < total:
        for batch in train_loader:
            model.train()
            batch = _to(batch, device)
            loss = loss_fn(model, batch)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"loss is {loss.item()} at step {step}: lower the "
                                         "learning rate or check the inputs")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if clip_grad:
                torch.nn.utils.clip_grad_norm_(model.parameters(), clip_grad)
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            step += 1
            hist.step.append(step)
            hist.loss.append(loss.item())
            hist.examples += len(next(iter(batch.values())))
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.3f}")
            if eval_loader is not None and eval_every and step % eval_every == 0 and step < total:
                hist.eval_step.append(step)
                hist.eval.append(eval_fn(model, eval_loader))
            if step >= total:
                break
    bar.close()
    if eval_loader is not None:
        hist.eval_step.append(step)
        hist.eval.append(eval_fn(model, eval_loader))
    hist.seconds = time.perf_counter() - start
    return hist


def predict(model, loader, device=None) -> tuple[np.ndarray, np.ndarray]:
    """(logits, labels) over a loader, without gradients; labels are -1 where absent."""
    import torch
    from .env import device as default_device
    device = device or default_device()
    model.to(device).eval()
    all_logits, all_labels = [], []
    with torch.no_grad():
        for batch in loader:
            batch = _to(batch, device)
            labels = batch.pop("labels", None)
            logits = _logits(model(**batch)).float().cpu().numpy()
            all_logits.append(logits)
            all_labels.append(labels.cpu().numpy() if labels is not None
                              else np.full(len(logits), -1))
    return np.concatenate(all_logits), np.concatenate(all_labels)


def metrics(y_true, y_pred, num_labels: int | None = None) -> dict:
    """Accuracy, macro-F1 and the confusion matrix (rows = truth, columns = prediction).

    Example: ``metrics([0, 1, 1], [0, 1, 0])["accuracy"]`` -> 0.667.
    """
    from sklearn.metrics import confusion_matrix, f1_score
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if len(y_true) == 0 or len(y_true) != len(y_pred):
        raise ValueError(f"need as many predictions as labels (>0); got {len(y_pred)} "
                         f"predictions for {len(y_true)} labels")
    k = num_labels or int(max(y_true.max(), y_pred.max())) + 1
    return {"accuracy": float((y_true == y_pred).mean()),
            "macro_f1": float(f1_score(y_true, y_pred, average="macro", labels=list(range(k)),
                                       zero_division=0)),
            "confusion": confusion_matrix(y_true, y_pred, labels=list(range(k))).tolist(),
            "n": int(len(y_true))}


def evaluate(model, loader, device=None) -> dict:
    """`metrics` of a model's argmax predictions over a labelled loader."""
    logits, labels = predict(model, loader, device)
    if (labels < 0).any():
        raise ValueError("evaluate() needs a 'labels' tensor in every batch")
    return metrics(labels, logits.argmax(-1), num_labels=logits.shape[-1])
