"""What every student shares: the registry, the options parser, `StudentOutput` and the matcher's queries.

A student is built as `cls(vocab_size, num_labels, embedding_dim, **options)`, called as
`model(input_ids (B, T), lengths (B,)) -> logits (B, C)`, and exposes its intermediate features with
`model.features(input_ids, lengths, pair_ids=None, pair_lengths=None) -> StudentOutput`.
The matcher (matches.py) asks `num_hidden_states()`, `num_attentions()`, `hidden_size(index)`,
`num_heads()` and `has_attentions` before it builds any loss.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn as nn

from distill_core import options as declared_options
from distill_core.errors import ConfigError
from distill_core.registry import Registry
from distill_core.student_options import student_types

students: Registry[type[nn.Module]] = Registry("student", field="student.type")


@dataclass
class StudentOutput:
    """A student's logits and, where it has them, Hugging Face-style intermediate features.

    hidden_states[0] is the embedding output, hidden_states[i] the output of layer i.
    """

    logits: torch.Tensor  # (B, C)
    hidden_states: tuple[torch.Tensor, ...] | None = None  # each (B, T, H_i)
    attentions: tuple[torch.Tensor, ...] | None = None  # each (B, heads, T, T), post-softmax
    attention_mask: torch.Tensor | None = None  # (B, T) long, 1 = real token


class Student(nn.Module):
    """Base class: the queries the matcher relies on, answered from `_hidden_sizes` / `_heads`."""

    name: ClassVar[str] = "student"
    has_attentions: ClassVar[bool] = False
    options_type: ClassVar[type]
    options: Any

    def _hidden_sizes(self) -> list[int]:
        """Width of each entry of `hidden_states`, index 0 first; empty when there are none."""
        return []

    def num_hidden_states(self) -> int:
        return len(self._hidden_sizes())

    def num_attentions(self) -> int:
        return 0

    def num_heads(self) -> int | None:
        return None

    def hidden_size(self, index: int | None = None) -> int | None:
        """Width of hidden_states[index] (default: the last one); None without hidden states."""
        sizes = self._hidden_sizes()
        if not sizes:
            return None
        return sizes[-1 if index is None else index]

    def forward(self, input_ids: torch.Tensor, lengths: torch.Tensor | None = None,
                pair_ids: torch.Tensor | None = None, pair_lengths: torch.Tensor | None = None) -> torch.Tensor:
        return self.features(input_ids, lengths, pair_ids, pair_lengths).logits

    def features(self, input_ids: torch.Tensor, lengths: torch.Tensor | None = None,
                 pair_ids: torch.Tensor | None = None, pair_lengths: torch.Tensor | None = None) -> StudentOutput:
        raise NotImplementedError


def register(name: str):
    """Register a student class under `name`, a student declared with its options in student_options.py.

    The class remembers its name (for messages) and its options dataclass (`options_type`).
    """

    def decorator(cls: type[Student]) -> type[Student]:
        cls.name = name
        cls.options_type = student_types.get(name)  # an undeclared student is an error here
        return students.register(name)(cls)

    return decorator


def full_lengths(input_ids: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
    """`lengths`, or every row at full width when None: (B,) long."""
    if lengths is None:
        return torch.full((input_ids.size(0),), input_ids.size(1), dtype=torch.long, device=input_ids.device)
    return lengths


def length_mask(lengths: torch.Tensor, width: int) -> torch.Tensor:
    """(B, width) long mask with 1 on the first lengths[b] positions."""
    return (torch.arange(width, device=lengths.device)[None, :] < lengths[:, None]).long()


def join_pair(input_ids: torch.Tensor, lengths: torch.Tensor, pair_ids: torch.Tensor,
              pair_lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Concatenate each unpadded text with its pair: (ids (B, T), lengths (B,), segments (B, T)).

    Separators are the caller's business (the vocab encoder puts [SEP] between the texts); segment ids
    are 0 on the first text and 1 on the pair, as BERT's token_type_ids.
    """
    total = lengths + pair_lengths  # (B,)
    width = int(total.max())
    ids = input_ids.new_zeros(input_ids.size(0), width)  # (B, T)
    segments = torch.zeros_like(ids)
    for b in range(ids.size(0)):
        n, m = int(lengths[b]), int(pair_lengths[b])
        ids[b, :n] = input_ids[b, :n]
        ids[b, n: n + m] = pair_ids[b, :m]
        segments[b, n: n + m] = 1
    return ids, total, segments


def student_options(model: nn.Module) -> dict[str, Any]:
    """The resolved options of a built student (defaults filled in), as JSON."""
    exported = getattr(model, "export_options", None)
    return exported() if callable(exported) else dataclasses.asdict(model.options)


def parse_options(cls: type, options: dict[str, Any], student: str) -> Any:
    """Build the options dataclass `cls`, rejecting unknown names, wrong types and values out of bounds."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(options) - set(fields))
    if unknown:
        raise ConfigError(f"Unknown option {unknown[0]!r} for student {student!r}; known: {', '.join(fields)}.",
                          field=f"student.options.{unknown[0]}")
    defaults, values = cls(), {}
    for name, value in options.items():
        default = getattr(defaults, name)
        if default is None:  # an optional string (a path): None or text
            if value is not None and not isinstance(value, str):
                raise ConfigError(f"student.options.{name} must be a string or null (got {value!r}).",
                                  field=f"student.options.{name}")
            values[name] = value or None
            continue
        if isinstance(default, list) and isinstance(value, tuple):
            value = list(value)
        elif isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, type(default)) or isinstance(value, bool) != isinstance(default, bool):
            raise ConfigError(f"student.options.{name} must be {_TYPE_NAMES[type(default)]} like {default!r} "
                              f"(got {value!r}).", field=f"student.options.{name}")
        values[name] = value
    parsed = cls(**values)
    declared_options.check(parsed, "student.options.", full_names=True)  # the bounds declared with each option
    return parsed


_TYPE_NAMES = {int: "an integer", float: "a number", list: "a list", bool: "true or false", str: "a string"}


def check_option(ok: bool, name: str, wanted: str, value: Any) -> None:
    """Raise ConfigError on `student.options.<name>` unless `ok`."""
    if not ok:
        raise ConfigError(f"student.options.{name} must be {wanted} (got {value!r}).", field=f"student.options.{name}")
