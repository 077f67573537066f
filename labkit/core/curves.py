"""Core: the yardstick and the learning curve. The TF-IDF + logistic-regression `baseline`
every lab compares against, logistic regression on frozen features (`frozen_accuracy`), and
`budget_curve`: any model's accuracy at each label budget and seed.

Leaves out: neural models (`labkit.core.classifier`).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from labkit.core import cache, checks
from labkit.core.data import DataError, check_lang, sample_per_class
from labkit.core.text import check_texts

# Inverse strength of the regularisation of the course's logistic regressions, each chosen on
# the validation split (never on test): C for the TF-IDF baseline (lab 01 shows the sweep),
# FROZEN_C for frozen sentence embeddings (lab 03 shows its sweep, across label budgets).
C = 64.0
FROZEN_C = 4.0


def baseline(lang: str = "en", C: float = C, classes: int = 2):
    """TF-IDF + logistic regression: the course's yardstick. English: words and word
    pairs; Chinese (no spaces between words): characters and character pairs. ``C``: the
    inverse strength of the regularisation (lab 01 checks the course's on validation).
    ``classes``: 2 uses liblinear; more, a multinomial logistic regression (lbfgs)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    check_lang(lang)
    vec = (TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True) if lang == "en" else
           TfidfVectorizer(analyzer="char", ngram_range=(1, 2), sublinear_tf=True))
    # liblinear: same accuracy as lbfgs here, 10x faster on sparse binary problems, but binary only
    clf = LogisticRegression(C=C, solver="liblinear") if classes <= 2 else LogisticRegression(C=C, max_iter=2000)
    return make_pipeline(vec, clf)


def baseline_accuracy(train_texts, train_labels, test_texts, test_labels, lang: str = "en",
                      C: float = C) -> float:
    """Accuracy on (test_texts, test_labels) of `baseline` fitted on the training texts; a
    fit on the same data and settings is read back from the run cache."""
    checked = []
    for what, texts, labels in (("train", train_texts, train_labels), ("test", test_texts, test_labels)):
        texts = check_texts(texts, f"{what}_texts is empty: give at least one text", f"{what}_texts")
        if len(texts) != len(labels):
            raise DataError(f"{what}_texts has {len(texts)} texts but {what}_labels has {len(labels)} labels")
        checked += [texts, checks.labels(labels, classes=checks.ANY, name=f"{what}_labels", why="the TF-IDF baseline")]
    if len(np.unique(checked[1])) < 2:
        raise DataError("train_labels hold one class only: a classifier needs at least two")

    return float(_fit_and_score(*checked, lang, C)["accuracy"][0])


@cache.cached("tfidf")
def _fit_and_score(train_texts, train_labels, test_texts, test_labels, lang, C) -> dict:
    model = baseline(lang, C, int(np.max(train_labels)) + 1).fit(train_texts, list(train_labels))
    return {"accuracy": np.array([np.mean(model.predict(test_texts) == test_labels)])}


def frozen_accuracy(train_x, train_y, test_x, test_y, C: float = FROZEN_C,
                    standardize: bool = False) -> float:
    """Test accuracy of a logistic regression on frozen features (`labkit.core.models.embed`,
    `labkit.core.classifier.features`); ``standardize`` rescales each feature to mean 0,
    variance 1 first."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    checks.number(C, "C", low=0, fix="the inverse strength of the regularisation, e.g. 4.0")
    y = {}
    for what, x, labels in (("train", train_x, train_y), ("test", test_x, test_y)):
        checks.finite(x, f"{what}_x", "the feature rows")  # the features go on as given (their dtype)
        y[what] = checks.labels(labels, n=len(x), classes=checks.ANY, name=f"{what}_y", why="a logistic regression")
    clf = LogisticRegression(C=C, max_iter=3000)
    clf = make_pipeline(StandardScaler(), clf) if standardize else clf
    return float(clf.fit(train_x, y["train"]).score(test_x, y["test"]))


def budget_curve(run, labels, budgets, seeds: int | Sequence[int] = 3, seeds_on_all: bool = False) -> dict:
    """Accuracy at each label budget: ``{n: [run(rows, seed) for each seed]}``.

    ``run(rows, seed) -> accuracy`` trains on the training rows ``rows`` (a stratified sample
    of ``n`` rows, different for each seed). ``seeds``: a count (seeds 0, 1, ...) or the seeds
    themselves (a lab's live run takes seeds its study never drew). A budget of None or >=
    len(labels) means all rows, run once with the first seed (every seed would see the same
    data), or once per seed with ``seeds_on_all`` (for models whose initialisation depends on
    the seed).
    """
    if not callable(run):
        raise TypeError(f"run={run!r}: pass a function run(rows, seed) -> accuracy")
    labels = checks.labels(labels, classes=checks.ANY, why="a learning curve")
    seeds = (list(range(checks.number(seeds, "seeds", low=1, low_open=False, integer=True, fix="how many seeds")))
             if isinstance(seeds, (int, np.integer)) else [checks.number(s, "a seed", integer=True) for s in seeds])
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"budget_curve needs at least one seed and no seed twice; got seeds={seeds}")
    if isinstance(budgets, (str, int, np.integer)) or budgets is None:
        raise TypeError(f"budgets={budgets!r}: give a list of label budgets, e.g. (100, 500, None); None is all rows")
    budgets = list(budgets)  # read twice below: a generator would be empty the second time
    for n in budgets:
        if n is not None:
            checks.number(n, "a budget", low=1, low_open=False, integer=True, fix="labelled rows, or None for all")
    out = {}
    for n in budgets:
        n_eff = len(labels) if n is None else min(n, len(labels))
        out[n_eff] = [run(sample_per_class(labels, n_eff, seed), seed)
                      for seed in (seeds if n_eff < len(labels) or seeds_on_all else seeds[:1])]
    return out


def learning_curve(train, test, sizes, seeds: int = 3) -> dict:
    """Baseline accuracy at each training size (None = all): {size: [acc per seed]}."""
    def run(rows, seed):  # each function reads the columns it is given at once (checks.column)
        sub = train.select(rows)
        return baseline_accuracy(sub["text"], sub["label"], test["text"], test["label"])
    return budget_curve(run, train["label"], sizes, seeds)


