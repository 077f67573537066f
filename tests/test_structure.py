"""The package's shape (STYLE.md): layers named in each module's docstring, no import
cycles, torch loaded only by the modules that need it, short modules, private names kept
private, and CI running the README's commands exactly as written."""
import ast
import json
import re
from pathlib import Path

import labkit

ROOT = Path(__file__).parents[1]
MODULES = {p.stem: p for p in (ROOT / "labkit").glob("*.py") if p.stem != "__init__"}
TOOLS = {"cli", "check", "install"}
# Sub-packages' files (the exercises, one per lab): their docstrings and lengths are checked too.
SUBMODULES = {f"{p.parent.name}.{p.stem}": p for p in (ROOT / "labkit").glob("*/*.py")}


def labkit_imports(path: Path):
    """(module imported, at top level?) for every import of a labkit module in ``path`` (in a
    sub-package, ``from .. import x`` is labkit's x)."""
    tree = ast.parse(path.read_text())
    top = {id(n) for n in tree.body}
    level = 1 if path.parent.name == "labkit" else 2
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.ImportFrom) and node.level == level:
            names = [node.module] if node.module else [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("labkit"):
            names = [node.module.split(".")[1]] if "." in node.module else [a.name for a in node.names]
        for name in names:
            if name in MODULES:
                yield name, id(node) in top


def test_module_docstrings_name_their_layer():
    assert "exercises.lab09" in SUBMODULES and "exercises.__init__" in SUBMODULES
    for name, path in {**MODULES, **SUBMODULES}.items():
        doc = ast.get_docstring(ast.parse(path.read_text())) or ""
        layer = "Tools:" if name in TOOLS or name.startswith("exercises.") else None
        assert re.match(r"(Core|Lab 0\d|Tools):", doc), f"{name}.py: start its docstring with its layer"
        if layer:
            assert doc.startswith(layer), name


def test_no_import_cycles():
    graph = {name: {m for m, _ in labkit_imports(path)} for name, path in MODULES.items()}
    done, stack = set(), []

    def visit(node):
        if node in stack:
            raise AssertionError("import cycle: " + " -> ".join(stack[stack.index(node):] + [node]))
        if node in done:
            return
        stack.append(node)
        for nxt in graph[node]:
            visit(nxt)
        stack.pop()
        done.add(node)

    for node in graph:
        visit(node)


def test_only_lazy_modules_are_imported_inside_functions():
    """labkit's own modules are imported at the top of a module; the exception is a module in
    labkit.LAZY (it loads torch), which others import where they need it."""
    for name, path in {**MODULES, **SUBMODULES}.items():
        for imported, at_top in labkit_imports(path):
            if name in labkit.LAZY:
                continue
            if at_top:
                assert imported not in labkit.LAZY, f"{name} loads torch at import via {imported}"
            else:
                assert imported in labkit.LAZY, f"{name}: import {imported} at the top of the module"


def test_no_private_names_across_modules_or_in_notebooks():
    pattern = re.compile(r"\b(" + "|".join(MODULES) + r")\._[a-z]\w*")
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module not in (None, name):
                private = [a.name for a in node.names if a.name.startswith("_") and a.name != "__version__"]
                assert not private, f"{name}.py imports {private} from {node.module}"
        for m in pattern.finditer(path.read_text()):
            assert m.group(1) == name, f"{name}.py uses {m.group(0)}"
    for nb in ROOT.glob("notebooks/**/*.ipynb"):
        cells = json.loads(nb.read_text())["cells"]
        code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
        assert not pattern.search(code), f"{nb.name} uses {pattern.search(code).group(0)}"


def test_ci_runs_the_readme_commands_as_written():
    readme = (ROOT / "README.md").read_text()
    commands = re.findall(r"```bash\n(python3 -m venv .venv && [^\n]+)\n```", readme)
    assert len(commands) == 2, "the README has one command for the course, one for the tests"
    ci = (ROOT / ".ci" / "run").read_text()
    for command in commands:
        assert command in ci, f".ci/run does not run the README's command as written: {command}"
