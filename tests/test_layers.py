"""The package's layers (DESIGN.md, "The package"), checked from the source, not from docstrings:
the core imports nothing from the labs, the course tools or the exercises; a lab imports only
the core (and its own package). (`import labkit` staying light: tests/test_env.py.)"""
import ast
import shutil
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "labkit"


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, root: Path) -> list[tuple[int, str]]:
    """(line, absolute module) for every labkit import in ``path``, relative ones resolved."""
    name = module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module
            # `from labkit.labs import pretrain` imports the module labkit.labs.pretrain
            out += [(node.lineno, f"{mod}.{a.name}") for a in node.names]
    return [(line, m) for line, m in out if m == "labkit" or m.startswith("labkit.")]


def owner(module: str) -> str:
    """The unit a module belongs to: 'core', 'course', 'exercises', 'top', or 'labs.<lab>'."""
    parts = module.split(".")
    if len(parts) < 2 or parts[1] not in ("core", "labs", "course", "exercises"):
        return "top"
    if parts[1] == "labs":
        return "labs" if len(parts) == 2 else f"labs.{parts[2]}"
    return parts[1]


def allowed(src: str, dst: str) -> bool:
    if dst == "top" or src == dst:
        return dst != "top" or src in ("course", "exercises", "top")
    if src == "core":
        return False
    if src.startswith("labs"):
        return dst == "core"
    if src == "exercises":
        return dst == "core" or dst.startswith("labs")
    return True  # the course and the top-level package may import anything


def violations(root: Path = PACKAGE) -> list[str]:
    bad = []
    for path in sorted(root.rglob("*.py")):
        src = owner(module_name(path, root))
        for line, mod in imports(path, root):
            dst = owner(mod)
            if src == "top" and dst != "top" and path.name == "__init__.py" and path.parent == root:
                if dst != "core":  # the top-level package re-exports core helpers only
                    bad.append(f"{path.relative_to(root.parent)}:{line} imports {mod} "
                               "(labkit/__init__ takes only core helpers)")
            elif not allowed(src, dst):
                bad.append(f"{path.relative_to(root.parent)}:{line}: {src} imports {mod} ({dst})")
    return bad


def test_every_layer_imports_only_what_it_stands_on():
    assert violations() == []


@pytest.mark.parametrize("where, planted", [
    ("core/data.py", "from labkit.labs import pretrain"),            # core -> lab
    ("core/stats.py", "from labkit.course import report"),           # core -> course
    ("labs/finetune.py", "from labkit.labs.pretrain import corpus"),  # lab -> lab
    ("labs/adversarial/defences.py", "from labkit.labs import distill"),  # lab package -> another lab
    ("labs/distill.py", "from ..course import study"),                # lab -> course, relative
])
def test_the_checker_fails_on_a_planted_import(tmp_path, where, planted):
    copy = tmp_path / "labkit"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__", "reference"))
    target = copy / where
    target.write_text(target.read_text(encoding="utf-8") + f"\n{planted}\n", encoding="utf-8")
    found = violations(copy)
    assert len(found) == 1 and where in found[0], found


def test_a_lab_may_import_its_own_package():
    """defences imports the attack from its own lab's package; that is not a violation."""
    assert any(m.startswith("labkit.labs.adversarial") for _, m in
               imports(PACKAGE / "labs" / "adversarial" / "defences.py", PACKAGE))
    assert allowed("labs.adversarial", "labs.adversarial") and not allowed("labs.adversarial", "labs.distill")
