"""Pre-fill the new-experiment form from an existing experiment ("Clone")."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from webapp.experiments.configs import FORM_FIELDS, STUDENT_OPTION_FIELDS
from webapp.experiments.models import Experiment
from webapp.registry.models import Checkpoint, WordVectors

# Form fields whose initial value is a row id, not the config's value (the config holds a path).
ROW_FIELDS = {"teacher": "teacher_id", "dataset": "dataset_id"}
# Config values a form field shows as text of its own (see _structured).
STRUCTURED = {"matches", "stages", "teacher.ensemble", "lm.sample_prompts", "lm.student_path"}


def _lookup(config: dict[str, Any], dotted: str) -> Any:
    value: Any = config
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def _scalar_text(value: Any) -> Any:
    """A scalar as is; a list of numbers or plain words as "2, 3, 4" (how the form reads lists); else None."""
    if isinstance(value, (dict, list)):
        if isinstance(value, list) and value and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                     for v in value):
            return ", ".join(str(v) for v in value)
        if isinstance(value, list) and value and all(isinstance(v, str) and "," not in v for v in value):
            return ", ".join(value)  # e.g. tune.losses
        return None
    return value


def clone_initial(experiment: Experiment) -> dict[str, Any]:
    """The form's `initial` dict for a copy of `experiment`.

    Driven by configs.FORM_FIELDS and STUDENT_OPTION_FIELDS (config path -> form field), so a field
    the form gains is cloned as soon as build_config maps it. Values are only initial: the form
    validates them again.
    """
    config = experiment.config if isinstance(experiment.config, dict) else {}
    initial: dict[str, Any] = {"team": experiment.team_id, "priority": experiment.priority, "pool": experiment.pool}
    for path, field in FORM_FIELDS.items():
        if field in ROW_FIELDS or path in STRUCTURED:
            continue
        value = _scalar_text(_lookup(config, path))
        if value is not None:
            initial[field] = value
    if "grad_clip" not in initial and isinstance(config.get("train"), dict) and "grad_clip" in config["train"]:
        initial["grad_clip"] = 0  # null in the config: clipping off
    if isinstance(initial.get("t2_scaling"), bool):
        initial["t2_scaling"] = "true" if initial["t2_scaling"] else "false"
    initial.update(_student_options(config))
    initial.update(_structured(config, experiment))
    for field, attribute in ROW_FIELDS.items():
        initial[field] = getattr(experiment, attribute)
    initial["name"] = f"{experiment.name} (copy)"[:200]
    return initial


def _student_options(config: dict[str, Any]) -> dict[str, Any]:
    student = config.get("student")
    if not isinstance(student, dict) or not isinstance(student.get("options"), dict):
        return {}
    fields = STUDENT_OPTION_FIELDS.get(student.get("type"), {})
    initial = {}
    for option, value in student["options"].items():
        if option == "init_from_teacher":
            initial[fields.get(option, "")] = bool(value)
        elif option in fields and (text := _scalar_text(value)) is not None:
            initial[fields[option]] = text
    initial.pop("", None)
    for name in ("tf_layers", "tf_hidden", "tf_heads", "tf_ffn"):
        if initial.get(name) == 0:
            del initial[name]  # 0 = the preset's size, shown blank
    return initial


def _structured(config: dict[str, Any], experiment: Experiment) -> dict[str, Any]:
    """Matches (preset name or rows), stages (JSON), the ensemble (checkpoint names and weights), the LM sample
    prompts (one per line) and the LM checkpoint student (its row)."""
    initial: dict[str, Any] = {}
    matches = config.get("matches")
    if isinstance(matches, str) and matches:
        initial.update(matches_mode="preset", matches_preset=matches)
    elif isinstance(matches, list) and matches:
        initial.update(matches_mode="rows", match_rows=json.dumps(matches))
    if isinstance(config.get("stages"), list) and config["stages"]:
        initial["stages"] = json.dumps(config["stages"], indent=2, ensure_ascii=False)
    ensemble = _lookup(config, "teacher.ensemble")
    if isinstance(ensemble, list) and ensemble:
        names = {c.source: c.name for c in Checkpoint.objects.filter(team=experiment.team_id)}
        lines = [f"{names.get(m['path'], m['path'])} {m.get('weight', 1.0):g}" for m in ensemble
                 if isinstance(m, dict) and isinstance(m.get("path"), str)
                 and isinstance(m.get("weight", 1.0), (int, float))]
        initial["ensemble"] = "\n".join(lines)
    prompts = _lookup(config, "lm.sample_prompts")
    if isinstance(prompts, list) and all(isinstance(p, str) for p in prompts):
        initial["lm_sample_prompts"] = "\n".join(prompts)
    student_path = _lookup(config, "lm.student_path")
    if isinstance(student_path, str) and student_path:
        row = next((c for c in Checkpoint.objects.filter(team=experiment.team_id) if c.source == student_path), None)
        if row is not None:
            initial["lm_student_checkpoint"] = row.pk
    vectors = _lookup(config, "student.embedding_file")  # the form stored the file's resolved path
    if isinstance(vectors, str) and vectors:
        for row in WordVectors.objects.filter(team=experiment.team_id):
            if str(Path(row.path).resolve()) == vectors:
                initial["word_vectors"] = row.pk
    return initial
