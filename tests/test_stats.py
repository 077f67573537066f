import math

import numpy as np
import pytest

from labkit.core import stats


def test_paired_hand_case():
    # differences 0.02, 0.03, 0.02: mean 0.02333, sd 0.005774, t(0.975, 2) = 4.3027
    out = stats.paired([0.72, 0.73, 0.71], [0.70, 0.70, 0.69])
    assert out["mean"] == pytest.approx(0.023333, abs=1e-6) and out["n"] == 3
    half = 4.302653 * 0.0057735 / math.sqrt(3)
    assert out["low"] == pytest.approx(0.023333 - half, abs=1e-5)
    assert out["high"] == pytest.approx(0.023333 + half, abs=1e-5)
    assert out["excludes_zero"]


def test_more_comparisons_widen_the_interval():
    a, b = [0.70, 0.74, 0.71, 0.73], [0.69, 0.70, 0.70, 0.71]
    one, seven = stats.paired(a, b), stats.paired(a, b, comparisons=7)
    assert seven["mean"] == one["mean"]
    assert seven["low"] < one["low"] and seven["high"] > one["high"]


def test_pairing_cancels_shared_luck():
    luck = np.array([0.0, 0.1, -0.1, 0.05, -0.05])  # e.g. how easy each seed's sample was
    out = stats.paired(0.7 + luck + 0.01, 0.7 + luck)
    assert out["excludes_zero"] and out["std"] == pytest.approx(0, abs=1e-12)
    unpaired_spread = np.std(0.7 + luck)
    assert unpaired_spread > 0.05  # as two separate means they would overlap heavily


def test_one_seed_has_no_interval_and_bad_input_is_refused():
    out = stats.paired([0.7], [0.6])
    assert math.isinf(out["high"]) and not out["excludes_zero"]
    assert "no interval" in stats.describe(out)
    with pytest.raises(ValueError, match="equally long"):
        stats.paired([0.1, 0.2], [0.1])
    with pytest.raises(ValueError, match="comparisons"):
        stats.paired([0.1, 0.2], [0.1, 0.2], comparisons=0)
    assert stats.describe(stats.paired([0.72, 0.73, 0.71], [0.70, 0.70, 0.69])).startswith("+2.3 points [")


def test_proportion_is_the_wilson_interval():
    from labkit.core.stats import proportion
    zero = proportion(0, 10)  # Wilson at k = 0: [0, z^2 / (n + z^2)], never a zero-width interval
    assert zero["low"] == 0 and zero["high"] == pytest.approx(1.96 ** 2 / (10 + 1.96 ** 2), abs=1e-3)
    half = proportion(26, 52)
    assert half["rate"] == 0.5 and half["low"] == pytest.approx(1 - half["high"]) and 0.36 < half["low"] < 0.38
    assert proportion(260, 520)["high"] - proportion(260, 520)["low"] < half["high"] - half["low"]  # more n, narrower
    with pytest.raises(ValueError, match="0 <= k <= n"):
        proportion(5, 3)


def test_prediction_interval_for_one_more_run_by_hand_and_corrected():
    runs = [0.70, 0.72, 0.74, 0.71, 0.73]  # mean 0.72, sd 0.0158
    p = stats.prediction(runs)
    half = 2.776 * np.std(runs, ddof=1) * math.sqrt(1 + 1 / 5)  # t(4) at 97.5%
    assert p["mean"] == pytest.approx(0.72) and p["high"] - p["mean"] == pytest.approx(half, rel=1e-3)
    assert p["n"] == 5 and p["comparisons"] == 1
    # wider than the interval of the mean (sqrt(1 + 1/n) against sqrt(1/n)), wider still when corrected
    assert p["high"] - p["low"] > 2 * stats.paired(runs, [0] * 5)["high"] - 2 * 0.72
    assert stats.prediction(runs, comparisons=10)["high"] > p["high"]
    # seeds that agree exactly: the sd is floored at a point, not zero
    flat = stats.prediction([0.5776] * 5)
    assert flat["high"] - flat["mean"] == pytest.approx(2.776 * 0.01 * math.sqrt(1.2), rel=1e-3)
    assert (stats.inside(0.72, p) == pytest.approx(half, rel=1e-3)
            and stats.inside(p["high"] + 0.01, p) == pytest.approx(-0.01))
    with pytest.raises(ValueError, match="at least 2"):
        stats.prediction([0.7])
    with pytest.raises(ValueError, match="comparisons"):
        stats.prediction(runs, comparisons=0)


def test_keep_unless_beaten_keeps_the_incumbent_within_one_standard_error():
    noisy = {"a": [0.70, 0.72, 0.71, 0.73], "b": [0.71, 0.72, 0.72, 0.73]}  # b ahead by 0.005, SE of the gap 0.0029
    assert stats.keep_unless_beaten(noisy, "a") == "b"  # beaten by more than a standard error: it goes
    close = {"a": [0.70, 0.72, 0.71, 0.73], "b": [0.72, 0.71, 0.72, 0.72]}  # b ahead by 0.0025, SE 0.0075
    assert stats.keep_unless_beaten(close, "a") == "a" and stats.keep_unless_beaten(close, "b") == "b"
    assert stats.keep_unless_beaten(close, "c") == "b"  # no incumbent among the options: the best mean
    assert stats.keep_unless_beaten({1: [0.7], 2: [0.8]}, 1) == 2  # one seed: no error to hide behind
    tied = {150: [0.7, 0.71], 300: [0.7, 0.71]}
    assert stats.keep_unless_beaten(tied, None, tiebreak=lambda s: -s) == 150  # ties: the tiebreak decides
