"""The new-experiment form's inputs for distill_core's options, generated from their declarations.

Defaults, bounds, choices and help text are distill_core's (`opt(...)` in distill_core/config.py
and student_options.py); this module adds only what the page needs: input names, labels, choice
labels and the group each input sits in. An option with no entry here still gets an input, named
by the rule in `form_name`, labelled after its name and shown at the end of its section's group,
so a new scalar option reaches the page, the stored config, the clone page and the API schema
without a change here.
"""

from __future__ import annotations

from typing import Any

from django import forms

from distill_core.config import ExperimentConfig
from distill_core.options import Declared, Option, declared
from distill_core.student_options import student_types

# Config section -> (input-name prefix, page group). Student options: per student, below.
SECTION_GROUPS = {"": ("", "advanced"), "data": ("", "basics"), "teacher": ("teacher_", "advanced"),
                  "student": ("student_", "student"), "kd": ("", "kd"), "train": ("", "optimisation"),
                  "augment": ("augment_", "augment"), "tune": ("tune_", "kd"), "lm": ("lm_", "lm")}
STUDENT_PREFIXES = {"textcnn": "cnn", "bilstm": "rnn", "bigru": "rnn", "transformer": "tf"}
# Inputs whose name is not the rule's (the API and saved links use these names).
NAMES = {"student.embedding_dim": "embedding_dim", "student.embedding_init": "embedding_init", "kd.loss": "kd_loss", "augment.enabled": "augment",
         "tune.enabled": "tune_kd", "lm.lambda_on_policy": "lm_lambda"}
GROUPS = {name: "schedules" for name in ("temperature_schedule", "temperature_final", "schedule_beta",
                                         "schedule_gamma", "kd_weight_schedule", "hard_weight_schedule",
                                         "lr_schedule", "warmup_ratio")}
# Options the page does not offer: the dataset sets them, or they are internal to a student.
NOT_ON_FORM = {"data.format", "student.options.sep_id", "student.options.max_position_embeddings",
               "student.options.type_vocab_size", "lm.data_format", "lm.prompt_key", "lm.response_key",
               "lm.messages_key", "lm.text_key"}
