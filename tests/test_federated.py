"""Lab 07: clients, FedAvg / FedProx, client-level DP, DP-SGD, membership inference and the
Flower federation (the last one is slow: it starts real processes)."""
import numpy as np
import pytest
import torch

from labkit.core import metrics
from labkit.labs import federated
from labkit.labs.federated import flower, privacy


def labels(n=200, seed=0):
    return np.random.default_rng(seed).integers(0, 2, n)


@pytest.mark.parametrize("how", ["iid", "dirichlet 0.5", "dirichlet 0.1", "by movie"])
def test_partitions_cover_every_row_once_and_are_seeded(how):
    y = labels(300)
    movies = np.array([f"m{i % 40}" for i in range(300)], dtype=object)
    parts = federated.partition(y, 6, how, seed=3, sources=movies)
    assert len(parts) == 6 and all(len(p) > 0 for p in parts)
    assert np.array_equal(np.sort(np.concatenate(parts)), np.arange(300))
    again = federated.partition(y, 6, how, seed=3, sources=movies)
    assert all(np.array_equal(a, b) for a, b in zip(parts, again))
    other = federated.partition(y, 6, how, seed=4, sources=movies)
    assert not all(np.array_equal(a, b) for a, b in zip(parts, other))
    if how == "by movie":  # a movie never spans two clients
        owners = {m: k for k, p in enumerate(parts) for m in movies[p]}
        assert all(owners[movies[i]] == k for k, p in enumerate(parts) for i in p)


def test_dirichlet_skew_grows_as_alpha_falls():
    y = labels(2000)
    skew = {a: np.mean([federated.label_skew(y, federated.partition(y, 10, f"dirichlet {a}", seed=s))
                        for s in range(5)]) for a in (100.0, 0.5, 0.1)}
    iid = np.mean([federated.label_skew(y, federated.partition(y, 10, "iid", seed=s)) for s in range(5)])
    assert iid < skew[100.0] + 0.02 and skew[100.0] < skew[0.5] < skew[0.1]


@pytest.mark.parametrize("how, clients, error", [("dirichlet 0", 4, "alpha"), ("dirichlet -1", 4, "alpha"),
                                                  ("iid", 500, "clients"), ("iid", 0, "clients"),
                                                  ("dirichlet", 4, "concentration"), ("random", 4, "unknown"),
                                                  ("by movie", 4, "sources")])
def test_bad_partitions_get_clear_errors(how, clients, error):
    with pytest.raises(ValueError, match=error):
        federated.partition(labels(100), clients, how)


def test_average_of_identical_models_is_that_model_and_weights_count():
    torch.manual_seed(0)
    a, b = federated.weights(federated.Head()), federated.weights(federated.Head())
    same = federated.average([a, a, a], [5, 1, 7])
    assert all(torch.allclose(same[k], a[k]) for k in a)
    mixed = federated.average([a, b], [1, 3])
    assert all(torch.allclose(mixed[k], 0.25 * a[k] + 0.75 * b[k], atol=1e-6) for k in a)
    with pytest.raises(ValueError, match="positive size"):
        federated.average([a, b], [1, 0])


def test_fedprox_term_is_zero_at_the_global_weights_and_grows_away():
    torch.manual_seed(0)
    model = federated.Head()
    batch = {"features": torch.randn(8, 384), "labels": torch.randint(0, 2, (8,))}
    start = federated.weights(model)
    ce = torch.nn.functional.cross_entropy(model(batch["features"]), batch["labels"])
    assert torch.isclose(federated.proximal_loss_fn(start, 0.5)(model, batch), ce)
    with torch.no_grad():
        model.net.bias.add_(1.0)
    ce = torch.nn.functional.cross_entropy(model(batch["features"]), batch["labels"])
    assert torch.isclose(federated.proximal_loss_fn(start, 0.5)(model, batch), ce + 0.5 / 2 * 2.0)
    with pytest.raises(ValueError, match="mu"):
        federated.proximal_loss_fn(start, -1)


