"""Core: the course's claims, registered before they are measured.

Every claim a lab makes is an entry of ``reference/claims.json``: the sentence the learner
reads, what is measured (``value``), ``op`` and ``bound``, the scales where it is asserted,
where it is evaluated (``"run"``: the lab; ``"study:labNN"``: a committed study), ``why`` the
bound is what it is and how it ``could_fail_if``. Its ``kind``:

- ``claim``: asserted. ``claim(id, value)`` raises `ClaimFailed` where it does not hold.
- ``target``: an ambition. ``target(id, value)`` records met or missed every run, never raises.
- ``gate``: a measured precondition (this CPU's int8 speed, say). ``gate(id, value)`` is
  evaluated before the claims and targets that name it in ``gate``; where it is shut they are
  recorded "gate closed", not asserted.
- ``test``: holds by construction, so a unit test checks it (``test``: the test's path::name);
  no lab evaluates it.

An entry that a better check replaced (one that never failed; a missed one becomes a target)
stays in the registry with ``retired``: what replaced it and why, and no scales.

A notebook passes only the id and the value: the bound is the registry's. An id holding
``{name}`` placeholders is a template; its ``params`` list the registered instances
(``03.minilm_minus_tfidf.{slice}`` with ``[{"slice": "negation"}, {"slice": "contrast"}]``).
Each evaluation is recorded (`results.record`, key ``"claims"``) with its value, margin and
status, so `report.check` can tell a registered claim that a run never evaluated.
Leaves out: running notebooks and the README's tables (`labkit.course.report`).
"""
from __future__ import annotations

import difflib
import functools
import json
import math
import re
from pathlib import Path

import numpy as np

from labkit.core import env
from labkit.core.results import markdown_table, record, results
from labkit.core.stats import inside, prediction

REGISTRY = env.REFERENCE / "claims.json"
KINDS = ("claim", "target", "gate", "test")
SCALES = ("smoke", "cpu", "gpu")
OPS = {">": lambda a, b: a > b, ">=": lambda a, b: a >= b, "<": lambda a, b: a < b,
       "<=": lambda a, b: a <= b}
FIELDS = {"id", "lab", "kind", "sentence", "value", "op", "bound", "scales", "where", "why", "could_fail_if"}
OPTIONAL = {"params", "gate", "study", "note", "test", "retired"}


class ClaimFailed(AssertionError):
    """A lab's claim that does not hold (raised explicitly: ``python -O`` cannot skip it)."""


def problems(entries: list) -> list[str]:
    """What is wrong with a registry's entries (empty when it is sound)."""
    out, ids, by_id = [], set(), {}
    for i, e in enumerate(entries):
        if not isinstance(e, dict):
            out.append(f"entry {i}: not an object but {e!r}")
            continue
        where = f"entry {i} ({e.get('id', 'no id')})"
        by_id[e.get("id")] = e
        if FIELDS - set(e):
            out.append(f"{where}: missing {', '.join(sorted(FIELDS - set(e)))}")
        if set(e) - FIELDS - OPTIONAL:
            out.append(f"{where}: unknown fields {', '.join(sorted(set(e) - FIELDS - OPTIONAL))}")
        if e.get("kind") not in KINDS:
            out.append(f"{where}: kind must be one of {', '.join(KINDS)}")
        if e.get("op") not in OPS:
            out.append(f"{where}: op must be one of {', '.join(OPS)}")
        if not isinstance(e.get("bound"), (int, float)) or isinstance(e.get("bound"), bool):
            out.append(f"{where}: bound must be a number (a notebook never computes one)")
        if not set(e.get("scales", [])) <= set(SCALES):
            out.append(f"{where}: scales must be among {', '.join(SCALES)}")
        if (e.get("kind") == "test") != bool(e.get("test")) or (e.get("kind") == "test" and e.get("scales")):
            out.append(f"{where}: a kind 'test' entry names its unit test in 'test' and has no scales")
        if e.get("retired") and e.get("scales"):
            out.append(f"{where}: a retired entry says why in 'retired' and is asserted nowhere (no scales)")
        if not str(e.get("id", "")).startswith(f"{e.get('lab')}."):
            out.append(f"{where}: an id starts with its lab, '{e.get('lab')}.'")
        where_ = str(e.get("where", ""))
        if where_ != "run" and not re.fullmatch(r"study:lab\d\d(-[a-z]+)?", where_):
            out.append(f"{where}: where must be 'run' or 'study:labNN' (or 'study:labNN-what', a lab's second study)")
        try:
            instances = _instances(e)
            for p in e.get("params") or [{}]:
                str(e.get("sentence", "")).format(**p), str(e.get("value", "")).format(**p)
        except (KeyError, IndexError, ValueError, TypeError, AttributeError) as err:
            out.append(f"{where}: its params do not fill the placeholders of its id, sentence and value ({err!r})")
            continue
        for instance in instances:
            if instance in ids:
                out.append(f"{where}: id {instance} registered twice")
            ids.add(instance)
    for e in by_id.values():
        g = by_id.get(e.get("gate")) if e.get("gate") else None
        if e.get("gate") and (g is None or g.get("kind") != "gate"):
            out.append(f"entry {e.get('id')}: its gate {e['gate']} is not a registered gate")
        elif g is not None and not set(e.get("scales", [])) <= set(g.get("scales", [])):
            out.append(f"entry {e.get('id')}: asserted where its gate's scales ({g.get('scales')}) do not measure it")
    return out


