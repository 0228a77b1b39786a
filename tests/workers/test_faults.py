"""Faults with real worker processes on Postgres + Redis: kills, SIGTERM, a broker restart, dropped connections.

Every run that survives a fault must end SUCCEEDED with its metric steps 1..N each exactly
once (a requeued run restarts or resumes; the sink's writes are idempotent either way).
"""

from __future__ import annotations

import itertools
import os
import signal
import time

import pytest
from django.db.models import Count

from tests.conftest import wait_for
from tests.workers.conftest import LEASE, housekeeping, wake
from webapp.experiments.models import Experiment
from webapp.gpuqueue import queue
from webapp.metrics.models import MetricPoint

S = Experiment.Status
pytestmark = pytest.mark.worker


def steps_of(exp: Experiment, key: str = "train/loss") -> list[int]:
    return list(MetricPoint.objects.filter(experiment=exp, key=key).order_by("step").values_list("step", flat=True))


def wait_status(exp: Experiment, statuses, timeout: float, workers=(), recover: bool = False) -> Experiment:
    def reached():
        if recover:
            housekeeping()
        exp.refresh_from_db()
        return exp.status in statuses

    logs = lambda: "\n".join(w.log()[-2500:] for w in workers)  # noqa: E731
    try:
        wait_for(reached, timeout=timeout, interval=0.3, message=f"{exp.name} to reach {statuses}")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; status {exp.status}, error {exp.error!r}\n{logs()}") from None
    return exp


def wait_step(exp: Experiment, step: int, timeout: float, workers=()) -> None:
    def reached():
        exp.refresh_from_db()
        return exp.current_step >= step

    try:
        wait_for(reached, timeout=timeout, interval=0.2, message=f"{exp.name} to pass step {step}")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; status {exp.status} {exp.error!r}\n" +
                             "\n".join(w.log()[-2500:] for w in workers)) from None


def test_a_worker_killed_mid_run_is_requeued_once_and_the_run_completes(
        start_worker, make_experiment, tiny_run_config, tmp_path):
    exp = make_experiment("killed", config=tiny_run_config(tmp_path / "out", max_steps=30))
    first = start_worker("first", fake=False, DISTILLERY_TEST_STEP_DELAY="0.15")
    wake()
    wait_step(exp, 5, timeout=90, workers=[first])
    os.killpg(first.proc.pid, signal.SIGKILL)
    first.proc.wait()
    second = start_worker("second", fake=False)
    exp = wait_status(exp, Experiment.FINISHED, timeout=90 + LEASE, workers=[first, second], recover=True)
    assert exp.status == S.SUCCEEDED, exp.error
    assert exp.attempts == 2 and exp.worker_name.startswith("second@")
    assert steps_of(exp) == list(range(1, 31))


def test_sigterm_mid_run_requeues_at_once_and_another_worker_completes_it(start_worker, fake_job):
    exp = fake_job("stopped", steps=40, sleep=0.1)
    first = start_worker("first")
    wake()
    wait_step(exp, 5, timeout=30, workers=[first])
    os.kill(first.proc.pid, signal.SIGTERM)  # the worker's main process only, as `docker stop` does
    first.proc.wait(timeout=30)
    exp.refresh_from_db()
    assert exp.status == S.QUEUED and "stopped while running" in exp.error  # no lease wait needed
    second = start_worker("second")
    exp = wait_status(exp, Experiment.FINISHED, timeout=40, workers=[second], recover=True)
    assert exp.status == S.SUCCEEDED and exp.attempts == 2
    assert steps_of(exp) == list(range(1, 41))


