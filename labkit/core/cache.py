"""Core: the cache folder and everything labkit writes to it, atomically.

Layout under `cache_dir()` (``LABKIT_CACHE``, else ``~/.cache/labkit``):

    archives/  verified downloads                           (labkit.core.fetch)
    data/      data and weights extracted from them         (labkit.core.fetch)
    models/    what a lab hands on to later labs: lab 02's checkpoint, lab 03's best models,
               lab 05's student (`model_dir`)
    results/   each lab's latest `labkit.record`s, per scale (`results_path`)
    runs/      computed results, each in a folder named by a hash of everything that changes
               it (`key`): training runs, embeddings, teacher logits (`run_dir`, `arrays`)

``runs/`` is a pure cache: deleting it costs only time. ``labkit run --fresh`` sets
``LABKIT_FRESH`` to the time the run starts, and entries older than that are ignored and
recomputed, so a lab can be timed cold without losing the fetched data or earlier labs'
models. Every write goes to a temporary name first and is renamed into place: nothing
half-written is ever read back.
Leaves out: what goes into each folder (the modules that write them) and eviction.
"""
from __future__ import annotations

import contextlib
import dataclasses
import errno
import hashlib
import json
import os
import shutil
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

DONE = "done.json"  # written last into a run folder: its presence means the run is complete


def cache_dir() -> Path:
    """``LABKIT_CACHE``, else ``$XDG_CACHE_HOME/labkit``, else ``~/.cache/labkit``."""
    if os.environ.get("LABKIT_CACHE"):
        return Path(os.environ["LABKIT_CACHE"]).expanduser().resolve()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser().resolve() / "labkit"


def model_dir(name: str) -> Path:
    """``<cache>/models/<name>``: a model a lab saves for later labs (never ignored by --fresh)."""
    return cache_dir() / "models" / name


def run_dir(name: str, run_key: str) -> Path:
    """``<cache>/runs/<name>-<run_key>``: the folder of one cached computation."""
    return cache_dir() / "runs" / f"{name}-{run_key}"


# ---------------------------------------------------------------- atomic writes

@contextmanager
def atomic_folder(final: Path, keep_failed: bool = False):
    """Yield a temporary folder beside ``final``; when the block succeeds it takes the place of
    ``final`` by renames (an older one moved away first), when it fails it is deleted (with ``keep_failed``, renamed to
    ``<final>.failed`` for its logs: never read back as a result). Nothing half-written is
    left under ``final``."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    try:
        yield tmp
        # An older ``final`` (a fresh run's redo, or the same entry made meanwhile by another
        # process: the test command runs the notebooks beside the unit tests) is renamed away
        # before ours takes its place, then deleted. Two processes finishing one entry together
        # both succeed, and the last one's folder stays; a reader may find it missing for a moment.
        away = Path(tempfile.mkdtemp(prefix=f".{final.name}.old.", dir=final.parent))
        try:
            for attempt in range(10):
                with contextlib.suppress(FileNotFoundError):  # another process moved it first
                    os.replace(final, away / str(attempt))
                try:
                    os.replace(tmp, final)
                    break
                except OSError as e:  # another process put its own in place meanwhile: again
                    if e.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                        raise
            else:
                raise OSError(f"{final}: other processes kept writing it; run again")
        finally:
            shutil.rmtree(away, ignore_errors=True)
    except BaseException:
        if keep_failed and tmp.exists():
            failed = final.with_name(final.name + ".failed")
            shutil.rmtree(failed, ignore_errors=True)
            os.replace(tmp, failed)
        raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def write_text(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file and one rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_json(path: Path, value) -> Path:
    return write_text(path, json.dumps(value, indent=1, default=_plain))


# ---------------------------------------------------------------- keys and fingerprints

def _plain(value):
    """JSON for what json cannot write itself: numpy arrays and numbers, paths, dataclasses."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if hasattr(value, "dtype") and hasattr(value, "tobytes"):  # a numpy array or number
        if getattr(value, "ndim", 0) == 0:
            return value.item()
        if value.dtype == object:  # its bytes are pointers: key the items themselves
            return value.tolist()
        return {"dtype": str(value.dtype), "shape": list(value.shape),
                "sha256": hashlib.sha256(value.tobytes()).hexdigest()}
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot key a {type(value).__name__}: pass numbers, strings, lists, dicts "
                    "or numpy arrays (describe a function by its settings, e.g. loss_fn.spec)")


