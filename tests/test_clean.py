import numpy as np
import pytest

from labkit.core import curves, data
from labkit.core.data import DataError
from labkit.course import study
from labkit.labs import clean


def test_dedup_key_and_find_duplicates_hand_case():
    assert data.dedup_key("Great film!!") == "great film"
    assert clean.find_duplicates(["A b", "x", "a B!", "X.", "y"]) == [[0, 2], [1, 3]]
    assert clean.find_duplicates(["a", "b"]) == []


def test_find_near_duplicates_hand_case():
    texts = ["will warm your heart without making you feel guilty about it",
             "About a Boy will warm your heart without making you feel guilty about it.",
             "a dull and lifeless film", "A dull and lifeless film!"]
    pairs = clean.find_near_duplicates(texts, threshold=0.8)
    assert [(i, j) for i, j, _ in pairs] == [(0, 1)]  # (2, 3) are exact, not near, duplicates
    assert 0.8 <= pairs[0][2] < 1


def test_count_leaks():
    assert clean.count_leaks(["Great film!", "Dull."], ["great film", "new one", "DULL"]) == 2
    assert clean.count_leaks([], ["a"]) == 0


def test_find_contradictions():
    out = clean.find_contradictions(["good", "Good!", "bad", "bad"], [1, 0, 0, 0])
    assert out == {"good": [0, 1]}


@pytest.mark.parametrize("text,kind", [
    ("mail me: anna.k@mail.co.uk now", "EMAIL"), ("see https://www.filmfan.com/post/12.", "URL"),
    ("at www.cinema42.net", "URL"), ("call (415) 555-0132 today", "PHONE"),
    ("ring +44 20 7946 0958", "PHONE"), ("or 415.555.0132", "PHONE"),
    ("ssn 123-45-6789", "ID"), ("card 4111 1111 1111 1111", "ID"), ("acct 1234567890", "ID")])
def test_find_pii_kinds(text, kind):
    spans = clean.find_pii(text)
    assert [k for _, _, k in spans] == [kind]
    s, e, _ = spans[0]
    assert text[s:e].strip(".") == text[s:e]


def test_find_pii_leaves_ordinary_text_alone():
    for t in ["Released in 1999, it runs 2 hours 15 minutes.", "A 10/10 film, 3.5 stars.",
              "The 1980s-set story of 2 brothers", "Rated 4 out of 5; $20 million budget"]:
        assert clean.find_pii(t) == [], t


def test_scrub_pii_counts():
    text, counts = clean.scrub_pii("Write to a@b.com or call 415-555-0132.")
    assert text == "Write to [EMAIL] or call [PHONE]." and counts == {"EMAIL": 1, "PHONE": 1}


def test_inject_pii_is_seeded_and_found():
    texts = [f"review number {i} was fine" for i in range(200)]
    a, spans = clean.inject_pii(texts, rate=0.2, seed=1)
    b, _ = clean.inject_pii(texts, rate=0.2, seed=1)
    assert a == b and len(spans) == 40
    for r, s, e, kind in spans:
        assert clean.find_pii(a[r][s:e])
    scores = clean.pii_scores(a, spans)
    assert scores["recall"] == 1.0 and scores["precision"] == 1.0


def test_injectors_reject_bad_input():
    for inject in (clean.inject_pii, clean.corrupt):
        with pytest.raises(DataError, match="between 0 and 1"):
            inject(["a b"], rate=2)
        with pytest.raises(DataError, match="must be strings"):
            inject(["a b", 3], rate=0.5)


def test_corrupt_is_undone_by_normalize():
    texts = ["It's a fine film", "Don't \"miss\" it & go", "plain words here"] * 20
    bad, rows = clean.corrupt(texts, rate=0.5, seed=0)
    assert len(rows) == 30 and all(bad[r] != texts[r] for r in rows)
    assert all(data.normalize(bad[r]) == data.normalize(texts[r]) for r in rows)


def test_inject_label_noise_flips_exactly():
    y = np.array([0, 1] * 50)
    noisy, flipped = clean.inject_label_noise(y, 0.15, seed=0)
    assert flipped.sum() == 15 and (noisy != y).sum() == 15
    assert np.array_equal(noisy[~flipped], y[~flipped])
    again, _ = clean.inject_label_noise(y, 0.15, seed=0)
    assert np.array_equal(noisy, again)
    with pytest.raises(ValueError, match=r"rate=1\.5: it must be >= 0 and <= 1"):
        clean.inject_label_noise(y, 1.5)


