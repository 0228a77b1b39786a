"""Token-level distillation losses for causal LMs, registered by name (config `lm.loss`).

Every loss takes the student's and the teacher's logits over one support, already restricted to
the response tokens (prompt tokens and padding are masked out before):

    z_s, z_t: (N, K) float   N response tokens; K = the vocabulary (online) or the teacher's top-k ids
                             (offline: both gathered at those ids, so both are renormalised over them)
    T: temperature; p_t = softmax(z_t / T), p_s = softmax(z_s / T) over the K entries
    -> scalar, the mean over the N tokens of a per-token divergence (0 when N = 0)

No T^2 factor (as in GKD and TRL's GKDTrainer): the temperature only shapes the distributions.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from distill_core.registry import Registry

TokenLoss = Callable[..., torch.Tensor]  # (z_s (N, K), z_t (N, K), T, beta) -> scalar
token_losses: Registry[TokenLoss] = Registry("token loss", field="lm.loss")


def _log_probs(z_s: torch.Tensor, z_t: torch.Tensor, T: float) -> tuple[torch.Tensor, torch.Tensor]:
    return F.log_softmax(z_s.float() / T, dim=-1), F.log_softmax(z_t.float() / T, dim=-1)  # (N, K) each


def _mean(per_token: torch.Tensor) -> torch.Tensor:
    return per_token.sum() / max(1, per_token.numel())


def _kl(log_p: torch.Tensor, log_q: torch.Tensor) -> torch.Tensor:
    """KL(p || q) per row, (N, K) log-probs -> (N,); 0 * log 0 counts as 0."""
    return F.kl_div(log_q, log_p, reduction="none", log_target=True).sum(-1)


@token_losses.register("forward_kl")
def forward_kl(z_s: torch.Tensor, z_t: torch.Tensor, T: float = 1.0, beta: float = 0.5) -> torch.Tensor:
    """Forward KL (Hinton et al. 2015; "supervised KD" in GKD): mean_n sum_k p_t log(p_t / p_s).

    Mode-covering: the student is pushed to put mass wherever the teacher does. `beta` is unused.
    """
    log_s, log_t = _log_probs(z_s, z_t, T)
    return _mean(_kl(log_t, log_s))


@token_losses.register("reverse_kl")
def reverse_kl(z_s: torch.Tensor, z_t: torch.Tensor, T: float = 1.0, beta: float = 0.5) -> torch.Tensor:
    """Reverse KL (MiniLLM, Gu et al. 2024): mean_n sum_k p_s log(p_s / p_t).

    Mode-seeking: the student may drop teacher modes but not invent its own. `beta` is unused.
    """
    log_s, log_t = _log_probs(z_s, z_t, T)
    return _mean(_kl(log_s, log_t))


@token_losses.register("jsd")
def generalised_jsd(z_s: torch.Tensor, z_t: torch.Tensor, T: float = 1.0, beta: float = 0.5) -> torch.Tensor:
    """Generalised Jensen-Shannon divergence (GKD, Agarwal et al. 2024), TRL's convention:

        m = beta * p_t + (1 - beta) * p_s
        JSD_beta = beta * KL(p_t || m) + (1 - beta) * KL(p_s || m)

    beta = 0 is defined as forward KL(p_t || p_s), beta = 1 as reverse KL(p_s || p_t) (the limits of
    the normalised JSD_beta / (beta (1 - beta)) up to scale); beta = 0.5 is the symmetric JSD.
    """
    log_s, log_t = _log_probs(z_s, z_t, T)
    if beta == 0.0:
        return _mean(_kl(log_t, log_s))
    if beta == 1.0:
        return _mean(_kl(log_s, log_t))
    log_m = torch.logsumexp(torch.stack([log_t + torch.log(torch.tensor(beta)),
                                         log_s + torch.log(torch.tensor(1.0 - beta))]), dim=0)  # (N, K)
    return _mean(beta * _kl(log_t, log_m) + (1.0 - beta) * _kl(log_s, log_m))


@token_losses.register("tv")
def total_variation(z_s: torch.Tensor, z_t: torch.Tensor, T: float = 1.0, beta: float = 0.5) -> torch.Tensor:
    """Total variation distance (Wen et al. 2023, f-divergence KD): mean_n 1/2 sum_k |p_t - p_s|. `beta` is unused."""
    log_s, log_t = _log_probs(z_s, z_t, T)
    return _mean(0.5 * (log_t.exp() - log_s.exp()).abs().sum(-1))


def sft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the student on the response: mean_n -log softmax(logits_n)[targets_n].

    logits: (N, V) student logits at the response positions; targets: (N,) the next tokens.
    """
    if targets.numel() == 0:
        return logits.sum() * 0.0
    return F.cross_entropy(logits.float(), targets)


def gather_topk(z_s: torch.Tensor, topk_ids: torch.Tensor) -> torch.Tensor:
    """The student's logits at the teacher's top-k ids: (N, V), (N, k) int -> (N, k)."""
    return z_s.gather(-1, topk_ids.long())
