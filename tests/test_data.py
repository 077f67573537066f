import numpy as np
import pytest
from datasets import Dataset

from labkit import data
from labkit.data import DataError


def ds(texts, labels):
    return Dataset.from_dict({"text": texts, "label": labels})


# ------------------------------------------------------------------ loaders (real data)

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


# ------------------------------------------------------------------ validation and CSV

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
    with pytest.raises(DataError, match="unknown labels \\['positive'\\]"):
        data.from_csv(f, "review", "stars", labels=["negative", "neutral"])
    with pytest.raises(DataError, match="not ids"):
        data.from_csv(f, "review", "stars")
    g = tmp_path / "empty_text.csv"
    g.write_text("text,label\n,1\nok,0\n")
    with pytest.raises(DataError, match="empty text in rows \\[0\\]"):
        data.from_csv(g)
    with pytest.raises(DataError, match="no such file"):
        data.from_csv(tmp_path / "missing.csv")


# ------------------------------------------------------------------ normalisation, duplicates

def test_normalize_repairs_markup_entities_mojibake():
    assert data.normalize("Itâ€™s <i>great</i> &amp; fun ") == "It's great & fun"
    assert data.normalize("a  \n b<br />") == "a b"
    with pytest.raises(TypeError, match="takes a str"):
        data.normalize(None)


def test_dedup_key_and_find_duplicates_hand_case():
    assert data.dedup_key("Great film!!") == "great film"
    assert data.find_duplicates(["A b", "x", "a B!", "X.", "y"]) == [[0, 2], [1, 3]]
    assert data.find_duplicates(["a", "b"]) == []


def test_find_near_duplicates_hand_case():
    texts = ["will warm your heart without making you feel guilty about it",
             "About a Boy will warm your heart without making you feel guilty about it.",
             "a dull and lifeless film", "A dull and lifeless film!"]
    pairs = data.find_near_duplicates(texts, threshold=0.8)
    assert [(i, j) for i, j, _ in pairs] == [(0, 1)]  # (2, 3) are exact, not near, duplicates
    assert 0.8 <= pairs[0][2] < 1


def test_count_leaks():
    assert data.count_leaks(["Great film!", "Dull."], ["great film", "new one", "DULL"]) == 2
    assert data.count_leaks([], ["a"]) == 0


def test_find_contradictions():
    out = data.find_contradictions(["good", "Good!", "bad", "bad"], [1, 0, 0, 0])
    assert out == {"good": [0, 1]}


# ------------------------------------------------------------------ PII

@pytest.mark.parametrize("text,kind", [
    ("mail me: anna.k@mail.co.uk now", "EMAIL"), ("see https://www.filmfan.com/post/12.", "URL"),
    ("at www.cinema42.net", "URL"), ("call (415) 555-0132 today", "PHONE"),
    ("ring +44 20 7946 0958", "PHONE"), ("or 415.555.0132", "PHONE"),
    ("ssn 123-45-6789", "ID"), ("card 4111 1111 1111 1111", "ID"), ("acct 1234567890", "ID")])
def test_find_pii_kinds(text, kind):
    spans = data.find_pii(text)
    assert [k for _, _, k in spans] == [kind]
    s, e, _ = spans[0]
    assert text[s:e].strip(".") == text[s:e]


def test_find_pii_leaves_ordinary_text_alone():
    for t in ["Released in 1999, it runs 2 hours 15 minutes.", "A 10/10 film, 3.5 stars.",
              "The 1980s-set story of 2 brothers", "Rated 4 out of 5; $20 million budget"]:
        assert data.find_pii(t) == [], t


def test_scrub_pii_counts():
    text, counts = data.scrub_pii("Write to a@b.com or call 415-555-0132.")
    assert text == "Write to [EMAIL] or call [PHONE]." and counts == {"EMAIL": 1, "PHONE": 1}


def test_inject_pii_is_seeded_and_found():
    texts = [f"review number {i} was fine" for i in range(200)]
    a, spans = data.inject_pii(texts, rate=0.2, seed=1)
    b, _ = data.inject_pii(texts, rate=0.2, seed=1)
    assert a == b and len(spans) == 40
    for r, s, e, kind in spans:
        assert data.find_pii(a[r][s:e])
    scores = data.pii_scores(a, spans)
    assert scores["recall"] == 1.0 and scores["precision"] == 1.0


