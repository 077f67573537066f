"""Lab 06: defences against the word attacks of `labkit.labs.adversarial`, trained through the one
training loop and compared with lab 05's student on the same data.

Each defence *replaces* lab 05's "distilled + unlabelled" student with the same recipe and the
same clean batches in the same order, so every arm sees every training review as often as the
undefended one; only what the defence adds differs (`defended_student`, cached):
`embedding_adversarial_loss_fn` is a ``loss_fn`` adding the loss at word embeddings moved by
`fgm_perturbation` (FGM, Miyato et al. 2017) or by K projected steps (PGD);
`adversarial_mix_loss_fn` adds adversarial reviews to every batch, made once against the
finished student (adversarial augmentation) or regenerated against the model being trained
(A2T, Yoo & Qi 2021).
Leaves out: certified defences, and adversarial training of MiniLM (too slow on a CPU).
"""
from __future__ import annotations

from dataclasses import asdict, replace

import numpy as np
import torch

from labkit.core import cache, checks
from labkit.core.text import check_texts
from labkit.labs.adversarial import PRESETS, VERSION, AdversarialConfig, attack_model


def fgm_perturbation(grad, mask, epsilon: float):
    """FGM's step: ``grad`` (batch, seq, hidden) with padding (``mask`` = 0) zeroed, scaled
    to L2 norm ``epsilon`` per review (one norm over all its tokens and dimensions)."""
    if epsilon < 0:
        raise ValueError(f"epsilon={epsilon}: the perturbation's norm must be >= 0")
    g = grad * mask.unsqueeze(-1).to(grad.dtype)
    norm = g.flatten(1).norm(dim=1).clamp_min(1e-12)
    return epsilon * g / norm.view(-1, *([1] * (g.dim() - 1)))


def embedding_adversarial_loss_fn(base_loss, epsilon: float, steps: int = 1,
                                  step_size: float | None = None, spec: dict | None = None):
    """A ``loss_fn(model, batch)`` for `labkit.core.train.train`: the clean loss plus the loss at
    word embeddings moved by at most ``epsilon`` (L2 per review) to raise it. ``steps=1``:
    FGM, one step along the normalised gradient; ``steps=K``: PGD, K steps of
    ``step_size`` (default epsilon / 2), each projected back into the epsilon ball.
    ``base_loss(logits, batch)`` is the loss without attack (cross entropy, or lab 05's
    `kd_loss`); ``spec`` names it for the run cache."""
    checks.number(steps, "steps", low=1, low_open=False, integer=True, fix="attack steps: 1 is FGM, more is PGD")
    fgm_perturbation(torch.zeros(1, 1, 1), torch.ones(1, 1), epsilon)  # refuse bad settings now
    size = step_size or epsilon / 2

    def loss_fn(model, batch):
        mask = batch["attention_mask"]
        emb = model.word_embeddings(batch["input_ids"])                       # (b, seq, h)
        clean = base_loss(model(inputs_embeds=emb, attention_mask=mask), batch)
        if steps == 1:
            grad, = torch.autograd.grad(clean, emb, retain_graph=True)
            delta = fgm_perturbation(grad, mask, epsilon)
        else:
            delta = torch.zeros_like(emb)
            for _ in range(steps):
                delta.requires_grad_(True)
                adv = base_loss(model(inputs_embeds=emb.detach() + delta, attention_mask=mask), batch)
                grad, = torch.autograd.grad(adv, delta)
                delta = delta.detach() + fgm_perturbation(grad, mask, size)
                norm = delta.flatten(1).norm(dim=1).view(-1, 1, 1)
                delta = delta * torch.clamp(epsilon / norm.clamp_min(1e-12), max=1.0)
        adv = base_loss(model(inputs_embeds=emb + delta.detach(), attention_mask=mask), batch)
        return clean + adv
    loss_fn.spec = {"loss": "embedding-adversarial", "epsilon": epsilon, "steps": steps,
                    "step_size": size, "base": spec or {}}
    loss_fn.unlabelled = getattr(base_loss, "unlabelled", False)  # rows labelled -1: as the base loss takes them
    return loss_fn


