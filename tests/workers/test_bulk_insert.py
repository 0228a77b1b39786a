"""workers.bulk.insert_points: fast metric writes that stay idempotent on (experiment, key, step).

The unnest path runs only when DATABASE_URL points at PostgreSQL (CI); SQLite exercises the fallback.
"""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from webapp.accounts.models import Team
from webapp.experiments.models import Experiment
from webapp.metrics.models import MetricPoint
from webapp.registry.models import Checkpoint, Dataset
from workers import bulk
from workers.bulk import insert_points

postgres_only = pytest.mark.skipif("connection.vendor != 'postgresql'",
                                   reason="the unnest path needs PostgreSQL (set DATABASE_URL)")


@pytest.fixture
def make_experiment(db):
    team = Team.objects.create(name="Acme", slug="acme")
    checkpoint = Checkpoint.objects.create(team=team, name="t", path="/nowhere", info={"num_labels": 2})
    dataset = Dataset.objects.create(team=team, name="d", train_path="/nowhere", labels=["a", "b"])

    def make(name: str = "e") -> Experiment:
        return Experiment.objects.create(team=team, name=name, teacher=checkpoint, dataset=dataset,
                                         student_type="textcnn", config={}, status=Experiment.Status.RUNNING)

    return make


def stored(experiment: Experiment) -> list[tuple[str, int, float]]:
    return list(MetricPoint.objects.filter(experiment=experiment).order_by("key", "step")
                .values_list("key", "step", "value"))


def test_it_stores_every_point(make_experiment):
    exp = make_experiment()
    insert_points(exp.pk, [("train/loss", s, 1.0 / s) for s in range(1, 101)] + [("dev/accuracy", 100, 0.75)])
    rows = stored(exp)
    assert len(rows) == 101
    assert rows[0] == ("dev/accuracy", 100, 0.75)
    assert ("train/loss", 3, pytest.approx(1.0 / 3)) in rows


def test_a_retried_flush_neither_duplicates_nor_loses_points(make_experiment):
    exp = make_experiment()
    first = [("train/loss", s, float(s)) for s in range(10)]
    insert_points(exp.pk, first)
    insert_points(exp.pk, first + [("train/loss", 10, 10.0)])  # the retry carries one new point
    assert stored(exp) == [("train/loss", s, float(s)) for s in range(11)]


def test_a_point_already_stored_keeps_its_first_value(make_experiment):
    exp = make_experiment()
    insert_points(exp.pk, [("train/loss", 1, 0.5)])
    insert_points(exp.pk, [("train/loss", 1, 0.9)])
    assert stored(exp) == [("train/loss", 1, 0.5)]


def test_duplicates_inside_one_batch_store_one_row(make_experiment):
    exp = make_experiment()
    insert_points(exp.pk, [("train/loss", 1, 0.5), ("train/loss", 1, 0.5), ("train/lr", 1, 0.1)])
    assert stored(exp) == [("train/loss", 1, 0.5), ("train/lr", 1, 0.1)]


def test_the_same_key_and_step_of_another_experiment_is_stored(make_experiment):
    a, b = make_experiment("a"), make_experiment("b")
    insert_points(a.pk, [("train/loss", 1, 0.5)])
    insert_points(b.pk, [("train/loss", 1, 0.7)])
    assert stored(a) == [("train/loss", 1, 0.5)]
    assert stored(b) == [("train/loss", 1, 0.7)]


def test_it_accepts_model_instances_as_the_sink_builds_them(make_experiment):
    exp = make_experiment()
    insert_points(exp.pk, [MetricPoint(experiment_id=exp.pk, key="train/loss", step=2, value=0.25)])
    assert stored(exp) == [("train/loss", 2, 0.25)]


def test_nothing_to_write_issues_no_query(make_experiment):
    exp = make_experiment()
    with CaptureQueriesContext(connection) as queries:
        insert_points(exp.pk, [])
    assert len(queries) == 0


def test_keys_with_quotes_commas_and_backslashes_round_trip(make_experiment):
    exp = make_experiment()
    keys = ['train/a"b', "train/c,d", "train/e\\f", "train/{g}", "train/h i", "train/准确率", "train/NULL"]
    insert_points(exp.pk, [(k, 1, 1.0) for k in keys])
    assert sorted(k for k, _, _ in stored(exp)) == sorted(keys)


def test_floats_keep_every_digit(make_experiment):
    exp = make_experiment()
    values = [0.1 + 0.2, 1e-300, -123456.78901234567, 5e20]
    insert_points(exp.pk, [("train/x", i, v) for i, v in enumerate(values)])
    assert [v for _, _, v in stored(exp)] == values


@postgres_only
def test_postgres_writes_a_large_batch_in_one_statement_per_chunk(make_experiment, monkeypatch):
    exp = make_experiment()
    monkeypatch.setattr(bulk, "CHUNK", 1000)
    points = [(f"train/m{i % 5}", i, float(i)) for i in range(2500)]
    with CaptureQueriesContext(connection) as queries:
        insert_points(exp.pk, points)
    inserts = [q["sql"] for q in queries if "unnest" in q["sql"]]
    assert len(inserts) == 3
    assert all("ON CONFLICT DO NOTHING" in sql for sql in inserts)
    assert MetricPoint.objects.filter(experiment=exp).count() == 2500
