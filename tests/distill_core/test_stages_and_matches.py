"""Intermediate matches inside the real loop, TinyBERT-style two-stage runs, and their errors."""

from __future__ import annotations

import pytest

from distill_core.config import ExperimentConfig
from distill_core.distiller import run
from distill_core.errors import ConfigError, RunCancelled
from tests.distill_core.conftest import CancelAt, ListSink

# The tiny teacher: 2 layers x 32 hidden, 2 heads. A 1-layer x 16 transformer student on its tokens.
STUDENT = {"type": "transformer", "vocab": "teacher",
           "options": {"preset": "custom", "layers": 1, "hidden": 16, "heads": 2, "ffn": 32}}
MATCHES = [
    {"layer_T": 2, "layer_S": 1, "feature": "hidden", "loss": "hidden_mse", "weight": 1.0, "proj": ["linear", 16, 32]},
    {"layer_T": 0, "layer_S": 0, "feature": "embedding", "loss": "embedding_mse", "weight": 1.0,
     "proj": ["linear", 16, 32]},
    {"layer_T": 1, "layer_S": 0, "feature": "attention", "loss": "attention_mse", "weight": 1.0},
]


def test_every_match_term_is_logged_separately(make_config):
    sink = ListSink()
    run(ExperimentConfig.from_dict(make_config(student=STUDENT, matches=MATCHES, train={"epochs": 1},
                                               output_dir=None)), sink=sink)
    metrics = sink.of("step")[0]["metrics"]
    keys = {"match0_hidden_mse_T2_S1", "match1_embedding_mse_T0_S0", "match2_attention_mse_T1_S0"}
    assert keys <= set(metrics) and "intermediate_loss" in metrics
    assert metrics["intermediate_loss"] == pytest.approx(sum(metrics[k] for k in keys), rel=1e-5)


def test_a_two_stage_tinybert_style_run(make_config, tmp_path):
    stages = [
        {"name": "intermediate", "epochs": 1, "alpha": 0.0, "kd_weight": 0.0, "matches": MATCHES},
        {"name": "prediction", "epochs": 1, "alpha": 0.0, "kd_weight": 1.0, "temperature": 1.0,
         "learning_rate": 0.003},
    ]
    sink = ListSink()
    results = run(ExperimentConfig.from_dict(make_config(student=STUDENT, stages=stages,
                                                         output_dir=str(tmp_path / "tb"))), sink=sink)
    assert sink.of("start")[0]["stages"] == ["intermediate", "prediction"]
    assert sink.of("start")[0]["total_steps"] == 14 and results["steps"] == 14
    first = [p for p in sink.of("step") if p["stage"] == 0]
    second = [p for p in sink.of("step") if p["stage"] == 1]
    assert [p["step"] for p in first] == list(range(1, 8)) and [p["step"] for p in second] == list(range(8, 15))
    assert all("intermediate_loss" in p["metrics"] and p["metrics"]["kd_weight"] == 0.0 for p in first)
    assert all("intermediate_loss" not in p["metrics"] and p["metrics"]["kd_weight"] == 1.0 for p in second)
    assert second[0]["metrics"]["lr"] == pytest.approx(0.003)  # a fresh optimiser and schedule per stage
    assert [p["stage"] for p in sink.of("eval") if p["split"] == "dev"] == [0, 1]
    assert results["best_dev"]["step"] == 14  # the last stage picks the student


def test_a_two_stage_run_resumes_inside_the_second_stage(make_config, tmp_path):
    stages = [{"name": "a", "epochs": 1, "matches": MATCHES[:1]}, {"name": "b", "epochs": 1}]
    raw = make_config(student=STUDENT, stages=stages, train={"checkpoint_every": 2})
    straight = run(ExperimentConfig.from_dict({**raw, "output_dir": str(tmp_path / "a")}))
    config = ExperimentConfig.from_dict({**raw, "output_dir": str(tmp_path / "b")})
    cancel = CancelAt(10)
    with pytest.raises(RunCancelled):
        run(config, sink=cancel, should_cancel=cancel.should_cancel)
    resumed = run(config)
    assert resumed["resumed_from"] == 10
    assert resumed["student"] == straight["student"] and resumed["best_dev"] == straight["best_dev"]


