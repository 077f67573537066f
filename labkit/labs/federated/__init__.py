"""Lab 07: federated learning. The reviews stay with their owners; the model travels.

Clients are made from the training reviews (`partition`): IID, label skew from a
Dirichlet(alpha) draw (Hsu et al. 2019: each class is shared out over the clients in
Dirichlet proportions), or by movie (the ``source`` column). `fedavg` is FedAvg (McMahan et
al. 2017) written on the one training loop: each round it samples clients, each client runs
`client_update` (`labkit.core.train.train` on its own rows, starting from the global weights),
and the server takes the average of their weights, weighted by their numbers of examples
(`average`). FedProx (Li et al. 2020) is the same with `proximal_loss_fn` as the client's
``loss_fn``. ``dp_clip`` makes it client-level DP-FedAvg (McMahan et al. 2018): clients
are Poisson-sampled, each client's update is clipped and Gaussian noise is added to their
sum over the expected count (`dp_average`), accounted with `labkit.labs.federated.privacy.client_dp_epsilon`.
At `cpu` the federated model is a `Head` on the cached MiniLM sentence
embeddings; `labkit.labs.federated.flower` runs the same client update and average on a real Flower
federation, and `labkit.labs.federated.privacy` trains with per-example DP-SGD.
Leaves out: secure aggregation, compression of the updates, asynchronous clients.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch

from labkit.core import cache, checks
from labkit.core.config import ScaledConfig
from labkit.core.env import seed_everything
from labkit.core.train import adamw, cross_entropy_loss, train

PARTITIONS = ("iid", "dirichlet 0.5", "dirichlet 0.1", "by movie")


@dataclass
class FederatedConfig(ScaledConfig):
    """Settings of lab 07. ``FederatedConfig.for_scale()`` picks them for LABKIT_SCALE."""
    clients: int = 10              # clients the training reviews are shared out to
    per_round: int = 5             # clients sampled each round
    rounds: int = 30
    local_epochs: int = 1          # passes over its own rows a client makes each round
    batch_size: int = 64
    lr: float = 1e-2               # client AdamW learning rate (the lab chooses it on validation)
    hidden: int = 0                # the Head's hidden layer (0: linear)
    seeds: int = 3                 # centralised, FedAvg and FedProx: seeds 0 .. seeds - 1
    mus: tuple = (0.01, 0.1)       # FedProx's proximal weights
    lrs: tuple = (3e-3, 1e-2, 3e-2)  # what the lab compares on validation
    dp_clients: int = 100          # client-level DP: many small clients ...
    dp_per_round: tuple = (10, 50, 100)  # ... and how many take part each round
    dp_epsilon: float = 8.0
    dp_clip: float = 0.5
    flower_nodes: int = 3          # SuperNodes of the real federation
    flower_rounds: int = 3
    flower_one_at_a_time: bool = True  # one ClientApp process at a time (memory; see flower.run)
    flower_timeout: float = 240.0  # seconds the whole federation may take
    epsilons: tuple = (0.5, 1.0, 3.0, 8.0)  # DP-SGD targets, at delta = privacy.DELTA
    head_epochs: int = 20          # DP-SGD of a head on MiniLM features
    head_batch: int = 256
    head_lrs: tuple = (3e-3, 1e-2, 3e-2)  # compared on validation at every budget by the study (live off its scale)
    head_seeds: tuple = (5, 6, 7)  # the lab's live DP-SGD heads: seeds the lab07 study (0-4) never drew
    bert_epsilons: tuple = (1.0,)  # DP-SGD of the small BERT from scratch (see the lab)
    bert_epochs: int = 1
    bert_grid: tuple = ((2e-3, 64), (1e-2, 64), (1e-2, 256))  # (lr, batch) `labkit study lab07` compares
    bert_lr: float = 2e-3          # non-private: these two chosen on validation by `labkit study lab07`
    bert_batch: int = 64
    bert_dp_lr: float = 2e-3       # under DP-SGD (chosen at epsilon 1, used at every budget)
    bert_dp_batch: int = 64
    bert_max_len: int = 32
    bert_rows: int | None = None   # a stratified sample of the training reviews (None: all)
    bert_seeds: tuple = (5,)       # the lab's live small-BERT runs: seeds the lab07 study (0-4) never drew
    mia_rows: int = 500            # members of the overfitted model ...
    mia_others: int = 2000         # ... and rows it never saw (enough to resolve a 1% false-positive rate)
    mia_epochs: int = 100
    mia_hidden: int = 256
    mia_seed: int = 5              # the lab's live membership attack: a seed the lab07 study never drew
    study_grid_seeds: int = 3      # seeds a setting gets in the study's validation grid (small BERT)
    train_size: int | None = None
    test_size: int | None = None
    seed: int = 0

    SCALES: ClassVar[dict] = {  # what differs from the cpu defaults above
        "smoke": dict(clients=4, per_round=2, rounds=3, seeds=2, mus=(0.1,), lrs=(1e-2,),
                      dp_clients=20, dp_per_round=(5, 20), flower_nodes=2, flower_rounds=1, flower_one_at_a_time=False,
                      epsilons=(1.0, 8.0), head_epochs=2, head_lrs=(1e-2, 3e-2), head_seeds=(5, 6), bert_batch=32,
                      bert_dp_batch=32, bert_grid=((2e-3, 32), (1e-2, 32)), bert_max_len=16, bert_rows=256,
                      mia_rows=100, mia_others=200, mia_epochs=10, train_size=1000, test_size=300),
        "gpu": dict(rounds=50, seeds=5, head_seeds=(5, 6, 7, 8, 9), bert_epsilons=(0.5, 1.0, 3.0, 8.0), bert_epochs=3,
                    bert_max_len=64, bert_seeds=(5, 6, 7, 8, 9)),
    }
    DRY_RUN: ClassVar[dict] = {"mia_others": 1500}  # the membership attack draws its own rows from env.DRY_RUN["train"]


# ---------------------------------------------------------------- clients

def partition(labels, clients: int, how: str = "iid", seed: int = 0, sources=None,
              min_size: int = 10) -> list[np.ndarray]:
    """Share rows 0..n-1 out to ``clients``: a list of sorted row indices per client, every
    row in exactly one. ``how``: "iid" (a seeded shuffle cut in equal parts), "dirichlet A"
    (each class split over the clients in Dirichlet(A) proportions: smaller A, more skew;
    redrawn until every client has ``min_size`` rows) or "by movie" (each of ``sources``'
    movies goes whole to one client, clients drawn with Dirichlet(1) weights: sizes differ).
    Example: ``partition([0, 1] * 50, 4)`` -> 4 arrays of 25 rows."""
    labels = checks.labels(labels, classes=checks.ANY, why="a partition by class")
    n = len(labels)
    checks.number(clients, "clients", low=1, low_open=False, high=n, integer=True,
                  fix=f"how many clients share the rows: between 1 and the number of rows ({n})")
    rng = np.random.default_rng(seed)
    if how == "iid":
        return [np.sort(p) for p in np.array_split(rng.permutation(n), clients)]
    if how.startswith("dirichlet"):
        try:
            alpha = float(how.split()[1])
        except (IndexError, ValueError):
            raise ValueError(f"how={how!r}: write the concentration after it, e.g. 'dirichlet 0.5'") from None
        checks.number(alpha, "Dirichlet alpha", low=0, fix="write it after 'dirichlet', e.g. 'dirichlet 0.5'; "
                      "smaller = more skewed")
        for _ in range(1000):
            parts = [[] for _ in range(clients)]
            for y in np.unique(labels):
                rows = rng.permutation(np.flatnonzero(labels == y))
                cuts = (np.cumsum(rng.dirichlet([alpha] * clients))[:-1] * len(rows)).astype(int)
                for k, chunk in enumerate(np.split(rows, cuts)):
                    parts[k] += chunk.tolist()
            if min(map(len, parts)) >= min(min_size, n // clients):
                return [np.sort(np.array(p, dtype=int)) for p in parts]
        raise ValueError(f"no Dirichlet({alpha}) draw in 1,000 gave every one of {clients} "
                         f"clients {min_size} rows: use fewer clients or a larger alpha")
    if how == "by movie":
        if sources is None or len(sources) != n:
            raise ValueError("'by movie' needs sources=, the movie of each row (data.review_sources)")
        movies = sorted(set(sources))
        if len(movies) < clients:
            raise ValueError(f"{len(movies)} movies cannot fill {clients} clients")
        owner = dict(zip(movies, rng.choice(clients, len(movies), p=rng.dirichlet([1.0] * clients))))
        owner.update(zip(movies[:clients], rng.permutation(clients)))  # nobody is left empty
        owners = np.array([owner[s] for s in sources])
        return [np.flatnonzero(owners == k) for k in range(clients)]
    raise ValueError(f"unknown partition {how!r}; use 'iid', 'dirichlet <alpha>' or 'by movie'")


def label_skew(labels, parts, classes: int | None = None) -> float:
    """Mean over clients of the total-variation distance between the client's class shares
    and everyone's: 0 for IID, 1 when clients hold disjoint classes. With two classes it is
    |client's share of positives - everyone's share|. ``classes``: how many (None: 2)."""
    if len(labels) == 0 or not len(parts) or any(len(p) == 0 for p in parts):
        raise ValueError("label_skew needs labels and non-empty parts (row numbers of each client)")
    k = checks.classes_of(classes)
    labels = checks.labels(labels, classes=k, why="label skew")
    parts = check_parts(parts, len(labels))
    share = lambda rows: np.bincount(labels[rows], minlength=k) / len(rows)  # noqa: E731
    return float(np.mean([0.5 * np.abs(share(p) - share(np.arange(len(labels)))).sum() for p in parts]))


# ---------------------------------------------------------------- the model and its updates

@contextmanager
def one_thread():
    """Run torch on one thread inside the block: a small head's steps are so short that a
    second thread costs more than it gives (2.6x slower on 2 cores, measured)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class Head(torch.nn.Module):
    """A classifier on fixed features (MiniLM sentence embeddings): linear, or with one
    hidden layer when ``hidden`` > 0. Batches are {"features", "labels"}."""

    def __init__(self, dim: int = 384, hidden: int = 0, num_labels: int = 2):
        super().__init__()
        self.num_labels = num_labels
        self.net = (torch.nn.Sequential(torch.nn.Linear(dim, hidden), torch.nn.ReLU(),
                                        torch.nn.Linear(hidden, num_labels))
                    if hidden else torch.nn.Linear(dim, num_labels))

    def forward(self, features):
        return self.net(features)


