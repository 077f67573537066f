"""Core: the English words labs 04, 06 and 09 lean on. A thesaurus ranked by MiniLM's
word vectors (`Thesaurus`), word frequencies and stop words, the words that carry a review's
logic (negation and contrast words and a negation's scope: `logic_word`,
`protected_positions`), and one-letter typos (`typos`, with `split_word` to keep a word's
punctuation).

Lab 04's augmentation never touches the protected words and draws its synonyms here; lab
06's attacks do the same and make their character-level edits with `typos`; lab 09 adds
`typos` to test reviews as noise.
Leaves out: other languages (the Chinese data has no thesaurus here).
"""
from __future__ import annotations

import functools
import random
import re

import numpy as np

from labkit.core import fetch
from labkit.core.models import minilm_word_table
from labkit.core.text import CONTRAST, NEGATION

NEGATION_RE = re.compile(NEGATION, re.I)
LOGIC_RE = re.compile(f"{NEGATION}|{CONTRAST}", re.I)  # negation or contrast
_TOKEN = re.compile(r"(\W*)(.*?)(\W*)", re.S)  # leading punctuation, core, trailing punctuation


# ---------------------------------------------------------------- synonyms

COURSE_THESAURUS = {"common_words": 40000, "min_similarity": 0.35, "k": 5}  # `Thesaurus.load`'s settings


class Thesaurus:
    """Ranked synonyms from word categories, word vectors and word polarities.

    ``categories``: word -> set of category names (two words sharing one are candidates);
    ``vectors``: word -> unit vector (candidates are ranked by cosine similarity and kept
    from ``min_similarity`` up); ``polarity``: word -> +1 / -1, or 2 for a word the General
    Inquirer lists with both senses ("fine"), missing = 0;
    ``common``: words allowed as replacements (None = any).
    Example: ``Thesaurus.load().synonyms("funny")`` -> ['hilarious', 'humorous', ...].
    """

    def __init__(self, categories: dict, vectors: dict, polarity: dict | None = None,
                 common=None, min_similarity: float = COURSE_THESAURUS["min_similarity"],
                 k: int = COURSE_THESAURUS["k"]):
        self.categories, self.polarity = categories, polarity or {}
        self.min_similarity, self.k = min_similarity, k
        self.words = [w for w in categories if w in vectors]
        self.index = {w: i for i, w in enumerate(self.words)}
        self.matrix = np.stack([vectors[w] for w in self.words]) if self.words else np.zeros((0, 1))
        self.signs = np.array([self.polarity.get(w, 0) for w in self.words])
        members: dict[str, list] = {}  # category -> indices of the words allowed as synonyms
        for w in self.words:
            if (common is None or w in common) and not logic_word(w):
                for c in categories[w]:
                    members.setdefault(c, []).append(self.index[w])
        self.members = {c: np.array(ix) for c, ix in members.items()}
        self._cache: dict = {}

    @classmethod
    @functools.lru_cache(maxsize=1)
    def load(cls, common_words: int = COURSE_THESAURUS["common_words"]) -> "Thesaurus":
        """The course's English thesaurus from the fetched `thesaurus-en` and `minilm`."""
        return cls(*_load_sources(common_words))

    def synonyms(self, word: str, same_polarity: bool = True) -> list[str]:
        """Up to ``k`` synonyms of ``word`` (lower case), most similar first; never a
        negation or contrast word, and with ``same_polarity`` only words whose polarity
        equals the word's."""
        key = (word, same_polarity)
        if key not in self._cache:
            self._cache[key] = self._rank(word.lower(), same_polarity)
        return self._cache[key]

    def _rank(self, word: str, same_polarity: bool) -> list[str]:
        if word not in self.index:
            return []
        i = self.index[word]
        cands = np.unique(np.concatenate([self.members.get(c, np.zeros(0, int))
                                          for c in self.categories[word]]))
        cands = cands[cands != i]
        if same_polarity:
            cands = cands[self.signs[cands] == self.signs[i]]
        sims = self.matrix[cands] @ self.matrix[i]
        best = np.argsort(-sims, kind="stable")[:self.k]
        return [self.words[cands[j]] for j in best if sims[j] >= self.min_similarity]


def frequent_words(n: int = 40000) -> set:
    """The ``n`` most frequent English words (Norvig's web counts, from `thesaurus-en`)."""
    with fetch.reading("thesaurus-en"), open(fetch.path("thesaurus-en") / "count_1w.txt", encoding="utf-8") as f:
        return {line.split("\t", 1)[0] for _, line in zip(range(n), f)}


def _load_sources(common_words: int):
    """(categories, vectors, polarity, common) read from the fetched files."""
    import bz2
    folder = fetch.path("thesaurus-en")
    categories: dict[str, set] = {}
    with fetch.reading("thesaurus-en"), bz2.open(folder / "roget.csv.bz2", "rt", encoding="utf-8") as f:
        for line in f:  # word,CATEGORY; split on the last comma (the csv module trips on
            word, _, cat = line.rstrip("\n").rpartition(",")  # an unbalanced quote)
            word = word.strip().lower()
            if word.isalpha() and word.isascii():
                categories.setdefault(word, set()).add(cat)
    common = frequent_words(common_words)
    senses: dict[str, set] = {}
    with fetch.reading("thesaurus-en"), open(folder / "inqtabs.txt", encoding="latin-1") as f:
        next(f)
        for line in f:  # Entry, Source, Positiv, Negativ, ...; one row per word sense
            cols = line.split("\t", 4)
            senses.setdefault(cols[0].split("#")[0].lower(), set()).update(
                {1} if cols[2] else set(), {-1} if cols[3] else set())
    # +1: some sense positive and none negative; -1 the reverse; 2: both; 0: neither
    polarity = {w: (2 if len(s) == 2 else s.pop()) for w, s in senses.items() if s}
    vocab, table = minilm_word_table()
    vectors = {w: table[i] for i, w in enumerate(vocab) if w in categories}
    return categories, vectors, polarity, common


# ---------------------------------------------------------------- the words that carry the logic

def logic_word(word: str) -> bool:
    """True for a negation or contrast word (or a token holding one): never replaced."""
    return bool(LOGIC_RE.search(word))


def split_token(token: str) -> tuple[str, str, str]:
    """(leading non-word characters, the rest, trailing non-word characters) of a whitespace
    token, by the regex class ``\\W`` (lab 04's split; `split_word` cuts at letters and digits)."""
    return _TOKEN.fullmatch(token).groups()


# A change to the rules below or to `Thesaurus` changes lab 04's augmented reviews, which the run
# cache keeps: raise `labkit.core.cache.VERSIONS["augment"]` with it.
def protected_positions(words: list[str]) -> set[int]:
    """Indices of negation and contrast words, and of each negation's scope: the words after
    it up to and including the first one that is not a stop word ("not *a bad* film").

    Example: ``protected_positions("it is not a good film but fun".split())`` -> {2, 3, 4, 6}.
    """
    out = set()
    for i, w in enumerate(words):
        if LOGIC_RE.search(w):
            out.add(i)
            if NEGATION_RE.search(w):
                for j in range(i + 1, min(i + 4, len(words))):  # at most 3 words on
                    out.add(j)
                    if split_token(words[j])[1].lower() not in stop_words():
                        break
    return out


@functools.lru_cache(maxsize=1)
def stop_words() -> frozenset:
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS
    return frozenset(ENGLISH_STOP_WORDS)


# ---------------------------------------------------------------- typos

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
