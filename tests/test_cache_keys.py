"""The run cache's keys come from the arguments (`cache.cached`): changing any single keyed
argument of every cached function changes its key, and an excluded one does not. A cached
function added without sample arguments here fails the first test."""
import importlib
import pkgutil
from pathlib import Path

import numpy as np
import pytest

import labkit
from labkit.core import cache, text

TEXTS = ["a good film", "a bad film", "not bad at all", "dull"]


def all_cached() -> dict:
    for info in pkgutil.walk_packages(labkit.__path__, "labkit."):
        importlib.import_module(info.name)
    return cache.CACHED


def tiny_model(seed):
    from labkit.core import models
    import torch
    torch.manual_seed(seed)
    return models.small_bert(60, hidden=16, layers=1, heads=2, num_labels=2)


def tokenizer():
    return text.train_wordpiece(TEXTS * 5, vocab_size=60, min_frequency=1)


# name -> (arguments, {argument: a different value})
def samples():
    from labkit.core.kd import kd_loss_fn
    from labkit.core.train import cross_entropy_loss
    from labkit.labs.adversarial import constraints
    from labkit.labs.pretrain import AdaptConfig, PretrainConfig
    labels = np.array([1, 0, 1, 0])
    emb = np.zeros((4, 3), np.float32)
    tok = tokenizer()
    other_tok = text.train_wordpiece(TEXTS * 5 + ["zebra crossing"] * 5, vocab_size=60, min_frequency=1)
    return {
        "labkit.core.curves._fit_and_score": (
            dict(train_texts=TEXTS, train_labels=labels, test_texts=TEXTS[:2], test_labels=labels[:2],
                 lang="en", C=1.0),
            dict(train_texts=TEXTS[::-1], train_labels=labels[::-1], test_texts=TEXTS[2:], test_labels=1 - labels[:2],
                 lang="zh", C=2.0)),
        "labkit.core.models._embeddings": (
            dict(texts=TEXTS, max_length=64, batch_size=64, progress=True),
            dict(texts=TEXTS[:3], max_length=32)),
        "labkit.core.data._split_rows": (
            dict(lang="en", seed=0, test=0.15, validation=0.1, archive="aaa"),
            dict(lang="zh", seed=1, test=0.2, validation=0.05, archive="bbb")),
        "labkit.labs.clean._out_of_fold": (
            dict(texts=TEXTS, labels=labels, folds=2, seed=0, embeddings=None),
            dict(texts=TEXTS[::-1], labels=1 - labels, folds=3, seed=1, embeddings=emb)),
        "labkit.labs.federated._fedavg": (
            dict(x=emb, y=labels, parts=[np.array([0, 1]), np.array([2, 3])], x_test=emb, y_test=labels, rounds=2,
                 per_round=1, lr=0.1, local_epochs=1, batch_size=2, hidden=0, seed=0, mu=0.0, dp_clip=None,
                 dp_noise=0.0, progress=True, classes=2),
            dict(x=emb + 1, y=1 - labels, parts=[np.array([0, 2]), np.array([1, 3])], x_test=emb[:2], y_test=labels[:2],
                 rounds=3, per_round=2, lr=0.2, local_epochs=2, batch_size=4, hidden=8, seed=1, mu=0.1, dp_clip=1.0,
                 dp_noise=0.5, classes=3)),
        "labkit.labs.federated._centralised": (
            dict(x=emb, y=labels, x_test=emb, y_test=labels, epochs=1, lr=0.1, batch_size=2, hidden=0, seed=0,
                 classes=2),
            dict(x=emb + 1, y=1 - labels, x_test=emb[:2], y_test=labels[:2], epochs=2, lr=0.2, batch_size=4, hidden=8,
                 seed=1, classes=3)),
        "labkit.labs.federated.privacy._head_run": (
            dict(x=emb, y=labels, evals={"test": emb}, epsilon=None, epochs=1, lr=0.1, batch_size=2, hidden=0,
                 clip=1.0, delta=1e-5, seed=0, classes=2),
            dict(x=emb + 1, y=1 - labels, evals={"test": emb + 1}, epsilon=1.0, epochs=2, lr=0.2, batch_size=4,
                 hidden=8, clip=2.0, delta=1e-6, seed=1, classes=3)),
        "labkit.labs.federated.privacy._bert_run": (
            dict(model=tiny_model(0), tokenizer=tok, texts=TEXTS, labels=labels, evals={"test": TEXTS}, epsilon=None,
                 epochs=1, lr=0.1, batch_size=2, max_len=16, clip=1.0, delta=1e-5, seed=0, progress=True),
            dict(model=tiny_model(1), tokenizer=other_tok, texts=TEXTS[::-1], labels=1 - labels,
                 evals={"test": TEXTS[:1]}, epsilon=1.0, epochs=2, lr=0.2, batch_size=4, max_len=32,
                 clip=2.0, delta=1e-6, seed=1)),
        "labkit.core.text._vocabulary": (
            dict(texts=TEXTS, vocab_size=60, min_frequency=1), dict(texts=TEXTS[:3], vocab_size=70, min_frequency=2)),
        "labkit.labs.pretrain._pretrain_run": (
            dict(cfg=PretrainConfig.for_scale("smoke"), texts=TEXTS, tokenizer=tok, model=tiny_model(0), progress=True),
            dict(cfg=PretrainConfig.for_scale("cpu"), texts=TEXTS[:3], tokenizer=other_tok, model=tiny_model(1))),
        "labkit.labs.pretrain._adapt_run": (
            dict(cfg=AdaptConfig.for_scale("smoke"), texts=TEXTS, body=True, progress=True),
            dict(cfg=AdaptConfig.for_scale("cpu"), texts=TEXTS[:3], body=False)),
        "labkit.core.classifier._fine_tune_run": (
            dict(model=tiny_model(0), tokenizer=tok, texts=TEXTS, labels=labels, name="student", lr=1e-3, steps=5,
                 epochs=None, batch_size=2, max_len=16, seed=0, loss_fn=cross_entropy_loss, targets=None,
                 progress=False),
            dict(model=tiny_model(1), tokenizer=other_tok, texts=TEXTS[::-1], labels=1 - labels, lr=2e-3, steps=6,
                 epochs=1, batch_size=4, max_len=32, seed=1, loss_fn=kd_loss_fn(2.0, 0.5), targets=emb[:, :2])),
        "labkit.labs.adversarial._cached_attacks": (
            dict(model_key="abc", texts=TEXTS, labels=labels, c=constraints("lax"), seed=0, proba_fn=print,
                 progress=True),
            dict(model_key="def", texts=TEXTS[::-1], labels=1 - labels, c=constraints("strict"), seed=1)),
        "labkit.core.export._export": (
            dict(model=tiny_model(0), tokenizer=tok, max_len=16),
            dict(model=tiny_model(1), tokenizer=other_tok)),  # max_len only sizes the traced example
        "labkit.labs.compress.runtime._int8": (dict(fp32=Path("runs/onnx-export-a/model.onnx")),
                                               dict(fp32=Path("runs/onnx-export-b/model.onnx"))),
        "labkit.labs.compress._recovered": (
            dict(model=tiny_model(0), tokenizer=tok, texts=TEXTS, targets=emb[:, :2], steps=5, lr=1e-3, batch_size=2,
                 max_len=16, seed=0),
            dict(model=tiny_model(1), tokenizer=other_tok, texts=TEXTS[:3], targets=emb[:, :2] + 1, steps=6, lr=2e-3,
                 batch_size=4, max_len=32, seed=1)),
        "labkit.labs.compress._scores": (
            dict(made_from={"int8_of": "abc", "per_channel": True}, tokenizer=tok, max_len=16, texts=TEXTS,
                 predict_fn=print),
            dict(made_from={"int8_of": "abc", "per_channel": False}, tokenizer=other_tok, max_len=32,
                 texts=TEXTS[:2])),
        "labkit.labs.compress._structured": (
            dict(teacher=tiny_model(0), tokenizer=tok, texts=TEXTS, labels=labels, targets=emb[:, :2], heads_keep=1,
                 ffn_keep=8, importance_reviews=2, steps=5, lr=1e-3, batch_size=2, max_len=16, seed=0),
            dict(teacher=tiny_model(1), tokenizer=other_tok, texts=TEXTS[:3], labels=1 - labels, targets=emb[:, :2] + 1,
                 heads_keep=2, ffn_keep=16, importance_reviews=3, steps=6, lr=2e-3, batch_size=4, max_len=32, seed=1)),
        "labkit.labs.federated.flower._federation": (
            dict(x=emb, y=labels, parts=[np.array([0, 1]), np.array([2, 3])], x_test=emb, y_test=labels, rounds=2,
                 lr=0.1, local_epochs=1, batch_size=2, hidden=0, seed=0, timeout=60.0, one_at_a_time=False,
                 force=False, classes=2),
            dict(x=emb + 1, y=1 - labels, parts=[np.array([0, 2]), np.array([1, 3])], x_test=emb[:2], y_test=labels[:2],
                 rounds=3, lr=0.2, local_epochs=2, batch_size=4, hidden=8, seed=1, timeout=90.0, one_at_a_time=True,
                 classes=3)),
        "labkit.core.classifier._run_logits": (
            dict(run_folder="student-0123456789abcdef", created=1.0, texts=TEXTS, max_len=16, run=None),
            dict(run_folder="student-fedcba9876543210", created=2.0, texts=TEXTS[:2], max_len=32)),
        "labkit.labs.federated.privacy._noise_multiplier": (
            dict(epsilon=1.0, delta=1e-5, sample_rate=0.01, steps=100, accountant="rdp"),
            dict(epsilon=2.0, delta=1e-6, sample_rate=0.02, steps=200, accountant="prv")),
        "labkit.labs.augment._variants": (
            dict(texts=TEXTS, n_aug=4, strength=0.1, seed=0, guard=True, ops=["replace", "insert", "swap", "delete"]),
            dict(texts=TEXTS[:2], n_aug=2, strength=0.2, seed=1, guard=False, ops=["swap"])),
        "labkit.core.classifier._logits": (
            dict(model=tiny_model(0), tokenizer=tok, texts=TEXTS, max_len=16, kind="teacher-logits"),
            dict(model=tiny_model(1), tokenizer=other_tok, texts=TEXTS[:2], max_len=32)),
    }