def key(**parts) -> str:
    """A 16-hex-digit hash of everything that changes a result (settings, data, weights).

    Example: ``key(lr=1e-3, texts=["a", "b"])`` -> '3f0c...' (same inputs, same key).
    """
    blob = json.dumps(parts, sort_keys=True, default=_plain).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def fingerprint(model_or_state) -> str:
    """sha256 of a torch model's (or state dict's) tensors: names, dtypes, shapes and every
    byte. Two models share a fingerprint only when all their weights are identical."""
    import torch
    state = model_or_state.state_dict() if hasattr(model_or_state, "state_dict") else model_or_state
    h = hashlib.sha256()
    for name in sorted(state):
        t = state[name].detach().to("cpu").contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


# ---------------------------------------------------------------- cached runs

def fresh_since() -> float | None:
    """The time (Unix seconds) from which cached runs count, from ``LABKIT_FRESH``."""
    value = os.environ.get("LABKIT_FRESH", "").strip()
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        raise ValueError(f"LABKIT_FRESH={value!r} must be a Unix time in seconds (what "
                         "`labkit run --fresh` sets), or unset") from None


def fresh_keep() -> tuple:
    """Kinds of run (folder names before the key, e.g. 'minilm-embeddings') that
    ``LABKIT_FRESH`` does not ignore, from ``LABKIT_FRESH_KEEP`` (comma-separated): what
    `labkit run --fresh --keep` measures a lab with, cold but for what earlier labs leave."""
    return tuple(k.strip() for k in os.environ.get("LABKIT_FRESH_KEEP", "").split(",") if k.strip())


def is_done(folder: Path) -> bool:
    """True when ``folder`` holds a complete run made after `fresh_since` (if set), or of a
    kind in `fresh_keep`."""
    try:
        done = json.loads((Path(folder) / DONE).read_text())
    except (OSError, ValueError):
        return False
    since = fresh_since()
    return (since is None or done.get("created", 0) >= since
            or Path(folder).name.rsplit("-", 1)[0] in fresh_keep())


def mark_done(folder: Path, info: dict | None = None) -> None:
    """Write the run's ``done.json`` (its info and creation time); call it last."""
    write_json(Path(folder) / DONE, {"created": time.time(), "info": info or {}})


def done_info(folder: Path) -> dict:
    return read_json(Path(folder) / DONE)["info"]


def save_arrays(path: Path, arrays_: dict) -> Path:
    """Write {name: numpy array} to ``path`` as safetensors, atomically."""
    import numpy as np
    from safetensors.numpy import save_file
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        save_file({k: np.ascontiguousarray(v) for k, v in arrays_.items()}, str(tmp))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


class DamagedFile(ValueError):
    """A file labkit wrote that cannot be read back (truncated, edited, damaged on disk); the
    message names the file and what rebuilds it."""


def rebuild_hint(path: Path) -> str:
    """What rebuilds ``path``: for a run-cache entry, deleting its run folder (the next call
    computes it again); else running again what wrote it."""
    path = Path(path).resolve()
    runs = (cache_dir() / "runs").resolve()
    if runs in path.parents:
        folder = runs / path.relative_to(runs).parts[0]
        return f"delete its run folder (rm -r {folder}); the next call that needs it computes it again"
    return "delete it and run again the lab or command that wrote it"


