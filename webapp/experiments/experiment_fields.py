"""The inputs of the new-experiment form, one per distill_core option, grouped as the page shows them.

The options' inputs are generated from distill_core's declarations (option_fields.py); the hand-made
ones here are the inputs that are not one option each. Every input but the original ten is optional:
left out (the REST API posts only a few), it takes distill_core's default, which is also its initial
value here. SECTIONS lists each group's inputs so the page opens the groups that hold an error.
"""

from __future__ import annotations

from django import forms
from django.core.validators import RegexValidator

from webapp.accounts.models import MAX_PRIORITY, MIN_PRIORITY
from webapp.experiments.option_fields import (
    config_inputs,
    form_name,
    group_of,
    input_for,
    ranges,
    student_choices,
    student_option_inputs,
)
from webapp.gpuqueue.models import POOL_NAME_MAX, validate_pool_name
from webapp.registry.models import WordVectors

INPUTS = config_inputs()  # input name -> distill_core's declared option
STUDENT_INPUTS = student_option_inputs()  # student type -> {input name -> declared option}
STUDENT_CHOICES = student_choices()
# Every generated input: the config's options, then each student's (BiLSTM and BiGRU share theirs).
ALL_INPUTS = {**INPUTS, **{name: d for per_student in STUDENT_INPUTS.values() for name, d in per_student.items()}}


def integer(initial: int | None, low: int, high: int, help_text: str, label: str | None = None) -> forms.IntegerField:
    return forms.IntegerField(required=False, initial=initial, min_value=low, max_value=high, label=label,
                              help_text=help_text)


def number(initial: float | None, low: float, high: float, help_text: str, label: str | None = None
           ) -> forms.FloatField:
    field = forms.FloatField(required=False, initial=initial, min_value=low, max_value=high, label=label,
                             help_text=help_text)
    field.widget.attrs["step"] = "any"
    return field


def choice(choices: list[tuple[str, str]], initial: str, help_text: str, label: str | None = None
           ) -> forms.ChoiceField:
    return forms.ChoiceField(required=False, choices=choices, initial=initial, label=label, help_text=help_text)


def textarea(rows: int, help_text: str, label: str, placeholder: str = "", max_length: int = 20000) -> forms.CharField:
    return forms.CharField(required=False, max_length=max_length, label=label, help_text=help_text,
                           widget=forms.Textarea(attrs={"rows": rows, "placeholder": placeholder, "spellcheck": "false"}))


STAGES_PLACEHOLDER = """[
  {"name": "intermediate", "epochs": 10, "learning_rate": 5e-5, "alpha": 0, "kd_weight": 0,
   "matches": "L4t_hidden_mse"},
  {"name": "prediction", "epochs": 3, "learning_rate": 3e-5, "alpha": 0, "temperature": 1}
]"""
ENSEMBLE_PLACEHOLDER = "bert-large-thucnews 1.0\nroberta-thucnews 0.5"


