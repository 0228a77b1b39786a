"""Tracker pages of an experiment: its artifacts tab and file downloads, the full log, one series as CSV,
and the live status of many experiments at once (polled by the list and queue pages).

Everything goes through `get_owned`/`owned`: another team's run looks like one that does not exist.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, JsonResponse, StreamingHttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from webapp.accounts.access import get_owned, owned
from webapp.experiments import run_files
from webapp.experiments.models import Experiment
from webapp.experiments.views_json import finite, json_error
from webapp.metrics.models import MetricPoint

MAX_LIVE = 200  # rows one live.json request may ask about
CSV_CHUNK = 5000


@login_required
@require_GET
def artifacts(request, pk: int):
    experiment = get_owned(request.user, Experiment.objects.select_related("team", "owner"), pk=pk)
    files = run_files.list_files(experiment)
    return render(request, "experiments/artifacts.html", {
        "experiment": experiment,
        "files": files,
        "total": sum(f.size for f in files),
        "has_log": run_files.log_path(experiment.pk).is_file(),
        "nav": "experiments",
    })


@login_required
@require_GET
def artifact_file(request, pk: int, path: str):
    """One file of `run_files.list_files`, as an attachment; anything else is a 404."""
    experiment = get_owned(request.user, Experiment, pk=pk)
    found = run_files.resolve(experiment, path)
    if found is None:
        raise Http404("The run has no such file.")
    # Always an attachment of an opaque type: a file a run wrote is never rendered as a page of this site.
    return FileResponse(open(found, "rb"), as_attachment=True, filename=found.name,
                        content_type="application/octet-stream")


@login_required
@require_GET
def run_log(request, pk: int):
    """The run's full log (every line the worker and distill_core logged), or its stored tail when none was kept."""
    experiment = get_owned(request.user, Experiment, pk=pk)
    path = run_files.log_path(experiment.pk)
    name = f"experiment-{experiment.pk}.log"
    if path.is_file() and not path.is_symlink():
        return FileResponse(open(path, "rb"), as_attachment=True, filename=name,
                            content_type="text/plain; charset=utf-8")
    if not experiment.log_tail:
        raise Http404("This run has logged nothing.")
    return FileResponse(io.BytesIO((experiment.log_tail + "\n").encode()), as_attachment=True, filename=name,
                        content_type="text/plain; charset=utf-8")


def _csv_rows(experiment_id: int, key: str) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["step", key])
    last = -1
    while True:  # keyset pages: a million-point series never sits in memory
        page = list(MetricPoint.objects.filter(experiment_id=experiment_id, key=key, step__gt=last)
                    .order_by("step").values_list("step", "value")[:CSV_CHUNK])
        for step, value in page:
            value = finite(value)
            writer.writerow([step, "" if value is None else repr(float(value))])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        if len(page) < CSV_CHUNK:
            return
        last = page[-1][0]


@login_required
@require_GET
def metrics_csv(request, pk: int):
    """?key=train/loss -> every point of that series as step,value (not downsampled)."""
    experiment = get_owned(request.user, Experiment, pk=pk)
    key = request.GET.get("key", "")
    if not key or len(key) > 100 or "\x00" in key:
        return json_error("Name one series: ?key=train/loss (at most 100 characters).")
    if not MetricPoint.objects.filter(experiment_id=experiment.pk, key=key).exists():
        raise Http404("The run has no such series.")
    safe = "".join(ch if ch.isalnum() else "-" for ch in key)
    response = StreamingHttpResponse(_csv_rows(experiment.pk, key), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="experiment-{experiment.pk}-{safe}.csv"'
    return response


@login_required
@require_GET
def live(request):
    """?ids=3,7 -> {"experiments": {id: status fields}, "newest": the team's newest experiment id}.

    Ids of other teams (or that do not exist) are left out of the answer, never reported.
    """
    ids = []
    for token in request.GET.get("ids", "").split(","):
        token = token.strip()
        if token:
            if not (token.isascii() and token.isdigit()) or len(token) > 12:
                return json_error(f"{token[:30]!r} is not an experiment id.")
            ids.append(int(token))
    if len(ids) > MAX_LIVE:
        return json_error(f"Ask about at most {MAX_LIVE} experiments at once (got {len(ids)}).")
    mine = owned(request.user, Experiment)
    rows = mine.filter(pk__in=ids).only("pk", "status", "progress", "current_step", "total_steps",
                                         "cancel_requested", "phase")
    answer = {str(e.pk): {"status": e.status, "status_label": e.get_status_display(),
                          "progress": finite(e.progress), "current_step": e.current_step,
                          "total_steps": e.total_steps, "cancel_requested": e.cancel_requested,
                          "active": e.is_active} for e in rows}
    newest = mine.order_by("-pk").values_list("pk", flat=True).first()
    return JsonResponse({"experiments": answer, "newest": newest})
