"""The API's answers as ninja Schemas: django-ninja validates every answer against them and documents them.

Every answer schema is closed (`additionalProperties: false`): a key that serialize.py adds without
a field here fails the answer instead of reaching clients undocumented. The contract tests
(tests/webapp/conftest.py) check every answer of the suite against the generated document as well.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from ninja import Schema
from pydantic import ConfigDict, Field, WithJsonSchema

from webapp.api.http import MAX_ID
from webapp.experiments.models import Experiment
from webapp.registry.models import Checkpoint

When = Annotated[str, WithJsonSchema({"type": "string", "format": "date-time"})]
MetricMap = dict[str, float | None]
Pk = Annotated[int, Field(ge=1, le=MAX_ID)]


class Out(Schema):
    """An answer: closed, so an undocumented key is an error rather than a surprise."""

    model_config = ConfigDict(extra="forbid")


class Error(Out):
    error: str
    fields: dict[str, list[str]]


class Ref(Out):
    id: int
    name: str


class QueuePlace(Out):
    """Queued experiments only: the place in the queue and why it waits (empty otherwise)."""

    position: int = Field(None, ge=1)
    note: str = None


class ExperimentOut(Out):
    id: int
    name: str
    team: Ref
    owner: str | None
    teacher: Ref | None
    dataset: Ref | None
    student_type: str
    pool: str
    tracked: bool = Field(description="Run elsewhere and streamed in (teacher and dataset null); see POST "
                                      "/api/tracked/.")
    priority: int
    gpus: int
    gpu_ids: list[int]
    created_at: When
    started_at: When | None
    finished_at: When | None
    url: str
    queue: QueuePlace
    status: Literal[tuple(Experiment.Status.values)]
    status_label: str
    progress: float | None
    current_step: int
    total_steps: int | None
    error: str
    log_tail: str
    latest: MetricMap
    best: MetricMap
    finished: bool
    cancel_requested: bool
    eta_seconds: float | None
    phase: dict[str, Any] | None = Field(description="The run's current phase: name, label, done, total (null: "
                                                     "not countable), unit, rate (units/s), eta_seconds, "
                                                     "elapsed_seconds, finished.")
    # Single experiments only (not in lists): left out of list answers.
    config: dict[str, Any] = Field(None, description="The distill_core config (single experiments only).")
    environment: dict[str, Any] | None = Field(None, description=(
        "What the run computed with (distill_core.environment.record; single experiments only): versions, every "
        "package, the project's commit, host, CPU, GPUs, teacher file checksums. Null until the run starts."))
    trials: list[dict[str, Any]] = Field(None, description=(
        "Single experiments only: the tune-KD trials (child runs) in grid order, each {index, temperature, alpha, "
        "loss, status, steps, metric, score, metrics, curve, error, chosen, explanation}; empty without "
        "tune.enabled."))


class SweepOut(Out):
    sweep: str
    experiments: list[ExperimentOut] = Field(min_length=2)


class Series(Out):
    steps: list[int]
    values: list[float | None]


class MetricsOut(Out):
    series: dict[str, Series]
    cursor: int
    more: bool
    downsampled: bool
    from_: int = Field(alias="from")
    to: int


class ResultsOut(Out):
    id: int
    status: str
    finished: bool
    best: MetricMap
    results: dict[str, Any] | None
    summary: dict[str, Any] | None


class CancelOut(Out):
    outcome: Literal["cancelled", "cancel_requested"]
    experiment: ExperimentOut


class IngestOut(Out):
    id: int
    accepted: int
    status: str
    cancel_requested: bool


class DatasetOut(Out):
    id: int
    name: str
    team: Ref
    format: str
    has_header: bool
    text_column: str
    text_pair_column: str
    label_column: str
    labels: list[str]
    kind: Literal["classification", "lm"]
    lm_columns: dict[str, Any]
    stats: dict[str, Any]
    created_at: When
    url: str


class CheckpointOut(Out):
    id: int
    name: str
    team: Ref
    path: str
    info: dict[str, Any]
    created_at: When
    url: str
    hub_id: str | None
    hub_revision: str | None
    hub_commit: str | None = Field(description="The commit a run resolved hub_id to; null before.")
    status: Literal[tuple(Checkpoint.Status.values)] = Field(
        description="An uploaded archive is UNPACKING until a task has unpacked and checked it.")
    percent: int = Field(ge=0, le=100)
    error: str
    status_url: str = Field(None, description="Upload answers (202) only: poll it until READY or FAILED.")


class ExperimentPage(Out):
    results: list[ExperimentOut]
    limit: int
    offset: int
    next_offset: int | None


class DatasetPage(Out):
    results: list[DatasetOut]
    limit: int
    offset: int
    next_offset: int | None


class CheckpointPage(Out):
    results: list[CheckpointOut]
    limit: int
    offset: int
    next_offset: int | None


ERRORS = {400: "Invalid input; `fields` names what to fix", 401: "Missing or invalid bearer token",
          404: "No such object among your teams' objects", 409: "Conflict with the object's current state",
          413: "Body over the size limit", 415: "Wrong Content-Type"}


def answers(ok: dict[int, Any], *codes: int) -> dict[int, Any]:
    """An operation's `response=`: its successes, 401 (every operation needs a token) and `codes` as Error."""
    return {**ok, **{code: Error for code in sorted({401, *codes})}}
