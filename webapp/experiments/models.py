"""Teacher checkpoints, datasets, experiments and their metric streams."""

from __future__ import annotations

import time

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from webapp.accounts.models import Team


class Checkpoint(models.Model):
    """A teacher: a registered local Hugging Face checkpoint directory, or a Hugging Face Hub model id.

    A path registers READY at once; an uploaded archive is UNPACKING until a task has unpacked
    and inspected it (webapp/experiments/archive_jobs.py), then READY, or FAILED with the reason.
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
    trained_by = models.ForeignKey("Experiment", null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="trained_checkpoints")

    class Meta:
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


class Tag(models.Model):
    """A short label a team puts on its experiments ("baseline", "ablation-T"); filterable on the list."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="tags")
    name = models.CharField(max_length=40)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["team", "name"], name="unique_tag_name")]

    def __str__(self) -> str:
        return self.name


def next_position() -> float:
    """Queue position of a new experiment: after everything already queued."""
    return time.time()


class Experiment(models.Model):
    class Status(models.TextChoices):
        QUEUED = "QUEUED", "Queued"
        CLAIMED = "CLAIMED", "Claimed"
        RUNNING = "RUNNING", "Running"
        SUCCEEDED = "SUCCEEDED", "Succeeded"
        FAILED = "FAILED", "Failed"
        CANCELLED = "CANCELLED", "Cancelled"
        # Its worker vanished (lease expired) or was stopped; the queue re-queues it.
        INTERRUPTED = "INTERRUPTED", "Interrupted"

    ACTIVE = (Status.QUEUED, Status.CLAIMED, Status.RUNNING)
    FINISHED = (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED)

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="experiments")
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="experiments")
    name = models.CharField(max_length=200)
    # Null only for a tracked run (below): it ran elsewhere, on a teacher and data this server does not hold.
    teacher = models.ForeignKey(Checkpoint, null=True, blank=True, on_delete=models.PROTECT, related_name="experiments")
    dataset = models.ForeignKey(Dataset, null=True, blank=True, on_delete=models.PROTECT, related_name="experiments")
    # A run on someone's own machine that streams into the dashboard (`python -m distill_core run --track`,
    # webapp/api/views_tracking.py): never queued nor claimed; its client writes the points and the outcome.
    tracked = models.BooleanField(default=False)
    # distill_core.environment.record() of the run: versions, packages, commit, host, CPU/GPU, teacher checksums.
    environment = models.JSONField(null=True, blank=True)
    student_type = models.CharField(max_length=50)
    # The full distill_core ExperimentConfig as JSON: what the worker runs and the CLI re-runs.
    config = models.JSONField()
    # A QUEUED run is not claimed before this one SUCCEEDS, and ends with it when it fails or is
    # cancelled (e.g. the demo distillation waits for the run that trains the demo teacher).
    depends_on = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="dependents")

    status = models.CharField(max_length=12, choices=Status.choices, default=Status.QUEUED, db_index=True)
    pool = models.CharField(max_length=50, default="default")
    priority = models.IntegerField(default=0)
    # Within a priority, lower goes first; a float so an admin can insert between two rows.
    position = models.FloatField(default=next_position)
    attempts = models.PositiveIntegerField(default=0)  # claims so far
    max_attempts = models.PositiveIntegerField(default=3)
    # The run saves and FAILS once it has run this long (null = no limit).
    max_runtime_seconds = models.PositiveIntegerField(null=True, blank=True)
    # GPUs the run trains on (one torchrun process each, distill_core/parallel.py), and which of its
    # worker's GPUs (physical CUDA indices) the claim gave it; empty on a worker without GPUs.
    gpus = models.PositiveSmallIntegerField(default=1, validators=[MinValueValidator(1), MaxValueValidator(8)])
    gpu_ids = models.JSONField(default=list, blank=True)
    task_id = models.CharField(max_length=64, blank=True)  # Celery task running it, for a last-resort revoke
    cancel_requested = models.BooleanField(default=False)
    cancel_requested_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)

    total_steps = models.PositiveIntegerField(null=True, blank=True)
    current_step = models.PositiveIntegerField(default=0)
    progress = models.FloatField(default=0.0)  # 0..1
    # The run's current phase, as distill_core's last `phase` event: name, label, done, total, unit, rate,
    # eta_seconds, elapsed_seconds, finished (distill_core/progress.py). Null until the run reports one.
    phase = models.JSONField(null=True, blank=True)

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    worker_name = models.CharField(max_length=200, blank=True)

    latest = models.JSONField(default=dict)  # latest value of every metric key
    best = models.JSONField(default=dict)  # best dev metrics so far
    results = models.JSONField(null=True, blank=True)
    log_tail = models.TextField(blank=True)  # the run's last log lines (workers/runlog.py)  # distill_core's "result" event

    # Edited inline on the list; tags are team-wide names so the list can filter by them.
    tags = models.ManyToManyField(Tag, blank=True, related_name="experiments")
    notes = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["status", "pool", "-priority", "position", "created_at"], name="queue_order"),
            # The list filters by team and sorts by one of these columns.
            models.Index(fields=["team", "-created_at"], name="list_by_created"),
            models.Index(fields=["team", "name"], name="list_by_name"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE

    @property
    def is_finished(self) -> bool:
        return self.status in self.FINISHED


class MetricPoint(models.Model):
    """One value of one metric at one step; unique so a retried flush cannot duplicate."""

    # no index of its own: the unique (experiment, key, step) index serves every lookup by experiment,
    # and every metric write maintains one index less (docs/BENCHMARKS.md, metric ingest)
    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="metrics", db_index=False)
    key = models.CharField(max_length=100)  # "train/loss", "train/lr", "dev/accuracy", ...
    step = models.PositiveIntegerField()
    value = models.FloatField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["experiment", "key", "step"], name="unique_metric_point"),
        ]


class MetricRollup(models.Model):
    """Min/max (with their steps) of one series over a block of ROLLUP_BLOCK steps.

    Built lazily by webapp.experiments.downsample for blocks the run has moved past, so a
    view of a million-point run reads ~1/32 of the rows; the points stay the source of truth.
    """

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=100)
    block = models.PositiveIntegerField()  # step // ROLLUP_BLOCK
    count = models.PositiveIntegerField()
    min_step = models.PositiveIntegerField()
    min_value = models.FloatField()
    max_step = models.PositiveIntegerField()
    max_value = models.FloatField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["experiment", "key", "block"], name="unique_metric_rollup"),
        ]


from webapp.experiments.models_vectors import WordVectors  # noqa: E402,F401  (a model of this app, kept apart)
from webapp.experiments.trials import TuneTrial  # noqa: E402,F401  (tune-KD child runs, their own module)