def separable(n=400, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    x = rng.normal(size=(n, 16)).astype(np.float32)
    x[:, 0] += 3 * (2 * y - 1)
    return x, y


def test_fedavg_learns_matches_its_cache_and_counts_bytes(tmp_path, monkeypatch):
    monkeypatch.setenv("LABKIT_CACHE", str(tmp_path))
    x, y = separable()
    parts = federated.partition(y, 4, "iid", 0)
    run = federated.fedavg(x, y, parts, x, y, rounds=3, per_round=2, lr=1e-2, progress=False)
    assert run["accuracy"].shape == (3,) and run["accuracy"][-1] > 0.9
    assert run["bytes"][0] == 2 * 2 * (16 * 2 + 2) * 4
    assert np.array_equal(federated.fedavg(x, y, parts, x, y, 3, 2, 1e-2, progress=False)["accuracy"], run["accuracy"])
    assert federated.centralised(x, y, x, y, epochs=2, lr=1e-2) > 0.9
    with pytest.raises(ValueError, match="per_round"):
        federated.fedavg(x, y, parts, x, y, 3, 5, 1e-2)


def test_client_dp_noise_multiplier_reaches_its_epsilon(tmp_cache, monkeypatch):
    privacy.noise_multiplier.cache_clear()  # searched here, into this test's cache
    z = privacy.client_dp_noise_multiplier(8.0, 10, 100, 30, 1e-5)
    assert abs(privacy.client_dp_epsilon(z, 10, 100, 30, 1e-5) - 8.0) < 0.05
    # kept in the run cache: another process (a second run) reads it back without searching again
    privacy.noise_multiplier.cache_clear()
    import opacus.accountants.utils as ou
    monkeypatch.setattr(ou, "get_noise_multiplier", lambda **kw: pytest.fail("searched again"))
    assert privacy.client_dp_noise_multiplier(8.0, 10, 100, 30, 1e-5) == z
    assert federated.client_dp_noise(z, 0.5, 10) == pytest.approx(z * 0.05)
    with pytest.raises(ValueError, match="epsilon"):
        privacy.client_dp_noise_multiplier(0, 10, 100, 30, 1e-5)


def test_client_dp_samples_clients_poisson_as_its_accountant_assumes(tmp_path, monkeypatch):
    """Opacus' accountant assumes each client is in a round with probability m / N; a draw of
    exactly m clients would make the printed epsilon invalid."""
    monkeypatch.setenv("LABKIT_CACHE", str(tmp_path))
    x, y = separable(400)
    parts = federated.partition(y, 20, "iid", 0)
    run = federated.fedavg(x, y, parts, x, y, rounds=40, per_round=5, lr=1e-2, dp_clip=1.0, dp_noise=0.1,
                           progress=False)
    size = (16 * 2 + 2) * 4
    taking_part = run["bytes"] / (2 * size)
    assert len(set(taking_part)) > 2 and 3.5 < taking_part.mean() < 6.5  # varies, around m = 5
    fixed = federated.fedavg(x, y, parts, x, y, rounds=3, per_round=5, lr=1e-2, progress=False)
    assert set(fixed["bytes"]) == {2 * 5 * size}  # without DP: exactly m a round


def test_dp_average_divides_by_the_expected_count_and_a_round_without_clients_is_noise():
    state = {"w": torch.zeros(3)}
    big = {"w": torch.tensor([3.0, 4.0, 0.0])}  # norm 5: clipped to 1
    out = federated.dp_average(state, [big, big], clip=1.0, noise=0.0, expected=4, seed=0)
    assert torch.allclose(out["w"], torch.tensor([0.3, 0.4, 0.0]))  # (2 clipped updates) / 4, not / 2
    empty = federated.dp_average(state, [], clip=1.0, noise=1.0, expected=4, seed=0)
    assert empty["w"].abs().sum() > 0 and empty["w"].std() < 1.0  # noise of std 1 x 1 / 4 only


def test_dp_head_spends_its_epsilon_and_refuses_bad_budgets(tmp_path, monkeypatch):
    monkeypatch.setenv("LABKIT_CACHE", str(tmp_path))
    x, y = separable(600)
    run = privacy.head_run(x, y, {"x": x}, 2.0, epochs=3, lr=1e-2, batch_size=64)
    assert abs(run["epsilon"][0] - 2.0) <= privacy.TOLERANCE
    assert metrics.accuracy(run["x"], y) > 0.8
    assert np.isnan(privacy.head_run(x, y, {"x": x}, None, epochs=1, lr=1e-2)["epsilon"][0])
    for bad in (0, -1.0, "8"):
        with pytest.raises(ValueError, match="epsilon"):
            privacy.head_run(x, y, {"x": x}, bad, epochs=1, lr=1e-2)


def test_membership_auc():
    assert privacy.membership_auc([0.1, 0.2], [1.0, 2.0]) == 1.0
    assert privacy.membership_auc([1.0, 1.0], [1.0, 1.0]) == 0.5
    losses = privacy.per_example_loss([[2.0, 0.0], [0.0, 2.0]], [0, 0])
    assert losses[0] < losses[1]
    z = np.random.default_rng(0).normal(size=(20, 3)) * 4
    y = np.arange(20) % 3
    exact = torch.nn.functional.cross_entropy(torch.tensor(z), torch.tensor(y), reduction="none").numpy()
    assert np.allclose(privacy.per_example_loss(z, y), exact, rtol=1e-9, atol=1e-12)
    sure = privacy.per_example_loss([[30.0, 0.0], [60.0, 0.0]], [0, 0])  # float32 cross entropy reads 0 for both
    assert 0 < sure[1] < sure[0]  # a threshold can still rank confident rows
    with pytest.raises(ValueError, match="both"):
        privacy.membership_auc([], [1.0])


def test_tpr_at_a_low_false_positive_rate_counts_only_confident_members():
    other = np.linspace(1.0, 2.0, 200)                    # held-out losses; 1% of 200 = 2 may be called members
    member = np.r_[np.full(10, 0.5), np.full(90, 1.5)]   # 10 members far below every held-out loss
    assert privacy.tpr_at_fpr(member, other, 0.01) == 0.10
    assert privacy.membership_auc(member, other) > 0.5   # an AUC that hides how few are caught with confidence
    assert privacy.tpr_at_fpr(other[::-1], other, 0.01) == 0.01   # the same distribution: a coin's rate
    with pytest.raises(ValueError, match="at least 100"):
        privacy.tpr_at_fpr(member, other[:50], 0.01)
    with pytest.raises(ValueError, match="between 0 and 1"):
        privacy.tpr_at_fpr(member, other, 1.0)


def test_membership_attacks_an_overfitted_head_and_dp_pulls_it_toward_a_coin(tmp_path, monkeypatch):
    monkeypatch.setenv("LABKIT_CACHE", str(tmp_path))
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(700, 16)).astype(np.float32), rng.integers(0, 2, 700)  # noise labels: only memory helps
    plain = privacy.membership(x, y, x[:50], y[:50], None, rows=100, others=500, epochs=300, hidden=64, seed=1)
    private = privacy.membership(x, y, x[:50], y[:50], 1.0, rows=100, others=500, epochs=300, hidden=64, seed=1)
    assert plain["auc"] > 0.8                                         # it remembers its 100 rows
    assert abs(private["auc"] - 0.5) < abs(plain["auc"] - 0.5)
    for a in (plain, private):                                        # the rates are the returned losses'
        assert a["tpr_at_1pct_fpr"] == privacy.tpr_at_fpr(a["member_loss"], a["other_loss"], 0.01)
        assert a["auc"] == privacy.membership_auc(a["member_loss"], a["other_loss"])
    assert len(plain["member_loss"]) == 100 and len(plain["other_loss"]) == 500
    with pytest.raises(ValueError, match="more than the 700 rows"):
        privacy.membership(x, y, x, y, None, rows=600, others=200, epochs=1, hidden=0)


@pytest.mark.slow
def test_a_flower_federation_on_two_nodes_completes_and_matches_in_process(tmp_path, monkeypatch):
    import psutil
    monkeypatch.setenv("LABKIT_CACHE", str(tmp_path))
    x, y = separable()
    parts = federated.partition(y, 2, "iid", 0)
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    fl = flower.run(x, y, parts, x, y, rounds=1, lr=1e-2, timeout=180)
    in_process = federated.fedavg(x, y, parts, x, y, 1, 2, 1e-2, progress=False)["accuracy"]
    assert len(fl["accuracy"]) == 1 and abs(fl["accuracy"][0] - in_process[0]) < 1e-6
    alive = [p for p in psutil.Process().children(recursive=True) if p.pid not in before and p.status() != "zombie"]
    assert not alive, alive  # every process it started is stopped
    assert (fl["folder"] / "superlink.log").exists()
