"""JSON shapes of the API's objects (one function per model)."""

from __future__ import annotations

from typing import Any

from django.urls import reverse

from webapp.experiments.models import Experiment
from webapp.experiments.views_json import finite, status_payload
from webapp.registry.models import Checkpoint, Dataset


def finite_deep(value: Any) -> Any:
    """`value` with every NaN/inf replaced by None, at any depth (NaN is not JSON)."""
    if isinstance(value, dict):
        return {str(k): finite_deep(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_deep(v) for v in value]
    return finite(value)


def _when(value) -> str | None:
    return value.isoformat() if value else None


def _ref(obj) -> dict[str, Any] | None:
    return {"id": obj.pk, "name": obj.name} if obj is not None else None


def experiment(e: Experiment, *, detail: bool = False) -> dict[str, Any]:
    data = {
        "id": e.pk,
        "name": e.name,
        "team": _ref(e.team),
        "owner": e.owner.get_username() if e.owner else None,
        "teacher": _ref(e.teacher),
        "dataset": _ref(e.dataset),
        "student_type": e.student_type,
        "pool": e.pool,
        "priority": e.priority,
        "gpus": e.gpus,
        "gpu_ids": e.gpu_ids or [],
        "created_at": _when(e.created_at),
        "started_at": _when(e.started_at),
        "finished_at": _when(e.finished_at),
        "url": reverse("experiments:detail", args=[e.pk]),
        "tracked": e.tracked,
        **status_payload(e),
    }
    if detail:
        data["config"] = e.config
        data["environment"] = finite_deep(e.environment)
        data["trials"] = [finite_deep(t.as_dict()) for t in e.trials.all()]  # tune-KD child runs, grid order
    return data


def checkpoint(c: Checkpoint) -> dict[str, Any]:
    info = c.info if isinstance(c.info, dict) else {}
    return {
        "id": c.pk, "name": c.name, "team": _ref(c.team), "path": c.path,
        "hub_id": c.hub_id or None, "hub_revision": c.hub_revision or None, "hub_commit": c.hub_commit or None,
        "info": finite_deep(info), "created_at": _when(c.created_at),
        "status": c.status, "percent": c.percent, "error": c.error,
        "url": reverse("registry:checkpoint", args=[c.pk]),
    }


def dataset(d: Dataset) -> dict[str, Any]:
    return {
        "id": d.pk, "name": d.name, "team": _ref(d.team), "format": d.format, "has_header": d.has_header,
        "text_column": d.text_column, "text_pair_column": d.text_pair_column, "label_column": d.label_column,
        "labels": d.labels, "kind": d.kind, "lm_columns": d.lm_columns, "stats": d.stats,
        "created_at": _when(d.created_at),
        "url": reverse("registry:dataset", args=[d.pk]),
    }
