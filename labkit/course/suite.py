"""Tools: how the test suite runs, as a pytest plugin (``-p labkit.course.suite`` in
pyproject.toml's addopts, so it holds for any selection, a single notebook included).

The README's test command runs on two workers (pytest-xdist, ``-n 2``): the notebooks under
nbval on one, the unit tests beside them on the other. On this 2-core machine kind that took
the suite from 756 s on one worker to 482 s (a cold cache, smoke). What makes it safe:

- `scope`: every cell of a notebook runs in one kernel, in order, so each notebook is one unit
  of work, and labs 02-09 with their solutions are one unit together, in course order (each
  reads what the labs before it saved). Labs 00 and 01 and theirs are a second unit: they read
  no other lab's work (lab 09's model card reads what they recorded, else the committed
  reference). A test module is a unit too, so a module-wide fixture is built once.
- The units go out longest chain first (`order`): labs 02-09 on one worker from the start.
- `one_thread`: two torch processes with two threads each on two cores thrash (OpenMP threads
  spin waiting for a core: the same suite took 869 s), so under more than one worker each
  worker, and every kernel and service it starts, gets one thread.
- The slow checks time the labs against their budgets and run them in course order: an ``-m``
  that selects them runs on one worker, whatever ``-n`` says (`pytest_configure`).
- A test module that trains and saves what a lab does (tests/test_study.py) keeps its own cache:
  the notebooks beside it write the same entries of the user's.

``pytest -n 0`` runs everything in one process (for a debugger).
"""
from __future__ import annotations

import os

import pytest

LABS_00_01 = ("00", "01")  # labs that read no other lab's work


def workers() -> int:
    """How many workers this run has (1 outside pytest-xdist)."""
    return int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))


def one_thread() -> None:
    """One thread for torch (OpenMP, MKL) in this worker and what it starts; before torch loads."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = "1"


if workers() > 1:  # a worker imports this plugin before anything imports torch
    one_thread()


def scope(nodeid: str) -> str:
    """The unit of work a test belongs to: one of two notebook chains, else its file."""
    path = nodeid.split("::")[0]
    if not path.startswith("notebooks/"):
        return path
    lab = path.rsplit("/", 1)[-1][:2]
    return f"notebooks: labs {'00-01' if lab in LABS_00_01 else '02-09'}"


def order(nodeid: str) -> int:
    """Labs 02-09 first, labs 00-01 next, then the unit tests (a stable sort keeps course order)."""
    return {"notebooks: labs 02-09": 0, "notebooks: labs 00-01": 1}.get(scope(nodeid), 2)


def slow_selected(markexpr: str) -> bool:
    """True when ``-m`` selects a test marked slow (``slow``, ``slow or drift``, ``not drift``, no
    expression at all), by pytest's own reading of the expression; False for ``not slow``."""
    from _pytest.mark.expression import Expression  # what -m itself evaluates (pytest 8+)

    return not markexpr.strip() or Expression.compile(markexpr).evaluate(lambda name, **kwargs: name == "slow")


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    if slow_selected(config.option.markexpr or "") and getattr(config.option, "numprocesses", None):
        # xdist reads these after this hook (its own is trylast) and starts no workers
        config.option.numprocesses, config.option.dist, config.option.tx = 0, "no", []
    elif workers() > 1:  # numpy's BLAS started with this plugin's import (labkit imports numpy): one thread too
        from threadpoolctl import threadpool_limits  # scikit-learn's dependency
        threadpool_limits(1)


def pytest_collection_modifyitems(items):
    """Course order for the workers, and a minute for nbval's output messages: nbval waits a
    hard-coded 5 s for each of a finished cell's output messages (nbval issues #136, #231); on
    a busy 2-core CI machine a cell's progress-bar output can take longer, and a notebook that
    ran fine fails ("Timeout of 5 seconds exceeded waiting for output", seen once on lab 02's
    pretraining cell)."""
    items.sort(key=lambda item: order(item.nodeid))
    for item in items:
        if type(item).__name__ == "IPyNbCell":
            item.output_timeout = 60


def pytest_xdist_make_scheduler(config, log):
    """Units of work by `scope`, handed out in collection order (`order`), not by size."""
    from xdist.scheduler import LoadScopeScheduling

    class CourseScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return scope(nodeid)

    config.option.loadscopereorder = False
    return CourseScheduling(config, log)
