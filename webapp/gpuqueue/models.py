"""Workers (one per GPU), pools and the queue's switches. Experiments themselves live in experiments."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.utils import timezone

# What a pool may be called, wherever one is typed (the experiment form, a team's allowed pools,
# the board's pause switch): it becomes part of a broker queue name (workers.dispatch.pool_queue).
POOL_NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]*\Z"
POOL_NAME_MAX = 50
POOL_NAME_RULE = "A pool name is lower-case letters, digits, - and _."
validate_pool_name = RegexValidator(rf"^[a-z0-9][a-z0-9_-]{{0,{POOL_NAME_MAX - 1}}}\Z",
                                    f"{POOL_NAME_RULE} At most {POOL_NAME_MAX} characters.")


class Worker(models.Model):
    """One Celery worker process and the device it owns (one worker per GPU, or "cpu")."""

    class Mode(models.TextChoices):
        ACTIVE = "active", "Active"
        DRAINING = "draining", "Draining"  # finishes its job, takes no new one, then becomes disabled
        DISABLED = "disabled", "Disabled"  # takes no new job

    name = models.CharField(max_length=200, unique=True)  # Celery node name, e.g. gpu0@host
    host = models.CharField(max_length=200)
    pid = models.PositiveIntegerField(null=True, blank=True)
    pools = models.JSONField(default=list)
    mode = models.CharField(max_length=10, choices=Mode.choices, default=Mode.ACTIVE)

    device = models.CharField(max_length=10, default="cpu")  # "cuda" or "cpu"
    cuda_index = models.PositiveIntegerField(null=True, blank=True)
    cuda_indices = models.JSONField(default=list, blank=True)  # every GPU it owns (CUDA_VISIBLE_DEVICES)
    device_name = models.CharField(max_length=200, blank=True)
    memory_total_mb = models.PositiveIntegerField(null=True, blank=True)
    memory_used_mb = models.PositiveIntegerField(null=True, blank=True)
    utilization = models.FloatField(null=True, blank=True)  # percent, from NVML when installed

    started_at = models.DateTimeField(default=timezone.now)
    heartbeat_at = models.DateTimeField(default=timezone.now)
    stopped_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["host", "cuda_index", "name"]

    def __str__(self) -> str:
        return self.name

    @property
    def is_online(self) -> bool:
        cutoff = timezone.now() - timedelta(seconds=settings.LEASE_SECONDS)
        return self.stopped_at is None and self.heartbeat_at >= cutoff

    def state(self, busy: bool) -> str:
        """offline, disabled, draining, busy or idle."""
        if not self.is_online:
            return "offline"
        if self.mode == self.Mode.DISABLED:
            return "disabled"
        if self.mode == self.Mode.DRAINING:
            return "draining"
        return "busy" if busy else "idle"



class Pool(models.Model):
    """A named route for work (e.g. "a100"); only needed to pause one."""

    name = models.CharField(max_length=POOL_NAME_MAX, unique=True)
    paused = models.BooleanField(default=False)

    def __str__(self) -> str:
        return self.name


class QueueSwitch(models.Model):
    """The whole queue's pause switch: a single row (pk=1)."""

    paused = models.BooleanField(default=False)
    changed_at = models.DateTimeField(auto_now=True)

    @classmethod
    def is_paused(cls) -> bool:
        return cls.objects.filter(pk=1, paused=True).exists()

    @classmethod
    def set_paused(cls, paused: bool) -> None:
        cls.objects.update_or_create(pk=1, defaults={"paused": paused})
