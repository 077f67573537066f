"""Issue 32: every public function that trains, scores, attacks or evaluates checks its labels,
class count and settings first (`labkit.core.checks`), files labkit wrote or fetched name
themselves when damaged, and legitimate input keeps working. Each case asserts the exception
and a message that names the argument (or file) and the fix. Data-free and fast: the checks
run before any model, tokenizer or data is touched, so the models here are stand-ins."""
import bz2
import json
import shutil

import numpy as np
import pytest
import torch

from labkit.core import cache, checks, classifier, curves, fetch, kd, metrics
from labkit.labs import adversarial, augment, clean, compress, evaluate, federated, finetune
from labkit.labs.federated import flower, privacy
from torch.utils.data import DataLoader

T = ["a good film", "a bad film", "fine", "awful"]
X = np.zeros((4, 3), np.float32)
PARTS = [np.array([0, 1]), np.array([2, 3])]


class TwoClasses(torch.nn.Module):
    """A stand-in model that says it predicts 2 classes (like lab 07's Head)."""
    num_labels = 2

    def forward(self, x):
        return torch.zeros(len(x), 2)


def proba(texts):
    return np.tile([0.2, 0.8], (len(texts), 1))


def cfg05():
    from labkit.labs.distill import DistillConfig
    return DistillConfig.for_scale("smoke")


# Every entry point that takes labels, called with the labels `bad`; the checks run before any work.
ENTRY_POINTS = {
    "fine_tune": lambda y: classifier.fine_tune(TwoClasses(), None, T, y, lr=1e-3, steps=1),
    "classifier.accuracy": lambda y: classifier.accuracy(TwoClasses(), None, T, y),
    "kd.student_run": lambda y: kd.student_run(None, None, "hard labels", T, y, np.zeros((4, 2)), [0, 1, 2, 3],
                                               0, cfg05()),
    "federated.fedavg": lambda y: federated.fedavg(X, y, PARTS, X, [0, 1, 0, 1], rounds=1, per_round=1, lr=0.1),
    "federated.centralised": lambda y: federated.centralised(X, y, X, [0, 1, 0, 1], epochs=1, lr=0.1),
    "flower.run": lambda y: flower.run(X, y, PARTS, X, [0, 1, 0, 1], rounds=1, lr=0.1),
    "privacy.head_run": lambda y: privacy.head_run(X, y, {}, None, epochs=1, lr=0.1),
    "privacy.bert_run": lambda y: privacy.bert_run(None, None, T, y, {}, None, epochs=1, lr=0.1),
    # dp_fit reads the labels of a loader of classifier.loader's (ids, label, mask) items
    "privacy.dp_fit": lambda y: privacy.dp_fit(TwoClasses(), DataLoader([(None, v, None) for v in y]), 1, 0.1, 1.0),
    "federated.feature_loader": lambda y: federated.feature_loader(X, y),
    "federated.label_skew": lambda y: federated.label_skew(y, PARTS),
    "federated.partition": lambda y: federated.partition(y, 2),
    "privacy.per_example_loss": lambda y: privacy.per_example_loss(np.zeros((4, 2)), y),
    "metrics.accuracy": lambda y: metrics.accuracy(np.zeros((4, 2)), y),
    "metrics.summary": lambda y: metrics.summary(y, [0, 1, 0, 1]),
    "metrics.confusion": lambda y: metrics.confusion(y, [0, 1, 0, 1]),
    "curves.frozen_accuracy": lambda y: curves.frozen_accuracy(X, y, X, [0, 1, 0, 1]),
    "clean.label_noise_draw": lambda y: clean.label_noise_draw(T, y, T, [0, 1, 0, 1], 0.5, 2, 0),
    "adversarial.attack_many": lambda y: adversarial.attack_many(proba, T, y, progress=False),
    "compress.variant": lambda y: compress.variant(lambda t: np.zeros((len(t), 2)), T, y, T, 1, 1),
    "compress.structured_run": lambda y: compress.structured_run(TwoClasses(), None, T, y, np.zeros((4, 2)), None),
    "finetune.confident_mistakes": lambda y: finetune.confident_mistakes(T, y, proba(T)),
    "metrics.bootstrap": lambda y: metrics.bootstrap(y, [0, 1, 0, 1], classes=2),
    "metrics.macro_f1": lambda y: metrics.macro_f1(y, [0, 1, 0, 1], 2),
    "evaluate.slice_table": lambda y: evaluate.slice_table(0.5, {"all": (y, [0, 1, 0, 1])}),
    "curves.baseline_accuracy": lambda y: curves.baseline_accuracy(T, y, T, [0, 1, 0, 1]),
    "curves.budget_curve": lambda y: curves.budget_curve(lambda rows, seed: 0.5, y, [2]),
    "augment.paired_gains": lambda y: augment.paired_gains(lambda x, y_, s: 0.5, T, y, [2], 1),
    "clean.find_label_issues": lambda y: clean.find_label_issues(T, y, folds=2),
    "clean.inject_label_noise": lambda y: clean.inject_label_noise(y, 0.5),
}
FLOAT, TEXT, NAN, BOOL = [1.0, 0.0, 1.0, 0.0], ["1", "0", "1", "0"], [1, 0, float("nan"), 0], [True, False, True, False]
BAD_LABELS = {  # what every entry point must refuse, and what the message must say
    "float labels": (FLOAT, r"are floats .*astype\(int\)"),
    "class names as text": (TEXT, r"hold str values such as '1'.*map each class name to its number"),
    "a NaN label": (NAN, r"\[2\] is NaN \(a missing label"),
    "True/False": (BOOL, r"are True/False: pass class numbers"),
}
# the class count follows the data: any class number is fine
TAKES_ANY_CLASS = {"curves.baseline_accuracy", "curves.budget_curve", "augment.paired_gains",
                   "federated.feature_loader", "federated.partition", "curves.frozen_accuracy"}


