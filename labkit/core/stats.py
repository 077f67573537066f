"""Core: how sure is a difference? Paired comparisons over seeds, with confidence intervals
corrected for the number of comparisons a lab makes.

Two arms that share data and seeds are compared seed by seed (`paired`): the luck of a
label sample or an initialisation cancels out, and the t interval of the mean difference
says whether an effect stands above what reseeding does. With ``comparisons`` > 1 the
interval is widened (Bonferroni) so that all of a lab's intervals hold together.
`proportion` gives a rate measured on n items (a success rate over attacked reviews) its
Wilson interval, which stays inside [0, 1] and behaves at small n. `prediction` says where
one more run of a committed study should land: what a lab's live run is checked against.
Leaves out: bootstrap intervals over test reviews (lab 09, `labkit.labs.evaluate`).
"""
from __future__ import annotations

import math

import numpy as np


def paired(a, b, comparisons: int = 1, confidence: float = 0.95) -> dict:
    """Mean of ``a - b`` (paired, same seeds in the same order) with its t interval.

    Returns {"mean", "low", "high", "std", "n", "excludes_zero"}; with one pair the interval
    is unbounded. Example: ``paired([0.72, 0.73, 0.71], [0.70, 0.70, 0.69])["mean"]`` -> 0.0233.
    """
    from scipy import stats
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape or a.ndim != 1 or len(a) == 0:
        raise ValueError(f"paired() needs two equally long, non-empty lists of results (one per "
                         f"seed, same order); got shapes {a.shape} and {b.shape}")
    if comparisons < 1 or not 0 < confidence < 1:
        raise ValueError(f"comparisons={comparisons} must be >= 1, confidence={confidence} in (0, 1)")
    d = a - b
    n, mean = len(d), float(d.mean())
    std = float(d.std(ddof=1)) if n > 1 else math.nan
    if n > 1:
        t = stats.t.ppf(1 - (1 - confidence) / (2 * comparisons), n - 1)
        half = t * std / math.sqrt(n)
    else:
        half = math.inf
    low, high = float(mean - half), float(mean + half)
    return {"mean": mean, "low": low, "high": high, "std": std, "n": n,
            "excludes_zero": bool(low > 0 or high < 0)}


def describe(interval: dict, scale: float = 100, unit: str = "points") -> str:
    """``+1.4 points [+0.2, +2.6]``: a `paired` result as text (differences x ``scale``)."""
    if interval["n"] < 2:
        return f"{interval['mean'] * scale:+.1f} {unit} (one seed: no interval)"
    return (f"{interval['mean'] * scale:+.1f} {unit} "
            f"[{interval['low'] * scale:+.1f}, {interval['high'] * scale:+.1f}]")


def proportion(k: int, n: int, confidence: float = 0.95) -> dict:
    """The Wilson score interval of a rate of ``k`` in ``n`` (Wilson 1927): {"rate", "low",
    "high", "n"}. Example: ``proportion(26, 52)`` -> rate 0.5, interval about [0.37, 0.63]."""
    from scipy.stats import norm
    if n < 1 or not 0 <= k <= n:
        raise ValueError(f"k={k}, n={n}: a rate needs 0 <= k <= n and n >= 1")
    z, rate = float(norm.ppf(0.5 + confidence / 2)), k / n
    centre = (rate + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(rate * (1 - rate) / n + z * z / (4 * n * n))
    return {"rate": rate, "low": max(0.0, centre - half), "high": min(1.0, centre + half), "n": n}


def prediction(runs, comparisons: int = 1, confidence: float = 0.95, floor: float = 0.01) -> dict:
    """Where one more run should land, given a study's ``runs`` (one value per seed): the t
    prediction interval mean +- t(n - 1) x sd x sqrt(1 + 1/n), at ``confidence`` corrected
    for ``comparisons`` checks (Bonferroni: each at 1 - (1 - confidence) / comparisons). The
    standard deviation is floored at ``floor`` (a point of accuracy), so that a study whose
    seeds happen to agree does not make every new run "outside". What a lab's live run, with a
    seed the study never used, is checked against (`labkit.core.claims.consistency`).
    Returns {"mean", "low", "high", "n", "comparisons"}."""
    from scipy import stats
    runs = np.asarray(runs, dtype=float)
    if runs.ndim != 1 or len(runs) < 2:
        raise ValueError(f"prediction() needs a study's values, one per seed, at least 2; got {runs.tolist()}")
    if comparisons < 1 or not 0 < confidence < 1:
        raise ValueError(f"comparisons={comparisons} must be >= 1, confidence={confidence} in (0, 1)")
    n, mean = len(runs), float(runs.mean())
    t = stats.t.ppf(1 - (1 - confidence) / (2 * comparisons), n - 1)
    half = float(t * max(runs.std(ddof=1), floor) * math.sqrt(1 + 1 / n))
    return {"mean": mean, "low": mean - half, "high": mean + half, "n": n, "comparisons": comparisons}


def inside(value: float, interval: dict) -> float:
    """How far ``value`` lies inside ``interval`` (its distance to the nearer end; negative:
    outside by that much): the value of a consistency claim, which holds at >= 0."""
    return float(min(value - interval["low"], interval["high"] - value))


def keep_unless_beaten(values: dict, incumbent, tiebreak=lambda k: 0):
    """The study's choice among options ({option: one validation score per grid seed, the same
    seeds for every option}): the best mean (ties: the larger ``tiebreak``), unless the
    ``incumbent`` (the setting the course runs now) trails it by no more than one standard
    error of their paired difference; then the incumbent stays. Changing lab 05's student
    changes labs 06-09 and their studies, so a change needs more than seed noise behind it."""
    best = max(values, key=lambda k: (np.mean(values[k]), tiebreak(k)))
    if incumbent not in values or incumbent == best or len(values[best]) < 2:
        return best
    gap = np.subtract(values[best], values[incumbent])
    return incumbent if gap.mean() <= gap.std(ddof=1) / np.sqrt(len(gap)) else best
