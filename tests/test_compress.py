"""Lab 08: pruning, structured removal, int8, ONNX export and sessions, on tiny models."""
import copy
import random

import numpy as np
import pytest
import torch

from labkit.core import classifier, export, measure, models, text
from labkit.labs import compress
from labkit.labs.compress import runtime

POS = ["a good film", "a great cast", "good and great", "a fine good plot", "great fun"]
NEG = ["a bad film", "an awful cast", "bad and awful", "a dull bad plot", "awful mess"]


@pytest.fixture(scope="module")
def tok():
    return text.train_wordpiece((POS + NEG) * 10, vocab_size=60, min_frequency=1)


def tiny(tok, hidden=32, heads=4, layers=2, seed=0):
    mlm = models.small_bert(len(tok), hidden=hidden, layers=layers, heads=heads, max_len=32)
    return classifier.small_classifier(mlm, pretrained=False, seed=seed).eval()


def batch(tok, texts=POS + NEG):
    enc = tok(texts, padding=True, return_tensors="pt")
    return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}


def test_magnitude_pruning_reaches_the_sparsity_and_keeps_what_it_is_told(tok):
    model = tiny(tok)
    before = copy.deepcopy(model.state_dict())
    for s in (0.3, 0.5, 0.9):
        pruned = compress.magnitude_prune(model, s)
        assert compress.sparsity(pruned) == pytest.approx(s, abs=0.01)
        assert torch.equal(pruned.head.weight, model.head.weight)  # the head is not prunable
        assert torch.equal(pruned.encoder.embeddings.word_embeddings.weight,
                           model.encoder.embeddings.word_embeddings.weight)
        # the zeros are the smallest weights: every kept one is at least as big as every removed one
        w = torch.cat([m.weight.flatten() for m in compress.prunable(pruned).values()])
        orig = torch.cat([m.weight.flatten() for m in compress.prunable(model).values()])
        assert orig[w == 0].abs().max() <= orig[w != 0].abs().min()
    kept = compress.magnitude_prune(model, 0.7, keep=("intermediate",))
    for name, m in compress.prunable(kept).items():
        if "intermediate" in name:
            assert torch.equal(m.weight, compress.prunable(model)[name].weight)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # the original is untouched
    with pytest.raises(ValueError, match="sparsity"):
        compress.magnitude_prune(model, 1.0)
    with pytest.raises(ValueError, match="nothing to prune"):
        compress.magnitude_prune(model, 0.5, keep=("encoder",))


def test_recovery_trains_but_keeps_the_zeros(tok):
    model = compress.magnitude_prune(tiny(tok), 0.6)
    zeros = {n: m.weight == 0 for n, m in compress.prunable(model).items()}
    before = {n: m.weight.clone() for n, m in compress.prunable(model).items()}
    embeddings = model.encoder.embeddings.word_embeddings.weight.clone()
    texts = POS + NEG
    targets = np.array([[-2.0, 2.0]] * 5 + [[2.0, -2.0]] * 5, dtype=np.float32)
    compress.recover(model, tok, texts, targets, steps=5, lr=1e-2, batch_size=4, max_len=16)
    for name, m in compress.prunable(model).items():
        assert isinstance(m.weight, torch.nn.Parameter) and not hasattr(m, "weight_orig")  # mask removed
        assert (m.weight[zeros[name]] == 0).all()
        assert not torch.equal(m.weight, before[name])  # it did train
    assert torch.equal(model.encoder.embeddings.word_embeddings.weight, embeddings)  # frozen while it trained
    assert all(p.requires_grad for p in model.parameters())  # and trainable again afterwards


