"""Tools: set up labkit in the current Python environment, choosing the right PyTorch build.

Run it as a script from the repository root, with the Python you will use (standard library
only, so it works before anything is installed):

    python scripts/install.py            # the course: labkit + JupyterLab + the runner
    python scripts/install.py --test     # the above plus pytest and nbval
    python scripts/install.py --gpu      # force the CUDA build of torch (default: auto-detect)

Why a script and not a plain `pip install .`: on Linux a bare `torch` requirement pulls a
multi-GB CUDA build even on a laptop with no GPU. Here torch is installed first:
- a GPU (``nvidia-smi`` answers), or macOS / Windows: ``torch==TORCH`` from the default index;
- Linux without a GPU: the CPU build ``torch==TORCH+cpu``, from pip's configured sources when
  they have it (a local wheelhouse in PIP_FIND_LINKS, a mirror), else from the PyTorch CPU index.
Then ``pip install -e .[course]`` (or ``[test]``) finds torch satisfied and leaves it alone.

It installs **from the lock**, ``binder/requirements.txt``: every package the two README
commands install, exact versions, for CPython 3.11 on Linux x86_64 with the CPU build of torch,
resolved by uv from ``pyproject.toml``'s ranges. The pins go to pip as constraints (torch apart:
it is installed above, CPU or GPU build), so a new user gets what CI tested, and an upstream
release changes nothing until someone upgrades the lock on purpose. Elsewhere (another Python,
macOS, Windows, ARM) there is no lock to apply: it says so and installs from the ranges.
Binder installs the same file; Colab's setup cell uses ``binder/colab-constraints.txt``, the lock
less what Colab's own runtime provides (``COLAB_KEEPS``).

    python scripts/install.py --check          # exit 1 unless this environment is the lock
    python scripts/install.py --upgrade-lock   # re-resolve the lock from the ranges (needs uv)

pip installs without compiling; the bytecode is compiled afterwards on every core
(`compile_bytecode`). Last, it writes ``labkit-install.json`` into the environment (how long the set-up took and
how big the environment is), which `labkit run` copies into each report's ``meta``.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TORCH = "2.13.0"  # moves only by editing it here, then --upgrade-lock
CPU_INDEX = "https://download.pytorch.org/whl/cpu"
ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "binder" / "requirements.txt"
COLAB_LOCK = ROOT / "binder" / "colab-constraints.txt"
LOCK_PYTHON, LOCK_MACHINE = (3, 11), "x86_64"  # the platform CI and Binder run on
UV_PLATFORM = "x86_64-manylinux_2_28"  # the oldest glibc the CPU torch wheel supports
UPGRADE = "python scripts/install.py --upgrade-lock"
# What Colab's runtime provides and its own `google-colab` package pins exactly, or other
# preinstalled packages are built against: locking them would fight the runtime (or, for
# torch, swap Colab's GPU build for a CPU one). Colab keeps its own; the rest is locked.
COLAB_KEEPS = ("torch", "torchvision", "torchaudio", "triton", "nvidia-*", "numpy", "pandas",
               "requests", "tornado", "ipykernel", "ipython", "notebook", "jupyter-client",
               "jupyter-core", "jupyter-server", "traitlets", "pyzmq")
# Installed but never locked: the environment's own installers, and labkit itself.
UNLOCKED = ("pip", "setuptools", "wheel", "labkit")
LOCK_HEADER = f"""\
# The lock: every package the README's two commands install (labkit with its course and test
# extras), exact versions, for CPython {LOCK_PYTHON[0]}.{LOCK_PYTHON[1]} on Linux {LOCK_MACHINE} \
with the CPU build of torch.
# scripts/install.py installs from it (as pip constraints, torch apart); Binder installs it as
# its requirements; Colab's setup cell uses {COLAB_LOCK.name}, this less what Colab keeps.
# Generated from pyproject.toml's ranges by `{UPGRADE}` (uv pip compile):
# do not edit by hand.
--extra-index-url {CPU_INDEX}
"""


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
    """``pip install --no-compile ARGS``: `compile_bytecode` does it afterwards, on every core."""
    cmd = [sys.executable, "-m", "pip", "install", "--no-compile", *args]
    print("+", " ".join(cmd), flush=True)
    rc = subprocess.call(cmd)
    if check and rc != 0:
        sys.exit(f"install.py: `{' '.join(cmd)}` failed (exit {rc}); see pip's message above.")
    return rc


def install_torch(gpu: bool, constraints: tuple = ()) -> bool:
    """Install torch unless the right version is there; True when it installed it.
    ``constraints`` (``("-c", lock file)``) pin what torch pulls in (sympy, networkx, ...)."""
    have = torch_installed()
    if have and have.split("+")[0] == TORCH:
        print(f"torch {have} already installed; keeping it.")
        return False
    if gpu or platform.system() != "Linux":
        pip(f"torch=={TORCH}", *constraints)
        return True
    # Linux, no GPU: the CPU build. First from the sources pip is configured with (a local
    # wheelhouse in PIP_FIND_LINKS, a mirror), else from the PyTorch CPU index.
    if pip(f"torch=={TORCH}+cpu", *constraints, check=False) != 0:
        print(f"no CPU build of torch {TORCH} in pip's configured sources; using {CPU_INDEX}")
        pip(f"torch=={TORCH}+cpu", *constraints, "--extra-index-url", CPU_INDEX)
    return True


def canonical(name: str) -> str:
    """A package name as pip compares them: ``Jinja2`` -> ``jinja2``, ``ml_dtypes`` -> ``ml-dtypes``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def read_lock(path: Path = LOCK) -> dict[str, str]:
    """{canonical name: version} from a lock file (see parse_lock)."""
    if not path.exists():
        sys.exit(f"install.py: no lock at {path}; `{UPGRADE}` writes it")
    return parse_lock(path.read_text(encoding="utf-8"), path.name)


