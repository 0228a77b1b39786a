"""REST endpoints under /api/: experiments, metrics, results, datasets, checkpoints.

Creation goes through the same forms and helpers as the pages (ExperimentForm +
configs.create_experiment, DatasetForm + datasets.register_upload, CheckpointForm +
archives.register_archive), so the web and the API share one validation.
"""

from __future__ import annotations

from django.db import IntegrityError
from django.http import JsonResponse
from django.utils import timezone

from webapp.accounts.models import teams_of
from webapp.api import serialize
from webapp.api.http import ApiError, api_view, error, form_error, int_param, json_body, scalar_fields
from webapp.experiments import archives, datasets, dependencies
from webapp.experiments.access import get_owned, owned
from webapp.experiments.forms import (
    CheckpointForm,
    DatasetForm,
    ExperimentForm,
    duplicate_checkpoint_message,
    save_checkpoint,
)
from webapp.experiments.models import Checkpoint, Dataset, Experiment
from webapp.experiments.results import summarise
from webapp.experiments.sweeps import queue_from_form
from webapp.experiments.views_json import MetricWindow, finite, metrics_payload

MAX_PAGE = 200
S = Experiment.Status


def _page(request, queryset, render) -> JsonResponse:
    limit = int_param(request, "limit", 50, 1, MAX_PAGE)
    offset = int_param(request, "offset", 0, 0, 10**9)
    rows = list(queryset[offset:offset + limit + 1])
    return JsonResponse({"results": [render(r) for r in rows[:limit]], "limit": limit, "offset": offset,
                         "next_offset": offset + limit if len(rows) > limit else None})


def _with_defaults(form_class, data: dict[str, str], user) -> dict[str, str]:
    """Missing fields take the form's initial values, and the team the user's only team."""
    filled = {name: str(field.initial) for name, field in form_class.base_fields.items()
              if field.initial is not None and not callable(field.initial)}
    teams = list(teams_of(user)[:2])
    if len(teams) == 1:
        filled["team"] = str(teams[0].pk)
    return {**filled, **data}


# --- experiments ---------------------------------------------------------------------------

def experiment_list(request):
    qs = (owned(request.user, Experiment).select_related("team", "owner", "teacher", "dataset")
          .defer("config").order_by("-created_at", "-pk"))
    status = request.GET.get("status", "")
    if status:
        if status.upper() not in S.values:
            raise ApiError(f"status must be one of {', '.join(S.values)}.", fields={"status": ["Unknown status."]})
        qs = qs.filter(status=status.upper())
    return _page(request, qs, serialize.experiment)


def experiment_create(request):
    names = list(ExperimentForm.base_fields)
    data = _with_defaults(ExperimentForm, scalar_fields(json_body(request), names, ids=("team", "teacher", "dataset")),
                          request.user)
    form = ExperimentForm(data, user=request.user)
    if not form.is_valid():
        return form_error(form)
    created, tag = queue_from_form(form, request.user)
    if tag is not None:  # a sweep: every combination, grouped by one tag
        return JsonResponse({"sweep": tag.name, "experiments": [serialize.experiment(e, detail=True) for e in created]},
                            status=201)
    return JsonResponse(serialize.experiment(created[0], detail=True), status=201)


@api_view({"GET": experiment_list, "POST": experiment_create})
def experiments(request):
    """GET: the user's teams' experiments, newest first; POST: queue a new one."""


@api_view()
def experiment(request, pk: int):
    qs = Experiment.objects.select_related("team", "owner", "teacher", "dataset")
    return JsonResponse(serialize.experiment(get_owned(request.user, qs, pk=pk), detail=True))


def _cancel(request, pk: int):
    get_owned(request.user, Experiment, pk=pk)
    # Conditional updates, as on the page: a worker may claim or finish the row meanwhile.
    if Experiment.objects.filter(pk=pk, status=S.QUEUED).update(status=S.CANCELLED, finished_at=timezone.now()):
        dependencies.end_dependents(pk)
        outcome = "cancelled"
    elif Experiment.objects.filter(pk=pk, status__in=(S.CLAIMED, S.RUNNING)).update(cancel_requested=True):
        outcome = "cancel_requested"
    else:
        experiment = Experiment.objects.get(pk=pk)
        return error(f"Nothing to cancel: the experiment has already {experiment.status.lower()}.", 409)
    qs = Experiment.objects.select_related("team", "owner", "teacher", "dataset")
    return JsonResponse({"outcome": outcome, "experiment": serialize.experiment(qs.get(pk=pk))})


