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

A notebook passes only the id and the value: the bound is the registry's. An id holding
``{name}`` placeholders is a template; its ``params`` list the registered instances
(``03.minilm_minus_tfidf.{slice}`` with ``[{"slice": "negation"}, {"slice": "contrast"}]``).
Each evaluation is recorded (`results.record`, key ``"claims"``) with its value, margin and
status, so `report.check` can tell a registered claim that a run never evaluated.
Leaves out: running notebooks and the README's tables (`labkit.report`).
"""
from __future__ import annotations

import difflib
import functools
import json
import math
from pathlib import Path

from . import env
from .results import record, results

REGISTRY = Path(__file__).parent / "reference" / "claims.json"
KINDS = ("claim", "target", "gate", "test")
SCALES = ("smoke", "cpu", "gpu")
OPS = {">": lambda a, b: a > b, ">=": lambda a, b: a >= b, "<": lambda a, b: a < b,
       "<=": lambda a, b: a <= b}
FIELDS = {"id", "lab", "kind", "sentence", "value", "op", "bound", "scales", "where", "why", "could_fail_if"}
OPTIONAL = {"params", "gate", "study", "note", "test"}


class ClaimFailed(AssertionError):
    """A lab's claim that does not hold (raised explicitly: ``python -O`` cannot skip it)."""


def problems(entries: list) -> list[str]:
    """What is wrong with a registry's entries (empty when it is sound)."""
    out, ids = [], set()
    for i, e in enumerate(entries):
        where = f"entry {i} ({e.get('id', 'no id')})"
        if not isinstance(e, dict):
            out.append(f"{where}: not an object")
            continue
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
        if not str(e.get("id", "")).startswith(f"{e.get('lab')}."):
            out.append(f"{where}: an id starts with its lab, '{e.get('lab')}.'")
        where_ = e.get("where", "")
        if where_ != "run" and not (where_.startswith("study:lab") and where_[9:].isdigit()):
            out.append(f"{where}: where must be 'run' or 'study:labNN'")
        for instance in _instances(e):
            if instance in ids:
                out.append(f"{where}: id {instance} registered twice")
            ids.add(instance)
    gates = {e["id"] for e in entries if isinstance(e, dict) and e.get("kind") == "gate"}
    out += [f"entry {e['id']}: its gate {e['gate']} is not a registered gate"
            for e in entries if isinstance(e, dict) and e.get("gate") and e["gate"] not in gates]
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


def entry(claim_id: str) -> dict:
    """One registered claim; a clear error (with the nearest ids) for an id not registered."""
    reg = registry()
    if claim_id not in reg:
        near = difflib.get_close_matches(claim_id, list(reg), n=3)
        raise KeyError(f"{claim_id!r} is not in the claims registry ({Path(REGISTRY).name})"
                       + (f"; did you mean {', '.join(near)}?" if near else "")
                       + ": register a claim there (sentence, op, bound, why, could_fail_if) before measuring it")
    return reg[claim_id]


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
    if e["kind"] != kind:
        raise TypeError(f"{claim_id} is registered as a {e['kind']}: call labkit."
                        f"{'claim' if e['kind'] == 'test' else e['kind']}"
                        + (f" (it is checked by {e['test']}, not in a lab)" if e["kind"] == "test" else ""))
    if e["where"] != "run":
        raise TypeError(f"{claim_id} is evaluated by {e['where']}, not in a lab")
    value, margin, holds = compare(e, value)
    scale = env.scale()
    status = {"claim": ("holds", "fails"), "target": ("met", "missed"), "gate": ("open", "shut")}[kind][not holds]
    if e.get("gate"):
        g = results().get("claims", {}).get(e["gate"])
        if g is None:
            raise RuntimeError(f"{claim_id} is gated on {e['gate']}: evaluate labkit.gate({e['gate']!r}, ...) first")
        if g["status"] != "open":
            status = f"gate closed ({g['value']:.4g})"
    if scale not in e["scales"]:
        status = f"not asserted at {scale}"
    row = {"kind": kind, "value": round(value, 4) if math.isfinite(value) else None, "op": e["op"],
           "bound": e["bound"], "margin": round(margin, 4) if math.isfinite(margin) else None, "status": status}
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

    Example: ``target("08.int8_speedup", 1.36)`` records missed (bound 1.5), margin -0.14.
    """
    return _evaluate(target_id, value, "target")["status"] == "met"


def gate(gate_id: str, value) -> bool:
    """Record a measured precondition, open or shut, before the claims it gates; returns
    whether it is open. It never raises: a shut gate is a fact about the machine."""
    return _evaluate(gate_id, value, "gate")["status"] == "open"


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
    """{id: row} for a study's registered claims from ``values`` ({id: value}): status holds,
    fails or not asserted at ``scale``. Raises where a registered one has no value."""
    missing = set(study_claims(name)) - set(values)
    if missing:
        raise KeyError(f"study {name} did not evaluate its registered claims {', '.join(sorted(missing))}")
    out = {}
    for cid, v in values.items():
        e = entry(cid)
        value, margin, holds = compare(e, v)
        status = "holds" if holds else "fails"
        out[cid] = {"kind": e["kind"], "value": round(value, 4), "op": e["op"], "bound": e["bound"],
                    "margin": round(margin, 4), "status": status if scale in e["scales"] else f"not asserted at {scale}"}
    return out


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
                out.append(f"study {name}: no committed {path.name} for its claims {', '.join(due)}: run `labkit study {name}`")
            continue
        got = json.loads(path.read_text()).get("claims", {})
        if set(due) - set(got):
            out.append(f"study {name}: registered claims {', '.join(sorted(set(due) - set(got)))} not evaluated: "
                       f"run `labkit study {name} --claims` (re-checks the committed results)")
        out += [f"study {name}: claim {cid} fails ({row['value']} {row['op']} {row['bound']})"
                for cid, row in got.items() if row.get("status") == "fails"]
    return out
