"""Core: text in, token ids out. Input checks, a WordPiece tokenizer trained on our own
text (lab 02), padding, and the negation / contrast patterns labs 03, 04 and 06 use.

`train_wordpiece` returns a `transformers.PreTrainedTokenizerFast` (BERT-style: lower case,
``[CLS] ... [SEP]``, ``[PAD] [UNK] [MASK]``) that saves with ``save_pretrained`` and loads
with ``AutoTokenizer.from_pretrained``. Leaves out: byte-level BPE, sentencepiece.
"""
from __future__ import annotations

import re

import numpy as np

from labkit.core import cache, checks

SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]

# Words that carry a review's logic rather than its topic: a negation flips what follows it,
# a contrast word says which half of the review counts. Lab 03 slices the test set by them;
# lab 04's augmentation never deletes, moves or replaces them.
NEGATION = r"\b(not|no|never|nothing|nobody|neither|nor|hardly|without|\w+n't)\b"
CONTRAST = r"\b(but|although|though|however|yet|despite|even if|while)\b"


def check_texts(texts, empty: str = "texts is empty: give at least one", name: str = "texts") -> list:
    """``texts`` as a list, after checking it is a list-like of strings (a lone string is
    refused: it would be read letter by letter), non-empty (else ValueError(``empty``)),
    and holds only strings (else a TypeError naming the argument and the first bad items)."""
    if isinstance(texts, (str, bytes)) or not hasattr(texts, "__iter__"):
        raise TypeError(f"{name} must be a list of strings, got {type(texts).__name__}"
                        + (f": wrap one text as [{name}]" if isinstance(texts, str) else ""))
    texts = list(checks.column(texts))  # a datasets column in one read, not row by row
    if not texts:
        raise ValueError(empty if empty.startswith(name) else f"{name} is empty: {empty}")
    bad = [i for i, t in enumerate(texts) if not isinstance(t, str)]
    if bad:
        raise TypeError(f"{name} must be strings; items {bad[:5]} are "
                        f"{type(texts[bad[0]]).__name__}")
    return texts


def train_wordpiece(texts, vocab_size: int = 8000, min_frequency: int = 2):
    """A WordPiece tokenizer learned from ``texts``, or the one learned from the same texts
    and settings before, read back from the run cache.

    The trainer alone is not reproducible (huggingface/tokenizers#1794): it numbers the
    word-continuing characters (``##e``) in the order of a randomly seeded hash map and breaks
    ties between equally good merges by those numbers, so two trainings on the same text can
    pick different tokens (2 of 12 on lab 02's corpus). So every continuing character of the
    corpus is handed to the trainer up front, in sorted order (`_continuations`): the trainer
    then numbers them the same way every run and picks the same tokens. The ids are then
    renumbered from the data alone (the special tokens, then by frequency in ``texts``, ties
    by the token itself), and the vocabulary is kept in the run cache (kind ``wordpiece``).
    Example: trained on the English text, ``tok.tokenize("unforgettable")`` ->
    ``['unfor', '##get', '##table']``.
    """
    from tokenizers import processors
    from transformers import PreTrainedTokenizerFast
    texts = check_texts(texts, "the corpus is empty: give at least one text to train a tokenizer on")
    if vocab_size <= len(SPECIAL):
        raise ValueError(f"vocab_size={vocab_size} leaves no room beyond the special tokens")

    vocab = _vocabulary(texts, vocab_size, min_frequency)
    tok = _bare(vocab)
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]",
        special_tokens=[("[CLS]", cls), ("[SEP]", sep)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]",
                                   cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]")


@cache.keyed("wordpiece", depends=lambda: {"special": SPECIAL})
def _vocabulary(texts, vocab_size, min_frequency, *, folder) -> dict:
    """{token: id} learned from ``texts``, or read back from the run ``folder``."""
    from tokenizers import trainers
    if cache.is_done(folder):
        return cache.read_json(folder / "vocab.json")
    trained = _bare()
    trained.train_from_iterator(texts, trainers.WordPieceTrainer(
        vocab_size=vocab_size, min_frequency=min_frequency, show_progress=False,
        special_tokens=SPECIAL + _continuations(trained, texts)))
    # The trainer registers what it was given as special tokens, which a tokenizer never
    # splits words into: only the five real ones stay special; the rest are plain tokens.
    vocab = _canonical_ids(_bare(trained.get_vocab()), texts)
    with cache.artifact(folder) as (tmp, _):
        cache.write_json(tmp / "vocab.json", vocab)
    return vocab


def _bare(vocab=None):
    """An untrained (or ``vocab``'s) WordPiece tokenizer, BERT's lower-casing normaliser and
    pre-tokenizer."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers
    tok = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]") if vocab else models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    return tok


def _continuations(tok, texts) -> list:
    """``##c`` for every character ``c`` that continues a word in ``texts`` (as ``tok``'s
    normalizer and pre-tokenizer cut them), sorted. Example: ["ab a"] -> ["##b"]."""
    norm, pre = tok.normalizer, tok.pre_tokenizer
    chars = {c for t in texts for word, _ in pre.pre_tokenize_str(norm.normalize_str(t)) for c in word[1:]}
    return ["##" + c for c in sorted(chars)]


def _canonical_ids(tok, texts) -> dict:
    """{token: id}: specials first, then by how often each token occurs in ``texts`` (most
    first), ties by the token string."""
    from collections import Counter
    counts = Counter(t for enc in tok.encode_batch(texts, add_special_tokens=False) for t in enc.tokens)
    rest = sorted((t for t in tok.get_vocab() if t not in SPECIAL), key=lambda t: (-counts[t], t))
    return {t: i for i, t in enumerate(SPECIAL + rest)}


def slices(texts) -> dict:
    """Boolean masks of the reviews with a negation, a contrast, both, or neither.

    Example: ``slices(["not bad", "good but long"])["negation"]`` -> [True, False].
    """
    texts = check_texts(texts)
    neg = np.array([bool(re.search(NEGATION, t, re.I)) for t in texts])
    con = np.array([bool(re.search(CONTRAST, t, re.I)) for t in texts])
    return {"negation": neg, "contrast": con, "both": neg & con, "neither": ~neg & ~con}


def unk_rate(tokenizer, texts) -> float:
    """Share of tokens that are ``[UNK]`` (special tokens not counted)."""
    ids = tokenizer(check_texts(texts), add_special_tokens=False)["input_ids"]
    total = sum(len(x) for x in ids)
    return sum(x.count(tokenizer.unk_token_id) for x in ids) / max(total, 1)


def lengths(tokenizer, texts) -> np.ndarray:
    """Tokens per text (without special tokens)."""
    return np.array([len(x) for x in tokenizer(check_texts(texts), add_special_tokens=False)["input_ids"]])


def pad(seqs, pad_id: int):
    """Token-id lists padded on the right into one tensor (len(seqs), longest).

    Example: ``pad([[5, 6, 7], [8]], 0)`` -> tensor([[5, 6, 7], [8, 0, 0]]).
    """
    import torch
    ids = torch.full((len(seqs), max(len(s) for s in seqs)), pad_id)
    for i, s in enumerate(seqs):
        ids[i, :len(s)] = torch.tensor(s)
    return ids
