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
                                   ValueError, r"labels are floats.*astype\(int\)"),
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
    "temperature: zero": (lambda: classifier.set_temperature("/tmp", None, 0), ValueError,
                          "temperature=0: it must be > 0"),
    "partition: more clients than rows": (lambda: federated.partition([0, 1], 3), ValueError,
                                          r"clients=3: it must be >= 1 and <= 2"),
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
                               ValueError, r"labels\[2\] = -2 is outside 0\.\.1"),
    "baseline: negative label": (lambda: curves.baseline_accuracy(T, [0, -1, 1, 0], T, Y),
                                 ValueError, r"train_labels\[1\] is -1 \(unlabelled.*the TF-IDF baseline"),
    "ece: label 2 of 2 classes": (lambda: metrics.ece(np.full((2, 2), 0.5), [0, 2]),
                                  ValueError, r"labels\[1\] = 2 is outside 0\.\.1.*probs have 2 classes"),
    "cross entropy: label 3 of 3 classes": (lambda: train.check_logits(torch.zeros(2, 3), torch.tensor([0, 3])),
                                            ValueError, "labels hold class 3"),
    "inject_label_noise: bad rate": (lambda: clean.inject_label_noise(Y, rate=2), ValueError, "rate"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_refused_with_the_argument_named(case):
    fn, exc, says = CASES[case]
    with pytest.raises(exc, match=says):
        fn()


# ---------------------------------------------------------------- issue 32: what people really bring

def write(tmp_path, name, content, encoding="utf-8"):
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode(encoding))
    return path


CSV_CASES = {  # file content, from_csv's keyword arguments, the message (the problem and the fix)
    "a zero-byte file": (b"", {}, r"is empty \(0 bytes\)"),
    "an xlsx renamed .csv": (b"PK\x03\x04\x14\x00" + b"\x00" * 40, {}, r"zip archive .*\.xlsx.*save it as 'CSV UTF-8'"),
    "UTF-16 (Excel's Unicode text)": ("text\tlabel\ngood\t1\nbad\t0\n".encode("utf-16"), {}, "pass encoding='utf-16'"),
    "cp1252 read as UTF-8": ("text,label\n\u201cgreat\u201d \u20ac5,1\nbad,0\n".encode("cp1252"), {},
                             r"not valid utf-8.*encoding='cp1252'"),
    "cp1252 read as latin-1": ("text,label\n\u201cgreat\u201d,1\nbad,0\n".encode("cp1252"), {"encoding": "latin-1"},
                               r"control character.*pass encoding='cp1252'"),
    "duplicate column names": ("text,label,text\na,1,b\nc,0,d\n", {}, r"two columns named 'text' \(columns 1 and 3\)"),
    "1-based ids": ("text,label\ngood,2\nbad,1\nfine,2\n", {}, r"ids run 1\.\.2, with no class 0.*subtract 1"),
    "an id with no row": ("text,label\ngood,2\nbad,0\n", {}, r"no row has label id 1"),
    "a NaN label": ("text,label\ngood,1\nbad,NaN\n", {"labels": ["neg", "pos"]},
                    r"1 rows are missing \(row 1 \(line 3\): no label \('NaN'\)"),
    "a TSV told to use commas": ("text\tlabel\ngood\t1\n", {"sep": ","}, r"no column 'text'.*pass sep='\\t'"),
    "a quote left open": ('text,label\ngood,1\n"bad,0\nfine,1\nok,0\n', {},
                          r"row 1 \(line 3\): a quote opened on line 3 runs to the end of the file, swallowing 3"),
    "a header only": ("text,label\n", {}, "no usable rows"),
    "sep of two characters": ("text,label\na,1\n", {"sep": ",,"}, "one character between fields"),
}


@pytest.mark.parametrize("case", list(CSV_CASES))
def test_from_csv_names_each_problem_and_its_fix(case, tmp_path):
    content, kwargs, says = CSV_CASES[case]
    with pytest.raises(data.DataError, match=says):
        data.from_csv(write(tmp_path, "in.csv", content), **kwargs)


