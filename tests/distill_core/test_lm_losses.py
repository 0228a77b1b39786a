"""Token-level LM losses against hand-computed values on small tensors, masks and top-k renormalisation."""

from __future__ import annotations

import math

import pytest
import torch

from distill_core.errors import UnknownNameError
from distill_core.lm.data import collate
from distill_core.lm.losses import gather_topk, sft_cross_entropy, token_losses

P_T = [0.7, 0.2, 0.1]  # teacher
P_S = [0.4, 0.4, 0.2]  # student


def logits(p: list[float]) -> torch.Tensor:
    return torch.tensor([p]).log()  # (1, 3): softmax gives p back


def kl(p: list[float], q: list[float]) -> float:
    return sum(a * math.log(a / b) for a, b in zip(p, q, strict=True))


def test_forward_kl_is_kl_of_teacher_to_student():
    value = token_losses.get("forward_kl")(logits(P_S), logits(P_T))
    # 0.7 ln(0.7/0.4) + 0.2 ln(0.2/0.4) + 0.1 ln(0.1/0.2) = 0.18378...
    assert value.item() == pytest.approx(0.7 * math.log(1.75) + 0.3 * math.log(0.5), abs=1e-6)
    assert value.item() == pytest.approx(0.1837869, abs=1e-6)


def test_reverse_kl_is_kl_of_student_to_teacher():
    value = token_losses.get("reverse_kl")(logits(P_S), logits(P_T))
    # 0.4 ln(0.4/0.7) + 0.4 ln(0.4/0.2) + 0.2 ln(0.2/0.1) = 0.19204...
    assert value.item() == pytest.approx(0.1920420, abs=1e-6)


def test_jsd_mixes_both_directions_against_the_mixture():
    jsd = token_losses.get("jsd")
    m = [0.5 * a + 0.5 * b for a, b in zip(P_T, P_S, strict=True)]  # [0.55, 0.3, 0.15]
    expected = 0.5 * kl(P_T, m) + 0.5 * kl(P_S, m)
    assert jsd(logits(P_S), logits(P_T), beta=0.5).item() == pytest.approx(expected, abs=1e-6)
    assert expected == pytest.approx(0.0462009, abs=1e-6)
    m = [0.25 * a + 0.75 * b for a, b in zip(P_T, P_S, strict=True)]
    assert jsd(logits(P_S), logits(P_T), beta=0.25).item() == pytest.approx(
        0.25 * kl(P_T, m) + 0.75 * kl(P_S, m), abs=1e-6)


def test_jsd_at_beta_0_and_1_is_forward_and_reverse_kl():
    jsd = token_losses.get("jsd")
    assert jsd(logits(P_S), logits(P_T), beta=0.0).item() == pytest.approx(kl(P_T, P_S), abs=1e-6)
    assert jsd(logits(P_S), logits(P_T), beta=1.0).item() == pytest.approx(kl(P_S, P_T), abs=1e-6)


def test_total_variation_is_half_the_l1_distance():
    assert token_losses.get("tv")(logits(P_S), logits(P_T)).item() == pytest.approx(0.5 * (0.3 + 0.2 + 0.1), abs=1e-6)


def test_temperature_softens_both_distributions():
    T = 2.0
    soft_t = [math.sqrt(p) / sum(math.sqrt(x) for x in P_T) for p in P_T]  # softmax(log p / 2) = sqrt(p) / Z
    soft_s = [math.sqrt(p) / sum(math.sqrt(x) for x in P_S) for p in P_S]
    assert token_losses.get("forward_kl")(logits(P_S), logits(P_T), T).item() == pytest.approx(kl(soft_t, soft_s),
                                                                                               abs=1e-6)
    assert token_losses.get("reverse_kl")(logits(P_S), logits(P_T), T).item() == pytest.approx(kl(soft_s, soft_t),
                                                                                               abs=1e-6)


def test_losses_average_over_tokens_and_vanish_for_equal_distributions():
    z_s = torch.cat([logits(P_S), logits(P_T)])  # (2, 3): the second token already matches the teacher
    z_t = torch.cat([logits(P_T), logits(P_T)])
    assert token_losses.get("forward_kl")(z_s, z_t).item() == pytest.approx(kl(P_T, P_S) / 2, abs=1e-6)
    for name in token_losses.names():
        assert token_losses.get(name)(logits(P_T), logits(P_T)).item() == pytest.approx(0.0, abs=1e-6)


def test_top_k_targets_are_renormalised_over_the_kept_ids():
    z_s = torch.tensor([[2.0, 0.0, 1.0, -1.0, 0.5]]).log_softmax(-1)  # (1, V=5)
    teacher = torch.tensor([[3.0, 0.1, 1.0, 0.2, -2.0]])
    top = teacher.topk(2)  # ids [0, 2], values [3.0, 1.0]
    value = token_losses.get("forward_kl")(gather_topk(z_s, top.indices), top.values)
    p_t = [math.exp(3.0) / (math.exp(3.0) + math.exp(1.0)), math.exp(1.0) / (math.exp(3.0) + math.exp(1.0))]
    p_s = [math.exp(2.0) / (math.exp(2.0) + math.exp(1.0)), math.exp(1.0) / (math.exp(2.0) + math.exp(1.0))]
    assert value.item() == pytest.approx(kl(p_t, p_s), abs=1e-6)


def test_collate_masks_prompt_tokens_and_padding():
    ids = [torch.tensor([5, 6, 7, 8]), torch.tensor([5, 9])]
    input_ids, attention, mask = collate(ids, [2, 1], pad_id=0)
    assert input_ids.tolist() == [[5, 6, 7, 8], [5, 9, 0, 0]]
    assert attention.tolist() == [[1, 1, 1, 1], [1, 1, 0, 0]]
    # next-token positions j-1 for response tokens j: example 0 learns tokens 2, 3; example 1 token 1
    assert mask.tolist() == [[False, True, True], [True, False, False]]
    z = torch.zeros(2, 3, 10)
    z[..., 4] = 5.0
    targets = input_ids[:, 1:][mask]
    assert targets.tolist() == [7, 8, 9]
    expected = -math.log(math.exp(0) / (math.exp(5.0) + 9))
    assert sft_cross_entropy(z[mask], targets).item() == pytest.approx(expected, abs=1e-5)


def test_an_unknown_loss_names_its_field():
    with pytest.raises(UnknownNameError, match="forward_kl") as err:
        token_losses.get("kl2")
    assert err.value.field == "lm.loss"
