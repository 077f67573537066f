"""Core: knowledge distillation (Hinton et al. 2015), shared by labs 05, 06 and 08. `kd_loss`
mixes the KL divergence between the teacher's and the student's softmax at temperature T
(times T^2) with the cross entropy on the true labels; `kd_loss_fn` makes it a loss for the
one training loop; `student_run` trains one of lab 05's students, cached, and lab 06 starts its
defences from the same student; lab 08 recovers pruned models with `kd_loss_fn`.
Leaves out: distilling hidden states or attention maps (TinyBERT).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from labkit.core import checks
from labkit.core.classifier import Run, cached_fine_tune, small_classifier
from labkit.core.text import check_texts
from labkit.core.train import check_logits

KINDS = ("hard labels", "distilled", "distilled + unlabelled")


def student_run(mlm, tokenizer, kind: str, texts, labels, teacher, rows, seed: int,
                cfg, classes: int | None = None, **override) -> Run:
    """One of lab 05's students (lab 02's architecture from scratch), cached: trained on the
    labelled ``rows`` with cross entropy ("hard labels") or `kd_loss` against the teacher's
    logits ``teacher`` ("distilled"); "distilled + unlabelled" also sees every other review,
    unlabelled (-1), with the teacher's logits as its only signal. ``cfg``: lab 05's
    `DistillConfig` (steps, temperature, alpha, lr, batch_size, max_len); ``classes``: how many
    (None: 2; every label is checked against it); ``override``: steps, temperature or alpha
    instead of ``cfg``'s."""
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; use one of {', '.join(KINDS)}")
    k = checks.classes_of(classes)
    texts = np.asarray(check_texts(texts, "texts is empty: give the reviews"), dtype=object)
    labels = checks.labels(labels, n=len(texts), classes=k, unlabelled=True)  # rows outside `rows` may be -1
    rows = np.asarray(rows)
    if rows.ndim != 1 or not rows.size or rows.dtype.kind not in "iu" or rows.min() < 0 or rows.max() >= len(texts):
        raise ValueError(f"rows must be a non-empty list of row numbers in 0..{len(texts) - 1} (the labelled rows)")
    checks.labels(labels[rows], classes=k, name="labels[rows]", why="the labelled rows of a student run")
    teacher = checks.finite(teacher, "teacher", "the teacher's logits, one row per text")
    if teacher.shape != (len(texts), k):
        raise ValueError(f"teacher has shape {teacher.shape}: give one row of {k} logits per text ({len(texts)})")
    settings = {"steps": cfg.steps, "temperature": cfg.temperature, "alpha": cfg.alpha, **override}
    x, y, t = texts[rows], labels[rows], teacher[rows]
    loss_fn = None if kind == "hard labels" else kd_loss_fn(settings["temperature"], settings["alpha"])
    if kind == "distilled + unlabelled":
        y = np.full(len(labels), -1)
        y[rows] = labels[rows]
        x, t = texts, teacher
    return cached_fine_tune(lambda: (tokenizer, small_classifier(mlm, pretrained=False, seed=seed, num_labels=k)),
                            list(x), y, name="student", lr=cfg.lr, steps=settings["steps"],
                            batch_size=cfg.batch_size, max_len=cfg.max_len, seed=seed,
                            loss_fn=loss_fn, targets=t if loss_fn else None)


def soft_targets(logits, temperature: float = 1.0) -> np.ndarray:
    """softmax(logits / T) of a (n, classes) array: higher T spreads the probability.

    Example: ``soft_targets([[2.0, 0.0]], 1)`` -> [[0.881, 0.119]]; at T=4 -> [[0.622, 0.378]].
    """
    checks.temperature(temperature)
    return torch.as_tensor(np.asarray(logits, dtype=np.float32) / temperature).softmax(-1).numpy()


def kd_loss(student_logits, teacher_logits, labels, temperature: float = 2.0,
            alpha: float = 0.5):
    """alpha * T^2 * KL(softmax(teacher/T) || softmax(student/T)) + (1 - alpha) * CE(student, labels).

    The KL is averaged over the batch; the cross entropy over the labelled rows only
    (label -1 = unlabelled; a batch with none adds 0). T^2 keeps the soft part's gradients
    the same size whatever T is. With alpha=0 it is plain cross entropy.
    """
    checks.temperature(temperature)
    checks.number(alpha, "alpha", low=0, high=1, low_open=False, fix="the weight of the soft loss")
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(f"student_logits {tuple(student_logits.shape)} and teacher_logits "
                         f"{tuple(teacher_logits.shape)} must have the same shape (rows, classes)")
    check_logits(student_logits, labels, "student_logits")
    t = temperature
    soft = F.kl_div(F.log_softmax(student_logits / t, -1), F.log_softmax(teacher_logits / t, -1),
                    reduction="batchmean", log_target=True) * t * t
    known = labels >= 0
    hard = (F.cross_entropy(student_logits[known], labels[known]) if known.any()
            else student_logits.sum() * 0)
    return alpha * soft + (1 - alpha) * hard


def kd_logits_loss(temperature: float = 2.0, alpha: float = 0.5):
    """``loss(logits, batch)``: `kd_loss` against ``batch['targets']`` (the teacher's logits)
    and ``batch['labels']``; lab 06 computes the logits from perturbed embeddings."""
    kd_loss(torch.zeros(1, 2), torch.zeros(1, 2), torch.zeros(1, dtype=torch.long),
            temperature, alpha)  # refuse bad settings now, not at the first step

    def loss(logits, batch):
        return kd_loss(logits, batch["targets"], batch["labels"], temperature, alpha)
    loss.unlabelled = True  # rows labelled -1 learn from the teacher's logits alone
    return loss


def kd_loss_fn(temperature: float = 2.0, alpha: float = 0.5):
    """A ``loss_fn(model, batch)`` for `labkit.core.train.train`: `kd_logits_loss` of the model's
    logits."""
    loss = kd_logits_loss(temperature, alpha)

    def loss_fn(model, batch):
        return loss(model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]), batch)
    loss_fn.spec = {"loss": "kd", "temperature": temperature, "alpha": alpha}  # for the run cache
    loss_fn.unlabelled = True  # rows labelled -1 learn from the teacher's logits alone
    return loss_fn
