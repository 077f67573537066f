"""Lab 05: knowledge distillation. A big fine-tuned teacher teaches a small fast student.

The teacher (lab 03's fine-tuned MiniLM) labels the training reviews with its logits once
(`teacher_logits`, cached: on a CPU the teacher's forward passes are the expensive part).
The student (lab 02's small BERT architecture) then trains through the one loop
`labkit.train.train` with `kd_loss` (Hinton et al. 2015): the KL divergence between the
teacher's and the student's softmax at temperature T, times T^2, mixed with the usual
cross entropy on the true labels by ``alpha``. Unlabelled reviews (label -1) get only the
soft part: the teacher labels them, no person has to. `student_run` trains one student of
each kind (`KINDS`), cached; `DistillConfig`'s steps, temperature and alpha are the ones
`labkit study lab05` chose on the validation split. What the student buys is measured with
`labkit.measure`.
Leaves out: distilling hidden states or attention maps (TinyBERT), and task-agnostic
distillation during pretraining (DistilBERT).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .classifier import Run, cached_fine_tune, cached_logits, small_classifier
from .env import scale as current_scale
from .train import check_logits


@dataclass
class DistillConfig:
    """Settings of lab 05. ``DistillConfig.for_scale()`` picks them for LABKIT_SCALE.

    The students learn from the teacher's labelled rows (the sample lab 03 trained it on) or
    from every training label; steps, temperature and alpha are the ones `labkit study lab05`
    chose on the validation split (``labkit/reference/studies/lab05.json``).
    """
    seeds: int = 1                 # the lab's live students: seed 0, whose student labs 06-09 use
    steps: int = 450               # student optimizer steps of `batch_size` reviews;
    temperature: float = 4.0       # these three chosen on validation by `labkit study lab05`
    alpha: float = 1.0             # weight of the soft (teacher) part: 1 = soft targets only
    lr: float = 1e-3
    batch_size: int = 32
    max_len: int = 64
    study_steps: tuple = (150, 300, 450)       # what the study compares on validation
    study_temperatures: tuple = (1.0, 2.0, 4.0)
    study_alphas: tuple = (0.5, 1.0)
    study_grid_seeds: int = 10     # seeds of each setting while the study chooses; its students get seeds 1..N
    repeats: int = 20              # timed runs per latency / throughput measurement
    train_size: int | None = None
    test_size: int | None = None
    seed: int = 0

    @classmethod
    def for_scale(cls, scale: str | None = None) -> "DistillConfig":
        scale = scale or current_scale()
        if scale == "smoke":
            return cls(steps=15, max_len=32, study_steps=(10, 15), study_temperatures=(1.0, 2.0),
                       study_alphas=(0.5,), study_grid_seeds=1, repeats=3, train_size=1000, test_size=300)
        if scale == "gpu":
            return cls(seeds=5, steps=1200, max_len=128, study_steps=(600, 1200, 1800))
        return cls()


KINDS = ("hard labels", "distilled", "distilled + unlabelled")
# what lab 05 compares, paired by seed: (arm, against, budget); and how the claims' ids spell them
COMPARISONS = (("distilled", "hard labels", "teacher's labels"), ("distilled", "hard labels", "all labels"),
               ("distilled + unlabelled", "distilled", "teacher's labels"))
SLUG = {"hard labels": "hard_labels", "distilled": "distilled", "distilled + unlabelled": "distilled_unlabelled",
        "teacher's labels": "teacher_labels", "all labels": "all_labels"}


def students(mlm, tokenizer, texts, labels, teacher, teacher_rows, seed: int, cfg: DistillConfig) -> dict:
    """Lab 05's students for one seed, as the lab and its study both train them: {(kind, budget):
    run} for each kind on the teacher's labelled rows ("teacher's labels") and on every label
    ("all labels"; "distilled + unlabelled" has none left unlabelled there). With alpha = 1 a
    distilled student never reads a label, so on all labels it *is* the "distilled +
    unlabelled" student: the same run, trained once."""
    budgets = {"teacher's labels": np.asarray(teacher_rows), "all labels": np.arange(len(labels))}
    out = {}
    for kind in KINDS:
        for budget, rows in budgets.items():
            if kind == "distilled + unlabelled" and budget == "all labels":
                continue
            if kind == "distilled" and budget == "all labels" and cfg.alpha == 1:
                kind_, rows = "distilled + unlabelled", budgets["teacher's labels"]
            else:
                kind_ = kind
            out[kind, budget] = student_run(mlm, tokenizer, kind_, texts, labels, teacher, rows, seed, cfg)
    return out


