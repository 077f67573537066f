"""Lab 08: a classifier outside torch. Quantize its ONNX file with ONNX Runtime, and serve
predictions from an ONNX Runtime session.

The export itself is the core's (`labkit.core.export.export_onnx`: every saved model carries
its ONNX file). `onnx_int8` quantizes a file with ONNX Runtime's own dynamic quantization
(int8 weights per channel); `session` opens a file on the CPU with a stated number of threads,
and a missing or damaged file gets an error that says what to do; `cached_export` keeps the
fp32 and int8 files in the run cache; `onnx_predictor` makes the same ``texts -> logits``
function as `labkit.core.classifier.predictor`, so `labkit.core.measure.benchmark` times both
the same way.
Leaves out: graph optimisation passes beyond ONNX Runtime's defaults, GPU providers, static
(calibrated) quantization.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from labkit.core import cache, measure
from labkit.core.export import cached_onnx, quiet


def onnx_int8(source, path) -> Path:
    """ONNX Runtime's dynamic quantization of the ONNX file ``source`` into ``path``: the
    weights of every matrix product by a constant in 8 bits, one scale per channel,
    activations quantized on the fly; the embeddings and the products of two activations
    (attention) stay in float32, as with `labkit.labs.compress.quantize_int8`. Weights are
    unsigned (u8 x u8): with signed weights the AVX2 kernel's 16-bit sums of u8 x s8
    products saturate on CPUs without VNNI (a tiny model's logits: off by 0.14 with s8, 0.006
    with u8; lab 03's MiniLM agreed with fp32 on 97.8% of validation reviews with 7-bit s8
    weights, 98.3% with u8)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic
    source, path = Path(source), Path(path)
    session(source, 1)  # a clear error now for a missing or damaged source
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with quiet("root"):
            quantize_dynamic(str(source), str(tmp), weight_type=QuantType.QUInt8, per_channel=True,
                             op_types_to_quantize=["MatMul"],
                             extra_options={"MatMulConstBOnly": True})
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def session(path, threads: int | None = None):
    """An ONNX Runtime CPU session on ``path`` using ``threads`` threads (default: as many as
    torch uses, so the two are compared fairly)."""
    import onnxruntime as ort
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no ONNX file {path}: export one with "
                                "labkit.core.export.export_onnx(model, tokenizer, path)")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or measure.threads()
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as e:  # ONNX Runtime raises its own Fail/InvalidProtobuf/... types
        raise ValueError(f"{path} is not a readable ONNX model ({type(e).__name__}: "
                         f"{str(e)[:200]}); delete it and export again with "
                         "labkit.core.export.export_onnx") from None


def onnx_predictor(sess, tokenizer, max_len: int = 64):
    """``texts -> logits`` through the ONNX Runtime session ``sess``, tokenizing included:
    what `labkit.core.measure.benchmark` times (like `labkit.core.classifier.predictor`)."""
    def predict_fn(texts):
        enc = tokenizer(list(texts), truncation=True, max_length=max_len, padding=True, return_tensors="np")
        return sess.run(["logits"], {"input_ids": enc["input_ids"].astype(np.int64),
                                     "attention_mask": enc["attention_mask"].astype(np.int64)})[0]
    return predict_fn


def onnx_key(path) -> dict:
    """What an ONNX Runtime session on the file ``path`` computes with, for
    `labkit.labs.compress.cached_scores`: the file's sha256, the ONNX Runtime version and this
    CPU's int8 instructions (its int8 kernels depend on them)."""
    import onnxruntime as ort

    from labkit.core.fetch import sha256_of
    from labkit.labs.compress import cpu_int8_dot
    return {"onnx": sha256_of(Path(path)), "onnxruntime": ort.__version__, "cpu_int8_dot": cpu_int8_dot()}


def cached_export(model, tokenizer, max_len: int = 64) -> tuple[Path, Path]:
    """(fp32 file, int8 file): `labkit.core.export.cached_onnx` and `onnx_int8` of ``model``, kept in the run
    cache under a hash of its weights, so a second run opens them at once."""
    fp32 = cached_onnx(model, tokenizer, max_len)
    return fp32, _int8(fp32) / "model-int8.onnx"


@cache.keyed("onnx")
def _int8(fp32: Path, *, folder) -> Path:
    if not cache.is_done(folder):
        with cache.artifact(folder) as (tmp, _):
            onnx_int8(fp32, tmp / "model-int8.onnx")
    return folder