def parse_lock(text: str, where: str = "the lock") -> dict[str, str]:
    """{canonical name: version} from a lock's text; a line that is neither a comment, a pip
    option nor ``name==version`` is refused, naming the line and the command that rewrites it.

    >>> parse_lock("--extra-index-url URL\\nJinja2==3.1.6  # via torch\\n")
    {'jinja2': '3.1.6'}
    """
    pins = {}
    for n, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        m = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;]+)", line)
        if not m:
            sys.exit(f"install.py: {where} line {n}: {line!r} is not an exact `name==version` pin; "
                     f"the lock is generated, do not edit it: `{UPGRADE}`")
        pins[canonical(m.group(1))] = m.group(2)
    return pins


def lock_applies(version: tuple = sys.version_info[:2], system: str = platform.system(),
                 machine: str = platform.machine()) -> str | None:
    """None where the lock was resolved for this interpreter and platform, else why not."""
    if (tuple(version), system, machine.lower()) == (LOCK_PYTHON, "Linux", LOCK_MACHINE):
        return None
    return (f"the lock is for CPython {LOCK_PYTHON[0]}.{LOCK_PYTHON[1]} on Linux {LOCK_MACHINE}; this is "
            f"Python {version[0]}.{version[1]} on {system} {machine}")


def kept(name: str, keeps: tuple) -> bool:
    """True when ``name`` matches one of ``keeps`` (``nvidia-*`` style prefixes allowed)."""
    return any(name == k or (k.endswith("*") and name.startswith(k[:-1])) for k in keeps)


def required_by(text: str) -> dict[str, set]:
    """{package: the packages that require it} from a lock's ``# via`` annotations (uv's)."""
    out = {}
    for line in text.splitlines():
        m = re.match(r"([A-Za-z0-9][A-Za-z0-9._-]*)==\S+\s+# via (.*)$", line)
        if m:
            out[canonical(m.group(1))] = {canonical(v.split()[0]) for v in m.group(2).split(",") if v.strip()}
    return out


def colab_left_out(lock: Path = LOCK) -> set:
    """What Colab's constraints leave out: ``COLAB_KEEPS``, and whatever only those require
    (torch's sympy and networkx: pinning them could contradict the torch Colab keeps)."""
    pins, via = read_lock(lock), required_by(lock.read_text(encoding="utf-8"))
    out, grew = {n for n in pins if kept(n, COLAB_KEEPS)}, True
    while grew:
        more = {n for n in pins if n not in out and via.get(n) and via[n] <= out}
        out, grew = out | more, bool(more)
    return out


def colab_constraints(lock: Path = LOCK) -> str:
    """The text of binder/colab-constraints.txt: the lock's pins less `colab_left_out`."""
    pins, left = read_lock(lock), colab_left_out(lock)
    head = (f"# Colab's constraints: {lock.name} (the lock) less what Colab's runtime keeps\n"
            f"# ({', '.join(COLAB_KEEPS)}) and what only those require. Generated with it by\n"
            f"# `{UPGRADE}`.\n")
    return head + "".join(f"{n}=={v}\n" for n, v in sorted(pins.items()) if n not in left)