@pytest.mark.parametrize("bad", list(BAD_LABELS))
@pytest.mark.parametrize("entry", list(ENTRY_POINTS))
def test_every_entry_point_refuses_labels_that_are_not_class_numbers(entry, bad):
    labels, says = BAD_LABELS[bad]
    with pytest.raises(ValueError, match=says):
        ENTRY_POINTS[entry](labels)


# the fix each names when a label is beyond the classes: an argument, or the model (or scores) that set the count
FIX = {"fine_tune": "The model has 2 outputs", "classifier.accuracy": "pass classes=K",
       "privacy.dp_fit": "The model has 2 outputs", "compress.variant": "The model gives 2 classes",
       "compress.structured_run": "pass classes=K", "finetune.confident_mistakes": "probs have 2 classes",
       "privacy.per_example_loss": "the logits have 2 classes", "metrics.accuracy": "scores have 2 classes",
       "metrics.bootstrap": "pass classes=K", "metrics.macro_f1": "pass classes=K",
       "metrics.confusion": "pass classes=K", "metrics.summary": "pass classes=K",
       "clean.inject_label_noise": "pass num_labels=K"}


@pytest.mark.parametrize("entry", sorted(set(ENTRY_POINTS) - TAKES_ANY_CLASS))
def test_a_label_beyond_the_classes_is_refused_never_a_new_class(entry):
    """A label 5 with 2 classes is refused with the fix (pass classes=K, or the model's count)."""
    fix = FIX.get(entry, "pass classes=K")
    with pytest.raises(ValueError, match=rf"\[1\] = 5 is outside 0\.\.1 .*{fix}"):
        ENTRY_POINTS[entry]([0, 5, 1, 0])


@pytest.mark.parametrize("entry", sorted(TAKES_ANY_CLASS))
def test_where_the_class_count_follows_the_data_any_class_number_passes_the_check(entry):
    """A learning curve, a loader or a partition takes class 5 as it is (no model fixes the
    count), but still refuses a negative label with its own message."""
    y = [0, 5, 5, 0]
    try:
        ENTRY_POINTS[entry](y)
    except ValueError as e:  # what fails after the check (e.g. a stratified sample of 4 rows) is not the label
        assert "labels" not in str(e).split(":")[0] or "outside" not in str(e), e
    with pytest.raises(ValueError, match=r"\[1\] = -2 is negative \(1 such rows\): class numbers start at 0"):
        ENTRY_POINTS[entry]([0, -2, 1, 0])


