import time

import numpy as np
import pytest
import torch

from labkit.core import classifier as C
from labkit.core import kd, models, text
from labkit.core.train import cross_entropy_loss

POS = ["a good film", "a great cast", "good and great", "a fine good plot", "great fun"]
NEG = ["a bad film", "an awful cast", "bad and awful", "a dull bad plot", "awful mess"]
TEXTS, LABELS = POS + NEG, [1] * 5 + [0] * 5


@pytest.fixture(scope="module")
def tok():
    return text.train_wordpiece(TEXTS * 10, vocab_size=60, min_frequency=1)


def tiny(tok, seed=0):
    mlm = models.small_bert(len(tok), hidden=32, layers=1, heads=2, max_len=32)
    return C.small_classifier(mlm, pretrained=False, seed=seed)


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
    batches = C.length_grouped_batches(lengths, 32, seed=3, pool=4)
    flat = sorted(i for b in batches for i in b)
    assert flat == list(range(1000))
    assert batches == C.length_grouped_batches(lengths, 32, seed=3, pool=4)
    assert batches != C.length_grouped_batches(lengths, 32, seed=4, pool=4)
    # padding: within a batch lengths are close, so padded tokens are far fewer than at random
    grouped = sum(len(b) * lengths[b].max() for b in batches)
    order = np.random.default_rng(0).permutation(1000)
    random_ = sum(len(b) * lengths[b].max() for b in np.array_split(order, len(batches)))
    assert grouped < 0.75 * random_
    assert C.length_grouped_batches([5, 1, 4, 2], 2) == [[3, 1], [0, 2]]


def test_loader_pads_and_rejects_bad_input(tok):
    batch = next(iter(C.loader(tok, TEXTS, LABELS, batch_size=4)))
    assert batch["input_ids"].shape[0] == 4 and batch["labels"].tolist() == [1, 1, 1, 1]
    assert ((batch["input_ids"] == tok.pad_token_id) == (batch["attention_mask"] == 0)).all()
    assert "labels" not in next(iter(C.loader(tok, TEXTS)))
    with pytest.raises(TypeError, match="strings"):
        C.loader(tok, ["ok", 3], [0, 1])
    with pytest.raises(ValueError, match="2 texts but labels of shape"):
        C.loader(tok, ["ok", "no"], [0, 1, 1])
    with pytest.raises(ValueError, match="class numbers"):
        C.loader(tok, ["ok", "no"], [0.0, 1.0])
    with pytest.raises(ValueError, match="texts is empty"):
        C.loader(tok, [], [])


def test_fine_tune_learns_a_separable_task(tok):
    model = tiny(tok)
    before = C.accuracy(model, tok, TEXTS, LABELS)
    hist = C.fine_tune(model, tok, TEXTS * 4, LABELS * 4, lr=3e-3, steps=60, batch_size=8,
                       progress=False)
    assert len(hist.step) == 60 and np.mean(hist.loss[-10:]) < np.mean(hist.loss[:10])
    assert C.accuracy(model, tok, TEXTS, LABELS) == 1.0 and before < 1.0
    probs = C.predict_proba(model, tok, TEXTS)
    assert probs.shape == (10, 2) and np.allclose(probs.sum(1), 1, atol=1e-5)


def test_predict_proba_keeps_the_input_order(tok):
    model = tiny(tok).eval()
    texts = ["great fun", "a dull bad plot and an awful cast", "bad"]
    together = C.predict_proba(model, tok, texts)
    alone = np.concatenate([C.predict_proba(model, tok, [t]) for t in texts])
    assert np.allclose(together, alone, atol=1e-5)


def test_save_and_load(tok, tmp_cache):
    model = tiny(tok).eval()
    folder = C.save_classifier(model, tok, tmp_cache / "clf", {"labels": 10})
    assert (folder / "model.safetensors").exists() and not list(folder.glob("*.bin"))
    tok2, model2, info = C.load_classifier(folder)
    assert info == {"labels": 10}
    assert np.allclose(C.predict_proba(model, tok, TEXTS), C.predict_proba(model2, tok2, TEXTS), atol=1e-6)
    with pytest.raises(FileNotFoundError, match="run lab 03 first"):
        C.load_best("minilm")
    with pytest.raises(FileNotFoundError, match="run lab 05 first"):
        C.load_best("student")
    with pytest.raises(ValueError, match="unknown kind"):
        C.best_dir("teacher")