def compile_bytecode() -> None:
    """Bytecode for every installed module, on every core. pip's own compile runs on one core
    (the ~20,000 modules of this environment: 96 s here, over half of the set-up), and it cannot
    be left to Python's first imports: where PYTHONDONTWRITEBYTECODE is set (as on this machine
    kind, and in many container images) nothing would ever be written, and every process would
    compile torch again (seen: the test command ran more than twice as long)."""
    import compileall
    import sysconfig

    start = time.perf_counter()
    # workers=0: one process a core; a file that is not valid Python 3 here is skipped, as pip skips it
    compileall.compile_dir(sysconfig.get_paths()["purelib"], quiet=2, workers=0)
    print(f"bytecode compiled ({time.perf_counter() - start:.0f} s)", flush=True)


def install(gpu: bool, extra: str) -> bool:
    """torch (install_torch), then ``pip install -e .[extra]``, both with the lock's pins as
    constraints where the lock applies (torch's own pin left out: install_torch chose its
    build), else from the ranges, saying so. True when torch was installed fresh."""
    why_not = lock_applies()
    with tempfile.TemporaryDirectory() as tmp:
        constraints = ()
        if why_not:
            print(f"install.py: {why_not}, so labkit installs from pyproject.toml's ranges "
                  "(an untested combination: versions newer than CI's may arrive).", flush=True)
        else:
            pins = {n: v for n, v in read_lock().items() if n != "torch"}
            (Path(tmp) / "constraints.txt").write_text("".join(f"{n}=={v}\n" for n, v in sorted(pins.items())))
            constraints = ("-c", str(Path(tmp) / "constraints.txt"))
            print(f"installing from the lock ({LOCK.relative_to(ROOT)}: {len(pins)} pinned packages)", flush=True)
        fresh = install_torch(gpu, constraints)
        pip(*constraints, "-e", f".[{extra}]")
    return fresh


def differences(frozen: str, pins: dict[str, str]) -> list[str]:
    """Where ``pip freeze`` output and the lock disagree: a package installed at another version
    than the lock's, or one the lock does not name. A locked package that is not installed is
    no difference (the course command alone leaves out the test extra's). Torch's build tag may
    differ (a GPU machine has torch without ``+cpu``), and then its CUDA packages are unlocked."""
    have = {}
    for line in frozen.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or line.startswith("-e "):
            continue
        m = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)(?:==(\S+)| @ (\S+))", line)
        if not m:
            raise ValueError(f"install.py: cannot read pip freeze's line {line!r}")
        have[canonical(m.group(1))] = m.group(2) or f"@ {m.group(3)}"
    gpu_torch = "torch" in have and not have["torch"].endswith("+cpu")
    out = []
    for name, want in sorted(pins.items()):
        got = have.get(name)
        if name == "torch" and got and got.split("+")[0] == want.split("+")[0]:
            continue
        if got is not None and got != want:
            out.append(f"{name}: the lock pins {want}, installed {got}")
    for name, got in sorted(have.items()):
        if name not in pins and name not in UNLOCKED and not (gpu_torch and kept(name, ("nvidia-*", "triton"))):
            out.append(f"{name} {got}: installed, not in the lock")
    return out


def check() -> list[str]:
    """The differences between this environment (``pip freeze``) and the lock (``--check``
    runs it where the lock applies; elsewhere there is nothing to compare)."""
    out = subprocess.run([sys.executable, "-m", "pip", "freeze", "--all"], capture_output=True,
                         text=True, check=True).stdout
    return differences(out, read_lock())


