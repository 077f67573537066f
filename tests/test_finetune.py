import numpy as np
import pytest
import torch

from labkit import data, finetune as F, models, text

POS = ["a good film", "a great cast", "good and great", "a fine good plot", "great fun"]
NEG = ["a bad film", "an awful cast", "bad and awful", "a dull bad plot", "awful mess"]
TEXTS, LABELS = POS + NEG, [1] * 5 + [0] * 5


@pytest.fixture(scope="module")
def tok():
    return text.train_wordpiece(TEXTS * 10, vocab_size=60, min_frequency=1)


def tiny(tok, seed=0):
    mlm = models.small_bert(len(tok), hidden=32, layers=1, heads=2, max_len=32)
    return F.small_classifier(mlm, pretrained=False, seed=seed)


def test_classifier_shape_and_padding_is_ignored(tok):
    model = tiny(tok).eval()
    enc = tok(["a good film"], return_tensors="pt")
    padded = tok(["a good film", "a great cast and a dull bad plot"], padding=True, return_tensors="pt")
    with torch.no_grad():
        one = model(**enc)
        two = model(input_ids=padded["input_ids"], attention_mask=padded["attention_mask"])
    assert one.shape == (1, 2) and two.shape == (2, 2)
    assert torch.allclose(one[0], two[0], atol=1e-5)  # the padded copy gives the same logits


def test_length_grouped_batches_cover_every_row_once():
    lengths = np.random.default_rng(0).integers(1, 60, size=1000)
    batches = F.length_grouped_batches(lengths, 32, seed=3, pool=4)
    flat = sorted(i for b in batches for i in b)
    assert flat == list(range(1000))
    assert batches == F.length_grouped_batches(lengths, 32, seed=3, pool=4)
    assert batches != F.length_grouped_batches(lengths, 32, seed=4, pool=4)
    # padding: within a batch lengths are close, so padded tokens are far fewer than at random
    grouped = sum(len(b) * lengths[b].max() for b in batches)
    order = np.random.default_rng(0).permutation(1000)
    random_ = sum(len(b) * lengths[b].max() for b in np.array_split(order, len(batches)))
    assert grouped < 0.75 * random_
    assert F.length_grouped_batches([5, 1, 4, 2], 2) == [[3, 1], [0, 2]]


def test_loader_pads_and_rejects_bad_input(tok):
    batch = next(iter(F.loader(tok, TEXTS, LABELS, batch_size=4)))
    assert batch["input_ids"].shape[0] == 4 and batch["labels"].tolist() == [1, 1, 1, 1]
    assert ((batch["input_ids"] == tok.pad_token_id) == (batch["attention_mask"] == 0)).all()
    assert "labels" not in next(iter(F.loader(tok, TEXTS)))
    with pytest.raises(TypeError, match="strings"):
        F.loader(tok, ["ok", 3], [0, 1])
    with pytest.raises(ValueError, match="2 texts but 3 labels"):
        F.loader(tok, ["ok", "no"], [0, 1, 1])
    with pytest.raises(ValueError, match="class numbers"):
        F.loader(tok, ["ok", "no"], [0.0, 1.0])
    with pytest.raises(ValueError, match="no texts"):
        F.loader(tok, [], [])


def test_fine_tune_learns_a_separable_task(tok):
    model = tiny(tok)
    before = F.accuracy(model, tok, TEXTS, LABELS)
    hist = F.fine_tune(model, tok, TEXTS * 4, LABELS * 4, lr=3e-3, steps=60, batch_size=8,
                       progress=False)
    assert len(hist.step) == 60 and np.mean(hist.loss[-10:]) < np.mean(hist.loss[:10])
    assert F.accuracy(model, tok, TEXTS, LABELS) == 1.0 and before < 1.0
    probs = F.predict_proba(model, tok, TEXTS)
    assert probs.shape == (10, 2) and np.allclose(probs.sum(1), 1, atol=1e-5)


