"""The reference studies run end to end at smoke size, and the committed ones are complete.

The studies that train transformers (lab02, lab02-seeds, lab03, lab03-curves, lab04, lab05,
lab06, lab07, lab08: tens of seconds to minutes each at smoke, most of the test command's time
when they were in it) are marked slow: run them with `pytest -m slow tests/test_study.py` before
re-running a study (docs/contributing.md). CI runs lab01's (TF-IDF, seconds), which exercises the
same machinery (`study.run`, its claims and provenance), and checks every committed study's claims."""
import json

import numpy as np
import pytest

from labkit.core import cache, classifier, data, kd
from labkit.course import experiments, study
from labkit.labs import finetune, pretrain


@pytest.fixture(scope="module", autouse=True)
def own_cache(tmp_path_factory):
    """A cache of this module's own, reading the fetched data from the user's (linked): the
    studies train and save what the labs do (lab 02's models, lab 03's MiniLM), and the notebooks
    run beside these tests on the other worker (labkit.course.suite) writing the same entries."""
    mine, user = tmp_path_factory.mktemp("study-cache"), cache.cache_dir()
    for sub in ("data", "archives"):
        if (user / sub).is_dir():
            (mine / sub).symlink_to(user / sub, target_is_directory=True)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LABKIT_CACHE", str(mine))
        yield mine


def test_committed_studies_have_provenance_and_what_the_labs_read():
    for name in ("lab04", "lab05"):
        ref = study.load(name)
        p = ref["provenance"]
        assert p["command"].endswith(f"labkit study {name}") and p["labkit_commit"] and p["date"], name
        assert p["cpu"] and p["matmul_gflops"] > 0 and ref["settings"]["seeds"] >= 3, name
    lab01 = study.load("lab01")  # what lab 01 reads: 10 noise draws, every fix scored on each
    assert lab01["settings"]["scale"] == "cpu" and lab01["settings"]["seeds"] >= 10 and lab01["settings"]["embeddings"]
    assert all(len(v) == lab01["settings"]["seeds"] for v in lab01["results"]["draws"].values())
    curves03 = study.load("lab03-curves")  # what lab 03 draws its curves' bands from
    assert curves03["settings"]["scale"] == "cpu" and curves03["settings"]["seeds"] >= 5
    assert min(curves03["settings"]["live_seeds"]) >= curves03["settings"]["seeds"]
    assert all(len(a) == curves03["settings"]["seeds"] for n, c in curves03["results"].items() if "small BERT" in n
               for a in c.values())
    seeds02 = study.load("lab02-seeds")  # lab 02's recipe on seeds the lab never runs
    assert (seeds02["settings"]["scale"] == "cpu"
            and seeds02["settings"]["live_seed"] not in seeds02["settings"]["study_seeds"])
    assert len(seeds02["settings"]["study_seeds"]) >= 5 and all(len(v) == len(seeds02["settings"]["study_seeds"])
                                                               for v in seeds02["results"].values())
    lab02 = study.load("lab02")
    assert lab02["provenance"]["command"].endswith("labkit study lab02") and lab02["settings"]["scale"] == "cpu"
    assert lab02["settings"]["seeds"] >= 5 and len(lab02["results"]["points"]) >= 5
    assert lab02["settings"]["points"][-1] >= 10 * lab02["settings"]["points"][0]  # a curve, not a point
    assert all(len(a) == lab02["settings"]["seeds"] for p in lab02["results"]["points"]
               for c in (p["probe"], p["finetuned"]) for a in c.values())
    lab04 = study.load("lab04")["results"]
    assert set(lab04) == {"TF-IDF + LR", "TF-IDF + LR, guard off", "small BERT"}
    assert all(len(a) == study.load("lab04")["settings"]["seeds"] for arms in lab04.values()
               for c in arms.values() for a in c.values())
    lab05 = study.load("lab05")["results"]
    assert set(lab05["chosen"]) == {"steps", "temperature", "alpha"}
    assert study.load("lab05")["settings"]["student_seeds"] == list(range(1, 11))  # 10 seeds, never the lab's 0
    assert all(len(a) == 10 for a in lab05["students"].values())
    assert study.load("lab05")["settings"]["split"] == "validation"
    lab06 = study.load("lab06")
    assert lab06["provenance"]["command"].endswith("labkit study lab06") and lab06["settings"]["seeds"] >= 5
    assert lab06["settings"]["choice_split"] == "validation" and lab06["settings"]["scale"] == "cpu"
    arms = {"none", "FGM", "PGD", "adversarial augmentation", "A2T"}
    assert set(lab06["results"]["chosen"]) == set(lab06["results"]["test"]) == arms
    assert all(len(v[k]) == lab06["settings"]["grid_seeds"] for options in lab06["results"]["grid"].values()
               for v in options.values() for k in ("clean", "success", "under_attack"))
    assert all(len(v[k]) == lab06["settings"]["seeds"] for v in lab06["results"]["test"].values()
               for k in ("clean", "success", "under_attack"))
    lab07 = study.load("lab07")  # what lab 07 reads, over at least 5 seeds, every choice on validation
    assert lab07["settings"]["seeds"] >= 5 and lab07["settings"]["choice_split"] == "validation"
    assert lab07["settings"]["scale"] == "cpu"
    assert ({"non-private", "1"} <= set(lab07["results"]["MiniLM"])
            and set(lab07["results"]["small BERT"]) >= {"non-private", "1"})
    assert all(len(r["test"]) == lab07["settings"]["seeds"] and "lr" in r["chosen"]
               for r in lab07["results"]["MiniLM"].values())
    assert all(len(r[k]) == lab07["settings"]["seeds"] for r in lab07["results"]["membership"].values()
               for k in ("auc", "tpr_at_1pct_fpr", "test_accuracy"))
    lab08 = study.load("lab08")
    assert lab08["settings"]["seeds"] >= 5 and lab08["settings"]["split"] == "validation"
    assert (lab08["settings"]["long_steps"] > lab08["settings"]["steps"]
            and "test_accuracy" in lab08["results"]["teacher"])
    assert list(lab08["results"]["recovery"]) == [str(lab08["settings"]["steps"]), str(lab08["settings"]["long_steps"])]
    assert all(len(r["accuracy"]) == lab08["settings"]["seeds"] for r in lab08["results"]["grid"].values())