@api_view({"POST": _cancel})
def experiment_cancel(request, pk: int):
    """POST: cancel a queued experiment, or ask a running one's worker to stop."""


@api_view()
def experiment_metrics(request, pk: int):
    experiment = get_owned(request.user, Experiment, pk=pk)
    try:
        window = MetricWindow.from_query(request.GET)
    except ValueError as exc:
        return error(str(exc))
    return JsonResponse(metrics_payload(experiment, window))


@api_view()
def experiment_results(request, pk: int):
    experiment = get_owned(request.user, Experiment, pk=pk)
    summary = summarise(experiment.results) if experiment.results else None
    return JsonResponse({"id": experiment.pk, "status": experiment.status, "finished": experiment.is_finished,
                         "best": {str(k): finite(v) for k, v in (experiment.best or {}).items()},
                         "results": serialize.finite_deep(experiment.results),
                         "summary": serialize.finite_deep(summary)})


# --- datasets -----------------------------------------------------------------------------

def _multipart(request) -> None:
    if request.content_type != "multipart/form-data":
        raise ApiError(f"Send the files as multipart/form-data (got {(request.content_type or 'none')[:60]!r}).", 415)


def dataset_list(request):
    qs = owned(request.user, Dataset).select_related("team").order_by("team__name", "name")
    return _page(request, qs, serialize.dataset)


def dataset_create(request):
    _multipart(request)
    data = _with_defaults(DatasetForm, request.POST.dict(), request.user)
    form = DatasetForm(data, request.FILES, user=request.user)
    if not form.is_valid():
        return form_error(form)
    cd = form.cleaned_data
    try:
        dataset = datasets.register_from_form(cd, request.user)
    except datasets.UploadRefused as exc:
        field = exc.field or "__all__"
        return error(exc.message, 400, {field: [exc.message]} if exc.field else {})
    return JsonResponse(serialize.dataset(dataset), status=201)


@api_view({"GET": dataset_list, "POST": dataset_create})
def datasets_view(request):
    """GET: the user's teams' datasets; POST (multipart): upload one."""


@api_view()
def dataset(request, pk: int):
    return JsonResponse(serialize.dataset(get_owned(request.user, Dataset.objects.select_related("team"), pk=pk)))


# --- checkpoints --------------------------------------------------------------------------

def checkpoint_list(request):
    qs = owned(request.user, Checkpoint).select_related("team").order_by("team__name", "name")
    return _page(request, qs, serialize.checkpoint)


def checkpoint_create(request):
    """JSON {team, name, path} registers a directory; multipart {team, name, archive} uploads one."""
    if request.content_type == "multipart/form-data":
        if archives.content_length_too_large(request):
            return error(archives.too_large_message(), 413, {"archive": [archives.too_large_message()]})
        request.upload_handlers = [archives.CappedUploadHandler(request)]
        files = request.FILES  # parses the body through the capped handler
        if request.upload_too_large:
            return error(archives.too_large_message(), 413, {"archive": [archives.too_large_message()]})
        data = scalar_fields(request.POST.dict(), ["team", "name"], ids=("team",))
        if "archive" not in files:
            return error("Upload the checkpoint archive in the `archive` field.", 400,
                         {"archive": ["This field is required."]})
        form = CheckpointForm(_with_defaults(CheckpointForm, data, request.user), files, user=request.user)
    else:
        data = scalar_fields(json_body(request), ["team", "name", "path"], ids=("team",))
        if not data.get("path"):
            return error("Give the checkpoint's local path (or upload an archive as multipart/form-data).", 400,
                         {"path": ["This field is required."]})
        form = CheckpointForm(_with_defaults(CheckpointForm, data, request.user), user=request.user)
    if not form.is_valid():
        return form_error(form)
    try:
        checkpoint = save_checkpoint(form, request.user)
    except archives.ArchiveRefused as exc:
        return error(exc.message, 400, {exc.field: [exc.message]})
    except IntegrityError:
        message = duplicate_checkpoint_message(form)
        return error(message, 400, {"name": [message]})
    return JsonResponse(serialize.checkpoint(checkpoint), status=201)


@api_view({"GET": checkpoint_list, "POST": checkpoint_create})
def checkpoints(request):
    """GET: the user's teams' checkpoints; POST: register one by path or upload an archive."""


@api_view()
def checkpoint(request, pk: int):
    return JsonResponse(serialize.checkpoint(get_owned(request.user, Checkpoint.objects.select_related("team"),
                                                       pk=pk)))
