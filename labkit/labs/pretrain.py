"""Lab 02: self-supervised pretraining with masked-language modelling (MLM).

`mask_tokens` applies BERT's rule: pick 15% of the non-special tokens; of those, 80% become
``[MASK]``, 10% a random token, 10% stay as they are; only picked positions have labels.
`mlm_loss` gathers the hidden states of the picked positions *before* the LM head, so the
big vocabulary projection runs on ~15% of the tokens (2-3x faster on a CPU than scoring
every position, which is what `full_mlm_loss` does and what the unit test compares against).
`pretrain` runs the one training loop (`labkit.core.train.train`) with that loss and the course
recipe, and keeps the result in the run cache (a second run of lab 02 reads it back).
`minilm_mlm` gives the real MiniLM (which ships without one) an MLM head, and `adapt`
continues its pretraining on the unlabelled reviews: domain-adaptive pretraining (Gururangan
et al. 2020), against a head trained alone on the frozen model for the same steps.
`probe_ranks` scores any of these models on fill-mask probes (`DOMAIN_PROBES`).
Leaves out: next-sentence prediction, whole-word masking.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from labkit.core import cache, data, fetch
from labkit.core.config import ScaledConfig
from labkit.core.curves import budget_curve, frozen_accuracy
from labkit.core.env import scale as current_scale
from labkit.core.env import release_memory, seed_everything
from labkit.core.models import check_vocab, load, load_minilm, save, small_bert
from labkit.core.text import pad, train_wordpiece
from labkit.core.train import RECIPE, History, adamw, train, warmup_linear

# Fill-mask probes for the review domain, each answer one token of MiniLM's vocabulary; fixed
# before any adapted model was measured (lab 02 compares models by the rank of the answer).
DOMAIN_PROBES = {
    "one of the best films of the [MASK] .": "year", "the special [MASK] are impressive .": "effects",
    "the film is based on a true [MASK] .": "story", "a romantic [MASK] starring two famous actors .": "comedy",
    "two hours of my life i will never get [MASK] .": "back", "the movie was so [MASK] that i fell asleep .": "boring",
    "the story takes [MASK] in paris .": "place", "the sequel is not as good as the [MASK] .": "original",
    "the biggest [MASK] office hit of the summer .": "box",
    "the film won the academy [MASK] for best picture .": "award",
    "the movie is too long by half an [MASK] .": "hour", "the plot has more holes than swiss [MASK] .": "cheese",
    "the acting is good but the [MASK] is weak .": "script", "a [MASK] and moving film about growing up .": "funny",
    "it is not a [MASK] movie , just a dull one .": "bad", "the [MASK] is a mess .": "plot",
}


@dataclass
class PretrainConfig(ScaledConfig):
    """Settings of lab 02. ``PretrainConfig.for_scale()`` picks them for LABKIT_SCALE."""
    vocab_size: int = 8000     # WordPiece vocabulary
    hidden: int = 128          # model width
    layers: int = 2            # transformer blocks
    heads: int = 2             # attention heads
    max_len: int = 48          # tokens per passage (longer ones are cut; median is ~30)
    batch_size: int = 32
    steps: int = 2000          # optimizer steps: ~0.1 s each on 2 CPU cores
    lr: float = 2e-3
    warmup: int = 150          # linear warm-up steps, then linear decay to 0
    mask_prob: float = 0.15
    heldout: int = 500         # passages kept aside to measure held-out loss
    eval_every: int = 500
    max_texts: int | None = None  # cap on pretraining passages (None = all)
    seed: int = 0

    SCALES: ClassVar[dict] = {  # what differs from the cpu defaults above
        "smoke": dict(vocab_size=2000, hidden=64, layers=1, heads=2, steps=40, warmup=5,
                      heldout=64, eval_every=20, max_texts=3000, lr=1e-3),
        "gpu": dict(vocab_size=16000, hidden=256, layers=4, heads=4, max_len=128,
                    batch_size=64, steps=6000, lr=5e-4, warmup=300, eval_every=500),
    }


def mask_tokens(input_ids, special_mask, mask_id: int, vocab_size: int, prob: float = 0.15,
                generator=None):
    """(inputs, labels) for MLM. ``special_mask`` is True where a token must never be picked
    ([CLS], [SEP], [PAD]); labels are -100 except at picked positions.

    Example: with prob=1 every ordinary token is picked; ~80% of them become ``mask_id``.
    """
    if not 0 < prob <= 1:
        raise ValueError(f"mask prob must be in (0, 1], got {prob}")
    inputs, labels = input_ids.clone(), input_ids.clone()
    picked = (torch.rand(input_ids.shape, generator=generator) < prob) & ~special_mask
    labels[~picked] = -100
    roll = torch.rand(input_ids.shape, generator=generator)
    inputs[picked & (roll < 0.8)] = mask_id                       # 80%: [MASK]
    swap = picked & (roll >= 0.8) & (roll < 0.9)                  # 10%: a random token
    inputs[swap] = torch.randint(vocab_size, input_ids.shape, generator=generator)[swap]
    return inputs, labels                                        # 10%: unchanged


def mlm_loss(model, batch):
    """Cross entropy on the masked positions only, gathered before the LM head."""
    hidden = model.bert(input_ids=batch["input_ids"],
                        attention_mask=batch["attention_mask"]).last_hidden_state  # (b, seq, h)
    picked = batch["labels"] != -100                                               # (b, seq)
    logits = model.cls(hidden[picked])                                             # (n, vocab)
    return F.cross_entropy(logits, batch["labels"][picked])


def full_mlm_loss(model, batch):
    """The same loss, computed the slow way: score every position, ignore unmasked ones."""
    return model(**batch).loss


class MLMCollator:
    """Pads a list of token-id lists and masks them; seeded, so a run can be repeated."""

    def __init__(self, tokenizer, prob: float = 0.15, seed: int = 0):
        self.tok, self.prob = tokenizer, prob
        self.gen = torch.Generator().manual_seed(seed)
        self.special = {tokenizer.pad_token_id, tokenizer.cls_token_id, tokenizer.sep_token_id}

    def __call__(self, examples):
        ids = pad(examples, self.tok.pad_token_id)                       # (b, longest)
        special = torch.zeros_like(ids, dtype=torch.bool)
        for s in self.special:
            special |= ids == s
        inputs, labels = mask_tokens(ids, special, self.tok.mask_token_id, len(self.tok),
                                     self.prob, self.gen)
        return {"input_ids": inputs, "attention_mask": (ids != self.tok.pad_token_id).long(),
                "labels": labels}


def heldout_loss(model, loader) -> dict:
    """Mean masked-LM loss (and perplexity) over a loader: the `eval_fn` of pretraining."""
    model.eval()
    device = next(model.parameters()).device
    total, n = 0.0, 0
    with torch.no_grad():
        for batch in loader:
            batch = {k: v.to(device) for k, v in batch.items()}
            k = int((batch["labels"] != -100).sum())
            total += mlm_loss(model, batch).item() * k
            n += k
    loss = total / max(n, 1)
    return {"loss": loss, "perplexity": math.exp(min(loss, 50))}


def mask_logits(model, tokenizer, text: str):
    """The model's logits (vocab,) for the first ``[MASK]`` in ``text``."""
    if tokenizer.mask_token not in text:
        raise ValueError(f"put {tokenizer.mask_token} in the text, e.g. 'a [MASK] film'")
    enc = tokenizer(text, return_tensors="pt")
    pos = (enc["input_ids"][0] == tokenizer.mask_token_id).nonzero()[0, 0]
    model.eval()
    with torch.no_grad():
        return model(input_ids=enc["input_ids"].to(model.device),
                     attention_mask=enc["attention_mask"].to(model.device)).logits[0, pos]


