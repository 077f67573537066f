"""Tools: the experiments behind the reference studies, one function per study.

Each ``labNN(seeds)`` runs the same labkit code as lab NN, with more seeds or a wider grid
than the lab can afford at `cpu` scale, and returns (settings, results) for `labkit.course.study`
to write with provenance and check against the registered claims. Every training run goes
through the run cache, so an interrupted study resumes where it stopped: the runs it finished
are read back. See `labkit.course.study` for what each study answers and how to run one.
Leaves out: writing, provenance and claims (`labkit.course.study`); anything a lab needs to run.
"""
from __future__ import annotations

import copy
import dataclasses
import json
import sys
import time

import numpy as np

from labkit.core import cache, claims, curves, data, env, metrics, models
from labkit.core.classifier import load_best, predictor, small_classifier
from labkit.core.kd import student_run
from labkit.core.measure import benchmark
from labkit.core.models import load_minilm
from labkit.core.stats import keep_unless_beaten
from labkit.core.text import train_wordpiece
from labkit.core.train import adamw, train, warmup_linear
from labkit.labs import augment, clean
from labkit.labs.adversarial import AdversarialConfig, attack_model, polarity_flips, summary
from labkit.labs.adversarial.defences import defended_student
from labkit.labs.compress import CompressConfig, logits, structured_run
from labkit.labs.distill import DistillConfig, students, teacher_logits
from labkit.labs.federated import PARTITIONS, FederatedConfig, centralised, fedavg, partition, privacy
from labkit.labs.federated.privacy import budget_label
from labkit.labs.finetune import FinetuneConfig, minilm_run, rare_words, small_run
from labkit.labs.pretrain import (AdaptConfig, PretrainConfig, adapt, corpus, domain_corpus, heldout_loss,
                                  load_or_adapt, load_or_pretrain, loaders, mlm_loss, new_model, pretrain,
                                  probe_curve, probe_ranks)

# Lab 02's compute curve: checkpoints of one run (the learning rate reaches 0 at the last), and
# the recipe that left the word-frequency plateau in earlier probes: 30% masking (Wettig et al.
# 2022) and a higher peak learning rate, with lab 02's linear warm-up and decay.
CURVE_POINTS = {"smoke": (10, 20, 40), "cpu": (1500, 3000, 6000, 12000, 24000),
                "gpu": (3000, 6000, 12000, 24000, 48000)}
CURVE_RECIPE = {"mask_prob": 0.3, "lr": 3e-3, "warmup": 500}


def recipe(cfg, *without: str) -> dict:
    """A lab's config as its study records it (JSON's types: tuples become lists), less the
    fields ``without`` (its seeds): what the lab, at the study's scale, checks is its own."""
    return json.loads(json.dumps({k: v for k, v in dataclasses.asdict(cfg).items() if k not in without}))


def lab01(seeds: int) -> tuple[dict, dict]:
    """Lab 01's label-noise experiment (`clean.label_noise_draw`) on ``seeds`` noise draws,
    seeds 0 .. seeds - 1 (the lab's live draws take seeds after them): lab 01's split of the
    English reviews, its noise rate, folds and MiniLM features, every fix scored on its test
    split. Per draw: what confident learning found and the baseline's accuracy after each fix."""
    cfg = clean.DataConfig.for_scale()
    reviews = data.load_reviews("en")
    if cfg.n_reviews:  # as lab 01 samples them
        reviews = reviews.shuffle(seed=cfg.seed).select(range(cfg.n_reviews))
    splits = data.split(reviews, test=0.15, validation=0.1, seed=cfg.seed)
    train, test = splits["train"], splits["test"]
    emb = models.embed(train["text"]) if cfg.embeddings else None
    draws = []
    for seed in range(seeds):
        draws.append(clean.label_noise_draw(train["text"], train["label"], test["text"], test["label"],
                                            cfg.noise_rate, cfg.folds, seed, emb))
        print(f"study lab01: noise draw {seed} of {seeds}", file=sys.stderr)
    settings = {"seeds": seeds, "noise_rate": cfg.noise_rate, "folds": cfg.folds, "embeddings": cfg.embeddings,
                "train_size": train.num_rows, "test_size": test.num_rows}
    return settings, {"draws": {k: [d[k] for d in draws] for k in draws[0]}}