def test_matches_are_checked_against_the_real_models_before_training(make_config):
    bad_layer = [{**MATCHES[0], "layer_T": 7}]
    with pytest.raises(ConfigError, match="match 0: layer_T=7 but the teacher has hidden states 0..2") as err:
        run(ExperimentConfig.from_dict(make_config(student=STUDENT, matches=bad_layer)))
    assert err.value.field == "matches.0.layer_T"
    bilstm = {"type": "bilstm", "vocab": "teacher", "options": {"hidden_size": 8, "fc_size": 8}}
    with pytest.raises(ConfigError, match="attention") as err:
        run(ExperimentConfig.from_dict(make_config(student=bilstm, matches=[MATCHES[2]])))
    with pytest.raises(ConfigError, match="student.vocab to 'teacher'"):
        run(ExperimentConfig.from_dict(make_config(student={**STUDENT, "vocab": "char"}, matches=MATCHES)))
    stages = [{"name": "warm", "matches": bad_layer}]
    with pytest.raises(ConfigError, match="warm: match 0: layer_T=7") as err:
        run(ExperimentConfig.from_dict(make_config(student=STUDENT, stages=stages)))
    assert err.value.field == "stages.0.matches.0.layer_T"


def test_with_matches_in_every_stage_the_train_logits_come_from_the_live_teacher(make_config, monkeypatch):
    """The teacher runs on every batch for the matches; its logits there are the KD targets (no second pass)."""
    import distill_core.distiller as distiller
    import distill_core.streaming as streaming

    labelled = []
    real_logits = streaming.teacher_logits

    def counting(model, tokenizer, texts, *args, **kwargs):
        labelled.append(len(texts))
        return real_logits(model, tokenizer, texts, *args, **kwargs)

    monkeypatch.setattr(streaming, "teacher_logits", counting)  # the one teacher pass over the splits
    raw = make_config(student=STUDENT, matches=MATCHES[:2], train={"epochs": 1}, output_dir=None)
    live_sink = ListSink()
    live = run(ExperimentConfig.from_dict(raw), sink=live_sink)
    assert labelled == [60]  # test only: the 200 train titles are labelled inside the loop, dev needs no teacher

    labelled.clear()
    monkeypatch.setattr(distiller, "live_train_logits", lambda config, n: False)
    precomputed_sink = ListSink()
    precomputed = run(ExperimentConfig.from_dict(raw), sink=precomputed_sink)
    assert labelled == [200, 60]
    # the same targets either way (padding to the batch's or the split's longest title moves only rounding)
    for a, b in zip(live_sink.of("step"), precomputed_sink.of("step"), strict=True):
        assert a["metrics"]["kd_loss"] == pytest.approx(b["metrics"]["kd_loss"], rel=1e-4, abs=1e-6)
    assert live["student"]["accuracy"] == pytest.approx(precomputed["student"]["accuracy"], abs=0.02)


def test_a_stage_without_matches_keeps_the_precomputed_train_logits(make_config):
    from distill_core.distiller import live_train_logits

    one = ExperimentConfig.from_dict(make_config(student=STUDENT, matches=MATCHES[:1]))
    assert live_train_logits(one, 1) and not live_train_logits(one, 2)  # an ensemble's mean needs every member
    two = ExperimentConfig.from_dict(make_config(student=STUDENT, stages=[
        {"name": "a", "matches": MATCHES[:1]}, {"name": "b"}]))
    assert not live_train_logits(two, 1)
    augmented = ExperimentConfig.from_dict(make_config(student=STUDENT, matches=MATCHES[:1], augment={"enabled": True}))
    assert not live_train_logits(augmented, 1)
