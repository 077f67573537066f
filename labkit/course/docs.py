"""Tools: the generated pages, rendered from the committed reference reports and the package.

`sections` renders, from ``labkit/reference/``: one time per lab and scale for the README
(``summary``), the time and memory of every lab at each scale (``labs``), every table the
reference `cpu` run recorded (``results``), the claims registry beside what was measured
(``claims``) and each committed study's command, seeds and time (``studies``), so no figure
is typed by hand; `package_map` renders ``docs/package.md`` from the modules' docstrings.
`update` writes them all (``labkit report --readme``), or says which are stale (``--check``):
the ``summary`` into README.md, the rest into ``docs/results.md``, between their markers.
Leaves out: running the notebooks and the reports themselves (`labkit.course.report`).
"""
from __future__ import annotations

import ast
import json
from pathlib import Path

from labkit.core import claims, env
from labkit.core.results import markdown_table
from labkit.course import launch, report


def _duration(seconds) -> str:
    if seconds is None:
        return "not measured"
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.1f} min"


def _memory(mb) -> str:
    return "" if mb is None else f"{mb:,} MB" if mb < 1000 else f"{mb / 1024:.2f} GB"


def _cell(row, meta: dict) -> str:
    if row is None:
        return "not measured"
    if row["status"] != "passed":
        over = "memory cap" in ((row.get("failed") or {}).get("error") or "")
        return f"stopped above {_memory(row['peak_mb'])}" if over else row["status"]
    return f"{_normalised([row], meta)} ({_duration(row['wall_s'])} wall), {_memory(row['peak_mb'])}"


def _normalised(rows: list, meta: dict) -> str:
    """The rows' normalised time; on a second run (the cache warm), less the seconds they
    measured afresh on purpose (`labkit.core.env.afresh`: benchmarks, load tests), shown beside it."""
    warm = meta["scale"] == "cpu" and not report.cold(meta)
    net = _duration(sum(env.normalised(r, meta, less_afresh=warm) for r in rows))
    fresh = sum(env.afresh(r) for r in rows) if warm else 0
    return f"{net} + {_duration(fresh)} wall measured afresh" if fresh else net


def _machine(m: dict) -> str:
    c = m.get("constrained")
    return (f"{m['cpu']}, " + (f"{c['cores']} core and a {_memory(c['memory_cap_mb'])} cap (`--binder`: {c['how']}), "
                               if c else f"{m['usable_cores']} cores, ") + f"{m['ram_gb']:.0f} GB RAM, "
            f"{m['matmul_gflops']} GFLOP/s fp32 matmul; torch {m['torch']}, transformers "
            f"{m['transformers']}; labkit {m['labkit_commit']}, {m['date']}")


# Which generated sections each page holds (between its markers); docs/package.md is generated whole.
PAGES = {"README.md": ("summary",), "docs/results.md": ("labs", "results", "claims", "studies")}


def sections(ref: Path = report.REFERENCE) -> dict[str, str]:
    """The generated sections, from the committed reference reports: ``summary`` (one
    normalised time per lab at each scale), ``labs`` (time, `normalised` and wall, and peak
    memory of every lab at each scale, the install), ``results`` (every table the reference
    `cpu` run recorded), ``claims`` and ``studies``."""
    reports = {name: json.loads((Path(ref) / f"{name}.json").read_text())
               for name in ("smoke", "cpu", "cpu-warm", *report.BINDER_RUNS) if (Path(ref) / f"{name}.json").exists()}
    if "cpu" not in reports:
        raise FileNotFoundError(f"no reference report {Path(ref) / 'cpu.json'}: run "
                                "`labkit run --fresh --scale cpu --out DIR` and copy DIR/report.json there")
    rows = {name: {Path(r["notebook"]).stem: r for r in rep["notebooks"]} for name, rep in reports.items()}
    labs = sorted(rows["cpu"])
    cols = [("smoke", "`smoke`"), ("cpu", "`cpu`, cold cache"), ("cpu-warm", "`cpu`, second run"),
            *report.BINDER_RUNS.items()]
    cols = [(k, title) for k, title in cols if k in rows]
    out = ["| lab | " + " | ".join(title for _, title in cols) + " |", "|---|" + "---|" * len(cols)]
    for lab in labs:
        out.append(f"| `{lab}` | " + " | ".join(_cell(rows[k].get(lab), reports[k]["meta"]) for k, _ in cols) + " |")
    total = {k: f"{_normalised([r for r in rows[k].values() if r['wall_s']], reports[k]['meta'])} "
                f"({_duration(sum(r['wall_s'] or 0 for r in rows[k].values()))} wall)" if set(labs) <= set(rows[k])
             else f"{len(set(labs) & set(rows[k]))} of {len(labs)} labs measured" for k, _ in cols}
    out.append("| all labs, in order | " + " | ".join(total[k] for k, _ in cols) + " |")
    out += ["", "Measured with `labkit run` on " + "; ".join(
        f"{'`' + k + '`'}: {_machine(reports[k]['meta'])}" for k, _ in cols) + "."]
    later = sorted({(r["notebook"], k, r["measured"]["labkit_commit"], r["measured"]["date"],
                     r["measured"]["matmul_gflops"], ", ".join(r["measured"].get("fresh_keep", [])))
                    for k, _ in cols for r in rows[k].values() if "measured" in r})
    if later:
        out += ["", "Measured later, on the same machine, after the labs before them (`labkit report --merge`): " +
                "; ".join(f"`{Path(nb).stem}` at `{k}` (labkit {c}, {d}, {g} GFLOP/s"
                          + (f"; cold but for the {kept} that earlier labs leave, `--keep`" if kept else "") + ")"
                          for nb, k, c, d, g, kept in later) + "."]
    m = reports["cpu"]["meta"]
    if m.get("install"):
        i = m["install"]
        out += ["", f"Set-up on that machine (`scripts/install.py`, {i['torch']} torch): "
                    f"{_duration(i['seconds'])}, {i['venv_mb'] / 1024:.1f} GB on disk for the "
                    "virtual environment."]
    results = []
    for r in reports["cpu"]["notebooks"]:
        for t in r["results"].get("tables", {}).values():
            results += [f"**{Path(r['notebook']).stem[:2]} · {t['title']}**", "", markdown_table(t), ""]
    return {"summary": summary(reports, labs), "labs": "\n".join(out), "results": "\n".join(results).strip(),
            "claims": claims_table(reports["cpu"], Path(ref) / "studies"),
            "studies": studies_table(Path(ref) / "studies")}


