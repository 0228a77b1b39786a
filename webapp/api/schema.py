"""The OpenAPI 3.1 description of /api/, served at /api/schema.json (no token needed).

Request bodies are generated from the forms the views validate with (form_schema.py): every input
of the new-experiment form, with its bounds, choices and defaults, is documented because it is
read from the form's declaration, whose option inputs are generated from distill_core's option
declarations (webapp/experiments/option_fields.py; RANGES carries the bounds checked in a validator). Response bodies are written here next to each other; the
contract tests (tests/webapp/conftest.py) validate every API response of the suite against them,
and tests/webapp/test_api_fuzz.py fuzzes every operation, so neither side can drift unnoticed.
"""

from __future__ import annotations

import functools
from typing import Any

from django.http import JsonResponse

from webapp.api.form_schema import MAX_ID, FormSpec, Range, form_schema
from webapp.api.http import api_view
from webapp.experiments.models import Checkpoint, Experiment

JSON = "application/json"
MULTIPART = "multipart/form-data"
ERRORS = {
    400: "Invalid input; `fields` names what to fix", 401: "Missing or invalid bearer token",
    404: "No such object among your teams' objects", 409: "Conflict with the object's current state",
    413: "Body over the size limit", 415: "Wrong Content-Type",
}

STR, INT, BOOL, NUMBER = {"type": "string"}, {"type": "integer"}, {"type": "boolean"}, {"type": "number"}
WHEN = {"type": "string", "format": "date-time"}
ANY_OBJECT = {"type": "object"}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _null(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]} if "$ref" in schema else {**schema, "type": [schema["type"], "null"]}


def _object(required: tuple[str, ...] | None = None, **props: Any) -> dict[str, Any]:
    """A closed object: every property listed, all required unless `required` names the ones that are."""
    return {"type": "object", "required": list(props if required is None else required), "properties": props,
            "additionalProperties": False}


def _json(schema: dict, description: str) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": schema}}}


def _op(summary: str, ok: dict, *errors: int, params: list | None = None, body: dict | None = None,
        status: str = "200", public: bool = False) -> dict[str, Any]:
    codes = errors if public else (401, *errors)
    op: dict[str, Any] = {"summary": summary, "responses": {
        status: ok, **{str(c): {"$ref": f"#/components/responses/E{c}"} for c in sorted(codes)}}}
    if params:
        op["parameters"] = params
    if body:
        op["requestBody"] = {"required": True, "content": body}
    if public:
        op["security"] = []
    return op


def _query(name: str, description: str, schema: dict, **extra: Any) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": description, "schema": schema, **extra}


def _int(low: int, high: int, default: int | None = None) -> dict[str, Any]:
    schema = {"type": "integer", "minimum": low, "maximum": high}
    return schema if default is None else {**schema, "default": default}


def _parameters() -> dict[str, list[dict[str, Any]]]:
    from webapp.api import list_filters
    from webapp.api.views import MAX_OFFSET, MAX_PAGE
    from webapp.experiments import downsample
    from webapp.experiments.views_json import MAX_KEYS, MAX_POINTS, MAX_STEP, MIN_POINTS

    statuses = list(Experiment.Status.values)
    return {
        "pk": [{"name": "pk", "in": "path", "required": True, "schema": _int(1, MAX_ID)}],
        "page": [_query("limit", f"Page size (1–{MAX_PAGE}).", _int(1, MAX_PAGE, 50)),
                 _query("offset", "Rows to skip.", _int(0, MAX_OFFSET, 0))],
        "status": [_query("status", "Only this status (any case).",
                          {"type": "string", "enum": statuses + [s.lower() for s in statuses]})],
        "filters": [_query(name, text, {"type": "string", "maxLength": list_filters.MAX_TEXT})
                    if name != "tracked" else _query(name, text, {"type": "string", "enum": ["true", "false"]})
                    for name, text in list_filters.FILTERS.items()],
        "metrics": [
            _query("from", "First step of the view.", _int(0, MAX_STEP, 0)),
            _query("to", "Last step of the view (default: the end).", _int(0, MAX_STEP)),
            _query("after", "Live cursor: only steps after it.", _int(-1, MAX_STEP, -1)),
            _query("points", "Most points per series; min/max buckets beyond.",
                   _int(MIN_POINTS, MAX_POINTS, downsample.DEFAULT_LIMIT)),
            _query("key", "Metric keys such as train/loss; repeat for several (default: all).",
                   {"type": "array", "maxItems": MAX_KEYS, "items": {"type": "string", "minLength": 1,
                                                                     "maxLength": 100}},
                   style="form", explode=True),
        ],
    }


