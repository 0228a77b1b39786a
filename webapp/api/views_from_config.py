"""POST /api/experiments/from-config/: queue a distill_core config (an experiment page's config.json) again.

The config names its teacher and data by path; they are matched to one of the team's registered
checkpoints (by the path or Hub id the config names) and datasets (by the train file), the config is
turned into the new-experiment form's inputs the way "Clone" does (clone.py), and the form validates
and queues it like any other, so the checks and defaults are the page's.
"""

from __future__ import annotations

from typing import Any

from ninja import Router, Status

from webapp.api import serialize
from webapp.api.bodies import OVERRIDES, documented
from webapp.api.http import ApiError, form_error, json_body, refuse_unknown, scalar_fields
from webapp.api.schemas import ExperimentOut, answers
from webapp.api.views_tracking import user_team
from webapp.experiments.clone import clone_initial
from webapp.experiments.experiment_form import ExperimentForm
from webapp.experiments.models import Experiment
from webapp.experiments.sweeps import queue_from_form
from webapp.registry.models import Checkpoint, Dataset

router = Router(tags=["experiments"])


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


def _inputs(data: dict[str, Any]) -> dict[str, Any]:
    """The config (an object) and the overrides; the form checks the overrides' values."""
    refuse_unknown(data, ("config", "team", *OVERRIDES))
    if not isinstance(data.get("config"), dict):
        raise ApiError("Send the distill_core config (an object) in `config`.", fields={"config": ["Required."]})
    return data


@router.post("/experiments/from-config/", response=answers({201: ExperimentOut}, 400, 413, 415),
             url_name="experiment_from_config", exclude_unset=True, openapi_extra=documented(json="FromConfig"),
             summary="Queue a distill_core config (an experiment's config.json) with the team's registered teacher "
                     "and dataset it names by path")
def from_config(request):
    data = _inputs(json_body(request))
    config = data["config"]
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
    return Status(201, serialize.experiment(created[0], detail=True))
