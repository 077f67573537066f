"""Lab 04: data augmentation. EDA (Wei and Zou 2019) with a guard for meaning.

Four token-level operations make new training reviews from the ones you have: synonym
replacement, random insertion (of a synonym of a word already there), random swap and random
deletion. ``strength`` is the share of words changed. `eda` makes ``n_aug`` variants of a
review, `augment` a whole labelled set. Everything is seeded: the same text, seed and
settings give the same variants, whatever else is in the list.

Synonyms come offline from the `thesaurus-en` source (`labkit fetch`): two words are
candidates when Roget's thesaurus puts them in a common category; candidates are ranked by
the cosine similarity of their MiniLM input embeddings (Roget's categories alone are far too
broad: "good" shares one with 8,689 words, "bad" among them), and with ``same_polarity``
a candidate must have the same General Inquirer polarity (positive / negative / neutral).

The guard (``guard=True``, the default) protects the words that carry a review's logic:
negation and contrast words (`labkit.core.text.NEGATION`, `CONTRAST`) and what a negation
negates (up to its first content word: "not a *bad*") are never replaced, deleted or moved,
nothing is inserted inside that run, and synonyms keep their polarity. Without it,
"not good at all" can become "good at all" (deletion) or "not bad at all" (replacement).
Leaves out: back-translation and model-based augmentation (they need a hub model or a GPU).
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from labkit.core import cache, checks, fetch
from labkit.core.config import ScaledConfig
from labkit.core.curves import budget_curve
from labkit.core.lexicon import (COURSE_THESAURUS, LOGIC_RE, NEGATION_RE, Thesaurus, protected_positions, split_token,
                                 stop_words)
from labkit.core.text import check_texts

OPS = ("replace", "insert", "swap", "delete")


@dataclass
class AugmentConfig(ScaledConfig):
    """Lab 04's own settings. Budgets, split caps and the small BERT's training come from lab
    03's `labkit.labs.finetune.FinetuneConfig.for_scale()`, so both labs run the same experiment
    with and without augmentation. ``AugmentConfig.for_scale()`` picks the live seeds."""
    n_aug: int = 4                 # augmented variants per labelled review
    strength: float = 0.1          # share of a review's words each operation changes
    seeds: tuple = (10,)           # the lab's live seeds: at cpu one the lab04 study (seeds 0-9) never drew

    SCALES: ClassVar[dict] = {  # what differs from the cpu defaults above
        "smoke": dict(seeds=(10, 11)),
        # gpu: the study's size, live
        "gpu": dict(seeds=tuple(range(10, 20))),
    }


# ---------------------------------------------------------------- synonyms


# ---------------------------------------------------------------- the four operations


def _with_case(new: str, old: str) -> str:
    return new.capitalize() if old[:1].isupper() else new


def _replaceable(words, guard, thesaurus, stop):
    frozen = protected_positions(words) if guard else set()
    out = []
    for i, w in enumerate(words):
        core = split_token(w)[1]
        if i not in frozen and core.lower() not in stop and thesaurus.synonyms(core, guard):
            out.append(i)
    return out


def _replace(words, n, rng, thesaurus, guard, stop):
    words = list(words)
    spots = _replaceable(words, guard, thesaurus, stop)
    for i in rng.sample(spots, min(n, len(spots))):
        pre, core, post = split_token(words[i])
        words[i] = pre + _with_case(rng.choice(thesaurus.synonyms(core, guard)), core) + post
    return words


def _insert(words, n, rng, thesaurus, guard, stop):
    words = list(words)
    for _ in range(n):
        spots = _replaceable(words, guard, thesaurus, stop)
        if not spots:
            break
        core = split_token(words[rng.choice(spots)])[1]
        new = rng.choice(thesaurus.synonyms(core, guard))
        # with the guard, never inside a protected run ("not | a | bad")
        frozen = protected_positions(words) if guard else set()
        gaps = [g for g in range(len(words) + 1) if not (g - 1 in frozen and g in frozen)]
        words.insert(rng.choice(gaps), new)
    return words


def _swap(words, n, rng, thesaurus, guard, stop):
    words = list(words)
    frozen = protected_positions(words) if guard else set()
    free = [i for i in range(len(words)) if i not in frozen]
    for _ in range(n if len(free) >= 2 else 0):
        i, j = rng.sample(free, 2)
        words[i], words[j] = words[j], words[i]
    return words


def _delete(words, p, rng, thesaurus, guard, stop):
    frozen = protected_positions(words) if guard else set()
    kept = [w for i, w in enumerate(words) if i in frozen or rng.random() >= p]
    return kept or [rng.choice(words)]


def _check_strength(strength: float) -> None:
    if not 0 <= strength <= 1:
        raise ValueError(f"strength={strength}: it is the share of words changed, between 0 and 1")


def apply(op: str, text: str, strength: float = 0.1, seed: int = 0, guard: bool = True,
          thesaurus: Thesaurus | None = None) -> str:
    """One operation (``replace``, ``insert``, ``swap`` or ``delete``) on ``text``, changing
    ``max(1, round(strength * words))`` words (deletion: each word with probability
    ``strength``). Empty text comes back unchanged. ``guard``: see the module docstring
    (it also makes synonyms keep their polarity).

    Example: ``apply("swap", "a b c d", 0.5, seed=1)`` swaps two pairs of words.
    """
    if op not in OPS:
        raise ValueError(f"unknown operation {op!r}; use one of {', '.join(OPS)}")
    if not isinstance(text, str):
        raise TypeError(f"text must be a string, got {type(text).__name__}: {text!r:.60}")
    _check_strength(strength)
    words = text.split()
    if not words or strength == 0:
        return text
    rng = random.Random(f"{seed}|{op}|{text}")  # string seeds are stable across runs
    n = max(1, round(strength * len(words)))
    thesaurus = thesaurus if thesaurus is not None or op in ("swap", "delete") else Thesaurus.load()
    fn = {"replace": _replace, "insert": _insert, "swap": _swap, "delete": _delete}[op]
    return " ".join(fn(words, strength if op == "delete" else n, rng, thesaurus, guard, stop_words()))


def eda(text: str, n_aug: int = 4, strength: float = 0.1, seed: int = 0, guard: bool = True,
        ops=OPS, thesaurus: Thesaurus | None = None) -> list[str]:
    """``n_aug`` augmented variants of ``text``, cycling through ``ops`` (EDA's recipe: each
    variant applies one operation)."""
    if not isinstance(text, str):
        raise TypeError(f"text must be one str (augment() takes a list), got {type(text).__name__}")
    if n_aug < 0:
        raise ValueError(f"n_aug={n_aug}: ask for 0 or more variants")
    bad = [o for o in ops if o not in OPS]
    if bad or not ops:
        raise ValueError(f"unknown operations {bad}; use some of {', '.join(OPS)}")
    return [apply(ops[i % len(ops)], text, strength, seed * 1000 + i, guard, thesaurus)
            for i in range(n_aug)]


def augment(texts, labels, n_aug: int = 4, strength: float = 0.1, seed: int = 0,
            guard: bool = True, ops=OPS) -> tuple[list, np.ndarray]:
    """The labelled set plus ``n_aug`` variants of each review (same label), originals
    first. Example: 100 reviews, n_aug=4 -> 500 reviews."""
    texts = check_texts(texts, "no texts to augment")
    if np.ndim(labels) != 1:
        raise ValueError(f"labels must be 1-D, one per text; got shape {np.shape(labels)}")
    if len(labels) != len(texts):
        raise ValueError(f"{len(texts)} texts but {len(labels)} labels: give one label per text")
    labels = checks.labels(labels, classes=checks.ANY, unlabelled=True)  # copied to the variants, any class
    new = _variants(texts, n_aug, strength, seed, guard, list(ops))  # eda refuses unknown ops, nothing is kept
    return texts + new, np.concatenate([labels, np.repeat(labels, n_aug)])


def _sources() -> dict:
    """What EDA's variants depend on besides the arguments: the fetched thesaurus and MiniLM
    (their archives' hashes), `Thesaurus.load`'s settings, the negation and contrast patterns
    and the stop words that bound a negation's scope (a change to the code of the operations
    themselves raises `labkit.core.cache.VERSIONS` ``augment``)."""
    return {**{k: fetch.REGISTRY[k].archive.sha256 for k in ("thesaurus-en", "minilm")},
            "thesaurus": COURSE_THESAURUS, "negation": NEGATION_RE.pattern, "logic": LOGIC_RE.pattern,
            "stop_words": sorted(stop_words())}


@cache.keyed("augment", depends=_sources)
def _variants(texts, n_aug, strength, seed, guard, ops, *, folder) -> list:
    """`eda`'s variants of every text in order, kept in the run cache: lab 04 augments the same
    sample for TF-IDF and for the small BERT, and a second run reads them back (`_sources`:
    what else is in the key)."""
    if not cache.is_done(folder):
        thesaurus = Thesaurus.load() if {"replace", "insert"} & set(ops) else None
        with cache.artifact(folder) as (tmp, _):
            cache.write_json(tmp / "variants.json",
                             [v for t in texts for v in eda(t, n_aug, strength, seed, guard, ops, thesaurus)])
    return cache.read_json(folder / "variants.json")


def negations(text: str) -> list[str]:
    """The negation words of ``text`` in order, lower case.
    Example: ``negations("Not bad, never dull")`` -> ['not', 'never']."""
    return [m.group(0).lower() for m in NEGATION_RE.finditer(text)]


def negations_kept(originals, variants) -> float:
    """Share of (original, variant) pairs, among originals with a negation word, whose
    variant keeps the same negation words in the same order (1.0 if none has one)."""
    pairs = [(o, v) for o, v in zip(originals, variants) if negations(o)]
    if not pairs:
        return 1.0
    return float(np.mean([negations(o) == negations(v) for o, v in pairs]))


def negation_survival(texts, n_aug: int = 4, strength: float = 0.1, seed: int = 0,
                      guard: bool = True, ops=OPS) -> tuple[int, float]:
    """Augment the reviews of ``texts`` that have a negation word; return how many there
    are and the share of their variants that keep their negation words (`negations_kept`).
    Example: on lab 04's training reviews, guard on -> (2071, 1.0)."""
    negated = [t for t in check_texts(texts, "no texts to check") if negations(t)]
    if not negated:
        return 0, 1.0
    variants, _ = augment(negated, np.zeros(len(negated), int), n_aug, strength, seed, guard, ops)
    originals = [t for t in negated for _ in range(n_aug)]
    return len(negated), negations_kept(originals, variants[len(negated):])


