"""Shared fixtures. Tests that need the real data use the user's cache (run `labkit fetch`
first, as the README's test command does); the others get an empty cache in a temp folder."""
import pytest


@pytest.fixture
def tmp_cache(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("LABKIT_CACHE", str(cache))
    return cache


@pytest.fixture(scope="module")
def module_cache(tmp_path_factory):
    """An empty cache in a temp folder for a whole test module (what a module-wide fixture
    saves, such as a model's ONNX export, never lands in the user's cache)."""
    with pytest.MonkeyPatch.context() as mp:
        cache = tmp_path_factory.mktemp("cache")
        mp.setenv("LABKIT_CACHE", str(cache))
        yield cache

