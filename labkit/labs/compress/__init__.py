"""Lab 08: compression. Make lab 03's MiniLM (the teacher) and lab 05's student cheaper to
serve, and measure what each variant costs and keeps.

- **Pruning.** `magnitude_prune` zeroes the smallest weights of the encoder's Linear layers,
  ranked globally (the classifier head and the embeddings are kept). `recover` fine-tunes a
  pruned model through the one loop with its zeros held fixed (`recovered`: on a copy,
  cached). `importance` scores every attention head and FFN neuron by the gradient of the
  loss with respect to a gate on it (Michel et al. 2019); `shrink` physically removes the
  least important ones, so the matrices are smaller and the model is faster;
  `structured_run` does both and a short recovery fine-tune by distillation from the
  unpruned model, cached.
- **Quantization.** `quantize_int8`: dynamic int8 of every Linear (torch's x86 kernels,
  weights per channel or per tensor); `predicted_int8_bytes` predicts its size from the
  parameter counts and `save_int8` writes it as safetensors (int8 weights and their scales).
- **ONNX Runtime.** `runtime.cached_export`: the ONNX file every saved model carries
  (`labkit.core.export`) and its `onnx_int8` (ONNX Runtime's own dynamic quantization);
  `session` and `onnx_predictor`, so an ONNX model is timed by `labkit.core.measure.benchmark` like a torch one.
- **The comparison.** `variant` measures one model the same way as every other (accuracy,
  weights, size on disk, latency at batch 1, throughput at batch 32, threads), its accuracy
  from scores a second run reads back (`cached_scores`, keyed for a quantized model by
  `int8_key` or `runtime.onnx_key`) and its timings always afresh; `pareto` finds the
  variants no other beats on both accuracy and speed; `gemm_speedup` shows why int8 does or
  does not pay on this CPU.
Leaves out: movement pruning (it needs a full fine-tune), static quantization, sparse kernels.
"""
from __future__ import annotations

import copy
import warnings
import zlib
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from torch.ao import quantization as q
from torch.ao.nn.quantized.dynamic import Linear as Int8Linear
from torch.nn.utils import prune

from labkit.core import cache, checks, measure
from labkit.core.classifier import check_inputs, fine_tune, loader, num_labels
from labkit.core.config import ScaledConfig
from labkit.core.env import seed_everything
from labkit.core.kd import kd_loss_fn
from labkit.core.train import RECIPE


@dataclass
class CompressConfig(ScaledConfig):
    """Settings of lab 08. ``CompressConfig.for_scale()`` picks them for LABKIT_SCALE."""
    test_size: int | None = None       # test reviews every variant is scored on (None: all)
    val_size: int | None = None        # validation reviews for the choices (None: all)
    sparsities: tuple = (0.3, 0.5, 0.7, 0.9)
    recovery_steps: tuple = (30, 100)  # student recovery lengths compared on validation
    recovery_lr: float = 1e-3          # the student's (lab 05's) learning rate
    heads_keep: int = 6                # attention heads kept per layer (of 12) and FFN neurons
    ffn_keep: int = 768                # (of 1536): chosen on validation by `labkit study lab08`
    study_structures: tuple = ((8, 1024), (6, 768), (6, 512), (4, 512), (4, 384))
    importance_reviews: int = 256      # training reviews that score heads and neurons
    structured_steps: int = 150        # recovery steps of the structurally pruned teacher
    structured_lr: float = 1e-4
    batch_size: int = 32
    max_len: int = 64
    repeats: int = 5                   # timed calls at batch 32 (and 4x as many at batch 1), and at least
    timing_seconds: float = 1.0        # this long at each batch size (smoke: CI checks the code, not the speed)
    live_seed: int = 5                 # the lab's structured recovery: a seed the lab08 study (0-4) never drew
    seed: int = 0

    SCALES: ClassVar[dict] = {  # what differs from the cpu defaults above
        "smoke": dict(test_size=100, val_size=200, sparsities=(0.5, 0.9), recovery_steps=(5, 10),
                      importance_reviews=32, structured_steps=5, max_len=32, repeats=1, timing_seconds=0.1,
                      study_structures=((6, 512), (4, 384))),
        "gpu": dict(test_size=None, val_size=None, structured_steps=600, repeats=20),
    }


# ---------------------------------------------------------------- unstructured pruning

