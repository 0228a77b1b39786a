"""Endpoints the client package uses beyond the basic ones: tracked runs, their metric ingest, the student zip.

A tracked run (`python -m distill_core run config.json --track URL`) trains on the user's own machine
and streams into the dashboard as an experiment of their team: POST /api/tracked/ creates it RUNNING
(never queued, never claimed by a worker), /ingest/ takes batches of metric points (idempotent on
(experiment, key, step), so a client that retries after a lost answer duplicates nothing), the phase,
progress and log tail, and /finish/ stores the outcome with the results dict (confusion matrices and
size report included). Every endpoint reaches the experiment through the user's teams (404 otherwise).
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.http import StreamingHttpResponse
from django.utils import timezone
from ninja import Path, Router, Status

from distill_core.errors import ConfigError
from webapp.accounts.access import get_owned
from webapp.accounts.models import teams_of
from webapp.api import serialize
from webapp.api.bodies import MAX_POINTS, Finish, Ingest, TrackedCreate, documented, parse
from webapp.api.http import ApiError, error
from webapp.api.schemas import ExperimentOut, IngestOut, Pk, answers
from webapp.experiments import artifacts
from webapp.experiments.models import Experiment
from webapp.gpuqueue.queue import json_safe
from workers.bulk import insert_points
from workers.sink import PHASE_FIELDS, better

router = Router(tags=["tracked runs"])
S = Experiment.Status
MAX_LOG = 50_000


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


@router.post("/tracked/", response=answers({201: ExperimentOut}, 400, 413, 415), url_name="tracked",
             exclude_unset=True,
             summary="Create a tracked run: one trained elsewhere that streams into this dashboard (RUNNING, "
                     "never queued)")
def tracked(request, payload: TrackedCreate):
    if not payload.name.strip():
        raise ApiError("name must not be blank.", fields={"name": ["Required, at most 200 characters."]})
    from distill_core.config import ExperimentConfig

    try:
        student_type = ExperimentConfig.from_dict(payload.config).student.type
    except ConfigError as exc:
        field = f"config.{exc.field}" if getattr(exc, "field", None) else "config"
        raise ApiError(f"The config is invalid: {exc}", fields={field: [str(exc)]}) from None
    except (TypeError, ValueError, KeyError) as exc:
        raise ApiError(f"The config is invalid: {str(exc)[:300]}", fields={"config": [str(exc)[:300]]}) from None
    environment = payload.environment
    now = timezone.now()
    host = ((environment or {}).get("host") or {}).get("hostname") if isinstance(environment, dict) else None
    experiment = Experiment.objects.create(
        team=user_team(request.user, payload.team), owner=request.user, name=payload.name.strip(),
        student_type=student_type, config=json_safe(payload.config), tracked=True, status=S.RUNNING, pool="tracked",
        started_at=now, heartbeat_at=now, worker_name=f"tracked:{host}"[:200] if isinstance(host, str) else "tracked",
        environment=json_safe(environment) if environment is not None else None)
    return Status(201, serialize.experiment(_load(experiment.pk), detail=True))


def _load(pk: int) -> Experiment:
    return Experiment.objects.select_related("team", "owner", "teacher", "dataset").get(pk=pk)


def _tracked_run(request, pk: int) -> Experiment:
    experiment = get_owned(request.user, Experiment, pk=pk)
    if not experiment.tracked:
        raise ApiError("This experiment runs on the dashboard's workers; only a tracked run takes points.", 409)
    return experiment


@router.post("/experiments/{int:pk}/ingest/", response=answers({200: IngestOut}, 400, 404, 409, 413, 415),
             url_name="experiment_ingest", openapi_extra=documented(json="Ingest"),
             summary="Store a batch of a tracked run's metric points (idempotent on key and step), its phase, "
                     "progress, log tail and environment; answers the cancel flag")
def ingest(request, pk: Path[Pk]):
    experiment = _tracked_run(request, pk)
    payload = parse(Ingest, request)
    if len(payload.points) > MAX_POINTS:
        raise ApiError(f"Send at most {MAX_POINTS} points per call (got {len(payload.points)}).", 413,
                       fields={"points": [f"At most {MAX_POINTS}."]})
    points = [(key, step, float(value)) for key, step, value in payload.points]
    total = payload.total_steps
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
        if payload.step is not None:
            fields["current_step"] = max(payload.step, row.current_step)
            steps = total if total is not None else row.total_steps
            fields["progress"] = min(1.0, fields["current_step"] / steps) if steps else 0.0
        if payload.phase is not None:
            fields["phase"] = json_safe({k: payload.phase.get(k) for k in PHASE_FIELDS})
        if payload.environment is not None:
            fields["environment"] = json_safe(payload.environment)
        if payload.log_tail is not None:
            fields["log_tail"] = payload.log_tail[-MAX_LOG:].replace("\x00", "")
        for name, value in fields.items():
            setattr(row, name, value)
        row.save(update_fields=list(fields))
    return {"id": row.pk, "accepted": len(points), "status": row.status, "cancel_requested": row.cancel_requested}


@router.post("/experiments/{int:pk}/finish/", response=answers({200: ExperimentOut}, 400, 404, 409, 413, 415),
             url_name="experiment_finish", exclude_unset=True, openapi_extra=documented(json="Finish"),
             summary="End a tracked run with its status and results (repeating the same end is harmless)")
def finish(request, pk: Path[Pk]):
    experiment = _tracked_run(request, pk)
    payload = parse(Finish, request)
    fields: dict[str, Any] = {"status": payload.status, "finished_at": timezone.now(), "error": payload.error[:20000],
                              "heartbeat_at": timezone.now()}
    if payload.results is not None:
        fields["results"] = json_safe(payload.results)
    if payload.status == S.SUCCEEDED:
        fields["progress"] = 1.0
    if not Experiment.objects.filter(pk=experiment.pk, status=S.RUNNING).update(**fields):
        experiment.refresh_from_db(fields=["status"])
        if experiment.status != payload.status:  # a retried finish whose first answer was lost is fine; a change is not
            return error(f"This run already ended as {experiment.status.lower()}.", 409)
    return serialize.experiment(_load(experiment.pk), detail=True)


ZIP = {"responses": {200: {"description": "The zip", "content": {"application/zip": {}}}}}


@router.get("/experiments/{int:pk}/student.zip", response=answers({200: None}, 404), url_name="experiment_student",
            openapi_extra=ZIP, summary="The exported student of a finished run, as a zip")
def student_zip(request, pk: Path[Pk]):
    """What the experiment page's download button serves."""
    experiment = get_owned(request.user, Experiment, pk=pk)
    try:
        directory = artifacts.export_dir(experiment)
    except artifacts.Unavailable as exc:
        return error(str(exc), 404)
    name = f"experiment-{experiment.pk}-student"
    response = StreamingHttpResponse(artifacts.zip_stream(directory, name), content_type="application/zip")
    response["Content-Disposition"] = f'attachment; filename="{name}.zip"'
    return response
