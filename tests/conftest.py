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


def pytest_collection_modifyitems(items):
    """nbval waits a hard-coded 5 s for each of a finished cell's output messages (nbval
    issues #136, #231): on a busy 2-core CI machine a cell's progress-bar output can take
    longer, and a notebook that ran fine fails ("Timeout of 5 seconds exceeded waiting for
    output", seen once on lab 02's pretraining cell). Give it a minute."""
    for item in items:
        if type(item).__name__ == "IPyNbCell":
            item.output_timeout = 60
