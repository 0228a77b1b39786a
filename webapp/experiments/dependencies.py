"""Runs that wait for another run: `Experiment.depends_on` and checkpoints trained by a run.

A QUEUED experiment whose dependency has not SUCCEEDED is not claimable (`claimable()` is the one
condition the claim query and the wake-ups share). When the dependency SUCCEEDS, the checkpoints
it trained get their real `info` and the dependents' pools are woken; when it FAILS or is
CANCELLED, its queued dependents end the same way with a reason naming it, and so on down the chain.
"""

from __future__ import annotations

import logging

from django.db.models import Q
from django.utils import timezone

from webapp.experiments.models import Experiment
from webapp.registry.models import Checkpoint

log = logging.getLogger(__name__)
S = Experiment.Status
# How a dependency's unsuccessful end is passed on to the runs that wait for it.
PASSED_ON = {S.FAILED: "failed", S.CANCELLED: "was cancelled"}


def claimable() -> Q:
    """Rows whose dependency (if any) has succeeded."""
    return Q(depends_on__isnull=True) | Q(depends_on__status=S.SUCCEEDED)


def label(experiment: Experiment) -> str:
    """'#1 (training the demo teacher)': how pages and reasons name a run."""
    return f"#{experiment.pk} ({experiment.name})"


def blocking(checkpoint: Checkpoint) -> Experiment | None:
    """The run a new experiment with this teacher must wait for, or None when the checkpoint is ready."""
    if checkpoint.trained_by_id is None:
        return None
    run = checkpoint.trained_by
    return None if run.status == S.SUCCEEDED else run


def waiting_on(experiment: Experiment) -> Experiment | None:
    """The dependency a QUEUED experiment still waits for (None once it succeeded, or without one)."""
    if experiment.status != S.QUEUED or experiment.depends_on_id is None:
        return None
    dependency = experiment.depends_on
    return None if dependency.status == S.SUCCEEDED else dependency


def end_dependents(experiment_id: int) -> list[int]:
    """End the QUEUED dependents of a FAILED or CANCELLED run the same way; return their ids."""
    dependency = Experiment.objects.filter(pk=experiment_id).only("pk", "name", "status").first()
    if dependency is None or dependency.status not in PASSED_ON:
        return []
    reason = f"It waited for {label(dependency)}, which {PASSED_ON[dependency.status]}, so it did not run."
    ended = []
    for pk in Experiment.objects.filter(depends_on=dependency, status=S.QUEUED).values_list("pk", flat=True):
        # Conditional: a worker cannot have claimed it (the dependency never succeeded), but an admin may act.
        if Experiment.objects.filter(pk=pk, status=S.QUEUED).update(
                status=dependency.status, error=reason, finished_at=timezone.now()):
            ended.append(pk)
            ended += end_dependents(pk)  # the runs waiting for this one
    return ended


def end_orphans() -> list[int]:
    """End every QUEUED run whose dependency already failed or was cancelled (the beat's sweep).

    Cancelling a queued run from a page, the API or the admin ends its dependents at once; this
    catches any other path that ends a run without passing it on.
    """
    ended: list[int] = []
    stuck = (Experiment.objects.filter(status=S.QUEUED, depends_on__status__in=tuple(PASSED_ON))
             .values_list("depends_on_id", flat=True).distinct())
    for dependency_id in list(stuck):
        ended += end_dependents(dependency_id)
    return ended


def after_success(experiment_id: int) -> list[str]:
    """Refresh the checkpoints this run trained; return the pools of the QUEUED runs it unblocked."""
    for checkpoint in Checkpoint.objects.filter(trained_by_id=experiment_id):
        refresh_info(checkpoint)
    return sorted(set(Experiment.objects.filter(depends_on_id=experiment_id, status=S.QUEUED,
                                                cancel_requested=False).values_list("pool", flat=True)))


def refresh_info(checkpoint: Checkpoint) -> None:
    """Re-read the checkpoint's architecture facts from disk now that its run has written it."""
    from distill_core.teachers import inspect_checkpoint

    try:
        checkpoint.info = inspect_checkpoint(checkpoint.path)
    except Exception:  # the run said it succeeded; a missing file shows when a run opens it
        log.exception("Could not inspect checkpoint %s after its training run", checkpoint.path)
        return
    checkpoint.save(update_fields=["info"])
