"""Tools: running the notebooks headless, and the report of what they measured.

A notebook states its key results with `record(key, value)` and its result tables with
`table(key, title, header, rows)` (`labkit.core.results`), and its claims with `labkit.claim(id,
value)` (`labkit.core.claims`). `run` executes notebooks, each in a fresh kernel (nbclient) at one scale, and writes
``report.json`` = {"meta": what it was measured on, "notebooks": one row each: status,
wall time, peak memory of the kernel's whole process tree, recorded results} and
``report.md``. `check` says what a report lacks (a registered claim not evaluated
included); `merge` puts a run's rows into a committed reference report in
``labkit/reference/``, from which `labkit.course.docs` renders the README's tables.
Leaves out: argument parsing (`labkit.course.cli`), the README (`labkit.course.docs`).
"""
from __future__ import annotations

import datetime
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from labkit.core import cache, claims, env
from labkit.core.measure import PeakSampler
from labkit.core.results import markdown_table, record, table  # noqa: F401  (labkit.course.report.record, as before)

REFERENCE = env.REFERENCE

# ---------------------------------------------------------------- running notebooks

def meta(scale: str, fresh: bool) -> dict:
    """What a run is measured on: scale, cache state, date, labkit commit, the machine
    (`env.machine`), its measured matmul speed, and the install's time and size."""
    root = Path(__file__).resolve().parents[2]
    commit = None
    if (root / ".git").exists():
        git = ["git", "-C", str(root)]
        head = subprocess.run(git + ["rev-parse", "--short=12", "HEAD"], capture_output=True, text=True)
        dirty = subprocess.run(git + ["status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True).stdout.strip()
        commit = head.stdout.strip() + ("-dirty" if dirty else "") if head.returncode == 0 else None
    install = Path(sys.prefix) / "labkit-install.json"
    return {"scale": scale, "fresh": fresh, "run_cache_mb_at_start": round(cache.size("runs") / 2**20),
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "labkit_commit": commit, **env.machine(), "matmul_gflops": round(env.matmul_gflops()),
            "install": json.loads(install.read_text()) if install.exists() else None}


def _title(nb) -> str:
    """The first heading of a notebook: "Lab 03 · Fine-tuning, ..."."""
    for cell in nb.cells:
        for line in cell.source.splitlines() if cell.cell_type == "markdown" else []:
            if line.startswith("# "):
                return line[2:].strip()
    return ""


def _cell_times(nb):
    """(index, start, end) of each executed code cell, in epoch seconds, from the timestamps
    nbclient writes into the executed cells."""
    for i, cell in enumerate(nb.cells):
        t = cell.get("metadata", {}).get("execution", {})
        if cell.cell_type == "code" and "iopub.execute_input" in t and "shell.execute_reply" in t:
            yield (i, *(datetime.datetime.fromisoformat(t[k].replace("Z", "+00:00")).timestamp()
                        for k in ("iopub.execute_input", "shell.execute_reply")))


def cell_seconds(nb, at_least: float = 1.0) -> list[list]:
    """Where a notebook's time went: [cell index, seconds] for each code cell that took at least
    ``at_least`` seconds."""
    return [[i, round(end - start, 1)] for i, start, end in _cell_times(nb) if end - start >= at_least]


def cell_peaks(nb, trace, top: int = 3) -> list[list]:
    """Where a notebook's memory went: [cell index, MB] for the ``top`` code cells with the
    largest process-tree memory sampled while they ran (``trace``: `PeakSampler.trace`),
    largest first. A cell shorter than the sampler's wait may have no sample, and no place."""
    out = []
    for i, start, end in _cell_times(nb):
        seen = [b for when, b in trace if start <= when <= end]
        if seen:
            out.append([i, round(max(seen) / 2**20)])
    return sorted(out, key=lambda c: -c[1])[:top]


def execute(notebook: Path, scale: str, out_dir: Path, fresh_since: float | None) -> dict:
    """Run one notebook in a child kernel of this process and return its report row (`run`
    calls it in a fresh worker process per notebook, through `labkit.course.cli`)."""
    import resource

    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    nb = nbformat.read(notebook, as_version=4)
    results = out_dir / f"{notebook.stem}.results.json"
    results.unlink(missing_ok=True)
    os.environ.update(LABKIT_SCALE=scale, LABKIT_RESULTS=str(results), LABKIT_LAB=notebook.stem)
    if fresh_since is not None:
        os.environ["LABKIT_FRESH"] = repr(fresh_since)
    from traitlets.config import Config
    config = Config()
    sockets = Path(tempfile.mkdtemp(prefix="labkit-kernel-"))
    if os.name == "posix" and len(str(sockets / "k-99999")) < 100:  # under AF_UNIX's ~104-byte path limit
        # the kernel talks to us over local sockets, not TCP (no port, no warning)
        config.KernelManager.transport, config.KernelManager.ip = "ipc", str(sockets / "k")
    client = NotebookClient(nb, timeout=3600, kernel_name="python3", config=config,
                            resources={"metadata": {"path": str(notebook.parent)}})
    cap = int(os.environ.get("LABKIT_MEMORY_CAP_MB") or 0)
    sampler = PeakSampler(cap_mb=cap)
    sampler.start()
    start = time.perf_counter()
    status, failed = "passed", None
    try:
        client.execute()
    except CellExecutionError as e:
        status = "failed"
        errors = [(i, o) for i, c in enumerate(nb.cells) if c.cell_type == "code"
                  for o in c.get("outputs", []) if o.get("output_type") == "error"]
        index, out = errors[0] if errors else (None, {"ename": type(e).__name__, "evalue": ""})
        failed = {"cell": index, "error": f"{out['ename']}: {out['evalue']}"[:500]}
    except Exception as e:  # kernel died, timeout, ...
        status, failed = "failed", {"cell": None, "error": f"{type(e).__name__}: {e}"[:500]}
    finally:
        shutil.rmtree(sockets, ignore_errors=True)
    wall = time.perf_counter() - start
    peak = sampler.stop()
    if sampler.over:
        status, failed = "failed", {"cell": (failed or {}).get("cell"),
                                    "error": f"over the memory cap of {cap} MB (peak {peak / 2**20:.0f} MB): "
                                             "its processes were stopped, as a container's would be"}
    biggest = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * (1 if sys.platform == "darwin" else 1024)
    nbformat.write(nb, out_dir / notebook.name)
    return {"notebook": notebook.name, "title": _title(nb), "status": status, "failed": failed,
            "wall_s": round(wall, 1), "peak_mb": round(max(peak, biggest) / 2**20), "cells": cell_seconds(nb),
            "peak_cells": cell_peaks(nb, sampler.trace),
            "results": json.loads(results.read_text()) if results.exists() else {}}


BINDER = {"cores": 1, "memory_cap_mb": 2048,
          "how": "the worker and its kernel pinned to one core (CPU affinity: torch follows it); the "
                 "notebook's whole process tree stopped once its memory (PSS) passes the cap"}


BINDER_RUNS = {"binder-smoke": "`smoke`, 1 core, 2 GB", "binder-cpu": "`cpu`, cold, 1 core, 2 GB"}  # reference files


def dry_cache() -> Path:
    """A new, empty ``<cache>/dry-run`` whose ``data`` and ``archives`` are the cache's own
    (linked): a dry run reads what `labkit fetch` put there and computes everything else."""
    root = cache.cache_dir()
    if root.name == "dry-run":
        raise ValueError(f"LABKIT_CACHE={root} is a dry run's own cache: point it at the cache `labkit fetch` filled")
    if not (root / "data").is_dir():
        raise FileNotFoundError(f"nothing fetched in {root}: run `labkit fetch` before a dry run")
    dry = root / "dry-run"
    if dry.is_symlink():
        raise ValueError(f"{dry} is a link: a dry run deletes and remakes that folder; remove the link")
    if dry.exists():
        shutil.rmtree(dry)  # unlinks the data/archives links, never what they point to
    dry.mkdir(parents=True)
    (dry / env.DRY_MARKER).write_text("made by labkit run --dry-run: deleted and remade by the next one\n")
    for sub in ("data", "archives"):  # read through: a re-extraction by `labkit fetch` would land in the real cache
        if (root / sub).is_dir():
            (dry / sub).symlink_to(root / sub, target_is_directory=True)
    return dry


def run(notebooks, scale: str, out_dir, fresh: bool = False, keep=(), binder: bool = False,
        dry_run: bool = False) -> dict:
    """Run each notebook in a fresh worker process (so each is measured alone) and write
    ``report.json`` and ``report.md`` into ``out_dir``. ``fresh``: ignore the run cache's
    entries from before this run (cold timings; entries made during the run are reused),
    except the kinds in ``keep`` (what earlier labs of the course leave for a later one).
    ``binder``: as Binder runs it (`BINDER`: one core, 2 GB), said in the report's meta.
    ``dry_run`` (scale gpu): the gpu configuration at tiny sizes (`labkit.core.env.dry_run`), in
    a new ``<cache>/dry-run`` that reads the fetched data from the cache and computes every run
    afresh. Every path handed to a kernel is absolute: the kernels run in the notebooks' folder."""
    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [Path(nb).resolve() for nb in notebooks]
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise FileNotFoundError(f"labkit run: no such notebook {', '.join(missing)}")
    if keep and not fresh:
        raise ValueError("--keep only means something with --fresh")
    child_env = dict(os.environ, LABKIT_CACHE=str(cache.cache_dir()), LABKIT_FRESH_KEEP=",".join(keep),
                     LABKIT_MEMORY_CAP_MB=str(BINDER["memory_cap_mb"] if binder else ""))
    if dry_run:
        if scale != "gpu":
            raise ValueError(f"a dry run runs the gpu configuration, not {scale}")
        child_env.update(LABKIT_CACHE=str(dry_cache()), LABKIT_DRY_RUN="1")
    else:
        child_env["LABKIT_DRY_RUN"] = ""  # one exported in this shell must not turn a real run dry
    one_core = (lambda: os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})) if binder else None
    since = time.time() if fresh else None
    report = {"meta": {**meta(scale, fresh), **({"fresh_keep": list(keep)} if keep else {}),
                       **({"dry_run": dict(env.DRY_RUN)} if dry_run else {}),
                       "constrained": BINDER if binder else None}, "notebooks": []}
    for nb in paths:
        print(f"[{scale}] {nb.name} ...", flush=True)
        row_file = out_dir / f"{nb.stem}.run.json"
        row_file.unlink(missing_ok=True)
        worker = "import sys; from labkit.course.cli import main; sys.exit(main(sys.argv[1:]))"
        subprocess.run([sys.executable, "-c", worker, "_exec", str(nb), scale, str(out_dir),
                        str(row_file), repr(since)], check=False, env=child_env, preexec_fn=one_core)
        row = json.loads(row_file.read_text()) if row_file.exists() else {
            "notebook": nb.name, "status": "failed", "wall_s": None, "peak_mb": None,
            "failed": {"cell": None, "error": "worker crashed"}, "results": {}}
        report["notebooks"].append(row)
        msg = f"{row['status']} in {row['wall_s']} s, peak {row['peak_mb']} MB"
        if row["failed"]:
            msg += f"; cell {row['failed']['cell']}: {row['failed']['error']}"
        print(f"[{scale}] {nb.name}: {msg}", flush=True)
        # after each notebook: a partial report survives an interruption
        cache.write_json(out_dir / "report.json", report)
    # The machine's speed read again after the last notebook: a shared machine drifts over a run.
    # Budgets and normalised times use the larger reading, the one that makes the labs look slower.
    m = report["meta"]
    m["matmul_gflops_before"], m["matmul_gflops_after"] = m["matmul_gflops"], round(env.matmul_gflops())
    m["matmul_gflops"] = max(m["matmul_gflops_before"], m["matmul_gflops_after"])
    cache.write_json(out_dir / "report.json", report)
    (out_dir / "report.md").write_text(markdown(report))
    print(f"report: {out_dir / 'report.md'}")
    return report


