"""Lab 06: adversarial robustness. Word- and character-level attacks, and defences.

`attack` rewrites a review the model gets right until its label flips, TextAttack's greedy
word-importance search: rank the words by how much deleting each lowers the true class's
probability; most important first, score every candidate for the word in one batch and
keep the best, until the label flips or ``max_fraction`` of the words have changed.
`Constraints` say where candidates come from and what they must satisfy; `PRESETS` pins
``lax`` (30 nearest words in MiniLM's input-embedding space), ``strict`` (lab 04's
thesaurus, same polarity, cosine and sentence-similarity limits) and ``char`` (typos,
DeepWordBug style). Stop words, negation and contrast words and a negation's scope are
never touched; every text scored is a query, counted. `attack_many` is cached.
Defences go through the one training loop and replace lab 05's student with the same recipe
and the same clean batches: `embedding_adversarial_loss_fn` is a ``loss_fn`` adding the loss
at word embeddings moved by `fgm_perturbation` (FGM, Miyato et al. 2017) or by K projected
steps (PGD); `adversarial_mix_loss_fn` adds adversarial reviews to every batch, made once
against the finished student (adversarial augmentation) or regenerated against the model
being trained (A2T, Yoo & Qi 2021). `defended_student` builds each, cached.
Leaves out: sentence-encoder constraints at `cpu` (a mean of word vectors stands in),
certified defences, and attacks that read the attacked model's gradients.
"""
from __future__ import annotations

import functools
import json
import random
from dataclasses import asdict, dataclass, replace

import numpy as np

from . import cache
from .augment import Thesaurus, frequent_words, logic_word, protected_positions, stop_words
from .env import scale as current_scale
from .models import minilm_word_table
from .text import check_texts


@dataclass
class AdversarialConfig:
    """Settings of lab 06 (``AdversarialConfig.for_scale()`` for LABKIT_SCALE). Each model
    is offered a fixed sample of test reviews and attacked on those it gets right."""
    pool: int = 440               # test reviews offered to the student and TF-IDF attacks
    minilm_pool: int = 70         # ... to MiniLM (it scores ~12x fewer reviews a second)
    defence_pool: int = 200       # test reviews each defended model is re-attacked on
    seeds: int = 1                # seeds of each defence the lab trains live (the study: 5)
    fgm_epsilon: float = 0.05     # L2 norm of the embedding perturbation, per review;
    pgd_epsilon: float = 0.05     # these and adv_rows chosen on validation by `labkit study lab06`
    pgd_steps: int = 3
    a2t_attacked: int = 600       # training reviews attacked by adversarial augmentation and A2T
    a2t_rounds: int = 2           # A2T: times the adversarial reviews are regenerated
    adv_rows: int = 8             # adversarial reviews added to each batch of 32, from half-way on
    study_epsilons: tuple = (0.05, 0.1, 0.2)    # what `labkit study lab06` compares
    study_adv_rows: tuple = (4, 8, 16)
    study_grid_seeds: int = 3     # seeds of each option while choosing; the chosen get the study's
    seed: int = 0

    @classmethod
    def for_scale(cls, scale: str | None = None) -> "AdversarialConfig":
        scale = scale or current_scale()
        if scale == "smoke":
            return cls(pool=12, minilm_pool=3, defence_pool=8, pgd_steps=2, a2t_attacked=8, adv_rows=4,
                       study_epsilons=(0.1,), study_adv_rows=(4,), study_grid_seeds=1)
        if scale == "gpu":
            return cls(pool=1000, minilm_pool=1000, defence_pool=1000, a2t_attacked=3000)
        return cls()


SOURCES = ("embedding", "thesaurus", "char")
VERSION = 1  # bump when the search changes what an attack returns (keys cached attacks)