def test_lab01_study_at_smoke(tmp_path, monkeypatch):
    monkeypatch.setenv("LABKIT_SCALE", "smoke")
    out = json.loads(study.run("lab01", seeds=2, out=tmp_path).read_text())
    draws = out["results"]["draws"]
    assert out["settings"]["seeds"] == 2 and not out["settings"]["embeddings"]  # smoke: TF-IDF only
    assert set(draws) >= {"precision", "recall", "clean", "noisy", "review flagged", "review random"}
    assert all(len(v) == 2 for v in draws.values()) and draws["noisy"][0] != draws["noisy"][1]  # two draws
    assert set(out["claims"]) == {"01.review_flagged_beats_random_every_draw"}


@pytest.mark.slow
def test_lab02_seeds_study_at_smoke_draws_seeds_after_the_labs(tmp_path, monkeypatch):
    monkeypatch.setenv("LABKIT_SCALE", "smoke")
    out = json.loads(study.run("lab02-seeds", seeds=2, out=tmp_path).read_text())
    res = out["results"]
    assert out["settings"]["study_seeds"] == [1, 2] and out["settings"]["live_seed"] == 0  # never the lab's seed
    assert all(len(v) == 2 for v in res.values()) and res["heldout_first"][0] != res["heldout_first"][1]
    assert all(a < b for a, b in zip(res["heldout_last"], res["heldout_first"]))  # even 40 steps lower the loss
    assert set(out["claims"]) == set(study.claims.study_claims("lab02-seeds")) == {
        "02.pretraining_fall_every_seed", "02.adapted_beats_head_alone_every_seed"}


