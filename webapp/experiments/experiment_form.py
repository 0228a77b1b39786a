"""The new-experiment form: every distill_core option, sweeps, and checks against the chosen teacher.

The form works from a plain dict as well as from the page (the REST API posts only the original
fields): what is missing takes distill_core's default. `clean` leaves `configs` (one per sweep
combination, each validated by ExperimentConfig and checked against the teacher and a student built
on the meta device) and `config` (the first) — or field errors, and then nothing may be queued.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

from django import forms

from distill_core.config import KD_LOSSES, TuneConfig
from distill_core.errors import ConfigError
from distill_core.options import option_of
from distill_core.untrusted import UntrustedInput, loads
from webapp.accounts.access import owned
from webapp.experiments import dependencies, lm_checks, sweeps
from webapp.experiments.configs import build_config, form_field_for
from webapp.experiments.experiment_fields import EXTRAS, RANGES, SECTIONS, STUDENT_CHOICES, ExperimentFields
from webapp.experiments.lm_fields import KIND as LM_KIND
from webapp.experiments.lm_fields import LMFields, check_student_checkpoint
from webapp.experiments.matches_check import check_config, generate_rows
from webapp.registry import ownership
from webapp.registry.form_base import TeamFormMixin
from webapp.registry.models import Checkpoint, Dataset, WordVectors

__all__ = ["ExperimentForm", "STUDENT_CHOICES", "SECTIONS"]

MAX_ENSEMBLE = 8
# Unfolded on a fresh form: the original ten inputs live here; the rest waits in folded groups.
OPEN_BY_DEFAULT = ("basics", "student", "kd", "optimisation")


def _json(text: str, what: str, field: str) -> Any:
    """The field's JSON; a ValidationError for anything json or Postgres would fail on (untrusted.loads)."""
    try:
        return loads(text, root=(field,))
    except UntrustedInput as exc:
        raise forms.ValidationError(f"{what}: {exc.message[0].lower()}{exc.message[1:]}") from None


def registry_choices() -> dict[str, list[tuple[str, str]]]:
    """The inputs whose choices are distill_core's registries (read when a form or the API schema is built)."""
    from distill_core.intermediate import intermediate_losses
    from distill_core.matches import presets

    return {"matches_preset": [("", "—")] + [(n, n) for n in presets.names()],
            "generate_loss": [(n, n) for n in intermediate_losses.names()]}