def lab02_seeds(seeds: int) -> tuple[dict, dict]:
    """Lab 02's own recipe on seeds 1 .. ``seeds`` (the lab's live run is seed 0, the model
    labs 03-07 build on, so it stays a draw the study never made): `PretrainConfig`'s
    pretraining of the small BERT (its initial weights, held-out passages, masks and batch
    order all follow the seed), and `AdaptConfig`'s two arms of MiniLM, head alone and
    adapted, on the same seed. Per seed: the held-out masked-LM loss before and after
    pretraining, and each arm's final held-out loss and median rank on the domain probes."""
    cfg, acfg = PretrainConfig.for_scale(), AdaptConfig.for_scale()
    texts, domain = corpus(cfg), domain_corpus()
    tok = train_wordpiece(texts, cfg.vocab_size)
    out = {k: [] for k in ("heldout_first", "heldout_last", "head_alone_last", "adapted_last",
                           "head_alone_median_rank", "adapted_median_rank")}
    for seed in range(1, seeds + 1):
        _, hist = pretrain(dataclasses.replace(cfg, seed=seed), texts, tok, progress=False)
        out["heldout_first"].append(hist.eval[0]["loss"])
        out["heldout_last"].append(hist.eval[-1]["loss"])
        for arm, body in (("head_alone", False), ("adapted", True)):
            tok_m, model, h = adapt(dataclasses.replace(acfg, seed=seed), domain, body=body, progress=False)
            out[f"{arm}_last"].append(h.eval[-1]["loss"])
            out[f"{arm}_median_rank"].append(float(np.median(list(probe_ranks(model, tok_m).values()))))
        print(f"study lab02-seeds: seed {seed} of {seeds}", file=sys.stderr)
    settings = {"seeds": seeds, "live_seed": cfg.seed, "study_seeds": list(range(1, seeds + 1)),
                "steps": cfg.steps, "adapt_steps": acfg.steps,  # the recipes, every field but the seed:
                "pretrain": recipe(cfg, "seed"), "adapt": recipe(acfg, "seed")}
    return settings, out


def lab02(seeds: int) -> tuple[dict, dict]:
    """The compute curve of lab 02's own pretraining: lab 02's corpus, tokenizer and small
    BERT, trained with ``CURVE_RECIPE`` and checkpointed at ``CURVE_POINTS``. At each
    checkpoint: tokens seen, process CPU seconds, the held-out loss with lab 02's 15% masks
    (comparable with the lab's own run), the linear-probe accuracy against a random encoder's
    features, and test accuracy fine-tuned with lab 03's settings at its two smallest budgets
    against the same architecture from scratch: every comparison paired by seed."""
    scale = env.scale()
    points, base, ft = CURVE_POINTS[scale], PretrainConfig.for_scale(), FinetuneConfig.for_scale()
    cfg = dataclasses.replace(base, steps=points[-1], eval_every=points[0],
                              **(CURVE_RECIPE if scale != "smoke" else {}))
    texts = corpus(cfg)
    tok = train_wordpiece(texts, cfg.vocab_size)
    model = new_model(cfg, tok)
    train_loader, _ = loaders(tok, texts, cfg)
    _, held = loaders(tok, texts, base)  # the same held-out passages, masked as lab 02 masks them
    clock, snaps, cpu0 = {"tokens": 0, "evals": 0}, {}, time.process_time()

    def counted_loss(m, batch):
        clock["tokens"] += int(batch["attention_mask"].sum())
        return mlm_loss(m, batch)

    def checkpoint(m, loader):  # train()'s eval_fn: every eval_every steps and at the end
        clock["evals"] += 1
        step = clock["evals"] * cfg.eval_every
        if step in points:
            snaps[step] = {"state": copy.deepcopy(m.state_dict()), "tokens": clock["tokens"],
                           "cpu_seconds": round(time.process_time() - cpu0, 1)}
        return heldout_loss(m, loader)

    opt = adamw(model, cfg.lr)
    hist = train(model, train_loader, opt, loss_fn=counted_loss, scheduler=warmup_linear(opt, cfg.warmup, cfg.steps),
                 steps=cfg.steps, eval_loader=held, eval_every=cfg.eval_every, eval_fn=checkpoint)
    x_train, y_train, x_test, y_test = data.review_arrays(ft.train_size, ft.test_size, ft.seed)
    budgets = ft.small_budgets[:2]

    def tuned(pretrained):
        return {str(n): accs for n, accs in curves.budget_curve(
            lambda rows, seed: small_run(model, tok, x_train[rows], y_train[rows], seed, ft, pretrained)
            .accuracy(x_test, y_test, ft.max_len), y_train, budgets, seeds).items()}

    def probe(encoder):
        return {str(n): a for n, a in probe_curve(encoder, tok, x_train, y_train, x_test, y_test,
                                                  ft.small_budgets, seeds, ft.max_len).items()}

    out = {"random_probe": probe(small_classifier(model, pretrained=False, seed=0).encoder),
           "scratch": tuned(False), "loss_steps": hist.eval_step,
           "heldout_loss": [round(e["loss"], 4) for e in hist.eval], "points": []}
    for step in points:
        snap = snaps[step]
        model.load_state_dict(snap.pop("state"))
        out["points"].append({"step": step, **snap, "examples": step * cfg.batch_size,
                              "heldout_loss": out["heldout_loss"][hist.eval_step.index(step)],
                              "probe": probe(model.bert), "finetuned": tuned(True)})
    settings = {"seeds": seeds, "split": "test", "test_size": len(y_test), "train_pool": len(y_train),
                "points": list(points), "pretrain": dataclasses.asdict(cfg), "heldout_mask_prob": base.mask_prob,
                "finetune_budgets": list(budgets), "probe_budgets": list(ft.small_budgets),
                "small_steps": ft.small_steps, "small_lr": ft.small_lr,
                "schedule": "one run: linear warm-up, then linear decay to 0 at the last point"}
    return settings, out


