"""Teacher checkpoints and datasets: list, register/upload, detail."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import IntegrityError
from django.db.models import Count
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.csrf import csrf_exempt, csrf_protect

from distill_core.errors import DatasetError
from webapp.accounts.access import get_owned, owned
from webapp.accounts.models import teams_of
from webapp.experiments import dependencies
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

PREVIEW_ROWS = 20


@login_required
def checkpoint_list(request):
    checkpoints = (owned(request.user, Checkpoint).select_related("team", "created_by")
                   .annotate(num_experiments=Count("experiments")).order_by("team__name", "name"))
    return render(request, "checkpoints/list.html", {
        "checkpoints": checkpoints, "has_teams": teams_of(request.user).exists(), "nav": "checkpoints"})


@login_required
@csrf_exempt  # CSRF is checked in _checkpoint_new, after the capped upload handler is installed
def checkpoint_new(request):
    if request.method == "POST" and archives.content_length_too_large(request):
        # Refused before a byte of the body is read; the unbound form is shown again.
        return _render_refused(request, CheckpointForm(user=request.user), None, archives.too_large_message(),
                               _render_checkpoint_new)
    # An archive upload is capped while it streams: the handler must be set before the body is read.
    request.upload_handlers = [archives.CappedUploadHandler(request)]
    return _checkpoint_new(request)


@csrf_protect
def _checkpoint_new(request):
    files = request.FILES  # parses the body through the capped handler
    form = CheckpointForm(request.POST or None, files or None, user=request.user,
                          archive_too_large=bool(getattr(request, "upload_too_large", False)))
    if request.method == "POST" and form.archive_too_large:  # the fields after the archive were never read
        return _render_refused(request, CheckpointForm(user=request.user), "archive", archives.too_large_message(),
                               _render_checkpoint_new)
    if request.method == "POST" and form.is_valid():
        try:
            checkpoint = save_checkpoint(form, request.user)
        except IntegrityError:  # registered by someone else since the form was validated
            form.add_error("name", duplicate_checkpoint_message(form))
        except archives.ArchiveRefused as exc:
            form.add_error(exc.field, exc.message)
        else:
            if checkpoint.is_ready:
                messages.success(request, f"Registered the checkpoint “{checkpoint.name}”.")
            else:
                messages.success(request, f"Uploaded “{checkpoint.name}”; it is unpacked and checked in the background.")
            return redirect("registry:checkpoint", pk=checkpoint.pk)
    return _render_checkpoint_new(request, form, status=400 if form.is_bound else 200)


def _render_refused(request, form, field: str | None, message: str, render_page):
    """A 413 page: the form shown again, unbound, with `message` on `field`."""
    form.cleaned_data = {}
    form.add_error(field, message)
    return render_page(request, form, status=413)


def _render_checkpoint_new(request, form, status: int = 200):
    return render(request, "checkpoints/new.html", {"form": form, "has_teams": teams_of(request.user).exists(),
                                                    "nav": "checkpoints"}, status=status)


@login_required
def checkpoint_detail(request, pk: int):
    checkpoint = get_owned(request.user, Checkpoint.objects.select_related("team", "created_by", "trained_by"), pk=pk)
    experiments = checkpoint.experiments.select_related("dataset", "owner").defer("config")[:20]
    return render(request, "checkpoints/detail.html", {
        "checkpoint": checkpoint, "info": checkpoint.info if isinstance(checkpoint.info, dict) else {},
        "experiments": experiments, "not_ready": dependencies.blocking(checkpoint), "nav": "checkpoints"})


@login_required
def checkpoint_status(request, pk: int):
    """Where an uploaded checkpoint's unpacking stands; the checkpoint page polls it."""
    checkpoint = get_owned(request.user, Checkpoint, pk=pk)
    return JsonResponse(status_payload(checkpoint))


def status_payload(checkpoint: Checkpoint) -> dict:
    return {"id": checkpoint.pk, "status": checkpoint.status, "percent": checkpoint.percent,
            "bytes_done": checkpoint.bytes_done, "bytes_total": checkpoint.bytes_total, "error": checkpoint.error}


@login_required
def dataset_list(request):
    rows = (owned(request.user, Dataset).select_related("team", "created_by")
            .annotate(num_experiments=Count("experiments")).order_by("team__name", "name"))
    return render(request, "datasets/list.html", {
        "datasets": rows, "has_teams": teams_of(request.user).exists(), "nav": "datasets"})


@login_required
@csrf_exempt  # CSRF is checked in _dataset_new, after the capped upload handler is installed
def dataset_new(request):
    if request.method == "POST" and upload_limits.declared_too_large(request, len(datasets.SPLITS) * max_dataset_upload_bytes()):
        return _render_refused(request, DatasetForm(user=request.user), None, dataset_too_large_message(),
                               _render_dataset_new)
    # Each split is capped while it streams: the handler must be set before the body is read.
    upload_limits.install(request, max_dataset_upload_bytes())
    return _dataset_new(request)


@csrf_protect
def _dataset_new(request):
    files = request.FILES  # parses the body through the capped handler
    if request.method == "POST" and request.upload_too_large:  # the fields after that file were never read
        return _render_refused(request, DatasetForm(user=request.user), request.upload_too_large,
                               dataset_too_large_message(), _render_dataset_new)
    form = DatasetForm(request.POST or None, files or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        cd = form.cleaned_data
        try:
            dataset = lm_datasets.register_any(cd, request.user)
        except datasets.UploadRefused as exc:
            form.add_error(exc.field, exc.message)
        else:
            messages.success(request, f"Uploaded the dataset “{dataset.name}”.")
            return redirect("registry:dataset", pk=dataset.pk)
    return _render_dataset_new(request, form, status=400 if form.is_bound else 200)


def _render_dataset_new(request, form, status: int = 200):
    return render(request, "datasets/new.html", {"form": form, "has_teams": teams_of(request.user).exists(),
                                                 "nav": "datasets"}, status=status)


@login_required
def dataset_detail(request, pk: int):
    dataset = get_owned(request.user, Dataset.objects.select_related("team", "created_by"), pk=pk)
    if dataset.kind == Dataset.Kind.LM:
        from webapp.registry.views_lm_datasets import lm_dataset_detail

        return lm_dataset_detail(request, dataset)
    labels = [str(label) for label in dataset.labels] if isinstance(dataset.labels, list) else []
    stats = dataset.stats if isinstance(dataset.stats, dict) else {}
    splits = []
    for name in datasets.SPLITS:
        split = stats.get(name)
        if not isinstance(split, dict):
            continue
        counts = split.get("class_counts")
        counts = counts if isinstance(counts, list) and len(counts) == len(labels) else None
        splits.append({"name": name, "rows": split.get("rows"), "counts": counts,
                       "path": datasets.split_paths(dataset).get(name, "")})
    chart = {"labels": labels, "splits": [{"name": s["name"], "counts": s["counts"]} for s in splits if s["counts"]]}
    class_rows = [{"label": label, "counts": [s["counts"][i] if s["counts"] else None for s in splits]}
                  for i, label in enumerate(labels)]
    preview, preview_error = [], None
    try:
        preview = datasets.preview_rows(dataset, PREVIEW_ROWS)
    except DatasetError as exc:
        preview_error = exc.message
    return render(request, "datasets/detail.html", {
        "dataset": dataset, "labels": labels, "splits": splits, "class_rows": class_rows, "chart": chart,
        "preview": preview, "preview_error": preview_error, "has_pairs": bool(dataset.text_pair_column),
        "experiments": dataset.experiments.select_related("teacher", "owner").defer("config")[:20],
        "nav": "datasets"})
