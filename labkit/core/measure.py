"""Core: what a model costs. Its number of weights, its size on disk, and its speed on real
reviews, measured the same way for a torch model, a quantized one or an ONNX Runtime session.

`benchmark` times any ``predict_fn(texts)`` (`labkit.core.classifier.predictor` makes one for a
torch classifier; lab 08 passes ONNX Runtime sessions the same way): the median of repeated
warm runs, at the batch size asked for, with the thread count stated; `interleaved` times
several in turn, so that what they are compared under is the same.
`tree_memory` and `PeakSampler` measure the memory of a notebook's whole process tree for
`labkit.course.report` (and cap it, as a Binder container would). `afresh` marks the time a
lab spends on measurements it takes again on every run on purpose (these timings, lab 09's load
tests), so that a second run's budget counts the rest and reports these on their own.
Leaves out: GPU timing (CUDA synchronisation) and per-tensor memory profiling.
"""
from __future__ import annotations

import os
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from labkit.core.text import check_texts


def parameters(model) -> int:
    """Number of weights (trainable or not). Example: lab 05's student -> ~1.4 M."""
    return sum(p.numel() for p in model.parameters())


def disk_size(model_or_path, tokenizer=None) -> int:
    """Bytes of weights on disk: the weight files (safetensors, ONNX) under a path, or of a
    `labkit.core.classifier.Classifier` saved with its tokenizer by `save_classifier`."""
    if isinstance(model_or_path, (str, Path)):
        path = Path(model_or_path)
        if not path.exists():
            raise FileNotFoundError(f"no file or folder {path} to measure")
        files = [path] if path.is_file() else [f for f in path.rglob("*") if f.is_file()]
        return sum(f.stat().st_size for f in files if f.suffix in (".safetensors", ".onnx", ".bin", ".pt"))
    if tokenizer is None:
        raise TypeError("disk_size(model, tokenizer): a model is measured by saving it, which "
                        "needs its tokenizer; or pass the path of a saved model")
    from labkit.core.classifier import save_classifier
    with tempfile.TemporaryDirectory() as tmp:
        return disk_size(save_classifier(model_or_path, tokenizer, Path(tmp) / "m", onnx=False))


def threads() -> int:
    """Threads torch uses for one operation on the CPU (what `benchmark` reports)."""
    import torch
    return torch.get_num_threads()


_AFRESH = {"seconds": 0.0, "depth": 0, "since": 0.0}
_AFRESH_LOCK = threading.Lock()


@contextmanager
def afresh():
    """Count the time inside as measured afresh on purpose: a benchmark or a load test that a
    second run must take again (a cached speed is no measurement of this machine now). The
    kernel's total is recorded as ``afresh_s`` (`labkit.core.results.record`), which the report
    subtracts from a second run's budget and shows on its own. Blocks that overlap (nested, or
    in two threads) count their span once; a block that raises is counted, and its own error
    is what the caller sees (the total is recorded at the next block that ends well)."""
    with _AFRESH_LOCK:
        if _AFRESH["depth"] == 0:
            _AFRESH["since"] = time.perf_counter()
        _AFRESH["depth"] += 1
    try:
        yield
    finally:
        with _AFRESH_LOCK:
            _AFRESH["depth"] -= 1
            last = _AFRESH["depth"] == 0
            if last:
                _AFRESH["seconds"] += time.perf_counter() - _AFRESH["since"]
    if last:  # not reached when the block raised
        from labkit.core.results import record
        record("afresh_s", round(_AFRESH["seconds"], 1))


def benchmark(predict_fn, texts, batch_size: int, repeats: int = 20, warmup: int = 2) -> dict:
    """Speed of ``predict_fn`` on real ``texts``: the median seconds for one call on a batch
    of ``batch_size`` texts, over ``repeats`` timed calls after ``warmup`` untimed ones, and
    the texts per second that makes. Batches cycle through ``texts``.

    ``spread``: the interquartile range of the calls' times over their median (timer noise).
    Example: ``benchmark(classifier.predictor(model, tok), reviews, 32)`` ->
    {'batch_size': 32, 'seconds': 0.35, 'per_second': 91.4, 'threads': 2, 'repeats': 20, 'spread': 0.04}.
    """
    return interleaved({"model": predict_fn}, texts, batch_size, repeats, warmup)["model"]


