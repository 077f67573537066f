"""`labkit doctor | fetch | run`, and `record()`, through which notebooks report results.

`labkit run` executes notebooks headless, each in a fresh kernel (nbclient) at the chosen
scale, and writes ``report.md`` and ``report.json``: wall time, peak memory of the kernel,
pass/fail with the failing cell, and the key results each notebook `record`s.
Leaves out: serving (`labkit serve` arrives with lab 09).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

_RESULTS: dict = {}


def record(key: str, value):
    """Record one key result of a lab (a number, string, or small list/dict of them).

    Under `labkit run` it goes into the run's report; interactively it is kept in memory.
    Returns ``value`` so it can wrap an expression: ``acc = record("acc", 0.81)``.
    """
    try:
        json.dumps(value)
    except TypeError as e:
        raise TypeError(f"record({key!r}, ...) needs a JSON-serialisable value ({e}); convert "
                        "numpy numbers with float() or .tolist()") from e
    _RESULTS[key] = value
    out = os.environ.get("LABKIT_RESULTS")
    if out:
        tmp = f"{out}.tmp"
        with open(tmp, "w") as f:
            json.dump(_RESULTS, f, indent=1)
        os.replace(tmp, out)
    return value


def _peak_children_mb() -> float:
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return rss / (1024 * 1024 if sys.platform == "darwin" else 1024)


def _exec_one(notebook: Path, scale: str, out_dir: Path) -> dict:
    """Run one notebook in this process's child kernel; called in a fresh worker process."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    nb = nbformat.read(notebook, as_version=4)
    results = out_dir / f"{notebook.stem}.results.json"
    results.unlink(missing_ok=True)
    os.environ.update(LABKIT_SCALE=scale, LABKIT_RESULTS=str(results))
    client = NotebookClient(nb, timeout=3600, kernel_name="python3",
                            resources={"metadata": {"path": str(notebook.parent)}})
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
    wall = time.perf_counter() - start
    nbformat.write(nb, out_dir / notebook.name)
    return {"notebook": notebook.name, "scale": scale, "status": status, "failed": failed,
            "wall_s": round(wall, 1), "peak_mb": round(_peak_children_mb()),
            "results": json.loads(results.read_text()) if results.exists() else {}}


def run(notebooks, scale: str, out_dir: Path) -> list[dict]:
    """Run each notebook in a fresh worker (so peak memory is per notebook); write reports."""
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for nb in notebooks:
        nb = Path(nb).resolve()
        if not nb.exists():
            raise SystemExit(f"labkit run: no such notebook {nb}")
        print(f"[{scale}] {nb.name} ...", flush=True)
        row_file = out_dir / f"{nb.stem}.run.json"
        worker = "import sys; from labkit.cli import main; sys.exit(main(sys.argv[1:]))"
        subprocess.run([sys.executable, "-c", worker, "_exec", str(nb), scale, str(out_dir),
                        str(row_file)], check=False)
        row = json.loads(row_file.read_text()) if row_file.exists() else {
            "notebook": nb.name, "scale": scale, "status": "failed", "wall_s": None,
            "peak_mb": None, "failed": {"cell": None, "error": "worker crashed"}, "results": {}}
        rows.append(row)
        msg = f"{row['status']} in {row['wall_s']} s, peak {row['peak_mb']} MB"
        if row["failed"]:
            msg += f"; cell {row['failed']['cell']}: {row['failed']['error']}"
        print(f"[{scale}] {nb.name}: {msg}", flush=True)
    (out_dir / "report.json").write_text(json.dumps(rows, indent=1))
    (out_dir / "report.md").write_text(_markdown(rows))
    print(f"report: {out_dir / 'report.md'}")
    return rows


def _markdown(rows) -> str:
    lines = ["| notebook | scale | status | wall (s) | peak memory (MB) | failing cell |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        fail = f"{r['failed']['cell']}: {r['failed']['error']}" if r["failed"] else ""
        lines.append(f"| {r['notebook']} | {r['scale']} | {r['status']} | {r['wall_s']} | "
                     f"{r['peak_mb']} | {fail} |")
    for r in rows:
        if r["results"]:
            lines += ["", f"## {r['notebook']}", ""]
            lines += [f"- {k}: {json.dumps(v)}" for k, v in r["results"].items()]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_exec"]:  # internal: one notebook in a worker process
        nb, scale, out_dir, row_file = argv[1:5]
        row = _exec_one(Path(nb), scale, Path(out_dir))
        Path(row_file).write_text(json.dumps(row))
        return 0
    ap = argparse.ArgumentParser(prog="labkit", description="the labkit course kit")
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("doctor", help="check the environment and the cache")
    f = sub.add_parser("fetch", help="download and verify data and weights into the cache")
    f.add_argument("names", nargs="*", help="what to fetch (default: everything)")
    f.add_argument("--force", action="store_true", help="extract again even if cached")
    r = sub.add_parser("run", help="execute notebooks headless and write a report")
    r.add_argument("notebooks", nargs="*", help="default: notebooks/[0-9]*.ipynb")
    r.add_argument("--scale", choices=("smoke", "cpu", "gpu"), default=None,
                   help="default: LABKIT_SCALE, else gpu with CUDA, else cpu")
    r.add_argument("--out", default=None, help="report folder (default: reports/<scale>)")
    args = ap.parse_args(argv)

    from . import env, fetch
    if args.cmd == "doctor":
        env.doctor()
        return 0
    if args.cmd == "fetch":
        try:
            fetch.fetch(args.names or None, force=args.force)
        except (fetch.FetchError, KeyError) as e:
            print(f"labkit fetch: {e}", file=sys.stderr)
            return 1
        return 0
    scale = args.scale or env.scale()
    notebooks = args.notebooks or sorted(Path("notebooks").glob("[0-9]*.ipynb"))
    if not notebooks:
        print("labkit run: no notebooks given and none in ./notebooks", file=sys.stderr)
        return 2
    rows = run(notebooks, scale, Path(args.out or f"reports/{scale}"))
    return 0 if all(r["status"] == "passed" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