@dataclass(frozen=True)
class Constraints:
    """Where candidates come from ("embedding": the ``k`` nearest words in MiniLM's input
    space; "thesaurus": lab 04's synonyms; "char": ``k`` typos) and what they must satisfy:
    word-vector cosine >= ``min_cosine``; at most ``max_fraction`` of the review's words
    changed (rounded down); the same General Inquirer polarity; a cosine >= ``min_sentence_
    similarity`` between the mean word vectors of the original and new review (None: no check)."""
    source: str = "embedding"
    k: int = 30
    min_cosine: float = 0.35
    max_fraction: float = 0.2
    same_polarity: bool = False
    min_sentence_similarity: float | None = None

    def __post_init__(self):
        if self.source not in SOURCES:
            raise ValueError(f"source={self.source!r}; use one of {', '.join(SOURCES)}")
        if not 0 <= self.max_fraction <= 1:
            raise ValueError(f"max_fraction={self.max_fraction}: the share of words changed is between 0 and 1")
        if self.k < 1:
            raise ValueError(f"k={self.k}: ask for at least one candidate per word")


PRESETS = {
    "lax": Constraints("embedding", k=30, min_cosine=0.35, max_fraction=0.2),
    "strict": Constraints("thesaurus", k=5, min_cosine=0.5, max_fraction=0.1, same_polarity=True,
                          min_sentence_similarity=0.9),
    "char": Constraints("char", k=8, min_cosine=0.0, max_fraction=0.2),
}


def constraints(preset) -> Constraints:
    """A preset's `Constraints` by name, or ``preset`` itself."""
    if not isinstance(preset, Constraints) and preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; use one of {', '.join(PRESETS)} or a Constraints(...)")
    return preset if isinstance(preset, Constraints) else PRESETS[preset]


# ---------------------------------------------------------------- word vectors and candidates

class WordVectors:
    """MiniLM's input word embeddings (unit length) for whole-word entries of its vocabulary
    that are common English words: nearest neighbours, word cosine, and a cheap sentence
    vector (the mean of the vectors of a text's known words)."""

    def __init__(self, words: list, matrix: np.ndarray):
        self.words, self.matrix = words, matrix
        self.index = {w: i for i, w in enumerate(words)}
        self._near: dict = {}

    @classmethod
    @functools.lru_cache(maxsize=1)
    def load(cls) -> "WordVectors":
        vocab, table = minilm_word_table()
        common = frequent_words()
        keep = [i for i, w in enumerate(vocab) if w.isalpha() and w.isascii() and len(w) > 1
                and w in common and not logic_word(w) and w not in stop_words()]
        return cls([vocab[i] for i in keep], table[keep].astype(np.float32))

    def neighbours(self, word: str, k: int) -> list[tuple[str, float]]:
        """The ``k`` nearest words to ``word`` with their cosines, nearest first."""
        if (key := (word, k)) not in self._near:
            i, self._near[key] = self.index.get(word), []
            if i is not None:
                sims = self.matrix @ self.matrix[i]
                sims[i] = -1
                best = np.argsort(-sims, kind="stable")[:k]
                self._near[key] = [(self.words[j], float(sims[j])) for j in best]
        return self._near[key]

    def cosine(self, a: str, b: str) -> float | None:
        i, j = self.index.get(a), self.index.get(b)
        return None if i is None or j is None else float(self.matrix[i] @ self.matrix[j])

    def sentence(self, text: str) -> np.ndarray:
        rows = [self.index[w] for w in (split_word(t)[1].lower() for t in text.split()) if w in self.index]
        v = self.matrix[rows].mean(0) if rows else np.zeros(self.matrix.shape[1], np.float32)
        return v / max(float(np.linalg.norm(v)), 1e-12)


def split_word(token: str) -> tuple[str, str, str]:
    """(leading punctuation, the word, trailing punctuation) of a whitespace token."""
    start = next((i for i, c in enumerate(token) if c.isalnum()), len(token))
    end = len(token) - next((i for i, c in enumerate(reversed(token)) if c.isalnum()), len(token))
    return token[:start], token[start:max(start, end)], token[max(start, end):]


