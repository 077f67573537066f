"""ruff over the package, the tests and the scripts: no line over 120 characters, and none of
pyflakes' findings (an unused or undefined name, a redefinition, an import shadowed). A
refactoring that leaves a name behind fails here, not in a learner's notebook."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RULES = ["--select", "E501,F", "--line-length", "120"]


def ruff(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "--output-format", "concise",
                           *RULES, *args], cwd=cwd, capture_output=True, text=True)


def test_the_code_passes_the_lint():
    out = ruff("labkit", "tests", "scripts")
    assert out.returncode == 0, out.stdout + out.stderr


def test_the_lint_fails_on_a_long_line_and_an_unused_import(tmp_path):
    (tmp_path / "bad.py").write_text("import os\n\nx = '" + "a" * 130 + "'\n")
    out = ruff("bad.py", cwd=tmp_path)
    assert out.returncode == 1 and "E501" in out.stdout and "F401" in out.stdout
