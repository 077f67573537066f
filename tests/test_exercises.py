"""Every exercise: the worked answer passes, and the two most likely wrong answers fail with
a hint (not a traceback). The answers here are the solutions notebooks' answers."""
import math
import random
from collections import Counter

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from labkit import augment, check, clean, curves, data, finetune, measure, models


def contradiction_rate(texts, labels):
    return sum(len(r) for r in clean.find_contradictions(texts, labels).values()) / len(texts)


def contradiction_groups(texts, labels):  # counts texts, not rows
    return len(clean.find_contradictions(texts, labels)) / len(texts)


def redact(text):
    for s, e, _ in reversed(clean.find_pii(text)):
        text = text[:s] + "█" * (e - s) + text[e:]
    return text


def redact_forwards(text):  # offsets shift after the first replacement
    for s, e, _ in clean.find_pii(text):
        text = text[:s] + "█" + text[e:]
    return text


def word_spans(tokens):
    spans = []
    for i, t in enumerate(tokens):
        if t.startswith("##") and spans:
            spans[-1].append(i)
        else:
            spans.append([i])
    return spans


def masked_accuracy(logits, labels):
    keep = labels != -100
    return float((logits.argmax(-1)[keep] == labels[keep]).float().mean())


def negation_accuracy(texts, labels, predictions):
    mask = finetune.slices(texts)["negation"]
    return float((np.asarray(predictions)[mask] == np.asarray(labels)[mask]).mean())


def mean_pool(hidden, mask):
    m = mask.unsqueeze(-1).float()
    return (hidden * m).sum(1) / m.sum(1)


def strength_of(original, variant):
    words = original.split()
    return sum((Counter(words) - Counter(variant.split())).values()) / len(words)


def guarded_delete(text, p, seed):
    words = text.split()
    keep = augment.protected_positions(words)
    rng = random.Random(seed)
    return " ".join(w for i, w in enumerate(words) if i in keep or rng.random() >= p)


def grad_ratio():
    norms = []
    for t in (1.0, 4.0):
        s = torch.tensor([[0.5, -0.5]], requires_grad=True)
        F.kl_div(F.log_softmax(s / t, -1), F.softmax(torch.tensor([[2.0, -2.0]]) / t, -1),
                 reduction="batchmean").backward()
        norms.append(s.grad.norm().item())
    return norms[1] / norms[0]


def parameter_ratio():
    from labkit import classifier, pretrain
    cfg = pretrain.PretrainConfig.for_scale("cpu")
    student = classifier.small_classifier(models.small_bert(cfg.vocab_size, cfg.hidden, cfg.layers,
                                                            cfg.heads), pretrained=False)
    return measure.parameters(classifier.minilm_classifier()[1]) / measure.parameters(student)


