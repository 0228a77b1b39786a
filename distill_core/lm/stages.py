"""Stages of a causal-LM run: the classifier's `stages` list, its KD settings mapped onto the LM loss.

A stage's keys mean, in an lm_distill run (unset ones fall back on the `lm` section, not on `kd`):

    temperature -> lm.temperature      (the start of kd.temperature_schedule in that stage)
    kd_weight   -> lm.distill_weight   (times kd.kd_weight_schedule's factor)
    alpha       -> lm.sft_weight       (times kd.hard_weight_schedule's factor)
    matches     -> hidden-state matches (lm/matches.py); none: the run's `matches` are not inherited

name, epochs and learning_rate as for classifiers; each stage starts a fresh optimiser and learning-rate
schedule and picks its own best student (the last stage's is the run's). Schedules run over the whole
run's steps. No torch here: config validation imports it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from distill_core.errors import ConfigError


@dataclass
class LMStage:
    name: str
    epochs: int
    learning_rate: float
    temperature: float
    distill_weight: float
    sft_weight: float
    matches: list[dict[str, Any]] | str = field(default_factory=list)


def lm_stages(config) -> list[LMStage]:
    """The stages to run, complete: one ("main") from train/lm/matches without `stages`."""
    o = config.lm
    if not config.stages:
        return [LMStage("main", config.train.epochs, config.train.learning_rate, o.temperature, o.distill_weight,
                        o.sft_weight, config.matches)]
    out = []
    for raw, sc in zip(config.stages, config.stage_configs(), strict=True):
        out.append(LMStage(sc.name, sc.epochs, sc.learning_rate, _given(raw, "temperature", o.temperature),
                           _given(raw, "kd_weight", o.distill_weight), _given(raw, "alpha", o.sft_weight), sc.matches))
    return out


def _given(raw: dict[str, Any], key: str, default: float) -> float:
    """The stage's own value, else the lm section's (stage_configs fills alpha and temperature from kd)."""
    return default if raw.get(key) is None else raw[key]


def validate_stages(config) -> None:
    """What an LM stage cannot hold: nothing to learn, or an attention match (decoders give no maps).

    Without `stages` the lm section's own checks (LMConfig.validate) and the run's matches' apply."""
    for i, stage in enumerate(lm_stages(config) if config.stages else []):
        if stage.distill_weight + stage.sft_weight <= 0 and not stage.matches:
            raise ConfigError(f"{stage.name}: its distillation weight (kd_weight) and SFT weight (alpha) are both 0 "
                              "and it has no matches: nothing would be learnt.", field=f"stages.{i}.kd_weight")
        if stage.matches:
            from distill_core.lm.matches import refuse_attention  # imports torch: only when there are matches

            try:
                refuse_attention(stage.matches)
            except ConfigError as exc:
                raise ConfigError(f"{stage.name}: {exc.message}", field=f"stages.{i}.{exc.field}") from None
