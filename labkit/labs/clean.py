"""Lab 01: data quality. Find and fix what is wrong with raw reviews, and measure each fix.

Each tool does one thing and reports what it did: `find_duplicates`,
`find_near_duplicates`, `count_leaks`, `find_contradictions`, `find_pii` / `scrub_pii`,
`find_label_issues` (confident learning, via cleanlab), `label_noise_draw` (what fixing the
flagged labels is worth, one noise draw). Seeded injectors (`inject_pii`,
`corrupt`, `inject_label_noise`) plant known problems so the lab can score each tool.
`DataConfig` holds lab 01's settings. Leaves out: loading and splitting (`labkit.core.data`).
"""
from __future__ import annotations

import html
import random
import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from labkit.core import cache, checks
from labkit.core.config import ScaledConfig
from labkit.core.curves import FROZEN_C, C, baseline, baseline_accuracy
from labkit.core.data import DataError, dedup_key
from labkit.core.env import REFERENCE
from labkit.core.text import check_texts


@dataclass
class DataConfig(ScaledConfig):
    """Settings of lab 01. ``DataConfig.for_scale()`` picks them for LABKIT_SCALE."""
    n_reviews: int | None = None  # English reviews used; None = all 12,752
    pii_rate: float = 0.05        # share of reviews that get one synthetic PII string
    corrupt_rate: float = 0.05    # share that get markup / entities / mojibake
    noise_rate: float = 0.15      # share of training labels flipped
    folds: int = 10               # cross-validation folds for confident learning
    noise_seeds: tuple = (10,)    # the live label-noise draws' seeds (the lab01 study drew 0-9)
    embeddings: bool = True       # add MiniLM features to confident learning (~2 min once)
    curve_sizes: tuple = (100, 250, 500, 1000, 2000, 4000, None)  # None = all training labels
    curve_seeds: int = 3          # repeats per learning-curve point
    seed: int = 0

    SCALES: ClassVar[dict] = {  # what differs from the cpu defaults above
        "smoke": dict(n_reviews=2500, folds=3, embeddings=False, curve_sizes=(100, 500, None), curve_seeds=1),
        # gpu: the study's size, live
        "gpu": dict(noise_seeds=tuple(range(10, 20))),
    }
    DRY_RUN: ClassVar[dict] = {"n_reviews": 2500}  # lab 01 splits the reviews itself


# ---------------------------------------------------------------- duplicates

def find_duplicates(texts) -> list[list[int]]:
    """Groups (lists of indices, first-seen order) of texts with the same `dedup_key`.

    Example: ``["A b", "x", "a B!"]`` -> ``[[0, 2]]``.
    """
    groups = defaultdict(list)
    for i, t in enumerate(check_texts(texts, "no texts to compare")):
        groups[dedup_key(t)].append(i)
    return [g for g in groups.values() if len(g) > 1]


