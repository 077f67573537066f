"""The package's shape (STYLE.md, DESIGN.md "The package"): each module's docstring names its
layer, no import cycles, private names kept private, and CI running the README's commands
exactly as written. Which layer may import which: tests/test_layers.py."""
import ast
import json
import re
from pathlib import Path

from test_layers import PACKAGE, imports, module_name

ROOT = Path(__file__).parents[1]
# every module of the package, by dotted name: labkit.core.data, labkit.labs.adversarial, ...
MODULES = {module_name(p, PACKAGE): p for p in sorted(PACKAGE.rglob("*.py"))}
ROOMS = ("labkit.core", "labkit.labs", "labkit.course", "labkit.exercises")


def test_module_docstrings_name_their_layer():
    """A core module says "Core:", a lab's "Lab 0N:", a course tool or an exercise file
    "Tools:"; the rooms' own __init__ files say what the room holds."""
    assert "labkit.exercises.lab09" in MODULES and "labkit.core.kd" in MODULES and len(MODULES) > 40
    for name, path in MODULES.items():
        doc = ast.get_docstring(ast.parse(path.read_text())) or ""
        if name in ROOMS or name == "labkit":
            assert doc, f"{path}: say what this package holds"
            continue
        want = {"core": r"Core:", "labs": r"Lab 0\d:", "course": r"Tools:", "exercises": r"Tools:"}[name.split(".")[1]]
        assert re.match(want, doc), f"{path}: start its docstring with {want!r}"


def test_no_import_cycles():
    graph = {name: {m for _, m in imports(path, PACKAGE)} for name, path in MODULES.items()}
    graph = {k: {m if m in MODULES else m.rpartition(".")[0] for m in v} & set(MODULES) for k, v in graph.items()}
    done, stack = set(), []

    def visit(node):
        if node in stack:
            raise AssertionError("import cycle: " + " -> ".join(stack[stack.index(node):] + [node]))
        if node in done:
            return
        stack.append(node)
        for nxt in graph[node]:
            if nxt != node and not node.startswith(nxt + "."):  # a module may import its own package
                visit(nxt)
        stack.pop()
        done.add(node)

    for node in graph:
        visit(node)


def test_no_private_names_across_modules_or_in_notebooks():
    """`from labkit.x import _name` only from the module itself; no `module._name` in another
    module or a notebook."""
    short = sorted({n.rpartition(".")[2] for n in MODULES}, key=len, reverse=True)
    pattern = re.compile(r"\b(" + "|".join(short) + r")\._[a-z]\w*")
    for name, path in MODULES.items():
        for _, imported in imports(path, PACKAGE):
            base, _, last = imported.rpartition(".")
            assert not (last.startswith("_") and last != "__version__" and base != name), f"{path} imports {imported}"
        for m in pattern.finditer(path.read_text()):
            assert m.group(1) == name.rpartition(".")[2], f"{path} uses {m.group(0)}"
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
