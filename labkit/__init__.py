"""labkit: the helper package of the labkit course.

Three rooms: `labkit.core` (what every lab stands on), `labkit.labs` (the code behind each
notebook; a lab imports only the core) and `labkit.course` (the runner, reports, studies and
the `labkit` command), with `labkit.exercises` holding each lab's exercise checks. Import what
you use: ``from labkit.core import data``, ``from labkit.labs import pretrain``.

``import labkit`` itself stays light: it gives the helpers every notebook uses (`record`,
`table`, `claim`, `target`, `gate`, `scale`, `device`, `doctor`, `seed_everything`) and sets
Hugging Face's offline switches (HF_HUB_OFFLINE=1 and friends) unless you set LABKIT_ONLINE=1
or set them yourself: nothing loads from a hub by default.
"""
from labkit.core.env import offline_defaults as _offline_defaults

_offline_defaults()

from labkit.core.claims import ClaimFailed, claim, gate, target  # noqa: E402
from labkit.core.env import device, doctor, scale, seed_everything  # noqa: E402
from labkit.core.results import record, table  # noqa: E402

__version__ = "0.1.0"

__all__ = ["ClaimFailed", "claim", "gate", "record", "table", "target", "device", "doctor", "scale",
           "seed_everything"]
