"""Forms: register a checkpoint, upload a dataset, create an experiment.

Each form validates at the edge and puts every message on the field a person has to fix.
Querysets are limited to the user's teams, so another team's rows are "not a valid choice".
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from django import forms
from django.conf import settings

from distill_core.config import DATA_FORMATS
from distill_core.errors import CheckpointError, ConfigError
from webapp.accounts.models import teams_of
from webapp.experiments.access import owned
from webapp.experiments.archives import too_large_message
from webapp.experiments.configs import build_config, form_field_for
from webapp.experiments.models import Checkpoint, Dataset

STUDENT_CHOICES = [("textcnn", "TextCNN"), ("bilstm", "BiLSTM")]
MAX_LABELS = 1000
MAX_UPLOAD_BYTES = 200 * 1024 * 1024  # every split is read into memory to be checked


def inspect(path: str | Path) -> dict[str, Any]:
    """distill_core.teachers.inspect_checkpoint, imported on first use (it loads torch)."""
    from distill_core.teachers import inspect_checkpoint

    return inspect_checkpoint(path)


class TeamFormMixin:
    """A `team` field limited to the user's teams, preselected when there is only one."""

    def setup_team(self, user) -> None:
        teams = teams_of(user)
        self.fields["team"].queryset = teams
        if len(teams) == 1:
            self.fields["team"].initial = teams[0].pk

    def check_unique_name(self, model: type, cleaned: dict[str, Any]) -> None:
        team, name = cleaned.get("team"), cleaned.get("name")
        if team and name and model.objects.filter(team=team, name=name).exists():
            self.add_error("name", f"{team} already has a {model._meta.verbose_name} called {name!r}.")