@pytest.mark.slow
def test_lab03_curves_study_at_smoke_pairs_every_model_on_the_same_samples(tmp_path, monkeypatch):
    monkeypatch.setenv("LABKIT_SCALE", "smoke")
    out = json.loads(study.run("lab03-curves", seeds=2, out=tmp_path).read_text())
    res, ft = out["results"], finetune.FinetuneConfig.for_scale("smoke")
    assert set(res) == {"TF-IDF + LR", "MiniLM frozen + LR", "small BERT, scratch", "small BERT, lab-02 pretrained"}
    assert list(res["small BERT, scratch"]) == [str(n) for n in ft.small_budgets]
    assert all(len(a) == 2 for c in res.values() for a in c.values())
    assert min(out["settings"]["live_seeds"]) >= 2  # the lab's live seeds are ones the study never drew
    assert set(out["claims"]) == set(study.claims.study_claims("lab03-curves")) >= {
        "03.lab02_pretraining_never_pays", "03.lab02_pretraining_hurts_high.500"}
    assert out["claims"]["03.lab02_pretraining_hurts_high.500"]["value"] is None  # smoke has no 500-label budget


@pytest.mark.slow
def test_lab04_study_at_smoke(tmp_path, monkeypatch):
    monkeypatch.setenv("LABKIT_SCALE", "smoke")
    out = json.loads(study.run("lab04", seeds=2, out=tmp_path).read_text())
    assert out["settings"]["scale"] == "smoke" and out["provenance"]["seconds"] >= 0
    small = out["results"]["small BERT"]
    assert set(small["plain"]) == set(small["augmented"]) and all(len(a) == 2 for a in small["plain"].values())
    iv = study.intervals({arm: {int(n): a for n, a in c.items()} for arm, c in small.items()}, comparisons=2)
    assert all(iv[n]["n"] == 2 for n in iv)


def save_smoke_teacher():
    """Lab 03's smoke MiniLM, made the way lab 03 makes it (a cached run)."""
    cfg = finetune.FinetuneConfig.for_scale()
    x_train, y_train, x_test, y_test = data.review_arrays(cfg.train_size, cfg.test_size, cfg.seed)
    n = cfg.minilm_budgets[-1]  # the teacher lab 03 saves at smoke, made the same way
    rows = data.sample_per_class(y_train, n, 0)
    run = finetune.minilm_run(x_train[rows], y_train[rows], 0, cfg)
    classifier.save_classifier(run.model, run.tokenizer, classifier.best_dir("minilm"),
                               {"labels": n, "sample_seed": 0, "scale": "smoke",
                                "test_accuracy": run.accuracy(x_test, y_test, cfg.max_len)},
                               max_len=cfg.max_len, onnx=False)


@pytest.mark.slow
def test_lab05_study_at_smoke(tmp_path, monkeypatch):
    monkeypatch.setenv("LABKIT_SCALE", "smoke")
    save_smoke_teacher()
    out = json.loads(study.run("lab05", seeds=2, out=tmp_path).read_text())
    chosen, res = out["results"]["chosen"], out["results"]
    assert chosen["steps"] in (10, 15) and chosen["temperature"] in (1.0, 2.0) and chosen["alpha"] == 0.5
    best = np.mean(res["steps"]["distilled"][str(chosen["steps"])])
    assert best == max(np.mean(a) for a in res["steps"]["distilled"].values())  # chosen on validation
    # the lab's comparison on seeds 1..2 (seed 0 is the lab's own), every student, on test
    assert out["settings"]["student_seeds"] == [1, 2] and out["settings"]["students_split"] == "test"
    assert set(res["students"]) == {f"{k} @ {b}" for k in kd.KINDS for b in ("teacher's labels", "all labels")
                                    } - {"distilled + unlabelled @ all labels"}
    assert all(len(a) == 2 and all(0 <= x <= 1 for x in a) for a in res["students"].values())
    assert set(out["claims"]) == {"05.distilled_minus_hard_labels_interval_low.teacher_labels",
                                  "05.distilled_minus_hard_labels_interval_low.all_labels",
                                  "05.distilled_unlabelled_minus_distilled_interval_low.teacher_labels"}
    with pytest.raises(KeyError, match="unknown study"):
        study.run("lab99")