# The original inputs of the page, which a post must fill (the API fills them from the defaults).
REQUIRED = {"max_length", "student_type", "temperature", "alpha", "epochs", "batch_size", "learning_rate"}
LABELS = {
    "max_length": "Max length", "multi_label": "Multi-label", "student_type": "Student",
    "student_vocab": "Vocabulary", "embedding_dim": "Embedding size", "cnn_filter_sizes": "Filter sizes",
    "cnn_num_filters": "Filters per size", "cnn_dropout": "Dropout", "rnn_hidden_size": "Hidden size",
    "rnn_fc_size": "FC size", "rnn_dropout": "Dropout", "rnn_siamese": "Siamese pairs", "tf_preset": "Size preset",
    "tf_layers": "Layers", "tf_hidden": "Hidden size", "tf_heads": "Heads", "tf_ffn": "FFN size",
    "tf_dropout": "Dropout", "temperature": "Temperature T", "alpha": "Hard-label weight α", "kd_loss": "Soft loss",
    "t2_scaling": "T² scaling", "kd_weight": "Soft-label weight", "temperature_final": "Final temperature",
    "schedule_beta": "Schedule β", "schedule_gamma": "Schedule γ", "kd_weight_schedule": "Soft-weight schedule",
    "hard_weight_schedule": "Hard-weight schedule", "lr_schedule": "Learning-rate schedule",
    "warmup_ratio": "Warm-up ratio", "augment": "Augment the train split", "augment_n_iter": "Copies per example",
    "augment_p_mask": "p mask", "augment_p_replace": "p replace", "augment_p_ng": "p n-gram",
    "augment_ngram_range": "n-gram range", "augment_replace_window": "Replace window",
    "augment_max_examples": "Max copies", "batch_size": "Batch size", "learning_rate": "Learning rate",
    "optimizer": "Optimiser", "weight_decay": "Weight decay", "grad_clip": "Gradient clip",
    "grad_accumulation": "Gradient accumulation", "amp": "Mixed precision", "max_steps": "Max steps",
    "early_stopping_patience": "Early-stopping patience", "best_metric": "Best metric", "log_every": "Log every",
    "eval_every": "Evaluate every", "checkpoint_every": "Checkpoint every", "kind": "Run kind", "seed": "Seed",
    "teacher_weight": "Teacher weight", "teacher_precision": "Teacher precision", "tune_kd": "Tune KD first", "tune_steps": "Steps per trial",
    "tune_metric": "Trial metric", "bucket_by_length": "Bucket by length", "embedding_init": "Embedding start",
    "augment_replace": "Replace with", "augment_neighbours": "Neighbours",
    "lm_mode": "Teacher mode", "lm_loss": "Token loss", "lm_beta": "β", "lm_temperature": "Temperature",
    "lm_distill_weight": "Distillation weight", "lm_sft_weight": "SFT weight", "lm_top_k": "Top-k",
    "lm_lambda": "λ (on-policy fraction)", "lm_max_new_tokens": "Max new tokens",
    "lm_sample_temperature": "Sampling temperature", "lm_student_source": "Student", "lm_layers": "Layers",
    "lm_layer_pick": "Layer pick", "lm_hidden_size": "Hidden size", "lm_num_heads": "Heads",
    "lm_intermediate_size": "FFN size", "lm_samples": "Samples", "lm_sample_max_new_tokens": "Sample length",
    "student_prune_vocab": "Prune the vocabulary to the train split's pieces",
    "student_embedding_projection": "Projection to the embedding width",
    "student_prune_unseen": "A pruned-away piece reads",
}
CHOICE_LABELS = {
    "textcnn": "TextCNN", "bilstm": "BiLSTM", "bigru": "BiGRU", "transformer": "Transformer",
    "char": "Characters of the train split", "word": "Words of the train split", "teacher": "The teacher's word pieces",
    "kl": "KL divergence", "ce": "Soft cross-entropy", "mse": "Logit MSE", "bce": "Binary CE (multi-label)",
    "flsw": "FLSW (per example)", "cwsm": "CWSM (per example)", "adamw": "AdamW", "adam": "Adam", "sgd": "SGD",
    "adadelta": "Adadelta", "off": "Off (fp32)", "bf16": "bf16", "fp16": "fp16", "macro_f1": "Macro-F1",
    "distill": "Distil a student", "finetune_teacher": "Fine-tune the teacher",
    "lm_distill": "Distil a language model",
}
# Per input: choice labels that differ from CHOICE_LABELS (the same name means another thing there).
OWN_CHOICE_LABELS = {
    "lr_schedule": {"linear": "Linear decay", "cosine": "Cosine decay"},
    "embedding_init": {"auto": "Auto (the teacher's on its pieces, else the file, else random)", "random": "Random",
                       "teacher": "The teacher's input embeddings", "file": "A word-vector file"},
    "student_embedding_projection": {"once": "Once, before training (no extra cost)",
                                     "frozen": "Trained, on the frozen source table",
                                     "learned": "Trained, with the source table"},
    "student_prune_unseen": {"unk": "[UNK]", "nearest": "Its nearest kept piece (teacher embeddings)"},
    "augment_replace": {"frequency": "A word of similar frequency",
                        "teacher_neighbours": "A nearest neighbour in the teacher's embeddings"},
    "lm_mode": {"offline": "Offline (cached top-k)", "online": "Online", "on_policy": "On-policy (GKD)"},
    "lm_loss": {"forward_kl": "Forward KL", "reverse_kl": "Reverse KL", "jsd": "Generalised JSD (β)",
                "tv": "Total variation"},
    "lm_student_source": {"derived": "Teacher's layers, copied", "preset": "Teacher's family, fresh",
                          "checkpoint": "A registered checkpoint"},
    "lm_layer_pick": {"uniform": "Uniform", "top": "Top layers", "bottom": "Bottom layers"},
    "teacher_precision": {"auto": "Exact to the save (float32 on the CPU)", "float32": "float32",
                          "bfloat16": "bfloat16 where the hardware has it (faster, rounded)"},
}


def form_name(path: str) -> str:
    """The input of option `path`: NAMES, else the section's prefix and the option's name."""
    if path in NAMES:
        return NAMES[path]
    section, _, name = path.rpartition(".")
    return SECTION_GROUPS[section][0] + name


def student_option_inputs() -> dict[str, dict[str, Declared]]:
    """student type -> {input name -> its declared option}, for every registered student."""
    out: dict[str, dict[str, Declared]] = {}
    for student in student_types.ordered():
        prefix = STUDENT_PREFIXES.get(student, student)
        out[student] = {f"{prefix}_{d.name}": d for d in declared(student_types.get(student), "student.options.")
                        if d.path not in NOT_ON_FORM}
    return out


def config_inputs() -> dict[str, Declared]:
    """input name -> declared option, for every option of ExperimentConfig the page offers."""
    return {form_name(d.path): d for d in declared(ExperimentConfig) if d.path not in NOT_ON_FORM}