def test_cached_runs_hit_miss_and_keep_their_scores(tok, tmp_cache, monkeypatch):
    made = []

    def make(seed=0):
        made.append(seed)
        return tok, tiny(tok, seed)

    settings = dict(name="t", lr=3e-3, steps=5, batch_size=4, max_len=16, seed=0)
    first = C.cached_fine_tune(make, TEXTS, LABELS, **settings)
    again = C.cached_fine_tune(make, TEXTS, LABELS, **settings)
    assert not first.hit and again.hit and again.folder == first.folder
    assert again.info["steps"] == 5 and again.info["loss"] == first.info["loss"]
    # the model read back is the model trained
    assert np.allclose(C.predict_logits(first.model, tok, TEXTS), C.predict_logits(again.model, tok, TEXTS), atol=1e-6)
    acc = first.accuracy(TEXTS, LABELS, 16)
    third = C.cached_fine_tune(make, TEXTS, LABELS, **settings)
    assert len(list((tmp_cache / "runs").glob("run-logits-*"))) == 1  # scored once, kept in the run cache
    assert third.accuracy(TEXTS, LABELS, 16) == acc and third.trained is None  # read back, no model
    # unloaded, the trained model is let go and read back from its folder when next used: the same weights
    trained = first.model
    first.unload()
    assert first.trained is None and first.accuracy(TEXTS, LABELS, 16) == acc and first.trained is None
    assert first.model is not trained and all(torch.equal(a, b) for a, b in zip(first.model.state_dict().values(),
                                                                                 trained.state_dict().values()))
    # anything that changes the result misses: labels, a setting, the initial weights, the loss
    changed = [dict(labels=LABELS[::-1]), dict(lr=1e-3), dict(make=lambda: make(seed=1)),
               dict(loss_fn=_spec_loss({"loss": "other"}))]
    for change in changed:
        args = {**settings, "labels": LABELS, "make": make, **change}
        run = C.cached_fine_tune(args.pop("make"), TEXTS, args.pop("labels"), **args)
        assert not run.hit, change
    with pytest.raises(TypeError, match="spec"):
        C.cached_fine_tune(make, TEXTS, LABELS, loss_fn=lambda m, b: 0, **settings)
    # --fresh: entries from before the run started are redone (and then reused)
    monkeypatch.setenv("LABKIT_FRESH", str(time.time() + 1))
    assert not C.cached_fine_tune(make, TEXTS, LABELS, **settings).hit
    monkeypatch.setenv("LABKIT_FRESH", str(time.time() - 60))
    assert C.cached_fine_tune(make, TEXTS, LABELS, **settings).hit


def test_cached_logits_computes_once_per_model_texts_and_kind(tok, tmp_cache, monkeypatch):
    model = tiny(tok).eval()
    first = C.cached_logits(model, tok, TEXTS, 16)
    assert np.allclose(first, C.predict_logits(model, tok, TEXTS, 16))
    assert next(model.parameters()).device.type == "cpu"  # left where it was
    assert [p.name.rsplit("-", 1)[0] for p in (tmp_cache / "runs").iterdir()] == ["teacher-logits"]
    monkeypatch.setattr(C, "predict_logits", lambda *a, **k: pytest.fail("cached logits computed again"))
    assert np.array_equal(C.cached_logits(model, tok, TEXTS, 16), first)  # read back
    for other in ((tiny(tok, seed=1), tok, TEXTS, 16), (model, tok, TEXTS[:4], 16), (model, tok, TEXTS, 8)):
        with pytest.raises(pytest.fail.Exception, match="computed again"):  # other weights, texts, length
            C.cached_logits(*other)
    with pytest.raises(pytest.fail.Exception, match="computed again"):  # another kind keeps its own copy
        C.cached_logits(model, tok, TEXTS, 16, kind="variant-logits")


def _spec_loss(spec):
    def loss_fn(model, batch):
        return cross_entropy_loss(model, batch)
    loss_fn.spec = spec
    return loss_fn