def test_recovered_trains_a_copy_once_and_reads_it_back(tok, tmp_cache, monkeypatch):
    pruned = compress.magnitude_prune(tiny(tok), 0.6)
    before = copy.deepcopy(pruned.state_dict())
    texts = POS + NEG
    targets = np.array([[-2.0, 2.0]] * 5 + [[2.0, -2.0]] * 5, dtype=np.float32)
    args = (tok, texts, targets, 5, 1e-2, 4, 16, 0)
    first = compress.recovered(pruned, *args)
    assert all(torch.equal(before[k], v) for k, v in pruned.state_dict().items())  # a copy trained, not the input
    assert compress.sparsity(first) == pytest.approx(compress.sparsity(pruned))
    assert not torch.equal(first.head.weight, pruned.head.weight)  # it did train
    monkeypatch.setattr(compress, "recover", lambda *a, **k: pytest.fail("a cached recovery trained again"))
    again = compress.recovered(pruned, *args)
    kept = again.state_dict()
    assert all(torch.equal(v, kept[k]) for k, v in first.state_dict().items())
    for other in ((compress.magnitude_prune(tiny(tok), 0.3), *args),  # other weights, steps, targets, seed: other runs
                  (pruned, tok, texts, targets, 6, 1e-2, 4, 16, 0), (pruned, tok, texts, -targets, 5, 1e-2, 4, 16, 0),
                  (pruned, tok, texts, targets, 5, 1e-2, 4, 16, 1)):
        with pytest.raises(pytest.fail.Exception, match="trained again"):
            compress.recovered(*other)


def test_variant_scores_with_the_function_it_is_given_and_refuses_another_models(tok):
    model, texts, labels = tiny(tok), POS + NEG, [1] * 5 + [0] * 5
    fn, calls = classifier.predictor(model, tok, 16), []
    row = compress.variant(fn, texts, labels, texts, 1, 1, repeats=1, min_seconds=0, val=(texts[:4], labels[:4]),
                           scores=lambda t: calls.append(len(t)) or compress.logits(fn, t))
    assert calls == [10, 4]  # the accuracies come from scores=, once for test and once for validation
    plain = compress.variant(fn, texts, labels, texts, 1, 1, repeats=1, min_seconds=0, val=(texts[:4], labels[:4]))
    assert np.allclose(row["logits"], plain["logits"]) and row["val_accuracy"] == plain["val_accuracy"]
    other = tiny(tok, seed=1)
    with pytest.raises(ValueError, match="different logits"):
        compress.variant(fn, texts, labels, texts, 1, 1, repeats=1, min_seconds=0,
                         scores=lambda t: compress.logits(classifier.predictor(other, tok, 16), t))


def test_cached_scores_reads_a_quantized_variants_logits_back_and_keys_what_makes_them(tok, tmp_cache):
    model, texts, labels = tiny(tok), POS + NEG, [1] * 5 + [0] * 5
    fn, calls = classifier.predictor(compress.quantize_int8(model), tok, 16), []

    def counting(t):
        calls.append(len(t))
        return fn(t)

    scores = compress.cached_scores(counting, tok, 16, compress.int8_key(model))
    first = scores(texts)
    assert np.array_equal(first, compress.logits(fn, texts)) and calls == [10]
    assert np.array_equal(scores(texts), first) and calls == [10]  # read back, not scored again
    for other in (compress.int8_key(model, per_channel=False), compress.int8_key(tiny(tok, seed=1))):
        compress.cached_scores(counting, tok, 16, other)(texts)  # another scheme, other weights: scored
    compress.cached_scores(counting, tok, 12, compress.int8_key(model))(texts)  # another max_len: scored
    compress.cached_scores(counting, tok, 16, compress.int8_key(model))(texts[:4])  # other texts: scored
    assert calls == [10, 10, 10, 10, 4]
    row = compress.variant(fn, texts, labels, texts, 1, 1, repeats=1, min_seconds=0, scores=scores)
    assert np.array_equal(row["logits"], first)  # and variant's check accepts dynamic int8's scores


def test_variant_checks_int8_scores_on_a_batch_as_they_were_scored(tok, tmp_cache):
    rng = random.Random(0)
    words = " ".join(POS + NEG).split()
    texts = [" ".join(rng.choice(words) for _ in range(rng.randint(2, 14))) for _ in range(90)]  # 2 batches of 64
    labels = [rng.randint(0, 1) for _ in texts]
    fn = classifier.predictor(compress.quantize_int8(tiny(tok)), tok, 16)
    scores = compress.logits(fn, texts)
    # dynamic int8 quantizes activations per batch: the first 8 reviews scored alone give other logits
    assert not np.allclose(fn(texts[:8]), scores[:8], atol=1e-3)
    row = compress.variant(fn, texts, labels, texts[:4], 1, 1, repeats=1, min_seconds=0, scores=lambda t: scores)
    assert np.array_equal(row["logits"], scores)