def _instances(entry: dict) -> list[str]:
    params = entry.get("params")
    return [entry["id"].format(**p) for p in params] if params else [str(entry.get("id"))]


@functools.lru_cache(maxsize=None)
def _load(path: str) -> dict:
    try:
        entries = json.loads(Path(path).read_text(encoding="utf-8"))["entries"]
    except (OSError, ValueError, KeyError) as e:
        raise ValueError(f"the claims registry {path} cannot be read ({e}); restore it from git "
                         "(`git checkout labkit/reference/claims.json`)") from e
    bad = problems(entries)
    if bad:
        raise ValueError(f"the claims registry {path} is not sound: " + "; ".join(bad[:5]))
    out = {}
    for e in entries:
        for instance, p in zip(_instances(e), e.get("params") or [{}]):
            out[instance] = {**{k: v for k, v in e.items() if k != "params"}, "id": instance, "template": e["id"],
                             "sentence": e["sentence"].format(**p), "value": e["value"].format(**p)}
    return out


def registry(path: Path | None = None) -> dict[str, dict]:
    """Every registered instance by id, in the registry's order: {id: entry, placeholders
    filled, ``template``: its entry's id}."""
    return _load(str(path or REGISTRY))


CONSISTENCY = ".consistent_with_study"  # in the id of every consistency claim (a live run checked against its study)


def consistency_count(scale: str = "cpu") -> int:
    """How many consistency claims the whole course asserts at ``scale``: the number of checks a
    live run's prediction intervals are corrected for (`labkit.core.stats.prediction`), so that these
    checks together, not each one, keep a 5% chance of a false alarm."""
    return sum(1 for e in registry().values() if CONSISTENCY in e["id"] and scale in e["scales"]) or 1


def consistency(runs, live, scale: str = "cpu") -> dict:
    """A live run checked against its study: the study's prediction interval for one more run
    (`labkit.core.stats.prediction` over ``runs``, one value per seed) and how far ``live`` lies
    inside it (negative: outside). ``live``: one value, or one per live seed, each a draw the
    interval must hold; the correction counts every consistency claim of the course at
    ``scale`` times the live values, and "inside" is the worst of them: a consistency claim's
    value. Returns the interval's keys plus "live" (the worst value) and "inside"."""
    lives = [float(v) for v in np.atleast_1d(np.asarray(live, dtype=float))]
    if not lives:
        raise ValueError("consistency() needs the live run's value (or one per live seed); got none")
    band = prediction(runs, comparisons=consistency_count(scale) * len(lives))
    worst = min(lives, key=lambda v: inside(v, band))
    return {**band, "live": worst, "inside": inside(worst, band)}


def entry(claim_id: str) -> dict:
    """One registered claim; a clear error (with the nearest ids) for an id not registered."""
    reg = registry()
    if claim_id not in reg:
        near = difflib.get_close_matches(claim_id, list(reg), n=3)
        raise KeyError(f"{claim_id!r} is not in the claims registry ({Path(REGISTRY).name})"
                       + (f"; did you mean {', '.join(near)}?" if near else "")
                       + ": register a claim there (sentence, op, bound, why, could_fail_if) before measuring it")
    return reg[claim_id]