def test_inputs_embeds_give_the_same_logits_as_input_ids(tok):
    model = tiny(tok).eval()
    enc = tok(TEXTS[:4], padding=True, return_tensors="pt")
    with torch.no_grad():
        by_ids = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"])
        embeds = model.word_embeddings(enc["input_ids"])          # (batch, seq, hidden)
        by_embeds = model(inputs_embeds=embeds, attention_mask=enc["attention_mask"])
    assert embeds.shape == (*enc["input_ids"].shape, 32)
    assert torch.allclose(by_ids, by_embeds, atol=1e-6)
    with pytest.raises(TypeError, match="exactly one"):
        model(input_ids=enc["input_ids"], inputs_embeds=embeds, attention_mask=enc["attention_mask"])
    with pytest.raises(TypeError):
        model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"], labels=None)


def test_vocab_mismatch_is_refused(tok, tmp_path):
    folder = C.save_classifier(tiny(tok), tok, tmp_path / "clf", onnx=False)
    other = text.train_wordpiece(TEXTS * 10, vocab_size=45, min_frequency=1)
    other.save_pretrained(folder)  # a tokenizer that does not belong to this model
    with pytest.raises(ValueError, match="not trained together"):
        C.load_classifier(folder)


def test_pretrained_encoder_is_copied(tok):
    mlm = models.small_bert(len(tok), hidden=32, layers=1, heads=2, max_len=32)
    pre = C.small_classifier(mlm, pretrained=True)
    scratch = C.small_classifier(mlm, pretrained=False)
    w = mlm.bert.embeddings.word_embeddings.weight
    assert torch.equal(pre.encoder.embeddings.word_embeddings.weight, w)
    assert not torch.equal(scratch.encoder.embeddings.word_embeddings.weight, w)
    pre.encoder.embeddings.word_embeddings.weight.data.zero_()
    assert w.abs().sum() > 0  # fine-tuning the copy leaves lab 02's model alone


def test_features_are_the_pooled_states_the_head_sees(tok, tmp_cache):
    model = tiny(tok).eval()
    f = C.features(model.encoder, tok, TEXTS)
    assert f.shape == (10, 32)
    with torch.no_grad():
        logits = model.head(torch.from_numpy(f))
    assert np.allclose(logits.numpy(), C.predict_logits(model, tok, TEXTS, 64), atol=1e-5)
    # kept in the run cache under the encoder's weights: read back, and another encoder computes its own
    assert len(list((tmp_cache / "runs").glob("features-*"))) == 1
    assert np.array_equal(C.features(model.encoder, tok, TEXTS), f)
    other = tiny(tok).eval()
    with torch.no_grad():
        next(other.encoder.parameters()).add_(1.0)
    assert not np.allclose(C.features(other.encoder, tok, TEXTS), f)
    assert len(list((tmp_cache / "runs").glob("features-*"))) == 2


def test_a_truncated_checkpoint_names_the_file_and_the_fix(tok, tmp_cache, monkeypatch):
    monkeypatch.setenv("LABKIT_SCALE", "smoke")
    folder = C.save_classifier(tiny(tok).eval(), tok, C.best_dir("minilm"))
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(C.CheckpointError, match=r"model.safetensors is damaged or truncated.*rerun lab 03"):
        C.load_best("minilm")
    other = C.save_classifier(tiny(tok).eval(), tok, tmp_cache / "mine")
    (other / "head.safetensors").write_bytes(b"\x00" * 10)
    with pytest.raises(C.CheckpointError, match=r"head.safetensors is damaged.*save it again"):
        C.load_classifier(other)


def test_labels_outside_the_model_and_misshapen_targets_are_refused(tok):
    model = tiny(tok)
    with pytest.raises(ValueError, match=r"labels\[0\] = 5 is outside 0\.\.1.*The model has 2 outputs.*num_labels=K"):
        C.fine_tune(model, tok, TEXTS, [5] + LABELS[1:], lr=1e-3, steps=1, progress=False)
    with pytest.raises(ValueError, match="targets must have one row of 2 logits per text"):
        C.fine_tune(model, tok, TEXTS, LABELS, lr=1e-3, steps=1, progress=False, targets=np.zeros((10, 3)))
    from labkit.core import train
    with pytest.raises(ValueError, match="same shape"):
        kd.kd_loss(torch.zeros(4, 2), torch.zeros(4, 3), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="one label per row"):
        kd.kd_loss(torch.zeros(4, 2), torch.zeros(4, 2), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="labels hold class 3"):
        train.check_logits(torch.zeros(2, 3), torch.tensor([0, 3]))
