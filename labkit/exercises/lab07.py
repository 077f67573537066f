"""Tools: exercises of Lab 07 (federated): bytes sent, clients for client-level DP, label skew.
Each check computes its truth when called; see labkit.exercises.grading."""
from __future__ import annotations

import numpy as np

from labkit.labs import federated

from .grading import Exercise, number, require


def _bytes_sent(value):
    number(value, 30 * 5 * 2 * (384 * 2 + 2) * 4, 0, "rounds x clients per round x 2 (down and "
           "up) x weights x 4 bytes", "a whole number")


def _clients_needed(value):
    truth = next(m for m in range(1, 10_000) if federated.client_dp_noise(1.0, 0.5, m) <= 0.01 + 1e-12)
    number(value, truth, 0, "the server adds noise of standard deviation z x C once, to the sum "
           "of the clipped updates; averaging over m clients divides it by m (not by the square "
           "root of m)", "a whole number")


def _positive_shares(fn):
    cases = [([1, 0, 1, 1, 0, 0, 1, 1], [[0, 1], [2, 3, 7], [4, 5, 6]], [0.5, 1.0, 1 / 3]),
             ([0, 0, 0, 1], [[3], [0, 1, 2]], [1.0, 0.0]),  # clients of different sizes
             ([1, 1, 0, 0, 1, 0], [[5, 0], [1, 2, 3, 4]], [0.5, 0.5]),  # rows in any order
             ([1, 0, 0], [[0, 1, 2]], [1 / 3])]  # one client holds everything
    require(callable(fn), "pass the function itself, e.g. check.answer('07.3', positive_shares)")
    for labels, parts, want in cases:
        got = np.asarray(fn(np.array(labels), [np.array(q) for q in parts]), dtype=float)
        require(got.shape == (len(parts),), "one number per client, in the order of parts")
        require(bool(np.allclose(got, want)), f"labels {labels}, parts {parts}: expected {want}, got "
                f"{got.tolist()}: each client's positives divided by its own number of reviews")


EXERCISES = {
    "07.1": Exercise("How many bytes does FedAvg send with 10 clients, 5 per round, 30 rounds "
                     "and a linear head of 384 x 2 weights plus 2 biases in float32?",
                     _bytes_sent, "each sampled client downloads and uploads the weights"),
    "07.2": Exercise("With noise multiplier 1.0 and clip norm 0.5, how many clients per round (expected, "
                     "under Poisson sampling) "
                     "does client-level DP-FedAvg need for the noise on the averaged update to have "
                     "a standard deviation of at most 0.01?", _clients_needed,
                     "where is the noise added, and what does averaging do to it?"),
    "07.3": Exercise("Write positive_shares(labels, parts): each client's share of positive "
                     "reviews.", _positive_shares, "labels[part] are one client's labels"),
}
