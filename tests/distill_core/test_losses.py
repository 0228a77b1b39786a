"""KD losses against values computed by hand (plain-Python softmax/log, see the comments)."""

from __future__ import annotations

import pytest
import torch

from distill_core.errors import UnknownNameError
from distill_core.losses import distillation_loss, hard_ce, kd_ce, kd_kl, kd_losses, logit_mse

torch.set_num_threads(1)
STUDENT = torch.tensor([[1.0, 2.0, 0.5], [0.0, -1.0, 2.0]])  # (B=2, C=3)
TEACHER = torch.tensor([[2.0, 1.0, 0.0], [0.5, 0.5, 3.0]])
LABELS = torch.tensor([0, 2])
# mean_b sum_c p_t (log p_t - log p_s), p = softmax(z / T), computed with math.exp/math.log:
KL_T1, KL_T2 = 0.22504882648177452, 0.05800363953469652
# mean_b -sum_c p_t log p_s:
CE_T1, CE_T2 = 0.8935244612503243, 1.02226714993916
HARD = 0.8171074018321153  # mean_b -log softmax(z_s)[y_b]
MSE = 0.9583333333333334  # mean of the squared logit differences


def close(value: torch.Tensor, expected: float) -> None:
    assert float(value) == pytest.approx(expected, rel=1e-5, abs=1e-7)


def test_kl_matches_hand_computed_values_with_and_without_t2_scaling():
    close(kd_kl(STUDENT, TEACHER, 1.0, True), KL_T1)
    close(kd_kl(STUDENT, TEACHER, 2.0, False), KL_T2)
    close(kd_kl(STUDENT, TEACHER, 2.0, True), 4 * KL_T2)


def test_soft_cross_entropy_matches_hand_computed_values():
    close(kd_ce(STUDENT, TEACHER, 1.0, True), CE_T1)
    close(kd_ce(STUDENT, TEACHER, 2.0, True), 4 * CE_T2)
    close(kd_ce(STUDENT, TEACHER, 2.0, False), CE_T2)


def test_logit_mse_and_hard_ce_match_hand_computed_values():
    close(logit_mse(STUDENT, TEACHER, 4.0, True), MSE)  # T does not apply to raw-logit regression
    close(hard_ce(STUDENT, LABELS), HARD)


def test_kl_of_identical_logits_is_zero():
    close(kd_kl(TEACHER, TEACHER, 3.0), 0.0)


@pytest.mark.parametrize("alpha", [0.0, 0.8, 1.0])
def test_the_combined_loss_weights_hard_and_soft_terms_by_alpha(alpha):
    terms = distillation_loss(STUDENT, TEACHER, LABELS, temperature=2.0, alpha=alpha)
    close(terms["kd_loss"], 4 * KL_T2)
    close(terms["hard_loss"], HARD)
    close(terms["loss"], alpha * HARD + (1 - alpha) * 4 * KL_T2)


def test_alpha_one_ignores_the_teacher_and_alpha_zero_ignores_the_labels():
    only_hard = distillation_loss(STUDENT, TEACHER, LABELS, 2.0, alpha=1.0)["loss"]
    close(only_hard, HARD)
    only_soft = distillation_loss(STUDENT, TEACHER, LABELS, 2.0, alpha=0.0)["loss"]
    close(only_soft, 4 * KL_T2)


def test_gradients_flow_to_the_student_only():
    student = STUDENT.clone().requires_grad_()
    teacher = TEACHER.clone().requires_grad_()
    distillation_loss(student, teacher.detach(), LABELS, 2.0, 0.5)["loss"].backward()
    assert student.grad is not None and teacher.grad is None


def test_an_unknown_kd_loss_names_the_key_and_the_choices():
    with pytest.raises(UnknownNameError, match="Unknown KD loss 'kld'; known: bce, ce, kl, mse") as err:
        kd_losses.get("kld")
    assert err.value.field == "kd.loss"


def test_a_per_example_temperature_scales_each_row_by_its_own_t_squared():
    T = torch.tensor([1.0, 2.0])
    row = [kd_kl(STUDENT[i:i + 1], TEACHER[i:i + 1], float(T[i]), True) for i in range(2)]
    close(kd_kl(STUDENT, TEACHER, T, True), (float(row[0]) + float(row[1])) / 2)
    close(kd_kl(STUDENT, TEACHER, torch.tensor([2.0, 2.0]), True), 4 * KL_T2)
    close(kd_ce(STUDENT, TEACHER, torch.tensor([1.0, 1.0]), False), CE_T1)


def test_multi_label_soft_bce_matches_hand_computed_values():
    from distill_core.losses import hard_bce, kd_bce

    # mean_b mean_c -(q log s + (1 - q) log(1 - s)), s = sigmoid(z_s / T), q = sigmoid(z_t / T)
    close(kd_bce(STUDENT, TEACHER, 1.0, True), 0.6120000673635897)
    close(kd_bce(STUDENT, TEACHER, 2.0, False), 0.6573815162613077)
    close(kd_bce(STUDENT, TEACHER, 2.0, True), 4 * 0.6573815162613077)
    close(hard_bce(STUDENT, torch.tensor([[1, 0, 1], [0, 0, 1]])), 0.6746005936437401)
