import numpy as np
import pytest
from datasets import Dataset

from labkit.core import data
from labkit.core.data import DataError


def ds(texts, labels):
    return Dataset.from_dict({"text": texts, "label": labels})


def test_load_reviews_counts_match_the_design():
    en, zh = data.load_reviews("en"), data.load_reviews("zh")
    assert en.num_rows == 12_752 and en.column_names == ["text", "label", "source"]
    assert zh.num_rows == 17_363 and zh.column_names == ["text", "label"]
    assert data.load_reviews("en", raw=True).num_rows == 12_808
    assert data.load_reviews("zh", raw=True).num_rows == 35_124
    assert en.features["label"].names == ["negative", "positive"]
    assert all(t == t.strip() and t for t in en["text"])
    with pytest.raises(DataError, match="'en' or 'zh'"):
        data.load_reviews("fr")


def test_load_text_both_languages_and_exclude():
    en = data.load_text("en")
    chars = sum(map(len, en["text"]))
    assert 3.0e6 < chars < 4.5e6
    zh = data.load_text("zh")
    assert 1.5e6 < sum(map(len, zh["text"])) < 2.2e6
    assert not any("/n" in t or "/v" in t for t in zh["text"][:500])  # POS tags stripped
    first = en["text"][0]
    assert first not in data.load_text("en", exclude=[first])["text"]


def test_validate_names_the_problem():
    with pytest.raises(DataError, match="no column 'review'"):
        data.validate(ds(["a"], [0]), text_column="review")
    with pytest.raises(DataError, match="empty"):
        data.validate(ds([], []))
    with pytest.raises(DataError, match="must hold strings"):
        data.validate(Dataset.from_dict({"text": [1, 2], "label": [0, 1]}))
    with pytest.raises(DataError, match="ints in 0..1"):
        data.validate(ds(["a", "b"], [0, 2]))
    with pytest.raises(DataError, match="expected a datasets.Dataset"):
        data.validate({"text": ["a"]})
    data.validate(ds(["a", "b"], [0, 1]))


def test_from_csv(tmp_path):
    f = tmp_path / "mine.csv"
    f.write_text("review,stars\nGreat,positive\nAwful,negative\n")
    out = data.from_csv(f, "review", "stars", labels=["negative", "positive"])
    assert out["text"] == ["Great", "Awful"] and out["label"] == [1, 0]
    with pytest.raises(DataError, match=r"no column 'text'.*\['review', 'stars'\]"):
        data.from_csv(f)
    with pytest.raises(DataError, match=r"1 rows are unknown \(row 0 \(line 2\): label 'positive' is not one of"):
        data.from_csv(f, "review", "stars", labels=["negative", "neutral"])
    with pytest.raises(DataError, match="not ids"):
        data.from_csv(f, "review", "stars")
    g = tmp_path / "empty_text.csv"
    g.write_text("text,label\n,1\nok,0\n")
    with pytest.raises(DataError, match=r"1 rows are empty \(row 0 \(line 2\): empty text.*drop=\['empty'\]"):
        data.from_csv(g)
    with pytest.raises(DataError, match="no such file"):
        data.from_csv(tmp_path / "missing.csv")


def test_normalize_repairs_markup_entities_mojibake():
    assert data.normalize("Itâ€™s <i>great</i> &amp; fun ") == "It's great & fun"
    assert data.normalize("a  \n b<br />") == "a b"
    with pytest.raises(TypeError, match="takes a str"):
        data.normalize(None)


def test_normalize_skips_ftfy_only_where_it_has_nothing_to_fix(monkeypatch):
    """Printable ASCII without '&' skips ftfy (slow, and such text has no mojibake, entity,
    control character or wide form to fix): on the course's texts, and on text ftfy must fix,
    normalize gives exactly what it gave with ftfy on every text."""
    import html

    import ftfy

    def with_ftfy_always(t):
        return data._SPACE.sub(" ", html.unescape(data._MARKUP.sub(" ", ftfy.fix_text(t)))).strip()
    tricky = ["caf\u00c3\u00a9 <b>ok</b>", "a &lt;b&gt; &amp; c", "tab\there", "\uff21\uff22 wide", "line\r\nbreak",
              "x\x1b[31my", "It\u00e2\u20ac\u2122s", "plain <i>ascii</i> text", "  spaced   out  "]
    texts = data.load_reviews("en", raw=True)["text"][:] + data.load_text("en")["text"][:2000] + tricky
    assert [data.normalize(t) for t in texts] == [with_ftfy_always(t) for t in texts]
    called = []
    monkeypatch.setattr(ftfy, "fix_text", lambda t: called.append(t) or t)
    data.normalize("A plain review, 10/10 <br /> fine.")
    assert called == []  # ftfy skipped
    data.normalize("It\u00e2\u20ac\u2122s")
    assert called == ["It\u00e2\u20ac\u2122s"]


