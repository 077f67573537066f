"""Lab 06's attacks and defences. The attacks run against a transparent word-score model
(P(positive) from a fixed score per word), with the real candidate sources (the fetched
MiniLM vectors and thesaurus), so what they may and may not change can be checked exactly."""
import random

import numpy as np
import pytest
import torch

from labkit.core import classifier as C
from labkit.core import kd, lexicon, models, text
from labkit.labs import adversarial as A
from labkit.labs.adversarial import defences

SCORES = {"good": 2.0, "great": 2.5, "fine": 1.0, "excellent": 3.0, "moving": 1.0, "bad": -2.0,
          "awful": -2.5, "dull": -1.5, "boring": -2.0, "terrible": -3.0}
REVIEWS = [
    ("a good and moving film with a great cast and excellent music throughout the story", 1),
    ("this was not a bad film but the plot is dull and boring and the end is awful", 0),
    ("excellent acting , great direction , a fine script and a good score make it worth it", 1),
    ("the story is terrible , the jokes are awful and the whole thing is boring to watch", 0),
    ("never dull , hardly boring : a good , moving and great film for the whole family", 1),
]


def proba(texts):
    """P(negative), P(positive) from the sum of the scores of the words (lower case)."""
    s = np.array([sum(SCORES.get(lexicon.split_word(w)[1].lower(), 0.0) for w in t.split()) for t in texts])
    p = 1 / (1 + np.exp(-s))
    return np.stack([1 - p, p], axis=1)


@pytest.fixture(scope="module")
def results():
    return {preset: [A.attack(proba, t, y, preset) for t, y in REVIEWS] for preset in A.PRESETS}


def test_attack_never_touches_protected_words_and_keeps_the_budget(results):
    for preset, res in results.items():
        c = A.PRESETS[preset]
        for r in res:
            before, after = r.original.split(), r.adversarial.split()
            assert len(before) == len(after), "substitutions keep the number of words"
            diff = [i for i, (a, b) in enumerate(zip(before, after)) if a != b]
            assert len(diff) == r.words_changed <= int(c.max_fraction * len(before) + 1e-9)
            frozen = lexicon.protected_positions(before)
            assert not set(diff) & frozen, (preset, r.original, r.adversarial)
            assert all(lexicon.split_word(before[i])[1].lower() not in lexicon.stop_words() for i in diff)
    lax = results["lax"]
    assert any(r.success for r in lax), "the lax attack flips some of these reviews"
    for r in lax:  # a success is really a flip, read back through the model
        assert r.success == (proba([r.adversarial])[0].argmax() != r.label)


def test_queries_are_counted_exactly():
    for preset in A.PRESETS:
        for t, y in REVIEWS:
            seen = []
            r = A.attack(lambda texts: seen.append(len(texts)) or proba(texts), t, y, preset)
            assert r.queries == sum(seen) > 0


def test_attacks_are_seeded():
    for preset in A.PRESETS:
        a = [A.attack(proba, t, y, preset, seed=3) for t, y in REVIEWS]
        b = [A.attack(proba, t, y, preset, seed=3) for t, y in REVIEWS]
        assert a == b
    typos = [lexicon.typos("wonderful", 5, random.Random(s)) for s in range(4)]
    assert all(len(set(t)) == 5 and "wonderful" not in t for t in typos)
    assert len({tuple(t) for t in typos}) > 1, "different seeds draw different typos"


def test_a_review_the_model_gets_wrong_is_not_attacked():
    t, y = REVIEWS[0]
    calls = []
    r = A.attack(lambda texts: calls.append(texts) or proba(texts), t, 1 - y)
    assert r.skipped and not r.success and r.queries == 1 and calls == [[t]]
    assert r.adversarial == t and r.words_changed == 0
    summary = A.summary([r, A.attack(proba, *REVIEWS[1])])
    assert summary["n"] == 1  # the skipped review counts in accuracy, not in the success rate
    with pytest.raises(ValueError, match="no review was attacked"):
        A.summary([r])


def test_strict_is_harder_than_lax(results):
    assert sum(r.success for r in results["strict"]) < sum(r.success for r in results["lax"])
    for r in results["strict"]:  # same polarity: a strict attack never swaps good for bad
        for a, b in zip(r.original.split(), r.adversarial.split()):
            if a != b:
                assert np.sign(SCORES.get(a.lower(), 0)) * np.sign(SCORES.get(b.lower(), 0)) >= 0


