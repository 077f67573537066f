import json
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from labkit.core import cache


def test_cache_dir_override(monkeypatch, tmp_path):
    monkeypatch.setenv("LABKIT_CACHE", str(tmp_path))
    assert cache.cache_dir() == tmp_path.resolve()
    monkeypatch.delenv("LABKIT_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert cache.cache_dir() == (tmp_path / "x" / "labkit").resolve()


def test_relative_cache_is_made_absolute(monkeypatch, tmp_path):
    """A kernel runs in notebooks/: a relative LABKIT_CACHE must not move with it."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LABKIT_CACHE", "mycache")
    assert cache.cache_dir() == tmp_path.resolve() / "mycache"


def test_key_is_stable_and_sensitive():
    a = cache.key(lr=1e-3, texts=["a", "b"], labels=np.array([0, 1]))
    assert a == cache.key(texts=["a", "b"], lr=1e-3, labels=np.array([0, 1]))  # order of names
    assert len(a) == 16
    assert a != cache.key(lr=1e-3, texts=["a", "b"], labels=np.array([1, 0]))
    assert a != cache.key(lr=1e-3, texts=["a", "b"], labels=np.array([0, 1], dtype=np.int32))
    assert a != cache.key(lr=2e-3, texts=["a", "b"], labels=np.array([0, 1]))
    texts = np.array(["a", "b"], dtype=object)  # object arrays are keyed by their items
    assert cache.key(t=texts) == cache.key(t=np.array(["a", "b"], dtype=object)) == cache.key(t=["a", "b"])
    with pytest.raises(TypeError, match="cannot key a function"):
        cache.key(loss=lambda x: x)


def test_fingerprint_sees_every_byte():
    model = torch.nn.Linear(3, 2)
    before = cache.fingerprint(model)
    assert before == cache.fingerprint(model.state_dict()) and len(before) == 64
    with torch.no_grad():
        model.weight[0, 0] += 1e-7  # far below what a rounded sum would notice
    assert cache.fingerprint(model) != before
    half = torch.nn.Linear(3, 2).to(torch.bfloat16)  # dtypes numpy lacks still hash
    assert cache.fingerprint(half) != cache.fingerprint(half.float())


def test_atomic_folder_keeps_nothing_half_written(tmp_path):
    target = tmp_path / "out"
    with pytest.raises(RuntimeError):
        with cache.atomic_folder(target) as tmp:
            (tmp / "part").write_text("half")
            raise RuntimeError("interrupted")
    assert not target.exists() and list(tmp_path.iterdir()) == []
    with cache.atomic_folder(target) as tmp:
        (tmp / "whole").write_text("done")
    assert [p.name for p in target.iterdir()] == ["whole"]
    cache.write_json(tmp_path / "x.json", {"a": np.float32(0.5), "b": np.arange(2)})
    assert json.loads((tmp_path / "x.json").read_text())["a"] == 0.5
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_an_entry_made_meanwhile_by_another_process_gives_way_to_ours(tmp_path, monkeypatch):
    target = tmp_path / "out"
    with cache.atomic_folder(target) as tmp:
        (tmp / "ours").write_text("ours")
        target.mkdir()  # another process finished the same entry first
        (target / "theirs").write_text("theirs")
    assert [p.name for p in target.iterdir()] == ["ours"] and [p.name for p in tmp_path.iterdir()] == ["out"]
    real = cache.os.replace
    landed = []

    def racing(src, dst):  # just before ours takes target's place, another process's lands there
        if Path(dst) == target and Path(src) != target and not landed:
            landed.append(dst)
            target.mkdir()
            (target / "late").write_text("late")
        return real(src, dst)

    monkeypatch.setattr(cache.os, "replace", racing)
    with cache.atomic_folder(target) as tmp:
        shutil.rmtree(target)  # and the entry we started from went away meanwhile (nothing to move)
        (tmp / "second").write_text("second")
    assert landed and [p.name for p in target.iterdir()] == ["second"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_done_marks_and_fresh(tmp_cache, monkeypatch):
    folder = cache.run_dir("t", "abc")
    assert folder == tmp_cache.resolve() / "runs" / "t-abc" and not cache.is_done(folder)
    folder.mkdir(parents=True)
    assert not cache.is_done(folder)  # a folder without done.json is not a finished run
    cache.mark_done(folder, {"steps": 3})
    assert cache.is_done(folder) and cache.done_info(folder) == {"steps": 3}
    monkeypatch.setenv("LABKIT_FRESH", str(time.time() + 10))
    assert not cache.is_done(folder)  # made before the fresh run began
    monkeypatch.setenv("LABKIT_FRESH_KEEP", "minilm-embeddings, t")  # `labkit run --fresh --keep t`
    assert cache.is_done(folder)
    other = cache.run_dir("tt", "abc")
    other.mkdir(parents=True)
    cache.mark_done(other)
    assert not cache.is_done(other)  # only the kinds named are kept
    monkeypatch.delenv("LABKIT_FRESH_KEEP")
    monkeypatch.setenv("LABKIT_FRESH", "yesterday")
    with pytest.raises(ValueError, match="LABKIT_FRESH"):
        cache.is_done(folder)


def test_arrays_are_computed_once(tmp_cache):
    calls = []

    def compute():
        calls.append(1)
        return {"x": np.arange(6, dtype=np.float32).reshape(2, 3)}

    first = cache.arrays("emb", "k1", compute)
    again = cache.arrays("emb", "k1", compute)
    assert calls == [1] and np.array_equal(first["x"], again["x"])
    cache.arrays("emb", "k2", compute)
    assert calls == [1, 1] and cache.size("runs") > 0 and cache.size("nothing") == 0


def test_size_skips_what_another_process_renames_away_mid_walk(tmp_cache, monkeypatch):
    import os

    from labkit.core import cache
    (tmp_cache / "runs" / "a").mkdir(parents=True)
    (tmp_cache / "runs" / "a" / "w.bin").write_bytes(b"x" * 100)
    (tmp_cache / "runs" / ".b.tmp").mkdir()
    (tmp_cache / "runs" / ".b.tmp" / "gone.bin").write_bytes(b"x" * 50)
    assert cache.size("runs") == 150
    real = os.stat

    def racing(path, *a, **k):  # another process renames its temporary folder between listing and stat
        if "gone.bin" in str(path):
            raise FileNotFoundError(path)
        return real(path, *a, **k)
    monkeypatch.setattr(os, "stat", racing)
    assert cache.size("runs") == 100 and cache.size("nothing here") == 0
