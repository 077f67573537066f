"""Core: the yardstick and the learning curve. The TF-IDF + logistic-regression `baseline`
every lab compares against, logistic regression on frozen features (`frozen_accuracy`), and
`budget_curve`: any model's accuracy at each label budget and seed.

Leaves out: neural models (`labkit.classifier`).
"""
from __future__ import annotations

import numpy as np

from . import cache
from .data import DataError, check_lang, sample_per_class

# Inverse strength of the regularisation of the course's logistic regressions, each chosen on
# the validation split (never on test): C for the TF-IDF baseline (lab 01 shows the sweep),
# FROZEN_C for frozen sentence embeddings (lab 03 shows its sweep, across label budgets).
C = 64.0
FROZEN_C = 4.0


def baseline(lang: str = "en", C: float = C):
    """TF-IDF + logistic regression: the course's yardstick. English: words and word
    pairs; Chinese (no spaces between words): characters and character pairs. ``C``: the
    inverse strength of the regularisation (lab 01 checks the course's on validation)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    check_lang(lang)
    vec = (TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True) if lang == "en" else
           TfidfVectorizer(analyzer="char", ngram_range=(1, 2), sublinear_tf=True))
    # liblinear: same accuracy as lbfgs here, 10x faster on sparse binary problems
    return make_pipeline(vec, LogisticRegression(C=C, solver="liblinear"))


def baseline_accuracy(train_texts, train_labels, test_texts, test_labels, lang: str = "en",
                      C: float = C) -> float:
    """Accuracy on (test_texts, test_labels) of `baseline` fitted on the training texts; a
    fit on the same data and settings is read back from the run cache."""
    if len(train_texts) != len(train_labels) or len(test_texts) != len(test_labels):
        raise DataError("texts and labels differ in length")
    train_texts, test_texts = list(train_texts), list(test_texts)

    def fit_and_score():
        model = baseline(lang, C).fit(train_texts, list(train_labels))
        return {"accuracy": np.array([np.mean(model.predict(test_texts) == np.asarray(test_labels))])}

    run_key = cache.key(train=train_texts, train_labels=np.asarray(train_labels), test=test_texts,
                        test_labels=np.asarray(test_labels), lang=lang, C=C)
    return float(cache.arrays("tfidf", run_key, fit_and_score)["accuracy"][0])


def frozen_accuracy(train_x, train_y, test_x, test_y, C: float = FROZEN_C,
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


