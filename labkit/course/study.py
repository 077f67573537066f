"""Tools: reference studies, the experiments behind the course's committed reference results.

A study runs the same labkit code as a lab (the experiments are in `labkit.course.experiments`), with
more seeds or a wider grid than a lab can afford at `cpu` scale, and writes its results with
their provenance (the command, labkit commit, machine, date and seconds) to
``labkit/reference/studies/<name>.json``. The labs show them beside the learner's own runs and
take their settings from them. Every training run goes through the run cache, so a study
repeated, or a lab after it, reads its runs back.

    labkit study lab01   lab 01's label noise over 10 draws: what confident learning finds and
                         what each fix (drop, relabel, review) wins back, on the test split
    labkit study lab02   the compute curve of lab 02's own pretraining: held-out loss, linear-probe
                         gain and fine-tuned gain over scratch at checkpoints of one long run
    labkit study lab02-seeds
                         lab 02's own recipe on seeds 1-5 (the lab's run is seed 0): pretraining's
                         held-out loss, and MiniLM adapted against its head alone
    labkit study lab03   MiniLM against lab 02's adapted MiniLM, fine-tuned on the same rows with the
                         same seeds at 100, 500 and 2,000 labels (needs lab 02's adapted MiniLM)
    labkit study lab03-curves
                         lab 03's learning curves on seeds 0-4 (the lab's run is seed 5): TF-IDF,
                         MiniLM's frozen features, the small BERT from scratch and pretrained
    labkit study lab04   augmentation gains at each label budget over 10 seeds (TF-IDF with the
                         guard on and off, the small BERT): paired intervals a lab's 3 seeds can't give
    labkit study lab05   the students' steps, temperature and alpha, chosen on the validation
                         split (needs lab 03's MiniLM in the cache)
    labkit study lab06   the defences (FGM, PGD, adversarial augmentation, A2T) against lab 05's
                         student: settings chosen on validation, the chosen scored on test over
                         5 seeds (needs lab 03's MiniLM and lab 02's model)
    labkit study lab07   every DP arm tuned on validation (MiniLM head and small BERT, non-private
                         included) and scored on test, FedAvg's partitions, and the membership
                         attack's AUC and TPR at 1% FPR, over 5 seeds (needs lab 02's model)
    labkit study lab08   how many attention heads and FFN neurons structured pruning keeps,
                         chosen on the validation split over 5 seeds, and the chosen size with a
                         3x longer recovery, both scored on test (needs lab 03's MiniLM)

A study runs at the current scale (``LABKIT_SCALE=smoke`` runs it tiny: the tests do);
``--out`` writes elsewhere. It evaluates the claims registered for it (``where``:
``study:labNN`` in ``reference/claims.json``, values from `STUDY_CLAIMS`), writes them into
its file, a failed one marked, and then fails; ``labkit study NAME --claims`` re-evaluates them
on the committed results without running anything.
Leaves out: anything a lab needs to run; studies only feed the committed reference.
"""
from __future__ import annotations

import datetime
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

from labkit.core import cache, claims, env
from labkit.core.stats import paired
from labkit.course import experiments, report
from labkit.labs.distill import COMPARISONS, SLUG
from labkit.labs.federated.privacy import DELTA

STUDIES = env.REFERENCE / "studies"


def load(name: str) -> dict:
    """A committed study's results ({"provenance", "settings", "results"}); a clear error
    when it is missing."""
    path = STUDIES / f"{name}.json"
    if not path.exists():
        raise FileNotFoundError(f"no reference study {path}: run `labkit study {name}` (minutes)")
    return json.loads(path.read_text())


def _provenance(name: str, scale: str, seconds: float, commit: str | None) -> dict:
    return {"command": f"LABKIT_SCALE={scale} labkit study {name}", "seconds": round(seconds),
            "seconds_mean": "this command's wall time with the run cache as it was: runs already "
                            "there are read back, not trained",
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "labkit_commit": commit, **env.machine(),
            "matmul_gflops": round(env.matmul_gflops())}


