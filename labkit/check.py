"""Tools: exercise checks: ``check.answer("01.2", your_answer)`` says right, or gives a hint.

A wrong or missing answer never raises (a notebook with unanswered exercises still runs
top to bottom); `answer` returns True or False so a solutions notebook can assert it.
Each exercise's truth is computed from the real data, not stored.
Leaves out: grading and scores.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from .augment import negation_survival
from .clean import find_near_duplicates
from .data import load_reviews, review_splits


@dataclass(frozen=True)
class Exercise:
    question: str
    check: Callable  # value -> None, raising AssertionError(hint) when wrong
    hint: str


def _positive_en(value):
    truth = sum(load_reviews("en")["label"])
    assert isinstance(value, int), "give a whole number (an int)"
    assert value == truth, "count rows whose label is 1 (positive) in load_reviews('en')"


def _median_len_zh(value):
    import numpy as np
    truth = float(np.median([len(t) for t in load_reviews("zh")["text"]]))
    assert isinstance(value, (int, float)), "give a number of characters"
    assert abs(value - truth) <= 0.5, "take np.median of len(text) over load_reviews('zh')"


def _near_dup_pairs(value):
    truth = len(find_near_duplicates(load_reviews("en")["text"], threshold=0.8))
    assert isinstance(value, int), "give a whole number of pairs"
    assert value == truth, ("call find_near_duplicates on the cleaned English texts "
                            "with threshold=0.8 and count the pairs")


def _contradiction_rate(fn):
    assert callable(fn), "pass the function itself, e.g. check.answer('01.2', contradiction_rate)"
    cases = [((["good", "Good!", "bad", "bad"], [1, 0, 0, 0]), 0.5),
             ((["a", "b"], [0, 1]), 0.0),
             ((["x", "x", "x"], [1, 1, 0]), 1.0)]
    for (texts, labels), want in cases:
        got = fn(texts, labels)
        assert isinstance(got, (int, float)) and abs(got - want) < 1e-9, (
            f"contradiction_rate({texts}, {labels}) returned {got!r}, expected {want}: "
            "count the rows that labkit.clean.find_contradictions returns, over all rows")


def _word_spans(fn):
    assert callable(fn), "pass the function itself, e.g. check.answer('02.1', word_spans)"
    cases = [(["un", "##for", "##get", "the"], [[0, 1, 2], [3]]), ([], []),
             (["a", "b"], [[0], [1]]), (["##x", "y", "##z"], [[0], [1, 2]])]
    for tokens, want in cases:
        got = fn(tokens)
        assert [list(s) for s in got] == want, (f"word_spans({tokens}) returned {got}, expected "
                                               f"{want}: a token starting with ## continues a word")


def _always_positive(value):
    truth = float(np.mean(review_splits()["test"]["label"]))
    assert isinstance(value, (int, float)), "give a number between 0 and 1"
    assert abs(value - truth) < 1e-3, ("on data.review_splits()['test'], the share of labels "
                                       "equal to 1 is the accuracy of always saying positive")


def _negation_accuracy(fn):
    assert callable(fn), "pass the function itself, e.g. check.answer('03.2', negation_accuracy)"
    cases = [((["not bad", "great", "isn't good", "bad"], [1, 1, 0, 0], [1, 0, 1, 0]), 0.5),
             ((["never again", "no way"], [0, 0], [0, 0]), 1.0)]
    for (texts, labels, preds), want in cases:
        got = fn(texts, labels, preds)
        assert isinstance(got, (int, float)) and abs(got - want) < 1e-9, (
            f"negation_accuracy({texts}, {labels}, {preds}) returned {got!r}, expected {want}: "
            "keep the rows where finetune.slices(texts)['negation'] is True")


def _negations_changed(value):
    truth = 1 - negation_survival(review_splits()["train"]["text"], 4, 0.3, guard=False)[1]
    assert isinstance(value, (int, float)), "give a share between 0 and 1"
    assert abs(value - truth) < 1e-3, ("augment.negation_survival(training texts, 4, 0.3, "
                                       "guard=False) gives the share kept; 1 minus it is changed")


def _strength_of(fn):
    assert callable(fn), "pass the function itself, e.g. check.answer('04.2', strength_of)"
    cases = [(("a b c d", "a c d"), 0.25), (("a b", "b a"), 0.0), (("a a b", "a b"), 1 / 3),
             (("not good", "great"), 1.0), (("good film", "good film good"), 0.0)]
    for args, want in cases:
        got = fn(*args)
        assert isinstance(got, (int, float)) and abs(got - want) < 1e-9, (
            f"strength_of{args} returned {got!r}, expected {want}: count words with "
            "collections.Counter and subtract the variant's counts")


def _soft_p(value):
    truth = math.exp(0.5) / (1 + math.exp(0.5))
    assert isinstance(value, (int, float)), "give a probability between 0 and 1"
    assert abs(value - truth) < 1e-4, "divide the logits [0, 2] by T=4, then take the softmax"


def _soft_loss(fn):
    import torch
    from .distill import kd_loss
    assert callable(fn), "pass the function itself, e.g. check.answer('05.2', soft_loss)"
    g = torch.Generator().manual_seed(0)
    for T in (1.0, 2.0, 5.0):
        s, t = torch.randn(6, 3, generator=g), torch.randn(6, 3, generator=g)
        want = kd_loss(s, t, torch.zeros(6, dtype=torch.long), T, alpha=1.0)
        got = fn(s, t, T)
        assert torch.is_tensor(got) and got.numel() == 1, "return a scalar tensor"
        assert torch.allclose(got.float(), want, atol=1e-5), (
            f"at T={T} got {float(got):.5f}, expected {float(want):.5f}: KL(p || q) = sum p * "
            "(log p - log q) with p the teacher's softmax at T; mean over rows; times T^2")


EXERCISES = {
    "00.1": Exercise("How many of the cleaned English reviews are positive?", _positive_en,
                     "count the 1s in the label column"),
    "00.2": Exercise("What is the median length, in characters, of the cleaned Chinese reviews?",
                     _median_len_zh, "np.median over len(text)"),
    "01.1": Exercise("How many near-duplicate pairs do the English reviews have at cosine >= 0.8?",
                     _near_dup_pairs, "find_near_duplicates(texts, threshold=0.8)"),
    "01.2": Exercise("Write contradiction_rate(texts, labels): the share of rows whose text "
                     "(after normalisation) also occurs with another label.", _contradiction_rate,
                     "labkit.clean.find_contradictions gives the rows of each such text"),
    "02.1": Exercise("Write word_spans(tokens): group WordPiece tokens into words.",
                     _word_spans, "start a new span at each token without the ## prefix"),
    "03.1": Exercise("What accuracy does always answering 'positive' get on the test reviews?",
                     _always_positive, "the mean of the test labels"),
    "03.2": Exercise("Write negation_accuracy(texts, labels, predictions): accuracy on the "
                     "reviews with a negation word.", _negation_accuracy,
                     "mask = finetune.slices(texts)['negation']"),
    "04.1": Exercise("With the guard off at strength 0.3 (3x the lab's), what share of the "
                     "variants of the training reviews with a negation word change their "
                     "negation words?", _negations_changed,
                     "augment.negation_survival(..., strength=0.3, guard=False)"),
    "04.2": Exercise("Write strength_of(original, variant): the share of the original's words "
                     "missing from the variant.", _strength_of,
                     "Counter(original.split()) - Counter(variant.split())"),
    "05.1": Exercise("What is the teacher's P(positive) for logits [0, 2] at temperature 4?",
                     _soft_p, "softmax([0, 2] / 4)"),
    "05.2": Exercise("Write soft_loss(student_logits, teacher_logits, T): T^2 times the KL "
                     "divergence of the softmaxes at T.", _soft_loss,
                     "torch.log_softmax(x / T, -1) for both; KL = sum p (log p - log q)"),
}


def answer(exercise: str, value) -> bool:
    """Check an answer; prints a verdict or a hint and returns whether it is right."""
    if exercise not in EXERCISES:
        print(f"No exercise {exercise!r}; the exercises are {', '.join(EXERCISES)}.")
        return False
    ex = EXERCISES[exercise]
    if value is None or value is Ellipsis:
        print(f"[{exercise}] not answered yet. {ex.question} Hint: {ex.hint}.")
        return False
    try:
        ex.check(value)
    except AssertionError as e:
        print(f"[{exercise}] not yet: {e or ex.hint}.")
        return False
    except Exception as e:  # the learner's function crashed: show why, not a traceback
        print(f"[{exercise}] your answer raised {type(e).__name__}: {e}. Hint: {ex.hint}.")
        return False
    print(f"[{exercise}] correct.")
    return True
