"""The small parts every run kind shares (the classifier loop in distiller.py, finetune.py, lm/, the
streamed data path): sinks, the device, the optimiser, the finite-loss check. Here rather than in
distiller.py so that those modules need not import the distiller back (tests/test_import_graph.py).
"""

from __future__ import annotations

from typing import Any, Protocol

import torch

from distill_core.config import ExperimentConfig
from distill_core.errors import ConfigError, TrainingError


class Sink(Protocol):
    def emit(self, kind: str, payload: dict[str, Any]) -> None: ...


class NullSink:
    def emit(self, kind: str, payload: dict[str, Any]) -> None:
        pass


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"train.device={name!r} but this machine has no CUDA device; use 'auto' or 'cpu'.",
                          field="train.device")
    try:
        return torch.device(name)
    except RuntimeError:
        raise ConfigError(f"train.device={name!r} is not a device name (auto, cpu, cuda, cuda:N).",
                          field="train.device") from None


def make_optimizer(config: ExperimentConfig, params: list[torch.nn.Parameter], lr: float) -> torch.optim.Optimizer:
    t = config.train
    # foreach: one kernel per operation over all parameters; on the CPU (where torch's default is one parameter
    # at a time) a TextCNN step's AdamW and clipping take 1.25 instead of 2.3 ms (docs/BENCHMARKS.md)
    if t.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=t.weight_decay, foreach=True)
    if t.optimizer == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=t.weight_decay, foreach=True)
    if t.optimizer == "adadelta":
        return torch.optim.Adadelta(params, lr=lr, weight_decay=t.weight_decay)
    return torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=t.weight_decay)


def check_finite(terms: dict[str, torch.Tensor], step: int) -> None:
    """Stop on a NaN/inf loss, naming the step and the first term that went bad."""
    for name, value in terms.items():
        if not torch.isfinite(value.detach()).all():
            raise TrainingError(f"The {name} became {float(value.detach())} at step {step}; lower the learning rate or "
                                f"the temperature, or check the data.")


def hold_out_dev(train: Any, seed: int) -> tuple[Any, Any]:
    """(dev, train): a seeded tenth of a split without a dev file held out (any split with len() and
    subset(indices, name), in its file order)."""
    if len(train) < 2:
        raise ConfigError("Without a dev file the train split needs at least 2 examples to hold one out.",
                          field="data.dev")
    order = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed)).tolist()
    held = max(1, len(train) // 10)
    return train.subset(sorted(order[:held]), "dev"), train.subset(sorted(order[held:]), "train")
