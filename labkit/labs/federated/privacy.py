"""Lab 07: differential privacy. DP-SGD through Opacus, and a test of what it buys.

DP-SGD (Abadi et al. 2016) clips each example's gradient to a norm C, adds Gaussian noise
of std (noise multiplier) x C to the batch's sum, and draws batches by Poisson sampling; an
accountant turns (noise, sampling rate, steps) into the (epsilon, delta) guarantee. Opacus
does all three: `dp_fit` asks its accountant for the noise that reaches a target epsilon
(`noise_multiplier`), wraps model, optimizer and data in its `PrivacyEngine`, then trains with the one loop
`labkit.core.train.train`
(its own norm clipping off: Opacus clips per example) and reads the epsilon spent back from
the engine's accountant. `head_run` trains a `labkit.labs.federated.Head` on MiniLM features and
`bert_run` lab 02's small BERT from scratch, each cached with its logits and its epsilon.
`membership_auc` is the loss-threshold membership-inference test (Yeom et al. 2018) and
`tpr_at_fpr` its true-positive rate at a low false-positive rate (Carlini et al. 2022);
`membership` runs the whole attack on one overfitted head; `client_dp_epsilon` accounts lab
07's client-level DP-FedAvg the same way.
Leaves out: DP for the data pipeline (tokenizer, vocabulary), and user-level accounting.
"""
from __future__ import annotations

import functools
import time
import warnings

import numpy as np
import torch

from labkit.core import cache, checks
from labkit.core.classifier import check_inputs, loader, num_labels, predict_logits, small_classifier
from labkit.core.env import seed_everything, version
from labkit.core.metrics import accuracy
from labkit.core.train import RECIPE, adamw, steps_taken, train
from labkit.labs.federated import Head, feature_loader, one_thread

DELTA = 1e-5                 # the course's delta: below 1 / (number of training reviews)
TOLERANCE = 0.02             # how far the accountant's epsilon may be from the target
ACCOUNTANT = "rdp"           # Opacus' Renyi-DP accountant: a few ms per call; "prv" is tighter
                             # (a little less noise for the same epsilon) and seconds per call


def budget_label(epsilon) -> str:
    """How lab 07's records and study name a privacy budget: "non-private" or "1", "0.5"."""
    return "non-private" if epsilon is None else f"{epsilon:g}"


def check_epsilon(epsilon) -> None:
    """Raise ValueError unless ``epsilon`` is None (non-private) or a number > 0 (a numpy
    number too)."""
    if epsilon is not None:
        checks.number(epsilon, "epsilon", low=0, fix="the privacy budget must be a number > 0; None trains "
                      "without privacy")


def check_accounting(delta, sample_rate=None, steps=None) -> None:
    """Refuse settings the accountant would answer with nonsense or a math error: delta in
    (0, 1), a sampling rate in (0, 1], at least one step."""
    checks.number(delta, "delta", low=0, high=1, high_open=True,
                  fix=f"the chance the privacy guarantee fails; below 1 / (training rows), e.g. {DELTA:g}")
    if sample_rate is not None:
        checks.number(sample_rate, "sample_rate", low=0, high=1,
                      fix="the share of rows (or clients) in each step (round): batch size / rows")
    if steps is not None:
        checks.number(steps, "steps", low=1, low_open=False, integer=True, fix="noisy steps (or rounds) taken")


@functools.lru_cache(maxsize=256)
def noise_multiplier(epsilon: float, delta: float, sample_rate: float, steps: int) -> float:
    """The smallest noise multiplier whose (epsilon, delta) after ``steps`` Poisson-sampled
    steps at ``sample_rate`` is at most ``epsilon`` (within 0.01), from Opacus' accountant
    ``ACCOUNTANT``; remembered, because every seed of a setting needs the same one, and kept
    in the run cache (the accountant's search takes a second or more), so a second run and
    the next process read it back."""
    check_epsilon(epsilon)
    check_accounting(delta, sample_rate, steps)
    return _noise_multiplier(float(epsilon), float(delta), float(sample_rate), int(steps), ACCOUNTANT)


@cache.keyed("noise-multiplier", depends=lambda: {"opacus": version("opacus")})
def _noise_multiplier(epsilon, delta, sample_rate, steps, accountant, *, folder) -> float:
    if not cache.is_done(folder):
        from opacus.accountants.utils import get_noise_multiplier
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            noise = get_noise_multiplier(target_epsilon=epsilon, target_delta=delta, sample_rate=sample_rate,
                                         steps=steps, accountant=accountant, epsilon_tolerance=0.01)
        with cache.artifact(folder) as (tmp, _):
            cache.write_json(tmp / "noise.json", {"noise_multiplier": float(noise)})
    return float(cache.read_json(folder / "noise.json")["noise_multiplier"])