def resolve() -> str:
    """The lock as uv resolves it now from pyproject.toml's ranges (the text of the file)."""
    uv = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    if not uv:
        sys.exit("install.py: re-resolving the lock needs uv: `pip install uv` "
                 "(the course's environment has it: Flower depends on it)")
    sources = [d for d in os.environ.get("PIP_FIND_LINKS", "").split()
               if list(Path(d).glob(f"torch-{TORCH}+cpu-*.whl"))]
    if sources:  # a local wheelhouse with the CPU build (this kind of machine)
        where = [arg for d in sources for arg in ("--find-links", d)]
    else:  # the CPU build from the PyTorch index, everything else from the best index
        where = ["--extra-index-url", CPU_INDEX, "--index-strategy", "unsafe-best-match"]
    with tempfile.TemporaryDirectory() as tmp:
        torch_pin, out = Path(tmp) / "torch.txt", Path(tmp) / "lock.txt"
        torch_pin.write_text(f"torch=={TORCH}+cpu\n")
        # pyproject.toml relative (uv runs in the root), so the lock names no machine's path
        cmd = [uv, "pip", "compile", "pyproject.toml", "--extra", "course", "--extra", "test",
               "--python-version", f"{LOCK_PYTHON[0]}.{LOCK_PYTHON[1]}", "--python-platform", UV_PLATFORM,
               "-c", str(torch_pin), *where, "--no-header", "--annotation-style", "line",
               "--quiet", "-o", str(out)]
        print("+", " ".join(cmd), flush=True)
        if subprocess.call(cmd, cwd=ROOT) != 0:
            sys.exit("install.py: uv could not resolve pyproject.toml's ranges; see its message above")
        # uv's annotations name the temporary constraint file: name the pin instead
        return LOCK_HEADER + out.read_text(encoding="utf-8").replace(f"-c {torch_pin}", "install.py's torch pin")


def changes(old: dict[str, str], new: dict[str, str]) -> list[str]:
    """``name old -> new`` for every package whose pin differs, added or removed."""
    return [f"{n} {old.get(n, '(new)')} -> {new.get(n, '(removed)')}"
            for n in sorted(set(old) | set(new)) if old.get(n) != new.get(n)]


def write_whole(path: Path, text: str) -> None:
    """Write ``text`` to a temporary file beside ``path``, then move it in place: a reader
    sees the old file or the new one, never half of one, and no temporary file is left."""
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp", encoding="utf-8") as f:
        f.write(text)
    try:
        os.chmod(f.name, 0o644)  # NamedTemporaryFile makes it 0600
        os.replace(f.name, path)
    finally:
        if os.path.exists(f.name):
            os.unlink(f.name)


def upgrade_lock() -> None:
    """Re-resolve the lock from the ranges, write it and Colab's constraints, print the changes."""
    try:
        old = read_lock()
    except SystemExit as e:  # a hand-edited or conflicted lock is what this command repairs
        print(f"{e}\nreplacing it with a fresh resolution")
        old = {}
    text = resolve()
    new = parse_lock(text, "uv's resolution")
    for path, body in ((LOCK, text), (COLAB_LOCK, None)):
        write_whole(path, body if body is not None else colab_constraints(LOCK))
    moved = changes(old, new)
    print("\n".join(moved) or "the lock is unchanged: every locked package is the newest its range allows")
    print(f"binder/requirements.txt: {len(new)} packages ({len(moved)} changed). Next: run the tests "
          "with it (the README's test command), then commit it with binder/colab-constraints.txt.")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--test", action="store_true", help="also install pytest and nbval")
    group = ap.add_mutually_exclusive_group()
    group.add_argument("--gpu", action="store_true", help="install the CUDA build of torch")
    group.add_argument("--cpu", action="store_true", help="install the CPU build of torch")
    group.add_argument("--check", action="store_true", help="exit 1 unless this environment is the lock")
    group.add_argument("--upgrade-lock", action="store_true",
                       help="re-resolve the lock from pyproject.toml's ranges and print what changed")
    args = ap.parse_args(argv)
    if not Path("pyproject.toml").exists() or not Path("labkit").is_dir():
        sys.exit("install.py: run it from the repository root (where pyproject.toml is), e.g. "
                 "`python scripts/install.py`")
    if args.upgrade_lock:
        return upgrade_lock()
    if args.check:
        why_not = lock_applies()
        if why_not:
            print(f"install.py --check: {why_not}; installed from the ranges, nothing to compare")
            sys.exit(0)
        found = check()
        print("\n".join(found) or "this environment is the lock (binder/requirements.txt)",
              file=sys.stderr if found else sys.stdout)
        sys.exit(1 if found else 0)
    start = time.perf_counter()
    gpu = args.gpu or (not args.cpu and has_gpu())
    print(f"labkit install: {'GPU' if gpu else 'CPU'} build of torch {TORCH}", flush=True)
    fresh = install(gpu, "test" if args.test else "course")
    compile_bytecode()
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
