"""A tiny end-to-end run on CPU: random BERT teacher -> TextCNN / BiLSTM, events, results, export."""

from __future__ import annotations

import json

import pytest

from distill_core.config import ExperimentConfig
from distill_core.distiller import run
from distill_core.errors import RunCancelled, TrainingError
from distill_core.export import load_student, predict
from tests.conftest import demo_labels
from tests.distill_core.conftest import ListSink

C = 10


@pytest.mark.parametrize("student", ["textcnn", "bilstm"])
def test_a_tiny_run_reports_metrics_confusion_matrices_and_sizes(make_config, student):
    options = {"num_filters": 8} if student == "textcnn" else {"hidden_size": 16, "fc_size": 16}
    config = ExperimentConfig.from_dict(make_config(student={"type": student, "options": options}))
    sink = ListSink()
    results = run(config, sink=sink)

    start = sink.of("start")[0]
    assert start["steps_per_epoch"] == 7 and start["total_steps"] == 14  # ceil(200 / 32) * 2 epochs
    steps = sink.of("step")
    assert [p["step"] for p in steps] == list(range(1, 15))
    assert set(steps[0]["metrics"]) == {"loss", "kd_loss", "hard_loss", "lr", "temperature", "kd_weight", "hard_weight"}
    dev = [p for p in sink.of("eval") if p["split"] == "dev"]
    assert [(p["epoch"], p["step"]) for p in dev] == [(1, 7), (2, 14)]
    assert sink.of("result")[0] is results

    assert results["labels"] == demo_labels() and results["test_split"] == "test"
    for side in ("student", "teacher"):
        report = results[side]
        cm = report["confusion_matrix"]
        assert len(cm) == C and all(len(row) == C for row in cm)
        assert sum(map(sum, cm)) == 60
        assert 0.0 <= report["accuracy"] <= 1.0 and 0.0 <= report["macro_f1"] <= 1.0
        assert [row["label"] for row in report["per_class"]] == demo_labels()
    size = results["size"]
    assert size["teacher"]["parameters"] > 0 and size["student"]["parameters"] > 0
    assert size["student"]["bytes"] > 0 and size["teacher"]["bytes"] > 0
    for side in ("student", "teacher"):
        for batch in (1, 32):
            assert 0 < size[side][f"latency_ms_batch_{batch}"] <= size[side][f"latency_ms_batch_{batch}_p95"]
    assert size["compression"] == pytest.approx(size["teacher"]["parameters"] / size["student"]["parameters"], rel=1e-3)
    assert results["best_dev"]["epoch"] in (1, 2)
    json.dumps(results, allow_nan=False)  # stored as JSON by the worker


def test_the_export_classifies_texts_like_the_trained_student(make_config, tmp_path):
    config = ExperimentConfig.from_dict(make_config(train={"epochs": 1}))
    results = run(config)
    export = results["export_dir"]
    for name in ("model.safetensors", "student.json", "vocab.json", "config.json"):
        assert (tmp_path / "export" / name).is_file()
    rows = predict(export, ["央行宣布降准0.5个百分点", "国足客场逼平对手"])
    assert len(rows) == 2 and all(row["label"] in demo_labels() for row in rows)
    assert all(sum(row["probabilities"].values()) == pytest.approx(1.0, abs=1e-4) for row in rows)
    assert load_student(export).max_length == 24


def test_runs_with_the_same_seed_are_identical(make_config):
    config = ExperimentConfig.from_dict(make_config(train={"epochs": 1}, output_dir=None))
    first, second = ListSink(), ListSink()
    run(config, sink=first)
    run(config, sink=second)
    assert [p["metrics"] for p in first.of("step")] == [p["metrics"] for p in second.of("step")]


def test_the_teacher_vocabulary_and_a_held_out_dev_split_work(make_config):
    raw = make_config(student={"vocab": "teacher"}, train={"epochs": 1})
    raw["data"] = {**raw["data"], "dev": None, "test": None}
    results = run(ExperimentConfig.from_dict(raw))
    assert results["examples"] == {"train": 180, "dev": 20}
    assert results["test_split"] == "dev"


def test_a_cancel_request_stops_the_run(make_config):
    sink, calls = ListSink(), []

    def should_cancel() -> bool:  # polled during the teacher pass too; count the training steps only
        if sink.of("start"):
            calls.append(1)
        return len(calls) >= 3

    with pytest.raises(RunCancelled, match="step 3"):
        run(ExperimentConfig.from_dict(make_config()), sink=sink, should_cancel=should_cancel)


def test_a_diverging_loss_stops_with_the_step_and_the_term(make_config):
    config = ExperimentConfig.from_dict(make_config(train={"learning_rate": 10.0, "optimizer": "sgd", "grad_clip": None},
                                                    kd={"loss": "mse", "alpha": 0.0}))
    with pytest.raises(TrainingError, match=r"The (loss|kd_loss) became (nan|inf) at step \d+"):
        run(config)


@pytest.mark.parametrize(("schedule", "expected"), [
    ("constant", [0.5, 1.0, 1.0, 1.0, 1.0, 1.0]),
    ("linear", [0.5, 1.0, 1.0, 0.75, 0.5, 0.25]),
    ("cosine", [0.5, 1.0, 1.0, 0.853553, 0.5, 0.146447]),
])
def test_learning_rate_schedules_warm_up_then_decay(schedule, expected):
    from distill_core.schedules import lr_factor

    factor = lr_factor(schedule, warmup_ratio=2 / 6, total_steps=6)
    assert [factor(s) for s in range(6)] == pytest.approx(expected, abs=1e-6)


def test_the_logged_learning_rate_follows_the_schedule(make_config):
    sink = ListSink()
    run(ExperimentConfig.from_dict(make_config(train={"epochs": 1, "lr_schedule": "linear", "warmup_ratio": 0.0},
                                               output_dir=None)), sink=sink)
    lrs = [p["metrics"]["lr"] for p in sink.of("step")]
    assert lrs[0] == pytest.approx(0.005) and lrs == sorted(lrs, reverse=True) and lrs[-1] < 0.005 / 5


def test_a_cancel_request_stops_the_teacher_pass_too(make_config):
    sink = ListSink()

    def should_cancel() -> bool:  # requested once the teacher has started labelling
        return any(p["name"] == "teacher" for p in sink.of("phase"))

    with pytest.raises(RunCancelled, match="teacher was labelling"):
        run(ExperimentConfig.from_dict(make_config()), sink=sink, should_cancel=should_cancel)
