"""Prediction-layer distillation losses: short pure functions registered by name.

Every KD loss has the signature `(student_logits (B, C), teacher_logits (B, C), T, t2_scaling) -> ()`
so the training loop can swap them from the config (`kd.loss`).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from distill_core.registry import Registry

KDLoss = Callable[[torch.Tensor, torch.Tensor, float, bool], torch.Tensor]
kd_losses: Registry[KDLoss] = Registry("KD loss", field="kd.loss")


@kd_losses.register("kl")
def kd_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor, T: float, t2_scaling: bool = True) -> torch.Tensor:
    """Soft-label KL divergence (Hinton et al. 2015, "Distilling the Knowledge in a Neural Network").

    loss = s * mean_b sum_c p_t[b,c] * (log p_t[b,c] - log p_s[b,c]),
    p_t = softmax(teacher/T), p_s = softmax(student/T), s = T^2 if t2_scaling else 1.
    The T^2 factor keeps the soft-target gradients on the scale of the hard-label ones.

    student_logits, teacher_logits: (B, C). Returns a scalar.
    """
    log_p_s = F.log_softmax(student_logits / T, dim=-1)  # (B, C)
    log_p_t = F.log_softmax(teacher_logits / T, dim=-1)  # (B, C)
    kl = F.kl_div(log_p_s, log_p_t, reduction="batchmean", log_target=True)
    return kl * (T * T if t2_scaling else 1.0)


@kd_losses.register("ce")
def kd_ce(student_logits: torch.Tensor, teacher_logits: torch.Tensor, T: float, t2_scaling: bool = True) -> torch.Tensor:
    """Soft cross-entropy (TextBrewer's `kd_ce_loss`; Hinton et al. 2015).

    loss = s * mean_b -sum_c p_t[b,c] * log p_s[b,c], with p_t, p_s and s as in `kd_kl`.
    Equals `kd_kl` plus the teacher's entropy, a constant for the student.

    student_logits, teacher_logits: (B, C). Returns a scalar.
    """
    p_t = F.softmax(teacher_logits / T, dim=-1)  # (B, C)
    log_p_s = F.log_softmax(student_logits / T, dim=-1)  # (B, C)
    ce = -(p_t * log_p_s).sum(dim=-1).mean()
    return ce * (T * T if t2_scaling else 1.0)


@kd_losses.register("mse")
def logit_mse(student_logits: torch.Tensor, teacher_logits: torch.Tensor, T: float = 1.0,
              t2_scaling: bool = True) -> torch.Tensor:
    """Logit regression (Tang et al. 2019, "Distilling Task-Specific Knowledge from BERT into Simple Neural Networks").

    loss = mean_{b,c} (z_s[b,c] - z_t[b,c])^2 on the raw logits: T and t2_scaling do not apply
    (they are accepted only so every KD loss has one signature).

    student_logits, teacher_logits: (B, C). Returns a scalar.
    """
    return F.mse_loss(student_logits, teacher_logits)


def hard_ce(student_logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy with the gold labels: mean_b -log softmax(z_s)[b, y_b].

    student_logits: (B, C); labels: (B,) class indices. Returns a scalar.
    """
    return F.cross_entropy(student_logits, labels)


def distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor,
                      temperature: float, alpha: float, kind: str = "kl",
                      t2_scaling: bool = True) -> dict[str, torch.Tensor]:
    """Combine hard and soft targets: loss = alpha * CE(z_s, y) + (1 - alpha) * kd(z_s, z_t, T).

    student_logits, teacher_logits: (B, C); labels: (B,). Returns {"loss", "kd_loss", "hard_loss"},
    each a scalar; both terms are always computed so they can be logged at any alpha.
    """
    kd = kd_losses.get(kind)(student_logits, teacher_logits, temperature, t2_scaling)
    hard = hard_ce(student_logits, labels)
    return {"loss": alpha * hard + (1.0 - alpha) * kd, "kd_loss": kd, "hard_loss": hard}
