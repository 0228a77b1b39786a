"""The job's lease thread: what one renewal concludes from the row, and why a job must not run in a transaction.

The DDP test once ran execute() inside pytest-django's per-test transaction: the keeper's own connection
could not see the uncommitted claim, so its first renewal (LEASE_SECONDS/4 into the run, i.e. only on a
slow, loaded machine) stopped a healthy run as lost.
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from webapp.experiments.models import Experiment
from webapp.gpuqueue import queue
from workers.lease import LeaseKeeper, StopFlags
from workers.tasks import execute

S = Experiment.Status


def running(make_experiment, token: str = "t1") -> Experiment:
    exp = make_experiment("leased")
    assert queue.claim_next("default", "w1", token) == exp.pk
    assert queue.mark_running(exp.pk, token)
    return exp


def keeper_of(exp: Experiment, token: str = "t1") -> LeaseKeeper:
    return LeaseKeeper(exp.pk, token, StopFlags(sink=None, max_runtime_seconds=None))


def test_a_job_inside_an_open_transaction_is_refused_before_it_writes(make_experiment):
    exp = make_experiment("in a transaction")  # `db`: the test's transaction is still open
    assert queue.claim_next("default", "w1", "t1") == exp.pk
    with pytest.raises(RuntimeError, match="transactional_db"):
        execute(exp.pk, "t1")
    exp.refresh_from_db()
    assert exp.status == S.CLAIMED and exp.started_at is None and exp.task_id == "t1"


def test_on_postgres_the_keeper_thread_cannot_see_an_uncommitted_claim(make_experiment):
    """The race itself: the claim is held (in this uncommitted transaction), yet the keeper finds it lost."""
    if connection.vendor != "postgresql":
        pytest.skip("SQLite makes the keeper's renewal wait on the transaction's write lock instead")
    exp = running(make_experiment)
    keeper = keeper_of(exp)

    def beat_from_another_connection() -> None:
        try:
            keeper.beat()
        finally:
            connection.close()

    thread = threading.Thread(target=beat_from_another_connection)
    thread.start()
    thread.join(timeout=30)
    assert keeper.flags.lost
    assert queue.interrupt(exp.pk, "The worker was stopped while running it.", token="t1") == S.QUEUED  # yet held


def test_a_renewal_moves_the_heartbeat_of_a_held_claim_and_reads_the_cancel_flag(transactional_db, make_experiment):
    exp = running(make_experiment)
    long_ago = timezone.now() - timedelta(hours=1)
    Experiment.objects.filter(pk=exp.pk).update(heartbeat_at=long_ago)
    keeper = keeper_of(exp)
    keeper.beat()
    exp.refresh_from_db()
    assert exp.heartbeat_at > long_ago and not keeper.flags.lost and not keeper.flags.cancelled
    Experiment.objects.filter(pk=exp.pk).update(cancel_requested=True)
    keeper.beat()
    assert keeper.flags.cancelled and not keeper.flags.lost


def test_a_claim_recovered_and_taken_by_another_attempt_is_lost_and_says_who_holds_it(
        transactional_db, make_experiment, caplog):
    exp = running(make_experiment)
    later = timezone.now() + timedelta(hours=1)
    assert queue.recover_lost_runs(now=later) == {S.QUEUED: [exp.pk]}
    assert queue.claim_next("default", "w2", "t2") == exp.pk
    keeper = keeper_of(exp)
    with caplog.at_level(logging.WARNING, logger="workers.lease"):
        keeper.beat()
    assert keeper.flags.lost
    assert "'task_id': 't2'" in caplog.text and "'status': 'CLAIMED'" in caplog.text, caplog.text
