import numpy as np
import pytest

from labkit.core import models, text
from labkit.labs import finetune as F

POS = ["a good film", "a great cast", "good and great", "a fine good plot", "great fun"]
NEG = ["a bad film", "an awful cast", "bad and awful", "a dull bad plot", "awful mess"]
TEXTS, LABELS = POS + NEG, [1] * 5 + [0] * 5


def test_small_runs_are_shared_through_the_cache(tmp_cache):
    """Lab 04's un-augmented arm calls small_run exactly as lab 03 does: a cache hit."""
    tok = text.train_wordpiece(TEXTS * 10, vocab_size=60, min_frequency=1)
    mlm = models.small_bert(len(tok), hidden=32, layers=1, heads=2, max_len=32)
    cfg = F.FinetuneConfig(small_steps=4, small_batch_size=4, max_len=16)
    lab03 = F.small_run(mlm, tok, np.array(TEXTS, dtype=object), np.array(LABELS), 0, cfg)
    lab04 = F.small_run(mlm, tok, list(TEXTS), LABELS, 0, cfg)
    assert not lab03.hit and lab04.hit and lab04.info["steps"] == 4
    pretrained = F.small_run(mlm, tok, TEXTS, LABELS, 0, cfg, pretrained=True)
    other_seed = F.small_run(mlm, tok, TEXTS, LABELS, 1, cfg)
    assert not pretrained.hit and not other_seed.hit
    assert len({lab03.folder, pretrained.folder, other_seed.folder}) == 3


def test_slices_and_confident_mistakes():
    texts = ["not bad", "good but long", "it isn't good but fine", "great", "never again"]
    s = text.slices(texts)
    assert s["negation"].tolist() == [True, False, True, False, True]
    assert s["contrast"].tolist() == [False, True, True, False, False]
    assert s["both"].tolist() == [False, False, True, False, False]
    assert s["neither"].tolist() == [False, False, False, True, False]
    probs = np.array([[0.9, 0.1], [0.4, 0.6], [0.2, 0.8], [0.6, 0.4], [0.5, 0.5]])
    mistakes = F.confident_mistakes(texts, [1, 1, 0, 1, 1], probs, k=5)
    assert [m[3] for m in mistakes] == ["not bad", "it isn't good but fine", "great", "never again"]
    assert mistakes[0] == (0.9, 0, 1, "not bad")


def test_config_per_scale():
    smoke, cpu = F.FinetuneConfig.for_scale("smoke"), F.FinetuneConfig.for_scale("cpu")
    assert smoke.train_size and smoke.test_size and cpu.train_size is None and cpu.test_size is None
    assert cpu.seeds >= 3 and 2000 in cpu.minilm_budgets and 500 in cpu.minilm_budgets
    assert min(cpu.small_budgets) == min(b for b in cpu.budgets if b)



class _Pieces:  # a tokenizer whose vocabulary holds short words only
    def tokenize(self, word):
        return [word] if len(word) <= 4 else [word[:4], "##" + word[4:]]


def test_rare_word_share_counts_the_words_the_vocabulary_splits_and_the_slice_takes_the_top():
    texts = ["the film was good", "the cinematographer overplayed", "ok", "a b c d"]
    share = F.rare_word_share(texts, _Pieces())
    assert np.allclose(share, [0.0, 2 / 3, 0.0, 0.0])
    assert F.rare_words(texts, _Pieces(), share=0.25).tolist() == [False, True, False, False]
    with pytest.raises(ValueError):
        F.rare_word_share([], _Pieces())