def test_bad_inputs_get_clear_errors():
    with pytest.raises(ValueError, match="non-empty review"):
        A.attack(proba, "   ", 1)
    with pytest.raises(ValueError, match="unknown preset 'medium'"):
        A.attack(proba, REVIEWS[0][0], 1, "medium")
    for bad in (-0.1, 1.5):
        with pytest.raises(ValueError, match="between 0 and 1"):
            A.Constraints(max_fraction=bad)
    with pytest.raises(ValueError, match="source"):
        A.Constraints(source="wordnet")
    with pytest.raises(ValueError, match="2 texts but 1 labels"):
        A.attack_many(proba, ["a", "b"], [1])
    with pytest.raises(ValueError, match="unknown defence"):
        defences.defended_student(None, None, ["a"], [1], [[0, 0]], [0], 0, None, "dropout",
                           A.AdversarialConfig())


def test_attack_many_reads_a_model_back_from_the_cache(tmp_cache):
    texts, labels = [t for t, _ in REVIEWS], [y for _, y in REVIEWS]
    first = A.attack_many(proba, texts, labels, "char", model_key="m1", progress=False)
    calls = []
    again = A.attack_many(lambda t: calls.append(t) or proba(t), texts, labels, "char",
                          model_key="m1", progress=False)
    assert again == first and calls == []
    A.attack_many(lambda t: calls.append(t) or proba(t), texts, labels, "char", model_key="m2",
                  progress=False)
    assert calls, "another model is attacked anew"


def test_fgm_perturbation_has_the_norm_and_spares_padding():
    g = torch.randn(4, 7, 5, generator=torch.Generator().manual_seed(0))
    mask = torch.tensor([[1] * 7, [1] * 3 + [0] * 4, [1] * 5 + [0] * 2, [1] + [0] * 6])
    for eps in (0.1, 1.0, 3.0):
        r = defences.fgm_perturbation(g, mask, eps)
        assert torch.allclose(r.flatten(1).norm(dim=1), torch.full((4,), eps), atol=1e-5)
        assert (r[mask == 0] == 0).all()
        # along the gradient: the step is the masked gradient, rescaled
        assert torch.allclose(r[1, :3] / r[1, :3].norm(), g[1, :3] / g[1, :3].norm(), atol=1e-5)
    with pytest.raises(ValueError, match="epsilon"):
        defences.fgm_perturbation(g, mask, -1)


@pytest.mark.parametrize("steps", [1, 3])
def test_embedding_adversarial_loss(steps):
    texts = ["a good film", "an awful cast", "good and great", "bad and awful"]
    tok = text.train_wordpiece(texts * 5, vocab_size=40, min_frequency=1)
    model = C.small_classifier(models.small_bert(len(tok), hidden=16, layers=1, heads=2, max_len=16),
                               pretrained=False).eval()
    enc = tok(texts, padding=True, return_tensors="pt")
    batch = {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"],
             "labels": torch.tensor([1, 0, 1, 0])}
    ce = lambda logits, b: torch.nn.functional.cross_entropy(logits, b["labels"])  # noqa: E731
    clean = ce(model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]), batch)
    still = defences.embedding_adversarial_loss_fn(ce, 0.0, steps)(model, batch)
    assert still.item() == pytest.approx(2 * clean.item(), rel=1e-5)  # epsilon 0: the clean loss twice
    moved = defences.embedding_adversarial_loss_fn(ce, 1.0, steps)(model, batch)
    assert moved.item() > 2 * clean.item()  # the perturbation raises the loss
    moved.backward()
    assert model.head.weight.grad is not None
    fn = defences.embedding_adversarial_loss_fn(ce, 0.5, steps, spec={"loss": "ce"})
    assert fn.spec["steps"] == steps and fn.spec["base"] == {"loss": "ce"}
    with pytest.raises(ValueError, match="steps"):
        defences.embedding_adversarial_loss_fn(ce, 0.5, 0)


# ---------------------------------------------------------------- defences against lab 05's student

POS = ["a good and great film", "great cast , good story", "moving and excellent", "fine and good acting",
       "an excellent , moving film", "good fun and a great end"]
NEG = ["a bad and awful film", "awful cast , dull story", "boring and terrible", "dull and bad acting",
       "a terrible , boring film", "bad jokes and an awful end"]


@pytest.fixture(scope="module")
def small():
    """A tiny student world: tokenizer, an untrained small BERT, reviews, labels and teacher logits."""
    texts, labels = POS + NEG, np.array([1] * 6 + [0] * 6)
    tok = text.train_wordpiece(texts * 10, vocab_size=60, min_frequency=1)
    mlm = models.small_bert(len(tok), hidden=16, layers=1, heads=2, max_len=16)
    teacher = np.where(labels[:, None] == 1, [[-2.0, 2.0]], [[2.0, -2.0]]).astype(np.float32)
    return tok, mlm, texts, labels, teacher