def typos(word: str, k: int, rng: random.Random) -> list[str]:
    """``k`` different one-letter typos of ``word`` (swap two neighbouring inner letters,
    delete, insert or substitute one), drawn with ``rng``; first and last letters kept.
    Example: ``typos("great", 3, random.Random(0))`` -> e.g. ['graet', 'gret', 'grexat']."""
    inner, letters = range(1, len(word) - 1), "abcdefghijklmnopqrstuvwxyz"
    out = {word[:i] + word[i + 1:] for i in inner}                                   # delete
    out |= {word[:i] + word[i + 1] + word[i] + word[i + 2:] for i in inner if i + 2 < len(word)}  # swap
    for _ in range(4 * k if len(word) > 2 else 0):
        i, c = rng.choice(inner), rng.choice(letters)
        out |= {word[:i] + c + word[i:], word[:i] + c + word[i + 1:]}            # insert, substitute
    out.discard(word)
    return rng.sample(sorted(out), min(k, len(out)))


def candidates(word: str, c: Constraints, rng: random.Random, vectors: WordVectors,
               thesaurus: Thesaurus | None) -> list[str]:
    """The replacements ``c`` allows for ``word`` (lower case), before the sentence check."""
    w = word.lower()
    if c.source == "char":
        return typos(w, c.k, rng) if len(w) > 3 else []
    if c.source == "embedding":
        pairs = vectors.neighbours(w, c.k)
    else:
        pairs = [(s, vectors.cosine(w, s)) for s in thesaurus.synonyms(w, same_polarity=False)[:c.k]]
    out = [s for s, cos in pairs if cos is not None and cos >= c.min_cosine and s != w]
    pol = thesaurus.polarity if c.same_polarity and thesaurus is not None else None
    return [s for s in out if pol is None or pol.get(s, 0) == pol.get(w, 0)]


# ---------------------------------------------------------------- the attack

@dataclass
class AttackResult:
    """One attacked review: the texts, the true label, the model's label before and after,
    queries (texts scored, the original included), words changed of ``words``; ``skipped``:
    the model got the original wrong, so it was not attacked."""
    original: str
    adversarial: str
    label: int
    before: int
    after: int
    queries: int
    words_changed: int
    words: int
    skipped: bool = False

    @property
    def success(self) -> bool:
        return not self.skipped and self.after != self.label


def attack(proba_fn, text: str, label: int, preset="lax", seed: int = 0) -> AttackResult:
    """Attack one review (see the module docstring). ``proba_fn(texts) -> (n, classes)``
    probabilities. A review the model gets wrong is returned ``skipped``, after 1 query."""
    c = constraints(preset)
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"text={text!r}: an attack needs a non-empty review")
    rng = random.Random(f"{seed}|{text}")
    vectors = WordVectors.load()
    thesaurus = Thesaurus.load() if c.source == "thesaurus" or c.same_polarity else None
    queries = []

    def fn(texts):  # every text scored is a query
        queries.append(len(texts))
        return proba_fn(texts)
    words, p0 = text.split(), fn([text])[0]
    before = int(p0.argmax())
    result = AttackResult(text, text, int(label), before, before, 0, 0, len(words))
    if before != label:
        result.skipped, result.queries = True, sum(queries)
        return result
    budget = int(c.max_fraction * len(words) + 1e-9)
    frozen = protected_positions(words)
    cores = [split_word(w)[1] for w in words]
    spots = [i for i, w in enumerate(cores) if i not in frozen and w.isalpha() and w.lower() not in stop_words()]
    if budget and len(spots):
        deleted = [" ".join(words[:i] + words[i + 1:]) for i in spots]
        drop = p0[label] - fn(deleted)[:, label]
        order = [spots[j] for j in np.argsort(-drop, kind="stable")]
        origin = vectors.sentence(text) if c.min_sentence_similarity else None
        current, p_true, changed = list(words), p0[label], 0
        for i in order:
            pre, core, post = split_word(words[i])
            subs = [pre + (s.capitalize() if core[:1].isupper() else s) + post
                    for s in candidates(core, c, rng, vectors, thesaurus)]
            texts = [" ".join(current[:i] + [s] + current[i + 1:]) for s in subs]
            if origin is not None:
                texts = [t for t in texts if float(vectors.sentence(t) @ origin) >= c.min_sentence_similarity]
            if not texts:
                continue
            p = fn(texts)
            best = int(np.argmin(p[:, label]))
            if p[best, label] >= p_true:
                continue
            current, p_true, changed = texts[best].split(), p[best, label], changed + 1
            result.adversarial, result.after = texts[best], int(p[best].argmax())
            if result.after != label or changed >= budget:
                break
        result.words_changed = changed
    result.queries = sum(queries)
    return result


