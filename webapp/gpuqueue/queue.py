"""Claim queued experiments, keep their leases and record how they end. Postgres is the truth.

States: QUEUED -> CLAIMED -> RUNNING -> SUCCEEDED | FAILED | CANCELLED, and CLAIMED/RUNNING
-> INTERRUPTED -> QUEUED when a worker vanishes or is stopped (up to `max_attempts` claims).
Every write is a conditional UPDATE on the state (and the claim token) it expects, so a
late worker, an admin and the beat task can race without corrupting a row.
"""

from __future__ import annotations

import logging
import math
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import OperationalError, connection, transaction
from django.db.models import Count, F, Q
from django.utils import timezone

from webapp.accounts.models import Team
from webapp.experiments import dependencies
from webapp.experiments.models import Experiment
from webapp.gpuqueue import gpu_slots
from webapp.gpuqueue.models import Pool, QueueSwitch, Worker

log = logging.getLogger(__name__)
S = Experiment.Status
QUEUE_ORDER = ("-priority", "position", "created_at", "id")
HELD = (S.CLAIMED, S.RUNNING)


def ahead_of(exp) -> Q:
    """Rows that QUEUE_ORDER puts before `exp` (a lexicographic comparison built from QUEUE_ORDER itself)."""
    ahead, equal = Q(pk__in=[]), Q()
    for spec in QUEUE_ORDER:
        field = spec.lstrip("-")
        value = exp.pk if field == "id" else getattr(exp, field)
        ahead |= equal & Q(**{f"{field}__{'gt' if spec.startswith('-') else 'lt'}": value})
        equal &= Q(**{field: value})
    return ahead


def place_in_queue(exp) -> int:
    """1-based place of a QUEUED experiment in its pool's queue: one COUNT on the queue_order index."""
    return Experiment.objects.filter(ahead_of(exp), status=S.QUEUED, pool=exp.pool).count() + 1


def teams_at_limit() -> list[int]:
    """Teams whose concurrently running experiments reached their `max_running` (0 = no limit)."""
    return list(Team.objects.filter(max_running__gt=0)
                .annotate(held=Count("experiments", filter=Q(experiments__status__in=HELD)))
                .filter(held__gte=F("max_running")).values_list("pk", flat=True))


def accepts_work(pool: str, worker_name: str) -> bool:
    """False while the queue or `pool` is paused, or the worker is draining or disabled."""
    if QueueSwitch.is_paused() or Pool.objects.filter(name=pool, paused=True).exists():
        return False
    return not Worker.objects.filter(name=worker_name).exclude(mode=Worker.Mode.ACTIVE).exists()


def claim_next(pool: str, worker_name: str, token: str = "", gpus: list[int] | None = None) -> int | None:
    """Move the best QUEUED experiment of `pool` to CLAIMED for this worker; return its id.

    Order: priority (high first), position, age. `skip_locked` lets racing workers pass over
    a row another worker is claiming; the conditional UPDATE is the final word on SQLite,
    which has no row locks. A team at its running limit is skipped; its row lock makes the
    limit hold when two workers claim for the same team at once. A run whose dependency has
    not succeeded is not a candidate (nor claimable by the UPDATE, should an admin requeue it).
    `gpus`, the physical GPUs this worker owns (inventory.visible_cuda_indices), makes the claim book
    the run's `gpus` of them that no held run of this worker holds (gpu_slots); [] or None: no booking.
    """
    if not accepts_work(pool, worker_name):
        return None
    full = teams_at_limit()
    for _ in range(20):  # each pass excludes one more team that turned out to be full
        with transaction.atomic():
            candidates = (Experiment.objects.filter(dependencies.claimable(), status=S.QUEUED, pool=pool,
                                                    cancel_requested=False)
                          .exclude(team__in=full))
            free = gpu_slots.free_gpus(worker_name, gpus) if gpus else None
            if free is not None:
                candidates = candidates.filter(gpus__lte=len(free))
            if connection.features.has_select_for_update_skip_locked:
                candidates = candidates.select_for_update(skip_locked=True, of=("self",))
            row = candidates.order_by(*QUEUE_ORDER).values("pk", "team_id", "team__max_running", "gpus").first()
            if row is None:
                return None
            if row["team__max_running"]:  # lock the team so two workers cannot both take its last slot
                team = Team.objects.select_for_update().get(pk=row["team_id"])
                if team.max_running and team.experiments.filter(status__in=HELD, tracked=False).count() >= team.max_running:
                    full.append(team.pk)
                    continue
            now = timezone.now()
            claimed = Experiment.objects.filter(dependencies.claimable(), pk=row["pk"], status=S.QUEUED,
                                                cancel_requested=False).update(
                status=S.CLAIMED, claimed_at=now, heartbeat_at=now, worker_name=worker_name, task_id=token,
                attempts=F("attempts") + 1, gpu_ids=free[:row["gpus"]] if free is not None else [])
        if claimed != 1:
            log.info("Experiment %s was claimed by another worker first", row["pk"])
            return None
        return row["pk"]
    return None


