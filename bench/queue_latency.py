"""Queue speed: queued -> running latency with an idle worker, and claim time with a deep queue.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/distillery_bench_queue \
    CELERY_BROKER_URL=redis://127.0.0.1:6379/7 .venv/bin/python bench/queue_latency.py

Latency: starts one real worker (the cheap stand-in distiller, the production command
line: one fresh child per job), queues --jobs experiments one at a time the way the web form
does (row + wake-up on commit) and measures created -> RUNNING, waiting --gap seconds between
jobs so the worker is idle again (its recycled child replaced).
Claim: queues --queued rows over 3 pools and 20 teams (one at its running limit) and times
`claim_next` --claims times. Prints one JSON line and deletes what it created.
"""

from __future__ import annotations

import os
import sys

# This file is named queue.py: drop bench/ from the path so `import queue` finds the stdlib.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]

import argparse  # noqa: E402
import json  # noqa: E402
import signal  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def latency(make, jobs: int, gap: float) -> list[float]:
    from django.db import transaction

    from webapp.experiments.models import Experiment
    from workers.dispatch import wake_workers

    seconds = []
    for i in range(jobs):
        with transaction.atomic():
            exp = make(f"latency-{i}", {"fake": {"steps": 1}})
            wake_workers("default")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            exp.refresh_from_db(fields=["status", "started_at", "created_at"])
            if exp.started_at:
                break
            time.sleep(0.02)
        else:
            raise SystemExit(f"job {i} did not start within 60 s (status {exp.status})")
        seconds.append((exp.started_at - exp.created_at).total_seconds())
        while Experiment.objects.filter(pk=exp.pk, status__in=Experiment.ACTIVE).exists():
            time.sleep(0.05)
        time.sleep(gap)
    return seconds


def claims(make_rows, queued: int, count: int) -> list[float]:
    from webapp.gpuqueue import queue

    make_rows(queued)
    timings = []
    for i in range(count):
        t0 = time.perf_counter()
        claimed = queue.claim_next(("default", "a100", "h100")[i % 3], "bench@host", f"bench-{i}")
        timings.append(time.perf_counter() - t0)
        assert claimed is not None
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--gap", type=float, default=2.0)
    parser.add_argument("--queued", type=int, default=10_000)
    parser.add_argument("--claims", type=int, default=60)
    args = parser.parse_args()

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from webapp.accounts.models import Team
    from webapp.experiments.models import Experiment
    from webapp.registry.models import Checkpoint, Dataset
    from workers.launch import worker_argv

    call_command("migrate", verbosity=0)
    tag = f"bench-{os.getpid()}"
    teams = [Team.objects.create(name=f"{tag}-{i}", slug=f"{tag}-{i}", max_running=1 if i == 0 else 0)
             for i in range(20)]
    ckpt = Checkpoint.objects.create(team=teams[0], name="t", path="/nowhere", info={})
    data = Dataset.objects.create(team=teams[0], name="d", train_path="/nowhere", labels=[])

    def make(name: str, config: dict) -> Experiment:
        return Experiment.objects.create(team=teams[1], name=name, teacher=ckpt, dataset=data,
                                         student_type="textcnn", config=config)

    def make_rows(n: int) -> None:
        Experiment.objects.bulk_create(
            [Experiment(team=teams[i % 20], name=f"deep-{i}", teacher=ckpt, dataset=data, student_type="textcnn",
                        config={}, pool=("default", "a100", "h100")[i % 3], priority=9 if i % 20 == 0 else i % 4, position=float(i))
             for i in range(n)], batch_size=2000)
        # Team 0 is at its limit: its queued rows must be skipped, not claimed.
        Experiment.objects.create(team=teams[0], name="holding", teacher=ckpt, dataset=data,
                                  student_type="textcnn", config={}, status="RUNNING")
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute("ANALYZE experiments_experiment")

    env = {**os.environ, "DISTILLERY_FAKE_DISTILLER": "1", "PYTHONUNBUFFERED": "1"}
    log = open(REPO / "var" / "bench-queue-worker.log", "wb")
    worker = subprocess.Popen(worker_argv(["default"], name=tag), cwd=REPO, env=env, stdout=log,
                              stderr=subprocess.STDOUT, start_new_session=True)
    try:
        time.sleep(8)  # worker start-up
        lat = latency(make, args.jobs, args.gap)
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=30)
        log.close()
    try:
        claim = claims(make_rows, args.queued, args.claims)
        print(json.dumps({
            "database": connection.vendor,
            "latency_jobs": args.jobs,
            "queued_to_running_s_median": round(statistics.median(lat), 3),
            "queued_to_running_s_p95": round(percentile(lat, 0.95), 3),
            "queued_rows": args.queued,
            "claim_ms_median": round(statistics.median(claim) * 1000, 2),
            "claim_ms_p95": round(percentile(claim, 0.95) * 1000, 2),
        }))
    finally:
        Experiment.objects.filter(team__in=teams).delete()
        ckpt.delete()
        data.delete()
        for team in teams:
            team.delete()


if __name__ == "__main__":
    main()
