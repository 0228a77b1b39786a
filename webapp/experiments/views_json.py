"""JSON endpoints polled by the experiment page: status and metric points after a cursor.

Every error has one shape, {"error": message}, from `json_error`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import JsonResponse
from django.utils import timezone
from django.views.decorators.http import require_GET

from webapp.accounts.access import get_owned
from webapp.experiments.models import Experiment
from webapp.metrics import downsample

MAX_STEP = 2**31 - 1
MIN_POINTS, MAX_POINTS = 10, 5000  # the fewest and most points per series a client may ask for
MAX_KEYS = 50
SYSTEM_PREFIX = "system/"


@dataclass(frozen=True)
class MetricWindow:
    """What part of the metric streams to send: a step range, a cursor, a point budget.

    `from`/`to` bound the steps (the zoomed view); `after` is the live cursor (only steps
    after it); `points` caps each series (min/max buckets beyond it); `keys` picks series.
    """

    lo: int = 0
    hi: int = MAX_STEP
    after: int = -1
    points: int = downsample.DEFAULT_LIMIT
    keys: tuple[str, ...] = ()

    @classmethod
    def from_query(cls, query) -> MetricWindow:
        """Parse GET parameters; ValueError carries a message naming the parameter."""
        after = _int_param(query, "after", -1, -1, MAX_STEP)
        lo = _int_param(query, "from", 0, 0, MAX_STEP)
        hi = _int_param(query, "to", MAX_STEP, 0, MAX_STEP)
        if lo > hi:
            raise ValueError(f"from must not be greater than to (got from={lo}, to={hi}).")
        points = _int_param(query, "points", downsample.DEFAULT_LIMIT, MIN_POINTS, MAX_POINTS)
        keys = tuple(k for k in query.getlist("key") if k)
        if len(keys) > MAX_KEYS or any(len(k) > 100 or "\x00" in k for k in keys):
            raise ValueError(f"key may be given at most {MAX_KEYS} times, each at most 100 characters (no NUL).")
        return cls(lo=lo, hi=hi, after=after, points=points, keys=keys)


def _int_param(query, name: str, default: int, minimum: int, maximum: int) -> int:
    raw = query.get(name)
    if raw is None or raw == "" and name != "after":
        return default
    try:
        if len(raw) > 20:
            raise ValueError
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name} must be an integer step (got {raw[:40]!r}).") from None
    if not minimum <= value <= maximum:
        raise ValueError(f"{name} must be between {minimum} and {maximum} (got {value}).")
    return value


def metrics_payload(experiment: Experiment, window: MetricWindow) -> dict[str, Any]:
    """{"series": {key: {"steps", "values"}}, "cursor", "more": false, "downsampled", "from", "to"}.

    Points with max(from, after + 1) <= step <= to, each series downsampled to `points`
    (its first/last points and every bucket's extremes). `cursor` is the last step sent,
    for the next `after`; `downsampled` says whether any series was reduced.
    """
    lo = max(window.lo, window.after + 1)
    series: dict[str, dict[str, list]] = {}
    cursor = window.after
    reduced = False
    if lo <= window.hi:
        # system/... series are keyed by seconds, not steps: only sent when asked for by name (their own cursor)
        keys = window.keys or [k for k in downsample.series_keys(experiment.pk) if not k.startswith(SYSTEM_PREFIX)]
        for key in keys:
            points, was_reduced = downsample.query_series(experiment.pk, key, lo, window.hi, window.points)
            if not points:
                continue
            reduced = reduced or was_reduced
            series[key] = {"steps": [s for s, _ in points], "values": [finite(v) for _, v in points]}
            cursor = max(cursor, points[-1][0])
    return {"series": series, "cursor": cursor, "more": False, "downsampled": reduced,
            "from": window.lo, "to": window.hi}


def json_error(message: str, status: int = 400) -> JsonResponse:
    """The one error shape of every JSON endpoint."""
    return JsonResponse({"error": message}, status=status)


def finite(value: Any) -> Any:
    """NaN/inf are not JSON; a missing point (null) is what the charts should see."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _finite_map(mapping: Any) -> dict[str, Any]:
    return {str(k): finite(v) for k, v in mapping.items()} if isinstance(mapping, dict) else {}


def eta_seconds(experiment: Experiment) -> float | None:
    """Remaining seconds, extrapolated from the time since start and the progress so far."""
    if experiment.status != Experiment.Status.RUNNING or experiment.started_at is None:
        return None
    progress = experiment.progress or 0.0
    if not 0.0 < progress < 1.0:
        return None
    elapsed = (timezone.now() - experiment.started_at).total_seconds()
    return max(0.0, round(elapsed * (1.0 - progress) / progress, 1))


def queue_place(experiment: Experiment) -> dict[str, Any]:
    """{"position": N in its pool's queue, "note": what it waits for} while QUEUED; {} otherwise."""
    if experiment.status != Experiment.Status.QUEUED:
        return {}
    from webapp.gpuqueue.board import waiting_note
    from webapp.gpuqueue.queue import place_in_queue

    return {"position": place_in_queue(experiment), "note": waiting_note(experiment)}


def status_payload(experiment: Experiment) -> dict[str, Any]:
    return {
        "queue": queue_place(experiment),
        "status": experiment.status,
        "status_label": experiment.get_status_display(),
        "progress": finite(experiment.progress),
        "current_step": experiment.current_step,
        "total_steps": experiment.total_steps,
        "error": experiment.error,
        "log_tail": experiment.log_tail,
        "latest": _finite_map(experiment.latest),
        "best": _finite_map(experiment.best),
        "finished": experiment.is_finished,
        "cancel_requested": experiment.cancel_requested,
        "eta_seconds": eta_seconds(experiment),
        "phase": _finite_map(experiment.phase) or None,  # the run's current phase (distill_core/progress.py)
    }


@login_required
@require_GET
def status(request, pk: int):
    experiment = get_owned(request.user, Experiment, pk=pk)
    return JsonResponse(status_payload(experiment))


@login_required
@require_GET
def metrics(request, pk: int):
    """Downsampled metric series of one experiment; see `metrics_payload`."""
    experiment = get_owned(request.user, Experiment, pk=pk)
    try:
        window = MetricWindow.from_query(request.GET)
    except ValueError as exc:
        return json_error(str(exc))
    return JsonResponse(metrics_payload(experiment, window))