@pytest.fixture
def private_redis(tmp_path):
    """A redis-server of this test alone on a free port, which the test may restart."""
    import shutil
    import socket
    import subprocess

    if not shutil.which("redis-server"):
        pytest.skip("redis-server is not installed")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    class Server:
        url = f"redis://127.0.0.1:{port}/0"
        proc = None

        def start(self):
            self.proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                          "--appendonly", "no", "--dir", str(tmp_path)],
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            wait_for(self.ping, timeout=10, interval=0.1, message="redis-server to start")

        def ping(self):
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    return True
            except OSError:
                return False

        def stop(self):
            self.proc.kill()
            self.proc.wait()

    server = Server()
    server.start()
    yield server
    server.stop()


def test_a_broker_restart_mid_run_loses_nothing_and_the_worker_reconnects(start_worker, fake_job, private_redis):
    exp = fake_job("through-restart", steps=30, sleep=0.1)
    worker = start_worker("w", CELERY_BROKER_URL=private_redis.url)
    wake(broker_url=private_redis.url)
    wait_step(exp, 5, timeout=30, workers=[worker])
    private_redis.stop()
    time.sleep(1.5)
    private_redis.start()
    exp = wait_status(exp, Experiment.FINISHED, timeout=30, workers=[worker])
    assert exp.status == S.SUCCEEDED and exp.attempts == 1
    assert steps_of(exp) == list(range(1, 31))
    later = fake_job("after-restart", steps=2)

    def ran():
        wake(broker_url=private_redis.url)
        later.refresh_from_db()
        return later.status == S.SUCCEEDED

    wait_for(ran, timeout=45, interval=2, message=f"the reconnected worker to run a new job\n{worker.log()[-3000:]}")


def test_database_connections_dropped_during_flushes_lose_and_duplicate_no_point(start_worker, fake_job):
    from django.db import connection

    exp = fake_job("dropped", steps=60, sleep=0.1)
    worker = start_worker("w")
    wake()
    wait_step(exp, 3, timeout=30, workers=[worker])
    killed = 0
    for _ in range(3):
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                           "WHERE datname = current_database() AND pid <> pg_backend_pid()")
            killed += cursor.fetchone()[0]
        time.sleep(1.2)
    assert killed >= 3
    exp = wait_status(exp, Experiment.FINISHED, timeout=40, workers=[worker])
    assert exp.status == S.SUCCEEDED, exp.error
    assert steps_of(exp) == list(range(1, 61))


def test_a_hundred_jobs_on_two_racing_workers_each_run_exactly_once(start_worker, fake_job):
    jobs = [fake_job(f"job-{i}", steps=1) for i in range(100)]
    workers = [start_worker("a"), start_worker("b")]
    wake(times=4)

    def all_done():
        done = Experiment.objects.filter(status=S.SUCCEEDED).count()
        if done < 100 and not Experiment.objects.filter(status__in=(S.CLAIMED, S.RUNNING)).exists():
            wake(times=2)
        return done == 100

    try:
        wait_for(all_done, timeout=120, interval=1, message="100 jobs to succeed")
    except AssertionError as exc:
        counts = dict(Experiment.objects.values_list("status").annotate(n=Count("pk")))
        raise AssertionError(f"{exc}: {counts}\n" + "\n".join(w.log()[-3000:] for w in workers)) from None
    rows = Experiment.objects.filter(pk__in=[j.pk for j in jobs])
    assert set(rows.values_list("attempts", flat=True)) == {1}
    assert MetricPoint.objects.filter(experiment__in=rows, key="train/loss").count() == 100
    assert {name.split("@")[0] for name in rows.values_list("worker_name", flat=True)} == {"a", "b"}


def test_cancel_ends_a_running_job_within_seconds(start_worker, fake_job):
    from webapp.gpuqueue import actions

    running = fake_job("long", steps=200, sleep=0.1)
    queued = fake_job("waiting", steps=1)
    worker = start_worker("w")
    wake()
    wait_step(running, 2, timeout=30, workers=[worker])
    assert actions.cancel(queued)[0] and actions.cancel(running)[0]
    asked = time.monotonic()
    running = wait_status(running, Experiment.FINISHED, timeout=10, workers=[worker])
    assert running.status == S.CANCELLED and time.monotonic() - asked < 6
    assert Experiment.objects.get(pk=queued.pk).status == S.CANCELLED
    assert len(steps_of(running)) == running.current_step  # what it logged is kept, once


