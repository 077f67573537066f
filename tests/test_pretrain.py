import json

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from labkit.core import models, text
from labkit.labs import pretrain as P

CORPUS = ["a good film and a good cast", "a bad film with a bad plot", "the plot is thin",
          "the cast is great", "good acting, bad script"] * 20


@pytest.fixture(scope="module")
def tok():
    return text.train_wordpiece(CORPUS, vocab_size=60, min_frequency=1)


def test_tokenizer_special_tokens_and_unk(tok):
    enc = tok("a good film")["input_ids"]
    assert enc[0] == tok.cls_token_id and enc[-1] == tok.sep_token_id
    assert tok.convert_ids_to_tokens([0, 1, 2, 3, 4]) == text.SPECIAL
    assert text.unk_rate(tok, ["a good film"]) == 0
    assert text.unk_rate(tok, ["ß"]) == 1.0  # a character never seen in training
    assert list(text.lengths(tok, ["a good film", "the cast"])) == [3, 2]


def test_tokenizer_bad_input():
    with pytest.raises(ValueError, match="corpus is empty"):
        text.train_wordpiece([])
    with pytest.raises(TypeError, match="strings"):
        text.train_wordpiece(["ok", None])
    with pytest.raises(ValueError, match="no room"):
        text.train_wordpiece(["ok"], vocab_size=3)


def test_masking_rate_split_and_specials():
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(5, 1000, (400, 50))
    special = torch.zeros_like(ids, dtype=torch.bool)
    special[:, 0] = special[:, -1] = True
    inputs, labels = P.mask_tokens(ids, special, mask_id=4, vocab_size=1000, prob=0.15, generator=g)
    picked = labels != -100
    assert not picked[special].any()                          # specials never picked
    assert abs(picked.float().mean().item() / (48 / 50) - 0.15) < 0.01
    assert torch.equal(labels[picked], ids[picked])           # labels are the originals
    as_mask = (inputs[picked] == 4).float().mean().item()
    kept = (inputs[picked] == ids[picked]).float().mean().item()
    assert abs(as_mask - 0.8) < 0.02 and abs(kept - 0.1) < 0.02  # (+ ~0.1% random hits)
    assert torch.equal(inputs[~picked], ids[~picked])         # unpicked tokens untouched


def test_masking_hand_case():
    ids = torch.tensor([[2, 10, 11, 3]])
    special = torch.tensor([[True, False, False, True]])
    inputs, labels = P.mask_tokens(ids, special, 4, 20, prob=1.0, generator=torch.Generator().manual_seed(1))
    assert labels.tolist() == [[-100, 10, 11, -100]]
    assert inputs[0, 0] == 2 and inputs[0, 3] == 3
    with pytest.raises(ValueError, match="mask prob"):
        P.mask_tokens(ids, special, 4, 20, prob=0)


def test_masked_only_loss_equals_the_full_loss(tok):
    torch.manual_seed(0)
    model = models.small_bert(len(tok), hidden=32, layers=1, heads=2).eval()
    collate = P.MLMCollator(tok, prob=0.3, seed=0)
    batch = collate(tok(CORPUS[:8])["input_ids"])
    assert (batch["labels"] != -100).any()
    assert P.mlm_loss(model, batch).item() == pytest.approx(P.full_mlm_loss(model, batch).item(), rel=1e-5)


