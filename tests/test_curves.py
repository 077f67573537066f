import numpy as np
import pytest
from datasets import Dataset

from labkit.core import curves, data
from labkit.core.data import DataError


def ds(texts, labels):
    return Dataset.from_dict({"text": texts, "label": labels})


def test_baseline_learns_a_toy_task():
    train = ["good fun", "great joy", "bad dull", "awful boring"] * 5
    y = [1, 1, 0, 0] * 5
    assert curves.baseline_accuracy(train, y, ["good joy", "dull awful"], [1, 0]) == 1.0
    assert curves.baseline("zh").fit(["好看", "很好", "难看", "很差"], [1, 1, 0, 0]).predict(["好"])[0] == 1
    with pytest.raises(DataError):
        curves.baseline("fr")


def test_learning_curve_and_sampling():
    train = ds(["good fun", "great joy", "bad dull", "awful boring"] * 25, [1, 1, 0, 0] * 25)
    test = ds(["good joy", "dull awful"], [1, 0])
    curve = curves.learning_curve(train, test, sizes=(8, None), seeds=2)
    assert set(curve) == {8, 100} and len(curve[8]) == 2 and len(curve[100]) == 1
    idx = data.sample_per_class(train["label"], 20, seed=0)
    assert len(idx) == 20 and sum(train.select(idx)["label"]) == 10


def test_budget_curve_and_frozen_accuracy():
    y = np.array([0, 1] * 50)
    x = np.c_[y * 2.0 - 1 + np.random.default_rng(0).normal(0, 0.1, 100), np.zeros(100)]
    seen = []

    def run(rows, seed):
        seen.append((len(rows), seed))
        return curves.frozen_accuracy(x[rows], y[rows], x, y)

    curve = curves.budget_curve(run, y, (10, None, 500), seeds=3)
    assert set(curve) == {10, 100} and len(curve[10]) == 3 and len(curve[100]) == 1
    assert seen == [(10, 0), (10, 1), (10, 2), (100, 0), (100, 0)]
    assert all(a == 1.0 for accs in curve.values() for a in accs)
    seen.clear()
    assert len(curves.budget_curve(run, y, (None,), seeds=2, seeds_on_all=True)[100]) == 2
    assert seen == [(100, 0), (100, 1)]
    seen.clear()  # the seeds themselves: a live run takes seeds its study never drew
    curve = curves.budget_curve(run, y, (10, None), seeds=(10, 12))
    assert seen == [(10, 10), (10, 12), (100, 10)] and len(curve[10]) == 2
    assert len(curves.budget_curve(run, y, (10,), seeds=np.int64(2))[10]) == 2  # a numpy count is a count
    for bad in ((), (3, 3)):
        with pytest.raises(ValueError, match="no seed twice"):
            curves.budget_curve(run, y, (10,), seeds=bad)
    with pytest.raises(ValueError, match=r"seeds=0: it must be >= 1"):
        curves.budget_curve(run, y, (10,), seeds=0)



def test_baseline_fits_are_cached(tmp_cache):
    train = ["good fun", "great joy", "bad dull", "awful boring"] * 5
    y = [1, 1, 0, 0] * 5
    a = curves.baseline_accuracy(train, y, ["good joy", "dull awful"], [1, 0])
    assert curves.baseline_accuracy(train, np.array(y), ["good joy", "dull awful"], [1, 0]) == a
    assert len(list((tmp_cache / "runs").glob("tfidf-*"))) == 1
    curves.baseline_accuracy(train, y, ["good joy", "dull awful"], [1, 0], C=1.0)  # another setting
    assert len(list((tmp_cache / "runs").glob("tfidf-*"))) == 2
