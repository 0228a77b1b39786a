"""Optimisers registered by name (`train.optimizer`); each builds from (params, lr, weight_decay).
`apply_gradients` is the end of every run kind's optimisation step.

Adam(W) and clipping use foreach kernels (one kernel per operation over all parameters): on the CPU,
where torch's default goes one parameter at a time, a TextCNN step's AdamW and clipping take 1.25
instead of 2.3 ms (docs/BENCHMARKS.md)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch

from distill_core.config import ExperimentConfig
from distill_core.registry import Registry

Builder = Callable[[list[torch.nn.Parameter], float, float], torch.optim.Optimizer]
optimizers: Registry[Builder] = Registry("optimizer", field="train.optimizer")


@optimizers.register("adamw")
def adamw(params: list[torch.nn.Parameter], lr: float, weight_decay: float) -> torch.optim.Optimizer:
    return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, foreach=True)


@optimizers.register("adam")
def adam(params: list[torch.nn.Parameter], lr: float, weight_decay: float) -> torch.optim.Optimizer:
    return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, foreach=True)


@optimizers.register("sgd")
def sgd(params: list[torch.nn.Parameter], lr: float, weight_decay: float) -> torch.optim.Optimizer:
    """SGD with momentum 0.9 (plain SGD is rarely what a KD recipe means)."""
    return torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=weight_decay)


@optimizers.register("adadelta")
def adadelta(params: list[torch.nn.Parameter], lr: float, weight_decay: float) -> torch.optim.Optimizer:
    return torch.optim.Adadelta(params, lr=lr, weight_decay=weight_decay)


def make_optimizer(config: ExperimentConfig, params: list[torch.nn.Parameter], lr: float) -> torch.optim.Optimizer:
    """The optimiser `config.train.optimizer` names, over `params` at rate `lr`."""
    return optimizers.get(config.train.optimizer)(params, lr, config.train.weight_decay)


def apply_gradients(optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler, scheduler: Any,
                    parameters: Iterable[torch.nn.Parameter], grad_clip: float | None) -> float:
    """Clip the (unscaled) gradients, step the optimiser, the AMP scaler and the rate schedule.

    Returns the learning rate this step used (read before the schedule moves it).
    """
    if grad_clip is not None:
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(parameters, grad_clip, foreach=True)
    lr = optimizer.param_groups[0]["lr"]
    scaler.step(optimizer)
    scaler.update()
    scheduler.step()
    return lr
