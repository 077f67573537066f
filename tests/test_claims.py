"""The claims registry (labkit.core.claims): bounds come from it, not from the notebooks; a claim
fails loudly (also under python -O), a target never raises, a shut gate suspends what it
gates; `report.check` refuses a run that skipped a registered claim and a study that fails one;
no notebook makes a claim inside an `if` on anything but the scale."""
import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from labkit.core import claims, results, stats
from labkit.course import report

ROOT = Path(__file__).resolve().parents[1]


def entry(id, kind="claim", op=">=", bound=1.0, scales=("smoke", "cpu", "gpu"), **extra):
    return {"id": id, "lab": id[:2], "kind": kind, "sentence": f"sentence of {id}", "value": f"value of {id}",
            "op": op, "bound": bound, "scales": list(scales), "where": "run", "why": "a test", "could_fail_if": "never",
            **extra}


@pytest.fixture
def reg(tmp_path, monkeypatch):
    """A small registry of its own, and an empty record."""
    entries = [entry("05.speedup", bound=5), entry("05.big_only", bound=0.9, scales=("cpu", "gpu")),
               entry("05.ambition", kind="target", op="<=", bound=1.5),
               entry("05.slice.{slice}", op=">", bound=0, params=[{"slice": "negation"}, {"slice": "contrast"}]),
               entry("08.fast_int8", kind="gate", bound=1.5), entry("08.int8_speedup", bound=1.1, gate="08.fast_int8"),
               entry("09.identity", kind="test", scales=(), test="tests/test_evaluate.py::test_x")]
    path = tmp_path / "claims.json"
    path.write_text(json.dumps({"entries": entries}))
    monkeypatch.setattr(claims, "REGISTRY", path)
    monkeypatch.setattr(results, "_RESULTS", {})
    monkeypatch.setenv("LABKIT_RESULTS", str(tmp_path / "r.json"))
    monkeypatch.setenv("LABKIT_SCALE", "cpu")
    return lambda: json.loads((tmp_path / "r.json").read_text())["claims"]


def test_the_committed_registry_is_sound_and_its_moved_claims_have_their_tests():
    entries = json.loads(claims.REGISTRY.read_text())["entries"]
    assert claims.problems(entries) == []
    reg = claims.registry()
    assert len(reg) >= 60 and {e["lab"] for e in reg.values()} >= {f"{n:02d}" for n in range(1, 10)}
    for e in reg.values():  # every entry says why its bound is what it is and how it could fail
        assert len(e["why"]) > 20 and len(e["could_fail_if"]) > 10 and "{" not in e["sentence"], e["id"]
    for e in (e for e in reg.values() if e["kind"] == "test"):
        path, name = e["test"].split("::")
        assert re.search(rf"^def {name}\(", (ROOT / path).read_text(), re.M), f"{e['id']}: no {e['test']}"


def test_a_claim_takes_its_bound_from_the_registry_and_records_its_margin(reg):
    claims.claim("05.speedup", 14.5)
    claims.claim("05.slice.contrast", 0.03)
    with pytest.raises(claims.ClaimFailed,
                       match=r"05.speedup: sentence of 05.speedup .*4.0 >= 5 fails; registered because a test"):
        claims.claim("05.speedup", 4.0)
    made = reg()
    assert made["05.speedup"] == {"kind": "claim", "value": 4.0, "op": ">=", "bound": 5, "margin": -1.0, "holds": False,
                                 "status": "fails"}
    assert made["05.slice.contrast"]["status"] == "holds"
    with pytest.raises(claims.ClaimFailed):
        claims.claim("05.speedup", float("nan"))  # NaN never holds


def test_unregistered_ids_wrong_kinds_and_non_numbers_are_refused(reg):
    with pytest.raises(KeyError, match="did you mean 05.speedup"):
        claims.claim("05.speedp", 1)
    with pytest.raises(KeyError, match="not in the claims registry"):
        claims.claim("05.slice.{slice}", 1)  # a template is not an instance
    with pytest.raises(TypeError, match="registered as a target: call labkit.target"):
        claims.claim("05.ambition", 1)
    with pytest.raises(TypeError, match="tests/test_evaluate.py::test_x checks it"):
        claims.claim("09.identity", 0)
    with pytest.raises(TypeError, match="must be a number"):
        claims.claim("05.speedup", "fast")
    with pytest.raises(TypeError):
        claims.claim("05.speedup", 5.0, ">=", 1.0)  # a notebook cannot pass a bound