def test_from_csv_keeps_what_people_legitimately_bring(tmp_path):
    long = "great " * 40_000  # 240,000 characters: over the csv module's default field limit
    content = f'\ufefftext;label\n"{long}";1\n"non-ASCII: café, 好, ü";0\n"a ""quoted"" word";1\n'
    path = write(tmp_path, "semi.csv", content)
    ds = data.from_csv(path)  # a UTF-8 byte-order mark, ';' sniffed from the header, a huge field
    assert ds.num_rows == 3 and len(ds[0]["text"]) == len(long) and ds["label"] == [1, 0, 1]
    assert ds[2]["text"] == 'a "quoted" word'
    import csv
    assert csv.field_size_limit() == 131072  # raised inside from_csv only: a process-wide setting, restored
    tsv = write(tmp_path, "t.tsv", "text\tlabel\r\ngood\t1\r\nbad\t0\r\n", "utf-16")
    assert data.from_csv(tsv, encoding="utf-16")["label"] == [1, 0]
    cp = write(tmp_path, "w.csv", "text,label\n\u201cgreat\u201d \u20ac5,1\nbad,0\n", "cp1252")
    assert data.from_csv(cp, encoding="cp1252")["text"][0] == "\u201cgreat\u201d \u20ac5"


def test_from_csv_loads_or_reports_every_record_in_many_dialects(tmp_path):
    """Random files: delimiters, quoting, line ends, encodings, sizes and damages. The test
    knows every record it wrote and the line it starts on; each must be loaded, or reported
    with that row and line (a quote left open at the end reports the lines it swallowed)."""
    import csv
    import io
    rng = np.random.default_rng(32)
    words = ["good", "bad", "café", "plot, twist", 'said "no"', "line\nbreak", "semi;colon", "tab\there", "ünï"]
    opened = 0
    for trial in range(40):
        delim = str(rng.choice([",", ";", "\t", "|"]))
        quoting = [csv.QUOTE_MINIMAL, csv.QUOTE_ALL, csv.QUOTE_NONNUMERIC][trial % 3]
        end = str(rng.choice(["\n", "\r\n", "\r"]))
        encoding = str(rng.choice(["utf-8", "utf-8-sig", "cp1252", "utf-16"]))
        n = int(rng.integers(1, 40))
        buf = io.StringIO()
        w = csv.writer(buf, delimiter=delim, quoting=quoting, lineterminator=end)
        w.writerow(["text", "label"])
        want, starts = {}, {}  # row -> "loaded" or the kind it must be reported as; row -> its first line
        for row in range(n + (trial % 5 == 4)):
            starts[row] = len(buf.getvalue().splitlines()) + 1
            if row == n:  # a quote opened on the last record and never closed: it swallows to the end
                buf.write(f'"an open quote{end}still open{delim}1{end}')
                want[row] = "malformed"
                continue
            pool = words if end != "\r" else [x for x in words if "\n" not in x]  # the writer would not quote it
            text = " ".join(rng.choice(pool, int(rng.integers(1, 6))))
            label: object = str(int(rng.integers(0, 3)))
            damage = rng.random()
            if damage < 0.08:
                text, kind = "  ", "empty"
            elif damage < 0.16:
                label, kind = str(rng.choice(["", "NaN", "null"])), "missing"
            elif damage < 0.22:
                label, kind = "seven", "unknown"
            elif damage < 0.28:
                buf.write(delim.join(["x", "1", "extra"]) + end)  # one field too many
                want[row] = "malformed"
                continue
            else:
                kind = "loaded"
            if quoting == csv.QUOTE_NONNUMERIC and kind == "loaded":
                label = int(label)  # written unquoted, as a number
            w.writerow([text, label])
            want[row] = kind
        path = write(tmp_path, f"t{trial}.csv", buf.getvalue(), encoding)
        rows, problems = data.csv_rows(path, encoding="utf-16" if encoding == "utf-16" else
                                       "utf-8" if encoding.startswith("utf-8") else "cp1252")
        got = {r: "loaded" for r, _, _ in rows}
        for kind, found in problems.items():
            for r, line, why in found:
                assert r not in got and line == starts[r] and why, (trial, kind, r, line, starts.get(r))
                got[r] = kind
                if r == n and trial % 5 == 4:
                    assert why.startswith(f"a quote opened on line {starts[r]} runs to the end of the file"), why
                    opened += 1
        assert got == want, (trial, delim, quoting, encoding, buf.getvalue()[:300])
    assert opened == 8  # every fifth file ended with a quote left open, and each was reported as one
