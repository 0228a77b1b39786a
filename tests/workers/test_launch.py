"""The worker command line and its pool: one job per fresh child, replaced quickly."""

from __future__ import annotations

from celery.concurrency import prefork


def test_the_worker_runs_one_job_at_a_time_in_a_fresh_child(settings):
    from workers.launch import worker_argv

    argv = worker_argv(["a100"], name="gpu3")
    assert argv[argv.index("--concurrency") + 1] == "1" and argv[argv.index("--prefetch-multiplier") + 1] == "1"
    assert argv[argv.index("--queues") + 1] == "distillery,distillery.a100" and "gpu3@%h" in argv
    assert settings.CELERY_WORKER_MAX_TASKS_PER_CHILD == 1


def test_a_recycled_child_is_replaced_within_a_second():
    import workers.celery  # noqa: F401  (installs the pool)
    from workers.pool import QuickRecyclePool

    assert prefork.TaskPool.Pool is QuickRecyclePool
    pool = QuickRecyclePool.__new__(QuickRecyclePool)  # no processes: only the timer table is read
    assert list(QuickRecyclePool.timers.fget(pool).values()) == [0.5]