def attack_many(proba_fn, texts, labels, preset="lax", seed: int = 0, model_key: str | None = None,
                progress: bool = True) -> list[AttackResult]:
    """`attack` each review; with ``model_key`` (e.g. ``cache.fingerprint(model)``) the
    results are kept in the run cache: the same model, reviews, constraints and seed are
    never attacked twice."""
    from tqdm.auto import tqdm
    texts = check_texts(texts, "no reviews to attack")
    labels = np.asarray(labels)
    if len(labels) != len(texts):
        raise ValueError(f"{len(texts)} texts but {len(labels)} labels")
    c = constraints(preset)

    def compute():
        return [asdict(attack(proba_fn, t, int(y), c, seed))
                for t, y in tqdm(list(zip(texts, labels)), desc=f"attack ({c.source})",
                                 disable=not progress, leave=False)]
    if model_key is None:
        return [AttackResult(**r) for r in compute()]
    folder = cache.run_dir("attack", cache.key(model=model_key, texts=texts, labels=labels,
                                               constraints=asdict(c), seed=seed, version=VERSION))
    if not cache.is_done(folder):
        with cache.atomic_folder(folder) as tmp:
            cache.write_json(tmp / "results.json", compute())
            cache.mark_done(tmp)
    return [AttackResult(**r) for r in json.loads((folder / "results.json").read_text())]


def attack_model(model, tokenizer, texts, labels, preset="lax", seed: int = 0, max_len: int = 64,
                 progress: bool = True) -> list[AttackResult]:
    """`attack_many` on a `labkit.classifier.Classifier`, cached by its weights."""
    from .classifier import proba_predictor
    fn, key = proba_predictor(model, tokenizer, max_len), cache.fingerprint(model)
    return attack_many(fn, texts, labels, preset, seed, model_key=key, progress=progress)


def summary(results: list[AttackResult]) -> dict:
    """success_rate (of the attacked reviews), accuracy_under_attack (of all, wrong ones too),
    words_changed (mean share, successes), queries (mean per attacked review), n (attacked)."""
    attacked = [r for r in results if not r.skipped]
    if not attacked:
        raise ValueError("no review was attacked: the model got every one wrong")
    wins = [r for r in attacked if r.success]
    return {"success_rate": len(wins) / len(attacked),
            "accuracy_under_attack": (len(attacked) - len(wins)) / len(results),
            "words_changed": float(np.mean([r.words_changed / r.words for r in wins])) if wins else 0.0,
            "queries": float(np.mean([r.queries for r in attacked])), "n": len(attacked)}


def polarity_flips(results: list[AttackResult], positive: int = 1) -> tuple[int, int]:
    """(successes that bring in an opposite-polarity word, successes): a success counts when a
    word it swapped in has the General Inquirer polarity opposite to the review's label (a
    negative word in a positive review, ``positive`` being the positive class) and the word
    it replaced did not. Such a flip may have changed what the review says, not fooled the
    model. Example: "a great film" -> "a terrible film" (label positive) counts."""
    from .augment import Thesaurus
    polarity, flips, wins = Thesaurus.load().polarity, 0, [r for r in results if r.success]
    for r in wins:
        against = -1 if r.label == positive else 1
        pairs = [(split_word(a)[1].lower(), split_word(b)[1].lower())
                 for a, b in zip(r.original.split(), r.adversarial.split()) if a != b]
        flips += any(polarity.get(new, 0) == against and polarity.get(old, 0) != against for old, new in pairs)
    return flips, len(wins)


# ---------------------------------------------------------------- defences

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
    """A ``loss_fn(model, batch)`` for `labkit.train.train`: the clean loss plus the loss at
    word embeddings moved by at most ``epsilon`` (L2 per review) to raise it. ``steps=1``:
    FGM, one step along the normalised gradient; ``steps=K``: PGD, K steps of
    ``step_size`` (default epsilon / 2), each projected back into the epsilon ball.
    ``base_loss(logits, batch)`` is the loss without attack (cross entropy, or lab 05's
    `kd_loss`); ``spec`` names it for the run cache."""
    import torch
    if steps < 1:
        raise ValueError(f"steps={steps}: at least one (1 = FGM)")
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
    return loss_fn