def spent_epsilon(noise: float, sample_rate: float, steps: int, delta: float = DELTA) -> float:
    """The epsilon at ``delta`` after ``steps`` Poisson-sampled steps at ``sample_rate`` with
    noise multiplier ``noise``, from a fresh Opacus accountant ``ACCOUNTANT``."""
    from opacus.accountants import create_accountant
    checks.number(noise, "noise", low=0, fix="the noise multiplier: noise std / clipping norm")
    check_accounting(delta, sample_rate, steps)
    accountant = create_accountant(ACCOUNTANT)
    accountant.history = [(noise, sample_rate, steps)]
    with warnings.catch_warnings():  # RDP: "optimal order is the largest alpha", a looser bound
        warnings.simplefilter("ignore")
        return float(accountant.get_epsilon(delta))


def client_dp_epsilon(noise_multiplier: float, per_round: int, clients: int, rounds: int,
                      delta: float = DELTA) -> float:
    """Client-level epsilon of DP-FedAvg (`labkit.labs.federated.fedavg` with ``dp_clip``): each
    round takes each of ``clients`` with probability per_round / clients (Poisson sampling,
    which the accountant assumes: a fixed-size draw of exactly ``per_round`` would need a
    different accountant) and adds noise ``noise_multiplier`` x the clip norm over the
    expected count, so it is accounted like DP-SGD with clients for examples and rounds for
    steps."""
    return spent_epsilon(noise_multiplier, _client_rate(per_round, clients), rounds, delta)


def _client_rate(per_round, clients) -> float:
    """per_round / clients, after checking both are whole numbers with per_round <= clients."""
    checks.number(clients, "clients", low=1, low_open=False, integer=True, fix="clients in the federation")
    checks.number(per_round, "per_round", low=1, low_open=False, high=clients, integer=True,
                  fix=f"clients taking part in a round, at most the {clients} clients")
    return per_round / clients


def client_dp_noise_multiplier(epsilon: float, per_round: int, clients: int, rounds: int,
                               delta: float = DELTA) -> float:
    """The noise multiplier that makes `client_dp_epsilon` equal ``epsilon``."""
    return noise_multiplier(epsilon, delta, _client_rate(per_round, clients), rounds)


def dp_fit(model, data, epochs: int, lr: float, epsilon: float | None, delta: float = DELTA,
           clip: float = 1.0, seed: int = 0, progress: bool = False) -> tuple:
    """Train ``model`` on the DataLoader ``data`` for ``epochs`` passes with AdamW.
    ``epsilon`` None: ordinary training. Otherwise DP-SGD through Opacus at (epsilon,
    delta): per-example clipping at ``clip``, Poisson batches of the same mean size, the
    noise the accountant (`ACCOUNTANT`) needs. Returns (trained model, epsilon spent or None, seconds).
    Every label in ``data`` is checked against the model's classes first (not when a
    Poisson batch happens to draw its row)."""
    check_epsilon(epsilon)
    check_accounting(delta)
    checks.schedule(lr, epochs=epochs)
    checks.number(clip, "clip", low=0, fix="the per-example gradient norm DP-SGD clips to")
    labels = _loader_labels(data)
    if labels is not None:
        k = num_labels(model) or checks.ANY
        checks.labels(labels, classes=k, why="DP-SGD's cross entropy",
                      fix=f"The model has {k} outputs: build it with as many as there are classes")
    seed_everything(seed)
    optimizer, start = adamw(model, lr), time.perf_counter()
    if epsilon is None:
        train(model, data, optimizer, epochs=epochs, progress=progress)
        return model, None, time.perf_counter() - start
    from opacus import PrivacyEngine
    with warnings.catch_warnings():  # Opacus warns that its RNG is not cryptographically
        warnings.simplefilter("ignore")  # secure (fine for a course) and about its accountant's
        engine = PrivacyEngine(accountant=ACCOUNTANT)  # range of orders; neither changes a result
        sigma = noise_multiplier(epsilon, delta, 1 / len(data), steps_taken(epochs * len(data)))
        private, optimizer, data = engine.make_private(
            module=model, optimizer=optimizer, data_loader=data, noise_multiplier=sigma,
            max_grad_norm=clip, noise_generator=torch.Generator().manual_seed(seed))
        train(private, data, optimizer, epochs=epochs, progress=progress, clip_grad=None)
        spent = float(engine.get_epsilon(delta))
    private.remove_hooks()  # give back the plain module, with the trained weights
    return private._module, spent, time.perf_counter() - start


