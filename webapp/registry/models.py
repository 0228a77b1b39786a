"""The team's registry of inputs to a run: teacher checkpoints, datasets and word-vector files.

These models lived in the experiments app; they keep its tables (`db_table`), so moving them
changed no row (migrations registry 0001 and experiments 0101, state only).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from webapp.accounts.models import Team


class Checkpoint(models.Model):
    """A teacher: a registered local Hugging Face checkpoint directory, or a Hugging Face Hub model id.

    A path registers READY at once; an uploaded archive is UNPACKING until a task has unpacked
    and inspected it (webapp/registry/archive_jobs.py), then READY, or FAILED with the reason.
    """

    class Status(models.TextChoices):
        UNPACKING = "UNPACKING", "Unpacking"
        READY = "READY", "Ready"
        FAILED = "FAILED", "Failed"

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="checkpoints")
    name = models.CharField(max_length=100)
    path = models.CharField(max_length=1000)  # empty until an upload is unpacked, and for a Hub id
    # A Hub model id instead of a directory: nothing is downloaded when it is registered; the worker
    # resolves it at run start (distill_core.hub) and records the commit and `info` here.
    hub_id = models.CharField(max_length=200, blank=True)
    hub_revision = models.CharField(max_length=200, blank=True)  # "" = the default branch
    hub_commit = models.CharField(max_length=64, blank=True)  # "" until a run resolved it
    # distill_core.teachers.inspect_checkpoint(), computed once at registration: model_type, num_labels,
    # labels, num_layers, hidden_size, num_heads, ...; experiment forms read it instead of re-inspecting.
    info = models.JSONField(default=dict)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.READY)
    error = models.TextField(blank=True)  # why an upload FAILED
    bytes_done = models.BigIntegerField(default=0)  # of the uploaded archive, read by the unpacking task
    bytes_total = models.BigIntegerField(default=0)
    task_id = models.CharField(max_length=64, blank=True)  # the unpacking task that claimed the row
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    # The fine-tune run that writes this directory; until it SUCCEEDS the checkpoint is not ready
    # and every experiment created with it as teacher waits for that run (its depends_on).
    trained_by = models.ForeignKey("experiments.Experiment", null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="trained_checkpoints")

    class Meta:
        db_table = "experiments_checkpoint"  # the table it had in the experiments app (registry 0001, state only)
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["team", "name"], name="unique_checkpoint_name")]

    def __str__(self) -> str:
        return self.name

    @property
    def num_labels(self) -> int | None:
        return self.info.get("num_labels")

    @property
    def is_ready(self) -> bool:
        return self.status == self.Status.READY

    @property
    def percent(self) -> int:
        """How much of the archive the unpacking task has read, 0..100."""
        if self.status == self.Status.READY:
            return 100
        return min(100, int(100 * self.bytes_done / self.bytes_total)) if self.bytes_total else 0

    @property
    def is_hub(self) -> bool:
        return bool(self.hub_id)

    @property
    def source(self) -> str:
        """What a config names as this teacher: its directory, or `hub:org/name@revision`."""
        from distill_core.hub import HubRef

        return HubRef(self.hub_id, self.hub_revision or None).spec() if self.hub_id else self.path


class Dataset(models.Model):
    """A dataset: split files plus how to read them; text classification, or language-model text (kind "lm")."""

    class Kind(models.TextChoices):
        CLASSIFICATION = "classification", "Text classification"
        LM = "lm", "Language model"

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="datasets")
    name = models.CharField(max_length=100)
    train_path = models.CharField(max_length=1000)
    dev_path = models.CharField(max_length=1000, blank=True)
    test_path = models.CharField(max_length=1000, blank=True)
    format = models.CharField(max_length=10, default="tsv")
    has_header = models.BooleanField(default=False)
    # Column name or 0-based index, stored as text ("0", "text"); blank pair = single sentence.
    text_column = models.CharField(max_length=100, default="0")
    text_pair_column = models.CharField(max_length=100, blank=True)
    label_column = models.CharField(max_length=100, default="1")
    labels = models.JSONField(default=list)
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.CLASSIFICATION)
    # An LM dataset's column mapping: the `lm` config keys data_format, prompt_key, response_key, messages_key,
    # text_key (lm_datasets.py); empty for classification.
    lm_columns = models.JSONField(default=dict, blank=True)
    # Rows and class counts per split (LM: rows and length histograms), computed when the dataset is registered.
    stats = models.JSONField(default=dict)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "experiments_dataset"
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["team", "name"], name="unique_dataset_name")]

    def __str__(self) -> str:
        return self.name

    def data_config(self) -> dict:
        """The `data` section of a distill_core config (without max_length)."""

        from distill_core.data import column_index

        def column(value: str) -> int | str:
            index = column_index(value)
            return value if index is None else index

        return {
            "train": self.train_path,
            "dev": self.dev_path or None,
            "test": self.test_path or None,
            "format": self.format,
            "has_header": self.has_header,
            "text_column": column(self.text_column),
            "text_pair_column": column(self.text_pair_column) if self.text_pair_column else None,
            "label_column": column(self.label_column),
            "labels": list(self.labels),
        }


class WordVectors(models.Model):
    """One uploaded, fully checked word-vector file, stored under DATASET_ROOT/<team-slug>/vectors/."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="word_vectors")
    name = models.CharField(max_length=100)
    path = models.CharField(max_length=1000)
    count = models.PositiveIntegerField()  # vectors in the file
    dim = models.PositiveIntegerField()  # values per vector
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "experiments_wordvectors"
        ordering = ["-created_at"]
        verbose_name = "word-vector file"
        constraints = [models.UniqueConstraint(fields=["team", "name"], name="unique_word_vectors_name")]

    def __str__(self) -> str:
        return f"{self.name} ({self.count:,} × {self.dim})"
