"""Server-side downsampling of metric series: the min/max bucket algorithm and metrics.json's range."""

from __future__ import annotations

import random

import pytest
from django.db import connection

from tests.webapp.factories import add_points
from webapp.metrics import downsample
from webapp.metrics.downsample import bucket_points, query_series


def wave(n: int, seed: int = 0) -> list[tuple[int, float]]:
    rng = random.Random(seed)
    return [(step, rng.random()) for step in range(n)]


def test_a_series_under_the_limit_is_returned_exactly():
    points = wave(1000)
    assert bucket_points(points, 1000) == points
    assert bucket_points(points[:3], 1000) == points[:3]


def test_downsampling_keeps_the_first_and_last_points_and_the_limit():
    points = wave(100_000)
    reduced = bucket_points(points, 1000)
    assert 700 < len(reduced) <= 1000  # widths are rounded up to whole rollup blocks
    assert reduced[0] == points[0] and reduced[-1] == points[-1]
    assert [s for s, _ in reduced] == sorted({s for s, _ in reduced})  # in step order, each step once


def test_downsampling_keeps_every_extreme_even_a_single_spike():
    points = [(step, 0.5) for step in range(50_000)]
    points[12_345] = (12_345, 99.0)
    points[40_001] = (40_001, -7.0)
    reduced = bucket_points(points, 200)
    assert (12_345, 99.0) in reduced and (40_001, -7.0) in reduced


def test_each_bucket_keeps_its_minimum_and_maximum():
    points = wave(10_000, seed=3)
    reduced = set(bucket_points(points, 100))
    width = downsample.bucket_width(0, 9_999, 100)
    for start in range(0, 10_000, width):
        bucket = points[start:start + width]
        assert min(bucket, key=lambda p: p[1]) in reduced and max(bucket, key=lambda p: p[1]) in reduced


def test_the_limit_must_leave_room_for_the_ends():
    with pytest.raises(ValueError):
        bucket_points(wave(10), 3)


def test_the_database_computes_the_same_points_as_the_algorithm(experiment):
    points = wave(5000, seed=7)
    add_points(experiment, "train/loss", dict(points))
    got, reduced = query_series(experiment.pk, "train/loss", 0, 10**9, 300)
    assert reduced and got == bucket_points(points, 300)
    window, _ = query_series(experiment.pk, "train/loss", 1000, 1999, 300)
    assert window == bucket_points(points[1000:2000], 300)


def test_wide_views_read_rollups_and_still_match_the_algorithm(experiment):
    from webapp.metrics.models import MetricRollup

    points = wave(40_000, seed=11)
    add_points(experiment, "train/loss", dict(points))
    assert downsample.bucket_width(0, 39_999, 200) % downsample.BLOCK == 0
    got, reduced = query_series(experiment.pk, "train/loss", 0, 10**9, 200)
    assert reduced and got == bucket_points(points, 200)
    stored = MetricRollup.objects.filter(experiment=experiment, key="train/loss").count()
    assert stored == 39_999 // downsample.BLOCK  # the block holding the last step may still grow
    # An unaligned view: partial blocks at both edges come from the points themselves.
    got, _ = query_series(experiment.pk, "train/loss", 1_001, 37_777, 200)
    assert got == bucket_points(points[1_001:37_778], 200)


def test_rollups_grow_with_a_running_series(experiment):
    from webapp.metrics.models import MetricRollup

    points = wave(30_000, seed=5)
    add_points(experiment, "train/loss", dict(points[:20_000]))
    query_series(experiment.pk, "train/loss", 0, 10**9, 100)
    add_points(experiment, "train/loss", dict(points[20_000:]))
    got, _ = query_series(experiment.pk, "train/loss", 0, 10**9, 100)
    assert got == bucket_points(points, 100)
    assert MetricRollup.objects.filter(experiment=experiment).count() == 29_999 // downsample.BLOCK


def test_a_sparse_series_under_the_limit_stays_exact_in_the_database(experiment):
    add_points(experiment, "dev/accuracy", {step: step / 1e6 for step in range(0, 500_000, 1000)})
    got, reduced = query_series(experiment.pk, "dev/accuracy", 0, 10**9, 1000)
    assert not reduced and len(got) == 500


def test_the_series_keys_come_from_the_index(experiment, make_experiment):
    add_points(experiment, "train/loss", {1: 1.0, 2: 0.5})
    add_points(experiment, "dev/accuracy", {2: 0.5})
    add_points(make_experiment(name="other"), "train/zzz", {1: 1.0})
    assert downsample.series_keys(experiment.pk) == ["dev/accuracy", "train/loss"]