class _Rows(torch.utils.data.Dataset):
    def __init__(self, x, y):
        self.x, self.y = torch.as_tensor(np.asarray(x, np.float32)), torch.as_tensor(np.asarray(y))

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return self.x[i], self.y[i]

    def __getitems__(self, rows):  # a whole batch in one slice: ~10x faster than row by row
        rows = torch.as_tensor(rows, dtype=torch.long)
        return {"features": self.x[rows], "labels": self.y[rows]}


def _collate(items):
    if isinstance(items, dict):  # already a batch (__getitems__)
        return items
    x, y = zip(*items)
    return {"features": torch.stack(x), "labels": torch.stack(y)}


def feature_loader(x, y, batch_size: int = 32, shuffle: bool = False, seed: int = 0):
    """A DataLoader of {"features", "labels"} batches over feature rows ``x`` and labels ``y``
    (class numbers; their range is checked by what trains on it, against its model)."""
    if len(x) != len(y) or len(y) == 0:
        raise ValueError(f"{len(x)} feature rows for {len(y)} labels: need as many, at least one")
    y = checks.labels(y, classes=checks.ANY, unlabelled=True, name="y")
    g = torch.Generator().manual_seed(seed)
    return torch.utils.data.DataLoader(_Rows(x, y), batch_size=batch_size, shuffle=shuffle,
                                       generator=g, collate_fn=_collate)


