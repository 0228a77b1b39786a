"""What streaming metrics costs a training step: the same tiny distillation with DatabaseSink vs NullSink.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/distillery_bench_ingest \\
        .venv/bin/python bench/sink_overhead.py --examples 2000 --epochs 2 --rounds 3
    .venv/bin/python bench/sink_overhead.py --examples 64 --epochs 1 --rounds 1    # smoke size (SQLite)

One process runs distill_core.distiller.run `rounds` times with each sink, alternating (and swapping
which goes first every round), exactly as
the worker calls it (should_cancel=sink.should_cancel, the default log_every=10 and 2 s flushes).
Teacher logits come from a warm teacher cache, so the timed part is the training loop. Reports the
median training seconds of each and their ratio, and - the figure that survives a noisy machine -
the time spent inside the DatabaseSink's calls (emit + should_cancel, flushes included) as a share
of its run's training time. Prints one JSON line; deletes what it created.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common  # noqa: E402

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")


class TimedSink:
    """Forward to `sink`, adding the seconds spent inside its calls to `self.seconds`."""

    def __init__(self, sink) -> None:
        self.sink, self.seconds = sink, 0.0

    def emit(self, kind: str, payload: dict) -> None:
        started = time.perf_counter()
        self.sink.emit(kind, payload)
        self.seconds += time.perf_counter() - started

    def should_cancel(self) -> bool:
        started = time.perf_counter()
        try:
            return self.sink.should_cancel()
        finally:
            self.seconds += time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=2000, help="training titles from the demo slice")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3, help="runs per sink (the median is reported)")
    args = parser.parse_args()

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from distill_core.config import ExperimentConfig
    from distill_core.distiller import NullSink, run
    from distill_core.testing import make_tiny_teacher
    from webapp.accounts.models import Team
    from webapp.experiments.models import Experiment
    from webapp.metrics.models import MetricPoint
    from webapp.registry.models import Checkpoint, Dataset
    from workers.sink import DatabaseSink

    call_command("migrate", verbosity=0)
    work = Path(tempfile.mkdtemp(prefix="sink-overhead-", dir=common.VAR if common.VAR.is_dir() else None))
    rows = common.read_tsv(common.DEMO / "train.tsv")
    for name, part in (("train", rows[: args.examples]), ("dev", rows[-200:])):
        common.write_tsv(work / f"{name}.tsv", part)
    teacher = make_tiny_teacher(work / "teacher", common.LABELS, "".join(t for t, _ in rows), layers=2, hidden=64)
    config = {
        "seed": 42, "data": {"train": str(work / "train.tsv"), "dev": str(work / "dev.tsv"), "labels": common.LABELS},
        "teacher": {"path": str(teacher)}, "student": {"type": "textcnn", "vocab": "char"},
        "train": {"epochs": args.epochs, "batch_size": 32, "device": "cpu", "checkpoint_every": 10 ** 9},
    }
    cache = work / "teacher-cache"
    run(ExperimentConfig.from_dict(config), cache_dir=cache)  # warm the teacher cache (and the imports)

    team = Team.objects.create(name=f"bench-{os.getpid()}", slug=f"bench-{os.getpid()}")
    timings: dict[str, list[float]] = {"null": [], "database": []}
    shares: list[float] = []
    points = 0
    try:
        ckpt = Checkpoint.objects.create(team=team, name="t", path=str(teacher), info={})
        data = Dataset.objects.create(team=team, name="d", train_path=str(work / "train.tsv"), labels=common.LABELS)
        for round_ in range(args.rounds):
            for kind in (("null", "database") if round_ % 2 == 0 else ("database", "null")):  # no order bias
                if kind == "database":
                    exp = Experiment.objects.create(team=team, name="overhead", teacher=ckpt, dataset=data,
                                                    student_type="textcnn", config=config, status="RUNNING")
                    sink = TimedSink(DatabaseSink(exp.pk))
                    cancel = sink.should_cancel
                else:
                    sink, cancel = NullSink(), None
                results = run(ExperimentConfig.from_dict(config), sink=sink, should_cancel=cancel, cache_dir=cache)
                timings[kind].append(results["seconds"]["training"])
                if kind == "database":
                    shares.append(sink.seconds / results["seconds"]["training"])
                    points = MetricPoint.objects.filter(experiment=exp).count()
                    steps = results["steps"]
                    exp.delete()
    finally:
        Experiment.objects.filter(team=team).delete()
        Checkpoint.objects.filter(team=team).delete()
        Dataset.objects.filter(team=team).delete()
        team.delete()
        shutil.rmtree(work, ignore_errors=True)
    median = {k: sorted(v)[len(v) // 2] for k, v in timings.items()}
    print(json.dumps({
        "bench": "sink_overhead", "database": connection.vendor, "examples": args.examples, "epochs": args.epochs,
        "steps": steps, "points_stored": points, "rounds": args.rounds,
        "training_seconds": {k: [round(x, 3) for x in v] for k, v in timings.items()},
        "median_seconds": {k: round(v, 3) for k, v in median.items()},
        "overhead_ratio": round(median["database"] / median["null"], 4),
        "overhead_ms_per_step": round((median["database"] - median["null"]) / steps * 1000, 3),
        "sink_share_of_training": [round(x, 5) for x in shares],
        "sink_share_median": round(sorted(shares)[len(shares) // 2], 5),
    }))


if __name__ == "__main__":
    main()