@pytest.mark.slow
def test_lab06_study_at_smoke(tmp_path, monkeypatch):
    monkeypatch.setenv("LABKIT_SCALE", "smoke")
    save_smoke_teacher()
    out = json.loads(study.run("lab06", seeds=2, out=tmp_path).read_text())
    grid, chosen, test = out["results"]["grid"], out["results"]["chosen"], out["results"]["test"]
    assert set(grid) == set(chosen) == set(test) == {"none", "FGM", "PGD", "adversarial augmentation", "A2T"}
    assert out["settings"]["choice_split"] == "validation"
    for name, options in grid.items():
        for v in options.values():
            assert len(v["clean"]) == len(v["success"]) == len(v["under_attack"]) == out["settings"]["grid_seeds"]
            assert all(0 <= x <= 1 for x in v["clean"] + v["success"] + v["under_attack"])
    floor = np.mean(grid["none"]["-"]["clean"]) - 0.015
    assert all(len(grid[name]) == 2 for name in ("FGM", "PGD", "A2T"))  # a real choice at smoke too
    for name, setting in chosen.items():  # the rule: most accurate under attack among the accurate enough,
        ok = [v for v in grid[name].values() if np.mean(v["clean"]) >= floor]  # else the most accurate
        pick = (max(ok, key=lambda v: np.mean(v["under_attack"])) if ok
                else max(grid[name].values(), key=lambda v: np.mean(v["clean"])))
        assert pick["setting"] == setting, (name, setting)
    for name, row in test.items():  # the chosen, scored on test over every seed
        assert row["setting"] == chosen[name] and len(row["clean"]) == len(row["made"]) == 2
        assert 0 <= row["polarity_flips"][0] <= row["polarity_flips"][1]
    assert set(out["claims"]) == set(study.claims.study_claims("lab06"))
    assert all(r["status"].startswith("not asserted") for r in out["claims"].values())  # cpu and gpu only


@pytest.mark.slow
def test_lab02_study_at_smoke(tmp_path, monkeypatch):
    monkeypatch.setenv("LABKIT_SCALE", "smoke")
    out = json.loads(study.run("lab02", seeds=2, out=tmp_path).read_text())
    res, settings = out["results"], out["settings"]
    assert settings["points"] == list(experiments.CURVE_POINTS["smoke"]) and settings["heldout_mask_prob"] == 0.15
    points = res["points"]
    assert [p["step"] for p in points] == settings["points"]
    for key in ("tokens", "cpu_seconds", "examples"):  # cumulative: grows with every checkpoint
        assert all(a[key] < b[key] for a, b in zip(points, points[1:])), key
    assert res["loss_steps"][-1] == settings["points"][-1] and len(res["heldout_loss"]) == len(res["loss_steps"])
    for p in points:
        assert p["heldout_loss"] == res["heldout_loss"][res["loss_steps"].index(p["step"])]
        assert set(p["finetuned"]) == set(res["scratch"]) == {str(n) for n in settings["finetune_budgets"]}
        assert set(p["probe"]) == set(res["random_probe"]) and all(len(a) == 2 for a in p["probe"].values())


@pytest.mark.slow
def test_lab03_study_at_smoke_pairs_the_adapted_minilm_with_the_original(tmp_path, monkeypatch):
    monkeypatch.setenv("LABKIT_SCALE", "smoke")
    out = json.loads(study.run("lab03", seeds=2, out=tmp_path).read_text())
    res, settings = out["results"], out["settings"]
    assert set(res) == {"plain", "adapted", "slices"} and set(res["plain"]) == set(res["adapted"]) == {"64"}
    assert settings["budgets"] == [64] and all(len(res[arm]["64"]) == 2 for arm in ("plain", "adapted"))
    n_rare = settings["rare_slice"]["reviews"]
    assert 0 < n_rare < settings["test_size"] / 2
    for arm in ("plain", "adapted"):  # the slices' accuracies make up the whole test split's
        whole = [(n_rare * r + (settings["test_size"] - n_rare) * c) / settings["test_size"]
                 for r, c in zip(res["slices"]["rare"][arm]["64"], res["slices"]["common"][arm]["64"])]
        assert np.allclose(whole, res[arm]["64"])
    cfg = finetune.FinetuneConfig.for_scale()
    x_train, y_train, _, _ = data.review_arrays(cfg.train_size, cfg.test_size, cfg.seed)
    rows = data.sample_per_class(y_train, 64, 0)
    runs = [finetune.minilm_run(x_train[rows], y_train[rows], 0, cfg, adapted)
            for adapted in (None, pretrain.load_or_adapt)]
    assert all(r.hit for r in runs)  # the study's runs, read back
    query = [r.model.encoder.encoder.layer[0].attention.self.query.weight for r in runs]
    assert not np.allclose(query[0].detach().numpy(), query[1].detach().numpy())  # two different starts


