"""How the test suite runs (`labkit.course.suite`): two workers, the notebooks in course order
on one, the slow checks on one worker only."""
import os
import subprocess
import sys
import tomllib
from pathlib import Path

from labkit.course import suite

ROOT = Path(__file__).parents[1]


def test_the_readme_command_runs_two_workers_through_the_plugin():
    addopts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]["addopts"]
    assert "-n 2" in addopts and "-p labkit.course.suite" in addopts


def test_each_notebook_chain_is_one_unit_and_each_test_file_another():
    assert {suite.scope(n) for n in ("notebooks/02_pretraining.ipynb::Cell 0", "notebooks/09_deployment.ipynb::Cell 40",
                                     "notebooks/solutions/05_distillation_solutions.ipynb::Cell 2")} == {
        "notebooks: labs 02-09"}
    assert {suite.scope(n) for n in ("notebooks/00_start_here.ipynb::Cell 3", "notebooks/01_data.ipynb::Cell 9",
                                     "notebooks/solutions/01_data_solutions.ipynb::Cell 1")} == {
        "notebooks: labs 00-01"}
    same_file = {suite.scope("tests/test_serve.py::test_a"), suite.scope("tests/test_serve.py::test_b[1]")}
    assert same_file == {"tests/test_serve.py"}
    assert suite.scope("tests/test_a.py::test_x") != suite.scope("tests/test_b.py::test_x")


def test_labs_02_09_go_out_first_then_00_01_each_in_course_order():
    ids = ["tests/test_a.py::t", "notebooks/00_start_here.ipynb::Cell 0", "notebooks/02_pretraining.ipynb::Cell 0",
           "notebooks/02_pretraining.ipynb::Cell 1", "notebooks/03_fine_tuning.ipynb::Cell 0",
           "notebooks/solutions/00_start_here_solutions.ipynb::Cell 0", "tests/test_b.py::t"]
    assert sorted(ids, key=suite.order) == [ids[2], ids[3], ids[4], ids[1], ids[5], ids[0], ids[6]]


def test_slow_is_selected_only_when_asked_for():
    for expr in ("slow", "slow and not drift", "slow or drift", "not drift", ""):  # each selects a slow test
        assert suite.slow_selected(expr), expr
    for expr in ("not slow and not drift", "not slow", "not (slow)", "drift"):
        assert not suite.slow_selected(expr), expr


def test_a_worker_beside_another_gives_torch_one_thread():
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}

    def threads(code, count):
        return subprocess.run([sys.executable, "-c", code + "import torch; print(torch.get_num_threads())"],
                               env={**env, "PYTEST_XDIST_WORKER_COUNT": count}, capture_output=True, text=True,
                               check=True).stdout.strip()
    assert threads("import labkit.course.suite; ", "2") == "1"
    assert threads("import labkit.course.suite; ", "1") == threads("", "1")  # one worker: torch's own default


def test_the_slow_checks_run_on_one_worker():
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_ADDOPTS"}  # -q: "bringing up nodes"
    slow = subprocess.run([sys.executable, "-m", "pytest", "-m", "slow", "tests/test_stats.py", "-q"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    # test_stats has no slow test: nothing runs, and no worker is started for it (the README's
    # command itself, -m 'not slow', brings up two: CI's run of this file is one of them)
    assert slow.returncode == 5 and "bringing up nodes" not in slow.stdout, slow.stdout
