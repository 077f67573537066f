"""Bad input to the public functions that take data: wrong types, empty input, misaligned
lengths and out-of-range labels each get an error whose message names the argument (and,
where there is one, the fix), before any work is done. Data-free: tiny inputs only."""
import numpy as np
import pytest
import torch
from datasets import Dataset

from labkit.core import classifier, curves, data, kd, measure, metrics, models, stats, text, train
from labkit.labs import adversarial, augment, clean, compress, evaluate, federated
from labkit.labs.evaluate import loadtest

T, Y = ["a good film", "a bad film", "fine", "awful"], [1, 0, 1, 0]
LOGITS = np.zeros((4, 2))
DataErrorOrValue = (data.DataError, ValueError)


def ds(texts, labels):
    return Dataset.from_dict({"text": texts, "label": labels})


CASES = {
    # wrong types
    "validate: not a Dataset": (lambda: data.validate([("a", 1)]), DataErrorOrValue, "expected a datasets.Dataset"),
    "validate: labels not ints": (lambda: data.validate(ds(T, ["1", "0", "1", "0"])), ValueError, "column 'label'"),
    "check_inputs: a lone string": (lambda: classifier.check_inputs("a good film"),
                                    TypeError, r"texts must be a list.*\[texts\]"),
    "check_inputs: a number in texts": (lambda: classifier.check_inputs(["ok", 3]), TypeError, "texts must be strings"),
    "check_inputs: float labels": (lambda: classifier.check_inputs(T, [1.0, 0.0, 1.0, 0.0]),
                                   ValueError, "labels must be class numbers"),
    "baseline: a number in train_texts": (lambda: curves.baseline_accuracy(["a", 2], [0, 1], T, Y),
                                          TypeError, "train_texts must be strings"),
    "benchmark: not a function": (lambda: measure.benchmark("model", T, 2), TypeError, "predict_fn"),
    "unk_rate: a lone string": (lambda: text.unk_rate(None, "a text"), TypeError, "texts must be a list"),
    "sample_per_class: n not a number": (lambda: data.sample_per_class(Y, "2"), DataErrorOrValue, "n='2'"),
    "slice_masks: bytes": (lambda: evaluate.slice_masks([b"a"]), TypeError, "texts must be strings"),
    "augment: a number": (lambda: augment.augment([1, 2], [0, 1]), TypeError, "texts must be strings"),
    "eda: a list, not one text": (lambda: augment.eda(T), TypeError, "text must be one str"),
    "attack_many: a lone string": (lambda: adversarial.attack_many(None, "a review", [1]),
                                   TypeError, "texts must be a list"),
    "embed: a lone string": (lambda: models.embed("a review"), TypeError, "texts must be a list"),
    "with_typos: numbers": (lambda: evaluate.with_typos([1, 2]), TypeError, "texts must be strings"),
    # empty input
    "validate: empty": (lambda: data.validate(ds([], [])), ValueError, "empty"),
    "check_inputs: empty": (lambda: classifier.check_inputs([], []), ValueError, "texts is empty"),
    "baseline: empty test": (lambda: curves.baseline_accuracy(T, Y, [], []), ValueError, "test_texts is empty"),
    "sample_per_class: empty": (lambda: data.sample_per_class([], 2), DataErrorOrValue, "labels must be a non-empty"),
    "bootstrap: empty": (lambda: metrics.bootstrap([], []), ValueError, "labels and pred"),
    "ece: empty": (lambda: metrics.ece(np.zeros((0, 2)), np.zeros(0, int)), ValueError, "no reviews"),
    "paired: empty": (lambda: stats.paired([], []), ValueError, "non-empty"),
    "benchmark: empty": (lambda: measure.benchmark(lambda x: x, [], 2), ValueError, "texts is empty"),
    "find_duplicates: empty": (lambda: clean.find_duplicates([]), ValueError, "texts is empty"),
    "label_skew: empty": (lambda: federated.label_skew([], [[]]), ValueError, "labels and non-empty parts"),
    "attack_many: empty": (lambda: adversarial.attack_many(None, [], []), ValueError, "texts is empty"),
    "embed: empty": (lambda: models.embed([]), ValueError, "texts is empty"),
    "train_wordpiece: empty": (lambda: text.train_wordpiece([]), ValueError, "texts is empty"),
    "loadtest: no texts": (lambda: loadtest.closed_loop("http://127.0.0.1:9", []), ValueError, "needs texts"),
    "open loop: no rate": (lambda: loadtest.open_loop("http://127.0.0.1:9", ["a"], rate=0), ValueError, "rate > 0"),
    "temperature: zero": (lambda: classifier.set_temperature("/tmp", None, 0), ValueError, "must be a finite"),
    "partition: more clients than rows": (lambda: federated.partition([], 2), ValueError, "clients=2"),
    "split: too few per class": (lambda: data.split(ds(T, Y)), DataErrorOrValue, "distinct texts per class"),
    # misaligned lengths
    "check_inputs: misaligned": (lambda: classifier.check_inputs(T, [1, 0]), ValueError, "texts and labels must align"),
    "baseline: misaligned": (lambda: curves.baseline_accuracy(T, [1, 0], T, Y),
                             ValueError, "train_texts has 4 texts but train_labels has 2"),
    "bootstrap: misaligned": (lambda: metrics.bootstrap([1, 0], [1]), ValueError, "equally long"),
    "final: misaligned": (lambda: evaluate.final("m", LOGITS, [1, 0], LOGITS, Y), ValueError, "one label per row"),
    "paired: misaligned": (lambda: stats.paired([0.1, 0.2], [0.1]), ValueError, "equally long"),
    "find_contradictions: misaligned": (lambda: clean.find_contradictions(T, [1]), ValueError, "4 texts but 1 labels"),
    "augment: misaligned": (lambda: augment.augment(T, [1]), ValueError, "4 texts but 1 labels"),
    "attack_many: misaligned": (lambda: adversarial.attack_many(None, T, [1]), ValueError, "4 texts but 1 labels"),
    "centralised: misaligned": (lambda: federated.centralised(np.zeros((4, 3)), [1, 0], np.zeros((2, 3)), [1, 0],
                                                              1, 0.1),
                                ValueError, "x and y"),
    "variant: misaligned": (lambda: compress.variant(lambda t: LOGITS, T, [1], T, 1, 1),
                            ValueError, "texts and labels must align"),
    "kd_loss: misaligned labels": (lambda: kd.kd_loss(torch.zeros(4, 2), torch.zeros(4, 2),
                                                      torch.zeros(3, dtype=torch.long)),
                                   ValueError, "one label per row"),
    "kd_loss: teacher of another shape": (lambda: kd.kd_loss(torch.zeros(4, 2), torch.zeros(4, 3),
                                                             torch.zeros(4, dtype=torch.long)),
                                          ValueError, "teacher_logits"),
    # out-of-range labels
    "validate: label 2 of 2 classes": (lambda: data.validate(ds(T, [0, 1, 2, 0])),
                                       ValueError, r"column 'label' must hold ints in 0..1"),
    "check_inputs: label -2": (lambda: classifier.check_inputs(T, [0, 1, -2, 0]),
                               ValueError, "labels must be class numbers"),
    "baseline: negative label": (lambda: curves.baseline_accuracy(T, [0, -1, 1, 0], T, Y),
                                 ValueError, "train_labels must be class ids"),
    "ece: label 2 of 2 classes": (lambda: metrics.ece(np.full((2, 2), 0.5), [0, 2]),
                                  ValueError, "labels must be integers in 0..1"),
    "cross entropy: label 3 of 3 classes": (lambda: train.check_logits(torch.zeros(2, 3), torch.tensor([0, 3])),
                                            ValueError, "labels hold class 3"),
    "inject_label_noise: bad rate": (lambda: clean.inject_label_noise(Y, rate=2), ValueError, "rate"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_refused_with_the_argument_named(case):
    fn, exc, says = CASES[case]
    with pytest.raises(exc, match=says):
        fn()
