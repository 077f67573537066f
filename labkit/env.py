"""The environment: scale, device, seeding, offline switches, the cache, and `doctor()`.

One helper for each (STYLE.md point 5): every lab asks `scale()`, `device()` and
`seed_everything()` here instead of pasting its own snippet. Leaves out: what each lab does
with the scale (that is in each lab's config dataclass).
"""
from __future__ import annotations

import os
import platform
import random
import shutil
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

SCALES = ("smoke", "cpu", "gpu")

# Wall time (minutes) and peak kernel memory (MB) of each notebook, measured with
# `labkit run` on the reference machine (2 cores, no GPU), cold artifact cache.
# `None` = not measured yet (no GPU was available to measure `gpu`).
EXPECTED = {
    "00_start_here": {"smoke": (0.2, 430), "cpu": (0.2, 420), "gpu": None},
    "01_data": {"smoke": (0.6, 760), "cpu": (3.8, 1250), "gpu": None},
    "02_pretraining": {"smoke": (0.4, 680), "cpu": (3.7, 1250), "gpu": None},
    "03_fine_tuning": {"smoke": (0.5, 900), "cpu": (8.0, 1400), "gpu": None},
    "04_augmentation": {"smoke": (0.5, 715), "cpu": (3.5, 970), "gpu": None},
    "05_distillation": {"smoke": (0.6, 840), "cpu": (6.8, 1190), "gpu": None},
}


class ScaleError(ValueError):
    pass


def scale() -> str:
    """The lab scale from ``LABKIT_SCALE``: 'smoke', 'cpu' or 'gpu'.

    Unset: 'gpu' when CUDA is available, else 'cpu'. Example: LABKIT_SCALE=smoke -> 'smoke'.
    """
    value = os.environ.get("LABKIT_SCALE", "").strip().lower()
    if not value:
        return "gpu" if _cuda() else "cpu"
    if value not in SCALES:
        raise ScaleError(
            f"LABKIT_SCALE={os.environ['LABKIT_SCALE']!r} is not a scale. "
            f"Use one of {', '.join(SCALES)} (e.g. `export LABKIT_SCALE=cpu`), or unset it.")
    return value


def _cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def device():
    """The torch device to use: CUDA when available, else CPU."""
    import torch
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices). Call right before each random step."""
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    random.seed(seed)
    import numpy as np
    np.random.seed(seed % 2**32)
    try:
        import torch
    except ImportError:
        return
    torch.manual_seed(seed)


def offline_defaults() -> None:
    """Keep Hugging Face libraries off the network unless ``LABKIT_ONLINE=1``.

    Called when labkit is imported, before transformers/datasets read these variables.
    A variable the user has already set is left as it is.
    """
    if os.environ.get("LABKIT_ONLINE", "0") == "1":
        return
    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
        os.environ.setdefault(var, "1")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


def online() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0") != "1"


def cache_dir() -> Path:
    """Where fetched data, weights and lab artifacts live: ``LABKIT_CACHE``, else
    ``$XDG_CACHE_HOME/labkit``, else ``~/.cache/labkit``."""
    if os.environ.get("LABKIT_CACHE"):
        return Path(os.environ["LABKIT_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "labkit"


@contextmanager
def atomic_folder(final: Path):
    """Yield a temporary folder beside ``final``; when the block succeeds it replaces
    ``final`` in one rename, when it fails it is deleted. Nothing half-written is left."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    try:
        yield tmp
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def release_memory() -> None:
    """Collect garbage and hand freed heap memory back to the OS (glibc's ``malloc_trim``).

    A notebook that trains model after model otherwise keeps the high-water mark of every
    run: freed tensors of many shapes fragment the heap, and lab 03's MiniLM run would start
    from ~1.1 GB instead of ~0.7. Does nothing more than ``gc.collect()`` off glibc.
    """
    import ctypes
    import gc
    gc.collect()
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except (OSError, AttributeError):  # musl or another libc: nothing to trim
            pass


def memory_gb() -> float | None:
    """Total RAM in GB (Linux/macOS), None when unknown."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9
    except (ValueError, OSError, AttributeError):
        return None


def matmul_gflops(n: int = 1024, repeats: int = 5) -> float:
    """Measured fp32 matrix-multiply throughput of this machine (GFLOP/s), best of
    ``repeats``: the yardstick for model FLOPs utilisation (lab 02)."""
    import time
    import torch
    dev = device()
    a, b = torch.randn(n, n, device=dev), torch.randn(n, n, device=dev)
    best = float("inf")
    for _ in range(repeats + 1):
        if dev.type == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        a @ b
        if dev.type == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t)
    return 2 * n ** 3 / best / 1e9


def _version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def doctor(verbose: bool = True) -> dict:
    """Check the environment and say what to expect. Returns the facts as a dict.

    Example: ``doctor()["scale"] -> 'cpu'`` on a laptop.
    """
    from . import fetch
    facts = {
        "python": platform.python_version(),
        "platform": f"{platform.system()} {platform.machine()}",
        "packages": {p: _version(p) for p in ("labkit", "torch", "transformers", "datasets",
                                               "scikit-learn", "cleanlab")},
        "device": str(device()) if _version("torch") != "not installed" else "no torch",
        "cores": os.cpu_count(),
        "ram_gb": round(memory_gb() or 0, 1),
        "scale": scale(),
        "offline": not online(),
        "cache": str(cache_dir()),
        "fetched": {name: fetch.is_fetched(name) for name in fetch.REGISTRY},
    }
    facts["matmul_gflops"] = round(matmul_gflops()) if facts["device"] != "no torch" else None
    facts["expected"] = {lab: times.get(facts["scale"]) for lab, times in EXPECTED.items()}
    if verbose:
        print(f"Python {facts['python']} on {facts['platform']}, "
              f"{facts['cores']} cores, {facts['ram_gb']} GB RAM, device {facts['device']}")
        print("  " + ", ".join(f"{k} {v}" for k, v in facts["packages"].items()))
        print(f"fp32 matmul: {facts['matmul_gflops']} GFLOP/s measured on {facts['device']}")
        print(f"scale: {facts['scale']} (set LABKIT_SCALE to one of {', '.join(SCALES)})")
        print(f"hub access: {'ON (opted in)' if online() else 'off (offline-first)'}")
        print(f"cache: {facts['cache']}")
        for name, ok in facts["fetched"].items():
            print(f"  {'ok     ' if ok else 'MISSING'} {name}")
        if not all(facts["fetched"].values()):
            print("  -> run `labkit fetch` (or `labkit.fetch.fetch()`) where there is a network")
        print(f"expected time per lab at scale {facts['scale']} (measured on 2 CPU cores):")
        for lab, t in facts["expected"].items():
            print(f"  {lab:<16} " + (f"~{t[0]:g} min, peak ~{t[1]} MB" if t else "not measured"))
    return facts


if sys.version_info < (3, 10):  # pragma: no cover
    raise RuntimeError("labkit needs Python 3.10 or newer")
