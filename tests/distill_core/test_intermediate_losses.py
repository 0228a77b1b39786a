"""Intermediate losses against values computed by hand (plain-Python loops over the tensors below)."""

from __future__ import annotations

import pytest
import torch

from distill_core.errors import UnknownNameError
from distill_core.intermediate import (
    Projection,
    attention_ce,
    attention_ce_mean,
    attention_mse,
    attention_mse_sum,
    cos,
    embedding_mse,
    fsp,
    hidden_mse,
    intermediate_losses,
    mmd,
    pkd,
)

torch.set_num_threads(1)
HS = torch.tensor([[[1.0, 2], [0, 1], [3, -1]], [[2, 0], [1, 1], [5, 5]]])  # (B=2, T=3, D=2)
HT = torch.tensor([[[0.0, 2], [1, 1], [2, 0]], [[1, 1], [1, -1], [0, 0]]])
MASK = torch.tensor([[1, 1, 1], [1, 1, 0]])  # the second example's last token is padding
AS = torch.tensor([  # (B=2, H=2, T=3, T=3) attention probabilities; padded keys get 0
    [[[.5, .3, .2], [.1, .8, .1], [.3, .3, .4]], [[.6, .2, .2], [.2, .2, .6], [1 / 3, 1 / 3, 1 / 3]]],
    [[[.7, .3, 0], [.4, .6, 0], [.5, .5, 0]], [[.2, .8, 0], [.9, .1, 0], [.5, .5, 0]]]])
AT = torch.tensor([
    [[[.4, .4, .2], [.2, .6, .2], [.1, .1, .8]], [[.5, .25, .25], [.3, .3, .4], [.2, .2, .6]]],
    [[[.6, .4, 0], [.5, .5, 0], [.9, .1, 0]], [[.3, .7, 0], [.8, .2, 0], [.1, .9, 0]]]])

# (no mask, with MASK), computed with plain-Python loops over these lists: sums over real tokens / real pairs.
GOLDEN = {
    hidden_mse: (5.0, 1.0),
    embedding_mse: (5.0, 1.0),
    cos: (0.4571126580960792, 0.34853518971529507),  # mean 1 - cos; a zero vector has cos 0
    mmd: (41.25, 1.3461538461538463),  # G = X X^T / D over token pairs
    fsp: (38.138888888888886, 0.8472222222222223),  # G = X^T X / n over real tokens
}
ATTENTION_GOLDEN = {
    attention_mse: (0.0339351851851852, 0.022371794871794876),
    attention_mse_sum: (0.04398148148148146, 0.06089743589743587),
    attention_ce: (0.8681253218613053, 0.9031209501215773),
    attention_ce_mean: (0.8764757495423715, 0.9131414633388568),
}
PKD = 0.39846602781353657  # mean_b || s/|s| - t/|t| ||^2 on token 0


def close(value: torch.Tensor, expected: float) -> None:
    assert value.dim() == 0
    assert float(value) == pytest.approx(expected, rel=1e-5, abs=1e-7)


@pytest.mark.parametrize("loss", list(GOLDEN), ids=lambda f: f.__name__)
def test_hidden_state_losses_match_hand_computed_values_with_and_without_mask(loss):
    plain, masked = GOLDEN[loss]
    close(loss(HS, HT, None), plain)
    close(loss(HS, HT, MASK), masked)


@pytest.mark.parametrize("loss", list(ATTENTION_GOLDEN), ids=lambda f: f.__name__)
def test_attention_losses_match_hand_computed_values_with_and_without_mask(loss):
    plain, masked = ATTENTION_GOLDEN[loss]
    close(loss(AS, AT, None), plain)
    close(loss(AS, AT, MASK), masked)


def test_pkd_reads_only_the_first_token_and_ignores_the_mask():
    close(pkd(HS, HT, None), PKD)
    close(pkd(HS, HT, MASK), PKD)
    changed = HS.clone()
    changed[:, 1:] = 100.0
    close(pkd(changed, HT, None), PKD)


@pytest.mark.parametrize("loss", [attention_mse, attention_mse_sum, attention_ce, attention_ce_mean],
                         ids=lambda f: f.__name__)
def test_attention_losses_ignore_padded_positions(loss):
    noisy_s, noisy_t = AS.clone(), AT.clone()
    noisy_s[1, :, 2, :] = torch.rand(2, 3)  # padded query row
    noisy_t[1, :, :, 2] = 0.7  # padded key column
    close(loss(noisy_s, noisy_t, MASK), float(loss(AS, AT, MASK)))


@pytest.mark.parametrize("loss", [hidden_mse, cos, mmd, fsp], ids=lambda f: f.__name__)
def test_hidden_losses_ignore_padded_tokens(loss):
    noisy = HS.clone()
    noisy[1, 2] = torch.tensor([-7.0, 9.0])
    close(loss(noisy, HT, MASK), float(loss(HS, HT, MASK)))


def test_identical_features_cost_nothing():
    for loss in (hidden_mse, cos, pkd, mmd, fsp):
        close(loss(HT + 0.5, HT + 0.5, MASK), 0.0)
    for loss in ATTENTION_GOLDEN:
        if "mse" in loss.__name__:
            close(loss(AT, AT, MASK), 0.0)


def test_head_reduced_attention_losses_accept_different_head_counts():
    one_head = AT[:, :1]  # (B, 1, T, T)
    assert torch.isfinite(attention_mse_sum(AS, one_head, MASK))
    assert torch.isfinite(attention_ce_mean(AS, one_head, MASK))


def test_mmd_compares_widths_that_differ_and_takes_a_pair_of_layers():
    wide = torch.cat([HT, HT[..., :1]], dim=-1)  # (B, T, 3)
    assert torch.isfinite(mmd(HS, wide, MASK))
    close(mmd((HS, HS), (HT, HT), MASK), GOLDEN[mmd][1])


def test_projection_maps_student_width_to_teacher_width_with_an_activation():
    torch.manual_seed(0)
    proj = Projection(2, 5, "relu")
    out = proj(HS)
    assert out.shape == (2, 3, 5) and (out >= 0).all()
    assert isinstance(Projection(2, 5, "tanh").activation, torch.nn.Tanh)
    assert isinstance(Projection(2, 5).activation, torch.nn.Identity)


def test_losses_are_registered_by_name_and_an_unknown_one_names_the_field():
    assert intermediate_losses.names() == sorted(["hidden_mse", "embedding_mse", "attention_mse", "attention_mse_sum",
                                                  "attention_ce", "attention_ce_mean", "cos", "pkd", "mmd", "fsp"])
    with pytest.raises(UnknownNameError, match="Unknown intermediate loss 'hidden_l2'") as err:
        intermediate_losses.get("hidden_l2")
    assert err.value.field == "matches.loss"
