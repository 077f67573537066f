"""Slow checks: the labs at `cpu` scale, with their real-result bands. Minutes, not seconds:
run them with `pytest -m slow` (CI runs the fast suite and every notebook at `smoke`)."""
import json
from pathlib import Path

import pytest

from labkit import cli

NOTEBOOKS = Path(__file__).parents[1] / "notebooks"


@pytest.mark.slow
def test_labs_00_01_at_cpu_scale(tmp_path):
    rows = cli.run([NOTEBOOKS / "00_start_here.ipynb", NOTEBOOKS / "01_data.ipynb"], "cpu",
                   tmp_path)
    assert [r["status"] for r in rows] == ["passed", "passed"], rows
    r = rows[1]["results"]
    assert r["pii_recall"] >= 0.95 and r["pii_precision"] >= 0.9
    assert r["label_noise_precision"] >= 0.5 and r["label_noise_recall"] >= 0.5
    assert r["label_noise_review_flagged"] > r["label_noise_noisy"]
    for row in rows:  # the budgets the README promises
        assert row["wall_s"] < 300 and row["peak_mb"] < 1500, row
    print(json.dumps(rows, indent=1))


@pytest.mark.slow
def test_lab_02_at_cpu_scale(tmp_path):
    (row,) = cli.run([NOTEBOOKS / "02_pretraining.ipynb"], "cpu", tmp_path)
    assert row["status"] == "passed", row
    assert row["results"]["mlm_heldout_fall"] >= 0.30
    assert row["wall_s"] < 300 and row["peak_mb"] < 1500, row


@pytest.mark.slow
def test_lab_03_at_cpu_scale(tmp_path):
    (row,) = cli.run([NOTEBOOKS / "03_fine_tuning.ipynb"], "cpu", tmp_path)
    assert row["status"] == "passed", row
    curves = row["results"]["learning_curves"]
    tfidf, minilm = curves["TF-IDF + LR"], curves["MiniLM fine-tuned"]
    assert minilm["2000"] >= max(tfidf.values())           # 2,000 labels vs all of them
    assert minilm["500"] >= curves["small BERT, scratch"]["500"] + 0.07
    assert minilm["500"] >= tfidf["500"] + 0.04
    assert row["wall_s"] < 600 and row["peak_mb"] < 1500, row


@pytest.mark.slow
def test_lab_04_at_cpu_scale(tmp_path):
    (row,) = cli.run([NOTEBOOKS / "04_augmentation.ipynb"], "cpu", tmp_path)
    assert row["status"] == "passed", row
    r = row["results"]
    assert r["negations_kept"]["guard on"] >= 0.99 > r["negations_kept"]["guard off"]
    for name, gains in r["augmentation_gain"].items():  # {labels: [mean gain, spread]}
        assert set(gains) >= {"100", "500", "2000"}, name
        assert all(abs(mean) < 0.05 and spread >= 0 for mean, spread in gains.values()), name
    assert row["wall_s"] < 300 and row["peak_mb"] < 1500, row


@pytest.mark.slow
def test_lab_05_at_cpu_scale(tmp_path):
    (row,) = cli.run([NOTEBOOKS / "05_distillation.ipynb"], "cpu", tmp_path)
    assert row["status"] == "passed", row
    s = row["results"]["students"]  # "kind @ labels": [mean, spread]
    assert s["distilled @ 2000"][0] > s["hard labels @ 2000"][0]
    assert s["distilled @ 9564"][0] > s["hard labels @ 9564"][0]
    assert s["distilled + unlabelled @ 2000"][0] > s["distilled @ 2000"][0]
    teacher, student = row["results"]["side_by_side"].values()
    assert student["accuracy"] >= 0.9 * teacher["accuracy"]
    assert student["parameters"] * 5 <= teacher["parameters"]
    assert student["per_second"] >= 5 * teacher["per_second"]
    # 15 student runs of 300 steps are ~5 min of compute here: 6.2 min measured (issue 4's
    # 5-minute target is missed; see README), plus ~1.5 min for a cold teacher-logit cache
    assert row["wall_s"] < 540 and row["peak_mb"] < 1500, row
