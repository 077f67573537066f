"""Core: the one training loop, its optimizer and schedule, and `evaluate()`.

`train()` knows nothing about BERT, distillation or attacks: it moves each batch (a dict of
tensors) to the device, asks ``loss_fn(model, batch)`` for a scalar loss, clips the
gradient norm at 1.0, steps the optimizer (and scheduler), evaluates every ``eval_every``
steps and returns a `History`. Later labs change *what* is optimised by passing their own
``loss_fn`` (soft targets in lab 05, perturbed embeddings in lab 06, a proximal term in
lab 07). The recipe every lab uses around it: `adamw` (weight decay 0.01 on every trainable
weight) and `warmup_linear` (linear warm-up, then linear decay to 0).
Leaves out: mixed precision, gradient accumulation, distributed training.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from labkit.core import env
from labkit.core.env import device as default_device
from labkit.core.metrics import summary

# Cached training runs are keyed by this: change it whenever `train`, `adamw` or
# `warmup_linear` change in a way that changes what a run learns.
RECIPE = 2


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


NOT_INPUTS = ("labels", "targets")  # batch keys that are answers, not model inputs


def cross_entropy_loss(model, batch):
    """Default loss: cross entropy of ``model(**inputs)`` (or its ``.logits``) against
    ``batch['labels']``; every batch key but ``labels`` and ``targets`` goes to the model."""
    inputs = {k: v for k, v in batch.items() if k not in NOT_INPUTS}
    logits = _logits(model(**inputs))
    check_logits(logits, batch["labels"])
    return F.cross_entropy(logits, batch["labels"])


def check_logits(logits, labels, name: str = "logits") -> None:
    """Raise ValueError unless ``logits`` is (rows, classes) with one label per row, each a
    class of the logits (or -1, unlabelled): what a loss needs, said before torch says it."""
    if logits.dim() != 2 or labels.dim() != 1 or len(labels) != len(logits):
        raise ValueError(f"{name} must be (rows, classes) with one label per row: got {name} of shape "
                         f"{tuple(logits.shape)} and labels of shape {tuple(labels.shape)}")
    if len(labels) and (labels.max() >= logits.shape[1] or labels.min() < -1):
        raise ValueError(f"labels hold class {int(labels.max())} (or below -1) but {name} have "
                         f"{logits.shape[1]} classes: build the model with one output per class")


cross_entropy_loss.spec = {"loss": "cross_entropy"}  # how cached runs name this loss


def _logits(out):
    return out.logits if hasattr(out, "logits") else out


def _to(batch, device):
    if not isinstance(batch, dict):
        raise TypeError(f"batches must be dicts of tensors (input_ids, labels, ...), got "
                        f"{type(batch).__name__}; use labkit's collate functions or return dicts")
    return {k: v.to(device) if hasattr(v, "to") else v for k, v in batch.items()}


def adamw(model, lr: float, weight_decay: float = 0.01, lr_by_prefix: dict | None = None):
    """AdamW over the trainable weights; ``lr_by_prefix`` gives the weights whose names start
    with a prefix their own rate, e.g. ``{"cls.": 1e-3}`` for a new head. ``fused``: one kernel
    for the whole update, ~10% faster a small-BERT step on a CPU than the per-tensor loop."""
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if not named:
        raise ValueError("the model has no trainable weights (every requires_grad is False)")
    rates = lr_by_prefix or {}
    rate = {n: next((r for pre, r in rates.items() if n.startswith(pre)), lr) for n, _ in named}
    groups = [{"params": [p for n, p in named if rate[n] == r], "lr": r} for r in dict.fromkeys(rate.values())]
    return torch.optim.AdamW(groups, lr=lr, weight_decay=weight_decay, fused=True)


def warmup_linear(optimizer, warmup: int, total: int):
    """Learning rate x (step+1)/warmup for ``warmup`` steps, then down linearly to 0 at
    ``total``. Example: warmup=2, total=6 -> factors 0.5, 1, 1, 0.75, 0.5, 0.25."""
    if not 0 < warmup <= total:
        raise ValueError(f"warmup={warmup}, total={total}: need 0 < warmup <= total steps")
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / warmup, max(0.0, (total - s) / max(1, total - warmup))))


def steps_taken(total: int) -> int:
    """The optimizer steps `train` takes when asked for ``total``: all of them, except in a
    dry run (`labkit.core.env.dry_run`: every branch, hardly any training), where it stops
    after ``env.DRY_RUN["steps"]``. What accounts for the steps (DP-SGD's noise) asks here."""
    return min(total, env.DRY_RUN["steps"]) if env.dry_run() else total


def train(model, train_loader, optimizer, loss_fn=None, scheduler=None, epochs: int | None = None,
          steps: int | None = None, eval_loader=None, eval_every: int | None = None,
          eval_fn=None, device=None, progress: bool = True, clip_grad: float | None = 1.0):
    """Train ``model`` for ``epochs`` passes over ``train_loader`` or for ``steps``
    optimizer steps (give exactly one; steps cycle through the loader), return a History.

    ``loss_fn(model, batch) -> scalar tensor`` (default: cross entropy on ``labels``);
    ``eval_fn(model, loader) -> dict`` (default: `evaluate`), run every ``eval_every``
    steps and at the end when ``eval_loader`` is given. Raises if the loss becomes NaN or inf.
    In a dry run (`labkit.core.env.dry_run`) it stops after ``env.DRY_RUN["steps"]`` steps.
    """
    from tqdm.auto import tqdm
    device = device or default_device()
    loss_fn = loss_fn or cross_entropy_loss
    eval_fn = eval_fn or evaluate
    if (epochs is None) == (steps is None):
        raise ValueError(f"give exactly one of epochs= and steps= (got epochs={epochs}, steps={steps})")
    if (epochs if steps is None else steps) < 1:
        raise ValueError(f"epochs={epochs}, steps={steps}: train for at least one")
    n_batches = len(train_loader)
    if n_batches == 0:
        raise ValueError("train_loader is empty: no batches to train on")
    total = steps_taken(steps if steps is not None else epochs * n_batches)
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
    device = device or default_device()
    model.to(device).eval()
    all_logits, all_labels = [], []
    with torch.no_grad():
        for batch in loader:
            batch = _to(batch, device)
            labels = batch.get("labels")
            logits = _logits(model(**{k: v for k, v in batch.items() if k not in NOT_INPUTS}))
            logits = logits.float().cpu().numpy()
            all_logits.append(logits)
            all_labels.append(labels.cpu().numpy() if labels is not None
                              else np.full(len(logits), -1))
    return np.concatenate(all_logits), np.concatenate(all_labels)


def evaluate(model, loader, device=None) -> dict:
    """`labkit.core.metrics.summary` of a model's argmax predictions over a labelled loader."""
    logits, labels = predict(model, loader, device)
    if (labels < 0).any():
        raise ValueError("evaluate() needs a 'labels' tensor in every batch")
    return summary(labels, logits.argmax(-1), num_labels=logits.shape[-1])