def fill_mask(model, tokenizer, text: str, k: int = 5):
    """Top-k (token, probability) for the first ``[MASK]`` in ``text``."""
    top = mask_logits(model, tokenizer, text).softmax(-1).topk(k)
    return [(tokenizer.convert_ids_to_tokens(int(i)), float(p)) for p, i in zip(top.values, top.indices)]


def loaders(tokenizer, texts, cfg: PretrainConfig):
    """(train, held-out) DataLoaders of tokenized, masked passages; held-out masks are fixed.
    Training passages are tokenized a batch at a time, as the loader draws them: the token ids
    of a whole corpus, as Python lists, held ~0.2 GB of lab 02's memory through its training
    (a passage's ids are the same either way, so are the batches)."""
    texts = list(texts)
    order = np.random.default_rng(cfg.seed).permutation(len(texts))
    held = tokenizer([texts[i] for i in order[:cfg.heldout]], truncation=True, max_length=cfg.max_len)["input_ids"]
    train = [texts[i] for i in order[cfg.heldout:]]
    held_batches = list(DataLoader(held, batch_size=cfg.batch_size,
                                   collate_fn=MLMCollator(tokenizer, cfg.mask_prob, cfg.seed + 1)))
    train_loader = DataLoader(train, batch_size=cfg.batch_size, shuffle=True,
                              generator=torch.Generator().manual_seed(cfg.seed),
                              collate_fn=_Tokenized(tokenizer, cfg.max_len,
                                                    MLMCollator(tokenizer, cfg.mask_prob, cfg.seed)))
    return train_loader, held_batches


