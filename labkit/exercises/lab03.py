"""Tools: exercises of Lab 03 (fine-tuning): the negation slice, max pooling, a choice on validation.
Each check computes its truth when called; see labkit.exercises.grading."""
from __future__ import annotations

import torch

from labkit.core import curves, data

from .grading import Exercise, check_cases, near, number


def _negation_accuracy(fn):
    check_cases(fn, "negation_accuracy", [
        ((["not bad", "great", "isn't good", "bad"], [1, 1, 0, 0], [1, 0, 1, 0]), 0.5),
        ((["never again", "no way", "fine", "good"], [0, 0, 1, 1], [0, 0, 0, 0]), 1.0),
        ((["it is not good", "dull", "nothing works"], [0, 0, 0], [1, 0, 1]), 0.0)],
        "only the rows where text.slices(texts)['negation'] is True count", near)


def _max_pool(fn):
    g = torch.Generator().manual_seed(1)
    cases = []
    for b, seq, h in ((2, 4, 3), (3, 5, 8)):
        hidden = torch.randn(b, seq, h, generator=g) - 3.0  # mostly negative states
        mask = torch.ones(b, seq, dtype=torch.long)
        mask[0, -2:] = 0  # the first text is padded, and its padding holds the largest values
        hidden[0, -2:] = 10.0
        want = hidden.masked_fill(mask.unsqueeze(-1) == 0, float("-inf")).amax(1)
        cases.append(((hidden, mask), want))
    check_cases(fn, "max_pool", cases, "the largest value of each dimension over the positions where "
                "the mask is 1; a padding position must never win, even where every real value is "
                "negative (multiplying by the mask makes padding 0, which then beats them)",
                lambda g, w: torch.is_tensor(g) and g.shape == w.shape and torch.allclose(g.float(), w, atol=1e-5))


def _validation_500(value):
    x_train, y_train, _, _ = data.review_arrays()
    val = data.review_splits()["validation"]
    rows = data.sample_per_class(y_train, 500, 0)
    truth = curves.baseline_accuracy(x_train[rows], y_train[rows], val["text"], val["label"])
    number(value, truth, 1e-3, "train on data.sample_per_class(y_train, 500, 0) (the seed-0 sample), "
           "but score on data.review_splits()['validation'], not on the test reviews")


EXERCISES = {
    "03.1": Exercise("Write negation_accuracy(texts, labels, predictions): accuracy on the "
                     "reviews with a negation word.", _negation_accuracy,
                     "text.slices finds them"),
    "03.2": Exercise("Write max_pool(hidden, mask): each review's largest value of every "
                     "hidden dimension over its real tokens, padding left out (the other common "
                     "pooling beside the Classifier's mean).", _max_pool,
                     "padding positions have mask 0"),
    "03.3": Exercise("What validation accuracy does the TF-IDF baseline reach on the seed-0 "
                     "sample of 500 labels?", _validation_500, "which split does a choice use?"),
}
