"""labkit: the helper package of the labkit course (see README.md for which lab uses what).

Importing labkit sets Hugging Face's offline switches (HF_HUB_OFFLINE=1 and friends) unless
you set LABKIT_ONLINE=1 or set them yourself: nothing loads from a hub by default.
"""
from .env import offline_defaults as _offline_defaults

_offline_defaults()

from . import augment, check, data, env, fetch, models, plots, pretrain, text, train, widgets  # noqa: E402
from .cli import record  # noqa: E402
from .env import device, doctor, scale, seed_everything  # noqa: E402

__version__ = "0.1.0"

# Modules that import torch when loaded are loaded on first use (`labkit.finetune` or
# `from labkit import finetune`), so `import labkit` and the `labkit` command stay fast.
_LAZY = ("distill", "finetune")


def __getattr__(name):
    if name in _LAZY:
        import importlib
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'labkit' has no attribute {name!r}")

__all__ = ["augment", "check", "data", "distill", "env", "fetch", "finetune", "models", "plots", "pretrain",
           "text", "train", "widgets", "record", "device", "doctor", "scale", "seed_everything"]