def test_a_claim_outside_its_scales_is_recorded_not_asserted(reg, monkeypatch):
    monkeypatch.setenv("LABKIT_SCALE", "smoke")
    claims.claim("05.big_only", 0.5)  # would fail at cpu
    assert reg()["05.big_only"]["status"] == "not asserted at smoke"
    monkeypatch.setenv("LABKIT_SCALE", "cpu")
    with pytest.raises(claims.ClaimFailed):
        claims.claim("05.big_only", 0.5)


def test_a_target_is_recorded_met_or_missed_and_never_raises(reg):
    assert claims.target("05.ambition", 1.36) is True
    assert claims.target("05.ambition", 2.0) is False
    assert reg()["05.ambition"] == {"kind": "target", "value": 2.0, "op": "<=", "bound": 1.5, "margin": -0.5,
                                    "holds": False, "status": "missed"}


def test_a_shut_gate_suspends_its_claims_and_an_open_one_asserts_them(reg):
    with pytest.raises(RuntimeError, match="evaluate labkit.gate"):
        claims.claim("08.int8_speedup", 1.0)
    assert claims.gate("08.fast_int8", 1.2) is False
    claims.claim("08.int8_speedup", 1.0)  # does not raise: the gate is shut
    assert reg()["08.int8_speedup"]["status"] == "gate closed (1.2)"
    assert claims.gate("08.fast_int8", 1.7) is True
    with pytest.raises(claims.ClaimFailed):
        claims.claim("08.int8_speedup", 1.0)


def test_a_nan_gate_is_shut_and_a_gate_outside_its_scales_still_opens(reg, monkeypatch):
    assert claims.gate("08.fast_int8", float("nan")) is False
    assert claims.target("05.ambition", float("nan")) is False  # NaN: missed, never raised
    claims.claim("08.int8_speedup", 0.5)  # gated, shut: recorded, not raised
    assert reg()["08.int8_speedup"]["status"] == "gate closed (nan)"
    monkeypatch.setenv("LABKIT_SCALE", "smoke")
    path = claims.REGISTRY
    entries = json.loads(path.read_text())["entries"]
    for e in entries:
        if e["id"] == "08.fast_int8":
            e["scales"] = ["cpu"]  # recorded, not asserted, at smoke
        if e["id"] == "08.int8_speedup":
            e["scales"] = ["cpu"]
    path.write_text(json.dumps({"entries": entries}))
    claims._load.cache_clear()
    assert claims.gate("08.fast_int8", 2.0) is True  # measured open, though not asserted at smoke
    claims.claim("08.int8_speedup", 1.5)
    assert reg()["08.int8_speedup"]["status"] == "not asserted at smoke"


def test_unsound_registries_are_refused():
    good = entry("05.x")
    assert claims.problems([good]) == []
    bad = {"no bound": {**good, "bound": "study"}, "lab": {**good, "lab": "06"}, "op": {**good, "op": "=>"},
           "scale": {**good, "scales": ["laptop"]}, "gate": {**good, "gate": "05.nothing"},
           "field": {**good, "boundd": 1}, "kind": {**good, "kind": "hope"}, "where": {**good, "where": "lab"},
           "test": {**good, "kind": "test"}, "params": {**good, "id": "05.x.{slice}", "params": [{"budget": 1}]},
           "retired yet asserted": {**good, "retired": "replaced"}, "not an object": "05.x"}
    for what, e in bad.items():
        assert claims.problems([e]), what
    gate = entry("08.g", kind="gate", scales=("cpu",))
    assert any("gate's scales" in p for p in claims.problems([gate, entry("08.x", gate="08.g")]))
    assert any("twice" in p for p in claims.problems([good, good]))


