"""JSON endpoints polled by the experiment page: status and metric points after a cursor.

Every error has one shape, {"error": message}, from `json_error`.
"""

from __future__ import annotations

import math
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import JsonResponse
from django.utils import timezone
from django.views.decorators.http import require_GET

from webapp.experiments.access import get_owned
from webapp.experiments.models import Experiment

# At most this many distinct steps per metrics.json answer; the client asks again at once
# while "more" is true, so a long finished run loads in a few round trips.
MAX_STEPS_PER_RESPONSE = 5000
MAX_STEP = 2**31 - 1


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


def status_payload(experiment: Experiment) -> dict[str, Any]:
    return {
        "status": experiment.status,
        "status_label": experiment.get_status_display(),
        "progress": finite(experiment.progress),
        "current_step": experiment.current_step,
        "total_steps": experiment.total_steps,
        "error": experiment.error,
        "latest": _finite_map(experiment.latest),
        "best": _finite_map(experiment.best),
        "finished": experiment.is_finished,
        "cancel_requested": experiment.cancel_requested,
        "eta_seconds": eta_seconds(experiment),
    }


@login_required
@require_GET
def status(request, pk: int):
    experiment = get_owned(request.user, Experiment, pk=pk)
    return JsonResponse(status_payload(experiment))


@login_required
@require_GET
def metrics(request, pk: int):
    """{"series": {key: {"steps": [...], "values": [...]}}, "cursor": last step, "more": bool}.

    Points with step > `after` (default -1: everything), ordered by step.
    """
    experiment = get_owned(request.user, Experiment, pk=pk)
    raw = request.GET.get("after", "-1")
    try:
        after = int(raw)
    except ValueError:
        return json_error(f"after must be an integer step (got {raw[:40]!r}).")
    if not -1 <= after <= MAX_STEP:
        return json_error(f"after must be between -1 and {MAX_STEP} (got {after}).")

    points = experiment.metrics.filter(step__gt=after)
    more = False
    steps = points.order_by("step").values_list("step", flat=True).distinct()
    last = list(steps[MAX_STEPS_PER_RESPONSE - 1:MAX_STEPS_PER_RESPONSE])
    if last:
        more = points.filter(step__gt=last[0]).exists()
        points = points.filter(step__lte=last[0])

    series: dict[str, dict[str, list]] = {}
    cursor = after
    for key, step, value in points.order_by("step", "key").values_list("key", "step", "value"):
        entry = series.setdefault(key, {"steps": [], "values": []})
        entry["steps"].append(step)
        entry["values"].append(finite(value))
        cursor = step
    return JsonResponse({"series": series, "cursor": cursor, "more": more})
