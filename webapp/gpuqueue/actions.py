"""What an admin (or an owner) can do to the queue: one service per action, which the experiment page,
the API and the queue board all call (cancel, requeue, move, set priority, pause, drain a worker).
Each returns (ok, message) and never raises on stale state.

Every write is a conditional UPDATE on the state the action expects, under a row lock, so
an action on a run that a worker just claimed, or that just finished, changes nothing and
says why. Workers are woken through workers.dispatch, the one module work is sent through.
"""

from __future__ import annotations

from django.db import transaction
from django.db.models import Max, Min
from django.utils import timezone

from webapp.experiments import dependencies
from webapp.experiments.models import Experiment
from webapp.gpuqueue.models import Pool, QueueSwitch, Worker
from workers import dispatch

S = Experiment.Status
Result = tuple[bool, str]


def _stale(exp: Experiment, doing: str) -> Result:
    return False, f"“{exp.name}” is {exp.get_status_display().lower()} now, so it cannot be {doing}."


def _locked_queued(pk: int) -> Experiment | None:
    return Experiment.objects.select_for_update().filter(pk=pk, status=S.QUEUED).first()


def request_cancel(exp: Experiment) -> str:
    """Cancel `exp` the one way every caller shares (page, API, queue board); return what happened.

    "cancelled": it was QUEUED and ends at once. "cancel_requested": it is CLAIMED/RUNNING and gets
    the flag (with its time, which workers.revoke reads to kill a run that ignores it) that the worker
    reads within seconds. "already_cancelling": the flag was set before. "": nothing to cancel.
    """
    now = timezone.now()
    if Experiment.objects.filter(pk=exp.pk, status=S.QUEUED).update(status=S.CANCELLED, finished_at=now,
                                                                     error="Cancelled before it started."):
        dependencies.end_dependents(exp.pk)  # runs waiting for it will never start: end them too
        return "cancelled"
    if Experiment.objects.filter(pk=exp.pk, status__in=(S.CLAIMED, S.RUNNING), cancel_requested=False).update(
            cancel_requested=True, cancel_requested_at=now):
        return "cancel_requested"
    exp.refresh_from_db(fields=["status", "cancel_requested"])
    return "already_cancelling" if exp.status in (S.CLAIMED, S.RUNNING) else ""


def cancel(exp: Experiment) -> Result:
    """request_cancel, worded for a page."""
    outcome = request_cancel(exp)
    if outcome == "cancelled":
        return True, f"Cancelled “{exp.name}” before it started."
    if outcome == "cancel_requested":
        return True, f"Cancelling “{exp.name}”: its worker stops it within seconds and keeps what it logged."
    if outcome == "already_cancelling":
        return True, f"“{exp.name}” is already being cancelled."
    return False, nothing_to_cancel(exp)


def nothing_to_cancel(exp: Experiment) -> str:
    return f"Nothing to cancel: “{exp.name}” has already {exp.get_status_display().lower()}."


def move_to_top(exp: Experiment) -> Result:
    """Next to be claimed in its pool: the pool's highest priority, before everything at it."""
    with transaction.atomic():
        row = _locked_queued(exp.pk)
        if row is None:
            exp.refresh_from_db(fields=["status"])
            return _stale(exp, "moved")
        queued = Experiment.objects.filter(status=S.QUEUED, pool=row.pool).exclude(pk=row.pk)
        top = queued.aggregate(p=Max("priority"))["p"]
        priority = max(row.priority, top if top is not None else row.priority)
        first = queued.filter(priority=priority).aggregate(p=Min("position"))["p"]
        position = min(row.position, first - 1.0) if first is not None else row.position
        Experiment.objects.filter(pk=row.pk).update(priority=priority, position=position)
    return True, f"“{exp.name}” is now first in pool {row.pool}."


