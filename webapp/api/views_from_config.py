"""POST /api/experiments/from-config/: queue a distill_core config (an experiment page's config.json) again.

The config names its teacher and data by path; they are matched to one of the team's registered
checkpoints (by the path or Hub id the config names) and datasets (by the train file), the config is
turned into the new-experiment form's inputs the way "Clone" does (clone.py), and the form validates
and queues it like any other, so the checks and defaults are the page's.
"""

from __future__ import annotations

from typing import Any

from django.http import JsonResponse

from webapp.api import serialize
from webapp.api.http import ApiError, api_view, form_error, json_body, scalar_fields
from webapp.api.views_tracking import check_fields, object_or_none, user_team
from webapp.experiments.clone import clone_initial
from webapp.experiments.experiment_form import ExperimentForm
from webapp.experiments.models import Experiment
from webapp.experiments.sweeps import queue_from_form
from webapp.registry.models import Checkpoint, Dataset

OVERRIDES = ("name", "priority", "pool")


def _match(config: dict[str, Any], team) -> tuple[Checkpoint, Dataset]:
    teacher = config.get("teacher") if isinstance(config.get("teacher"), dict) else {}
    data = config.get("data") if isinstance(config.get("data"), dict) else {}
    source, train = teacher.get("path"), data.get("train")
    checkpoint = next((c for c in Checkpoint.objects.filter(team=team) if source and c.source == source), None)
    if checkpoint is None:
        raise ApiError(f"No checkpoint of {team} is registered at the config's teacher path {str(source)[:200]!r}; "
                       "register it first (POST /api/checkpoints/).", fields={"config.teacher.path": ["Not registered."]})
    dataset = Dataset.objects.filter(team=team, train_path=train).first() if isinstance(train, str) else None
    if dataset is None:
        raise ApiError(f"No dataset of {team} reads the config's train file {str(train)[:200]!r}; upload it first "
                       "(POST /api/datasets/).", fields={"config.data.train": ["Not registered."]})
    return checkpoint, dataset


def _create(request):
    data = json_body(request)
    check_fields(data, ("config", "team", *OVERRIDES))
    config = object_or_none(data, "config")
    if config is None:
        raise ApiError("Send the distill_core config in `config`.", fields={"config": ["Required."]})
    team = user_team(request.user, data.get("team"))
    checkpoint, dataset = _match(config, team)
    draft = Experiment(team=team, owner=request.user, name=str(config.get("name") or "run")[:200], teacher=checkpoint,
                       dataset=dataset, config=config, priority=0, pool="default")
    inputs = {k: v for k, v in clone_initial(draft).items() if v is not None}
    inputs["name"] = draft.name
    inputs.update({k: data[k] for k in OVERRIDES if data.get(k) is not None})
    names = list(ExperimentForm.base_fields)
    form = ExperimentForm(scalar_fields({k: v for k, v in inputs.items() if k in names}, names,
                                        ids=("team", "teacher", "dataset")), user=request.user)
    if not form.is_valid():
        return form_error(form)
    created, _ = queue_from_form(form, request.user)
    return JsonResponse(serialize.experiment(created[0], detail=True), status=201)


@api_view({"POST": _create})
def from_config(request):
    """POST: queue a distill_core config with the team's matching teacher and dataset."""
