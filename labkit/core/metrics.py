"""Core: the scores every lab reports. Accuracy (`accuracy`), macro-F1 (`macro_f1`, over many
resamples at once), the confusion matrix (`confusion`), all three together (`summary`);
probabilities (`softmax`, with a temperature), their negative log-likelihood (`nll`) and
calibration (`reliability`, `ece`); and intervals over resampled reviews (`bootstrap`,
`paired_difference`). Inputs are numpy arrays (or lists): logits (reviews, classes) or
predicted classes, and integer labels.

Example: ``summary([0, 1, 1], [0, 1, 0])["accuracy"]`` -> 0.667.
Leaves out: scores of other tasks (ranking, regression), and per-seed statistics
(`labkit.core.stats`).
"""
from __future__ import annotations

import numpy as np

from labkit.core import checks

BINS = 15  # ECE over 15 equal-width confidence bins (Guo et al. 2017)


def check_scores(logits, labels, what: str = "logits") -> tuple[np.ndarray, np.ndarray]:
    """(logits, labels) as arrays, after checking their shapes agree and every label names a
    class, with no NaN or infinity; a ValueError that names ``what`` otherwise."""
    logits = checks.finite(logits, what, "a model that diverged, or a broken score; fix or drop those rows "
                           "before scoring")
    labels = np.asarray(labels)
    if logits.ndim != 2 or logits.shape[1] < 2:
        raise ValueError(f"{what} must be a 2-D array (reviews, classes) with at least 2 classes; "
                         f"got shape {logits.shape}")
    if labels.shape != (len(logits),):
        raise ValueError(f"labels must be 1-D with one label per row of {what}: got {labels.shape} "
                         f"for {len(logits)} rows")
    if len(labels) == 0:
        raise ValueError(f"no reviews: {what} and labels are empty")
    labels = checks.labels(labels, classes=logits.shape[1], why="a score of the labels",
                           fix=f"{what} have {logits.shape[1]} classes: a label is one of them")
    return logits, labels


def softmax(logits, temperature: float = 1.0) -> np.ndarray:
    """Class probabilities of ``logits / temperature`` (rows sum to 1)."""
    checks.temperature(temperature)
    z = np.asarray(logits, dtype=np.float64) / temperature
    z = np.exp(z - z.max(-1, keepdims=True))
    return z / z.sum(-1, keepdims=True)


