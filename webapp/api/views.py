"""REST endpoints under /api/: experiments, metrics, results, datasets, checkpoints.

Creation goes through the same forms and helpers as the pages (ExperimentForm +
configs.create_experiment, DatasetForm + datasets.register_upload, CheckpointForm +
archive_jobs.accept_upload), so the web and the API share one validation.
"""

from __future__ import annotations

from django.db import IntegrityError
from django.http import JsonResponse
from django.urls import Resolver404, resolve, reverse
from django.views.decorators.csrf import csrf_exempt

from webapp.accounts.models import teams_of
from webapp.api import list_filters, serialize
from webapp.api.http import ApiError, api_view, error, form_error, int_param, json_body, scalar_fields
from webapp.experiments import archives, datasets, lm_datasets, upload_limits
from webapp.experiments.access import get_owned, owned
from webapp.experiments.forms import (
    CheckpointForm,
    DatasetForm,
    ExperimentForm,
    dataset_too_large_message,
    duplicate_checkpoint_message,
    max_dataset_upload_bytes,
    save_checkpoint,
)
from webapp.experiments.models import Checkpoint, Dataset, Experiment
from webapp.experiments.results import summarise
from webapp.experiments.sweeps import queue_from_form
from webapp.experiments.views_json import MetricWindow, finite, metrics_payload
from webapp.gpuqueue import actions

MAX_PAGE = 200
MAX_OFFSET = 10**9
S = Experiment.Status


def _page(request, queryset, render) -> JsonResponse:
    limit = int_param(request, "limit", 50, 1, MAX_PAGE)
    offset = int_param(request, "offset", 0, 0, MAX_OFFSET)
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


@csrf_exempt  # no cookies are read; a POST to a wrong path is a 404, not a CSRF page
def not_found(request):
    """Any path under /api/ that is not an API route: the error shape, with a hint for a missing slash."""
    hint = ""
    if not request.path.endswith("/"):
        try:
            if resolve(request.path + "/").url_name != "not_found":
                hint = f" Did you mean {request.path[:200]}/ ?"
        except Resolver404:
            pass
    return error(f"No such API path: {request.path[:200]!r}.{hint}", 404)


# --- experiments ---------------------------------------------------------------------------

def experiment_list(request):
    qs = (owned(request.user, Experiment).select_related("team", "owner", "teacher", "dataset")
          .defer("config").order_by("-created_at", "-pk"))
    status = request.GET.get("status", "")
    if status:
        if status.upper() not in S.values:
            raise ApiError(f"status must be one of {', '.join(S.values)}.", fields={"status": ["Unknown status."]})
        qs = qs.filter(status=status.upper())
    return _page(request, list_filters.apply(request, qs), serialize.experiment)


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
    experiment = get_owned(request.user, Experiment, pk=pk)
    outcome = actions.request_cancel(experiment)  # the same service as the page and the queue board
    if not outcome:
        return error(actions.nothing_to_cancel(experiment), 409)
    qs = Experiment.objects.select_related("team", "owner", "teacher", "dataset")
    return JsonResponse({"outcome": "cancelled" if outcome == "cancelled" else "cancel_requested",
                         "experiment": serialize.experiment(qs.get(pk=pk))})


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
    if upload_limits.declared_too_large(request, len(datasets.SPLITS) * max_dataset_upload_bytes()):
        return error(dataset_too_large_message(), 413)
    upload_limits.install(request, max_dataset_upload_bytes())  # before the body is read
    files = request.FILES  # parses the body through the capped handler
    if request.upload_too_large:  # the name of the field whose file was over the limit
        return error(dataset_too_large_message(), 413, {request.upload_too_large: [dataset_too_large_message()]})
    data = _with_defaults(DatasetForm, request.POST.dict(), request.user)
    form = DatasetForm(data, files, user=request.user)
    if not form.is_valid():
        return form_error(form)
    cd = form.cleaned_data
    try:
        dataset = lm_datasets.register_any(cd, request.user)
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
    """JSON {team, name, path} or {team, name, hub_id} registers one; multipart {team, name, archive} uploads one."""
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
        data = scalar_fields(json_body(request), ["team", "name", "path", "hub_id"], ids=("team",))
        if not data.get("path") and not data.get("hub_id"):
            return error("Give the checkpoint's local path or a Hugging Face model id in `hub_id` (or upload an "
                         "archive as multipart/form-data).", 400, {"path": ["This field is required."]})
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
    if not checkpoint.is_ready:  # an archive: a task unpacks it; poll status_url until READY or FAILED
        return JsonResponse({**serialize.checkpoint(checkpoint),
                             "status_url": reverse("api:checkpoint", args=[checkpoint.pk])}, status=202)
    return JsonResponse(serialize.checkpoint(checkpoint), status=201)


@api_view({"GET": checkpoint_list, "POST": checkpoint_create})
def checkpoints(request):
    """GET: the user's teams' checkpoints; POST: register one by path or Hub id, or upload an archive."""


@api_view()
def checkpoint(request, pk: int):
    return JsonResponse(serialize.checkpoint(get_owned(request.user, Checkpoint.objects.select_related("team"),
                                                       pk=pk)))
