"""Optimisers come from the registry: the config's choices are its names, and each builds from a config."""

from __future__ import annotations

import pytest
import torch

from distill_core.config import ExperimentConfig
from distill_core.errors import ConfigError
from distill_core.optimizers import make_optimizer, optimizers


@pytest.mark.parametrize(("name", "kind"), [("adamw", torch.optim.AdamW), ("adam", torch.optim.Adam),
                                            ("sgd", torch.optim.SGD), ("adadelta", torch.optim.Adadelta)])
def test_each_registered_name_builds_its_optimiser_with_the_configured_decay(make_config, name, kind):
    config = ExperimentConfig.from_dict(make_config(train={"optimizer": name, "weight_decay": 0.01}))
    optimizer = make_optimizer(config, [torch.nn.Parameter(torch.zeros(2))], lr=0.5)
    assert type(optimizer) is kind
    assert optimizer.defaults["lr"] == 0.5 and optimizer.defaults["weight_decay"] == 0.01


def test_sgd_keeps_its_momentum(make_config):
    config = ExperimentConfig.from_dict(make_config(train={"optimizer": "sgd"}))
    assert make_optimizer(config, [torch.nn.Parameter(torch.zeros(2))], lr=0.1).defaults["momentum"] == 0.9


def test_the_config_accepts_exactly_the_registered_names(make_config):
    assert optimizers.ordered() == ["adamw", "adam", "sgd", "adadelta"]
    with pytest.raises(ConfigError) as err:
        ExperimentConfig.from_dict(make_config(train={"optimizer": "lion"}))
    assert err.value.field == "train.optimizer" and "adamw, adam, sgd, adadelta" in err.value.message
