"""The OpenAPI 3 description of /api/, served at /api/schema.json (no token needed)."""

from __future__ import annotations

from typing import Any

from django.http import JsonResponse

from webapp.api.http import api_view
from webapp.experiments.models import Experiment

JSON = "application/json"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict, description: str) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": schema}}}


def _errors(*codes: int) -> dict[str, Any]:
    return {str(c): {"$ref": f"#/components/responses/E{c}"} for c in codes}


def _op(summary: str, ok: dict, *errors: int, params: list | None = None, body: dict | None = None,
        status: str = "200", public: bool = False) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "responses": {status: ok, **_errors(*errors)}}
    if params:
        op["parameters"] = params
    if body:
        op["requestBody"] = body
    if public:
        op["security"] = []
    return op


def _query(name: str, description: str, schema: dict | None = None) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": description,
            "schema": schema or {"type": "integer"}}


PK = {"name": "pk", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 1}}
PAGE = [_query("limit", "Page size (1–200, default 50)."), _query("offset", "Rows to skip (default 0).")]
METRIC_PARAMS = [
    _query("from", "First step of the view (default 0)."),
    _query("to", "Last step of the view (default: the end)."),
    _query("after", "Live cursor: only steps after it (default -1)."),
    _query("points", "Most points per series (10–5000, default 1000); min/max buckets beyond."),
    _query("key", "A metric key such as train/loss; repeat for several (default: all).", {"type": "string"}),
]


def _list_of(name: str) -> dict[str, Any]:
    return {"type": "object", "required": ["results", "limit", "offset", "next_offset"], "properties": {
        "results": {"type": "array", "items": _ref(name)}, "limit": {"type": "integer"},
        "offset": {"type": "integer"}, "next_offset": {"type": "integer", "nullable": True}}}


def _object(*required: str, **props: Any) -> dict[str, Any]:
    return {"type": "object", "required": list(required), "properties": props}


STR, INT, BOOL = {"type": "string"}, {"type": "integer"}, {"type": "boolean"}
NULLABLE_STR = {"type": "string", "nullable": True}
REF = _object("id", "name", id=INT, name=STR)

COMPONENTS = {
    "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                   "description": "A personal token from the API tokens page."}},
    "schemas": {
        "Error": _object("error", "fields", error=STR, fields={
            "type": "object", "additionalProperties": {"type": "array", "items": STR}}),
        "Ref": REF,
        "Experiment": _object(
            "id", "name", "status", id=INT, name=STR, team=_ref("Ref"), owner={"type": "string", "nullable": True},
            teacher=_ref("Ref"), dataset=_ref("Ref"), student_type=STR, pool=STR, priority=INT,
            status={"type": "string", "enum": list(Experiment.Status.values)}, status_label=STR,
            progress={"type": "number", "nullable": True}, current_step=INT,
            total_steps={"type": "integer", "nullable": True}, error=STR, finished=BOOL, cancel_requested=BOOL,
            latest={"type": "object"}, best={"type": "object"}, eta_seconds={"type": "number", "nullable": True},
            phase={"type": "object", "nullable": True, "description": "The run's current phase: name, label, done, "
                   "total (null: not countable), unit, rate (units/s), eta_seconds, elapsed_seconds, finished."},
            created_at=STR, started_at={"type": "string", "nullable": True},
            finished_at={"type": "string", "nullable": True}, url=STR,
            config={"type": "object", "description": "The distill_core config (detail only)."}),
        "ExperimentCreate": _object(
            "name", "teacher", "dataset", name=STR,
            team={"type": "integer", "description": "Default: your only team."},
            teacher={"type": "integer", "description": "Checkpoint id."}, dataset={"type": "integer"},
            student_type={"type": "string", "enum": ["textcnn", "bilstm"], "default": "textcnn"},
            temperature={"type": "number", "default": 2.0}, alpha={"type": "number", "default": 0.8},
            epochs={"type": "integer", "default": 3}, batch_size={"type": "integer", "default": 64},
            learning_rate={"type": "number", "default": 0.001}, max_length={"type": "integer", "default": 32}),
        "Metrics": _object("series", "cursor", "more", "downsampled", series={
            "type": "object", "additionalProperties": _object("steps", "values", steps={"type": "array", "items": INT},
                                                              values={"type": "array", "items": {
                                                                  "type": "number", "nullable": True}})},
            cursor=INT, more=BOOL, downsampled=BOOL, **{"from": INT, "to": INT}),
        "Results": _object("id", "status", "finished", id=INT, status=STR, finished=BOOL, best={"type": "object"},
                           results={"type": "object", "nullable": True}, summary={"type": "object", "nullable": True}),
        "Cancel": _object("outcome", "experiment", outcome={"type": "string", "enum": ["cancelled", "cancel_requested"]},
                          experiment=_ref("Experiment")),
        "Dataset": _object("id", "name", id=INT, name=STR, team=_ref("Ref"), format=STR, has_header=BOOL, text_column=STR,
                           text_pair_column=STR, label_column=STR, labels={"type": "array", "items": STR},
                           stats={"type": "object"}, created_at=STR, url=STR),
        "DatasetUpload": _object(
            "name", "train_file", team=INT, name=STR, train_file={"type": "string", "format": "binary"},
            dev_file={"type": "string", "format": "binary"}, test_file={"type": "string", "format": "binary"},
            format={"type": "string", "enum": ["tsv", "csv", "jsonl"], "default": "tsv"}, has_header=BOOL,
            text_column={"type": "string", "default": "0"}, text_pair_column=STR,
            label_column={"type": "string", "default": "1"},
            label_names={"type": "string", "description": "One label per line, in class-index order."}),
        "Checkpoint": _object("id", "name", "path", "status", id=INT, name=STR, team=_ref("Ref"), path=STR,
                              info={"type": "object"}, created_at=STR, url=STR,
                              status={"type": "string", "enum": ["UNPACKING", "READY", "FAILED"],
                                      "description": "An uploaded archive is UNPACKING until a task has unpacked "
                                                     "and checked it."},
                              percent=INT, error=STR,
                              status_url={"type": "string", "description": "Upload answers only: poll it."},
                              hub_id=NULLABLE_STR, hub_revision=NULLABLE_STR, hub_commit={
                                  **NULLABLE_STR, "description": "The commit a run resolved hub_id to; null before."}),
        "CheckpointByHubId": _object("name", "hub_id", team=INT, name=STR, hub_id={
            "type": "string", "description": "A Hugging Face model id, optionally @revision: org/name@main. "
                                             "Downloaded by the worker at the first run, never by the request."}),
        "CheckpointByPath": _object("name", "path", team=INT, name=STR, path={
            "type": "string",
            "description": "Absolute directory inside the team's folder of a checkpoint root: <root>/<team-slug>/."}),
        "CheckpointArchive": _object("name", "archive", team=INT, name=STR, archive={
            "type": "string", "format": "binary", "description": ".zip or .tar.gz of a save_pretrained() directory."}),
    },
    "responses": {f"E{code}": _json(_ref("Error"), text) for code, text in {
        400: "Invalid input; `fields` names what to fix", 401: "Missing or invalid bearer token",
        404: "No such object among your teams' objects", 405: "Method not allowed",
        409: "Conflict with the object's current state", 413: "Body over the size limit",
        415: "Wrong Content-Type"}.items()},
}