def lab03(seeds: int) -> tuple[dict, dict]:
    """What lab 02's domain adaptation is worth for sentiment: MiniLM and the adapted MiniLM
    fine-tuned with lab 03's settings on the same rows, with the same seeds (same head, same
    batches), at lab 03's two comparison budgets and its largest MiniLM budget, scored on the
    fixed test split: {"plain" | "adapted": {budget: [accuracy per seed]}}, and the same on the
    test reviews richest in words MiniLM's vocabulary lacks (`rare_words`) and on the rest
    ("slices")."""
    ft = FinetuneConfig.for_scale()
    x_train, y_train, x_test, y_test = data.review_arrays(ft.train_size, ft.test_size, ft.seed)
    rare = rare_words(x_test, load_minilm()[0])
    budgets = tuple(dict.fromkeys((*ft.adapt_budgets, max(ft.minilm_budgets))))
    out, by_slice = {}, {"rare": {}, "common": {}}
    for arm, adapted in (("plain", None), ("adapted", load_or_adapt)):
        hits = {}  # (budget, seed) -> right or wrong on each test review

        def accuracy(rows, seed):
            hits[len(rows), seed] = right = (minilm_run(x_train[rows], y_train[rows], seed, ft, adapted)
                                             .logits(x_test, ft.max_len).argmax(-1) == y_test)
            return float(right.mean())
        out[arm] = {str(n): accs for n, accs in curves.budget_curve(accuracy, y_train, budgets, seeds).items()}
        for name, mask in (("rare", rare), ("common", ~rare)):
            by_slice[name][arm] = {str(n): [float(hits[n, s][mask].mean()) for s in range(seeds)] for n in budgets}
    out["slices"] = by_slice
    settings = {"seeds": seeds, "split": "test", "test_size": len(y_test), "budgets": list(budgets),
                "rare_slice": {"reviews": int(rare.sum()), "definition": "top third by rare_word_share "
                               "(share of words MiniLM's tokenizer splits)"},
                "adapt": dataclasses.asdict(AdaptConfig.for_scale()), "minilm_lr": ft.minilm_lr,
                "minilm_epochs": ft.minilm_epochs}
    return settings, out