def gpus_of(experiment_id: int) -> list[int]:
    """The GPUs the run's last claim booked ([] on a worker without GPUs)."""
    return Experiment.objects.filter(pk=experiment_id).values_list("gpu_ids", flat=True).first() or []


class ClaimLost(Exception):
    """This process's claim on a run was given up on and another attempt owns the run: it must stop writing."""


def _mine(experiment_id: int, token: str | None):
    rows = Experiment.objects.filter(pk=experiment_id)
    return rows if token is None else rows.filter(task_id=token)


def held_by(experiment_id: int, token: str | None):
    """Select the run's row only while the claim `token` holds it (None: while anyone holds it).

    An UPDATE through it that changes no row means the claim was lost.
    """
    return _mine(experiment_id, token).filter(status__in=HELD)


def mark_running(experiment_id: int, token: str | None = None) -> bool:
    now = timezone.now()
    return _mine(experiment_id, token).filter(status=S.CLAIMED, cancel_requested=False).update(
        status=S.RUNNING, started_at=now, heartbeat_at=now) == 1


def renew_lease(experiment_id: int, token: str | None = None) -> bool | None:
    """Extend this claim's lease; return the cancel flag, or None when the claim was lost."""
    rows = held_by(experiment_id, token)
    if rows.update(heartbeat_at=timezone.now()) != 1:
        return None
    return rows.filter(cancel_requested=True).exists()


def finish(experiment_id: int, status: str, *, error: str = "", results: dict[str, Any] | None = None,
           token: str | None = None) -> bool:
    """Record the end of a run; only a held run (of this claim, given a token) can finish."""
    fields: dict[str, Any] = {"status": status, "finished_at": timezone.now(), "error": error[:20000]}
    if results is not None:
        fields["results"] = json_safe(results)
    if status == S.SUCCEEDED:
        fields["progress"] = 1.0
    active = (*HELD, S.QUEUED) if token is None else HELD
    if _mine(experiment_id, token).filter(status__in=active).update(**fields) != 1:
        return False
    pass_on(experiment_id, status)
    return True


def pass_on(experiment_id: int, status: str) -> None:
    """Tell the runs that wait for this one how it ended: wake them on success, end them otherwise."""
    from webapp.notifications.events import run_ended
    from workers.dispatch import wake_workers

    run_ended(experiment_id, status)  # after commit; never raises
    if status == S.SUCCEEDED:
        for pool in dependencies.after_success(experiment_id):
            wake_workers(pool)
    else:
        dependencies.end_dependents(experiment_id)


def interrupt(experiment_id: int, reason: str, token: str | None = None, now=None) -> str | None:
    """Take a held run off its worker: QUEUED again, or FAILED past `max_attempts`, or CANCELLED.

    Returns the new status, or None when the run was no longer held (by this claim).
    """
    now = now or timezone.now()
    with transaction.atomic():
        rows = _mine(experiment_id, token).filter(status__in=HELD)
        if rows.update(status=S.INTERRUPTED, error=reason[:20000]) != 1:
            return None
        exp = Experiment.objects.get(pk=experiment_id)
        if exp.cancel_requested:
            status, error = S.CANCELLED, f"Cancelled; {reason[0].lower()}{reason[1:]}"
        elif exp.attempts >= exp.max_attempts:
            status, error = S.FAILED, f"Gave up after {exp.attempts} of {exp.max_attempts} attempts. {reason}"
        else:
            status, error = S.QUEUED, f"Re-queued after attempt {exp.attempts} of {exp.max_attempts}. {reason}"
        fields: dict[str, Any] = {"status": status, "error": error, "task_id": ""}
        if status == S.QUEUED:
            fields.update(worker_name="", claimed_at=None, heartbeat_at=None, gpu_ids=[])
        else:
            fields["finished_at"] = now
        Experiment.objects.filter(pk=experiment_id, status=S.INTERRUPTED).update(**fields)
    if status != S.QUEUED:
        pass_on(experiment_id, status)
    if status == S.QUEUED:
        from workers.dispatch import wake_workers

        wake_workers(exp.pool)
    return status