def group_of(name: str, d: Declared) -> str:
    """The page group of an input; a student option's is its student block, named by the input's prefix."""
    if d.path.startswith("student.options."):
        return name.split("_", 1)[0]
    return GROUPS.get(name, SECTION_GROUPS[d.section][1])


def student_choices() -> list[tuple[str, str]]:
    """The student menu: the registry's names, in registration order."""
    return [(n, CHOICE_LABELS.get(n, n)) for n in student_types.ordered()]


def _label(name: str) -> str:
    return LABELS.get(name, name.replace("_", " ").capitalize())


def _library_wording(option: Option) -> bool:
    """Refusals worded by distill_core: exclusive bounds (Django has no such validator) or a named option."""
    return option.low_open or option.high_open or bool(option.what)


def _check_with(option: Option, path: str):
    def validate(value: Any) -> None:
        message = option.problem(value, path)
        if message:
            raise forms.ValidationError(message)

    return validate


class NumberListField(forms.CharField):
    """Comma-separated whole numbers ("2, 3, 4"), each within the option's bounds."""

    def __init__(self, option: Option, path: str, **kwargs: Any):
        super().__init__(**kwargs)
        self.option, self.path = option, path

    def clean(self, value: Any) -> list[int] | None:
        text = super().clean(value).strip()
        if not text:
            return None
        items = [item.strip() for item in text.split(",") if item.strip()]
        low, high = self.option.length or (1, 100)
        if not low <= len(items) <= high:
            wanted = f"{low}" if low == high else f"{low} to {high}"
            raise forms.ValidationError(f"Give {wanted} comma-separated whole numbers (got {len(items)}).")
        for item in items:
            if not item.isascii() or not item.isdigit() or len(item) > 9:
                raise forms.ValidationError(f"{item[:20]!r} is not a whole number.")
        values = [int(item) for item in items]
        _check_with(self.option, self.path)(values)
        return values


def input_for(d: Declared, name: str, **overrides: Any) -> forms.Field:
    """The form input of one declared option; `overrides` change the Django field's arguments."""
    option, default = d.option, d.default
    args: dict[str, Any] = {"required": name in REQUIRED, "label": _label(name), "help_text": option.help}
    if option.choices is not None:
        labels = {**CHOICE_LABELS, **OWN_CHOICE_LABELS.get(name, {})}

        def choices() -> list[tuple[str, str]]:
            return [(n, labels.get(n, n.replace("_", " ").capitalize())) for n in option.names()]

        field: forms.Field = forms.ChoiceField(choices=choices, initial=default, **{**args, **overrides})
    elif isinstance(default, bool):
        if default:  # a box left unticked could not say "on": a menu, whose missing value is the default
            field = forms.TypedChoiceField(choices=[("true", "On"), ("false", "Off")], initial="true",
                                           empty_value=None, coerce=lambda v: v == "true", **{**args, **overrides})
        else:
            field = forms.BooleanField(**{**args, "required": False, **overrides})
    elif isinstance(default, list):
        field = NumberListField(option, d.path, max_length=100, initial=", ".join(map(str, default)),
                                **{**args, **overrides})
    elif "int" in d.type or "float" in d.type:
        initial = None if default == option.unset or default is None else default
        kind = forms.IntegerField if "int" in d.type.split("|")[0] else forms.FloatField
        if _library_wording(option):
            field = kind(initial=initial, validators=[_check_with(option, d.path)], **{**args, **overrides})
            for attr, bound in (("min", option.low), ("max", option.high)):
                if bound is not None:
                    field.widget.attrs[attr] = bound
        else:
            bounds = {"min_value": option.low, "max_value": option.high}
            field = kind(initial=initial, **{**args, **bounds, **overrides})
        if kind is forms.FloatField:
            field.widget.attrs["step"] = "any"
    else:
        field = forms.CharField(initial=default, max_length=200, **{**args, **overrides})
    return field


def ranges(inputs: dict[str, Declared]) -> dict[str, tuple[float | None, float | None, bool, bool]]:
    """Bounds the generated inputs check in a validator rather than in Django's min/max (the API schema needs
    them): input name -> (low, high, low exclusive, high exclusive)."""
    return {name: (d.option.low, d.option.high, d.option.low_open, d.option.high_open) for name, d in inputs.items()
            if _library_wording(d.option) and (d.option.low is not None or d.option.high is not None)
            and not isinstance(d.default, list)}