def prunable(model) -> dict:
    """{name: Linear} of the encoder's Linear layers: what pruning and int8 touch. The
    classifier head and the embedding tables are left out."""
    return {n: m for n, m in model.named_modules()
            if isinstance(m, torch.nn.Linear) and n.startswith("encoder.")}


def magnitude_prune(model, sparsity: float, keep=()):
    """A copy of ``model`` with the ``sparsity`` share of its `prunable` weights set to zero:
    the smallest in absolute value, ranked over all layers together. Layers whose name
    contains a string in ``keep`` are left whole (and not counted)."""
    if not 0 <= sparsity < 1:
        raise ValueError(f"sparsity={sparsity}: give the share of weights to zero, in [0, 1)")
    model = copy.deepcopy(model)
    layers = {n: m for n, m in prunable(model).items() if not any(k in n for k in keep)}
    if not layers:
        raise ValueError(f"nothing to prune: every Linear layer matches keep={keep}")
    scores = torch.cat([m.weight.detach().abs().flatten() for m in layers.values()])
    k = int(sparsity * len(scores))
    if k:
        threshold = scores.kthvalue(k).values
        with torch.no_grad():
            for m in layers.values():
                m.weight.mul_(m.weight.abs() > threshold)
    return model


def sparsity(model) -> float:
    """Share of zeros among the `prunable` weights."""
    w = [m.weight.detach() for m in prunable(model).values()]
    return float(sum((x == 0).sum().item() for x in w) / sum(x.numel() for x in w))


def zipped_bytes(path) -> int:
    """Bytes of the weight files under ``path`` after zlib compression (level 6): what zeros
    save on disk or over the network, though not in memory or in a dense kernel."""
    files = [Path(path)] if Path(path).is_file() else sorted(Path(path).rglob("*.safetensors"))
    return sum(len(zlib.compress(f.read_bytes(), 6)) for f in files)


def recover(model, tokenizer, texts, targets, steps: int, lr: float, batch_size: int = 32,
            max_len: int = 64, seed: int = 0):
    """Fine-tune a pruned ``model`` in place by distillation (soft targets only, T = 1) on the
    unpruned model's logits ``targets``, through the one loop, with its zeros held at zero
    (a fixed mask on each `prunable` weight) and its embeddings frozen (pruning did not touch
    them; their dense gradient would cost a third of each MiniLM step). Returns the History."""
    texts, _ = check_inputs(texts)
    _check_targets(model, targets, len(texts))
    layers = prunable(model).values()
    frozen = [p for p in model.encoder.embeddings.parameters() if p.requires_grad]
    for m in layers:
        prune.custom_from_mask(m, "weight", m.weight.detach() != 0)
    for p in frozen:
        p.requires_grad_(False)
    try:
        return fine_tune(model, tokenizer, texts, np.full(len(texts), -1), lr, steps=steps,
                         batch_size=batch_size, max_len=max_len, seed=seed, progress=False,
                         loss_fn=kd_loss_fn(1.0, 1.0), targets=targets)
    finally:
        for m in layers:
            prune.remove(m, "weight")
        for p in frozen:
            p.requires_grad_(True)


def _check_targets(model, targets, n: int) -> np.ndarray:
    """The teacher's logits ``targets`` as float32, one finite row per text with as many
    columns as ``model`` has classes (where it says)."""
    targets = checks.finite(targets, "targets", "the unpruned model's logits, one row per text").astype(np.float32)
    k = num_labels(model)
    if targets.ndim != 2 or len(targets) != n or (k and targets.shape[1] != k):
        raise ValueError(f"targets has shape {targets.shape}: give the unpruned model's logits, one row of "
                         f"{k or 'its classes'} per text ({n} texts)")
    return targets


def recovered(model, tokenizer, texts, targets, steps: int, lr: float, batch_size: int = 32,
              max_len: int = 64, seed: int = 0):
    """A copy of the pruned ``model`` after `recover` (same arguments), kept in the run cache
    (kind ``recovered``: its weights as safetensors, keyed by the pruned weights and every
    setting), so that a second run of lab 08 reads it back instead of training again."""
    texts, _ = check_inputs(texts)
    return _recovered(model, tokenizer, texts, _check_targets(model, targets, len(texts)), steps, lr, batch_size,
                      max_len, seed)