def test_reordering_while_a_worker_claims_runs_the_moved_job_next(start_worker, fake_job):
    from webapp.gpuqueue import actions

    jobs = [fake_job(f"job-{i}", steps=3, sleep=0.1) for i in range(8)]
    worker = start_worker("w")
    wake()
    wait_status(jobs[0], (S.RUNNING, S.SUCCEEDED), timeout=30, workers=[worker])
    last = jobs[-1]
    assert actions.move_to_top(last)[0]
    still_queued = set(Experiment.objects.filter(status=S.QUEUED).values_list("pk", flat=True)) - {last.pk}
    wait_status(last, Experiment.FINISHED, timeout=60, workers=[worker], recover=True)
    later = Experiment.objects.filter(pk__in=still_queued)
    assert all(e.claimed_at is None or e.claimed_at > last.claimed_at for e in later)
    wait_for(lambda: not Experiment.objects.exclude(status=S.SUCCEEDED).exists() or housekeeping(),
             timeout=60, message="every job to succeed")
    assert set(Experiment.objects.values_list("attempts", flat=True)) == {1}


def test_a_team_limit_holds_while_two_workers_claim(start_worker, fake_job):
    from webapp.accounts.models import Team

    jobs = [fake_job(f"acme-{i}", steps=4, sleep=0.1) for i in range(4)]
    Team.objects.filter(pk=jobs[0].team_id).update(max_running=1)
    workers = [start_worker("a"), start_worker("b")]
    wake(times=4)
    wait_for(lambda: Experiment.objects.filter(status=S.SUCCEEDED).count() == 4 or housekeeping(),
             timeout=90, message="the team's jobs to succeed\n" + "\n".join(w.log()[-2000:] for w in workers))
    spans = sorted(Experiment.objects.values_list("claimed_at", "finished_at"))
    for (_, end), (start, _) in itertools.pairwise(spans):
        assert start >= end, "two of the team's runs overlapped"


def test_a_job_that_always_crashes_stops_at_its_attempt_limit(start_worker, fake_job):
    exp = fake_job("crasher", fake={"crash": True}, max_attempts=3)
    worker = start_worker("w")
    wake()
    exp = wait_status(exp, Experiment.FINISHED, timeout=60, workers=[worker], recover=True)
    assert exp.status == S.FAILED and exp.attempts == 3
    assert exp.error.startswith("Gave up after 3 of 3 attempts") and "always crashes" in exp.error


def test_a_worker_registers_itself_and_a_drained_one_finishes_its_job_but_takes_no_new_one(start_worker, fake_job):
    from webapp.gpuqueue.models import Worker

    running = fake_job("running", steps=20, sleep=0.1)
    waiting = fake_job("waiting", steps=1)
    worker = start_worker("w")
    registered = wait_for(lambda: Worker.objects.filter(name__startswith="w@").first(), timeout=30,
                          message=f"the worker to register\n{worker.log()[-2000:]}")
    assert registered.device == "cpu" and registered.pools == ["default"] and registered.pid
    wake()
    wait_step(running, 2, timeout=30, workers=[worker])
    Worker.objects.filter(pk=registered.pk).update(mode=Worker.Mode.DRAINING)
    running = wait_status(running, Experiment.FINISHED, timeout=30, workers=[worker])
    assert running.status == S.SUCCEEDED
    wake(times=2)
    time.sleep(2)
    assert Experiment.objects.get(pk=waiting.pk).status == S.QUEUED
    housekeeping()
    queue.finish_draining_workers()
    assert Worker.objects.get(pk=registered.pk).mode == Worker.Mode.DISABLED
    worker.stop()
    assert not Worker.objects.get(pk=registered.pk).is_online
