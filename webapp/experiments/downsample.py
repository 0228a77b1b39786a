"""Downsample long metric series to at most `limit` points with min/max buckets.

Why min/max buckets rather than LTTB: each bucket's minimum and maximum are plain SQL
aggregates, so the database reduces a million rows in one index range scan and only
~1,000 rows cross the wire; LTTB picks each point from the previous pick, so it needs every
point in Python. Min/max also never hides a spike (a diverging loss), which is what a
person zooming into a training curve looks for.

The view [lo, hi] is cut into equal step ranges; each keeps the point with the smallest and
the point with the largest value (the earlier step on ties), in step order, and the first and
last points of the view are always kept. A series with at most `limit` points is returned
exactly. `bucket_points` (pure Python) and `query_series` (SQL) compute the same thing.
"""

from __future__ import annotations

import math
from typing import Iterable

from django.db import connection

DEFAULT_LIMIT = 1000
Point = tuple[int, float | None]


def bucket_width(lo: int, hi: int, limit: int) -> int:
    """Steps per bucket so that 2 points per bucket plus first and last fit in `limit`."""
    buckets = max(1, (limit - 2) // 2)
    return max(1, math.ceil((hi - lo + 1) / buckets))


def _key(value: float | None) -> float:
    return math.inf if value is None or value != value else value  # NaN/None rank as the largest


def assemble(first: Point, last: Point, extremes: Iterable[Point]) -> list[Point]:
    """First, last and every bucket extreme, each step once, in step order."""
    by_step = {first[0]: first, last[0]: last}
    for point in extremes:
        by_step.setdefault(point[0], point)
    return [by_step[step] for step in sorted(by_step)]


def bucket_points(points: list[Point], limit: int = DEFAULT_LIMIT) -> list[Point]:
    """Downsample `points` (sorted by step, steps unique) to at most `limit` points."""
    if limit < 4:
        raise ValueError("limit must be at least 4")
    if len(points) <= limit:
        return list(points)
    lo, hi = points[0][0], points[-1][0]
    width = bucket_width(lo, hi, limit)
    low: dict[int, Point] = {}
    high: dict[int, Point] = {}
    for point in points:
        b = (point[0] - lo) // width
        if b not in low or _key(point[1]) < _key(low[b][1]):
            low[b] = point
        if b not in high or _key(point[1]) > _key(high[b][1]):
            high[b] = point
    return assemble(points[0], points[-1], [*low.values(), *high.values()])


# --- SQL ---------------------------------------------------------------------------------

_TABLE = "experiments_metricpoint"
_RANGE = f"FROM {_TABLE} WHERE experiment_id = %s AND key = %s AND step >= %s AND step <= %s"


def _rows(sql: str, params: list) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def query_series(experiment_id: int, key: str, lo: int, hi: int,
                 limit: int = DEFAULT_LIMIT) -> tuple[list[Point], bool]:
    """(points of one series with lo <= step <= hi, downsampled in the database; whether reduced)."""
    params = [experiment_id, key, lo, hi]
    # MIN/MAX of the indexed step: two index probes, no scan.
    first_step, last_step = _rows(f"SELECT MIN(step), MAX(step) {_RANGE}", params)[0]
    if first_step is None:
        return [], False
    if last_step - first_step + 1 <= limit:  # steps are unique per key: at most `limit` rows
        return _fetch(params), False
    width = bucket_width(first_step, last_step, limit)
    extremes: list[Point] = []
    total = 0
    if connection.vendor == "postgresql":
        # One scan: min/max over [value, step] arrays carry each extreme's step along (ties:
        # the earlier step); PostgreSQL ranks NaN above every number, as `_key` does.
        sql = ("SELECT COUNT(*), MIN(ARRAY[value, step::float8]), MAX(ARRAY[value, -step::float8]) "
               f"{_RANGE} GROUP BY (step - %s) / %s")
        for count, low, high in _rows(sql, [*params, first_step, width]):
            total += count
            extremes.append((int(low[1]), low[0]))
            extremes.append((int(-high[1]), high[0]))
    else:
        # SQLite: with exactly one min() or max() in a query, bare columns come from its row.
        grouped = f"{_RANGE} GROUP BY (step - %s) / %s"
        for count, _, step, value in _rows(
                f"SELECT COUNT(*), MIN(value), step, value {grouped}", [*params, first_step, width]):
            total += count
            extremes.append((step, value))
        for _, step, value in _rows(f"SELECT MAX(value), step, value {grouped}", [*params, first_step, width]):
            extremes.append((step, value))
    if total <= limit:
        return _fetch(params), False
    points = {p[0]: p for p in _fetch([experiment_id, key, first_step, first_step])
              + _fetch([experiment_id, key, last_step, last_step])}
    return assemble(points[first_step], points[last_step], extremes), True


def _fetch(params: list) -> list[Point]:
    return [(step, value) for step, value in _rows(f"SELECT step, value {_RANGE} ORDER BY step", params)]


def series_keys(experiment_id: int) -> list[str]:
    """The distinct metric keys of an experiment, by skipping through the unique index.

    A plain DISTINCT reads every point; this recursive query asks the index for the next
    key after the previous one, so it costs one probe per key on SQLite and PostgreSQL.
    """
    sql = (f"WITH RECURSIVE k(key) AS ("
           f" SELECT MIN(key) FROM {_TABLE} WHERE experiment_id = %s"
           f" UNION ALL SELECT (SELECT MIN(key) FROM {_TABLE} WHERE experiment_id = %s AND key > k.key)"
           f" FROM k WHERE k.key IS NOT NULL"
           f") SELECT key FROM k WHERE key IS NOT NULL")
    return [key for (key,) in _rows(sql, [experiment_id, experiment_id])]