class _Tokenized:
    """A DataLoader's collate function: tokenize a batch of passages, then hand the ids on."""

    def __init__(self, tokenizer, max_len: int, collate):
        self.tok, self.max_len, self.collate = tokenizer, max_len, collate

    def __call__(self, passages):
        return self.collate(self.tok(list(passages), truncation=True, max_length=self.max_len)["input_ids"])


def new_model(cfg: PretrainConfig, tokenizer):
    """The untrained small BERT of ``cfg``, seeded."""
    seed_everything(cfg.seed)
    return small_bert(len(tokenizer), cfg.hidden, cfg.layers, cfg.heads,
                      max_len=max(cfg.max_len, 64), pad_token_id=tokenizer.pad_token_id)


def pretrain(cfg: PretrainConfig, texts, tokenizer, model=None, progress: bool = True):
    """Pretrain a small BERT (``model``, default `new_model`) with MLM on ``texts``, or read
    the same run (same initial weights, vocabulary, texts, settings and recipe) back from the
    run cache. Returns (model, History); the history's first evaluation is the untrained
    model's held-out loss (step 0)."""
    model = model if model is not None else new_model(cfg, tokenizer)
    check_vocab(model, tokenizer)
    return _pretrain_run(cfg, list(texts), tokenizer, model, progress)


@cache.keyed("pretrain", exclude=("progress",), depends=lambda: {"recipe": RECIPE})
def _pretrain_run(cfg, texts, tokenizer, model, progress, *, folder):
    return cached_mlm(model, tokenizer, texts, cfg, folder, progress)


def cached_mlm(model, tokenizer, texts, cfg, folder, progress: bool = True, lr_by_prefix=None):
    """Train ``model`` with MLM on ``texts`` (``cfg``: steps, learning rate, warm-up, masks)
    and keep it in the run folder ``folder`` (from a `cache.keyed` function: `pretrain`,
    `adapt`), or read it back from there: (model, History), the history's first evaluation
    the held-out loss before training (step 0)."""
    from safetensors.torch import load_model, save_model
    if cache.is_done(folder):
        load_model(model, str(folder / "model.safetensors"))
        return model, History(**cache.done_info(folder)["history"])
    release_memory()  # train from the smallest heap: the kernel keeps its high-water mark otherwise
    train_loader, held = loaders(tokenizer, texts, cfg)
    start = heldout_loss(model, held)
    opt = adamw(model, cfg.lr, lr_by_prefix=lr_by_prefix)
    hist = train(model, train_loader, opt, loss_fn=mlm_loss,
                 scheduler=warmup_linear(opt, cfg.warmup, cfg.steps), steps=cfg.steps,
                 eval_loader=held, eval_every=cfg.eval_every, eval_fn=heldout_loss,
                 progress=progress)
    hist.eval_step.insert(0, 0)
    hist.eval.insert(0, start)
    with cache.artifact(folder) as (tmp, info):
        save_model(model, str(tmp / "model.safetensors"))
        info["history"] = dataclasses.asdict(hist)
    return model, hist


def checkpoint_dir():
    """Where lab 02 saves its tokenizer and model for the current scale (for lab 03 on)."""
    return cache.model_dir(f"pretrained-mlm-{current_scale()}")