def test_the_bucket_query_uses_the_unique_index(experiment):
    if connection.vendor == "postgresql":  # the one-scan array form downsample.py uses there
        sql = ("SELECT (step - %s) / %s AS b, COUNT(*), MIN(ARRAY[value, step::float8]) FROM experiments_metricpoint "
               "WHERE experiment_id = %s AND key = %s AND step >= %s AND step <= %s GROUP BY b")
        params = [0, 2, experiment.pk, "k", 0, 10]
    else:  # SQLite's bare-column form
        sql = ("SELECT COUNT(*), MIN(value), step, value FROM experiments_metricpoint WHERE experiment_id = %s "
               "AND key = %s AND step >= %s AND step <= %s GROUP BY (step - %s) / %s")
        params = [experiment.pk, "k", 0, 10, 0, 2]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL enable_seqscan = off")
            cursor.execute("EXPLAIN " + sql, params)
        else:
            cursor.execute("EXPLAIN QUERY PLAN " + sql, params)
        plan = " ".join(str(row) for row in cursor.fetchall())
    # SQLite names the index of a unique constraint declared with the table "sqlite_autoindex_*".
    assert "unique_metric_point" in plan or "USING INDEX sqlite_autoindex_experiments_metricpoint" in plan
    assert "Seq Scan" not in plan and "SCAN experiments_metricpoint" not in plan


def test_metrics_json_downsamples_long_series(alice_client, experiment):
    add_points(experiment, "train/loss", dict(wave(20_000)))
    add_points(experiment, "dev/accuracy", {1000: 0.5, 2000: 0.6})
    body = alice_client.get(f"/experiments/{experiment.pk}/metrics.json").json()
    loss = body["series"]["train/loss"]
    assert body["downsampled"] is True and len(loss["steps"]) <= 1000
    assert loss["steps"][0] == 0 and loss["steps"][-1] == 19_999 and body["cursor"] == 19_999
    assert body["series"]["dev/accuracy"] == {"steps": [1000, 2000], "values": [0.5, 0.6]}


def test_metrics_json_requeries_a_zoomed_range_in_full_detail(alice_client, experiment):
    add_points(experiment, "train/loss", dict(wave(20_000)))
    body = alice_client.get(f"/experiments/{experiment.pk}/metrics.json", {"from": 5000, "to": 5499}).json()
    assert body["series"]["train/loss"]["steps"] == list(range(5000, 5500)) and body["downsampled"] is False
    assert (body["from"], body["to"]) == (5000, 5499)


def test_metrics_json_appends_live_points_after_the_cursor_within_the_range(alice_client, experiment):
    add_points(experiment, "train/loss", {step: 1.0 for step in range(1, 11)})
    body = alice_client.get(f"/experiments/{experiment.pk}/metrics.json", {"after": 7, "from": 2}).json()
    assert body["series"]["train/loss"]["steps"] == [8, 9, 10] and body["cursor"] == 10


def test_metrics_json_can_pick_keys_and_points(alice_client, experiment):
    add_points(experiment, "train/loss", dict(wave(500)))
    add_points(experiment, "train/lr", dict(wave(500)))
    body = alice_client.get(f"/experiments/{experiment.pk}/metrics.json", {"key": "train/lr", "points": 50}).json()
    assert list(body["series"]) == ["train/lr"] and len(body["series"]["train/lr"]["steps"]) <= 50


@pytest.mark.parametrize("query, message", [
    ({"from": "-1"}, "from must be between"), ({"to": "x"}, "to must be an integer"),
    ({"from": "10", "to": "5"}, "from must not be greater than to"), ({"points": "3"}, "points must be between"),
    ({"points": str(10**30)}, "points must be an integer"), ({"key": ["k"] * 51}, "key may be given"),
])
def test_a_bad_range_is_a_json_400(alice_client, experiment, query, message):
    response = alice_client.get(f"/experiments/{experiment.pk}/metrics.json", query)
    assert response.status_code == 400 and message in response.json()["error"]


def test_another_teams_metrics_are_not_found(charlie_client, experiment):
    assert charlie_client.get(f"/experiments/{experiment.pk}/metrics.json", {"from": 1}).status_code == 404


def test_an_id_beyond_the_id_column_is_not_found(alice_client, db):
    assert alice_client.get(f"/experiments/{10**30}/metrics.json").status_code == 404


def test_a_key_with_a_nul_character_is_refused(alice_client, experiment):
    response = alice_client.get(f"/experiments/{experiment.pk}/metrics.json", {"key": "a\x00b"})
    assert response.status_code == 400 and "no NUL" in response.json()["error"]