class ExperimentForm(TeamFormMixin, ExperimentFields, LMFields):
    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.setup_team(user)
        self.initial.setdefault("matches_mode", "none")
        self.fields["teacher"].queryset = (owned(user, Checkpoint).filter(status=Checkpoint.Status.READY)
                                           .select_related("team").order_by("team__name", "name"))
        self.fields["dataset"].queryset = owned(user, Dataset).select_related("team").order_by("team__name", "name")
        lm_checks.mark_dataset_kinds(self.fields["dataset"])
        self.fields["word_vectors"].queryset = owned(user, WordVectors).select_related("team").order_by("name")
        self.fields["lm_student_checkpoint"].queryset = self.fields["teacher"].queryset
        if len(self.fields["team"].queryset) > 1:
            self.fields["teacher"].label_from_instance = lambda c: f"{c.name} ({c.team})"
            self.fields["dataset"].label_from_instance = lambda d: f"{d.name} ({d.team})"
        for name in ("teacher", "dataset"):  # preselect the only choice
            if len(self.fields[name].queryset) == 1:
                self.fields[name].initial = self.fields[name].queryset[0].pk
        for name, choices in registry_choices().items():
            self.fields[name].choices = choices
        self.user = user
        self._show_queue_limits()
        self.teacher_info: dict[str, Any] = {}
        self.configs: list[dict[str, Any]] = []
        self.config: dict[str, Any] | None = None
        self.match_error: tuple[int, str] | tuple[()] = ()  # (row, key) of a refused edited row

    # ---- single fields ----

    def clean_augment_ngram_range(self) -> list[int] | None:
        value = self.cleaned_data["augment_ngram_range"]  # two whole numbers in bounds (option_fields)
        if value and value[0] > value[1]:
            raise forms.ValidationError(f"The minimum ({value[0]}) is above the maximum ({value[1]}).")
        return value

    def clean_tune_temperatures(self) -> list[float] | None:
        return self._tune_numbers("tune_temperatures", "temperatures", "A temperature")

    def clean_tune_alphas(self) -> list[float] | None:
        return self._tune_numbers("tune_alphas", "alphas", "α")

    def clean_tune_losses(self) -> list[str] | None:
        try:
            values = [v.lower() for v in sweeps.split_values(self.cleaned_data["tune_losses"])]
        except sweeps.SweepError as exc:
            raise forms.ValidationError(exc.message) from None
        unknown = [v for v in values if v not in KD_LOSSES()]
        if unknown:
            raise forms.ValidationError(f"{unknown[0][:40]!r} is not a soft loss; choose from {', '.join(KD_LOSSES())}.")
        return values or None

    def _tune_numbers(self, name: str, single: str, what: str) -> list[float] | None:
        option = option_of(TuneConfig, single)  # the bounds distill_core declares for each item
        try:
            values = sweeps.parse_numbers(self.cleaned_data[name], option.low, option.high, low_open=option.low_open,
                                          what=what)
        except sweeps.SweepError as exc:
            raise forms.ValidationError(exc.message) from None
        return values or None

    def clean_label_separator(self) -> str:
        value = self.cleaned_data["label_separator"]
        if any(ch in value for ch in "\t\r\n\x00"):
            raise forms.ValidationError("Use a visible separator such as , or | (tabs and line breaks split rows).")
        return value

    def clean_stages(self) -> list[dict[str, Any]] | None:
        text = self.cleaned_data["stages"].strip()
        if not text:
            return None
        stages = _json(text, "The stages", "stages")
        if not isinstance(stages, list) or not all(isinstance(s, dict) for s in stages):
            raise forms.ValidationError('Stages are a JSON list of objects, like [{"name": "prediction", '
                                        '"epochs": 3}].')
        return stages or None

    def clean_match_rows(self) -> list[dict[str, Any]] | None:
        text = self.cleaned_data["match_rows"].strip()
        if not text or self.data.get("matches_mode", "rows" if text else "none") != "rows":
            return None
        rows = _json(text, "The match rows", "match_rows")
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise forms.ValidationError("Match rows are a JSON list of objects, one per row.")
        if len(rows) > 64:
            raise forms.ValidationError(f"At most 64 match rows (got {len(rows)}).")
        return rows

    def clean_ensemble(self) -> list[dict[str, Any]] | None:
        lines = [line.strip() for line in self.cleaned_data["ensemble"].splitlines() if line.strip()]
        if len(lines) > MAX_ENSEMBLE:
            raise forms.ValidationError(f"At most {MAX_ENSEMBLE} more teachers (got {len(lines)}).")
        members = []
        for number, line in enumerate(lines, 1):
            name, _, weight_text = line.rpartition(" ")
            if not name:
                name, weight_text = line, "1"
            try:
                weight = float(weight_text)
            except ValueError:
                name, weight = line, 1.0  # a name with spaces and no weight
            if not (math.isfinite(weight) and 0 < weight <= 1000):
                raise forms.ValidationError(f"Line {number}: the weight must be greater than 0 and at most 1000 "
                                            f"(got {weight_text[:20]}).")
            members.append((number, name.strip(), weight))
        return [{"line": n, "name": name, "weight": w} for n, name, w in members] or None

    # ---- the whole form ----

    def clean(self):
        cleaned = super().clean()
        team, teacher, dataset = cleaned.get("team"), cleaned.get("teacher"), cleaned.get("dataset")
        if team and teacher and teacher.team_id != team.pk:
            self.add_error("teacher", f"The checkpoint {teacher.name!r} belongs to {teacher.team}, not {team}.")
        if team and dataset and dataset.team_id != team.pk:
            self.add_error("dataset", f"The dataset {dataset.name!r} belongs to {dataset.team}, not {team}.")
        check_student_checkpoint(self, cleaned, team)
        if team and cleaned.get("word_vectors"):
            cleaned["embedding_file"] = ownership.usable_vectors_path(cleaned["word_vectors"], team)
            if cleaned["embedding_file"] is None:
                self.add_error("word_vectors", f"The word vectors {cleaned['word_vectors'].name!r} are not a file of "
                                               f"{team}'s (or the file is gone); upload them for this team.")
        if not cleaned.get("matches_mode"):  # a plain dict may post rows without a mode
            cleaned["matches_mode"] = "rows" if cleaned.get("match_rows") else "none"
        if team:
            self._check_queue_limits(cleaned, team)
        gpus, batch = cleaned.get("gpus") or 1, cleaned.get("batch_size")
        if batch and batch % gpus:
            self.add_error("gpus", f"The batch size {batch} is the global batch: it must divide by the GPUs "
                                   f"({gpus}); use a multiple of {gpus}.")
        self._resolve_ensemble(cleaned, team, dataset)
        overrides = self._sweep_combinations(cleaned)
        self._check_matches_choice(cleaned)
        lm_checks.check_dataset_kind(self, cleaned.get("kind"), dataset)
        if "teacher" in cleaned and "dataset" in cleaned and not self.errors:
            self._check_teacher(teacher, dataset)
        if not self.errors:
            self._build_all(cleaned, teacher, dataset, overrides)
        if not self.errors and team:
            lm_checks.check_tokenizers(self, self.config, team)
        return cleaned

    def _show_queue_limits(self) -> None:
        """Tell a member of one team its priority ceiling and pools before they submit."""
        teams = list(self.fields["team"].queryset[:2])
        if self.user.is_staff or len(teams) != 1:
            return
        team, priority, pool = teams[0], self.fields["priority"], self.fields["pool"]
        if team.max_priority is not None:
            priority.widget.attrs["max"] = min(team.max_priority, priority.max_value)
            priority.help_text += f" {team.name} may use up to {team.max_priority}."
            if priority.initial > team.max_priority:
                self.initial.setdefault("priority", team.max_priority)
        if team.allowed_pools:
            pool.help_text = f"{team.name} may use: {', '.join(team.allowed_pools)}."
            if pool.initial not in team.allowed_pools:
                self.initial.setdefault("pool", team.allowed_pools[0])

    def _check_queue_limits(self, cleaned: dict[str, Any], team) -> None:
        """Refuse a priority above the team's ceiling or a pool it may not use (staff are not bound)."""
        if self.user.is_staff:
            return
        # A blank input queues at the field's initial value (see configs.queue_experiment).
        if "priority" in cleaned:
            priority = cleaned["priority"] if cleaned["priority"] is not None else self.fields["priority"].initial
            if refusal := team.priority_refusal(priority):
                self.add_error("priority", refusal)
        if "pool" in cleaned and (refusal := team.pool_refusal(cleaned["pool"] or self.fields["pool"].initial)):
            self.add_error("pool", refusal)

    def _resolve_ensemble(self, cleaned: dict[str, Any], team, dataset) -> None:
        members = cleaned.get("ensemble")
        if not members or not team:
            return
        resolved = []
        for member in members:
            checkpoint = Checkpoint.objects.filter(team=team, name=member["name"],
                                                   status=Checkpoint.Status.READY).first()
            if checkpoint is None:
                self.add_error("ensemble", f"Line {member['line']}: {team} has no checkpoint called "
                                           f"{member['name'][:100]!r} (or it is still being unpacked).")
                return
            if dataset and checkpoint.num_labels not in (None, len(dataset.labels)):
                self.add_error("ensemble", f"Line {member['line']}: {checkpoint.name!r} predicts "
                                           f"{checkpoint.num_labels} labels but the dataset has {len(dataset.labels)}.")
                return
            if not checkpoint.is_hub and not ownership.may_use(team, Path(checkpoint.path).resolve()):
                self.add_error("ensemble", f"Line {member['line']}: {ownership.not_yours_message(checkpoint)}")
                return
            resolved.append({"path": checkpoint.source, "weight": member["weight"]})
        cleaned["ensemble"] = resolved

    def _sweep_combinations(self, cleaned: dict[str, Any]) -> list[dict[str, Any]]:
        lists: dict[str, list[Any]] = {}
        what = {"temperature": "The temperature", "alpha": "α", "learning_rate": "The learning rate"}
        ranges = {name: (*RANGES[single], what[single]) for name, (single, _) in sweeps.SWEEP_FIELDS.items()
                  if single in RANGES}
        for name in sweeps.SWEEP_FIELDS:
            text = cleaned.get(name) or ""
            try:
                if name == "sweep_student_type":
                    values = [v.lower() for v in sweeps.split_values(text)]
                    unknown = [v for v in values if v not in dict(STUDENT_CHOICES)]
                    if unknown:
                        raise sweeps.SweepError(f"{unknown[0][:40]!r} is not a student; choose from "
                                                f"{', '.join(dict(STUDENT_CHOICES))}.")
                else:
                    low, high, low_open, _, what = ranges[name]
                    values = sweeps.parse_numbers(text, low, high, low_open=low_open, what=what)
            except sweeps.SweepError as exc:
                self.add_error(name, exc.message)
                continue
            lists[name] = values
        try:
            return sweeps.combinations(lists)
        except sweeps.SweepError as exc:
            self.add_error(next(name for name, values in lists.items() if values), exc.message)
            return [{}]

    def _check_matches_choice(self, cleaned: dict[str, Any]) -> None:
        mode = cleaned["matches_mode"]
        if mode == "preset" and not cleaned.get("matches_preset"):
            self.add_error("match_rows", "Choose a preset, or pick None.")
        if mode == "rows" and not cleaned.get("match_rows") and "match_rows" not in self.errors:
            self.add_error("match_rows", "Add at least one row, or pick None.")

    def _check_teacher(self, teacher: Checkpoint, dataset: Dataset) -> None:
        """The checkpoint must belong to its team, still be on disk and predict exactly the dataset's classes.

        Its description is the one inspect_checkpoint stored on the row at registration: building
        the model again here would cost every form post up to a second (bounded by
        distill_core.checkpoint_limits), and the worker inspects the files again before a run. A Hub
        id is not downloaded here: it is checked against what an earlier run recorded (`info`), and
        before any run only by the worker, which fails the run with the reason. A teacher its training
        run has not written yet is checked against the facts registered for it (the run waits for it).
        """
        info = teacher.info if isinstance(teacher.info, dict) else {}
        if not teacher.is_hub:
            if not ownership.may_use(teacher.team, Path(teacher.path).resolve()):
                self.add_error("teacher", ownership.not_yours_message(teacher))
                return
            if not teacher.is_ready or not isinstance(info.get("num_labels"), int):
                self.add_error("teacher", f"The checkpoint {teacher.name!r} is not ready to be used.")
                return
            path = Path(teacher.path)
            if dependencies.blocking(teacher) is None and (not path.is_dir() or not (path / "config.json").is_file()):
                what = "its directory does not exist any more" if not path.is_dir() else "its config.json is gone"
                self.add_error("teacher", f"The checkpoint {teacher.name!r} cannot be used: {what}; register it again.")
                return
        self.teacher_info = info
        if self.cleaned_data.get("kind") == LM_KIND:
            return  # a causal LM has no classes to match; the worker loads it as AutoModelForCausalLM
        labels = list(dataset.labels)
        if isinstance(info.get("num_labels"), int) and info["num_labels"] != len(labels):
            shown = ", ".join(labels[:12]) + (", …" if len(labels) > 12 else "")
            self.add_error("teacher", (
                f"The teacher predicts {info['num_labels']} labels but the dataset has {len(labels)} ({shown}). "
                "Choose a teacher fine-tuned on this dataset's classes."))
            return
        max_positions = info.get("max_position_embeddings")
        max_length = self.cleaned_data.get("max_length")
        if isinstance(max_positions, int) and max_length and max_length > max_positions:
            self.add_error("max_length", f"The teacher reads at most {max_positions} tokens (got {max_length}).")

    def _build_all(self, cleaned: dict[str, Any], teacher: Checkpoint, dataset: Dataset,
                   overrides: list[dict[str, Any]]) -> None:
        """One validated config per sweep combination; the first refusal is put on its field."""
        from distill_core.matches import parse_matches

        configs = []
        for combination in overrides:
            values = {**cleaned, **combination, "name": sweeps.combination_name(cleaned["name"], combination)}
            # match_rows carries the config's `matches`: a preset name, the edited rows or the generated ones.
            values["match_rows"] = self._matches_value(cleaned)
            try:
                if isinstance(values["match_rows"], list):  # edited rows, stored complete (weight, proj)
                    values["match_rows"] = [m.to_dict() for m in parse_matches(values["match_rows"])]
                if cleaned.get("matches_mode") == "generate":
                    values["match_rows"] = generate_rows(build_config({**values, "match_rows": None}, teacher, dataset),
                                                         self.teacher_info,
                                                         cleaned.get("generate_strategy") or "uniform",
                                                         cleaned.get("generate_feature") or "hidden",
                                                         cleaned.get("generate_loss") or "hidden_mse",
                                                         _or(cleaned.get("generate_weight"), 1.0))
                config = build_config(values, teacher, dataset)
                check_config(config, self.teacher_info)
            except ConfigError as exc:
                self._add_config_error(exc, values.get("student_type"), combination, len(overrides) > 1)
                return
            configs.append(config)
        self.configs, self.config = configs, configs[0]

    def _matches_value(self, cleaned: dict[str, Any]) -> Any:
        mode = cleaned["matches_mode"]
        if mode == "preset":
            return cleaned.get("matches_preset") or None
        if mode == "rows":
            return cleaned.get("match_rows")
        return None

    def _add_config_error(self, exc: ConfigError, student_type: str | None, combination: dict[str, Any],
                          swept: bool) -> None:
        field = form_field_for(exc.field, student_type)
        message = exc.message
        row = re.fullmatch(r"matches\.(\d+)(?:\.(\w+))?", exc.field or "")
        if row and self.cleaned_data.get("matches_mode") == "rows":
            self.match_error = (int(row.group(1)), row.group(2) or "")
        if swept:
            message = f"With {sweeps.describe(combination)}: {message}"
            for sweep_field, (single, _) in sweeps.SWEEP_FIELDS.items():
                if field == single and single in combination:
                    field = sweep_field
        self.add_error(field, message)

    # ---- for the template ----

    def match_choices(self) -> dict[str, list[str]]:
        """The row editor's menus."""
        from distill_core.matches import FEATURES

        return {"features": list(FEATURES), "losses": [name for name, _ in self.fields["generate_loss"].choices]}

    def extras(self) -> dict[str, list[Any]]:
        """Inputs of options the page's template does not place (new options): group -> bound fields."""
        return {group: [self[name] for name in names] for group, names in EXTRAS.items()}

    def open_sections(self) -> set[str]:
        """Groups to show unfolded: the everyday ones, and every group holding an error."""
        errors = {section for section, names in SECTIONS.items() if any(n in self.errors for n in names)}
        return set(OPEN_BY_DEFAULT) | errors


def _or(value: Any, default: Any) -> Any:
    return default if value is None or value == "" else value
