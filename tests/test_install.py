import importlib.util
from pathlib import Path

spec = importlib.util.spec_from_file_location(
    "labkit_install", Path(__file__).parents[1] / "scripts" / "install.py")
install = importlib.util.module_from_spec(spec)
spec.loader.exec_module(install)


def test_no_gpu_without_nvidia_smi(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    assert install.has_gpu() is False


def test_cpu_linux_asks_for_the_cpu_build(monkeypatch):
    calls = []

    def fake_pip(*args, check=True):  # the first try (pip's own sources) finds no CPU build
        calls.append(args)
        return 1 if len(calls) == 1 else 0

    monkeypatch.setattr(install, "torch_installed", lambda: None)
    monkeypatch.setattr(install.platform, "system", lambda: "Linux")
    monkeypatch.setattr(install, "pip", fake_pip)
    install.install_torch(gpu=False)
    assert calls[0] == (f"torch=={install.TORCH}+cpu",)
    assert calls[1] == (f"torch=={install.TORCH}+cpu", "--extra-index-url", install.CPU_INDEX)


def test_gpu_asks_for_the_default_build(monkeypatch):
    calls = []
    monkeypatch.setattr(install, "torch_installed", lambda: None)
    monkeypatch.setattr(install, "pip", lambda *a, check=True: calls.append(a) or 0)
    install.install_torch(gpu=True)
    assert calls == [(f"torch=={install.TORCH}",)]


def test_keeps_a_matching_torch(monkeypatch):
    calls = []
    monkeypatch.setattr(install, "torch_installed", lambda: f"{install.TORCH}+cpu")
    monkeypatch.setattr(install, "pip", lambda *a, check=True: calls.append(a) or 0)
    install.install_torch(gpu=False)
    assert calls == []


# The lock (binder/requirements.txt): what the README's commands install, what Binder and
# Colab install, and what a new user gets, all the same versions.

import pytest  # noqa: E402
from packaging.requirements import Requirement  # noqa: E402


def test_this_environment_is_the_lock():
    """`pip freeze` of the environment the README's install made equals the lock."""
    why_not = install.lock_applies()
    if why_not:
        pytest.skip(f"{why_not}: installed from the ranges")
    assert install.check() == []


def test_differences_between_a_freeze_and_a_lock_by_hand():
    pins = {"torch": "2.13.0+cpu", "numpy": "2.4.6", "jinja2": "3.1.6", "idna": "3.21"}
    frozen = ("Jinja2==3.1.6\nnumpy==2.4.5\ntorch==2.13.0+cpu\nrich==14.0.0\npip==23.2.1\n"
              "# Editable install with no version control (labkit==0.1.0)\n-e /somewhere/labkit\n")
    assert install.differences(frozen, pins) == [  # idna not installed: a subset of the lock is fine
        "numpy: the lock pins 2.4.6, installed 2.4.5",
        "rich 14.0.0: installed, not in the lock"]
    # a GPU machine: torch's own build and its CUDA packages are not differences; elsewhere they are
    gpu = "Jinja2==3.1.6\nnumpy==2.4.6\nidna==3.21\ntorch==2.13.0\nnvidia-cublas==13.1.0\ntriton==3.5.0\n"
    assert install.differences(gpu, pins) == []
    cpu_with_cuda = gpu.replace("torch==2.13.0", "torch==2.13.0+cpu")
    assert install.differences(cpu_with_cuda, pins) == [
        "nvidia-cublas 13.1.0: installed, not in the lock", "triton 3.5.0: installed, not in the lock"]
    assert install.differences(gpu.replace("torch==2.13.0", "torch==2.14.1"), pins) == [
        "torch: the lock pins 2.13.0+cpu, installed 2.14.1"]


def test_the_lock_satisfies_every_range_in_pyproject():
    """Whoever changes a range in pyproject.toml re-locks in the same change (this fails otherwise)."""
    tomllib = pytest.importorskip("tomllib", reason="Python 3.11+ reads pyproject.toml with tomllib")
    project = tomllib.loads((install.ROOT / "pyproject.toml").read_text())["project"]
    wanted = project["dependencies"] + [r for extra in project["optional-dependencies"].values()
                                        for r in extra if not r.startswith("labkit")]
    pins = install.read_lock()
    for line in wanted:
        req = Requirement(line)
        name = install.canonical(req.name)
        assert name in pins, f"{req.name} is in pyproject.toml but not in the lock: `{install.UPGRADE}`"
        assert req.specifier.contains(pins[name], prereleases=True), \
            f"the lock pins {name}=={pins[name]}, outside pyproject.toml's {req}: `{install.UPGRADE}`"


def test_binder_installs_the_lock_with_cpu_torch_and_colab_the_lock_less_what_it_keeps():
    text = install.LOCK.read_text()
    options = [line for line in text.splitlines() if line.startswith("-")]
    assert options == [f"--extra-index-url {install.CPU_INDEX}"]  # Binder finds the CPU build there
    pins = install.read_lock()
    assert pins["torch"] == f"{install.TORCH}+cpu"  # the version install.py installs
    assert not [n for n in pins if install.kept(n, ("nvidia-*", "triton"))]  # no CUDA wheels
    colab = install.parse_lock(install.COLAB_LOCK.read_text())
    assert install.COLAB_LOCK.read_text() == install.colab_constraints()  # generated from the lock
    assert colab == {n: v for n, v in pins.items() if n not in install.colab_left_out()}
    assert "torch" not in colab and "numpy" not in colab and colab["transformers"] == pins["transformers"]
    assert "networkx" not in colab  # only torch requires it: Colab's torch decides its version
    assert "/tmp" not in text  # the lock names no machine's temporary files


def test_what_colab_leaves_out_follows_the_lock_annotations(tmp_path):
    lock = tmp_path / "requirements.txt"
    lock.write_text("mpmath==1.3.0  # via sympy\nsympy==1.14.0  # via torch, onnxruntime\n"
                    "networkx==3.6  # via torch\ntorch==2.13.0+cpu  # via labkit (pyproject.toml)\n"
                    "onnxruntime==1.32.0  # via labkit (pyproject.toml)\n")
    assert install.colab_left_out(lock) == {"torch", "networkx"}  # sympy: onnxruntime needs it too
    assert install.parse_lock(install.colab_constraints(lock)) == {
        "mpmath": "1.3.0", "sympy": "1.14.0", "onnxruntime": "1.32.0"}


def test_a_hand_edited_lock_is_refused_with_the_command_that_rewrites_it(tmp_path):
    lock = tmp_path / "requirements.txt"
    lock.write_text("numpy==2.4.6\ntransformers>=5\n")
    with pytest.raises(SystemExit, match=r"line 2: 'transformers>=5' is not an exact .*--upgrade-lock"):
        install.read_lock(lock)


def test_the_lock_applies_to_its_platform_only():
    assert install.lock_applies((3, 11), "Linux", "x86_64") is None
    assert "Python 3.12 on Linux x86_64" in install.lock_applies((3, 12), "Linux", "x86_64")
    assert "Darwin arm64" in install.lock_applies((3, 11), "Darwin", "arm64")


def test_torch_and_labkit_install_with_the_lock_as_constraints_less_torch(monkeypatch, capsys):
    calls, read = [], []

    def fake_pip(*args, check=True):
        if "-c" in args:  # read the constraints while the temporary file exists
            read.append(open(args[args.index("-c") + 1]).read())
        calls.append(args)
        return 0

    monkeypatch.setattr(install, "pip", fake_pip)
    monkeypatch.setattr(install, "torch_installed", lambda: None)
    monkeypatch.setattr(install.platform, "system", lambda: "Linux")
    monkeypatch.setattr(install, "lock_applies", lambda: None)
    assert install.install(gpu=False, extra="test") is True
    (torch_args, labkit_args), (torch_pins, labkit_pins) = calls, read
    assert torch_args[0] == f"torch=={install.TORCH}+cpu" and torch_args[1] == "-c"  # torch's own deps pinned too
    assert labkit_args[0] == "-c" and labkit_args[2:] == ("-e", ".[test]")
    assert torch_pins == labkit_pins
    assert install.parse_lock(labkit_pins) == {n: v for n, v in install.read_lock().items() if n != "torch"}
    calls.clear()
    monkeypatch.setattr(install, "lock_applies", lambda: "the lock is for CPython 3.11; this is 3.13")
    install.install(gpu=True, extra="course")
    assert calls == [(f"torch=={install.TORCH}",), ("-e", ".[course]")]
    assert "installs from pyproject.toml's ranges" in capsys.readouterr().out


def test_pip_leaves_bytecode_to_a_compile_on_every_core(monkeypatch, tmp_path):
    seen = []
    monkeypatch.setattr(install.subprocess, "call", lambda cmd: seen.append(cmd) or 0)
    assert install.pip("-e", ".[course]") == 0
    assert seen == [[install.sys.executable, "-m", "pip", "install", "--no-compile", "-e", ".[course]"]]
    (tmp_path / "mod.py").write_text("X = 1\n")
    (tmp_path / "broken.py").write_text("def (\n")  # skipped, as pip skips it
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")  # the bytecode is written all the same
    monkeypatch.setattr("sysconfig.get_paths", lambda: {"purelib": str(tmp_path)})
    install.compile_bytecode()
    assert [p.name.split(".")[0] for p in (tmp_path / "__pycache__").iterdir()] == ["mod"]


@pytest.mark.drift
def test_no_locked_package_has_a_newer_release_inside_its_range():
    """Drift, seen before it bites: re-resolve the ranges now (needs uv and the package index)
    and list what `--upgrade-lock` would change. Not in the default run: `pytest -m drift`."""
    moved = install.changes(install.read_lock(), install.parse_lock(install.resolve()))
    assert not moved, (f"{len(moved)} locked packages have moved upstream; `{install.UPGRADE}`, "
                       "run the tests, commit:\n" + "\n".join(moved))
