"""Colab and Binder launch links come from one setting, and the setup cell is a no-op
outside Colab and installs with the lock's versions on it (labkit.course.launch). Binder's pins are
the lock itself: tests/test_install.py."""
import json
import shutil
import subprocess
import sys

import pytest

from labkit.course import launch


def test_every_notebook_starts_with_the_badges_and_the_same_setup_cell():
    s = launch.settings()
    assert launch.problems() == []  # README and notebooks agree with pyproject.toml
    paths = launch.notebooks()
    assert len([p for p in paths if p.parent.name == "notebooks"]) >= 10
    for path in paths:
        cells = json.loads(path.read_text())["cells"]
        rel = path.relative_to(launch.ROOT).as_posix()
        assert cells[0]["id"] == launch.BADGES_ID and "".join(cells[0]["source"]) == launch.badges(rel, s), path
        first_code = next(c for c in cells if c["cell_type"] == "code")
        assert first_code["id"] == launch.SETUP_ID and "".join(first_code["source"]) == launch.setup_cell(s), path
    assert f"colab.research.google.com/github/{s['owner_name']}/blob/{s['ref']}/notebooks/03_fine_tuning.ipynb" \
        in launch.ROOT.joinpath("README.md").read_text()


def test_the_setup_cell_does_nothing_outside_colab_and_installs_the_configured_ref_on_it(monkeypatch):
    s = launch.settings()
    calls, pip_rc = [], []
    monkeypatch.setattr(subprocess, "run", lambda cmd, **kw: calls.append(cmd) or
                        subprocess.CompletedProcess(cmd, pip_rc.pop(0) if "pip" in cmd else 0))
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    exec(launch.setup_cell(s), {})
    assert calls == []  # not on Colab: no install, no fetch
    monkeypatch.setitem(sys.modules, "google.colab", type(sys)("google.colab"))
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)  # a fresh Colab runtime
    pip_rc[:] = [0]
    exec(launch.setup_cell(s), {})
    install = ["-m", "pip", "install", "-q", f"labkit @ git+{s['repository']}@{s['ref']}"]
    assert calls[0][1:] == install + ["-c", launch.colab_constraints_url(s)]  # the versions CI tested
    assert calls[1][1:] == ["-m", "labkit.course.cli", "fetch"] and len(calls) == 2
    calls.clear()
    pip_rc[:] = [1, 0]  # the lock's versions fight this runtime: install from the ranges instead
    exec(launch.setup_cell(s), {})
    assert [c[1:] for c in calls] == [install + ["-c", launch.colab_constraints_url(s)], install,
                                      ["-m", "labkit.course.cli", "fetch"]]


def test_a_fork_changes_one_setting_and_every_link_follows(tmp_path):
    root = tmp_path / "fork"
    shutil.copytree(launch.ROOT / "notebooks", root / "notebooks")
    for name in ("README.md", "pyproject.toml"):
        shutil.copy(launch.ROOT / name, root / name)
    toml = root / "pyproject.toml"
    toml.write_text(toml.read_text().replace(launch.settings()["repository"], "https://github.com/someone/labkit-fork"))
    assert len(launch.problems(root)) == len(launch.notebooks(root)) + 1  # every notebook and the README
    launch.write(root)
    assert launch.problems(root) == []
    nb = json.loads((root / "notebooks" / "02_pretraining.ipynb").read_text())
    assert "github/someone/labkit-fork/blob/main/notebooks/02_pretraining.ipynb" in "".join(nb["cells"][0]["source"])
    assert "git+https://github.com/someone/labkit-fork@main" in "".join(nb["cells"][1]["source"])
    assert "https://raw.githubusercontent.com/someone/labkit-fork/main/binder/colab-constraints.txt" \
        in "".join(nb["cells"][1]["source"])
    toml.write_text(toml.read_text().replace("https://github.com/someone/labkit-fork", "gitlab.com/x/y"))
    with pytest.raises(ValueError, match="GitHub address"):
        launch.settings(root)