def check(report: dict, dry_run: bool = False) -> list[str]:
    """What is wrong with a report: failed notebooks, labs that recorded nothing, registered
    claims a lab that ran at that scale did not evaluate (or claims it made unregistered),
    and committed studies missing or failing their claims (`claims.study_problems`)."""
    if not report.get("notebooks"):
        return ["the report has no notebooks"]
    problems, scale = [], report.get("meta", {}).get("scale")
    made = [c for r in report["notebooks"] for c in r.get("results", {}).get("claims", {}).values()]
    dry = report.get("meta", {}).get("dry_run") or any(c.get("status") == "dry run: not asserted" for c in made)
    if dry and not dry_run:
        problems.append("a dry run (labkit run --dry-run), not a measurement: its claims were not asserted")
    if scale not in claims.SCALES:
        problems.append(f"the report names no scale (meta.scale is {scale!r}): its claims cannot be checked")
    due = claims.labs_at(scale) if scale else {}
    registered = claims.registry()
    for r in report["notebooks"]:
        if r["status"] != "passed":
            problems.append(f"{r['notebook']} {r['status']}: {r['failed']}")
            continue
        if not re.match(r"\d\d_", r["notebook"]):
            continue
        if not set(r["results"]) - {"afresh_s"}:  # its timings alone are not the lab's results
            problems.append(f"{r['notebook']} recorded no results (labkit.record)")
        made = r["results"].get("claims", {})
        missing = [c for c in due.get(r["notebook"][:2], []) if c not in made]
        if missing:
            problems.append(f"{r['notebook']}: registered claims not evaluated at {scale}: {', '.join(missing)}")
        unknown = [c for c in made if c not in registered]
        if unknown:
            problems.append(f"{r['notebook']}: claims not in the registry: {', '.join(unknown)}")
        problems += [f"{r['notebook']}: claim {c} fails" for c, row in made.items() if row.get("status") == "fails"]
        problems += [f"{r['notebook']}: {p}" for p in record_problems(r["notebook"][:2], r["results"])]
    return problems + claims.study_problems()