def _loader_labels(data):
    """The labels of every row a DataLoader can draw (lab 07's feature rows, or
    `labkit.core.classifier.loader`'s items); None for a dataset of another form."""
    ds = getattr(data, "dataset", None)
    if hasattr(ds, "y"):
        return ds.y.numpy()
    if isinstance(ds, list) and ds and isinstance(ds[0], tuple) and len(ds[0]) == 3:
        return np.array([row[1] for row in ds])
    return None


def head_run(x, y, evals: dict, epsilon: float | None, epochs: int, lr: float,
             batch_size: int = 256, hidden: int = 0, clip: float = 1.0, delta: float = DELTA,
             seed: int = 0, classes: int | None = None) -> dict:
    """A `Head` on feature rows ``x`` (labels ``y``, ``classes`` of them; None: 2) trained by
    `dp_fit`; returns (cached) {"epsilon": spent (nan when non-private), name: logits for each
    ``evals[name]``}."""
    check_epsilon(epsilon)
    check_accounting(delta)
    checks.schedule(lr, epochs=epochs, batch_size=batch_size)
    k = checks.classes_of(classes)
    if len(x) != len(y):
        raise ValueError(f"x has {len(x)} rows but y has {len(y)} labels: give one label per row")
    y = checks.labels(y, classes=k, name="y", why="DP-SGD's cross entropy")
    return _head_run(checks.finite(x, "x").astype(np.float32), y,
                     {k_: checks.finite(v, f"evals[{k_!r}]").astype(np.float32) for k_, v in evals.items()},
                     epsilon, epochs, lr, batch_size, hidden, clip, delta, seed, k)


@cache.cached("dp-head", depends=lambda: {"recipe": RECIPE})
def _head_run(x, y, evals, epsilon, epochs, lr, batch_size, hidden, clip, delta, seed, classes) -> dict:
    with one_thread():
        seed_everything(seed)
        model = Head(x.shape[1], hidden, classes)
        model, spent, _ = dp_fit(model, feature_loader(x, y, batch_size, True, seed), epochs, lr,
                                 epsilon, delta, clip, seed)
        model.eval()
        with torch.no_grad():
            out = {k: model(torch.as_tensor(v)).numpy() for k, v in evals.items()}
    return {"epsilon": np.array([np.nan if spent is None else spent]), **out}


def bert_run(mlm, tokenizer, texts, labels, evals: dict, epsilon: float | None, epochs: int,
             lr: float, batch_size: int = 64, max_len: int = 32, clip: float = 1.0,
             delta: float = DELTA, seed: int = 0, progress: bool = True, classes: int | None = None) -> dict:
    """Lab 02's small BERT architecture from scratch (`classifier.small_classifier`,
    ``pretrained=False``) trained by `dp_fit` on ``texts`` (a progress bar unless not
    ``progress``); returns (cached) {"epsilon", name: logits for each ``evals[name]``}.
    Position and segment embeddings stay at their random start: Opacus cannot give them
    per-example gradients (BERT shares one row of position ids across the batch), and they
    carry no review's content. ``classes``: how many (None: 2)."""
    check_epsilon(epsilon)
    check_accounting(delta)
    checks.schedule(lr, epochs=epochs, batch_size=batch_size)
    k = checks.classes_of(classes)
    texts, labels = check_inputs(texts, labels, classes=k, why="DP-SGD's cross entropy")
    start = small_classifier(mlm, pretrained=False, seed=seed, num_labels=k)  # keyed by these weights
    return _bert_run(start, tokenizer, texts, labels, evals, epsilon, epochs, lr, batch_size,
                     max_len, clip, delta, seed, progress)


@cache.cached("dp-bert", exclude=("progress",), depends=lambda: {"recipe": RECIPE})
def _bert_run(model, tokenizer, texts, labels, evals, epsilon, epochs, lr, batch_size, max_len, clip, delta, seed,
              progress) -> dict:
    emb = model.encoder.embeddings
    for module in (emb.position_embeddings, emb.token_type_embeddings):
        module.weight.requires_grad_(False)
    data = loader(tokenizer, texts, labels, max_len, batch_size, shuffle=True, seed=seed)
    model, spent, _ = dp_fit(model, data, epochs, lr, epsilon, delta, clip, seed, progress=progress)
    out = {k: predict_logits(model.eval(), tokenizer, v, max_len) for k, v in evals.items()}
    return {"epsilon": np.array([np.nan if spent is None else spent]), **out}