# How long recovery waits for a run's row lock: long enough for a killed process's session to end
# (milliseconds), short enough that a frozen one does not stall housekeeping.
RECOVERY_LOCK_WAIT_SECONDS = 2


def _bound_lock_wait(seconds: float) -> None:
    """Make this transaction's lock waits fail after `seconds` (Postgres; SQLite has its busy timeout)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL lock_timeout = %s", [f"{int(seconds * 1000)}ms"])


def recover_lost_runs(now=None) -> dict[str, list[int]]:
    """Interrupt runs whose worker stopped renewing its lease; requeue or fail them."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.LEASE_SECONDS)
    # A tracked run has no worker to lose: its own client ends it (webapp/api/views_tracking.py).
    lost = list(Experiment.objects.filter(status__in=HELD, heartbeat_at__lt=cutoff, tracked=False)
                .values_list("pk", flat=True))
    outcome: dict[str, list[int]] = {}
    reason = (f"The worker stopped sending heartbeats for over {settings.LEASE_SECONDS} s "
              "(it was killed or lost its connection).")
    for pk in lost:
        try:
            with transaction.atomic():
                _bound_lock_wait(RECOVERY_LOCK_WAIT_SECONDS)
                # Re-check the lease under the row lock: the worker may have renewed it meanwhile.
                if not Experiment.objects.select_for_update().filter(pk=pk, status__in=HELD,
                                                                      heartbeat_at__lt=cutoff).exists():
                    continue
                status = interrupt(pk, reason, now=now)
        except OperationalError:
            # Still locked after the wait: a writer frozen inside a transaction (SIGSTOP). Leave it to the
            # next round instead of stalling housekeeping for every other run; Postgres ends that writer's
            # session after a lease (lease.bound_idle_transactions), which frees the row.
            log.warning("Experiment %s is locked by a stalled writer; recovering it on a later round", pk)
            continue
        if status:
            outcome.setdefault(status, []).append(pk)
    return outcome


def hung_cancels(now=None) -> list[tuple[int, str]]:
    """(id, task id) of runs still held two leases after a cancel request: the loop reads the flag every
    few seconds, so such a run is hung (a stuck data loader, a deadlocked collective)."""
    cutoff = (now or timezone.now()) - timedelta(seconds=2 * settings.LEASE_SECONDS)
    return list(Experiment.objects.filter(status__in=HELD, cancel_requested=True, cancel_requested_at__lt=cutoff)
                .values_list("pk", "task_id"))


def end_killed_cancel(experiment_id: int, now=None) -> bool:
    """CANCEL a hung run whose process was killed; False when it was no longer held."""
    if not Experiment.objects.filter(pk=experiment_id, status__in=HELD).update(
            status=S.CANCELLED, finished_at=now or timezone.now(),
            error="Cancelled; the run did not stop by itself, so its process was killed."):
        return False
    dependencies.end_dependents(experiment_id)
    return True


def finish_draining_workers() -> None:
    """A draining worker with no held run becomes disabled."""
    busy = Experiment.objects.filter(status__in=HELD).values("worker_name")
    Worker.objects.filter(mode=Worker.Mode.DRAINING).exclude(name__in=busy).update(mode=Worker.Mode.DISABLED)


def json_safe(value: Any) -> Any:
    """Replace NaN/inf (which JSON columns refuse) with None and drop NUL characters, recursively."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, str):
        return value.replace("\x00", "")  # PostgreSQL's JSON refuses NUL
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def pools_with_work() -> list[str]:
    """Pools with claimable work (none while the whole queue is paused)."""
    if QueueSwitch.is_paused():
        return []
    paused = Pool.objects.filter(paused=True).values("name")
    return sorted(set(Experiment.objects.filter(dependencies.claimable(), status=S.QUEUED, cancel_requested=False)
                      .exclude(pool__in=paused).values_list("pool", flat=True)))