@pytest.mark.slow
def test_lab08_study_at_smoke_chooses_on_validation_and_scores_both_recoveries_on_test(tmp_path, monkeypatch):
    monkeypatch.setenv("LABKIT_SCALE", "smoke")
    save_smoke_teacher()
    out = json.loads(study.run("lab08", seeds=2, out=tmp_path).read_text())
    res, settings = out["results"], out["settings"]
    assert settings["split"] == "validation" and settings["long_steps"] == experiments.LONG_RECOVERY * settings["steps"]
    assert all(len(r["accuracy"]) == len(r["per_second"]) == 2 for r in res["grid"].values())
    floor = res["teacher"]["accuracy"] - 0.01  # the rule: the fastest within a point on validation
    ok = [r for r in res["grid"].values() if np.mean(r["accuracy"]) >= floor]
    pick = (max(ok, key=lambda r: np.mean(r["per_second"])) if ok
            else max(res["grid"].values(), key=lambda r: np.mean(r["accuracy"])))
    assert res["chosen"] == {"heads_keep": pick["heads"], "ffn_keep": pick["ffn"]}
    assert list(res["recovery"]) == [str(settings["steps"]), str(settings["long_steps"])]
    assert all(len(r["validation"]) == len(r["test"]) == 2 for r in res["recovery"].values())
    short = out["claims"]["08.structured_points_lost_study.short"]["value"]
    short_runs = res["recovery"][str(settings["steps"])]["test"]
    assert abs(short - 100 * (res["teacher"]["test_accuracy"] - np.mean(short_runs))) < 1e-3
    assert set(out["claims"]) == set(study.claims.study_claims("lab08"))


@pytest.mark.slow
def test_lab07_study_at_smoke_tunes_every_arm_on_validation(tmp_path, monkeypatch):
    monkeypatch.setenv("LABKIT_SCALE", "smoke")
    out = json.loads(study.run("lab07", seeds=2, out=tmp_path).read_text())
    res, settings = out["results"], out["settings"]
    assert settings["choice_split"] == "validation" and settings["seeds"] == 2
    heads = res["MiniLM"]
    assert set(heads) == {"non-private", "1", "8"}  # the non-private head is tuned like the private ones
    for budget, r in heads.items():
        assert set(r["validation"]) == {str(h) for h in settings["head_lrs"]} and len(r["test"]) == 2
        means = {float(h): np.mean(v) for h, v in r["validation"].items()}
        assert means[r["chosen"]["lr"]] == max(means.values()), budget  # chosen on validation
        assert (r["epsilon"] is None) == (budget == "non-private")
    for budget, r in res["small BERT"].items():
        assert len(r["validation"]) == len(settings["bert_grid"]) and len(r["test"]) == 2
        assert 0.5 <= r["majority_share"] <= 1 and isinstance(r["trains"], bool)
    for model, r in res["membership"].items():
        assert all(len(r[k]) == 2 and all(0 <= v <= 1 for v in r[k])
                   for k in ("auc", "tpr_at_1pct_fpr", "test_accuracy"))
    assert set(res["federated"]["fedavg"]) == {"iid", "dirichlet 0.5", "dirichlet 0.1", "by movie"}
    assert set(out["claims"]) == set(study.claims.study_claims("lab07"))
    tpr1 = np.mean(res["membership"]["1"]["tpr_at_1pct_fpr"])
    assert abs(out["claims"]["07.dp_mia_tpr_within_bound"]["value"] - tpr1 / (np.e * 0.01 + 1e-5)) < 1e-3
