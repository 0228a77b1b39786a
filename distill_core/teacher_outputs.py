"""Teacher outputs: the teachers loaded and checked, and their logits over every split, computed once or
read from the cache (teacher_cache.py), beside the students' token ids (encoding.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from distill_core.config import ExperimentConfig
from distill_core.data import Split
from distill_core.encoding import Encoded, encode_in_chunks, label_tensor
from distill_core.errors import CheckpointError
from distill_core.progress import Phase, Phases
from distill_core.run_parts import NullSink
from distill_core.teachers import inspect_checkpoint, label_order, load_teacher, teacher_logits
from distill_core.vocab import Encoder


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


def encode_splits(config: ExperimentConfig, splits: dict[str, Split], encoder: Encoder, teachers: list[LoadedTeacher],
                  device: torch.device, cache_dir: str | Path | None,
                  on_batch: Callable[[], None] | None = None,
                  without_logits: set[str] = frozenset(), phases: Phases | None = None) -> dict[str, Encoded]:
    """Student ids for every split and the teachers' (weighted mean) logits, computed once or read from the cache.

    Splits in `without_logits` get none (Encoded.teacher None): the teacher does not run over them here.
    `phases` reports the tokenising and the teacher labelling (examples done over all splits and teachers).
    """
    from distill_core import teacher_cache

    phases = phases or Phases(NullSink())
    labels = list(config.data.labels)
    max_length = config.data.max_length
    total_weight = sum(t.weight for t in teachers)
    tokens = {}
    with phases.phase("tokenising", total=sum(len(split) for split in splits.values()), poll_cancel=True) as progress:
        for name, split in splits.items():
            tokens[name] = encode_in_chunks(encoder, split, max_length, progress)
    labelled = [name for name in splits if name not in without_logits]
    encoded = {}
    with phases.phase("teacher", total=sum(len(splits[name]) for name in labelled) * len(teachers)) as progress:
        for name, split in splits.items():
            mean = None
            for t in teachers if name in labelled else ():
                def compute(split: Split = split, t: LoadedTeacher = t) -> torch.Tensor:
                    return teacher_logits(t.model, t.tokenizer, split.texts, split.pairs, max_length,
                                          batch_size=max(64, config.train.batch_size), device=device,
                                          on_batch=on_batch, progress=progress.advance)

                done = progress.done + len(split)
                key = teacher_cache.cache_key(t.path, split, max_length, features=("logits",), extra=t.cache_extra())
                logits = teacher_cache.get_or_compute(cache_dir, key, compute)  # (N, C)
                progress.update_to(done)  # a cache hit counts as labelled at once
                order = label_order(t.info["labels"], labels)
                if order is not None:
                    logits = logits[:, order]
                mean = logits * (t.weight / total_weight) + (0 if mean is None else mean)
            encoded[name] = Encoded(*tokens.pop(name), label_tensor(split.labels, len(labels), config.data.multi_label),
                                    mean)
    return encoded



def teacher_predictions(logits: torch.Tensor, multi_label: bool) -> torch.Tensor:
    """Arg-max classes (N,), or the multi-hot set of classes with a positive logit (N, C)."""
    return (logits > 0).float() if multi_label else logits.argmax(dim=1)
