"""Who hears about a run's end or a sweep's end, and the Delivery rows (one per target and event) that say so.

`run_ended` is called by the queue when a run reaches SUCCEEDED, FAILED or CANCELLED; it writes the
rows after the transaction commits and hands each new row to the delivery task. A row that exists
already is not sent again, which makes a repeated call harmless.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q

from webapp.experiments.models import Experiment, Tag
from webapp.notifications.models import Delivery, NotificationSettings

log = logging.getLogger(__name__)

EVENTS = {"SUCCEEDED": "succeeded", "FAILED": "failed", "CANCELLED": "cancelled"}
ACTIVE = ("QUEUED", "CLAIMED", "RUNNING", "INTERRUPTED")


def _url(path: str) -> str:
    return getattr(settings, "DISTILLERY_PUBLIC_URL", "").rstrip("/") + path


def run_payload(experiment: Experiment, event: str) -> dict[str, Any]:
    path = f"/experiments/{experiment.pk}/"
    title = f"Experiment “{experiment.name}” (#{experiment.pk}) {event}"
    text = title + (f": {experiment.error[:300]}" if event != "succeeded" and experiment.error else ".")
    return {"text": text, "title": title, "event": f"experiment.{event}", "url": _url(path),
            "experiment": {"id": experiment.pk, "name": experiment.name, "status": experiment.status,
                           "team": experiment.team.name, "path": path}}


def sweep_payload(tag: Tag, runs: list[Experiment]) -> dict[str, Any]:
    counts: dict[str, int] = {}
    for run in runs:
        counts[run.status.lower()] = counts.get(run.status.lower(), 0) + 1
    summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    path = f"/?tag={tag.name}"
    title = f"Sweep “{tag.name}” finished"
    return {"text": f"{title}: {len(runs)} runs ({summary}).", "title": title, "event": "sweep.finished",
            "url": _url(path), "sweep": {"tag": tag.name, "team": tag.team.name, "runs": len(runs), "counts": counts,
                                         "path": path}}


def recipients(experiment: Experiment, event: str) -> list[NotificationSettings]:
    """Members of the run's team who asked for `event` about their own runs (the owner) or the team's."""
    wanted = (NotificationSettings.objects.select_related("user")
              .filter(user__memberships__team=experiment.team_id, user__is_active=True)
              .filter(Q(scope=NotificationSettings.Scope.TEAM) | Q(user=experiment.owner_id)).distinct())
    return [s for s in wanted if s.wants(event)]


def _targets(choice: NotificationSettings) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    if choice.email and choice.user.email:
        out.append((f"email:{choice.user.pk}", None))
    for hook in choice.user.webhooks.filter(active=True):
        out.append((f"hook:{hook.pk}", hook))
    return out


def _record(choices: list[NotificationSettings], subject: str, event: str, payload: dict[str, Any]) -> list[int]:
    """New Delivery rows for every target; a target already told about (subject, event) is skipped."""
    created = []
    for choice in choices:
        for target, hook in _targets(choice):
            try:
                with transaction.atomic():
                    row = Delivery.objects.create(user=choice.user, webhook=hook, target=target, subject=subject,
                                                  event=event, payload=payload)
            except IntegrityError:  # told already: once per event
                continue
            created.append(row.pk)
    return created


def enqueue(delivery_id: int) -> None:
    """Hand one Delivery to the Celery task (workers/notify_tasks.py, on the housekeeping queue); tests replace this."""
    from workers.dispatch import send_housekeeping

    send_housekeeping("workers.notify_tasks.deliver", delivery_id)


def _notify(experiment_id: int, status: str) -> None:
    event = EVENTS.get(status)
    if event is None:
        return
    experiment = Experiment.objects.select_related("team").filter(pk=experiment_id).first()
    if experiment is None:
        return
    ids = _record(recipients(experiment, event), f"experiment:{experiment.pk}", event, run_payload(experiment, event))
    for tag in experiment.tags.filter(name__startswith="sweep-"):
        runs = list(tag.experiments.only("pk", "status"))
        if runs and not any(r.status in ACTIVE for r in runs):
            choices = [c for c in _sweep_recipients(experiment, runs) if c.wants("sweep_finished")]
            ids += _record(choices, f"sweep:{tag.pk}", "sweep_finished", sweep_payload(tag, runs))
    for delivery_id in ids:
        try:
            enqueue(delivery_id)
        except Exception:  # the broker is down: the row stays PENDING (resend_pending picks it up)
            log.warning("Could not queue notification %s", delivery_id, exc_info=True)


def _sweep_recipients(experiment: Experiment, runs: list[Experiment]) -> list[NotificationSettings]:
    owners = Experiment.objects.filter(pk__in=[r.pk for r in runs]).values_list("owner_id", flat=True)
    return list(NotificationSettings.objects.select_related("user")
                .filter(user__memberships__team=experiment.team_id, user__is_active=True)
                .filter(Q(scope=NotificationSettings.Scope.TEAM) | Q(user__in=owners)).distinct())


def run_ended(experiment_id: int, status: str) -> None:
    """Called by the queue at a run's end; never raises into it (a notification is not worth a run)."""
    def later() -> None:
        try:
            _notify(experiment_id, status)
        except Exception:
            log.exception("Notifications for experiment %s failed", experiment_id)

    transaction.on_commit(later)
