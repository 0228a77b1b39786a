"""REST endpoints of the registry: datasets and checkpoints (list, get, upload or register).

Uploads go through the same forms and helpers as the pages (DatasetForm + lm_datasets.register_any,
CheckpointForm + save_checkpoint), with the same streaming size caps (upload_limits, archives):
the capped upload handler is installed before anything reads the body, so these operations take
their bodies from the request themselves rather than as ninja parameters.
"""

from __future__ import annotations

from django.db import IntegrityError
from django.urls import reverse
from ninja import Path, Query, Router, Status

from webapp.accounts.access import get_owned, owned
from webapp.api import serialize
from webapp.api.bodies import documented
from webapp.api.http import ApiError, error, form_error, json_body, scalar_fields
from webapp.api.list_filters import Page
from webapp.api.schemas import CheckpointOut, CheckpointPage, DatasetOut, DatasetPage, Pk, answers
from webapp.api.views import page, with_defaults
from webapp.registry import archives, datasets, lm_datasets, upload_limits
from webapp.registry.forms import (
    CheckpointForm,
    DatasetForm,
    dataset_too_large_message,
    duplicate_checkpoint_message,
    max_dataset_upload_bytes,
    save_checkpoint,
)
from webapp.registry.models import Checkpoint, Dataset

router = Router(tags=["registry"])


def _multipart(request) -> None:
    if request.content_type != "multipart/form-data":
        raise ApiError(f"Send the files as multipart/form-data (got {(request.content_type or 'none')[:60]!r}).", 415)


# --- datasets -----------------------------------------------------------------------------

@router.get("/datasets/", response=answers({200: DatasetPage}, 400), url_name="datasets",
            summary="List your teams' datasets")
def dataset_list(request, paging: Query[Page]):
    qs = owned(request.user, Dataset).select_related("team").order_by("team__name", "name")
    rows = list(qs[paging.offset:paging.offset + paging.limit + 1])
    return page(rows, paging.limit, paging.offset, serialize.dataset)


@router.post("/datasets/", response=answers({201: DatasetOut}, 400, 413, 415), summary="Upload a dataset",
             openapi_extra=documented(multipart="DatasetUpload"))
def dataset_create(request):
    _multipart(request)
    if upload_limits.declared_too_large(request, len(datasets.SPLITS) * max_dataset_upload_bytes()):
        return error(dataset_too_large_message(), 413)
    upload_limits.install(request, max_dataset_upload_bytes())  # before the body is read
    files = request.FILES  # parses the body through the capped handler
    if request.upload_too_large:  # the name of the field whose file was over the limit
        return error(dataset_too_large_message(), 413, {request.upload_too_large: [dataset_too_large_message()]})
    form = DatasetForm(with_defaults(DatasetForm, request.POST.dict(), request.user), files, user=request.user)
    if not form.is_valid():
        return form_error(form)
    try:
        dataset = lm_datasets.register_any(form.cleaned_data, request.user)
    except datasets.UploadRefused as exc:
        return error(exc.message, 400, {exc.field: [exc.message]} if exc.field else {})
    return Status(201, serialize.dataset(dataset))


@router.get("/datasets/{int:pk}/", response=answers({200: DatasetOut}, 404), url_name="dataset",
            summary="One dataset")
def dataset(request, pk: Path[Pk]):
    return serialize.dataset(get_owned(request.user, Dataset.objects.select_related("team"), pk=pk))


# --- checkpoints --------------------------------------------------------------------------

@router.get("/checkpoints/", response=answers({200: CheckpointPage}, 400), url_name="checkpoints",
            exclude_unset=True, summary="List your teams' checkpoints")
def checkpoint_list(request, paging: Query[Page]):
    qs = owned(request.user, Checkpoint).select_related("team").order_by("team__name", "name")
    rows = list(qs[paging.offset:paging.offset + paging.limit + 1])
    return page(rows, paging.limit, paging.offset, serialize.checkpoint)


def _archive_form(request) -> CheckpointForm:
    if archives.content_length_too_large(request):
        raise ApiError(archives.too_large_message(), 413, {"archive": [archives.too_large_message()]})
    request.upload_handlers = [archives.CappedUploadHandler(request)]
    files = request.FILES  # parses the body through the capped handler
    if request.upload_too_large:
        raise ApiError(archives.too_large_message(), 413, {"archive": [archives.too_large_message()]})
    data = scalar_fields(request.POST.dict(), ["team", "name"], ids=("team",))
    if "archive" not in files:
        raise ApiError("Upload the checkpoint archive in the `archive` field.", 400,
                       {"archive": ["This field is required."]})
    return CheckpointForm(with_defaults(CheckpointForm, data, request.user), files, user=request.user)


def _registration_form(request) -> CheckpointForm:
    data = scalar_fields(json_body(request), ["team", "name", "path", "hub_id"], ids=("team",))
    if not data.get("path") and not data.get("hub_id"):
        raise ApiError("Give the checkpoint's local path or a Hugging Face model id in `hub_id` (or upload an "
                       "archive as multipart/form-data).", 400, {"path": ["This field is required."]})
    return CheckpointForm(with_defaults(CheckpointForm, data, request.user), user=request.user)


@router.post("/checkpoints/", response=answers({201: CheckpointOut, 202: CheckpointOut}, 400, 413, 415),
             exclude_unset=True,
             openapi_extra=documented(json=["CheckpointByPath", "CheckpointByHubId"], multipart="CheckpointArchive"),
             summary="Register a checkpoint by path or Hugging Face id (JSON, 201), or upload an archive "
                     "(multipart, 202: a task unpacks it; poll status_url)")
def checkpoint_create(request):
    form = _archive_form(request) if request.content_type == "multipart/form-data" else _registration_form(request)
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
        return Status(202, {**serialize.checkpoint(checkpoint),
                            "status_url": reverse("api:checkpoint", args=[checkpoint.pk])})
    return Status(201, serialize.checkpoint(checkpoint))


@router.get("/checkpoints/{int:pk}/", response=answers({200: CheckpointOut}, 404), url_name="checkpoint",
            exclude_unset=True, summary="One checkpoint")
def checkpoint(request, pk: Path[Pk]):
    return serialize.checkpoint(get_owned(request.user, Checkpoint.objects.select_related("team"), pk=pk))
