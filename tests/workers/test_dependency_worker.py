"""With a real worker: a run that waits for another starts by itself when that one succeeds.

The waiting run sits in a second pool that nothing else wakes (no beat runs here, and the worker
re-wakes only the pool it just served), so only the wake-up its dependency's success sends starts it.
"""

from __future__ import annotations

import pytest

from tests.conftest import wait_for
from tests.workers.conftest import LEASE, wake
from webapp.experiments.models import Experiment

S = Experiment.Status
pytestmark = pytest.mark.worker


def test_the_waiting_run_starts_by_itself_once_its_dependency_succeeds(real_services, worker_process, fake_job):
    teacher = fake_job("teacher", steps=3, sleep=0.2)
    waiting = fake_job("distillation", steps=2, depends_on=teacher, pool="second")
    worker = worker_process(pools=["default", "second"], name="w",
                            env={"DISTILLERY_LEASE_SECONDS": str(LEASE), "DISTILLERY_FAKE_DISTILLER": "1"})
    wake("default")

    def both_succeeded() -> bool:
        return Experiment.objects.filter(pk__in=[teacher.pk, waiting.pk], status=S.SUCCEEDED).count() == 2

    wait_for(both_succeeded, timeout=90, message="both runs to succeed\n" + worker.log()[-3000:])
    teacher.refresh_from_db()
    waiting.refresh_from_db()
    assert waiting.claimed_at >= teacher.finished_at and waiting.attempts == 1
