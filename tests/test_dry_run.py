"""The `gpu` dry run's switches (issue 32), fast: what `labkit run --scale gpu --dry-run` turns on
and where it keeps its runs. The dry run itself, every notebook, is `tests/test_slow.py::test_gpu_dry_run`."""
import json

import numpy as np
import pytest
import torch

from labkit.core import claims, data, env, train
from labkit.course import report
from labkit.labs import clean


@pytest.fixture
def dry(tmp_path, monkeypatch):
    """A dry run's environment, as the runner sets it: gpu, LABKIT_DRY_RUN=1, <cache>/dry-run."""
    folder = tmp_path / "dry-run"
    folder.mkdir()
    (folder / env.DRY_MARKER).write_text("")
    monkeypatch.setenv("LABKIT_SCALE", "gpu")
    monkeypatch.setenv("LABKIT_DRY_RUN", "1")
    monkeypatch.setenv("LABKIT_CACHE", str(folder))
    return folder


def test_a_dry_run_needs_gpu_and_a_cache_of_its_own(tmp_path, monkeypatch):
    monkeypatch.setenv("LABKIT_DRY_RUN", "1")
    monkeypatch.setenv("LABKIT_SCALE", "cpu")
    with pytest.raises(env.ScaleError, match="set LABKIT_SCALE=gpu too"):
        env.dry_run()
    monkeypatch.setenv("LABKIT_SCALE", "gpu")
    monkeypatch.setenv("LABKIT_CACHE", str(tmp_path / "cache"))  # a real cache: dry runs would stand in for real ones
    with pytest.raises(env.ScaleError, match="cache of their own.*--dry-run"):
        env.dry_run()
    (tmp_path / "dry-run").mkdir()  # named like one, but not made by the runner (no marker)
    monkeypatch.setenv("LABKIT_CACHE", str(tmp_path / "dry-run"))
    with pytest.raises(env.ScaleError, match="cache of their own"):
        env.dry_run()
    monkeypatch.delenv("LABKIT_DRY_RUN")
    assert env.dry_run() is False


def test_training_stops_after_the_dry_steps_and_says_so_to_the_accountant(dry):
    model = torch.nn.Linear(3, 2)
    batches = [{"features": torch.zeros(4, 3), "labels": torch.tensor([0, 1, 0, 1])}] * 5

    def loss_fn(m, batch):
        return torch.nn.functional.cross_entropy(m(batch["features"]), batch["labels"])
    hist = train.train(model, batches, train.adamw(model, 1e-2), loss_fn=loss_fn, steps=100, progress=False)
    assert len(hist.step) == env.DRY_RUN["steps"] == train.steps_taken(100) and train.steps_taken(3) == 3


def test_claims_are_recorded_dry_never_asserted(dry, monkeypatch, tmp_path):
    from labkit.core import results
    monkeypatch.setattr(results, "_RESULTS", {})  # this test's records only
    monkeypatch.setenv("LABKIT_RESULTS", str(tmp_path / "results.json"))
    cid = next(c for c, e in claims.registry().items()
               if e["kind"] == "claim" and e["where"] == "run" and "gpu" in e["scales"] and not e.get("gate")
               and "{" not in c)
    e = claims.entry(cid)
    failing = e["bound"] - 1 if e["op"] in (">", ">=") else e["bound"] + 1
    claims.claim(cid, failing)  # would raise ClaimFailed in a real gpu run
    row = claims.results()["claims"][cid]
    assert row["status"] == "dry run: not asserted" and row["holds"] is False


def test_the_configs_take_gpu_arms_and_the_dry_sizes(dry):
    gpu = clean.DataConfig.for_scale("gpu")
    assert gpu.noise_seeds == tuple(range(10, 20)) and gpu.n_reviews == clean.DataConfig.DRY_RUN["n_reviews"]
    assert clean.DataConfig.for_scale("cpu").n_reviews is None  # other scales: as they are


def test_without_the_switch_gpu_is_gpu(monkeypatch):
    monkeypatch.delenv("LABKIT_DRY_RUN", raising=False)
    assert clean.DataConfig.for_scale("gpu").n_reviews is None and train.steps_taken(6000) == 6000


