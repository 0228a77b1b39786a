"""Student models, registered by name (config `student.type`).

Every student is built as `cls(vocab_size, num_labels, embedding_dim, **options)` and called as
`model(input_ids (B, T), lengths (B,)) -> logits (B, C)`; `model.features(...)` also returns its
intermediate features (see student_base.py). Options are a dataclass per student, so they are
documented in one place and an unknown or mistyped option raises ConfigError naming it.

Students: textcnn (here), bilstm and bigru (students_rnn.py), transformer (students_transformer.py).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from distill_core.student_base import (
    Student,
    StudentOutput,
    check_option,
    full_lengths,
    join_pair,
    length_mask,
    parse_options,
    register,
    student_options,
    students,
)
from distill_core.student_options import TextCNNOptions

__all__ = ["students", "build_student", "student_options", "parse_options", "Student", "StudentOutput", "TextCNN",
           "TextCNNOptions",
           "BiLSTM", "BiGRU", "TransformerStudent"]


@register("textcnn")
class TextCNN(Student):
    """Convolutional sentence classifier (Kim 2014, "Convolutional Neural Networks for Sentence Classification").

    embedding -> one Conv1d per filter size -> ReLU -> max over time -> concat -> dropout -> linear.
    Its only hidden state is the embedding output (hidden_states[0]); a text pair is read as one
    sequence, the pair appended after the text.
    """

    def __init__(self, vocab_size: int, num_labels: int, embedding_dim: int = 128, **options: Any):
        super().__init__()
        self.options = opts = parse_options(TextCNNOptions, options, "textcnn")  # bounds: student_options.py
        check_option(all(isinstance(k, int) for k in opts.filter_sizes), "filter_sizes", "a list of integers",
                     opts.filter_sizes)
        self.embedding_dim = embedding_dim
        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=0)
        self.convs = nn.ModuleList(nn.Conv1d(embedding_dim, opts.num_filters, k) for k in opts.filter_sizes)
        self.dropout = nn.Dropout(opts.dropout)
        self.classifier = nn.Linear(opts.num_filters * len(opts.filter_sizes), num_labels)
        self.min_length = max(opts.filter_sizes)

    def _hidden_sizes(self) -> list[int]:
        return [self.embedding_dim]

    def features(self, input_ids: torch.Tensor, lengths: torch.Tensor | None = None,
                 pair_ids: torch.Tensor | None = None, pair_lengths: torch.Tensor | None = None) -> StudentOutput:
        lengths = full_lengths(input_ids, lengths)
        if pair_ids is not None:
            input_ids, lengths, _ = join_pair(input_ids, lengths, pair_ids, full_lengths(pair_ids, pair_lengths))
        embedded = self.embedding(input_ids)  # (B, T, E)
        # (B, E, T), contiguous: conv1d's forward + backward take ~12 % less CPU than on the transposed view, with
        # bitwise the same outputs and gradients (measured on a 64 x 30 batch, 128 filters of 2, 3 and 4).
        x = embedded.transpose(1, 2).contiguous()
        if x.size(2) < self.min_length:  # a convolution needs at least k positions
            x = F.pad(x, (0, self.min_length - x.size(2)))  # (B, E, max_k)
        # Max over the windows inside each example only: a window over padding would make an example's
        # output depend on its batch's width, so length-bucketed training (narrow batches) and evaluation
        # (wide ones) would disagree. ReLU outputs are >= 0, so zeroing a window removes it from the max.
        pooled = [F.relu(conv(x)).masked_fill(self._outside(lengths, k, x.size(2)), 0.0).amax(dim=2)
                  for conv, k in zip(self.convs, self.options.filter_sizes, strict=True)]  # each (B, F)
        h = self.dropout(torch.cat(pooled, dim=1))  # (B, F * n_sizes)
        return StudentOutput(self.classifier(h), (embedded,), None, length_mask(lengths, input_ids.size(1)))

    @staticmethod
    def _outside(lengths: torch.Tensor, k: int, width: int) -> torch.Tensor:
        """(B, 1, width - k + 1) True on the windows of k tokens that reach past the example's end (its
        first window always counts: an example shorter than k is padded up to k)."""
        last_start = (lengths - k).clamp(min=0)  # (B,)
        starts = torch.arange(width - k + 1, device=lengths.device)  # (W - k + 1,)
        return (starts[None, :] > last_start[:, None]).unsqueeze(1)


def build_student(name: str, vocab_size: int, num_labels: int, embedding_dim: int,
                  options: dict[str, Any] | None = None) -> nn.Module:
    """Look the student up by name and build it; errors name the config field at fault."""
    return students.get(name)(vocab_size, num_labels, embedding_dim, **(options or {}))


# The other students register themselves on import; they need the names above, hence the late import.
from distill_core.students_rnn import BiGRU, BiLSTM  # noqa: E402
from distill_core.students_transformer import TransformerStudent  # noqa: E402
