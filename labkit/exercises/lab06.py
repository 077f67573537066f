"""Tools: exercises of Lab 06 (adversarial): the attack's budget, FGSM, neighbours of opposite polarity.
Each check computes its truth when called; see labkit.exercises.grading."""
from __future__ import annotations

import torch

from labkit.core import lexicon
from labkit.labs import adversarial

from .grading import Exercise, check_cases, number, require


def _words_budget(fn):
    cases = [(("one two three four five six seven eight nine", 0.2), 1),
             (("a film , - so dull ... and long !", 0.2), 2),  # ten words as the attack splits it
             (("a quietly moving film", 0.2), 0), (("w " * 10, 0.2), 2), (("w " * 25, 0.1), 2),
             (("w " * 7, 1.0), 7), (("w " * 7, 0.0), 0)]
    check_cases(fn, "words_budget", cases, "a share of the words, rounded down (never above the "
                "limit); the attack's words are text.split(), punctuation-only tokens included")


def _fgsm(fn):
    g = torch.randn(3, 6, 4, generator=torch.Generator().manual_seed(6))
    mask = torch.tensor([[1] * 6, [1] * 2 + [0] * 4, [1] * 4 + [0] * 2])
    require(callable(fn), "pass the function itself, e.g. check.answer('06.2', fgsm)")
    for eps in (0.5, 2.0):
        got = fn(g, mask, eps)
        require(isinstance(got, torch.Tensor) and got.shape == g.shape,
                "return a tensor shaped like the gradient")
        require(torch.allclose(got.float(), eps * g.sign() * mask.unsqueeze(-1), atol=1e-6),
                "every entry of a real token moves by exactly epsilon, in the direction of its "
                "gradient's sign (an L-infinity step, not FGM's L2 one); padding stays at 0")


def _opposite_neighbours(value):
    polarity = lexicon.Thesaurus.load().polarity
    truth = sum(polarity.get(w, 0) * polarity.get("good", 0) < 0
                for w, _ in adversarial.WordVectors.load().neighbours("good", 10))
    number(value, truth, 0, "WordVectors.load().neighbours('good', 10), then compare signs of "
           "the polarities", "a whole number")


EXERCISES = {
    "06.1": Exercise("Write words_budget(text, max_fraction): how many of the review's words, "
                     "split as the attack splits them, the attack may change.", _words_budget,
                     "max_fraction is a limit, not a target"),
    "06.2": Exercise("Write fgsm(grad, mask, epsilon): FGSM's perturbation, the L-infinity "
                     "cousin of section 6's FGM: every entry moves by epsilon along its gradient's "
                     "sign, zero at padding.", _fgsm, "torch.sign"),
    "06.3": Exercise("How many of the 10 nearest words to 'good' in MiniLM's input-embedding "
                     "space have the opposite polarity?", _opposite_neighbours,
                     "adversarial.WordVectors and Thesaurus.polarity"),
}
