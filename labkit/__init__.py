"""labkit: the helper package of the labkit course (see README.md for which lab uses what).

Importing labkit sets Hugging Face's offline switches (HF_HUB_OFFLINE=1 and friends) unless
you set LABKIT_ONLINE=1 or set them yourself: nothing loads from a hub by default.
"""
from .env import offline_defaults as _offline_defaults

_offline_defaults()

from . import (adversarial, augment, cache, check, claims, clean, curves, data, defences, docs, env, evaluate, fetch, flower,  # noqa: E402
               measure, models, plots, pretrain, report, results, runtime, serve, stats, text, train, widgets)
from .env import device, doctor, scale, seed_everything  # noqa: E402
from .claims import ClaimFailed, claim, gate, target  # noqa: E402
from .results import record, table  # noqa: E402

__version__ = "0.1.0"

# The modules that import torch when they load. They load on first use (`labkit.finetune`,
# `from labkit import finetune`), so `import labkit` and the `labkit` command stay fast; the
# other modules import them only inside the functions that need them.
LAZY = ("classifier", "compress", "distill", "experiments", "federated", "finetune", "privacy", "study")


def __getattr__(name):
    if name in LAZY:
        import importlib
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'labkit' has no attribute {name!r}")


__all__ = ["adversarial", "augment", "cache", "check", "classifier", "clean", "compress", "curves", "data", "defences", "distill", "docs", "env", "evaluate", "experiments",
           "federated", "fetch", "finetune", "flower", "privacy", "measure", "models", "plots", "pretrain", "report", "results", "runtime", "serve", "stats", "text",
           "train", "widgets", "ClaimFailed", "claim", "claims", "gate", "record", "table", "target", "device", "doctor", "scale", "seed_everything"]
