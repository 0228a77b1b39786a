"""The language-model run kind on the experiment form and page: its hand-made inputs, charts, results.

The `lm` options' inputs are generated from their declarations (distill_core/lm/options.py, through
option_fields.py) like every other option's; here are only the two that are not one scalar option
each: the sample prompts (a list of strings, one per line) and the checkpoint student (a registered
checkpoint of the team, whose source becomes `lm.student_path`).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from django import forms

from webapp.experiments.experiment_fields import textarea
from webapp.registry import ownership

KIND = "lm_distill"
# Config path -> hand-made form field; lm.student_path is built from the chosen checkpoint (configs.DERIVED).
LM_FORM_FIELDS = {"lm.sample_prompts": "lm_sample_prompts", "lm.student_path": "lm_student_checkpoint"}

LM_CHARTS = [
    {"id": "chart-loss", "title": "Training losses", "keys": ["train/loss", "train/distill_loss", "train/sft_loss",
                                                             "train/intermediate_loss"], "yaxis": "loss"},
    {"id": "chart-lr", "title": "Learning rate", "keys": ["train/lr"], "yaxis": "learning rate"},
    {"id": "chart-perplexity", "title": "Dev perplexity", "keys": ["dev/perplexity"], "yaxis": "perplexity"},
    {"id": "chart-agreement", "title": "Dev agreement with the teacher's top-1 and distillation loss",
     "keys": ["dev/agreement", "dev/distill_loss"], "yaxis": "value"},
]


class LMFields(forms.Form):
    """The hand-made inputs of the `lm_distill` kind (ignored by the other kinds)."""

    lm_sample_prompts = textarea(3, "Prompts for the side-by-side samples, one per line. Blank: the first test "
                                 "prompts.", "Sample prompts", "what does the red cat ?", 8000)
    # The queryset is the user's ready checkpoints (ExperimentForm.__init__); clean() checks the team and the files.
    lm_student_checkpoint = forms.ModelChoiceField(
        queryset=None, required=False, label="Student checkpoint",
        help_text="Student \"A registered checkpoint\": a causal LM of the team that shares the teacher's tokenizer.")

    def clean_lm_sample_prompts(self) -> list[str] | None:
        lines = [line.strip() for line in self.cleaned_data["lm_sample_prompts"].splitlines() if line.strip()]
        if len(lines) > 64:
            raise forms.ValidationError(f"At most 64 sample prompts (got {len(lines)}).")
        return lines or None


def check_student_checkpoint(form: forms.Form, cleaned: dict[str, Any], team) -> None:
    """A checkpoint student must be chosen for that source, be the team's, usable by it and still on disk."""
    checkpoint = cleaned.get("lm_student_checkpoint")
    if cleaned.get("kind") != KIND:
        cleaned["lm_student_checkpoint"] = None  # another kind: the choice is not part of its config
        return
    if checkpoint is None:
        if cleaned.get("lm_student_source") == "checkpoint":
            form.add_error("lm_student_checkpoint", "Choose the student checkpoint (a causal LM of the team).")
        return
    if cleaned.get("lm_student_source") != "checkpoint":
        form.add_error("lm_student_checkpoint", "A student checkpoint is only read with Student \"A registered "
                                                "checkpoint\"; choose that source or clear the checkpoint.")
    elif team and checkpoint.team_id != team.pk:
        form.add_error("lm_student_checkpoint", f"The checkpoint {checkpoint.name!r} belongs to {checkpoint.team}, "
                                                f"not {team}.")
    elif not checkpoint.is_hub and not ownership.may_use(checkpoint.team, Path(checkpoint.path).resolve()):
        form.add_error("lm_student_checkpoint", ownership.not_yours_message(checkpoint))
    elif not checkpoint.is_hub and not (Path(checkpoint.path) / "config.json").is_file():
        form.add_error("lm_student_checkpoint", f"The checkpoint {checkpoint.name!r} cannot be used: its files are "
                                                f"gone; register it again.")


def lm_results(raw: Any) -> dict[str, Any] | None:
    """The LM result for the page: scores, samples and the size/speed table (None when it is not one)."""
    if not isinstance(raw, dict) or raw.get("kind") != KIND:
        return None
    size = raw.get("size") if isinstance(raw.get("size"), dict) else {}
    rows = []
    for key, label in (("parameters", "Parameters"), ("bytes", "Bytes"), ("time_to_first_token_ms",
                       "Time to first token (ms)"), ("tokens_per_s_batch_1", "Tokens/s, batch 1"),
                       ("tokens_per_s_batch_8", "Tokens/s, batch 8")):
        rows.append({"label": label, "teacher": _num((size.get("teacher") or {}).get(key)),
                     "student": _num((size.get("student") or {}).get(key))})
    samples = [s for s in raw.get("samples") or [] if isinstance(s, dict)]
    return {"student": raw.get("student") or {}, "teacher": raw.get("teacher") or {}, "samples": samples,
            "size_rows": rows, "compression": _num(size.get("compression")), "speedup": _num(size.get("speedup")),
            "mode": raw.get("mode"), "loss": raw.get("loss"), "test_split": raw.get("test_split"),
            "best_dev": raw.get("best_dev") or {}}


def lm_compare_row(raw: Any) -> dict[str, Any] | None:
    """compare.results_row's numbers for an LM run; latency_b1 is the time to the first token."""
    lm = lm_results(raw)
    if lm is None:
        return None
    size = {row["label"]: row["student"] for row in lm["size_rows"]}
    return {"student_accuracy": None, "student_f1": None, "teacher_accuracy": None, "teacher_f1": None,
            "student_perplexity": _num(lm["student"].get("perplexity")), "parameters": size["Parameters"],
            "bytes": size["Bytes"], "latency_b1": size["Time to first token (ms)"], "latency_b32": None,
            "compression": lm["compression"], "speedup": lm["speedup"], "best_dev": None}


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return value