class HandMadeFields(forms.Form):
    """The inputs that are not one distill_core option each (or mean it differently); the rest is generated."""

    # -- basics --
    name = forms.CharField(max_length=200, help_text="e.g. BERT → TextCNN, T=2, α=0.8")
    team = forms.ModelChoiceField(queryset=None, empty_label=None, help_text="The team that owns the run.")
    teacher = forms.ModelChoiceField(queryset=None, help_text="A registered checkpoint of the chosen team.")
    dataset = forms.ModelChoiceField(queryset=None, help_text="Its label count must match the teacher's.")
    label_separator = forms.CharField(required=False, max_length=5, strip=False, initial=",",
                                      label="Label separator", help_text="Splits a multi-label row's labels.")

    # -- student: the team's word-vector file for student.embedding_file (a path in its folder) --
    word_vectors = forms.ModelChoiceField(
        queryset=WordVectors.objects.none(), required=False, label="Word vectors",
        help_text="For a char or word vocabulary: a word2vec/GloVe file of the team (Datasets → Word vectors).")

    # -- student: a tick here stores the chosen teacher's path as the option --
    tf_init_from_teacher = forms.BooleanField(
        required=False, label="Initialise from the teacher",
        help_text="Copy the teacher's embeddings and a uniform pick of its layers (widths must match).")

    # -- KD: tune KD's grids (lists of decimals and of loss names: the generated list input takes whole numbers) --
    tune_temperatures = forms.CharField(required=False, max_length=200, initial="2.0, 4.0", label="Temperatures to try",
                                        help_text="e.g. 1, 2, 4.")
    tune_alphas = forms.CharField(required=False, max_length=200, initial="0.2, 0.5, 0.8", label="α values to try",
                                  help_text="Hard-label weights, 0 to 1.")
    tune_losses = forms.CharField(required=False, max_length=100, initial="kl", label="Soft losses to try",
                                  help_text="Any registered soft loss (kl, ce, mse, bce). At most 36 trials in all.")

    # -- optimisation: 0 here is null (no clipping) in the config --
    grad_clip = forms.FloatField(required=False, initial=INPUTS["grad_clip"].default, min_value=0.0,
                                 max_value=INPUTS["grad_clip"].option.high, label="Gradient clip",
                                 help_text="Max global gradient norm; 0 turns clipping off.")
    device = forms.CharField(required=False, max_length=10, initial="auto", label="Device",
                             validators=[RegexValidator(r"^(auto|cpu|cuda(:[0-9]{1,2})?)$",
                                                        "Use auto, cpu, cuda or cuda:N.")],
                             help_text="auto picks the worker's GPU; cpu, cuda or cuda:N force one.")

    # -- resources --
    priority = integer(0, MIN_PRIORITY, MAX_PRIORITY, "Higher runs first among queued experiments of the pool.",
                       label="Priority")
    pool = forms.CharField(required=False, max_length=POOL_NAME_MAX, initial="default", label="GPU pool",
                           validators=[validate_pool_name],
                           help_text="Which workers may run it, e.g. default or a100.")
    gpus = integer(1, 1, 8, "GPUs it trains on at once (DistributedDataParallel under torchrun); the batch size "
                   "is the global batch and must divide by it. A worker takes it once that many of its GPUs are "
                   "free.", label="GPUs")
    max_runtime_hours = forms.FloatField(
        required=False, min_value=0.01, max_value=720, label="Maximum runtime (hours)",
        help_text="Optional. The run stops, keeps its metrics and fails once it has run this long.")

    # -- advanced --
    ensemble = textarea(3, "More teachers, one per line: a checkpoint name of the team and its weight. The soft "
                        "targets are the weighted mean of all teachers' logits.", "Teacher ensemble",
                        ENSEMBLE_PLACEHOLDER, 4000)
    stages = textarea(7, "A JSON list of stages (name, epochs, learning_rate, alpha, kd_weight, temperature, "
                      "matches); unset values come from the sections above. Empty: one stage. The placeholder is "
                      "TinyBERT's two stages. Language-model runs: temperature, kd_weight and alpha set the stage's "
                      "token-loss temperature, distillation weight and SFT weight.", "Stages",
                      STAGES_PLACEHOLDER)

    # -- matches --
    # No field initial: a plain dict with rows and no mode means rows (the form's own initial is "none").
    matches_mode = forms.ChoiceField(
        required=False, label="Intermediate matches", widget=forms.RadioSelect,
        choices=[("none", "None"), ("preset", "Preset"), ("generate", "Generate"), ("rows", "Edit rows")],
        help_text="Teacher features the student's layers learn from, besides the soft labels.")
    matches_preset = forms.ChoiceField(required=False, choices=[], label="Preset",
                                       help_text="TextBrewer's match sets (L3/L4/L6 students, hidden or attention).")
    generate_strategy = choice([("uniform", "Uniform"), ("top", "Top layers"), ("bottom", "Bottom layers")],
                               "uniform", "Which teacher layer each student layer learns from.",
                               label="Layer map")
    generate_feature = choice([("hidden", "Hidden states"), ("attention", "Attentions"), ("embedding", "Embeddings")],
                              "hidden", "What is compared.", label="Feature")
    generate_loss = forms.ChoiceField(required=False, choices=[], initial="hidden_mse", label="Loss",
                                      help_text="An attention loss for attentions, a hidden loss otherwise.")
    generate_weight = number(1.0, 0.0, 1000.0, "Weight of every generated row.", label="Weight")
    # Not "matches": a form control of that name would hide HTMLFormElement.matches() from scripts.
    match_rows = textarea(6, "The rows as JSON: [{\"layer_T\", \"layer_S\", \"feature\", \"loss\", \"weight\", "
                       "\"proj\"}]. Checked against the teacher and the student before anything is queued.",
                       "Match rows", '[{"layer_T": 2, "layer_S": 1, "feature": "hidden", "loss": "hidden_mse", '
                       '"weight": 1, "proj": ["linear", 312, 768]}]')

    # -- sweep --
    sweep_temperature = forms.CharField(required=False, max_length=500, label="Temperatures",
                                        help_text="e.g. 1, 2, 4, 8 — replaces T.")
    sweep_alpha = forms.CharField(required=False, max_length=500, label="α values", help_text="e.g. 0, 0.5, 0.9.")
    sweep_learning_rate = forms.CharField(required=False, max_length=500, label="Learning rates",
                                          help_text="e.g. 1e-3, 5e-4.")
    sweep_student_type = forms.CharField(required=False, max_length=500, label="Students",
                                         help_text="e.g. textcnn, bilstm.")