A2T_ATTACK = replace(PRESETS["lax"], k=10)  # the cheaper attack the training-time defences use
DEFENCES = ("none", "FGM", "PGD", "adversarial augmentation", "A2T")


def adversarial_mix_loss_fn(base_loss_fn, tokenizer, pools: dict, rows: int, max_len: int, seed: int,
                            spec: dict):
    """A ``loss_fn(model, batch)`` for `labkit.train.train` that adds adversarial reviews to
    the clean batches: from the first step in ``pools`` on, ``rows`` reviews drawn (without
    replacement, ``seed``) from the current pool are scored with ``base_loss_fn`` too, and the
    two losses are weighted by their rows, as if the adversarial rows were appended to the
    batch. The clean batches are the loader's, untouched: every training review is seen as
    often as without the defence. ``pools``: {step: pool or ``make(model) -> pool``}, a pool
    being (texts, labels, teacher logits) of adversarial reviews; a callable is called with
    the model being trained at that step (A2T: the adversarial reviews are regenerated against
    the current model). One loss_fn trains one run: it counts its own steps."""
    import torch
    from .classifier import loader
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
    replacements, each cached. "none" is lab 05's student itself (`distill.student_run`, the
    same cached run). Every defence trains from the same initialisation with the same recipe
    and the same clean batches, in the same order, so every arm sees every training review as
    often as "none" did; only what is added differs:

    - "FGM" / "PGD": the loss at word embeddings moved by ``acfg.fgm_epsilon`` /
      ``pgd_epsilon`` (`embedding_adversarial_loss_fn`), at every step;
    - "adversarial augmentation": ``acfg.a2t_attacked`` training reviews attacked once, with
      the cheaper `A2T_ATTACK`, against the finished undefended student (what a team can do
      after deploying it); from half-way on, ``acfg.adv_rows`` of the successes are added to
      every batch (`adversarial_mix_loss_fn`), with their originals' teacher logits;
    - "A2T" (Yoo & Qi 2021): the same number of reviews attacked, but against the model being
      trained, regenerated ``acfg.a2t_rounds`` times from half-way on, each round on fresh
      reviews; the current round's successes are added as above.

    Returns (run, number of adversarial reviews made)."""
    import copy
    from .classifier import cached_fine_tune, small_classifier
    from .distill import kd_logits_loss, kd_loss_fn, student_run
    if defence not in DEFENCES:
        raise ValueError(f"unknown defence {defence!r}; use one of {', '.join(DEFENCES)}")
    texts = np.asarray(check_texts(texts, "no training reviews"), dtype=object)
    none = student_run(mlm, tokenizer, "distilled + unlabelled", texts, labels, teacher, rows, seed, cfg)
    if defence == "none":
        return none, 0
    teacher, y = np.asarray(teacher, dtype=np.float32), np.full(len(labels), -1)
    y[rows] = np.asarray(labels)[rows]
    kd, k, start = kd_loss_fn(cfg.temperature, cfg.alpha), max(2, int(np.max(labels)) + 1), cfg.steps // 2
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
        loss_fn = adversarial_mix_loss_fn(kd, tokenizer, pools, acfg.adv_rows, cfg.max_len, seed,
                                          {**kd.spec, "defence": defence, "attacked": len(pick), "start": start,
                                           "attack": asdict(A2T_ATTACK), "version": VERSION, **source})
    run = cached_fine_tune(lambda: (tokenizer, small_classifier(mlm, pretrained=False, seed=seed, num_labels=k)),
                           list(texts), y, name="defence", lr=cfg.lr, steps=cfg.steps, batch_size=cfg.batch_size,
                           max_len=cfg.max_len, seed=seed, loss_fn=loss_fn, targets=teacher)
    if defence == "A2T":  # how many it made, kept beside the run (None: lost, the run is still valid)
        side = run.folder / "adversarial.json"
        if not run.hit:
            cache.write_json(side, {"made": sum(made_by_round.values()), "by_step": made_by_round})
        made = json.loads(side.read_text())["made"] if side.exists() else None
    return run, made