def _request_bodies() -> dict[str, dict[str, Any]]:
    """Request bodies generated from the forms the views validate with."""
    from webapp.experiments.experiment_fields import RANGES
    from webapp.experiments.experiment_form import registry_choices
    from webapp.experiments.forms import CheckpointForm, DatasetForm, ExperimentForm

    team = ("team",)  # filled in with the user's only team
    experiment = form_schema(ExperimentForm.base_fields, FormSpec(
        ranges={name: Range(*bounds) for name, bounds in RANGES.items()}, choices=registry_choices(),
        optional=team))
    dataset = form_schema(DatasetForm.base_fields, FormSpec(optional=team, nullable=False))
    by_path = form_schema(CheckpointForm.base_fields, FormSpec(only=("team", "name", "path"), required=("path",),
                                                               optional=team))
    archive = form_schema(CheckpointForm.base_fields, FormSpec(only=("team", "name", "archive"),
                                                               required=("archive",), optional=team, nullable=False))
    by_hub_id = form_schema(CheckpointForm.base_fields, FormSpec(only=("team", "name", "hub_id"),
                                                                 required=("hub_id",), optional=team))
    for schema in (experiment, dataset, by_path, archive, by_hub_id):
        prop = schema["properties"]["team"]
        prop["description"] = (prop.get("description", "") + " The team's id; default: your only team.").strip()
    experiment["description"] = (
        "The new-experiment form's inputs. Left out (or null), an input takes the form's initial value, "
        "else distill_core's default. Comma-separated sweep_* lists queue one experiment per combination.")
    return {**_tracking_bodies(), "ExperimentCreate": experiment, "DatasetUpload": dataset, "CheckpointByPath": by_path,
            "CheckpointByHubId": by_hub_id, "CheckpointArchive": archive}


def _tracking_bodies() -> dict[str, dict[str, Any]]:
    """The bodies of the tracked-run endpoints (webapp/api/views_tracking.py)."""
    from webapp.api.views_tracking import FINAL, MAX_KEY, MAX_POINTS, MAX_STEP

    step = _int(0, MAX_STEP)
    point = {"type": "array", "prefixItems": [{"type": "string", "minLength": 1, "maxLength": MAX_KEY}, step, NUMBER],
             "minItems": 3, "maxItems": 3, "description": "[key, step, value], e.g. [\"train/loss\", 10, 0.52]"}
    return {
        "TrackedCreate": _object(("name", "config"), team={"type": ["integer", "string"],
                                                           "description": "Id or slug; default: your only team."},
                                 name={"type": "string", "minLength": 1, "maxLength": 200},
                                 config={"type": "object", "description": "The run's distill_core config."},
                                 environment={"type": "object", "description": "environment.record() of the run."}),
        "FromConfig": _object(("config",), config={"type": "object", "description": "A distill_core config."},
                              team={"type": ["integer", "string"], "description": "Id or slug; default: your only "
                                                                                  "team."},
                              name={"type": "string", "minLength": 1, "maxLength": 200},
                              priority=INT, pool=STR),
        "Ingest": _object((), points={"type": "array", "maxItems": MAX_POINTS, "items": point},
                          phase={"type": ["object", "null"], "description": "The latest `phase` event."},
                          step=_null(step), total_steps=_null(step), log_tail=_null(STR),
                          environment={"type": ["object", "null"]}),
        "Finish": _object(("status",), status={"type": "string", "enum": list(FINAL)},
                          results={"type": ["object", "null"], "description": "distill_core's results dict."},
                          error=STR),
    }