def find_near_duplicates(texts, threshold: float = 0.85, batch: int = 1000):
    """Pairs (i, j, cosine) with i < j whose word/bigram TF-IDF cosine is >= threshold
    and whose `dedup_key`s differ (exact duplicates are `find_duplicates`' job)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    keys = [dedup_key(t) for t in check_texts(texts, "no texts to compare")]
    x = TfidfVectorizer(ngram_range=(1, 2)).fit_transform(keys)  # words and word pairs
    pairs = []
    for start in range(0, x.shape[0], batch):
        sims = (x[start:start + batch] @ x.T).tocoo()       # (batch, n) cosines
        hit = (sims.data >= threshold) & (sims.row + start < sims.col)
        for i, j, s in zip(sims.row[hit] + start, sims.col[hit], sims.data[hit]):
            if keys[i] != keys[j]:
                pairs.append((int(i), int(j), float(s)))
    return sorted(pairs)


def count_leaks(train_texts, test_texts) -> int:
    """How many test texts also occur in training after normalisation (`dedup_key`).

    Example: ``count_leaks(["Great film!"], ["great film", "new"])`` -> 1.
    """
    keys = {dedup_key(t) for t in checks.column(train_texts)}
    return sum(dedup_key(t) in keys for t in checks.column(test_texts))


def find_contradictions(texts, labels) -> dict[str, list[int]]:
    """Texts (by `dedup_key`) that occur with more than one label -> their row indices."""
    texts, labels = check_texts(texts, "no texts to compare"), checks.column(labels)
    if len(texts) != len(labels):
        raise DataError(f"texts and labels must align: {len(texts)} texts but {len(labels)} labels")
    rows, seen = defaultdict(list), defaultdict(set)
    for i, (t, y) in enumerate(zip(texts, labels)):
        k = dedup_key(t)
        rows[k].append(i)
        seen[k].add(y)
    return {k: rows[k] for k in rows if len(seen[k]) > 1}


# ---------------------------------------------------------------- PII

PII_PATTERNS = {
    "EMAIL": re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b"),
    "URL": re.compile(r"\b(?:https?://|www\.)[^\s<>\"']+[^\s<>\"'.,;:!?)]"),
    "ID": re.compile(r"\b\d{3}-\d{2}-\d{4}\b|\b(?:\d{4}[ -]?){3}\d{4}\b|\b\d{9,}\b"),
    "PHONE": re.compile(r"(?<![\w-])(?:\+\d{1,3}[ .-]?)?(?:\(\d{2,4}\)[ .-]?|\d{2,4}[ .-])"
                        r"\d{3,4}[ .-]\d{3,4}\b"),
}


def find_pii(text: str) -> list[tuple[int, int, str]]:
    """Non-overlapping (start, end, kind) spans of emails, URLs, ID-like numbers and phones.

    Example: ``find_pii("mail a@b.com")`` -> ``[(5, 12, 'EMAIL')]``.
    """
    if not isinstance(text, str):
        raise TypeError(f"find_pii() takes a str, got {type(text).__name__}")
    spans = []
    for kind, pattern in PII_PATTERNS.items():  # earlier kinds win overlaps
        for m in pattern.finditer(text):
            if not any(m.start() < e and s < m.end() for s, e, _ in spans):
                spans.append((m.start(), m.end(), kind))
    return sorted(spans)


def scrub_pii(text: str) -> tuple[str, Counter]:
    """Replace each PII span by ``[KIND]``; returns the text and counts per kind."""
    counts = Counter()
    for s, e, kind in reversed(find_pii(text)):
        text = text[:s] + f"[{kind}]" + text[e:]
        counts[kind] += 1
    return text, counts


def _injectable(texts, rate: float) -> list:
    """The texts as a list, after checking what the seeded injectors need."""
    if not 0 <= rate <= 1:
        raise DataError(f"rate must be between 0 and 1, got {rate}")
    texts = list(checks.column(texts))
    bad = [i for i, t in enumerate(texts) if not isinstance(t, str)]
    if bad:
        raise DataError(f"texts must be strings; items {bad[:5]} are {type(texts[bad[0]]).__name__}")
    return texts


_FIRST = ["anna", "john", "li.wei", "maria", "d.smith", "k_jones", "sam99", "olga.p"]
_DOMAINS = ["gmail.com", "example.org", "mail.co.uk", "uni-bonn.de", "yahoo.fr"]


def _fake_pii(rng: random.Random) -> tuple[str, str]:
    d = lambda n: "".join(str(rng.randrange(10)) for _ in range(n))  # noqa: E731
    kind = rng.choice(["EMAIL", "PHONE", "URL", "ID"])
    if kind == "EMAIL":
        return kind, f"{rng.choice(_FIRST)}{rng.choice(['', d(2)])}@{rng.choice(_DOMAINS)}"
    if kind == "PHONE":
        return kind, rng.choice([f"({d(3)}) {d(3)}-{d(4)}", f"{d(3)}-{d(3)}-{d(4)}",
                                 f"+1 {d(3)} {d(3)} {d(4)}", f"+44 20 {d(4)} {d(4)}",
                                 f"0{d(3)} {d(3)} {d(4)}", f"{d(3)}.{d(3)}.{d(4)}"])
    if kind == "URL":
        return kind, rng.choice([f"https://www.{rng.choice(['myblog', 'filmfan', 'reviews-r-us'])}"
                                 f".com/post/{d(4)}", f"www.cinema{d(2)}.net",
                                 f"http://example.org/u/{rng.choice(_FIRST)}"])
    return kind, rng.choice([f"{d(3)}-{d(2)}-{d(4)}", f"{d(4)} {d(4)} {d(4)} {d(4)}", d(10)])


_TEMPLATES = ["{t} Contact me at {p}.", "{t} (reach me: {p})", "{p} - {t}", "{t} More at {p}",
              "{t} My number/ref is {p}, call any time."]


def inject_pii(texts, rate: float = 0.05, seed: int = 0):
    """Add one synthetic email/phone/URL/ID to a ``rate`` share of texts.

    Returns (new_texts, spans) with spans = [(row, start, end, kind)] of what was planted.
    """
    texts = _injectable(texts, rate)
    rng = random.Random(seed)
    rows = rng.sample(range(len(texts)), round(rate * len(texts)))
    spans = []
    for r in sorted(rows):
        kind, value = _fake_pii(rng)
        template = rng.choice(_TEMPLATES)
        new = template.format(t=texts[r], p=value)
        start = new.index(value) if template.startswith("{p}") else new.rindex(value)
        texts[r] = new
        spans.append((r, start, start + len(value), kind))
    return texts, spans


def pii_scores(texts, planted) -> dict:
    """Precision and recall of `find_pii` against planted spans [(row, start, end, kind)].

    A planted span counts as found when a detected span overlaps it (whatever kind it is
    given: scrubbed is scrubbed); a detected span is a true positive when it overlaps a
    planted one. ``by_kind`` has the recall of each planted kind and the precision of each
    detected kind; ``missed`` and ``false_alarms`` list the texts of the spans, for reading.
    """
    by_row = defaultdict(list)
    for r, s, e, k in planted:
        by_row[r].append((s, e, k))
    kinds = defaultdict(lambda: {"planted": 0, "recalled": 0, "found": 0, "true": 0})
    missed, false_alarms = [], []
    for r, t in enumerate(texts):
        found = find_pii(t)
        for s, e, k in found:
            hit = any(s < pe and ps < e for ps, pe, _ in by_row[r])
            kinds[k]["found"] += 1
            kinds[k]["true"] += hit
            if not hit:
                false_alarms.append((r, t[s:e], k))
        for ps, pe, k in by_row[r]:
            hit = any(s < pe and ps < e for s, e, _ in found)
            kinds[k]["planted"] += 1
            kinds[k]["recalled"] += hit
            if not hit:
                missed.append((r, t[ps:pe], k))
    n_found = sum(v["found"] for v in kinds.values())
    by_kind = {k: {"planted": v["planted"], "recall": v["recalled"] / v["planted"] if v["planted"] else None,
                   "found": v["found"], "precision": v["true"] / v["found"] if v["found"] else None}
               for k, v in sorted(kinds.items())}
    return {"precision": 1 - len(false_alarms) / n_found if n_found else 1.0,
            "recall": 1 - len(missed) / len(planted) if planted else 1.0,
            "planted": len(planted), "found": n_found, "by_kind": by_kind,
            "missed": missed, "false_alarms": false_alarms}


def challenge(name: str):
    """A hand-written test set the tools were not built from (``labkit/reference``):
    ``"pii"`` -> (texts, planted spans) for `pii_scores`, including ordinary texts full of
    numbers; ``"corruption"`` -> [{kind, clean, corrupted}] for `normalize`."""
    import json
    if name not in ("pii", "corruption"):
        raise ValueError(f"unknown challenge set {name!r}: use 'pii' or 'corruption'")
    path = REFERENCE / f"{name}_challenge.jsonl"
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    if name == "corruption":
        return rows
    return [r["text"] for r in rows], [(i, s, e, k) for i, r in enumerate(rows) for s, e, k in r["pii"]]


# ---------------------------------------------------------------- corruption and label noise

def corrupt(texts, rate: float = 0.05, seed: int = 0):
    """Plant markup, HTML entities or mojibake in a ``rate`` share of texts.

    Returns (new_texts, rows changed). `normalize` should undo all three.
    """
    texts = _injectable(texts, rate)
    rng = random.Random(seed)
    rows = sorted(rng.sample(range(len(texts)), round(rate * len(texts))))
    for r in rows:
        t, kind = texts[r], rng.choice(["markup", "entity", "mojibake"])
        if kind == "mojibake" and "'" not in t and t.isascii():
            kind = "markup"  # nothing to garble
        if kind == "markup":
            words = t.split(" ")
            k = rng.randrange(len(words))
            words[k] = f"<{rng.choice(['i', 'b', 'em'])}>{words[k]}</i>"
            t = " ".join(words) + rng.choice([" <br />", "<br/><br/>", " <p>"])
        elif kind == "entity":
            t = html.escape(t, quote=True).replace(" ", "&nbsp;", 1)
        else:  # UTF-8 bytes read as Windows-1252: "it’s" -> "itâ€™s"
            t = t.replace("'", "\u2019").encode("utf-8").decode("cp1252", "replace")
        texts[r] = t
    return texts, rows


def inject_label_noise(labels, rate: float = 0.15, seed: int = 0, num_labels: int = 2):
    """Flip exactly round(rate * n) labels to another of the ``num_labels`` classes.
    Returns (noisy, flipped mask)."""
    checks.number(rate, "rate", low=0, high=1, low_open=False, fix="the share of labels flipped")
    k = checks.classes_of(num_labels, "num_labels")
    labels = checks.labels(labels, classes=k, why="flipping a label", fix="With more classes, pass num_labels=K")
    rng = np.random.default_rng(seed)
    rows = rng.choice(len(labels), round(rate * len(labels)), replace=False)
    noisy = labels.copy()
    noisy[rows] = (labels[rows] + rng.integers(1, num_labels, len(rows))) % num_labels
    flipped = np.zeros(len(labels), bool)
    flipped[rows] = True
    return noisy, flipped


# ---------------------------------------------------------------- label issues

def find_label_issues(texts, labels, folds: int = 5, seed: int = 0, embeddings=None, classes: int | None = None):
    """Confident learning: flag rows whose given label disagrees confidently with
    out-of-fold predicted probabilities. Returns (issue mask, out-of-fold probabilities).

    The probabilities come from the TF-IDF baseline, averaged with a logistic regression on
    ``embeddings`` (rows aligned with ``texts``, e.g. `labkit.core.models.embed`) when given:
    a better model finds label errors more precisely. The ``folds`` fits are kept in the
    run cache: the same call a second time reads them back. ``classes``: how many (None: 2);
    each needs at least 2 rows, so that every fold's model has seen every class.
    """
    from cleanlab.filter import find_label_issues as cl_find
    texts = check_texts(texts, "no texts to check")
    k = checks.classes_of(classes)
    labels = checks.labels(labels, n=len(texts), classes=k, why="confident learning")
    folds = checks.number(folds, "folds", low=2, low_open=False, integer=True, fix="cross-validation folds, e.g. 5")
    counts = np.bincount(labels, minlength=k)
    if counts.min() < 2:  # with 2+ rows a class is in every fold's training rows (stratified folds)
        c = int(counts.argmin())
        raise DataError(f"class {c} has {counts[c]} rows: each fold's model must see every class, so confident "
                        f"learning needs 2 or more of each. Add rows of that class, or pass the classes that are "
                        f"present (classes={k} now)")
    if embeddings is not None and len(embeddings) != len(texts):
        raise DataError(f"{len(embeddings)} embeddings for {len(texts)} texts")

    probs = _out_of_fold(texts, labels, folds, seed, None if embeddings is None else np.asarray(embeddings))["probs"]
    return cl_find(labels, probs, filter_by="confident_learning"), probs


@cache.cached("label-issues", depends=lambda: {"C": C, "frozen_C": FROZEN_C})
def _out_of_fold(texts, labels, folds, seed, embeddings) -> dict:
    """Each row's class probabilities from the fold that did not train on it (cached)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold
    x = np.asarray(texts, dtype=object)
    probs = np.zeros((len(labels), int(labels.max()) + 1))  # every class has rows: find_label_issues checked
    for fit, held in StratifiedKFold(folds, shuffle=True, random_state=seed).split(x, labels):
        p = baseline().fit(list(x[fit]), labels[fit]).predict_proba(list(x[held]))
        if embeddings is not None:
            lr = LogisticRegression(C=FROZEN_C, max_iter=3000).fit(embeddings[fit], labels[fit])
            p = (p + lr.predict_proba(embeddings[held])) / 2
        probs[held] = p
    return {"probs": probs}