def test_loaders_tokenize_as_they_draw_and_give_the_batches_of_the_whole_corpus_tokenized_first(tok):
    """`loaders` tokenizes a training batch when the loader draws it (the ids of a whole corpus
    held ~0.2 GB of lab 02's memory): the held-out batches and every training batch over two
    epochs are those of the corpus tokenized at once, shuffled and masked with the same seeds."""
    cfg = P.PretrainConfig(max_len=8, batch_size=16, heldout=20, seed=3)
    texts = [f"{t} {i}" for i, t in enumerate(CORPUS)]  # 100 distinct passages
    train, held = P.loaders(tok, texts, cfg)
    assert all(isinstance(t, str) for t in train.dataset)  # passages, not ids: tokenized as drawn
    ids = tok(texts, truncation=True, max_length=cfg.max_len)["input_ids"]
    order = np.random.default_rng(cfg.seed).permutation(len(ids))

    def eager(rows, seed, **shuffle):
        return DataLoader([ids[i] for i in rows], batch_size=16, collate_fn=P.MLMCollator(tok, cfg.mask_prob, seed),
                          **shuffle)

    for got, want in ((held, list(eager(order[:20], cfg.seed + 1))),
                      ([b for _ in range(2) for b in train],  # two epochs: the loader reshuffles
                       [b for loader in [eager(order[20:], cfg.seed, shuffle=True,
                                               generator=torch.Generator().manual_seed(cfg.seed))]
                        for _ in range(2) for b in loader])):
        assert len(got) == len(want) > 1
        assert all(torch.equal(a[key], b[key]) for a, b in zip(got, want) for key in b)


def test_pretraining_lowers_heldout_loss(tok):
    cfg = P.PretrainConfig(vocab_size=60, hidden=32, layers=1, heads=2, max_len=16, batch_size=16,
                           steps=60, lr=3e-3, warmup=5, heldout=20, eval_every=30)
    model, hist = P.pretrain(cfg, CORPUS, tok, progress=False)
    assert hist.eval_step == [0, 30, 60]
    assert hist.eval[-1]["loss"] < 0.7 * hist.eval[0]["loss"]
    top = P.fill_mask(model, tok, "the [MASK] is great")
    assert len(top) == 5 and top[0][1] > 1 / len(tok)
    with pytest.raises(ValueError, match=r"\[MASK\]"):
        P.fill_mask(model, tok, "no mask here")


def test_save_load_round_trip_and_vocab_check(tok, tmp_path):
    model = models.small_bert(len(tok), hidden=32, layers=1, heads=2)
    folder = models.save(model, tok, tmp_path / "ckpt")
    assert (folder / "model.safetensors").exists() and not list(folder.glob("*.bin"))
    tok2, model2 = models.load(folder)
    assert tok2("a good film")["input_ids"] == tok("a good film")["input_ids"]
    for (k, a), (_, b) in zip(model.state_dict().items(), model2.state_dict().items()):
        assert torch.equal(a, b), k
    other = text.train_wordpiece(CORPUS, vocab_size=40, min_frequency=1)
    with pytest.raises(ValueError, match="not trained together"):
        models.check_vocab(model, other)
    with pytest.raises(FileNotFoundError, match="model.safetensors"):
        models.load(tmp_path)


def test_config_per_scale():
    assert P.PretrainConfig.for_scale("smoke").steps < P.PretrainConfig.for_scale("cpu").steps
    with pytest.raises(ValueError, match="divisible"):
        models.small_bert(100, hidden=30, heads=4)


def test_flops_and_throughput(tok):
    model = models.small_bert(len(tok), hidden=32, layers=1, heads=2)
    enc = 32 * 32 * 4 + 2 * 32 * 128  # one block's matmul weights (q, k, v, o; two FFN)
    head = 32 * (len(tok) + 32)
    assert P.flops_per_token(model, 0.15) == pytest.approx(6 * (enc + 0.15 * head))

    class H:
        examples, seconds = 1000, 2.0

    tokens_s, mfu = P.throughput(H, 10, model, gflops=100)
    assert tokens_s == 5000 and mfu == pytest.approx(5000 * P.flops_per_token(model) / 1e11)


def test_fill_mask_explorer_prints_a_fallback(tok, capsys):
    model = models.small_bert(len(tok), hidden=32, layers=1, heads=2)
    box = P.fill_mask_explorer(model, tok, "the [MASK] is great", k=3)
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "the [MASK] is great" and len(out) == 4
    assert box is not None


def test_pad_hand_case():
    assert text.pad([[5, 6, 7], [8]], 0).tolist() == [[5, 6, 7], [8, 0, 0]]