def test_onnx_key_names_the_file_by_its_bytes(tmp_path):
    a, b = tmp_path / "a.onnx", tmp_path / "b.onnx"
    a.write_bytes(b"graph one")
    b.write_bytes(b"graph one")
    assert runtime.onnx_key(a) == runtime.onnx_key(b)
    b.write_bytes(b"graph two")
    assert runtime.onnx_key(a)["onnx"] != runtime.onnx_key(b)["onnx"]


def test_removing_heads_and_neurons_equals_masking_them(tok):
    model = tiny(tok, hidden=32, heads=4)
    keep_heads, keep_neurons = [[0, 2], [3]], [list(range(0, 128, 2)), [5, 9, 77]]
    masked, hooks = copy.deepcopy(model), []
    for block, kh, kn in zip(masked.encoder.encoder.layer, keep_heads, keep_neurons):
        hm, nm = torch.zeros(4), torch.zeros(128)
        hm[kh], nm[kn] = 1, 1
        hooks.append(block.attention.output.dense.register_forward_pre_hook(
            lambda mod, a, g=hm: ((a[0].unflatten(-1, (4, 8)) * g[:, None]).flatten(-2),)))
        hooks.append(block.output.dense.register_forward_pre_hook(lambda mod, a, g=nm: (a[0] * g,)))
    small = compress.shrink(copy.deepcopy(model), keep_heads, keep_neurons)
    b = batch(tok)
    with torch.no_grad():
        want, got = masked(**b), small(**b)
    assert got.shape == (10, 2)
    assert torch.allclose(want, got, atol=1e-5)
    assert measure.parameters(small) < measure.parameters(model)
    assert small.encoder.encoder.layer[1].attention.self.query.out_features == 8
    assert small.encoder.encoder.layer[1].intermediate.dense.out_features == 3
    with pytest.raises(ValueError, match="at least one head"):
        compress.shrink(copy.deepcopy(model), [[], [1]], keep_neurons)
    with pytest.raises(ValueError, match="each of the 2 layers"):
        compress.shrink(copy.deepcopy(model), [[0]], keep_neurons)


def test_importance_scores_every_head_and_neuron_and_top_keeps_the_largest(tok):
    model = tiny(tok)
    heads, neurons = compress.importance(model, tok, POS + NEG, [1] * 5 + [0] * 5, max_len=16, batch_size=4)
    assert heads.shape == (2, 4) and (heads >= 0).all() and heads.sum() > 0
    assert [n.shape for n in neurons] == [(128,), (128,)]
    assert all(p.grad is None for p in model.parameters())  # no gradient left behind
    assert compress.top([0.1, 0.9, 0.5, 0.7], 2) == [1, 3]


def test_int8_logits_stay_close_and_the_size_is_as_predicted(tok, tmp_path):
    model = tiny(tok, hidden=64, heads=4)
    b = batch(tok)
    with torch.no_grad():
        ref = model(**b)
        for per_channel in (True, False):
            q = compress.quantize_int8(model, per_channel)
            out = q(**b)
            assert (out - ref).abs().max() < 0.05 * ref.abs().max() + 0.02
            path = compress.save_int8(q, tmp_path / f"q{per_channel}.safetensors")
            size, predicted = measure.disk_size(path), compress.predicted_int8_bytes(model, per_channel)
            assert abs(size / predicted - 1) < 0.10
            assert size < 0.6 * measure.disk_size(model, tok)
    from safetensors import safe_open
    with safe_open(str(tmp_path / "qTrue.safetensors"), "pt") as f:
        assert f.get_tensor("encoder.encoder.layer.0.intermediate.dense.weight").dtype == torch.int8


def test_zipped_bytes_shrink_with_sparsity(tok, tmp_path):
    model = tiny(tok, hidden=64)
    dense = compress.zipped_bytes(compress.save_weights(model, tmp_path / "d.safetensors"))
    sparse = compress.zipped_bytes(compress.save_weights(compress.magnitude_prune(model, 0.9),
                                                         tmp_path / "s.safetensors"))
    assert sparse < 0.8 * dense


