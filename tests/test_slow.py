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
