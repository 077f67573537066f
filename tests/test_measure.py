import numpy as np
import pytest

from labkit.core import classifier, measure, models, text

POS = ["a good film", "a great cast", "good and great", "a fine good plot", "great fun"]
NEG = ["a bad film", "an awful cast", "bad and awful", "a dull bad plot", "awful mess"]


@pytest.fixture(scope="module")
def tok():
    return text.train_wordpiece((POS + NEG) * 10, vocab_size=60, min_frequency=1)


def tiny(tok, hidden):
    mlm = models.small_bert(len(tok), hidden=hidden, layers=1, heads=2, max_len=32)
    return classifier.small_classifier(mlm, pretrained=False, seed=0)


def test_parameters_and_disk_size(tok, tmp_path):
    small, big = tiny(tok, 16), tiny(tok, 64)
    assert measure.parameters(small) < measure.parameters(big)
    assert measure.parameters(small) == sum(p.numel() for p in small.state_dict().values()
                                            if p.dtype.is_floating_point)
    # fp32: 4 bytes a weight, plus the safetensors headers
    assert 4 * measure.parameters(small) <= measure.disk_size(small, tok) < 4.5 * measure.parameters(small) + 4096
    folder = classifier.save_classifier(big, tok, tmp_path / "big", onnx=False)
    assert measure.disk_size(folder) == measure.disk_size(big, tok)
    assert measure.disk_size(folder / "head.safetensors") < measure.disk_size(folder)
    with pytest.raises(FileNotFoundError, match="no file or folder"):
        measure.disk_size(tmp_path / "missing")
    with pytest.raises(TypeError, match="tokenizer"):
        measure.disk_size(small)


def test_benchmark_times_any_callable(tok):
    calls = []

    def fake(texts):  # counts calls and batch sizes: no model at all
        calls.append(len(texts))
        return np.zeros((len(texts), 2))

    b = measure.benchmark(fake, POS, batch_size=8, repeats=3, warmup=2)
    assert calls == [8] * 5 and b["batch_size"] == 8 and b["repeats"] == 3 and b["threads"] >= 1
    assert b["per_second"] == pytest.approx(8 / b["seconds"])
    torch_b = measure.benchmark(classifier.predictor(tiny(tok, 16), tok), POS, batch_size=4, repeats=2)
    assert torch_b["seconds"] > 0
    assert classifier.predictor(tiny(tok, 16), tok)(["great"]).shape == (1, 2)
    with pytest.raises(ValueError, match="repeats"):
        measure.benchmark(fake, POS, batch_size=8, repeats=0)
    with pytest.raises(TypeError, match="predict_fn"):
        measure.benchmark("model", POS, batch_size=8)
    with pytest.raises(ValueError, match="no texts"):
        measure.benchmark(fake, [], batch_size=8)


def test_memory_sampler_keeps_its_own_cost_to_its_share_of_a_core(monkeypatch):
    # Reading PSS walks every page table: on one core a sampler that ignores its cost slows
    # the notebook it measures. A sample costing 40 ms with a 10% share waits >= 0.36 s.
    import time
    sizes = iter(range(1, 10**6))

    def slow_sample(pid):
        time.sleep(0.04)
        return next(sizes)

    monkeypatch.setattr(measure, "tree_memory", slow_sample)
    s = measure.PeakSampler(every=0.01, share=0.1)
    s.start()
    time.sleep(1.0)
    peak = s.stop()
    assert 1 <= s.samples <= 4, s.samples  # unbounded it would take ~20 samples in 1 s
    assert peak == s.samples  # the largest of the sizes seen

    monkeypatch.setattr(measure, "tree_memory", lambda pid: 5)  # a cheap sample: every `every`
    quick = measure.PeakSampler(every=0.05)
    quick.start()
    time.sleep(0.5)
    assert quick.stop() == 5 and quick.samples >= 5
    monkeypatch.setattr(measure, "tree_memory", lambda pid: time.sleep(0.2) or 7)  # dear: 2% would wait 10 s
    dear = measure.PeakSampler(every=0.01, longest=0.3)
    dear.start()
    time.sleep(1.3)
    assert dear.stop() == 7 and dear.samples >= 3  # a sample at least every `longest` + its cost
    with pytest.raises(ValueError, match="share of a core"):
        measure.PeakSampler(share=1.5)


def test_interleaved_times_functions_in_turn_on_the_same_batches():
    import time
    calls = []

    def slow(batch):
        calls.append(("slow", tuple(batch)))
        time.sleep(0.006)

    def fast(batch):
        calls.append(("fast", tuple(batch)))
        time.sleep(0.002)

    texts = [f"review {i}" for i in range(10)]
    out = measure.interleaved({"slow": slow, "fast": fast}, texts, batch_size=3, repeats=4, warmup=1)
    # in turn, order alternating
    assert [c[0] for c in calls] == ["slow", "fast", "fast", "slow"] * 2 + ["slow", "fast"]
    assert all(calls[i][1] == calls[i + 1][1] for i in range(0, len(calls), 2))  # the same batch each round
    assert 1.5 < out["slow"]["seconds"] / out["fast"]["seconds"] < 5 and out["fast"]["repeats"] == 4
    from labkit.labs import compress
    row = compress.variant(lambda b: np.zeros((len(b), 2)), texts, [0] * 10, texts, 1, 1, repeats=2, min_seconds=0,
                           reference=slow)
    assert row["vs_reference"] > 1.5  # no work at all against 6 ms a call, timed in the same rounds
    with pytest.raises(TypeError, match="texts -> predictions"):
        measure.interleaved({"a": fast, "b": "not a function"}, texts, 3)


def test_afresh_counts_the_measurements_a_second_run_takes_again(monkeypatch, tmp_path):
    """Benchmarks and load tests run again on every run on purpose: their seconds are recorded
    as ``afresh_s`` (overlapping blocks once), for the report to take out of a second run's budget."""
    import time
    from labkit.core import results
    clock = {"now": 100.0}
    monkeypatch.setattr(measure.time, "perf_counter", lambda: clock["now"])  # a clock the test moves
    monkeypatch.setattr(results, "_RESULTS", {})
    monkeypatch.setattr(measure, "_AFRESH", {"seconds": 0.0, "depth": 0, "since": 0.0})
    monkeypatch.setenv("LABKIT_RESULTS", str(tmp_path / "r.json"))
    with measure.afresh():
        clock["now"] += 2.0
        with measure.afresh():  # inside another: counted once
            clock["now"] += 3.0
        clock["now"] += 1.0
    assert measure._AFRESH["seconds"] == 6.0 and results.results()["afresh_s"] == 6.0
    clock["now"] += 50.0  # outside any block: not counted
    with pytest.raises(RuntimeError, match="boom"):  # a failing measurement still counts, its error surfaces
        with measure.afresh():
            clock["now"] += 4.0
            raise RuntimeError("boom")
    assert measure._AFRESH == {"seconds": 10.0, "depth": 0, "since": 156.0}
    monkeypatch.undo()  # the real clock: interleaved's timings are counted too
    before = measure._AFRESH["seconds"]
    measure.interleaved({"a": lambda b: time.sleep(0.01)}, ["x"], 1, repeats=5, warmup=0)
    assert 0.05 <= measure._AFRESH["seconds"] - before < 1.0