def test_the_review_splits_are_cut_stratified(dry, monkeypatch):
    from labkit.core import cache
    monkeypatch.delenv("LABKIT_CACHE")
    monkeypatch.delenv("LABKIT_DRY_RUN")
    fetched = cache.cache_dir() / "data"  # the user's cache, linked into the dry one as the runner does
    if not (fetched / "reviews-en").exists():
        pytest.skip("reviews not fetched (labkit fetch)")
    (dry / "data").symlink_to(fetched, target_is_directory=True)
    monkeypatch.setenv("LABKIT_CACHE", str(dry))
    monkeypatch.setenv("LABKIT_DRY_RUN", "1")
    data.review_splits.cache_clear()  # made once per process: this one is a dry run's
    try:
        splits = data.review_splits()
        monkeypatch.delenv("LABKIT_DRY_RUN")
        data.review_splits.cache_clear()
        whole = data.review_splits()
    finally:
        data.review_splits.cache_clear()
    assert {k: v.num_rows for k, v in splits.items()} == {k: env.DRY_RUN[k] for k in ("train", "validation", "test")}
    assert set(splits["test"]["text"]) <= set(whole["test"]["text"])  # rows of the course's own splits
    for k in ("train", "test"):  # stratified: the class shares kept
        assert abs(np.mean(splits[k]["label"]) - np.mean(whole[k]["label"])) < 0.01
    assert not set(splits["train"]["text"]) & set(splits["test"]["text"])  # still the course's split, cut


def test_the_runner_makes_a_fresh_dry_cache_that_reads_the_fetched_data(tmp_path, monkeypatch):
    cache_root = tmp_path / "cache"
    (cache_root / "data" / "reviews-en").mkdir(parents=True)
    (cache_root / "data" / "reviews-en" / "reviews.csv.bz2").write_bytes(b"fetched")
    (cache_root / "archives").mkdir()
    (cache_root / "dry-run" / "runs" / "old").mkdir(parents=True)
    monkeypatch.setenv("LABKIT_CACHE", str(cache_root))
    dry = report.dry_cache()
    assert dry == cache_root / "dry-run" and (dry / "data").resolve() == (cache_root / "data").resolve()
    assert (dry / "archives").is_symlink() and (dry / env.DRY_MARKER).is_file()
    assert not (dry / "runs").exists()  # nothing from an earlier dry run: every path runs again
    (dry / "runs").mkdir()
    report.dry_cache()  # the next dry run deletes the last one's folder and its links, never the data behind them
    assert (cache_root / "data" / "reviews-en" / "reviews.csv.bz2").read_bytes() == b"fetched"
    monkeypatch.setenv("LABKIT_CACHE", str(dry))
    with pytest.raises(ValueError, match="a dry run's own cache"):
        report.dry_cache()
    monkeypatch.setenv("LABKIT_CACHE", str(tmp_path / "empty"))
    with pytest.raises(FileNotFoundError, match="labkit fetch"):
        report.dry_cache()
    with pytest.raises(ValueError, match="gpu configuration"):
        report.run([], "cpu", tmp_path / "out", dry_run=True)


def test_a_dry_report_is_never_taken_for_a_measurement(tmp_path):
    row = {"notebook": "00_start_here.ipynb", "status": "passed", "failed": None, "results": {"x": 1}}
    rep = {"meta": {"scale": "gpu", "dry_run": dict(env.DRY_RUN)}, "notebooks": [row]}
    assert any("a dry run" in p for p in report.check(rep))
    assert not any("a dry run" in p for p in report.check(rep, dry_run=True))
    new, ref = tmp_path / "new.json", tmp_path / "ref.json"
    new.write_text(json.dumps(rep))
    ref.write_text(json.dumps({**rep, "meta": {"scale": "gpu"}}))
    with pytest.raises(ValueError, match="is a dry run"):
        report.merge(ref, new)


def test_the_command_refuses_a_dry_run_at_another_scale(capsys):
    from labkit.course import cli
    assert cli.main(["run", "--dry-run", "--scale", "cpu"]) == 2
    assert "it runs the gpu configuration (add --scale gpu), not cpu" in capsys.readouterr().err