def test_injectors_reject_bad_input():
    for inject in (data.inject_pii, data.corrupt):
        with pytest.raises(DataError, match="between 0 and 1"):
            inject(["a b"], rate=2)
        with pytest.raises(DataError, match="must be strings"):
            inject(["a b", 3], rate=0.5)


def test_corrupt_is_undone_by_normalize():
    texts = ["It's a fine film", "Don't \"miss\" it & go", "plain words here"] * 20
    bad, rows = data.corrupt(texts, rate=0.5, seed=0)
    assert len(rows) == 30 and all(bad[r] != texts[r] for r in rows)
    assert all(data.normalize(bad[r]) == data.normalize(texts[r]) for r in rows)


# ------------------------------------------------------------------ label noise

def test_inject_label_noise_flips_exactly():
    y = np.array([0, 1] * 50)
    noisy, flipped = data.inject_label_noise(y, 0.15, seed=0)
    assert flipped.sum() == 15 and (noisy != y).sum() == 15
    assert np.array_equal(noisy[~flipped], y[~flipped])
    again, _ = data.inject_label_noise(y, 0.15, seed=0)
    assert np.array_equal(noisy, again)
    with pytest.raises(DataError, match="between 0 and 1"):
        data.inject_label_noise(y, 1.5)


def test_find_label_issues_finds_planted_flips():
    pos = [f"great wonderful superb film {i}" for i in range(60)]
    neg = [f"awful terrible boring film {i}" for i in range(60)]
    y = np.array([1] * 60 + [0] * 60)
    noisy = y.copy()
    noisy[[0, 1, 2, 60, 61, 62]] ^= 1
    mask, probs = data.find_label_issues(pos + neg, noisy, folds=3)
    assert set(np.flatnonzero(mask)) == {0, 1, 2, 60, 61, 62}
    assert probs.shape == (120, 2)
    with pytest.raises(DataError, match="3 texts but 2 labels"):
        data.find_label_issues(["a", "b", "c"], [0, 1])


# ------------------------------------------------------------------ baseline and splits

def test_baseline_learns_a_toy_task():
    train = ["good fun", "great joy", "bad dull", "awful boring"] * 5
    y = [1, 1, 0, 0] * 5
    assert data.baseline_accuracy(train, y, ["good joy", "dull awful"], [1, 0]) == 1.0
    assert data.baseline("zh").fit(["好看", "很好", "难看", "很差"], [1, 1, 0, 0]).predict(["好"])[0] == 1
    with pytest.raises(DataError):
        data.baseline("fr")


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


def test_learning_curve_and_sampling():
    train = ds(["good fun", "great joy", "bad dull", "awful boring"] * 25, [1, 1, 0, 0] * 25)
    test = ds(["good joy", "dull awful"], [1, 0])
    curve = data.learning_curve(train, test, sizes=(8, None), seeds=2)
    assert set(curve) == {8, 100} and len(curve[8]) == 2 and len(curve[100]) == 1
    idx = data.sample_per_class(train["label"], 20, seed=0)
    assert len(idx) == 20 and sum(train.select(idx)["label"]) == 10


def test_config_per_scale():
    smoke, cpu = data.DataConfig.for_scale("smoke"), data.DataConfig.for_scale("cpu")
    assert smoke.n_reviews and cpu.n_reviews is None and cpu.noise_seeds >= 3


def test_review_splits_are_the_fixed_course_splits():
    a, b = data.review_splits(), data.review_splits()
    assert {k: v.num_rows for k, v in a.items()} == {"train": 9564, "validation": 1275, "test": 1913}
    assert a["test"]["text"] == b["test"]["text"]


def test_review_arrays_are_the_fixed_split_and_caps_are_stratified():
    x_train, y_train, x_test, y_test = data.review_arrays()
    splits = data.review_splits()
    assert list(x_train) == list(splits["train"]["text"]) and x_test == list(splits["test"]["text"])
    assert x_train.dtype == object and y_train.dtype.kind == "i"
    xs, ys, xt, yt = data.review_arrays(train_size=200, test_size=50, seed=1)
    assert len(xs) == 200 and len(xt) == 50 and set(xs) <= set(x_train) and set(xt) <= set(x_test)
    assert abs(ys.mean() - y_train.mean()) < 0.02  # class shares kept
    assert list(data.review_arrays(train_size=200, seed=1)[0]) == list(xs)  # seeded
