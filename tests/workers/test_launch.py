"""The worker command line and its pool: one job per fresh child, replaced quickly."""

from __future__ import annotations

from celery.concurrency import prefork


def test_the_worker_runs_one_job_at_a_time_in_a_fresh_child(settings):
    from workers.launch import worker_argv

    argv = worker_argv(["a100"], name="gpu3")
    assert argv[argv.index("--concurrency") + 1] == "1" and argv[argv.index("--prefetch-multiplier") + 1] == "1"
    prefix = settings.CELERY_TASK_DEFAULT_QUEUE  # "distillery" unless DISTILLERY_QUEUE_PREFIX (xdist) says otherwise
    assert argv[argv.index("--queues") + 1] == f"{prefix},{prefix}.a100" and "gpu3@%h" in argv
    assert settings.CELERY_WORKER_MAX_TASKS_PER_CHILD == 1


def test_a_recycled_child_is_replaced_within_a_second():
    import workers.celery  # noqa: F401  (installs the pool)
    from workers.pool import QuickRecyclePool

    assert prefork.TaskPool.Pool is QuickRecyclePool
    pool = QuickRecyclePool.__new__(QuickRecyclePool)  # no processes: only the timer table is read
    assert list(QuickRecyclePool.timers.fget(pool).values()) == [0.5]


def test_housekeeping_has_its_own_queue_that_no_run_worker_consumes(settings):
    from workers.celery import app
    from workers.launch import housekeeping_argv, worker_argv

    route = app.amqp.router.route({}, "workers.tasks.housekeeping", args=(), kwargs={})
    assert route["queue"].name == settings.HOUSEKEEPING_QUEUE == f"{settings.CELERY_TASK_DEFAULT_QUEUE}-housekeeping"
    argv = housekeeping_argv()
    assert argv[argv.index("--queues") + 1] == settings.HOUSEKEEPING_QUEUE
    assert argv[argv.index("--pool") + 1] == "solo" and "housekeeping@%h" in argv
    run_queues = worker_argv(["default", "a100"])[worker_argv(["default"]).index("--queues") + 1].split(",")
    assert settings.HOUSEKEEPING_QUEUE not in run_queues


def test_the_beat_entry_expires_stale_copies_after_one_interval(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["recover-and-wake"]
    assert entry["task"] == "workers.tasks.housekeeping"
    assert entry["options"]["expires"] == entry["schedule"] == settings.HOUSEKEEPING_SECONDS


def test_runall_starts_the_housekeeping_worker_beside_the_run_worker_and_beat(monkeypatch):
    from django.core.management import call_command

    from webapp.experiments.management.commands import runall
    from workers.launch import housekeeping_argv

    started = []

    class Exited:
        returncode = 0

        def __init__(self, argv):
            started.append(argv)

        def poll(self):
            return 0  # every child "exits" at once, so runall stops after one look

        def send_signal(self, sig):
            pass

        def wait(self, timeout=None):
            return 0

    monkeypatch.setattr(runall.subprocess, "Popen", Exited)
    monkeypatch.setattr(runall.signal, "signal", lambda *args: None)
    try:
        call_command("runall")
    except SystemExit:
        pass
    assert housekeeping_argv() in started and len(started) == 4  # web, run worker, housekeeping, beat