def _number(v) -> str:
    return "nan" if v is None else f"{v:.4g}"


STATUS = {"claim": ("holds", "fails"), "target": ("met", "missed"), "gate": ("open", "shut")}  # (held, not)


def _row(e: dict, value, scale: str, closed_by: str | None = None) -> dict:
    """What is recorded of one evaluation: value, op, bound, margin, holds and its status
    (``closed_by``: the shut gate's reading, which suspends the entry)."""
    value, margin, holds = compare(e, value)
    status = (f"not asserted at {scale}" if scale not in e["scales"] else
              "dry run: not asserted" if e["kind"] != "gate" and env.dry_run() else
              f"gate closed ({closed_by})" if closed_by else STATUS[e["kind"]][not holds])
    return {"kind": e["kind"], "value": round(value, 4) if math.isfinite(value) else None, "op": e["op"],
            "bound": e["bound"], "margin": round(margin, 4) if math.isfinite(margin) else None, "holds": holds,
            "status": status}


def compare(e: dict, value) -> tuple[float, float, bool]:
    """(value, margin, holds) of ``value`` against a registered entry (NaN never holds)."""
    try:
        value = float(value)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{e['id']}: the value must be a number, got {value!r}") from err
    bound = float(e["bound"])
    margin = value - bound if e["op"] in (">", ">=") else bound - value
    return value, margin, bool(OPS[e["op"]](value, bound))


def _evaluate(claim_id: str, value, kind: str) -> dict:
    e = entry(claim_id)
    if e["kind"] == "test":
        raise TypeError(f"{claim_id} holds by construction: {e['test']} checks it; a lab does not evaluate it")
    if e["kind"] != kind:
        raise TypeError(f"{claim_id} is registered as a {e['kind']}: call labkit.{e['kind']}")
    if e["where"] != "run":
        raise TypeError(f"{claim_id} is evaluated by {e['where']} (`labkit study {e['where'][6:]}`), not in a lab")
    closed_by = None
    if e.get("gate"):
        g = results().get("claims", {}).get(e["gate"])
        if g is None:
            raise RuntimeError(f"{claim_id} is gated on {e['gate']}: evaluate labkit.gate({e['gate']!r}, ...) first")
        if not g["holds"]:
            closed_by = _number(g["value"])
    row = _row(e, value, env.scale(), closed_by)
    record("claims", {**results().get("claims", {}), claim_id: row})
    return row


def claim(claim_id: str, value) -> None:
    """Check a registered claim: record its value, margin and status, and raise `ClaimFailed`
    where it is asserted (its scales, its gate open) and does not hold.

    Example: ``claim("05.student_throughput_multiple", 14.5)`` records a margin of 9.5 against the
    registered ``>= 5``; a value of 4 raises ClaimFailed with the registered sentence.
    """
    row = _evaluate(claim_id, value, "claim")
    if row["status"] == "fails":
        e = entry(claim_id)
        raise ClaimFailed(f"claim does not hold: {claim_id}: {e['sentence']} ({e['value']}: {value!r} "
                          f"{e['op']} {e['bound']} fails; registered because {e['why']})")


def target(target_id: str, value) -> bool:
    """Record a registered ambition as met or missed, with its margin, every run; never
    raises. Returns whether it was met, so a lab can explain a miss.

    Example: ``target("08.onnx_int8_agreement", 0.979)`` records missed (bound 0.99), margin -0.011.
    """
    row = _evaluate(target_id, value, "target")
    return row["holds"] and not row["status"].startswith("gate closed")


def gate(gate_id: str, value) -> bool:
    """Record a measured precondition, open or shut, before the claims it gates; returns
    whether it is open. It never raises: a shut gate is a fact about the machine. A gate
    measured where it is not asserted still opens or shuts what it gates.

    Example: ``gate("08.int8_gemm_fast", 1.05)`` records shut (bound 1.5): ``08.int8_speedup``
    is then recorded "gate closed (1.05)"."""
    return _evaluate(gate_id, value, "gate")["holds"]


