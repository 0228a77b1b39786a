"""Request bodies: generated from the web forms where a form validates them, ninja Schemas elsewhere.

Form-backed bodies (a new experiment, a dataset upload, a checkpoint registration) are validated by
the forms themselves, so the API and the pages give the same messages; their models here are
generated from those forms (form_models.py) and only document the body: `documented()` puts them
in the operation's OpenAPI entry. The tracked-run bodies have no form: they are validated against
the Schemas below, by ninja (TrackedCreate) or by `parse` once the view has found the run (so
another team's run is a 404 whatever the body).
"""

from __future__ import annotations

import functools
from typing import Annotated, Any, Literal

import pydantic
from ninja import Schema
from ninja.errors import ValidationError
from ninja.schema import NinjaGenerateJsonSchema
from pydantic import BaseModel, ConfigDict, Field

from webapp.api.form_models import FormSpec, Range, form_model
from webapp.api.http import json_body
from webapp.experiments.models import Experiment

JSON, MULTIPART = "application/json", "multipart/form-data"
S = Experiment.Status
MAX_POINTS = 10_000  # per ingest call; the client sends at most this many
MAX_KEY = 100  # MetricPoint.key's length
MAX_STEP = 2**31 - 1
FINAL = (S.SUCCEEDED, S.FAILED, S.CANCELLED)
TEAM_NOTE = "The team's id; default: your only team."
OVERRIDES = ("name", "priority", "pool")  # the new-experiment form's inputs that from-config lets a caller set

TeamRef = Annotated[int | str, Field(description="The team's id or slug; default: your only team.")]
Step = Annotated[int, Field(strict=True, ge=0, le=MAX_STEP)]
Point = tuple[Annotated[str, Field(strict=True, min_length=1, max_length=MAX_KEY)], Step,
              Annotated[float, Field(strict=True, allow_inf_nan=False)]]


class Body(Schema):
    model_config = ConfigDict(extra="forbid")


class TrackedCreate(Body):
    """A run trained elsewhere that streams into the dashboard."""

    team: TeamRef | None = None
    name: str = Field(min_length=1, max_length=200)
    config: dict[str, Any] = Field(description="The run's distill_core config.")
    environment: dict[str, Any] | None = Field(None, description="environment.record() of the run.")


class Ingest(Body):
    """A batch of a tracked run's metric points, its phase, progress, log tail and environment."""

    # More than MAX_POINTS is a 413 (the view checks), not a 400: the client splits its batches.
    points: list[Point] = Field(default_factory=list, json_schema_extra={"maxItems": MAX_POINTS},
                                description='[key, step, value] items, e.g. ["train/loss", 10, 0.52].')
    phase: dict[str, Any] | None = Field(None, description="The latest `phase` event.")
    step: Step | None = None
    total_steps: Step | None = None
    log_tail: str | None = None
    environment: dict[str, Any] | None = None


class Finish(Body):
    """The end of a tracked run."""

    status: Literal[FINAL]
    results: dict[str, Any] | None = Field(None, description="distill_core's results dict.")
    error: str = ""


class FromConfigInputs(BaseModel):
    """The inputs of POST /api/experiments/from-config/ that are not form fields."""

    model_config = ConfigDict(extra="forbid")
    config: dict[str, Any] = Field(description="A distill_core config (an experiment page's config.json).")
    team: TeamRef | None = None


def _team(*names: str) -> dict[str, str]:
    return {name: TEAM_NOTE for name in names}


def parse(model: type[BaseModel], request) -> Any:
    """The request's JSON body validated against `model`; invalid, the 400 of ninja's own validation."""
    try:
        return model.model_validate(json_body(request))
    except pydantic.ValidationError as exc:
        raise ValidationError([{**e, "loc": ("body", "payload", *e["loc"])} for e in exc.errors(include_url=False)]) \
            from None


@functools.cache
def documented_bodies() -> dict[str, type[BaseModel]]:
    """The bodies a view reads itself, by name (built once: the forms and registries they read do not change)."""
    from webapp.experiments.experiment_fields import RANGES
    from webapp.experiments.experiment_form import ExperimentForm, registry_choices
    from webapp.registry.forms import CheckpointForm, DatasetForm

    team = ("team",)  # filled in with the user's only team
    checkpoint = CheckpointForm.base_fields
    return {
        "ExperimentCreate": form_model(
            "ExperimentCreate", ExperimentForm.base_fields,
            FormSpec(ranges={name: Range(*bounds) for name, bounds in RANGES.items()}, choices=registry_choices(),
                     optional=team, notes=_team("team")),
            doc="The new-experiment form's inputs. Left out (or null), an input takes the form's initial value, "
                "else distill_core's default. Comma-separated sweep_* lists queue one experiment per combination."),
        "DatasetUpload": form_model("DatasetUpload", DatasetForm.base_fields,
                                    FormSpec(optional=team, nullable=False, notes=_team("team")),
                                    doc="The upload form's inputs and files."),
        "CheckpointByPath": form_model("CheckpointByPath", checkpoint, FormSpec(
            only=("team", "name", "path"), required=("path",), optional=team, notes=_team("team"))),
        "CheckpointByHubId": form_model("CheckpointByHubId", checkpoint, FormSpec(
            only=("team", "name", "hub_id"), required=("hub_id",), optional=team, notes=_team("team"))),
        "CheckpointArchive": form_model("CheckpointArchive", checkpoint, FormSpec(
            only=("team", "name", "archive"), required=("archive",), optional=team, nullable=False,
            notes=_team("team"))),
        "FromConfig": form_model(
            "FromConfig", ExperimentForm.base_fields, FormSpec(only=OVERRIDES, optional=OVERRIDES),
            base=FromConfigInputs, doc="A distill_core config to queue again; name, priority and pool override "
                                       "the config's (checked like the new-experiment form's)."),
        "Ingest": Ingest, "Finish": Finish,
    }


def documented_query(model: type[BaseModel]) -> dict[str, Any]:
    """An operation's `openapi_extra` for query parameters that a page's parser checks (the page's messages)."""
    schema = model.model_json_schema(by_alias=True, schema_generator=NinjaGenerateJsonSchema)
    parameters = []
    for name, prop in schema["properties"].items():
        parameter = {"in": "query", "name": name, "required": False, "schema": prop}
        if "description" in prop:
            parameter["description"] = prop["description"]
        if prop.get("type") == "array":  # ?key=a&key=b
            parameter.update(style="form", explode=True)
        parameters.append(parameter)
    return {"parameters": parameters}


def documented(**content: str | list[str]) -> dict[str, Any]:
    """An operation's `openapi_extra` for a body its view reads: content type -> name(s) of documented_bodies()."""
    def schema(names: str | list[str]) -> dict[str, Any]:
        if isinstance(names, str):
            return {"$ref": f"#/components/schemas/{names}"}
        return {"oneOf": [schema(name) for name in names]}

    return {"requestBody": {"required": True, "content": {
        JSON if kind == "json" else MULTIPART: {"schema": schema(names)} for kind, names in content.items()}}}
