"""Schedules for the learning rate, the temperature and the loss weights, registered by name.

`progress` is the fraction of the run's optimisation steps done, in [0, 1].
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from distill_core.registry import Registry

EPS = 1e-4

# --- learning rate -------------------------------------------------------------------


def lr_factor(schedule: str, warmup_ratio: float, total_steps: int) -> Callable[[int], float]:
    """Multiplier of the base learning rate at (0-based) step s: linear warm-up, then the schedule.

    warm-up: (s + 1) / w for s < w = round(warmup_ratio * total); then with p = (s - w) / (total - w):
    constant 1, linear 1 - p, cosine (1 + cos(pi * p)) / 2.
    """
    warmup = round(warmup_ratio * total_steps)
    decay_steps = max(1, total_steps - warmup)

    def factor(s: int) -> float:
        if s < warmup:
            return (s + 1) / warmup
        p = min(1.0, (s - warmup) / decay_steps)
        if schedule == "linear":
            return 1.0 - p
        if schedule == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * p))
        return 1.0

    return factor


# --- temperature ---------------------------------------------------------------------
# Each returns a float or a per-example tensor (B,) from
# (base T, final T, progress, student logits (B, C), teacher logits (B, C), beta, gamma).
TemperatureFn = Callable[[float, float, float, torch.Tensor, torch.Tensor, float, float], "float | torch.Tensor"]
temperature_schedules: Registry[TemperatureFn] = Registry("temperature schedule", field="kd.temperature_schedule")


@temperature_schedules.register("constant")
def constant_temperature(base, final, progress, logits_S, logits_T, beta, gamma):
    """T = base."""
    return base


@temperature_schedules.register("linear")
def linear_temperature(base, final, progress, logits_S, logits_T, beta, gamma):
    """T = base + (final - base) * progress: anneal from soft to sharp targets (or back)."""
    return base + (final - base) * progress


@temperature_schedules.register("cosine")
def cosine_temperature(base, final, progress, logits_S, logits_T, beta, gamma):
    """T = final + (base - final) * (1 + cos(pi * progress)) / 2."""
    return final + (base - final) * 0.5 * (1.0 + math.cos(math.pi * progress))


@temperature_schedules.register("flsw")
def flsw_temperature(base, final, progress, logits_S, logits_T, beta, gamma):
    """Focal-loss-style weights (TextBrewer's `flsw_temperature_scheduler_builder`).

    v, t = student and teacher logits, each L2-normalised per row (B, C);
    w_b = (1 - <v_b, t_b>)^gamma; T_b = base + (mean(w) - w_b) * beta. Returns (B,).
    Examples where student and teacher disagree get a lower temperature (sharper targets).
    """
    v = logits_S.detach() / (logits_S.detach().norm(dim=-1, keepdim=True) + EPS)  # (B, C)
    t = logits_T.detach() / (logits_T.detach().norm(dim=-1, keepdim=True) + EPS)  # (B, C)
    w = torch.pow((1.0 - (v * t).sum(dim=-1)).clamp(min=0.0), gamma)  # (B,)
    return base + (w.mean() - w) * beta


@temperature_schedules.register("cwsm")
def cwsm_temperature(base, final, progress, logits_S, logits_T, beta, gamma):
    """Confidence-weighted by student max (TextBrewer's `cwsm_temperature_scheduler_builder`).

    w_b = 1 / (max_c softmax(student)[b, c] + eps); T_b = base + (mean(w) - w_b) * beta. Returns (B,).
    """
    v_max = torch.softmax(logits_S.detach(), dim=-1).amax(dim=-1)  # (B,)
    w = 1.0 / (v_max + EPS)
    return base + (w.mean() - w) * beta


# --- loss weights -------------------------------------------------------------------
weight_schedules: Registry[Callable[[float], float]] = Registry("weight schedule", field="kd.kd_weight_schedule")


@weight_schedules.register("constant")
def constant_weight(progress: float) -> float:
    return 1.0


@weight_schedules.register("linear_growth")
def linear_growth(progress: float) -> float:
    """Factor grows from 0 to 1 over the run (TextBrewer's `linear_growth_weight_scheduler`)."""
    return progress


@weight_schedules.register("linear_decay")
def linear_decay(progress: float) -> float:
    """Factor decays from 1 to 0 over the run (TextBrewer's `linear_decay_weight_scheduler`)."""
    return 1.0 - progress
