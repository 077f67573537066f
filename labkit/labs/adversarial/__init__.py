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
The defences that train against these attacks are in `labkit.labs.adversarial.defences`.
Leaves out: sentence-encoder constraints at `cpu` (a mean of word vectors stands in), and
attacks that read the attacked model's gradients.
"""
from __future__ import annotations

import functools
import random
from dataclasses import asdict, dataclass
from typing import ClassVar

import numpy as np

from labkit.core import cache, checks
from labkit.core.config import ScaledConfig
from labkit.core.lexicon import (
    Thesaurus,
    frequent_words,
    logic_word,
    protected_positions,
    split_word,
    stop_words,
    typos,
)
from labkit.core.models import minilm_word_table
from labkit.core.text import check_texts


@dataclass
class AdversarialConfig(ScaledConfig):
    """Settings of lab 06 (``AdversarialConfig.for_scale()`` for LABKIT_SCALE). Each model
    is offered a fixed sample of test reviews and attacked on those it gets right."""
    pool: int = 440               # test reviews offered to the student and TF-IDF attacks
    minilm_pool: int = 70         # ... to MiniLM (it scores ~12x fewer reviews a second)
    defence_pool: int = 200       # test reviews each defended model is re-attacked on
    fgm_epsilon: float = 0.1      # L2 norm of the embedding perturbation, per review;
    pgd_epsilon: float = 0.1      # these and the *_rows chosen on validation by `labkit study lab06`
    pgd_steps: int = 3
    a2t_attacked: int = 600       # training reviews attacked by adversarial augmentation and A2T
    a2t_rounds: int = 2           # A2T: times the adversarial reviews are regenerated
    aug_rows: int = 8             # adversarial reviews added to each batch of 32 from half-way on:
    a2t_rows: int = 8             # by adversarial augmentation, and by A2T
    study_epsilons: tuple = (0.05, 0.1, 0.2)    # what `labkit study lab06` compares
    study_rows: tuple = (4, 8, 16)
    study_grid_seeds: int = 3     # seeds of each option while choosing; the chosen get the study's
    live_seed: int = 5            # the lab's live defences: a seed the lab06 study (0-4) never drew
    live_defences: tuple = ("none", "FGM", "A2T")  # trained and re-attacked live; the study has all five
    seed: int = 0

    SCALES: ClassVar[dict] = {  # what differs from the cpu defaults above
        "smoke": dict(pool=12, minilm_pool=3, defence_pool=8, pgd_steps=2, a2t_attacked=8, aug_rows=4, a2t_rows=4,
                      study_epsilons=(0.05, 0.1), study_rows=(4, 8), study_grid_seeds=1),
        "gpu": dict(pool=1000, minilm_pool=1000, defence_pool=1000, a2t_attacked=3000,
                    live_defences=("none", "FGM", "PGD", "adversarial augmentation", "A2T")),
    }


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
    queries = []

    def fn(texts):  # every text scored is a query
        queries.append(len(texts))
        return proba_fn(texts)
    words, p0 = text.split(), checks.probabilities(fn([text]), "proba_fn's output")[0]
    label = int(checks.labels([label], classes=len(p0), name="label",  # "1" or 5: refused, not "skipped"
                              fix=f"proba_fn gives {len(p0)} classes: a label is one of them")[0])
    rng = random.Random(f"{seed}|{text}")
    vectors = WordVectors.load()
    thesaurus = Thesaurus.load() if c.source == "thesaurus" or c.same_polarity else None
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


def attack_many(proba_fn, texts, labels, preset="lax", seed: int = 0, model_key=None,
                progress: bool = True, classes: int | None = None) -> list[AttackResult]:
    """`attack` each review; with ``model_key`` (whatever ``proba_fn``'s scores depend on:
    `attack_model` gives the model, its tokenizer and max length; anything `cache.keyable`)
    the results are kept in the run cache: the same model, reviews, constraints and seed are
    never attacked twice. ``classes``: how many the model predicts (None: 2); every label is
    checked against it before the first attack."""
    texts = check_texts(texts, "no reviews to attack")
    if np.ndim(labels) != 1 or len(labels) != len(texts):
        raise ValueError(f"{len(texts)} texts but {len(labels)} labels")
    labels = checks.labels(labels, classes=classes)
    c = constraints(preset)
    if model_key is None:
        return [AttackResult(**r) for r in _attacks(proba_fn, texts, labels, c, seed, progress)]
    return [AttackResult(**r) for r in _cached_attacks(model_key, texts, labels, c, seed, proba_fn, progress)]


def _attacks(proba_fn, texts, labels, c, seed, progress) -> list[dict]:
    from tqdm.auto import tqdm
    return [asdict(attack(proba_fn, t, int(y), c, seed))
            for t, y in tqdm(list(zip(texts, labels)), desc=f"attack ({c.source})", disable=not progress, leave=False)]


@cache.keyed("attack", exclude=("proba_fn", "progress"), depends=lambda: {"version": VERSION})
def _cached_attacks(model_key, texts, labels, c, seed, proba_fn, progress, *, folder) -> list[dict]:
    """`_attacks`, kept in the run ``folder``: ``model_key`` stands for ``proba_fn``."""
    if not cache.is_done(folder):
        with cache.artifact(folder) as (tmp, _):
            cache.write_json(tmp / "results.json", _attacks(proba_fn, texts, labels, c, seed, progress))
    return cache.read_json(folder / "results.json")


def attack_model(model, tokenizer, texts, labels, preset="lax", seed: int = 0, max_len: int = 64,
                 progress: bool = True) -> list[AttackResult]:
    """`attack_many` on a `labkit.core.classifier.Classifier`, cached by its weights."""
    from labkit.core.classifier import proba_predictor
    key = {"model": model, "tokenizer": tokenizer, "max_len": max_len}  # what the scores depend on
    return attack_many(proba_predictor(model, tokenizer, max_len), texts, labels, preset, seed, model_key=key,
                       progress=progress, classes=model.head.out_features)


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
    polarity, flips, wins = Thesaurus.load().polarity, 0, [r for r in results if r.success]
    for r in wins:
        against = -1 if r.label == positive else 1
        pairs = [(split_word(a)[1].lower(), split_word(b)[1].lower())
                 for a, b in zip(r.original.split(), r.adversarial.split()) if a != b]
        flips += any(polarity.get(new, 0) == against and polarity.get(old, 0) != against for old, new in pairs)
    return flips, len(wins)