def test_corpus_is_a_plain_list_without_the_test_reviews():
    """A datasets Column is lazy and a tokenizer refuses it: the corpus must be a list."""
    from labkit.core import data
    texts = P.corpus(P.PretrainConfig(max_texts=None))
    assert isinstance(texts, list) and all(isinstance(t, str) for t in texts[:100])
    assert not set(data.review_splits()["test"]["text"]) & set(texts)


def test_wordpiece_ids_do_not_depend_on_the_run(tmp_path, monkeypatch):
    """The trainer numbers equally frequent tokens in a random order; train_wordpiece must not
    (each training here in an empty cache of its own, so each one really trains)."""
    texts = [f"the film {w} was {v}" for w in ("good", "bad", "odd", "new", "old", "fun", "sad", "raw")
             for v in ("great", "dull", "long", "short", "slow", "fast", "loud", "calm")] * 3
    vocabs = []
    for i in range(6):
        monkeypatch.setenv("LABKIT_CACHE", str(tmp_path / str(i)))
        vocabs.append(text.train_wordpiece(texts, vocab_size=60, min_frequency=1).get_vocab())
        assert len(list((tmp_path / str(i) / "runs").glob("wordpiece-*"))) == 1  # kept for the next call
    assert all(v == vocabs[0] for v in vocabs)
    assert [t for t, i in sorted(vocabs[0].items(), key=lambda kv: kv[1])][:5] == text.SPECIAL


def test_wordpiece_learns_the_same_tokens_every_run(tmp_path, monkeypatch):
    """On this corpus the bare trainer picks one of several token sets (8 different ones in 12
    runs, huggingface/tokenizers#1794); train_wordpiece must pick one, in an empty cache each
    time. The corpus: random words over six letters, where many merges tie."""
    import random
    rng = random.Random(30)
    words = ["".join(rng.choice("abcdef") for _ in range(rng.randint(2, 5))) for _ in range(30)]
    texts = [" ".join(rng.choice(words) for _ in range(6)) for _ in range(20)]
    vocabs = set()
    for i in range(8):
        monkeypatch.setenv("LABKIT_CACHE", str(tmp_path / str(i)))
        tok = text.train_wordpiece(texts, vocab_size=40, min_frequency=1)
        vocabs.add(tuple(sorted(tok.get_vocab().items())))
        assert tok.all_special_tokens and set(tok.all_special_tokens) <= set(text.SPECIAL)
    assert len(vocabs) == 1
    assert tok.tokenize(words[0]) and all(t != "[UNK]" for t in tok.tokenize(texts[0]))


def test_wordpiece_reads_its_vocabulary_back_so_a_second_run_keeps_its_model(tmp_cache, monkeypatch):
    """Where merges tie the trainer picks different tokens run to run (lab 02's corpus): the
    second call must not train again, or every model and run key built on it changes."""
    texts = CORPUS * 3
    first = text.train_wordpiece(texts, vocab_size=60, min_frequency=1)
    (folder,) = (tmp_cache / "runs").glob("wordpiece-*")
    planted = {**{t: i for t, i in first.get_vocab().items()}, "zzplanted": len(first)}  # a vocabulary no trainer makes
    (folder / "vocab.json").write_text(json.dumps(planted))
    again = text.train_wordpiece(texts, vocab_size=60, min_frequency=1)
    assert again.get_vocab() == planted and again.tokenize("zzplanted") == ["zzplanted"]
    assert again("a film")["input_ids"][0] == again.cls_token_id  # the post-processor is rebuilt too


def test_fill_mask_explorer_compares_models_side_by_side(tok, capsys):
    a = models.small_bert(len(tok), hidden=32, layers=1, heads=2)
    b = models.small_bert(len(tok), hidden=32, layers=1, heads=2)
    P.fill_mask_explorer({"first": (a, tok), "second": (b, tok)}, text="the [MASK] is great", k=2)
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "the [MASK] is great" and len(out) == 4
    assert out[1].split() == ["first", "second"] and len(out[2]) == 48