def paired_gains(fit_score, texts, labels, budgets, seeds, n_aug: int = 4,
                 strength: float = 0.1, guard: bool = True) -> dict:
    """Lab 04's experiment. For each label budget and seed, one stratified sample of the
    reviews is trained on as it is ("plain") and with ``n_aug`` variants of each review
    ("augmented"): same rows, same seed, same settings, so the gain can be read seed by seed.
    ``fit_score(texts, labels, seed) -> accuracy``; ``seeds``: a count or the seeds themselves
    (`labkit.core.curves.budget_curve`); a budget of None is all the reviews (the seeds then differ
    only in the augmentation and the model's initialisation).
    Returns {"plain": {n: [accuracy per seed]}, "augmented": {...}}.
    """
    texts = np.asarray(check_texts(texts, "no texts to augment"), dtype=object)
    labels = checks.labels(labels, n=len(texts), classes=checks.ANY, why="a learning curve")

    def arm(augmented):
        def run(rows, seed):
            x, y = list(texts[rows]), labels[rows]
            if augmented:
                x, y = augment(x, y, n_aug, strength, seed=seed, guard=guard)
            return fit_score(x, y, seed)
        return run
    return {name: budget_curve(arm(name == "augmented"), labels, budgets, seeds, seeds_on_all=True)
            for name in ("plain", "augmented")}


