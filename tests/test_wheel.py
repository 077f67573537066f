"""A non-editable install (what Colab does: `pip install "labkit @ git+..."`) carries every
module of every subpackage and the package data: the wheel built from this tree, listed."""
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel_names(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheel")
    # built from a copy (a build/ folder left in the tree would carry stale modules into the
    # wheel, and the tree stays untouched); --no-build-isolation: the venv's setuptools
    src = out / "src"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(".git", ".venv", "build", "reports", "*.egg-info",
                                                             "__pycache__", "notebooks", "data"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(out), str(src)], check=True, capture_output=True, text=True)
    (wheel,) = out.glob("labkit-*.whl")
    return set(zipfile.ZipFile(wheel).namelist())


def test_the_wheel_carries_every_module(wheel_names):
    tracked = subprocess.run(["git", "-C", str(ROOT), "ls-files", "labkit"], capture_output=True, text=True,
                             check=True).stdout.split()
    modules = {p for p in tracked if p.endswith(".py")}
    assert len(modules) > 40 and "labkit/labs/federated/flower.py" in modules
    assert modules <= wheel_names, f"missing from the wheel: {sorted(modules - wheel_names)}"


def test_the_wheel_carries_the_package_data(wheel_names):
    for name in ("claims.json", "cpu.json", "smoke.json", "pii_challenge.jsonl", "studies/lab04.json"):
        assert f"labkit/reference/{name}" in wheel_names
    assert not [n for n in wheel_names if n.startswith(("tests/", "notebooks/", "scripts/"))]