ARM_KEYS = {"clean_accuracy", "clean_std", "accuracy_under_attack", "success_rate", "seeds", "source"}
MIA_KEYS = {"auc", "tpr_at_1pct_fpr", "test_accuracy", "seeds", "source"}


def defence_arms() -> list[str]:
    """The arms the committed lab06 study compared: what lab 06 must record for each."""
    path = Path(claims.REGISTRY).parent / "studies" / "lab06.json"
    return list(json.loads(path.read_text())["results"]["test"]) if path.exists() else []


def record_problems(lab: str, res: dict) -> list[str]:
    """What is wrong with the records other checks read (issue 29): lab 06's defences, each
    arm from the study, "none" and the live defences from the run, and lab 05's student
    reproduced; lab 07's membership attack from the study (5 seeds or more) and the run, and
    the small BERT at epsilon 1 beside the majority class; lab 08's front, chosen on
    validation, and its variant for one review at a time; lab 09's services, each applying its
    own fitted temperature, and the open-loop load test."""
    out = []
    if lab == "06":
        study = res.get("defence", {})
        out += [f"defence[{a!r}] missing or incomplete" for a in defence_arms() if set(study.get(a, {})) != ARM_KEYS
                or study[a]["source"] != "study"]
        # the live arms (AdversarialConfig.live_defences): "none" and a defence at least
        live = res.get("defence_live", {})
        out += [f"defence_live[{a!r}] incomplete or not an arm of the study" for a, v in live.items()
                if a not in defence_arms() or set(v) != ARM_KEYS or v["source"] != "run"]
        if "none" not in live or len(live) < 2:
            out.append(f"defence_live has {sorted(live)}: it needs 'none' and at least one defence, run live")
        gap = res.get("none_minus_lab05_student", {}).get("value")
        if gap is None or abs(gap) > 0.01:
            out.append(f"none_minus_lab05_student is {gap}: 'none' must be lab 05's student (within 0.01)")
        if set(res.get("a2t_target", {})) != {"relative_drop", "clean_gap", "reached"} \
                or "polarity_flip_share" not in res:
            out.append("a2t_target {relative_drop, clean_gap, reached} or polarity_flip_share not recorded")
    if lab == "07":
        out += [f"{key}: no non-private model, or rows without {sorted(MIA_KEYS)} from the {source} ({least}+ seeds)"
                for key, source, least in (("membership", "study", 5), ("membership_live", "run", 1))
                if "non-private" not in res.get(key, {}) or any(set(r) != MIA_KEYS or r["source"] != source
                                                                or r["seeds"] < least for r in res[key].values())]
        bert = res.get("dp", {}).get("small BERT", {}).get("1", {})
        if not {"majority_share", "trains"} <= set(bert) or (bert["trains"] and bert["mean"] <= bert["majority_share"]):
            out.append(f"dp['small BERT']['1'] {bert}: needs majority_share and trains, "
                       "and above the majority if it trains")
        if res.get("client_dp_sampling") not in ("poisson", "fixed-size") or "client_dp_accountant" not in res:
            out.append("client_dp_sampling ('poisson' or 'fixed-size') and client_dp_accountant not recorded")
    if lab == "08":
        pareto, variants = res.get("pareto"), res.get("variants", {})
        if not isinstance(pareto, dict) or pareto.get("chosen_on") != "validation" or not pareto.get("front") \
                or set(pareto["front"]) - set(variants) or set(pareto.get("test", {})) != set(pareto["front"]):
            out.append(f"pareto {pareto!r} is not a front of recorded variants chosen on validation, "
                       "with their test accuracy")
        if res.get("best_single_review") not in variants:
            out.append(f"best_single_review {res.get('best_single_review')!r} is not a recorded variant")
    if lab == "09":
        fitted = {v["name"]: v["temperature"] for v in res.get("evaluation", {}).values()}
        served = res.get("served_temperature")
        if not served or not set(fitted) <= set(served) or any(abs(served[n] - t) > 1e-4 for n, t in fitted.items()):
            out.append(f"served_temperature {served} is not each model's fitted temperature {fitted}")
        if not all(res.get("load", {}).get("open_loop", {}).get(m) for m in ("student", "teacher")):
            out.append("load['open_loop'] lacks the student's or the teacher's open-loop runs")
    return out


