"""The `gpu` scale has never been executed here (no GPU): a learner on Colab with a GPU runtime
is the first to run it. This checks its structure without a GPU: every name a notebook reads
from a lab's configuration exists at `gpu` and has the kind of value it has at `cpu` (a tuple
where the cpu setting is a tuple, a number where it is a number), and every scale a notebook
branches on is a real one. Issue 32's slow dry run runs each notebook with the gpu settings at
tiny sizes (`tests/test_slow.py::test_gpu_dry_run`); here, that a config's dry-run sizes name
its own fields and keep their kind."""
import dataclasses
import json
import re
from pathlib import Path

import pytest

from labkit.core.env import SCALES
from test_config import lab_configs

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("[0-9]*.ipynb"))


def code(nb: Path) -> str:
    return "\n".join("".join(c["source"]) for c in json.loads(nb.read_text())["cells"] if c["cell_type"] == "code")


def reads(nb: Path) -> dict[str, set]:
    """{config class name: the attributes the notebook reads from it}."""
    src = code(nb)
    names = {v: c for v, c in re.findall(r"^(\w+) = (?:[\w.]+\.)?(\w+Config)\.for_scale\(", src, re.M)}
    out: dict[str, set] = {}
    for var, config in names.items():
        out.setdefault(config, set()).update(re.findall(rf"\b{var}\.(\w+)", src))
    return out


def kind(v) -> str:
    return ("number" if isinstance(v, (int, float)) and not isinstance(v, bool) else
            "tuple" if isinstance(v, tuple) else type(v).__name__)


def same_kind(cpu, gpu, annotation: str, name: str = "") -> bool:
    """Whether the gpu value can stand where the cpu value stands (None only where the field
    allows it: its annotation says so, or, in a tuple of label budgets, "all the labels", which
    `labkit.core.curves.budget_curve` takes)."""
    if gpu is None or cpu is None:
        return "None" in annotation or cpu is gpu
    if isinstance(cpu, tuple) and isinstance(gpu, tuple):
        kinds = {kind(v) for v in cpu if v is not None}
        none_ok = None in cpu or name.endswith("budgets")
        return not kinds or all((v is None and none_ok) or kind(v) in kinds for v in gpu)
    return kind(cpu) == kind(gpu)


@pytest.mark.parametrize("config", lab_configs(), ids=lambda c: c.__name__)
def test_every_gpu_setting_has_the_kind_of_value_its_cpu_setting_has(config):
    cpu, gpu = config.for_scale("cpu"), config.for_scale("gpu")
    hints = {f.name: str(f.type) for f in dataclasses.fields(config)}
    for name, annotation in hints.items():
        a, b = getattr(cpu, name), getattr(gpu, name)
        assert same_kind(a, b, annotation, name), f"{config.__name__}.{name}: cpu {a!r} but gpu {b!r}"


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_setting_a_notebook_reads_exists_at_gpu(nb):
    configs = {c.__name__: c for c in lab_configs()}
    for name, attrs in reads(nb).items():
        gpu = configs[name].for_scale("gpu")
        missing = sorted(a for a in attrs if not hasattr(gpu, a))
        assert not missing, f"{nb.name} reads {name}.{missing} which the gpu configuration lacks"


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_scale_a_notebook_branches_on_is_a_real_one(nb):
    named = set(re.findall(r"SCALE\s*(?:==|!=)\s*[\"'](\w+)[\"']", code(nb)))
    for group in re.findall(r"SCALE in \(([^)]*)\)", code(nb)):
        named |= set(re.findall(r"[\"'](\w+)[\"']", group))
    assert named <= set(SCALES), f"{nb.name} branches on {named - set(SCALES)}"


def test_the_checker_sees_what_notebooks_read():
    """Not vacuous: lab 03 reads its budgets and seeds through `cfg`."""
    nb = next(p for p in NOTEBOOKS if p.stem == "03_fine_tuning")
    assert {"seeds", "max_len"} <= reads(nb)["FinetuneConfig"]
    assert not same_kind((1, 2), 3, "tuple") and same_kind(None, 5, "int | None") and not same_kind(5, None, "int")
    assert same_kind((100, None), (10, 20, None), "tuple") and not same_kind((1, 2), ("a",), "tuple")
    assert same_kind((1, 2), (1, None), "tuple", "small_budgets") and not same_kind((1, 2), (1, None), "tuple", "seeds")


@pytest.mark.parametrize("config", lab_configs(), ids=lambda c: c.__name__)
def test_dry_run_sizes_are_fields_of_their_config_with_the_kind_gpu_has(config):
    fields = {f.name: f for f in dataclasses.fields(config)}
    gpu = config.for_scale("gpu")
    for name, value in config.DRY_RUN.items():
        assert name in fields, f"{config.__name__}.DRY_RUN names {name!r}, not one of its fields"
        at_gpu = getattr(gpu, name)  # a size where gpu has one; a number where gpu takes everything (None)
        assert kind(value) == ("number" if at_gpu is None else kind(at_gpu)), (config.__name__, name, value)
