"""Celery tasks. Thin: claim a row, hand its config to distill_core, write back the outcome."""

from __future__ import annotations

import logging
import os
import socket
import traceback

from celery import shared_task

from webapp.gpuqueue import queue
from workers.dispatch import pool_queue

log = logging.getLogger(__name__)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@shared_task(bind=True, name="workers.tasks.run_next")
def run_next(self, pool: str = "default") -> int | None:
    """Claim the best queued experiment of `pool` and run it; a no-op when there is none."""
    from workers.inventory import visible_cuda_indices
    from workers.lease import bound_idle_transactions

    name = self.request.hostname or worker_name()
    token = self.request.id or ""
    bound_idle_transactions()  # this job process may be frozen mid-transaction: let Postgres end it
    experiment_id = queue.claim_next(pool, name, token, gpus=visible_cuda_indices())
    if experiment_id is None:
        return None
    try:
        execute(experiment_id, token)
    finally:
        # More work may be waiting; the next child process (max-tasks-per-child=1) takes it. A run that
        # held several GPUs frees a job slot per GPU: wake that many (a 2-GPU run may make room for two).
        if pool in queue.pools_with_work():
            for _ in range(max(1, len(queue.gpus_of(experiment_id)))):
                run_next.apply_async(args=[pool], queue=pool_queue(pool))
    return experiment_id


def execute(experiment_id: int, token: str | None = None) -> None:
    """Run a CLAIMED experiment to its end state."""
    from distill_core.errors import DistillError, RunCancelled
    from webapp.experiments.models import Experiment
    from workers import inventory
    from workers.lease import LeaseKeeper, ShutdownSignal, StopFlags, require_autocommit
    from workers.runlog import RunLog
    from workers.sink import DatabaseSink

    S = Experiment.Status
    require_autocommit()  # before the first write: the lease thread must see the claim
    experiment = Experiment.objects.get(pk=experiment_id)
    if not queue.mark_running(experiment_id, token):
        experiment.refresh_from_db(fields=["cancel_requested", "status"])
        if experiment.cancel_requested:
            queue.finish(experiment_id, S.CANCELLED, error="Cancelled before it started.", token=token)
        else:
            log.warning("Experiment %s left CLAIMED before it could start", experiment_id)
        return
    sink = DatabaseSink(experiment_id, token=token)
    run_log = sink.run_log = RunLog(path=full_log_path(experiment_id))
    run_log.__enter__()
    flags = StopFlags(sink, experiment.max_runtime_seconds)
    keeper = LeaseKeeper(experiment_id, token or "", flags)
    keeper.start()
    inventory.note_job_device(experiment.worker_name)
    sampler = _start_sampler(experiment_id, sink)
    log.info("Experiment %s: attempt %s on %s", experiment_id, experiment.attempts, experiment.worker_name or "?")
    try:
        with ShutdownSignal(flags):
            run = distiller(experiment)
            results = run(prepared_config(experiment), sink=sink, should_cancel=flags.should_cancel,
                          cache_dir=teacher_cache_dir())
        sink.flush()
    except queue.ClaimLost as exc:
        # Given up on (stopped past its lease) and run by another worker since: write nothing more, end the job.
        log.warning("%s", exc)
    except RunCancelled as exc:
        _flush_quietly(sink)
        if flags.shutdown or flags.lost:
            queue.interrupt(experiment_id, "The worker was stopped while running it.", token=token)
        elif flags.timed_out and not (flags.cancelled or sink.cancel_requested):
            queue.finish(experiment_id, S.FAILED, token=token,
                         error=f"Stopped after reaching its maximum runtime of {_duration(flags.max_runtime_seconds)} "
                               f"({exc}); the metrics logged so far are kept.")
        else:
            queue.finish(experiment_id, S.CANCELLED, error="Cancelled by a user while running.", token=token)
    except DistillError as exc:
        log.info("Experiment %s failed: %s", experiment_id, exc)
        _flush_quietly(sink)
        queue.finish(experiment_id, S.FAILED, error=str(exc), token=token)
    except Exception as exc:  # a bug or an environment problem: keep the traceback for the page
        log.exception("Experiment %s crashed", experiment_id)
        _flush_quietly(sink)
        tb = "".join(traceback.format_exception(exc)[-8:])
        # Maybe the machine's fault (out of memory, a driver): retry up to max_attempts.
        queue.interrupt(experiment_id, f"The run crashed: {type(exc).__name__}: {exc}\n\n{tb}", token=token)
    else:
        queue.finish(experiment_id, S.SUCCEEDED, results=results, token=token)
    finally:
        if sampler is not None:
            sampler.stop()
        keeper.stop()
        run_log.__exit__(None, None, None)


def _start_sampler(experiment_id: int, sink):
    """The run's system-metrics sampler (workers/sysmetrics.py); a run without one still runs."""
    from workers import sysmetrics

    try:
        return sysmetrics.start_for(experiment_id, sink)
    except Exception:
        log.warning("System metrics are off for experiment %s", experiment_id, exc_info=True)
        return None


def distiller(experiment=None):
    """distill_core's run (on experiment.gpus torchrun processes when more than one: workers/ddp_run.py),
    or the cheap stand-in the queue tests and benchmarks use."""
    if os.environ.get("DISTILLERY_FAKE_DISTILLER") == "1":
        from workers.fake_distiller import run
    elif experiment is not None and experiment.gpus > 1:
        from workers.ddp_run import runner

        return runner(experiment)
    else:
        from distill_core.distiller import run
    return run


def config_for(experiment):
    if os.environ.get("DISTILLERY_FAKE_DISTILLER") == "1":
        return experiment.config
    from distill_core.config import ExperimentConfig

    return ExperimentConfig.from_dict(experiment.config)


def prepared_config(experiment):
    """The run's config with Hub teachers resolved into the shared cache (inside the lease: it may download)."""
    config = config_for(experiment)
    if os.environ.get("DISTILLERY_FAKE_DISTILLER") == "1":
        return config
    from workers import hub_teachers

    return hub_teachers.localise(experiment, config)


def _duration(seconds: int | None) -> str:
    seconds = int(seconds or 0)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h {minutes:02d}m" if hours else (f"{minutes}m {secs:02d}s" if minutes else f"{secs} s")


def full_log_path(experiment_id: int):
    """The run's full log, beside its output (webapp/experiments/run_files.py lists and serves it)."""
    from django.conf import settings

    return settings.ARTIFACT_ROOT / "experiments" / str(experiment_id) / "run.log"


def teacher_cache_dir():
    """Teacher outputs are shared by every run on the artifact root (one cache per cluster)."""
    from django.conf import settings

    return settings.ARTIFACT_ROOT / "teacher-cache"


def _flush_quietly(sink) -> None:
    try:
        sink.flush()
    except queue.ClaimLost as exc:
        log.warning("%s", exc)
    except Exception:
        log.exception("Could not flush the last metric points")


@shared_task(name="workers.tasks.housekeeping")
def housekeeping() -> dict:
    """Beat task: requeue runs whose worker vanished, stop hung cancels, wake workers of pools with work."""
    from webapp.experiments.dependencies import end_orphans
    from workers.revoke import kill_hung_cancels

    lost = queue.recover_lost_runs()
    killed = kill_hung_cancels()
    end_orphans()
    queue.finish_draining_workers()
    pools = queue.pools_with_work()
    for pool in pools:
        run_next.apply_async(args=[pool], queue=pool_queue(pool))
    return {"lost": lost, "killed": killed, "woken": pools}
