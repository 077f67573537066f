"""Lab 09's evaluation: intervals, calibration, temperature, slices, the stored results and the card."""
import json

import numpy as np
import pytest
from sklearn.metrics import f1_score

from labkit.core import metrics, results
from labkit.course import report
from labkit.labs import evaluate as E


def overconfident(n=4000, seed=0, t=2.0):
    """Logits whose labels are drawn from softmax(logits / t): calibrated at temperature t."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 3, (n, 2))
    p = metrics.softmax(z, t)
    y = (rng.random(n) < p[:, 1]).astype(int)
    return z, y


def test_ece_by_its_definition():
    assert metrics.ece(np.array([[0.1, 0.9]] * 10), np.array([1] * 7 + [0] * 3)) == pytest.approx(0.2)
    assert metrics.ece(np.array([[0.2, 0.8]] * 5), np.array([1, 1, 1, 1, 0])) == pytest.approx(0.0)
    # two bins: 0.95 confident, 2 of 4 right (gap .45); 0.6 confident, 3 of 4 right (gap .15)
    probs = np.array([[0.05, 0.95]] * 4 + [[0.6, 0.4]] * 4)
    labels = np.array([1, 1, 0, 0, 0, 0, 0, 1])
    assert metrics.ece(probs, labels) == pytest.approx(0.5 * 0.45 + 0.5 * 0.15)
    r = metrics.reliability(probs, labels)
    assert r["n"].sum() == 8 and r["n"][14] == 4 and r["n"][8] == 4


def test_temperature_recovers_the_true_one_and_never_changes_a_prediction():
    z, y = overconfident(t=2.0)
    t = E.fit_temperature(z, y)
    assert 1.8 < t < 2.2
    assert metrics.nll(z, y, t) < metrics.nll(z, y)
    zt, yt = overconfident(seed=1, t=2.0)
    out = E.final("m", zt, yt, z, y)
    assert out["accuracy_after"] == out["accuracy"]
    for temperature in (0.1, t, 10.0):  # dividing by T > 0 keeps each row's order: the same predictions
        assert (metrics.softmax(zt, temperature).argmax(-1) == zt.argmax(-1)).all()
    assert out["ece_after"] < 0.5 * out["ece_before"] and out["nll_after"] < out["nll_before"]
    assert sum(map(sum, out["confusion"])) == len(yt)


def test_bootstrap_interval_and_macro_f1():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 2000)
    pred = np.where(rng.random(2000) < 0.7, y, rng.integers(0, 3, 2000))
    b = metrics.bootstrap(y, pred, classes=3, resamples=500)
    assert b["ci"][0] < b["accuracy"] < b["ci"][1] and b["ci"][1] - b["ci"][0] < 0.06
    assert b["macro_f1"] == pytest.approx(f1_score(y, pred, average="macro"))
    small = metrics.bootstrap(y[:100], pred[:100], classes=3, resamples=500)
    assert small["ci"][1] - small["ci"][0] > b["ci"][1] - b["ci"][0]  # fewer reviews, wider
    with pytest.raises(ValueError, match="equally long"):
        metrics.bootstrap(y, pred[:-1])


def test_bad_logits_and_labels_are_refused_with_the_argument_named():
    with pytest.raises(ValueError, match="2-D"):
        metrics.nll(np.zeros(3), np.zeros(3, int))
    with pytest.raises(ValueError, match="one label per row"):
        metrics.nll(np.zeros((3, 2)), np.zeros(2, int))
    with pytest.raises(ValueError, match=r"labels\[1\] = 2 is outside 0\.\.1"):
        metrics.ece(np.full((2, 2), 0.5), np.array([0, 2]))
    with pytest.raises(ValueError, match="no reviews"):
        E.fit_temperature(np.zeros((0, 2)), np.zeros(0, int))


def test_slices_flag_only_gaps_beyond_noise():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    groups = {"as good": (y, np.where(rng.random(400) < 0.8, y, 1 - y)),
              "much worse": (y, np.where(rng.random(400) < 0.5, y, 1 - y))}
    table = E.slice_table(0.8, groups)
    assert not table["as good"]["flagged"] and table["much worse"]["flagged"]
    assert table["much worse"]["gap"] < -0.2
    with pytest.raises(ValueError, match="empty"):
        E.slice_table(0.8, {"none": (y[:0], y[:0])})
    one, eight = E.slice_table(0.8, dict(list(groups.items())[:1])), E.slice_table(0.8, {**groups, **{
        f"copy {i}": groups["as good"] for i in range(6)}})  # 8 slices: each interval widened (Bonferroni)
    width = lambda t: t["as good"]["ci"][1] - t["as good"]["ci"][0]  # noqa: E731
    assert width(eight) > width(one) * 1.2 and eight["as good"]["accuracy"] == one["as good"]["accuracy"]
    masks = E.slice_masks(["not good at all", "good but long " * 10, "fine"])
    assert masks["negation"].tolist() == [True, False, False]
    assert masks["contrast"].tolist() == [False, True, False]
    assert masks["short (< 10 words)"].tolist() == [True, False, True]
    assert masks["long (> 25 words)"].tolist() == [False, True, False]


def test_paired_difference_resamples_reviews_with_both_predictions():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 600)
    clean = np.where(rng.random(600) < 0.8, y, 1 - y)
    typo = np.where(rng.random(600) < 0.15, 1 - clean, clean)  # typos flip 15% of the predictions
    d = metrics.paired_difference(y, clean, typo, seed=0)
    assert d["difference"] == pytest.approx((clean == y).mean() - (typo == y).mean())
    assert d["ci"][0] < d["difference"] < d["ci"][1] and d["ci"][0] > 0 and d["n"] == 600
    same = metrics.paired_difference(y, clean, clean)
    assert same["difference"] == 0 and same["ci"] == [0, 0]  # paired: no noise where nothing changed
    unpaired = [metrics.bootstrap(y, p, seed=0)["ci"] for p in (clean, typo)]  # two separate intervals overlap more
    assert d["ci"][1] - d["ci"][0] < (unpaired[0][1] - unpaired[0][0]) + (unpaired[1][1] - unpaired[1][0])
    with pytest.raises(ValueError, match="equally long"):
        metrics.paired_difference(y, clean, typo[:5])


def test_typos_keep_the_words_and_their_ends():
    texts = ["A wonderful, moving performance by everyone involved."] * 3
    out = E.with_typos(texts, share=1.0, seed=0)
    assert out == E.with_typos(texts, share=1.0, seed=0) and out[0] != texts[0]
    for before, after in zip(texts[0].split(), out[0].split()):
        assert after[0] == before[0] and after[-1] == before[-1]
    assert E.with_typos(texts, share=0.0) == texts


def test_lab_results_come_from_the_cache_else_the_reference(tmp_cache, monkeypatch):
    monkeypatch.setenv("LABKIT_SCALE", "smoke")
    res, source = E.lab_results("05_distillation")
    assert "reference" in source and res  # nothing ran here: the committed smoke run
    monkeypatch.setenv("LABKIT_LAB", "05_distillation")
    monkeypatch.delenv("LABKIT_RESULTS", raising=False)
    monkeypatch.setattr(results, "_RESULTS", {})
    report.record("students", {"x": 1})
    res, source = E.lab_results("05_distillation")
    assert res == {"students": {"x": 1}} and "this machine" in source
    assert json.loads((tmp_cache / "results" / "smoke" / "05_distillation.json").read_text()) == res
    assert E.lab_results("99_nothing")[0] == {}


def test_model_card_has_every_section_and_the_recorded_numbers():
    z, y = overconfident()
    ev = E.final("MiniLM", z[:2000], y[:2000], z[2000:], y[2000:])
    ev = {"chosen": ev, "student": ev}
    slices = E.slice_table(ev["chosen"]["accuracy"], {"negation": (y[:300], z[:300].argmax(-1))})
    details = {"name": "test model", "architecture": "BertModel", "parameters": 22.6e6, "disk_mb": 90.3,
               "trained_on": "the training split", "candidates": ["a", "b"], "version": "0.1.0"}
    mia = {"non-private": {"auc": 0.7313, "tpr_at_1pct_fpr": 0.046, "test_accuracy": 0.7, "seeds": 5,
                           "source": "study"}}
    for labs in ({}, {"07_federated": ({"membership": mia}, "this machine")}):
        card = E.model_card(ev, slices, labs, details)
        assert all(f"## {s}" in card for s in E.SECTIONS)
        c = ev["chosen"]
        for k in ("accuracy", "macro_f1", "ece_before", "ece_after", "nll_before", "nll_after", "temperature"):
            assert f"{c[k]:.3f}" in card, k
        assert f"{slices['negation']['accuracy']:.3f}" in card
    assert "AUC 0.73 and caught 4.6%" in card and "5 seeds" in card and "07_federated: this machine" in card
    variants = {k: {"accuracy": 0.8, "disk_mb": 90} for k in ("teacher fp32", "teacher int8 torch", "student fp32")}
    for pareto in (["teacher fp32", "teacher int8 torch", "student fp32"],
                   {"front": ["teacher int8 torch", "teacher fp32"]}):
        card = E.model_card(ev, slices, {"08_compression": ({"variants": variants, "pareto": pareto}, "x")}, details)
        line = next(x for x in card.splitlines() if "Compressed variants" in x)
        assert "teacher int8 torch" in line and "fp32" not in line  # an uncompressed model is no variant


def test_drift_flags_a_shift_and_not_ordinary_traffic():
    before = {"labkit_input_texts_total": 10, "labkit_input_chars_total": 1000, "labkit_input_tokens_total": 200,
              "labkit_input_unknown_tokens_total": 0, "labkit_predictions_total{label=negative}": 4,
              "labkit_predictions_total{label=positive}": 6}
    ordinary = dict(before, labkit_input_texts_total=110, labkit_input_chars_total=12000,
                    labkit_input_tokens_total=2600,
                    **{"labkit_predictions_total{label=negative}": 44, "labkit_predictions_total{label=positive}": 66})
    w = E.window(before, ordinary)
    assert w["texts"] == 100 and w["mean_chars"] == 110 and w["label_share"] == {"negative": 0.4, "positive": 0.6}
    ref = {"mean_chars": 115, "unknown_rate": 0.0, "label_share": {"negative": 0.42, "positive": 0.58}}
    assert not any(v["flagged"] for v in E.drift(w, ref).values())
    shifted = dict(w, mean_chars=400, unknown_rate=0.3, label_share={"negative": 0.05, "positive": 0.95})
    assert all(v["flagged"] for v in E.drift(shifted, ref).values())
    with pytest.raises(ValueError, match="no texts"):
        E.window(before, before)


def test_chinese_reviews_are_mostly_unknown_to_the_english_tokenizer():
    """Why lab 09's Chinese slice sits far below the overall accuracy and why drift flags fire
    on Chinese traffic, by construction: MiniLM's English WordPiece maps most of a Chinese
    review to [UNK], so the model reads almost nothing of it (was two claims in lab 09)."""
    from labkit.core import data, models, text
    tok = models.load_minilm()[0]
    zh, en = (data.review_splits(lang)["test"]["text"][:200] for lang in ("zh", "en"))
    zh_rate, en_rate = text.unk_rate(tok, zh), text.unk_rate(tok, en)
    assert zh_rate > 0.5 and en_rate < 0.01, (zh_rate, en_rate)
    ref = {"mean_chars": 100.0, "unknown_rate": en_rate, "label_share": {"negative": 0.5, "positive": 0.5}}
    assert E.drift({**ref, "unknown_rate": zh_rate}, ref)["unknown_rate"]["flagged"]