# Issue 30's budgets, on a 2-core machine: normalised seconds a lab and the course may take cold
# at `cpu`, and the whole course on a second run, less what the labs measure afresh on purpose
# (`labkit.core.env.afresh`); wall seconds a lab may take at `smoke`; peak memory of a lab's whole process tree
# (07's federation and 09's services run beside their kernels).
BUDGETS = {"cpu_lab_s": 300, "cpu_course_s": 1800, "second_run_s": 300, "smoke_wall_s": 45,
           "memory_mb": 1536, "memory_mb_by_lab": {"07_federated": 2048, "09_deployment": 2048}}


def over_budget(report: dict) -> list[str]:
    """What a report's rows spend over `BUDGETS` (cold `cpu`, a second `cpu` run, or `smoke`;
    other scales have none): one line each, empty when every lab and the course fit. A second
    run's budget is the whole course's, less each lab's `labkit.core.env.afresh` seconds (reported on their
    own), so each lab is held to it too (a report of one lab, as `pytest -m slow` makes)."""
    m, b, out = report["meta"], BUDGETS, []
    rows = [r for r in report["notebooks"] if r.get("wall_s") is not None]
    warm = m["scale"] == "cpu" and not cold(m)

    def net(r):  # normalised seconds, less the afresh measurements on a second run
        return env.normalised(r, m, less_afresh=warm)
    for r in rows:
        lab = Path(r["notebook"]).stem
        if m["scale"] == "smoke" and r["wall_s"] > b["smoke_wall_s"]:
            out.append(f"{lab}: {r['wall_s']:.0f} s wall at smoke, over {b['smoke_wall_s']} s")
        if m["scale"] == "cpu" and net(r) > (b["second_run_s"] if warm else b["cpu_lab_s"]):
            out.append(f"{lab}: {net(r) / 60:.1f} min normalised at cpu ("
                       + (f"second run, less {env.afresh(r):.0f} s measured afresh" if warm else "cold")
                       + f"), over {(b['second_run_s'] if warm else b['cpu_lab_s']) / 60:.0f}")
        if m["scale"] == "cpu" and r["peak_mb"] > b["memory_mb_by_lab"].get(lab, b["memory_mb"]):
            out.append(f"{lab}: peak {r['peak_mb']} MB, over {b['memory_mb_by_lab'].get(lab, b['memory_mb'])} MB")
    total = sum(net(r) for r in rows)
    if m["scale"] == "cpu" and len(rows) > 1 and total > (b["second_run_s"] if warm else b["cpu_course_s"]):
        out.append(f"the course: {total / 60:.1f} min normalised at cpu, "
                   + (f"second run, less {sum(env.afresh(r) for r in rows):.0f} s measured afresh, over "
                      f"{b['second_run_s'] / 60:.0f}" if warm else f"cold, over {b['cpu_course_s'] / 60:.0f}"))
    return out