def _response_bodies() -> dict[str, dict[str, Any]]:
    """What serialize.py and the views return."""
    ref, metric_map = _ref("Ref"), {"type": "object", "additionalProperties": _null(NUMBER)}
    experiment_props = dict(
        id=INT, name=STR, team=ref, owner=_null(STR), teacher=_null(ref), dataset=_null(ref), student_type=STR,
        pool=STR, tracked={"type": "boolean", "description": "Run elsewhere and streamed in (teacher and dataset "
                                                            "null); see POST /api/tracked/."},
        priority=INT, gpus=INT, gpu_ids={"type": "array", "items": INT}, created_at=WHEN, started_at=_null(WHEN),
        finished_at=_null(WHEN), url=STR,
        queue=_object((), position={"type": "integer", "minimum": 1}, note=STR),
        status={"type": "string", "enum": list(Experiment.Status.values)}, status_label=STR,
        progress=_null(NUMBER), current_step=INT, total_steps=_null(INT), error=STR, log_tail=STR,
        latest=metric_map, best=metric_map, finished=BOOL, cancel_requested=BOOL, eta_seconds=_null(NUMBER),
        phase=_null({"type": "object", "description": "The run's current phase: name, label, done, total (null: "
                     "not countable), unit, rate (units/s), eta_seconds, elapsed_seconds, finished."}),
        config={"type": "object", "description": "The distill_core config (single experiments only, not lists)."},
        environment={"type": ["object", "null"], "description": "What the run computed with "
                     "(distill_core.environment.record; single experiments only): versions, every package, the "
                     "project's commit, host, CPU, GPUs, teacher file checksums. Null until the run starts."},
        trials={"type": "array", "description": "Single experiments only: the tune-KD trials (child runs) in grid "
                "order, each {index, temperature, alpha, loss, status, steps, metric, score, metrics, curve, error, "
                "chosen, explanation}; empty without tune.enabled.", "items": ANY_OBJECT})
    checkpoint_props = dict(
        id=INT, name=STR, team=ref, path=STR, info=ANY_OBJECT, created_at=WHEN, url=STR,
        hub_id=_null(STR), hub_revision=_null(STR),
        hub_commit=_null({"type": "string", "description": "The commit a run resolved hub_id to; null before."}),
        status={"type": "string", "enum": list(Checkpoint.Status.values),
                "description": "An uploaded archive is UNPACKING until a task has unpacked and checked it."},
        percent={"type": "integer", "minimum": 0, "maximum": 100}, error=STR,
        status_url={"type": "string", "description": "Upload answers (202) only: poll it until READY or FAILED."})
    return {
        "Error": _object(error=STR, fields={"type": "object", "additionalProperties": {"type": "array",
                                                                                        "items": STR}}),
        "Ref": _object(id=INT, name=STR),
        "Experiment": _object(tuple(k for k in experiment_props if k not in ("config", "environment", "trials")),
                              **experiment_props),
        "Sweep": _object(sweep=STR, experiments={"type": "array", "minItems": 2, "items": _ref("Experiment")}),
        "Metrics": _object(
            series={"type": "object", "additionalProperties": _object(
                steps={"type": "array", "items": INT}, values={"type": "array", "items": _null(NUMBER)})},
            cursor=INT, more=BOOL, downsampled=BOOL, **{"from": INT, "to": INT}),
        "Results": _object(id=INT, status=STR, finished=BOOL, best=metric_map, results=_null(ANY_OBJECT),
                           summary=_null(ANY_OBJECT)),
        "Cancel": _object(outcome={"type": "string", "enum": ["cancelled", "cancel_requested"]},
                          experiment=_ref("Experiment")),
        "IngestAnswer": _object(id=INT, accepted=INT, status=STR, cancel_requested=BOOL),
        "Dataset": _object(id=INT, name=STR, team=ref, format=STR, has_header=BOOL, text_column=STR,
                           text_pair_column=STR, label_column=STR, labels={"type": "array", "items": STR},
                           kind={"type": "string", "enum": ["classification", "lm"]}, lm_columns=ANY_OBJECT,
                           stats=ANY_OBJECT, created_at=WHEN, url=STR),
        "Checkpoint": _object(
            tuple(k for k in checkpoint_props if k != "status_url"), **checkpoint_props),
        **{f"{name}Page": _object(results={"type": "array", "items": _ref(name)}, limit=INT, offset=INT,
                                  next_offset=_null(INT)) for name in ("Experiment", "Dataset", "Checkpoint")},
    }