CHECKPOINT_POST = _op(
    "Register a checkpoint by path or Hugging Face id (JSON, 201) or upload an archive (multipart, 202: a task "
    "unpacks it; poll status_url)", _json(_ref("Checkpoint"), "Registered"), 400, 401, 413, 415, status="201",
    body={"required": True, "content": {JSON: {"schema": {"oneOf": [_ref("CheckpointByPath"),
                                                                     _ref("CheckpointByHubId")]}},
                                        "multipart/form-data": {"schema": _ref("CheckpointArchive")}}})
CHECKPOINT_POST["responses"]["202"] = _json(_ref("Checkpoint"), "Stored and UNPACKING")

PATHS = {
    "/api/schema.json": {"get": _op("This OpenAPI document", _json({"type": "object"}, "OpenAPI 3"), public=True)},
    "/api/experiments/": {
        "get": _op("List your teams' experiments, newest first", _json(_list_of("Experiment"), "A page"), 400, 401,
                   params=PAGE + [_query("status", "Only this status.", {"type": "string"})]),
        "post": _op("Queue an experiment (validated like the web form)", _json(_ref("Experiment"), "Queued"),
                    400, 401, 413, 415, status="201",
                    body={"required": True, "content": {JSON: {"schema": _ref("ExperimentCreate")}}}),
    },
    "/api/experiments/{pk}/": {"get": _op("One experiment with its config", _json(_ref("Experiment"), "It"), 401, 404,
                                          params=[PK])},
    "/api/experiments/{pk}/cancel/": {"post": _op(
        "Cancel a queued experiment, or ask a running one to stop", _json(_ref("Cancel"), "Done"), 401, 404, 409,
        params=[PK])},
    "/api/experiments/{pk}/metrics/": {"get": _op(
        "Metric series, downsampled to min/max buckets", _json(_ref("Metrics"), "Series"), 400, 401, 404,
        params=[PK, *METRIC_PARAMS])},
    "/api/experiments/{pk}/results/": {"get": _op("Final results (null until finished)",
                                                  _json(_ref("Results"), "Results"), 401, 404, params=[PK])},
    "/api/datasets/": {
        "get": _op("List your teams' datasets", _json(_list_of("Dataset"), "A page"), 400, 401, params=PAGE),
        "post": _op("Upload a dataset", _json(_ref("Dataset"), "Registered"), 400, 401, 413, 415, status="201",
                    body={"required": True, "content": {"multipart/form-data": {"schema": _ref("DatasetUpload")}}}),
    },
    "/api/datasets/{pk}/": {"get": _op("One dataset", _json(_ref("Dataset"), "It"), 401, 404, params=[PK])},
    "/api/checkpoints/": {
        "get": _op("List your teams' checkpoints", _json(_list_of("Checkpoint"), "A page"), 400, 401, params=PAGE),
        "post": CHECKPOINT_POST,
    },
    "/api/checkpoints/{pk}/": {"get": _op("One checkpoint", _json(_ref("Checkpoint"), "It"), 401, 404, params=[PK])},
}

SCHEMA = {
    "openapi": "3.0.3",
    "info": {"title": "Distillery API", "version": "1.0",
             "description": "Knowledge-distillation experiments. Authenticate with `Authorization: Bearer <token>`; "
                            "errors are {\"error\": message, \"fields\": {field: [messages]}}."},
    "servers": [{"url": "/"}],
    "security": [{"bearer": []}],
    "paths": PATHS,
    "components": COMPONENTS,
}


@api_view(public=True)
def schema_view(request):
    return JsonResponse(SCHEMA)
