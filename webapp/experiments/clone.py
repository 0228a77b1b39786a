"""Pre-fill the new-experiment form from an existing experiment ("Clone")."""

from __future__ import annotations

from typing import Any

from webapp.experiments.configs import FORM_FIELDS
from webapp.experiments.models import Experiment

# Form fields whose initial value is a row id, not the config's value (the config holds a path).
ROW_FIELDS = {"teacher": "teacher_id", "dataset": "dataset_id"}


def _lookup(config: dict[str, Any], dotted: str) -> Any:
    value: Any = config
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def clone_initial(experiment: Experiment) -> dict[str, Any]:
    """The form's `initial` dict for a copy of `experiment`.

    Driven by configs.FORM_FIELDS (config path -> form field), so a field the form gains is
    cloned as soon as build_config maps it. Values are only initial: the form validates them again.
    """
    config = experiment.config if isinstance(experiment.config, dict) else {}
    initial: dict[str, Any] = {"team": experiment.team_id}
    for path, field in FORM_FIELDS.items():
        if field in ROW_FIELDS:
            continue
        value = _lookup(config, path)
        if value is not None and not isinstance(value, (dict, list)):
            initial[field] = value
    for field, attribute in ROW_FIELDS.items():
        initial[field] = getattr(experiment, attribute)
    initial["name"] = f"{experiment.name} (copy)"[:200]
    return initial
