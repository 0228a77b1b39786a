"""Forms: register a checkpoint, upload a dataset (the new-experiment form is in webapp/experiments/experiment_form.py).

Each form validates at the edge and puts every message on the field a person has to fix.
Querysets are limited to the user's teams, so another team's rows are "not a valid choice".
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings

from distill_core.config import DATA_FORMATS
from distill_core.errors import CheckpointError
from distill_core.hub import HubRef
from webapp.registry import ownership
from webapp.registry.archives import too_large_message
from webapp.registry.form_base import TeamFormMixin, inspect
from webapp.registry.lm_datasets import TXT_CHOICE, LMDatasetFields
from webapp.registry.models import Checkpoint, Dataset

MAX_LABELS = 1000


def max_dataset_upload_bytes() -> int:
    return settings.MAX_DATASET_UPLOAD_MB * 1024 * 1024


def dataset_too_large_message(size: int | None = None) -> str:
    limit = f"{settings.MAX_DATASET_UPLOAD_MB:,} MB per split (DISTILLERY_MAX_DATASET_UPLOAD_MB)"
    if size:
        return f"The file is {size / 2**20:,.0f} MB; the limit is {limit}."
    return f"The file is over the limit of {limit}; it was refused while uploading."


class CheckpointForm(TeamFormMixin, forms.Form):
    team = forms.ModelChoiceField(queryset=None, empty_label=None)
    name = forms.CharField(max_length=100, help_text="How this teacher appears in menus, e.g. bert-base-thucnews.")
    path = forms.CharField(
        max_length=1000, label="Local path", required=False,
        help_text="A directory written by save_pretrained() (config.json, weights, tokenizer), inside "
                  "your team's folder of a checkpoint root (<root>/<team-slug>/).",
    )
    archive = forms.FileField(
        required=False, label="…or upload an archive",
        help_text="A .zip or .tar.gz of a save_pretrained() directory; it is unpacked on the server.")
    hub_id = forms.CharField(
        max_length=400, required=False, label="…or a Hugging Face model id",
        help_text="name or org/name, optionally @revision (a branch, tag or commit), e.g. org/bert-sst2@main. "
                  "Nothing is downloaded now: the first run downloads it into the workers' shared cache and "
                  "this page then shows the commit it resolved to.")

    def __init__(self, *args, user, archive_too_large: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.setup_team(user)
        self.archive_too_large = archive_too_large
        self.info: dict[str, Any] = {}
        self.fields["path"].widget.attrs["placeholder"] = self._placeholder()
        self.fields["archive"].help_text += f" At most {settings.MAX_CHECKPOINT_UPLOAD_MB:,} MB."
        self.fields["archive"].widget.attrs["accept"] = ".zip,.tar.gz,.tgz"

    def _placeholder(self) -> str:
        teams = list(self.fields["team"].queryset[:2])
        if len(teams) == 1 and ownership.SAFE_SLUG.match(teams[0].slug):
            return str(ownership.checkpoint_folders(teams[0])[0] / "my-teacher")
        return str(settings.CHECKPOINT_ROOTS[0] / "<team-slug>" / "my-teacher")

    def clean_path(self) -> str:
        raw = self.cleaned_data["path"].strip()
        team = self.cleaned_data.get("team")
        if not raw or team is None:  # without a valid team there is no folder to check against
            return raw
        try:
            resolved = ownership.resolve_checkpoint_path(team, raw)
            self.info = inspect(resolved)
        except ownership.PathRefused as exc:
            raise forms.ValidationError(exc.message) from None
        except CheckpointError as exc:
            raise forms.ValidationError(ownership.name_as_typed(exc.message, resolved, raw)) from None
        return str(resolved)

    def clean_hub_id(self) -> HubRef | None:
        """The id as a HubRef (checked for form only: nothing is asked of the Hub inside a request)."""
        from distill_core import hub

        raw = self.cleaned_data["hub_id"].strip()
        if not raw:
            return None
        try:
            return hub.parse(raw, field="hub_id")
        except CheckpointError as exc:
            raise forms.ValidationError(exc.message) from None

    def clean(self):
        cleaned = super().clean()
        path, archive, hub_ref = cleaned.get("path"), cleaned.get("archive"), cleaned.get("hub_id")
        if self.archive_too_large:  # dropped while streaming (archives.CappedUploadHandler)
            self.add_error("archive", too_large_message())
        elif path and archive:
            self.add_error("archive", "Give a local path or an archive, not both.")
        elif hub_ref and (path or archive):
            self.add_error("hub_id", "Give a Hugging Face model id or a local checkpoint, not both.")
        elif not (path or archive or hub_ref) and not {"path", "archive", "hub_id"} & set(self.errors):
            self.add_error("path", "Give the checkpoint's local path, upload an archive of it, or give a Hugging "
                                   "Face model id.")
        # A FAILED upload does not hold its name: the next registration replaces it.
        self.check_unique_name(Checkpoint.objects.exclude(status=Checkpoint.Status.FAILED), cleaned)
        return cleaned


def save_checkpoint(form: CheckpointForm, user) -> Checkpoint:
    """Create the checkpoint of a valid CheckpointForm: store its archive to unpack, register its path or its Hub id.

    An archive's checkpoint is UNPACKING until a task has unpacked it (archive_jobs.accept_upload).

    Raises archives.ArchiveRefused (naming the field to blame) and IntegrityError when the name
    was taken since the form was validated (`duplicate_checkpoint_message` words it).
    """
    from django.db import transaction

    from webapp.registry import archive_jobs

    cd = form.cleaned_data
    if cd.get("archive"):
        return archive_jobs.accept_upload(team=cd["team"], user=user, name=cd["name"], upload=cd["archive"])
    if cd.get("hub_id"):  # a pending row: the worker downloads it at run start and fills hub_commit and info
        ref = cd["hub_id"]
        with transaction.atomic():
            archive_jobs.free_failed_name(cd["team"], cd["name"])
            return Checkpoint.objects.create(team=cd["team"], name=cd["name"], path="", hub_id=ref.repo_id,
                                             hub_revision=ref.revision or "", info={}, created_by=user)
    with transaction.atomic():
        archive_jobs.free_failed_name(cd["team"], cd["name"])
        checkpoint = Checkpoint.objects.create(team=cd["team"], name=cd["name"], path=cd["path"], info=form.info,
                                               created_by=user)
    archive_jobs.count_parameters_later(checkpoint)  # the form did not build the model
    return checkpoint


def duplicate_checkpoint_message(form: CheckpointForm) -> str:
    return f"{form.cleaned_data['team']} already has a checkpoint called {form.cleaned_data['name']!r}."


FORMAT_LABELS = {"parquet": "Parquet", "hf": "HF save_to_disk"}


class DatasetForm(TeamFormMixin, LMDatasetFields):
    team = forms.ModelChoiceField(queryset=None, empty_label=None)
    name = forms.CharField(max_length=100)
    train_file = forms.FileField(label="Train split")
    dev_file = forms.FileField(label="Dev split", required=False,
                               help_text="Used to pick the best epoch.")
    test_file = forms.FileField(label="Test split", required=False,
                                help_text="Used for the final report; the dev split stands in when absent.")
    format = forms.ChoiceField(choices=[(f, FORMAT_LABELS.get(f, f.upper())) for f in DATA_FORMATS] + [TXT_CHOICE],
                               initial="tsv",
                               help_text="HF save_to_disk: upload each split's directory as a .zip or .tar.gz.")
    has_header = forms.BooleanField(required=False, label="First line is a header",
                                    help_text="TSV/CSV only. JSONL files name their fields in every line.")
    text_column = forms.CharField(max_length=100, initial="0", required=False,
                                  help_text="0-based index, or the column name (header / JSONL key).")
    text_pair_column = forms.CharField(max_length=100, required=False, label="Text-pair column",
                                       help_text="Second sentence for pair tasks (NLI, paraphrase). Leave empty "
                                                 "for single sentences.")
    label_column = forms.CharField(max_length=100, initial="1", required=False)
    dev_ratio = forms.FloatField(
        required=False, min_value=0.0, max_value=0.5, initial=0.0, label="Hold out for dev",
        help_text="Without a dev file: the fraction of the train file to set aside (e.g. 0.1), chosen by the seed.")
    test_ratio = forms.FloatField(
        required=False, min_value=0.0, max_value=0.5, initial=0.0, label="Hold out for test",
        help_text="Without a test file: the fraction of the train file to set aside for the final report.")
    split_seed = forms.IntegerField(required=False, min_value=0, max_value=2**31 - 1, initial=42, label="Split seed",
                                    help_text="The same seed gives the same split every time.")
    label_names = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 5}), required=False, label="Label names",
        help_text="One per line, in class-index order. Leave empty to use the sorted distinct labels of "
                  "the train split.")

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.setup_team(user)

    def _clean_file(self, name: str):
        upload = self.cleaned_data.get(name)
        if upload and upload.size > max_dataset_upload_bytes():  # the upload handler stops such a file first
            raise forms.ValidationError(dataset_too_large_message(upload.size))
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
        for split in ("dev", "test"):
            if cleaned.get(f"{split}_file") and cleaned.get(f"{split}_ratio"):
                self.add_error(f"{split}_ratio", f"Upload a {split} file or hold out a fraction of train, not both.")
        for key in ("text_column", "text_pair_column", "label_column"):
            if cleaned.get(key) is not None:
                cleaned[key] = cleaned[key].strip()
        self.check_unique_name(Dataset, cleaned)
        return cleaned