def lab03_curves(seeds: int) -> tuple[dict, dict]:
    """Lab 03's learning curves on seeds 0 .. seeds - 1 (the lab's live run takes
    ``FinetuneConfig.curve_seeds``, after them): TF-IDF + LR and a logistic regression on
    MiniLM's frozen embeddings at lab 03's budgets, and the small BERT fine-tuned from scratch
    and from lab 02's pretrained encoder at its small budgets, each seed a label sample (and
    the small BERT's head and batches), the same rows for every model: {model: {budget: [test
    accuracy per seed]}}."""
    ft = FinetuneConfig.for_scale()
    x_train, y_train, x_test, y_test = data.review_arrays(ft.train_size, ft.test_size, ft.seed)
    e_train, e_test = models.embed(list(x_train)), models.embed(list(x_test))
    tok, mlm = load_or_pretrain()
    runs = {"TF-IDF + LR": (lambda rows, seed: curves.baseline_accuracy(x_train[rows], y_train[rows], x_test, y_test),
                            ft.budgets),
            "MiniLM frozen + LR": (lambda rows, seed: curves.frozen_accuracy(e_train[rows], y_train[rows],
                                                                             e_test, y_test),
                                   ft.budgets)}
    for name, pretrained in (("small BERT, scratch", False), ("small BERT, lab-02 pretrained", True)):
        runs[name] = (lambda rows, seed, p=pretrained: small_run(mlm, tok, x_train[rows], y_train[rows], seed, ft, p)
                      .accuracy(x_test, y_test, ft.max_len), ft.small_budgets)
    out = {}
    for name, (run, budgets) in runs.items():
        out[name] = {str(n): a for n, a in curves.budget_curve(run, y_train, budgets, seeds).items()}
        print(f"study lab03-curves: {name}, {seeds} seeds", file=sys.stderr)
    settings = {"seeds": seeds, "live_seeds": list(ft.curve_seeds), "split": "test", "test_size": len(y_test),
                "small_steps": ft.small_steps, "small_lr": ft.small_lr,  # the recipe, every field but the seeds:
                "finetune": recipe(ft, "seeds", "curve_seeds", "live_seed"),
                "pretrained": cache.fingerprint(mlm)}  # which lab 02 model the small BERTs started from
    return settings, out


def lab04(seeds: int) -> tuple[dict, dict]:
    """Augmentation gains (paired by seed) for TF-IDF, with the guard on and off, and for lab
    03's small BERT, at lab 04's budgets, on the fixed test split."""
    ft, aug = FinetuneConfig.for_scale(), augment.AugmentConfig()
    x_train, y_train, x_test, y_test = data.review_arrays(ft.train_size, ft.test_size, ft.seed)
    tfidf = lambda x, y, seed: curves.baseline_accuracy(x, y, x_test, y_test)  # noqa: E731
    budgets = tuple(dict.fromkeys((*ft.small_budgets, None)))
    out = {"TF-IDF + LR": augment.paired_gains(tfidf, x_train, y_train, budgets, seeds, aug.n_aug, aug.strength),
           "TF-IDF + LR, guard off": augment.paired_gains(tfidf, x_train, y_train, budgets, seeds, aug.n_aug,
                                                          aug.strength, guard=False)}
    tok, mlm = load_or_pretrain(progress=False)
    small = lambda x, y, seed: small_run(mlm, tok, x, y, seed, ft).accuracy(x_test, y_test, ft.max_len)  # noqa: E731
    out["small BERT"] = augment.paired_gains(small, x_train, y_train, ft.small_budgets, seeds, aug.n_aug,
                                             aug.strength)
    settings = {"seeds": seeds, "n_aug": aug.n_aug, "strength": aug.strength, "small_steps": ft.small_steps,
                "split": "test", "train_size": len(y_train), "test_size": len(y_test)}
    return settings, {model: {arm: {str(n): accs for n, accs in curve.items()} for arm, curve in arms.items()}
                      for model, arms in out.items()}


