"""Core: what a lab records: its key results (`record`) and result tables (`table`).

Under `labkit run` every record goes into the run's report (``LABKIT_RESULTS``); in a lab it
is also kept in the cache as the lab's latest results (`cache.results_path`, read by lab 09's
model card). `labkit.core.claims` records each claim it evaluates here too.
Leaves out: running notebooks and the README (`labkit.course.report`).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from labkit.core import cache, env

_RESULTS: dict = {}


def record(key: str, value):
    """Record one key result of a lab (a number, string, or small list/dict of them).

    Under `labkit run` it goes into the run's report; in a lab it is also kept in the cache as
    the lab's latest results (`cache.results_path`, read by lab 09's model card).
    Returns ``value`` so it can wrap an expression: ``acc = record("acc", 0.81)``.
    """
    try:
        json.dumps(value)
    except TypeError as e:
        raise TypeError(f"record({key!r}, ...) needs a JSON-serialisable value ({e}); convert "
                        "numpy numbers with float() or .tolist()") from e
    _RESULTS[key] = value
    if os.environ.get("LABKIT_RESULTS"):  # the run's report
        cache.write_json(Path(os.environ["LABKIT_RESULTS"]), _RESULTS)
    if cache.current_lab():  # the lab's latest results, for lab 09's model card
        cache.write_json(cache.results_path(cache.current_lab(), env.scale()), _RESULTS)
    return value


def table(key: str, title: str, header: list, rows: list):
    """Record a result table (cells already formatted as text) and return it as Markdown
    for the notebook to show. `labkit.course.docs` puts the reference run's tables in
    docs/results.md.

    Example: ``table("students", "Students", ["kind", "accuracy"], [["distilled", "0.72"]])``.
    """
    if any(len(r) != len(header) for r in rows):
        raise ValueError(f"every row needs {len(header)} cells, one per column of {header}")
    tables = dict(_RESULTS.get("tables", {}))
    tables[key] = {"title": title, "header": [str(h) for h in header],
                   "rows": [[str(c) for c in r] for r in rows]}
    record("tables", tables)
    from IPython.display import Markdown
    return Markdown(f"**{title}**\n\n{markdown_table(tables[key])}")


def results() -> dict:
    """What this kernel has recorded so far (a copy)."""
    return dict(_RESULTS)


def markdown_table(t: dict) -> str:
    lines = ["| " + " | ".join(t["header"]) + " |", "|" + "---|" * len(t["header"])]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in t["rows"]])