def test_predict_proba_keeps_the_input_order(tok):
    model = tiny(tok).eval()
    texts = ["great fun", "a dull bad plot and an awful cast", "bad"]
    together = F.predict_proba(model, tok, texts)
    alone = np.concatenate([F.predict_proba(model, tok, [t]) for t in texts])
    assert np.allclose(together, alone, atol=1e-5)


def test_save_load_and_cache(tok, tmp_cache):
    model = tiny(tok).eval()
    folder = F.save_classifier(model, tok, tmp_cache / "clf", {"labels": 10})
    assert (folder / "model.safetensors").exists() and not list(folder.glob("*.bin"))
    tok2, model2, info = F.load_classifier(folder)
    assert info == {"labels": 10}
    assert np.allclose(F.predict_proba(model, tok, TEXTS), F.predict_proba(model2, tok2, TEXTS), atol=1e-6)
    with pytest.raises(FileNotFoundError, match="lab 03"):
        F.load_best("minilm")
    calls = []

    def make():
        calls.append(1)
        return tok, tiny(tok)

    settings = dict(lr=3e-3, steps=5, batch_size=4, max_len=16, seed=0)
    _, _, info1 = F.cached_fine_tune("t", make, TEXTS, LABELS, progress=False, **settings)
    _, m2, info2 = F.cached_fine_tune("t", make, TEXTS, LABELS, progress=False, **settings)
    assert len(calls) == 1 and info1["steps"] == info2["steps"] == 5
    F.cached_fine_tune("t", make, TEXTS, LABELS[::-1], progress=False, **settings)
    assert len(calls) == 2  # other labels, another run


def test_vocab_mismatch_is_refused(tok, tmp_path):
    folder = F.save_classifier(tiny(tok), tok, tmp_path / "clf")
    other = text.train_wordpiece(TEXTS * 10, vocab_size=45, min_frequency=1)
    other.save_pretrained(folder)  # a tokenizer that does not belong to this model
    with pytest.raises(ValueError, match="not trained together"):
        F.load_classifier(folder)


def test_pretrained_encoder_is_copied(tok):
    mlm = models.small_bert(len(tok), hidden=32, layers=1, heads=2, max_len=32)
    pre = F.small_classifier(mlm, pretrained=True)
    scratch = F.small_classifier(mlm, pretrained=False)
    w = mlm.bert.embeddings.word_embeddings.weight
    assert torch.equal(pre.encoder.embeddings.word_embeddings.weight, w)
    assert not torch.equal(scratch.encoder.embeddings.word_embeddings.weight, w)
    pre.encoder.embeddings.word_embeddings.weight.data.zero_()
    assert w.abs().sum() > 0  # fine-tuning the copy leaves lab 02's model alone


def test_budget_curve_and_frozen_accuracy():
    y = np.array([0, 1] * 50)
    x = np.c_[y * 2.0 - 1 + np.random.default_rng(0).normal(0, 0.1, 100), np.zeros(100)]
    seen = []

    def run(rows, seed):
        seen.append((len(rows), seed))
        return F.frozen_accuracy(x[rows], y[rows], x, y)

    curve = data.budget_curve(run, y, (10, None, 500), seeds=3)
    assert set(curve) == {10, 100} and len(curve[10]) == 3 and len(curve[100]) == 1
    assert seen == [(10, 0), (10, 1), (10, 2), (100, 0), (100, 0)]
    assert all(a == 1.0 for accs in curve.values() for a in accs)
    seen.clear()
    assert len(data.budget_curve(run, y, (None,), seeds=2, seeds_on_all=True)[100]) == 2
    assert seen == [(100, 0), (100, 1)]


def test_slices_and_confident_mistakes():
    texts = ["not bad", "good but long", "it isn't good but fine", "great", "never again"]
    s = F.slices(texts)
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


def test_features_are_the_pooled_states_the_head_sees(tok):
    model = tiny(tok).eval()
    f = F.features(model.encoder, tok, TEXTS)
    assert f.shape == (10, 32)
    with torch.no_grad():
        logits = model.head(torch.from_numpy(f))
    assert np.allclose(logits.numpy(), F._outputs(model, tok, TEXTS, 64), atol=1e-5)
