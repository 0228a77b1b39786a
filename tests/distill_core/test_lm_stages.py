"""Stages in causal-LM runs (distill_core/lm/stages.py): per-stage weights, temperature and matches, a fresh
optimiser per stage, a bitwise resume in the second stage, and the refusals on the stage's field."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from distill_core.config import ExperimentConfig
from distill_core.distiller import run
from distill_core.errors import ConfigError, RunCancelled
from tests.distill_core import test_lm_run
from tests.distill_core.conftest import CancelAt, ListSink

lm_files, lm_config = test_lm_run.lm_files, test_lm_run.lm_config  # the tiny GPT-2/Llama fixtures

HIDDEN_ROW = {"layer_T": 2, "layer_S": 1, "feature": "hidden", "loss": "hidden_mse", "weight": 1.0}
MATCH_KEY = "match0_hidden_mse_T2_S1"
# Stage 1 learns from a hidden-state match only; stage 2 from the tokens, at the lm section's temperature.
TWO_STAGES = [{"name": "layers", "epochs": 1, "kd_weight": 0.0, "alpha": 0.0, "temperature": 3.0,
               "matches": [HIDDEN_ROW]},
              {"name": "tokens", "epochs": 1, "learning_rate": 0.001, "alpha": 0.5}]


def test_each_stage_trains_with_its_own_weights_temperature_matches_and_optimiser(lm_config):
    sink = ListSink()
    raw = lm_config(lm={"temperature": 1.5, "distill_weight": 2.0}, stages=TWO_STAGES, output_dir=None)
    results = run(ExperimentConfig.from_dict(raw), sink=sink)
    assert sink.of("start")[0]["stages"] == ["layers", "tokens"]
    steps = sink.of("step")
    assert [p["stage"] for p in steps] == [0] * 6 + [1] * 6 and results["steps"] == 12
    for p in steps[:6]:
        m = p["metrics"]
        assert (m["temperature"], m["distill_weight"], m["sft_weight"]) == (3.0, 0.0, 0.0)
        assert m["loss"] == pytest.approx(m[MATCH_KEY])
    for p in steps[6:]:  # unset kd_weight and temperature fall back on lm.distill_weight and lm.temperature
        m = p["metrics"]
        assert (m["temperature"], m["distill_weight"], m["sft_weight"]) == (1.5, 2.0, 0.5) and MATCH_KEY not in m
        assert m["loss"] == pytest.approx(2.0 * m["distill_loss"] + 0.5 * m["sft_loss"], rel=1e-5)
    # A fresh learning-rate schedule per stage: stage 2's first step is at the same point of its own schedule.
    assert steps[6]["metrics"]["lr"] / 0.001 == pytest.approx(steps[0]["metrics"]["lr"] / 0.002)
    assert [p["stage"] for p in sink.of("eval") if p["split"] == "dev"] == [0, 1]


def test_a_run_resumed_in_its_second_stage_matches_an_uninterrupted_one_bitwise(lm_config, tmp_path):
    raw = lm_config(train={"checkpoint_every": 2}, stages=TWO_STAGES)
    straight = ListSink()
    run(ExperimentConfig.from_dict({**raw, "output_dir": str(tmp_path / "a")}), sink=straight)
    config_b = ExperimentConfig.from_dict({**raw, "output_dir": str(tmp_path / "b")})
    cancel = CancelAt(9)
    with pytest.raises(RunCancelled):
        run(config_b, sink=cancel, should_cancel=cancel.should_cancel)
    resumed = ListSink()
    assert run(config_b, sink=resumed)["resumed_from"] == 9
    after = [(p["step"], p["stage"], p["metrics"]) for p in resumed.of("step")]
    assert after == [(p["step"], p["stage"], p["metrics"]) for p in straight.of("step") if p["step"] > 9]
    assert {p["stage"] for p in resumed.of("step")} == {1}
    a, b = load_file(str(tmp_path / "a" / "model.safetensors")), load_file(str(tmp_path / "b" / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_a_bad_stage_is_refused_on_its_field(lm_config):
    attention = {"layer_T": 0, "layer_S": 0, "feature": "attention", "loss": "attention_mse"}
    with pytest.raises(ConfigError, match="tokens: match 0: a language-model run matches hidden states") as err:
        ExperimentConfig.from_dict(lm_config(stages=[TWO_STAGES[0], {**TWO_STAGES[1], "matches": [attention]}]))
    assert err.value.field == "stages.1.matches.0.feature"
    with pytest.raises(ConfigError, match="layers: .* both 0 and it has no matches") as err:
        ExperimentConfig.from_dict(lm_config(stages=[{**TWO_STAGES[0], "matches": []}]))
    assert err.value.field == "stages.0.kd_weight"
    with pytest.raises(ConfigError, match="Temperature must be greater than 0") as err:
        ExperimentConfig.from_dict(lm_config(stages=[{**TWO_STAGES[1], "temperature": 0}]))
    assert err.value.field == "stages.0.temperature"
    with pytest.raises(ConfigError, match="layers: .*layer_S=3") as err:  # checked against the built student
        run(ExperimentConfig.from_dict(lm_config(stages=[{**TWO_STAGES[0], "matches": [{**HIDDEN_ROW, "layer_S": 3}]}],
                                                 output_dir=None)))
    assert err.value.field == "stages.0.matches.0.layer_S"