UNLABELLED_REFUSED = sorted(set(ENTRY_POINTS) - TAKES_ANY_CLASS - {"kd.student_run"})


@pytest.mark.parametrize("entry", UNLABELLED_REFUSED + ["curves.baseline_accuracy", "augment.paired_gains",
                                                         "curves.frozen_accuracy"])
def test_minus_one_is_refused_with_the_reason_where_the_loss_cannot_take_it(entry):
    with pytest.raises(ValueError, match=r"is -1 \(unlabelled; 1 such rows\): .* needs a label for every row.*"
                                         r"distillation"):
        ENTRY_POINTS[entry]([0, -1, 1, 0])


def test_the_class_count_comes_from_classes_not_the_largest_label(tmp_cache):
    """fedavg with a label 2 and classes=3 checks fine (it then trains 3 outputs); with the
    default (2) it is refused, where before it silently trained a head with one output per label."""
    y3 = [0, 2, 1, 0]
    with pytest.raises(ValueError, match=r"pass classes=K"):
        federated.centralised(X, y3, X, y3, epochs=1, lr=0.1)
    acc = federated.centralised(X, y3, X, y3, epochs=1, lr=0.1, classes=3)
    assert 0 <= acc <= 1
    with pytest.raises(ValueError, match=r"classes=1: it must be >= 2"):
        federated.centralised(X, [0, 0, 0, 0], X, [0, 0, 0, 0], epochs=1, lr=0.1, classes=1)


def test_labels_are_checked_up_front_not_when_sampling_reaches_a_row():
    """A bad label in a part that no round would draw, or a row Poisson sampling would skip,
    is refused before any training (the first check, not a crash mid-run)."""
    parts = [np.array([0, 1]), np.array([2, 3])]
    with pytest.raises(ValueError, match=r"y\[3\] = 7"):
        federated.fedavg(X, [0, 1, 0, 7], parts, X, [0, 1, 0, 1], rounds=1, per_round=1, lr=0.1, progress=False)
    loader = federated.feature_loader(X, [0, 1, 0, 9], batch_size=4)
    with pytest.raises(ValueError, match=r"labels\[3\] = 9 is outside 0\.\.1.*model has 2 outputs"):
        privacy.dp_fit(TwoClasses(), loader, 1, 0.1, epsilon=1.0)


def test_an_attack_refuses_a_label_it_cannot_score_instead_of_skipping_the_review():
    """Before, a label "1" or 5 never matched the model's prediction: the review was counted
    as a model error ("skipped"). Now it is refused, before the word vectors are loaded."""
    for label, says in (("1", "hold str values"), (5, r"label\[0\] = 5 is outside 0\.\.1.*proba_fn gives 2 classes")):
        with pytest.raises(ValueError, match=says):
            adversarial.attack(proba, "a good film", label)
    with pytest.raises(ValueError, match=r"proba_fn's output are not probabilities.*softmax"):
        adversarial.attack(lambda t: np.array([[2.0, -1.0]]), "a good film", 0)


# ---------------------------------------------------------------- the lab modules' own arguments

