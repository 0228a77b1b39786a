"""A finished experiment's student: "Try it" predictions (JSON) and the export as a zip download."""

from __future__ import annotations

import logging

from django.contrib.auth.decorators import login_required
from django.http import Http404, JsonResponse, StreamingHttpResponse
from django.views.decorators.http import require_GET, require_POST

from distill_core.errors import DistillError
from distill_core.untrusted import UntrustedInput, loads
from webapp.accounts.access import get_owned
from webapp.experiments import artifacts
from webapp.experiments.models import Experiment
from webapp.experiments.views_json import json_error

log = logging.getLogger(__name__)

MAX_BODY = 64 * 1024


@login_required
@require_POST
def predict(request, pk: int):
    """POST {"texts": [...]} (or form field `texts`, one per line) -> teacher and student predictions."""
    experiment = get_owned(request.user, Experiment, pk=pk)
    if len(request.body) > MAX_BODY:
        return json_error(f"Send at most {MAX_BODY // 1024} KB of text.", status=413)
    if request.content_type == "application/json":
        try:
            body = loads(request.body or b"{}")
        except UntrustedInput as exc:  # bad JSON, NUL, unpaired surrogates, deep nesting
            reason = exc.message[0].lower() + exc.message[1:]
            return json_error(f'The body must be a JSON object with "texts": {reason}')
        raw = body.get("texts") if isinstance(body, dict) else None
    else:
        raw = request.POST.get("texts")
    try:
        texts = artifacts.clean_texts(raw if raw is not None else "")
    except ValueError as exc:
        return json_error(str(exc))
    try:
        return JsonResponse(artifacts.predict(experiment, texts))
    except artifacts.Unavailable as exc:
        return json_error(str(exc), status=409)
    except (DistillError, OSError, RuntimeError, KeyError, ValueError) as exc:  # a damaged or foreign export
        log.warning("Try it failed for experiment %s: %s", pk, exc)
        return json_error(f"The models could not be loaded: {exc}", status=409)


@login_required
@require_GET
def download_student(request, pk: int):
    """The export directory as experiment-<pk>-student.zip, streamed."""
    experiment = get_owned(request.user, Experiment, pk=pk)
    try:
        directory = artifacts.export_dir(experiment)
    except artifacts.Unavailable as exc:
        raise Http404(str(exc)) from None
    name = f"experiment-{experiment.pk}-student"
    response = StreamingHttpResponse(artifacts.zip_stream(directory, name), content_type="application/zip")
    response["Content-Disposition"] = f'attachment; filename="{name}.zip"'
    return response
