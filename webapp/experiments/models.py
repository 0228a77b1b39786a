"""Experiments and their tags (teachers and datasets are in webapp.registry, metric points in webapp.metrics)."""

from __future__ import annotations

import time

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from webapp.accounts.models import Team
from webapp.registry.models import Checkpoint, Dataset


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


from webapp.experiments.trials import TuneTrial  # noqa: E402,F401  (tune-KD child runs, their own module)