SETTINGS = {  # call, the message (the argument, the problem, the fix)
    "delta 1": (lambda: privacy.spent_epsilon(1.0, 0.01, 100, delta=1.0), r"delta=1\.0: it must be > 0 and < 1"),
    "sampling rate 1.5": (lambda: privacy.spent_epsilon(1.0, 1.5, 100), r"sample_rate=1\.5: it must be > 0 and <= 1"),
    "more clients per round than clients": (lambda: privacy.client_dp_epsilon(1.0, per_round=12, clients=10, rounds=5),
                                            r"per_round=12: it must be >= 1 and <= 10"),
    "dp_fit at delta 1": (lambda: privacy.dp_fit(TwoClasses(), None, 1, 0.1, 1.0, delta=1), r"delta=1: it must be"),
    "epsilon as text": (lambda: privacy.check_epsilon("8"), r"epsilon='8': it must be a number"),
    "ece of logits": (lambda: metrics.ece(np.array([[2.0, -1.0], [0.5, 3.0]]), [0, 1]),
                      r"not probabilities.*softmax\(logits\)"),
    "confidence 95": (lambda: metrics.bootstrap([0, 1], [0, 1], confidence=95),
                      r"confidence=95.*a share, e\.g\. 0\.95"),
    "zero resamples": (lambda: metrics.bootstrap([0, 1], [0, 1], resamples=0), r"resamples=0: it must be >= 1"),
    "classes smaller than the labels": (lambda: metrics.macro_f1([0, 2, 1], [0, 1, 1], 2), r"= 2 is outside 0\.\.1"),
    "NaN logits to fit a temperature": (lambda: evaluate.fit_temperature(np.array([[np.nan, 1.0], [0.0, 1.0]]), [0, 1]),
                                        r"holds NaN or infinity at row 0"),
    "temperature 0 to softmax": (lambda: metrics.softmax(np.zeros((1, 2)), 0), r"temperature=0: it must be > 0"),
    "dirichlet nan": (lambda: federated.partition([0, 1] * 20, 2, "dirichlet nan"), r"Dirichlet alpha=nan"),
    "clients as text": (lambda: federated.partition([0, 1] * 20, "2"), r"clients='2': it must be a whole number"),
    "bins 0": (lambda: metrics.ece(np.full((2, 2), 0.5), [0, 1], bins=0), r"bins=0: it must be >= 1"),
    "fedavg lr 0": (lambda: federated.fedavg(X, [0, 1, 0, 1], PARTS, X, [0, 1, 0, 1], 1, 1, lr=0),
                    r"lr=0: it must be > 0"),
    "label-noise rate 2": (lambda: clean.inject_label_noise([0, 1], rate=2), r"rate=2: it must be >= 0 and <= 1"),
    "label noise, 3 classes declared as 2": (lambda: clean.inject_label_noise([0, 2, 1], 0.5),
                                             r"= 2 is outside 0\.\.1.*pass num_labels=K"),
    "confident learning, one row of a class": (lambda: clean.find_label_issues(T, [0, 1, 1, 1], folds=2),
                                               r"class 0 has 1 rows: .*needs 2 or more of each"),
    "confident learning, a class with no rows": (lambda: clean.find_label_issues(T, [0, 1, 0, 1], folds=2,
                                                                                 classes=3),
                                                 r"class 2 has 0 rows"),
    "augment: 2-D labels": (lambda: augment.augment(T, np.zeros((4, 2), int)), r"labels must be 1-D.*shape \(4, 2\)"),
    "fine_tune: lr 0": (lambda: classifier.fine_tune(TwoClasses(), None, T, [0, 1, 0, 1], lr=0, steps=1),
                        r"lr=0: it must be > 0 \(the learning rate"),
    "fine_tune: steps 0": (lambda: classifier.fine_tune(TwoClasses(), None, T, [0, 1, 0, 1], lr=1e-3, steps=0),
                           r"steps=0: it must be >= 1"),
    "centralised: 1.5 epochs": (lambda: federated.centralised(X, [0, 1, 0, 1], X, [0, 1, 0, 1], epochs=1.5, lr=0.1),
                                r"epochs=1\.5: it must be a whole number"),
    "dp_fit: lr as text": (lambda: privacy.dp_fit(TwoClasses(), None, 1, "0.1", None),
                           r"lr='0\.1': it must be a number"),
    "kd: NaN temperature": (lambda: kd.soft_targets([[2.0, 0.0]], float("nan")),
                            r"temperature=nan: it must be a finite"),
    "kd: alpha 2": (lambda: kd.kd_loss(torch.zeros(2, 2), torch.zeros(2, 2), torch.zeros(2, dtype=torch.long),
                                       alpha=2), r"alpha=2: it must be >= 0 and <= 1"),
    "frozen_accuracy: C 0": (lambda: curves.frozen_accuracy(X, [0, 1, 0, 1], X, [0, 1, 0, 1], C=0),
                             r"C=0: it must be > 0"),
    "summary: 3 classes, num_labels not given": (lambda: metrics.summary([0, 2, 1], [0, 1, 1]),
                                                  r"labels\[1\] = 2 is outside 0\.\.1.*pass classes=K"),
    "budget_curve: budget 0": (lambda: curves.budget_curve(lambda r, s: 0.5, [0, 1] * 4, [0]),
                               r"a budget=0: it must be >= 1"),
    "budget_curve: one budget, not a list": (lambda: curves.budget_curve(lambda r, s: 0.5, [0, 1] * 4, 4),
                                             r"budgets=4: give a list"),
    "budget_curve: run not a function": (lambda: curves.budget_curve(0.5, [0, 1] * 4, [4]), r"run\(rows, seed\)"),
    "budget_curve: zero seeds": (lambda: curves.budget_curve(lambda r, s: 0.5, [0, 1] * 4, [4], seeds=0),
                                 r"seeds=0: it must be >= 1"),
    "recover: targets of another shape": (lambda: compress.recover(TwoClasses(), None, T, np.zeros((4, 3)), 1, 0.1),
                                          r"targets has shape \(4, 3\).*one row of 2 per text"),
    "recovered: NaN targets": (lambda: compress.recovered(TwoClasses(), None, T, np.full((4, 2), np.nan), 1, 0.1),
                               r"targets holds NaN"),
    "slice_table: overall as a percent": (lambda: evaluate.slice_table(85.0, {"all": ([0, 1], [0, 1])}),
                                          r"overall=85\.0: it must be >= 0 and <= 1"),
    "slice_table: a slice not a pair": (lambda: evaluate.slice_table(0.5, {"short": [0, 1, 1]}),
                                        r"groups\['short'\] must be a pair \(labels, predictions\)"),
    "slice_table: a prediction beyond the classes": (lambda: evaluate.slice_table(0.5, {"long": ([0, 1], [0, 3])}),
                                                     r"groups\['long'\] predictions\[1\] = 3.*pass classes=K"),
    "slice_table: no slices": (lambda: evaluate.slice_table(0.5, {}), r"groups must be a non-empty dict"),
}