STUDY_FUNCTIONS = {"lab01": (experiments.lab01, 10),
                   "lab02": (experiments.lab02, 5),
                   "lab02-seeds": (experiments.lab02_seeds, 5),
                   "lab03": (experiments.lab03, 5),
                   "lab03-curves": (experiments.lab03_curves, 5),
                   "lab04": (experiments.lab04, 10),
                   "lab05": (experiments.lab05, 10),
                   "lab06": (experiments.lab06, 5),
                   "lab07": (experiments.lab07, 5),
                   "lab08": (experiments.lab08, 5)}  # name -> (function, seeds at cpu)


def _lab01_claims(results: dict) -> dict:
    """Lab 01's study claim: reviewing the flagged rows beats reviewing as many random rows in
    every noise draw (the smallest difference over the draws)."""
    d = results["draws"]
    return {"01.review_flagged_beats_random_every_draw": min(np.subtract(d["review flagged"], d["review random"]))}


def _lab02_seeds_claims(results: dict) -> dict:
    """The lab02-seeds study's claims: pretraining lowers the held-out loss by a fifth or more,
    and adapting MiniLM beats training its head alone, on every seed (the smallest over them)."""
    fall = 1 - np.divide(results["heldout_last"], results["heldout_first"])
    return {"02.pretraining_fall_every_seed": float(fall.min()),
            "02.adapted_beats_head_alone_every_seed": float(np.min(np.subtract(results["head_alone_last"],
                                                                               results["adapted_last"])))}


def _lab03_claims(results: dict) -> dict:
    """The lab 03 study's claim: adapting MiniLM paid at no budget and on no slice (the
    largest lower end of the adapted-minus-plain intervals, widened as lab 03 widens them)."""
    k = len(results["plain"])
    sets = (results, results["slices"]["rare"], results["slices"]["common"])
    return {"03.adaptation_never_pays": max(g["low"] for r in sets for g in intervals(r, k, arm="adapted").values())}


def _lab03_curves_claims(results: dict) -> dict:
    """The lab03-curves study's claim and targets: lab 02's pretraining did not pay for the
    small BERT at any budget (the largest lower end of the pretrained-minus-scratch intervals,
    widened for the budgets), and where it hurt (each budget's upper end)."""
    arms = {"pretrained": results["small BERT, lab-02 pretrained"], "scratch": results["small BERT, scratch"]}
    gaps = intervals(arms, len(arms["scratch"]), arm="pretrained", base="scratch")
    return {"03.lab02_pretraining_never_pays": max(g["low"] for g in gaps.values()),
            **{cid: gaps[cid.rsplit(".", 1)[1]]["high"] if cid.rsplit(".", 1)[1] in gaps else math.nan  # not run at
               for cid in claims.study_claims("lab03-curves") if ".lab02_pretraining_hurts_high." in cid}}  # this scale


def _lab05_claims(results: dict) -> dict:
    """Lab 05's study targets: the lower end of each paired comparison of students over the
    study's seeds (`distill.COMPARISONS`), widened for the comparisons, as the lab widened it."""
    s, k = results["students"], len(COMPARISONS)
    return {f"05.{SLUG[a]}_minus_{SLUG[b]}_interval_low.{SLUG[budget]}":
            paired(s[f"{a} @ {budget}"], s[f"{b} @ {budget}"], k)["low"] for a, b, budget in COMPARISONS}


DEFENCE_SLUGS = {"fgm": "FGM", "pgd": "PGD", "adversarial_augmentation": "adversarial augmentation", "a2t": "A2T"}


def _lab06_claims(results: dict) -> dict:
    """Lab 06's study claims (test split): drops and gaps against "none", paired intervals
    widened for the 4 defences."""
    t, k = results["test"], len(DEFENCE_SLUGS)
    none = t["none"]
    mean = {arm: {m: np.mean(v) for m, v in d.items() if m in ("clean", "success")} for arm, d in t.items()}
    out = {f"06.{slug}_{what}": (1 - mean[arm]["success"] / mean["none"]["success"]) if what == "relative_drop"
           else mean[arm]["clean"] - mean["none"]["clean"]
           for slug, arm in (("a2t", "A2T"), ("augmentation", "adversarial augmentation"))
           for what in ("relative_drop", "clean_gap")}
    for slug, arm in DEFENCE_SLUGS.items():
        out[f"06.defence_success_minus_none_high.{slug}"] = paired(t[arm]["success"], none["success"], k)["high"]
        out[f"06.defence_under_attack_gain_low.{slug}"] = paired(t[arm]["under_attack"], none["under_attack"], k)["low"]
    return out


