import numpy as np
import pytest

from labkit import classifier, measure, models, text

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
    folder = classifier.save_classifier(big, tok, tmp_path / "big")
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