def load_or_pretrain(cfg: PretrainConfig | None = None, progress: bool = True):
    """(tokenizer, model) pretrained at the current scale, from lab 02's checkpoint or, when
    absent, rebuilt here (tokenizer + pretraining, as in lab 02) and saved."""
    folder = checkpoint_dir()
    if (folder / "model.safetensors").exists():
        return load(folder)
    cfg = cfg or PretrainConfig.for_scale()
    texts = corpus(cfg)
    tokenizer = train_wordpiece(texts, cfg.vocab_size)
    model, _ = pretrain(cfg, texts, tokenizer, progress=progress)
    save(model, tokenizer, folder)
    return tokenizer, model


def corpus(cfg: PretrainConfig) -> list:
    """The English pretraining passages, without the fixed test reviews of labs 01-05."""
    test = data.review_splits()["test"]["text"][:]
    texts = data.load_text("en", exclude=test)["text"][:]  # a list, read at once (not the lazy Column)
    if cfg.max_texts:
        texts = [texts[i] for i in np.random.default_rng(cfg.seed).permutation(len(texts))[:cfg.max_texts]]
    return texts


def probe_curve(encoder, tokenizer, x_train, y_train, x_test, y_test, budgets, seeds: int = 3,
                max_len: int = 64) -> dict:
    """A linear probe of a frozen ``encoder``: logistic regression (standardised features,
    C = 0.5) on its mean-pooled token states (`classifier.features`) of ``n`` labelled
    training reviews, test accuracy at each budget ``n`` and seed: ``{n: [accuracy per seed]}``.
    The label samples depend only on (n, seed), so two encoders' curves pair by seed."""
    from labkit.core.classifier import features
    f_train = features(encoder, tokenizer, list(x_train), max_len)  # (n_train, hidden)
    f_test = features(encoder, tokenizer, list(x_test), max_len)
    return budget_curve(lambda rows, seed: frozen_accuracy(f_train[rows], y_train[rows], f_test, y_test,
                                                           C=0.5, standardize=True),
                        y_train, budgets, seeds)


def probe_ranks(model, tokenizer, probes: dict | None = None) -> dict:
    """{sentence: rank of its expected word among all tokens} for fill-mask ``probes``
    (default `DOMAIN_PROBES`); 0 = the model's top prediction."""
    out = {}
    for sentence, want in (probes or DOMAIN_PROBES).items():
        if want not in tokenizer.get_vocab():
            raise ValueError(f"the expected word {want!r} is not one token of this tokenizer: pick another")
        logits = mask_logits(model, tokenizer, sentence)  # (vocab,)
        out[sentence] = int((logits > logits[tokenizer.convert_tokens_to_ids(want)]).sum())
    return out


# ---------------------------------------------------------------- domain-adaptive MiniLM

@dataclass
class AdaptConfig(ScaledConfig):
    """Settings of lab 02's domain adaptation of MiniLM. ``AdaptConfig.for_scale()``."""
    steps: int = 80            # ~0.8 s a step for the whole model, ~0.35 s for the head alone
    batch_size: int = 16
    max_len: int = 32          # tokens per passage (reviews: median ~25)
    lr: float = 1e-4           # MiniLM's own weights (when they train)
    head_lr: float = 1e-3      # the new MLM head
    warmup: int = 8
    mask_prob: float = 0.15
    heldout: int = 200
    eval_every: int = 80       # held-out loss before and after only: each costs ~4 s
    seed: int = 0

    SCALES: ClassVar[dict] = {  # what differs from the cpu defaults above
        "smoke": dict(steps=4, batch_size=8, warmup=1, heldout=32, eval_every=4),
        "gpu": dict(steps=2000, batch_size=64, max_len=64, warmup=100, heldout=1000, eval_every=250),
    }


def domain_corpus() -> list:
    """The in-domain passages: reviews and plot summaries, without the fixed test reviews."""
    return data.load_text("en", exclude=data.review_splits()["test"]["text"][:], reviews_only=True)["text"][:]


def minilm_mlm(seed: int = 0):
    """(tokenizer, ``BertForMaskedLM``): the fetched MiniLM encoder with a new MLM head (a
    dense layer and layer norm, seeded; the decoder tied to MiniLM's word embeddings)."""
    from transformers import BertForMaskedLM
    tokenizer, encoder = load_minilm()
    seed_everything(seed)
    model = BertForMaskedLM(encoder.config)
    encoder.pooler = None  # BertForMaskedLM has none
    model.bert = encoder
    model.cls.predictions.decoder.weight = encoder.embeddings.word_embeddings.weight  # tied
    return tokenizer, model


