"""Student models, registered by name (config `student.type`).

Every student is built as `cls(vocab_size, num_labels, embedding_dim, **options)` and called as
`model(input_ids (B, T), lengths (B,)) -> logits (B, C)`. Options are a dataclass per student, so
they are documented in one place and an unknown or mistyped option raises ConfigError naming it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from distill_core.errors import ConfigError
from distill_core.registry import Registry

students: Registry[type[nn.Module]] = Registry("student", field="student.type")


@dataclass
class TextCNNOptions:
    filter_sizes: list[int] = field(default_factory=lambda: [2, 3, 4])
    num_filters: int = 128
    dropout: float = 0.5


@students.register("textcnn")
class TextCNN(nn.Module):
    """Convolutional sentence classifier (Kim 2014, "Convolutional Neural Networks for Sentence Classification").

    embedding -> one Conv1d per filter size -> ReLU -> max over time -> concat -> dropout -> linear.
    """

    def __init__(self, vocab_size: int, num_labels: int, embedding_dim: int = 128, **options: Any):
        super().__init__()
        self.options = opts = parse_options(TextCNNOptions, options, "textcnn")
        _check(bool(opts.filter_sizes) and all(isinstance(k, int) and k >= 1 for k in opts.filter_sizes),
               "filter_sizes", "a non-empty list of positive integers", opts.filter_sizes)
        _check(opts.num_filters >= 1, "num_filters", "at least 1", opts.num_filters)
        _check(0.0 <= opts.dropout < 1.0, "dropout", "between 0 and 1 (exclusive)", opts.dropout)
        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=0)
        self.convs = nn.ModuleList(nn.Conv1d(embedding_dim, opts.num_filters, k) for k in opts.filter_sizes)
        self.dropout = nn.Dropout(opts.dropout)
        self.classifier = nn.Linear(opts.num_filters * len(opts.filter_sizes), num_labels)
        self.min_length = max(opts.filter_sizes)

    def forward(self, input_ids: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        x = self.embedding(input_ids).transpose(1, 2)  # (B, E, T)
        if x.size(2) < self.min_length:  # a convolution needs at least k positions
            x = F.pad(x, (0, self.min_length - x.size(2)))  # (B, E, max_k)
        pooled = [F.relu(conv(x)).amax(dim=2) for conv in self.convs]  # each (B, F)
        h = self.dropout(torch.cat(pooled, dim=1))  # (B, F * n_sizes)
        return self.classifier(h)  # (B, C)


@dataclass
class BiLSTMOptions:
    hidden_size: int = 300
    fc_size: int = 400
    dropout: float = 0.1


@students.register("bilstm")
class BiLSTM(nn.Module):
    """BiLSTM student (Tang et al. 2019, "Distilling Task-Specific Knowledge from BERT into Simple Neural Networks").

    embedding -> 1-layer bidirectional LSTM over the unpadded tokens -> concatenated final forward
    and backward states -> tanh fully-connected layer -> dropout -> linear.
    """

    def __init__(self, vocab_size: int, num_labels: int, embedding_dim: int = 128, **options: Any):
        super().__init__()
        self.options = opts = parse_options(BiLSTMOptions, options, "bilstm")
        _check(opts.hidden_size >= 1, "hidden_size", "at least 1", opts.hidden_size)
        _check(opts.fc_size >= 1, "fc_size", "at least 1", opts.fc_size)
        _check(0.0 <= opts.dropout < 1.0, "dropout", "between 0 and 1 (exclusive)", opts.dropout)
        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=0)
        self.lstm = nn.LSTM(embedding_dim, opts.hidden_size, num_layers=1, batch_first=True, bidirectional=True)
        self.fc = nn.Linear(2 * opts.hidden_size, opts.fc_size)
        self.dropout = nn.Dropout(opts.dropout)
        self.classifier = nn.Linear(opts.fc_size, num_labels)

    def forward(self, input_ids: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        x = self.embedding(input_ids)  # (B, T, E)
        if lengths is None:
            lengths = torch.full((input_ids.size(0),), input_ids.size(1), dtype=torch.long)
        packed = nn.utils.rnn.pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        _, (h_n, _) = self.lstm(packed)  # h_n: (2, B, H), forward then backward
        h = torch.cat([h_n[0], h_n[1]], dim=1)  # (B, 2H)
        h = self.dropout(torch.tanh(self.fc(h)))  # (B, fc_size)
        return self.classifier(h)  # (B, C)


def build_student(name: str, vocab_size: int, num_labels: int, embedding_dim: int,
                  options: dict[str, Any] | None = None) -> nn.Module:
    """Look the student up by name and build it; errors name the config field at fault."""
    return students.get(name)(vocab_size, num_labels, embedding_dim, **(options or {}))


def student_options(model: nn.Module) -> dict[str, Any]:
    """The resolved options of a built student (defaults filled in), as JSON."""
    return dataclasses.asdict(model.options)


def parse_options(cls: type, options: dict[str, Any], student: str) -> Any:
    """Build the options dataclass `cls`, rejecting unknown names and wrong types."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(options) - set(fields))
    if unknown:
        raise ConfigError(f"Unknown option {unknown[0]!r} for student {student!r}; known: {', '.join(fields)}.",
                          field=f"student.options.{unknown[0]}")
    defaults, values = cls(), {}
    for name, value in options.items():
        default = getattr(defaults, name)
        if isinstance(default, list) and isinstance(value, tuple):
            value = list(value)
        elif isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, type(default)) or isinstance(value, bool) != isinstance(default, bool):
            raise ConfigError(f"student.options.{name} must be {_TYPE_NAMES[type(default)]} like {default!r} "
                              f"(got {value!r}).", field=f"student.options.{name}")
        values[name] = value
    return cls(**values)


_TYPE_NAMES = {int: "an integer", float: "a number", list: "a list", bool: "true or false", str: "a string"}


def _check(ok: bool, name: str, wanted: str, value: Any) -> None:
    if not ok:
        raise ConfigError(f"student.options.{name} must be {wanted} (got {value!r}).", field=f"student.options.{name}")
