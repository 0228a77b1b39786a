"""Side-by-side comparison of experiments: config diff, results rows and the Pareto front.

Pure functions over plain data (no queries), so each can be tested on its own.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from webapp.experiments.results import summarise

MAX_COMPARE = 12
MISSING = object()


class IdsError(ValueError):
    """The ids parameter cannot be read; the message says why."""


def parse_ids(raw: str | Sequence[str]) -> list[int]:
    """ "3,7, 9" (or ["3", "7,9"]) -> [3, 7, 9]: distinct, in the given order, 2..MAX_COMPARE of them."""
    parts = [raw] if isinstance(raw, str) else list(raw)
    ids: list[int] = []
    for token in (t.strip() for part in parts for t in part.split(",")):
        if not token:
            continue
        if not (token.isascii() and token.isdigit()) or len(token) > 12 or int(token) == 0:
            raise IdsError(f"{token[:30]!r} is not an experiment id; ids are positive whole numbers, e.g. ?ids=3,7.")
        if int(token) not in ids:
            ids.append(int(token))
    if len(ids) < 2:
        raise IdsError("Choose at least two experiments to compare (e.g. ?ids=3,7).")
    if len(ids) > MAX_COMPARE:
        raise IdsError(f"Compare at most {MAX_COMPARE} experiments at once (got {len(ids)}).")
    return ids


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """{"kd": {"alpha": 0.5}, "data": {"labels": [...]}} -> {"kd.alpha": 0.5, "data.labels": [...]}.

    Lists are leaves (a label list differs or not as a whole); an empty dict is a leaf too.
    """
    if isinstance(value, dict) and value:
        flat: dict[str, Any] = {}
        for key, item in value.items():
            flat.update(flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return flat
    return {prefix: value} if prefix else {}


def _same(values: list[Any]) -> bool:
    first = json.dumps(values[0], sort_keys=True, default=str)
    return all(json.dumps(v, sort_keys=True, default=str) == first for v in values[1:])


def config_diff(configs: list[Any], ignore: Sequence[str] = ("name", "output_dir")) -> list[dict[str, Any]]:
    """Rows {"key", "values"} for every dotted key whose value differs between the configs, sorted by key.

    A key one config lacks counts as a difference (its value is shown as missing). `ignore`
    leaves out keys that always differ and say nothing (the run's name and output directory).
    """
    flats = [flatten(c) if isinstance(c, dict) else {} for c in configs]
    keys = sorted(set().union(*flats)) if flats else []
    rows = []
    for key in keys:
        if key in ignore:
            continue
        values = [flat.get(key, MISSING) for flat in flats]
        comparable = [None if v is MISSING else v for v in values]
        if any(v is MISSING for v in values) or not _same(comparable):
            rows.append({"key": key, "values": [None if v is MISSING else display(v) for v in values],
                         "missing": [v is MISSING for v in values]})
    return rows


def display(value: Any) -> str:
    """A config value as short text for the diff table."""
    if isinstance(value, str):
        return value
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 200 else text[:199] + "…"


def pareto_front(points: Sequence[tuple[float | None, float | None]]) -> list[bool]:
    """Which (cost, accuracy) points are Pareto-optimal: lower cost and higher accuracy are better.

    A point is on the front when no other point is at least as good on both axes and strictly
    better on one. Points with a missing (None) coordinate are never on the front. Equal points
    are all on it.
    """
    def valid(p):
        return p[0] is not None and p[1] is not None

    front = []
    for i, p in enumerate(points):
        if not valid(p):
            front.append(False)
            continue
        dominated = any(
            valid(q) and j != i and q[0] <= p[0] and q[1] >= p[1] and (q[0] < p[0] or q[1] > p[1])
            for j, q in enumerate(points))
        front.append(not dominated)
    return front


def results_row(experiment) -> dict[str, Any]:
    """The compare table's numbers for one experiment (None where the run has no results yet)."""
    from webapp.experiments.lm_fields import lm_compare_row

    if (lm := lm_compare_row(experiment.results)) is not None:
        return lm
    summary = summarise(experiment.results) or {}
    rows = {r["name"]: r for r in summary.get("size_rows", [])}

    def size(name: str, who: str) -> float | None:
        return rows.get(name, {}).get(who)

    student, teacher = summary.get("student", {}), summary.get("teacher", {})
    return {
        "student_accuracy": student.get("accuracy"), "student_f1": student.get("macro_f1"),
        "teacher_accuracy": teacher.get("accuracy"), "teacher_f1": teacher.get("macro_f1"),
        "parameters": size("Parameters", "student"), "bytes": size("Size on disk", "student"),
        "latency_b1": size("Latency, batch 1", "student"), "latency_b32": size("Latency, batch 32", "student"),
        "compression": summary.get("compression"), "speedup": summary.get("speedup"),
        "best_dev": (summary.get("best_dev") or {}).get("accuracy"), "student_perplexity": None,
    }


def scatter(experiments: list, rows: list[dict[str, Any]], cost: str, quality: str = "student_accuracy"
            ) -> dict[str, Any]:
    """One scatter plot's data: student quality against `cost` ("bytes" or "latency_b1"), front marked.

    quality is "student_accuracy" (higher is better) or "student_perplexity" (language models: lower is better).
    """
    points = [(row[cost], row[quality]) for row in rows]
    lower_better = quality == "student_perplexity"
    front = pareto_front([(c, -q if lower_better and q is not None else q) for c, q in points])
    return {
        "ids": [e.pk for e in experiments],
        "names": [e.name for e in experiments],
        "x": [p[0] / 1e6 if p[0] is not None and cost == "bytes" else p[0] for p in points],
        "y": [p[1] for p in points],
        "front": front,
        "quality": "test perplexity" if lower_better else "test accuracy",
    }
