"""Shared fixtures. Tests that need the real data use the user's cache (run `labkit fetch`
first, as the README's test command does); the others get an empty cache in a temp folder."""
import pytest


@pytest.fixture
def tmp_cache(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("LABKIT_CACHE", str(cache))
    return cache
