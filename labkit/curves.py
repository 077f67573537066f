"""Core: the yardstick and the learning curve. The TF-IDF + logistic-regression `baseline`
every lab compares against, logistic regression on frozen features (`frozen_accuracy`), and
`budget_curve`: any model's accuracy at each label budget and seed.

Leaves out: neural models (`labkit.classifier`).
"""
from __future__ import annotations

import numpy as np

from .data import DataError, check_lang, sample_per_class

# Inverse regularisation of every logistic regression in the course: the TF-IDF baseline,
# frozen features and confident learning (lab 01).
C = 4.0


def baseline(lang: str = "en"):
    """TF-IDF + logistic regression: the course's yardstick. English: words and word
    pairs; Chinese (no spaces between words): characters and character pairs."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    check_lang(lang)
    vec = (TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True) if lang == "en" else
           TfidfVectorizer(analyzer="char", ngram_range=(1, 2), sublinear_tf=True))
    # liblinear: same accuracy as lbfgs here, 10x faster on sparse binary problems
    return make_pipeline(vec, LogisticRegression(C=C, solver="liblinear"))


def baseline_accuracy(train_texts, train_labels, test_texts, test_labels, lang: str = "en") -> float:
    """Test accuracy of `baseline` fitted on the training texts and labels."""
    if len(train_texts) != len(train_labels) or len(test_texts) != len(test_labels):
        raise DataError("texts and labels differ in length")
    model = baseline(lang).fit(list(train_texts), list(train_labels))
    return float(np.mean(model.predict(list(test_texts)) == np.asarray(test_labels)))


def frozen_accuracy(train_x, train_y, test_x, test_y, C: float = C,
                    standardize: bool = False) -> float:
    """Test accuracy of a logistic regression on frozen features (`labkit.models.embed`,
    `labkit.classifier.features`); ``standardize`` rescales each feature to mean 0,
    variance 1 first."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    clf = LogisticRegression(C=C, max_iter=3000)
    clf = make_pipeline(StandardScaler(), clf) if standardize else clf
    return float(clf.fit(train_x, train_y).score(test_x, test_y))


def budget_curve(run, labels, budgets, seeds: int = 3, seeds_on_all: bool = False) -> dict:
    """Accuracy at each label budget: ``{n: [run(rows, seed) for each seed]}``.

    ``run(rows, seed) -> accuracy`` trains on the training rows ``rows`` (a stratified sample
    of ``n`` rows, different for each seed). A budget of None or >= len(labels) means all
    rows, run once (every seed would see the same data), or once per seed with
    ``seeds_on_all`` (for models whose initialisation depends on the seed).
    """
    out = {}
    for n in budgets:
        n_eff = len(labels) if n is None else min(n, len(labels))
        out[n_eff] = [run(sample_per_class(labels, n_eff, seed), seed)
                      for seed in range(seeds if n_eff < len(labels) or seeds_on_all else 1)]
    return out


def learning_curve(train, test, sizes, seeds: int = 3) -> dict:
    """Baseline accuracy at each training size (None = all): {size: [acc per seed]}."""
    def run(rows, seed):
        sub = train.select(rows)
        return baseline_accuracy(sub["text"], sub["label"], test["text"], test["label"])
    return budget_curve(run, train["label"], sizes, seeds)


