"""The experiment form's checks for language-model runs: the dataset's kind, and one tokenizer for teacher and student.

Called from ExperimentForm.clean (the page and the API share it). Tokenizers are read within bounds
and cached by webapp/registry/tokenizers.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django import forms
from django.conf import settings

from distill_core import hub
from distill_core.errors import CheckpointError
from webapp.experiments.configs import form_field_for
from webapp.registry import ownership
from webapp.registry.models import Dataset
from webapp.registry.tokenizers import tokenizer_of

LM_KIND = "lm_distill"


class DatasetSelect(forms.Select):
    """The dataset menu, each option marked with its dataset's kind (the page's script hides the other kind)."""

    def create_option(self, name, value, label, selected, index, subindex=None, attrs=None):
        option = super().create_option(name, value, label, selected, index, subindex, attrs)
        instance = getattr(value, "instance", None)
        if instance is not None:
            option["attrs"]["data-kind"] = instance.kind
        return option


def mark_dataset_kinds(field: forms.ModelChoiceField) -> None:
    field.widget = DatasetSelect(choices=field.choices)
    field.help_text = "Language-model runs take language-model datasets; the other kinds take classification ones."


def check_dataset_kind(form: forms.Form, kind: str | None, dataset: Dataset | None) -> None:
    """Put an error on `dataset` when its kind does not fit the run kind."""
    if dataset is None:
        return
    if kind == LM_KIND and dataset.kind != Dataset.Kind.LM:
        form.add_error("dataset", f"{dataset.name!r} is a text-classification dataset; a language-model run needs a "
                                  f"language-model dataset (prompt/response, chat messages or text). Upload one "
                                  f"with the kind “Language model”.")
    elif kind != LM_KIND and dataset.kind == Dataset.Kind.LM:
        form.add_error("dataset", f"{dataset.name!r} is a language-model dataset; it has no labels for this run kind. "
                                  f"Choose a classification dataset, or the run kind “Distil a language model”.")


def check_tokenizers(form: forms.Form, config: dict[str, Any] | None, team) -> None:
    """A checkpoint student must share the teacher's vocabulary; the difference goes on the student's field.

    Derived and preset students use the teacher's own tokenizer. Hub ids are checked by the worker,
    which resolves them (nothing is downloaded in a request).
    """
    if not config or config.get("kind") != LM_KIND:
        return
    lm = config.get("lm") or {}
    student_path, teacher_path = lm.get("student_path") or "", (config.get("teacher") or {}).get("path") or ""
    if lm.get("student_source") != "checkpoint" or not student_path or hub.is_hub(student_path) \
            or hub.is_hub(teacher_path):
        return
    field = form_field_for("lm.student_path")
    student_dir = Path(student_path).resolve()
    if not any(student_dir.is_relative_to(root) for root in settings.CHECKPOINT_ROOTS) \
            or not ownership.may_use(team, student_dir):
        form.add_error(field, f"The student checkpoint {student_path} is not a checkpoint of {team}'s.")
        return
    try:
        teacher = tokenizer_of(Path(teacher_path), "teacher")
        student = tokenizer_of(student_dir, field)
    except CheckpointError as exc:
        form.add_error(exc.field if exc.field in form.fields else field, exc.message)
        return
    from distill_core.lm.tokenizer_files import describe_difference

    difference = describe_difference(teacher, student)
    if difference:
        form.add_error(field, f"Teacher and student must share a tokenizer (the token losses compare their "
                              f"distributions id by id), but {difference}.")
