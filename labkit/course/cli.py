"""Tools: the `labkit` command. ``labkit doctor | fetch | run | report | study | serve | loadtest | launch``.

    labkit doctor                        the environment, the cache, what each lab costs
    labkit fetch [NAMES] [--force] [--verify]
                                         download, verify and extract data and weights
    labkit run [NOTEBOOKS] [--scale S] [--fresh [--keep KIND]] [--binder] [--out DIR]
                                         execute notebooks headless, write DIR/report.json
    labkit report --check FILE           fail unless every notebook passed, recorded results and
                                         evaluated its registered claims, and no committed study fails one
    labkit report --readme [--check]     regenerate (or check) the README's and docs/'s tables from
                                         labkit/reference/
    labkit report --merge NEW --into REF put NEW's notebooks into the reference report REF
    labkit study NAME [--seeds N] [--out DIR]
                                         run a reference study (labkit.course.study) at the current scale
    labkit serve [--model minilm|student|small|DIR] [--port P] [--threads N] [--batching]
                                         the model over HTTP on 127.0.0.1 (labkit.labs.evaluate.serve)
    labkit loadtest URL [--concurrency C] [--seconds S] [--batch B]
                                         a bounded load test of a local service
    labkit launch [--write] [--check]
                                         Colab/Binder badges and setup cells (labkit.course.launch)

Leaves out: the work itself (`labkit.core.env`, `labkit.core.fetch`, `labkit.course.report`).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from labkit.core import claims, data, env, fetch
from labkit.course import docs, launch, report
from labkit.labs.evaluate import loadtest, serve


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_exec"]:  # internal: one notebook in a worker process (labkit.course.report.run)
        nb, scale, out_dir, row_file, since = argv[1:6]
        row = report.execute(Path(nb), scale, Path(out_dir), None if since == "None" else float(since))
        Path(row_file).write_text(json.dumps(row))
        return 0
    if argv[:1] == ["launch"]:  # its own options: labkit.course.launch
        return launch.main(argv[1:])
    ap = argparse.ArgumentParser(prog="labkit", description="the labkit course kit")
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("doctor", help="check the environment and the cache")
    f = sub.add_parser("fetch", help="download and verify data and weights into the cache")
    f.add_argument("names", nargs="*", help="what to fetch (default: everything)")
    f.add_argument("--force", action="store_true", help="extract again even if cached")
    f.add_argument("--verify", action="store_true", help="check every extracted file's sha256 (not only its size)")
    r = sub.add_parser("run", help="execute notebooks headless and write a report")
    r.add_argument("notebooks", nargs="*", help="default: notebooks/[0-9]*.ipynb")
    r.add_argument("--scale", choices=env.SCALES, default=None,
                   help="default: LABKIT_SCALE, else gpu with CUDA, else cpu")
    r.add_argument("--out", default=None, help="report folder (default: reports/<scale>)")
    r.add_argument("--fresh", action="store_true",
                   help="redo every cached computation older than this run (cold timings)")
    r.add_argument("--keep", action="append", default=[], metavar="KIND",
                   help="with --fresh: still reuse this kind of cached run (e.g. minilm-embeddings, "
                        "which lab 03 computes and lab 07 reads): a lab measured cold as the course runs it")
    r.add_argument("--dry-run", action="store_true",
                   help="with --scale gpu: every arm, budget and key of the gpu configuration at tiny sizes, on "
                        "any machine, its claims recorded, not asserted, in <cache>/dry-run (before a reference)")
    r.add_argument("--binder", action="store_true",
                   help="as Binder runs it: one core, and stopped above 2 GB (labkit.course.report.BINDER)")
    p = sub.add_parser("report", help="check a report, or regenerate the README's tables")
    p.add_argument("--check", metavar="REPORT_JSON", nargs="?", const="",
                   help="exit 1 unless every notebook in REPORT_JSON passed and recorded results; "
                        "with --readme: exit 1 if README.md's or docs/'s generated parts are out of date")
    p.add_argument("--readme", action="store_true",
                   help="write the tables of labkit/reference/*.json into README.md and docs/, and docs/package.md")
    p.add_argument("--merge", metavar="NEW_JSON", help="a report of some labs, measured alone ...")
    p.add_argument("--into", metavar="REFERENCE_JSON", help="... whose rows replace (or join) this reference's")
    st = sub.add_parser("study", help="run a reference study and write its results with provenance")
    st.add_argument("name", help="lab01, lab02, lab02-seeds, lab03, ..., lab08 (see labkit.course.study)")
    st.add_argument("--seeds", type=int, default=None, help="default: the study's (2 at smoke)")
    st.add_argument("--out", default=None, help="folder to write NAME.json (default: labkit/reference/studies)")
    st.add_argument("--claims", action="store_true", help="only (re-)evaluate the study's registered claims "
                    "on its committed results, without running it")
    sv = sub.add_parser("serve", help="serve a saved model over HTTP (POST /predict, /health, /metrics)")
    sv.add_argument("--model", default="minilm", help="minilm (lab 03), student (lab 05), small, or a "
                    "folder written by classifier.save_classifier (default: minilm)")
    sv.add_argument("--host", default="127.0.0.1", help="default 127.0.0.1: this machine only")
    sv.add_argument("--port", type=int, default=8000)
    sv.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    sv.add_argument("--batching", action="store_true", help="join concurrent requests into one forward pass")
    sv.add_argument("--max-wait-ms", type=float, default=5.0, help="with --batching: how long a batch waits to fill")
    sv.add_argument("--parent", type=int, default=None, help=argparse.SUPPRESS)
    lt = sub.add_parser("loadtest", help="load-test a service on this machine")
    lt.add_argument("url", help="e.g. http://127.0.0.1:8000")
    lt.add_argument("--concurrency", type=int, default=8)
    lt.add_argument("--seconds", type=float, default=10.0)
    lt.add_argument("--batch", type=int, default=1, help="texts per request")
    args = ap.parse_args(argv)

    if args.cmd in ("serve", "loadtest"):
        return _serve(args)

    if args.cmd == "study":
        from labkit.course import study
        try:
            if args.claims:
                study.check_claims(args.name, out=args.out)
            else:
                study.run(args.name, seeds=args.seeds, out=args.out)
        except (KeyError, FileNotFoundError) as e:
            print(f"labkit study: {e}", file=sys.stderr)
            return 2
        except claims.ClaimFailed as e:  # the results are written, the failed claim marked in them
            print(f"labkit study: {e}", file=sys.stderr)
            return 1
        return 0
    if args.cmd == "doctor":
        env.doctor()
        return 0
    if args.cmd == "fetch":
        try:
            fetch.fetch(args.names or None, force=args.force, verify=args.verify)
        except (fetch.FetchError, KeyError) as e:
            print(f"labkit fetch: {e}", file=sys.stderr)
            return 1
        return 0
    if args.cmd == "report":
        return _report(args)
    scale = args.scale or env.scale()
    if args.dry_run and scale != "gpu":
        print(f"labkit run --dry-run: it runs the gpu configuration (add --scale gpu), not {scale}", file=sys.stderr)
        return 2
    notebooks = args.notebooks or sorted(Path("notebooks").glob("[0-9]*.ipynb"))
    if not notebooks:
        print("labkit run: no notebooks given and none in ./notebooks (run it from the "
              "repository root, or name the notebooks)", file=sys.stderr)
        return 2
    try:
        out = args.out or (f"reports/{scale}-dry-run" if args.dry_run else f"reports/{scale}")
        rep = report.run(notebooks, scale, Path(out), fresh=args.fresh, keep=args.keep, binder=args.binder,
                         dry_run=args.dry_run)
    except (FileNotFoundError, ValueError) as e:
        print(e, file=sys.stderr)
        return 2
    return 0 if all(r["status"] == "passed" for r in rep["notebooks"]) else 1


def _serve(args) -> int:
    if args.cmd == "serve":
        from labkit.core.classifier import CheckpointError  # loads torch: only when serving
        try:
            serve.serve(args.model, args.host, args.port, args.parent, threads=args.threads,
                        batching=args.batching, max_wait_ms=args.max_wait_ms)
        except (serve.ModelMissing, CheckpointError) as e:
            print(f"labkit serve: {e}", file=sys.stderr)
            return 2
        return 0
    try:
        out = loadtest.closed_loop(args.url, data.validation_arrays()[0], args.concurrency, args.seconds,
                                   batch=args.batch)
    except ValueError as e:
        print(f"labkit loadtest: {e}", file=sys.stderr)
        return 2
    out.pop("latencies_ms")
    print(json.dumps(out, indent=1))
    return 1 if out["errors"] or out["timeouts"] else 0


def _report(args) -> int:
    if args.merge or args.into:
        if not (args.merge and args.into) or not Path(args.merge).exists() or not Path(args.into).exists():
            print("labkit report: give --merge NEW_JSON --into REFERENCE_JSON, both existing reports",
                  file=sys.stderr)
            return 2
        names = report.merge(Path(args.into), Path(args.merge))
        print(f"{args.into}: {', '.join(names)} from {args.merge}")
        return 0
    if args.readme:
        root = Path(".")
        if not (root / "README.md").exists() or not (root / "docs").is_dir():
            print("labkit report --readme: run it from the repository root (no README.md and docs/ here)",
                  file=sys.stderr)
            return 2
        stale = docs.update(root, write=args.check is None)
        if args.check is not None:
            if stale:
                print(f"out of date: {'; '.join(stale)}: run `labkit report --readme`", file=sys.stderr)
            return 1 if stale else 0
        print(f"README.md and docs/: {'updated ' + '; '.join(stale) if stale else 'already up to date'}")
        return 0
    if not args.check:
        print("labkit report: give --check REPORT_JSON or --readme", file=sys.stderr)
        return 2
    path = Path(args.check)
    if not path.exists():
        print(f"labkit report: no report at {path}", file=sys.stderr)
        return 1
    problems = report.check(json.loads(path.read_text()))
    for p in problems:
        print(f"labkit report: {p}", file=sys.stderr)
    if not problems:
        print(f"{path}: every notebook passed, recorded its results and evaluated its registered claims; "
              "the committed studies carry theirs")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
