import numpy as np
import pytest

from labkit.core import data
from labkit.labs import augment as A

# a hand-made thesaurus: good ~ great ~ fine (positive), bad ~ awful (negative), and
# film ~ movie; "good" and "bad" share a category, as in Roget
CATS = {"good": {"G", "Q"}, "great": {"G"}, "fine": {"G"}, "bad": {"B", "Q"}, "awful": {"B"},
        "film": {"F"}, "movie": {"F"}, "not": {"G"}}
_rng = np.random.default_rng(0)
BASE = _rng.normal(size=8)
VECS = {w: v / np.linalg.norm(v) for w, v in {
    "good": BASE, "great": BASE + 0.1 * _rng.normal(size=8), "fine": BASE + 0.3 * _rng.normal(size=8),
    "bad": BASE + 0.05 * _rng.normal(size=8), "awful": -BASE, "film": _rng.normal(size=8),
    "not": BASE}.items()}
VECS["movie"] = VECS["film"]
VECS["awful"] = VECS["bad"]
POL = {"good": 1, "great": 1, "fine": 1, "bad": -1, "awful": -1}


@pytest.fixture
def th():
    return A.Thesaurus(CATS, VECS, POL, min_similarity=0.3)


def test_synonyms_ranked_and_polarity_kept(th):
    assert th.synonyms("good") == ["great", "fine"]  # never "bad", never "not"
    assert th.synonyms("good", same_polarity=False)[0] == "bad"  # the trap the guard avoids
    assert th.synonyms("film") == ["movie"]
    assert th.synonyms("unknown") == []


def test_protected_positions():
    words = "it is not good but fun , isn't it".split()
    assert A.protected_positions(words) == {2, 3, 4, 7, 8}
    assert A.protected_positions(["never"]) == {0}
    assert A.protected_positions("not a bad film".split()) == {0, 1, 2}  # the scope: "a bad"
    assert A.protected_positions("no , it is not".split()) == {0, 1, 4}  # scope ends at punctuation


@pytest.mark.parametrize("op", A.OPS)
def test_each_op_is_seeded_and_handles_edge_cases(op, th):
    text = "the good film was a fine movie and a great time"
    one = A.apply(op, text, 0.3, seed=1, thesaurus=th)
    assert one == A.apply(op, text, 0.3, seed=1, thesaurus=th)  # deterministic
    assert {A.apply(op, text, 0.3, seed=s, thesaurus=th) for s in range(6)} != {one}  # seed matters
    assert one != text
    assert A.apply(op, "", 0.3, thesaurus=th) == ""
    single = A.apply(op, "good", 0.5, seed=0, thesaurus=th)
    assert len(single.split()) in (1, 2) and single.strip()
    assert A.apply(op, text, 0.0, thesaurus=th) == text
    with pytest.raises(TypeError, match="must be a string"):
        A.apply(op, 3.5, thesaurus=th)
    with pytest.raises(ValueError, match="between 0 and 1"):
        A.apply(op, text, 1.5, thesaurus=th)


def test_ops_by_hand(th):
    # swap and delete keep the multiset / an ordered subset of the words
    words = "a b c d e f g h".split()
    swapped = A.apply("swap", " ".join(words), 0.25, seed=2).split()
    assert sorted(swapped) == sorted(words) and swapped != words
    deleted = A.apply("delete", " ".join(words), 0.5, seed=2).split()
    assert 0 < len(deleted) < len(words) and deleted == [w for w in words if w in deleted]
    assert A.apply("delete", "a b", 1.0, seed=0) in ("a", "b")  # never empty
    # replace: one word of two changes, into a synonym, keeping case and punctuation
    assert A.apply("replace", "Good, film", 0.5, seed=0, thesaurus=th) in (
        "Great, film", "Fine, film", "Good, movie")
    inserted = A.apply("insert", "good film", 0.5, seed=0, thesaurus=th).split()
    assert len(inserted) == 3 and set(inserted) - {"good", "film"} <= {"great", "fine", "movie"}


def test_the_guard_protects_negation(th):
    text = "not good , not a great film but fine"
    for seed in range(30):
        for op in A.OPS:
            out = A.apply(op, text, 0.5, seed=seed, thesaurus=th)
            assert A.negations(out) == ["not", "not"]
            assert "bad" not in out and "awful" not in out
            w = out.split()
            assert w[w.index("not") + 1] == "good"  # the negated word stays put
    for seed in range(30):  # nothing lands inside "not a good"
        w = A.apply("insert", "not a good film , a fine movie", 0.5, seed=seed, thesaurus=th).split()
        assert w[w.index("not"):w.index("not") + 3] == ["not", "a", "good"]
    unguarded = {A.apply(op, text, 0.5, seed=s, guard=False, thesaurus=th)
                 for s in range(30) for op in ("delete", "replace")}
    assert any(A.negations(u) != ["not", "not"] for u in unguarded)
    assert any("bad" in u or "awful" in u for u in unguarded)


