"""Tools: exercises of Lab 05 (distillation): soft targets, the T² factor, the size ratio.
Each check computes its truth when called; see labkit.exercises.grading."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from labkit.core import models
from labkit.labs.pretrain import PretrainConfig

from .grading import Exercise, number


def _soft_p(value):
    number(value, math.exp(0.5) / (1 + math.exp(0.5)), 1e-4,
           "divide both logits by the temperature before the softmax", "a probability")


def _gradient_ratio(value):
    norms = []
    for t in (1.0, 4.0):
        s = torch.tensor([[0.5, -0.5]], requires_grad=True)
        F.kl_div(F.log_softmax(s / t, -1), F.softmax(torch.tensor([[2.0, -2.0]]) / t, -1),
                 reduction="batchmean").backward()
        norms.append(float(s.grad.norm()))
    number(value, norms[1] / norms[0], 1e-3, "compute both gradients with autograd (the soft "
           "loss without T², at T=4 and at T=1) and divide their norms; it is not exactly 1/T")


def _parameter_ratio(value):
    from labkit.core.classifier import minilm_classifier, small_classifier
    cfg = PretrainConfig.for_scale("cpu")
    student = small_classifier(models.small_bert(cfg.vocab_size, cfg.hidden, cfg.layers, cfg.heads),
                               pretrained=False)
    teacher = minilm_classifier()[1]
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    number(value, count(teacher) / count(student), 0.05, "count every weight of both models "
           "(measure.parameters) at cpu scale and divide the teacher's by the student's")


EXERCISES = {
    "05.1": Exercise("What is the teacher's P(positive) for logits [0, 2] at temperature 4?",
                     _soft_p, "softmax of the scaled logits"),
    "05.2": Exercise("Without the T² factor, what is the ratio of the soft loss's gradient norm "
                     "at T=4 to that at T=1, for student logits [0.5, -0.5] and teacher logits "
                     "[2, -2]?", _gradient_ratio, "autograd does the calculus"),
    "05.3": Exercise("How many times more weights does the teacher have than the cpu-scale "
                     "student?", _parameter_ratio, "labkit.core.measure.parameters"),
}