def titles(folder: Path = launch.ROOT / "notebooks") -> dict[str, str]:
    """{notebook stem: its title}: the first ``# `` heading, less its "Lab NN · " prefix."""
    out = {}
    for path in sorted(Path(folder).glob("[0-9][0-9]_*.ipynb")):
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        heads = [line[2:] for c in cells if c["cell_type"] == "markdown"
                 for line in "".join(c["source"]).splitlines() if line.startswith("# ")]
        out[path.stem] = heads[0].split(" · ", 1)[-1] if heads else ""
    return out


def summary(reports: dict, labs: list) -> str:
    """One line per lab: its title, its normalised time cold, on a second run and at smoke."""
    titles_ = titles()
    cols = [(k, t) for k, t in (("cpu", "`cpu`, cold"), ("cpu-warm", "`cpu`, second run"), ("smoke", "`smoke`"))
            if k in reports]
    rows = {k: {Path(r["notebook"]).stem: r for r in reports[k]["notebooks"]} for k, _ in cols}

    def cell(k, lab):
        r = rows[k].get(lab)
        return "not measured" if r is None or not r["wall_s"] else _normalised([r], reports[k]["meta"])
    out = ["| lab | subject | " + " | ".join(t for _, t in cols) + " |", "|---|---|" + "---|" * len(cols)]
    out += [f"| `{lab}` | {titles_.get(lab, '')} | " + " | ".join(cell(k, lab) for k, _ in cols) + " |" for lab in labs]
    out.append("| all labs | | " + " | ".join(
        _normalised([r for r in rows[k].values() if r["wall_s"]], reports[k]["meta"]) for k, _ in cols) + " |")
    return "\n".join(out)


def studies_table(studies: Path) -> str:
    """Every committed study: its command, seeds, what it cost (wall time and normalised, with
    the run cache as it was when it ran) and where (labkit commit, date, machine)."""
    rows = []
    for path in sorted(Path(studies).glob("*.json")):
        d = json.loads(path.read_text())
        p, st = d["provenance"], d["settings"]
        seeds = st.get("study_seeds") or st.get("student_seeds") or list(range(st["seeds"]))
        rows.append([f"`{p['command']}`", f"{len(seeds)} ({seeds[0]}-{seeds[-1]})", _duration(p["seconds"]),
                     _duration(env.normalised({"wall_s": p["seconds"]}, p)),
                     f"{p['labkit_commit']}, {p['date'][:10]}, {p['cpu']}, {p['matmul_gflops']} GFLOP/s"])
    return markdown_table({"header": ["study", "seeds", "wall", "normalised", "labkit, date, machine"], "rows": rows})


def _status(e: dict, row: dict | None) -> str:
    if e["kind"] == "test":
        return f"by construction: unit test `{e['test'].split('::')[-1]}`"
    if e.get("retired"):
        return f"retired: {e['retired']}"
    if row is None:
        return "not in the reference run" if "cpu" in e["scales"] else "not registered at `cpu`"
    if "status" not in row:  # a run from before the registry
        return "measured before the registry"
    return {"met": "target met", "missed": "target missed", "shut": "gate shut"}.get(row["status"], row["status"])


