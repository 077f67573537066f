"""Core: a saved classifier outside torch, as one ONNX file beside its tokenizer.

`export_onnx` writes a `labkit.core.classifier.Classifier` (or a structurally pruned one) as
one self-contained ``.onnx`` file with torch's dynamo exporter (it needs ``onnxscript``):
inputs ``input_ids`` and ``attention_mask``, output ``logits``, the batch and sequence axes
left free. `cached_onnx` keeps that file in the run cache under the model's fingerprint, so
`labkit.core.classifier.save_classifier` (which puts it in every saved model's folder) and lab
08 (which quantizes it) export a model once. Reading it back needs only ONNX Runtime and the
tokenizer saved beside it: docs/models.md gives the call, and a test runs it.
Leaves out: graph optimisation passes beyond ONNX Runtime's defaults, GPU providers.
"""
from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path

import torch

from labkit.core import cache

ONNX = "model.onnx"  # the file's name in a saved model's folder and in the run cache


def export_onnx(model, tokenizer, path, max_len: int = 64) -> Path:
    """Write ``model`` (inputs ``input_ids`` and ``attention_mask``, output ``logits``) to
    ``path`` as one ONNX file, batch and sequence axes dynamic (``max_len`` only sizes the
    example the exporter traces). Atomic: a failed export leaves nothing behind. The model
    is exported in eval mode (no dropout) and given back in the mode it came in."""
    path = Path(path)
    training, device = model.training, next(model.parameters()).device
    model = model.to("cpu").eval()
    enc = tokenizer(["a first example review", "and a second, longer one to pad the batch"],
                    truncation=True, max_length=max_len, padding=True, return_tensors="pt")
    batch, seq = torch.export.Dim("batch", min=1, max=4096), torch.export.Dim("seq", min=1, max=512)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with warnings.catch_warnings(), quiet("torch.onnx", "onnxscript"):
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                model, (), kwargs={"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]},
                input_names=["input_ids", "attention_mask"], output_names=["logits"],
                dynamic_shapes={"input_ids": {0: batch, 1: seq}, "attention_mask": {0: batch, 1: seq}},
                dynamo=True, verbose=False)
            program.save(str(tmp), external_data=False)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
        model.to(device).train(training)
    return path


def cached_onnx(model, tokenizer, max_len: int = 64) -> Path:
    """`export_onnx` of ``model``, kept in the run cache under its weights' fingerprint (and
    its tokenizer's vocabulary): a model saved by one lab and quantized by another is
    exported once. ``max_len`` only sizes the traced example (the graph takes any length),
    so it is left out of the key."""
    return _export(model, tokenizer, max_len) / ONNX


@cache.keyed("onnx-export", exclude=("max_len",))
def _export(model, tokenizer, max_len, *, folder) -> Path:
    if not cache.is_done(folder):
        with cache.artifact(folder) as (tmp, _):
            export_onnx(model, tokenizer, tmp / ONNX, max_len)
    return folder


class quiet:
    """Silence the named loggers inside a block (the exporter's and quantizer's progress lines)."""

    def __init__(self, *names):
        self.loggers = [logging.getLogger(n) for n in names]

    def __enter__(self):
        self.levels = [lg.level for lg in self.loggers]
        for lg in self.loggers:
            lg.setLevel(logging.ERROR)

    def __exit__(self, *exc):
        for lg, level in zip(self.loggers, self.levels):
            lg.setLevel(level)