def labs_at(scale: str, where: str = "run") -> dict[str, list[str]]:
    """{lab: ids registered to be evaluated there at ``scale``} (kinds claim, target, gate)."""
    out: dict[str, list[str]] = {}
    for cid, e in registry().items():
        if e["where"] == where and scale in e["scales"] and e["kind"] != "test":
            out.setdefault(e["lab"], []).append(cid)
    return out


def study_claims(name: str) -> list[str]:
    """Ids a committed study evaluates (``where``: ``study:<name>``)."""
    return [cid for cid, e in registry().items() if e["where"] == f"study:{name}"]


def evaluate_study(name: str, values: dict, scale: str) -> dict:
    """{id: row} for a study's registered claims from ``values`` ({id: value}): status holds
    or fails (met or missed for a target), or not asserted at ``scale``. Raises where a
    registered one has no value."""
    missing = set(study_claims(name)) - set(values)
    if missing:
        raise KeyError(f"study {name} did not evaluate its registered claims {', '.join(sorted(missing))}")
    return {cid: _row(entry(cid), v, scale) for cid, v in values.items()}


def study_problems(studies: Path | None = None) -> list[str]:
    """What `labkit report --check` refuses in the committed studies: a registered study
    claim the study file does not carry, or one it carries as failed."""
    studies = Path(studies or Path(REGISTRY).parent / "studies")
    out = []
    names = {p.stem for p in studies.glob("*.json")} | {e["where"][6:] for e in registry().values()
                                                         if e["where"].startswith("study:")}
    for name in sorted(names):
        path = studies / f"{name}.json"
        due = study_claims(name)
        if not path.exists():
            if due:
                out.append(f"study {name}: no committed {path.name} for its claims {', '.join(due)}: "
                           f"run `labkit study {name}`")
            continue
        got = json.loads(path.read_text()).get("claims", {})
        if set(due) - set(got):
            out.append(f"study {name}: registered claims {', '.join(sorted(set(due) - set(got)))} not evaluated: "
                       f"run `labkit study {name} --claims` (re-checks the committed results)")
        for cid, row in got.items():  # re-checked against the registry as it is now, not trusted
            e = registry().get(cid)
            if e is None:
                out.append(f"study {name}: claim {cid} is not in the registry")
            elif (row.get("op"), row.get("bound")) != (e["op"], e["bound"]):
                out.append(f"study {name}: claim {cid} recorded against {row.get('op')} {row.get('bound')}, "
                           f"the registry says {e['op']} {e['bound']}: run `labkit study {name} --claims`")
            elif e["kind"] == "claim" \
                    and not compare(e, float("nan") if row.get("value") is None else row["value"])[2] \
                    and not str(row.get("status", "")).startswith("not asserted"):
                out.append(f"study {name}: claim {cid} fails ({_number(row.get('value'))} {e['op']} {e['bound']})")
    return out


def _study_rows(name: str) -> dict:
    """The claim rows a committed study carries ({} when it has none)."""
    path = Path(REGISTRY).parent / "studies" / f"{name}.json"
    return json.loads(path.read_text()).get("claims", {}) if path.exists() else {}


def show(lab: str):
    """A lab's registered claims as a Markdown table for the notebook: sentence, kind,
    bound, where asserted, and what this kernel measured (value and status) where it was
    evaluated. Example: ``labkit.core.claims.show("05")`` as a lab's last cell before its summary."""
    from IPython.display import Markdown
    made, rows = results().get("claims", {}), []
    for cid, e in registry().items():
        if e["lab"] != lab:
            continue
        where = (f"unit test `{e['test'].split('::')[-1]}`" if e["kind"] == "test" else ", ".join(e["scales"])
                 if e["where"] == "run" else f"the committed `{e['where'][6:]}` study")
        row = made.get(cid) if e["where"] == "run" else _study_rows(e["where"][6:]).get(cid)
        rows.append([f"{e['sentence']} (`{cid}`)", e["kind"], f"{e['op']} {e['bound']:g}", where,
                     f"{_number(row['value'])}: {row['status']}" if row else
                     "" if e["kind"] == "test" or e["where"] != "run" else f"not evaluated at {env.scale()}"])
    if not rows:
        raise KeyError(f"no claims registered for lab {lab!r}: labs are two digits, '01' to '09'")
    return Markdown(markdown_table({"header": ["claim", "kind", "bound", "scales (or where it is checked)",
                                               "your run (or the study's)"], "rows": rows}))