def cold(meta: dict) -> bool:
    """Whether a run started cold: ``--fresh``, or an empty run cache."""
    return bool(meta["fresh"] or meta["run_cache_mb_at_start"] == 0)


def markdown(report: dict) -> str:
    m = report["meta"]
    lines = [f"Scale {m['scale']}{', cold run cache' if cold(m) else ''}; {m['date']}; labkit "
             f"{m['labkit_commit']}; {m['cpu']}, {m['usable_cores']} cores, {m['ram_gb']} GB, "
             f"{m['matmul_gflops']} GFLOP/s (the larger of {m.get('matmul_gflops_before', '-')} before the first "
             f"notebook and {m.get('matmul_gflops_after', '-')} after the last); torch {m['torch']}, "
             f"transformers {m['transformers']}",
             "", f"| notebook | status | wall (s) | normalised to {env.NORMAL_GFLOPS} GFLOP/s (s) "
             "| measured afresh (s) | peak memory (MB) | slowest cells (index: s) | cells with most memory (index: MB) "
             "| failing cell |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in report["notebooks"]:
        fail = f"{r['failed']['cell']}: {r['failed']['error']}" if r["failed"] else ""
        slow = ", ".join(f"{i}: {s:.0f}" for i, s in sorted(r.get("cells", []), key=lambda c: -c[1])[:3])
        heavy = ", ".join(f"{i}: {mb}" for i, mb in r.get("peak_cells", []))  # rows measured before: none
        norm = f"{env.normalised(r, m):.0f}" if r["wall_s"] is not None else ""
        lines.append(f"| {r['notebook']} | {r['status']} | {r['wall_s']} | {norm} | {env.afresh(r):.0f} "
                     f"| {r['peak_mb']} | {slow} | {heavy} | {fail} |")
    over = over_budget(report)
    lines += ["", "Over issue 30's budgets: " + ("; ".join(over) if over else "nothing")]
    for r in report["notebooks"]:
        results = {k: v for k, v in r["results"].items() if k != "tables"}
        if r["results"]:
            lines += ["", f"## {r['notebook']}", ""]
            lines += [f"- {k}: {json.dumps(v)}" for k, v in results.items()]
            for t in r["results"].get("tables", {}).values():
                lines += ["", f"**{t['title']}**", "", markdown_table(t)]
    return "\n".join(lines) + "\n"


def merge(reference: Path, new: Path) -> list[str]:
    """Put the notebook rows of the report ``new`` into the reference report ``reference``
    (a row of the same notebook is replaced; course order kept). Each row brought in keeps
    what it was measured on (``measured``: commit, date, matmul speed, fresh) and the README
    says so: a lab added later is measured alone, with the labs it reads from run before it
    in the same `labkit run` (cold: ``--fresh``). Returns the notebooks merged."""
    ref, rep = json.loads(Path(reference).read_text()), json.loads(Path(new).read_text())
    if rep["meta"].get("dry_run"):
        raise ValueError(f"{new} is a dry run (labkit run --dry-run): it measures nothing to merge into a reference")
    if (ref["meta"]["scale"], cold(ref["meta"])) != (rep["meta"]["scale"], cold(rep["meta"])):
        raise ValueError(f"{new} (scale {rep['meta']['scale']}, cold {cold(rep['meta'])}) was not measured "
                         f"like {reference} (scale {ref['meta']['scale']}, cold {cold(ref['meta'])})")
    measured = {k: rep["meta"][k] for k in ("labkit_commit", "date", "matmul_gflops", "fresh_keep") if k in rep["meta"]}
    rows = {r["notebook"]: r for r in ref["notebooks"]}
    rows.update({r["notebook"]: {**r, "measured": measured} for r in rep["notebooks"]})
    ref["notebooks"] = [rows[k] for k in sorted(rows)]
    cache.write_json(Path(reference), ref)
    return [r["notebook"] for r in rep["notebooks"]]
