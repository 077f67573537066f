"""Core: scale, device, seeding, offline switches, the machine, and `doctor()`.

One helper for each (STYLE.md point 5): every lab asks `scale()`, `device()` and
`seed_everything()` here instead of pasting its own snippet. `doctor()` says what this
machine has and what each lab costs at the current scale, from the committed reference
report (`labkit/reference/<scale>.json`, written by `labkit run`).
Leaves out: what each lab does with the scale (each lab's config dataclass) and the cache
(`labkit.core.cache`).
"""
from __future__ import annotations

import json
import os
import platform
import random
import sys
from pathlib import Path

from labkit.core import cache, fetch

SCALES = ("smoke", "cpu", "gpu")

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


# `labkit run --dry-run`: the gpu configuration (every arm, budget, seed and key the notebooks
# read at gpu) at these sizes, on any machine: optimizer steps per training run, and the rows
# kept of each review split (the corpora stay whole: lab 02's vocabulary needs them). What a
# real gpu run would compute differs; what it would read, branch on and record is the same.
# 8 steps: lab 03 checks its by-hand loop against labkit's over 8 steps, and a dry run must not cut that
DRY_RUN = {"steps": 8, "train": 2400, "validation": 300, "test": 300}
DRY_MARKER = ".labkit-dry-run"  # written by `labkit.course.report.dry_cache` into the dry run's own cache


def dry_run() -> bool:
    """Whether this process runs the `gpu` configuration dry (``LABKIT_DRY_RUN=1``, which
    `labkit run --dry-run` sets): every training run stops after ``DRY_RUN["steps"]`` steps,
    the review splits are cut to ``DRY_RUN``'s rows, and claims and targets are
    recorded "dry run", never asserted. Its runs live in a cache folder of their own
    (``<cache>/dry-run``), never beside real ones."""
    if os.environ.get("LABKIT_DRY_RUN", "") != "1":
        return False
    if scale() != "gpu":
        raise ScaleError("LABKIT_DRY_RUN=1 runs the gpu configuration at tiny sizes: set LABKIT_SCALE=gpu too "
                         "(`labkit run --scale gpu --dry-run` sets both)")
    folder = Path(os.environ.get("LABKIT_CACHE", "")).expanduser().resolve()
    if folder.name != "dry-run" or not (folder / DRY_MARKER).is_file():
        raise ScaleError("LABKIT_DRY_RUN=1 keeps its runs in a cache of their own, or they would stand in for "
                         "real gpu runs: start it with `labkit run --scale gpu --dry-run`, which sets "
                         "LABKIT_CACHE to <cache>/dry-run")
    return True


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
    # offline there is nothing to download: no bars for loading or saving local files either
    # (labkit's own bars, on training and embedding, stay)
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")


def online() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0") != "1"


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


def matmul_gflops(n: int = 1024, repeats: int = 20) -> float:
    """Measured fp32 matrix-multiply throughput of this machine (GFLOP/s), best of
    ``repeats`` (a quarter of a second here; best of 5 read 135-200 on one idle machine, best of
    20 read 200 four times out of four): the yardstick for model FLOPs utilisation (lab 02) and
    for the normalised times of the course (`labkit.course.docs`)."""
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