def right_and_wrong(ex):
    """(the right answer, two likely wrong ones) for exercise ``ex``."""
    en = data.load_reviews("en")
    if ex == "00.1":
        return np.sum(en["label"]), [len(en["label"]) - sum(en["label"]), sum(en["label"]) / len(en["label"])]
    if ex == "00.2":
        zh = data.load_reviews("zh")
        neg = [len(t) for t, y in zip(zh["text"], zh["label"]) if y == 0]
        return np.median(neg), [np.median([len(t) for t in zh["text"]]), np.mean(neg)]
    if ex == "00.3":
        return len(set(en["source"])), [len(en["source"]), en.num_rows // 10]
    if ex == "01.1":
        return contradiction_rate, [contradiction_groups, lambda t, y: 0.0]
    if ex == "01.2":
        raw = data.load_reviews("zh", raw=True).filter(lambda r: bool(r["text"].strip()))
        naive = raw.train_test_split(test_size=0.15, seed=0)
        leaks = clean.count_leaks(naive["train"]["text"], naive["test"]["text"])
        exact = len(set(naive["test"]["text"]) & set(naive["train"]["text"]))
        return leaks, [0, exact if exact != leaks else leaks + 1]
    if ex == "01.3":
        return redact, [redact_forwards, lambda t: clean.scrub_pii(t)[0]]
    if ex == "02.1":
        return word_spans, [lambda toks: [[i] for i in range(len(toks))],
                            lambda toks: [list(range(len(toks)))] if toks else []]
    if ex == "02.2":
        return 10_000 * 0.15 * 0.1, [10_000 * 0.15, 10_000 * 0.15 * 0.8]
    if ex == "02.3":
        return masked_accuracy, [lambda lg, lb: float((lg.argmax(-1) == lb).float().mean()),
                                 lambda lg, lb: float((lb != -100).float().mean())]
    if ex == "03.1":
        return negation_accuracy, [lambda t, y, p: float(np.mean(np.asarray(p) == np.asarray(y))),
                                   lambda t, y, p: float(np.mean(finetune.slices(t)["negation"]))]
    if ex == "03.2":
        return mean_pool, [lambda h, m: h.mean(1), lambda h, m: h[:, 0]]
    if ex == "03.3":
        x_train, y_train, x_test, y_test = data.review_arrays()
        val = data.review_splits()["validation"]
        rows = data.sample_per_class(y_train, 500, 0)
        right = curves.baseline_accuracy(x_train[rows], y_train[rows], val["text"], val["label"])
        on_test = curves.baseline_accuracy(x_train[rows], y_train[rows], x_test, y_test)
        return right, [on_test, float(np.mean(val["label"]))]
    if ex == "04.1":
        return strength_of, [lambda o, v: 1 - len(set(v.split()) & set(o.split())) / len(set(o.split())),
                             lambda o, v: abs(len(o.split()) - len(v.split())) / len(o.split())]
    if ex == "04.2":
        def blind(text, p, seed):  # deletes protected words too
            rng = random.Random(seed)
            return " ".join(w for w in text.split() if rng.random() >= p)
        return guarded_delete, [blind, lambda text, p, seed: text]
    if ex == "04.3":
        th = augment.Thesaurus.load()
        words = ("good", "bad", "funny", "boring", "great", "awful")
        right = sum(th.polarity.get(c, 0) * th.polarity.get(w, 0) < 0
                    for w in words for c in th.synonyms(w, same_polarity=False))
        with_check = sum(th.polarity.get(c, 0) * th.polarity.get(w, 0) < 0
                         for w in words for c in th.synonyms(w))
        return right, [with_check, sum(len(th.synonyms(w, same_polarity=False)) for w in words)]
    if ex == "05.1":
        return math.exp(0.5) / (1 + math.exp(0.5)), [1 / (1 + math.exp(-2)), 0.5]
    if ex == "05.2":
        return grad_ratio(), [1 / 16, 1 / 4]
    if ex == "05.3":
        return parameter_ratio(), [1 / parameter_ratio(), 22.7 / 1.5]
    if ex == "06.1":
        return (lambda t, f: int(f * len(t.split()) + 1e-9)), [
            lambda t, f: round(f * len(t.split())), lambda t, f: max(1, int(f * len(t.split())))]
    if ex == "06.2":
        def fgm(g, mask, eps):
            g = g * mask.unsqueeze(-1)
            return eps * g / g.flatten(1).norm(dim=1).view(-1, 1, 1)

        def unmasked(g, mask, eps):
            return eps * g / g.flatten(1).norm(dim=1).view(-1, 1, 1)

        def per_token(g, mask, eps):
            g = g * mask.unsqueeze(-1)
            return eps * g / g.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        return fgm, [unmasked, per_token]
    if ex == "06.3":
        from labkit import adversarial
        pol = augment.Thesaurus.load().polarity
        near = adversarial.WordVectors.load().neighbours("good", 10)
        right = sum(pol.get(w, 0) * pol.get("good", 0) < 0 for w, _ in near)
        return right, [10, sum(pol.get(w, 0) == pol.get("good", 0) for w, _ in near)]
    if ex == "07.1":
        return 924_000, [462_000, 30 * 5 * (384 * 2 + 2)]
    if ex == "07.2":
        from labkit import privacy
        right = privacy.client_dp_noise_multiplier(8.0, 10, 100, 30, 1e-5)
        return right, [privacy.client_dp_noise_multiplier(8.0, 100, 100, 30, 1e-5), right * 1.2]
    if ex == "07.3":
        return (lambda y, parts: [float(np.mean(np.asarray(y)[p])) for p in parts]), [
            lambda y, parts: [float(np.mean(y))] * len(parts),
            lambda y, parts: [int(np.sum(np.asarray(y)[p])) for p in parts]]
    if ex == "08.1":
        return 614_400, [4 * (384 * 1536 + 1536), 384 * 1536 + 1536 * 4]
    if ex == "08.2":
        def per_layer(ws, sparsity):
            out = []
            for w in ws:
                k = int(sparsity * w.numel())
                t = w.abs().flatten().kthvalue(k).values if k else -1.0
                out.append(w * (w.abs() > t))
            return out

        def global_(ws, sparsity):
            flat = torch.cat([w.abs().flatten() for w in ws])
            t = flat.kthvalue(int(sparsity * len(flat))).values
            return [w * (w.abs() > t) for w in ws]
        return per_layer, [global_, lambda ws, s: [w.abs() * (w.abs() > 0.15) for w in ws]]
    if ex == "08.3":
        return 294_912, [3 * 6 * 32 * 384, 4 * 12 * 32 * 384]
    if ex == "09.1":
        return 0.2, [0.9 - 0.7 * 0.9, 0.3]
    if ex == "09.2":
        return 320, [40, 40 / 8]
    if ex == "09.3":
        def ece(probs, labels, bins):
            conf, right = probs.max(1), probs.argmax(1) == labels
            edges, total = np.linspace(0, 1, bins + 1), 0.0
            for lo, hi in zip(edges[:-1], edges[1:]):
                inside = (conf > lo) & (conf <= hi)
                if inside.any():
                    total += inside.mean() * abs(right[inside].mean() - conf[inside].mean())
            return total

        def unweighted(probs, labels, bins):  # the mean gap over non-empty bins, not weighted by size
            conf, right = probs.max(1), probs.argmax(1) == labels
            edges, gaps = np.linspace(0, 1, bins + 1), []
            for lo, hi in zip(edges[:-1], edges[1:]):
                inside = (conf > lo) & (conf <= hi)
                if inside.any():
                    gaps.append(abs(right[inside].mean() - conf[inside].mean()))
            return float(np.mean(gaps))
        return ece, [unweighted, lambda p, y, b: float(abs((p.argmax(1) == y).mean() - p.max(1).mean()))]
    raise KeyError(ex)


def test_every_lab_has_at_least_three_checked_exercises():
    per_lab = Counter(ex.split(".")[0] for ex in check.EXERCISES)
    assert set(per_lab) == {"00", "01", "02", "03", "04", "05", "06", "07", "08", "09"}
    assert min(per_lab.values()) >= 3, per_lab


@pytest.mark.parametrize("ex", list(check.EXERCISES))
def test_right_answer_passes_and_likely_wrong_ones_get_a_hint(ex, capsys):
    right, wrongs = right_and_wrong(ex)
    assert check.answer(ex, right) is True, capsys.readouterr().out
    capsys.readouterr()
    for wrong in wrongs:
        assert check.answer(ex, wrong) is False, ex
        out = capsys.readouterr().out
        assert out.startswith(f"[{ex}] not yet:") and "Traceback" not in out, out


def test_unanswered_and_unknown_exercises_return_false():
    assert check.answer("00.1", None) is False and check.answer("00.1", ...) is False
    assert check.answer("99.9", 1) is False
