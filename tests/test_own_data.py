"""A learner's own data, end to end: a 3-class CSV in a Windows encoding with empty, malformed
and mislabelled rows, built from real text (reviews and English text that is not a review),
loads with one `from_csv` call, splits leak-free, and trains and scores the baseline and MiniLM
through the one loop. Uses the fetched data (the README's test command fetches it first)."""
import csv
import io
from pathlib import Path

import numpy as np
import pytest

from labkit.core import classifier, curves, data, kd, metrics
from labkit.labs import evaluate

NAMES = ["negative", "positive", "not a review"]


@pytest.fixture(scope="module")
def messy_csv(tmp_path_factory):
    reviews = data.load_reviews("en")
    rng = np.random.default_rng(0)
    rows = []
    for label in (0, 1):
        idx = rng.choice(np.flatnonzero(np.array(reviews["label"]) == label), 150, replace=False)
        rows += [(reviews[int(i)]["text"], NAMES[label]) for i in idx]
    other = data.load_text("en")["text"][-2000:]  # headlines, debates, speeches: not reviews
    rows += [(t, NAMES[2]) for t in rng.choice(other, 150, replace=False)]
    rows = [rows[i] for i in rng.permutation(len(rows))]
    rows[5] = ("Un café naïve et délicieux, 5 €", "positive")  # bytes that are not UTF-8 in cp1252
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["tweet", "sentiment"])
    for i, r in enumerate(rows):
        w.writerow(r)
        if i == 20:
            buf.write("an, unquoted, line, with, commas\n")  # malformed: too many fields
        if i in (30, 31, 90):
            w.writerow(["   ", "positive"])                  # empty text
        if i == 40:
            w.writerow(["a review of mixed feelings", "mixed"])  # a label outside NAMES
    path = tmp_path_factory.mktemp("own") / "tweets.csv"
    path.write_bytes(buf.getvalue().encode("cp1252", errors="replace"))
    return path, len(rows)


def test_a_messy_multiclass_csv_loads_splits_trains_and_scores(messy_csv, capsys):
    path, good = messy_csv
    with pytest.raises(data.DataError, match=r"not valid utf-8.*encoding='cp1252'"):
        data.from_csv(path, "tweet", "sentiment", labels=NAMES)
    with pytest.raises(data.DataError, match=r"1 rows are malformed.*drop=\['malformed'\]"):
        data.from_csv(path, "tweet", "sentiment", labels=NAMES, encoding="cp1252")

    ds = data.from_csv(path, "tweet", "sentiment", labels=NAMES, encoding="cp1252", drop=True)
    said = capsys.readouterr().out
    assert "3 empty (rows" in said and "1 unknown (rows" in said and "1 malformed (rows 21)" in said
    assert ds.num_rows == good and ds.features["label"].names == NAMES
    assert "Un café naïve et délicieux, 5 €" in ds["text"]

    parts = data.split(ds, test=0.2, validation=0.1, seed=0)
    keys = {k: {data.dedup_key(t) for t in v["text"]} for k, v in parts.items()}
    assert not keys["train"] & keys["test"] and not keys["train"] & keys["validation"]
    assert all(set(v["label"]) == {0, 1, 2} for v in parts.values())
    tr, te = parts["train"], parts["test"]
    majority = max(np.bincount(te["label"])) / te.num_rows

    base = curves.baseline_accuracy(tr["text"], tr["label"], te["text"], te["label"])
    assert base > majority + 0.2, (base, majority)

    tok, model = classifier.minilm_classifier(seed=0, num_labels=3)
    classifier.fine_tune(model, tok, tr["text"], tr["label"], lr=1e-4, epochs=2, batch_size=16, max_len=48,
                         progress=False)
    logits = classifier.predict_logits(model.eval(), tok, te["text"], max_len=48)
    m = metrics.summary(np.array(te["label"]), logits.argmax(-1), num_labels=3)
    assert m["accuracy"] > majority + 0.2, (m, majority)
    b = metrics.bootstrap(np.array(te["label"]), logits.argmax(-1), classes=3, resamples=200)
    assert b["ci"][0] <= m["accuracy"] <= b["ci"][1]
    assert metrics.confusion(te["label"], logits.argmax(-1), 3).sum() == te.num_rows
    va = parts["validation"]
    val_logits = classifier.predict_logits(model, tok, va["text"], max_len=48)
    ev = evaluate.final("MiniLM, 3 classes", logits, te["label"], val_logits, va["label"])  # calibration, k classes
    assert ev["accuracy_after"] == ev["accuracy"] and len(ev["confusion"]) == 3
    import torch
    loss = kd.kd_loss(torch.zeros(4, 3, requires_grad=True), torch.from_numpy(logits[:4]).float(),
                           torch.tensor(te["label"][:4]))
    loss.backward()
    assert torch.isfinite(loss)


def test_the_shipped_example_csv_loads_as_the_data_readme_says():
    ds = data.from_csv(Path(__file__).parents[1] / "data" / "examples" / "product_reviews.csv", "review", "sentiment",
                       labels=["negative", "neutral", "positive"], encoding="cp1252", drop=["empty", "unknown"])
    assert ds.num_rows == 60 and np.bincount(ds["label"]).tolist() == [20, 20, 20]
    parts = data.split(ds, test=0.2, validation=0.2)
    assert all(v.num_rows for v in parts.values())
