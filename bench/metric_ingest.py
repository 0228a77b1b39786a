"""Metric ingest: points/s from the worker's DatabaseSink into the configured database.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/distillery_bench_ingest \
        .venv/bin/python bench/metric_ingest.py --steps 20000 --keys 5 --writer both --rounds 3

Creates a throw-away team/experiment, streams `steps x keys` points through the sink exactly
as a training run would (step events, flushes every --flush-seconds), prints one JSON line,
and deletes what it created. `--writer bulk` is the sink as shipped (workers/bulk.py);
`--writer orm` swaps in the previous ORM bulk_create; `--writer both` alternates them
round by round in this one process so their ratio is fair on a noisy machine.
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
    parser.add_argument("--writer", choices=["bulk", "orm", "both"], default="bulk")
    parser.add_argument("--rounds", type=int, default=1, help="runs per writer (the median is reported)")
    parser.add_argument("--max-buffer", type=int, help="points buffered before a flush (default: the sink's)")
    args = parser.parse_args()

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from webapp.accounts.models import Team
    from webapp.experiments.models import Experiment
    from webapp.metrics.models import MetricPoint
    from webapp.registry.models import Checkpoint, Dataset
    from workers import sink as sink_module
    from workers.sink import DatabaseSink

    def orm_insert(experiment_id: int, points: list) -> None:  # the sink's write before workers/bulk.py
        MetricPoint.objects.bulk_create([MetricPoint(experiment_id=experiment_id, key=k, step=s, value=v)
                                         for k, s, v in points], batch_size=1000, ignore_conflicts=True)

    writers = {"bulk": sink_module.insert_points, "orm": orm_insert}
    call_command("migrate", verbosity=0)
    team = Team.objects.create(name=f"bench-{os.getpid()}", slug=f"bench-{os.getpid()}")
    try:
        ckpt = Checkpoint.objects.create(team=team, name="t", path="/nowhere", info={})
        data = Dataset.objects.create(team=team, name="d", train_path="/nowhere", labels=[])
        names = [f"m{i}" for i in range(args.keys)]
        points = args.steps * args.keys
        order = ["bulk", "orm"] if args.writer == "both" else [args.writer]
        runs: dict[str, list[dict]] = {w: [] for w in order}
        for _ in range(args.rounds):
            for writer in order:
                sink_module.insert_points = writers[writer]
                exp = Experiment.objects.create(team=team, name="ingest", teacher=ckpt, dataset=data,
                                                student_type="textcnn", config={}, status="RUNNING")
                sink = DatabaseSink(exp.pk, flush_seconds=args.flush_seconds,
                                    **({"max_buffer": args.max_buffer} if args.max_buffer else {}))
                sink.emit("start", {"total_steps": args.steps})
                emit_time = 0.0
                started = time.perf_counter()
                for step in range(1, args.steps + 1):
                    t0 = time.perf_counter()
                    sink.emit("step", {"step": step, "epoch": 1, "metrics": {n: step * 0.001 for n in names}})
                    emit_time += time.perf_counter() - t0
                sink.flush()
                wall = time.perf_counter() - started
                runs[writer].append({"stored": MetricPoint.objects.filter(experiment=exp).count(),
                                     "seconds": wall, "emit_us_per_step": emit_time / args.steps * 1e6})
                exp.delete()
        sink_module.insert_points = writers["bulk"]
        out = {"bench": "metric_ingest", "database": connection.vendor, "points": points, "rounds": args.rounds,
               "max_buffer": sink.max_buffer}
        for writer, rs in runs.items():
            best = sorted(rs, key=lambda r: r["seconds"])[len(rs) // 2]  # the median run
            out[writer] = {"stored": min(r["stored"] for r in rs), "seconds": round(best["seconds"], 3),
                           "points_per_s": round(points / best["seconds"]),
                           "emit_us_per_step": round(best["emit_us_per_step"], 1)}
        if len(runs) == 2:
            out["speedup_bulk_vs_orm"] = round(out["bulk"]["points_per_s"] / out["orm"]["points_per_s"], 2)
        print(json.dumps(out))
    finally:
        Experiment.objects.filter(team=team).delete()
        Checkpoint.objects.filter(team=team).delete()
        Dataset.objects.filter(team=team).delete()
        team.delete()


if __name__ == "__main__":
    main()