def per_example_loss(logits, labels) -> np.ndarray:
    """Cross entropy of each row, what the membership-inference attacker looks at:
    log(1 + sum over the other classes of exp(z_j - z_label)), in float64 and through
    log1p, so a confident row keeps a loss above 0. Float32 cross entropy rounds every loss
    below ~1e-7 to exactly 0 (12% of lab 07's unseen rows on the overfitted head), and a
    threshold cannot rank rows that all read 0: it blinded the attack at low false-positive
    rates."""
    z = checks.finite(logits, "logits", "the model's scores, one row per example")
    if z.ndim != 2:
        raise ValueError(f"logits must be (rows, classes); got shape {z.shape}")
    labels = checks.labels(labels, n=len(z), classes=z.shape[1], why="a per-example loss",
                           fix=f"the logits have {z.shape[1]} classes: a label is one of them")
    rows = np.arange(len(labels))
    others = z - z[rows, labels][:, None]  # each class's logit over the label's
    others[rows, labels] = -np.inf
    top = others.max(axis=1)
    return np.logaddexp(0.0, top + np.log(np.exp(others - top[:, None]).sum(axis=1)))  # log(1 + sum exp)


def membership_auc(member_loss, other_loss) -> float:
    """Loss-threshold membership inference (Yeom et al. 2018): how well "low loss -> it
    was in the training set" separates training rows (``member_loss``) from rows the model
    never saw (``other_loss``), as a ROC AUC: 0.5 = no better than a coin, 1 = always right."""
    from sklearn.metrics import roc_auc_score
    member_loss, other_loss = np.asarray(member_loss), np.asarray(other_loss)
    if len(member_loss) == 0 or len(other_loss) == 0:
        raise ValueError("membership_auc needs losses of both training and held-out rows")
    truth = np.r_[np.ones(len(member_loss)), np.zeros(len(other_loss))]
    return float(roc_auc_score(truth, -np.r_[member_loss, other_loss]))


def tpr_at_fpr(member_loss, other_loss, fpr: float = 0.01) -> float:
    """The loss-threshold attack's true-positive rate at a false-positive rate of at most
    ``fpr`` (Carlini et al. 2022: an attack that is right about a few members with
    confidence matters more than its average): the share of members whose loss is below the
    highest threshold that calls at most ``fpr`` of the other rows members. A coin gives ``fpr``."""
    member_loss, other_loss = np.asarray(member_loss), np.asarray(other_loss)
    if len(member_loss) == 0 or len(other_loss) == 0:
        raise ValueError("tpr_at_fpr needs losses of both training and held-out rows")
    if not 0 < fpr < 1:
        raise ValueError(f"fpr={fpr!r}: give a false-positive rate between 0 and 1, e.g. 0.01")
    if len(other_loss) * fpr < 1:
        raise ValueError(f"{len(other_loss)} held-out rows cannot resolve a false-positive rate of {fpr}: "
                         f"give at least {int(np.ceil(1 / fpr))}")
    allowed = int(np.floor(fpr * len(other_loss) + 1e-9))  # held-out rows it may call members (0.29 x 100: 29)
    threshold = np.sort(other_loss)[allowed]      # "member" means a loss strictly below this
    return float((member_loss < threshold).mean())


def membership(x, y, x_test, y_test, epsilon: float | None, rows: int, others: int, epochs: int,
               hidden: int, seed: int = 0) -> dict:
    """The loss-threshold attack on a head overfitted to ``rows`` training rows of (x, y),
    drawn with ``seed`` (`head_run`: ``epochs`` passes, a ``hidden`` layer, batches of 100,
    DP-SGD at ``epsilon`` unless None), against ``others`` rows it never saw, drawn from
    the same pool: {"auc", "tpr_at_1pct_fpr", "test_accuracy", "member_loss", "other_loss"}."""
    y = np.asarray(y)
    if rows + others > len(y):
        raise ValueError(f"rows={rows} + others={others} is more than the {len(y)} rows given")
    order = np.random.default_rng(seed).permutation(len(y))
    inside, outside = order[:rows], order[rows:rows + others]
    r = head_run(x[inside], y[inside], {"in": x[inside], "out": x[outside], "test": x_test}, epsilon, epochs, 1e-2,
                 batch_size=100, hidden=hidden, seed=seed)
    member, other = per_example_loss(r["in"], y[inside]), per_example_loss(r["out"], y[outside])
    return {"auc": membership_auc(member, other), "tpr_at_1pct_fpr": tpr_at_fpr(member, other, 0.01),
            "test_accuracy": accuracy(r["test"], y_test), "member_loss": member, "other_loss": other}
