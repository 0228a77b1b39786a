"""Hidden-state matches for causal-LM runs: the classifier's match machinery (matches.py) on decoder layers.

The config's `matches` (rows or a preset name, as for classifiers) pair a student hidden state with a
teacher one, Hugging Face numbering: 0 = the embedding output, i = the output of block i (GPT-2's last
one is after its final layer norm, as `output_hidden_states` returns it). Features "hidden" and
"embedding" only: decoders run SDPA attention, which returns no attention maps. Widths that differ
need a projection (`proj`, trained with the student and saved in its checkpoints).

Which positions count (`hidden_mask`): those whose next-token prediction is trained, i.e. the
positions of the token loss (prompt tokens and padding are masked):

    hidden_mask[b, t] = loss_mask[b, t] for t < T - 1, and 0 at t = T - 1    (B, T)

The teacher's hidden states are not cached, so with matches the teacher runs on every batch in every
mode; offline mode still takes its logits from the top-k cache.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from distill_core.errors import ConfigError
from distill_core.matches import MatchLoss, parse_matches, validate_matches
from distill_core.student_base import StudentOutput


class DecoderShape:
    """What validate_matches asks of a student, answered from a causal LM's config (no attention maps)."""

    has_attentions = False

    def __init__(self, model: nn.Module, name: str = "causal LM"):
        self.name, self.config = name, model.config

    def num_hidden_states(self) -> int:
        return self.config.num_hidden_layers + 1

    def hidden_size(self, layer: int = 0) -> int:
        return self.config.hidden_size

    def num_attentions(self) -> int:
        return 0

    def num_heads(self) -> int:
        return self.config.num_attention_heads


def teacher_info(teacher: nn.Module) -> dict[str, Any]:
    c = teacher.config
    return {"num_layers": c.num_hidden_layers, "hidden_size": c.hidden_size, "num_heads": c.num_attention_heads,
            "has_attentions": False}


def refuse_attention(raw: Any) -> None:
    """ConfigError on the first attention match of `raw` (rows or preset names): decoders give no maps."""
    for i, m in enumerate(parse_matches(raw)):
        if m.feature == "attention":
            raise ConfigError(f"match {i}: a language-model run matches hidden states and embeddings only (its "
                              f"decoders return no attention maps); use feature 'hidden'.", field=f"matches.{i}.feature")


def build_match_loss(raw: Any, student: nn.Module, teacher: nn.Module) -> MatchLoss | None:
    """The MatchLoss of `raw` checked against the built student and teacher, or None without matches."""
    if not raw:
        return None
    refuse_attention(raw)
    matches = parse_matches(raw)
    validate_matches(matches, teacher_info(teacher), DecoderShape(student, "student"))
    return MatchLoss(matches, student.config.hidden_size, teacher.config.hidden_size)


def hidden_mask(loss_mask: torch.Tensor) -> torch.Tensor:
    """(B, T-1) next-token loss mask -> (B, T) mask over the positions whose predictions are trained."""
    mask = torch.zeros(loss_mask.size(0), loss_mask.size(1) + 1, dtype=loss_mask.dtype, device=loss_mask.device)
    mask[:, :-1] = loss_mask
    return mask


def match_terms(match_loss: MatchLoss, student_out: Any, teacher_out: Any, attention: torch.Tensor,
                loss_mask: torch.Tensor) -> dict[str, torch.Tensor]:
    """One weighted term per match (MatchLoss keys) from the two models' `output_hidden_states` outputs."""
    out = StudentOutput(student_out.logits, tuple(student_out.hidden_states), None, attention)
    return match_loss(out, tuple(teacher_out.hidden_states), None, hidden_mask(loss_mask))