def _paths(p: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    pk, page = p["pk"], p["page"]
    checkpoint_post = _op(
        "Register a checkpoint by path or Hugging Face id (JSON, 201), or upload an archive (multipart, 202: "
        "a task unpacks it; poll status_url)", _json(_ref("Checkpoint"), "Registered"), 400, 413, 415,
        status="201", body={JSON: {"schema": {"oneOf": [_ref("CheckpointByPath"), _ref("CheckpointByHubId")]}},
                            MULTIPART: {"schema": _ref("CheckpointArchive")}})
    checkpoint_post["responses"]["202"] = _json(_ref("Checkpoint"), "Stored; UNPACKING until the task is done")
    return {
        "/api/schema.json": {"get": _op("This OpenAPI document", _json(ANY_OBJECT, "OpenAPI 3.1"), public=True)},
        "/api/experiments/": {
            "get": _op("List your teams' experiments, newest first", _json(_ref("ExperimentPage"), "A page"), 400,
                       params=page + p["status"] + p["filters"]),
            "post": _op("Queue an experiment, or a sweep of them (validated like the web form)",
                        _json({"oneOf": [_ref("Experiment"), _ref("Sweep")]}, "Queued: one experiment, or a sweep"),
                        400, 413, 415, status="201", body={JSON: {"schema": _ref("ExperimentCreate")}}),
        },
        "/api/experiments/from-config/": {"post": _op(
            "Queue a distill_core config (an experiment's config.json) with the team's registered teacher and "
            "dataset it names by path", _json(_ref("Experiment"), "Queued"), 400, 413, 415, status="201",
            body={JSON: {"schema": _ref("FromConfig")}})},
        "/api/experiments/{pk}/": {"get": _op("One experiment with its config", _json(_ref("Experiment"), "It"), 404,
                                              params=pk)},
        "/api/experiments/{pk}/cancel/": {"post": _op(
            "Cancel a queued experiment, or ask a running one to stop", _json(_ref("Cancel"), "Done"), 404, 409,
            params=pk)},
        "/api/experiments/{pk}/metrics/": {"get": _op(
            "Metric series, downsampled to min/max buckets", _json(_ref("Metrics"), "Series"), 400, 404,
            params=pk + p["metrics"])},
        "/api/experiments/{pk}/results/": {"get": _op("Final results (null until finished)",
                                                      _json(_ref("Results"), "Results"), 404, params=pk)},
        "/api/experiments/{pk}/student.zip": {"get": _op(
            "The exported student of a finished run, as a zip", {"description": "The zip",
                                                                  "content": {"application/zip": {}}}, 404,
            params=pk)},
        "/api/experiments/{pk}/ingest/": {"post": _op(
            "Store a batch of a tracked run's metric points (idempotent on key and step), its phase, progress, log "
            "tail and environment; answers the cancel flag", _json(_ref("IngestAnswer"), "Stored"), 400, 404, 409,
            413, 415, params=pk, body={JSON: {"schema": _ref("Ingest")}})},
        "/api/experiments/{pk}/finish/": {"post": _op(
            "End a tracked run with its status and results (repeating the same end is harmless)",
            _json(_ref("Experiment"), "Ended"), 400, 404, 409, 413, 415, params=pk,
            body={JSON: {"schema": _ref("Finish")}})},
        "/api/tracked/": {"post": _op(
            "Create a tracked run: one trained elsewhere that streams into this dashboard (RUNNING, never queued)",
            _json(_ref("Experiment"), "Created"), 400, 413, 415, status="201",
            body={JSON: {"schema": _ref("TrackedCreate")}})},
        "/api/datasets/": {
            "get": _op("List your teams' datasets", _json(_ref("DatasetPage"), "A page"), 400, params=page),
            "post": _op("Upload a dataset", _json(_ref("Dataset"), "Registered"), 400, 413, 415, status="201",
                        body={MULTIPART: {"schema": _ref("DatasetUpload")}}),
        },
        "/api/datasets/{pk}/": {"get": _op("One dataset", _json(_ref("Dataset"), "It"), 404, params=pk)},
        "/api/checkpoints/": {
            "get": _op("List your teams' checkpoints", _json(_ref("CheckpointPage"), "A page"), 400, params=page),
            "post": checkpoint_post,
        },
        "/api/checkpoints/{pk}/": {"get": _op("One checkpoint", _json(_ref("Checkpoint"), "It"), 404, params=pk)},
    }


@functools.cache
def build_schema() -> dict[str, Any]:
    """The whole document (built once: the forms and registries it reads do not change while serving)."""
    return {
        "openapi": "3.1.0",
        "info": {"title": "Distillery API", "version": "1.1",
                 "description": "Knowledge-distillation experiments. Authenticate with `Authorization: Bearer "
                                "<token>`; errors are {\"error\": message, \"fields\": {field: [messages]}}."},
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": _paths(_parameters()),
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                           "description": "A personal token from the API tokens page."}},
            "schemas": {**_request_bodies(), **_response_bodies()},
            "responses": {f"E{code}": _json(_ref("Error"), text) for code, text in ERRORS.items()},
        },
    }


@api_view(public=True)
def schema_view(request):
    return JsonResponse(build_schema())
