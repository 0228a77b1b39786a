"""Experiments list: server time per page with N experiments of one team (default 10,000).

    .venv/bin/python bench/list_page.py --experiments 10000

Creates a throw-away team whose experiments carry realistic config and results JSON (a few KB
each), renders the list through Django's test client for several filters and sort orders,
prints one JSON line (median milliseconds and queries per page), and deletes what it created.
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

QUERIES = {
    "newest": "/",
    "sort_test_acc": "/?sort=-test",
    "sort_best_dev": "/?sort=-best_dev",
    "sort_name": "/?sort=name",
    "status_filter": "/?status=SUCCEEDED",
    "tag_filter": "/?tag=baseline",
    "text_search": "/?q=T%3D4",
    "page_150": "/?page=150",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiments", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from tests.webapp.factories import sample_results
    from webapp.accounts.models import Membership, Team
    from webapp.experiments.models import Experiment, Tag
    from webapp.registry.models import Checkpoint, Dataset

    settings.ALLOWED_HOSTS = ["*"]
    call_command("migrate", verbosity=0)
    suffix = str(os.getpid())
    team = Team.objects.create(name=f"bench-{suffix}", slug=f"bench-{suffix}")
    user = get_user_model().objects.create_user(f"bench-{suffix}")
    Membership.objects.create(team=team, user=user)
    try:
        labels = [f"class-{i}" for i in range(10)]
        ckpt = Checkpoint.objects.create(team=team, name="t", path="/nowhere", info={})
        data = Dataset.objects.create(team=team, name="d", train_path="/nowhere", labels=labels)
        config = {"data": {"train": "/data/train.tsv", "labels": labels, "max_length": 64},
                  "teacher": {"path": "/teachers/bert"}, "student": {"type": "textcnn", "options": {}},
                  "kd": {"temperature": 4.0, "alpha": 0.5}, "train": {"epochs": 3, "batch_size": 64},
                  "notes": "x" * 1500}
        started = time.monotonic()
        rows = []
        for i in range(args.experiments):
            results = sample_results(labels)
            results["student"]["accuracy"] = (i * 7919 % 1000) / 1000
            rows.append(Experiment(team=team, owner=user, name=f"run {i} T={i % 8}", teacher=ckpt, dataset=data,
                                   student_type="textcnn", config=config, status="SUCCEEDED", progress=1.0,
                                   best={"dev/accuracy": (i * 104729 % 1000) / 1000, "dev/macro_f1": 0.5},
                                   latest={"train/loss": 0.3, "dev/accuracy": 0.6}, results=results,
                                   notes="baseline run" if i % 10 == 0 else ""))
        Experiment.objects.bulk_create(rows, batch_size=500)
        tag = Tag.objects.create(team=team, name="baseline")
        ids = Experiment.objects.filter(team=team).values_list("pk", flat=True)[::10]
        Experiment.tags.through.objects.bulk_create(
            [Experiment.tags.through(experiment_id=pk, tag_id=tag.pk) for pk in ids], batch_size=500)
        seed_seconds = time.monotonic() - started
        bytes_per_row = len(json.dumps(config)) + len(json.dumps(rows[0].results))

        client = Client()
        client.force_login(user)
        figures = {}
        for name, url in QUERIES.items():
            client.get(url)  # warm caches
            times = []
            for _ in range(args.repeat):
                with CaptureQueriesContext(connection) as queries:
                    t0 = time.perf_counter()
                    response = client.get(url)
                    times.append((time.perf_counter() - t0) * 1000)
                assert response.status_code == 200, (url, response.status_code)
            figures[name] = {"ms_median": round(statistics.median(times), 1), "queries": len(queries)}
        print(json.dumps({"bench": "list_page", "database": connection.vendor, "experiments": args.experiments,
                          "json_bytes_per_row": bytes_per_row, "seed_seconds": round(seed_seconds, 1),
                          "pages": figures}))
    finally:
        Experiment.objects.filter(team=team).delete()
        team.delete()
        user.delete()


if __name__ == "__main__":
    main()