def test_every_cached_function_has_samples_here_and_a_version():
    assert sorted(all_cached()) == sorted(samples())
    assert all(fn.kind in cache.VERSIONS for fn in all_cached().values())


@pytest.mark.parametrize("name", sorted(samples()))
def test_each_keyed_argument_changes_the_key_and_no_other_does(name):
    fn = all_cached()[name]
    base, changed = samples()[name]
    assert set(changed) | {k for k in base if k not in fn.keyed} == set(base), "a sample for every argument"
    key = fn.key(**base)
    assert fn.key(**base) == key  # the same arguments, the same key
    for arg, value in changed.items():
        assert fn.key(**{**base, arg: value}) != key, f"{name}: {arg} does not change the key"
    for arg in set(base) - set(fn.keyed):
        other = {"batch_size": 7, "progress": False, "kind": "variant-logits", "name": "defence", "proba_fn": len,
                 "run": object(), "force": True, "max_len": 32, "predict_fn": len}[arg]
        assert fn.key(**{**base, arg: other}) == key, f"{name}: {arg} is excluded but changes the key"


def test_what_cannot_be_keyed_is_refused_with_the_argument_named():
    @cache.cached("test-refuse")
    def f(x, loss_fn):
        return {"x": np.zeros(1)}
    with pytest.raises(TypeError, match=r"cannot key loss_fn=.*\.spec"):
        f.key(1, lambda m, b: 0)
    spec = lambda m, b: 0  # noqa: E731
    spec.spec = {"loss": "zero"}
    assert f.key(1, spec) != f.key(2, spec)
    del cache.CACHED[f.__module__ + "." + f.__qualname__]
    with pytest.raises(TypeError, match="no argument"):
        cache.cached("test-refuse", exclude=("nope",))(lambda x: x)


