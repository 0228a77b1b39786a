"""Metric ingest: points/s from the worker's DatabaseSink into the configured database.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/distillery \
        .venv/bin/python bench/metric_ingest.py --steps 20000 --keys 5

Creates a throw-away team/experiment, streams `steps x keys` points through the sink exactly
as a training run would (step events, flushes every --flush-seconds), prints one JSON line,
and deletes what it created.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20000)
    parser.add_argument("--keys", type=int, default=5)
    parser.add_argument("--flush-seconds", type=float, default=2.0)
    args = parser.parse_args()

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from webapp.accounts.models import Team
    from webapp.experiments.models import Checkpoint, Dataset, Experiment, MetricPoint
    from workers.sink import DatabaseSink

    call_command("migrate", verbosity=0)
    team = Team.objects.create(name=f"bench-{os.getpid()}", slug=f"bench-{os.getpid()}")
    try:
        ckpt = Checkpoint.objects.create(team=team, name="t", path="/nowhere", info={})
        data = Dataset.objects.create(team=team, name="d", train_path="/nowhere", labels=[])
        exp = Experiment.objects.create(team=team, name="ingest", teacher=ckpt, dataset=data,
                                        student_type="textcnn", config={}, status="RUNNING")
        sink = DatabaseSink(exp.pk, flush_seconds=args.flush_seconds)
        sink.emit("start", {"total_steps": args.steps})
        names = [f"m{i}" for i in range(args.keys)]
        emit_time = 0.0
        started = time.perf_counter()
        for step in range(1, args.steps + 1):
            t0 = time.perf_counter()
            sink.emit("step", {"step": step, "epoch": 1, "metrics": {n: step * 0.001 for n in names}})
            emit_time += time.perf_counter() - t0
        sink.flush()
        wall = time.perf_counter() - started
        stored = MetricPoint.objects.filter(experiment=exp).count()
        points = args.steps * args.keys
        print(json.dumps({
            "bench": "metric_ingest", "database": connection.vendor, "points": points, "stored": stored,
            "seconds": round(wall, 3), "points_per_s": round(points / wall),
            "emit_us_per_step": round(emit_time / args.steps * 1e6, 1),
        }))
    finally:
        Experiment.objects.filter(team=team).delete()
        Checkpoint.objects.filter(team=team).delete()
        Dataset.objects.filter(team=team).delete()
        team.delete()


if __name__ == "__main__":
    main()
