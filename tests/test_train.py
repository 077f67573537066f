import numpy as np
import pytest
import torch
from torch import nn

from labkit.core import metrics
from labkit.core import train as T


class Bag(nn.Module):
    """Mean of token embeddings -> logits: the smallest text classifier."""

    def __init__(self, vocab=20, dim=8, classes=2):
        super().__init__()
        self.emb = nn.EmbeddingBag(vocab, dim)
        self.out = nn.Linear(dim, classes)

    def forward(self, input_ids):
        return self.out(self.emb(input_ids))


def toy_loader(n=64, batch=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=g)
    ids = torch.randint(2, 20, (n, 5), generator=g)
    ids[:, 0] = y  # token 0 or 1 gives the label away
    return [{"input_ids": ids[i:i + batch], "labels": y[i:i + batch]} for i in range(0, n, batch)]


def test_loss_falls_and_accuracy_rises():
    torch.manual_seed(0)
    model, data = Bag(), toy_loader()
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    hist = T.train(model, data, opt, epochs=15, eval_loader=data, eval_every=8, progress=False)
    assert len(hist.loss) == 60 and hist.step[-1] == 60
    assert np.mean(hist.loss[-4:]) < 0.5 * np.mean(hist.loss[:4])
    assert hist.last("accuracy") == 1.0 and hist.eval_step[-1] == 60
    assert len(hist.eval) == 1 + 60 // 8 and hist.examples == 64 * 15 and hist.seconds > 0


def test_steps_and_custom_loss():
    calls = []

    def loss_fn(model, batch):
        calls.append(batch["input_ids"].shape[0])
        return T.cross_entropy_loss(model, batch)

    model = Bag()
    hist = T.train(model, toy_loader(), torch.optim.SGD(model.parameters(), lr=0.1),
                   loss_fn=loss_fn, steps=5, progress=False)
    assert calls == [16] * 5 and hist.step == [1, 2, 3, 4, 5] and hist.eval == []
    calls.clear()  # steps cycle through the loader: 4 batches, 10 steps
    T.train(model, toy_loader(), torch.optim.SGD(model.parameters(), lr=0.1),
            loss_fn=loss_fn, steps=10, progress=False)
    assert len(calls) == 10


def test_bad_inputs_raise_clear_errors():
    model = Bag()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="empty"):
        T.train(model, [], opt, epochs=1, progress=False)
    with pytest.raises(ValueError, match="exactly one of epochs= and steps="):
        T.train(model, toy_loader(), opt, progress=False)
    with pytest.raises(ValueError, match="exactly one"):
        T.train(model, toy_loader(), opt, epochs=1, steps=3, progress=False)
    with pytest.raises(TypeError, match="dicts of tensors"):
        T.train(model, [(torch.zeros(2, 5, dtype=torch.long), torch.zeros(2))], opt, epochs=1,
                progress=False)
    with pytest.raises(FloatingPointError, match="learning rate"):
        T.train(model, toy_loader(), opt, loss_fn=lambda m, b: torch.tensor(float("nan")),
                epochs=1, progress=False)


def test_metrics_hand_case():
    m = metrics.summary([0, 1, 1, 1], [0, 1, 0, 1])
    assert m["accuracy"] == 0.75 and m["confusion"] == [[1, 0], [1, 2]] and m["n"] == 4
    assert m["macro_f1"] == pytest.approx((2 / 3 + 0.8) / 2)
    with pytest.raises(ValueError, match="as many predictions"):
        metrics.summary([0, 1], [0])


def test_evaluate_needs_labels():
    model = Bag()
    batches = [{"input_ids": b["input_ids"]} for b in toy_loader()]
    logits, labels = T.predict(model, batches)
    assert logits.shape == (64, 2) and (labels == -1).all()
    with pytest.raises(ValueError, match="labels"):
        T.evaluate(model, batches)


def test_warmup_linear_schedule_hand_case():
    model = Bag()
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    sched = T.warmup_linear(opt, warmup=2, total=6)
    seen = []
    for _ in range(6):
        seen.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert seen == pytest.approx([0.5, 1.0, 1.0, 0.75, 0.5, 0.25])
    with pytest.raises(ValueError, match="warmup"):
        T.warmup_linear(opt, warmup=0, total=6)


def test_adamw_trains_only_trainable_weights():
    model = Bag()
    model.emb.weight.requires_grad_(False)
    opt = T.adamw(model, lr=1e-3)
    assert [p for g in opt.param_groups for p in g["params"]] == list(model.out.parameters())
    assert opt.param_groups[0]["weight_decay"] == 0.01
    for p in model.parameters():
        p.requires_grad_(False)
    with pytest.raises(ValueError, match="no trainable weights"):
        T.adamw(model, lr=1e-3)