def student_run(mlm, tokenizer, kind: str, texts, labels, teacher, rows, seed: int,
                cfg: DistillConfig, **override) -> Run:
    """One of lab 05's students (lab 02's architecture from scratch), cached: trained on the
    labelled ``rows`` with cross entropy ("hard labels") or `kd_loss` against the teacher's
    logits ``teacher`` ("distilled"); "distilled + unlabelled" also sees every other review,
    unlabelled (-1), with the teacher's logits as its only signal. ``override``: steps,
    temperature or alpha instead of ``cfg``'s."""
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; use one of {', '.join(KINDS)}")
    settings = {"steps": cfg.steps, "temperature": cfg.temperature, "alpha": cfg.alpha, **override}
    texts, labels, teacher = np.asarray(texts, dtype=object), np.asarray(labels), np.asarray(teacher)
    x, y, t = texts[rows], labels[rows], teacher[rows]
    loss_fn = None if kind == "hard labels" else kd_loss_fn(settings["temperature"], settings["alpha"])
    if kind == "distilled + unlabelled":
        y = np.full(len(labels), -1)
        y[rows] = labels[rows]
        x, t = texts, teacher
    k = max(2, int(np.max(labels)) + 1)  # as many outputs as classes (the reviews have 2)
    return cached_fine_tune(lambda: (tokenizer, small_classifier(mlm, pretrained=False, seed=seed, num_labels=k)),
                            list(x), y, name="student", lr=cfg.lr, steps=settings["steps"],
                            batch_size=cfg.batch_size, max_len=cfg.max_len, seed=seed,
                            loss_fn=loss_fn, targets=t if loss_fn else None)


def soft_targets(logits, temperature: float = 1.0) -> np.ndarray:
    """softmax(logits / T) of a (n, classes) array: higher T spreads the probability.

    Example: ``soft_targets([[2.0, 0.0]], 1)`` -> [[0.881, 0.119]]; at T=4 -> [[0.622, 0.378]].
    """
    if temperature <= 0:
        raise ValueError(f"temperature={temperature}: it must be > 0")
    return torch.as_tensor(np.asarray(logits, dtype=np.float32) / temperature).softmax(-1).numpy()


def kd_loss(student_logits, teacher_logits, labels, temperature: float = 2.0,
            alpha: float = 0.5):
    """alpha * T^2 * KL(softmax(teacher/T) || softmax(student/T)) + (1 - alpha) * CE(student, labels).

    The KL is averaged over the batch; the cross entropy over the labelled rows only
    (label -1 = unlabelled; a batch with none adds 0). T^2 keeps the soft part's gradients
    the same size whatever T is. With alpha=0 it is plain cross entropy.
    """
    if temperature <= 0:
        raise ValueError(f"temperature={temperature}: it must be > 0")
    if not 0 <= alpha <= 1:
        raise ValueError(f"alpha={alpha}: it is the weight of the soft loss, between 0 and 1")
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
    return lambda logits, batch: kd_loss(logits, batch["targets"], batch["labels"], temperature, alpha)


def kd_loss_fn(temperature: float = 2.0, alpha: float = 0.5):
    """A ``loss_fn(model, batch)`` for `labkit.train.train`: `kd_logits_loss` of the model's
    logits."""
    loss = kd_logits_loss(temperature, alpha)

    def loss_fn(model, batch):
        return loss(model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]), batch)
    loss_fn.spec = {"loss": "kd", "temperature": temperature, "alpha": alpha}  # for the run cache
    return loss_fn


def teacher_logits(model, tokenizer, texts, max_len: int = 64) -> np.ndarray:
    """The teacher's logits for ``texts``, shape (n, classes), computed once and kept in the
    run cache (keyed by a hash of the teacher's weights and the texts): `classifier.cached_logits`."""
    return cached_logits(model, tokenizer, texts, max_len)