@cache.keyed("recovered", depends=lambda: {"recipe": RECIPE, "loss": kd_loss_fn(1.0, 1.0).spec})
def _recovered(model, tokenizer, texts, targets, steps, lr, batch_size, max_len, seed, *, folder):
    out = copy.deepcopy(model)
    if cache.is_done(folder):
        from safetensors.torch import load_file
        out.load_state_dict(load_file(str(folder / "model.safetensors")))
        return out.eval()
    recover(out, tokenizer, texts, targets, steps, lr, batch_size, max_len, seed)
    with cache.artifact(folder) as (tmp, _):
        save_weights(out, tmp / "model.safetensors")
    return out.eval()


# ---------------------------------------------------------------- structured pruning

def _blocks(model) -> list:
    return list(model.encoder.encoder.layer)


def importance(model, tokenizer, texts, labels, max_len: int = 64, batch_size: int = 32):
    """(heads, neurons): |d loss / d gate| summed over ``texts``, for a gate of 1 on every
    attention head (layers x heads) and every FFN neuron (a list, one array per layer)
    (Michel et al. 2019). A gate multiplies the head's output (the input of the attention's
    output projection) or the neuron's activation, so its gradient says how much the loss
    would change if that head or neuron were scaled down."""
    texts, labels = check_inputs(texts, labels, classes=num_labels(model) or checks.ANY, why="the importance loss")
    model.eval()
    gates, hooks = [], []
    for block in _blocks(model):
        att = block.attention.self
        h = torch.ones(att.all_head_size // att.attention_head_size, requires_grad=True)
        f = torch.ones(block.intermediate.dense.out_features, requires_grad=True)
        size = att.attention_head_size

        def head_gate(mod, args, g=h, size=size):
            x = args[0]
            return (x.view(*x.shape[:-1], -1, size) * g[:, None]).flatten(-2),
        hooks += [block.attention.output.dense.register_forward_pre_hook(head_gate),
                  block.output.dense.register_forward_pre_hook(lambda mod, args, g=f: (args[0] * g,))]
        gates.append((h, f))
    try:
        for batch in loader(tokenizer, texts, labels, max_len, batch_size):
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
            torch.nn.functional.cross_entropy(logits, batch["labels"], reduction="sum").backward()
    finally:
        for hook in hooks:
            hook.remove()
        model.zero_grad(set_to_none=True)
    return (np.stack([h.grad.abs().numpy() for h, _ in gates]), [f.grad.abs().numpy() for _, f in gates])


def _cut(linear, index, dim: int):
    """A copy of ``linear`` keeping only ``index`` of its outputs (dim 0) or inputs (dim 1)."""
    w = linear.weight.detach().index_select(dim, index).clone()
    new = torch.nn.Linear(w.shape[1], w.shape[0], bias=linear.bias is not None)
    new.weight = torch.nn.Parameter(w)
    if linear.bias is not None:
        b = linear.bias.detach()
        new.bias = torch.nn.Parameter((b.index_select(0, index) if dim == 0 else b).clone())
    return new


def shrink(model, heads: list, neurons: list):
    """Remove, in place, what is not kept: ``heads[i]`` and ``neurons[i]`` list the attention
    heads and FFN neurons layer i keeps (at least one of each). The query, key and value
    projections lose the rows of the removed heads, the output projection their columns; the
    FFN loses rows of its first and columns of its second matrix. Returns ``model``."""
    blocks = _blocks(model)
    if len(heads) != len(blocks) or len(neurons) != len(blocks):
        raise ValueError(f"give the heads and neurons to keep for each of the {len(blocks)} layers")
    for block, keep_h, keep_f in zip(blocks, heads, neurons):
        att = block.attention.self
        size = att.attention_head_size
        if len(keep_h) == 0 or len(keep_f) == 0:
            raise ValueError("keep at least one head and one neuron in every layer")
        rows = torch.tensor([h * size + i for h in sorted(keep_h) for i in range(size)])
        for name in ("query", "key", "value"):
            setattr(att, name, _cut(getattr(att, name), rows, 0))
        block.attention.output.dense = _cut(block.attention.output.dense, rows, 1)
        att.num_attention_heads, att.all_head_size = len(keep_h), len(rows)
        keep = torch.tensor(sorted(keep_f))
        block.intermediate.dense = _cut(block.intermediate.dense, keep, 0)
        block.output.dense = _cut(block.output.dense, keep, 1)
    return model


def top(scores, k: int) -> list:
    """Indices of the ``k`` largest ``scores``, in order."""
    return sorted(np.argsort(-np.asarray(scores), kind="stable")[:k].tolist())


def structured_run(teacher, tokenizer, texts, labels, targets, cfg: CompressConfig) -> tuple:
    """(model, info): ``teacher`` with the ``cfg.heads_keep`` most important heads and
    ``cfg.ffn_keep`` neurons kept per layer (`importance` on the first
    ``cfg.importance_reviews`` of (texts, labels)), then recovered for ``cfg.structured_steps``
    by distillation on ``targets`` (the teacher's logits for ``texts``). Cached. Every label is
    checked against the teacher's classes first."""
    k = num_labels(teacher)
    texts, labels = check_inputs(texts, labels, classes=k or checks.ANY)
    targets = _check_targets(teacher, targets, len(texts))
    return _structured(teacher, tokenizer, texts, labels, targets,
                       cfg.heads_keep, cfg.ffn_keep, cfg.importance_reviews, cfg.structured_steps, cfg.structured_lr,
                       cfg.batch_size, cfg.max_len, cfg.seed)


@cache.keyed("structured", depends=lambda: {"recipe": RECIPE})
def _structured(teacher, tokenizer, texts, labels, targets, heads_keep, ffn_keep, importance_reviews, steps, lr,
                batch_size, max_len, seed, *, folder) -> tuple:
    model = copy.deepcopy(teacher).eval()
    if cache.is_done(folder):
        from safetensors.torch import load_file
        info = cache.done_info(folder)
        shrink(model, info["heads"], info["neurons"])
        model.load_state_dict(load_file(str(folder / "model.safetensors")))
        return model.eval(), info
    n = importance_reviews
    h, f = importance(model, tokenizer, texts[:n], labels[:n], max_len, batch_size)
    heads, neurons = [top(x, heads_keep) for x in h], [top(x, ffn_keep) for x in f]
    shrink(model, heads, neurons)
    seed_everything(seed)
    hist = recover(model, tokenizer, texts, targets, steps, lr, batch_size, max_len, seed)
    with cache.artifact(folder) as (tmp, info):
        save_weights(model, tmp / "model.safetensors")
        info.update(heads=heads, neurons=neurons, seconds=round(hist.seconds, 1),
                    head_importance=h.round(6).tolist())
    return model.eval(), info


def save_weights(model, path) -> Path:
    """The model's weights as one safetensors file (what `measure.disk_size` counts)."""
    from safetensors.torch import save_file
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    return Path(path)


# ---------------------------------------------------------------- int8

INT8_RECIPE = "dynamic qint8 of every torch.nn.Linear, v1"  # what `quantize_int8` does: change it with the code


def quantize_int8(model, per_channel: bool = True):
    """A copy of ``model`` whose Linear layers (the head included) compute in int8: weights
    stored as int8 with one scale per output row (``per_channel``) or per matrix, activations
    quantized on the fly per batch (dynamic quantization, torch's x86 kernels)."""
    qconfig = q.per_channel_dynamic_qconfig if per_channel else q.default_dynamic_qconfig
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization is deprecated for torchao (see the lab)
        return q.quantize_dynamic(copy.deepcopy(model).eval(), {torch.nn.Linear: qconfig}, dtype=torch.qint8)


def predicted_int8_bytes(model, per_channel: bool = True) -> int:
    """Predicted size of `quantize_int8(model)`'s weights: 1 byte per Linear weight plus a
    float scale and an int zero point per row (per channel) or per matrix; 4 bytes for every
    other number (biases, embeddings, layer norms)."""
    linear = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    int8 = sum(m.weight.numel() for m in linear)
    scales = sum(m.out_features if per_channel else 1 for m in linear) * (4 + 8)
    return int8 + scales + 4 * (measure.parameters(model) - int8)


def save_int8(qmodel, path) -> Path:
    """A `quantize_int8` model's weights as safetensors: int8 matrices with their scales
    and zero points, every other tensor as it is."""
    from safetensors.torch import save_file
    out = {}
    for name, mod in qmodel.named_modules():
        if isinstance(mod, Int8Linear):
            w, b = mod.weight(), mod.bias()
            per_row = w.qscheme() in (torch.per_channel_affine, torch.per_channel_symmetric)
            out[f"{name}.weight"] = w.int_repr()
            out[f"{name}.scale"] = (w.q_per_channel_scales() if per_row else torch.tensor([w.q_scale()])).float()
            out[f"{name}.zero_point"] = (w.q_per_channel_zero_points() if per_row
                                         else torch.tensor([w.q_zero_point()])).long()
            if b is not None:
                out[f"{name}.bias"] = b.detach()
    for name, t in qmodel.state_dict().items():
        if isinstance(t, torch.Tensor) and not t.is_quantized and "_packed_params" not in name:
            out.setdefault(name, t)
    save_file({k: v.contiguous() for k, v in out.items()}, str(path))
    return Path(path)


@contextmanager
def threads(n: int):
    """Run the block with torch on ``n`` threads, then put the number back."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def gemm_speedup(tokens: int = 1024, size: tuple = (384, 1536), repeats: int = 10) -> dict:
    """Time one FFN-sized matrix product (``tokens`` x size[0] times size[0] x size[1]) in
    fp32 and with torch's dynamic int8, on one thread: {'fp32_ms', 'int8_ms', 'speedup'}.
    Int8 pays for compute only where the CPU multiplies int8 vectors in one instruction
    (VNNI: ``cpu_int8_dot``); otherwise it saves memory traffic, which matters at batch 1."""
    import time
    lin = torch.nn.Sequential(torch.nn.Linear(*size)).eval()
    q, x, out = quantize_int8(lin), torch.randn(tokens, size[0]), {}
    with threads(1), torch.inference_mode(), measure.afresh():
        for name, m in (("fp32", lin), ("int8", q)):
            m(x)
            times = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                m(x)
                times.append(time.perf_counter() - t0)
            out[f"{name}_ms"] = 1000 * float(np.median(times))
    return {**out, "speedup": out["fp32_ms"] / out["int8_ms"]}


def cpu_int8_dot() -> list:
    """The CPU's int8 dot-product instruction sets (``avx512_vnni``, ``avx_vnni``, ``amx_int8``)
    from /proc/cpuinfo; [] where it has none (or on a system without /proc/cpuinfo)."""
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return []
    return sorted({f for f in flags if f in ("avx512_vnni", "avx_vnni", "amx_int8")})


# ---------------------------------------------------------------- the comparison

BATCH = 64  # texts a batch when a variant is scored: `logits` batches by length, and `variant` checks one batch


def logits(predict_fn, texts, batch_size: int = BATCH) -> np.ndarray:
    """``predict_fn``'s outputs for ``texts`` (n, classes) in the order given, batched by
    length (little padding). ``predict_fn``: texts -> logits, torch or ONNX Runtime."""
    order = np.argsort([len(t) for t in texts], kind="stable")
    out = np.concatenate([np.asarray(predict_fn([texts[i] for i in order[s:s + batch_size]]))
                          for s in range(0, len(texts), batch_size)])
    result = np.empty_like(out)
    result[order] = out
    return result


def int8_key(model, per_channel: bool = True) -> dict:
    """What `quantize_int8` (``model``, ``per_channel``) computes with, for `cached_scores`: the
    model's weights and the scheme, and the torch version, quantized engine and int8 instructions
    of this CPU, on which dynamic int8's kernels (and so its logits) depend."""
    return {"int8_of": cache.fingerprint(model), "per_channel": bool(per_channel), "recipe": INT8_RECIPE,
            "torch": torch.__version__, "engine": torch.backends.quantized.engine, "cpu_int8_dot": cpu_int8_dot()}


def cached_scores(predict_fn, tokenizer, max_len: int, made_from: dict):
    """``texts -> logits`` of ``predict_fn`` (`logits`, batched by length as always), kept in the
    run cache as ``variant-logits`` under ``made_from`` (what the model is and what its kernels
    depend on: `int8_key`, `labkit.labs.compress.runtime.onnx_key`), ``tokenizer``, ``max_len``
    (what ``predict_fn`` tokenizes with) and the texts. `variant`'s ``scores`` for the models
    `labkit.core.classifier.cached_logits` cannot key by their weights (quantized ones, ONNX
    files), so a second run reads their accuracies back; `variant` still checks them against
    ``predict_fn`` on one batch, and times ``predict_fn`` afresh."""
    return lambda texts: _scores(made_from, tokenizer, max_len, list(texts), predict_fn)["logits"]


@cache.cached("variant-logits", exclude=("predict_fn",))
def _scores(made_from, tokenizer, max_len, texts, predict_fn) -> dict:
    return {"logits": logits(predict_fn, texts)}


def variant(predict_fn, texts, labels, sample, params: int, disk_bytes: int, repeats: int = 5,
            min_seconds: float = 1.0, val=None, reference=None, scores=None) -> dict:
    """One row of the comparison: accuracy on (texts, labels) and, with ``val`` = (texts, labels),
    ``val_accuracy`` (where choices are made); weights, size on disk in MB, p50 latency at batch 1
    (ms), reviews a second at batch 32 with its ``spread`` (timer noise), torch threads, ``'logits'``, ``'pred'``.
    Timed on ``sample``, with at least ``repeats`` calls and enough more to fill
    ``min_seconds`` at each batch size. With ``reference`` (the function of the model it is
    compared with), both are timed in turn (`measure.interleaved`); ``vs_reference``: the
    variant's batch-32 speed over the reference's in those rounds (1.0 without one). ``scores``:
    texts -> logits of the same model, used for the accuracies instead of ``predict_fn`` (e.g.
    `labkit.core.classifier.cached_logits`, which a second run reads back); the timings always run."""
    texts, labels = check_inputs(texts, labels, classes=checks.ANY)  # the range: against the logits below
    score = scores or (lambda t: logits(predict_fn, t))
    out = np.asarray(score(texts))
    checks.labels(labels, classes=out.shape[-1], fix=f"The model gives {out.shape[-1]} classes")
    if scores is not None:  # the shortest batch, as `logits` batches it (dynamic int8 depends on the batch)
        first = np.argsort([len(t) for t in texts], kind="stable")[:BATCH]
        if not np.allclose(np.asarray(predict_fn([texts[i] for i in first])), out[first], atol=1e-3):
            raise ValueError("variant(): scores= and predict_fn give different logits for the same texts: "
                             "pass the scores of the model predict_fn runs")
    pred = out.argmax(-1)
    fns = {"variant": predict_fn, **({} if reference is None else {"reference": reference})}
    rows = {}
    for batch, n in ((1, 4 * repeats), (32, repeats)):
        first = sum(measure.benchmark(f, sample, batch, 1, warmup=1)["seconds"] for f in fns.values())
        rows[batch] = measure.interleaved(fns, sample, batch, max(n, int(min_seconds / first)), warmup=0)
    timed = rows[32]["variant"]
    extra = {} if val is None else {"val_accuracy": float((np.asarray(score(list(val[0]))).argmax(-1)
                                                            == np.asarray(val[1])).mean())}
    return {"accuracy": float((pred == np.asarray(labels)).mean()), **extra, "params": int(params),
            "disk_mb": disk_bytes / 1e6, "latency_ms": 1000 * rows[1]["variant"]["seconds"],
            "per_second": timed["per_second"], "spread": timed["spread"], "threads": timed["threads"],
            "vs_reference": timed["per_second"] / rows[32]["reference"]["per_second"] if reference else 1.0,
            "logits": out, "pred": pred}


def pareto(variants: dict, accuracy: str = "accuracy", noise: bool = False) -> list:
    """Names of the variants no other beats on both ``accuracy`` (the key: lab 08 chooses on
    ``val_accuracy``) and reviews a second, fastest first. A variant beats another when it is
    at least as good on both and better on one. With ``noise``, two speeds within the larger
    of their two timing ``spread``s are a tie: a variant is not "faster" by timer noise."""
    def tol(x, y):  # the relative speed difference that is only timer noise
        return max(x.get("spread", 0.0), y.get("spread", 0.0)) if noise else 0.0

    def at_least_as_fast(y, x):
        return y["per_second"] >= x["per_second"] * (1 - tol(x, y))

    def faster(y, x):
        return y["per_second"] > x["per_second"] * (1 + tol(x, y))

    front = [a for a, x in variants.items()
             if not any(y[accuracy] >= x[accuracy] and at_least_as_fast(y, x)
                        and (y[accuracy] > x[accuracy] or faster(y, x))
                        for b, y in variants.items() if b != a)]
    return sorted(front, key=lambda a: -variants[a]["per_second"])