def move_ahead(exp: Experiment, other: Experiment) -> Result:
    """Put `exp` just before `other` (taking its priority) in `other`'s pool."""
    if exp.pk == other.pk:
        return False, "Pick another experiment to move it ahead of."
    with transaction.atomic():
        row = _locked_queued(exp.pk)
        target = _locked_queued(other.pk)
        if row is None:
            exp.refresh_from_db(fields=["status"])
            return _stale(exp, "moved")
        if target is None:
            other.refresh_from_db(fields=["status"])
            return False, f"“{other.name}” is {other.get_status_display().lower()} now, so nothing can move ahead of it."
        if row.pool != target.pool:
            return False, f"“{exp.name}” is in pool {row.pool} and “{other.name}” in pool {target.pool}."
        before = (Experiment.objects.filter(status=S.QUEUED, pool=target.pool, priority=target.priority,
                                            position__lt=target.position).exclude(pk=row.pk)
                  .aggregate(p=Max("position"))["p"])
        position = (before + target.position) / 2 if before is not None else target.position - 1.0
        if position in (before, target.position):  # floats ran out between the two: renumber the pool
            _renumber(target.pool)
            target.refresh_from_db(fields=["position"])
            position = target.position - 0.5
        Experiment.objects.filter(pk=row.pk).update(priority=target.priority, position=position)
    return True, f"“{exp.name}” now runs just before “{other.name}”."


def _renumber(pool: str) -> None:
    rows = Experiment.objects.filter(status=S.QUEUED, pool=pool).order_by("-priority", "position", "created_at", "id")
    for index, pk in enumerate(rows.values_list("pk", flat=True)):
        Experiment.objects.filter(pk=pk).update(position=float(index))


def set_priority(exp: Experiment, priority: int) -> Result:
    with transaction.atomic():
        if Experiment.objects.filter(pk=exp.pk, status=S.QUEUED).update(priority=priority) != 1:
            exp.refresh_from_db(fields=["status"])
            return _stale(exp, "re-prioritised")
    return True, f"“{exp.name}” now has priority {priority}."


def requeue(exp: Experiment) -> Result:
    """Put a FAILED or CANCELLED run back at the end of its pool with fresh attempts."""
    from webapp.experiments.models import next_position

    if Experiment.objects.filter(pk=exp.pk, status__in=(S.FAILED, S.CANCELLED)).update(
            status=S.QUEUED, attempts=0, error="", cancel_requested=False, cancel_requested_at=None,
            finished_at=None, claimed_at=None, heartbeat_at=None, worker_name="", task_id="",
            position=next_position()) != 1:
        exp.refresh_from_db(fields=["status"])
        return _stale(exp, "re-queued")
    dispatch.wake_workers(exp.pool)
    return True, f"“{exp.name}” is queued again."


def pause_queue(paused: bool) -> Result:
    """Pause or resume the whole queue: running jobs finish, nothing new starts."""
    QueueSwitch.set_paused(paused)
    return True, ("The queue is paused: running jobs finish, nothing new starts." if paused
                  else "The queue is running again.")


def pause_pool(pool: str, paused: bool) -> Result:
    """Pause or resume one pool (a valid pool name; the caller checks it); resuming wakes its workers."""
    Pool.objects.update_or_create(name=pool, defaults={"paused": paused})
    if not paused:
        dispatch.wake_workers(pool)
    return True, f"Pool {pool} is {'paused' if paused else 'running again'}."


WORKER_MODE_TEXT = {"active": "takes new work again", "draining": "finishes its job and takes no new one",
                    "disabled": "takes no new work"}


def set_worker_mode(worker: Worker, mode: str) -> Result:
    """Drain (finish the current job, take no new one), disable or re-activate a worker; active wakes its pools."""
    if mode not in Worker.Mode.values:
        return False, "Choose active, draining or disabled."
    Worker.objects.filter(pk=worker.pk).update(mode=mode)
    if mode == Worker.Mode.ACTIVE:
        for pool in worker.pools:
            dispatch.wake_workers(pool)
    return True, f"{worker.name} {WORKER_MODE_TEXT[mode]}."
