"""The language-model run kind on the experiment form and page: its inputs, config mapping, charts, results.

The inputs are declared from distill_core.lm.options (names, defaults and cost text); `LM_FORM_FIELDS`
maps them onto the config's `lm` section the way configs.FORM_FIELDS maps the rest.
"""

from __future__ import annotations

import math
from typing import Any

from django import forms

from distill_core.lm.options import LAYER_PICKS, LM_LOSSES, LM_MODES, LM_STUDENT_SOURCES, MODE_COSTS, LMConfig
from webapp.experiments.experiment_fields import choice, integer, number, textarea

KIND = "lm_distill"
KIND_CHOICE = (KIND, "Distil a language model")
_D = LMConfig()
_LOSS_LABELS = {"forward_kl": "Forward KL", "reverse_kl": "Reverse KL", "jsd": "Generalised JSD (β)",
                "tv": "Total variation"}

# Config path -> form field.
LM_FORM_FIELDS = {
    "lm.mode": "lm_mode", "lm.loss": "lm_loss", "lm.beta": "lm_beta", "lm.temperature": "lm_temperature",
    "lm.distill_weight": "lm_distill_weight", "lm.sft_weight": "lm_sft_weight", "lm.top_k": "lm_top_k",
    "lm.lambda_on_policy": "lm_lambda", "lm.max_new_tokens": "lm_max_new_tokens",
    "lm.student_source": "lm_student_source", "lm.layers": "lm_layers", "lm.layer_pick": "lm_layer_pick",
    "lm.hidden_size": "lm_hidden_size", "lm.num_heads": "lm_num_heads", "lm.sample_prompts": "lm_sample_prompts",
    "lm.samples": "lm_samples", "lm.sample_max_new_tokens": "lm_sample_max_new_tokens",
}
SECTION = tuple(LM_FORM_FIELDS.values())

LM_CHARTS = [
    {"id": "chart-loss", "title": "Training losses", "keys": ["train/loss", "train/distill_loss", "train/sft_loss"],
     "yaxis": "loss"},
    {"id": "chart-lr", "title": "Learning rate", "keys": ["train/lr"], "yaxis": "learning rate"},
    {"id": "chart-perplexity", "title": "Dev perplexity", "keys": ["dev/perplexity"], "yaxis": "perplexity"},
    {"id": "chart-agreement", "title": "Dev agreement with the teacher's top-1 and distillation loss",
     "keys": ["dev/agreement", "dev/distill_loss"], "yaxis": "value"},
]


class LMFields(forms.Form):
    """The inputs of the `lm_distill` kind (ignored by the other kinds)."""

    lm_mode = choice([(m, m.replace("_", "-").capitalize()) for m in LM_MODES], _D.mode,
                     " · ".join(f"{m}: {cost}" for m, cost in MODE_COSTS.items()), label="Teacher mode")
    lm_loss = choice([(n, _LOSS_LABELS.get(n, n)) for n in LM_LOSSES], _D.loss,
                     "Token-level divergence between the teacher's and the student's next-token distributions.",
                     label="Token loss")
    lm_beta = number(_D.beta, 0.0, 1.0, "JSD mixture weight: 0 = forward KL, 1 = reverse KL.", label="β")
    lm_temperature = number(_D.temperature, 1e-6, 1000.0, "Softens both distributions.", label="Temperature")
    lm_distill_weight = number(_D.distill_weight, 0.0, 1000.0, "Weight of the token loss.", label="Distillation weight")
    lm_sft_weight = number(_D.sft_weight, 0.0, 1000.0, "Weight of the cross-entropy on the response tokens.",
                           label="SFT weight")
    lm_top_k = integer(_D.top_k, 1, 4096, "Offline: teacher logits kept per token (renormalised).", label="Top-k")
    lm_lambda = number(_D.lambda_on_policy, 0.0, 1.0, "On-policy: fraction of batches sampled from the student.",
                       label="λ (on-policy fraction)")
    lm_max_new_tokens = integer(_D.max_new_tokens, 1, 4096, "On-policy: tokens sampled per continuation.",
                                label="Max new tokens")
    lm_student_source = choice([(s, {"derived": "Teacher's layers, copied", "preset": "Teacher's family, fresh",
                                     "checkpoint": "A registered checkpoint"}[s]) for s in LM_STUDENT_SOURCES],
                               _D.student_source, "Where the student comes from.", label="Student")
    lm_layers = integer(_D.layers, 1, 512, "Decoder layers of the student.", label="Layers")
    lm_layer_pick = choice([(p, p.capitalize()) for p in LAYER_PICKS], _D.layer_pick,
                           "Derived: which teacher layers are copied.", label="Layer pick")
    lm_hidden_size = integer(None, 1, 65536, "Preset: blank keeps the teacher's width.", label="Hidden size")
    lm_num_heads = integer(None, 1, 512, "Preset: blank keeps the teacher's heads.", label="Heads")
    lm_sample_prompts = textarea(3, "Prompts for the side-by-side samples, one per line. Blank: the first test "
                                 "prompts.", "Sample prompts", "what does the red cat ?", 8000)
    lm_samples = integer(_D.samples, 0, 64, "Test prompts sampled when no prompts are given.", label="Samples")
    lm_sample_max_new_tokens = integer(_D.sample_max_new_tokens, 1, 1024, "Length of each sample.",
                                       label="Sample length")

    def clean_lm_sample_prompts(self) -> list[str] | None:
        lines = [line.strip() for line in self.cleaned_data["lm_sample_prompts"].splitlines() if line.strip()]
        return lines or None


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
