"""Lab 03: fine-tuning for sentiment, and what pretraining is worth at each label budget.

The lab's experiment: `FinetuneConfig` (budgets, seeds, the settings of each model kind),
`small_run` and `minilm_run` (one cached fine-tune of lab 02's small BERT or of MiniLM with
those settings: lab 04 reads the same runs back for its un-augmented arm), and the error
analysis: `labkit.core.text.slices` (negation, contrast; lab 09 slices by them too), `rare_words`
(reviews full of words a general vocabulary lacks) and `confident_mistakes`. The machinery (the
`Classifier`, loaders, `fine_tune`, checkpoints, the run cache) is `labkit.core.classifier`.
Leaves out: hyper-parameter search, early stopping, layer-wise learning rates.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from labkit.core import checks
from labkit.core.classifier import Run, cached_fine_tune, check_inputs, minilm_classifier, small_classifier
from labkit.core.config import ScaledConfig


@dataclass
class FinetuneConfig(ScaledConfig):
    """Settings of lab 03. ``FinetuneConfig.for_scale()`` picks them for LABKIT_SCALE."""
    budgets: tuple = (100, 500, 2000, None)  # labels per run; None = the whole train split
    seeds: int = 3                 # label samples (and inits) per budget for the cheap models
    max_len: int = 64              # tokens per review (longer ones are cut; ~95% fit)
    small_batch_size: int = 32
    small_budgets: tuple = (100, 500, 2000)  # small BERTs: ~0.05 s a step here
    small_lr: float = 1e-3
    small_steps: int = 150         # optimizer steps per small-BERT run
    minilm_budgets: tuple = (500, 2000)      # fine-tuning MiniLM: ~0.4 s a step here
    minilm_lr: float = 1e-4
    minilm_epochs: int = 2
    minilm_batch_size: int = 16    # 32 needs ~0.5 GB more memory for no gain
    adapt_budgets: tuple = (100, 500)        # MiniLM vs lab 02's adapted MiniLM, paired by seed
    live_seed: int = 5             # the lab's one live adaptation run: a seed the lab03 study (0-4) never drew
    curve_seeds: tuple = (5,)      # the live learning curves' seeds: the lab03-curves study drew 0-4
    train_size: int | None = None  # cap on the training pool (None = the fixed train split)
    test_size: int | None = None   # cap on test reviews (None = the fixed test split)
    seed: int = 0

    SCALES: ClassVar[dict] = {  # what differs from the cpu defaults above
        "smoke": dict(budgets=(50, 200), seeds=2, max_len=32, small_budgets=(50, 200),
                      small_steps=15, minilm_budgets=(64,), adapt_budgets=(64,), minilm_epochs=1,
                      train_size=1000, test_size=300),
        "gpu": dict(seeds=5, curve_seeds=tuple(range(5, 10)), max_len=128, small_budgets=(100, 500, 2000, None),
                    small_steps=600, minilm_budgets=(100, 500, 2000, None), minilm_epochs=3),
    }


def small_run(mlm, tokenizer, texts, labels, seed: int, cfg: FinetuneConfig,
              pretrained: bool = False, classes: int | None = None) -> Run:
    """Fine-tune lab 02's architecture (its pretrained encoder, or the same architecture from
    scratch) on (texts, labels) with lab 03's settings, or read the run from the cache.
    ``classes``: how many (None: 2, the reviews'); every label is checked against it."""
    k = checks.classes_of(classes)
    return cached_fine_tune(lambda: (tokenizer, small_classifier(mlm, pretrained, seed, num_labels=k)),
                            texts, labels, name="small-bert", lr=cfg.small_lr,
                            steps=cfg.small_steps, batch_size=cfg.small_batch_size,
                            max_len=cfg.max_len, seed=seed)


def minilm_run(texts, labels, seed: int, cfg: FinetuneConfig, adapted=None, classes: int | None = None) -> Run:
    """Fine-tune MiniLM (word embeddings frozen) on (texts, labels) with lab 03's settings,
    or read the run from the cache (~90 MB a run). ``adapted``: None for the stock MiniLM, or
    lab 02's `pretrain.load_or_adapt` to start from MiniLM adapted to the reviews instead,
    with the same seed: the same head, the same batches. It is called on every call (the
    starting weights are part of the run's key), and the run is cached as "minilm-adapted":
    pass nothing else. ``classes`` as in `small_run`."""
    if adapted is not None and not callable(adapted):
        raise TypeError(f"adapted={adapted!r}: pass None (stock MiniLM) or lab 02's "
                        "pretrain.load_or_adapt (the function, not its result)")
    k = checks.classes_of(classes)
    source = adapted or (lambda: None)
    return cached_fine_tune(lambda: minilm_classifier(seed, num_labels=k, source=source()), texts, labels,
                            name="minilm-adapted" if adapted else "minilm",
                            lr=cfg.minilm_lr, epochs=cfg.minilm_epochs,
                            batch_size=cfg.minilm_batch_size, max_len=cfg.max_len, seed=seed)


# ---------------------------------------------------------------- error analysis


def rare_word_share(texts, tokenizer) -> np.ndarray:
    """Share of each text's words that ``tokenizer`` splits into several pieces: words its
    general-text vocabulary lacks (names, slang, misspellings, domain words).

    Example: with MiniLM's tokenizer, "the acting was wooden" -> 0.0 (every word is whole).
    """
    texts, _ = check_inputs(texts)
    words = [re.findall(r"[a-z]+", t.lower()) for t in texts]
    split = {w: len(tokenizer.tokenize(w)) > 1 for w in set().union(*map(set, words))}
    return np.array([np.mean([split[w] for w in ws]) if ws else 0.0 for ws in words])


def rare_words(texts, tokenizer, share: float = 1 / 3) -> np.ndarray:
    """Boolean mask of the ``share`` of ``texts`` with the highest `rare_word_share`: the slice
    where adapting a general model to our reviews should help most, if anywhere."""
    s = rare_word_share(texts, tokenizer)
    return s >= np.quantile(s, 1 - share)


def confident_mistakes(texts, labels, probs, k: int = 5) -> list[tuple[float, int, int, str]]:
    """The ``k`` wrong predictions made with the highest confidence:
    (confidence, predicted, true label, text), most confident first."""
    probs = checks.probabilities(probs)
    texts, labels = check_inputs(texts, labels, classes=probs.shape[1], fix=f"probs have {probs.shape[1]} classes")
    if len(probs) != len(texts):
        raise ValueError(f"probs has {len(probs)} rows for {len(texts)} texts: give one row per text")
    pred = probs.argmax(-1)
    wrong = np.flatnonzero(pred != labels)
    top = wrong[np.argsort(-probs[wrong].max(-1), kind="stable")][:k]
    return [(float(probs[i].max()), int(pred[i]), int(labels[i]), texts[i]) for i in top]