def lab05(seeds: int) -> tuple[dict, dict]:
    """The students' settings, chosen on the validation split: steps first (hard-label and
    distilled students on the teacher's labelled rows, distilled at T = 2, alpha = 0.5, a
    common starting point), then temperature and alpha at the chosen steps, each option on
    ``study_grid_seeds`` seeds. The distilled student's mean validation accuracy decides (ties:
    fewer steps, lower temperature), the course's setting kept unless beaten by more than a
    standard error (`stats.keep_unless_beaten`). Then every student (`distill.students`) with the
    lab's settings on seeds 1..``seeds`` (0 is the lab's live run), on test."""
    cfg = DistillConfig.for_scale()
    x_train, y_train, x_test, y_test = data.review_arrays(cfg.train_size, cfg.test_size, cfg.seed)
    x_val, y_val = data.validation_arrays(cfg.test_size, cfg.seed)
    t_tok, teacher, t_info = load_best("minilm")
    t_train = teacher_logits(teacher, t_tok, list(x_train), cfg.max_len)
    rows = data.sample_per_class(y_train, t_info["labels"], t_info["sample_seed"])
    tok, mlm = load_or_pretrain(progress=False)

    def val_acc(kind, seed, **settings):
        run = student_run(mlm, tok, kind, x_train, y_train, t_train, rows, seed, cfg, **settings)
        return run.accuracy(x_val, y_val, cfg.max_len)

    grid_seeds = range(cfg.study_grid_seeds)
    start = {"temperature": 2.0, "alpha": 0.5}
    by_steps = {kind: {str(s): [val_acc(kind, seed, steps=s, **start) for seed in grid_seeds]
                       for s in cfg.study_steps} for kind in ("hard labels", "distilled")}
    print(f"study lab05: steps on validation, {len(grid_seeds)} seeds", file=sys.stderr)
    steps = keep_unless_beaten({s: by_steps["distilled"][str(s)] for s in cfg.study_steps}, cfg.steps, lambda s: -s)
    grid = {f"T={t}, alpha={a}": [val_acc("distilled", seed, steps=steps, temperature=t, alpha=a)
                                  for seed in grid_seeds]
            for t in cfg.study_temperatures for a in cfg.study_alphas}
    print(f"study lab05: temperature and alpha on validation, {len(grid_seeds)} seeds", file=sys.stderr)
    best = keep_unless_beaten({(t, a): grid[f"T={t}, alpha={a}"] for t in cfg.study_temperatures
                               for a in cfg.study_alphas}, (cfg.temperature, cfg.alpha), lambda ta: -ta[0])
    on_test = {}
    for seed in range(1, seeds + 1):
        for (kind, budget), run in students(mlm, tok, x_train, y_train, t_train, rows, seed, cfg).items():
            on_test.setdefault(f"{kind} @ {budget}", []).append(run.accuracy(x_test, y_test, cfg.max_len))
        print(f"study lab05: students, seed {seed} of {seeds}", file=sys.stderr)
    settings = {"seeds": seeds, "student_seeds": list(range(1, seeds + 1)), "grid_seeds": cfg.study_grid_seeds,
                "split": "validation", "students_split": "test", "test_size": len(y_test), "labelled_rows": len(rows),
                "validation_size": len(y_val), "steps_chosen_at": start,
                "rule": "keep_unless_beaten (one standard error)",
                "students_settings": {"steps": cfg.steps, "temperature": cfg.temperature, "alpha": cfg.alpha},
                "teacher": {k: t_info[k] for k in ("labels", "sample_seed")}}
    return settings, {"steps": by_steps, "grid": grid, "students": on_test,
                      "chosen": {"steps": int(steps), "temperature": best[0], "alpha": best[1]}}