def claims_table(cpu: dict, studies: Path | None = None) -> str:
    """Every registered claim, target, gate and test with what the reference `cpu` run (or
    its committed study) measured: sentence, kind, value, bound, margin, status."""
    studies = Path(studies or report.REFERENCE / "studies")
    made = {Path(r["notebook"]).stem[:2]: r["results"].get("claims", {}) for r in cpu["notebooks"]}
    rows = []
    for cid, e in claims.registry().items():
        if e["where"] == "run":
            row = made.get(e["lab"], {}).get(cid)
        else:
            path = studies / f"{e['where'][6:]}.json"
            row = json.loads(path.read_text()).get("claims", {}).get(cid) if path.exists() else None
        value = (row or {}).get("value")
        rows.append([e["lab"], f"{e['sentence']} <sub>`{cid}`</sub>",
                     e["kind"] + ("" if e["where"] == "run" else ", study"),
                     "" if value is None else f"{value:.4g}", f"{e['op']} {e['bound']:g}",
                     "" if not row or row.get("margin") is None else f"{row['margin']:+.4g}", _status(e, row)])
    header = ["lab", "claim (registered in `labkit/reference/claims.json`)", "kind", "value", "bound", "margin",
              "status"]
    return markdown_table({"header": header, "rows": rows})


def _markers(name: str) -> tuple[str, str]:
    return (f"<!-- generated by `labkit report --readme` from labkit/reference: {name} -->",
            f"<!-- end of generated {name} -->")


def update_page(path: Path, bodies: dict[str, str], write: bool = True) -> list[str]:
    """Put each of ``bodies`` ({section: text}) between its markers in ``path``; returns the
    names of the sections that were out of date (with ``write=False`` nothing is written)."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    stale = []
    for name, body in bodies.items():
        begin, end = _markers(name)
        if begin not in text or end not in text:
            raise ValueError(f"{path} has no markers for the {name!r} section; put\n{begin}\n{end}\n"
                             "where it belongs")
        head, rest = text.split(begin, 1)
        old, tail = rest.split(end, 1)
        if old.strip() != body.strip():
            stale.append(name)
        text = f"{head}{begin}\n{body}\n{end}{tail}"
    if write and stale:
        path.write_text(text, encoding="utf-8")
    return stale


def package_map(package: Path | None = None) -> str:
    """docs/package.md: every module of the package, room by room, with the first paragraph
    of its docstring and its public names."""
    package = Path(package or Path(__file__).resolve().parents[1])
    rooms = [("labkit", "The top-level package"), ("labkit.core", "Core"), ("labkit.labs", "Labs"),
             ("labkit.course", "Course tools"), ("labkit.exercises", "Exercises")]
    out = ["# The labkit package", "",
           "<!-- generated by `labkit report --readme` from the modules' docstrings -->", "",
           "Generated from each module's docstring (its first paragraph) and its public names; the",
           "layers are checked by `tests/test_layers.py`: the core imports no lab and no course tool, a lab",
           "imports only the core.", ""]
    for room, title in rooms:
        out += [f"## {title}", ""]
        paths = ([package / "__init__.py"] if room == "labkit" else
                 sorted((package / room.split(".")[1]).rglob("*.py")))
        for path in paths:
            parts = list(path.relative_to(package.parent).with_suffix("").parts)
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            tree = ast.parse(path.read_text(encoding="utf-8"))
            first = (ast.get_docstring(tree) or "").split("\n\n")[0].replace("\n", " ")
            public = [n.name + ("()" if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) else "")
                      for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
                      and not n.name.startswith("_")]
            out += [f"### `{name}`", "", first, ""]
            if public:
                out += ["Public: " + ", ".join(f"`{p}`" for p in public) + ".", ""]
    return "\n".join(out).rstrip() + "\n"


def update(root: Path, write: bool = True) -> list[str]:
    """Regenerate every generated page under ``root`` (the repository): `PAGES`' sections and
    docs/package.md. Returns what was stale ("README.md: summary", "docs/package.md"); with
    ``write=False`` writes nothing (a check)."""
    root, bodies, stale = Path(root), sections(), []
    for page, names in PAGES.items():
        stale += [f"{page}: {n}" for n in update_page(root / page, {n: bodies[n] for n in names}, write)]
    pkg, text = root / "docs" / "package.md", package_map()
    if not pkg.exists() or pkg.read_text(encoding="utf-8") != text:
        stale.append("docs/package.md")
        if write:
            pkg.write_text(text, encoding="utf-8")
    return stale
