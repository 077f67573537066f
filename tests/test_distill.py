import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from labkit.core import classifier, kd, models, text
from labkit.labs import distill as D

POS = ["a good film", "a great cast", "good and great", "a fine good plot", "great fun"]
NEG = ["a bad film", "an awful cast", "bad and awful", "a dull bad plot", "awful mess"]


def test_kd_loss_matches_a_hand_computation():
    s = torch.tensor([[1.0, 0.0]])
    t = torch.tensor([[0.0, 2.0]])
    y = torch.tensor([1])
    T, alpha = 2.0, 0.25
    # softmax at T=2: student [e^.5, 1]/(e^.5+1), teacher [1, e]/(1+e)
    ps = [math.exp(0.5) / (math.exp(0.5) + 1), 1 / (math.exp(0.5) + 1)]
    pt = [1 / (1 + math.e), math.e / (1 + math.e)]
    kl = sum(q * math.log(q / p) for p, q in zip(ps, pt))
    ce = -math.log(1 / (math.e + 1))  # log-softmax of the student's logit for class 1
    want = alpha * T * T * kl + (1 - alpha) * ce
    assert kd.kd_loss(s, t, y, T, alpha).item() == pytest.approx(want, rel=1e-6)


def test_t1_alpha0_is_plain_cross_entropy_and_alpha1_ignores_labels():
    g = torch.Generator().manual_seed(0)
    s, t = torch.randn(6, 3, generator=g), torch.randn(6, 3, generator=g)
    y = torch.tensor([0, 2, 1, 1, 0, 2])
    assert torch.allclose(kd.kd_loss(s, t, y, 1.0, 0.0), F.cross_entropy(s, y))
    assert torch.allclose(kd.kd_loss(s, t, y, 3.0, 1.0), kd.kd_loss(s, t, 2 - y, 3.0, 1.0))
    assert kd.kd_loss(t, t, y, 2.0, 1.0).item() == pytest.approx(0, abs=1e-6)  # same = no loss


def test_unlabelled_rows_get_only_the_soft_part():
    g = torch.Generator().manual_seed(1)
    s, t = torch.randn(4, 2, generator=g), torch.randn(4, 2, generator=g)
    y = torch.tensor([1, -1, 0, -1])
    soft = kd.kd_loss(s, t, y, 2.0, 1.0)
    hard = F.cross_entropy(s[[0, 2]], y[[0, 2]])
    assert torch.allclose(kd.kd_loss(s, t, y, 2.0, 0.5), 0.5 * soft + 0.5 * hard)
    none = kd.kd_loss(s, t, torch.full((4,), -1), 2.0, 0.5)  # no labels at all: finite
    assert torch.allclose(none, 0.5 * soft)


def test_bad_settings_are_refused():
    s = torch.zeros(1, 2)
    with pytest.raises(ValueError, match="temperature"):
        kd.kd_loss(s, s, torch.tensor([0]), 0.0, 0.5)
    with pytest.raises(ValueError, match=r"alpha=1\.5: it must be >= 0 and <= 1"):
        kd.kd_loss(s, s, torch.tensor([0]), 1.0, 1.5)
    with pytest.raises(ValueError, match="temperature"):
        kd.soft_targets([[1.0, 0.0]], -1)


def test_soft_targets_flatten_with_temperature():
    p1, p4 = kd.soft_targets([[2.0, 0.0]], 1), kd.soft_targets([[2.0, 0.0]], 4)
    assert p1[0, 0] == pytest.approx(1 / (1 + math.exp(-2)), rel=1e-5)
    assert 0.5 < p4[0, 0] < p1[0, 0]


@pytest.fixture(scope="module")
def tok():
    return text.train_wordpiece((POS + NEG) * 10, vocab_size=60, min_frequency=1)


def tiny(tok, seed=0, hidden=32):
    mlm = models.small_bert(len(tok), hidden=hidden, layers=1, heads=2, max_len=32)
    return classifier.small_classifier(mlm, pretrained=False, seed=seed)


def test_student_learns_from_teacher_logits_alone(tok):
    # labels all hidden (-1): the student can only learn from the teacher's soft targets
    texts = POS + NEG
    teacher = np.array([[-3.0, 3.0]] * 5 + [[3.0, -3.0]] * 5, dtype=np.float32)
    model = tiny(tok)
    before = classifier.accuracy(model, tok, texts, [1] * 5 + [0] * 5)
    hist = classifier.fine_tune(model, tok, texts, np.full(10, -1), lr=3e-3, steps=60,
                              batch_size=4, progress=False, loss_fn=kd.kd_loss_fn(2.0, 1.0),
                              targets=teacher)
    assert hist.loss[-1] < hist.loss[0]
    assert before < 1.0 and classifier.accuracy(model, tok, texts, [1] * 5 + [0] * 5) == 1.0


def test_teacher_logits_are_cached(tok, tmp_cache):
    model = tiny(tok).eval()
    first = D.teacher_logits(model, tok, POS + NEG)
    assert first.shape == (10, 2)
    assert len(list((tmp_cache / "runs").glob("teacher-logits-*"))) == 1
    np.testing.assert_allclose(D.teacher_logits(model, tok, POS + NEG), first, atol=1e-6)
    other = tiny(tok, seed=1).eval()
    D.teacher_logits(other, tok, POS + NEG)  # other weights: a new entry, not the old one
    assert len(list((tmp_cache / "runs").glob("teacher-logits-*"))) == 2
    with torch.no_grad():  # a change too small for a rounded sum still changes the key
        other.head.bias[0] += 1e-6
    D.teacher_logits(other, tok, POS + NEG)
    assert len(list((tmp_cache / "runs").glob("teacher-logits-*"))) == 3


def test_kd_loss_fn_names_itself_for_the_run_cache():
    assert kd.kd_loss_fn(4.0, 1.0).spec == {"loss": "kd", "temperature": 4.0, "alpha": 1.0}
    with pytest.raises(ValueError, match="temperature"):
        kd.kd_loss_fn(0.0, 0.5)


def test_loader_carries_targets_and_checks_them(tok):
    dl = classifier.loader(tok, POS, [1] * 5, batch_size=5, targets=np.ones((5, 2)))
    batch = next(iter(dl))
    assert batch["targets"].shape == (5, 2) and batch["targets"].dtype == torch.float32
    with pytest.raises(ValueError, match="4 target rows for 5 texts"):
        classifier.loader(tok, POS, [1] * 5, targets=np.ones((4, 2)))


def test_student_run_kinds_share_what_they_should(tok, tmp_cache):
    texts, labels = POS + NEG, [1] * 5 + [0] * 5
    teacher = np.array([[-2.0, 2.0]] * 5 + [[2.0, -2.0]] * 5, dtype=np.float32)
    mlm = models.small_bert(len(tok), hidden=32, layers=1, heads=2, max_len=32)
    cfg = D.DistillConfig(steps=4, batch_size=4, max_len=16)
    rows = np.array([0, 1, 5, 6])
    run = lambda kind, **kw: kd.student_run(mlm, tok, kind, texts, labels, teacher, rows, 0, cfg, **kw)  # noqa: E731
    hard, dist, unl = (run(k) for k in kd.KINDS)
    assert hard.info["examples"] == dist.info["examples"] == 4 and unl.info["examples"] == 10
    assert len({hard.folder, dist.folder, unl.folder}) == 3
    assert run("hard labels", temperature=1.0).hit  # T and alpha do not touch a hard-label run
    assert not run("distilled", temperature=1.0).hit and run("distilled", temperature=1.0).hit
    with pytest.raises(ValueError, match="unknown kind"):
        run("self-taught")