def test_find_label_issues_finds_planted_flips(tmp_cache):
    pos = [f"great wonderful superb film {i}" for i in range(60)]
    neg = [f"awful terrible boring film {i}" for i in range(60)]
    y = np.array([1] * 60 + [0] * 60)
    noisy = y.copy()
    noisy[[0, 1, 2, 60, 61, 62]] ^= 1
    mask, probs = clean.find_label_issues(pos + neg, noisy, folds=3)
    assert set(np.flatnonzero(mask)) == {0, 1, 2, 60, 61, 62}
    assert probs.shape == (120, 2)
    again, probs2 = clean.find_label_issues(pos + neg, noisy, folds=3)  # read back from the cache
    assert np.array_equal(again, mask) and np.array_equal(probs2, probs)
    assert len(list((tmp_cache / "runs").glob("label-issues-*"))) == 1
    with pytest.raises(ValueError, match="labels has 2 entries for 3 rows: give exactly one label per row"):
        clean.find_label_issues(["a", "b", "c"], [0, 1])


def test_config_per_scale_draws_live_seeds_the_study_never_drew():
    smoke, cpu, gpu = (clean.DataConfig.for_scale(s) for s in ("smoke", "cpu", "gpu"))
    assert smoke.n_reviews and cpu.n_reviews is None and len(cpu.noise_seeds) == 1
    drawn = study.load("lab01")["settings"]["seeds"]  # the committed study's draws: seeds 0 .. drawn - 1
    assert min(s for c in (smoke, cpu, gpu) for s in c.noise_seeds) >= drawn
    assert len(gpu.noise_seeds) == drawn  # gpu runs the study's size live


def test_label_noise_draw_scores_each_fix_against_the_flipped_labels(tmp_cache):
    train = ([f"great wonderful superb film {i}" for i in range(60)]
             + [f"awful terrible boring film {i}" for i in range(60)])
    test = ["a great superb film", "a wonderful film", "an awful boring film", "terrible film"]
    y, y_test = np.array([1] * 60 + [0] * 60), np.array([1, 1, 0, 0])
    d = clean.label_noise_draw(train, y, test, y_test, 0.1, 3, seed=1)
    noisy, flipped = clean.inject_label_noise(y, 0.1, seed=1)  # the same draw
    flagged, _ = clean.find_label_issues(train, noisy, folds=3, seed=1)
    fixes = (flagged & flipped).sum()
    assert d["flagged"] == flagged.sum() and d["CL review fixes"] == fixes > 0
    assert d["recall"] == fixes / flipped.sum() and d["precision"] == fixes / flagged.sum()
    assert 0 <= d["random review fixes"] <= d["flagged"]
    assert d["clean"] == curves.baseline_accuracy(train, y, test, y_test)
    assert d["review flagged"] == curves.baseline_accuracy(train, np.where(flagged, y, noisy), test, y_test)
    assert d["drop flagged"] == curves.baseline_accuracy(np.array(train)[~flagged], noisy[~flagged], test, y_test)
    assert d == clean.label_noise_draw(train, list(y), test, y_test, 0.1, 3, seed=1)  # read back, same values


def test_pii_scores_per_kind_and_misses():
    texts = ["mail a@b.com or call 415-555-0132", "my name is Ann Lee", "rated 8/10"]
    planted = [(0, 5, 12, "EMAIL"), (0, 21, 33, "PHONE"), (1, 11, 18, "NAME")]
    out = clean.pii_scores(texts, planted)
    assert out["recall"] == pytest.approx(2 / 3) and out["precision"] == 1.0
    assert out["by_kind"]["NAME"] == {"planted": 1, "recall": 0.0, "found": 0, "precision": None}
    assert out["by_kind"]["EMAIL"]["recall"] == 1.0
    assert out["missed"] == [(1, "Ann Lee", "NAME")] and out["false_alarms"] == []


def test_challenge_sets_are_independent_and_well_formed():
    texts, planted = clean.challenge("pii")
    kinds = {k for *_, k in planted}
    assert {"EMAIL", "PHONE", "URL", "ID", "NAME", "ADDRESS"} <= kinds
    assert len({r for r, *_ in planted}) < len(texts)  # ordinary texts with numbers too
    for r, s, e, k in planted:
        assert 0 <= s < e <= len(texts[r])
    rows = clean.challenge("corruption")
    assert len({r["kind"] for r in rows}) >= 8 and all(r["clean"] != r["corrupted"] for r in rows)
    with pytest.raises(ValueError, match="unknown challenge set"):
        clean.challenge("mojibake")
