"""Per-user notification settings, their webhooks, and one Delivery row per (target, subject, event).

The Delivery row is what makes a notification go out once: it is unique on (target, subject, event), so
a run that ends twice in the queue's eyes (a retried finish, a recovery) or a task delivered twice by the
broker still sends one message per e-mail address or webhook.
"""

from __future__ import annotations

import secrets

from django.conf import settings
from django.db import models


def new_secret() -> str:
    return secrets.token_hex(32)


class NotificationSettings(models.Model):
    class Scope(models.TextChoices):
        MINE = "mine", "Runs I started"
        TEAM = "team", "Every run of my teams"

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications")
    email = models.BooleanField(default=False)  # to user.email
    scope = models.CharField(max_length=4, choices=Scope.choices, default=Scope.MINE)
    on_succeeded = models.BooleanField(default=True)
    on_failed = models.BooleanField(default=True)
    on_cancelled = models.BooleanField(default=False)
    on_sweep = models.BooleanField(default=True)  # every run of a sweep has ended

    def wants(self, event: str) -> bool:
        return {"succeeded": self.on_succeeded, "failed": self.on_failed, "cancelled": self.on_cancelled,
                "sweep_finished": self.on_sweep}.get(event, False)


class Webhook(models.Model):
    """A URL that gets Slack-compatible JSON, signed with HMAC-SHA256 under `secret`."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="webhooks")
    url = models.URLField(max_length=500)
    secret = models.CharField(max_length=64, default=new_secret)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)


class Delivery(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Failed"  # gave up after the last retry

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    webhook = models.ForeignKey(Webhook, null=True, blank=True, on_delete=models.CASCADE, related_name="deliveries")
    target = models.CharField(max_length=40)  # "email:<user id>" or "hook:<webhook id>"
    subject = models.CharField(max_length=40)  # "experiment:<id>" or "sweep:<tag id>"
    event = models.CharField(max_length=20)  # succeeded, failed, cancelled, sweep_finished
    payload = models.JSONField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["target", "subject", "event"], name="unique_delivery")]