def label_noise_draw(train_texts, y_clean, test_texts, y_test, rate: float, folds: int, seed: int,
                     embeddings=None, classes: int | None = None) -> dict:
    """One draw of lab 01's label-noise experiment: ``rate`` of the clean training labels
    flipped with ``seed`` (`inject_label_noise`), confident learning's flags on the noisy ones
    (`find_label_issues`), and the TF-IDF baseline's test accuracy trained on the clean labels,
    the noisy ones, the flagged rows dropped or relabelled to the model's guess, and a review
    (the flipped labels put right) of the flagged rows or of as many random rows. What lab 01
    runs live and the lab01 study over its seeds; every fit is read back from the run cache.
    ``classes``: how many (None: 2)."""
    k = checks.classes_of(classes)
    y_clean = checks.labels(y_clean, classes=k, name="y_clean", why="a label-noise draw")
    noisy, flipped = inject_label_noise(y_clean, rate, seed=seed, num_labels=k)
    flagged, probs = find_label_issues(train_texts, noisy, folds=folds, seed=seed, embeddings=embeddings, classes=k)
    random_rows = np.zeros(len(noisy), bool)
    random_rows[np.random.default_rng(seed).choice(len(noisy), flagged.sum(), replace=False)] = True
    x = np.asarray(list(checks.column(train_texts)), dtype=object)

    def acc(labels, keep=None):
        keep = np.ones(len(labels), bool) if keep is None else keep
        return baseline_accuracy(x[keep], labels[keep], test_texts, y_test)

    return {"precision": float((flagged & flipped).sum() / flagged.sum()),
            "recall": float((flagged & flipped).sum() / flipped.sum()),
            "flagged": int(flagged.sum()), "random review fixes": int((random_rows & flipped).sum()),
            "CL review fixes": int((flagged & flipped).sum()),
            "clean": acc(y_clean), "noisy": acc(noisy), "drop flagged": acc(noisy, ~flagged),
            "relabel flagged": acc(np.where(flagged, probs.argmax(1), noisy)),
            "review random": acc(np.where(random_rows, y_clean, noisy)),
            "review flagged": acc(np.where(flagged, y_clean, noisy))}