def head_accuracy(model, x, y) -> float:
    """Share of feature rows ``x`` whose most likely class is the label ``y``."""
    y = checks.labels(y, n=len(x), classes=model.num_labels, name="y", why="accuracy")
    with torch.no_grad():
        model.eval()
        return float((model(torch.as_tensor(np.asarray(x, np.float32))).argmax(-1).numpy() == y).mean())


def weights(model) -> dict:
    """A copy of the model's weights: what a client downloads and uploads."""
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def average(states: list[dict], sizes) -> dict:
    """FedAvg's server step: the average of the clients' weights, client k weighted by its
    number of examples ``sizes[k]``. Example: weights 1 and 3 -> (1*a + 3*b) / 4."""
    sizes = np.asarray(sizes, dtype=np.float64)
    if len(states) == 0 or len(states) != len(sizes) or (sizes <= 0).any():
        raise ValueError(f"{len(states)} client models and sizes {sizes.tolist()}: need one "
                         "positive size per model, at least one model")
    share = sizes / sizes.sum()
    return {k: sum(float(s) * st[k].double() for s, st in zip(share, states)).to(states[0][k].dtype)
            for k in states[0]}


def proximal_loss_fn(global_state: dict, mu: float):
    """FedProx's client loss: cross entropy + mu/2 * ||w - w_global||^2, which keeps a
    client's weights near the global ones it started from (zero at the global weights)."""
    if mu < 0:
        raise ValueError(f"mu={mu}: FedProx's proximal weight must be >= 0")
    anchor = {k: v.detach().clone() for k, v in global_state.items()}

    def loss_fn(model, batch):
        prox = sum(((p - anchor[name].to(p.device)) ** 2).sum() for name, p in model.named_parameters())
        return cross_entropy_loss(model, batch) + mu / 2 * prox
    loss_fn.spec = {"loss": "fedprox", "mu": mu}
    return loss_fn