def test_pareto_keeps_only_undominated_variants():
    v = {"a": {"accuracy": 0.8, "per_second": 10}, "b": {"accuracy": 0.7, "per_second": 100},
         "c": {"accuracy": 0.7, "per_second": 50}, "d": {"accuracy": 0.8, "per_second": 10},
         "e": {"accuracy": 0.6, "per_second": 200}}
    assert compress.pareto(v) == ["e", "b", "a", "d"]  # c is beaten by b; a and d tie


def test_pareto_chooses_on_the_accuracy_asked_and_calls_speeds_within_noise_a_tie():
    v = {"dense": {"accuracy": 0.74, "val_accuracy": 0.75, "per_second": 1840, "spread": 0.08},
         "zeros": {"accuracy": 0.72, "val_accuracy": 0.75, "per_second": 1950, "spread": 0.08},  # 6% "faster": noise
         "int8": {"accuracy": 0.745, "val_accuracy": 0.74, "per_second": 2670, "spread": 0.05}}
    assert compress.pareto(v) == ["int8"]  # on test accuracy int8 beats both
    assert compress.pareto(v, "val_accuracy") == ["int8", "zeros"]  # on validation, zeros "beats" dense by noise
    assert compress.pareto(v, "val_accuracy", noise=True) == ["int8", "zeros", "dense"]  # within noise: a tie


def test_onnx_export_agrees_and_benchmark_times_torch_and_onnx(tok, tmp_path):
    model = tiny(tok)
    path = export.export_onnx(model, tok, tmp_path / "m.onnx", max_len=16)
    assert path.exists() and not list(tmp_path.glob(".*tmp"))
    q_path = runtime.onnx_int8(path, tmp_path / "m8.onnx")
    texts = POS + NEG + ["good"]  # another batch size and length than the export's example
    ref = classifier.predictor(model, tok, 16)(texts)
    for p, tol in ((path, 1e-4), (q_path, 0.05 * np.abs(ref).max() + 0.02)):
        out = runtime.onnx_predictor(runtime.session(p, threads=1), tok, 16)(texts)
        assert out.shape == ref.shape and np.abs(out - ref).max() < tol
    for fn in (classifier.predictor(model, tok, 16), runtime.onnx_predictor(runtime.session(path), tok, 16)):
        r = measure.benchmark(fn, texts, batch_size=4, repeats=2)
        assert r["batch_size"] == 4 and r["per_second"] > 0
    labels = [1] * 5 + [0] * 6
    row = compress.variant(runtime.onnx_predictor(runtime.session(path), tok, 16), texts, labels,
                           texts, measure.parameters(model), path.stat().st_size, repeats=1,
                           val=(texts[:4], labels[:4]))
    assert set(row) == {"accuracy", "val_accuracy", "params", "disk_mb", "latency_ms", "per_second", "spread",
                        "threads", "vs_reference", "logits", "pred"} and row["vs_reference"] == 1.0
    assert 0 <= row["accuracy"] <= 1 and len(row["pred"]) == 11 and row["logits"].shape == (11, 2)
    assert row["val_accuracy"] == float((row["pred"][:4] == labels[:4]).mean()) and row["spread"] >= 0


def test_missing_or_damaged_onnx_files_get_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="export one with"):
        runtime.session(tmp_path / "nothing.onnx")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"this is not a protobuf" * 10)
    with pytest.raises(ValueError, match="not a readable ONNX model.*export again"):
        runtime.session(bad)
    with pytest.raises(ValueError, match="not a readable ONNX model"):
        runtime.onnx_int8(bad, tmp_path / "out.onnx")
    assert not (tmp_path / "out.onnx").exists()


def test_cpu_int8_dot_and_gemm_speedup_report_plain_numbers():
    assert set(compress.cpu_int8_dot()) <= {"avx512_vnni", "avx_vnni", "amx_int8"}
    g = compress.gemm_speedup(tokens=64, size=(32, 64), repeats=2)
    assert g["fp32_ms"] > 0 and g["int8_ms"] > 0 and g["speedup"] == pytest.approx(g["fp32_ms"] / g["int8_ms"])


def test_the_live_recovery_runs_on_a_seed_the_study_never_drew():
    from labkit.course import study
    drawn = study.load("lab08")["settings"]["seeds"]  # the committed study's seeds: 0 .. drawn - 1
    assert all(compress.CompressConfig.for_scale(s).live_seed >= drawn for s in ("smoke", "cpu", "gpu"))
