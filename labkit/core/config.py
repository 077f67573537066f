"""Core: a lab's settings at each scale, as data. Every lab's config is a dataclass whose
defaults are its `cpu` settings, with `SCALES` saying what differs at `smoke` and `gpu`;
``Config.for_scale()`` builds the one for LABKIT_SCALE (or the scale given).

Example: ``AugmentConfig.SCALES`` is ``{"smoke": {"seeds": (10, 11)}, "gpu": {...}}``, so
``AugmentConfig.for_scale("smoke").seeds`` -> (10, 11) and every other field is the cpu one.
Leaves out: settings that depend on the machine (threads, memory): `labkit.core.env`.
"""
from __future__ import annotations

from typing import ClassVar

from labkit.core.env import SCALES as KNOWN_SCALES
from labkit.core.env import dry_run
from labkit.core.env import scale as current_scale


class ScaledConfig:
    """Base of every lab's settings dataclass: the defaults are `cpu`; ``SCALES[scale]`` the
    fields that differ at another scale (a scale left out runs the cpu settings); ``DRY_RUN``
    the sizes a `gpu` dry run (`labkit.core.env.dry_run`) cuts beyond what the core cuts (the
    review splits, the training steps), for a lab that draws its own sample."""
    SCALES: ClassVar[dict] = {}
    DRY_RUN: ClassVar[dict] = {}

    @classmethod
    def for_scale(cls, scale: str | None = None):
        scale = scale or current_scale()
        if scale not in KNOWN_SCALES:
            raise ValueError(f"unknown scale {scale!r}: use one of {', '.join(KNOWN_SCALES)}")
        fields = cls.SCALES.get(scale, {})
        if scale == "gpu" and dry_run():
            fields = {**fields, **cls.DRY_RUN}
        return cls(**fields)
