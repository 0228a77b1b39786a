"""Splits held in memory: read whole from disk, the student's encoder built from them, and `Encoded`, a split
as the loop sees it.

A distillation run streams every split instead (streaming.py, token_store.py, augment_store.py);
this path serves teacher fine-tuning (finetune.py), the benchmarks and the tests that check the
streamed tensors against it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from distill_core.config import ExperimentConfig
from distill_core.data import Split, read_split
from distill_core.errors import ConfigError
from distill_core.progress import Phase
from distill_core.run_parts import hold_out_dev
from distill_core.vocab import Encoder, TeacherPieces, Vocab


@dataclass
class Encoded:
    """A split ready for the loop: student ids, lengths, gold labels and the teacher's logits."""

    ids: torch.Tensor  # (N, L) long, right-padded with 0
    lengths: torch.Tensor  # (N,) long
    labels: torch.Tensor  # (N,) long class indices, or (N, C) float multi-hot
    teacher: torch.Tensor | None  # (N, C) float32 teacher logits in dataset label order; None: not computed

    def __len__(self) -> int:
        return self.labels.size(0)

    def batch(self, index: torch.Tensor, device: torch.device, width: int | None = None) -> tuple[torch.Tensor | None, ...]:
        lengths = self.lengths[index]
        ids = self.ids[index, : width or int(lengths.max())]  # (b, L_b): trim to the batch's longest example
        teacher = None if self.teacher is None else self.teacher[index].to(device)
        return ids.to(device), lengths.to(device), self.labels[index].to(device), teacher


def load_splits(config: ExperimentConfig, progress: Phase | None = None) -> dict[str, Split]:
    """Train, dev and test splits. Without a dev file, a seeded 10% of train is held out as dev.

    `progress` advances by one per file read.
    """
    data = config.data
    if not data.labels:
        raise ConfigError("data.labels is empty: list the class names in index order.", field="data.labels")
    advance = progress.advance if progress is not None else (lambda n=1: None)
    splits = {"train": read_split(data.train, data, data.labels, "train")}
    advance()
    if data.dev:
        splits["dev"] = read_split(data.dev, data, data.labels, "dev")
        advance()
    else:
        splits["dev"], splits["train"] = hold_out_dev(splits["train"], config.seed)
    if data.test:
        splits["test"] = read_split(data.test, data, data.labels, "test")
        advance()
    return splits


def build_encoder(config: ExperimentConfig, train: Split, tokenizer: Any) -> Encoder:
    if config.student.vocab == "teacher":
        return TeacherPieces(tokenizer)
    return Vocab.build(train.texts + (train.pairs or []), config.student.vocab)


def label_tensor(labels: list, num_labels: int, multi_label: bool) -> torch.Tensor:
    """(N,) class indices, or (N, C) multi-hot floats for multi-label data."""
    if not multi_label:
        return torch.tensor(labels, dtype=torch.long)
    y = torch.zeros(len(labels), num_labels)
    for i, row in enumerate(labels):
        if isinstance(row, list) and row:
            y[i, row] = 1.0
    return y

