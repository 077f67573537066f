"""Tools: exercises of Lab 00 (start here): the cleaned reviews, counted.
Each check computes its truth when called; see labkit.exercises.grading."""
from __future__ import annotations

import numpy as np

from labkit.core import data

from .grading import Exercise, number


def _positive_en(value):
    truth = sum(data.load_reviews("en")["label"][:])  # [:]: the column in one read
    number(value, truth, 0, "count the rows labelled 1 (positive) in the cleaned English reviews",
           "a whole number")


def _median_negative(value):
    ds = data.load_reviews("zh")
    truth = float(np.median([len(t) for t, y in zip(ds["text"][:], ds["label"][:]) if y == 0]))
    number(value, truth, 0.5, "keep only the rows whose label is 0, then take the median of "
           "len(text); the figure in section 3 mixes both labels")


def _movies(value):
    truth = len(set(data.load_reviews("en")["source"][:]))
    number(value, truth, 0, "the movie of each review is in the `source` column; count the "
           "distinct names", "a whole number")


EXERCISES = {
    "00.1": Exercise("How many of the cleaned English reviews are positive?", _positive_en,
                     "the labels are 0 and 1"),
    "00.2": Exercise("What is the median length, in characters, of the negative Chinese reviews?",
                     _median_negative, "filter by label first"),
    "00.3": Exercise("How many different movies do the English reviews cover?", _movies,
                     "look at the columns of the Dataset"),
}
