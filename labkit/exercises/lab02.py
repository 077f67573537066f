"""Tools: exercises of Lab 02 (pretraining): WordPiece words, the masking rule, masked accuracy.
Each check computes its truth when called; see labkit.exercises.grading."""
from __future__ import annotations

import numbers

import torch

from .grading import Exercise, check_cases, number


def _word_spans(fn):
    check_cases(fn, "word_spans", [((["un", "##for", "##get", "the"],), [[0, 1, 2], [3]]), (([],), []),
                              ((["a", "b"],), [[0], [1]]), ((["##x", "y", "##z"],), [[0], [1, 2]])],
                "a token starting with ## continues the word before it", lambda g, w: [list(s) for s in g] == w)


def _unchanged_but_scored(value):
    number(value, 10_000 * 0.15 * 0.1, 1, "of the picked tokens (15%), which share is neither "
           "masked nor replaced? Those still carry a label")


def _masked_accuracy(fn):
    g = torch.Generator().manual_seed(0)
    cases = []
    for shape in ((2, 5, 7), (1, 3, 4), (3, 6, 11)):
        logits = torch.randn(*shape, generator=g)
        labels = torch.randint(0, shape[-1], shape[:2], generator=g)
        labels[torch.rand(shape[:2], generator=g) < 0.5] = -100
        labels[0, 0] = logits[0, 0].argmax()  # at least one scored position, right
        keep = labels != -100
        cases.append(((logits, labels), float((logits.argmax(-1)[keep] == labels[keep]).float().mean())))
    check_cases(fn, "masked_accuracy", cases, "score only positions whose label is not -100",
                lambda g, w: isinstance(g, (numbers.Real, torch.Tensor)) and abs(float(g) - w) < 1e-6)


EXERCISES = {
    "02.1": Exercise("Write word_spans(tokens): group WordPiece tokens into words.",
                     _word_spans, "look at what marks a continuation piece"),
    "02.2": Exercise("With BERT's rule at 15%, how many of 10,000 ordinary tokens are predicted "
                     "although they are shown unchanged?", _unchanged_but_scored,
                     "reread the three cases of the masking rule"),
    "02.3": Exercise("Write masked_accuracy(logits, labels): the share of scored positions whose "
                     "top prediction is the label.", _masked_accuracy,
                     "which positions does the MLM loss ignore?"),
}
