"""Intermediate-layer distillation losses (hidden states, attentions) and the student-side projection.

Every loss is `(feature_S, feature_T, mask (B, T) | None) -> ()`, registered by name (`matches.loss`).
Hidden states are (B, T, D); attentions are (B, heads, T, T) *probabilities*, as Hugging Face's eager
attention returns them (TextBrewer and TinyBERT use pre-softmax scores: our attention_ce therefore
needs no softmax, and attention_mse compares probabilities). `mask` is 1 on real tokens; padded
positions never count. `mmd` and `fsp` also take a pair of layers `(X_0, X_1)` for each side;
given one tensor they pair it with itself (TextBrewer's "s" presets: layer_T [k, k]).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from distill_core.registry import Registry

Feature = torch.Tensor | tuple[torch.Tensor, torch.Tensor]
IntermediateLoss = Callable[[Feature, Feature, torch.Tensor | None], torch.Tensor]
intermediate_losses: Registry[IntermediateLoss] = Registry("intermediate loss", field="matches.loss")

EPS = 1e-12  # keeps log(0) and 0/0 finite on fully masked attention rows


@intermediate_losses.register("hidden_mse")
def hidden_mse(feature_S: torch.Tensor, feature_T: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Hidden-state MSE over real tokens (Jiao et al. 2020, TinyBERT; TextBrewer's `hid_mse_loss`).

    loss = sum_{b,t,d} m[b,t] (S[b,t,d] - T[b,t,d])^2 / (D * sum_{b,t} m[b,t]); a plain mean without mask.
    feature_S, feature_T: (B, T, D) (project the student first when widths differ).
    """
    if mask is None:
        return F.mse_loss(feature_S, feature_T)
    m = mask.to(feature_S).unsqueeze(-1)  # (B, T, 1)
    return ((feature_S - feature_T) ** 2 * m).sum() / (m.sum() * feature_S.size(-1)).clamp_min(EPS)