def _lab07_claims(results: dict) -> dict:
    """Lab 07's study claims: the membership attack's TPR at 1% FPR, means over the seeds,
    against a coin (non-private) and against what epsilon 1 allows (e x 1% + delta)."""
    tpr = {name: np.mean(r["tpr_at_1pct_fpr"]) for name, r in results["membership"].items()}
    return {"07.mia_tpr_nonprivate": tpr["non-private"],
            "07.dp_mia_tpr_within_bound": tpr["1"] / (np.exp(1.0) * 0.01 + DELTA)}


def _lab08_claims(results: dict) -> dict:
    """Lab 08's study targets: test points the chosen structured size loses, short and long recovery."""
    teacher, runs = results["teacher"]["test_accuracy"], list(results["recovery"].values())
    return {f"08.structured_points_lost_study.{name}": 100 * (teacher - np.mean(r["test"]))
            for name, r in zip(("short", "long"), runs)}


STUDY_CLAIMS = {"lab01": _lab01_claims, "lab02-seeds": _lab02_seeds_claims, "lab03": _lab03_claims,
                "lab03-curves": _lab03_curves_claims, "lab05": _lab05_claims, "lab06": _lab06_claims,
                "lab07": _lab07_claims, "lab08": _lab08_claims}  # name -> results -> {registered id: value}


def check_claims(name: str, out: Path | None = None) -> dict:
    """Evaluate a study's registered claims on its written results, write them into its file
    and raise `claims.ClaimFailed` (after writing) if one fails. Returns the claims' rows."""
    path = Path(out or STUDIES) / f"{name}.json"
    if not path.exists():
        raise FileNotFoundError(f"no study results {path}: run `labkit study {name}`")
    data = json.loads(path.read_text())
    values = STUDY_CLAIMS[name](data["results"]) if name in STUDY_CLAIMS else {}
    rows = claims.evaluate_study(name, values, data["settings"]["scale"])
    cache.write_json(path, {**data, "claims": rows})
    failed = [f"{cid}: {row['value']} {row['op']} {row['bound']}" for cid, row in rows.items()
              if row["status"] == "fails"]
    if failed:
        raise claims.ClaimFailed(f"study {name}: {'; '.join(failed)} (written, marked, into {path})")
    return rows


def run(name: str, seeds: int | None = None, out: Path | None = None) -> Path:
    """Run a study at the current scale and write its results with provenance; returns the
    file written."""
    if name not in STUDY_FUNCTIONS:
        raise KeyError(f"unknown study {name!r}; the studies are {', '.join(STUDY_FUNCTIONS)}")
    fn, default_seeds = STUDY_FUNCTIONS[name]
    scale = env.scale()
    seeds = seeds or (2 if scale == "smoke" else default_seeds)
    start, commit = time.perf_counter(), report.meta(scale, False)["labkit_commit"]  # the code that runs
    settings, results = fn(seeds)
    path = Path(out or STUDIES) / f"{name}.json"
    cache.write_json(path, {"provenance": _provenance(name, scale, time.perf_counter() - start, commit),
                            "settings": {"scale": scale, **settings}, "results": results})
    print(f"study {name}: {time.perf_counter() - start:.0f} s -> {path}", file=sys.stderr)
    check_claims(name, out)
    return path


def intervals(results: dict, comparisons: int, arm: str = "augmented", base: str = "plain") -> dict:
    """{budget: `stats.paired` interval of ``arm`` minus ``base``} of one model's results."""
    return {n: paired(results[arm][n], results[base][n], comparisons) for n in results[base]}