def test_split_hand_case_exact_sizes():
    texts = [f"pos {i}" for i in range(10)] + [f"neg {i}" for i in range(10)]
    out = data.split(ds(texts, [1] * 10 + [0] * 10), test=0.2, validation=0.1, seed=0)
    assert {k: (v.num_rows, sum(v["label"])) for k, v in out.items()} == \
        {"train": (14, 7), "validation": (2, 1), "test": (4, 2)}
    again = data.split(ds(texts, [1] * 10 + [0] * 10), test=0.2, validation=0.1, seed=0)
    assert again["test"]["text"] == out["test"]["text"]


def test_split_keeps_copies_together():
    texts = [f"pos {i}" for i in range(40)] + [f"neg {i}" for i in range(60)]
    texts[1] = texts[2] = "Pos 0!"  # the same review as row 0 after normalisation
    out = data.split(ds(texts, [1] * 40 + [0] * 60), test=0.2, validation=0.1, seed=3)
    keys = {k: {data.dedup_key(t) for t in v["text"]} for k, v in out.items()}
    assert not keys["train"] & keys["test"] and not keys["train"] & keys["validation"]
    assert not keys["validation"] & keys["test"]
    assert sum(v.num_rows for v in out.values()) == 100
    with pytest.raises(DataError, match="sum below 1"):
        data.split(ds(texts, [1] * 40 + [0] * 60), test=0.6, validation=0.5)


def test_review_splits_are_the_fixed_course_splits():
    a, b = data.review_splits(), data.review_splits()
    assert {k: v.num_rows for k, v in a.items()} == {"train": 9564, "validation": 1275, "test": 1913}
    assert a["test"]["text"] == b["test"]["text"]
    data.review_splits.cache_clear()  # the next call reads its row numbers from the run cache
    again = data.review_splits()
    made = data.split(data.load_reviews(), test=0.15, validation=0.1, seed=0)  # ... made as split() makes them
    assert all(again[k]["text"] == made[k]["text"] for k in made)


def test_review_arrays_are_the_fixed_split_and_caps_are_stratified():
    x_train, y_train, x_test, y_test = data.review_arrays()
    splits = data.review_splits()
    assert list(x_train) == list(splits["train"]["text"]) and x_test == list(splits["test"]["text"])
    assert x_train.dtype == object and y_train.dtype.kind == "i"
    xs, ys, xt, yt = data.review_arrays(train_size=200, test_size=50, seed=1)
    assert len(xs) == 200 and len(xt) == 50 and set(xs) <= set(x_train) and set(xt) <= set(x_test)
    assert abs(ys.mean() - y_train.mean()) < 0.02  # class shares kept
    assert list(data.review_arrays(train_size=200, seed=1)[0]) == list(xs)  # seeded


def test_validation_arrays_are_the_fixed_validation_split():
    x_val, y_val = data.validation_arrays()
    assert x_val == list(data.review_splits()["validation"]["text"]) and len(y_val) == len(x_val)
    xs, ys = data.validation_arrays(size=100, seed=0)
    assert len(xs) == 100 and set(xs) <= set(x_val)


def test_dataset_columns_are_read_at_once_never_row_by_row(monkeypatch, tmp_path):
    # since datasets 4, ds["text"] is a lazy Column whose loop reads one row at a time (lab 01's
    # warm run spent over a minute there): labkit reads a column given to it in one piece
    from datasets.arrow_dataset import Column

    from labkit.core import checks, curves, text
    from labkit.labs import clean
    monkeypatch.setenv("LABKIT_CACHE", str(tmp_path))
    train = ds([f"great film number {i}" if i % 2 else f"awful film number {i}" for i in range(40)], [0, 1] * 20)
    test = ds(["great film", "awful film", "great", "awful"], [1, 0, 1, 0])

    def row_by_row(self, *key):
        if not key or isinstance(key[0], int):  # a loop, or col[i] in one
            raise AssertionError("a Column was read row by row")
        return whole(self, key[0])
    whole = Column.__getitem__
    monkeypatch.setattr(Column, "__iter__", row_by_row)
    monkeypatch.setattr(Column, "__getitem__", row_by_row)
    assert checks.column(train["text"]) == [train[i]["text"] for i in range(40)]
    assert checks.column(x := [1, 2]) is x  # anything else as it is
    assert text.check_texts(test["text"]) == ["great film", "awful film", "great", "awful"]
    assert checks.labels(test["label"]).tolist() == [1, 0, 1, 0]
    assert len(data.sample_per_class(train["label"], 10)) == 10
    assert curves.baseline_accuracy(train["text"], train["label"], test["text"], test["label"]) == 1.0
    assert set(curves.learning_curve(train, test, [10, None], seeds=2)) == {10, 40}
    assert clean.count_leaks(train["text"], test["text"]) == 0 and clean.find_duplicates(test["text"]) == []
    assert clean.find_contradictions(test["text"], test["label"]) == {}
    assert curves.frozen_accuracy(np.eye(40)[:, :8], train["label"], np.eye(4, 8), test["label"]) >= 0
    clean.find_near_duplicates(train["text"])
    data.validate(train)
    assert sorted(sum(data.split_rows(train, 0.25, 0.25).values(), [])) == list(range(40))