A2T_ATTACK = replace(PRESETS["lax"], k=10)  # the cheaper attack the training-time defences use
DEFENCES = ("none", "FGM", "PGD", "adversarial augmentation", "A2T")


def adversarial_mix_loss_fn(base_loss_fn, tokenizer, pools: dict, rows: int, max_len: int, seed: int,
                            spec: dict):
    """A ``loss_fn(model, batch)`` for `labkit.core.train.train` that adds adversarial reviews to
    the clean batches: from the first step in ``pools`` on, ``rows`` reviews drawn (without
    replacement, ``seed``) from the current pool are scored with ``base_loss_fn`` too, and the
    two losses are weighted by their rows (for a loss averaged over rows, such as lab 05's soft
    KL, exactly as if the adversarial rows were appended to the batch). The clean batches are the
    loader's, untouched: every training review is seen as
    often as without the defence. ``pools``: {step: pool or ``make(model) -> pool``}, a pool
    being (texts, labels, teacher logits) of adversarial reviews; a callable is called with
    the model being trained at that step (A2T: the adversarial reviews are regenerated against
    the current model). One loss_fn trains one run: it counts its own steps."""

    from labkit.core.classifier import loader
    if rows < 1:
        raise ValueError(f"rows={rows}: add at least one adversarial review a step")
    rng, state = np.random.default_rng(seed), {"step": 0, "pool": None}

    def loss_fn(model, batch):
        step, device = state["step"], batch["input_ids"].device
        state["step"] += 1
        if step in pools:
            pool = pools[step]
            if callable(pool):
                pool = pool(model)
                model.to(device).train()  # the attack scored it on the CPU, in eval mode
            state["pool"] = pool if len(pool[0]) else None
        clean = base_loss_fn(model, batch)
        if state["pool"] is None:
            return clean
        texts, labels, targets = state["pool"]
        pick = rng.choice(len(texts), min(rows, len(texts)), replace=False)
        adv = next(iter(loader(tokenizer, [texts[i] for i in pick], np.asarray(labels)[pick], max_len,
                               batch_size=len(pick), targets=np.asarray(targets)[pick])))
        adv = {k: v.to(device) for k, v in adv.items()}
        b, m = len(batch["input_ids"]), len(pick)
        return (b * clean + m * base_loss_fn(model, adv)) / (b + m)
    loss_fn.spec = {"loss": "adversarial-mix", "rows": rows, "seed": seed, "base": spec}
    loss_fn.unlabelled = getattr(base_loss_fn, "unlabelled", False)
    return loss_fn


def _adversarial_pool(model, tokenizer, texts, y, teacher, pick, seed: int, max_len: int):
    """(texts, labels, teacher logits) of the successful `A2T_ATTACK`s on training reviews
    ``pick`` against ``model``: each adversarial review keeps its original's label (-1:
    unlabelled) and teacher logits. The attack's target is the label, else the teacher's."""
    target = np.where(y[pick] >= 0, y[pick], teacher[pick].argmax(-1))
    results = attack_model(model, tokenizer, list(texts[pick]), target, A2T_ATTACK, seed, max_len, progress=False)
    won = np.array([j for j, r in zip(pick, results) if r.success], dtype=int)
    return [r.adversarial for r in results if r.success], y[won], teacher[won]


