"""Housekeeping runs on its own worker: a dead worker's run is requeued while the only run worker is busy."""

from __future__ import annotations

import time

import pytest
from django.utils import timezone

from tests.conftest import wait_for
from tests.workers.conftest import LEASE, wake
from webapp.experiments.models import Experiment

S = Experiment.Status
pytestmark = pytest.mark.worker


def test_a_busy_run_worker_does_not_delay_the_requeue_of_a_dead_workers_run(
        start_worker, worker_process, fake_job, make_experiment, settings, tmp_path):
    from webapp.gpuqueue.models import Worker
    from workers.launch import beat_argv, housekeeping_argv

    env = {"DISTILLERY_LEASE_SECONDS": str(LEASE)}
    long_run = fake_job("long", steps=900, sleep=0.1)
    busy = start_worker("busy")  # the only run worker: concurrency 1
    keeper = worker_process(name="housekeeping", env=env, argv=housekeeping_argv())
    beat = worker_process(name="beat", env=env, argv=beat_argv(schedule=str(tmp_path / "celerybeat-schedule")))
    processes = [busy, keeper, beat]
    logs = lambda: "\n".join(p.log()[-2500:] for p in processes)  # noqa: E731
    wake()
    wait_for(lambda: Experiment.objects.get(pk=long_run.pk).current_step >= 3, timeout=60,
             message=lambda: f"the long run to start\n{logs()}")

    # A run whose worker died this instant: its heartbeat stops now and nobody renews it.
    orphan = make_experiment("orphan", config={"fake": {"steps": 1}})
    died = timezone.now()
    Experiment.objects.filter(pk=orphan.pk).update(status=S.RUNNING, worker_name="dead@nowhere", task_id="gone",
                                                   attempts=1, claimed_at=died, started_at=died, heartbeat_at=died)
    t0 = time.monotonic()

    def requeued():
        orphan.refresh_from_db()
        return orphan.status == S.QUEUED

    wait_for(requeued, timeout=LEASE + settings.HOUSEKEEPING_SECONDS + 10, interval=0.25,
             message=lambda: f"housekeeping to requeue the orphan (status {orphan.status})\n{logs()}")
    elapsed = time.monotonic() - t0
    print(f"requeued {elapsed:.1f} s after the heartbeat stopped (lease {LEASE} s)")
    # The lease, then at most one beat interval; 2 s for the message, the poll and a loaded machine.
    assert elapsed <= LEASE + settings.HOUSEKEEPING_SECONDS + 2, elapsed
    assert "stopped sending heartbeats" in orphan.error and "attempt 1 of" in orphan.error
    long_run.refresh_from_db()
    assert long_run.status == S.RUNNING and long_run.attempts == 1  # the run worker was busy all along
    ran = "Task workers.tasks.housekeeping["  # the "received" line of a task run (not the startup task list)
    assert ran in keeper.log() and ran not in busy.log()
    assert not Worker.objects.filter(name__startswith="housekeeping@").exists()  # not listed as a GPU worker