_GENERATED = {name: d for name, d in ALL_INPUTS.items() if name not in HandMadeFields.base_fields}
ExperimentFields = type(HandMadeFields)(
    "ExperimentFields", (HandMadeFields,),
    {**{name: input_for(d, name) for name, d in _GENERATED.items()}, "__module__": __name__})
# Bounds checked by a validator with distill_core's wording; the API schema and the sweeps read them.
RANGES = ranges(_GENERATED)

# Where each input sits on the page, in order. Generated inputs not placed here follow their group's own.
LAYOUT: dict[str, tuple[str, ...]] = {
    "basics": ("name", "team", "teacher", "dataset", "max_length", "multi_label", "label_separator"),
    "student": ("student_type", "student_vocab", "embedding_dim", "embedding_init", "student_embedding_projection",
                "word_vectors", "cnn_filter_sizes",
                "cnn_num_filters", "cnn_dropout", "rnn_hidden_size", "rnn_fc_size", "rnn_dropout", "rnn_siamese", "tf_preset",
                "tf_layers", "tf_hidden", "tf_heads", "tf_ffn", "tf_dropout", "tf_init_from_teacher",
                "student_prune_vocab", "student_prune_unseen"),
    "kd": ("temperature", "alpha", "kd_loss", "t2_scaling", "kd_weight", "tune_kd", "tune_temperatures", "tune_alphas",
           "tune_losses", "tune_steps"),
    "matches": ("matches_mode", "matches_preset", "generate_strategy", "generate_feature", "generate_loss",
                "generate_weight", "match_rows"),
    "schedules": ("temperature_schedule", "temperature_final", "schedule_beta", "schedule_gamma",
                  "kd_weight_schedule", "hard_weight_schedule", "lr_schedule", "warmup_ratio"),
    "augment": ("augment", "augment_n_iter", "augment_p_mask", "augment_p_replace", "augment_p_ng",
                "augment_ngram_range", "augment_replace_window", "augment_replace", "augment_neighbours",
                "augment_max_examples"),
    "optimisation": ("epochs", "batch_size", "learning_rate", "optimizer", "weight_decay", "grad_clip",
                     "grad_accumulation", "bucket_by_length", "amp", "max_steps", "early_stopping_patience",
                     "best_metric", "log_every", "eval_every", "checkpoint_every", "device"),
    "resources": ("priority", "pool", "gpus", "max_runtime_hours"),
    "lm": ("lm_mode", "lm_loss", "lm_beta", "lm_temperature", "lm_distill_weight", "lm_sft_weight", "lm_top_k",
           "lm_lambda", "lm_max_new_tokens", "lm_sample_temperature", "lm_student_source", "lm_layers",
           "lm_layer_pick", "lm_student_checkpoint", "lm_hidden_size", "lm_num_heads", "lm_intermediate_size",
           "lm_samples", "lm_sample_max_new_tokens", "lm_sample_prompts"),
    "sweep": ("sweep_temperature", "sweep_alpha", "sweep_learning_rate", "sweep_student_type"),
    "advanced": ("kind", "seed", "teacher_weight", "teacher_precision", "ensemble", "stages"),
}
_placed = {name for names in LAYOUT.values() for name in names}
# Generated inputs LAYOUT does not place: the page shows them at the end of their group (student options
# in their student's block, keyed by the input prefix).
EXTRAS: dict[str, list[str]] = {}
for _name, _d in ALL_INPUTS.items():
    if _name not in _placed:
        EXTRAS.setdefault(group_of(_name, _d), []).append(_name)
SECTIONS: dict[str, tuple[str, ...]] = {
    group: names + tuple(n for key, extra in EXTRAS.items() for n in extra
                         if (key if key in LAYOUT else "student") == group) for group, names in LAYOUT.items()}
__all__ = ["ExperimentFields", "RANGES", "SECTIONS", "EXTRAS", "form_name", "INPUTS", "STUDENT_INPUTS", "ALL_INPUTS",
           "STUDENT_CHOICES"]
