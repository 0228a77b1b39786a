"""Endpoints the client package uses beyond the basic ones: tracked runs, their metric ingest, the student zip.

A tracked run (`python -m distill_core run config.json --track URL`) trains on the user's own machine
and streams into the dashboard as an experiment of their team: POST /api/tracked/ creates it RUNNING
(never queued, never claimed by a worker), /ingest/ takes batches of metric points (idempotent on
(experiment, key, step), so a client that retries after a lost answer duplicates nothing), the phase,
progress and log tail, and /finish/ stores the outcome with the results dict (confusion matrices and
size report included). Every endpoint reaches the experiment through the user's teams (404 otherwise).
"""

from __future__ import annotations

import math
from typing import Any

from django.db import transaction
from django.http import JsonResponse, StreamingHttpResponse
from django.utils import timezone

from distill_core.errors import ConfigError
from webapp.accounts.models import teams_of
from webapp.api import serialize
from webapp.api.http import ApiError, api_view, error, json_body
from webapp.experiments import artifacts
from webapp.experiments.access import get_owned
from webapp.experiments.models import Experiment
from webapp.gpuqueue.queue import json_safe
from workers.bulk import insert_points
from workers.sink import PHASE_FIELDS, better

S = Experiment.Status
MAX_POINTS = 10_000  # per ingest call; the client sends at most this many
MAX_KEY = 100  # MetricPoint.key's length
MAX_STEP = 2**31 - 1
MAX_LOG = 50_000
FINAL = (S.SUCCEEDED, S.FAILED, S.CANCELLED)


def check_fields(data: dict[str, Any], allowed: tuple[str, ...]) -> None:
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise ApiError(f"Unknown field(s): {', '.join(repr(n)[:60] for n in unknown[:10])}.",
                       fields={n[:100]: ["Unknown field."] for n in unknown[:10]})


def object_or_none(data: dict[str, Any], name: str) -> dict[str, Any] | None:
    value = data.get(name)
    if value is not None and not isinstance(value, dict):
        raise ApiError(f"{name} must be an object.", fields={name: ["Must be an object."]})
    return value


def user_team(user, raw: Any):
    teams = list(teams_of(user))
    if raw is None:
        if len(teams) != 1:
            raise ApiError("You belong to several teams; say which in `team`.", fields={"team": ["Required."]})
        return teams[0]
    for team in teams:
        if (isinstance(raw, int) and not isinstance(raw, bool) and team.pk == raw) or raw == team.slug:
            return team
    raise ApiError("No such team among yours.", fields={"team": ["Give the id or slug of one of your teams."]})


def _tracked_create(request):
    data = json_body(request)
    check_fields(data, ("team", "name", "config", "environment"))
    name = data.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        raise ApiError("name must be a non-empty string of at most 200 characters.",
                       fields={"name": ["Required, at most 200 characters."]})
    config = object_or_none(data, "config")
    if config is None:
        raise ApiError("Send the run's distill_core config in `config`.", fields={"config": ["Required."]})
    from distill_core.config import ExperimentConfig

    try:
        student_type = ExperimentConfig.from_dict(config).student.type
    except ConfigError as exc:
        field = f"config.{exc.field}" if getattr(exc, "field", None) else "config"
        raise ApiError(f"The config is invalid: {exc}", fields={field: [str(exc)]}) from None
    except (TypeError, ValueError, KeyError) as exc:
        raise ApiError(f"The config is invalid: {str(exc)[:300]}", fields={"config": [str(exc)[:300]]}) from None
    environment = object_or_none(data, "environment")
    now = timezone.now()
    host = ((environment or {}).get("host") or {}).get("hostname") if isinstance(environment, dict) else None
    experiment = Experiment.objects.create(
        team=user_team(request.user, data.get("team")), owner=request.user, name=name.strip(), student_type=student_type,
        config=json_safe(config), tracked=True, status=S.RUNNING, pool="tracked", started_at=now, heartbeat_at=now,
        worker_name=f"tracked:{host}"[:200] if isinstance(host, str) else "tracked",
        environment=json_safe(environment) if environment is not None else None)
    return JsonResponse(serialize.experiment(_load(experiment.pk), detail=True), status=201)


@api_view({"POST": _tracked_create})
def tracked(request):
    """POST: create a tracked run of one of your teams (RUNNING, never queued)."""


def _load(pk: int) -> Experiment:
    return Experiment.objects.select_related("team", "owner", "teacher", "dataset").get(pk=pk)


def _tracked_run(request, pk: int) -> Experiment:
    experiment = get_owned(request.user, Experiment, pk=pk)
    if not experiment.tracked:
        raise ApiError("This experiment runs on the dashboard's workers; only a tracked run takes points.", 409)
    return experiment


