"""Prediction-layer distillation losses: short pure functions registered by name.

Every KD loss has the signature `(student_logits (B, C), teacher_logits (B, C), T, t2_scaling) -> ()`
so the training loop can swap them from the config (`kd.loss`).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from distill_core.registry import Registry

Temperature = float | torch.Tensor  # a constant, or one temperature per example (B,)
KDLoss = Callable[[torch.Tensor, torch.Tensor, Temperature, bool], torch.Tensor]
kd_losses: Registry[KDLoss] = Registry("KD loss", field="kd.loss")


@kd_losses.register("kl")
def kd_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor, T: Temperature,
          t2_scaling: bool = True) -> torch.Tensor:
    """Soft-label KL divergence (Hinton et al. 2015, "Distilling the Knowledge in a Neural Network").

    loss = mean_b s_b * sum_c p_t[b,c] * (log p_t[b,c] - log p_s[b,c]),
    p_t = softmax(teacher/T_b), p_s = softmax(student/T_b), s_b = T_b^2 if t2_scaling else 1.
    The T^2 factor keeps the soft-target gradients on the scale of the hard-label ones.

    student_logits, teacher_logits: (B, C); T: a float or a per-example tensor (B,). Returns a scalar.
    """
    T = _per_example(T, student_logits)  # (B, 1) or float
    log_p_s = F.log_softmax(student_logits / T, dim=-1)  # (B, C)
    log_p_t = F.log_softmax(teacher_logits / T, dim=-1)  # (B, C)
    kl = (log_p_t.exp() * (log_p_t - log_p_s)).sum(dim=-1)  # (B,)
    return _scaled_mean(kl, T, t2_scaling)


@kd_losses.register("ce")
def kd_ce(student_logits: torch.Tensor, teacher_logits: torch.Tensor, T: Temperature,
          t2_scaling: bool = True) -> torch.Tensor:
    """Soft cross-entropy (TextBrewer's `kd_ce_loss`; Hinton et al. 2015).

    loss = mean_b s_b * -sum_c p_t[b,c] * log p_s[b,c], with p_t, p_s and s_b as in `kd_kl`.
    Equals `kd_kl` plus the teacher's entropy, a constant for the student.

    student_logits, teacher_logits: (B, C); T: a float or a per-example tensor (B,). Returns a scalar.
    """
    T = _per_example(T, student_logits)
    p_t = F.softmax(teacher_logits / T, dim=-1)  # (B, C)
    log_p_s = F.log_softmax(student_logits / T, dim=-1)  # (B, C)
    ce = -(p_t * log_p_s).sum(dim=-1)  # (B,)
    return _scaled_mean(ce, T, t2_scaling)


def _per_example(T: Temperature, logits: torch.Tensor) -> Temperature:
    """A (B,) temperature becomes (B, 1) so it divides each row; a float stays a float."""
    if isinstance(T, torch.Tensor) and T.dim() > 0:
        return T.to(logits.dtype).reshape(-1, 1)
    return float(T)


def _scaled_mean(per_example: torch.Tensor, T: Temperature, t2_scaling: bool) -> torch.Tensor:
    if not t2_scaling:
        return per_example.mean()
    if isinstance(T, torch.Tensor):
        return (per_example * T.reshape(-1) ** 2).mean()
    return per_example.mean() * (T * T)


@kd_losses.register("mse")
def logit_mse(student_logits: torch.Tensor, teacher_logits: torch.Tensor, T: Temperature = 1.0,
              t2_scaling: bool = True) -> torch.Tensor:
    """Logit regression (Tang et al. 2019, "Distilling Task-Specific Knowledge from BERT into Simple Neural Networks").

    loss = mean_{b,c} (z_s[b,c] - z_t[b,c])^2 on the raw logits: T and t2_scaling do not apply
    (they are accepted only so every KD loss has one signature).

    student_logits, teacher_logits: (B, C). Returns a scalar.
    """
    return F.mse_loss(student_logits, teacher_logits)


@kd_losses.register("bce")
def kd_bce(student_logits: torch.Tensor, teacher_logits: torch.Tensor, T: Temperature,
           t2_scaling: bool = True) -> torch.Tensor:
    """Multi-label soft targets: per-class sigmoids with temperature (binary cross-entropy).

    loss = mean_b s_b * mean_c BCE(sigmoid(z_s[b,c] / T_b), q[b,c]), q = sigmoid(z_t / T_b),
    s_b = T_b^2 if t2_scaling else 1. Zero gradient when z_s = z_t.

    student_logits, teacher_logits: (B, C); T: a float or a per-example tensor (B,). Returns a scalar.
    """
    T = _per_example(T, student_logits)
    q = torch.sigmoid(teacher_logits / T)  # (B, C)
    per_example = F.binary_cross_entropy_with_logits(student_logits / T, q, reduction="none").mean(dim=-1)  # (B,)
    return _scaled_mean(per_example, T, t2_scaling)


def hard_bce(student_logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Multi-label hard loss: mean_{b,c} BCE(sigmoid(z_s[b,c]), y[b,c]); targets (B, C) multi-hot."""
    return F.binary_cross_entropy_with_logits(student_logits, targets.to(student_logits.dtype))


def hard_ce(student_logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy with the gold labels: mean_b -log softmax(z_s)[b, y_b].

    student_logits: (B, C); labels: (B,) class indices. Returns a scalar.
    """
    return F.cross_entropy(student_logits, labels)


def distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor,
                      temperature: Temperature, alpha: float, kind: str = "kl", t2_scaling: bool = True,
                      kd_weight: float | None = None) -> dict[str, torch.Tensor]:
    """Combine hard and soft targets: loss = alpha * CE(z_s, y) + w_kd * kd(z_s, z_t, T), w_kd = 1 - alpha by default.

    student_logits, teacher_logits: (B, C); labels: (B,). Returns {"loss", "kd_loss", "hard_loss"},
    each a scalar; both terms are always computed so they can be logged at any alpha.
    """
    kd = kd_losses.get(kind)(student_logits, teacher_logits, temperature, t2_scaling)
    hard = hard_ce(student_logits, labels)
    w_kd = 1.0 - alpha if kd_weight is None else kd_weight
    return {"loss": alpha * hard + w_kd * kd, "kd_loss": kd, "hard_loss": hard}
