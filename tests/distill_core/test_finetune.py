"""The fine-tune-teacher run type produces a checkpoint that later experiments can distil from."""

from __future__ import annotations

import pytest

from distill_core.config import ExperimentConfig
from distill_core.distiller import run
from distill_core.errors import ConfigError
from distill_core.teachers import inspect_checkpoint
from tests.conftest import demo_labels
from tests.distill_core.conftest import ListSink


def test_a_fine_tuned_teacher_is_saved_and_usable_as_a_teacher(make_config, tmp_path):
    out = tmp_path / "new-teacher"
    raw = make_config(kind="finetune_teacher", train={"epochs": 1, "learning_rate": 1e-3}, output_dir=str(out))
    sink = ListSink()
    results = run(ExperimentConfig.from_dict(raw), sink=sink)
    assert results["kind"] == "finetune_teacher" and results["teacher_checkpoint"] == str(out)
    assert [p["split"] for p in sink.of("eval")] == ["dev"] and sink.of("step")[0]["metrics"]["kd_weight"] == 0.0
    info = inspect_checkpoint(out)
    assert info["labels"] == demo_labels() and info["num_labels"] == 10
    assert len(results["student"]["confusion_matrix"]) == 10
    assert not (out / "checkpoint").exists()

    distilled = run(ExperimentConfig.from_dict(make_config(teacher={"path": str(out)}, train={"epochs": 1},
                                                           output_dir=None)))
    assert distilled["teacher"]["accuracy"] == pytest.approx(results["student"]["accuracy"], abs=0.02)


def test_fine_tuning_needs_an_output_directory(make_config):
    with pytest.raises(ConfigError, match="needs output_dir"):
        run(ExperimentConfig.from_dict(make_config(kind="finetune_teacher", output_dir=None)))


def test_an_unknown_run_kind_is_refused(make_config):
    with pytest.raises(ConfigError, match="kind='pretrain' is not one of: distill, finetune_teacher"):
        ExperimentConfig.from_dict(make_config(kind="pretrain"))