def test_probe_ranks_hand_case_and_bad_probe(tok):
    model = models.small_bert(len(tok), hidden=32, layers=1, heads=2)
    logits = P.mask_logits(model, tok, "the [MASK] is great")
    want = int((logits > logits[tok.convert_tokens_to_ids("cast")]).sum())
    assert P.probe_ranks(model, tok, {"the [MASK] is great": "cast"}) == {"the [MASK] is great": want}
    with pytest.raises(ValueError, match="not one token"):
        P.probe_ranks(model, tok, {"the [MASK] is great": "unforgettable"})


def test_adamw_gives_a_prefix_its_own_learning_rate():
    from labkit.core.train import adamw
    model = models.small_bert(60, hidden=32, layers=1, heads=2)
    opt = adamw(model, 1e-4, lr_by_prefix={"cls.": 1e-2})
    rates = {id(p): g["lr"] for g in opt.param_groups for p in g["params"]}
    for name, p in model.named_parameters():
        assert rates[id(p)] == (1e-2 if name.startswith("cls.") else 1e-4), name
    assert len(adamw(model, 1e-4).param_groups) == 1


def test_probe_curve_pairs_by_seed(tok):
    import numpy as np
    encoder = models.small_bert(len(tok), hidden=32, layers=1, heads=2).bert
    x = np.array(CORPUS[:40], dtype=object)
    y = np.array([int("good" in t or "great" in t) for t in x])
    curve = P.probe_curve(encoder, tok, x, y, list(x[:10]), y[:10], budgets=(10, 20), seeds=2, max_len=16)
    assert set(curve) == {10, 20} and all(len(a) == 2 and all(0 <= v <= 1 for v in a) for a in curve.values())
    assert curve == P.probe_curve(encoder, tok, x, y, list(x[:10]), y[:10], budgets=(10, 20), seeds=2, max_len=16)


def test_minilm_gets_a_new_head_tied_to_its_word_embeddings():
    tokenizer, mlm = P.minilm_mlm(seed=0)
    _, plain = models.load_minilm()
    assert mlm.cls.predictions.decoder.weight is mlm.bert.embeddings.word_embeddings.weight
    assert torch.equal(mlm.bert.encoder.layer[0].attention.self.query.weight,
                       plain.encoder.layer[0].attention.self.query.weight)
    _, again = P.minilm_mlm(seed=0)
    assert torch.equal(again.cls.predictions.transform.dense.weight, mlm.cls.predictions.transform.dense.weight)
    assert all(w in tokenizer.get_vocab() for w in P.DOMAIN_PROBES.values())
    assert all(s.count("[MASK]") == 1 for s in P.DOMAIN_PROBES)


def test_adapt_trains_the_head_alone_or_the_whole_model(tmp_path, monkeypatch):
    import dataclasses

    from labkit.core import cache
    monkeypatch.setattr(cache, "run_dir", lambda kind, key: tmp_path / f"{kind}-{key}")  # keep the user's cache clean
    cfg = dataclasses.replace(P.AdaptConfig.for_scale("smoke"), steps=2, warmup=1, heldout=16, eval_every=2)
    texts = ["a good film with a great cast", "the plot is thin and the script is weak"] * 30
    _, plain = models.load_minilm()
    query = plain.encoder.layer[0].attention.self.query.weight
    _, head_only, h1 = P.adapt(cfg, texts, body=False, progress=False)
    assert torch.equal(head_only.bert.encoder.layer[0].attention.self.query.weight, query)
    _, adapted, h2 = P.adapt(cfg, texts, body=True, progress=False)
    assert not torch.equal(adapted.bert.encoder.layer[0].attention.self.query.weight, query)
    assert h1.eval_step == h2.eval_step == [0, 2] and h1.eval[0] == h2.eval[0]  # same start, same masks
    _, again, h3 = P.adapt(cfg, texts, body=True, progress=False)  # read back from the run cache
    assert torch.equal(again.cls.predictions.transform.dense.weight, adapted.cls.predictions.transform.dense.weight)
    assert again.cls.predictions.decoder.weight is again.bert.embeddings.word_embeddings.weight
    assert h3.eval == h2.eval
