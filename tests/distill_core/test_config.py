"""The config contract: JSON round trip and messages a person can act on, naming the field."""

from __future__ import annotations

import pytest

from distill_core.config import ExperimentConfig
from distill_core.distiller import run
from distill_core.errors import CheckpointError, ConfigError, DatasetError


def test_a_config_round_trips_through_json(make_config):
    config = ExperimentConfig.from_dict(make_config())
    again = ExperimentConfig.from_json(config.to_json())
    assert again == config and again.to_dict() == config.to_dict()


@pytest.mark.parametrize(("section", "values", "field", "message"), [
    ("kd", {"temperature": 0}, "kd.temperature", "Temperature must be greater than 0"),
    ("kd", {"temperature": -1.5}, "kd.temperature", "Temperature must be greater than 0"),
    ("kd", {"alpha": 1.2}, "kd.alpha", "alpha (hard-label weight) must be between 0 and 1"),
    ("kd", {"alpha": -0.1}, "kd.alpha", "between 0 and 1"),
    ("kd", {"loss": "kld"}, "kd.loss", "kd.loss='kld' is not one of: kl, ce, mse, bce"),
    ("student", {"type": "gpt"}, "student.type", "student.type='gpt' is not one of"),
    ("train", {"epochs": 0}, "train.epochs", "epochs must be between 1 and 1000"),
    ("train", {"batch_size": "big"}, "train.batch_size", "must be an integer"),
    ("train", {"learning_rate": 0}, "train.learning_rate", "learning_rate must be greater than 0"),
    ("train", {"colour": "red"}, "train.colour", "Unknown key(s) in train: colour"),
])
def test_bad_values_name_the_field(make_config, section, values, field, message):
    with pytest.raises(ConfigError) as err:
        ExperimentConfig.from_dict(make_config(**{section: values}))
    assert err.value.field == field
    assert message in str(err.value)


def test_a_missing_teacher_directory_is_a_checkpoint_error(make_config, tmp_path):
    config = ExperimentConfig.from_dict(make_config(teacher={"path": str(tmp_path / "nope")}))
    with pytest.raises(CheckpointError, match="does not exist") as err:
        run(config)
    assert err.value.field == "teacher.path"


def test_a_teacher_with_another_label_count_is_refused(make_config):
    raw = make_config()
    raw["data"]["labels"] = raw["data"]["labels"][:3]
    with pytest.raises((CheckpointError, DatasetError), match="label"):
        run(ExperimentConfig.from_dict(raw))


def test_an_unknown_student_option_names_the_option(make_config):
    config = ExperimentConfig.from_dict(make_config(student={"options": {"kernels": [3]}}))
    with pytest.raises(ConfigError, match="Unknown option 'kernels' for student 'textcnn'") as err:
        run(config)
    assert err.value.field == "student.options.kernels"