def client_update(model, global_state: dict, x, y, epochs: int = 1, lr: float = 3e-3,
                  batch_size: int = 32, seed: int = 0, mu: float = 0.0) -> dict:
    """One client's round: load the global weights, train on the client's own rows with the
    one loop (AdamW, FedProx's term when ``mu`` > 0), return the new weights."""
    model.load_state_dict(global_state)
    seed_everything(seed)
    train(model, feature_loader(x, y, batch_size, shuffle=True, seed=seed), adamw(model, lr),
          loss_fn=proximal_loss_fn(global_state, mu) if mu else None, epochs=epochs, progress=False)
    return weights(model)


def client_dp_noise(noise_multiplier: float, clip: float, per_round: int) -> float:
    """Standard deviation of the noise client-level DP adds to the mean update: z * C / m,
    with m the expected number of clients a round (`fedavg` samples them Poisson under DP)."""
    return noise_multiplier * clip / per_round


def fedavg(x, y, parts, x_test, y_test, rounds: int, per_round: int, lr: float,
           local_epochs: int = 1, batch_size: int = 32, hidden: int = 0, seed: int = 0,
           mu: float = 0.0, dp_clip: float | None = None, dp_noise: float = 0.0,
           progress: bool = True, classes: int | None = None) -> dict:
    """FedAvg (FedProx with ``mu`` > 0; client-level DP-FedAvg with ``dp_clip``) of a `Head`
    over the clients ``parts`` (row indices into ``x``, ``y``). Returns {"accuracy": test
    accuracy after each round, "bytes": bytes sent each round (weights down and up)}.

    Each round draws ``per_round`` clients (seeded), runs `client_update` on each, and
    averages the weights by example counts (`average`). With ``dp_clip`` (client-level
    DP-FedAvg, McMahan et al. 2018), each client takes part in a round with probability
    per_round / clients instead (Poisson sampling: the sampling Opacus' accountant assumes in
    `privacy.client_dp_epsilon`, so a round may hold more or fewer than ``per_round``, even
    none), each update (new - global) is clipped to that norm, the clipped updates are summed
    and divided by the expected count ``per_round``, and Gaussian noise of std ``dp_noise`` x
    clip / per_round is added. ``classes``: how many (None: 2), the head's outputs; every
    label is checked against it up front, as is every client's rows. Cached in the run cache."""
    x, y, x_test, y_test, k = check_rows(x, y, x_test, y_test, classes)
    parts = check_parts(parts, len(y))
    checks.number(per_round, "per_round", low=1, low_open=False, high=len(parts), integer=True,
                  fix=f"clients taking part in a round, at most the {len(parts)} clients")
    checks.number(rounds, "rounds", low=1, low_open=False, integer=True, fix="federated rounds")
    checks.schedule(lr, epochs=local_epochs, batch_size=batch_size)
    checks.number(mu, "mu", low=0, low_open=False, fix="FedProx's proximal weight; 0 is FedAvg")
    if dp_clip is not None:
        checks.number(dp_clip, "dp_clip", low=0, fix="the norm each client's update is clipped to")
        checks.number(dp_noise, "dp_noise", low=0, low_open=False, fix="the noise multiplier")
    with one_thread():
        return _fedavg(x, y, parts, x_test, y_test, rounds, per_round, lr, local_epochs,
                       batch_size, hidden, seed, mu, dp_clip, dp_noise, progress, k)


