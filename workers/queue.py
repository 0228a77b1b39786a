"""Claim queued experiments and record how they end. Postgres is the source of truth."""

from __future__ import annotations

import logging
import math
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from webapp.experiments.models import Experiment

log = logging.getLogger(__name__)
S = Experiment.Status


def claim_next(pool: str, worker_name: str) -> int | None:
    """Move the best QUEUED experiment of `pool` to CLAIMED for this worker; return its id.

    Order: priority (high first), then age. `skip_locked` lets racing workers pass over a
    row another worker is claiming; the conditional UPDATE is the final word on SQLite,
    which has no row locks.
    """
    with transaction.atomic():
        candidates = Experiment.objects.filter(status=S.QUEUED, pool=pool, cancel_requested=False)
        if connection.features.has_select_for_update_skip_locked:
            candidates = candidates.select_for_update(skip_locked=True)
        row = candidates.order_by("-priority", "created_at", "id").values("pk").first()
        if row is None:
            return None
        now = timezone.now()
        claimed = Experiment.objects.filter(pk=row["pk"], status=S.QUEUED).update(
            status=S.CLAIMED, claimed_at=now, heartbeat_at=now, worker_name=worker_name)
    if claimed != 1:
        log.info("Experiment %s was claimed by another worker first", row["pk"])
        return None
    return row["pk"]


def mark_running(experiment_id: int) -> bool:
    now = timezone.now()
    return Experiment.objects.filter(pk=experiment_id, status=S.CLAIMED).update(
        status=S.RUNNING, started_at=now, heartbeat_at=now) == 1


def finish(experiment_id: int, status: str, *, error: str = "", results: dict[str, Any] | None = None) -> None:
    """Record the end of a run; only an active run can finish."""
    fields: dict[str, Any] = {"status": status, "finished_at": timezone.now(), "error": error[:20000]}
    if results is not None:
        fields["results"] = json_safe(results)
    if status == S.SUCCEEDED:
        fields["progress"] = 1.0
    Experiment.objects.filter(pk=experiment_id, status__in=Experiment.ACTIVE).update(**fields)


def json_safe(value: Any) -> Any:
    """Replace NaN/inf (which JSON columns refuse) with None, recursively."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def fail_lost_runs(now=None) -> list[int]:
    """FAIL runs whose worker stopped renewing its lease (heartbeat older than the lease)."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.LEASE_SECONDS)
    lost = list(Experiment.objects.filter(status__in=[S.CLAIMED, S.RUNNING], heartbeat_at__lt=cutoff)
                .values_list("pk", flat=True))
    for pk in lost:
        Experiment.objects.filter(pk=pk, status__in=[S.CLAIMED, S.RUNNING], heartbeat_at__lt=cutoff).update(
            status=S.FAILED, finished_at=now,
            error=f"The worker stopped sending heartbeats for over {settings.LEASE_SECONDS} s "
                  "(it was killed or lost its connection).")
    return lost


def pools_with_work() -> list[str]:
    return sorted(set(Experiment.objects.filter(status=S.QUEUED, cancel_requested=False)
                      .values_list("pool", flat=True)))
