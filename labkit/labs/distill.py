"""Lab 05: knowledge distillation. A big fine-tuned teacher teaches a small fast student.

The teacher (lab 03's fine-tuned MiniLM) labels the training reviews with its logits once
(`teacher_logits`, cached: on a CPU the teacher's forward passes are the expensive part).
The student (lab 02's small BERT architecture) then trains through the one loop
`labkit.core.train.train` with `kd_loss` (Hinton et al. 2015): the KL divergence between the
teacher's and the student's softmax at temperature T, times T^2, mixed with the usual
cross entropy on the true labels by ``alpha``. Unlabelled reviews (label -1) get only the
soft part: the teacher labels them, no person has to. `student_run` trains one student of
each kind (`KINDS`), cached; `DistillConfig`'s steps, temperature and alpha are the ones
`labkit study lab05` chose on the validation split. What the student buys is measured with
`labkit.core.measure`.
Leaves out: distilling hidden states or attention maps (TinyBERT), and task-agnostic
distillation during pretraining (DistilBERT).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from labkit.core.classifier import cached_logits
from labkit.core.config import ScaledConfig
from labkit.core.kd import KINDS, student_run


@dataclass
class DistillConfig(ScaledConfig):
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

    SCALES: ClassVar[dict] = {  # what differs from the cpu defaults above
        "smoke": dict(steps=15, max_len=32, study_steps=(10, 15), study_temperatures=(1.0, 2.0),
                      study_alphas=(0.5,), study_grid_seeds=1, repeats=3, train_size=1000, test_size=300),
        "gpu": dict(seeds=5, steps=1200, max_len=128, study_steps=(600, 1200, 1800)),
    }


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


def teacher_logits(model, tokenizer, texts, max_len: int = 64) -> np.ndarray:
    """The teacher's logits for ``texts``, shape (n, classes), computed once and kept in the
    run cache (keyed by a hash of the teacher's weights and the texts): `classifier.cached_logits`."""
    return cached_logits(model, tokenizer, texts, max_len)