def nll(logits, labels, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood of the labels (nats) under ``softmax(logits / T)``."""
    logits, labels = check_scores(logits, labels)
    z = logits / checks.temperature(temperature)
    m = z.max(-1, keepdims=True)
    logp = z - m - np.log(np.exp(z - m).sum(-1, keepdims=True))
    return float(-logp[np.arange(len(labels)), labels].mean())


def reliability(probs, labels, bins: int = BINS) -> dict:
    """Per confidence bin (equal width on (0, 1]): reviews, mean confidence, accuracy.
    The confidence of a review is its top class probability."""
    probs, labels = check_scores(probs, labels, "probs")
    checks.probabilities(probs)  # logits here would give a meaningless ECE
    bins = checks.number(bins, "bins", low=1, low_open=False, integer=True, fix="equal-width confidence bins, e.g. 15")
    conf, right = probs.max(-1), probs.argmax(-1) == labels
    which = np.clip(np.ceil(conf * bins).astype(int) - 1, 0, bins - 1)
    n = np.bincount(which, minlength=bins)
    safe = np.maximum(n, 1)
    return {"edges": np.linspace(0, 1, bins + 1), "n": n,
            "confidence": np.bincount(which, conf, bins) / safe,
            "accuracy": np.bincount(which, right.astype(float), bins) / safe}


def ece(probs, labels, bins: int = BINS) -> float:
    """Expected calibration error: sum over bins of (share of reviews) x |accuracy -
    confidence|. Example: 10 reviews at confidence 0.9 of which 7 are right -> 0.2."""
    r = reliability(probs, labels, bins)
    return float((r["n"] / r["n"].sum() * np.abs(r["accuracy"] - r["confidence"])).sum())


def macro_f1(labels, pred, classes: int) -> np.ndarray:
    """Macro-F1 of each row of ``pred`` against the same row of ``labels`` (2-D arrays of
    resampled reviews, or 1-D for one score); a class never predicted nor present scores 0.
    ``classes`` must cover every label and prediction (a class left out would vanish from
    the average)."""
    labels, pred, classes = _classes_cover(classes, np.atleast_2d(labels), np.atleast_2d(pred))
    f1 = []
    for c in range(classes):
        tp = ((pred == c) & (labels == c)).sum(-1)
        fp_fn = ((pred == c) != (labels == c)).sum(-1)
        f1.append(2 * tp / np.maximum(2 * tp + fp_fn, 1))
    return np.mean(f1, axis=0)


def bootstrap(labels, pred, classes: int = 2, resamples: int = 2000, seed: int = 0,
              confidence: float = 0.95) -> dict:
    """Accuracy and macro-F1 with percentile intervals over ``resamples`` resamples of the
    reviews (with replacement). Returns {"accuracy", "ci", "macro_f1", "f1_ci", "n"}."""
    labels, pred = np.asarray(labels), np.asarray(pred)
    if labels.shape != pred.shape or labels.ndim != 1 or len(labels) == 0:
        raise ValueError(f"labels and pred must be equally long, non-empty 1-D arrays; got shapes "
                         f"{labels.shape} and {pred.shape}")
    labels, pred, classes = _classes_cover(classes, labels, pred)
    resamples, confidence = _resampling(resamples, confidence)
    idx = np.random.default_rng(seed).integers(0, len(labels), (resamples, len(labels)))
    acc = (labels[idx] == pred[idx]).mean(-1)
    f1 = macro_f1(labels[idx], pred[idx], classes)
    q = [(1 - confidence) / 2 * 100, (1 + confidence) / 2 * 100]
    return {"accuracy": float((labels == pred).mean()), "ci": [float(x) for x in np.percentile(acc, q)],
            "macro_f1": float(macro_f1(labels, pred, classes)[0]),
            "f1_ci": [float(x) for x in np.percentile(f1, q)], "n": int(len(labels))}


def paired_difference(labels, pred_a, pred_b, resamples: int = 2000, seed: int = 0, confidence: float = 0.95) -> dict:
    """Accuracy of ``pred_a`` minus that of ``pred_b`` on the same reviews, with a percentile
    interval over resampled reviews (each draw keeps a review's two predictions together:
    a paired bootstrap). Returns {"difference", "ci", "n"}. Example: the same reviews clean
    (a) and with typos (b): the interval of what the typos cost."""
    labels, a, b = np.asarray(labels), np.asarray(pred_a), np.asarray(pred_b)
    if not labels.shape == a.shape == b.shape or labels.ndim != 1 or len(labels) == 0:
        raise ValueError(f"labels and both predictions must be equally long, non-empty 1-D arrays; got shapes "
                         f"{labels.shape}, {a.shape} and {b.shape}")
    labels, a, b = (checks.labels(v, classes=checks.ANY, name=n) for v, n in ((labels, "labels"), (a, "pred_a"),
                                                                             (b, "pred_b")))
    resamples, confidence = _resampling(resamples, confidence)
    per_review = (a == labels).astype(float) - (b == labels)
    idx = np.random.default_rng(seed).integers(0, len(labels), (resamples, len(labels)))
    q = [(1 - confidence) / 2 * 100, (1 + confidence) / 2 * 100]
    return {"difference": float(per_review.mean()),
            "ci": [float(x) for x in np.percentile(per_review[idx].mean(-1), q)], "n": int(len(labels))}


def confusion(labels, pred, classes: int = 2) -> np.ndarray:
    """Counts: rows are the true class, columns the predicted one."""
    labels, pred, classes = _classes_cover(classes, labels, pred)
    return np.bincount(labels * classes + pred, minlength=classes ** 2).reshape(classes, classes)


def accuracy(scores, labels) -> float:
    """Share of ``labels`` predicted right; ``scores`` are logits or probabilities (reviews,
    classes), whose argmax is the prediction, or the predicted classes themselves."""
    scores, labels = np.asarray(scores), np.asarray(labels)
    pred = scores.argmax(-1) if scores.ndim == 2 else scores
    if pred.shape != labels.shape or labels.ndim != 1 or len(labels) == 0:
        raise ValueError(f"need one prediction per label (>0, 1-D); got predictions of shape {pred.shape} "
                         f"for labels of shape {labels.shape}")
    if scores.ndim == 2:
        scores, labels = check_scores(scores, labels, "scores")
    else:
        labels = checks.labels(labels, classes=checks.ANY, why="accuracy")
        checks.labels(pred, n=len(labels), classes=checks.ANY, name="predictions", why="accuracy")
    return float((pred == labels).mean())


def summary(y_true, y_pred, num_labels: int | None = None) -> dict:
    """Accuracy, macro-F1 and the confusion matrix (rows = truth, columns = prediction), and
    the number of reviews. ``num_labels``: the number of classes (None: 2, the reviews'; every
    label and prediction is checked against it).

    Example: ``summary([0, 1, 1], [0, 1, 0])["accuracy"]`` -> 0.667.
    """
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if len(y_true) == 0 or len(y_true) != len(y_pred):
        raise ValueError(f"need as many predictions as labels (>0); got {len(y_pred)} "
                         f"predictions for {len(y_true)} labels")
    y_true, y_pred, k = _classes_cover(checks.classes_of(num_labels, "num_labels"), y_true, y_pred)
    return {"accuracy": float((y_true == y_pred).mean()), "macro_f1": float(macro_f1(y_true, y_pred, k)[0]),
            "confusion": confusion(y_true, y_pred, k).tolist(), "n": int(len(y_true))}


def _resampling(resamples, confidence) -> tuple[int, float]:
    """(resamples, confidence) checked: at least one resample, a confidence in (0, 1)."""
    return (checks.number(resamples, "resamples", low=1, low_open=False, integer=True,
                          fix="bootstrap resamples; 2000 is the course's"),
            checks.number(confidence, "confidence", low=0, high=1, high_open=True,
                          fix="a share, e.g. 0.95 for a 95% interval, not 95"))


def _classes_cover(classes, labels, pred) -> tuple[np.ndarray, np.ndarray, int]:
    """(labels, pred, classes): both as int64 arrays of their shape (1-D, or 2-D rows of
    resampled reviews) after checking that they are class numbers in 0..classes-1, so that
    no class is left out of the scores."""
    k = checks.classes_of(classes)
    labels, pred = np.asarray(labels), np.asarray(pred)
    flat = [checks.labels(a.reshape(-1), classes=k, name=name, why="a score",
                          fix=f"pass classes=K (K = how many; classes={classes} leaves a class out of the scores)")
            for a, name in ((labels, "labels"), (pred, "pred"))]
    return flat[0].reshape(labels.shape), flat[1].reshape(pred.shape), k
