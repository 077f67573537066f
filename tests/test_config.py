"""Every lab's settings are one `ScaledConfig`: cpu defaults, and what differs at smoke and gpu
as data. Each builds at every scale, names only its own fields, and refuses an unknown scale."""
import dataclasses
import importlib
import pkgutil

import pytest

import labkit.labs
from labkit.core.config import ScaledConfig
from labkit.core.env import SCALES


def lab_configs() -> list[type]:
    for info in pkgutil.walk_packages(labkit.labs.__path__, "labkit.labs."):
        importlib.import_module(info.name)
    found, todo = set(), [ScaledConfig]
    while todo:
        for sub in todo.pop().__subclasses__():
            found.add(sub)
            todo.append(sub)
    return sorted(found, key=lambda c: c.__name__)


def test_every_lab_config_is_scaled():
    names = [c.__name__ for c in lab_configs()]
    assert names == ["AdaptConfig", "AdversarialConfig", "AugmentConfig", "CompressConfig", "DataConfig",
                     "DeployConfig", "DistillConfig", "FederatedConfig", "FinetuneConfig", "PretrainConfig"]


@pytest.mark.parametrize("config", lab_configs(), ids=lambda c: c.__name__)
def test_each_scale_builds_and_differs_only_where_it_says(config):
    assert dataclasses.is_dataclass(config) and set(config.SCALES) <= set(SCALES) - {"cpu"}
    fields = {f.name for f in dataclasses.fields(config)}
    cpu = dataclasses.asdict(config.for_scale("cpu"))
    assert cpu == dataclasses.asdict(config())
    for scale, changes in config.SCALES.items():
        assert set(changes) <= fields, f"{config.__name__}.SCALES[{scale!r}] names no field {set(changes) - fields}"
        built = dataclasses.asdict(config.for_scale(scale))
        assert {k for k in fields if built[k] != cpu[k]} <= set(changes)
        assert all(built[k] == v for k, v in changes.items())


def test_an_unknown_scale_is_refused(monkeypatch):
    from labkit.labs.augment import AugmentConfig
    with pytest.raises(ValueError, match="unknown scale 'laptop': use one of smoke, cpu, gpu"):
        AugmentConfig.for_scale("laptop")
    monkeypatch.setenv("LABKIT_SCALE", "smoke")
    assert AugmentConfig.for_scale().seeds == (10, 11)  # the environment's scale when none is given
