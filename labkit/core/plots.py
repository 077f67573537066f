"""Core: matplotlib figures that several labs use. Each returns the Axes it drew on.

Leaves out: interactive figures (the explorers in `labkit.labs.pretrain` and `labkit.labs.augment`).
"""
from __future__ import annotations

import numpy as np


def _ax(ax, figsize=(6, 3.5)):
    import matplotlib.pyplot as plt
    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax


def bars(values: dict, title: str = "", ylabel: str = "", ax=None, fmt: str = "{:,}"):
    """A labelled bar per key: ``bars({"positive": 7368, "negative": 5384})``."""
    ax = _ax(ax)
    keys = list(values)
    rects = ax.bar(range(len(keys)), [values[k] for k in keys], color="tab:blue")
    ax.set_xticks(range(len(keys)), keys, rotation=20 if len(keys) > 4 else 0)
    ax.bar_label(rects, labels=[fmt.format(values[k]) for k in keys], fontsize=8)
    ax.set(title=title, ylabel=ylabel or "count")
    return ax


def length_hist(lengths: dict, title: str = "text length", unit: str = "characters", ax=None):
    """Overlaid histograms, one per named list of lengths."""
    ax = _ax(ax)
    top = np.percentile(np.concatenate([np.asarray(v) for v in lengths.values()]), 99)
    for name, v in lengths.items():
        ax.hist(np.clip(v, 0, top), bins=40, alpha=0.55, label=f"{name} (median {np.median(v):.0f})")
    ax.set(title=title, xlabel=f"{unit} (clipped at the 99th percentile)", ylabel="texts")
    ax.legend()
    return ax


def learning_curves(curves: dict, title: str = "accuracy vs number of labels", ax=None,
                    majority: float | None = None):
    """``curves = {name: {n_labels: [acc per seed]}}``: mean line, min-max band, log x.
    ``majority``: the accuracy of always predicting the most common class, drawn dotted."""
    ax = _ax(ax, (6.5, 4))
    for name, curve in curves.items():
        n = np.array(sorted(curve))
        accs = [np.asarray(curve[k]) for k in n]
        mean = np.array([a.mean() for a in accs])
        ax.plot(n, mean, marker="o", label=name)
        ax.fill_between(n, [a.min() for a in accs], [a.max() for a in accs], alpha=0.2)
    if majority is not None:
        ax.axhline(majority, color="grey", ls=":", lw=1, label="majority class")
    ax.set(xscale="log", xlabel="labelled training examples", ylabel="test accuracy", title=title)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return ax


def precision_recall(scores: dict, title: str = "", ax=None):
    """Grouped bars of precision and recall: ``{"PII scrubber": {"precision": .99, "recall": .97}}``."""
    ax = _ax(ax)
    names = list(scores)
    x = np.arange(len(names))
    for k, (metric, color) in enumerate((("precision", "tab:green"), ("recall", "tab:orange"))):
        vals = [scores[n][metric] for n in names]
        r = ax.bar(x + (k - 0.5) * 0.38, vals, 0.38, label=metric, color=color)
        ax.bar_label(r, labels=[f"{v:.2f}" for v in vals], fontsize=8)
    ax.set_xticks(x, names)
    ax.set(ylim=(0, 1.25), title=title, ylabel="score (1 = perfect)")
    ax.legend(loc="upper center", ncol=2, fontsize=8)
    return ax


def confusion(matrix, labels=("negative", "positive"), title: str = "confusion matrix", ax=None):
    """A confusion matrix (rows = truth, columns = prediction) with counts in the cells."""
    ax = _ax(ax, (3.8, 3.4))
    m = np.asarray(matrix)
    ax.imshow(m, cmap="Blues")
    for (i, j), v in np.ndenumerate(m):
        ax.text(j, i, f"{v:,}", ha="center", va="center",
                color="white" if v > m.max() / 2 else "black")
    ax.set_xticks(range(len(labels)), labels)
    ax.set_yticks(range(len(labels)), labels)
    ax.set(xlabel="predicted", ylabel="true", title=title)
    return ax


def intervals(x, results: list, label: str = "", ax=None, scale: float = 100, **style):
    """Means with their 95% intervals (`labkit.core.stats.paired` results, times ``scale``: points)
    as error bars at ``x``. Example: the compute curve of lab 02."""
    ax = _ax(ax)
    mean = np.array([r["mean"] for r in results]) * scale
    low, high = (np.array([r[k] for r in results]) * scale for k in ("low", "high"))
    ax.errorbar(x, mean, yerr=[mean - low, high - mean], capsize=3, label=label, **style)
    return ax
