"""Turn the new-experiment form into the distill_core config the worker runs.

`build_config` is the only place that knows how form fields map onto ExperimentConfig;
`create_experiment` stores the row and wakes the pool's workers.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import transaction

from distill_core.config import ExperimentConfig
from webapp.experiments.models import Checkpoint, Dataset, Experiment
from workers import dispatch

# Config path -> form field. ConfigErrors on other paths become non-field errors.
FORM_FIELDS = {
    "name": "name",
    "teacher.path": "teacher",
    "student.type": "student_type",
    "kd.temperature": "temperature",
    "kd.alpha": "alpha",
    "train.epochs": "epochs",
    "train.batch_size": "batch_size",
    "train.learning_rate": "learning_rate",
    "data.max_length": "max_length",
}


def form_field_for(config_field: str | None) -> str | None:
    """The form field to blame for a ConfigError on `config_field` (None: the whole form)."""
    if not config_field:
        return None
    if config_field in FORM_FIELDS:
        return FORM_FIELDS[config_field]
    if config_field.startswith("data."):
        return "dataset"
    return None


def build_config(cleaned_data: dict[str, Any], checkpoint: Checkpoint, dataset: Dataset) -> dict[str, Any]:
    """The validated ExperimentConfig JSON for the form's values (raises ConfigError).

    Only what the form controls is set here; distill_core's defaults fill in the rest, and
    the round trip through ExperimentConfig returns the complete, normalised dict.
    """
    raw = {
        "name": cleaned_data["name"],
        "data": {**dataset.data_config(), "max_length": cleaned_data["max_length"]},
        "teacher": {"path": checkpoint.path},
        "student": {"type": cleaned_data["student_type"]},
        "kd": {"temperature": cleaned_data["temperature"], "alpha": cleaned_data["alpha"]},
        "train": {
            "epochs": cleaned_data["epochs"],
            "batch_size": cleaned_data["batch_size"],
            "learning_rate": cleaned_data["learning_rate"],
        },
    }
    return ExperimentConfig.from_dict(raw).to_dict()


def output_dir(experiment: Experiment) -> str:
    return str(settings.ARTIFACT_ROOT / "experiments" / str(experiment.pk) / "student")


def create_experiment(*, team, owner, checkpoint: Checkpoint, dataset: Dataset, fields: dict[str, Any],
                      config: dict[str, Any] | None = None, pool: str = "default",
                      max_runtime_seconds: int | None = None) -> Experiment:
    """Store a QUEUED experiment and wake `pool`'s workers once the transaction commits.

    `config` is build_config's result when the caller already has it; else it is built
    from `fields` here (and may raise ConfigError).
    """
    if config is None:
        config = build_config(fields, checkpoint, dataset)
    with transaction.atomic():
        experiment = Experiment.objects.create(
            team=team, owner=owner, name=fields["name"], teacher=checkpoint, dataset=dataset,
            student_type=config["student"]["type"], config=config, status=Experiment.Status.QUEUED, pool=pool,
            max_runtime_seconds=max_runtime_seconds,
        )
        # The output directory is named after the primary key, which exists only now.
        experiment.config = {**config, "output_dir": output_dir(experiment)}
        experiment.save(update_fields=["config"])
        dispatch.wake_workers(experiment.pool)
    return experiment
