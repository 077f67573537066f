"""labkit: the helper package of the labkit course (see README.md for which lab uses what).

Importing labkit sets Hugging Face's offline switches (HF_HUB_OFFLINE=1 and friends) unless
you set LABKIT_ONLINE=1 or set them yourself: nothing loads from a hub by default.
"""
from .env import offline_defaults as _offline_defaults

_offline_defaults()

from . import check, data, env, fetch, finetune, models, plots, pretrain, text, train, widgets  # noqa: E402
from .cli import record  # noqa: E402
from .env import device, doctor, scale, seed_everything  # noqa: E402

__version__ = "0.1.0"
__all__ = ["check", "data", "env", "fetch", "finetune", "models", "plots", "pretrain", "text", "train", "widgets",
           "record", "device", "doctor", "scale", "seed_everything"]
