"""Tools: the exercise checks behind `check.answer` (``from labkit.exercises import check``), one file per lab
(``lab00.py`` ... ``lab09.py``), graded with explicit comparisons (``grading.py``) so that ``python -O`` changes
nothing. ``EXERCISES`` maps "NN.k" to its `Exercise` (question, check, hint).
"""
from . import lab00, lab01, lab02, lab03, lab04, lab05, lab06, lab07, lab08, lab09
from .grading import Exercise, Wrong

EXERCISES: dict[str, Exercise] = {k: v for lab in (lab00, lab01, lab02, lab03, lab04, lab05, lab06, lab07,
                                                   lab08, lab09) for k, v in lab.EXERCISES.items()}

__all__ = ["EXERCISES", "Exercise", "Wrong"]