def _points(raw: Any) -> list[tuple[str, int, float]]:
    if not isinstance(raw, list):
        raise ApiError("points must be a list of [key, step, value].", fields={"points": ["Must be a list."]})
    if len(raw) > MAX_POINTS:
        raise ApiError(f"Send at most {MAX_POINTS} points per call (got {len(raw)}).", 413,
                       fields={"points": [f"At most {MAX_POINTS}."]})
    out = []
    for i, point in enumerate(raw):
        ok = (isinstance(point, list) and len(point) == 3 and isinstance(point[0], str) and 0 < len(point[0]) <= MAX_KEY
              and isinstance(point[1], int) and not isinstance(point[1], bool) and 0 <= point[1] <= MAX_STEP
              and isinstance(point[2], (int, float)) and not isinstance(point[2], bool)
              and math.isfinite(point[2]))
        if not ok:
            raise ApiError(f"points[{i}] is not [key (1-{MAX_KEY} characters), step (0-{MAX_STEP}), finite value].",
                           fields={f"points.{i}": ["Must be [key, step, value]."]})
        out.append((point[0], point[1], float(point[2])))
    return out


def _int_or_none(data: dict[str, Any], name: str) -> int | None:
    value = data.get(name)
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_STEP):
        raise ApiError(f"{name} must be an integer between 0 and {MAX_STEP}.", fields={name: ["Out of range."]})
    return value


def _ingest(request, pk: int):
    experiment = _tracked_run(request, pk)
    data = json_body(request)
    check_fields(data, ("points", "phase", "step", "total_steps", "log_tail", "environment"))
    points = _points(data.get("points", []))
    phase = object_or_none(data, "phase")
    environment = object_or_none(data, "environment")
    step, total = _int_or_none(data, "step"), _int_or_none(data, "total_steps")
    log_tail = data.get("log_tail")
    if log_tail is not None and not isinstance(log_tail, str):
        raise ApiError("log_tail must be a string.", fields={"log_tail": ["Must be a string."]})
    with transaction.atomic():
        row = Experiment.objects.select_for_update().get(pk=experiment.pk)
        if row.status != S.RUNNING:
            return error(f"This run is {row.status.lower()}; it takes no more points.", 409)
        fields: dict[str, Any] = {"heartbeat_at": timezone.now()}
        if points:
            latest, best = dict(row.latest or {}), dict(row.best or {})
            for key, _step, value in sorted(points, key=lambda p: p[1]):
                latest[key] = value
                if not key.startswith("train/") and better(key, value, best.get(key)):
                    best[key] = value
            fields.update(latest=latest, best=best)
            insert_points(row.pk, points)
        if total is not None:
            fields["total_steps"] = total
        if step is not None:
            fields["current_step"] = max(step, row.current_step)
            steps = total if total is not None else row.total_steps
            fields["progress"] = min(1.0, fields["current_step"] / steps) if steps else 0.0
        if phase is not None:
            fields["phase"] = json_safe({k: phase.get(k) for k in PHASE_FIELDS})
        if environment is not None:
            fields["environment"] = json_safe(environment)
        if log_tail is not None:
            fields["log_tail"] = log_tail[-MAX_LOG:].replace("\x00", "")
        for name, value in fields.items():
            setattr(row, name, value)
        row.save(update_fields=list(fields))
    return JsonResponse({"id": row.pk, "accepted": len(points), "status": row.status,
                         "cancel_requested": row.cancel_requested})


@api_view({"POST": _ingest})
def ingest(request, pk: int):
    """POST: a batch of a tracked run's points, its phase, progress and log; answers the cancel flag."""


def _finish(request, pk: int):
    experiment = _tracked_run(request, pk)
    data = json_body(request)
    check_fields(data, ("status", "results", "error"))
    status = data.get("status")
    if status not in FINAL:
        raise ApiError(f"status must be one of {', '.join(FINAL)}.", fields={"status": ["Unknown final status."]})
    results = object_or_none(data, "results")
    message = data.get("error", "")
    if not isinstance(message, str):
        raise ApiError("error must be a string.", fields={"error": ["Must be a string."]})
    fields: dict[str, Any] = {"status": status, "finished_at": timezone.now(), "error": message[:20000],
                              "heartbeat_at": timezone.now()}
    if results is not None:
        fields["results"] = json_safe(results)
    if status == S.SUCCEEDED:
        fields["progress"] = 1.0
    if not Experiment.objects.filter(pk=experiment.pk, status=S.RUNNING).update(**fields):
        experiment.refresh_from_db(fields=["status"])
        if experiment.status != status:  # a retried finish whose first answer was lost is fine; a change is not
            return error(f"This run already ended as {experiment.status.lower()}.", 409)
    return JsonResponse(serialize.experiment(_load(experiment.pk), detail=True))


@api_view({"POST": _finish})
def finish(request, pk: int):
    """POST: end a tracked run with its final status and results."""


@api_view()
def student_zip(request, pk: int):
    """GET: the exported student of a finished run as a zip (what the page's download button serves)."""
    experiment = get_owned(request.user, Experiment, pk=pk)
    try:
        directory = artifacts.export_dir(experiment)
    except artifacts.Unavailable as exc:
        return error(str(exc), 404)
    name = f"experiment-{experiment.pk}-student"
    response = StreamingHttpResponse(artifacts.zip_stream(directory, name), content_type="application/zip")
    response["Content-Disposition"] = f'attachment; filename="{name}.zip"'
    return response
