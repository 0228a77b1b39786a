"""REST endpoints of the experiments: list, create, get, cancel, metrics, results.

Creation goes through the same form and helpers as the page (ExperimentForm +
sweeps.queue_from_form), so the web and the API share one validation; cancel goes through the
queue's service (webapp/gpuqueue/actions.py) like the page and the queue board.
"""

from __future__ import annotations

from typing import Any

from django.urls import Resolver404, resolve
from django.views.decorators.csrf import csrf_exempt
from ninja import Path, Query, Router, Status
from pydantic import BaseModel, Field

from webapp.accounts.access import get_owned, owned
from webapp.accounts.models import teams_of
from webapp.api import list_filters, serialize
from webapp.api.bodies import documented, documented_query
from webapp.api.http import ApiError, error, form_error, json_body, scalar_fields
from webapp.api.list_filters import ExperimentFilters
from webapp.api.params import text
from webapp.api.schemas import (
    CancelOut,
    ExperimentOut,
    ExperimentPage,
    MetricsOut,
    Pk,
    ResultsOut,
    SweepOut,
    answers,
)
from webapp.experiments.experiment_form import ExperimentForm
from webapp.experiments.models import Experiment
from webapp.experiments.results import summarise
from webapp.experiments.sweeps import queue_from_form
from webapp.experiments.views_json import (
    MAX_KEYS,
    MAX_POINTS,
    MAX_STEP,
    MIN_POINTS,
    MetricWindow,
    finite,
    metrics_payload,
)
from webapp.gpuqueue import actions
from webapp.metrics import downsample

router = Router(tags=["experiments"])
ROW = ("team", "owner", "teacher", "dataset")


def page(rows: list, limit: int, offset: int, render) -> dict[str, Any]:
    """One page of `rows` (fetched with one row more than `limit`, to know whether another page follows)."""
    return {"results": [render(r) for r in rows[:limit]], "limit": limit, "offset": offset,
            "next_offset": offset + limit if len(rows) > limit else None}


def with_defaults(form_class, data: dict[str, str], user) -> dict[str, str]:
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


def _load(pk: int) -> Experiment:
    return Experiment.objects.select_related(*ROW).get(pk=pk)


@router.get("/experiments/", response=answers({200: ExperimentPage}, 400), url_name="experiments",
            exclude_unset=True, summary="List your teams' experiments, newest first (filters and sort orders as on "
                                        "the experiments page)")
def experiment_list(request, filters: Query[ExperimentFilters]):
    ids = list(list_filters.ids(owned(request.user, Experiment), filters)
               [filters.offset:filters.offset + filters.limit + 1])
    found = Experiment.objects.select_related(*ROW).defer("config").in_bulk(ids)
    return page([found[pk] for pk in ids if pk in found], filters.limit, filters.offset, serialize.experiment)


@router.post("/experiments/", response=answers({201: ExperimentOut | SweepOut}, 400, 413, 415), exclude_unset=True,
             openapi_extra=documented(json="ExperimentCreate"),
             summary="Queue an experiment, or a sweep of them (validated like the web form)")
def experiment_create(request):
    names = list(ExperimentForm.base_fields)
    data = with_defaults(ExperimentForm, scalar_fields(json_body(request), names, ids=("team", "teacher", "dataset")),
                         request.user)
    form = ExperimentForm(data, user=request.user)
    if not form.is_valid():
        return form_error(form)
    created, tag = queue_from_form(form, request.user)
    if tag is not None:  # a sweep: every combination, grouped by one tag
        return Status(201, {"sweep": tag.name, "experiments": [serialize.experiment(e, detail=True) for e in created]})
    return Status(201, serialize.experiment(created[0], detail=True))


@router.get("/experiments/{int:pk}/", response=answers({200: ExperimentOut}, 404), url_name="experiment",
            exclude_unset=True, summary="One experiment with its config")
def experiment(request, pk: Path[Pk]):
    return serialize.experiment(get_owned(request.user, Experiment.objects.select_related(*ROW), pk=pk), detail=True)


@router.post("/experiments/{int:pk}/cancel/", response=answers({200: CancelOut}, 404, 409),
             url_name="experiment_cancel", exclude_unset=True,
             summary="Cancel a queued experiment, or ask a running one to stop")
def experiment_cancel(request, pk: Path[Pk]):
    experiment = get_owned(request.user, Experiment, pk=pk)
    outcome = actions.request_cancel(experiment)  # the same service as the page and the queue board
    if not outcome:
        return error(actions.nothing_to_cancel(experiment), 409)
    return {"outcome": "cancelled" if outcome == "cancelled" else "cancel_requested",
            "experiment": serialize.experiment(_load(pk))}


class MetricQuery(BaseModel):
    """The metrics' query parameters, checked by the page's parser (MetricWindow.from_query)."""

    from_: int = Field(0, ge=0, le=MAX_STEP, alias="from", description="First step of the view.")
    to: int | None = Field(None, ge=0, le=MAX_STEP, description="Last step of the view (default: the end).")
    after: int = Field(-1, ge=-1, le=MAX_STEP, description="Live cursor: only steps after it.")
    points: int = Field(downsample.DEFAULT_LIMIT, ge=MIN_POINTS, le=MAX_POINTS,
                        description="Most points per series; min/max buckets beyond.")
    key: list[text(100)] = Field(
        default_factory=list, max_length=MAX_KEYS, description="Metric keys such as train/loss; repeat for several "
                                                               "(default: all).")


@router.get("/experiments/{int:pk}/metrics/", response=answers({200: MetricsOut}, 400, 404),
            url_name="experiment_metrics", by_alias=True, openapi_extra=documented_query(MetricQuery),
            summary="Metric series, downsampled to min/max buckets")
def experiment_metrics(request, pk: Path[Pk]):
    experiment = get_owned(request.user, Experiment, pk=pk)
    try:  # the experiment page's parser, so the API gives the page's messages
        window = MetricWindow.from_query(request.GET)
    except ValueError as exc:
        raise ApiError(str(exc)) from None
    return metrics_payload(experiment, window)


@router.get("/experiments/{int:pk}/results/", response=answers({200: ResultsOut}, 404),
            url_name="experiment_results", summary="Final results (null until finished)")
def experiment_results(request, pk: Path[Pk]):
    experiment = get_owned(request.user, Experiment, pk=pk)
    summary = summarise(experiment.results) if experiment.results else None
    return {"id": experiment.pk, "status": experiment.status, "finished": experiment.is_finished,
            "best": {str(k): finite(v) for k, v in (experiment.best or {}).items()},
            "results": serialize.finite_deep(experiment.results), "summary": serialize.finite_deep(summary)}