# ---------------------------------------------------------------- an ipywidgets explorer
# It prints its answer first, so a notebook run headless shows what a reader would get by typing.

def augment_explorer(text: str = "not a bad film at all, but the plot is thin and slow",
                     strength: float = 0.2, n_aug: int = 4):
    """Type a review, move the strength slider, tick the guard: see EDA's variants."""
    def show(review, s, guard):
        try:
            variants = eda(review, n_aug, s, seed=0, guard=guard)
        except (TypeError, ValueError) as e:
            return f"{e}"
        return "\n".join(f"{OPS[i % len(OPS)]:>8}: {v}" for i, v in enumerate(variants))

    print(f"strength {strength}, guard on:\n{show(text, strength, True)}")  # the fallback
    try:
        import ipywidgets as w
    except ImportError:
        return None
    box = w.Text(value=text, description="review", continuous_update=False,
                 layout=w.Layout(width="80%"))
    slider = w.FloatSlider(value=strength, min=0.0, max=0.5, step=0.05, description="strength",
                           continuous_update=False)
    guard = w.Checkbox(value=True, description="guard negations")
    out = w.Output()

    def update(_=None):
        out.clear_output()
        with out:
            print(show(box.value, slider.value, guard.value))

    for control in (box, slider, guard):
        control.observe(update, "value")
    return w.VBox([box, w.HBox([slider, guard]), out])
