"""The saved-model contract (docs/models.md): one folder holding the encoder, head, tokenizer,
ONNX file and classifier.json (class names, max length, temperature, weights); read back by one
call; loaded outside the course with ONNX Runtime, giving the service's probabilities; damaged
or edited contracts refused with the file and the fix."""
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from labkit.core import classifier as C
from labkit.core import models, text
from labkit.labs.evaluate import serve

POS = ["a good film", "a great cast", "good and great", "a fine good plot", "great fun"]
NEG = ["a bad film", "an awful cast", "bad and awful", "a dull bad plot", "awful mess"]
MID = ["an ok film", "a fine cast", "ok and fine", "an ok plot", "fine enough"]
DOCS = Path(__file__).resolve().parents[1] / "docs" / "models.md"


pytestmark = pytest.mark.usefixtures("module_cache")  # exports land in a temp cache


@pytest.fixture(scope="module")
def saved(tmp_path_factory, module_cache):
    """A tiny 3-class classifier, trained and saved with its names at max_len 24."""
    tok = text.train_wordpiece((POS + NEG + MID) * 10, vocab_size=60, min_frequency=1)
    model = C.small_classifier(models.small_bert(len(tok), hidden=32, layers=1, heads=2, max_len=32),
                               pretrained=False, num_labels=3)
    C.fine_tune(model, tok, POS + NEG + MID, [2] * 5 + [0] * 5 + [1] * 5, lr=3e-3, steps=30, batch_size=15,
                max_len=24)
    folder = C.save_classifier(model.eval(), tok, tmp_path_factory.mktemp("m") / "clf", max_len=24,
                               label_names=["negative", "neutral", "positive"])
    return folder, tok, model


def outside():
    """The docs' code block, run as a reader outside the course would."""
    code = next(b for b in re.findall(r"```python\n(.*?)```", DOCS.read_text(), re.S) if "def load_outside" in b)
    scope = {}
    exec(compile(code, str(DOCS), "exec"), scope)
    return scope["load_outside"]


def test_one_call_reads_back_the_model_with_its_names_length_and_temperature(saved):
    folder, tok, model = saved
    meta = json.loads((folder / "classifier.json").read_text())
    assert {p.name for p in folder.iterdir()} >= {"classifier.json", "model.safetensors", "head.safetensors",
                                                   "model.onnx", "tokenizer.json"}
    assert meta["max_len"] == 24 and meta["temperature"] == 1.0 and meta["onnx"] == "model.onnx"
    tok2, m2, _ = C.load_classifier(folder)
    assert m2.label_names == ["negative", "neutral", "positive"] and m2.max_len == 24 and m2.temperature == 1.0
    texts = POS + NEG + MID + ["a good film " * 20]  # the last one is cut at max_len
    assert np.allclose(C.predict_logits(m2, tok2, texts, 24), C.predict_logits(model, tok, texts, 24), atol=1e-5)


def test_outside_the_course_onnx_runtime_gives_the_services_probabilities(saved, tmp_path):
    folder, tok, model = saved
    mine = tmp_path / "mine"
    shutil.copytree(folder, mine)
    C.set_temperature(mine, model, 2.5)
    texts = POS + NEG + MID + ["good " * 40, "é ü — 好"]  # one longer than max_len, one mostly unknown
    proba, names = outside()(mine)
    served = serve.Model(mine)
    want, _, _ = served.predict(texts)
    got = proba(texts)
    assert names == served.labels == ["negative", "neutral", "positive"] and served.temperature == 2.5
    assert got.shape == (len(texts), 3) and np.abs(got - want).max() < 1e-4
    # the temperature is applied (not only carried): at T=1 the probabilities differ
    plain, _ = outside()(folder)
    assert np.abs(plain(texts) - got).max() > 1e-3


def test_a_temperature_belongs_to_the_weights_it_was_fitted_for(saved, tmp_path):
    folder, tok, model = saved
    mine = tmp_path / "mine"
    shutil.copytree(folder, mine)
    other = C.small_classifier(models.small_bert(len(tok), hidden=32, layers=1, heads=2, max_len=32),
                               pretrained=False, num_labels=3)
    with pytest.raises(ValueError, match="other weights"):
        C.set_temperature(mine, other, 3.0)
    for bad in (0, -1.0, float("nan"), float("inf"), True, "2"):
        with pytest.raises(ValueError, match=r"temperature=.*: it must be (> 0|a finite number|a number) \(a temp"):
            C.set_temperature(mine, model, bad)
    C.set_temperature(mine, model, np.float32(1.5))  # a numpy number is a number
    assert C.load_classifier(mine)[1].temperature == 1.5
    C.save_classifier(other, tok, mine)  # saved again: the old temperature goes with the old weights
    assert json.loads((mine / "classifier.json").read_text())["temperature"] == 1.0


