"""Tools: exercises of Lab 09 (deployment): a bin's weight in the ECE, Little's law, the MCE.
Each check computes its truth when called; see labkit.exercises.grading."""
from __future__ import annotations

import numpy as np

from labkit.core import metrics
from labkit.labs import evaluate

from .grading import Exercise, check_cases, near, number


def _bin_accuracy(value):
    share = 10 / 40  # the bin's share of the reviews weighs its gap
    number(value, 0.9 - 0.05 / share, 1e-6, "the bin adds (its share of the reviews) x |accuracy "
           "- confidence| to the ECE; solve for the accuracy below 0.9")


def _mce(fn):
    def truth(probs, labels, bins):
        r = metrics.reliability(probs, labels, bins)
        return float(np.max(np.abs(r["accuracy"] - r["confidence"])[r["n"] > 0]))
    check_cases(fn, "mce", [(c, truth(*c)) for c in evaluate.ece_cases()], "the largest |accuracy - mean "
                "confidence| over the bins that hold at least one review, not weighted; bins are (low, high]",
                close=near)


EXERCISES = {
    "09.1": Exercise("Of a model's 40 test reviews, 10 get confidence 0.9 and are alone in their "
                     "bin. The model is over-confident there: what accuracy must those 10 have for "
                     "their bin to add 0.05 to the ECE?", _bin_accuracy, "section 3's formula, read backwards"),
    "09.2": Exercise("One request at a time, 40 ms each, 8 clients that never pause: what mean latency (ms) "
                     "does a client see?",
                     lambda v: number(v, 8 * 40, 1, "Little's law: in flight = throughput x latency"),
                     "requests a second?"),
    "09.3": Exercise("Write mce(probs, labels, bins): the maximum calibration error, the largest "
                     "gap between a bin's accuracy and its mean confidence.", _mce,
                     "section 3's bins, without the weights"),
}