WRONG_KIND = {"budget_curve: one budget, not a list", "budget_curve: run not a function"}  # TypeError


@pytest.mark.parametrize("case", list(SETTINGS))
def test_settings_are_refused_where_they_enter_with_the_fix(case):
    fn, says = SETTINGS[case]
    with pytest.raises(TypeError if case in WRONG_KIND else ValueError, match=says):
        fn()


# ---------------------------------------------------------------- files that name themselves

def test_damaged_run_cache_files_name_the_file_and_the_folder_to_delete(tmp_cache):
    run = cache.run_dir("demo", "k1")
    run.mkdir(parents=True)
    cache.save_arrays(run / "arrays.safetensors", {"a": np.arange(10)})
    (run / "arrays.safetensors").write_bytes((run / "arrays.safetensors").read_bytes()[:20])
    with pytest.raises(cache.DamagedFile, match=rf"cannot read {run / 'arrays.safetensors'}.*rm -r {run}"):
        cache.read_arrays(run / "arrays.safetensors")
    (run / "result.json").write_text('{"accuracy": [0.8')  # a truncated write
    with pytest.raises(cache.DamagedFile, match=r"result\.json: it is damaged or truncated.*delete its run folder"):
        cache.read_json(run / "result.json")


def test_damaged_lab_results_name_the_lab_to_rerun(tmp_cache, monkeypatch):
    monkeypatch.setenv("LABKIT_SCALE", "smoke")
    path = cache.results_path("05_distillation", "smoke")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('{"students": ')
    with pytest.raises(cache.DamagedFile, match=r"run lab 05 again \(labkit run notebooks/05_distillation\.ipynb\)"):
        evaluate.lab_results("05_distillation")


def test_a_fetched_file_damaged_at_the_same_size_points_to_fetch_verify(tmp_cache):
    """bz2's "Invalid data stream" inside a loader becomes a FetchError naming the source and
    `labkit fetch --verify`; the size check alone cannot see this damage."""
    with pytest.raises(fetch.FetchError, match=r"fetched reviews-en .*labkit fetch --verify reviews-en"):
        with fetch.reading("reviews-en"):
            bz2.decompress(b"BZh91AY&SY" + b"\x00" * 40)
    with pytest.raises(fetch.FetchError, match=r"fetched minilm .*labkit fetch --verify minilm"):
        with fetch.reading("minilm"):
            json.loads('{"vocab_size": 30')


