"""The inputs of the new-experiment form, one per distill_core option, grouped as the page shows them.

Every input but the original ten is optional: left out (the REST API posts only a few), it takes
distill_core's default, which is also its initial value here. SECTIONS lists each group's inputs
so the page opens the groups that hold an error.
"""

from __future__ import annotations

from django import forms
from django.core.validators import RegexValidator

from distill_core.config import (
    AMP_MODES,
    AUGMENT_REPLACE,
    BEST_METRICS,
    EMBEDDING_INITS,
    KD_LOSSES,
    LR_SCHEDULES,
    OPTIMIZERS,
    TEMPERATURE_SCHEDULES,
    WEIGHT_SCHEDULES,
)
from webapp.accounts.models import MAX_PRIORITY, MIN_PRIORITY
from webapp.experiments.models_vectors import WordVectors
from webapp.gpuqueue.models import POOL_NAME_MAX, validate_pool_name

STUDENT_CHOICES = [("textcnn", "TextCNN"), ("bilstm", "BiLSTM"), ("bigru", "BiGRU"), ("transformer", "Transformer")]
TRANSFORMER_PRESETS = ["T3", "T3-small", "T4-tiny", "T6", "T12-nano"]  # distill_core.students_transformer
MAX_INT = 2**31 - 1
# Bounds the form checks in clean_<name> (with their own messages) and in sweeps; the API schema reads
# them too. name -> (low, high, low exclusive).
RANGES: dict[str, tuple[float, float, bool]] = {
    "temperature": (0.0, 1000.0, True),
    "alpha": (0.0, 1.0, False),
    "learning_rate": (0.0, 10.0, True),
}


def _choices(names: tuple[str, ...], labels: dict[str, str] | None = None) -> list[tuple[str, str]]:
    return [(n, (labels or {}).get(n, n.replace("_", " ").capitalize())) for n in names]


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


