import numpy as np
import pytest
import torch

from labkit.core import cache, fetch, models


@pytest.fixture
def minilm_weights():
    """The real fetched weights (resolved before the cache is swapped for a temp one)."""
    return fetch.path("minilm")


def test_embed_shape_norm_cache(minilm_weights, tmp_cache, monkeypatch):
    monkeypatch.setattr(models.fetch, "path", lambda name: minilm_weights)
    texts = ["a wonderful film", "a dreadful film", "a wonderful movie"]
    x = models.embed(texts, progress=False)
    assert x.shape == (3, 384) and np.allclose(np.linalg.norm(x, axis=1), 1, atol=1e-5)
    assert x[0] @ x[2] > x[0] @ x[1]  # real pretrained weights: similar meaning, closer
    files = list((cache.cache_dir() / "runs").glob("minilm-embeddings-*/arrays.safetensors"))
    assert len(files) == 1 and str(files[0]).startswith(str(tmp_cache))
    assert np.array_equal(models.embed(texts, progress=False), x)


def test_embed_rejects_bad_input():
    with pytest.raises(ValueError, match="no texts"):
        models.embed([])
    with pytest.raises(TypeError, match="strings"):
        models.embed(["ok", 3])


def test_mean_pool_leaves_padding_out():
    hidden = torch.tensor([[[1.0], [3.0], [100.0]], [[2.0], [4.0], [6.0]]])  # (2, 3, 1)
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]])
    assert models.mean_pool(hidden, mask).tolist() == [[2.0], [4.0]]