def read_json(path: Path, fix: str | None = None):
    """The JSON in ``path``; a truncated or damaged file is a `DamagedFile` naming it and
    ``fix`` (default: `rebuild_hint`)."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise DamagedFile(f"cannot read {path}: it is damaged or truncated ({type(e).__name__}: {str(e)[:120]}). "
                          f"Fix: {fix or rebuild_hint(path)}") from None


def read_arrays(path: Path) -> dict:
    """{name: numpy array} saved by `save_arrays`; a damaged file is a `DamagedFile`."""
    from safetensors.numpy import load_file
    try:
        return load_file(str(path))
    except Exception as e:  # safetensors raises its own SafetensorError (and OSError, ValueError)
        if isinstance(e, FileNotFoundError):
            raise
        raise DamagedFile(f"cannot read {path}: it is damaged or truncated ({type(e).__name__}: {str(e)[:120]}). "
                          f"Fix: {rebuild_hint(path)}") from None


def arrays(name: str, run_key: str, compute) -> dict:
    """``compute() -> {name: numpy array}``, or the arrays saved by an earlier call with
    the same ``name`` and ``run_key`` (safetensors in `run_dir`)."""
    folder = run_dir(name, run_key)
    if is_done(folder):
        return read_arrays(folder / "arrays.safetensors")
    out = compute()
    with atomic_folder(folder) as tmp:
        save_arrays(tmp / "arrays.safetensors", out)
        mark_done(tmp)
    return out


# ---------------------------------------------------------------- cached functions

# One version per kind of cached result: raise it when a function's result changes for the
# same arguments (a new recipe, a fixed bug), and every old entry of that kind is recomputed.
VERSIONS = {"tfidf": 1, "minilm-embeddings": 1, "review-splits": 1, "label-issues": 1, "teacher-logits": 1,
            "variant-logits": 1, "fedavg": 1, "centralised": 1, "dp-head": 1, "dp-bert": 1, "wordpiece": 1,
            "pretrain": 1, "adapt-minilm": 1, "fine-tune": 1, "attack": 1, "onnx": 1, "onnx-export": 1, "recovered": 1,
            "structured": 1, "flower": 1, "run-logits": 1, "features": 1, "augment": 1,
            "noise-multiplier": 1}


def keyable(value, name: str = "value"):
    """What stands for ``value`` in a key: a torch model's `fingerprint`, a tokenizer's
    vocabulary, a function's ``.spec`` (its name and settings), a dataclass's fields; plain
    values, lists, dicts and numpy arrays as they are. Anything else is refused (TypeError
    naming the argument): a key that silently ignored it could read back a wrong result."""
    if hasattr(value, "state_dict") and hasattr(value, "parameters"):
        return {"weights": fingerprint(value)}
    if hasattr(value, "get_vocab") and hasattr(value, "convert_tokens_to_ids"):
        return {"vocab": value.get_vocab()}
    if callable(value) and not isinstance(value, type):
        if not hasattr(value, "spec"):
            raise TypeError(f"cannot key {name}={value!r}: a function needs a .spec dict naming it and "
                            "its settings (as loss_fn.spec), or leave the argument out of the key (exclude=)")
        return {"spec": value.spec}
    if isinstance(value, (list, tuple)):
        return [keyable(v, name) for v in value]
    if isinstance(value, dict):
        return {str(k): keyable(v, name) for k, v in value.items()}
    try:
        json.dumps(value, default=_plain)
    except TypeError as e:
        raise TypeError(f"cannot key {name}: {e}") from None
    return value


def keyed(kind: str, *, exclude=(), depends=None, kind_arg: str | None = None, arrays_only: bool = False):
    """Decorator: the function's run folder, from a key made of every bound argument
    (defaults included, through `keyable`), the kind's `VERSIONS` entry and ``depends()``
    (inputs that are not arguments, such as a fetched archive's hash or a module's recipe).
    The function gets it as its keyword argument ``folder`` (``runs/<kind>-<key>``) and reads
    or writes its result there (`artifact`). ``exclude`` names the arguments that cannot
    change the result (``progress``); ``kind_arg`` an argument that names the kind instead (it
    chooses the folder, not the result). ``fn.key(*args, **kwargs)`` gives the key alone.
    """
    import functools
    import inspect

    def wrap(fn):
        sig = inspect.signature(fn)
        params = [p for p in sig.parameters if p != "folder"]
        if not arrays_only and "folder" not in sig.parameters:
            raise TypeError(f"{fn.__qualname__} must take a keyword argument `folder` (its run folder)")
        outer = sig.replace(parameters=[p for n, p in sig.parameters.items() if n != "folder"])
        skip = set(exclude) | ({kind_arg} if kind_arg else set())
        unknown = skip - set(params)
        if unknown:
            raise TypeError(f"{fn.__qualname__} has no argument {sorted(unknown)} to exclude from its key")

        def where(*args, **kwargs) -> tuple[str, str]:
            bound = outer.bind(*args, **kwargs)
            bound.apply_defaults()
            name = bound.arguments[kind_arg] if kind_arg else kind
            parts = {k: keyable(v, k) for k, v in bound.arguments.items() if k not in skip}
            parts["_version"] = VERSIONS.get(name, VERSIONS.get(kind, 1))  # a named kind, else the declared one
            if depends:
                parts["_depends"] = depends()
            return name, key(**parts)

        if arrays_only:
            @functools.wraps(fn)
            def run(*args, **kwargs):
                return arrays(*where(*args, **kwargs), lambda: fn(*args, **kwargs))
        else:
            @functools.wraps(fn)
            def run(*args, **kwargs):
                return fn(*args, **kwargs, folder=run_dir(*where(*args, **kwargs)))

        run.key = lambda *args, **kwargs: where(*args, **kwargs)[1]
        run.keyed = [k for k in params if k not in skip]
        run.kind = kind
        CACHED[f"{fn.__module__}.{fn.__qualname__}"] = run
        return run
    return wrap


def cached(kind: str, *, exclude=(), depends=None, kind_arg: str | None = None):
    """Decorator: ``fn(...) -> {name: numpy array}`` computed once per key (as `keyed`
    makes it), kept in the run cache as safetensors and read back after."""
    return keyed(kind, exclude=exclude, depends=depends, kind_arg=kind_arg, arrays_only=True)


@contextmanager
def artifact(folder: Path, keep_failed: bool = False):
    """The one way a keyed function writes its run folder: yield (a temporary folder, a dict
    of info); when the block succeeds, the info is written as ``done.json`` and the folder
    renamed into place; when it fails nothing is left (``keep_failed``: see `atomic_folder`).
    `is_done` tells whether to read back."""
    with atomic_folder(folder, keep_failed) as tmp:
        info: dict = {}
        yield tmp, info
        mark_done(tmp, info)


CACHED: dict = {}  # every function `cached` wraps, by its module and name (the key tests read it)


def current_lab() -> str | None:
    """The lab running now ('05_distillation'): ``LABKIT_LAB`` (set by `labkit run`), else the
    notebook Jupyter names in ``JPY_SESSION_NAME``; None outside a lab."""
    name = os.environ.get("LABKIT_LAB") or Path(os.environ.get("JPY_SESSION_NAME", "")).stem
    return name if len(name) > 3 and name[:2].isdigit() and name[2] == "_" else None


def results_path(lab: str, scale_name: str) -> Path:
    """``<cache>/results/<scale>/<lab>.json``: the lab's latest recorded results (lab 09's card)."""
    return cache_dir() / "results" / scale_name / f"{lab}.json"


def size(sub: str = "") -> int:
    """Bytes under ``<cache>/<sub>`` (0 when it does not exist). Another process may finish a
    run meanwhile (its temporary folder renamed away under the walk): what vanishes is skipped."""
    total = 0
    for folder, _, files in os.walk(cache_dir() / sub):  # os.walk ignores a folder gone before it is listed
        for name in files:
            try:
                total += os.stat(os.path.join(folder, name)).st_size
            except FileNotFoundError:
                pass
    return total