class ExperimentFields(forms.Form):
    # -- basics --
    name = forms.CharField(max_length=200, help_text="e.g. BERT → TextCNN, T=2, α=0.8")
    team = forms.ModelChoiceField(queryset=None, empty_label=None, help_text="The team that owns the run.")
    teacher = forms.ModelChoiceField(queryset=None, help_text="A registered checkpoint of the chosen team.")
    dataset = forms.ModelChoiceField(queryset=None, help_text="Its label count must match the teacher's.")
    max_length = forms.IntegerField(initial=32, min_value=1, max_value=4096, label="Max length",
                                    help_text="Tokens per example; longer texts are truncated.")
    multi_label = forms.BooleanField(required=False, label="Multi-label",
                                     help_text="A row's label field holds several labels; soft targets become "
                                               "per-class sigmoids.")
    label_separator = forms.CharField(required=False, max_length=5, strip=False, initial=",",
                                      label="Label separator", help_text="Splits a multi-label row's labels.")

    # -- student --
    student_type = forms.ChoiceField(
        choices=STUDENT_CHOICES, initial="textcnn", label="Student",
        help_text="TextCNN (Kim 2014): fast convolutions. BiLSTM/BiGRU (Tang et al. 2019): recurrent. "
                  "Transformer: a small BERT (TinyBERT/TextBrewer sizes).")
    student_vocab = choice([("char", "Characters of the train split"), ("word", "Words of the train split"),
                            ("teacher", "The teacher's word pieces")], "char",
                           "Intermediate matches and initialising from the teacher need the teacher's pieces.",
                           label="Vocabulary")
    embedding_dim = integer(128, 1, 4096, "Width of the token embeddings (transformers use their hidden width).",
                            label="Embedding size")
    embedding_init = choice(_choices(EMBEDDING_INITS, {
        "auto": "Auto (the teacher's on its pieces, else the file, else random)", "random": "Random",
        "teacher": "The teacher's input embeddings", "file": "A word-vector file"}), "random",
        "Where TextCNN/BiLSTM/BiGRU embeddings start. Other widths than the source's train through a learned "
        "projection, folded away at the end (same size and speed).", label="Embedding start")
    word_vectors = forms.ModelChoiceField(
        queryset=WordVectors.objects.none(), required=False, label="Word vectors",
        help_text="For a char or word vocabulary: a word2vec/GloVe file of the team (Datasets → Word vectors).")
    cnn_filter_sizes = forms.CharField(required=False, max_length=100, initial="2, 3, 4", label="Filter sizes",
                                       help_text="Comma-separated convolution widths in tokens.")
    cnn_num_filters = integer(128, 1, 4096, "Filters per width.", label="Filters per size")
    cnn_dropout = number(0.5, 0.0, 0.999, "Before the classifier; 0 to below 1.", label="Dropout")
    rnn_hidden_size = integer(300, 1, 4096, "Units per direction (the paper's 300).", label="Hidden size")
    rnn_fc_size = integer(400, 1, 8192, "Width of the tanh layer before the classifier.", label="FC size")
    rnn_dropout = number(0.1, 0.0, 0.999, "Before the classifier; 0 to below 1.", label="Dropout")
    rnn_siamese = forms.BooleanField(required=False, label="Siamese pairs",
                                     help_text="Encode the two sentences of a pair separately and compare them "
                                               "(no token-level hidden states to match).")
    tf_preset = choice([(p, p) for p in TRANSFORMER_PRESETS] + [("custom", "Custom")], "T4-tiny",
                       "T3/T6: BERT width; T4-tiny: 4×312; T3-small: 3×384; T12-nano: 12×256.", label="Size preset")
    tf_layers = integer(None, 1, 48, "Blank: the preset's. Custom needs all four sizes.", label="Layers")
    tf_hidden = integer(None, 1, 4096, "Blank: the preset's.", label="Hidden size")
    tf_heads = integer(None, 1, 64, "Blank: the preset's; must divide the hidden size.", label="Heads")
    tf_ffn = integer(None, 1, 16384, "Blank: the preset's.", label="FFN size")
    tf_dropout = number(0.1, 0.0, 0.999, "Hidden and attention dropout.", label="Dropout")
    tf_init_from_teacher = forms.BooleanField(
        required=False, label="Initialise from the teacher",
        help_text="Copy the teacher's embeddings and a uniform pick of its layers (widths must match).")

    # -- KD loss --
    temperature = forms.FloatField(
        initial=2.0, label="Temperature T",
        help_text="Softens the teacher's distribution; higher T passes more of its 'dark knowledge'. Usually 1–10.")
    alpha = forms.FloatField(
        initial=0.8, label="Hard-label weight α",
        help_text="loss = α·CE(student, labels) + (1−α)·T²·KL(teacher‖student). 0 = teacher only, 1 = labels only.")
    kd_loss = choice(_choices(KD_LOSSES, {"kl": "KL divergence", "ce": "Soft cross-entropy", "mse": "Logit MSE",
                                          "bce": "Binary CE (multi-label)"}), "kl",
                     "How the student's soft predictions are compared with the teacher's.", label="Soft loss")
    t2_scaling = forms.TypedChoiceField(
        required=False, choices=[("true", "On"), ("false", "Off")], initial="true", empty_value=None,
        coerce=lambda v: v == "true", label="T² scaling",
        help_text="Multiply the soft loss by T² so its gradients keep their size as T grows (Hinton et al.).")
    kd_weight = number(None, 0.0, 1000.0, "Weight of the soft-label term. Blank: 1 − α.", label="Soft-label weight")

    # -- schedules --
    temperature_schedule = choice(_choices(TEMPERATURE_SCHEDULES, {"flsw": "FLSW (per example)",
                                                                   "cwsm": "CWSM (per example)"}), "constant",
                                  "Linear/cosine move T to the final temperature; FLSW and CWSM (TextBrewer) set "
                                  "it per example.", label="Temperature schedule")
    temperature_final = number(None, 1e-6, 1000.0, "Where a linear or cosine schedule ends.",
                               label="Final temperature")
    schedule_beta = number(1.0, 0.0, 1000.0, "β of the FLSW/CWSM schedules.", label="Schedule β")
    schedule_gamma = number(2.0, 0.0, 1000.0, "γ of the FLSW/CWSM schedules.", label="Schedule γ")
    kd_weight_schedule = choice(_choices(WEIGHT_SCHEDULES), "constant", "A factor on the soft-label weight over "
                                "training.", label="Soft-weight schedule")
    hard_weight_schedule = choice(_choices(WEIGHT_SCHEDULES), "constant", "A factor on α over training.",
                                  label="Hard-weight schedule")
    lr_schedule = choice(_choices(LR_SCHEDULES, {"linear": "Linear decay", "cosine": "Cosine decay"}), "linear",
                         "After warm-up: keep the rate, or decay it to 0.", label="Learning-rate schedule")
    warmup_ratio = number(0.0, 0.0, 0.999, "Fraction of the steps spent warming the rate up from 0.",
                          label="Warm-up ratio")

    # -- augmentation --
    augment = forms.BooleanField(required=False, label="Augment the train split",
                                 help_text="Masking, frequency-matched replacement and n-gram sampling (Tang et al. "
                                           "2019), labelled by the teacher. Single sentences only.")
    augment_n_iter = integer(10, 1, 1000, "Augmented copies tried per example.", label="Copies per example")
    augment_p_mask = number(0.1, 0.0, 1.0, "Probability of masking a token.", label="p mask")
    augment_p_replace = number(0.1, 0.0, 1.0, "Probability of replacing a token by one of similar frequency.",
                               label="p replace")
    augment_p_ng = number(0.25, 0.0, 1.0, "Probability of keeping only an n-gram of the example.", label="p n-gram")
    augment_ngram_range = forms.CharField(required=False, max_length=40, initial="1, 5", label="n-gram range",
                                          help_text="min, max n-gram length.")
    augment_replace_window = integer(20, 1, 1_000_000, "Frequency ranks either side to draw a replacement from.",
                                     label="Replace window")
    augment_replace = choice(_choices(AUGMENT_REPLACE, {
        "frequency": "A word of similar frequency", "teacher_neighbours": "A nearest neighbour in the teacher's "
        "embeddings"}), "frequency", "What a replaced word becomes. Neighbours suit English word pieces "
                                    "(TinyBERT's idea, without GloVe).", label="Replace with")
    augment_neighbours = integer(15, 1, 1000, "Nearest neighbours a replacement is drawn from.", label="Neighbours")
    augment_max_examples = integer(200_000, 1, 100_000_000, "Cap on augmented copies (teacher time grows with it).",
                                   label="Max copies")

    # -- optimisation --
    epochs = forms.IntegerField(initial=3, min_value=1, max_value=1000, help_text="Passes over the train split.")
    batch_size = forms.IntegerField(initial=64, min_value=1, max_value=65536, label="Batch size",
                                    help_text="Examples per batch.")
    learning_rate = forms.FloatField(initial=1e-3, label="Learning rate",
                                     help_text="1e-3 suits the small students; transformers prefer 1e-4 to 5e-5.")
    optimizer = choice(_choices(OPTIMIZERS, {"adamw": "AdamW", "adam": "Adam", "sgd": "SGD", "adadelta": "Adadelta"}),
                       "adamw", "The optimiser of every stage.", label="Optimiser")
    weight_decay = number(0.0, 0.0, 10.0, "L2 penalty (decoupled for AdamW).", label="Weight decay")
    grad_clip = number(1.0, 0.0, 1e6, "Max global gradient norm; 0 turns clipping off.", label="Gradient clip")
    grad_accumulation = integer(1, 1, 1024, "Batches per optimisation step.", label="Gradient accumulation")
    amp = choice(_choices(AMP_MODES, {"off": "Off (fp32)", "bf16": "bf16", "fp16": "fp16"}), "off",
                 "Mixed precision on CUDA (bf16 also on CPU).", label="Mixed precision")
    max_steps = integer(None, 1, 10**9, "Stop after this many steps. Blank: run every epoch.", label="Max steps")
    early_stopping_patience = integer(0, 0, 1000, "Evaluations without a better dev score before stopping; "
                                      "0 = never.", label="Early-stopping patience")
    best_metric = choice(_choices(BEST_METRICS, {"macro_f1": "Macro-F1"}), "accuracy",
                         "The dev metric that picks the best student.", label="Best metric")
    log_every = integer(10, 1, 10**6, "Steps between logged training metrics.", label="Log every")
    eval_every = integer(0, 0, 10**9, "Steps between dev evaluations; 0 = once per epoch.", label="Evaluate every")
    checkpoint_every = integer(100, 1, 10**9, "Steps between resumable checkpoints (and every epoch end).",
                               label="Checkpoint every")
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
    max_runtime_hours = forms.FloatField(
        required=False, min_value=0.01, max_value=720, label="Maximum runtime (hours)",
        help_text="Optional. The run stops, keeps its metrics and fails once it has run this long.")

    # -- advanced --
    kind = choice([("distill", "Distil a student"), ("finetune_teacher", "Fine-tune the teacher")], "distill",
                  "Fine-tuning trains the teacher on the labels and saves it as a new checkpoint.", label="Run kind")
    seed = integer(42, 0, MAX_INT, "Seeds initialisation, shuffling and augmentation.", label="Seed")
    teacher_weight = number(1.0, 1e-6, 1000.0, "This teacher's share of the ensemble's soft targets.",
                            label="Teacher weight")
    ensemble = textarea(3, "More teachers, one per line: a checkpoint name of the team and its weight. The soft "
                        "targets are the weighted mean of all teachers' logits.", "Teacher ensemble",
                        ENSEMBLE_PLACEHOLDER, 4000)
    stages = textarea(7, "A JSON list of stages (name, epochs, learning_rate, alpha, kd_weight, temperature, "
                      "matches); unset values come from the sections above. Empty: one stage. The placeholder is "
                      "TinyBERT's two stages.", "Stages",
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


SECTIONS: dict[str, tuple[str, ...]] = {
    "basics": ("name", "team", "teacher", "dataset", "max_length", "multi_label", "label_separator"),
    "student": ("student_type", "student_vocab", "embedding_dim", "embedding_init", "word_vectors", "cnn_filter_sizes", "cnn_num_filters",
                "cnn_dropout", "rnn_hidden_size", "rnn_fc_size", "rnn_dropout", "rnn_siamese", "tf_preset",
                "tf_layers", "tf_hidden", "tf_heads", "tf_ffn", "tf_dropout", "tf_init_from_teacher"),
    "kd": ("temperature", "alpha", "kd_loss", "t2_scaling", "kd_weight"),
    "matches": ("matches_mode", "matches_preset", "generate_strategy", "generate_feature", "generate_loss",
                "generate_weight", "match_rows"),
    "schedules": ("temperature_schedule", "temperature_final", "schedule_beta", "schedule_gamma",
                  "kd_weight_schedule", "hard_weight_schedule", "lr_schedule", "warmup_ratio"),
    "augment": ("augment", "augment_n_iter", "augment_p_mask", "augment_p_replace", "augment_p_ng",
                "augment_ngram_range", "augment_replace_window", "augment_replace", "augment_neighbours",
                "augment_max_examples"),
    "optimisation": ("epochs", "batch_size", "learning_rate", "optimizer", "weight_decay", "grad_clip",
                     "grad_accumulation", "amp", "max_steps", "early_stopping_patience", "best_metric", "log_every",
                     "eval_every", "checkpoint_every", "device"),
    "resources": ("priority", "pool", "max_runtime_hours"),
    "sweep": ("sweep_temperature", "sweep_alpha", "sweep_learning_rate", "sweep_student_type"),
    "advanced": ("kind", "seed", "teacher_weight", "ensemble", "stages"),
}
