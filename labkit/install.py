"""Tools: set up labkit in the current Python environment, choosing the right PyTorch build.

Run it as a script from the repository root, with the Python you will use (standard library
only, so it works before anything is installed):

    python labkit/install.py            # the course: labkit + JupyterLab + the runner
    python labkit/install.py --test     # the above plus pytest and nbval
    python labkit/install.py --gpu      # force the CUDA build of torch (default: auto-detect)

Why a script and not a plain `pip install .`: on Linux a bare `torch` requirement pulls a
multi-GB CUDA build even on a laptop with no GPU. Here torch is installed first:
- a GPU (``nvidia-smi`` answers), or macOS / Windows: ``torch==TORCH`` from the default index;
- Linux without a GPU: the CPU build ``torch==TORCH+cpu``, from pip's configured sources when
  they have it (a local wheelhouse in PIP_FIND_LINKS, a mirror), else from the PyTorch CPU index.
Then ``pip install -e .[course]`` (or ``[test]``) finds torch satisfied and leaves it alone.
Last, it writes ``labkit-install.json`` into the environment (how long the set-up took and
how big the environment is), which `labkit run` copies into each report's ``meta``.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

TORCH = "2.13.0"
CPU_INDEX = "https://download.pytorch.org/whl/cpu"


def has_gpu() -> bool:
    """True when an NVIDIA driver answers with at least one GPU."""
    smi = shutil.which("nvidia-smi")
    if not smi:
        return False
    try:
        out = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0 and "GPU" in out.stdout


def torch_installed() -> str | None:
    try:
        out = subprocess.run([sys.executable, "-c", "import torch; print(torch.__version__)"],
                             capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def pip(*args: str, check: bool = True) -> int:
    cmd = [sys.executable, "-m", "pip", "install", *args]
    print("+", " ".join(cmd), flush=True)
    rc = subprocess.call(cmd)
    if check and rc != 0:
        sys.exit(f"install.py: `{' '.join(cmd)}` failed (exit {rc}); see pip's message above.")
    return rc


def install_torch(gpu: bool) -> bool:
    """Install torch unless the right version is there; True when it installed it."""
    have = torch_installed()
    if have and have.split("+")[0] == TORCH:
        print(f"torch {have} already installed; keeping it.")
        return False
    if gpu or platform.system() != "Linux":
        pip(f"torch=={TORCH}")
        return True
    # Linux, no GPU: the CPU build. First from the sources pip is configured with (a local
    # wheelhouse in PIP_FIND_LINKS, a mirror), else from the PyTorch CPU index.
    if pip(f"torch=={TORCH}+cpu", check=False) != 0:
        print(f"no CPU build of torch {TORCH} in pip's configured sources; using {CPU_INDEX}")
        pip(f"torch=={TORCH}+cpu", "--extra-index-url", CPU_INDEX)
    return True


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--test", action="store_true", help="also install pytest and nbval")
    group = ap.add_mutually_exclusive_group()
    group.add_argument("--gpu", action="store_true", help="install the CUDA build of torch")
    group.add_argument("--cpu", action="store_true", help="install the CPU build of torch")
    args = ap.parse_args(argv)
    if not Path("pyproject.toml").exists() or not Path("labkit").is_dir():
        sys.exit("install.py: run it from the repository root (where pyproject.toml is), e.g. "
                 "`python labkit/install.py`")
    start = time.perf_counter()
    gpu = args.gpu or (not args.cpu and has_gpu())
    print(f"labkit install: {'GPU' if gpu else 'CPU'} build of torch {TORCH}", flush=True)
    fresh = install_torch(gpu)
    pip("-e", ".[test]" if args.test else ".[course]")
    if fresh:  # a first set-up: keep its time and size (a re-run only checks)
        write_summary(time.perf_counter() - start, "test" if args.test else "course")
    print("labkit installed. Next: `labkit fetch` (data and weights), then `labkit doctor`.")


def environment_mb() -> float:
    """Megabytes of files in this Python environment (``sys.prefix``)."""
    total = 0
    for root, _, files in os.walk(sys.prefix):
        for f in files:
            path = os.path.join(root, f)
            if not os.path.islink(path):
                total += os.path.getsize(path)
    return total / 2**20


def write_summary(seconds: float, extra: str) -> None:
    """``labkit-install.json`` in the environment: what was installed, how long it took."""
    summary = {"seconds": round(seconds), "venv_mb": round(environment_mb()), "extra": extra,
               "torch": torch_installed(), "date": time.strftime("%Y-%m-%d")}
    (Path(sys.prefix) / "labkit-install.json").write_text(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