@cache.cached("fedavg", exclude=("progress",))
def _fedavg(x, y, parts, x_test, y_test, rounds, per_round, lr, local_epochs, batch_size, hidden,
            seed, mu, dp_clip, dp_noise, progress, classes) -> dict:
    from tqdm.auto import tqdm
    seed_everything(seed)
    model = Head(x.shape[1], hidden, classes)
    state, rng, accs, taking_part = weights(model), np.random.default_rng(seed), [], []
    for r in tqdm(range(rounds), desc="rounds", disable=not progress, leave=False):
        if dp_clip is None:
            chosen = np.sort(rng.choice(len(parts), per_round, replace=False))
        else:  # Poisson: each client independently, as the accountant assumes
            chosen = np.flatnonzero(rng.random(len(parts)) < per_round / len(parts))
        new = [client_update(model, state, x[parts[k]], y[parts[k]], local_epochs, lr,
                             batch_size, seed * 100_000 + r * 1000 + int(k), mu) for k in chosen]
        if dp_clip is None:
            state = average(new, [len(parts[k]) for k in chosen])
        else:
            state = dp_average(state, new, dp_clip, dp_noise, per_round, seed * 1000 + r)
        model.load_state_dict(state)
        accs.append(head_accuracy(model, x_test, y_test))
        taking_part.append(len(chosen))
    size = sum(v.numel() * v.element_size() for v in state.values())
    return {"accuracy": np.array(accs), "bytes": 2 * size * np.array(taking_part)}


def dp_average(state, new, clip, noise, expected, seed) -> dict:
    """The global weights plus the clipped updates' sum over the expected count of clients,
    plus Gaussian noise of std noise x clip / expected (a round with no client: noise only)."""
    g = torch.Generator().manual_seed(seed)
    deltas = []
    for st in new:
        d = {k: st[k] - state[k] for k in state}
        norm = torch.sqrt(sum((v.double() ** 2).sum() for v in d.values()))
        deltas.append({k: v * min(1.0, clip / max(float(norm), 1e-12)) for k, v in d.items()})
    std = client_dp_noise(noise, clip, expected)
    return {k: state[k] + sum((d[k] for d in deltas), torch.zeros_like(state[k])) / expected
            + std * torch.randn(state[k].shape, generator=g) for k in state}


def centralised(x, y, x_test, y_test, epochs: int, lr: float, batch_size: int = 32,
                hidden: int = 0, seed: int = 0, classes: int | None = None) -> float:
    """The reference: the same `Head` trained on all the rows in one place, ``epochs``
    passes, same optimizer; returns its test accuracy (cached). ``classes`` as in `fedavg`."""
    x, y, x_test, y_test, k = check_rows(x, y, x_test, y_test, classes)
    checks.schedule(lr, epochs=epochs, batch_size=batch_size)
    return float(_centralised(x, y, x_test, y_test, epochs, lr, batch_size, hidden, seed, k)["accuracy"][0])


def check_rows(x, y, x_test, y_test, classes) -> tuple:
    """The federation's arrays after checking them: feature rows (finite) and their labels
    aligned, labels in 0..classes-1 (None: 2)."""
    if len(x) != len(y) or len(x_test) != len(y_test) or not len(y) or not len(y_test):
        raise ValueError(f"x and y ({len(x)}, {len(y)} rows), x_test and y_test ({len(x_test)}, {len(y_test)}) "
                         "must be non-empty and align row for row")
    k = checks.classes_of(classes)
    why = "a federated head's cross entropy"
    rows = lambda a, name: checks.finite(a, name, "the feature rows").astype(np.float32)  # noqa: E731
    return (rows(x, "x"), checks.labels(y, classes=k, name="y", why=why),
            rows(x_test, "x_test"), checks.labels(y_test, classes=k, name="y_test", why=why), k)


def check_parts(parts, n: int) -> list[np.ndarray]:
    """Each client's rows as an int array, every row index in 0..n-1 (checked now, not when
    a round happens to sample that client)."""
    out = []
    for i, p in enumerate(parts):
        p = np.asarray(p)
        if p.ndim != 1 or (p.size and p.dtype.kind not in "iu"):
            raise ValueError(f"parts[{i}] must be a list of row numbers (labkit.labs.federated.partition makes them)")
        if p.size and (p.min() < 0 or p.max() >= n):
            raise ValueError(f"parts[{i}] holds row {p.max() if p.max() >= n else p.min()}, outside 0..{n - 1}: "
                             "the parts index the rows of x and y")
        out.append(p.astype(np.int64))
    if not out:
        raise ValueError("parts is empty: give each client's rows (labkit.labs.federated.partition)")
    return out


@cache.cached("centralised")
def _centralised(x, y, x_test, y_test, epochs, lr, batch_size, hidden, seed, classes) -> dict:
    with one_thread():
        seed_everything(seed)
        model = Head(np.shape(x)[1], hidden, classes)
        train(model, feature_loader(x, y, batch_size, shuffle=True, seed=seed), adamw(model, lr),
              epochs=epochs, progress=False)
    return {"accuracy": np.array([head_accuracy(model, x_test, y_test)])}