def test_a_failed_claim_raises_under_python_O_too(tmp_path):
    """`python -O` strips `assert`; a claim that does not hold must still stop the notebook."""
    (tmp_path / "claims.json").write_text(json.dumps({"entries": [entry("05.speedup", bound=5)]}))
    code = ("import math; from pathlib import Path; from labkit.core import claims\n"
            f"claims.REGISTRY = Path({str(tmp_path / 'claims.json')!r})\n"
            "for value in (4.0, math.nan):\n"
            "    try:\n"
            "        claims.claim('05.speedup', value)\n"
            "    except claims.ClaimFailed as e:\n"
            "        print('FAILED', e)\n")
    out = subprocess.run([sys.executable, "-O", "-c", code], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "LABKIT_RESULTS": str(tmp_path / "r.json"), "LABKIT_SCALE": "cpu"})
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.count("FAILED claim does not hold: 05.speedup") == 2, out.stdout


def test_report_check_refuses_a_run_that_skipped_or_invented_a_claim(reg):
    def run(made, scale="cpu"):
        return {"meta": {"scale": scale}, "notebooks": [
            {"notebook": "05_distillation.ipynb", "status": "passed", "failed": None,
             "results": {"x": 1, "claims": made}}]}
    row = {"status": "holds"}
    full = {"05.speedup": row, "05.big_only": row, "05.ambition": {"status": "missed"}, "05.slice.negation": row,
            "05.slice.contrast": row}
    own = [p for p in report.check(run(full)) if p.startswith("05_")]
    assert own == []
    skipped = {k: v for k, v in full.items() if k != "05.slice.contrast"}
    assert any("not evaluated at cpu: 05.slice.contrast" in p for p in report.check(run(skipped)))
    assert any("claim 05.speedup fails" in p for p in report.check(run({**full, "05.speedup": {"status": "fails"}})))
    smoke = {k: v for k, v in full.items() if k != "05.big_only"}  # registered at cpu and gpu only
    assert [p for p in report.check(run(smoke, "smoke")) if p.startswith("05_")] == []
    assert any("not in the registry: 05.made_up" in p for p in report.check(run({**full, "05.made_up": row})))


def test_report_check_refuses_a_study_missing_or_failing_its_claims(tmp_path, monkeypatch):
    path = tmp_path / "claims.json"
    path.write_text(json.dumps({"entries": [{**entry("03.never_pays", op="<=", bound=0.0), "where": "study:lab03"}]}))
    monkeypatch.setattr(claims, "REGISTRY", path)
    studies = tmp_path / "studies"
    studies.mkdir()
    assert "no committed lab03.json" in claims.study_problems(studies)[0]
    (studies / "lab03.json").write_text(json.dumps({"results": {}}))
    assert "not evaluated" in claims.study_problems(studies)[0]
    rows = claims.evaluate_study("lab03", {"03.never_pays": 0.01}, "cpu")
    assert rows["03.never_pays"]["status"] == "fails"
    (studies / "lab03.json").write_text(json.dumps({"results": {}, "claims": rows}))
    assert "claim 03.never_pays fails" in claims.study_problems(studies)[0]
    good = claims.evaluate_study("lab03", {"03.never_pays": -0.01}, "cpu")
    (studies / "lab03.json").write_text(json.dumps({"claims": good}))
    assert claims.study_problems(studies) == []
    stale = {"03.never_pays": {**good["03.never_pays"], "bound": -0.5}}  # the registry's bound moved since
    (studies / "lab03.json").write_text(json.dumps({"claims": stale}))
    assert "recorded against <= -0.5" in claims.study_problems(studies)[0]
    forged = {"03.never_pays": {**good["03.never_pays"], "value": 0.2}}  # a status the value does not support
    (studies / "lab03.json").write_text(json.dumps({"claims": forged}))
    assert "claim 03.never_pays fails" in claims.study_problems(studies)[0]
    with pytest.raises(KeyError, match="did not evaluate"):
        claims.evaluate_study("lab03", {}, "cpu")


def test_the_committed_studies_carry_their_claims_and_none_fails():
    assert claims.study_problems() == []


# ------------------------------------------------------------------ the notebooks' calls