def lab06(seeds: int) -> tuple[dict, dict]:
    """Lab 06's defences against lab 05's student ("none": that cached run itself), each arm
    replacing it with the same recipe and clean batches (`defences.defended_student`).
    Choice on validation: every option (FGM's and PGD's epsilon, the adversarial rows a batch
    gets) on ``study_grid_seeds`` seeds, scored by clean accuracy and by accuracy under the
    lax attack on a fixed set of validation reviews; per defence the most accurate under attack
    wins among options within 1.5 points of "none"'s clean accuracy. The chosen, on ``seeds``
    seeds, are scored once on test (lab 06's fixed set for the attack, polarity flips too)."""
    cfg, acfg = DistillConfig.for_scale(), AdversarialConfig.for_scale()
    x_train, y_train, x_test, y_test = data.review_arrays(cfg.train_size, cfg.test_size, cfg.seed)
    x_val, y_val = data.validation_arrays(cfg.test_size, cfg.seed)
    val_rows = np.random.default_rng(acfg.seed).permutation(len(y_val))[:acfg.defence_pool]
    test_rows = np.random.default_rng(acfg.seed).permutation(len(y_test))[:acfg.defence_pool]  # lab 06's set
    t_tok, teacher, t_info = load_best("minilm")
    t_train = teacher_logits(teacher, t_tok, list(x_train), cfg.max_len)
    rows = data.sample_per_class(y_train, t_info["labels"], t_info["sample_seed"])
    tok, mlm = load_or_pretrain(progress=False)

    def trained(name, option, seed):
        return defended_student(mlm, tok, x_train, y_train, t_train, rows, seed, cfg, name,
                                dataclasses.replace(acfg, **option))

    def scored(into, run, x, y, fixed):  # appends clean, success and under_attack; returns the attacks
        attacked = attack_model(run.model, tok, [x[i] for i in fixed], y[fixed], max_len=cfg.max_len, progress=False)
        s = summary(attacked)
        for k, v in zip(("clean", "success", "under_attack"),
                        (run.accuracy(x, y, cfg.max_len), s["success_rate"], s["accuracy_under_attack"])):
            into.setdefault(k, []).append(round(float(v), 4))
        return attacked

    grid = {"none": [{}], "FGM": [{"fgm_epsilon": e} for e in acfg.study_epsilons],
            "PGD": [{"pgd_epsilon": e} for e in acfg.study_epsilons],
            "adversarial augmentation": [{"aug_rows": r} for r in acfg.study_rows],
            "A2T": [{"a2t_rows": r} for r in acfg.study_rows]}
    results = {"grid": {}, "chosen": {}, "test": {}}
    for name, options in grid.items():
        for option in options:
            label = ", ".join(f"{k}={v}" for k, v in option.items()) or "-"
            row = results["grid"].setdefault(name, {}).setdefault(label, {"setting": option})
            for seed in range(min(seeds, acfg.study_grid_seeds)):
                scored(row, trained(name, option, seed)[0], x_val, y_val, val_rows)
            print(f"study lab06: {name} {label} on validation", file=sys.stderr)
    floor = np.mean(results["grid"]["none"]["-"]["clean"]) - 0.015
    for name, options in results["grid"].items():  # none within the floor: the most accurate
        ok = [v for v in options.values() if np.mean(v["clean"]) >= floor]
        results["chosen"][name] = (max(ok, key=lambda v: np.mean(v["under_attack"])) if ok
                                   else max(options.values(), key=lambda v: np.mean(v["clean"])))["setting"]
    for name, option in results["chosen"].items():  # the chosen arms, scored once on the test split
        row = results["test"].setdefault(name, {"setting": option, "made": [], "polarity_flips": [0, 0]})
        for seed in range(seeds):
            run, made = trained(name, option, seed)
            flips = polarity_flips(scored(row, run, x_test, y_test, test_rows))
            row["made"].append(made)
            row["polarity_flips"] = [a + b for a, b in zip(row["polarity_flips"], flips)]
        print(f"study lab06: {name} on test, {seeds} seeds", file=sys.stderr)
    return {"seeds": seeds, "grid_seeds": min(seeds, acfg.study_grid_seeds), "choice_split": "validation",
            "validation_size": len(y_val), "test_size": len(y_test), "fixed_set": len(test_rows), "steps": cfg.steps,
            "pgd_steps": acfg.pgd_steps, "a2t_attacked": acfg.a2t_attacked, "a2t_rounds": acfg.a2t_rounds}, results


