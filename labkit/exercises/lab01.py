"""Tools: exercises of Lab 01 (data): contradictions, leaks, redaction.
Each check computes its truth when called; see labkit.exercises.grading."""
from __future__ import annotations

from labkit.core import data
from labkit.labs import clean

from .grading import Exercise, check_cases, near, number


def _contradiction_rate(fn):
    check_cases(fn, "contradiction_rate", [
        ((["good", "Good!", "bad", "bad"], [1, 0, 0, 0]), 0.5), ((["a", "b"], [0, 1]), 0.0),
        ((["x", "x", "x"], [1, 1, 0]), 1.0), ((["ok", "ok", "no"], [1, 1, 0]), 0.0)],
        "count every row of each text that clean.find_contradictions returns, over all rows",
        near)


def _zh_leaks(value):
    raw = data.load_reviews("zh", raw=True)
    nonempty = raw.filter(lambda r: bool(r["text"].strip()))
    naive = nonempty.train_test_split(test_size=0.15, seed=0)
    truth = clean.count_leaks(naive["train"]["text"], naive["test"]["text"])
    number(value, truth, 0, "split the non-empty raw lines as section 4 splits the English ones "
           "(train_test_split, test_size=0.15, seed=0) and count test lines whose normalised "
           "text is also in training", "a whole number")


def _redact(fn):
    def want(text):
        for s, e, _ in reversed(clean.find_pii(text)):
            text = text[:s] + "█" * (e - s) + text[e:]
        return text
    texts = ["mail a.b@c.org now", "call 415-555-0132 or 415.555.0199", "nothing here", ""]
    check_cases(fn, "redact", [((t,), want(t)) for t in texts],
                "replace each span clean.find_pii finds by as many █ as it has characters, "
                "working from the end so earlier offsets stay valid")


EXERCISES = {
    "01.1": Exercise("Write contradiction_rate(texts, labels): the share of rows whose text "
                     "(after normalisation) also occurs with another label.", _contradiction_rate,
                     "one function in labkit.labs.clean groups those rows for you"),
    "01.2": Exercise("How many test lines of a naive random split of the raw Chinese reviews also "
                     "occur in its training part?", _zh_leaks, "section 4 does this for English"),
    "01.3": Exercise("Write redact(text): blank out each span find_pii finds with █, one per "
                     "character, so the text keeps its length.", _redact,
                     "replacing from the end keeps earlier offsets valid"),
}
