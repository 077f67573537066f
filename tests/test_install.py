import importlib.util
from pathlib import Path

spec = importlib.util.spec_from_file_location(
    "labkit_install", Path(__file__).parents[1] / "labkit" / "install.py")
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