def test_none_is_lab05_student_and_every_defence_replaces_it(small, tmp_cache):
    from labkit.labs import distill as D
    tok, mlm, texts, labels, teacher = small
    cfg, rows = D.DistillConfig(steps=6, batch_size=4, max_len=16), np.array([0, 1, 6, 7])
    acfg = A.AdversarialConfig(a2t_attacked=4, a2t_rounds=2, aug_rows=2, a2t_rows=2, pgd_steps=2)
    lab05 = kd.student_run(mlm, tok, "distilled + unlabelled", texts, labels, teacher, rows, 0, cfg)
    none, made = defences.defended_student(mlm, tok, texts, labels, teacher, rows, 0, cfg, "none", acfg)
    assert none.folder == lab05.folder and none.hit and made == 0  # the same cached run, not a copy
    made = {d: defences.defended_student(mlm, tok, texts, labels, teacher, rows, 0, cfg, d, acfg)
            for d in defences.DEFENCES[1:]}
    runs = {d: run for d, (run, _) in made.items()}
    assert len({r.folder for r in runs.values()} | {none.folder}) == len(defences.DEFENCES)
    for d, r in runs.items():  # the same recipe: steps, and every clean review in the same batches
        assert r.info["steps"] == cfg.steps and r.info["examples"] == len(texts), d
    again, made_again = defences.defended_student(mlm, tok, texts, labels, teacher, rows, 0, cfg, "A2T", acfg)
    assert again.hit and again.folder == runs["A2T"].folder
    assert made["A2T"][1] is not None and made_again == made["A2T"][1]  # what it made, read back with the run
    assert made["FGM"][1] == made["PGD"][1] == 0


def test_adversarial_mix_keeps_the_clean_batches_and_adds_rows_from_its_start(small):
    from labkit.core import train as T
    from labkit.core.kd import kd_loss_fn
    tok, mlm, texts, labels, teacher = small
    seen = []
    kd = kd_loss_fn(1.0, 1.0)

    def recording(model, batch):
        seen.append((len(batch["input_ids"]), batch["input_ids"][:, 1].tolist()))
        return kd(model, batch)
    adv = (["a bad film"] * 3, np.array([1, 1, 1]), np.tile([[-2.0, 2.0]], (3, 1)))
    calls = []

    def make(model):  # A2T's pool: built from the model being trained, at its step
        calls.append(model.training)
        return adv

    def run(loss_fn):
        seen.clear()
        model = C.small_classifier(mlm, pretrained=False, seed=0)
        dl = C.loader(tok, texts, np.full(12, -1), 16, 4, shuffle=True, seed=3, targets=teacher)
        T.train(model, dl, T.adamw(model, 1e-3), loss_fn=loss_fn, steps=6, progress=False)
        return list(seen)
    plain = run(recording)
    mixed = run(defences.adversarial_mix_loss_fn(recording, tok, {2: adv, 4: make}, rows=2, max_len=16, seed=0,
                                                 spec={}))
    clean = [s for s in mixed if s[0] == 4]
    assert clean == plain  # the loader's batches, untouched and in order
    assert [s[0] for s in mixed] == [4, 4, 4, 2, 4, 2, 4, 2, 4, 2]  # 2 adversarial rows from step 2 on
    assert calls == [True]  # made once, at step 4, from the model (in training mode: mid-run)
    with pytest.raises(ValueError, match="rows"):
        defences.adversarial_mix_loss_fn(recording, tok, {}, rows=0, max_len=16, seed=0, spec={})


def test_polarity_flips_counts_successes_that_bring_in_an_opposite_word():
    won = lambda o, a, y: A.AttackResult(o, a, y, y, 1 - y, 3, 1, len(o.split()))  # noqa: E731
    results = [won("a great film", "a terrible film", 1),        # negative word into a positive review
               won("a great film", "a big film", 1),             # neutral swap
               won("a dull film", "a wonderful film", 0),        # positive word into a negative review
               A.AttackResult("a good film", "a good film", 1, 1, 1, 2, 0, 3)]  # failed: not counted
    assert A.polarity_flips(results) == (2, 3)


def test_the_live_defences_run_on_a_seed_the_study_never_drew():
    from labkit.core import claims
    from labkit.course import study
    drawn = study.load("lab06")["settings"]["seeds"]  # the committed study's test seeds: 0 .. drawn - 1
    for scale in ("smoke", "cpu", "gpu"):
        acfg = A.AdversarialConfig.for_scale(scale)
        assert "none" in acfg.live_defences and set(acfg.live_defences) <= set(defences.DEFENCES), acfg.live_defences
        assert acfg.live_seed >= drawn
    assert A.AdversarialConfig.for_scale("gpu").live_defences == defences.DEFENCES  # the study's arms, live
    slug = {"none": "none", **{arm: s for s, arm in study.DEFENCE_SLUGS.items()}}
    registered = {c.split(".")[-1] for c in claims.registry() if c.startswith("06.consistent_with_study.")}
    assert registered == {slug[a] for a in A.AdversarialConfig.for_scale("cpu").live_defences}  # each cpu arm claimed