def lab07(seeds: int) -> tuple[dict, dict]:
    """Lab 07's comparisons over ``seeds`` seeds, every choice on the validation split:
    centralised against FedAvg on each partition and FedProx on the most skewed (the lab's
    learning rate, chosen with the centralised head); the MiniLM head at every budget,
    non-private included, its learning rate chosen per budget from ``head_lrs`` by mean
    validation accuracy; the small BERT non-private and at ``bert_epsilons``, its (lr, batch)
    chosen per budget from ``bert_grid`` on ``study_grid_seeds`` seeds (majority share and
    whether any seed answers more than one class beside it); the membership attack on the
    overfitted head at each budget from 1 (AUC, TPR at 1% FPR, test accuracy); client-level
    DP at each clients-per-round. The chosen are scored once on test."""
    cfg = FederatedConfig.for_scale()
    x_train, y_train, x_test, y_test = data.review_arrays(cfg.train_size, cfg.test_size, cfg.seed)
    x_val, y_val = data.validation_arrays(cfg.test_size, cfg.seed)
    movies = data.review_sources(cfg.train_size, cfg.seed)
    e_train, e_val, e_test = models.embed(list(x_train)), models.embed(x_val), models.embed(x_test)
    acc, seed_list = metrics.accuracy, range(seeds)
    spent = lambda runs: None if np.isnan(runs[0]["epsilon"][0]) else [float(r["epsilon"][0]) for r in runs]  # noqa: E731
    passes = max(1, round(cfg.rounds * cfg.per_round / cfg.clients * cfg.local_epochs))
    val_by_lr = {lr: centralised(e_train, y_train, e_val, y_val, passes, lr, cfg.batch_size, cfg.hidden)
                 for lr in cfg.lrs}
    lr = max(val_by_lr, key=val_by_lr.get)

    def federation(how, seed, **kw):
        parts = partition(y_train, cfg.clients, how, seed, sources=movies)
        return float(fedavg(e_train, y_train, parts, e_test, y_test, cfg.rounds, cfg.per_round, lr,
                            cfg.local_epochs, cfg.batch_size, cfg.hidden, seed, progress=False, **kw)["accuracy"][-1])

    out = {"federated": {"lr": lr, "validation": {str(k): v for k, v in val_by_lr.items()},
                         "centralised": [centralised(e_train, y_train, e_test, y_test, passes, lr, cfg.batch_size,
                                                     cfg.hidden, seed) for seed in seed_list],
                         "fedavg": {how: [federation(how, seed) for seed in seed_list] for how in PARTITIONS},
                         "fedprox": {str(mu): [federation("dirichlet 0.1", seed, mu=mu) for seed in seed_list]
                                     for mu in cfg.mus}}}
    print("study lab07: federated", file=sys.stderr)
    heads = out["MiniLM"] = {}
    for eps in (None, *cfg.epsilons):
        runs = {hlr: [privacy.head_run(e_train, y_train, {"val": e_val, "test": e_test}, eps, cfg.head_epochs, hlr,
                                       cfg.head_batch, seed=seed) for seed in seed_list] for hlr in cfg.head_lrs}
        val = {hlr: [acc(r["val"], y_val) for r in rs] for hlr, rs in runs.items()}
        best = max(cfg.head_lrs, key=lambda h: (np.mean(val[h]), -h))
        heads[budget_label(eps)] = {"validation": {str(h): v for h, v in val.items()}, "chosen": {"lr": best},
                                    "test": [acc(r["test"], y_test) for r in runs[best]], "epsilon": spent(runs[best])}
    print("study lab07: MiniLM heads", file=sys.stderr)
    tok, mlm = load_or_pretrain(progress=False)
    rows = np.arange(len(y_train)) if cfg.bert_rows is None else data.sample_per_class(y_train, cfg.bert_rows, cfg.seed)
    texts, majority = list(x_train[rows]), max(np.mean(y_test), 1 - np.mean(y_test))

    def bert(eps, option, seed):
        return privacy.bert_run(mlm, tok, texts, y_train[rows], {"val": x_val, "test": x_test}, eps, cfg.bert_epochs,
                                option[0], option[1], cfg.bert_max_len, seed=seed, progress=False)

    out["small BERT"], trains_bound = {}, claims.entry("07.small_bert_trains")["bound"]
    for eps in (None, *cfg.bert_epsilons):
        grid_seeds = range(min(seeds, cfg.study_grid_seeds))
        val = {f"lr={o[0]:g}, batch={o[1]}": [acc(bert(eps, o, seed)["val"], y_val) for seed in grid_seeds]
               for o in cfg.bert_grid}
        best = max(cfg.bert_grid, key=lambda o: (np.mean(val[f"lr={o[0]:g}, batch={o[1]}"]), -o[0], o[1]))
        runs = [bert(eps, best, seed) for seed in seed_list]
        out["small BERT"][budget_label(eps)] = {
            "validation": val, "chosen": {"lr": best[0], "batch": best[1]},
            "test": [acc(r["test"], y_test) for r in runs], "epsilon": spent(runs),
            "majority_share": float(majority),  # trains: lab 07's gate, a point above the constant answer
            "trains": bool(100 * (np.mean([acc(r["test"], y_test) for r in runs]) - majority) >= trains_bound)}
        print(f"study lab07: small BERT, {budget_label(eps)}", file=sys.stderr)
    out["membership"] = {}
    for eps in (None, *[e for e in cfg.epsilons if e >= 1]):
        attacks = [privacy.membership(e_train, y_train, e_test, y_test, eps, cfg.mia_rows, cfg.mia_others,
                                      cfg.mia_epochs, cfg.mia_hidden, seed) for seed in seed_list]
        out["membership"][budget_label(eps)] = {k: [round(a[k], 4) for a in attacks]
                                                for k in ("auc", "tpr_at_1pct_fpr", "test_accuracy")}
    print("study lab07: membership", file=sys.stderr)
    small = partition(y_train, cfg.dp_clients, "iid", cfg.seed)
    out["client_dp"] = {}
    for m in cfg.dp_per_round:
        z = privacy.client_dp_noise_multiplier(cfg.dp_epsilon, m, cfg.dp_clients, cfg.rounds)
        out["client_dp"][str(m)] = {"noise_multiplier": round(z, 4), "accuracy": [float(fedavg(
            e_train, y_train, small, e_test, y_test, cfg.rounds, m, lr, cfg.local_epochs, cfg.batch_size, cfg.hidden,
            seed, dp_clip=cfg.dp_clip, dp_noise=z, progress=False)["accuracy"][-1]) for seed in seed_list]}
    settings = {"seeds": seeds, "grid_seeds": min(seeds, cfg.study_grid_seeds), "choice_split": "validation",
                "validation_size": len(y_val), "test_size": len(y_test), "epsilons": list(cfg.epsilons),
                "head_lrs": list(cfg.head_lrs), "bert_grid": [list(o) for o in cfg.bert_grid],
                "bert_epochs": cfg.bert_epochs, "mia": {"rows": cfg.mia_rows, "others": cfg.mia_others,
                                                        "epochs": cfg.mia_epochs, "hidden": cfg.mia_hidden},
                "delta": privacy.DELTA, "accountant": privacy.ACCOUNTANT}
    return settings, out


