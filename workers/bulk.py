"""Fast, idempotent writes of metric points.

    insert_points(experiment_id, points) -> None

`points` are MetricPoint instances or (key, step, value) tuples. On PostgreSQL they go in one
`INSERT ... SELECT ... FROM unnest(keys, steps, values) ON CONFLICT DO NOTHING` per chunk: three
array parameters instead of a model instance and four placeholders per row, so a flush of
thousands of points is one short round trip. Elsewhere (SQLite) the ORM's
bulk_create(ignore_conflicts=True) is used. Either way a point already stored under the unique
(experiment, key, step) is skipped, so a retried flush neither loses nor duplicates.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from django.db import connection

from webapp.metrics.models import MetricPoint

CHUNK = 20_000  # points per statement: bounds the size of one query's arrays


def insert_points(experiment_id: int, points: Iterable[Any]) -> None:
    """Store `points` for the experiment, skipping any (key, step) it already has."""
    rows = [_row(p) for p in points]
    if not rows:
        return
    if connection.vendor == "postgresql":
        for start in range(0, len(rows), CHUNK):
            _insert_unnest(experiment_id, rows[start: start + CHUNK])
    else:
        MetricPoint.objects.bulk_create(
            [MetricPoint(experiment_id=experiment_id, key=k, step=s, value=v) for k, s, v in rows],
            batch_size=1000, ignore_conflicts=True)


def _row(point: Any) -> tuple[str, int, float]:
    if isinstance(point, MetricPoint):
        return point.key, int(point.step), float(point.value)
    key, step, value = point
    return key, int(step), float(value)


def _insert_unnest(experiment_id: int, rows: Sequence[tuple[str, int, float]]) -> None:
    meta = MetricPoint._meta
    qn = connection.ops.quote_name
    table = qn(meta.db_table)
    columns = ", ".join(qn(meta.get_field(name).column) for name in ("experiment", "key", "step", "value"))
    keys, steps, values = zip(*rows, strict=True)
    sql = (f"INSERT INTO {table} ({columns}) "
           f"SELECT %s, k, s, v FROM unnest(%s::varchar[], %s::integer[], %s::double precision[]) AS t(k, s, v) "
           f"ON CONFLICT DO NOTHING")
    with connection.cursor() as cursor:
        cursor.execute(sql, [experiment_id, _text_array(keys), _array(steps), _array(values)])


def _array(numbers: Iterable[int | float]) -> str:
    """A Postgres array literal of numbers: '{1,2.5,inf}' (repr keeps every float's digits; Postgres reads inf and nan)."""
    return "{" + ",".join(map(repr, numbers)) + "}"


def _text_array(texts: Iterable[str]) -> str:
    """A Postgres array literal of strings, each double-quoted with backslashes and quotes escaped."""
    return "{" + ",".join('"' + t.replace("\\", "\\\\").replace('"', '\\"') + '"' for t in texts) + "}"
