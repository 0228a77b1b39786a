"""Downsample long metric series to at most `limit` points with min/max buckets.

Why min/max buckets rather than LTTB: each bucket's minimum and maximum are plain SQL
aggregates, so the database reduces a million rows in one index range scan and only
~1,000 rows cross the wire; LTTB picks each point from the previous pick, so it needs every
point in Python. Min/max also never hides a spike (a diverging loss), which is what a
person zooming into a training curve looks for.

The view [lo, hi] is cut into equal step ranges (aligned to multiples of their width); each
keeps the point with the smallest and the point with the largest value (the earlier step on
ties), in step order, and the first and last points of the view are always kept. A series with at most `limit` points is returned
exactly. `bucket_points` (pure Python) and `query_series` (SQL) compute the same thing.

Even in SQL, a full view of a 1M-point run would read every point on each request, so
blocks of BLOCK steps the run has moved past are summarised once into MetricRollup rows
(min and max with their steps), and wide views read those plus the few points at the edges.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from django.db import connection, transaction

DEFAULT_LIMIT = 1000
BLOCK = 32  # steps per MetricRollup row
Point = tuple[int, float | None]


def bucket_width(lo: int, hi: int, limit: int) -> int:
    """Steps per bucket so that 2 points per bucket plus first and last fit in `limit`.

    Buckets start at multiples of the width (step // width), so panning keeps them stable;
    one bucket is held back for the partial bucket this alignment can add. Widths above
    BLOCK are rounded up to a multiple of it, so a bucket is made of whole rollup blocks.
    """
    buckets = max(1, (limit - 2) // 2 - 1)
    width = max(1, math.ceil((hi - lo + 1) / buckets))
    return math.ceil(width / BLOCK) * BLOCK if width > BLOCK else width


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
    width = bucket_width(points[0][0], points[-1][0], limit)
    low: dict[int, Point] = {}
    high: dict[int, Point] = {}
    for point in points:
        b = point[0] // width
        if b not in low or _key(point[1]) < _key(low[b][1]):
            low[b] = point
        if b not in high or _key(point[1]) > _key(high[b][1]):
            high[b] = point
    return assemble(points[0], points[-1], [*low.values(), *high.values()])


# --- SQL ---------------------------------------------------------------------------------

_TABLE = "experiments_metricpoint"
_RANGE = f"FROM {_TABLE} WHERE experiment_id = %s AND key = %s AND step >= %s AND step <= %s"
Extremes = tuple[int, Point, Point]  # (count, point with the minimum, point with the maximum)


def _rows(sql: str, params: list) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _grouped_extremes(source: str, params: list, bucket: str, count: str = "COUNT(*)",
                      low: tuple[str, str] = ("value", "step"),
                      high: tuple[str, str] = ("value", "step")) -> dict[int, Extremes]:
    """{bucket: (count, min point, max point)} of the rows of `source` grouped by `bucket`.

    `low`/`high` name the (value, step) columns holding each row's minimum/maximum.
    """
    out: dict[int, Extremes] = {}
    if connection.vendor == "postgresql":
        # One scan: min/max over [value, step] arrays carry each extreme's step along (ties:
        # the earlier step); PostgreSQL ranks NaN above every number, as `_key` does.
        sql = (f"SELECT {bucket} AS b, {count}, MIN(ARRAY[{low[0]}, {low[1]}::float8]), "
               f"MAX(ARRAY[{high[0]}, -{high[1]}::float8]) {source} GROUP BY b")
        for b, n, lo, hi in _rows(sql, params):
            out[b] = (n, (int(lo[1]), lo[0]), (int(-hi[1]), hi[0]))
        return out
    # SQLite: with exactly one min() or max() in a query, bare columns come from its row.
    lows = {b: (n, (step, value)) for b, n, _, step, value in _rows(
        f"SELECT {bucket}, {count}, MIN({low[0]}), {low[1]}, {low[0]} {source} GROUP BY {bucket}", params)}
    for b, _, step, value in _rows(
            f"SELECT {bucket}, MAX({high[0]}), {high[1]}, {high[0]} {source} GROUP BY {bucket}", params):
        out[b] = (lows[b][0], lows[b][1], (step, value))
    return out


def _raw_extremes(experiment_id: int, key: str, lo: int, hi: int, width: int) -> dict[int, Extremes]:
    """{step // width: extremes} over the points in [lo, hi], grouped in the database."""
    if lo > hi:
        return {}
    return _grouped_extremes(_RANGE, [experiment_id, key, lo, hi], f"step / {int(width)}")


def build_rollups(experiment_id: int, key: str) -> int:
    """Store the rollup of every block the series has moved past and that is not stored yet.

    A block is complete once a point beyond it exists (the sink writes in step order). Two
    requests building at once insert the same rows; the unique constraint keeps one.
    """
    rows = _rows(f"SELECT step {_RANGE} ORDER BY step DESC LIMIT 1", [experiment_id, key, 0, 2**31 - 1])
    if not rows:
        return 0
    last = rows[0][0]
    complete = last // BLOCK  # blocks below this one are complete
    stored = _rows("SELECT block FROM experiments_metricrollup WHERE experiment_id = %s AND key = %s "
                   "ORDER BY block DESC LIMIT 1", [experiment_id, key])
    start = stored[0][0] + 1 if stored else 0
    if start >= complete:
        return 0
    # Built inside the database: the points never travel to Python.
    params = [experiment_id, key, start * BLOCK, complete * BLOCK - 1]
    columns = "experiment_id, key, block, count, min_step, min_value, max_step, max_value"
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                f"INSERT INTO experiments_metricrollup ({columns}) "
                f"SELECT experiment_id, key, b, n, lo[2]::int, lo[1], (-hi[2])::int, hi[1] FROM ("
                f" SELECT experiment_id, key, step / {BLOCK} AS b, COUNT(*) AS n,"
                f" MIN(ARRAY[value, step::float8]) AS lo, MAX(ARRAY[value, -step::float8]) AS hi"
                f" {_RANGE} GROUP BY experiment_id, key, b) AS g ON CONFLICT DO NOTHING", params)
        else:
            # SQLite: bare columns follow the one MIN() (then the one MAX()) of each query.
            cursor.execute(
                f"INSERT OR IGNORE INTO experiments_metricrollup ({columns}) "
                f"SELECT experiment_id, key, step / {BLOCK}, COUNT(*), step, MIN(value), step, value "
                f"{_RANGE} GROUP BY step / {BLOCK}", params)
            cursor.execute(
                "UPDATE experiments_metricrollup SET max_step = m.s, max_value = m.v FROM ("
                f" SELECT step / {BLOCK} AS b, MAX(value) AS v, step AS s {_RANGE} GROUP BY step / {BLOCK}) AS m "
                "WHERE experiment_id = %s AND key = %s AND block = m.b",
                [*params, experiment_id, key])
        return cursor.rowcount


def _rollup_extremes(experiment_id: int, key: str, first: int, last: int, width: int) -> dict[int, Extremes]:
    """Like _raw_extremes for width % BLOCK == 0: whole blocks from rollups, the edges from points."""
    build_rollups(experiment_id, key)
    lo_block = -(-first // BLOCK)  # first block that starts inside [first, last]
    hi_block = (last + 1) // BLOCK - 1  # last block that ends inside it
    blocks = ("FROM experiments_metricrollup WHERE experiment_id = %s AND key = %s "
              "AND block >= %s AND block <= %s")
    params = [experiment_id, key, lo_block, hi_block]
    stored_to = _rows(f"SELECT block {blocks} ORDER BY block DESC LIMIT 1", params)
    covered_to = stored_to[0][0] if stored_to else lo_block - 1
    out = _grouped_extremes(blocks, params, f"block * {BLOCK} / {int(width)}", "SUM(count)",
                            ("min_value", "min_step"), ("max_value", "max_step")) if stored_to else {}
    # Points outside the stored blocks: the head before them and everything after them.
    for lo, hi in ((first, min(last, lo_block * BLOCK - 1)), (max(first, (covered_to + 1) * BLOCK), last)):
        for b, extremes in _raw_extremes(experiment_id, key, lo, hi, width).items():
            _merge(out, b, extremes)
    return out


def _merge(out: dict[int, Extremes], b: int, new: Extremes) -> None:
    if b not in out:
        out[b] = new
        return
    count, low, high = out[b]
    if _key(new[1][1]) < _key(low[1]) or _key(new[1][1]) == _key(low[1]) and new[1][0] < low[0]:
        low = new[1]
    if _key(new[2][1]) > _key(high[1]) or _key(new[2][1]) == _key(high[1]) and new[2][0] < high[0]:
        high = new[2]
    out[b] = (count + new[0], low, high)


def query_series(experiment_id: int, key: str, lo: int, hi: int,
                 limit: int = DEFAULT_LIMIT) -> tuple[list[Point], bool]:
    """(points of one series with lo <= step <= hi, downsampled in the database; whether reduced)."""
    params = [experiment_id, key, lo, hi]
    # Two index probes, no scan (SQLite scans the range for MIN and MAX in one query).
    first = _rows(f"SELECT step {_RANGE} ORDER BY step LIMIT 1", params)
    if not first:
        return [], False
    first_step, last_step = first[0][0], _rows(f"SELECT step {_RANGE} ORDER BY step DESC LIMIT 1", params)[0][0]
    if last_step - first_step + 1 <= limit:  # steps are unique per key: at most `limit` rows
        return _fetch(params), False
    width = bucket_width(first_step, last_step, limit)
    if width % BLOCK == 0:
        buckets = _rollup_extremes(experiment_id, key, first_step, last_step, width)
    else:
        buckets = _raw_extremes(experiment_id, key, first_step, last_step, width)
    if sum(count for count, _, _ in buckets.values()) <= limit:
        return _fetch(params), False
    ends = {p[0]: p for p in _fetch([experiment_id, key, first_step, first_step])
            + _fetch([experiment_id, key, last_step, last_step])}
    extremes = [point for _, low, high in buckets.values() for point in (low, high)]
    return assemble(ends[first_step], ends[last_step], extremes), True


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
