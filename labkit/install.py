"""Set up labkit in the current Python environment, choosing the right PyTorch build.

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
"""
from __future__ import annotations

import argparse
import platform
import shutil
import subprocess
import sys

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


def install_torch(gpu: bool) -> None:
    have = torch_installed()
    if have and have.split("+")[0] == TORCH:
        print(f"torch {have} already installed; keeping it.")
        return
    if gpu or platform.system() != "Linux":
        pip(f"torch=={TORCH}")
        return
    # Linux, no GPU: the CPU build. First from the sources pip is configured with (a local
    # wheelhouse in PIP_FIND_LINKS, a mirror), else from the PyTorch CPU index.
    if pip(f"torch=={TORCH}+cpu", check=False) != 0:
        print(f"no CPU build of torch {TORCH} in pip's configured sources; using {CPU_INDEX}")
        pip(f"torch=={TORCH}+cpu", "--extra-index-url", CPU_INDEX)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--test", action="store_true", help="also install pytest and nbval")
    group = ap.add_mutually_exclusive_group()
    group.add_argument("--gpu", action="store_true", help="install the CUDA build of torch")
    group.add_argument("--cpu", action="store_true", help="install the CPU build of torch")
    args = ap.parse_args(argv)
    gpu = args.gpu or (not args.cpu and has_gpu())
    print(f"labkit install: {'GPU' if gpu else 'CPU'} build of torch {TORCH}", flush=True)
    install_torch(gpu)
    pip("-e", ".[test]" if args.test else ".[course]")
    print("labkit installed. Next: `labkit fetch` (data and weights), then `labkit doctor`.")


if __name__ == "__main__":
    main()
