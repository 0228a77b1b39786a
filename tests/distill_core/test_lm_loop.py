"""The classifier loop's machinery in causal-LM runs: schedules, AMP, gradient accumulation, NaN stop.

(Cancel and bitwise resume: test_lm_run.py and test_lm_matches.py.)"""

from __future__ import annotations

from unittest import mock

import pytest
import torch

from distill_core.config import ExperimentConfig
from distill_core.distiller import run
from distill_core.errors import ConfigError, TrainingError
from distill_core.schedules import lr_factor
from tests.distill_core import test_lm_run
from tests.distill_core.conftest import ListSink

lm_files, lm_config = test_lm_run.lm_files, test_lm_run.lm_config  # the tiny GPT-2/Llama fixtures


def test_temperature_weight_and_learning_rate_schedules_apply_step_by_step(lm_config):
    sink = ListSink()
    raw = lm_config(kd={"temperature_schedule": "linear", "temperature_final": 1.0, "kd_weight_schedule": "linear_decay",
                        "hard_weight_schedule": "linear_growth"},
                    lm={"temperature": 2.0, "sft_weight": 0.5}, train={"warmup_ratio": 0.25}, output_dir=None)
    run(ExperimentConfig.from_dict(raw), sink=sink)
    steps = sink.of("step")
    total = len(steps)  # 12: 48 examples / 8, 2 epochs
    factor = lr_factor("linear", 0.25, total)
    for point in steps:
        m, p = point["metrics"], (point["step"] - 1) / total
        assert m["temperature"] == pytest.approx(2.0 - p)
        assert m["loss"] == pytest.approx((1 - p) * m["distill_loss"] + 0.5 * p * m["sft_loss"], rel=1e-5)
        assert m["lr"] == pytest.approx(0.002 * factor(point["step"] - 1))
    assert steps[0]["metrics"]["lr"] < steps[2]["metrics"]["lr"]  # warming up over the first 3 steps


def test_a_per_example_temperature_schedule_is_refused(lm_config):
    with pytest.raises(ConfigError, match="constant, linear or cosine temperature schedule") as err:
        ExperimentConfig.from_dict(lm_config(kd={"temperature_schedule": "flsw"}))
    assert err.value.field == "kd.temperature_schedule"


def test_gradient_accumulation_groups_batches_into_one_step(lm_config):
    sink = ListSink()
    results = run(ExperimentConfig.from_dict(lm_config(train={"grad_accumulation": 2}, output_dir=None)), sink=sink)
    assert results["steps"] == 6 and sink.of("start")[0]["steps_per_epoch"] == 3  # ceil(6 batches / 2) per epoch


def test_bf16_autocast_trains_on_the_cpu_and_fp16_is_refused_there(lm_config):
    sink = ListSink()
    run(ExperimentConfig.from_dict(lm_config(train={"amp": "bf16", "max_steps": 3}, output_dir=None)), sink=sink)
    assert all(torch.isfinite(torch.tensor(p["metrics"]["loss"])) for p in sink.of("step"))
    with pytest.raises(ConfigError, match="needs a CUDA device") as err:
        run(ExperimentConfig.from_dict(lm_config(train={"amp": "fp16"}, output_dir=None)))
    assert err.value.field == "train.amp"


def test_fp16_on_cuda_scales_the_loss_and_autocasts_to_half(lm_files, lm_config):
    """Unit check without a GPU: the trainer asks for an enabled GradScaler and a float16 autocast on CUDA."""
    from distill_core.lm import trainer as trainer_module
    from distill_core.lm.models import build_student, load_causal_lm

    config = ExperimentConfig.from_dict(lm_config(train={"amp": "fp16"}, output_dir=None))
    teacher, tokenizer = load_causal_lm(lm_files["gpt2"], torch.device("cpu"))
    student, _, _ = build_student(config.lm, teacher, tokenizer, torch.device("cpu"))
    with mock.patch.object(trainer_module.torch.amp, "GradScaler") as scaler:
        trainer_module.LMTrainer(config, student, teacher, 0, 2, {"train": mock.MagicMock(__len__=lambda s: 8)}, {},
                                 torch.device("cuda"), ListSink(), None)
    scaler.assert_called_once_with("cuda", enabled=True)
    assert trainer_module.AMP_DTYPES["fp16"] is torch.float16


def test_a_diverging_loss_stops_with_the_step_and_the_term(lm_config):
    raw = lm_config(train={"learning_rate": 10.0, "optimizer": "sgd", "grad_clip": None},
                    lm={"distill_weight": 1000.0, "sft_weight": 1000.0}, output_dir=None)
    with pytest.raises(TrainingError, match=r"The (loss|distill_loss|sft_loss) became (nan|inf) at step \d+"):
        run(ExperimentConfig.from_dict(raw))
