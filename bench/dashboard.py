"""Dashboard read path: server time of the list page, the experiment page and metrics.json.

    DISTILLERY_VAR_DIR=/tmp/bench-sqlite .venv/bin/python bench/dashboard.py
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/distillery_bench_api .venv/bin/python bench/dashboard.py

Seeds (once per database; --reseed to redo) a team with 10,000 experiments and one run with
1,000,000 metric points (4 training keys x 250,000 steps + 2 dev keys every 1,000 steps),
then times N requests of each page through Django's test Client (the whole stack: URL
routing, auth, views, templates, JSON) and prints one JSON line of p50/p95 milliseconds.
The run's rows are inserted with one INSERT ... SELECT per key, so seeding takes seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")

TEAM = "bench-dashboard"
TRAIN_KEYS = ("train/loss", "train/kd_loss", "train/hard_loss", "train/lr")
DEV_KEYS = ("dev/accuracy", "dev/macro_f1")


def seed(experiments: int, steps: int) -> None:
    from django.contrib.auth import get_user_model
    from django.db import connection, transaction

    from webapp.accounts.models import Membership, Team
    from webapp.experiments.models import Experiment
    from webapp.registry.models import Checkpoint, Dataset

    with transaction.atomic():
        team = Team.objects.create(name=TEAM, slug=TEAM)
        user = get_user_model().objects.create_user(TEAM)
        Membership.objects.create(team=team, user=user)
        ckpt = Checkpoint.objects.create(team=team, name="bert", path="/nowhere", info={"num_labels": 3})
        data = Dataset.objects.create(team=team, name="news", train_path="/nowhere", labels=["a", "b", "c"])
        statuses = ["SUCCEEDED", "FAILED", "CANCELLED", "QUEUED", "RUNNING"]
        config = {"name": "x", "student": {"type": "textcnn"}, "kd": {"temperature": 2.0, "alpha": 0.8}}
        Experiment.objects.bulk_create([
            Experiment(team=team, owner=user, name=f"sweep {i}", teacher=ckpt, dataset=data, student_type="textcnn",
                       config=config, status=statuses[i % 5], progress=1.0 if i % 5 < 3 else 0.3,
                       latest={"train/loss": 0.5, "dev/accuracy": 0.8}, best={"dev/accuracy": 0.81})
            for i in range(experiments - 1)], batch_size=2000)
        big = Experiment.objects.create(
            team=team, owner=user, name="long run", teacher=ckpt, dataset=data, student_type="textcnn",
            config=config, status="RUNNING", total_steps=steps, current_step=steps, progress=0.99,
            latest={k: 0.1 for k in TRAIN_KEYS + DEV_KEYS}, best={"dev/accuracy": 0.9})
        with connection.cursor() as cursor:
            for n, key in enumerate(TRAIN_KEYS):
                _insert_series(cursor, connection.vendor, big.pk, key, 1, steps, 1, n)
            for n, key in enumerate(DEV_KEYS):
                _insert_series(cursor, connection.vendor, big.pk, key, 1000, steps, 1000, n)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def _insert_series(cursor, vendor: str, experiment: int, key: str, start: int, stop: int, every: int, n: int) -> None:
    """Insert a noisy decaying curve with an occasional spike, entirely inside the database."""
    value = f"(1.0 / (1 + s / 1000.0)) + 0.05 * {n} + (CASE WHEN s %% 9973 = 0 THEN 3.0 ELSE 0.0 END)"
    if vendor == "postgresql":
        cursor.execute(
            "INSERT INTO experiments_metricpoint (experiment_id, key, step, value) "
            f"SELECT %s, %s, s, {value} + random() * 0.01 FROM generate_series(%s, %s, %s) AS s",
            [experiment, key, start, stop, every])
    else:
        cursor.execute(
            "WITH RECURSIVE g(s) AS (SELECT %s UNION ALL SELECT s + %s FROM g WHERE s + %s <= %s) "
            "INSERT INTO experiments_metricpoint (experiment_id, key, step, value) "
            f"SELECT %s, %s, s, {value} + (abs(random()) %% 1000) / 100000.0 FROM g",
            [start, every, every, stop, experiment, key])


def timed(client, url: str, n: int, params: dict | None = None) -> dict[str, float]:
    for _ in range(3):  # warm-up: connections, template and plan caches
        assert client.get(url, params or {}).status_code == 200, url
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        response = client.get(url, params or {})
        times.append((time.perf_counter() - t0) * 1000)
        assert response.status_code == 200, url
    times.sort()
    return {"p50_ms": round(statistics.median(times), 1), "p95_ms": round(times[int(0.95 * (len(times) - 1))], 1)}


def plan(experiment_id: int) -> str:
    from django.db import connection

    sql = ("SELECT COUNT(*), MIN(value), MAX(value) FROM experiments_metricpoint WHERE experiment_id = %s "
           "AND key = %s AND step >= %s AND step <= %s GROUP BY (step - 1) / 500")
    prefix = "EXPLAIN " if connection.vendor == "postgresql" else "EXPLAIN QUERY PLAN "
    with connection.cursor() as cursor:
        cursor.execute(prefix + sql, [experiment_id, "train/loss", 0, 2**31 - 1])
        return " | ".join(str(row[-1] if connection.vendor == "sqlite" else row[0]).strip()
                          for row in cursor.fetchall())


def matches_algorithm(experiment_id: int) -> bool:
    """The database's answer for a full and a zoomed view equals bucket_points on all points."""
    from webapp.metrics.downsample import bucket_points, query_series
    from webapp.metrics.models import MetricPoint

    points = list(MetricPoint.objects.filter(experiment_id=experiment_id, key="train/loss")
                  .order_by("step").values_list("step", "value"))
    full, _ = query_series(experiment_id, "train/loss", 0, 2**31 - 1)
    zoom, _ = query_series(experiment_id, "train/loss", 1_234, 101_234)
    return full == bucket_points(points) and zoom == bucket_points([p for p in points if 1_234 <= p[0] <= 101_234])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=50, help="timed requests per page")
    parser.add_argument("--experiments", type=int, default=10_000)
    parser.add_argument("--steps", type=int, default=250_000, help="steps per training key (4 keys)")
    parser.add_argument("--reseed", action="store_true")
    args = parser.parse_args()

    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client

    from webapp.accounts.models import Team
    from webapp.api.models import ApiToken
    from webapp.experiments.models import Experiment
    from webapp.metrics.models import MetricPoint, MetricRollup

    settings.ALLOWED_HOSTS = ["*"]
    call_command("migrate", verbosity=0)
    if args.reseed:
        team = Team.objects.filter(slug=TEAM).first()
        if team:
            MetricPoint.objects.filter(experiment__team=team).delete()
            Experiment.objects.filter(team=team).delete()
            team.checkpoints.all().delete()
            team.datasets.all().delete()
            team.delete()
            get_user_model().objects.filter(username=TEAM).delete()
    seeded_in = None
    if not Team.objects.filter(slug=TEAM).exists():
        t0 = time.perf_counter()
        seed(args.experiments, args.steps)
        seeded_in = round(time.perf_counter() - t0, 1)

    big = Experiment.objects.get(team__slug=TEAM, name="long run")
    client = Client()
    client.force_login(get_user_model().objects.get(username=TEAM))
    metrics_url = f"/experiments/{big.pk}/metrics.json"
    ApiToken.objects.filter(user__username=TEAM).delete()
    _, secret = ApiToken.issue(get_user_model().objects.get(username=TEAM), "bench")
    api = Client(HTTP_AUTHORIZATION=f"Bearer {secret}")
    mid = args.steps // 2
    # The first full view builds the run's rollups (once); every later view reads them.
    MetricRollup.objects.filter(experiment=big).delete()
    t0 = time.perf_counter()
    assert client.get(metrics_url).status_code == 200
    first_view_ms = round((time.perf_counter() - t0) * 1000, 1)
    result = {
        "bench": "dashboard", "database": connection.vendor, "n": args.n, "seeded_s": seeded_in,
        "experiments": Experiment.objects.filter(team__slug=TEAM).count(),
        "metric_points": MetricPoint.objects.filter(experiment=big).count(),
        "list": timed(client, "/", args.n),
        "experiment_page": timed(client, f"/experiments/{big.pk}/", args.n),
        "metrics_first_view_builds_rollups_ms": first_view_ms,
        "metrics_full": timed(client, metrics_url, args.n),
        "metrics_zoom_10pct": timed(client, metrics_url, args.n, {"from": mid, "to": mid + args.steps // 10}),
        "metrics_live_append": timed(client, metrics_url, args.n, {"after": args.steps - 10}),
        "api_list": timed(api, "/api/experiments/", args.n),
        "api_metrics_full": timed(api, f"/api/experiments/{big.pk}/metrics/", args.n),
        "metrics_full_points": sum(len(s["steps"]) for s in client.get(metrics_url).json()["series"].values()),
        "matches_algorithm": matches_algorithm(big.pk),
        "bucket_query_plan": plan(big.pk),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