@intermediate_losses.register("embedding_mse")
def embedding_mse(feature_S: torch.Tensor, feature_T: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Embedding-layer MSE (TinyBERT's L_embd, Jiao et al. 2020): `hidden_mse` on hidden state 0 (B, T, D)."""
    return hidden_mse(feature_S, feature_T, mask)


def _pair_mask(mask: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """m[b,i] * m[b,j]: (B, 1, T, T) float, 1 where both query i and key j are real tokens."""
    m = mask.to(like)
    return (m.unsqueeze(2) * m.unsqueeze(1)).unsqueeze(1)


@intermediate_losses.register("attention_mse")
def attention_mse(feature_S: torch.Tensor, feature_T: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Attention-map MSE over real (query, key) pairs (TinyBERT's L_attn; TextBrewer's `att_mse_loss`).

    loss = sum_{b,h,i,j} m[b,i] m[b,j] (A_S - A_T)^2 / (H * sum_b n_b^2), n_b = sum_t m[b,t].
    feature_S, feature_T: (B, H, T, T) with the same head count H.
    """
    if mask is None:
        return F.mse_loss(feature_S, feature_T)
    pairs = _pair_mask(mask, feature_S)  # (B, 1, T, T)
    return ((feature_S - feature_T) ** 2 * pairs).sum() / (pairs.sum() * feature_S.size(1)).clamp_min(EPS)


@intermediate_losses.register("attention_mse_sum")
def attention_mse_sum(feature_S: torch.Tensor, feature_T: torch.Tensor,
                      mask: torch.Tensor | None = None) -> torch.Tensor:
    """`attention_mse` of the head-summed maps sum_h A[b,h] (TextBrewer's `att_mse_sum_loss`).

    feature_S: (B, H_S, T, T), feature_T: (B, H_T, T, T); head counts may differ.
    """
    return attention_mse(feature_S.sum(dim=1, keepdim=True), feature_T.sum(dim=1, keepdim=True), mask)


@intermediate_losses.register("attention_ce")
def attention_ce(feature_S: torch.Tensor, feature_T: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Attention cross-entropy (TextBrewer's `att_ce_loss`, on probabilities instead of scores).

    loss = -sum_{b,h,i} m[b,i] sum_j m[b,j] A_T[b,h,i,j] log A_S[b,h,i,j] / (H * sum_{b,i} m[b,i]).
    feature_S, feature_T: (B, H, T, T) attention probabilities with the same head count H.
    """
    log_s = feature_S.clamp_min(EPS).log()  # (B, H, T, T)
    if mask is None:
        return -(feature_T * log_s).sum(dim=-1).mean()
    pairs = _pair_mask(mask, feature_S)  # (B, 1, T, T)
    queries = mask.to(feature_S).sum() * feature_S.size(1)
    return -(feature_T * log_s * pairs).sum() / queries.clamp_min(EPS)


@intermediate_losses.register("attention_ce_mean")
def attention_ce_mean(feature_S: torch.Tensor, feature_T: torch.Tensor,
                      mask: torch.Tensor | None = None) -> torch.Tensor:
    """`attention_ce` of the head-averaged maps mean_h A[b,h] (TextBrewer's `att_ce_mean_loss`).

    feature_S: (B, H_S, T, T), feature_T: (B, H_T, T, T); head counts may differ.
    """
    return attention_ce(feature_S.mean(dim=1, keepdim=True), feature_T.mean(dim=1, keepdim=True), mask)


@intermediate_losses.register("cos")
def cos(feature_S: torch.Tensor, feature_T: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Cosine distance per token (TextBrewer's `cos_loss`; DistilBERT's L_cos, Sanh et al. 2019).

    loss = sum_{b,t} m[b,t] (1 - cos(S[b,t], T[b,t])) / sum_{b,t} m[b,t]. feature_S, feature_T: (B, T, D).
    """
    distance = 1.0 - F.cosine_similarity(feature_S, feature_T, dim=-1, eps=1e-8)  # (B, T)
    if mask is None:
        return distance.mean()
    m = mask.to(distance)
    return (distance * m).sum() / m.sum().clamp_min(EPS)


@intermediate_losses.register("pkd")
def pkd(feature_S: torch.Tensor, feature_T: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Patient-KD loss on [CLS] (Sun et al. 2019, "Patient Knowledge Distillation for BERT Model Compression").

    loss = mean_b || s_b / ||s_b|| - t_b / ||t_b|| ||^2 with s_b = S[b, 0], t_b = T[b, 0].
    feature_S, feature_T: (B, T, D); only position 0 is read, so `mask` does not apply.
    """
    s = F.normalize(feature_S[:, 0], dim=-1, eps=EPS)  # (B, D)
    t = F.normalize(feature_T[:, 0], dim=-1, eps=EPS)
    return ((s - t) ** 2).sum(dim=-1).mean()


def _pair(feature: Feature) -> tuple[torch.Tensor, torch.Tensor]:
    return (feature[0], feature[1]) if isinstance(feature, (tuple, list)) else (feature, feature)


@intermediate_losses.register("mmd")
def mmd(feature_S: Feature, feature_T: Feature, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Token-similarity matching, NST (Huang & Wang 2017, "Like What You Like"; TextBrewer's `mmd_loss`).

    G = X_0 X_1^T / D: (B, T, T) for each side, so widths may differ;
    loss = sum_{b,i,j} m[b,i] m[b,j] (G_S - G_T)^2 / sum_b n_b^2 (a plain mean without mask).
    X_0, X_1: (B, T, D). TextBrewer divides by T instead of D when masked; we always use D.
    """
    s0, s1 = _pair(feature_S)
    t0, t1 = _pair(feature_T)
    gram_s = torch.bmm(s0, s1.transpose(1, 2)) / s1.size(-1)  # (B, T, T)
    gram_t = torch.bmm(t0, t1.transpose(1, 2)) / t1.size(-1)
    if mask is None:
        return F.mse_loss(gram_s, gram_t)
    pairs = _pair_mask(mask, gram_s).squeeze(1)  # (B, T, T)
    return ((gram_s - gram_t) ** 2 * pairs).sum() / pairs.sum().clamp_min(EPS)


@intermediate_losses.register("fsp")
def fsp(feature_S: Feature, feature_T: Feature, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Flow of solution procedure (Yim et al. 2017, "A Gift from Knowledge Distillation"; TextBrewer's `fsp_loss`).

    G = X_0^T X_1 / n_b over real tokens: (B, D, D) per side; loss = mean (G_S - G_T)^2.
    X_0, X_1: (B, T, D) with the same D on both sides (project the student first).
    """
    s0, s1 = _pair(feature_S)
    t0, t1 = _pair(feature_T)
    if mask is None:
        m, n = torch.ones_like(s0[..., :1]), torch.tensor(float(s0.size(1)), device=s0.device)
    else:
        m = mask.to(s0).unsqueeze(-1)  # (B, T, 1)
        n = m.sum(dim=1, keepdim=True).clamp_min(1.0)  # (B, 1, 1)
    gram_s = torch.bmm((s0 * m).transpose(1, 2), s1 * m) / n  # (B, D, D)
    gram_t = torch.bmm((t0 * m).transpose(1, 2), t1 * m) / n
    return F.mse_loss(gram_s, gram_t)


ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh}


class Projection(nn.Module):
    """Map student features to the teacher's width: Linear(dim_S, dim_T), then an optional activation.

    Trained with the student (TextBrewer's `proj`, TinyBERT's W_h). (B, T, dim_S) -> (B, T, dim_T).
    """

    def __init__(self, dim_S: int, dim_T: int, activation: str | None = None):
        super().__init__()
        assert activation is None or activation in ACTIVATIONS, activation  # matches.py validates user input
        self.linear = nn.Linear(dim_S, dim_T)
        self.activation = ACTIVATIONS[activation]() if activation else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activation(self.linear(x))