@pytest.fixture
def real_cache():
    """The user's cache (where `labkit fetch` put the data), read before tmp_cache replaces it."""
    return cache.cache_dir()


def test_a_damaged_fetched_review_file_is_a_fetch_error_from_the_real_loader(real_cache, tmp_cache):
    """The real loader on a real fetched file, flipped in the middle at the same size."""
    from labkit.core import data
    src = real_cache / "data" / "reviews-en"
    if not (src / fetch.MARKER).exists():
        pytest.skip("reviews-en not fetched in the user's cache (labkit fetch)")
    dst = cache.cache_dir() / "data" / "reviews-en"
    shutil.copytree(src, dst)
    f = next(dst.glob("*.bz2"))
    raw = bytearray(f.read_bytes())
    raw[len(raw) // 2: len(raw) // 2 + 64] = bytes(64)
    f.write_bytes(bytes(raw))
    with pytest.raises(fetch.FetchError, match=r"labkit fetch --verify reviews-en"):
        data.load_reviews("en")


# ---------------------------------------------------------------- legitimate input keeps working

@pytest.mark.parametrize("dtype", [np.int8, np.uint8, np.int16, np.int32, np.int64, np.uint64])
def test_labels_of_any_integer_dtype_and_object_ints_are_accepted(dtype, tmp_cache):
    y = np.array([0, 1, 1, 0], dtype=dtype)
    assert checks.labels(y).dtype == np.int64
    assert checks.labels(np.array([0, 1, np.int64(1), 0], dtype=object)).tolist() == [0, 1, 1, 0]
    assert metrics.bootstrap(y, y, resamples=10)["accuracy"] == 1.0
    assert curves.baseline_accuracy(T, y, T, y) >= 0


def test_minus_one_is_accepted_where_the_loss_takes_it(tmp_cache):  # augment() writes a cache entry
    """Distillation's loss learns from unlabelled rows: fine_tune's label check passes -1 with
    it (and refuses -1 without it); the defences' losses say the same."""
    y = np.array([0, -1, 1, -1])
    assert classifier._check_training_labels(TwoClasses(), y, kd.kd_loss_fn(2.0, 0.5)) == 2
    with pytest.raises(ValueError, match=r"-1 \(unlabelled.*the loss 'cross entropy'"):
        classifier._check_training_labels(TwoClasses(), y, None)
    texts, labels = augment.augment(T, y, n_aug=1, ops=("swap",))  # augmenting copies -1 to the variants
    assert len(texts) == 8 and labels.tolist() == [0, -1, 1, -1, 0, -1, 1, -1]


def test_numpy_numbers_are_accepted_as_settings():
    assert privacy.spent_epsilon(np.float32(1.0), np.float64(0.01), np.int64(100), delta=np.float64(1e-5)) > 0
    privacy.check_epsilon(np.float32(8.0))
    b = metrics.bootstrap([0, 1, 1, 0], [0, 1, 0, 0], resamples=np.int64(50), confidence=np.float32(0.9))
    assert b["n"] == 4
    y = np.array([0, 1, 2, 0, 1, 2])
    noisy, flipped = clean.inject_label_noise(y, np.float64(0.5), num_labels=np.int64(3))
    assert flipped.sum() == 3 and set(noisy.tolist()) <= {0, 1, 2} and (noisy[flipped] != y[flipped]).all()
    assert (noisy[~flipped] == y[~flipped]).all()


def test_a_three_class_slice_table_and_label_noise_work_with_classes_given():
    y = np.array([0, 1, 2, 2, 1, 0])
    table = evaluate.slice_table(0.5, {"all": (y, y), "half": (y[:3], np.array([0, 0, 0]))}, classes=3)
    assert table["all"]["accuracy"] == 1.0 and table["half"]["n"] == 3
    noisy, flipped = clean.inject_label_noise(y, 1.0, num_labels=3)
    assert flipped.all() and (noisy != y).all() and noisy.max() <= 2
