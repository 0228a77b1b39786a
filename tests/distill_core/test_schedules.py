"""Temperature and loss-weight schedules (TextBrewer's flsw / cwsm computed by hand)."""

from __future__ import annotations

import math

import pytest
import torch

from distill_core.config import ExperimentConfig
from distill_core.distiller import run
from distill_core.errors import ConfigError
from distill_core.schedules import temperature_schedules, weight_schedules
from tests.distill_core.conftest import ListSink

S = torch.tensor([[3.0, 4.0], [1.0, 0.0]])  # rows normalise to (0.6, 0.8) and (1, 0)
T = torch.tensor([[4.0, 3.0], [1.0, 0.0]])  # (0.8, 0.6) and (1, 0)


def test_linear_and_cosine_temperatures_move_from_start_to_final():
    linear, cosine = temperature_schedules.get("linear"), temperature_schedules.get("cosine")
    assert linear(8.0, 2.0, 0.0, S, T, 1, 2) == 8.0 and linear(8.0, 2.0, 0.5, S, T, 1, 2) == 5.0
    assert cosine(8.0, 2.0, 0.0, S, T, 1, 2) == 8.0 and cosine(8.0, 2.0, 1.0, S, T, 1, 2) == pytest.approx(2.0)


def test_flsw_lowers_the_temperature_where_student_and_teacher_disagree():
    # cos = 0.96 and 1.0 -> w = (0.04^2, 0) = (0.0016, 0); mean 0.0008; T_b = 4 + (0.0008 - w_b) * 10
    tau = temperature_schedules.get("flsw")(4.0, 4.0, 0.3, S, T, 10.0, 2.0)
    assert tau.tolist() == pytest.approx([4.0 - 0.008, 4.0 + 0.008], abs=1e-4)


def test_cwsm_lowers_the_temperature_of_unsure_students():
    p_max = [1 / (1 + math.exp(-1)), 1 / (1 + math.exp(-1))]  # both rows: softmax max of a gap of 1
    tau = temperature_schedules.get("cwsm")(2.0, 2.0, 0.0, torch.tensor([[1.0, 2.0], [0.0, 1.0]]), T, 1.0, 0.0)
    assert tau.tolist() == pytest.approx([2.0, 2.0], abs=1e-5) and p_max[0] == pytest.approx(0.7310586)
    tau = temperature_schedules.get("cwsm")(2.0, 2.0, 0.0, torch.tensor([[0.0, 5.0], [0.0, 0.0]]), T, 1.0, 0.0)
    w = [1 / (1 / (1 + math.exp(-5)) + 1e-4), 1 / (0.5 + 1e-4)]
    assert tau.tolist() == pytest.approx([2.0 + (sum(w) / 2 - w[0]), 2.0 + (sum(w) / 2 - w[1])], abs=1e-4)


def test_weight_schedules_grow_and_decay():
    assert [weight_schedules.get("linear_growth")(p) for p in (0, 0.25, 1)] == [0, 0.25, 1]
    assert [weight_schedules.get("linear_decay")(p) for p in (0, 0.25, 1)] == [1, 0.75, 0]


def test_a_run_logs_the_scheduled_temperature_and_weights(make_config):
    raw = make_config(kd={"temperature": 8.0, "temperature_schedule": "linear", "temperature_final": 1.0,
                          "kd_weight_schedule": "linear_decay", "hard_weight_schedule": "linear_growth"},
                      train={"epochs": 1}, output_dir=None)
    sink = ListSink()
    run(ExperimentConfig.from_dict(raw), sink=sink)
    metrics = [p["metrics"] for p in sink.of("step")]
    assert metrics[0]["temperature"] == 8.0 and metrics[-1]["temperature"] < 8.0
    assert metrics[0]["kd_weight"] == pytest.approx(0.2) and metrics[-1]["kd_weight"] < 0.2
    assert metrics[0]["hard_weight"] == 0.0 and metrics[-1]["hard_weight"] > 0.0


def test_per_example_schedules_train(make_config):
    for schedule in ("flsw", "cwsm"):
        results = run(ExperimentConfig.from_dict(make_config(kd={"temperature_schedule": schedule},
                                                             train={"epochs": 1}, output_dir=None)))
        assert results["steps"] == 7


def test_a_linear_temperature_needs_a_final_value(make_config):
    with pytest.raises(ConfigError, match="needs temperature_final") as err:
        ExperimentConfig.from_dict(make_config(kd={"temperature_schedule": "linear"}))
    assert err.value.field == "kd.temperature_final"
