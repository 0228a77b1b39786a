"""The last resort for a run that ignores its cancel flag: kill its process through Celery."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

log = logging.getLogger(__name__)


def kill_hung_cancels(now=None) -> list[int]:
    """CANCEL runs still held two leases after a cancel request, killing their job process.

    The training loop reads the flag every few seconds, so a run that has not stopped by
    then is hung (a stuck data loader, a deadlocked collective). `revoke(terminate=True)`
    kills the job's child process; the worker itself lives on and takes the next job.
    """
    from webapp.experiments import dependencies
    from webapp.experiments.models import Experiment
    from workers.celery import app

    S = Experiment.Status
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=2 * settings.LEASE_SECONDS)
    hung = list(Experiment.objects.filter(status__in=(S.CLAIMED, S.RUNNING), cancel_requested=True,
                                          cancel_requested_at__lt=cutoff).values_list("pk", "task_id"))
    killed = []
    for pk, task_id in hung:
        if task_id:
            try:
                app.control.revoke(task_id, terminate=True, signal="SIGKILL")
            except Exception:
                log.exception("Could not revoke task %s of experiment %s", task_id, pk)
        if Experiment.objects.filter(pk=pk, status__in=(S.CLAIMED, S.RUNNING)).update(
                status=S.CANCELLED, finished_at=now,
                error="Cancelled; the run did not stop by itself, so its process was killed."):
            dependencies.end_dependents(pk)
            killed.append(pk)
    return killed