def interleaved(predict_fns: dict, texts, batch_size: int, repeats: int = 20, warmup: int = 2) -> dict:
    """`benchmark` for several functions at once, timed in turn: each round calls every
    function once on the same batch (in reverse order on odd rounds), so a machine that slows
    down or speeds up mid-measurement (another process, a CPU's clock) touches all of them
    alike and their ratio stays fair. Returns {name: what `benchmark` returns}; compare two
    names' speeds only beyond their ``spread``."""
    texts = check_texts(texts, "no texts to time the model on")
    bad = [n for n, f in predict_fns.items() if not callable(f)]
    if bad or not predict_fns:
        raise TypeError(f"predict_fn must be a function texts -> predictions ({bad or 'none given'}); "
                        "e.g. labkit.core.classifier.predictor(model, tok)")
    if repeats < 1 or batch_size < 1 or warmup < 0:
        raise ValueError(f"repeats={repeats}, batch_size={batch_size}, warmup={warmup}: repeats "
                         "and batch_size must be >= 1, warmup >= 0")
    times = {name: [] for name in predict_fns}
    with afresh():
        for r in range(repeats + warmup):
            batch = [texts[(r * batch_size + i) % len(texts)] for i in range(batch_size)]
            for name in (list(predict_fns) if r % 2 == 0 else list(predict_fns)[::-1]):
                t0 = time.perf_counter()
                predict_fns[name](batch)
                if r >= warmup:
                    times[name].append(time.perf_counter() - t0)
    out = {}
    for name, ts in times.items():
        median = float(np.median(ts))
        q1, q3 = np.percentile(ts, [25, 75])
        out[name] = {"batch_size": batch_size, "seconds": median, "per_second": batch_size / median,
                     "threads": threads(), "repeats": repeats, "spread": float((q3 - q1) / median)}
    return out


def tree_memory(pid: int) -> int:
    """Bytes of memory used by the process ``pid``'s children and all their descendants: the
    sum of each one's PSS (proportional set size: a page shared by n processes counts 1/n
    in each, so a library that a federation's ten processes share counts once, as in the
    memory limit of a Binder container), or of its RSS where PSS cannot be read."""
    import psutil
    total = 0
    try:
        kids = psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return 0
    for p in kids:
        try:
            info = p.memory_full_info() if hasattr(psutil.Process, "memory_full_info") else p.memory_info()
            total += getattr(info, "pss", info.rss)
        except psutil.AccessDenied:
            try:
                total += p.memory_info().rss
            except psutil.Error:
                pass
        except psutil.Error:  # it ended while we looked
            pass
    return total


class PeakSampler(threading.Thread):
    """Samples the memory of this process's descendants (the kernel, and any server or
    federation it starts) every ``every`` seconds; ``peak`` is the largest sum seen. With
    ``cap_mb``, it kills them all once the sum passes the cap and sets ``over``.

    A sample is not free: to give a PSS the kernel walks every page table of the process
    (about 30 ms for a 1.8 GB notebook kernel). Sampled every 0.1 s, that took a fifth of a
    core, which on Binder's one core was time taken from the notebook, more as the kernel
    grew. So the wait after each sample is stretched until sampling uses at most ``share``
    of a core (2%), but never beyond ``longest`` seconds (then up to 6% of a core for that
    kernel): a federation's processes, which together cost more to read, still get a sample
    every half second. A memory peak shorter than the wait can be missed, and a capped run
    is stopped that much later. ``trace`` keeps every sample as (``time.time()``, bytes), so
    a caller can say during which step the peak came (`labkit.course.report.cell_peaks`)."""

    def __init__(self, every: float = 0.1, cap_mb: int | None = None, share: float = 0.02,
                 longest: float = 0.5):
        super().__init__(daemon=True)
        if not 0 < share < 1:
            raise ValueError(f"share={share}: the share of a core sampling may use is in (0, 1), e.g. 0.02")
        self.every, self.share, self.longest = every, share, max(every, longest)
        self.peak, self._stop_flag = 0, threading.Event()
        self.cap, self.over, self.samples = (cap_mb or 0) * 2**20, False, 0
        self.trace: list[tuple[float, int]] = []

    def run(self):
        while not self._stop_flag.is_set():
            t0 = time.perf_counter()
            now = tree_memory(os.getpid())
            self.trace.append((time.time(), now))
            self.peak = max(self.peak, now)
            self.samples += 1
            if self.cap and self.peak > self.cap and not self.over:  # as a container's limit would
                self.over = True
                _kill_children()
            cost = time.perf_counter() - t0
            self._stop_flag.wait(min(self.longest, max(self.every, cost * (1 - self.share) / self.share)))

    def stop(self) -> int:
        self._stop_flag.set()
        self.join()
        return self.peak


def _kill_children() -> None:
    import psutil
    for p in psutil.Process(os.getpid()).children(recursive=True):
        try:
            p.kill()
        except psutil.Error:
            pass