CALLS = {"claim", "target", "gate"}


def _calls(tree):
    """(function, first argument node, the If/IfExp/comprehension it sits under or None)."""
    parents = {}
    for node in ast.walk(tree):
        for child in ast.iter_child_nodes(node):
            parents[child] = node
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in CALLS \
                and isinstance(node.func.value, ast.Name) and node.func.value.id == "labkit":
            child, guard = node, None
            while child in parents and guard is None:
                parent = parents[child]
                if isinstance(parent, ast.If) and child is not parent.test:
                    names = {n.id for n in ast.walk(parent.test) if isinstance(n, ast.Name)}
                    guard = None if names <= {"SCALE"} else parent
                elif isinstance(parent, (ast.IfExp, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp,
                                         ast.While, ast.BoolOp, ast.Try, ast.Lambda)):
                    guard = parent
                child = parent
            yield node.func.attr, node.args[0] if node.args else None, guard


def _notebook_calls():
    for path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        nb = json.loads(path.read_text())
        for i, cell in enumerate(nb["cells"]):
            if cell["cell_type"] == "code":
                src = "\n".join(line for line in "".join(cell["source"]).splitlines()
                                if not line.lstrip().startswith(("%", "!")))
                for call in _calls(ast.parse(src)):
                    yield path.name, i, call


def test_no_notebook_makes_a_claim_inside_a_condition_on_its_data():
    conditional = [f"{nb} cell {i}: labkit.{fn} under {type(g).__name__} line {g.lineno}"
                   for nb, i, (fn, _, g) in _notebook_calls() if g is not None]
    assert conditional == []


def _pattern(arg) -> str | None:
    """A regular expression for the ids a call's first argument can take (None: not a literal)."""
    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
        return re.escape(arg.value)
    if isinstance(arg, ast.JoinedStr):
        return "".join(re.escape(v.value) if isinstance(v, ast.Constant) else "[a-z0-9_]+" for v in arg.values)
    return None


def test_every_call_names_a_registered_id_of_its_kind_and_every_registered_claim_is_made():
    reg = claims.registry()
    made = set()
    for nb, i, (fn, arg, _) in _notebook_calls():
        pattern = _pattern(arg)
        assert pattern, f"{nb} cell {i}: labkit.{fn}'s id must be a string or f-string literal"
        ids = [c for c in reg if re.fullmatch(pattern, c)]
        assert ids, f"{nb} cell {i}: labkit.{fn}({ast.unparse(arg)}) matches no registered id"
        assert {reg[c]["kind"] for c in ids} == {fn}, f"{nb} cell {i}: {ids} are not {fn}s"
        assert {reg[c]["lab"] for c in ids} == {nb[:2]}, f"{nb} cell {i}: another lab's id"
        made |= set(ids)
    never = [c for c, e in reg.items() if e["where"] == "run" and e["kind"] != "test" and not e.get("retired")
             and c not in made]
    assert not made & {c for c, e in reg.items() if e.get("retired")}, "a retired claim is still made"
    assert never == [], "registered, and no notebook makes them"


def test_the_claims_table_in_the_results_page_lists_every_registered_claim():
    page = (ROOT / "docs" / "results.md").read_text(encoding="utf-8")
    missing = [cid for cid in claims.registry() if f"`{cid}`" not in page]
    assert missing == [], "run `labkit report --readme`"


def test_the_static_check_sees_claims_under_conditions_comprehensions_and_try():
    code = ("if x > 1:\n    labkit.claim('a', x)\n"
            "[labkit.target('b', v) for v in vs]\n"
            "y = labkit.claim('c', 1) if ok else None\n"
            "try:\n    labkit.gate('d', 2)\nexcept Exception:\n    pass\n"
            "if SCALE != 'smoke':\n    labkit.claim('e', 1)\n"
            "if not labkit.target('f', 1):\n    print('missed')\n"
            "for v in vs:\n    labkit.claim('g', v)\n")
    guarded = {arg.value: g is not None for _, arg, g in _calls(ast.parse(code))}
    assert guarded == {"a": True, "b": True, "c": True, "d": True, "e": False, "f": False, "g": False}