def test_a_version_bump_changes_every_key_of_its_kind(monkeypatch):
    fn = all_cached()["labkit.core.data._split_rows"]
    before = fn.key("en", 0, 0.15, 0.1, "aaa")
    monkeypatch.setitem(cache.VERSIONS, "review-splits", cache.VERSIONS["review-splits"] + 1)
    assert fn.key("en", 0, 0.15, 0.1, "aaa") != before


def test_a_version_bump_reaches_runs_named_by_an_argument(monkeypatch):
    """Cached fine-tunes are named by their caller ("student", "minilm", ...): raising the
    declared kind's version must still change their keys; a named kind's own entry wins."""
    base, _ = samples()["labkit.core.classifier._fine_tune_run"]
    fn = all_cached()["labkit.core.classifier._fine_tune_run"]
    before = fn.key(**base)
    monkeypatch.setitem(cache.VERSIONS, "fine-tune", cache.VERSIONS["fine-tune"] + 1)
    assert fn.key(**base) != before
    logits, (args, _) = all_cached()["labkit.core.classifier._logits"], samples()["labkit.core.classifier._logits"]
    variant = logits.key(**{**args, "kind": "variant-logits"})
    monkeypatch.setitem(cache.VERSIONS, "variant-logits", cache.VERSIONS["variant-logits"] + 1)
    assert logits.key(**{**args, "kind": "variant-logits"}) != variant and logits.key(**args) == logits.key(**args)
