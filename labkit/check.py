"""Tools: exercise checks. ``check.answer("01.2", your_answer)`` says right, or gives a hint.

A wrong or missing answer never raises (a notebook with unanswered exercises still runs top
to bottom); `answer` returns True or False so a solutions notebook can assert it. Checks grade
with explicit comparisons (`_require`), never `assert`, so they hold under ``python -O`` too.
Each truth is computed when you answer, from the real data or a reference implementation,
never stored; numbers of any numeric type are accepted. Hints point at where to look, not at the answer.
Leaves out: grading and scores. The worked answers are in notebooks/solutions/.
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Callable

import numpy as np

from . import adversarial, augment, clean, curves, data, evaluate, models
from .pretrain import PretrainConfig


@dataclass(frozen=True)
class Exercise:
    question: str
    check: Callable  # value -> None, raising Wrong(hint) when wrong
    hint: str


class Wrong(Exception):
    """An answer that is not right; its message is the hint the learner sees."""


def _require(ok, hint: str) -> None:
    """Raise Wrong(hint) unless ``ok`` is exactly True (an explicit check: ``python -O``
    strips ``assert``; a numpy bool counts, an array or a truthy number does not)."""
    if not (ok is True or (isinstance(ok, np.bool_) and bool(ok))):
        raise Wrong(hint)


def _number(value, truth: float, tol: float, hint: str, what: str = "a number") -> None:
    _require(isinstance(value, numbers.Real) and not isinstance(value, bool), f"give {what}")
    _require(math.isfinite(float(value)) and abs(float(value) - truth) <= tol, hint)


def _cases(fn, name: str, cases, hint: str, close=None) -> None:
    """Call ``fn`` on each (args, expected) case; ``close(got, want)`` compares (default ==)."""
    _require(callable(fn), f"pass the function itself, e.g. check.answer(..., {name})")
    for args, want in cases:
        got = fn(*args)
        try:
            ok = close(got, want) if close else got == want
        except Exception:  # an answer of the wrong kind (a number for a list) is wrong, not a crash
            ok = False
        shown = ", ".join(repr(a) if len(repr(a)) < 60 else "..." for a in args)
        _require(ok, f"{name}({shown}) returned {got!r}, expected {want!r}: {hint}")


_near = lambda got, want: isinstance(got, numbers.Real) and abs(float(got) - want) < 1e-9  # noqa: E731


# ---------------------------------------------------------------- lab 00

def _positive_en(value):
    truth = sum(data.load_reviews("en")["label"])
    _number(value, truth, 0, "count the rows labelled 1 (positive) in the cleaned English reviews",
            "a whole number")


def _median_negative(value):
    ds = data.load_reviews("zh")
    truth = float(np.median([len(t) for t, y in zip(ds["text"], ds["label"]) if y == 0]))
    _number(value, truth, 0.5, "keep only the rows whose label is 0, then take the median of "
            "len(text); the figure in section 3 mixes both labels")


def _movies(value):
    truth = len(set(data.load_reviews("en")["source"]))
    _number(value, truth, 0, "the movie of each review is in the `source` column; count the "
            "distinct names", "a whole number")


# ---------------------------------------------------------------- lab 01

def _contradiction_rate(fn):
    _cases(fn, "contradiction_rate", [
        ((["good", "Good!", "bad", "bad"], [1, 0, 0, 0]), 0.5), ((["a", "b"], [0, 1]), 0.0),
        ((["x", "x", "x"], [1, 1, 0]), 1.0), ((["ok", "ok", "no"], [1, 1, 0]), 0.0)],
        "count every row of each text that clean.find_contradictions returns, over all rows",
        _near)


def _zh_leaks(value):
    raw = data.load_reviews("zh", raw=True)
    nonempty = raw.filter(lambda r: bool(r["text"].strip()))
    naive = nonempty.train_test_split(test_size=0.15, seed=0)
    truth = clean.count_leaks(naive["train"]["text"], naive["test"]["text"])
    _number(value, truth, 0, "split the non-empty raw lines as section 4 splits the English ones "
            "(train_test_split, test_size=0.15, seed=0) and count test lines whose normalised "
            "text is also in training", "a whole number")


def _redact(fn):
    def want(text):
        for s, e, _ in reversed(clean.find_pii(text)):
            text = text[:s] + "█" * (e - s) + text[e:]
        return text
    texts = ["mail a.b@c.org now", "call 415-555-0132 or 415.555.0199", "nothing here", ""]
    _cases(fn, "redact", [((t,), want(t)) for t in texts],
           "replace each span clean.find_pii finds by as many █ as it has characters, "
           "working from the end so earlier offsets stay valid")


# ---------------------------------------------------------------- lab 02

def _word_spans(fn):
    _cases(fn, "word_spans", [((["un", "##for", "##get", "the"],), [[0, 1, 2], [3]]), (([],), []),
                              ((["a", "b"],), [[0], [1]]), ((["##x", "y", "##z"],), [[0], [1, 2]])],
           "a token starting with ## continues the word before it", lambda g, w: [list(s) for s in g] == w)


def _unchanged_but_scored(value):
    _number(value, 10_000 * 0.15 * 0.1, 1, "of the picked tokens (15%), which share is neither "
            "masked nor replaced? Those still carry a label")


def _masked_accuracy(fn):
    import torch
    g = torch.Generator().manual_seed(0)
    cases = []
    for shape in ((2, 5, 7), (1, 3, 4), (3, 6, 11)):
        logits = torch.randn(*shape, generator=g)
        labels = torch.randint(0, shape[-1], shape[:2], generator=g)
        labels[torch.rand(shape[:2], generator=g) < 0.5] = -100
        labels[0, 0] = logits[0, 0].argmax()  # at least one scored position, right
        keep = labels != -100
        cases.append(((logits, labels), float((logits.argmax(-1)[keep] == labels[keep]).float().mean())))
    _cases(fn, "masked_accuracy", cases, "score only positions whose label is not -100",
           lambda g, w: isinstance(g, (numbers.Real, torch.Tensor)) and abs(float(g) - w) < 1e-6)


# ---------------------------------------------------------------- lab 03

def _negation_accuracy(fn):
    _cases(fn, "negation_accuracy", [
        ((["not bad", "great", "isn't good", "bad"], [1, 1, 0, 0], [1, 0, 1, 0]), 0.5),
        ((["never again", "no way", "fine", "good"], [0, 0, 1, 1], [0, 0, 0, 0]), 1.0),
        ((["it is not good", "dull", "nothing works"], [0, 0, 0], [1, 0, 1]), 0.0)],
        "only the rows where finetune.slices(texts)['negation'] is True count", _near)


def _max_pool(fn):
    import torch
    g = torch.Generator().manual_seed(1)
    cases = []
    for b, seq, h in ((2, 4, 3), (3, 5, 8)):
        hidden = torch.randn(b, seq, h, generator=g) - 3.0  # mostly negative states
        mask = torch.ones(b, seq, dtype=torch.long)
        mask[0, -2:] = 0  # the first text is padded, and its padding holds the largest values
        hidden[0, -2:] = 10.0
        want = hidden.masked_fill(mask.unsqueeze(-1) == 0, float("-inf")).amax(1)
        cases.append(((hidden, mask), want))
    _cases(fn, "max_pool", cases, "the largest value of each dimension over the positions where "
           "the mask is 1; a padding position must never win, even where every real value is "
           "negative (multiplying by the mask makes padding 0, which then beats them)",
           lambda g, w: torch.is_tensor(g) and g.shape == w.shape and torch.allclose(g.float(), w, atol=1e-5))


def _validation_500(value):
    x_train, y_train, _, _ = data.review_arrays()
    val = data.review_splits()["validation"]
    rows = data.sample_per_class(y_train, 500, 0)
    truth = curves.baseline_accuracy(x_train[rows], y_train[rows], val["text"], val["label"])
    _number(value, truth, 1e-3, "train on data.sample_per_class(y_train, 500, 0) as the lab does, "
            "but score on data.review_splits()['validation'], not on the test reviews")


# ---------------------------------------------------------------- lab 04

def _strength_of(fn):
    _cases(fn, "strength_of", [(("a b c d", "a c d"), 0.25), (("a b", "b a"), 0.0),
                               (("a a b", "a b"), 1 / 3), (("not good", "great"), 1.0),
                               (("good film", "good film good"), 0.0)],
           "count words with collections.Counter; a word the variant repeats does not make up "
           "for one it lost elsewhere", _near)


def _guarded_delete(fn):
    _require(callable(fn), "pass the function itself, e.g. check.answer('04.2', guarded_delete)")
    texts = ["it is not a bad film at all", "never dull, but the plot is thin",
             "a warm and funny story", "the cast was not good and the script was worse"]
    for text in texts:
        words = text.split()
        keep = augment.protected_positions(words)
        _require(fn(text, 0.0, 0) == text, "with p = 0 nothing is deleted")
        _require(fn(text, 1.0, 0).split() == [w for i, w in enumerate(words) if i in keep],
                 "with p = 1 every word outside augment.protected_positions(words) goes, and "
                 "every protected word stays, in order")
        for seed in range(20):
            out = fn(text, 0.5, seed).split()
            it = iter(words)
            _require(all(w in it for w in out), "keep the words that stay in their original order")
            _require(all(words[i] in out for i in keep), "a protected word was deleted")


def _opposite_candidates(value):
    th = augment.Thesaurus.load()
    truth = sum(th.polarity.get(c, 0) * th.polarity.get(w, 0) < 0
                for w in ("good", "bad", "funny", "boring", "great", "awful")
                for c in th.synonyms(w, same_polarity=False))
    _number(value, truth, 0, "for each candidate, compare th.polarity of the candidate with the "
            "word's: opposite means one is +1 and the other -1", "a whole number")


# ---------------------------------------------------------------- lab 05

def _soft_p(value):
    _number(value, math.exp(0.5) / (1 + math.exp(0.5)), 1e-4,
            "divide both logits by the temperature before the softmax", "a probability")


def _gradient_ratio(value):
    import torch
    import torch.nn.functional as F
    norms = []
    for t in (1.0, 4.0):
        s = torch.tensor([[0.5, -0.5]], requires_grad=True)
        F.kl_div(F.log_softmax(s / t, -1), F.softmax(torch.tensor([[2.0, -2.0]]) / t, -1),
                 reduction="batchmean").backward()
        norms.append(float(s.grad.norm()))
    _number(value, norms[1] / norms[0], 1e-3, "compute both gradients with autograd (the soft "
            "loss without T², at T=4 and at T=1) and divide their norms; it is not exactly 1/T")


def _parameter_ratio(value):
    from .classifier import minilm_classifier, small_classifier
    cfg = PretrainConfig.for_scale("cpu")
    student = small_classifier(models.small_bert(cfg.vocab_size, cfg.hidden, cfg.layers, cfg.heads),
                               pretrained=False)
    teacher = minilm_classifier()[1]
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    _number(value, count(teacher) / count(student), 0.05, "count every weight of both models "
            "(measure.parameters) at cpu scale and divide the teacher's by the student's")


# ---------------------------------------------------------------- lab 06

def _words_budget(fn):
    cases = [(("one two three four five six seven eight nine", 0.2), 1),
             (("a film , - so dull ... and long !", 0.2), 2),  # ten words as the attack splits it
             (("a quietly moving film", 0.2), 0), (("w " * 10, 0.2), 2), (("w " * 25, 0.1), 2),
             (("w " * 7, 1.0), 7), (("w " * 7, 0.0), 0)]
    _cases(fn, "words_budget", cases, "a share of the words, rounded down (never above the "
           "limit); the attack's words are text.split(), punctuation-only tokens included")


def _fgsm(fn):
    import torch
    g = torch.randn(3, 6, 4, generator=torch.Generator().manual_seed(6))
    mask = torch.tensor([[1] * 6, [1] * 2 + [0] * 4, [1] * 4 + [0] * 2])
    _require(callable(fn), "pass the function itself, e.g. check.answer('06.2', fgsm)")
    for eps in (0.5, 2.0):
        got = fn(g, mask, eps)
        _require(isinstance(got, torch.Tensor) and got.shape == g.shape,
                 "return a tensor shaped like the gradient")
        _require(torch.allclose(got, eps * g.sign() * mask.unsqueeze(-1), atol=1e-6),
                 "every entry of a real token moves by exactly epsilon, in the direction of its "
                 "gradient's sign (an L-infinity step, not FGM's L2 one); padding stays at 0")


def _opposite_neighbours(value):
    polarity = augment.Thesaurus.load().polarity
    truth = sum(polarity.get(w, 0) * polarity.get("good", 0) < 0
                for w, _ in adversarial.WordVectors.load().neighbours("good", 10))
    _number(value, truth, 0, "WordVectors.load().neighbours('good', 10), then compare signs of "
            "the polarities", "a whole number")


# ---------------------------------------------------------------- lab 07

def _bytes_sent(value):
    _number(value, 30 * 5 * 2 * (384 * 2 + 2) * 4, 0, "rounds x clients per round x 2 (down and "
            "up) x weights x 4 bytes", "a whole number")


def _clients_needed(value):
    from . import federated
    truth = next(m for m in range(1, 10_000) if federated.client_dp_noise(1.0, 0.5, m) <= 0.01 + 1e-12)
    _number(value, truth, 0, "the server adds noise of standard deviation z x C once, to the sum "
            "of the clipped updates; averaging over m clients divides it by m (not by the square "
            "root of m)", "a whole number")


def _positive_shares(fn):
    import numpy as np
    cases = [([1, 0, 1, 1, 0, 0, 1, 1], [[0, 1], [2, 3, 7], [4, 5, 6]], [0.5, 1.0, 1 / 3]),
             ([0, 0, 0, 1], [[3], [0, 1, 2]], [1.0, 0.0]),  # clients of different sizes
             ([1, 1, 0, 0, 1, 0], [[5, 0], [1, 2, 3, 4]], [0.5, 0.5]),  # rows in any order
             ([1, 0, 0], [[0, 1, 2]], [1 / 3])]  # one client holds everything
    _require(callable(fn), "pass the function itself, e.g. check.answer('07.3', positive_shares)")
    for labels, parts, want in cases:
        got = np.asarray(fn(np.array(labels), [np.array(q) for q in parts]), dtype=float)
        _require(got.shape == (len(parts),), "one number per client, in the order of parts")
        _require(bool(np.allclose(got, want)), f"labels {labels}, parts {parts}: expected {want}, got "
                 f"{got.tolist()}: each client's positives divided by its own number of reviews")


# ---------------------------------------------------------------- lab 08

def _int8_ratio(value):
    fp32 = 4 * (384 * 1536 + 1536)
    int8 = 384 * 1536 + 1536 * (4 + 8) + 1536 * 4
    _number(value, fp32 / int8, 0.01, "fp32 keeps 4 bytes per weight and bias; int8 keeps 1 byte per "
            "weight, 4 + 8 bytes (scale, zero point) per output row and 4 bytes per bias: divide "
            "the first by the second")


def _prune_per_layer(fn):
    import torch

    def want(ws, sparsity):  # each tensor ranked alone (the magnitudes below are distinct)
        out = []
        for w in ws:
            w, k = w.clone(), int(sparsity * w.numel())
            w.view(-1)[w.abs().view(-1).argsort()[:k]] = 0
            out.append(w)
        return out
    cases = [([torch.tensor([[0.1, -0.5], [0.3, -0.05]]), torch.tensor([0.01, -0.02, 0.6])], 0.5),
             # the three smallest share a row and a column: ranking per row or per column differs
             ([torch.tensor([[0.01, -0.02, 0.9], [0.03, 0.8, -0.7], [0.6, 0.5, 0.4]]),
               torch.tensor([5.0, -6.0, 0.001, 7.0])], 0.34),
             ([torch.tensor([[0.2, 0.1], [0.4, 0.3]]), torch.tensor([[9.0, -8.0, 7.5]])], 0.0)]
    _require(callable(fn), "pass the function itself, e.g. check.answer('08.2', prune_per_layer)")
    for ws, sparsity in cases:
        got = fn([w.clone() for w in ws], sparsity)
        _require(isinstance(got, (list, tuple)) and len(got) == len(ws)
                 and all(isinstance(g, torch.Tensor) and g.shape == w.shape for g, w in zip(got, ws)),
                 "return one tensor per input, each of its shape")
        _require(all(torch.equal(g.float(), e) for g, e in zip(got, want(ws, sparsity))),
                 f"sparsity {sparsity}: rank each whole tensor on its own (not row by row, not "
                 "all tensors together), zero its int(sparsity x size) smallest |w| and keep the "
                 "other values as they are")


def _head_weights(value):
    _number(value, 4 * 6 * 32 * 384, 0, "query, key and value lose rows, the output projection "
            "columns: 4 matrices, each 6 x 32 by 384", "a whole number")


# ---------------------------------------------------------------- lab 09

def _bin_accuracy(value):
    share = 10 / 40  # the bin's share of the reviews weighs its gap
    _number(value, 0.9 - 0.05 / share, 1e-6, "the bin adds (its share of the reviews) x |accuracy "
            "- confidence| to the ECE; solve for the accuracy below 0.9")


def _mce(fn):
    def truth(probs, labels, bins):
        r = evaluate.reliability(probs, labels, bins)
        return float(np.max(np.abs(r["accuracy"] - r["confidence"])[r["n"] > 0]))
    _cases(fn, "mce", [(c, truth(*c)) for c in evaluate.ece_cases()], "the largest |accuracy - mean "
           "confidence| over the bins that hold at least one review, not weighted; bins are (low, high]",
           close=_near)


EXERCISES = {
    "00.1": Exercise("How many of the cleaned English reviews are positive?", _positive_en,
                     "the labels are 0 and 1"),
    "00.2": Exercise("What is the median length, in characters, of the negative Chinese reviews?",
                     _median_negative, "filter by label first"),
    "00.3": Exercise("How many different movies do the English reviews cover?", _movies,
                     "look at the columns of the Dataset"),
    "01.1": Exercise("Write contradiction_rate(texts, labels): the share of rows whose text "
                     "(after normalisation) also occurs with another label.", _contradiction_rate,
                     "one function in labkit.clean groups those rows for you"),
    "01.2": Exercise("How many test lines of a naive random split of the raw Chinese reviews also "
                     "occur in its training part?", _zh_leaks, "section 4 does this for English"),
    "01.3": Exercise("Write redact(text): blank out each span find_pii finds with █, one per "
                     "character, so the text keeps its length.", _redact,
                     "replacing from the end keeps earlier offsets valid"),
    "02.1": Exercise("Write word_spans(tokens): group WordPiece tokens into words.",
                     _word_spans, "look at what marks a continuation piece"),
    "02.2": Exercise("With BERT's rule at 15%, how many of 10,000 ordinary tokens are predicted "
                     "although they are shown unchanged?", _unchanged_but_scored,
                     "reread the three cases of the masking rule"),
    "02.3": Exercise("Write masked_accuracy(logits, labels): the share of scored positions whose "
                     "top prediction is the label.", _masked_accuracy,
                     "which positions does the MLM loss ignore?"),
    "03.1": Exercise("Write negation_accuracy(texts, labels, predictions): accuracy on the "
                     "reviews with a negation word.", _negation_accuracy,
                     "finetune.slices finds them"),
    "03.2": Exercise("Write max_pool(hidden, mask): each review's largest value of every "
                     "hidden dimension over its real tokens, padding left out (the other common "
                     "pooling beside the Classifier's mean).", _max_pool,
                     "padding positions have mask 0"),
    "03.3": Exercise("What validation accuracy does the TF-IDF baseline reach on the seed-0 "
                     "sample of 500 labels?", _validation_500, "which split does a choice use?"),
    "04.1": Exercise("Write strength_of(original, variant): the share of the original's words "
                     "missing from the variant.", _strength_of, "words are a multiset"),
    "04.2": Exercise("Write guarded_delete(text, p, seed): EDA's deletion that never deletes a "
                     "protected word.", _guarded_delete, "augment.protected_positions"),
    "04.3": Exercise("With the polarity check off, how many synonym candidates of good, bad, "
                     "funny, boring, great and awful have the opposite polarity?",
                     _opposite_candidates, "Thesaurus.load() has both synonyms() and polarity"),
    "05.1": Exercise("What is the teacher's P(positive) for logits [0, 2] at temperature 4?",
                     _soft_p, "softmax of the scaled logits"),
    "05.2": Exercise("Without the T² factor, what is the ratio of the soft loss's gradient norm "
                     "at T=4 to that at T=1, for student logits [0.5, -0.5] and teacher logits "
                     "[2, -2]?", _gradient_ratio, "autograd does the calculus"),
    "05.3": Exercise("How many times more weights does the teacher have than the cpu-scale "
                     "student?", _parameter_ratio, "labkit.measure.parameters"),
    "06.1": Exercise("Write words_budget(text, max_fraction): how many of the review's words, "
                     "split as the attack splits them, the attack may change.", _words_budget,
                     "max_fraction is a limit, not a target"),
    "06.2": Exercise("Write fgsm(grad, mask, epsilon): FGSM's perturbation, the L-infinity "
                     "cousin of section 6's FGM: every entry moves by epsilon along its gradient's "
                     "sign, zero at padding.", _fgsm, "torch.sign"),
    "06.3": Exercise("How many of the 10 nearest words to 'good' in MiniLM's input-embedding "
                     "space have the opposite polarity?", _opposite_neighbours,
                     "adversarial.WordVectors and Thesaurus.polarity"),
    "07.1": Exercise("How many bytes does FedAvg send with 10 clients, 5 per round, 30 rounds "
                     "and a linear head of 384 x 2 weights plus 2 biases in float32?",
                     _bytes_sent, "each sampled client downloads and uploads the weights"),
    "07.2": Exercise("With noise multiplier 1.0 and clip norm 0.5, how many clients per round "
                     "does client-level DP-FedAvg need for the noise on the averaged update to have "
                     "a standard deviation of at most 0.01?", _clients_needed,
                     "where is the noise added, and what does averaging do to it?"),
    "07.3": Exercise("Write positive_shares(labels, parts): each client's share of positive "
                     "reviews.", _positive_shares, "labels[part] are one client's labels"),
    "08.1": Exercise("How many times smaller than in float32 is a 384 x 1536 Linear layer with "
                     "1536 biases after per-channel dynamic int8 (int8 weights, a float32 scale and "
                     "an int64 zero point per output row, float32 biases)?", _int8_ratio,
                     "count bytes per weight, per row and per bias, in both formats"),
    "08.2": Exercise("Write prune_per_layer(weights, sparsity): in each tensor on its own, the "
                     "int(sparsity x size) weights of smallest magnitude set to zero.", _prune_per_layer,
                     "section 3's global version ranks all tensors together; rank each alone"),
    "08.3": Exercise("How many weights do MiniLM's four attention matrices of one layer lose when "
                     "6 of its 12 heads (32 dimensions each, hidden size 384) are removed?",
                     _head_weights, "which matrices have a row or a column per head dimension?"),
    "09.1": Exercise("Of a model's 40 test reviews, 10 get confidence 0.9 and are alone in their "
                     "bin. The model is over-confident there: what accuracy must those 10 have for "
                     "their bin to add 0.05 to the ECE?", _bin_accuracy, "section 3's formula, read backwards"),
    "09.2": Exercise("One request at a time, 40 ms each, 8 clients that never pause: what mean latency (ms) does a client "
                     "see?", lambda v: _number(v, 8 * 40, 1, "Little's law: in flight = throughput x latency"), "requests a second?"),
    "09.3": Exercise("Write mce(probs, labels, bins): the maximum calibration error, the largest "
                     "gap between a bin's accuracy and its mean confidence.", _mce,
                     "section 3's bins, without the weights"),
}


def answer(exercise: str, value) -> bool:
    """Check an answer; prints a verdict or a hint and returns whether it is right."""
    if exercise not in EXERCISES:
        print(f"No exercise {exercise!r}; the exercises are {', '.join(EXERCISES)}.")
        return False
    ex = EXERCISES[exercise]
    if value is None or value is Ellipsis:
        print(f"[{exercise}] not answered yet. {ex.question} Hint: {ex.hint}.")
        return False
    try:
        ex.check(value)
    except Wrong as e:
        print(f"[{exercise}] not yet: {e or ex.hint}.")
        return False
    except Exception as e:  # the learner's function crashed: show why, not a traceback
        print(f"[{exercise}] your answer raised {type(e).__name__}: {e}. Hint: {ex.hint}.")
        return False
    print(f"[{exercise}] correct.")
    return True