class CheckpointForm(TeamFormMixin, forms.Form):
    team = forms.ModelChoiceField(queryset=None, empty_label=None)
    name = forms.CharField(max_length=100, help_text="How this teacher appears in menus, e.g. bert-base-thucnews.")
    path = forms.CharField(
        max_length=1000, label="Local path", required=False,
        help_text="A directory written by save_pretrained() (config.json, weights, tokenizer), inside "
                  "one of the allowed checkpoint roots.",
    )
    archive = forms.FileField(
        required=False, label="…or upload an archive",
        help_text="A .zip or .tar.gz of a save_pretrained() directory; it is unpacked on the server.")

    def __init__(self, *args, user, archive_too_large: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.setup_team(user)
        self.archive_too_large = archive_too_large
        self.info: dict[str, Any] = {}
        self.fields["path"].widget.attrs["placeholder"] = str(settings.CHECKPOINT_ROOTS[0] / "my-teacher")
        self.fields["archive"].help_text += f" At most {settings.MAX_CHECKPOINT_UPLOAD_MB:,} MB."
        self.fields["archive"].widget.attrs["accept"] = ".zip,.tar.gz,.tgz"

    def clean_path(self) -> str:
        raw = self.cleaned_data["path"].strip()
        if not raw:
            return ""
        if "\x00" in raw:
            raise forms.ValidationError("The path contains a NUL character.")
        path = Path(raw).expanduser()
        if not path.is_absolute():
            raise forms.ValidationError("Give an absolute path (starting with /).")
        resolved = path.resolve()  # symlinks resolved: a link may not lead outside the roots
        roots = [Path(root).resolve() for root in settings.CHECKPOINT_ROOTS]
        if not any(resolved.is_relative_to(root) for root in roots):
            allowed = ", ".join(str(root) for root in roots)
            raise forms.ValidationError(
                f"{resolved} is outside the directories teachers may be registered from ({allowed}). "
                "Copy the checkpoint into one of them, or ask an admin to add its directory to "
                "DISTILLERY_CHECKPOINT_ROOTS.")
        if not resolved.is_dir():
            raise forms.ValidationError(f"{resolved} does not exist or is not a directory.")
        try:
            self.info = inspect(resolved)
        except CheckpointError as exc:
            raise forms.ValidationError(exc.message) from None
        return str(resolved)

    def clean(self):
        cleaned = super().clean()
        path, archive = cleaned.get("path"), cleaned.get("archive")
        if self.archive_too_large:  # dropped while streaming (archives.CappedUploadHandler)
            self.add_error("archive", too_large_message())
        elif path and archive:
            self.add_error("archive", "Give a local path or an archive, not both.")
        elif not path and not archive and "path" not in self.errors and "archive" not in self.errors:
            self.add_error("path", "Give the checkpoint's local path, or upload an archive of it.")
        self.check_unique_name(Checkpoint, cleaned)
        return cleaned


def save_checkpoint(form: CheckpointForm, user) -> Checkpoint:
    """Create the checkpoint of a valid CheckpointForm: unpack its archive, or register its path.

    Raises archives.ArchiveRefused (naming the field to blame) and IntegrityError when the name
    was taken since the form was validated (`duplicate_checkpoint_message` words it).
    """
    from django.db import transaction

    from webapp.experiments import archives

    cd = form.cleaned_data
    if cd.get("archive"):
        return archives.register_archive(team=cd["team"], user=user, name=cd["name"], upload=cd["archive"])
    with transaction.atomic():
        return Checkpoint.objects.create(team=cd["team"], name=cd["name"], path=cd["path"], info=form.info,
                                         created_by=user)


def duplicate_checkpoint_message(form: CheckpointForm) -> str:
    return f"{form.cleaned_data['team']} already has a checkpoint called {form.cleaned_data['name']!r}."


class DatasetForm(TeamFormMixin, forms.Form):
    team = forms.ModelChoiceField(queryset=None, empty_label=None)
    name = forms.CharField(max_length=100)
    train_file = forms.FileField(label="Train split")
    dev_file = forms.FileField(label="Dev split", required=False,
                               help_text="Used to pick the best epoch.")
    test_file = forms.FileField(label="Test split", required=False,
                                help_text="Used for the final report; the dev split stands in when absent.")
    format = forms.ChoiceField(choices=[(f, f.upper()) for f in DATA_FORMATS], initial="tsv")
    has_header = forms.BooleanField(required=False, label="First line is a header",
                                    help_text="TSV/CSV only. JSONL files name their fields in every line.")
    text_column = forms.CharField(max_length=100, initial="0",
                                  help_text="0-based index, or the column name (header / JSONL key).")
    text_pair_column = forms.CharField(max_length=100, required=False, label="Text-pair column",
                                       help_text="Second sentence for pair tasks (NLI, paraphrase). Leave empty "
                                                 "for single sentences.")
    label_column = forms.CharField(max_length=100, initial="1")
    label_names = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 5}), required=False, label="Label names",
        help_text="One per line, in class-index order. Leave empty to use the sorted distinct labels of "
                  "the train split.")

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.setup_team(user)

    def _clean_file(self, name: str):
        upload = self.cleaned_data.get(name)
        if upload and upload.size > MAX_UPLOAD_BYTES:
            raise forms.ValidationError(f"The file is {upload.size / 2**20:,.0f} MB; the limit is "
                                        f"{MAX_UPLOAD_BYTES // 2**20} MB per split.")
        return upload

    def clean_train_file(self):
        return self._clean_file("train_file")

    def clean_dev_file(self):
        return self._clean_file("dev_file")

    def clean_test_file(self):
        return self._clean_file("test_file")

    def clean_label_names(self) -> list[str]:
        names = [line.strip() for line in self.cleaned_data["label_names"].splitlines() if line.strip()]
        if len(names) > MAX_LABELS:
            raise forms.ValidationError(f"At most {MAX_LABELS} labels (got {len(names)}).")
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise forms.ValidationError(f"Each label may appear once; repeated: {', '.join(duplicates[:10])}.")
        if len(names) == 1:
            raise forms.ValidationError("A classification task needs at least two labels.")
        return names

    def clean(self):
        cleaned = super().clean()
        for key in ("text_column", "text_pair_column", "label_column"):
            if cleaned.get(key) is not None:
                cleaned[key] = cleaned[key].strip()
        self.check_unique_name(Dataset, cleaned)
        return cleaned


