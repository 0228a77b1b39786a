"""Data encoding: the splits read from disk, the student's encoder, and `Encoded`, a split as the loop sees it.

The in-memory path (augmentation on); the streamed path builds the same tensors from token stores
(streaming.py, token_store.py).
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

    def concat(self, other: Encoded) -> Encoded:
        if self.teacher is None or other.teacher is None:
            raise ValueError("Only splits with precomputed teacher logits can be joined")
        width = max(self.ids.size(1), other.ids.size(1))

        def pad(ids: torch.Tensor) -> torch.Tensor:
            return torch.nn.functional.pad(ids, (0, width - ids.size(1)))  # (N, width)

        return Encoded(torch.cat([pad(self.ids), pad(other.ids)]), torch.cat([self.lengths, other.lengths]),
                       torch.cat([self.labels, other.labels]), torch.cat([self.teacher, other.teacher]))

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


def encode_in_chunks(encoder: Encoder, split: Split, max_length: int, progress: Phase,
                     chunk: int = 8192) -> tuple[torch.Tensor, torch.Tensor]:
    """encoder.encode over `split` a chunk at a time, so a large split reports progress; the same tensors."""
    if len(split) <= chunk:
        ids, lengths = encoder.encode(split.texts, split.pairs, max_length)
        progress.advance(len(split))
        return ids, lengths
    parts = []
    for start in range(0, len(split), chunk):
        end = start + chunk
        parts.append(encoder.encode(split.texts[start:end], split.pairs[start:end] if split.pairs is not None else None,
                                    max_length))
        progress.advance(len(parts[-1][1]))
    width = max(ids.size(1) for ids, _ in parts)
    pad_id = getattr(getattr(encoder, "tokenizer", None), "pad_token_id", None) or 0  # what encode pads with
    ids = torch.cat([torch.nn.functional.pad(ids, (0, width - ids.size(1)), value=pad_id) for ids, _ in parts])
    return ids, torch.cat([lengths for _, lengths in parts])  # (N, width), (N,)


def label_tensor(labels: list, num_labels: int, multi_label: bool) -> torch.Tensor:
    """(N,) class indices, or (N, C) multi-hot floats for multi-label data."""
    if not multi_label:
        return torch.tensor(labels, dtype=torch.long)
    y = torch.zeros(len(labels), num_labels)
    for i, row in enumerate(labels):
        if isinstance(row, list) and row:
            y[i, row] = 1.0
    return y