def adapt(cfg: AdaptConfig, texts, body: bool = True, progress: bool = True):
    """Train `minilm_mlm` with MLM on ``texts``: the head and, with ``body``, every MiniLM
    weight (domain-adaptive pretraining); without, the head alone on the frozen model (what
    MiniLM already knows). Same data, masks, seed and steps either way. Cached like
    `pretrain`; returns (tokenizer, model, History with the held-out loss at step 0)."""
    return _adapt_run(cfg, list(texts), body, progress)


@cache.keyed("adapt-minilm", exclude=("progress",),
             depends=lambda: {"recipe": RECIPE, "minilm": fetch.REGISTRY["minilm"].archive.sha256})
def _adapt_run(cfg, texts, body, progress, *, folder):
    tokenizer, model = minilm_mlm(cfg.seed)
    for p in model.bert.parameters():
        p.requires_grad_(body)
    model, hist = cached_mlm(model, tokenizer, texts, cfg, folder, progress, lr_by_prefix={"cls.": cfg.head_lr})
    return tokenizer, model, hist


def adapted_dir():
    """Where lab 02 saves its adapted MiniLM for the current scale (lab 03 reads it)."""
    return cache.model_dir(f"adapted-minilm-{current_scale()}")


def load_or_adapt(progress: bool = True):
    """(tokenizer, encoder) of the adapted MiniLM at the current scale, from lab 02's
    checkpoint or, when absent, adapted here as lab 02 does (a cached run) and saved."""
    folder = adapted_dir()
    if not (folder / "model.safetensors").exists():
        tokenizer, model, _ = adapt(AdaptConfig.for_scale(), domain_corpus(), body=True, progress=progress)
        save(model, tokenizer, folder)
    tokenizer, model = load(folder)
    return tokenizer, model.bert


def flops_per_token(model, mask_prob: float = 0.15) -> float:
    """Training FLOPs per input token, the usual 6 x parameters estimate: the encoder's
    matmul weights for every token, the LM head only for the masked share.
    (Attention scores and embedding lookups are left out: small at these lengths.)"""
    encoder = sum(p.numel() for n, p in model.bert.encoder.named_parameters() if p.dim() == 2)
    head = model.config.hidden_size * (model.config.vocab_size + model.config.hidden_size)
    return 6 * (encoder + mask_prob * head)


def throughput(hist, tokens_per_example: float, model, gflops: float, mask_prob: float = 0.15):
    """(tokens/s, model FLOPs utilisation) of a pretraining History, against the measured
    matmul throughput ``gflops`` (`labkit.core.env.matmul_gflops`)."""
    tokens_s = hist.examples * tokens_per_example / hist.seconds
    return tokens_s, tokens_s * flops_per_token(model, mask_prob) / (gflops * 1e9)


# ---------------------------------------------------------------- an ipywidgets explorer
# It prints its answer first, so a notebook run headless shows what a reader would get by typing.

def fill_mask_explorer(model, tokenizer=None, text: str = "this movie is [MASK] good .", k: int = 5):
    """Type a sentence with [MASK], press Enter, see the top-k predictions. ``model``: one
    model (with its ``tokenizer``), or {name: (model, tokenizer)} to compare side by side."""
    named = model if isinstance(model, dict) else {"": (model, tokenizer)}

    def show(sentence):
        try:
            tops = {name: fill_mask(m, tok, sentence, k) for name, (m, tok) in named.items()}
        except ValueError as e:
            return f"{e}"
        wide = len(tops) > 1  # side by side: 24 characters a model
        head = ["".join(f"{name[:22]:>24}" for name in tops)] if wide else []
        return "\n".join(head + ["".join(f"{t[:15]:>17}  {p:.3f}" if wide else f"{t:>12}  {p:.3f}"
                                          for t, p in (top[i] for top in tops.values())) for i in range(k)])

    print(f"{text}\n{show(text)}")  # the non-interactive fallback
    try:
        import ipywidgets as w
    except ImportError:
        return None
    box = w.Text(value=text, description="sentence", continuous_update=False,
                 layout=w.Layout(width="60%"))
    out = w.Output()

    def update(change):  # runs when Enter is pressed or the box loses focus
        out.clear_output()
        with out:
            print(show(change["new"]))

    box.observe(update, "value")
    return w.VBox([box, out])