LONG_RECOVERY = 3  # the lab08 study's longer recovery, tried for lab 08's 1.5-point target


def lab08(seeds: int) -> tuple[dict, dict]:
    """Structured pruning's size, chosen on the validation split: the teacher pruned to each
    (heads, neurons) per layer of ``CompressConfig.study_structures`` and recovered
    (`compress.structured_run`) on ``seeds`` seeds, scored on the validation reviews and timed
    at batch 32. The fastest whose mean validation accuracy is at most 1 point below the
    unpruned teacher's wins (none: the most accurate). Then the chosen size with
    ``LONG_RECOVERY`` times the recovery steps on the same seeds (validation too), and both
    recoveries of the chosen size scored once on the test split beside the teacher: what lab
    08's 1.5-point target measures. Seeds change the recovery's batch order."""
    cfg, dcfg = CompressConfig.for_scale(), DistillConfig.for_scale()
    x_train, y_train, x_test, y_test = data.review_arrays(dcfg.train_size, cfg.test_size, cfg.seed)
    x_val, y_val = data.validation_arrays(cfg.val_size, cfg.seed)
    tok, teacher, _ = load_best("minilm")
    t_train = teacher_logits(teacher, tok, list(x_train), cfg.max_len)
    sample = list(x_test[:256])

    def accuracy(model, x, y):
        return float((logits(predictor(model, tok, cfg.max_len), list(x)).argmax(-1) == y).mean())

    def runs(heads, ffn, steps):
        for seed in range(seeds):
            yield structured_run(teacher, tok, x_train, y_train, t_train, dataclasses.replace(
                cfg, heads_keep=heads, ffn_keep=ffn, structured_steps=steps, seed=seed))[0]

    def speed(model):
        return benchmark(predictor(model, tok, cfg.max_len), sample, cfg.batch_size, cfg.repeats, 1)["per_second"]

    base = {"accuracy": accuracy(teacher, x_val, y_val), "per_second": speed(teacher),
            "test_accuracy": accuracy(teacher, x_test, y_test)}
    results = {}
    for heads, ffn in cfg.study_structures:
        scores = [(accuracy(m, x_val, y_val), speed(m)) for m in runs(heads, ffn, cfg.structured_steps)]
        results[f"{heads} heads, {ffn} neurons"] = {"heads": heads, "ffn": ffn,
                                                   "accuracy": [a for a, _ in scores],
                                                   "per_second": [p for _, p in scores]}
        print(f"study lab08: {heads} heads, {ffn} neurons on validation, {seeds} seeds", file=sys.stderr)
    ok = [r for r in results.values() if np.mean(r["accuracy"]) >= base["accuracy"] - 0.01]
    best = (max(ok, key=lambda r: np.mean(r["per_second"])) if ok
            else max(results.values(), key=lambda r: np.mean(r["accuracy"])))
    recovery = {}
    for steps in (cfg.structured_steps, LONG_RECOVERY * cfg.structured_steps):
        scored = [(accuracy(m, x_val, y_val), accuracy(m, x_test, y_test))
                  for m in runs(best["heads"], best["ffn"], steps)]
        recovery[str(steps)] = {"validation": [v for v, _ in scored], "test": [t for _, t in scored]}
        print(f"study lab08: the chosen size recovered {steps} steps, {seeds} seeds", file=sys.stderr)
    settings = {"seeds": seeds, "split": "validation", "validation_size": len(y_val), "test_size": len(y_test),
                "steps": cfg.structured_steps, "long_steps": LONG_RECOVERY * cfg.structured_steps,
                "importance_reviews": cfg.importance_reviews}
    return settings, {"teacher": base, "grid": results,
                      "chosen": {"heads_keep": best["heads"], "ffn_keep": best["ffn"]}, "recovery": recovery}
