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
from webapp.experiments.models import Checkpoint, Dataset, Experiment
from workers import dispatch

# Config path -> form field. ConfigErrors on other paths go through form_field_for's prefix rules.
FORM_FIELDS = {
    "name": "name",
    "kind": "kind",
    "seed": "seed",
    "teacher.path": "teacher",
    "teacher.weight": "teacher_weight",
    "teacher.ensemble": "ensemble",
    "data.max_length": "max_length",
    "data.multi_label": "multi_label",
    "data.label_separator": "label_separator",
    "student.type": "student_type",
    "student.vocab": "student_vocab",
    "student.embedding_dim": "embedding_dim",
    "student.embedding_init": "embedding_init",
    "kd.temperature": "temperature",
    "kd.alpha": "alpha",
    "kd.t2_scaling": "t2_scaling",
    "kd.loss": "kd_loss",
    "kd.kd_weight": "kd_weight",
    "kd.temperature_schedule": "temperature_schedule",
    "kd.temperature_final": "temperature_final",
    "kd.schedule_beta": "schedule_beta",
    "kd.schedule_gamma": "schedule_gamma",
    "kd.kd_weight_schedule": "kd_weight_schedule",
    "kd.hard_weight_schedule": "hard_weight_schedule",
    "train.epochs": "epochs",
    "train.batch_size": "batch_size",
    "train.learning_rate": "learning_rate",
    "train.optimizer": "optimizer",
    "train.weight_decay": "weight_decay",
    "train.lr_schedule": "lr_schedule",
    "train.warmup_ratio": "warmup_ratio",
    "train.grad_clip": "grad_clip",
    "train.grad_accumulation": "grad_accumulation",
    "train.log_every": "log_every",
    "train.eval_every": "eval_every",
    "train.checkpoint_every": "checkpoint_every",
    "train.early_stopping_patience": "early_stopping_patience",
    "train.best_metric": "best_metric",
    "train.amp": "amp",
    "train.max_steps": "max_steps",
    "train.device": "device",
    "augment.enabled": "augment",
    "augment.n_iter": "augment_n_iter",
    "augment.p_mask": "augment_p_mask",
    "augment.p_replace": "augment_p_replace",
    "augment.p_ng": "augment_p_ng",
    "augment.ngram_range": "augment_ngram_range",
    "augment.replace_window": "augment_replace_window",
    "augment.max_examples": "augment_max_examples",
    "augment.replace": "augment_replace",
    "augment.neighbours": "augment_neighbours",
    "matches": "match_rows",
    "stages": "stages",
}
# Built from other inputs, not copied from the form's value of the same name.
DERIVED = {"teacher.path", "data.max_length"}

_RNN = {"hidden_size": "rnn_hidden_size", "fc_size": "rnn_fc_size", "dropout": "rnn_dropout",
        "siamese": "rnn_siamese"}
# student.type -> {option name -> form field}: each student's options have their own inputs.
STUDENT_OPTION_FIELDS: dict[str, dict[str, str]] = {
    "textcnn": {"filter_sizes": "cnn_filter_sizes", "num_filters": "cnn_num_filters", "dropout": "cnn_dropout"},
    "bilstm": _RNN,
    "bigru": _RNN,
    "transformer": {"preset": "tf_preset", "layers": "tf_layers", "hidden": "tf_hidden", "heads": "tf_heads",
                    "ffn": "tf_ffn", "dropout": "tf_dropout", "init_from_teacher": "tf_init_from_teacher"},
}
# Config path prefixes whose errors belong to one form field (the longest prefix wins).
PREFIX_FIELDS = {"student.embedding_file": "word_vectors", "matches": "match_rows", "stages": "stages", "teacher.ensemble": "ensemble", "data.": "dataset",
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
    grad_clip 0 turns clipping off (null); tf_init_from_teacher copies the chosen teacher's path (or Hub id).
    """
    raw: dict[str, Any] = {
        "data": dataset.data_config(),
        "teacher": {"path": checkpoint.source},  # a directory, or hub:org/name@rev resolved by the worker
    }
    if _given(cleaned_data.get("max_length")):
        raw["data"]["max_length"] = cleaned_data["max_length"]
    for path, name in FORM_FIELDS.items():
        if path not in DERIVED and _given(cleaned_data.get(name)):
            _put(raw, path, cleaned_data[name])
    if cleaned_data.get("grad_clip") == 0:
        raw["train"]["grad_clip"] = None
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
        )
        # The output directory is named after the primary key, which exists only now.
        experiment.config = {**config, "output_dir": output_dir(experiment)}
        experiment.save(update_fields=["config"])
        dispatch.wake_workers(experiment.pool)
    return experiment