class ExperimentForm(TeamFormMixin, forms.Form):
    name = forms.CharField(max_length=200, help_text="e.g. BERT → TextCNN, T=2, α=0.8")
    team = forms.ModelChoiceField(queryset=None, empty_label=None)
    teacher = forms.ModelChoiceField(queryset=None, help_text="A registered checkpoint of the chosen team.")
    dataset = forms.ModelChoiceField(queryset=None, help_text="Its label count must match the teacher's.")
    student_type = forms.ChoiceField(
        choices=STUDENT_CHOICES, initial="textcnn", label="Student",
        help_text="TextCNN (Kim 2014): fast convolutions. BiLSTM (Tang et al. 2019): a recurrent student.")
    temperature = forms.FloatField(
        initial=2.0, label="Temperature T",
        help_text="Softens the teacher's distribution; higher T passes more of its 'dark knowledge'. "
                  "Usually 1–10.")
    alpha = forms.FloatField(
        initial=0.8, label="Hard-label weight α",
        help_text="loss = α·CE(student, labels) + (1−α)·T²·KL(teacher‖student). 0 = teacher only, "
                  "1 = labels only.")
    epochs = forms.IntegerField(initial=3, min_value=1, max_value=1000)
    batch_size = forms.IntegerField(initial=64, min_value=1, max_value=65536)
    learning_rate = forms.FloatField(initial=1e-3, label="Learning rate", help_text="AdamW; 1e-3 suits both students.")
    max_length = forms.IntegerField(initial=32, min_value=1, max_value=4096, label="Max length",
                                    help_text="Tokens per example; longer texts are truncated.")
    max_runtime_hours = forms.FloatField(
        required=False, min_value=0.01, max_value=720, label="Maximum runtime (hours)",
        help_text="Optional. The run stops, keeps its metrics and fails once it has run this long.")

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.setup_team(user)
        self.fields["teacher"].queryset = owned(user, Checkpoint).select_related("team").order_by("team__name", "name")
        self.fields["dataset"].queryset = owned(user, Dataset).select_related("team").order_by("team__name", "name")
        if len(self.fields["team"].queryset) > 1:
            self.fields["teacher"].label_from_instance = lambda c: f"{c.name} ({c.team})"
            self.fields["dataset"].label_from_instance = lambda d: f"{d.name} ({d.team})"
        for name in ("teacher", "dataset"):  # preselect the only choice
            if len(self.fields[name].queryset) == 1:
                self.fields[name].initial = self.fields[name].queryset[0].pk
        self.config: dict[str, Any] | None = None
        self.fields["learning_rate"].widget.attrs["step"] = "any"
        for name in ("temperature", "alpha"):
            self.fields[name].widget.attrs["step"] = "any"

    def clean_temperature(self) -> float:
        value = self.cleaned_data["temperature"]
        if not value > 0:
            raise forms.ValidationError(f"The temperature must be greater than 0 (got {value:g}).")
        if value > 1000:
            raise forms.ValidationError(f"The temperature must be at most 1000 (got {value:g}).")
        return value

    def clean_alpha(self) -> float:
        value = self.cleaned_data["alpha"]
        if not 0.0 <= value <= 1.0:
            raise forms.ValidationError(f"α weighs the hard labels and must be between 0 and 1 (got {value:g}).")
        return value

    def clean_learning_rate(self) -> float:
        value = self.cleaned_data["learning_rate"]
        if not (math.isfinite(value) and 0 < value <= 10):
            raise forms.ValidationError(f"The learning rate must be greater than 0 and at most 10 (got {value:g}).")
        return value

    def clean(self):
        cleaned = super().clean()
        team, teacher, dataset = cleaned.get("team"), cleaned.get("teacher"), cleaned.get("dataset")
        if team and teacher and teacher.team_id != team.pk:
            self.add_error("teacher", f"The checkpoint {teacher.name!r} belongs to {teacher.team}, not {team}.")
        if team and dataset and dataset.team_id != team.pk:
            self.add_error("dataset", f"The dataset {dataset.name!r} belongs to {dataset.team}, not {team}.")
        if "teacher" in cleaned and "dataset" in cleaned and not self.errors:
            self._check_teacher(teacher, dataset)
        if not self.errors:
            try:
                self.config = build_config(cleaned, teacher, dataset)
            except ConfigError as exc:
                self.add_error(form_field_for(exc.field), exc.message)
        return cleaned

    def _check_teacher(self, teacher: Checkpoint, dataset: Dataset) -> None:
        """The checkpoint must still be on disk and predict exactly the dataset's classes."""
        try:
            info = inspect(teacher.path)
        except CheckpointError as exc:
            self.add_error("teacher", f"The checkpoint {teacher.name!r} cannot be used: {exc.message}")
            return
        labels = list(dataset.labels)
        if info["num_labels"] != len(labels):
            shown = ", ".join(labels[:12]) + (", …" if len(labels) > 12 else "")
            self.add_error("teacher", (
                f"The teacher predicts {info['num_labels']} labels but the dataset has {len(labels)} ({shown}). "
                "Choose a teacher fine-tuned on this dataset's classes."))
            return
        max_positions = info.get("max_position_embeddings")
        max_length = self.cleaned_data.get("max_length")
        if isinstance(max_positions, int) and max_length and max_length > max_positions:
            self.add_error("max_length", f"The teacher reads at most {max_positions} tokens (got {max_length}).")
