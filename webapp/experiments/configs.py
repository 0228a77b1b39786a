"""Turn the new-experiment form into the distill_core config the worker runs.

`build_config` is the only place that knows how form fields map onto ExperimentConfig
(FORM_FIELDS and STUDENT_OPTION_FIELDS); `create_experiment` stores the row and wakes the
pool's workers. A field missing from the form's data (the REST API may post only a few) is
left out of the raw config, so distill_core's own default applies.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import transaction

from distill_core.config import ExperimentConfig
from webapp.experiments import dependencies
from webapp.experiments.experiment_fields import INPUTS, STUDENT_INPUTS
from webapp.experiments.lm_fields import LM_FORM_FIELDS
from webapp.experiments.models import Experiment
from webapp.registry import lm_datasets
from webapp.registry.models import Checkpoint, Dataset
from workers import dispatch

# Config path -> form field: every declared option's generated input (experiment_fields.INPUTS), and the
# inputs of the fields that are not declared options. ConfigErrors on other paths go through form_field_for's
# prefix rules.
FORM_FIELDS = {
    "name": "name",
    "teacher.path": "teacher",
    "teacher.ensemble": "ensemble",
    "data.label_separator": "label_separator",
    **{d.path: name for name, d in INPUTS.items()},
    "tune.temperatures": "tune_temperatures",
    "tune.alphas": "tune_alphas",
    "tune.losses": "tune_losses",
    "train.device": "device",
    "matches": "match_rows",
    "stages": "stages",
}
FORM_FIELDS.update(LM_FORM_FIELDS)
# Built from other inputs, not copied from the form's value of the same name.
DERIVED = {"teacher.path", "data.max_length", "lm.student_path"}
# student.type -> {option name -> form field}: each student's options have their own inputs.
STUDENT_OPTION_FIELDS: dict[str, dict[str, str]] = {
    student: {d.name: name for name, d in inputs.items()} for student, inputs in STUDENT_INPUTS.items()}
# Config path prefixes whose errors belong to one form field (the longest prefix wins).
PREFIX_FIELDS = {"lm.": "lm_mode", "student.embedding_file": "word_vectors", "matches": "match_rows", "stages": "stages",
                 "teacher.ensemble": "ensemble", "data.": "dataset",
                 "student.options": "student_type"}


def form_field_for(config_field: str | None, student_type: str | None = None) -> str | None:
    """The form field to blame for a ConfigError on `config_field` (None: the whole form)."""
    if not config_field:
        return None
    if config_field in FORM_FIELDS:
        return FORM_FIELDS[config_field]
    if config_field.startswith("student.options.") and student_type in STUDENT_OPTION_FIELDS:
        option = config_field.split(".")[2]
        if option in STUDENT_OPTION_FIELDS[student_type]:
            return STUDENT_OPTION_FIELDS[student_type][option]
    for prefix in sorted(PREFIX_FIELDS, key=len, reverse=True):
        if config_field.startswith(prefix):
            return PREFIX_FIELDS[prefix]
    return None


def _given(value: Any) -> bool:
    return value is not None and value != ""


def _put(raw: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    for part in parents:
        raw = raw.setdefault(part, {})
    raw[leaf] = value


def build_config(cleaned_data: dict[str, Any], checkpoint: Checkpoint, dataset: Dataset) -> dict[str, Any]:
    """The validated ExperimentConfig JSON for the form's values (raises ConfigError).

    Only what the form sets is written here; distill_core's defaults fill in the rest, and the
    round trip through ExperimentConfig returns the complete, normalised dict. Special values:
    grad_clip 0 turns clipping off (null); tf_init_from_teacher copies the chosen teacher's path (or Hub id);
    lm_student_checkpoint gives lm.student_path the chosen checkpoint's path (or Hub id).
    """
    if dataset.kind == Dataset.Kind.LM:  # its files and its column keys (lm_datasets.py)
        data, lm = lm_datasets.config_sections(dataset)
        raw: dict[str, Any] = {"data": data, "lm": lm}
    else:
        raw = {"data": dataset.data_config()}
    raw["teacher"] = {"path": checkpoint.source}  # a directory, or hub:org/name@rev resolved by the worker
    if _given(cleaned_data.get("max_length")):
        raw["data"]["max_length"] = cleaned_data["max_length"]
    for path, name in FORM_FIELDS.items():
        if path not in DERIVED and _given(cleaned_data.get(name)):
            _put(raw, path, cleaned_data[name])
    if cleaned_data.get("grad_clip") == 0:
        raw["train"]["grad_clip"] = None
    if cleaned_data.get("lm_student_checkpoint") is not None:  # checked against the team by the form
        _put(raw, "lm.student_path", cleaned_data["lm_student_checkpoint"].source)
    if _given(cleaned_data.get("embedding_file")):  # the chosen word-vector file, checked by the form
        _put(raw, "student.embedding_file", cleaned_data["embedding_file"])
    student_type = cleaned_data.get("student_type") or "textcnn"
    options: dict[str, Any] = {}
    for option, name in STUDENT_OPTION_FIELDS.get(student_type, {}).items():
        value = cleaned_data.get(name)
        if option == "init_from_teacher":
            value = checkpoint.source if value else None
        if _given(value) and value is not False:  # an unticked box is the option's default
            options[option] = value
    if options:
        raw.setdefault("student", {})["options"] = options
    return ExperimentConfig.from_dict(raw).to_dict()


def output_dir(experiment: Experiment) -> str:
    return str(settings.ARTIFACT_ROOT / "experiments" / str(experiment.pk) / "student")


def create_experiment(*, team, owner, checkpoint: Checkpoint, dataset: Dataset, fields: dict[str, Any],
                      config: dict[str, Any] | None = None, pool: str | None = None,
                      priority: int | None = None, max_runtime_seconds: int | None = None,
                      depends_on: Experiment | None = None) -> Experiment:
    """Store a QUEUED experiment and wake `pool`'s workers once the transaction commits.

    `config` is build_config's result when the caller already has it; else it is built
    from `fields` here (and may raise ConfigError). `pool` and `priority` default to the
    form's `pool`/`priority` values, then to "default" and 0. A teacher still being trained
    makes the run wait for its training run unless `depends_on` names another.
    """
    if config is None:
        config = build_config(fields, checkpoint, dataset)
    depends_on = depends_on or dependencies.blocking(checkpoint)
    pool = pool or fields.get("pool") or "default"
    priority = priority if priority is not None else (fields.get("priority") or 0)
    with transaction.atomic():
        experiment = Experiment.objects.create(
            team=team, owner=owner, name=config.get("name") or fields["name"], teacher=checkpoint, dataset=dataset,
            student_type=config["student"]["type"], config=config, status=Experiment.Status.QUEUED, pool=pool,
            priority=priority, max_runtime_seconds=max_runtime_seconds, depends_on=depends_on,
            gpus=fields.get("gpus") or 1,
        )
        # The output directory is named after the primary key, which exists only now.
        experiment.config = {**config, "output_dir": output_dir(experiment)}
        experiment.save(update_fields=["config"])
        dispatch.wake_workers(experiment.pool)
    return experiment