# ------------------------------------------------------------------ claims that became tests

def test_the_lab02_reference_run_ends_below_the_cpu_runs_held_out_loss():
    """Lab 02's "the reference checkpoint beats your run": the committed study trains 12x
    longer than the lab at cpu, so its last held-out loss is lower (by construction)."""
    study = json.loads((ROOT / "labkit/reference/studies/lab02.json").read_text())["results"]
    cpu = json.loads((ROOT / "labkit/reference/cpu.json").read_text())
    own = next(n for n in cpu["notebooks"] if n["notebook"].startswith("02_"))["results"]["mlm_heldout_loss"][-1]
    assert study["points"][-1]["heldout_loss"] < own - 1.0


def test_lab07_runs_several_seeds_at_cpu():
    """Lab 07's comparisons need seeds to compare over (was `assert cfg.seeds >= 3` in the lab), and its
    live DP-SGD runs and membership attack are draws the committed lab07 study never made."""
    from labkit.labs.federated import FederatedConfig
    # 0 .. drawn - 1
    drawn = json.loads((ROOT / "labkit/reference/studies/lab07.json").read_text())["settings"]["seeds"]
    for scale in ("cpu", "gpu"):
        cfg = FederatedConfig.for_scale(scale)
        assert cfg.seeds >= 3 and len(set(cfg.head_seeds)) >= 3, scale
        assert min(*cfg.head_seeds, *cfg.bert_seeds, cfg.mia_seed) >= drawn, scale


def test_show_lists_a_labs_claims_with_what_this_run_measured(reg):
    claims.claim("05.speedup", 14.5)
    table = claims.show("05").data
    assert "sentence of 05.speedup (`05.speedup`) | claim | >= 5 | smoke, cpu, gpu | 14.5: holds |" in table
    assert "`05.ambition`) | target | <= 1.5 | smoke, cpu, gpu | not evaluated at cpu |" in table
    assert "09.identity" not in table and "unit test `test_x`" in claims.show("09").data
    with pytest.raises(KeyError, match="two digits"):
        claims.show("5")


def test_show_fills_a_study_claim_from_the_committed_study():
    table = claims.show("03").data
    row = claims._study_rows("lab03")["03.adaptation_never_pays"]
    assert f"{row['value']:.4g}: {row['status']}" in table.split("03.adaptation_never_pays")[1].splitlines()[0]


def test_consistency_count_counts_every_instance_asserted_at_the_scale(tmp_path, monkeypatch):
    entries = [entry("03.consistent_with_study.{arm}", scales=("cpu",), params=[{"arm": "a"}, {"arm": "b"}]),
               entry("04.consistent_with_study", scales=("cpu", "gpu")), entry("04.other", scales=("cpu",)),
               entry("05.consistent_with_study", scales=())]  # retired: asserted nowhere
    path = tmp_path / "claims.json"
    path.write_text(json.dumps({"entries": entries}))
    monkeypatch.setattr(claims, "REGISTRY", path)
    assert claims.consistency_count("cpu") == 3 and claims.consistency_count("gpu") == 1
    assert claims.consistency_count("smoke") == 1  # none: no correction, never a division by zero
    runs = [0.70, 0.71, 0.69, 0.72, 0.70]
    band = stats.prediction(runs, comparisons=3)  # the course's three checks at cpu
    c = claims.consistency(runs, 0.70)
    assert (c["low"], c["high"], c["comparisons"]) == (band["low"], band["high"], 3)
    assert c["inside"] == stats.inside(0.70, band) > 0 and c["live"] == 0.70
    assert claims.consistency(runs, band["high"] + 0.01)["inside"] == pytest.approx(-0.01)  # outside by a point
    assert claims.consistency(runs, 0.70, scale="smoke")["high"] < c["high"]  # one check: no widening
    two = claims.consistency(runs, [0.70, band["high"] - 0.001])  # two live seeds: six draws, the worst one
    assert two["comparisons"] == 6 and two["live"] == band["high"] - 0.001 and two["high"] > band["high"]
    with pytest.raises(ValueError, match="needs the live run's value"):
        claims.consistency(runs, [])
