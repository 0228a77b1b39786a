"""Teacher outputs: the teachers loaded and checked, whether the live pass can give the train split's
KD targets, and predictions from logits. streaming.py computes the logits over every split (or reads
them from teacher_cache.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from distill_core.config import ExperimentConfig
from distill_core.errors import CheckpointError
from distill_core.progress import Phase
from distill_core.teachers import inspect_checkpoint, load_teacher


def live_train_logits(config: ExperimentConfig, n_teachers: int) -> bool:
    """Whether the train split's KD targets can come from the teacher pass that the matches need.

    True when one teacher runs on every batch of every stage (each has matches) on the student's own
    tokens, which are exactly the teacher's: no augmentation (its copies need labels up front) and no
    text pairs (the live pass has no segment ids).
    """
    return (n_teachers == 1 and not config.augment.enabled and config.data.text_pair_column is None
            and all(stage.matches for stage in config.stage_configs()))


@dataclass
class LoadedTeacher:
    model: torch.nn.Module
    tokenizer: Any
    info: dict[str, Any]
    path: str
    weight: float

    def cache_extra(self) -> dict[str, str]:
        """What the cache key adds for this teacher's precision: logits computed in another dtype than float32
        (teacher.precision bfloat16, a half save on CUDA) are other logits; float32 keys stay as they were."""
        dtype = str(next(self.model.parameters()).dtype).removeprefix("torch.")
        return {} if dtype == "float32" else {"compute": dtype}


def load_teachers(config: ExperimentConfig, device: torch.device, labels: list[str],
                  progress: Phase | None = None) -> list[LoadedTeacher]:
    """The teacher and any ensemble members, each checked against the dataset's label count."""
    loaded = []
    for i, (path, weight) in enumerate(config.teacher.members()):
        try:
            info = inspect_checkpoint(path)
            model, tokenizer = load_teacher(path, device, labels, precision=config.teacher.precision)
        except CheckpointError as exc:
            if i == 0:
                raise
            raise CheckpointError(f"Ensemble teacher {i} ({path}): {exc.message}",
                                  field=f"teacher.ensemble.{i - 1}.path") from None
        loaded.append(LoadedTeacher(model, tokenizer, info, path, weight))
        if progress is not None:
            progress.advance()
    return loaded


def teacher_predictions(logits: torch.Tensor, multi_label: bool) -> torch.Tensor:
    """Arg-max classes (N,), or the multi-hot set of classes with a positive logit (N, C)."""
    return (logits > 0).float() if multi_label else logits.argmax(dim=1)