@pytest.mark.parametrize("edit, match", [
    (lambda m: {**m, "temperature": 0}, "temperature=0"),
    (lambda m: {**m, "temperature": -1}, "temperature=-1"),
    (lambda m: {**m, "temperature": float("nan")}, "temperature=nan"),
    (lambda m: {**m, "temperature": "2"}, "temperature='2'"),
    (lambda m: {**m, "num_labels": 2}, "does not match"),
    (lambda m: {**m, "max_len": "64"}, "max_len"),
    (lambda m: {**m, "label_names": ["a", "b"]}, "does not match"),
])
def test_an_edited_contract_is_refused_naming_the_file_and_the_fix(saved, tmp_path, edit, match):
    folder, _, _ = saved
    mine = tmp_path / "mine"
    shutil.copytree(folder, mine)
    path = mine / "classifier.json"
    path.write_text(json.dumps(edit(json.loads(path.read_text()))))
    with pytest.raises(C.CheckpointError, match=match) as e:
        C.load_classifier(mine)
    assert "classifier.json" in str(e.value) and "Fix: save it again" in str(e.value)


def test_a_truncated_contract_is_refused_naming_the_file(saved, tmp_path):
    folder, _, _ = saved
    mine = tmp_path / "mine"
    shutil.copytree(folder, mine)
    path = mine / "classifier.json"
    path.write_text(path.read_text()[:40])
    with pytest.raises(C.CheckpointError, match=r"classifier\.json is damaged"):
        C.load_classifier(mine)


def test_save_refuses_a_max_len_that_is_not_a_token_count(saved, tmp_path):
    folder, tok, model = saved
    for bad in (0, 2, 64.0, "64", True):
        with pytest.raises(ValueError, match="max_len"):
            C.save_classifier(model, tok, tmp_path / "x", max_len=bad)
    assert not (tmp_path / "x").exists()
    C.save_classifier(model, tok, tmp_path / "y", max_len=np.int64(16), onnx=False)  # numpy ints are ints
    assert not (tmp_path / "y" / "model.onnx").exists() and C.load_classifier(tmp_path / "y")[1].max_len == 16


def test_a_model_saved_without_onnx_gets_its_file_added_once(saved, tmp_path):
    folder, tok, model = saved
    C.save_classifier(model, tok, tmp_path / "m", max_len=24, label_names=["n", "m", "p"], onnx=False)
    assert json.loads((tmp_path / "m" / "classifier.json").read_text())["onnx"] is None
    path = C.add_onnx(tmp_path / "m")
    assert path == tmp_path / "m" / "model.onnx" and not list((tmp_path / "m").glob(".*tmp"))
    stamp = path.stat().st_mtime_ns
    assert C.add_onnx(tmp_path / "m").stat().st_mtime_ns == stamp  # there already: not exported again
    proba, names = outside()(tmp_path / "m")
    want, _, _ = serve.Model(tmp_path / "m").predict(POS + NEG)
    assert names == ["n", "m", "p"] and np.abs(proba(POS + NEG) - want).max() < 1e-4


def test_a_folder_saved_before_the_contract_is_refused_where_the_contract_matters(saved, tmp_path):
    """A learner's cache from before labkit kept max_len, temperature and weights: read as it
    was (64 tokens, temperature 1) where nothing depends on them, refused by the service,
    set_temperature and add_onnx with the command that rebuilds it."""
    folder, tok, model = saved
    old = tmp_path / "finetuned-minilm-smoke"
    shutil.copytree(folder, old)
    (old / "model.onnx").unlink()
    (old / "classifier.json").write_text(json.dumps({"num_labels": 3, "label_names": None, "info": {"labels": 10}}))
    _, m, info = C.load_classifier(old)
    assert (m.max_len, m.temperature, info) == (64, 1.0, {"labels": 10})
    why = r"older labkit.*no max_len, temperature, weights, onnx.*rerun lab 03"
    for call in (lambda: serve.Model(old), lambda: C.set_temperature(old, m, 2.0), lambda: C.add_onnx(old)):
        with pytest.raises(C.CheckpointError, match=why):
            call()


def test_class_names_given_as_one_string_are_refused(saved, tmp_path):
    _, tok, model = saved
    with pytest.raises(ValueError, match="one string"):
        C.save_classifier(model, tok, tmp_path / "x", label_names="abc", onnx=False)