def defended_student(mlm, tokenizer, texts, labels, teacher, rows, seed: int, cfg, defence: str,
                     acfg: AdversarialConfig):
    """Lab 05's "distilled + unlabelled" student (``cfg``: a `DistillConfig`) and its defended
    replacements, each cached. "none" is lab 05's student itself (`labkit.core.kd.student_run`, the
    same cached run). Every defence trains from the same initialisation with the same recipe
    and the same clean batches, in the same order, so every arm sees every training review as
    often as "none" did; only what is added differs:

    - "FGM" / "PGD": the loss at word embeddings moved by ``acfg.fgm_epsilon`` /
      ``pgd_epsilon`` (`embedding_adversarial_loss_fn`), at every step;
    - "adversarial augmentation": ``acfg.a2t_attacked`` training reviews attacked once, with
      the cheaper `A2T_ATTACK`, against the finished undefended student (what a team can do
      after deploying it); from half-way on, ``acfg.aug_rows`` of the successes are added to
      every batch (`adversarial_mix_loss_fn`), with their originals' teacher logits;
    - "A2T" (Yoo & Qi 2021): the same number of reviews attacked, but against the model being
      trained, regenerated ``acfg.a2t_rounds`` times from half-way on, each round on fresh
      reviews; ``acfg.a2t_rows`` of the current round's successes are added to every batch.

    Returns (run, number of adversarial reviews made)."""
    from labkit.core.classifier import cached_fine_tune, small_classifier
    from labkit.core.kd import kd_logits_loss, kd_loss_fn, student_run
    if defence not in DEFENCES:
        raise ValueError(f"unknown defence {defence!r}; use one of {', '.join(DEFENCES)}")
    texts = np.asarray(check_texts(texts, "no training reviews"), dtype=object)
    none = student_run(mlm, tokenizer, "distilled + unlabelled", texts, labels, teacher, rows, seed, cfg)
    if defence == "none":
        return none, 0
    teacher, y = np.asarray(teacher, dtype=np.float32), np.full(len(labels), -1)
    y[rows] = np.asarray(labels)[rows]
    kd, k, start = kd_loss_fn(cfg.temperature, cfg.alpha), none.model.head.out_features, cfg.steps // 2
    made = 0
    if defence in ("FGM", "PGD"):
        fgm = defence == "FGM"
        loss_fn = embedding_adversarial_loss_fn(kd_logits_loss(cfg.temperature, cfg.alpha),
                                                acfg.fgm_epsilon if fgm else acfg.pgd_epsilon,
                                                1 if fgm else acfg.pgd_steps, spec=kd.spec)
    else:
        pick = np.random.default_rng(seed).permutation(len(texts))[:min(acfg.a2t_attacked, len(texts))]
        if defence == "adversarial augmentation":
            pool = _adversarial_pool(none.model, tokenizer, texts, y, teacher, pick, seed, cfg.max_len)
            pools, source, made = {start: pool}, {"against": cache.fingerprint(none.model)}, len(pool[0])
        else:
            rounds = max(1, acfg.a2t_rounds)
            at = [start + r * (cfg.steps - start) // rounds for r in range(rounds)]
            made_by_round = {}

            def regenerate(part, step):
                def make(model):
                    pool = _adversarial_pool(model, tokenizer, texts, y, teacher, part, seed, cfg.max_len)
                    made_by_round[step] = len(pool[0])
                    return pool
                return make
            pools = {s: regenerate(part, s) for s, part in zip(at, np.array_split(pick, rounds))}
            source = {"against": "the model being trained", "rounds": rounds, "at": at}
        rows_a_step = acfg.aug_rows if defence == "adversarial augmentation" else acfg.a2t_rows
        loss_fn = adversarial_mix_loss_fn(kd, tokenizer, pools, rows_a_step, cfg.max_len, seed,
                                          {**kd.spec, "defence": defence, "attacked": len(pick), "start": start,
                                           "attack": asdict(A2T_ATTACK), "version": VERSION, **source})
    run = cached_fine_tune(lambda: (tokenizer, small_classifier(mlm, pretrained=False, seed=seed, num_labels=k)),
                           list(texts), y, name="defence", lr=cfg.lr, steps=cfg.steps, batch_size=cfg.batch_size,
                           max_len=cfg.max_len, seed=seed, loss_fn=loss_fn, targets=teacher)
    if defence == "A2T":  # how many it made, kept beside the run (None: lost, the run is still valid)
        side = run.folder / "adversarial.json"
        if not run.hit:
            cache.write_json(side, {"made": sum(made_by_round.values()), "by_step": made_by_round})
        made = cache.read_json(side)["made"] if side.exists() else None
    return run, made
