"""'Try it' for a language-model run: teacher and student continue a prompt, streamed as server-sent events.

POST {"prompt": "...", "max_new_tokens": n} to /experiments/<pk>/generate/ answers text/event-stream:

    event: teacher            data: {"text": "<the teacher's continuation so far>"}
    event: student            data: {"text": "..."}
    event: done               data: {"teacher_steps": n, "student_steps": m, "max_new_tokens": k}
    event: error              data: {"error": "..."}  (a model failed mid-way)

Both models step in turn, a token each, so the two texts grow side by side. The guards are the
classification Try-it's (a finished run, the export inside ARTIFACT_ROOT, a teacher inside a
checkpoint root that the team may use, the shared model LRU) plus bounds on what a web request
may load (checkpoint_limits, TRY_IT_MAX_MODEL_MB of weights, the module count), on new tokens
and on wall time. Errors before the first event are the usual JSON errors.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import StreamingHttpResponse
from django.views.decorators.http import require_POST

from distill_core.errors import DistillError
from distill_core.untrusted import UntrustedInput, loads
from webapp.accounts.access import get_owned
from webapp.experiments import artifacts
from webapp.experiments.models import Experiment
from webapp.experiments.views_json import json_error

log = logging.getLogger(__name__)

KIND = "lm_distill"
MAX_BODY = 16 * 1024
MAX_PROMPT = 2000  # characters
MAX_NEW_TOKENS = 64
DEFAULT_NEW_TOKENS = 24
SECONDS = 20.0  # per model, from its first token


class Refused(ValueError):
    """A request the user can fix; the message says how."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


@login_required
@require_POST
def generate(request, pk: int):
    experiment = get_owned(request.user, Experiment, pk=pk)
    if (experiment.config or {}).get("kind") != KIND:
        return json_error("Streaming generation is for language-model runs; this run predicts labels.", status=409)
    try:
        prompt, max_new = parse(request)
        teacher, student = models(experiment)
    except Refused as exc:
        return json_error(str(exc), status=exc.status)
    except artifacts.Unavailable as exc:
        return json_error(str(exc), status=409)
    except (DistillError, OSError, RuntimeError, ValueError) as exc:  # a damaged or foreign export
        log.warning("LM Try it failed for experiment %s: %s", pk, exc)
        return json_error(f"The models could not be loaded: {getattr(exc, 'message', exc)}", status=409)
    response = StreamingHttpResponse(events(teacher, student, prompt, max_new), content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # nginx: pass each event on as it comes
    return response


def parse(request) -> tuple[str, int]:
    """(prompt, max new tokens) from a JSON body or form fields (raises Refused)."""
    if len(request.body) > MAX_BODY:
        raise Refused(f"Send at most {MAX_BODY // 1024} KB.", status=413)
    if request.content_type == "application/json":
        try:
            body = loads(request.body or b"{}")
        except UntrustedInput as exc:
            raise Refused(f'The body must be a JSON object with "prompt": {exc.message}') from None
        body = body if isinstance(body, dict) else {}
    else:
        body = request.POST
    prompt, raw_max = body.get("prompt", ""), body.get("max_new_tokens", DEFAULT_NEW_TOKENS)
    if not isinstance(prompt, str) or not prompt.strip():
        raise Refused("Type a prompt.")
    if len(prompt) > MAX_PROMPT or "\x00" in prompt:
        raise Refused(f"A prompt has at most {MAX_PROMPT:,} characters and no NUL.")
    try:
        max_new = int(raw_max if raw_max not in ("", None) else DEFAULT_NEW_TOKENS)
    except (TypeError, ValueError):
        raise Refused("max_new_tokens must be a whole number.") from None
    if isinstance(raw_max, bool) or not 1 <= max_new <= MAX_NEW_TOKENS:
        raise Refused(f"max_new_tokens must be between 1 and {MAX_NEW_TOKENS}.")
    return prompt, max_new


def models(experiment: Experiment) -> tuple[tuple[Any, Any], tuple[Any, Any]]:
    """((teacher, tokenizer), (student, tokenizer)), loaded within bounds once and kept in the shared LRU."""
    student_path, teacher_path = artifacts.export_dir(experiment), artifacts.teacher_dir(experiment)
    return _load(teacher_path, "teacher"), _load(student_path, "student")


def _load(path: Path, what: str) -> tuple[Any, Any]:
    from distill_core.lm.stream import load_bounded

    limit = settings.TRY_IT_MAX_MODEL_MB * 2**20
    stamp = max((p.stat().st_mtime for p in path.iterdir()), default=0.0)
    return artifacts.MODELS.get(("lm", str(path), stamp, limit), lambda: load_bounded(path, limit, what))


def events(teacher: tuple[Any, Any], student: tuple[Any, Any], prompt: str, max_new: int) -> Iterator[bytes]:
    """The event stream: one token of each model in turn, then `done` (or `error`)."""
    from distill_core.lm.stream import stream_greedy

    streams = {name: stream_greedy(model, tokenizer, prompt, max_new, SECONDS)
               for name, (model, tokenizer) in (("teacher", teacher), ("student", student))}
    counts = {name: 0 for name in streams}
    try:
        while streams:
            for name in list(streams):
                text = next(streams[name], None)
                if text is None:
                    del streams[name]
                    continue
                counts[name] += 1
                yield _event(name, {"text": text})
    except (RuntimeError, ValueError, DistillError) as exc:  # the model failed mid-way: say so in the stream
        log.warning("LM Try it stopped: %s", exc)
        yield _event("error", {"error": f"Generation stopped: {exc}"})
        return
    yield _event("done", {"teacher_steps": counts["teacher"], "student_steps": counts["student"],
                          "max_new_tokens": max_new})


def _event(name: str, data: dict[str, Any]) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode()
