"""Hidden-state matches in causal-LM runs (distill_core/lm/matches.py): hand-computed terms on tiny tensors,
an end-to-end tiny GPT-2 run with a match, the refusals, and a bitwise resume with a trained projection."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from safetensors.torch import load_file

from distill_core.config import ExperimentConfig
from distill_core.distiller import run
from distill_core.errors import ConfigError, RunCancelled
from distill_core.lm.matches import hidden_mask, match_terms
from distill_core.matches import MatchLoss, parse_matches
from tests.distill_core import test_lm_run
from tests.distill_core.conftest import CancelAt, ListSink

lm_files, lm_config = test_lm_run.lm_files, test_lm_run.lm_config  # the tiny GPT-2/Llama fixtures

HIDDEN_ROW = {"layer_T": 2, "layer_S": 1, "feature": "hidden", "loss": "hidden_mse", "weight": 1.0}


def test_the_hidden_mask_keeps_the_positions_whose_predictions_are_trained():
    loss_mask = torch.tensor([[False, True, True], [True, False, False]])  # (B, T-1): tokens 2-3 and 1 are responses
    assert hidden_mask(loss_mask).tolist() == [[False, True, True, False], [True, False, False, False]]


def _outputs(values: list[list[float]]) -> SimpleNamespace:
    """A model output with hidden states (embeddings, block 1) of one sequence: (1, T, D) each."""
    h = torch.tensor([values], dtype=torch.float32)
    return SimpleNamespace(logits=torch.zeros(1, len(values), 4), hidden_states=(torch.zeros_like(h), h))


def test_hidden_mse_and_cosine_count_only_response_positions_by_hand():
    student = _outputs([[9.0, 9.0], [1.0, 2.0], [1.0, 0.0]])
    teacher = _outputs([[0.0, 0.0], [0.0, 0.0], [0.0, 1.0]])
    attention = torch.ones(1, 3, dtype=torch.long)
    loss_mask = torch.tensor([[True, False]])  # only position 0's prediction (token 1) is a response token
    rows = [{"layer_T": 1, "layer_S": 1, "feature": "hidden", "loss": "hidden_mse", "weight": 2.0},
            {"layer_T": 1, "layer_S": 1, "feature": "hidden", "loss": "cos", "weight": 1.0}]
    terms = match_terms(MatchLoss(parse_matches(rows), 2, 2), student, teacher, attention, loss_mask)
    # position 0 only: mse = (9^2 + 9^2) / 2 = 81, weighted 2 -> 162; cos([9, 9], [0, 0]) = 0 -> distance 1
    assert terms == {"match0_hidden_mse_T1_S1": pytest.approx(162.0), "match1_cos_T1_S1": pytest.approx(1.0)}

    loss_mask = torch.tensor([[False, True]])  # position 1 only: [1, 2] vs [0, 0] -> (1 + 4) / 2 = 2.5, x2
    terms = match_terms(MatchLoss(parse_matches(rows[:1]), 2, 2), student, teacher, attention, loss_mask)
    assert float(terms["match0_hidden_mse_T1_S1"]) == pytest.approx(5.0)


def test_a_projection_maps_the_student_to_the_teachers_width_by_hand():
    student = _outputs([[1.0, 2.0], [0.0, 0.0]])
    teacher = _outputs([[1.0, 1.0, 1.0], [5.0, 5.0, 5.0]])
    row = {**HIDDEN_ROW, "layer_T": 1, "proj": ["linear", 2, 3]}
    loss = MatchLoss(parse_matches([row]), 2, 3)
    with torch.no_grad():
        loss.projections["0"].linear.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]))
        loss.projections["0"].linear.bias.zero_()
    terms = match_terms(loss, student, teacher, torch.ones(1, 2, dtype=torch.long), torch.tensor([[True]]))
    # W [1, 2] = [1, 2, 3] vs [1, 1, 1]: (0 + 1 + 4) / 3
    assert float(terms["match0_hidden_mse_T1_S1"].detach()) == pytest.approx(5 / 3)


@pytest.mark.parametrize("mode", ["offline", "online"])
def test_a_tiny_gpt2_run_learns_from_a_hidden_state_match(lm_config, mode):
    sink = ListSink()
    # A preset student half the teacher's width: the projection maps 16 -> 32.
    raw = lm_config(lm={"mode": mode, "student_source": "preset", "layers": 2, "hidden_size": 16, "num_heads": 2},
                    matches=[{**HIDDEN_ROW, "layer_T": 4, "layer_S": 2, "proj": ["linear", 16, 32]}], output_dir=None)
    results = run(ExperimentConfig.from_dict(raw), sink=sink)
    metrics = [p["metrics"] for p in sink.of("step")]
    key = "match0_hidden_mse_T4_S2"
    assert all(key in m and m["intermediate_loss"] == pytest.approx(m[key]) for m in metrics)
    assert all(m["loss"] == pytest.approx(m["distill_loss"] + m[key]) for m in metrics)
    assert metrics[-1][key] < metrics[0][key]
    assert results["student"]["perplexity"] > 1


def test_matches_an_lm_run_cannot_serve_are_refused_on_their_field(lm_config):
    attention = {"layer_T": 0, "layer_S": 0, "feature": "attention", "loss": "attention_mse"}
    with pytest.raises(ConfigError, match="hidden states and embeddings only") as err:
        ExperimentConfig.from_dict(lm_config(matches=[attention]))
    assert err.value.field == "matches.0.feature"
    narrow = lm_config(lm={"student_source": "preset", "hidden_size": 16, "num_heads": 2}, matches=[HIDDEN_ROW],
                       output_dir=None)
    with pytest.raises(ConfigError, match=r"hidden sizes differ \(student 16, teacher 32\)") as err:
        run(ExperimentConfig.from_dict(narrow))
    assert err.value.field == "matches.0.proj"
    with pytest.raises(ConfigError, match="layer_S=3") as err:
        run(ExperimentConfig.from_dict(lm_config(matches=[{**HIDDEN_ROW, "layer_S": 3}], output_dir=None)))
    assert err.value.field == "matches.0.layer_S"


def test_a_resumed_run_with_a_projected_match_matches_an_uninterrupted_one_bitwise(lm_config, tmp_path):
    raw = lm_config(train={"checkpoint_every": 2}, lm={"student_source": "preset", "hidden_size": 16, "num_heads": 2},
                    matches=[{**HIDDEN_ROW, "layer_T": 4, "layer_S": 2, "proj": ["linear", 16, 32, "tanh"]}])
    straight = ListSink()
    run(ExperimentConfig.from_dict({**raw, "output_dir": str(tmp_path / "a")}), sink=straight)
    config_b = ExperimentConfig.from_dict({**raw, "output_dir": str(tmp_path / "b")})
    cancel = CancelAt(3)
    with pytest.raises(RunCancelled):
        run(config_b, sink=cancel, should_cancel=cancel.should_cancel)
    resumed = ListSink()
    assert run(config_b, sink=resumed)["resumed_from"] == 3
    after = [(p["step"], p["metrics"]) for p in resumed.of("step")]
    assert after == [(p["step"], p["metrics"]) for p in straight.of("step") if p["step"] > 3]
    a, b = load_file(str(tmp_path / "a" / "model.safetensors")), load_file(str(tmp_path / "b" / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