def test_eda_and_augment(th, monkeypatch, tmp_cache):  # its own cache: these variants come from a toy thesaurus
    monkeypatch.setattr(A.Thesaurus, "load", classmethod(lambda cls, *a: th))
    texts, labels = ["not a good film", "a bad movie", "great"], [1, 0, 1]
    out, y = A.augment(texts, labels, n_aug=4, strength=0.3, seed=0)
    assert out[:3] == texts and len(out) == 15 and y.tolist() == [1, 0, 1] + [1] * 4 + [0] * 4 + [1] * 4
    real_eda = A.eda
    monkeypatch.setattr(A, "eda", lambda *a, **k: pytest.fail("augment() recomputed variants it has cached"))
    assert A.augment(texts, labels, 4, 0.3, seed=0)[0] == out  # read back from the run cache
    assert A.augment(texts, [0, 1, 0], 4, 0.3, seed=0)[0] == out  # the labels are not in the variants' key
    monkeypatch.setattr(A, "eda", real_eda)
    assert A.augment(texts, labels, 4, 0.3, seed=1)[0] != out  # another seed: computed afresh
    variants = A.eda("not a good film", 4, 0.3, seed=0, thesaurus=th)
    assert variants == out[3:7]  # augment = eda on each review, in order
    assert variants == [A.apply(op, "not a good film", 0.3, i, thesaurus=th) for i, op in enumerate(A.OPS)]
    assert A.negations_kept([t for t in texts for _ in range(4)], out[3:]) == 1.0
    # negation_survival: only the reviews with a negation count, 4 variants each
    assert A.negation_survival(texts, 4, 0.3) == (1, 1.0)
    assert A.negation_survival(["a fine film", "great"], 4, 0.3) == (0, 1.0)
    gone = A.negation_survival(["not a good film"], 8, 1.0, guard=False, ops=("delete",))
    assert gone[0] == 1 and gone[1] < 0.5  # delete keeps one word of four: rarely "not"
    assert A.negation_survival(["not a good film"], 8, 1.0, ops=("delete",)) == (1, 1.0)
    with pytest.raises(ValueError, match="3 texts but 2 labels"):
        A.augment(texts, [1, 0])
    with pytest.raises(TypeError, match="must be strings"):
        A.augment(["ok", None], [1, 0])
    with pytest.raises(ValueError, match="unknown operations"):
        A.eda("a b", ops=("shuffle",))


def test_negations_kept():
    assert A.negations("Not bad, never dull; isn't it") == ["not", "never", "isn't"]
    assert A.negations_kept(["not bad", "good"], ["bad", "fine"]) == 0.0
    assert A.negations_kept(["not bad", "not good"], ["not awful", "good"]) == 0.5
    assert A.negations_kept(["good"], ["fine"]) == 1.0


def test_real_thesaurus():
    th = A.Thesaurus.load()
    assert "hilarious" in th.synonyms("funny")
    assert "bad" not in th.synonyms("good") and "bad" in th.synonyms("good", same_polarity=False)
    assert "movie" in th.synonyms("film")


def test_paired_gains_share_rows_and_seeds_between_arms(monkeypatch, tmp_path):
    A.Thesaurus.load()  # the course's thesaurus (fetched data), remembered; then this test's own run cache
    monkeypatch.setenv("LABKIT_CACHE", str(tmp_path))
    texts = [f"a good film number {i}" for i in range(30)] + [f"a bad film number {i}" for i in range(30)]
    labels = [1] * 30 + [0] * 30
    seen = []

    def fit_score(x, y, seed):
        seen.append((len(x), seed, tuple(sorted(x)[:3])))
        return len(x) / 1000

    out = A.paired_gains(fit_score, texts, labels, (10, None), seeds=2, n_aug=2, strength=0.2,
                         guard=True)
    assert set(out) == {"plain", "augmented"} and set(out["plain"]) == {10, 60}
    assert len(out["plain"][60]) == 2  # all labels: one run per seed (augmentation differs)
    plain = [s for s in seen if s[0] in (10, 60)]
    augmented = [s for s in seen if s[0] in (30, 180)]
    assert [(n // 3, seed) for n, seed, _ in augmented] == [(n, seed) for n, seed, _ in plain]
    assert out["augmented"][10] == [0.03, 0.03]  # the originals plus 2 variants each
    seen.clear()  # the lab's live seeds: ones its study never drew, the same rows and seed in both arms
    out = A.paired_gains(fit_score, texts, labels, (10, None), seeds=(10,), n_aug=2, strength=0.2)
    (n_p, s_p, _), (n_pa, s_pa, _), (n_a, s_a, first_a), (n_aa, s_aa, _) = seen
    assert (n_p, n_pa, n_a, n_aa) == (10, 60, 30, 180) and {s_p, s_pa, s_a, s_aa} == {10}
    rows = data.sample_per_class(np.asarray(labels), 10, 10)
    assert first_a == tuple(sorted(A.augment([texts[i] for i in rows], np.asarray(labels)[rows], 2, 0.2,
                                             seed=10)[0])[:3])
    assert len(out["augmented"][10]) == len(out["augmented"][60]) == 1


def test_live_seeds_are_new_to_the_study_at_cpu():
    from labkit.course import study
    drawn = study.load("lab04")["settings"]["seeds"]  # the committed study's seeds: 0 .. drawn - 1
    cpu, smoke, gpu = (A.AugmentConfig.for_scale(s) for s in ("cpu", "smoke", "gpu"))
    assert len(cpu.seeds) == 1 and len(smoke.seeds) == 2 and len(gpu.seeds) == drawn  # gpu: the study's size live
    assert all(min(c.seeds) >= drawn for c in (cpu, smoke, gpu))
    assert (cpu.n_aug, cpu.strength) == (smoke.n_aug, smoke.strength) == (gpu.n_aug, gpu.strength)
