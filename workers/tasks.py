"""Celery tasks. Thin: claim a row, hand its config to distill_core, write back the outcome."""

from __future__ import annotations

import logging
import os
import socket
import traceback

from celery import shared_task

from workers import queue
from workers.dispatch import pool_queue

log = logging.getLogger(__name__)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@shared_task(name="workers.tasks.run_next")
def run_next(pool: str = "default") -> int | None:
    """Claim the best queued experiment of `pool` and run it; a no-op when there is none."""
    experiment_id = queue.claim_next(pool, worker_name())
    if experiment_id is None:
        return None
    try:
        execute(experiment_id)
    finally:
        # More work may be waiting; the next child process (max-tasks-per-child=1) takes it.
        if pool in queue.pools_with_work():
            run_next.apply_async(args=[pool], queue=pool_queue(pool))
    return experiment_id


def execute(experiment_id: int) -> None:
    """Run a CLAIMED experiment to its end state."""
    from distill_core.config import ExperimentConfig
    from distill_core.distiller import run
    from distill_core.errors import DistillError, RunCancelled
    from webapp.experiments.models import Experiment
    from workers.sink import DatabaseSink

    S = Experiment.Status
    experiment = Experiment.objects.get(pk=experiment_id)
    if experiment.cancel_requested:
        queue.finish(experiment_id, S.CANCELLED, error="Cancelled before it started.")
        return
    if not queue.mark_running(experiment_id):
        log.warning("Experiment %s left CLAIMED before it could start", experiment_id)
        return
    sink = DatabaseSink(experiment_id)
    try:
        config = ExperimentConfig.from_dict(experiment.config)
        results = run(config, sink=sink, should_cancel=sink.should_cancel, cache_dir=teacher_cache_dir())
    except RunCancelled:
        sink.flush()
        queue.finish(experiment_id, S.CANCELLED, error="Cancelled by a user while running.")
    except DistillError as exc:
        log.info("Experiment %s failed: %s", experiment_id, exc)
        _flush_quietly(sink)
        queue.finish(experiment_id, S.FAILED, error=str(exc))
    except Exception as exc:  # a bug or an environment problem: keep the traceback for the page
        log.exception("Experiment %s crashed", experiment_id)
        _flush_quietly(sink)
        tb = "".join(traceback.format_exception(exc)[-8:])
        queue.finish(experiment_id, S.FAILED, error=f"{type(exc).__name__}: {exc}\n\n{tb}")
    else:
        sink.flush()
        queue.finish(experiment_id, S.SUCCEEDED, results=results)


def teacher_cache_dir():
    """Teacher outputs are shared by every run on the artifact root (one cache per cluster)."""
    from django.conf import settings

    return settings.ARTIFACT_ROOT / "teacher-cache"


def _flush_quietly(sink) -> None:
    try:
        sink.flush()
    except Exception:
        log.exception("Could not flush the last metric points")


@shared_task(name="workers.tasks.housekeeping")
def housekeeping() -> dict:
    """Beat task: fail runs whose worker vanished; wake workers of pools with queued work."""
    lost = queue.fail_lost_runs()
    pools = queue.pools_with_work()
    for pool in pools:
        run_next.apply_async(args=[pool], queue=pool_queue(pool))
    return {"lost": lost, "woken": pools}
