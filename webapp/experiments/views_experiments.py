"""Experiment pages: the new-experiment form, the live page, cancel, config."""

from __future__ import annotations

import json
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from webapp.accounts.access import get_owned, owned
from webapp.accounts.models import teams_of
from webapp.experiments import dependencies, environment_view
from webapp.experiments.artifacts import Unavailable, export_dir
from webapp.experiments.clone import clone_initial
from webapp.experiments.experiment_form import ExperimentForm
from webapp.experiments.lm_fields import KIND as LM_KIND
from webapp.experiments.lm_fields import LM_CHARTS, lm_results
from webapp.experiments.models import Experiment
from webapp.experiments.results import summarise
from webapp.experiments.sweeps import queue_from_form
from webapp.experiments.trial_views import tuning_context
from webapp.experiments.views_json import status_payload
from webapp.gpuqueue import actions
from webapp.registry.models import Checkpoint, Dataset

# The live charts: (chart id, title, metric keys, y-axis title).
LIVE_CHARTS = [
    {"id": "chart-loss", "title": "Training losses", "keys": ["train/loss", "train/kd_loss", "train/hard_loss"],
     "yaxis": "loss"},
    {"id": "chart-lr", "title": "Learning rate", "keys": ["train/lr"], "yaxis": "learning rate"},
    {"id": "chart-schedule", "title": "Temperature and loss weights",
     "keys": ["train/temperature", "train/kd_weight", "train/hard_weight"], "yaxis": "value"},
    {"id": "chart-dev", "title": "Dev metrics", "keys": ["dev/accuracy", "dev/macro_f1"], "yaxis": "score"},
]


# What the worker samples while a run trains (workers/sysmetrics.py), keyed by seconds since the run started.
SYSTEM_CHARTS = [
    {"id": "chart-sys-util", "title": "CPU and GPU utilisation", "keys": ["system/cpu_percent", "system/gpu_util_percent"],
     "yaxis": "percent", "system": True},
    {"id": "chart-sys-memory", "title": "Memory", "keys": ["system/rss_mb", "system/gpu_memory_mb"], "yaxis": "MiB",
     "system": True},
]


def live_charts(experiment: Experiment) -> list[dict]:
    """The page's charts: LIVE_CHARTS (plus one of the intermediate-match terms, when the run has any), then
    SYSTEM_CHARTS."""
    if isinstance(experiment.config, dict) and experiment.config.get("kind") == LM_KIND:
        return LM_CHARTS
    keys = match_keys(experiment.config)
    if not keys:
        return [*LIVE_CHARTS, *SYSTEM_CHARTS]
    loss = {**LIVE_CHARTS[0], "keys": [*LIVE_CHARTS[0]["keys"], "train/intermediate_loss"]}
    matches = {"id": "chart-matches", "title": "Intermediate matches", "keys": [f"train/{k}" for k in keys],
               "yaxis": "weighted loss"}
    return [loss, matches, *LIVE_CHARTS[1:], *SYSTEM_CHARTS]


def match_keys(config: object) -> list[str]:
    """The metric names distill_core logs for each match of each stage (match0_hidden_mse_T4_S2, ...)."""
    from distill_core.config import ExperimentConfig
    from distill_core.errors import DistillError
    from distill_core.matches import parse_matches

    try:
        stages = ExperimentConfig.from_dict(config).stage_configs() if isinstance(config, dict) else []
        keys = []
        for stage in stages:
            for i, m in enumerate(parse_matches(stage.matches) if stage.matches else []):
                keys.append(f"match{i}_{m.loss}_T{m.layer_T}_S{m.layer_S}")
    except DistillError:  # an old or hand-edited config: the standard charts still work
        return []
    return list(dict.fromkeys(keys))


@login_required
def experiment_new(request):
    # ?teacher=<id>&dataset=<id> preselect (the "Distil it" buttons); the querysets keep them to the user's teams.
    initial = {k: v for k in ("teacher", "dataset") if (v := request.GET.get(k, "")).isdigit()}
    clone = request.GET.get("clone", "")
    if clone.isascii() and clone.isdigit() and len(clone) <= 12:  # ?clone=<pk>: a copy of one of the user's runs
        source = get_owned(request.user, Experiment, pk=int(clone))
        initial = clone_initial(source)
        if request.method == "GET":
            messages.info(request, f"Pre-filled from “{source.name}” (#{source.pk}); change what you want to try.")
    form = ExperimentForm(request.POST or None, user=request.user, initial=initial)
    if request.method == "POST" and form.is_valid():
        created, tag = queue_from_form(form, request.user)
        if tag is not None:
            messages.success(request, f"Queued {len(created)} experiments, tagged “{tag.name}”.")
            return redirect(f"{reverse('experiments:list')}?{urlencode({'tag': tag.name})}")
        experiment = created[0]
        messages.success(request, f"Queued “{experiment.name}”.")
        return redirect("experiments:detail", pk=experiment.pk)
    return render(request, "experiments/new.html", {
        "form": form,
        "open_sections": form.open_sections(),
        "match_choices": form.match_choices(),
        "has_teams": teams_of(request.user).exists(),
        "has_checkpoints": owned(request.user, Checkpoint).exists(),
        "has_datasets": owned(request.user, Dataset).exists(),
        "nav": "new",
    }, status=400 if form.is_bound else 200)  # a refused form is a client error, with its messages


@login_required
def experiment_detail(request, pk: int):
    experiment = get_owned(request.user, Experiment.objects.select_related("teacher", "dataset", "owner", "team",
                                                                           "depends_on"), pk=pk)
    config_json = json.dumps(experiment.config, indent=2, ensure_ascii=False)
    try:
        student_ready = bool(export_dir(experiment))
    except Unavailable:
        student_ready = False
    return render(request, "experiments/detail.html", {
        "experiment": experiment,
        "status": status_payload(experiment),
        "config_json": config_json,
        "charts": live_charts(experiment),
        "results": summarise(experiment.results),
        "tuning": tuning_context(experiment),
        "lm": lm_results(experiment.results),
        "student_ready": student_ready,
        "environment": environment_view.summary(experiment),
        "waiting_on": dependencies.waiting_on(experiment),
        "dependents": experiment.dependents.only("pk", "name", "status", "cancel_requested").order_by("pk"),
        "nav": "experiments",
    })


@login_required
@require_POST
def experiment_cancel(request, pk: int):
    """QUEUED stops at once; CLAIMED/RUNNING get a flag the worker's training loop reads."""
    experiment = get_owned(request.user, Experiment, pk=pk)
    ok, message = actions.cancel(experiment)  # one service for the page, the API and the queue board
    (messages.success if ok else messages.warning)(request, message)
    return redirect("experiments:detail", pk=pk)


@login_required
def experiment_config(request, pk: int):
    """The stored config as a file: `python -m distill_core run config.json` re-runs it."""
    experiment = get_owned(request.user, Experiment, pk=pk)
    body = json.dumps(experiment.config, indent=2, ensure_ascii=False) + "\n"
    response = HttpResponse(body, content_type="application/json; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="experiment-{experiment.pk}-config.json"'
    return response
