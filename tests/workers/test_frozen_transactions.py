"""A process frozen inside a transaction holds its row lock: housekeeping must not wait for it (Postgres)."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from django.db import OperationalError, connection, connections, transaction
from django.utils import timezone

from webapp.experiments.models import Experiment
from webapp.gpuqueue import queue

S = Experiment.Status

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _postgres_only():
    if connection.vendor != "postgresql":
        pytest.skip("row locks and session timeouts are Postgres behaviour")


def test_housekeeping_skips_a_row_another_process_holds_locked_and_recovers_it_once_free(make_experiment):
    held = make_experiment("frozen", status=S.RUNNING, heartbeat_at=timezone.now() - timedelta(hours=1), attempts=1)
    other = make_experiment("lost", status=S.RUNNING, heartbeat_at=timezone.now() - timedelta(hours=1), attempts=1)
    locked, release = threading.Event(), threading.Event()

    def frozen_worker() -> None:  # a flush transaction that never commits while "stopped"
        try:
            with transaction.atomic():
                Experiment.objects.select_for_update().get(pk=held.pk)
                locked.set()
                release.wait(30)
        finally:
            connections.close_all()

    thread = threading.Thread(target=frozen_worker)
    thread.start()
    try:
        assert locked.wait(10)
        started = time.monotonic()
        assert queue.recover_lost_runs() == {S.QUEUED: [other.pk]}  # the free row, without waiting
        assert time.monotonic() - started < 5
    finally:
        release.set()
        thread.join(10)
    assert queue.recover_lost_runs() == {S.QUEUED: [held.pk]}


def test_a_job_processes_idle_transaction_is_ended_after_a_lease(settings):
    from workers.lease import bound_idle_transactions

    settings.LEASE_SECONDS = 1
    saved = dict(connection.settings_dict.get("OPTIONS", {}))
    try:
        bound_idle_transactions()
        with pytest.raises(OperationalError):
            with transaction.atomic():
                Experiment.objects.count()
                time.sleep(2.5)  # frozen past the lease inside the transaction
                Experiment.objects.count()
    finally:
        connection.settings_dict["OPTIONS"] = saved
        connection.close()