def version(name: str) -> str:
    """The installed version of a distribution, or 'not installed'."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as _get
    try:
        return _get(name)
    except PackageNotFoundError:
        return "not installed"


def memory_limit_gb() -> float | None:
    """The cgroup memory limit in GB (Binder, Docker, `systemd-run -p MemoryMax=`), or None."""
    for f in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            raw = Path(f).read_text().strip()
        except OSError:
            continue
        if raw.isdigit() and int(raw) < (memory_gb() or 1e9) * 1e9:
            return int(raw) / 1e9
    return None


def machine() -> dict:
    """What a measurement was made on: CPU, cores (and the cores this process may use, e.g.
    under ``taskset``), RAM and any memory limit, Python, torch, transformers."""
    cpu = platform.processor() or platform.machine()
    try:
        names = [line.split(":", 1)[1].strip() for line in
                 Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"cpu": cpu, "cores": os.cpu_count(), "usable_cores": usable,
            "ram_gb": round(memory_gb() or 0, 1), "memory_limit_gb": memory_limit_gb(),
            "platform": f"{platform.system()} {platform.machine()}",
            "python": platform.python_version(), "torch": version("torch"),
            "transformers": version("transformers")}


# The package data: committed reference runs, studies, the claims registry, challenge sets.
REFERENCE = Path(__file__).resolve().parents[1] / "reference"


def reference(name: str) -> dict | None:
    """A committed reference report (``labkit/reference/<name>.json``), or None."""
    path = REFERENCE / f"{name}.json"
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except ValueError as e:
        raise ValueError(f"cannot read {path}: it is damaged ({e}). Fix: it is a committed file, restore it "
                         f"(git checkout -- {path.name} in labkit/reference/, or reinstall labkit)") from None


NORMAL_GFLOPS = 60  # times are stated as on a machine of this fp32 matmul speed


def normalised(row: dict, meta: dict, less_afresh: bool = False) -> float:
    """A row's wall seconds as on a `NORMAL_GFLOPS` machine: wall x the GFLOP/s measured with
    it (a row merged in later carries its own, else its report's) / `NORMAL_GFLOPS`.
    ``less_afresh``: without the seconds the lab measured afresh on purpose (`afresh`)."""
    gflops = (row.get("measured") or {}).get("matmul_gflops") or meta["matmul_gflops"]
    return (row["wall_s"] - (afresh(row) if less_afresh else 0.0)) * gflops / NORMAL_GFLOPS


def afresh(row: dict) -> float:
    """Wall seconds a report's row spent on measurements its lab takes again on every run on
    purpose (benchmarks and load tests: `labkit.core.measure.afresh`, recorded as ``afresh_s``)."""
    return float((row.get("results") or {}).get("afresh_s", 0.0))


def expected(scale_name: str, gflops: float = NORMAL_GFLOPS) -> dict:
    """{notebook stem: (minutes, peak MB)} measured in the reference report of a scale (the
    cold run for ``cpu``), the minutes as on a machine of ``gflops`` fp32 matmul GFLOP/s;
    notebooks without a measurement are left out."""
    ref = reference(scale_name) or {"notebooks": []}
    return {Path(r["notebook"]).stem: (round(normalised(r, ref["meta"]) * NORMAL_GFLOPS / gflops / 60, 1),
                                       r["peak_mb"]) for r in ref["notebooks"] if r.get("wall_s") is not None}


REFERENCE_RUNS = {"smoke": "smoke", "cpu, cold cache": "cpu", "cpu, second run": "cpu-warm",
                  "smoke, 1 core, 2 GB": "binder-smoke", "cpu, 1 core, 2 GB": "binder-cpu", "gpu": "gpu"}


def cost(lab: str, verbose: bool = True) -> dict:
    """What ``lab`` (a notebook name, e.g. '03_fine_tuning') took in the reference runs:
    {run: (seconds normalised to `NORMAL_GFLOPS`, peak MB) or None}. Every notebook prints this at its top
    (``verbose``); it returns the figures only when not printing them."""
    out, fresh = {}, {}
    for label, name in REFERENCE_RUNS.items():
        ref = reference(name)
        rows = [r for r in (ref or {}).get("notebooks", []) if Path(r["notebook"]).stem == lab]
        out[label] = (normalised(rows[0], ref["meta"]), rows[0]["peak_mb"]) if rows and rows[0]["wall_s"] else None
        if out[label] and afresh(rows[0]):  # its benchmarks and load tests
            fresh[label] = out[label][0] - normalised(rows[0], ref["meta"], less_afresh=True)
    if verbose:
        m = (reference("cpu") or {}).get("meta")
        where = f" on {m['cpu']}, {m['usable_cores']} cores ({m['date'][:10]})" if m else ""
        print(f"{lab}, measured with `labkit run`{where}, as on a machine of {NORMAL_GFLOPS} GFLOP/s fp32 matmul "
              "(`labkit doctor` measures yours; a faster one takes less in proportion):")
        for label, c in out.items():
            shown = "not measured" if c is None else (
                f"{c[0]:.0f} s" if c[0] < 90 else f"{c[0] / 60:.1f} min") + f", peak {c[1]:,} MB"
            if label in fresh and label == "cpu, second run":  # what a second run cannot read back
                shown += f" ({fresh[label]:.0f} s of it benchmarks and load tests, measured afresh)"
            print(f"  {label:<19} {shown}")
        return None
    return out


def doctor(verbose: bool = True) -> dict:
    """Check the environment and say what to expect. Returns the facts as a dict.

    Example: ``doctor()["scale"] -> 'cpu'`` on a laptop.
    """
    facts = {
        **machine(),
        "packages": {p: version(p) for p in ("labkit", "torch", "transformers", "datasets",
                                              "scikit-learn", "cleanlab")},
        "device": str(device()) if version("torch") != "not installed" else "no torch",
        "scale": scale(),
        "offline": not online(),
        "cache": str(cache.cache_dir()),
        "run_cache_mb": round(cache.size("runs") / 1e6, 1),
        "fetched": {name: fetch.is_fetched(name) for name in fetch.REGISTRY},
    }
    facts["matmul_gflops"] = round(matmul_gflops()) if facts["device"] != "no torch" else None
    facts["expected"] = expected(facts["scale"], facts["matmul_gflops"] or NORMAL_GFLOPS)
    facts["measured_scales"] = measured_scales()
    ref = reference(facts["scale"])
    if verbose:
        usable = "" if facts["usable_cores"] == facts["cores"] else f" ({facts['usable_cores']} usable)"
        limit = f" (limit {facts['memory_limit_gb']:.1f} GB)" if facts["memory_limit_gb"] else ""
        print(f"Python {facts['python']} on {facts['platform']}, {facts['cores']} cores{usable}, "
              f"{facts['ram_gb']} GB RAM{limit}, device {facts['device']}")
        print("  " + ", ".join(f"{k} {v}" for k, v in facts["packages"].items()))
        print(f"fp32 matmul: {facts['matmul_gflops']} GFLOP/s measured on {facts['device']}")
        print(f"scale: {facts['scale']} (set LABKIT_SCALE to one of {', '.join(SCALES)})")
        print(f"hub access: {'ON (opted in)' if online() else 'off (offline-first)'}")
        print(f"cache: {facts['cache']}")
        for name, ok in facts["fetched"].items():
            print(f"  {'ok     ' if ok else 'MISSING'} {name}")
        if not all(facts["fetched"].values()):
            print("  -> run `labkit fetch` (or `labkit.core.fetch.fetch()`) where there is a network")
        print(f"run cache: {facts['run_cache_mb']} MB of computed results in "
              f"{cache.cache_dir() / 'runs'} (delete that folder to clear it; "
              "`labkit run --fresh` ignores it)")
        if ref:
            m = ref["meta"]
            print(f"time per lab at scale {facts['scale']} on this machine, from `labkit run` on "
                  f"{m['usable_cores']} cores ({m['cpu']}), "
                  f"{'cold cache' if m['fresh'] or m['run_cache_mb_at_start'] == 0 else 'warm cache'}, "
                  f"scaled by this machine's {facts['matmul_gflops']} GFLOP/s:")
            for lab, (minutes, mb) in facts["expected"].items():
                print(f"  {lab:<18} ~{minutes:g} min, peak ~{mb:,} MB")
        else:
            print(f"time per lab at scale {facts['scale']}: not measured yet")
        never = [s for s in SCALES if s not in facts["measured_scales"]]
        print(f"scales the course has been measured at (labkit/reference/): {', '.join(facts['measured_scales'])}"
              + (f"; never run by us: {', '.join(never)} (its settings are tested for structure only: if "
                 "you run it, you are the first; please report what you see)" if never else ""))
    return facts


def measured_scales() -> list[str]:
    """The scales with a committed reference run (``labkit/reference/<scale>.json``)."""
    return [s for s in SCALES if (REFERENCE / f"{s}.json").exists()]


if sys.version_info < (3, 10):  # pragma: no cover
    raise RuntimeError("labkit needs Python 3.10 or newer")
